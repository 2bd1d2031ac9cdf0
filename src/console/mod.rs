//! The console broker: hcc between a browser and a server's VNC console.
//!
//! upstream.rs dials the console's websocket (Hetzner's `wss_url`, or a
//! `ws://` one) and authenticates with the console's password; browser.rs
//! offers the browser an RFB handshake without authentication (it proved
//! itself to hcc with a one-time ticket); relay.rs then passes bytes both
//! ways, counting them, until a side closes, the session idles or someone
//! asks for it to end. rfb.rs holds the handshake steps both sides share,
//! wsio.rs reads a websocket as a byte stream for the handshakes,
//! deadline.rs bounds each side's handshake as a whole.
//! bridge.rs is `hcc vnc`: the same upstream and relay for a native
//! viewer on a local TCP port.

pub mod bridge;
pub mod browser;
pub mod deadline;
pub mod relay;
pub mod rfb;
pub mod upstream;
pub mod wsio;

pub use relay::{End, Limits, Outcome, relay};
pub use upstream::Upstream;
