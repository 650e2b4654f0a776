//! What the engine is asked to do, and what it reports back.

use std::path::PathBuf;

use tandem_core::{Options, RelPath, Retention, Side};

/// A validated request for one sync of one pair: the CLI builds it, the engine runs it.
#[derive(Clone, Debug)]
pub struct SyncSpec {
    /// Canonical, existing, distinct, non-nested directories.
    pub src: PathBuf,
    pub tgt: PathBuf,
    pub state_dir: PathBuf,
    pub options: Options,
    pub excludes: Vec<String>,
    pub includes: Vec<String>,
    pub dry_run: bool,
    /// Trust no stat: hash every file on both sides.
    pub rescan: bool,
    /// Halt when a run would delete more than this share of the baseline's entries.
    pub max_delete_percent: u32,
    /// Halt when a run would delete more than this many entries (`None`: no such limit).
    pub max_delete_count: Option<u64>,
    /// Scan and copy threads per side.
    pub threads: usize,
    /// `fsync` each file instead of one `syncfs` per commit.
    pub fsync_each: bool,
    /// The pair's lock is held by a running mount that has paused this pair for the caller
    /// (`tandem resolve` while mounted): do not take it.
    pub lock_granted: bool,
    /// How long each side's trash and the journal keep what they hold.
    pub retention: Retention,
}

impl SyncSpec {
    /// A two-way sync of `src` and `tgt` with the defaults of `tandem sync`.
    pub fn new(src: PathBuf, tgt: PathBuf, state_dir: PathBuf) -> SyncSpec {
        SyncSpec {
            src,
            tgt,
            state_dir,
            options: Options::default(),
            excludes: Vec::new(),
            includes: Vec::new(),
            dry_run: false,
            rescan: false,
            max_delete_percent: 50,
            max_delete_count: None,
            threads: 4,
            fsync_each: false,
            lock_granted: false,
            retention: Retention::default(),
        }
    }
}

/// What a sync looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Both whole trees.
    All,
    /// These paths, everything below those that are directories, and their parent
    /// directories (`tandem resolve`).
    Paths(Vec<RelPath>),
    /// These paths and their parents; below a directory only where the flag says so (a
    /// mount's journal hints: every change inside the mount has a record of its own, so a
    /// renamed directory's content need not be read again).
    Hints(Vec<(RelPath, bool)>),
}

impl Scope {
    /// The scoped paths with their "read below" flags (`None`: everything).
    pub fn hints(&self) -> Option<Vec<(RelPath, bool)>> {
        match self {
            Scope::All => None,
            Scope::Paths(p) => Some(p.iter().map(|p| (p.clone(), true)).collect()),
            Scope::Hints(h) => Some(h.clone()),
        }
    }
}

/// Something that happened, for progress displays and JSON output.
#[derive(Clone, Debug)]
pub enum Event {
    Scanned {
        side: &'static str,
        entries: usize,
    },
    Planned {
        actions: usize,
        bytes: u64,
    },
    Done {
        verb: &'static str,
        path: RelPath,
        side: Option<&'static str>,
        bytes: u64,
    },
    Failed {
        path: RelPath,
        error: String,
    },
    Skipped {
        path: RelPath,
        reason: String,
    },
    Conflict {
        path: RelPath,
        kind: &'static str,
        resolution: String,
    },
    Retrying {
        round: usize,
        paths: usize,
    },
}

/// A planned step, as printed by `--dry-run`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedStep {
    pub verb: &'static str,
    pub path: RelPath,
    pub to: Option<RelPath>,
    /// The side written to, if any.
    pub side: Option<&'static str>,
    pub detail: String,
}

/// A conflict a run met, and what it did about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConflictNote {
    pub path: RelPath,
    /// What clashed, as `Conflict::kind` words it (`edit/edit`, ...).
    pub kind: String,
    /// What was done (a copy kept aside, one side taken, flagged).
    pub resolution: String,
}

/// A path a run left out of step, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathProblem {
    pub path: RelPath,
    pub reason: String,
}

impl PathProblem {
    pub fn new(path: RelPath, reason: impl Into<String>) -> PathProblem {
        PathProblem {
            path,
            reason: reason.into(),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub copied: u64,
    pub bytes: u64,
    pub deleted: u64,
    pub renamed: u64,
    pub dirs_created: u64,
    pub metadata: u64,
    pub conflicts: Vec<ConflictNote>,
    /// Paths left as they are on purpose (special files, unreadable entries, ...).
    pub skipped: Vec<PathProblem>,
    /// Of `skipped`, the files left because the receiving side (named) holds a newer copy
    /// (`--update`).
    pub kept_newer: Vec<(Side, RelPath)>,
    /// `--hard-links`: names made as hard links to another name of their file (no data
    /// sent).
    pub linked: u64,
    /// `--hard-links`: names copied instead of linked because the receiving side (named)
    /// cannot hold the link (exFAT, FAT): in step, reported once per run.
    pub links_copied: Vec<(Side, RelPath)>,
    /// Paths whose step failed: they are synced again on the next run.
    pub failed: Vec<PathProblem>,
    /// Why the run stopped early for safety (exit 3).
    pub halted: Option<String>,
    /// Why the run stopped early on an error that concerns a whole side (exit 2), or on
    /// request (`interrupted`).
    pub stopped: Option<String>,
    /// Stopped on request (a signal) before it finished (exit 4): what was applied is
    /// committed, the next run finishes.
    pub interrupted: bool,
    /// Nothing was applied: the scan could not be trusted (`Session::sync_guarded`).
    pub deferred: bool,
    /// Paths whose steps were not applied because the scan could not be trusted for them
    /// (`Session::sync_guarded`): to be looked at again.
    pub left_out: Vec<RelPath>,
    /// The deletions a mount's whole-tree reconcile found in the target and did not apply
    /// to the source, more than its delete brake allows: (path, a folder), to be held.
    pub braked: Vec<(RelPath, bool)>,
    /// The plan, for `--dry-run`.
    pub plan: Vec<PlannedStep>,
    pub dry_run: bool,
    /// The target folder this run created (a first sync into a folder not there yet).
    pub created_target: Option<PathBuf>,
}

impl Report {
    /// 0 in sync, 1 conflicts/skips/failures listed, 2 stopped on an error, 3 halted, 4
    /// stopped on request before it finished.
    pub fn exit_code(&self) -> i32 {
        if self.halted.is_some() {
            3
        } else if self.interrupted {
            4
        } else if self.stopped.is_some() {
            2
        } else if !self.conflicts.is_empty() || !self.skipped.is_empty() || !self.failed.is_empty()
        {
            1
        } else {
            0
        }
    }
}
