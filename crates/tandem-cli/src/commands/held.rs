//! `tandem held`, `tandem release`, `tandem restore --held`: the deletions the delete
//! brake of a mount holds: made through the mount and held back from its targets, or made
//! in a target and held back from the source.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::json;
use tandem_core::Side;
use tandem_state::{Held, HeldAction, Store};

use crate::args::{HeldArgs, SettleArgs};
use crate::output::sanitize;
use crate::task::Task;

/// How long `release` and `restore` wait for a mount to carry them out.
const MOUNT_WAIT: Duration = Duration::from_secs(60);
/// Paths shown per burst without `--all`.
const SHOWN: usize = 10;

fn held_of(task: &Task) -> Result<Vec<Held>> {
    Ok(match Store::open_existing(&task.state_dir, &task.pair)? {
        Some(store) => store.held(Some(&task.tgt.to_string_lossy()))?,
        None => Vec::new(),
    })
}

pub fn list(a: HeldArgs) -> Result<u8> {
    let (tasks, _) = crate::task::pairs_of(&a.pair)?;
    let tz = TimeZone::system();
    let mut rows = Vec::new();
    for task in &tasks {
        rows.extend(held_of(task)?);
    }
    if a.json {
        let list: Vec<_> = rows
            .iter()
            .map(|h| {
                let (pid, uid) = who_ids(h);
                json!({
                    "id": h.id, "batch": h.batch, "target": h.target, "side": h.side.name(),
                    "path": h.path.to_string(),
                    "op": h.op, "time": when(h.time_ns, &tz), "pid": pid, "uid": uid,
                    "program": h.program, "by": by_text(h), "asked": h.action,
                })
            })
            .collect();
        outln!("{}", json!({ "held": list }));
    } else if rows.is_empty() {
        outln!("no deletions held");
    } else {
        let mut batches: Vec<i64> = rows.iter().map(|h| h.batch).collect();
        batches.dedup();
        for b in batches {
            let of: Vec<&Held> = rows.iter().filter(|h| h.batch == b).collect();
            print_batch(b, &of, a.all, &tz);
        }
    }
    Ok(if rows.is_empty() {
        crate::EXIT_OK
    } else {
        crate::EXIT_ISSUES
    })
}

fn print_batch(batch: i64, of: &[&Held], all: bool, tz: &TimeZone) {
    let first = of[0];
    outln!(
        "held {batch}: {}",
        burst_text(
            first,
            of.len(),
            &when(first.time_ns, tz).unwrap_or_default()
        )
    );
    let shown = if all { of.len() } else { SHOWN };
    for h in of.iter().take(shown) {
        outln!("    {} {}", h.op, h.path);
    }
    if of.len() > shown {
        outln!("    ... and {} more (--all lists them)", of.len() - shown);
    }
}

/// A burst in words: "12 deletions by rm (pid 4242, uid 1000) since SINCE, not replayed to
/// TGT", or for deletions made in the target, "12 deletions in the target TGT since SINCE,
/// by a program tandem cannot name (...), not applied to the source".
pub(crate) fn burst_text(first: &Held, count: usize, since: &str) -> String {
    match first.side {
        Side::Source => format!(
            "{count} deletions by {} since {since}, not replayed to {}",
            by_text(first),
            sanitize(&first.target)
        ),
        Side::Target => format!(
            "{count} deletions in the target {} since {since}, by {}, not applied to the source",
            sanitize(&first.target),
            by_text(first)
        ),
    }
}

/// Who made a held deletion: the program, its pid and uid, as the mount recorded them; for
/// one made in a target, that tandem cannot tell (`tandem_engine::UNNAMED`).
pub(crate) fn by_text(h: &Held) -> String {
    match h.side {
        Side::Source => format!(
            "{} (pid {}, uid {})",
            sanitize(h.program.as_deref().unwrap_or("?")),
            h.pid,
            h.uid
        ),
        Side::Target => tandem_engine::UNNAMED.to_string(),
    }
}

/// The pid and uid of a held deletion for `--json`: none for one made in a target (the
/// watcher cannot know them), rather than a made-up 0.
pub(crate) fn who_ids(h: &Held) -> (Option<u32>, Option<u32>) {
    match h.side {
        Side::Source => (Some(h.pid), Some(h.uid)),
        Side::Target => (None, None),
    }
}

