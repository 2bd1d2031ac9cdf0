//! `hcc sync`: bring the `servers` table in step with Hetzner.
//!
//! - full (`hcc sync`): every server, in pages of 50 (up to `sync_parallel`
//!   asked for at once); rows of servers gone remotely are removed once
//!   every page was seen. 10,000 servers cost 200 requests, not 10,000.
//! - one (`hcc sync NAME`): one managed server; its row goes if the server
//!   is gone.
//! - incremental (`hcc sync --changes`): one `GET /servers/actions` (newest
//!   first) tells which servers changed since the last seen action id (kept
//!   in `sync_state`); only those are fetched again. Nothing changed: one
//!   request. When the gap is wider than a few pages, or nothing was seen
//!   before, it falls back to a full sync.
//!
//! The action feed is an optimisation: some emulators and filtering proxies
//! answer it with 404 or 405. Then a full sync lists without a bookmark and
//! an incremental one is a full one, noted once on stderr (and again only
//! after the feed came back and went again).
//!
//! Background priority: sync never spends the budget's reserve.

use std::collections::{BTreeSet, HashSet};

use super::{Cloud, Fresh, Refetched, refetch, row};
use crate::error::Error;
use crate::hetzner::{self, wire};
use crate::store::Refreshed;

/// The newest server action id seen by the last sync.
const LAST_ACTION: &str = "last_action_id";
/// Pages of actions an incremental sync reads before a full sync is cheaper.
const MAX_ACTION_PAGES: u32 = 3;
/// `missing` while the API answers the action feed with 404 or 405.
const ACTION_FEED: &str = "action_feed";

/// Which sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode<'a> {
    Full,
    Changes,
    One(&'a str),
}

/// What a sync did.
pub struct Summary {
    pub text: String,
    pub mode: &'static str,
    pub servers: usize,
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
}

/// Told how a full listing goes. The sync's caller says how to show it
/// (a terminal line for `hcc sync`, nothing for a queued `sync`).
pub trait Progress {
    /// After each page: servers seen so far, and the total when the API
    /// said it.
    fn page(&mut self, seen: usize, total: Option<u64>);
    /// The sync ended well.
    fn finish(&mut self) {}
}

/// Shows nothing.
pub struct Silent;

impl Progress for Silent {
    fn page(&mut self, _: usize, _: Option<u64>) {}
}

impl Progress for crate::output::TerminalProgress {
    fn page(&mut self, seen: usize, total: Option<u64>) {
        crate::output::TerminalProgress::page(self, seen, total);
    }

    fn finish(&mut self) {
        crate::output::TerminalProgress::finish(self);
    }
}

/// Runs a sync and records when it ran and what it cost (`sync_state`:
/// `last_sync_at`, `last_sync_mode`, `last_sync_requests`, for `hcc status`).
pub fn run(cloud: &mut Cloud, mode: Mode, progress: &mut dyn Progress) -> Result<Summary, Error> {
    run_beside(cloud, mode, &Fresh::default(), progress)
}

/// As [`run`], beside another thread that stores servers it acted on: a
/// full listing leaves the rows `fresh` names as that thread wrote them if
/// it wrote them after the page was requested.
pub fn run_beside(
    cloud: &mut Cloud,
    mode: Mode,
    fresh: &Fresh,
    progress: &mut dyn Progress,
) -> Result<Summary, Error> {
    let before = cloud.client.requests_sent();
    let summary = match mode {
        Mode::One(name) => sync_one(cloud, name)?,
        Mode::Changes => sync_changes(cloud, fresh, progress)?,
        Mode::Full => sync_all(cloud, fresh, progress)?,
    };
    let requests = cloud.client.requests_sent() - before;
    // A server gone at Hetzner, or whose managed label went, takes its
    // consoles with it.
    cloud.end_departed_consoles()?;
    cloud
        .store
        .set_sync_value("last_sync_at", &crate::store::now().to_string())?;
    cloud.store.set_sync_value("last_sync_mode", summary.mode)?;
    cloud
        .store
        .set_sync_value("last_sync_requests", &requests.to_string())?;
    progress.finish();
    Ok(summary)
}

fn sync_one(cloud: &mut Cloud, name: &str) -> Result<Summary, Error> {
    crate::verb::check_server_name(name).map_err(Error::Input)?;
    match cloud.client.server_by_name(name) {
        Ok((server, raw)) => {
            cloud.guard(&server)?;
            cloud.store.refresh_server(&row(&server, &raw))?;
            Ok(Summary {
                text: format!("synced {name}: {}", server.status),
                mode: "one",
                servers: 1,
                added: 0,
                updated: 1,
                removed: 0,
            })
        }
        Err(err) if err.code() == Some("not_found") => {
            if cloud.store.remove_server_name(name)? {
                Ok(Summary {
                    text: format!("{name} is gone at Hetzner; its row was removed"),
                    mode: "one",
                    servers: 0,
                    added: 0,
                    updated: 0,
                    removed: 1,
                })
            } else {
                Err(err.into())
            }
        }
        Err(err) => Err(err.into()),
    }
}

