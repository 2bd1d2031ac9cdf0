//! `hcc sync` as the CLI says it: one summary line (or JSON), and the
//! listing's progress on a terminal.

use std::io::IsTerminal;
use std::process::ExitCode;

use serde_json::json;

use super::print_json;
use crate::cloud::Cloud;
use crate::cloud::sync::{self, Mode, Summary};
use crate::config::Settings;
use crate::error::Error;
use crate::hetzner::Priority;
use crate::home::Home;

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
    let mut progress = TerminalProgress::new();
    let summary = sync::run(&mut cloud, mode, &mut |seen, total| {
        progress.page(seen, total);
    })?;
    progress.finish();
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

/// A full listing's progress on stderr when it is a terminal: one line,
/// redrawn after each page, erased when the listing is done. Nothing
/// elsewhere (a log file, a panel's pipe).
pub struct TerminalProgress {
    terminal: bool,
    shown: bool,
}

impl TerminalProgress {
    pub fn new() -> TerminalProgress {
        TerminalProgress {
            terminal: std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    /// `seen` servers so far of `total` (when the API said).
    pub fn page(&mut self, seen: usize, total: Option<u64>) {
        if self.terminal {
            let total = total.map(|t| t.to_string()).unwrap_or_else(|| "?".into());
            eprint!("\rhcc: sync: {seen}/{total} servers");
            self.shown = true;
        }
    }

    /// The listing is done: the line goes.
    pub fn finish(self) {
        if self.shown {
            eprint!("\r\x1b[K");
        }
    }
}
