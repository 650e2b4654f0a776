//! The brake on mass deletions while mounted (issue 18): deletions (unlink, rmdir; never
//! renames) are carried to the other side only once they stop coming for a moment; when
//! more than `BrakeLimit::count` arrive within `BrakeLimit::window`, they are held instead:
//! left done where they were made, not carried over, recorded in the store (`tandem held`)
//! until released or restored. Each replicator has one brake per side, with the same limit:
//! one for the journal's records (deletions through the mount, in the source), one for
//! its target watcher's (deletions made in that target). A decision on those records, made
//! where the replicator picks them up; the held paths then flow through the one sync path
//! as paths left alone.

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_core::{ChangeOp, RelPath, Side};
use tandem_state::Record;

/// How many deletions within how long engage the brake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrakeLimit {
    pub count: usize,
    pub window: Duration,
}

impl Default for BrakeLimit {
    fn default() -> BrakeLimit {
        BrakeLimit {
            count: 1000,
            window: Duration::from_secs(60),
        }
    }
}

/// Who made the deletions held in a target, as every place that shows such a hold says
/// it: the watcher sees what changed there, never which process changed it.
pub const UNNAMED: &str =
    "a program tandem cannot name (changes made in the target are seen by inotify)";

/// Deletions the brake has just held, told to whoever wants to know (a task's mail):
/// once per pass that held some, so a burst may be told in several parts under one
/// `batch`.
#[derive(Clone, Debug)]
pub struct HoldNotice {
    pub source: PathBuf,
    pub target: String,
    pub batch: i64,
    /// Where they were made: through the mount (source) or in the target.
    pub side: Side,
    /// How many this pass held.
    pub count: usize,
    /// The first of them: who deleted (known through the mount only), and when.
    pub first: Record,
    /// The brake's window: holds that begin within it of each other are told together.
    pub window: Duration,
}

/// Called by a replicator on the thread that replicates (it must not block: hand the
/// notice over to a thread of its own).
#[derive(Clone)]
pub struct OnHold(pub Arc<dyn Fn(&HoldNotice) + Send + Sync>);

impl std::fmt::Debug for OnHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnHold")
    }
}

/// A deletion is replayed once no other came for this long...
const QUIET: Duration = Duration::from_secs(1);
/// ...or once it waited this long (a slow, steady stream of deletions).
const MAX_WAIT: Duration = Duration::from_secs(10);

pub(crate) fn is_deletion(op: ChangeOp) -> bool {
    matches!(op, ChangeOp::Unlink | ChangeOp::Rmdir)
}

/// What the brake decided in one step.
#[derive(Debug, Default)]
pub(crate) struct Step {
    /// Deletions to replay now.
    pub replay: Vec<RelPath>,
    /// Deletions to hold, in the burst `batch`.
    pub hold: Vec<Record>,
    pub batch: Option<i64>,
}

pub(crate) struct Brake {
    limit: Option<BrakeLimit>,
    /// When each deletion within the window came.
    recent: VecDeque<Instant>,
    /// Deletions neither replayed nor held yet, and when each came.
    waiting: Vec<(Record, Instant)>,
    /// Their paths: a path told twice (a folder's removal, by its parent and by itself)
    /// counts once.
    waiting_paths: HashSet<RelPath>,
    last: Option<Instant>,
    /// The burst being held, while deletions still come faster than the limit.
    engaged: Option<i64>,
}

impl Brake {
    /// `None`: no brake; every deletion is replayed at once.
    pub(crate) fn new(limit: Option<BrakeLimit>) -> Brake {
        Brake {
            limit,
            recent: VecDeque::new(),
            waiting: Vec::new(),
            waiting_paths: HashSet::new(),
            last: None,
            engaged: None,
        }
    }

    /// Takes a deletion record; false (not taken) for anything else, or with no brake.
    pub(crate) fn take(&mut self, r: &Record, now: Instant) -> bool {
        if self.limit.is_none() || !is_deletion(r.change.op) {
            return false;
        }
        if self.waiting_paths.insert(r.change.path.clone()) {
            self.recent.push_back(now);
            self.waiting.push((r.clone(), now));
        }
        self.last = Some(now);
        true
    }

