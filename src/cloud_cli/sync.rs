//! `hcc sync` as the CLI says it: one summary line (or JSON), and the
//! listing's progress on a terminal.

use std::process::ExitCode;

use serde_json::json;

use super::print_json;
use crate::cloud::Cloud;
use crate::cloud::sync::{self, Mode, Summary};
use crate::config::Settings;
use crate::error::Error;
use crate::hetzner::Priority;
use crate::home::Home;
use crate::output::TerminalProgress;

pub fn sync(
    home: &Home,
    settings: &Settings,
    name: Option<&str>,
    changes: bool,
    json_out: bool,
) -> Result<ExitCode, Error> {
    let mut cloud = Cloud::open(home, settings, Priority::Background)?;
    let mode = match (name, changes) {
        (Some(name), _) => Mode::One(name),
        (None, true) => Mode::Changes,
        (None, false) => Mode::Full,
    };
    let summary = sync::run(&mut cloud, mode, &mut TerminalProgress::new())?;
    if json_out {
        print_json(&summary_json(&summary, cloud.client.requests_sent()))?;
    } else {
        let requests = cloud.client.requests_sent();
        let plural = if requests == 1 { "" } else { "s" };
        crate::output::print(&format!("{} ({requests} request{plural})\n", summary.text))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn summary_json(summary: &Summary, requests: u64) -> serde_json::Value {
    json!({"mode": summary.mode, "servers": summary.servers, "added": summary.added,
           "updated": summary.updated, "removed": summary.removed, "requests": requests})
}
