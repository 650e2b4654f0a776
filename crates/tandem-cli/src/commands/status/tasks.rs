//! `tandem status` for tasks: every task at a glance (with the daemon's config error, if
//! it has one), or one task in detail. What is shown is read by `tandem_task::TaskStatus`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{json, Value};
use tandem_task::{error_of, Config, DaemonState, History, TaskSpec, TaskStatus};

use crate::commands::task::when::When;
use crate::output::history::{outcome, progress_json, progress_line};
use crate::output::sanitize;
use crate::output::time::Clock;

/// The task named `arg`, if it is a task's name. A word that is no folder and no task is
/// an error naming the tasks there are; a config that cannot be read is one unless `arg`
/// is a folder.
pub fn named(config: &Path, arg: &Path) -> Result<Option<TaskSpec>> {
    let Some(name) = arg.to_str().filter(|n| tandem_task::check_name(n).is_ok()) else {
        return Ok(None);
    };
    let is_dir = arg.is_dir();
    match Config::load(config) {
        Ok(cfg) => match cfg.task(name) {
            Ok(t) => Ok(Some(t.clone())),
            Err(_) if is_dir => Ok(None),
            Err(e) => Err(e.into()),
        },
        Err(_) if is_dir => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// What is known of the tasks in the config; its error instead if it cannot be read.
pub struct Overview {
    pub tasks: Vec<(TaskSpec, TaskStatus)>,
    pub config_error: Option<String>,
    /// The daemon that runs now, if one does.
    pub daemon: Option<DaemonState>,
}

impl Overview {
    pub fn read(config: &Path) -> Result<Overview> {
        let home = tandem_state::state_home();
        let (specs, config_error) = match Config::load(config) {
            Ok(cfg) => (cfg.tasks().to_vec(), None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        let history = History::open_existing(&home)?;
        let daemon = tandem_task::daemon_state(&home);
        let tasks = specs
            .into_iter()
            .map(|t| {
                let s = read_status(&t, history.as_ref(), daemon.as_ref())?;
                Ok((t, s))
            })
            .collect::<Result<_>>()?;
        Ok(Overview {
            tasks,
            config_error,
            daemon,
        })
    }

    /// The state folders of the tasks' pairs: not listed again as plain pairs.
    pub fn pair_dirs(&self) -> Vec<PathBuf> {
        let pairs = self.tasks.iter().flat_map(|(_, s)| &s.pairs);
        pairs.map(|p| p.state_dir.clone()).collect()
    }

    pub fn to_json(&self, clock: &Clock) -> Value {
        json!({
            "config_error": self.config_error,
            "daemon": {
                "running": self.daemon.is_some(),
                "pid": self.daemon.as_ref().map(|d| d.pid),
                "config_error": self.daemon_error(),
            },
            "tasks": self.tasks.iter().map(|(t, s)| task_json(t, s, clock)).collect::<Vec<_>>(),
        })
    }

    /// 1 if a task needs a look, or the config (as read here or by the daemon) is bad.
    pub fn code(&self) -> u8 {
        let tasks = self.tasks.iter().map(|(_, s)| attention(s));
        let config = self.config_error.is_some() || self.daemon_error().is_some();
        tasks
            .chain([u8::from(config)])
            .max()
            .unwrap_or(crate::EXIT_OK)
    }

    fn daemon_error(&self) -> Option<&str> {
        self.daemon.as_ref()?.config_error.as_deref()
    }

    /// Whether the daemon runs, when some task waits for it (a schedule, a mount).
    fn print_daemon(&self) {
        let needs = |t: &TaskSpec| t.continuous || !t.schedules.is_empty();
        match &self.daemon {
            Some(d) => outln!("daemon:     running (pid {})\n", d.pid),
            None if self.tasks.iter().any(|(t, _)| needs(t)) => outln!(
                "daemon:     not running: schedules and continuous tasks wait for `tandem daemon`\n"
            ),
            None => {}
        }
    }

    /// Prints each task's block.
    pub fn print(&self, clock: &Clock) {
        if let Some(e) = &self.config_error {
            outln!("config:     {}\n", sanitize(e));
        }
        self.print_daemon();
        if let Some(e) = self.daemon_error() {
            outln!(
                "daemon:     the config file has an error; the daemon goes on with the last good one: {}\n",
                sanitize(e)
            );
        }
        for (t, s) in &self.tasks {
            print_task(t, s, clock, false);
            outln!();
        }
    }
}

/// A task's status, with the mounts the daemon serves for it.
fn read_status(
    task: &TaskSpec,
    history: Option<&History>,
    daemon: Option<&DaemonState>,
) -> Result<TaskStatus> {
    let mut s = TaskStatus::read(task, history)?;
    if let Some(pids) = daemon.and_then(|d| d.mounts.get(&task.name)) {
        s.mounts.clone_from(pids);
    }
    Ok(s)
}

/// `tandem status NAME`.
pub fn one(task: &TaskSpec, as_json: bool) -> Result<u8> {
    let home = tandem_state::state_home();
    let history = History::open_existing(&home)?;
    let daemon = tandem_task::daemon_state(&home);
    let status = read_status(task, history.as_ref(), daemon.as_ref())?;
    let clock = Clock::system();
    if as_json {
        outln!("{}", task_json(task, &status, &clock));
        return Ok(attention(&status));
    }
    Ok(print_task(task, &status, &clock, true))
}

/// 1 if the task needs a look: open conflicts, deletions held, a last run gone wrong, an
/// email not sent.
fn attention(s: &TaskStatus) -> u8 {
    let last_bad = s
        .last
        .as_ref()
        .is_some_and(|r| !matches!(r.result.as_str(), "ok" | "conflicts"));
    let held = s.pairs.iter().any(|p| p.held_deletions > 0);
    if s.open_conflicts() > 0 || held || last_bad || s.email.is_some() {
        crate::EXIT_ISSUES
    } else {
        crate::EXIT_OK
    }
}

fn kind(t: &TaskSpec) -> &'static str {
    if t.continuous {
        "continuous"
    } else if t.schedules.is_empty() {
        "manual"
    } else {
        "scheduled"
    }
}

fn task_json(t: &TaskSpec, s: &TaskStatus, clock: &Clock) -> Value {
    let when = When::of(t);
    let row = |r: &tandem_task::HistoryRow| r.to_json(clock.now, &clock.tz);
    json!({
        "name": t.name,
        "comment": t.comment,
        "kind": kind(t),
        "mounts": s.mounts,
        "schedules": when.schedules_json(),
        "next_run": when.next_run_json(),
        "last_run": s.last.as_ref().map(row),
        "running": s.running.as_ref().map(|(r, p)| {
            let mut v = row(r);
            v["progress"] = json!(p.as_ref().map(|p| progress_json(p, clock)));
            v
        }),
        "open_conflicts": s.open_conflicts(),
        "pairs": s.pairs.iter().map(|p| json!({
            "source": p.source.to_string_lossy(), "target": p.target.to_string_lossy(),
            "state_dir": p.state_dir.to_string_lossy(),
            "open_conflicts": p.open_conflicts.as_ref().ok(),
            "held_deletions": p.held_deletions,
            "held_in_target": p.held_in_target,
            "error": p.open_conflicts.as_ref().err(),
        })).collect::<Vec<_>>(),
        "last_error": s.last_error.as_ref().map(|r| json!({
            "at": clock.rfc3339(r.started), "run_id": r.id, "result": r.result,
            "message": error_of(r),
        })),
        "email_failure": s.email.as_ref().map(|e| json!({
            "at": e.at.map(|t| clock.rfc3339(t)), "error": e.error, "to": e.to,
        })),
    })
}

/// A task's block: a glance, or (`detail`) with its pairs and each schedule.
fn print_task(t: &TaskSpec, s: &TaskStatus, clock: &Clock, detail: bool) -> u8 {
    let comment = t.comment.as_ref().map(|c| format!(": {c}"));
    outln!("task {}{}", t.name, sanitize(&comment.unwrap_or_default()));
    print_kind(t, s, detail);
    if detail {
        for p in &s.pairs {
            let open = match &p.open_conflicts {
                Ok(n) => format!("{n} open conflicts"),
                Err(e) => format!("state unreadable: {e}"),
            };
            let (src, tgt) = (p.source.display(), p.target.display());
            outln!(
                "  pair:       {}",
                sanitize(&format!("{src} <-> {tgt} ({open})"))
            );
        }
    }
    match &s.last {
        Some(r) => outln!("  last run:   {}", outcome(r, clock)),
        None => outln!("  last run:   never (tandem run {})", t.name),
    }
    if let Some((r, p)) = &s.running {
        let since = format!(
            "started {} ({}), pid {}",
            clock.ago(r.started),
            r.trigger,
            r.pid
        );
        let what = p.as_ref().map_or("starting".to_string(), progress_line);
        outln!("  running:    {}", sanitize(&format!("{since}: {what}")));
    }
    print_problems(s, clock);
    attention(s)
}

fn print_kind(t: &TaskSpec, s: &TaskStatus, detail: bool) {
    if t.continuous {
        let pids: Vec<String> = s.mounts.iter().map(|p| p.to_string()).collect();
        match pids.is_empty() {
            true => {
                outln!("  kind:       continuous: not mounted now (`tandem daemon` mounts it)")
            }
            false => outln!(
                "  kind:       continuous: mounted by the daemon (pid {})",
                pids.join(", ")
            ),
        }
        return;
    }
    if t.schedules.is_empty() {
        outln!("  kind:       manual (tandem run {})", t.name);
        return;
    }
    let when = When::of(t);
    let forms: Vec<String> = t.schedules.iter().map(|s| s.to_string()).collect();
    let next = when
        .next_human()
        .unwrap_or_else(|| "on an event".to_string());
    outln!(
        "  kind:       {}",
        sanitize(&format!("scheduled: {}; next run {next}", forms.join(", ")))
    );
    if detail {
        for s in &t.schedules {
            outln!("  schedule:   {}", sanitize(&s.to_string()));
        }
    }
}

fn print_problems(s: &TaskStatus, clock: &Clock) {
    let open = s.open_conflicts();
    if open > 0 {
        let hint = match s
            .pairs
            .iter()
            .find(|p| p.open_conflicts.as_ref().is_ok_and(|n| *n > 0))
        {
            Some(p) => format!(
                " (see `tandem conflicts {} {}`)",
                p.source.display(),
                p.target.display()
            ),
            None => String::new(),
        };
        outln!("  conflicts:  {}", sanitize(&format!("{open} open{hint}")));
    }
    for p in s.pairs.iter().filter(|p| p.held_deletions > 0) {
        let see = format!(
            "(see `tandem held {} {}`)",
            p.source.display(),
            p.target.display()
        );
        // Worded like `tandem held` words each side.
        let through_mount = p.held_deletions.saturating_sub(p.held_in_target);
        if through_mount > 0 {
            let msg = format!(
                "{through_mount} deletions not replayed to {} {see}",
                p.target.display()
            );
            outln!("  held:       {}", sanitize(&msg));
        }
        if p.held_in_target > 0 {
            let msg = format!(
                "{} deletions in the target {}, not applied to the source {see}",
                p.held_in_target,
                p.target.display()
            );
            outln!("  held:       {}", sanitize(&msg));
        }
    }
    if let Some(r) = &s.last_error {
        let msg = format!("{} ({}): {}", clock.ago(r.started), r.result, error_of(r));
        outln!("  last error: {}", sanitize(&msg));
    }
    if let Some(e) = &s.email {
        let at =
            e.at.map(|t| format!(" {}", clock.ago(t)))
                .unwrap_or_default();
        let to = e.to.join(", ");
        outln!(
            "  email:      {}",
            sanitize(&format!("not sent{at} to {to}: {}", e.error))
        );
    }
}
