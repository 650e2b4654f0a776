//! A task run's result: each pair's report, and their sum; as JSON, the summary that
//! `tandem run --json` prints and an `--after` hook reads (`TANDEM_SUMMARY`).

use std::path::PathBuf;

use serde_json::{json, Value};
use tandem_engine::{Report, SyncSpec};

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
    pub pairs: Vec<PairOutcome>,
}

impl TaskReport {
    pub fn new(task: &str) -> TaskReport {
        TaskReport {
            task: task.to_string(),
            pairs: Vec::new(),
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

    /// The worst pair's exit code: 0 in sync, 1 listed problems, 2 error, 3 halted.
    pub fn exit_code(&self) -> i32 {
        self.pairs
            .iter()
            .map(PairOutcome::exit_code)
            .max()
            .unwrap_or(0)
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
            t.pairs_in_error += u64::from(r.exit_code() >= 2);
        }
        t
    }
}

impl TaskReport {
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
        json!({
            "event": "task",
            "task": self.task,
            "exit_code": self.exit_code(),
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
        "failed": r.failed.iter().map(|p| json!({
            "path": p.path.to_string(), "error": p.reason,
        })).collect::<Vec<_>>(),
        "halted": r.halted,
        "stopped": r.stopped,
        "plan": r.plan.iter().map(|s| json!({
            "action": s.verb, "path": s.path.to_string(), "to": s.to.as_ref().map(|t| t.to_string()),
            "side": s.side, "detail": s.detail,
        })).collect::<Vec<_>>(),
    })
}
