//! The daemon: runs every task of the config on its schedules, one run at a time per task.
//!
//! One thread waits on one channel of events (a child ended, a signal) with a timeout that
//! is the next deadline of any schedule: idle, it sleeps until then, and nothing polls.
//! Each run is a child process `tandem run NAME --trigger T` (`children`), so a run's
//! priority, crash and memory stay its own. A run never overlaps another run of its task:
//! a schedule that comes due during a run is seen as missed when it ends (the arithmetic of
//! `Schedule::next_after` from the run's start) and runs once more; an event during a run
//! is kept as one more run. A run missed while no daemon ran (the machine off or asleep)
//! runs once at startup, as anacron and systemd's `Persistent=` do: the task's last run
//! is read from its pairs' state.
//!
//! On SIGTERM or SIGINT it starts nothing more, sends SIGTERM to its children (a run
//! commits what it did and stops) and waits for them.

mod appear;
mod children;
mod continuous;
mod lock;
mod status;
#[cfg(target_os = "linux")]
mod watch;
#[cfg(not(target_os = "linux"))]
#[path = "watch_poll.rs"]
mod watch;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use sd_notify::NotifyState;
use serde_json::json;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use tandem_task::{Config, Schedule, TaskSpec};

pub use children::{task_log, Ended, Kind};
pub use lock::{holder, lock_path, take as take_lock, DaemonLock};
pub use status::{status_path, status_pid};

use crate::error::DaemonError;

/// The longest single wait: the monotonic clock a wait runs on stops while the machine
/// sleeps, so a wait is cut to catch up with the wall clock after a resume.
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// How long a stopping daemon waits for its children before killing them.
const STOP_WAIT: Duration = Duration::from_secs(5 * 60);

/// What wakes the daemon.
#[derive(Debug)]
pub enum Event {
    Exited {
        task: String,
        kind: Kind,
        pid: u32,
        ended: Ended,
    },
    Signal(i32),
    /// The config file may have changed.
    Config,
    /// An `on-appear` path may have appeared.
    Paths,
}

/// What the daemon runs with.
#[derive(Clone, Debug)]
pub struct DaemonOptions {
    /// The config file (absolute), also given to each run.
    pub config: PathBuf,
    /// The tandem binary, to start runs with.
    pub exe: PathBuf,
}

/// A task as the daemon keeps it.
struct Slot {
    spec: TaskSpec,
    /// When its latest run started: the pairs' state at first, then the daemon's own runs.
    last: Option<Timestamp>,
    /// The pid of its run in progress.
    run: Option<u32>,
    /// A trigger that came during the run: one more run once it ends.
    again: Option<String>,
    /// A continuous task's mounts, one per source.
    mounts: Vec<continuous::MountChild>,
    /// Its `on-appear` paths and what was there when last looked at.
    appear: Vec<(PathBuf, Option<appear::Presence>)>,
}

pub struct Daemon {
    opts: DaemonOptions,
    slots: BTreeMap<String, Slot>,
    started: Timestamp,
    tz: TimeZone,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    config_error: Option<String>,
    stopping: bool,
    status_text: String,
    watch: Option<watch::Watch>,
}

/// Runs the daemon until SIGTERM or SIGINT. The service manager is told when it is ready
/// and when it stops (`sd_notify`, when started with `NOTIFY_SOCKET`). The lock must be
/// held.
pub fn run(opts: DaemonOptions, _lock: &DaemonLock) -> Result<(), DaemonError> {
    let mut d = Daemon::new(opts);
    d.watch_signals()?;
    d.watch = Some(
        watch::Watch::start(&d.opts.config, d.tx.clone())
            .map_err(DaemonError::io("watching", d.opts.config.clone()))?,
    );
    d.load_config();
    tracing::info!("daemon started (pid {})", std::process::id());
    d.start_at_start();
    d.write_status(Timestamp::now());
    tell_service_manager(&[NotifyState::Ready]);
    d.serve();
    tell_service_manager(&[NotifyState::Stopping]);
    d.stop_children();
    let _ = std::fs::remove_file(status_path());
    tracing::info!("daemon stopped");
    Ok(())
}

