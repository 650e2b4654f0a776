//! One run of a task: its priority, its `before` hook, each pair's sync, the run's JSON
//! summary and its `after` hook. The caller syncs each pair (and shows it as it likes);
//! everything around the sync is here, so that `tandem run` and the daemon run a task
//! the same way.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tandem_engine::Report;

use crate::error::TaskError;
use crate::history::{History, RunCounts, RunEnd};
use crate::hooks::{apply_priority, run_hook, HookOutcome};
use crate::live::LiveRun;
use crate::mail::mail_result;
use crate::marker::PlannedPair;
use crate::report::TaskReport;
use crate::spec::TaskSpec;

/// Exit code of a run whose `before` hook failed: the sync did not happen, as for an
/// error (nothing was changed).
pub const EXIT_SKIPPED: i32 = 2;

/// How a task is to be run.
#[derive(Clone, Debug)]
pub struct RunRequest {
    /// What started the run: `manual` for `tandem run`.
    pub trigger: String,
    /// Plan only: no hooks run, nothing changes.
    pub dry_run: bool,
    /// Scan and copy threads per side.
    pub threads: usize,
    /// Set on a signal: no pair starts after it, a running hook is killed, the `after`
    /// hook is not run; `sync_pair` is to stop its pair between steps too.
    pub stop: Arc<AtomicBool>,
}

/// The folder of a task's own state: `$XDG_STATE_HOME/tandem/tasks/<name>` (each pair's
/// state stays where `tandem sync` keeps it).
pub fn task_state_dir(name: &str) -> PathBuf {
    tandem_state::state_home().join("tasks").join(name)
}

/// Runs `task` once. `sync_pair` syncs one planned pair (its markers included, see
/// `PlannedPair::mark_synced`), passing the engine's events to the `LiveRun` it is given.
/// A task that cannot be planned (a source gone, ...) is in the report's `error`; the
/// `after` hook runs in every case but a dry run. A run that is not dry is recorded in
/// the run history from its start, and shows its progress as it goes (`live`).
/// The result is mailed after the `after` hook if the task asks for it (`mail`: a mail
/// never changes the result).
pub fn run_task(
    task: &TaskSpec,
    req: &RunRequest,
    sync_pair: &mut dyn FnMut(&PlannedPair, &LiveRun) -> Result<Report, String>,
) -> Result<TaskReport, TaskError> {
    if req.dry_run {
        apply_priority(task.priority)?;
        let mut report = TaskReport::new(&task.name);
        report.trigger.clone_from(&req.trigger);
        for pair in task.sync_specs(true, req.threads)? {
            let result = sync_pair(&pair, &LiveRun::inert());
            report.push(&pair.spec, result);
        }
        return Ok(report);
    }
    // A task never runs twice at once: a second run (by hand while the daemon runs it, or
    // the reverse) is refused before it touches the history or the live progress.
    let _running =
        tandem_state::Lock::acquire(&task_state_dir(&task.name)).map_err(|e| match e {
            tandem_state::StateError::Locked { pid, .. } => TaskError::Running {
                name: task.name.clone(),
                pid,
            },
            other => TaskError::State(Box::new(other)),
        })?;
    let recorded = Recorded::begin(task, req);
    let report = run_recorded(task, req, &recorded.live, sync_pair);
    recorded.end(&report);
    report
}

/// A run that is not dry, once its history row is open.
fn run_recorded(
    task: &TaskSpec,
    req: &RunRequest,
    live: &LiveRun,
    sync_pair: &mut dyn FnMut(&PlannedPair, &LiveRun) -> Result<Report, String>,
) -> Result<TaskReport, TaskError> {
    apply_priority(task.priority)?;
    let started = Timestamp::now();
    let mut report = TaskReport::new(&task.name);
    report.trigger.clone_from(&req.trigger);
    let timeout = Duration::from_nanos(task.hooks.timeout.max(1) as u64);
    if let Some(cmd) = &task.hooks.before {
        let env = hook_env(task, &req.trigger);
        let outcome = run_hook("before", cmd, &env, timeout, &req.stop);
        if !outcome.ok() {
            report.skipped = Some(format!("{outcome}: the sync was skipped"));
        }
        report.before = Some(outcome);
    }
    if report.skipped.is_none() {
        match task.sync_specs(false, req.threads) {
            Ok(planned) => {
                for (i, pair) in planned.iter().enumerate() {
                    if req.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    live.pair(i + 1, &pair.spec);
                    let result = sync_pair(pair, live);
                    report.push(&pair.spec, result);
                }
            }
            Err(e) => report.error = Some(e),
        }
    }
    if req.stop.load(Ordering::Relaxed) {
        report.interrupted = true;
        if task.hooks.after.is_some() {
            tracing::info!("the run was asked to stop: its after hook is not run");
        }
        return Ok(report);
    }
    if let Some(cmd) = &task.hooks.after {
        let summary = write_summary(&task_state_dir(&task.name), &report);
        let mut env = hook_env(task, &req.trigger);
        env.extend(after_env(&report, summary.as_deref()));
        report.after = Some(run_hook("after", cmd, &env, timeout, &req.stop));
    }
    mail_result(task, &report, started);
    Ok(report)
}

