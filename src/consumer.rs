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
//!
//! The same identity ties `hcc done ID` / `hcc fail ID` to the lease: a
//! consumer whose lease expired and went to another cannot close the
//! other's work by naming the id.

use crate::store::Owner;

/// The owner recorded for a lease: explicit (`--id`, closed with `hcc
/// done`/`hcc fail`) or implicit (closed by the same consumer's next ask).
/// `hcc done`/`hcc fail` ask as an explicit owner too: a bare id closes
/// only a lease that shares an identity with them.
pub fn lease_owner(explicit: bool) -> Owner {
    let tokens = identity();
    if explicit {
        Owner::Explicit(tokens.concat())
    } else if tokens.len() == 1 {
        // The store reads two tokens; a name stands for both.
        Owner::Implicit {
            tokens: vec![tokens[0].clone(), tokens[0].clone()],
        }
    } else {
        Owner::Implicit { tokens }
    }
}

/// The asking consumer's identities, each `;`-terminated: its name from
/// `HCC_CONSUMER`, else its parent and (when it names a live process) its
/// process group.
fn identity() -> Vec<String> {
    if let Some(name) = std::env::var("HCC_CONSUMER").ok().filter(|n| !n.is_empty()) {
        return vec![format!("N{name};")];
    }
    let parent = std::os::unix::process::parent_id();
    let mut tokens = vec![format!("P{};", with_start(parent))];
    let group = rustix::process::getpgrp().as_raw_pid() as u32;
    // A group led by init is no identity at all. A group whose leader
    // has exited (a loop started in the background by a script that has
    // ended) still is: its number is not reused while the loop lives.
    if group > 1 {
        tokens.push(format!("G{};", with_start(group)));
    }
    tokens
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
