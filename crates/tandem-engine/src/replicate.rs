//! The replicator of a mounted source: reads the journal from this target's cursor,
//! turns records into the set of paths to look at again, and syncs those paths through the
//! same scan → reconcile → apply path as everything else (STYLE.md: journal records are
//! hints, not a second decision engine).
//!
//! Coalescing: a path written a thousand times between two passes is looked at once; a
//! file still open for writing waits for its last writer to close (or for `SETTLE_OPEN`,
//! for files held open for long) so that it is copied whole, once.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tandem_core::{ChangeOp, RelPath};
use tandem_state::JournalWriter;

use crate::run::{EngineError, Session};
use crate::spec::{Event, Report, Scope};

/// A file held open for writing longer than this is synced anyway (the copy is re-checked,
/// so a file that keeps changing is retried, never stored torn).
const SETTLE_OPEN: Duration = Duration::from_secs(2);
/// Most records read per pass.
const BATCH: usize = 20_000;

pub struct Replicator<'a> {
    session: &'a mut Session,
    journal: &'a JournalWriter,
    target: String,
    cursor: i64,
    /// Paths seen in the journal and not synced yet.
    pending: BTreeSet<RelPath>,
    /// Open-for-write handles per path, and when the path was first held back.
    writers: HashMap<RelPath, (u32, Instant)>,
    /// Renames (old name, new name) whose ends have not been synced yet.
    renames: Vec<(RelPath, RelPath)>,
}

impl<'a> Replicator<'a> {
    pub fn new(
        session: &'a mut Session,
        journal: &'a JournalWriter,
    ) -> Result<Replicator<'a>, EngineError> {
        let target = session.target_key();
        let cursor = session.store().cursor(&target)?;
        Ok(Replicator {
            session,
            journal,
            target,
            cursor,
            pending: BTreeSet::new(),
            writers: HashMap::new(),
            renames: Vec::new(),
        })
    }

    /// The journal position this target has reached.
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// Runs until `stop` is set, then drains what is journaled (bounded by `drain_for`).
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        drain_for: Duration,
        on_event: &dyn Fn(Event),
    ) -> Result<(), EngineError> {
        while !stop.load(Ordering::Relaxed) {
            self.journal
                .wait_past(self.cursor, Duration::from_millis(50));
            self.pass(false, on_event)?;
        }
        let deadline = Instant::now() + drain_for;
        self.journal.flush();
        while Instant::now() < deadline {
            let (read, _) = self.pass(true, on_event)?;
            if read == 0 && self.pending.is_empty() {
                break;
            }
        }
        Ok(())
    }

    /// Reads new records, syncs the paths that are ready. With `force`, paths with open
    /// writers are synced too (shutdown). Returns (records read, the sync's report).
    pub fn pass(
        &mut self,
        force: bool,
        on_event: &dyn Fn(Event),
    ) -> Result<(usize, Option<Report>), EngineError> {
        let records = self.session.store().journal_after(self.cursor, BATCH)?;
        let read = records.len();
        for r in &records {
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
                    if let (ChangeOp::Rename, Some(to)) = (c.op, &c.to) {
                        self.renames.push((c.path.clone(), to.clone()));
                    }
                }
                _ => {}
            }
            self.pending.insert(c.path.clone());
            if let Some(to) = &c.to {
                self.pending.insert(to.clone());
            }
        }
        if let Some(last) = records.last() {
            self.cursor = last.seq;
        }
        let now = Instant::now();
        let ready: Vec<RelPath> = self
            .pending
            .iter()
            .filter(|p| {
                force
                    || self
                        .writers
                        .get(*p)
                        .is_none_or(|(_, since)| now.duration_since(*since) >= SETTLE_OPEN)
            })
            .cloned()
            .collect();
        let report = if ready.is_empty() {
            None
        } else {
            for p in &ready {
                self.pending.remove(p);
            }
            let (hints, shallow_renames) = self.hints(&ready);
            let report = self.session.sync(&Scope::Hints(hints), on_event)?;
            if report.renamed < shallow_renames as u64 || !report.failed.is_empty() {
                // A rename was not replayed as one (the target changed meanwhile, a
                // conflict): the fallback plans each child, so it must see them all.
                Some(
                    self.session
                        .sync(&Scope::Paths(coalesce(ready)), on_event)?,
                )
            } else {
                Some(report)
            }
        };
        if read > 0 {
            // Records of paths still held back are kept in memory; after a crash the startup
            // scan finds them (the journal is a fast path, not the truth).
            self.session.store().set_cursor(&self.target, self.cursor)?;
        }
        Ok((read, report))
    }
}

impl Replicator<'_> {
    /// The hints for a sync of `ready`, and how many renames they expect to replay. Both
    /// ends of a rename of which nothing else is pending below the old name are read
    /// shallowly: the moved content is unchanged or has records of its own, so a directory
    /// of any size is renamed without reading it. Everything else is read with its subtree.
    fn hints(&mut self, ready: &[RelPath]) -> (Vec<(RelPath, bool)>, usize) {
        let ready_set: std::collections::HashSet<&RelPath> = ready.iter().collect();
        let mut shallow: std::collections::HashSet<RelPath> = std::collections::HashSet::new();
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
                .any(|p| p.is_below(&from) || (p.is_below(&to) && !shallow.contains(p)));
            if !something_below {
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