/// The newest server actions (page `page`, 50 per page) and whether more
/// pages follow; `None` when the API has no action feed.
fn recent_actions(cloud: &Cloud, page: u32) -> Result<Option<(Vec<wire::Action>, bool)>, Error> {
    let answer = cloud.client.recent_server_actions(page);
    let feed = cloud.store.sync_value(ACTION_FEED)?;
    match answer {
        Ok(found) => {
            if feed.as_deref() == Some("missing") {
                cloud.store.set_sync_value(ACTION_FEED, "present")?;
            }
            Ok(Some(found))
        }
        Err(hetzner::Error::Api { status, .. }) if status == 404 || status == 405 => {
            if feed.as_deref() != Some("missing") {
                cloud.client.notice(&format!(
                    "the API has no action feed (GET /servers/actions answered {status}); \
                     `sync --changes` lists every server instead"
                ));
                cloud.store.set_sync_value(ACTION_FEED, "missing")?;
            }
            Ok(None)
        }
        Err(err) => Err(err.into()),
    }
}

fn sync_all(
    cloud: &mut Cloud,
    fresh: &Fresh,
    progress: &mut dyn Progress,
) -> Result<Summary, Error> {
    // The bookmark first, so nothing that happens during the listing is
    // missed by the next incremental sync.
    let newest = recent_actions(cloud, 1)?.map(|(actions, _)| actions);
    list_all(cloud, fresh, newest, progress)
}

/// The full listing; `newest` is the first page of the action feed, `None`
/// without one.
fn list_all(
    cloud: &mut Cloud,
    fresh: &Fresh,
    newest: Option<Vec<wire::Action>>,
    progress: &mut dyn Progress,
) -> Result<Summary, Error> {
    let listed_from = crate::store::now();
    // Page by page: each page is stored (its own short transaction) and
    // dropped, so 10,000 servers take no more memory than 50.
    let mut seen = HashSet::new();
    let mut outcome = Refreshed::default();
    let store = &mut cloud.store;
    // Up to `sync_parallel` pages are asked for at once; each is stored as
    // it arrives, in whatever order. A row another thread wrote after its
    // page was asked for is left as that thread wrote it.
    let parallel = cloud.settings.sync_parallel;
    cloud.client.each_server_page(parallel, |page| {
        seen.extend(page.servers.iter().map(|(s, _)| s.id));
        let rows: Vec<_> = page
            .servers
            .iter()
            .filter(|(s, _)| !fresh.since(s.id, page.asked))
            .map(|(s, raw)| row(s, raw))
            .collect();
        let stored = store.refresh_servers(&rows)?;
        outcome.added += stored.added;
        outcome.updated += stored.updated;
        progress.page(seen.len(), page.total);
        Ok::<(), Error>(())
    })?;
    outcome.removed = cloud.store.remove_servers_except(&seen, listed_from)?;
    match newest.as_deref() {
        // No feed: no bookmark to keep.
        None => {}
        Some([]) => cloud.store.set_sync_value(LAST_ACTION, "0")?,
        Some(newest @ [first, ..]) => {
            let running = newest
                .iter()
                .filter(|a| a.status == "running")
                .map(|a| a.id)
                .min();
            let mark = running.map(|id| id - 1).unwrap_or(first.id);
            cloud.store.set_sync_value(LAST_ACTION, &mark.to_string())?;
        }
    }
    Ok(Summary {
        text: format!(
            "synced {} servers ({} added, {} updated, {} removed)",
            seen.len(),
            outcome.added,
            outcome.updated,
            outcome.removed
        ),
        mode: "full",
        servers: seen.len(),
        added: outcome.added,
        updated: outcome.updated,
        removed: outcome.removed,
    })
}

fn sync_changes(
    cloud: &mut Cloud,
    fresh: &Fresh,
    progress: &mut dyn Progress,
) -> Result<Summary, Error> {
    let Some(last) = cloud
        .store
        .sync_value(LAST_ACTION)?
        .and_then(|v| v.parse::<i64>().ok())
    else {
        return sync_all(cloud, fresh, progress);
    };
    let mut touched = BTreeSet::new();
    let mut newest = None;
    let mut oldest_running = None;
    let mut bridged = false;
    for page in 1..=MAX_ACTION_PAGES {
        let Some((actions, more)) = recent_actions(cloud, page)? else {
            let mut summary = list_all(cloud, fresh, None, progress)?;
            summary.text.push_str(" (no action feed)");
            return Ok(summary);
        };
        if newest.is_none() {
            newest = actions.first().map(|a| a.id);
        }
        for action in &actions {
            if action.id <= last {
                bridged = true;
                break;
            }
            if action.status == "running" {
                oldest_running = Some(action.id);
            }
            for resource in action.resources.iter().filter(|r| r.kind == "server") {
                touched.insert(resource.id);
            }
        }
        if !more {
            // Everything Hetzner still keeps was seen; if the bookmark is
            // older than all of it (old actions are purged), the gap is open.
            bridged = bridged || last == 0;
            break;
        }
        if bridged {
            break;
        }
    }
    if !bridged {
        let mut summary = sync_all(cloud, fresh, progress)?;
        summary
            .text
            .push_str(" (too many changes for an incremental sync)");
        return Ok(summary);
    }
    let (mut updated, mut removed) = (0, 0);
    for id in &touched {
        match refetch(cloud, *id)? {
            Refetched::Stored(_) => updated += 1,
            Refetched::Gone { removed: gone } => removed += usize::from(gone),
        }
    }
    // A running action will change its server again: see it next time.
    let mark = match (oldest_running, newest) {
        (Some(running), _) => running - 1,
        (None, Some(newest)) => newest,
        (None, None) => last,
    };
    cloud.store.set_sync_value(LAST_ACTION, &mark.to_string())?;
    Ok(Summary {
        text: format!(
            "synced changes: {} servers touched ({updated} updated, {removed} removed)",
            touched.len()
        ),
        mode: "changes",
        servers: touched.len(),
        added: 0,
        updated,
        removed,
    })
}