impl Daemon {
    fn new(opts: DaemonOptions) -> Daemon {
        let (tx, rx) = crossbeam_channel::unbounded();
        Daemon {
            opts,
            slots: BTreeMap::new(),
            started: Timestamp::now(),
            tz: TimeZone::system(),
            tx,
            rx,
            config_error: None,
            stopping: false,
            status_text: String::new(),
            watch: None,
        }
    }

    fn watch_signals(&self) -> Result<(), DaemonError> {
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]).map_err(
            DaemonError::io("installing signal handlers for", "the daemon"),
        )?;
        let tx = self.tx.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    let _ = tx.send(Event::Signal(sig));
                }
            })
            .map_err(DaemonError::io("starting a thread for", "the daemon"))?;
        Ok(())
    }

    /// Reads the config. One that does not parse or check is logged and leaves the tasks
    /// as they were (none at startup).
    fn load_config(&mut self) {
        let cfg = match read_config(&self.opts.config) {
            Ok(cfg) => cfg,
            Err(e) => {
                tracing::error!("{e}; keeping the last good config");
                self.config_error = Some(e.to_string());
                return;
            }
        };
        self.config_error = None;
        self.install_config(&cfg);
        if let Some(w) = &self.watch {
            w.set_paths(self.appear_paths());
        }
        tracing::info!(
            "read {}: {} tasks",
            self.opts.config.display(),
            self.slots.len()
        );
    }

    /// The tasks of `cfg` in place of the old ones: a task kept keeps its state.
    fn install_config(&mut self, cfg: &Config) {
        let mut old = std::mem::take(&mut self.slots);
        for spec in cfg.tasks() {
            let slot = match old.remove(&spec.name) {
                Some(mut s) => {
                    if s.spec != *spec {
                        // Its mounts start again with the new settings; a run in progress
                        // finishes with the old ones.
                        stop_mounts(&spec.name, &s.mounts, "its settings changed");
                    }
                    s.spec = spec.clone();
                    s
                }
                None => Slot {
                    last: last_run(spec),
                    spec: spec.clone(),
                    run: None,
                    again: None,
                    mounts: Vec::new(),
                    appear: Vec::new(),
                },
            };
            let slot = slot.looking_at(appear::paths_of(&spec.schedules));
            self.slots.insert(spec.name.clone(), slot);
        }
        for (name, slot) in old {
            stop_mounts(&name, &slot.mounts, "it was removed from the config");
            if let Some(pid) = slot.run {
                // Removed from the config while it runs: left to finish, forgotten after.
                note(
                    &name,
                    &format!("removed from the config; its run (pid {pid}) is left to finish"),
                );
            }
        }
    }

    /// Serves events and deadlines until a stop.
    fn serve(&mut self) {
        loop {
            let now = Timestamp::now();
            self.start_due(now);
            self.restart_due(now);
            self.write_status(now);
            let wait = self
                .next_deadline(now)
                .map_or(MAX_WAIT, |t| until(now, t))
                .min(MAX_WAIT);
            match self.rx.recv_timeout(wait) {
                Ok(Event::Signal(SIGHUP) | Event::Config) => self.load_config(),
                Ok(Event::Paths) => self.check_appeared(),
                Ok(Event::Signal(sig)) => {
                    tracing::info!(
                        "stopping (signal {sig}): no new runs; waiting for the running ones"
                    );
                    return;
                }
                Ok(Event::Exited {
                    task,
                    kind,
                    pid,
                    ended,
                }) => self.exited(&task, kind, pid, ended),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// When a task is next due by its time schedules (`None`: none, or it runs now).
    fn due_at(&self, slot: &Slot, now: Timestamp) -> Option<Timestamp> {
        if slot.run.is_some() || slot.spec.continuous {
            return None;
        }
        slot.spec
            .schedules
            .iter()
            .filter_map(|s| {
                // A calendar time never run counts from the daemon's start: a time that
                // passes while it waits is due, a time before it is not.
                let last = match s {
                    Schedule::Every { .. } => slot.last,
                    _ => slot.last.or(Some(self.started)),
                };
                s.next_after(last, now, &self.tz)
            })
            .min()
    }

    fn next_deadline(&self, now: Timestamp) -> Option<Timestamp> {
        let runs = self.slots.values().filter_map(|s| self.due_at(s, now));
        runs.chain(self.next_restart()).min()
    }

    fn exited(&mut self, task: &str, kind: Kind, pid: u32, ended: Ended) {
        match kind {
            Kind::Run => self.ended(task, pid, ended),
            Kind::Mount { pair } => self.mount_ended(task, pair, pid, ended),
        }
    }

    fn start_due(&mut self, now: Timestamp) {
        let due: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, s)| self.due_at(s, now).is_some_and(|t| t <= now))
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            self.start(&name, "schedule");
        }
    }

    fn start_at_start(&mut self) {
        let names: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, s)| s.spec.schedules.contains(&Schedule::AtStart))
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            self.start(&name, "at-start");
        }
    }

    /// Starts a run of `name`, or keeps the trigger for after the run in progress.
    fn start(&mut self, name: &str, trigger: &str) {
        if self.stopping {
            return;
        }
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        if slot.spec.continuous {
            // Kept in step by its mounts: a run would only wait for their lock.
            return;
        }
        if slot.run.is_some() {
            if slot.again.is_none() {
                note(
                    name,
                    &format!("{trigger}: a run is in progress; one more run after it"),
                );
            }
            slot.again = Some(trigger.to_string());
            return;
        }
        slot.last = Some(Timestamp::now());
        let args: Vec<OsString> = vec![
            "--config".into(),
            good_config_path().into(),
            "run".into(),
            name.into(),
            "--trigger".into(),
            trigger.into(),
        ];
        match children::spawn(
            &self.opts.exe,
            &args,
            &task_log(name),
            name,
            Kind::Run,
            &self.tx,
        ) {
            Ok(pid) => {
                slot.run = Some(pid);
                note(name, &format!("run started ({trigger}), pid {pid}"));
            }
            Err(e) => warn(name, &format!("could not start a run ({trigger}): {e}")),
        }
    }

    fn ended(&mut self, name: &str, pid: u32, ended: Ended) {
        let Some(slot) = self.slots.get_mut(name).filter(|s| s.run == Some(pid)) else {
            note(name, &format!("run (pid {pid}) ended: {ended}"));
            return;
        };
        slot.run = None;
        let again = slot.again.take();
        match ended {
            Ended::Code(0 | 1) => note(name, &format!("run (pid {pid}) ended: {}", outcome(ended))),
            _ => warn(name, &format!("run (pid {pid}) ended: {}", outcome(ended))),
        }
        if let Some(trigger) = again {
            self.start(name, &trigger);
        }
    }

    /// SIGTERM to every running child, then waits for them (killing what is left after
    /// `STOP_WAIT`).
    fn stop_children(&mut self) {
        self.stopping = true;
        let running = |d: &Daemon| {
            d.slots
                .values()
                .flat_map(|s| {
                    s.run
                        .into_iter()
                        .chain(s.mounts.iter().filter_map(|m| m.pid))
                })
                .collect::<Vec<_>>()
        };
        for pid in running(self) {
            children::terminate(pid);
        }
        let deadline = Instant::now() + STOP_WAIT;
        let mut killed = false;
        while !running(self).is_empty() {
            match self.rx.recv_deadline(deadline) {
                Ok(Event::Exited {
                    task,
                    kind,
                    pid,
                    ended,
                }) => self.exited(&task, kind, pid, ended),
                Ok(Event::Signal(_) | Event::Config | Event::Paths) => {}
                Err(_) if !killed => {
                    for pid in running(self) {
                        tracing::warn!("pid {pid} did not stop within {STOP_WAIT:?}; killing it");
                        children::kill(pid);
                    }
                    killed = true;
                }
                Err(_) => return,
            }
        }
    }

    fn write_status(&mut self, now: Timestamp) {
        let tasks: Vec<_> = self
            .slots
            .values()
            .map(|s| {
                json!({
                    "name": s.spec.name,
                    "running": s.run,
                    "continuous": s.spec.continuous,
                    "mounts": s.mounts.iter().map(|m| m.pid).collect::<Vec<_>>(),
                    "last_start": s.last.map(|t| t.to_string()),
                    "next": self.due_at(s, now).map(|t| t.max(now).to_string()),
                })
            })
            .collect();
        let value = json!({
            "pid": std::process::id(),
            "started": self.started.to_string(),
            "config": self.opts.config,
            "config_error": self.config_error,
            "tasks": tasks,
        });
        status::write(&status_path(), &value, &mut self.status_text);
    }
}