pub(crate) fn when(ns: i64, tz: &TimeZone) -> Option<String> {
    Timestamp::from_nanosecond(i128::from(ns))
        .ok()
        .map(|t| tandem_task::rfc3339(t, tz))
}

/// Each burst held, in a few words, for `tandem status --json`: its number, how many, by
/// whom, since when.
pub(crate) fn bursts_json(rows: &[Held]) -> Vec<serde_json::Value> {
    let tz = TimeZone::system();
    let mut batches: Vec<i64> = rows.iter().map(|h| h.batch).collect();
    batches.dedup();
    batches
        .into_iter()
        .filter_map(|b| {
            let of: Vec<&Held> = rows.iter().filter(|h| h.batch == b).collect();
            let first = of.first()?;
            let (pid, uid) = who_ids(first);
            Some(json!({
                "batch": b, "count": of.len(), "target": first.target, "side": first.side.name(),
                "program": first.program, "pid": pid, "uid": uid, "by": by_text(first),
                "since": when(first.time_ns, &tz),
            }))
        })
        .collect()
}

/// `release` or `restore --held`: asked of the mount serving the source (its replicators
/// carry it out), else carried out here.
pub fn settle(a: SettleArgs, action: HeldAction) -> Result<u8> {
    let (tasks, mount) = crate::task::pairs_of(&a.pair)?;
    let mut total = 0;
    // Where the deletions concerned were made, for the words of the answer.
    let mut sides: Vec<Side> = Vec::new();
    for task in &tasks {
        sides.extend(
            held_of(task)?
                .iter()
                .filter(|h| a.batch.is_none_or(|b| h.batch == b))
                .map(|h| h.side),
        );
        let n = match &mount {
            Some(m) if m.targets.contains(&task.tgt) => ask_mount(task, a.batch, action)?,
            _ => {
                let mut spec = tandem_engine::SyncSpec::new(
                    task.src.clone(),
                    task.tgt.clone(),
                    task.state_dir.clone(),
                );
                // Asked for by name: a release of many deletions is what is meant.
                spec.max_delete_percent = 100;
                spec.threads = super::sync::default_threads();
                match tandem_engine::settle_held(&spec, a.batch, action) {
                    // A mount serves the pair (one this command's registry does not list):
                    // its replicator carries it out.
                    Err(tandem_engine::EngineError::State(tandem_state::StateError::Locked {
                        ..
                    })) => ask_mount(task, a.batch, action)?,
                    r => r?,
                }
            }
        };
        total += n;
    }
    if total == 0 {
        bail!(
            "no held deletions{}",
            a.batch
                .map(|b| format!(" in burst {b}"))
                .unwrap_or_default()
        );
    }
    let in_target = sides.iter().filter(|s| **s == Side::Target).count();
    let verb = |side| match (action, side) {
        (HeldAction::Release, Side::Source) => "released (replayed to the target)",
        (HeldAction::Release, Side::Target) => "released (applied to the source)",
        (HeldAction::Restore, Side::Source) => "restored into the source",
        (HeldAction::Restore, Side::Target) => "restored into the target",
    };
    match in_target {
        0 => outln!("{total} held deletions {}", verb(Side::Source)),
        n if n == total => outln!("{total} held deletions {}", verb(Side::Target)),
        n => {
            outln!(
                "{} held deletions {}",
                total.saturating_sub(n),
                verb(Side::Source)
            );
            outln!("{n} held deletions {}", verb(Side::Target));
        }
    }
    Ok(crate::EXIT_OK)
}

/// Asks the mount, then waits until its replicator has taken the request.
fn ask_mount(task: &Task, batch: Option<i64>, action: HeldAction) -> Result<usize> {
    let Some(store) = Store::open_existing(&task.state_dir, &task.pair)? else {
        return Ok(0);
    };
    let n = store.ask_held(batch, action)?;
    let target = task.tgt.to_string_lossy();
    let start = Instant::now();
    while n > 0
        && store
            .held(Some(&target))?
            .iter()
            .any(|h| h.action.is_some())
    {
        if start.elapsed() > MOUNT_WAIT {
            bail!("the mount has not carried it out after {MOUNT_WAIT:?}; see its log");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(n)
}
