//! The replicator of a mounted source, one per target: reads the journal from this target's
//! cursor and the target's watcher events, turns both into the set of paths to look at
//! again, and syncs those paths through the same scan → reconcile → apply path as
//! everything else (STYLE.md: journal records and watcher events are hints, not a second
//! decision engine). Changes found in the target are applied to the source through the
//! hidden directory fd, then the mount's cache for them is invalidated (`SourceHooks`).
//!
//! Coalescing: a path written a thousand times between two passes is looked at once; a
//! file still open for writing (in the source, through the mount, or in the target, as its
//! events say) waits for its last writer to close, or for a while for files held open for
//! long, so that it is copied whole, once.
//!
//! Faults: a pass that stops because the target cannot take writes (full, read-only) or
//! vanished pauses this target; it is retried with backoff by a full reconcile, and its
//! backlog stays in the journal (the cursor does not move) until then.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use tandem_core::{ChangeOp, RelPath, Side};
use tandem_state::{HeldAction, JournalWriter, Store};

use crate::brake::{Brake, BrakeLimit, HoldLog, HoldNotice, OnHold, Tell};
use crate::run::{EngineError, Session};
use crate::side::Watch;
use crate::spec::{Event, PathProblem, Report, Scope};
use crate::watch::{Echoes, TargetHint};

/// A file held open for writing longer than this is synced once its size and mtime have
/// stayed the same for `SETTLE_QUIET` (kernel passthrough writes leave no records to go by),
/// and after `SETTLE_OPEN_MAX` in any case (the copy is re-checked, so a file that keeps
/// changing is retried, never stored torn).
const SETTLE_OPEN: Duration = Duration::from_secs(2);
const SETTLE_OPEN_MAX: Duration = Duration::from_secs(60);
/// A target file with write events but no close (mmap, a writer that keeps it open) is
/// synced once it has been quiet this long.
const SETTLE_QUIET: Duration = Duration::from_millis(500);
/// Passes in a row that may be done again because the source changed while scanned.
const MAX_DEFERRALS: u32 = 3;
/// Most records read per pass.
const BATCH: usize = 20_000;
/// Backoff of a paused target: first retry, and the longest wait between retries.
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Backoff of a target whose connection dropped (a remote side): connecting again costs an
/// ssh handshake, so the retries start slower and end sparser.
const RECONNECT_FIRST: Duration = Duration::from_secs(1);
const RECONNECT_MAX: Duration = Duration::from_secs(60);
/// First retry of a path whose sync failed (most failures are races with a busy program,
/// already over).
const RETRY_FIRST: Duration = Duration::from_millis(100);
/// A pass that read at least this many records was part of a burst (an untar, a build,
/// an `rm -rf`): the next one waits until `BURST_GATHER` after it ended, so that each pass
/// (one scan, one flush, one commit) takes in more of the burst. A lone change is synced
/// at once. (Untar of 12k files: 330 passes at 20 ms, 81 at 100 ms, with 13 % less daemon
/// CPU and the same untar time.)
const BURST_RECORDS: usize = 32;
const BURST_GATHER: Duration = Duration::from_millis(100);
/// A folder renamed or made in the target is read again (`TargetHint::Again`) once the
/// watcher has been quiet this long (so `notify` has added its watches), or this long
/// after it arrived at the latest.
const AGAIN_QUIET: Duration = Duration::from_millis(200);
const AGAIN_MAX: Duration = Duration::from_secs(5);
/// Journal records every target has read are dropped at most this often.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// How a replicator runs.
#[derive(Clone, Debug)]
pub struct ReplicatorConfig {
    /// Watch the target for changes made there (continuous two-way).
    pub watch_target: bool,
    /// Reconcile the whole pair this often, for anything the watcher missed.
    pub rescan_every: Duration,
    /// Hold deletions through the mount that come faster than this (`None`: never).
    pub brake: Option<BrakeLimit>,
    /// Told of each burst of deletions the brake holds (a task's mail).
    pub on_hold: Option<OnHold>,
}

impl Default for ReplicatorConfig {
    fn default() -> Self {
        ReplicatorConfig {
            watch_target: true,
            rescan_every: Duration::from_secs(600),
            brake: Some(BrakeLimit::default()),
            on_hold: None,
        }
    }
}

/// Where a target stands, for `tandem status`.
#[derive(Clone, Debug, Default)]
pub struct TargetStatus {
    pub target: String,
    /// Journal position replicated to this target.
    pub cursor: i64,
    /// Paths seen changed (either side) and not synced yet.
    pub pending: usize,
    /// Why this target is paused (retried with backoff), if it is.
    pub paused: Option<String>,
    /// Since when (Unix seconds) this target cannot be reached (a remote side's connection
    /// dropped), retried with backoff; the journal keeps its backlog meanwhile.
    pub disconnected_since_unix: Option<i64>,
    /// The target is not watched (no inotify): only journal records and rescans find
    /// changes, and target-side changes wait for the periodic rescan.
    pub unwatched: Option<String>,
    pub conflicts: usize,
    pub failed: Vec<PathProblem>,
    pub last_full_rescan_unix: i64,
}

struct Paused {
    reason: String,
    retry_at: Instant,
    backoff: Duration,
}

