//! `tandem status SRC [TGT]`: the last sync, open conflicts and, while a mount serves the
//! source, where each target stands (backlog, paused, unwatched, failures) as the mount
//! publishes it. `tandem status NAME`: a task (`tasks`), followed as it runs with
//! `--follow` (`follow`). With no argument, every task, then every other pair it knows.

mod follow;
mod tasks;

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde_json::{json, Value};
use tandem_state::{Pair, RunProblem, Store};

use crate::args::{SourceArgs, StatusArgs};
use crate::output::sanitize;
use crate::task::Task;
use tandem_daemon::mounted::MountRecord;
use tandem_daemon::mounted::STATUS_FILE;

pub fn run(config: &Path, a: StatusArgs) -> Result<u8> {
    let Some(src) = a.src else {
        return overview(config, a.json);
    };
    let named = match (&a.tgt, &a.state_dir) {
        (None, None) => tasks::named(config, &src)?,
        _ => None,
    };
    match named {
        Some(task) if a.follow => return follow::run(&task, a.verbose, a.json),
        Some(task) => return tasks::one(&task, a.json),
        None if a.follow => bail!(
            "--follow follows a task's run: {} is not a task's name (see `tandem task list`)",
            src.display()
        ),
        None => {}
    }
    let pair = SourceArgs {
        src,
        tgt: a.tgt,
        state_dir: a.state_dir,
    };
    let (tasks, mount) = crate::task::pairs_of(&pair)?;
    let live = mount.as_ref().map(Live::read);
    let mut code = crate::EXIT_OK;
    let mut objects = Vec::new();
    for (i, task) in tasks.iter().enumerate() {
        if i > 0 && !a.json {
            outln!();
        }
        let (c, obj) = show(task, mount.as_ref(), live.as_ref(), a.json)?;
        code = code.max(c);
        objects.push(obj);
    }
    if a.json {
        if objects.len() == 1 {
            outln!("{}", objects[0]);
        } else {
            outln!("{}", json!({ "targets": objects }));
        }
    }
    Ok(code)
}

/// What the running mount says about its targets, and its journal's head.
struct Live {
    status: Value,
    head: i64,
}

