//! The metrics that live in the database, read at each scrape of
//! `/metrics`: whichever process did the work (a separate worker, cron's
//! sync, a panel's INSERT), the numbers are the table's.

use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::{OptionalExtension, Transaction};

use super::command_state::{DONE, FAILED, QUEUED, RUNNING};
use super::{CommandState, Error, Store, sqlite_err};
use crate::metrics::{Histograms, LINK_STATES, Snapshot};
use crate::verb::Verb;

/// The duration histograms of the commands with ids up to `upto`, all of
/// them done or failed, kept between scrapes. hcc never changes or
/// deletes a finished command, so each scrape reads only the commands
/// since the oldest unfinished one, not the whole table. If the table says
/// otherwise (a command up to `upto` unfinished again, another file), the
/// histograms are counted afresh.
struct Settled {
    path: PathBuf,
    upto: i64,
    durations: Histograms,
    runs: Histograms,
}

static SETTLED: Mutex<Option<Settled>> = Mutex::new(None);

impl Store {
    /// Every database metric at `now` (Unix seconds), from one read
    /// transaction so that they agree with each other.
    pub fn metrics_snapshot(&self, now: f64) -> Result<Snapshot, Error> {
        let err = sqlite_err(&self.path, "read the metrics");
        let tx = self.conn.unchecked_transaction().map_err(&err)?;
        let mut snapshot = Snapshot::default();

        let mut stmt = tx
            .prepare_cached("SELECT state, count(*) FROM commands GROUP BY state")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(&err)?;
        let mut counts = [0; CommandState::ALL.len()];
        for row in rows {
            let (state, n) = row.map_err(&err)?;
            if let Some(i) = CommandState::ALL.iter().position(|s| s.as_str() == state) {
                counts[i] = n.max(0) as u64;
            }
        }
        snapshot.commands = CommandState::ALL
            .iter()
            .map(|s| s.as_str())
            .zip(counts)
            .collect();
        drop(stmt);
        let oldest: Option<i64> = tx
            .query_row(
                &format!("SELECT min(created_at) FROM commands WHERE state = {QUEUED}"),
                [],
                |r| r.get(0),
            )
            .map_err(&err)?;
        snapshot.oldest_queued_secs = oldest.map_or(0.0, |at| (now - at as f64).max(0.0));

        // Every command up to `upto` is finished.
        let upto: i64 = tx
            .query_row(
                &format!(
                    "SELECT coalesce(
                     (SELECT min(id) FROM commands WHERE state IN ({QUEUED}, {RUNNING})) - 1,
                     (SELECT max(id) FROM commands), 0)"
                ),
                [],
                |r| r.get(0),
            )
            .map_err(&err)?;
        let mut settled = SETTLED.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = settled
            .as_ref()
            .is_none_or(|s| s.path != self.path || s.upto > upto);
        if fresh {
            *settled = Some(Settled {
                path: self.path.clone(),
                upto: 0,
                durations: Histograms::new(),
                runs: Histograms::new(),
            });
        }
        if let Some(settled) = settled.as_mut()
            && settled.upto < upto
        {
            let (from, to) = (settled.upto, upto);
            finished(&tx, (from, to), &mut settled.durations, &mut settled.runs).map_err(&err)?;
            settled.upto = upto;
        }
        if let Some(settled) = settled.as_ref() {
            snapshot.durations = settled.durations.clone();
            snapshot.runs = settled.runs.clone();
        }
        drop(settled);
        finished(
            &tx,
            (upto, i64::MAX),
            &mut snapshot.durations,
            &mut snapshot.runs,
        )
        .map_err(&err)?;

        snapshot.rate = self.rate_state()?.map(|state| {
            (
                state.limit,
                state.estimate(now).clamp(0.0, state.limit.max(0.0)),
            )
        });

        // AUTOINCREMENT's counters: they survive the pruning of old rows.
        let seq = |table: &str| -> Result<u64, Error> {
            let n: Option<i64> = tx
                .query_row(
                    "SELECT seq FROM sqlite_sequence WHERE name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .optional()
                .map_err(&err)?;
            Ok(n.unwrap_or(0).max(0) as u64)
        };
        snapshot.links_issued = seq("console_links")?;
        // Every console session begins with a link opened.
        snapshot.links_opened = seq("console_sessions")?;

        let mut stmt = tx
            .prepare_cached(
                "SELECT CASE WHEN opened_at IS NOT NULL THEN 'opened'
                             WHEN expires_at > ?1 THEN 'pending'
                             ELSE 'expired' END, count(*)
                 FROM console_links GROUP BY 1",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map([now as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(&err)?;
        for row in rows {
            let (state, n) = row.map_err(&err)?;
            if let Some(i) = LINK_STATES.iter().position(|s| *s == state) {
                snapshot.links[i] = n.max(0) as u64;
            }
        }
        Ok(snapshot)
    }
}

/// Adds the finished commands with ids in `(from, to]` to the histograms.
fn finished(
    tx: &Transaction,
    (from, to): (i64, i64),
    durations: &mut Histograms,
    runs: &mut Histograms,
) -> rusqlite::Result<()> {
    // Grouped by duration: a few hundred rows however many commands.
    // `+state`: walk the id range, not the index of every done command.
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT cmd, state, finished_at - created_at, finished_at - started_at, count(*)
         FROM commands
         WHERE id > ?1 AND id <= ?2 AND +state IN ({DONE}, {FAILED}) AND finished_at IS NOT NULL
         GROUP BY 1, 2, 3, 4"
    ))?;
    let rows = stmt.query_map([from, to], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<i64>>(2)?,
            r.get::<_, Option<i64>>(3)?,
            r.get::<_, i64>(4)?,
        ))
    })?;
    for row in rows {
        let (cmd, state, total, run, n) = row?;
        let key = (verb_label(&cmd), outcome_label(&state));
        let n = n.max(0) as u64;
        if let Some(secs) = total {
            observe(durations, key, secs, n);
        }
        if let Some(secs) = run {
            observe(runs, key, secs, n);
        }
    }
    Ok(())
}

