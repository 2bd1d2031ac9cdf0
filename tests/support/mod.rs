//! The harness: `browser` (headless Chromium and its driver scripts),
//! `serve` (an `hcc serve` to talk to, its keys, links and
//! raw requests), and real peers for the tests, each started on loopback on free ports and
//! stopped when its value is dropped: a VNC console (`vnc`) and nginx in
//! front of an upstream (`nginx`). Their own tests are in `tests/vnc.rs`
//! and `tests/nginx.rs`.

pub mod browser;
pub mod nginx;
pub mod serve;
pub mod vnc;
