//! What the cloud commands (`hcc list`, `sync`, `create`, `start`, ...,
//! `console`, `metrics`, the catalog listings) print: tables, one line of JSON, the
//! sync's progress line, `kill`'s confirmation prompt. The operations are
//! in `cloud`, which returns values and prints nothing; the worker and
//! `hcc serve` report the same operations their own way.

mod catalog;
mod manage;
mod metrics;
mod server;
pub mod sync;

pub use catalog::{datacenters, images, isos, list, locations, server_types, snapshots};
pub use manage::manage;
pub use metrics::metrics;
pub use server::{CreateArgs, console, create, deltag, kill, power, settag};
pub use sync::sync;

use serde_json::Value;

use crate::error::Error;

/// Prints `value` as one line of JSON.
fn print_json(value: &Value) -> Result<(), Error> {
    crate::output::print(&format!("{value}\n"))
}