    /// The deletions not decided on yet: left alone by this pass.
    pub(crate) fn waiting(&self) -> impl Iterator<Item = &RelPath> {
        self.waiting.iter().map(|(r, _)| &r.change.path)
    }

    /// Decides on what waits. `force` (a stop): everything not held is replayed.
    /// `new_batch` numbers a burst when the brake engages.
    pub(crate) fn step(
        &mut self,
        now: Instant,
        force: bool,
        new_batch: &mut dyn FnMut() -> Option<i64>,
    ) -> Step {
        let Some(limit) = self.limit else {
            return Step::default();
        };
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > limit.window)
        {
            self.recent.pop_front();
        }
        let mut step = Step::default();
        if self.recent.len() > limit.count {
            if self.engaged.is_none() {
                self.engaged = new_batch();
            }
            if let Some(batch) = self.engaged {
                step.batch = Some(batch);
                step.hold = self.waiting.drain(..).map(|(r, _)| r).collect();
                self.waiting_paths.clear();
                return step;
            }
        } else {
            self.engaged = None;
        }
        let quiet = self.last.is_none_or(|t| now.duration_since(t) >= QUIET);
        let (due, wait): (Vec<_>, Vec<_>) = self
            .waiting
            .drain(..)
            .partition(|(_, at)| force || quiet || now.duration_since(*at) >= MAX_WAIT);
        self.waiting = wait;
        for (r, _) in &due {
            self.waiting_paths.remove(&r.change.path);
        }
        step.replay = due.into_iter().map(|(r, _)| r.change.path).collect();
        step
    }
}

/// What to log of a held burst: its start, each time it has doubled since it was last
/// told, and its total once it ends if that was not told yet. A burst is held over many
/// passes (an `rm -rf` of 20,000 files logged about 110 lines, one per pass).
#[derive(Debug, Default)]
pub(crate) struct HoldLog {
    batch: Option<i64>,
    total: usize,
    told: usize,
}

/// One line of a held burst's log.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Tell {
    /// The burst starts: this many held.
    Start(usize),
    /// It has grown to this many since.
    Grown(usize),
}

impl HoldLog {
    /// `n` more deletions (at least one) held in burst `batch`: what to log now, if anything.
    pub(crate) fn held(&mut self, batch: i64, n: usize) -> Option<Tell> {
        if self.batch != Some(batch) {
            *self = HoldLog {
                batch: Some(batch),
                total: n,
                told: n,
            };
            return Some(Tell::Start(n));
        }
        self.total += n;
        if self.total >= self.told.saturating_mul(2) {
            self.told = self.total;
            return Some(Tell::Grown(self.total));
        }
        None
    }

    /// The brake let go: the burst's total, if the last line did not say it.
    pub(crate) fn end(&mut self) -> Option<usize> {
        self.batch.take()?;
        (self.total > self.told).then_some(self.total)
    }
}