fn observe(into: &mut Histograms, key: (&'static str, &'static str), secs: i64, n: u64) {
    into.entry(key).or_default().observe(secs as f64, n);
}

/// The verb's canonical name; anything else (a panel may insert any
/// `cmd`) is `other`, so that the labels stay few.
fn verb_label(cmd: &str) -> &'static str {
    Verb::from_word(cmd).map_or("other", Verb::name)
}

fn outcome_label(state: &str) -> &'static str {
    if CommandState::parse(state) == Some(CommandState::Done) {
        CommandState::Done.as_str()
    } else {
        CommandState::Failed.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counts by state, checking the states are all there in order.
    fn counts(snapshot: &Snapshot) -> Vec<u64> {
        let states: Vec<&str> = snapshot.commands.iter().map(|(s, _)| *s).collect();
        assert_eq!(states, ["queued", "running", "done", "failed"]);
        snapshot.commands.iter().map(|(_, n)| *n).collect()
    }

    #[test]
    fn a_snapshot_counts_commands_links_and_the_budget() {
        let (_dir, store) = Store::scratch();
        let empty = store.metrics_snapshot(1000.0).unwrap();
        assert_eq!(counts(&empty), [0, 0, 0, 0]);
        assert_eq!(empty.rate, None);
        assert_eq!((empty.links_issued, empty.links_opened), (0, 0));
        store
            .conn
            .execute_batch(
                "INSERT INTO commands (cmd, arg, state, created_at, started_at, finished_at) VALUES
                   ('start', 'a', 'done', 100, 101, 103),
                   ('off', 'a', 'failed', 100, 100, 100),
                   ('bogus', '', 'failed', 100, NULL, 100),
                   ('stop', 'a', 'queued', 900, NULL, NULL),
                   ('stop', 'b', 'running', 950, 950, NULL);
                 INSERT INTO rate_budget VALUES (1, 3600, 100, 5000, 1000);
                 INSERT INTO console_links
                   (token_hash, server, server_id, created_by, created_at, expires_at, opened_at)
                 VALUES ('a', 'w', 1, 'k', 900, 1300, NULL),
                        ('b', 'w', 1, 'k', 900, 990, NULL),
                        ('c', 'w', 1, 'k', 900, 1300, 950);
                 DELETE FROM console_links WHERE token_hash = 'b';",
            )
            .unwrap();
        let s = store.metrics_snapshot(1000.0).unwrap();
        assert_eq!(counts(&s), [1, 1, 1, 2]);
        assert_eq!(s.oldest_queued_secs, 100.0);
        let done = &s.durations[&("start", "done")];
        assert_eq!((done.count, done.sum), (1, 3.0));
        assert_eq!(s.runs[&("start", "done")].sum, 2.0);
        assert_eq!(s.durations[&("force", "failed")].count, 1, "off is force");
        assert_eq!(s.durations[&("other", "failed")].count, 1);
        assert!(!s.runs.contains_key(&("other", "failed")), "never started");
        assert_eq!(s.rate, Some((3600.0, 100.0)));
        assert_eq!(s.links_issued, 3, "a deleted link stays counted");
        assert_eq!(s.links, [1, 1, 0]);
        let later = store.metrics_snapshot(2000.0).unwrap();
        assert_eq!(later.links, [0, 1, 1]);
        assert_eq!(later.durations, s.durations);

        // Commands finishing after the kept histograms: counted once each,
        // as a count from scratch has them.
        store
            .conn
            .execute_batch(
                "UPDATE commands SET state = 'done', finished_at = 1010 WHERE id IN (4, 5);
                 INSERT INTO commands (cmd, arg, state, created_at, started_at, finished_at)
                 VALUES ('stop', 'b', 'done', 1000, 1000, 1030);",
            )
            .unwrap();
        let kept = store.metrics_snapshot(2000.0).unwrap();
        assert_eq!(kept.durations[&("stop", "done")].count, 3);
        assert_eq!(kept.durations[&("stop", "done")].sum, 110.0 + 60.0 + 30.0);
        *SETTLED.lock().unwrap() = None;
        let afresh = store.metrics_snapshot(2000.0).unwrap();
        assert_eq!(kept.durations, afresh.durations);
        assert_eq!(kept.runs, afresh.runs);
        // A finished command made unfinished again by hand: counted afresh.
        store
            .conn
            .execute("UPDATE commands SET state = 'queued' WHERE id = 1", [])
            .unwrap();
        let redone = store.metrics_snapshot(2000.0).unwrap();
        assert!(!redone.durations.contains_key(&("start", "done")));
        assert_eq!(counts(&redone), [1, 0, 3, 2]);
    }
}