impl Slot {
    /// The slot watching `paths` for its `on-appear` schedules: a path it already watched
    /// keeps what was seen there, a new one takes what is there now (no run for it).
    fn looking_at(mut self, paths: Vec<PathBuf>) -> Slot {
        let old = std::mem::take(&mut self.appear);
        self.appear = paths
            .into_iter()
            .map(|p| {
                let seen = old
                    .iter()
                    .find(|(q, _)| *q == p)
                    .map_or_else(|| appear::Presence::of(&p), |(_, s)| *s);
                (p, seen)
            })
            .collect();
        self
    }
}

/// SIGTERM to a task's mounts (each unmounts cleanly).
fn stop_mounts(task: &str, mounts: &[continuous::MountChild], why: &str) {
    for pid in mounts.iter().filter_map(|m| m.pid) {
        note(task, &format!("stopping its mount (pid {pid}): {why}"));
        children::terminate(pid);
    }
}

/// A run's end in words: its exit code as `tandem run` documents it.
fn outcome(ended: Ended) -> String {
    match ended {
        Ended::Code(0) => "ok".into(),
        Ended::Code(1) => "done, with conflicts or problems (exit code 1)".into(),
        Ended::Code(2) => "error or skipped (exit code 2)".into(),
        Ended::Code(3) => "halted for safety (exit code 3)".into(),
        Ended::Code(4) => "stopped on request before it finished (exit code 4)".into(),
        other => other.to_string(),
    }
}

