//! A running task's progress, for `tandem status` in another process: the run writes a
//! small snapshot (`progress.json` in the task's state folder, replaced whole, at most
//! `EVERY` apart but at once on a change of phase) and appends each change it makes to
//! `events-<run id>.jsonl` (one JSON object a line), which `tandem status NAME --follow
//! -v` reads as it grows. Both are fed by the engine's progress events, as the progress
//! bar is. Trouble writing them is logged and never changes the run.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tandem_engine::{Event, SyncSpec};

pub const PROGRESS_FILE: &str = "progress.json";

/// How often, at most, the snapshot is rewritten within a phase.
const EVERY: Duration = Duration::from_millis(200);

/// Where a run stands, as `progress.json` holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The history row of the run.
    pub run_id: i64,
    pub pid: u32,
    /// The pair being synced: its number (from 1) of `pairs`, its folders.
    pub pair: usize,
    pub pairs: usize,
    pub source: String,
    pub target: String,
    /// `starting` (its `before` hook), `scanning` (both sides, then planning), `applying`
    /// (the plan), `done`.
    pub phase: String,
    /// Changes (copies, deletions, renames, folders, metadata) and bytes, done and planned,
    /// in the current pair.
    pub changes_done: u64,
    pub changes_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// When the current phase began, and when this snapshot was taken (Unix ms).
    pub phase_started_ms: i64,
    pub updated_ms: i64,
}

impl Progress {
    /// The snapshot in the task state folder `dir`, if there is a readable one.
    pub fn read(dir: &Path) -> Option<Progress> {
        let text = std::fs::read_to_string(dir.join(PROGRESS_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Time spent in the current phase, as of the snapshot.
    pub fn phase_elapsed(&self) -> Duration {
        Duration::from_millis(self.updated_ms.saturating_sub(self.phase_started_ms).max(0) as u64)
    }

    /// Bytes a second over the phase so far.
    pub fn rate(&self) -> f64 {
        let secs = self.phase_elapsed().as_secs_f64();
        if secs > 0.0 {
            self.bytes_done as f64 / secs
        } else {
            0.0
        }
    }
}

/// The events file of run `run_id` in the task state folder `dir`.
pub fn events_path(dir: &Path, run_id: i64) -> PathBuf {
    dir.join(format!("events-{run_id}.jsonl"))
}

/// What a run writes as it goes; does nothing for a dry run.
pub struct LiveRun {
    inner: Option<Mutex<Writer>>,
}

struct Writer {
    dir: PathBuf,
    now: Progress,
    last_write: Instant,
    events: Option<BufWriter<File>>,
}

impl LiveRun {
    /// Writes nothing (a dry run, or a run with no history row).
    pub fn inert() -> LiveRun {
        LiveRun { inner: None }
    }

    /// Starts the files of run `run_id` of a task of `pairs` pairs in `dir`, removing
    /// those of earlier runs.
    pub fn start(dir: &Path, run_id: i64, pairs: usize) -> LiveRun {
        if let Err(e) = std::fs::create_dir_all(dir) {
            tracing::warn!("cannot show the run's progress in {}: {e}", dir.display());
            return LiveRun::inert();
        }
        remove_old_events(dir);
        let path = events_path(dir, run_id);
        let events = File::create(&path)
            .map_err(|e| tracing::warn!("cannot write {}: {e}", path.display()))
            .ok()
            .map(BufWriter::new);
        let now = Progress {
            run_id,
            pid: std::process::id(),
            pairs,
            phase: "scanning".to_string(),
            ..Progress::default()
        };
        let mut w = Writer {
            dir: dir.to_path_buf(),
            now,
            last_write: Instant::now(),
            events,
        };
        w.phase("starting");
        LiveRun {
            inner: Some(Mutex::new(w)),
        }
    }

    fn with(&self, f: impl FnOnce(&mut Writer)) {
        if let Some(m) = &self.inner {
            f(&mut m.lock().unwrap_or_else(|p| p.into_inner()));
        }
    }

    /// The sync of pair number `n` (from 1) begins.
    pub fn pair(&self, n: usize, spec: &SyncSpec) {
        self.with(|w| {
            let p = &mut w.now;
            p.pair = n;
            p.source = spec.src.to_string_lossy().into_owned();
            p.target = spec.tgt.to_string_lossy().into_owned();
            (p.changes_done, p.changes_total, p.bytes_done, p.bytes_total) = (0, 0, 0, 0);
            w.phase("scanning");
        });
    }

    /// One of the engine's progress events.
    pub fn event(&self, e: &Event) {
        self.with(|w| w.event(e));
    }

    /// The run is over: the last snapshot says so, and the events are all written.
    pub fn finish(&self) {
        self.with(|w| {
            w.phase("done");
            if let Some(mut f) = w.events.take() {
                let _ = f.flush();
            }
        });
    }
}

impl Writer {
    fn event(&mut self, e: &Event) {
        match e {
            Event::Planned { actions, bytes } => {
                // A later round plans the paths that changed meanwhile: more work.
                self.now.changes_total += *actions as u64;
                self.now.bytes_total += bytes;
                if self.now.phase != "applying" {
                    self.phase("applying");
                    return;
                }
            }
            Event::Done { bytes, .. } => {
                self.now.changes_done += 1;
                self.now.bytes_done += bytes;
            }
            _ => {}
        }
        if let Some(line) = event_line(e) {
            self.append(&line);
        }
        if self.last_write.elapsed() >= EVERY {
            self.write();
        }
    }

    /// A new phase; `done` keeps the start of the one before, whose rate it shows.
    fn phase(&mut self, phase: &str) {
        self.now.phase = phase.to_string();
        if phase != "done" {
            self.now.phase_started_ms = Timestamp::now().as_millisecond();
        }
        self.write();
    }

    fn append(&mut self, line: &serde_json::Value) {
        if let Some(f) = &mut self.events {
            if let Err(e) = writeln!(f, "{line}") {
                tracing::warn!("cannot write the run's events: {e}");
                self.events = None;
            }
        }
    }

    /// Replaces the snapshot (a new file renamed over the old one: a reader sees a whole
    /// one), after the events so far, so that a follower never sees counts ahead of them.
    fn write(&mut self) {
        if let Some(f) = &mut self.events {
            let _ = f.flush();
        }
        self.now.updated_ms = Timestamp::now().as_millisecond();
        self.last_write = Instant::now();
        let path = self.dir.join(PROGRESS_FILE);
        let tmp = self.dir.join(format!("{PROGRESS_FILE}.tmp"));
        let text = serde_json::to_string(&self.now).unwrap_or_default();
        if let Err(e) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path)) {
            tracing::warn!("cannot write {}: {e}", path.display());
        }
    }
}

/// An event as a line of the events file: the changes made and the paths in trouble.
fn event_line(e: &Event) -> Option<serde_json::Value> {
    match e {
        Event::Done { .. }
        | Event::Conflict { .. }
        | Event::Skipped { .. }
        | Event::Failed { .. } => Some(crate::report::event_json(e)),
        _ => None,
    }
}

fn remove_old_events(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("events-") && name.ends_with(".jsonl") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
