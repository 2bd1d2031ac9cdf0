//! `hcc check`: SQLite's integrity and foreign-key checks and hcc's own
//! invariants (store/check.rs), one line per problem and a summary, or
//! JSON. Exits [`EXIT_PROBLEMS`] when it finds one; changes nothing.

use std::process::ExitCode;

use serde_json::json;

use crate::error::{EXIT_PROBLEMS, Error};
use crate::home::Home;
use crate::store::Store;
use crate::worker;

pub fn run(home: &Home, json_out: bool) -> Result<ExitCode, Error> {
    let store = Store::open(&home.db_path())?;
    let serve_runs = worker::serve_runs(&worker::serve_lock_path(home))?;
    let problems = store.check(serve_runs)?;
    if json_out {
        let list: Vec<_> = problems
            .iter()
            .map(|p| json!({"code": p.code, "message": p.message}))
            .collect();
        let value = json!({"ok": problems.is_empty(), "problems": list});
        crate::output::print(&format!("{value}\n"))?;
    } else {
        let mut text = String::new();
        for problem in &problems {
            text.push_str(&format!("{}: {}\n", problem.code, problem.message));
        }
        text.push_str(&match problems.len() {
            0 => format!(
                "{}: ok (integrity, foreign keys, leases, merged commands, live sessions)\n",
                home.db_path().display()
            ),
            1 => format!("{}: 1 problem\n", home.db_path().display()),
            n => format!("{}: {n} problems\n", home.db_path().display()),
        });
        crate::output::print(&text)?;
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_PROBLEMS)
    })
}
