//! Who is asking for work: the identity under which `pull` and `next`
//! record a lease when the caller gives no explicit acknowledgement.
//!
//! The original tool's loops (`while cmd="$(server.py next)"; do ...; done`)
//! never acknowledge a command: asking for the next one means the last one
//! is finished. Each `hcc` run in such a loop is a child of the same shell,
//! so the parent process (pid plus its start time, which tells a reused pid
//! apart) identifies the loop.

/// The `lease_owner` recorded for a lease: `ack:` marks leases that the
/// owner's next request acknowledges, `id:` leases closed explicitly with
/// `hcc done` or `hcc fail`.
pub fn lease_owner(explicit: bool) -> String {
    let kind = if explicit { "id" } else { "ack" };
    format!("{kind}:{}", parent_identity())
}

/// `PID@STARTTIME` of the parent process; `PID` alone where /proc is absent.
pub fn parent_identity() -> String {
    let ppid = std::os::unix::process::parent_id();
    match start_time(ppid) {
        Some(start) => format!("{ppid}@{start}"),
        None => ppid.to_string(),
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
        let a = parent_identity();
        assert_eq!(a, parent_identity());
        assert!(a.starts_with(&std::os::unix::process::parent_id().to_string()));
        assert!(a.contains('@'), "{a}");
    }
}
