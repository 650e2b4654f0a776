//! The streaming merge: the baseline and both sides' listings, each in path order, walked
//! together path by path. What is settled everywhere (a file or symlink neither side
//! changed, its baseline up to date) is counted and dropped as it passes; the rest (every
//! directory, every path that needs a decision) is kept for `reconcile`. A sync then holds
//! its directories and its work in trees, not every unchanged file three times over.
//!
//! Dropping a settled path changes no plan: reconcile decides each path from that path's
//! own three entries, and looks elsewhere only at directories (parents, subtrees deleted,
//! renamed or set aside), at paths that changed, and at names free for conflict copies.
//! `droppable` keeps each of those. `tests/streaming_merge.rs` holds the plans equal on
//! random trees.
//!
//! A first sync has no baseline: every path needs a decision, and most are the simplest
//! there is, a file or folder on one side only, created on the other. `finish_into` hands
//! those out as steps while it merges (`stream_new`), so that a first sync holds neither
//! its tree nor its plan either.

use std::cmp::Ordering;
use std::iter::Peekable;

use crate::entry::{BaseEntry, Entry, Kind, Side};
use crate::path::RelPath;
use crate::plan::{Action, Options};
use crate::reconcile::{BaseTree, SettledTest, Tree};

/// How many entries went through the merge (dropped ones included): what the engine
/// reports and weighs (an emptied side, mass deletion) is about the whole tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub base: usize,
    pub src: usize,
    pub tgt: usize,
    /// Paths settled on all three and dropped.
    pub dropped: usize,
    /// Paths new on one side, handed out as steps (`finish_into`).
    pub streamed: usize,
}

/// What `reconcile` is given: the paths the merge kept, and the counts of everything.
#[derive(Debug, Default)]
pub struct Merged {
    pub base: BaseTree,
    pub src: Tree,
    pub tgt: Tree,
    pub counts: Counts,
}

/// The merge in progress. The caller hands in the baseline one entry at a time (`base`,
/// strictly in path order: a database cursor); the two sides come as iterators, sorted
/// the same way, without duplicates.
pub struct Merge<'o, S, T>
where
    S: Iterator<Item = (RelPath, Entry)>,
    T: Iterator<Item = (RelPath, Entry)>,
{
    settled: SettledTest<'o>,
    opts: &'o Options,
    /// Dropping is for whole-tree syncs: a scoped sync's trees are small and reconcile
    /// looks below its renames into the baseline (`assume_unread_unchanged`); with
    /// `--hard-links` every name of a file counts; `--rescan` settles nothing anyway.
    drops: bool,
    src: Peekable<S>,
    tgt: Peekable<T>,
    base: Vec<(RelPath, BaseEntry)>,
    late: Vec<(RelPath, BaseEntry)>,
    kept_src: Vec<(RelPath, Entry)>,
    kept_tgt: Vec<(RelPath, Entry)>,
    counts: Counts,
}

impl<'o, S, T> Merge<'o, S, T>
where
    S: Iterator<Item = (RelPath, Entry)>,
    T: Iterator<Item = (RelPath, Entry)>,
{
    pub fn new(src: S, tgt: T, opts: &'o Options) -> Self {
        Merge {
            settled: SettledTest::new(opts),
            opts,
            drops: opts.scope.is_none() && !opts.hard_links && !opts.rescan,
            src: src.peekable(),
            tgt: tgt.peekable(),
            base: Vec::new(),
            late: Vec::new(),
            kept_src: Vec::new(),
            kept_tgt: Vec::new(),
            counts: Counts::default(),
        }
    }

    /// The next baseline entry, after every one handed in before it in path order.
    pub fn base(&mut self, p: RelPath, b: BaseEntry) {
        self.counts.base += 1;
        if self.base.last().is_some_and(|(k, _)| *k >= p) {
            // Out of order (a damaged database): kept, as are the side entries at `p`,
            // already passed; the trees are built sorted.
            self.late.push((p, b));
            return;
        }
        self.sides_before(&p);
        let s = self.src.next_if(|(k, _)| *k == p).map(|(_, e)| e);
        let t = self.tgt.next_if(|(k, _)| *k == p).map(|(_, e)| e);
        self.counts.src += usize::from(s.is_some());
        self.counts.tgt += usize::from(t.is_some());
        if let (Some(s), Some(t)) = (&s, &t) {
            if self.droppable(&p, &b, s, t) {
                self.counts.dropped += 1;
                return;
            }
        }
        if let Some(s) = s {
            self.kept_src.push((p.clone(), s));
        }
        if let Some(t) = t {
            self.kept_tgt.push((p.clone(), t));
        }
        self.base.push((p, b));
    }

    /// Every side entry before `p` has no baseline entry: new, kept.
    fn sides_before(&mut self, p: &RelPath) {
        while let Some(x) = self.src.next_if(|(k, _)| k < p) {
            self.counts.src += 1;
            self.kept_src.push(x);
        }
        while let Some(x) = self.tgt.next_if(|(k, _)| k < p) {
            self.counts.tgt += 1;
            self.kept_tgt.push(x);
        }
    }

    /// A file or symlink reconcile would pass over, that no other decision looks at: not
    /// a directory (parents and subtrees are looked at), not a possible conflict copy name
    /// (looked up to find a free one), not a child whose parent the baseline lacks (a
    /// rename's new name is checked for anything below it).
    fn droppable(&self, p: &RelPath, b: &BaseEntry, s: &Entry, t: &Entry) -> bool {
        self.drops
            && matches!(b.kind, Kind::File | Kind::Symlink)
            && !contains(p.file_name(), b".conflict-")
            && self.parent_kept(p)
            && self.settled.settled(b, s, t)
    }

    fn parent_kept(&self, p: &RelPath) -> bool {
        match p.parent() {
            None => true,
            Some(a) if a.is_root() => true,
            // Kept baseline entries are in path order, and a parent sorts before its
            // children: every directory the baseline holds is kept.
            Some(a) => self.base.binary_search_by(|(k, _)| k.cmp(&a)).is_ok(),
        }
    }

    pub fn finish(self) -> Merged {
        self.finish_into(None)
    }

    /// `finish`, handing out to `sink`, in path order, the steps that create what is new
    /// on one side, when no baseline entry came (a first sync; see `stream_new`). What is
    /// handed out is counted, and left out of the trees returned.
    pub fn finish_into(mut self, sink: Option<&mut dyn FnMut(Action)>) -> Merged {
        let fresh = self.counts.base == 0 && self.late.is_empty();
        if let Some(sink) = sink.filter(|_| self.drops && fresh) {
            self.stream_new(sink);
        }
        for x in self.src.by_ref() {
            self.counts.src += 1;
            self.kept_src.push(x);
        }
        for x in self.tgt.by_ref() {
            self.counts.tgt += 1;
            self.kept_tgt.push(x);
        }
        Merged {
            base: self.base.into_iter().chain(self.late).collect(),
            src: self.kept_src.into_iter().collect(),
            tgt: self.kept_tgt.into_iter().collect(),
            counts: self.counts,
        }
    }
}

