//! Who is asking for work: the identity under which `pull` and `next`
//! record a lease.
//!
//! The original tool's loops (`while cmd="$(server.py next)"; do ...; done`)
//! never acknowledge a command: asking for the next one means the last one
//! is finished. hcc recognises "the same loop" by the asking process's
//! parent (the loop's shell, when it runs `hcc` directly) or its process
//! group (the loop's script, when bash forks a subshell for a redirection
//! such as `$(hcc pull 2>/dev/null)`), each with the start time of the
//! process it names, which tells a reused pid apart. `HCC_CONSUMER=NAME`
//! names the consumer explicitly instead.

use crate::store::Owner;

/// The owner recorded for a lease: explicit (`--id`, closed with `hcc
/// done`/`hcc fail`) or implicit (closed by the same consumer's next ask).
pub fn lease_owner(explicit: bool) -> Owner {
    if let Some(name) = std::env::var("HCC_CONSUMER").ok().filter(|n| !n.is_empty()) {
        let token = format!("N{name};");
        return if explicit {
            Owner::Explicit(token)
        } else {
            Owner::Implicit {
                tokens: vec![token.clone(), token],
            }
        };
    }
    let parent = std::os::unix::process::parent_id();
    let parent_token = format!("P{};", with_start(parent));
    if explicit {
        return Owner::Explicit(parent_token);
    }
    let group = rustix::process::getpgrp().as_raw_pid() as u32;
    let mut tokens = vec![parent_token];
    // A group led by init or by nobody alive is no identity at all.
    if group > 1 && start_time(group).is_some() {
        tokens.push(format!("G{};", with_start(group)));
    }
    Owner::Implicit { tokens }
}

/// `PID@STARTTIME`, or `PID` alone where /proc is absent.
fn with_start(pid: u32) -> String {
    match start_time(pid) {
        Some(start) => format!("{pid}@{start}"),
        None => pid.to_string(),
    }
}

/// Field 22 of /proc/PID/stat: start time in clock ticks since boot.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_stable_and_names_the_parent() {
        let Owner::Implicit { tokens } = lease_owner(false) else {
            panic!("implicit expected")
        };
        let Owner::Implicit { tokens: again } = lease_owner(false) else {
            panic!("implicit expected")
        };
        assert_eq!(tokens, again);
        let parent = std::os::unix::process::parent_id();
        assert!(tokens[0].starts_with(&format!("P{parent}@")), "{tokens:?}");
        assert!(tokens.iter().all(|t| t.ends_with(';')));
    }
}