/// A pause of one replicator between passes, asked for by another command that needs the
/// pair for a moment (`tandem resolve` while mounted).
#[derive(Default)]
pub struct Hold {
    /// Set by whoever wants the pair.
    pub wanted: AtomicBool,
    /// Set by the replicator once it is between passes and waits.
    pub holding: AtomicBool,
}

pub struct Replicator {
    session: Session,
    hold: Arc<Hold>,
    journal: Arc<JournalWriter>,
    /// The store that holds the journal and the cursors.
    reader: Store,
    bell: Receiver<()>,
    config: ReplicatorConfig,
    target: String,
    cursor: i64,
    /// Source paths seen in the journal and not synced yet.
    pending: BTreeSet<RelPath>,
    /// Open-for-write handles per source path, and when the path was first held back.
    writers: HashMap<RelPath, (u32, Instant)>,
    /// Files open for longer than `SETTLE_OPEN`: their (size, mtime) when last looked at,
    /// and since when they have been so.
    long_open: HashMap<RelPath, ((i64, i64), Instant)>,
    /// Renames (old name, new name) whose ends have not been synced yet.
    renames: Vec<(RelPath, RelPath)>,
    hints_tx: Sender<TargetHint>,
    hints_rx: Receiver<TargetHint>,
    watcher: Option<Watch>,
    /// The folders and renames this replicator's session makes in the target, for its
    /// watcher to recognise.
    echoes: Arc<Echoes>,
    /// Target paths to look at again, and whether below them too.
    tgt_pending: BTreeMap<RelPath, bool>,
    /// Target files being written: (first event, last event).
    tgt_writing: HashMap<RelPath, (Instant, Instant)>,
    /// Target folders to read again once the watcher has caught up, since when.
    tgt_again: BTreeMap<RelPath, Instant>,
    /// When the target watcher last said anything.
    tgt_last_hint: Instant,
    /// Why the whole pair must be reconciled before anything else.
    full_due: Option<String>,
    last_full: Instant,
    last_trim: Instant,
    paused: Option<Paused>,
    /// Paths whose last sync failed: when to look at them again, and how many times in a
    /// row they failed (each failure doubles the wait).
    retry: BTreeMap<RelPath, (Instant, u32)>,
    /// Passes in a row that applied nothing because the source changed while scanned.
    deferrals: u32,
    /// The last journal record whose opens and closes are counted in `writers`.
    noted: i64,
    /// Records the last pass read, and when it ended.
    last_pass: (usize, Instant),
    status: Arc<Mutex<TargetStatus>>,
    /// Deletions through the mount wait here to be replayed or held.
    brake: Brake,
    /// Deletions made in the target (its watcher's) wait here to be merged or held.
    tgt_brake: Brake,
    /// What each brake's held burst has logged so far: source, target.
    hold_log: [HoldLog; 2],
}

impl Replicator {
    /// A replicator for `session`'s target, reading the journal from `reader` (a store
    /// holding the journal `journal` writes to: `Session::journal_reader` of the session
    /// that owns the journal).
    pub fn new(
        mut session: Session,
        journal: Arc<JournalWriter>,
        reader: Store,
        config: ReplicatorConfig,
    ) -> Result<Replicator, EngineError> {
        let target = session.target_key();
        let cursor = reader.cursor(&target)?;
        let (hints_tx, hints_rx) = crossbeam_channel::unbounded();
        let bell = journal.subscribe();
        let echoes = Arc::new(Echoes::default());
        // A remote side's agent recognises its own changes itself: announcing them here
        // would only cost a round trip per folder made.
        if session.target().local().is_some() {
            session.set_target_echoes(Arc::clone(&echoes));
        }
        let brake = config.brake;
        let status = Arc::new(Mutex::new(TargetStatus {
            target: target.clone(),
            cursor,
            ..TargetStatus::default()
        }));
        let mut r = Replicator {
            session,
            hold: Arc::default(),
            journal,
            reader,
            bell,
            config,
            target,
            cursor,
            pending: BTreeSet::new(),
            writers: HashMap::new(),
            long_open: HashMap::new(),
            renames: Vec::new(),
            hints_tx,
            hints_rx,
            watcher: None,
            echoes,
            tgt_pending: BTreeMap::new(),
            tgt_again: BTreeMap::new(),
            tgt_last_hint: Instant::now(),
            tgt_writing: HashMap::new(),
            full_due: None,
            last_full: Instant::now(),
            last_trim: Instant::now(),
            paused: None,
            retry: BTreeMap::new(),
            deferrals: 0,
            noted: cursor,
            last_pass: (0, Instant::now()),
            brake: Brake::new(brake),
            tgt_brake: Brake::new(brake),
            hold_log: Default::default(),
            status,
        };
        if r.config.watch_target {
            r.start_watcher();
        }
        Ok(r)
    }

    /// The startup reconcile of a mount: the whole pair, before the mount is served (the
    /// target watcher is already running, so nothing changed in the target meanwhile is
    /// missed). The cursor then starts at the journal's head.
    pub fn startup(&mut self, on_event: &dyn Fn(Event)) -> Result<Report, EngineError> {
        let head = self.reader.journal_head()?;
        // What went missing in the target while nothing was mounted is held like a mass
        // delete made there while mounted: a drive emptied by hand, a `rm -rf` on the
        // wrong side, waits for `tandem release` instead of emptying the source.
        self.session
            .set_whole_brake(self.config.brake.map(|b| b.count));
        let report = self.session.sync(&Scope::All, on_event);
        self.session.set_whole_brake(None);
        let report = report?;
        self.hold_braked(&report)?;
        self.last_full = Instant::now();
        self.cursor = head;
        // Opens and closes of an earlier mount (before a crash) count for nothing now.
        self.noted = self.noted.max(head);
        self.reader.set_cursor(&self.target, head)?;
        self.publish(Some(&report));
        Ok(report)
    }

