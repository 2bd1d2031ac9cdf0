//! The one integration-test binary: every test drives the built `hcc` on a
//! temporary state directory. One file per area.

mod daemon;
mod support;
mod test;

mod assets;
mod broker;
mod browser;
mod browser_input;
mod budget;
mod cloud;
mod config;
mod config_reload;
mod console_attacks;
mod console_page;
mod console_power;
mod console_words;
mod create;
mod dashboard;
mod demo;
mod deploy;
mod errors;
mod flood;
mod funnel;
mod hostile_names;
mod lease;
mod links;
mod log_secrets;
mod man;
mod metrics;
mod nginx;
mod origin;
mod panel;
mod queue;
mod robustness;
mod serve;
mod server_metrics;
mod sim_verbs;
mod simconsole;
mod simulator;
mod spool;
mod stall;
mod statedir;
mod vnc;
mod wakeups;
mod worker;