/// The time until `t`, rounded up to the next millisecond (a wake-up a little early would
/// only wait again).
fn until(now: Timestamp, t: Timestamp) -> Duration {
    let d = t.duration_since(now);
    Duration::try_from(d).unwrap_or(Duration::ZERO) + Duration::from_millis(1)
}

/// `sd_notify`: nothing without `NOTIFY_SOCKET`; a failure is logged, never fatal.
fn tell_service_manager(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!("could not tell the service manager {state:?}: {e}");
    }
}

/// Where the daemon keeps the config text it last read well: its runs read this copy, so
/// that a config broken meanwhile leaves them as they were.
pub fn good_config_path() -> PathBuf {
    tandem_state::state_home().join("daemon-config.toml")
}

/// Reads and checks the config; a good one is copied to `good_config_path` (written
/// whole, then renamed over the old copy).
fn read_config(path: &Path) -> Result<Config, DaemonError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(DaemonError::io("reading", path)(e)),
    };
    let cfg = Config::from_text(path, &text).map_err(DaemonError::Config)?;
    let good = good_config_path();
    let tmp = good.with_extension("toml.tmp");
    std::fs::write(&tmp, &text)
        .and_then(|()| std::fs::rename(&tmp, &good))
        .map_err(DaemonError::io("writing", &good))?;
    Ok(cfg)
}

/// The task's last run from its pairs' state; one that cannot be read counts as never.
fn last_run(spec: &TaskSpec) -> Option<Timestamp> {
    spec.last_run().unwrap_or_else(|e| {
        warn(&spec.name, &format!("its last run cannot be read: {e}"));
        None
    })
}

/// A line about a task: to the daemon's log (stderr) and the task's own log.
fn note(task: &str, msg: &str) {
    tracing::info!("task {task}: {msg}");
    append(task, msg);
}

fn warn(task: &str, msg: &str) {
    tracing::warn!("task {task}: {msg}");
    append(task, msg);
}

fn append(task: &str, msg: &str) {
    let path = task_log(task);
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        writeln!(f, "{} tandem daemon: {msg}", Timestamp::now())
    };
    if let Err(e) = write() {
        tracing::warn!("could not write {}: {e}", path.display());
    }
}