impl<S, T> Merge<'_, S, T>
where
    S: Iterator<Item = (RelPath, Entry)>,
    T: Iterator<Item = (RelPath, Entry)>,
{
    /// With no baseline, a path on one side only is created on the other: a `Mkdir` or a
    /// `Copy` of what that side holds, as `reconcile` plans it (`propagate`, `create`). That
    /// is decided here, and the step handed to `sink`, for a path whose parent is a folder
    /// on both sides or a folder handed out itself: nothing else in the plan looks at it.
    /// Kept for `reconcile` are paths on both sides (records, conflicts) and their
    /// parents, special files and problems (skipped with their reasons), what the
    /// direction does not send, what sits below anything kept, and conflict copy names
    /// beside kept paths (looked up to find a free one). Parents come before children:
    /// a folder's `Mkdir` is handed out before the steps inside it.
    fn stream_new(&mut self, sink: &mut dyn FnMut(Action)) {
        // Folders handed out, in path order (a folder's entry sorts before its children's).
        let mut made: Vec<RelPath> = Vec::new();
        loop {
            let order = match (self.src.peek(), self.tgt.peek()) {
                (None, None) => return,
                (Some((s, _)), Some((t, _))) => s.cmp(t),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
            };
            let (side, x) = match order {
                Ordering::Less => (Side::Source, self.src.next()),
                Ordering::Greater => (Side::Target, self.tgt.next()),
                Ordering::Equal => {
                    if let (Some(s), Some(t)) = (self.src.next(), self.tgt.next()) {
                        self.counts.src += 1;
                        self.counts.tgt += 1;
                        self.kept_src.push(s);
                        self.kept_tgt.push(t);
                    }
                    continue;
                }
            };
            let Some((p, e)) = x else { return };
            match side {
                Side::Source => self.counts.src += 1,
                Side::Target => self.counts.tgt += 1,
            }
            if !self.streams(&p, &e, side, &made) {
                match side {
                    Side::Source => self.kept_src.push((p, e)),
                    Side::Target => self.kept_tgt.push((p, e)),
                }
                continue;
            }
            self.counts.streamed += 1;
            let to = side.other();
            if e.kind == Kind::Dir {
                made.push(p.clone());
                sink(Action::Mkdir {
                    path: p,
                    side: to,
                    src: e,
                });
            } else {
                let mode = e.mode;
                sink(Action::Copy {
                    path: p,
                    from: side,
                    src: e,
                    expect: None,
                    mode,
                });
            }
        }
    }

    /// Whether `p`, found on `from` only, is created on the other side by a step of its
    /// own (`stream_new`).
    fn streams(&self, p: &RelPath, e: &Entry, from: Side, made: &[RelPath]) -> bool {
        if p.is_root()
            || !matches!(e.kind, Kind::File | Kind::Dir | Kind::Symlink)
            || !self.opts.direction.writes(from.other())
        {
            return false;
        }
        let parent = p.parent().unwrap_or_default();
        if made.binary_search(&parent).is_ok() {
            return true;
        }
        let on_both = parent.is_root()
            || [&self.kept_src, &self.kept_tgt].iter().all(|kept| {
                kept.binary_search_by(|(k, _)| k.cmp(&parent))
                    .is_ok_and(|i| kept[i].1.kind == Kind::Dir)
            });
        on_both && !contains(p.file_name(), b".conflict-")
    }
}

/// Merges three sorted sequences at once (the baseline as an iterator too).
pub fn merge_sorted(
    base: impl IntoIterator<Item = (RelPath, BaseEntry)>,
    src: impl IntoIterator<Item = (RelPath, Entry)>,
    tgt: impl IntoIterator<Item = (RelPath, Entry)>,
    opts: &Options,
) -> Merged {
    let mut m = Merge::new(src.into_iter(), tgt.into_iter(), opts);
    for (p, b) in base {
        m.base(p, b);
    }
    m.finish()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
