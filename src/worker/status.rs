//! `hcc status`: is the worker alive, how deep is the queue, when did the
//! last sync run and what did it cost, how much rate budget is left, what
//! failed last. Exits 1 when no worker runs, so it doubles as a health
//! check.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::lock;
use crate::error::{EXIT_FAILED, Error};
use crate::home::Home;
use crate::store::{CommandState, Store, now};

/// What `hcc status --json` prints (and `GET /api/v1/status` answers);
/// `command_share` of the budget is kept for queued commands
/// (`command_reserve`).
pub fn report(home: &Home, command_share: f64) -> Result<Value, Error> {
    let holder = lock::holder(&home.root().join("worker.lock"))?;
    let serving = lock::serve_runs(&super::serve_lock_path(home))?;
    let store = Store::open(&home.db_path())?;
    let queue = store.queue_overview()?;
    let t = now();
    let count = |state: CommandState| {
        queue
            .by_state
            .iter()
            .find(|(s, _)| s == state.as_str())
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    let mut queue_json = serde_json::Map::new();
    for state in CommandState::ALL {
        queue_json.insert(state.as_str().into(), count(state).into());
    }
    queue_json.insert(
        "oldest_queued_age".into(),
        json!(queue.oldest_queued_at.map(|at| t - at)),
    );
    let value = |key: &str| store.sync_value(key).ok().flatten();
    let last_sync_at: Option<i64> = value("last_sync_at").and_then(|v| v.parse().ok());
    let last_sync_requests: Option<i64> = value("last_sync_requests").and_then(|v| v.parse().ok());
    let last_sync_mode = value("last_sync_mode");
    let budget = store.rate_state()?.map(|s| {
        (
            s.available(crate::hetzner::now()).floor() as i64,
            s.limit as i64,
            s.floor(crate::hetzner::Priority::Console, command_share) as i64,
        )
    });
    Ok(json!({
        "worker": holder.as_ref().map(|h| json!({"pid": h.pid, "since": h.since})),
        // Whether an `hcc serve` holds serve.lock (a restore holds it too,
        // for the moment it runs).
        "serve_running": serving,
        "queue": queue_json,
        "last_sync": last_sync_at.map(|at| json!({
            "at": at, "mode": last_sync_mode, "requests": last_sync_requests})),
        "rate_budget": budget.map(|(left, limit, for_commands)| json!({
            "remaining": left, "limit": limit, "for_commands": for_commands})),
        "last_error": queue.last_error.as_ref().map(|(id, e)| json!({"command": id, "error": e})),
    }))
}

pub fn run(home: &Home, command_share: f64, json_out: bool) -> Result<ExitCode, Error> {
    let report = report(home, command_share)?;
    let running = !report["worker"].is_null();
    if json_out {
        crate::output::print(&format!("{report}\n"))?;
    } else {
        crate::output::print(&text(&report, now()))?;
    }
    Ok(if running {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

/// `hcc status` where no state directory is: one line, and the exit
/// status of "no worker runs". Nothing is created.
pub fn absent(root: &std::path::Path, json_out: bool) -> Result<ExitCode, Error> {
    let line = format!(
        "worker:      not running (no state directory at {}; `hcc setup` makes one, `hcc demo` tries hcc without one)\n",
        root.display()
    );
    if json_out {
        // stdout stays for JSON; the line is for whoever reads stderr.
        eprint!("{}", crate::output::visible(&line));
    } else {
        crate::output::print(&line)?;
    }
    Ok(ExitCode::from(EXIT_FAILED))
}

/// The report for a person.
fn text(report: &Value, t: i64) -> String {
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    let mut text = String::new();
    let worker = &report["worker"];
    if worker.is_null() {
        text.push_str("worker:      not running\n");
    } else {
        text.push_str(&format!(
            "worker:      running (pid {}, up {})\n",
            int(&worker["pid"]),
            age(t - int(&worker["since"]))
        ));
    }
    text.push_str(if report["serve_running"] == true {
        "serve:       running\n"
    } else {
        "serve:       not running\n"
    });
    let queue = &report["queue"];
    let oldest = queue["oldest_queued_age"]
        .as_i64()
        .map(|secs| format!(" (oldest {} old)", age(secs)))
        .unwrap_or_default();
    let counts: Vec<String> = CommandState::ALL
        .iter()
        .map(|state| {
            let n = int(&queue[state.as_str()]);
            let after = if *state == CommandState::Queued {
                oldest.as_str()
            } else {
                ""
            };
            format!("{n} {state}{after}")
        })
        .collect();
    text.push_str(&format!("queue:       {}\n", counts.join(", ")));
    let sync = &report["last_sync"];
    if sync.is_null() {
        text.push_str("last sync:   never\n");
    } else {
        text.push_str(&format!(
            "last sync:   {} ago, {}, {} requests\n",
            age(t - int(&sync["at"])),
            sync["mode"].as_str().unwrap_or("?"),
            int(&sync["requests"])
        ));
    }
    let budget = &report["rate_budget"];
    if budget.is_null() {
        text.push_str("rate budget: unknown (no request yet)\n");
    } else {
        text.push_str(&format!(
            "rate budget: {} of {} requests left ({} kept for queued commands)\n",
            int(&budget["remaining"]),
            int(&budget["limit"]),
            int(&budget["for_commands"])
        ));
    }
    let error = &report["last_error"];
    if !error.is_null() {
        text.push_str(&format!(
            "last error:  command {}: {}\n",
            int(&error["command"]),
            error["error"].as_str().unwrap_or("")
        ));
    }
    text
}

fn age(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        0..120 => format!("{secs} s"),
        120..7200 => format!("{} min", secs / 60),
        7200..172_800 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86400),
    }
}
