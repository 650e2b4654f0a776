//! A task run's result: each pair's report, and their sum; as JSON, the summary that
//! `tandem run --json` prints and an `--after` hook reads (`TANDEM_SUMMARY`).

use std::path::PathBuf;

use serde_json::{json, Value};
use tandem_engine::{Event, Report, SyncSpec};

use crate::error::TaskError;
use crate::history::{RunCounts, RunEnd};
use crate::hooks::HookOutcome;

/// How one pair's sync ended.
#[derive(Debug)]
pub struct PairOutcome {
    pub source: PathBuf,
    pub target: PathBuf,
    pub state_dir: PathBuf,
    /// The engine's report, or why the pair could not be synced (exit code 2).
    pub result: Result<Report, String>,
}

impl PairOutcome {
    pub fn exit_code(&self) -> i32 {
        self.result.as_ref().map_or(2, Report::exit_code)
    }
}

/// The counts of a task run, summed over its pairs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub copied: u64,
    pub bytes: u64,
    pub deleted: u64,
    pub renamed: u64,
    pub dirs_created: u64,
    pub metadata: u64,
    pub conflicts: u64,
    pub skipped: u64,
    pub failed: u64,
    /// Pairs that could not be synced, or stopped or halted.
    pub pairs_in_error: u64,
}

#[derive(Debug, Default)]
pub struct TaskReport {
    pub task: String,
    /// What started the run (`manual`: `tandem run`).
    pub trigger: String,
    pub pairs: Vec<PairOutcome>,
    /// Why the sync was skipped (its `before` hook failed).
    pub skipped: Option<String>,
    /// Why no pair could be synced (a source gone, a marker missing, ...).
    pub error: Option<TaskError>,
    pub before: Option<HookOutcome>,
    pub after: Option<HookOutcome>,
    /// Asked to stop (a signal) before every pair was synced: what was done is recorded,
    /// the next run finishes.
    pub interrupted: bool,
}

impl TaskReport {
    pub fn new(task: &str) -> TaskReport {
        TaskReport {
            task: task.to_string(),
            ..TaskReport::default()
        }
    }

    pub fn push(&mut self, spec: &SyncSpec, result: Result<Report, String>) {
        self.pairs.push(PairOutcome {
            source: spec.src.clone(),
            target: spec.tgt.clone(),
            state_dir: spec.state_dir.clone(),
            result,
        });
    }

    /// The worst pair's exit code: 0 in sync, 1 listed problems, 2 error (or the sync
    /// skipped by its `before` hook), 3 halted; 4 when the run was stopped on request
    /// before it finished (unless a pair halted).
    pub fn exit_code(&self) -> i32 {
        let codes = || self.pairs.iter().map(PairOutcome::exit_code);
        if !codes().any(|c| c == 3) && (self.interrupted || codes().any(|c| c == 4)) {
            return 4;
        }
        let worst = codes().filter(|c| *c != 4).max();
        if self.error.is_some() || self.skipped.is_some() {
            worst.unwrap_or(0).max(2)
        } else {
            worst.unwrap_or(0)
        }
    }

    /// The run's result in a word, as an `after` hook's `TANDEM_RESULT` says it: `ok`,
    /// `conflicts`, `problems` (paths skipped or failed), `failed` (a pair or the task
    /// could not be synced, or stopped on an error), `halted` (for safety), `stopped` (on
    /// request, before it finished) or `skipped` (by the
    /// `before` hook).
    pub fn result(&self) -> &'static str {
        if self.exit_code() == 4 {
            return "stopped";
        }
        if self.skipped.is_some() {
            return "skipped";
        }
        match self.exit_code() {
            0 => "ok",
            1 if self.totals().conflicts > 0 => "conflicts",
            1 => "problems",
            3 => "halted",
            _ => "failed",
        }
    }

    /// Paths skipped or failed, and pairs (or a task) that could not be synced.
    pub fn errors(&self) -> u64 {
        let t = self.totals();
        t.skipped + t.failed + t.pairs_in_error + u64::from(self.error.is_some())
    }

    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for p in &self.pairs {
            let Ok(r) = &p.result else {
                t.pairs_in_error += 1;
                continue;
            };
            t.copied += r.copied;
            t.bytes += r.bytes;
            t.deleted += r.deleted;
            t.renamed += r.renamed;
            t.dirs_created += r.dirs_created;
            t.metadata += r.metadata;
            t.conflicts += r.conflicts.len() as u64;
            t.skipped += r.skipped.len() as u64;
            t.failed += r.failed.len() as u64;
            t.pairs_in_error += u64::from(matches!(r.exit_code(), 2 | 3));
        }
        t
    }
}

impl TaskReport {
    /// How the run ended, for its row in the run history.
    pub fn run_end(&self) -> RunEnd {
        let t = self.totals();
        RunEnd {
            result: self.result().to_string(),
            exit_code: self.exit_code(),
            counts: RunCounts {
                copied: t.copied,
                deleted: t.deleted,
                conflicts: t.conflicts,
                errors: self.errors(),
                bytes: t.bytes,
            },
            error: self.first_error(),
        }
    }

