//! A task run's result: each pair's report, and their sum.

use std::path::PathBuf;

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
