//! The one integration-test binary: every test drives the built `hcc` on a
//! temporary state directory. One file per area.

mod daemon;
mod test;

mod browser;
mod cloud;
mod config;
mod deploy;
mod errors;
mod flood;
mod man;
mod nginx;
mod panel;
mod queue;
mod serve;
mod simulator;
mod spool;
mod vnc;
mod wakeups;
mod worker;
