//! Where a task stands, for `tandem status`: its last run and its run going on now (from
//! the run history, with the live progress), its pairs' open conflicts (from their
//! state), its last error, a failed email (`email.json` in its state folder) and the
//! daemon's config error (`daemon.json` in the state home). Read only: nothing here
//! creates or changes a file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::{json, Value};

use crate::error::TaskError;
use crate::history::{History, HistoryRow};
use crate::live::Progress;
use crate::run::task_state_dir;
use crate::spec::TaskSpec;

/// The email of the last run that could not be sent, as the mailer left it in the
/// task's `email.json` (present only while the last email failed).
pub const EMAIL_FILE: &str = "email.json";
/// The daemon's own state in the state home: its pid, its tasks (with the pids of the
/// mounts it serves) and `config_error` while the config file it last read is bad.
pub const DAEMON_FILE: &str = "daemon.json";

/// How many of a task's latest runs are looked at for its last run and last error.
const RECENT: usize = 100;

/// One of a task's pairs, with its open conflicts (or why its state could not be read).
#[derive(Debug)]
pub struct PairStatus {
    pub source: PathBuf,
    pub target: PathBuf,
    pub state_dir: PathBuf,
    pub open_conflicts: Result<u64, String>,
    /// Deletions its mount's delete brake holds (`tandem held`).
    pub held_deletions: u64,
    /// Of those, the ones made in the target (not applied to the source); the rest were
    /// made through the mount (not replayed to the target).
    pub held_in_target: u64,
}

/// An email that could not be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailFailure {
    pub at: Option<Timestamp>,
    pub error: String,
    pub to: Vec<String>,
}

#[derive(Debug)]
pub struct TaskStatus {
    /// The latest run that is over (or was interrupted).
    pub last: Option<HistoryRow>,
    /// The run going on now, and its latest progress snapshot.
    pub running: Option<(HistoryRow, Option<Progress>)>,
    /// The latest run that went wrong: its row carries the error.
    pub last_error: Option<HistoryRow>,
    pub pairs: Vec<PairStatus>,
    pub email: Option<EmailFailure>,
    /// The pids of the task's mounts the daemon serves (a continuous task); filled in by
    /// the caller from `daemon_state`.
    pub mounts: Vec<u32>,
}

impl TaskStatus {
    /// Reads what is known of `task`; `history` is `None` when no run was ever recorded.
    pub fn read(task: &TaskSpec, history: Option<&History>) -> Result<TaskStatus, TaskError> {
        let rows = match history {
            Some(h) => h.runs(Some(&task.name), RECENT)?,
            None => Vec::new(),
        };
        let dir = task_state_dir(&task.name);
        let running = rows.iter().find(|r| r.is_running()).map(|r| {
            let progress = Progress::read(&dir).filter(|p| p.run_id == r.id);
            (r.clone(), progress)
        });
        Ok(TaskStatus {
            last: rows.iter().find(|r| !r.is_running()).cloned(),
            running,
            last_error: rows.iter().find(|r| went_wrong(r)).cloned(),
            pairs: task.pairs().iter().map(pair_status).collect(),
            email: read_email(&dir),
            mounts: Vec::new(),
        })
    }

    /// Open conflicts over the pairs whose state could be read.
    pub fn open_conflicts(&self) -> u64 {
        self.pairs
            .iter()
            .filter_map(|p| p.open_conflicts.as_ref().ok())
            .sum()
    }
}

/// A run whose result asks for attention beyond conflicts.
fn went_wrong(r: &HistoryRow) -> bool {
    matches!(
        r.result.as_str(),
        "failed" | "halted" | "skipped" | "problems" | "interrupted"
    )
}

/// What went wrong in a run, in one line.
pub fn error_of(r: &HistoryRow) -> String {
    match (&r.error, r.result.as_str()) {
        (Some(e), _) => e.clone(),
        (None, "interrupted") => format!("the run was interrupted (process {} is gone)", r.pid),
        (None, result) => result.to_string(),
    }
}

fn pair_status(pair: &crate::spec::TaskPair) -> PairStatus {
    let state_dir = TaskSpec::state_dir(pair);
    let known = if state_dir.join(tandem_state::DB_FILE).is_file() {
        tandem_state::read_pair(&state_dir)
            .map(|k| (k.open_conflicts, (k.held_deletions, k.held_in_target)))
            .map_err(|e| e.to_string())
    } else {
        Ok((0, (0, 0)))
    };
    PairStatus {
        source: pair.source.clone(),
        target: pair.target.clone(),
        state_dir,
        open_conflicts: known.as_ref().map(|k| k.0).map_err(Clone::clone),
        held_deletions: known.as_ref().map_or(0, |k| k.1 .0),
        held_in_target: known.map_or(0, |k| k.1 .1),
    }
}

fn read_json(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!("{} is not JSON: {e}", path.display());
            None
        }
    }
}

fn read_email(dir: &Path) -> Option<EmailFailure> {
    let v = read_json(&dir.join(EMAIL_FILE))?;
    Some(EmailFailure {
        at: v["at"].as_str().and_then(|t| t.parse().ok()),
        error: v["error"].as_str().unwrap_or("unknown error").to_string(),
        to: v["to"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// The daemon as its `daemon.json` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DaemonState {
    pub pid: u32,
    /// Its complaint about the config file, if it has one (it goes on with the last good
    /// config).
    pub config_error: Option<String>,
    /// The pids of the mounts it serves, by task.
    pub mounts: BTreeMap<String, Vec<u32>>,
}

/// The daemon that runs now (`daemon.json` in the state home `home`, written by a process
/// that is still alive); `None` if none does. A file left by a killed daemon says nothing.
pub fn daemon_state(home: &Path) -> Option<DaemonState> {
    let v = read_json(&home.join(DAEMON_FILE))?;
    let pid = u32::try_from(v["pid"].as_u64()?).ok()?;
    if !crate::history::process_alive(pid) {
        return None;
    }
    let mounts = v["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let pids = t["mounts"].as_array()?;
            let pids = pids.iter().filter_map(|p| p.as_u64()?.try_into().ok());
            Some((t["name"].as_str()?.to_string(), pids.collect()))
        })
        .collect();
    Some(DaemonState {
        pid,
        config_error: v["config_error"].as_str().map(String::from),
        mounts,
    })
}

/// A time in RFC 3339 with the offset of `tz` there.
pub fn rfc3339(t: Timestamp, tz: &TimeZone) -> String {
    t.display_with_offset(tz.to_offset(t)).to_string()
}

impl HistoryRow {
    /// The row as `tandem log --json` and `tandem status --json` print it.
    pub fn to_json(&self, now: Timestamp, tz: &TimeZone) -> Value {
        let c = &self.counts;
        json!({
            "id": self.id,
            "task": self.task,
            "trigger": self.trigger,
            "started": rfc3339(self.started, tz),
            "ended": self.ended.map(|t| rfc3339(t, tz)),
            "result": self.result,
            "exit_code": self.exit_code,
            "copied": c.copied,
            "deleted": c.deleted,
            "conflicts": c.conflicts,
            "errors": c.errors,
            "bytes": c.bytes,
            "duration_seconds": self.duration(now).as_secs_f64(),
            "pid": self.pid,
            "error": self.error,
        })
    }
}