    /// What went wrong first, in one line: the task's error or skip, else the first pair
    /// in trouble (its error, halt or stop, else its first path that failed or was
    /// skipped), with how many paths more.
    pub fn first_error(&self) -> Option<String> {
        if let Some(e) = &self.error {
            return Some(e.to_string());
        }
        if let Some(s) = &self.skipped {
            return Some(s.clone());
        }
        self.pairs.iter().find_map(|p| {
            let why = match &p.result {
                Err(e) => e.clone(),
                Ok(r) => {
                    let whole = r.halted.clone().or_else(|| r.stopped.clone());
                    let paths: Vec<_> = r.failed.iter().chain(&r.skipped).collect();
                    match (whole, paths.first()) {
                        (Some(w), _) => w,
                        (None, Some(first)) if paths.len() > 1 => format!(
                            "{}: {} (and {} more paths)",
                            first.path,
                            first.reason,
                            paths.len() - 1
                        ),
                        (None, Some(first)) => format!("{}: {}", first.path, first.reason),
                        (None, None) => return None,
                    }
                }
            };
            Some(format!("{}: {why}", p.source.display()))
        })
    }

    /// The run as `tandem run --json` prints it: each pair's summary (as `tandem sync
    /// --json` prints it, with its folders) and the totals.
    pub fn to_json(&self) -> Value {
        let t = self.totals();
        let lossy = |p: &PathBuf| p.to_string_lossy().into_owned();
        let pairs: Vec<_> = self
            .pairs
            .iter()
            .map(|p| {
                let mut v = match &p.result {
                    Ok(rep) => summary_json(rep),
                    Err(e) => json!({"exit_code": 2, "error": e}),
                };
                v["source"] = json!(lossy(&p.source));
                v["target"] = json!(lossy(&p.target));
                v["state_dir"] = json!(lossy(&p.state_dir));
                if let Some(o) = v.as_object_mut() {
                    o.remove("event");
                }
                v
            })
            .collect();
        let hook = |h: &Option<HookOutcome>| {
            h.as_ref().map(|h| {
                json!({
                    "command": h.command, "ok": h.ok(), "outcome": h.to_string(),
                    "seconds": h.took.as_secs_f64(),
                })
            })
        };
        json!({
            "event": "task",
            "task": self.task,
            "trigger": self.trigger,
            "result": self.result(),
            "exit_code": self.exit_code(),
            "skip_reason": self.skipped,
            "error": self.error.as_ref().map(ToString::to_string),
            "before": hook(&self.before),
            "after": hook(&self.after),
            "pairs": pairs,
            "totals": {
                "copied": t.copied, "bytes": t.bytes, "deleted": t.deleted, "renamed": t.renamed,
                "dirs_created": t.dirs_created, "metadata": t.metadata, "conflicts": t.conflicts,
                "skipped": t.skipped, "failed": t.failed, "pairs_in_error": t.pairs_in_error,
            },
        })
    }
}

/// One sync's report as `tandem sync --json` prints it (its last line).
pub fn summary_json(r: &Report) -> Value {
    json!({
        "event": "summary",
        "exit_code": r.exit_code(),
        "dry_run": r.dry_run,
        "created_target": r.created_target.as_ref().map(|t| t.to_string_lossy()),
        "copied": r.copied,
        "bytes": r.bytes,
        "deleted": r.deleted,
        "renamed": r.renamed,
        "dirs_created": r.dirs_created,
        "metadata": r.metadata,
        "conflicts": r.conflicts.iter().map(|c| json!({
            "path": c.path.to_string(), "kind": c.kind, "resolution": c.resolution,
        })).collect::<Vec<_>>(),
        "skipped": r.skipped.iter().map(|p| json!({
            "path": p.path.to_string(), "reason": p.reason,
        })).collect::<Vec<_>>(),
        "kept_newer": r.kept_newer.iter().map(|(side, path)| json!({
            "path": path.to_string(), "newer_on": side.name(),
        })).collect::<Vec<_>>(),
        "linked": r.linked,
        "links_copied": r.links_copied.iter().map(|(side, path)| json!({
            "path": path.to_string(), "side": side.name(),
        })).collect::<Vec<_>>(),
        "failed": r.failed.iter().map(|p| json!({
            "path": p.path.to_string(), "error": p.reason,
        })).collect::<Vec<_>>(),
        "halted": r.halted,
        "stopped": r.stopped,
        "interrupted": r.interrupted,
        "plan": r.plan.iter().map(|s| json!({
            "action": s.verb, "path": s.path.to_string(), "to": s.to.as_ref().map(|t| t.to_string()),
            "side": s.side, "detail": s.detail,
        })).collect::<Vec<_>>(),
    })
}

/// An engine event as one JSON object, as `--json` prints it and a task's events file keeps it.
pub fn event_json(e: &Event) -> Value {
    match e {
        Event::Scanned { side, entries } => {
            json!({"event": "scanned", "side": side, "entries": entries})
        }
        Event::Planned { actions, bytes } => {
            json!({"event": "planned", "actions": actions, "bytes": bytes})
        }
        Event::Done {
            verb,
            path,
            side,
            bytes,
        } => {
            json!({"event": "done", "action": verb, "path": path.to_string(), "side": side, "bytes": bytes})
        }
        Event::Failed { path, error } => {
            json!({"event": "failed", "path": path.to_string(), "error": error})
        }
        Event::Skipped { path, reason } => {
            json!({"event": "skipped", "path": path.to_string(), "reason": reason})
        }
        Event::Conflict {
            path,
            kind,
            resolution,
        } => {
            json!({"event": "conflict", "path": path.to_string(), "kind": kind, "resolution": resolution})
        }
        Event::Retrying { round, paths } => {
            json!({"event": "retrying", "round": round, "paths": paths})
        }
    }
}