/// Carries out `action` on the held deletions of `batch` (all if `None`) of a pair no
/// mount serves: released ones are replayed to the target now, restored ones copied back
/// into the source from the target, by a sync of their paths. Returns how many there were.
/// (While mounted, the replicator carries out what is asked: `Store::ask_held`.)
pub fn settle_held(
    spec: &crate::SyncSpec,
    batch: Option<i64>,
    action: tandem_state::HeldAction,
) -> Result<usize, crate::EngineError> {
    let mut session = crate::Session::open(spec)?;
    let held: Vec<tandem_state::Held> = session
        .store()
        .held(Some(&session.target_key()))?
        .into_iter()
        .filter(|h| batch.is_none_or(|b| h.batch == b))
        .collect();
    if held.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = held.iter().map(|h| h.id).collect();
    let paths: Vec<RelPath> = held.into_iter().map(|h| h.path).collect();
    let forget: &[RelPath] = match action {
        tandem_state::HeldAction::Restore => &paths,
        tandem_state::HeldAction::Release => &[],
    };
    session.store_mut().drop_held(&ids, forget)?;
    session.sync(&crate::Scope::Paths(paths), &|_| {})?;
    Ok(ids.len())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tandem_core::Change;

    fn rec(op: ChangeOp, path: &str) -> Record {
        Record {
            seq: 1,
            time_ns: 0,
            change: Change {
                op,
                path: RelPath::from_str_lossless(path),
                to: (op == ChangeOp::Rename).then(|| RelPath::from_str_lossless("x")),
                pid: 1,
                uid: 0,
            },
            program: None,
        }
    }

    fn limit(count: usize) -> Option<BrakeLimit> {
        Some(BrakeLimit {
            count,
            window: Duration::from_secs(60),
        })
    }

    #[test]
    fn a_few_deletions_are_replayed_once_they_stop_coming() {
        let mut b = Brake::new(limit(3));
        let t0 = Instant::now();
        for p in ["a", "b"] {
            assert!(b.take(&rec(ChangeOp::Unlink, p), t0));
        }
        assert!(
            !b.take(&rec(ChangeOp::Rename, "c"), t0),
            "renames are no deletions"
        );
        let s = b.step(t0, false, &mut || Some(1));
        assert!(s.replay.is_empty() && s.hold.is_empty());
        assert_eq!(b.waiting().count(), 2);
        let s = b.step(t0 + QUIET, false, &mut || Some(1));
        assert_eq!(s.replay.len(), 2);
        assert!(s.hold.is_empty());
    }

    #[test]
    fn a_burst_over_the_limit_is_held_whole_and_what_follows_too() {
        let mut b = Brake::new(limit(3));
        let t0 = Instant::now();
        for i in 0..4 {
            b.take(&rec(ChangeOp::Unlink, &format!("f{i}")), t0);
        }
        let s = b.step(t0, false, &mut || Some(7));
        assert_eq!((s.hold.len(), s.batch), (4, Some(7)));
        // Still engaged: more deletions join the same burst, even at a stop.
        b.take(&rec(ChangeOp::Rmdir, "d"), t0 + QUIET);
        let s = b.step(t0 + QUIET * 2, true, &mut || Some(8));
        assert_eq!((s.hold.len(), s.batch), (1, Some(7)));
        // Once the window has passed, deletions are replayed again.
        let later = t0 + Duration::from_secs(62);
        b.take(&rec(ChangeOp::Unlink, "g"), later);
        let s = b.step(later + QUIET, false, &mut || Some(9));
        assert_eq!(s.replay.len(), 1);
    }

    #[test]
    fn a_path_told_twice_counts_once() {
        let mut b = Brake::new(limit(2));
        let t0 = Instant::now();
        for p in ["d", "d", "e", "e"] {
            assert!(b.take(&rec(ChangeOp::Rmdir, p), t0));
        }
        let s = b.step(t0 + QUIET, false, &mut || Some(1));
        assert_eq!((s.replay.len(), s.hold.len()), (2, 0));
    }

    #[test]
    fn issue_18_a_held_burst_is_logged_at_its_start_each_doubling_and_its_end() {
        let mut l = HoldLog::default();
        assert_eq!(l.end(), None, "nothing held, nothing to tell");
        assert_eq!(l.held(7, 1001), Some(Tell::Start(1001)));
        let told: Vec<_> = (0..190).filter_map(|_| l.held(7, 100)).collect();
        assert_eq!(
            told,
            [
                Tell::Grown(2101),
                Tell::Grown(4301),
                Tell::Grown(8701),
                Tell::Grown(17501)
            ]
        );
        assert_eq!(l.end(), Some(20001));
        assert_eq!(l.end(), None, "told once");
        // The next burst starts afresh, and one whose last line said its total ends quietly.
        assert_eq!(l.held(8, 5), Some(Tell::Start(5)));
        assert_eq!(l.held(8, 5), Some(Tell::Grown(10)));
        assert_eq!(l.end(), None);
        // A new batch while one was told starts again.
        l.held(9, 3);
        assert_eq!(l.held(10, 1), Some(Tell::Start(1)));
    }

    #[test]
    fn without_a_brake_nothing_waits() {
        let mut b = Brake::new(None);
        assert!(!b.take(&rec(ChangeOp::Unlink, "a"), Instant::now()));
    }
}