/// A run's row in the history and its live progress. The history that cannot be written
/// is logged: the run goes on unrecorded.
struct Recorded {
    history: Option<(History, i64)>,
    live: LiveRun,
}

impl Recorded {
    fn begin(task: &TaskSpec, req: &RunRequest) -> Recorded {
        let opened = History::open(&tandem_state::state_home()).and_then(|mut h| {
            let id = h.begin(
                &task.name,
                &req.trigger,
                std::process::id(),
                Timestamp::now(),
            )?;
            Ok((h, id))
        });
        match opened {
            Ok((h, id)) => {
                let pairs = task.sources.len();
                let live = LiveRun::start(&task_state_dir(&task.name), id, pairs);
                Recorded {
                    history: Some((h, id)),
                    live,
                }
            }
            Err(e) => {
                tracing::warn!("the run is not recorded in the history: {e}");
                Recorded {
                    history: None,
                    live: LiveRun::inert(),
                }
            }
        }
    }

    fn end(self, report: &Result<TaskReport, TaskError>) {
        self.live.finish();
        let Some((mut h, id)) = self.history else {
            return;
        };
        let end = match report {
            Ok(r) => r.run_end(),
            Err(e) => RunEnd {
                result: "failed".to_string(),
                exit_code: 2,
                counts: RunCounts::default(),
                error: Some(e.to_string()),
            },
        };
        if let Err(e) = h.finish(id, Timestamp::now(), &end) {
            tracing::warn!("the run's end is not recorded in the history: {e}");
        }
    }
}

/// What every hook is told: the task, its folders and what started the run.
fn hook_env(task: &TaskSpec, trigger: &str) -> Vec<(&'static str, OsString)> {
    let mut sources = OsString::new();
    for (i, s) in task.sources.iter().enumerate() {
        if i > 0 {
            sources.push("\n");
        }
        sources.push(s);
    }
    vec![
        ("TANDEM_TASK", task.name.clone().into()),
        ("TANDEM_SOURCES", sources),
        ("TANDEM_TARGET", task.target.clone().into()),
        ("TANDEM_TRIGGER", trigger.into()),
    ]
}

/// What the `after` hook is told besides: the result, the counts and the summary file.
fn after_env(r: &TaskReport, summary: Option<&Path>) -> Vec<(&'static str, OsString)> {
    let t = r.totals();
    let n = |v: u64| OsString::from(v.to_string());
    vec![
        ("TANDEM_RESULT", r.result().into()),
        ("TANDEM_EXIT_CODE", r.exit_code().to_string().into()),
        ("TANDEM_COPIED", n(t.copied)),
        ("TANDEM_DELETED", n(t.deleted)),
        ("TANDEM_CONFLICTS", n(t.conflicts)),
        ("TANDEM_ERRORS", n(r.errors())),
        (
            "TANDEM_SUMMARY",
            summary
                .map(|p| p.as_os_str().to_owned())
                .unwrap_or_default(),
        ),
    ]
}

/// Writes the run's JSON summary, for the `after` hook, to `dir/last-run.json` (a new file renamed over the
/// old one: a reader sees a whole summary, never half of one). A summary that cannot be
/// written is logged, and leaves the run's result alone.
fn write_summary(dir: &Path, r: &TaskReport) -> Option<PathBuf> {
    let path = dir.join("last-run.json");
    let tmp = dir.join("last-run.json.tmp");
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{}", r.to_json())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    match write() {
        Ok(()) => Some(path),
        Err(e) => {
            tracing::warn!("could not write the run's summary {}: {e}", path.display());
            None
        }
    }
}

/// How a run's hooks went, for the caller to show.
pub fn hook_notes(r: &TaskReport) -> impl Iterator<Item = &HookOutcome> {
    r.before.iter().chain(r.after.iter())
}