impl Live {
    fn read(m: &MountRecord) -> Live {
        let status = std::fs::read_to_string(m.state_dir.join(STATUS_FILE))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        let pair = Pair {
            src: m.src.to_string_lossy().into_owned(),
            tgt: m
                .targets
                .first()
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let head = Store::open_existing(&m.state_dir, &pair)
            .ok()
            .flatten()
            .and_then(|s| s.journal_head().ok())
            .unwrap_or(0);
        Live { status, head }
    }

    fn target(&self, tgt: &str) -> Option<&Value> {
        self.status["targets"]
            .as_array()?
            .iter()
            .find(|t| t["target"].as_str() == Some(tgt))
    }
}

fn show(
    task: &Task,
    mount: Option<&MountRecord>,
    live: Option<&Live>,
    as_json: bool,
) -> Result<(u8, Value)> {
    let store = Store::open_existing(&task.state_dir, &task.pair)?;
    let (last, entries, open) = match &store {
        Some(s) => (s.last_run()?, s.baseline_len()?, s.conflicts(false)?.len()),
        None => (None, 0, 0),
    };
    let problems = match (&store, &last) {
        (Some(s), Some(r)) => s.run_problems(r.id)?,
        _ => Vec::new(),
    };
    let tgt_key = task.tgt.to_string_lossy().into_owned();
    let mount = mount.filter(|m| m.targets.contains(&task.tgt));
    let here = live.and_then(|l| l.target(&tgt_key).map(|t| (l, t)));
    let backlog = match here {
        Some((l, t)) => l.head - t["cursor"].as_i64().unwrap_or(0),
        None => 0,
    };
    let paused = here.and_then(|(_, t)| t["paused"].as_str().map(String::from));
    let unwatched = here.and_then(|(_, t)| t["unwatched"].as_str().map(String::from));
    let disconnected = here.and_then(|(_, t)| t["disconnected_since"].as_i64());
    let pending = here.map_or(0, |(_, t)| t["pending"].as_u64().unwrap_or(0));
    let failed: Vec<Value> = here
        .and_then(|(_, t)| t["failed"].as_array().cloned())
        .unwrap_or_default();
    let (trash, trash_text) = trash_usage(task, store.as_ref())?;
    // What the mount kept in the source's history (`tandem history`), pruned with the trash.
    let history = match &store {
        Some(s) => s.history_usage()?,
        None => tandem_state::HistoryUsage::default(),
    };
    let held = match &store {
        Some(s) => s.held(Some(&tgt_key))?,
        None => Vec::new(),
    };
    let held_text = held_summary(&held);
    let obj = json!({
        "source": task.src.to_string_lossy(), "target": tgt_key, "trash": trash,
        "history": { "versions": history.versions, "bytes": history.bytes },
        "held_deletions": held.len(),
        "held": super::held::bursts_json(&held),
        "state_dir": task.state_dir.to_string_lossy(), "synced_entries": entries,
        "open_conflicts": open,
        "mounted": mount.map(|m| json!({
            "pid": m.pid, "mountpoint": m.mountpoint.to_string_lossy(),
            "paused": paused, "unwatched": unwatched, "pending_paths": pending,
            "disconnected_since": disconnected,
            "failed": failed,
        })),
        "journal_backlog": backlog,
        "last_run": last.as_ref().map(|r| json!({
            "started_at": r.started_at, "finished_at": r.finished_at,
            "exit_code": r.exit_code, "summary": r.summary,
            "problems": problems.iter().map(|p| json!({
                "path": p.path.escaped(), "what": p.what, "reason": p.reason,
            })).collect::<Vec<_>>(),
        })),
    });
    if !as_json {
        outln!("source:    {}", sanitize(&task.src.to_string_lossy()));
        outln!("target:    {}", sanitize(&tgt_key));
        outln!("state:     {}", sanitize(&task.state_dir.to_string_lossy()));
        match &last {
            None => outln!("last sync: never"),
            Some(r) => {
                let how = match (r.finished_at, r.exit_code) {
                    (Some(_), Some(code)) => format!("finished with exit code {code}"),
                    _ => "did not finish (interrupted?)".to_string(),
                };
                outln!("last sync: started {}, {how}", local_time(r.started_at));
                outln!("           {}", sanitize(&r.summary));
                print_problems(&problems);
            }
        }
        match mount {
            Some(m) => {
                outln!(
                    "mounted:   yes, pid {} at {}; {backlog} journal records and {pending} paths not yet replicated",
                    m.pid,
                    sanitize(&m.mountpoint.to_string_lossy())
                );
                match (&paused, disconnected) {
                    (Some(p), Some(since)) => outln!(
                        "connection: disconnected since {}, retrying ({}); the journal keeps what is to be sent",
                        clock_time(since),
                        sanitize(p.strip_prefix("disconnected").unwrap_or(p).trim_start_matches([':', ';', ' ']))
                    ),
                    (Some(p), None) => {
                        outln!("paused:    {} (retrying with backoff)", sanitize(p))
                    }
                    (None, _) => {}
                }
                if let Some(u) = &unwatched {
                    outln!(
                        "watching:  no: {} (target changes wait for the periodic rescan)",
                        sanitize(u)
                    );
                }
                for f in &failed {
                    outln!(
                        "failed:    {}: {}",
                        sanitize(f["path"].as_str().unwrap_or("?")),
                        sanitize(f["error"].as_str().unwrap_or("?"))
                    );
                }
            }
            None => outln!("mounted:   no"),
        }
        outln!("synced:    {entries} entries");
        outln!("trash:     {trash_text}");
        outln!(
            "history:   {} versions, {} (source, kept by the mount)",
            history.versions,
            crate::output::human_bytes(history.bytes)
        );
        if let Some(t) = &held_text {
            outln!("held:      {t}");
        }
        outln!(
            "conflicts: {open} open{}",
            if open > 0 {
                " (see `tandem conflicts`)"
            } else {
                ""
            }
        );
    }
    let code = if open > 0 || paused.is_some() || !failed.is_empty() || !held.is_empty() {
        crate::EXIT_ISSUES
    } else {
        crate::EXIT_OK
    };
    Ok((code, obj))
}

/// `tandem status` with no argument: every task, then every other pair.
/// What each side's trash holds (`.tandem/trash`, pruned to the `--history-*` limits), for
/// JSON and as a line.
fn trash_usage(task: &Task, store: Option<&Store>) -> Result<(Value, String)> {
    let mut obj = serde_json::Map::new();
    let mut text = Vec::new();
    for (side, path) in [("source", &task.src), ("target", &task.tgt)] {
        // A remote target's trash is on its machine: as its last prune counted it.
        if crate::task::remote_target(path).is_some() {
            let far = match store {
                Some(s) => s.far_trash()?,
                None => None,
            };
            let (v, t) = far_trash_usage(side, far);
            obj.insert(side.into(), v);
            text.push(t);
            continue;
        }
        let usage = tandem_fs::Root::open(path)
            .map_err(anyhow::Error::from)
            .and_then(|root| Ok(tandem_fs::trash_usage(&root)?));
        match usage {
            Ok(u) => {
                obj.insert(
                    side.into(),
                    json!({ "versions": u.versions, "bytes": u.bytes }),
                );
                text.push(format!(
                    "{side} {} versions, {}",
                    u.versions,
                    crate::output::human_bytes(u.bytes)
                ));
            }
            Err(e) => {
                obj.insert(side.into(), json!({ "error": format!("{e:#}") }));
                text.push(format!(
                    "{side} unreadable ({})",
                    sanitize(&format!("{e:#}"))
                ));
            }
        }
    }
    Ok((Value::Object(obj), text.join("; ")))
}

/// A remote side's trash, as its last prune counted it (none yet: not known).
fn far_trash_usage(side: &str, far: Option<tandem_state::FarTrash>) -> (Value, String) {
    let Some(f) = far else {
        return (
            json!({ "versions": null, "bytes": null }),
            format!("{side} not counted yet (on its machine, counted when a sync prunes it)"),
        );
    };
    let at = match jiff::Timestamp::from_nanosecond(i128::from(f.at_ns)) {
        Ok(t) => crate::output::time::Clock::system().ago(t),
        Err(_) => "at an unknown time".into(),
    };
    (
        json!({ "versions": f.versions, "bytes": f.bytes, "counted_at_ns": f.at_ns }),
        format!(
            "{side} {} versions, {} (counted {at})",
            f.versions,
            crate::output::human_bytes(f.bytes)
        ),
    )
}

fn overview(config: &Path, as_json: bool) -> Result<u8> {
    let o = tasks::Overview::read(config)?;
    let clock = crate::output::time::Clock::system();
    if !as_json {
        o.print(&clock);
    }
    let (known, pairs) = list_known(as_json, &o.pair_dirs(), o.tasks.is_empty());
    if as_json {
        let mut v = o.to_json(&clock);
        v["pairs"] = Value::Array(pairs);
        outln!("{v}");
    }
    Ok(o.code().max(known))
}

/// The pairs under the state home but those in `skip` (the tasks'): one block each, or
/// their JSON objects.
fn list_known(as_json: bool, skip: &[PathBuf], no_tasks: bool) -> (u8, Vec<Value>) {
    let known: Vec<_> = tandem_state::known_pairs(&tandem_state::state_home())
        .into_iter()
        .filter(|(dir, _)| !skip.contains(dir))
        .collect();
    let mounts = tandem_daemon::mounted::registry::all_alive();
    let mut code = crate::EXIT_OK;
    let mut objects = Vec::new();
    if known.is_empty() && no_tasks && !as_json {
        outln!(
            "tandem knows no pairs yet, and no tasks (state home {})",
            sanitize(&tandem_state::state_home().to_string_lossy())
        );
    }
    for (dir, k) in &known {
        let dir_s = dir.to_string_lossy();
        let k = match k {
            Ok(k) => k,
            Err(e) => {
                code = crate::EXIT_ISSUES;
                if as_json {
                    objects.push(json!({ "state_dir": dir_s, "error": e.to_string() }));
                } else {
                    outln!(
                        "{}\n  error:     {}\n",
                        sanitize(&dir_s),
                        sanitize(&e.to_string())
                    );
                }
                continue;
            }
        };
        if k.open_conflicts > 0 {
            code = crate::EXIT_ISSUES;
        }
        let mount = mounts.iter().find(|m| {
            m.src.to_string_lossy() == k.pair.src
                && m.targets.iter().any(|t| t.to_string_lossy() == k.pair.tgt)
        });
        if as_json {
            objects.push(json!({
                "source": k.pair.src, "target": k.pair.tgt, "state_dir": dir_s,
                "synced_entries": k.synced_entries, "open_conflicts": k.open_conflicts,
                "mounted": mount.map(|m| json!({ "pid": m.pid })),
                "last_run": k.last_run.as_ref().map(|r| json!({
                    "started_at": r.started_at, "finished_at": r.finished_at,
                    "exit_code": r.exit_code, "summary": r.summary,
                })),
            }));
            continue;
        }
        outln!("{} <-> {}", sanitize(&k.pair.src), sanitize(&k.pair.tgt));
        outln!("  state:     {}", sanitize(&dir_s));
        match &k.last_run {
            None => outln!("  last sync: never"),
            Some(r) => outln!(
                "  last sync: started {}, {}: {}",
                local_time(r.started_at),
                match r.exit_code {
                    Some(c) => format!("exit code {c}"),
                    None => "did not finish".to_string(),
                },
                sanitize(&r.summary)
            ),
        }
        if let Some(m) = mount {
            outln!("  mounted:   yes, pid {}", m.pid);
        }
        outln!(
            "  synced:    {} entries, {} open conflicts\n",
            k.synced_entries,
            k.open_conflicts
        );
    }
    (code, objects)
}

/// The paths the last run skipped or failed, by name (the first few; all with `--json`).
fn print_problems(problems: &[RunProblem]) {
    const SHOWN: usize = 20;
    for p in problems.iter().take(SHOWN) {
        outln!(
            "{:<10} {}: {}",
            format!("{}:", p.what),
            p.path.escaped(),
            sanitize(&p.reason)
        );
    }
    if problems.len() > SHOWN {
        outln!(
            "           ... and {} more (see --json)",
            problems.len() - SHOWN
        );
    }
}

/// A run's start (Unix seconds) in local time: "3 min ago", "today 02:00".
/// "today 21:40:07": when something happened, to the second.
fn clock_time(unix: i64) -> String {
    match jiff::Timestamp::from_second(unix) {
        Ok(t) => {
            let local = t.to_zoned_datetime(jiff::tz::TimeZone::system());
            local.strftime("%Y-%m-%d %H:%M:%S").to_string()
        }
        Err(_) => format!("{unix} (Unix time)"),
    }
}

/// The held deletions in a line, per side they were made on: how many, by whom (known
/// through the mount only: a target's say that tandem cannot tell), since when.
fn held_summary(held: &[tandem_state::Held]) -> Option<String> {
    use tandem_core::Side;
    let parts: Vec<String> = [Side::Source, Side::Target]
        .into_iter()
        .filter_map(|side| {
            let of: Vec<&tandem_state::Held> = held.iter().filter(|h| h.side == side).collect();
            let h = of.first()?;
            let since = local_time(h.time_ns / 1_000_000_000);
            Some(match side {
                Side::Source => format!(
                    "{} deletions by {} since {since}, not replayed",
                    of.len(),
                    super::held::by_text(h),
                ),
                Side::Target => format!(
                    "{} deletions in the target since {since}, by {}, not applied to the source",
                    of.len(),
                    super::held::by_text(h),
                ),
            })
        })
        .collect();
    (!parts.is_empty()).then(|| format!("{} (see `tandem held`)", parts.join("; ")))
}

fn local_time(unix: i64) -> String {
    match jiff::Timestamp::from_second(unix) {
        Ok(t) => crate::output::time::Clock::system().ago(t),
        Err(_) => format!("at {unix} (Unix time)"),
    }
}
