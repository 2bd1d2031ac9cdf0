//! The harness: `browser` (headless Chromium and its driver scripts),
//! `serve` (an `hcc serve` to talk to, its keys, links and
//! raw requests), and real peers for the tests, each started on loopback on free ports and
//! stopped when its value is dropped: a VNC console (`vnc`) and nginx in
//! front of an upstream (`nginx`), Litestream replicating a state
//! directory (`litestream`). Their own tests are in `tests/vnc.rs`,
//! `tests/nginx.rs` and `tests/standby.rs`.

pub mod browser;
pub mod litestream;
pub mod nginx;
pub mod serve;
pub mod vnc;