    /// Sets what happens after this replicator changes a source path.
    pub fn set_source_hooks(&mut self, hooks: crate::SourceHooks) {
        self.session.set_source_hooks(hooks);
    }

    /// The journal position this target has reached.
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// Pauses this replicator between passes while `wanted` is set.
    pub fn hold(&self) -> Arc<Hold> {
        Arc::clone(&self.hold)
    }

    /// A live view of this target's state, updated after every pass.
    pub fn status(&self) -> Arc<Mutex<TargetStatus>> {
        Arc::clone(&self.status)
    }

    pub fn into_session(self) -> Session {
        self.session
    }

    /// Asks for a full reconcile on the next pass.
    pub fn rescan(&mut self, why: &str) {
        self.full_due.get_or_insert_with(|| why.to_string());
    }

    /// Runs until `stop` is set, then drains what is journaled (bounded by `drain_for`).
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        drain_for: Duration,
        on_event: &dyn Fn(Event),
    ) -> Result<(), EngineError> {
        while !stop.load(Ordering::Relaxed) {
            if self.hold.wanted.load(Ordering::SeqCst) {
                self.hold.holding.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            if self.hold.holding.swap(false, Ordering::SeqCst) {
                // Whatever the holder did to the pair is re-checked like any change.
                self.journal.flush();
            }
            self.wait(self.next_deadline());
            if self.last_pass.0 >= BURST_RECORDS {
                let until = self.last_pass.1 + BURST_GATHER;
                if let Some(d) = until.checked_duration_since(Instant::now()) {
                    std::thread::sleep(d);
                }
            }
            let (read, _) = self.pass(false, on_event)?;
            self.last_pass = (read, Instant::now());
        }
        self.hold.holding.store(false, Ordering::SeqCst);
        let deadline = Instant::now() + drain_for;
        self.journal.flush();
        while Instant::now() < deadline {
            let (read, _) = self.pass(true, on_event)?;
            if self.paused.is_some() || (read == 0 && self.is_idle()) {
                break;
            }
        }
        Ok(())
    }

    /// True when nothing seen is left to sync.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
            && self.tgt_pending.is_empty()
            && self.tgt_writing.is_empty()
            && self.hints_rx.is_empty()
            && self.full_due.is_none()
    }

    /// Blocks until the journal moves, the target watcher says something, or `timeout`.
    fn wait(&mut self, timeout: Duration) {
        if !self.hints_rx.is_empty() {
            return;
        }
        crossbeam_channel::select! {
            recv(self.bell) -> _ => {}
            recv(self.hints_rx) -> h => {
                if let Ok(h) = h {
                    self.take_hint(h);
                }
            }
            default(timeout) => {}
        }
    }

    /// How long the loop may sleep: until a held-back file is due, a paused target's
    /// retry, or the periodic rescan; at most a second (to notice `stop`).
    fn next_deadline(&self) -> Duration {
        let now = Instant::now();
        let mut due = now + Duration::from_secs(1);
        if let Some(p) = &self.paused {
            due = due.min(p.retry_at);
        } else {
            due = due.min(self.last_full + self.config.rescan_every);
            let something_held = !self.pending.is_empty() || !self.tgt_pending.is_empty();
            if !self.writers.is_empty() && something_held {
                due = due.min(now + Duration::from_millis(100));
            }
            // Due retries are already pending (and wait for writers like the rest).
            for (at, _) in self.retry.values() {
                if *at > now {
                    due = due.min(*at);
                }
            }
            for (first, last) in self.tgt_writing.values() {
                due = due.min((*last + SETTLE_QUIET).min(*first + SETTLE_OPEN));
            }
            for at in self.tgt_again.values() {
                due = due.min((self.tgt_last_hint + AGAIN_QUIET).min(*at + AGAIN_MAX));
            }
        }
        due.saturating_duration_since(now)
    }

    fn take_hint(&mut self, h: TargetHint) {
        let now = Instant::now();
        self.tgt_last_hint = now;
        match h {
            TargetHint::Changed { path, deep } => {
                let d = self.tgt_pending.entry(path).or_insert(false);
                *d |= deep;
            }
            TargetHint::Writing(path) => {
                self.tgt_writing
                    .entry(path)
                    .and_modify(|w| w.1 = now)
                    .or_insert((now, now));
            }
            TargetHint::Closed(path) => {
                self.tgt_writing.remove(&path);
                self.tgt_pending.entry(path).or_insert(false);
            }
            TargetHint::Removed { path, dir } => {
                let deletion = target_deletion(path, dir);
                if !self.tgt_brake.take(&deletion, now) {
                    self.tgt_pending
                        .entry(deletion.change.path)
                        .or_insert(false);
                }
            }
            TargetHint::Left(path) => self.take_left(path, now),
            TargetHint::Again(path) => {
                self.tgt_again.entry(path).or_insert(now);
            }
            TargetHint::Rescan(why) => self.rescan(&why),
        }
    }

    /// A path a program moved out of the target: a deletion of it and of everything the
    /// baseline holds below it (no event names those), counted by the brake like the
    /// removals of an `rm -rf` made there. Without a brake, or with nothing known there,
    /// it is re-checked below like any folder that changed.
    fn take_left(&mut self, path: RelPath, now: Instant) {
        let known = match self
            .session
            .store()
            .load_baseline_scoped(&[(path.clone(), true)])
        {
            Ok(base) => base,
            Err(e) => {
                tracing::warn!("{}: moved out of {}: {e}", path.escaped(), self.target);
                BTreeMap::new()
            }
        };
        let mut taken = false;
        // The folders above it come too: left out.
        for (p, b) in known
            .iter()
            .filter(|(p, _)| **p == path || p.is_below(&path))
        {
            let deletion = target_deletion(p.clone(), b.kind == tandem_core::Kind::Dir);
            taken |= self.tgt_brake.take(&deletion, now);
        }
        if !taken {
            self.tgt_pending.insert(path, true);
        }
    }

    /// Watches the target through its side: inotify here, or the remote agent's watch,
    /// whose hints come back over the connection.
    fn start_watcher(&mut self) {
        self.watcher = None;
        let watched = self
            .session
            .target()
            .watch(self.hints_tx.clone(), Arc::clone(&self.echoes));
        match watched {
            Ok(w) => {
                self.watcher = Some(w);
                self.set_status(|s| s.unwatched = None);
            }
            Err(why) => self.set_status(|s| s.unwatched = Some(why)),
        }
    }

    /// Reads new records and target events, syncs the paths that are ready. With `force`,
    /// paths with open writers are synced too (shutdown). Returns (records read, the
    /// sync's report).
    pub fn pass(
        &mut self,
        force: bool,
        on_event: &dyn Fn(Event),
    ) -> Result<(usize, Option<Report>), EngineError> {
        while let Ok(h) = self.hints_rx.try_recv() {
            self.take_hint(h);
        }
        if let Some(p) = &self.paused {
            if Instant::now() < p.retry_at {
                return Ok((0, None));
            }
            let why = format!("retrying after: {}", p.reason);
            self.rescan(&why);
        }
        if self.last_full.elapsed() >= self.config.rescan_every {
            self.rescan("periodic rescan");
        }
        if self.full_due.is_some() {
            return self.full(on_event).map(|r| (0, r));
        }

        let now = Instant::now();
        for (p, (due, _)) in &self.retry {
            if *due <= now {
                self.tgt_pending.insert(p.clone(), true);
            }
        }
        let caught_up = now.duration_since(self.tgt_last_hint) >= AGAIN_QUIET;
        let again: Vec<RelPath> = self
            .tgt_again
            .iter()
            .filter(|(_, at)| caught_up || now.duration_since(**at) >= AGAIN_MAX)
            .map(|(p, _)| p.clone())
            .collect();
        for p in again {
            self.tgt_again.remove(&p);
            self.tgt_pending.insert(p, true);
        }
        let before = self.cursor;
        // Every operation a program has seen complete is in the journal (the mount records
        // it before replying): read them all, so that this pass does not see the disk ahead
        // of its records (a folder renamed after a file in it was: the file's old path would
        // look deleted).
        // Counted before the flush: a rename handed over after this point, even one the
        // flush does not wait for, marks the scan as possibly ahead of the records read.
        let mark = self.journal.mark();
        self.journal.flush();
        let records = self.reader.journal_after(self.cursor, BATCH)?;
        let read = records.len();
        self.note_records(&records);
        if let Some(last) = records.last() {
            self.cursor = last.seq;
        }
        self.brake_step(force)?;

        let held_now = self.held_now(force);
        let now = Instant::now();
        let ready: Vec<RelPath> = self
            .pending
            .iter()
            .filter(|p| !held_now.contains(*p))
            .cloned()
            .collect();
        for p in &ready {
            self.pending.remove(p);
        }
        // Target files whose writer closed them or went quiet.
        let settled: Vec<RelPath> = self
            .tgt_writing
            .iter()
            .filter(|(_, (first, last))| {
                force
                    || now.duration_since(*last) >= SETTLE_QUIET
                    || now.duration_since(*first) >= SETTLE_OPEN
            })
            .map(|(p, _)| p.clone())
            .collect();
        for p in settled {
            self.tgt_writing.remove(&p);
            self.tgt_pending.entry(p).or_insert(false);
        }
        let tgt_ready: Vec<(RelPath, bool)> = self
            .tgt_pending
            .iter()
            .filter(|(p, _)| !held_now.contains(*p) && !self.tgt_writing.contains_key(*p))
            .map(|(p, d)| (p.clone(), *d))
            .collect();
        for (p, _) in &tgt_ready {
            self.tgt_pending.remove(p);
        }

        let mut report = None;
        if !ready.is_empty() || !tgt_ready.is_empty() {
            let renames_before = self.renames.clone();
            let (mut hints, shallow_renames) = self.hints(&ready, &tgt_ready);
            hints.extend(tgt_ready.iter().cloned());
            let hints = merge_hints(hints);
            if crate::run::trace_on() {
                let shown: Vec<String> = hints
                    .iter()
                    .map(|(p, d)| format!("{}{}", p.escaped(), if *d { "/**" } else { "" }))
                    .collect();
                tracing::info!(
                    "trace: pass: {} renames shallow, hints {}",
                    shallow_renames,
                    shown.join(" ")
                );
            }
            // A program that renames something through the mount while this pass scans
            // makes the scan run ahead of the records read: the paths below the old name
            // would look deleted. Such a pass applies nothing and is done again with the
            // new records (a few times at most: a source that never stops renaming is
            // synced anyway, safely, if less well). A file opened for writing meanwhile is
            // left out of this pass (it is not yet known to be held, and would be copied
            // half written); its records hold it in the next. Other changes made meanwhile
            // only make the scan see newer content, which their own records bring back.
            let journal = Arc::clone(&self.journal);
            let quiet = move || journal.opened_since(mark);
            let journal = Arc::clone(&self.journal);
            let last_try = move || Some(journal.opened_since(mark).unwrap_or_default());
            let guard: &dyn Fn() -> Option<Vec<RelPath>> = if self.deferrals < MAX_DEFERRALS {
                &quiet
            } else {
                &last_try
            };
            let mut r = self.sync_or_pause(&Scope::Hints(hints), on_event, guard, &held_now)?;
            if r.as_ref().is_some_and(|r| r.deferred) {
                self.deferrals += 1;
                self.renames = renames_before;
                self.pending.extend(ready);
                for (p, d) in tgt_ready {
                    *self.tgt_pending.entry(p).or_insert(false) |= d;
                }
                self.reader.set_cursor(&self.target, self.cursor)?;
                return Ok((read, None));
            }
            self.deferrals = 0;
            if let Some(rep) = &r {
                // Opened while scanned: their records may have been read already.
                self.pending.extend(rep.left_out.iter().cloned());
                if rep.renamed < shallow_renames as u64 || !rep.failed.is_empty() {
                    // A rename was not replayed as one (the target changed meanwhile, a
                    // conflict): the fallback plans each child, so it must see them all.
                    let mut all: Vec<RelPath> = ready.clone();
                    all.extend(tgt_ready.iter().map(|(p, _)| p.clone()));
                    // A step that failed may lie outside what this pass was asked about (a
                    // conflict copy set aside whose copy raced): looked at again too, or its
                    // failure would vanish with this report and never be retried.
                    all.extend(rep.failed.iter().map(|f| f.path.clone()));
                    r = self.sync_or_pause(
                        &Scope::Paths(coalesce(all)),
                        on_event,
                        &last_try,
                        &held_now,
                    )?;
                    if let Some(rep) = &r {
                        self.pending.extend(rep.left_out.iter().cloned());
                    }
                }
            }
            if let Some(rep) = &r {
                let looked_at: Vec<&RelPath> = ready
                    .iter()
                    .chain(tgt_ready.iter().map(|(p, _)| p))
                    .collect();
                self.schedule_retry(rep, &looked_at);
            }
            report = r;
        }
        if self.paused.is_some() {
            // The backlog stays in the journal; the retry reconciles everything.
            self.cursor = before;
        } else if read > 0 {
            // Records of paths still held back are kept in memory; after a crash the startup
            // scan finds them (the journal is a fast path, not the truth).
            self.reader.set_cursor(&self.target, self.cursor)?;
            if self.last_trim.elapsed() >= TRIM_EVERY {
                self.reader.trim_journal(&self.session.spec().retention)?;
                self.last_trim = Instant::now();
            }
        }
        self.publish(report.as_ref());
        Ok((read, report))
    }

    /// A full reconcile of the pair (startup of a paused target's retry, the periodic
    /// rescan, lost watcher events); on success the cursor moves to the journal's head as
    /// it was before the scan.
    fn full(&mut self, on_event: &dyn Fn(Event)) -> Result<Option<Report>, EngineError> {
        if self.paused.is_some() {
            // A target unmounted and mounted again is another directory: open it again.
            if let Err(e) = self.session.reopen_target() {
                self.pause(e.to_string());
                self.publish(None);
                return Ok(None);
            }
            self.start_watcher();
        }
        let head = self.reader.journal_head()?;
        // The records this reconcile covers are not read by a pass: their opens and closes
        // still count, or a file opened before it and closed after would look open for ever
        // (and one closed meanwhile, still open).
        let mut at = self.noted.max(self.cursor);
        while at < head {
            let records = self.reader.journal_after(at, BATCH)?;
            let Some(last) = records.last() else { break };
            at = last.seq;
            self.note_writers(&records);
        }
        let held = self.held_now(false);
        // What went missing in the target meanwhile is weighed by the same brake as what
        // its watcher sees (`Report::braked`).
        self.session
            .set_whole_brake(self.config.brake.map(|b| b.count));
        let report = self.sync_or_pause(&Scope::All, on_event, &|| Some(Vec::new()), &held);
        self.session.set_whole_brake(None);
        let report = report?;
        if let Some(r) = &report {
            self.hold_braked(r)?;
        }
        if self.paused.is_none() {
            self.full_due = None;
            self.last_full = Instant::now();
            self.pending.clear();
            // Left out as still being written: looked at again once closed (or quiet).
            self.pending.extend(held);
            self.renames.clear();
            self.tgt_pending.clear();
            if head > self.cursor {
                self.cursor = head;
                self.reader.set_cursor(&self.target, head)?;
            }
            self.set_status(|s| s.last_full_rescan_unix = crate::time::now_ns() / 1_000_000_000);
        }
        self.publish(report.as_ref());
        Ok(report)
    }

    /// Holds, as one burst made in the target, the deletions a whole-tree reconcile found
    /// there and left out for the brake (`Report::braked`).
    fn hold_braked(&mut self, report: &Report) -> Result<(), EngineError> {
        if report.braked.is_empty() {
            return Ok(());
        }
        let held: Vec<tandem_state::Record> = report
            .braked
            .iter()
            .map(|(p, dir)| target_deletion(p.clone(), *dir))
            .collect();
        let batch = self.session.store().next_held_batch()?;
        self.hold_burst(Side::Target, batch, &held)
    }

    /// Runs one sync; a sync that stopped on the target (full, read-only, vanished) or
    /// could not read it pauses this target instead of failing the mount.
    fn sync_or_pause(
        &mut self,
        scope: &Scope,
        on_event: &dyn Fn(Event),
        check: &dyn Fn() -> Option<Vec<RelPath>>,
        held: &HashSet<RelPath>,
    ) -> Result<Option<Report>, EngineError> {
        match self.session.sync_guarded(scope, on_event, check, held) {
            Ok(report) => {
                let stop = report.halted.clone().or_else(|| report.stopped.clone());
                match stop {
                    Some(why) => self.pause(why),
                    None => {
                        if self.paused.take().is_some() {
                            self.set_status(|s| {
                                s.paused = None;
                                s.disconnected_since_unix = None;
                            });
                        }
                    }
                }
                Ok(Some(report))
            }
            Err(e @ (EngineError::Scan { .. } | EngineError::Root { .. })) => {
                self.pause(e.to_string());
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Paths that failed are looked at again soon, then less often while they keep
    /// failing (a file that stays unreadable is not retried in a loop); a path synced
    /// without failing is off the list.
    fn schedule_retry(&mut self, report: &Report, looked_at: &[&RelPath]) {
        let failed: HashMap<&RelPath, &String> =
            report.failed.iter().map(|f| (&f.path, &f.reason)).collect();
        for p in looked_at {
            if !failed.contains_key(p) {
                self.retry.remove(*p);
            }
        }
        let now = Instant::now();
        for (p, why) in failed {
            let tries = self.retry.get(p).map_or(0, |(_, n)| n + 1);
            let wait = (RETRY_FIRST * 2u32.saturating_pow(tries.min(16))).min(BACKOFF_MAX);
            if tries >= 3 {
                tracing::warn!("{}: {why} (retrying in {wait:?})", p.escaped());
            }
            self.retry.insert(p.clone(), (now + wait, tries));
        }
    }

    fn pause(&mut self, reason: String) {
        let lost = self.session.target().lost();
        let (first, max) = match lost {
            Some(_) => (RECONNECT_FIRST, RECONNECT_MAX),
            None => (BACKOFF_FIRST, BACKOFF_MAX),
        };
        let backoff = match &self.paused {
            Some(p) => (p.backoff * 2).clamp(first, max),
            None => first,
        };
        let disconnected = lost.is_some();
        // A retry that failed says why (ssh's own words when it could not connect).
        let reason = match (lost, &self.paused) {
            (Some(why), None) => format!("disconnected: {why}"),
            (Some(_), Some(_)) => format!("disconnected; connecting again: {reason}"),
            (None, _) => reason,
        };
        if self.paused.is_none() {
            tracing::warn!("pausing {}: {reason}; retrying with backoff", self.target);
        }
        let now = crate::time::now_ns() / 1_000_000_000;
        self.set_status(|s| {
            s.disconnected_since_unix =
                disconnected.then(|| s.disconnected_since_unix.unwrap_or(now));
        });
        self.paused = Some(Paused {
            reason: reason.clone(),
            retry_at: Instant::now() + backoff,
            backoff,
        });
        self.full_due.get_or_insert_with(|| reason.clone());
        self.set_status(|s| s.paused = Some(reason));
    }

    fn set_status(&self, f: impl FnOnce(&mut TargetStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }

    fn publish(&self, report: Option<&Report>) {
        let pending = self.pending.len() + self.tgt_pending.len() + self.tgt_writing.len();
        // The open conflicts change only when a sync ran (or `tandem resolve` held the
        // pair, which a later sync follows): not read from the store on every idle pass.
        let conflicts =
            report.map(|_| self.session.store().conflicts(false).map_or(0, |c| c.len()));
        let cursor = self.cursor;
        self.set_status(|s| {
            s.cursor = cursor;
            s.pending = pending;
            if let Some(n) = conflicts {
                s.conflicts = n;
            }
            if let Some(r) = report {
                s.failed.clone_from(&r.failed);
            }
        });
    }

    /// Files a program holds open for writing through the mount and that are not due
    /// yet: no pass copies them, even one that reads their directory (their last close
    /// hints them). A file is due `SETTLE_OPEN` after it was opened if its size and mtime
    /// have then stayed the same for `SETTLE_QUIET` (a 2 GiB write is copied once, at its
    /// close, not again and again while it grows), and after `SETTLE_OPEN_MAX` in any case.
    /// With `force` (shutdown), none.
    fn held_now(&mut self, force: bool) -> HashSet<RelPath> {
        self.long_open.retain(|p, _| self.writers.contains_key(p));
        if force {
            return self
                .brake
                .waiting()
                .chain(self.tgt_brake.waiting())
                .cloned()
                .collect();
        }
        let now = Instant::now();
        let mut held = HashSet::new();
        // A file whose writer is in fsync keeps still while its data goes to disk: not
        // quiet, not to be copied yet (a 2 GiB `dd conv=fsync` was copied during its
        // fsync, slowing it by a quarter).
        let flushing = self.session.source_flushing();
        for (p, (_, since)) in &self.writers {
            let open_for = now.duration_since(*since);
            if open_for < SETTLE_OPEN {
                held.insert(p.clone());
                continue;
            }
            if open_for >= SETTLE_OPEN_MAX {
                continue;
            }
            let seen = match self.session.source().stat(p) {
                Ok(Some(e)) => (e.size as i64, e.mtime),
                // Gone or unreadable: the pass finds out what it is.
                _ => continue,
            };
            match self.long_open.get(p) {
                Some((last, quiet_since)) if *last == seen && !flushing => {
                    if now.duration_since(*quiet_since) < SETTLE_QUIET {
                        held.insert(p.clone());
                    }
                }
                _ => {
                    self.long_open.insert(p.clone(), (seen, now));
                    held.insert(p.clone());
                }
            }
        }
        held.extend(self.brake.waiting().cloned());
        held.extend(self.tgt_brake.waiting().cloned());
        held
    }

    /// The brakes' decisions on the deletions waiting on either side: carried over
    /// (looked at like any other change) or held in the store; then what `tandem release`
    /// and `tandem restore --held` asked for is carried out.
    fn brake_step(&mut self, force: bool) -> Result<(), EngineError> {
        for side in [Side::Source, Side::Target] {
            self.brake_side(side, force)?;
        }
        self.settle_asked()
    }

    /// One side's brake: deletions through the mount are replayed to the target, those
    /// made in the target are merged into the source, unless held.
    fn brake_side(&mut self, side: Side, force: bool) -> Result<(), EngineError> {
        let store = self.session.store();
        let mut new_batch = || store.next_held_batch().ok();
        let brake = match side {
            Side::Source => &mut self.brake,
            Side::Target => &mut self.tgt_brake,
        };
        let step = brake.step(Instant::now(), force, &mut new_batch);
        match side {
            Side::Source => self.pending.extend(step.replay),
            Side::Target => {
                for p in step.replay {
                    self.tgt_pending.entry(p).or_insert(false);
                }
            }
        }
        match step.batch {
            Some(batch) => self.hold_burst(side, batch, &step.hold),
            None => {
                if let Some(total) = self.hold_log[side as usize].end() {
                    tracing::warn!(
                        "the delete brake let go of {}: {total} deletions made in the {side} held in all; `tandem held` lists them",
                        self.target
                    );
                }
                Ok(())
            }
        }
    }

    /// Holds the deletions `held`, made on `side`, in burst `batch`: recorded in the store
    /// (every sync leaves them alone from now on), logged, and told to `on_hold`.
    fn hold_burst(
        &mut self,
        side: Side,
        batch: i64,
        held: &[tandem_state::Record],
    ) -> Result<(), EngineError> {
        let Some(first) = held.first() else {
            return Ok(());
        };
        match (self.hold_log[side as usize].held(batch, held.len()), side) {
            (Some(Tell::Start(n)), Side::Source) => tracing::warn!(
                "holding {n} deletions by {} (pid {}, uid {}) from {}: more than the delete brake allows; `tandem held` lists them",
                first.program.as_deref().unwrap_or("?"),
                first.change.pid,
                first.change.uid,
                self.target
            ),
            (Some(Tell::Start(n)), Side::Target) => tracing::warn!(
                "holding {n} deletions made in {} by {} from the source: more than the delete brake allows; `tandem held` lists them",
                self.target,
                crate::brake::UNNAMED
            ),
            (Some(Tell::Grown(n)), _) => tracing::warn!(
                "still holding deletions made in the {side} from {}: {n} so far; `tandem held` lists them",
                self.target
            ),
            (None, _) => {}
        }
        self.session
            .store_mut()
            .hold(&self.target, side, batch, held)?;
        if let Some(OnHold(tell)) = &self.config.on_hold {
            tell(&HoldNotice {
                source: self.session.spec().src.clone(),
                target: self.target.clone(),
                batch,
                side,
                count: held.len(),
                first: first.clone(),
                window: self.config.brake.map_or(Duration::ZERO, |b| b.window),
            });
        }
        Ok(())
    }

    /// Carries out what `tandem release` and `tandem restore --held` asked of this
    /// target's held deletions.
    fn settle_asked(&mut self) -> Result<(), EngineError> {
        let asked = self.session.store().held_asked(&self.target)?;
        if asked.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = asked.iter().map(|h| h.id).collect();
        let restore: Vec<RelPath> = asked
            .iter()
            .filter(|h| h.action.as_deref() == Some(HeldAction::Restore.name()))
            .map(|h| h.path.clone())
            .collect();
        // Restored: the baseline forgets them, so the other side's copies look new there
        // and come back where they were deleted; released: looked at again, so the
        // deletions are carried over (a merged one reaches the other targets through the
        // journal).
        self.session.store_mut().drop_held(&ids, &restore)?;
        for h in asked {
            if restore.contains(&h.path) {
                self.tgt_pending.insert(h.path, true);
            } else {
                self.pending.insert(h.path);
            }
        }
        Ok(())
    }

    fn note_records(&mut self, records: &[tandem_state::Record]) {
        self.note_writers(records);
        let now = Instant::now();
        for r in records {
            if self.brake.take(r, now) {
                continue;
            }
            let c = &r.change;
            if let (ChangeOp::Rename, Some(to)) = (c.op, &c.to) {
                self.renames.push((c.path.clone(), to.clone()));
            }
            self.pending.insert(c.path.clone());
            if let Some(to) = &c.to {
                self.pending.insert(to.clone());
            }
        }
    }

    /// Keeps count of the writers of each path, each record once (a paused target reads
    /// some records again, and a full reconcile passes over others).
    fn note_writers(&mut self, records: &[tandem_state::Record]) {
        for r in records {
            if r.seq <= self.noted {
                continue;
            }
            self.noted = r.seq;
            let c = &r.change;
            match c.op {
                ChangeOp::OpenWrite => {
                    let w = self
                        .writers
                        .entry(c.path.clone())
                        .or_insert((0, Instant::now()));
                    w.0 += 1;
                }
                ChangeOp::CloseWrite => {
                    if let Some(w) = self.writers.get_mut(&c.path) {
                        w.0 = w.0.saturating_sub(1);
                        if w.0 == 0 {
                            self.writers.remove(&c.path);
                        }
                    }
                }
                ChangeOp::Rename | ChangeOp::Exchange => {
                    // An open file keeps its writers under its new name.
                    if let (Some(to), Some(w)) = (&c.to, self.writers.remove(&c.path)) {
                        self.writers.insert(to.clone(), w);
                    }
                }
                _ => {}
            }
        }
    }

    /// The hints for a sync of `ready`, and how many renames they expect to replay. Both
    /// ends of a rename of which nothing else is pending below the old name are read
    /// shallowly: the moved content is unchanged or has records of its own, so a directory
    /// of any size is renamed without reading it. Everything else is read with its subtree.
    fn hints(
        &mut self,
        ready: &[RelPath],
        tgt_ready: &[(RelPath, bool)],
    ) -> (Vec<(RelPath, bool)>, usize) {
        let ready_set: HashSet<&RelPath> = ready.iter().collect();
        let mut shallow: HashSet<RelPath> = HashSet::new();
        let mut pairs = 0;
        let renames = std::mem::take(&mut self.renames);
        for (from, to) in renames {
            if !(ready_set.contains(&from) && ready_set.contains(&to)) {
                self.renames.push((from, to)); // one end still held back
                continue;
            }
            let something_below = ready
                .iter()
                .chain(self.pending.iter())
                .chain(self.tgt_pending.keys())
                .chain(self.tgt_writing.keys())
                .chain(tgt_ready.iter().map(|(p, _)| p))
                .any(|p| p.is_below(&from) || (p.is_below(&to) && !shallow.contains(p)));
            // The new name read in full in the target (its watcher saw something arrive
            // there): read in full on both sides. (The old name read in full is fine: what
            // the rename carries from there counts as unchanged in the source.)
            let to_read_deeply = self
                .tgt_pending
                .iter()
                .chain(tgt_ready.iter().map(|(p, d)| (p, d)))
                .any(|(p, deep)| *deep && *p == to);
            if !something_below && !to_read_deeply {
                shallow.insert(from);
                shallow.insert(to);
                pairs += 1;
            }
        }
        let deep: Vec<RelPath> = coalesce(
            ready
                .iter()
                .filter(|p| !shallow.contains(*p))
                .cloned()
                .collect(),
        );
        let mut hints: Vec<(RelPath, bool)> = deep.into_iter().map(|p| (p, true)).collect();
        hints.extend(shallow.into_iter().map(|p| (p, false)));
        (hints, pairs)
    }
}

/// A deletion a program made in the target, as the brake counts it: the watcher does not
/// know who (only the mount does), so it names no process.
fn target_deletion(path: RelPath, dir: bool) -> tandem_state::Record {
    tandem_state::Record {
        seq: 0,
        time_ns: crate::time::now_ns(),
        change: tandem_core::Change {
            op: if dir {
                ChangeOp::Rmdir
            } else {
                ChangeOp::Unlink
            },
            path,
            to: None,
            pid: 0,
            uid: 0,
        },
        program: None,
    }
}

/// One hint per path ("read below" if any hint says so), none below a path read deeply.
fn merge_hints(hints: Vec<(RelPath, bool)>) -> Vec<(RelPath, bool)> {
    let mut by_path: BTreeMap<RelPath, bool> = BTreeMap::new();
    for (p, deep) in hints {
        *by_path.entry(p).or_insert(false) |= deep;
    }
    let mut out: Vec<(RelPath, bool)> = Vec::with_capacity(by_path.len());
    let mut deep_kept: Vec<RelPath> = Vec::new();
    for (p, deep) in by_path {
        if deep_kept.iter().rev().take(64).any(|d| p.is_below(d)) {
            continue;
        }
        if deep {
            deep_kept.push(p.clone());
        }
        out.push((p, deep));
    }
    out
}

/// Drops paths below another path in the set: syncing a directory covers its subtree.
fn coalesce(mut paths: Vec<RelPath>) -> Vec<RelPath> {
    paths.sort();
    let mut out: Vec<RelPath> = Vec::with_capacity(paths.len());
    let mut dirs_kept: Vec<RelPath> = Vec::new();
    for p in paths {
        if dirs_kept.iter().rev().take(64).any(|d| p.is_below(d)) {
            continue;
        }
        dirs_kept.push(p.clone());
        out.push(p);
    }
    out
}
