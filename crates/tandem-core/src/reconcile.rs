//! `reconcile`: the three-way decision, per path, between the baseline and the two sides.
//!
//! Pure: no file system, no clock, no hashing. Everything it needs (hashes where sizes do
//! not settle a question, the run's time stamp) is handed in. See DESIGN.md's table.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::entry::{BaseEntry, Entry, Kind, Side};
use crate::path::RelPath;
use crate::plan::{
    Action, Conflict, ConflictKind, Direction, Flavor, Options, Plan, Policy, RenameWhy, Resolution,
};

pub type Tree = BTreeMap<RelPath, Entry>;
pub type BaseTree = BTreeMap<RelPath, BaseEntry>;

/// Decides what to do so that both sides hold the same tree, given the last agreed state.
pub fn reconcile(base: BaseTree, src: Tree, tgt: Tree, opts: &Options) -> Plan {
    let mut r = Reconciler::new(base, src, tgt, opts);
    r.detect_renames();
    for p in &opts.held {
        r.base.remove(p);
        r.src.remove(p);
        r.tgt.remove(p);
    }
    r.per_path();
    r.keep_dirs_with_survivors();
    r.create_missing_parents();
    r.finish()
}

struct Reconciler<'o> {
    base: BaseTree,
    src: Tree,
    tgt: Tree,
    opts: &'o Options,
    /// Paths already settled by a rename step; the per-path pass leaves them alone.
    planned: HashSet<RelPath>,
    /// Conflict copy names handed out in this plan.
    taken_names: HashSet<RelPath>,
    early: Vec<Action>,
    renames: Vec<Action>,
    deletes: Vec<Action>,
    mkdirs: Vec<Action>,
    copies: Vec<Action>,
    metas: Vec<Action>,
}

/// The per-path test that says a path needs no decision, for a caller that walks the
/// three trees itself (`crate::merge`): holds no tree of its own.
pub(crate) struct SettledTest<'o>(Reconciler<'o>);

impl<'o> SettledTest<'o> {
    pub(crate) fn new(opts: &'o Options) -> SettledTest<'o> {
        SettledTest(Reconciler::new(
            BaseTree::new(),
            Tree::new(),
            Tree::new(),
            opts,
        ))
    }

    /// `Reconciler::settled`: reconcile would plan nothing at this path.
    pub(crate) fn settled(&self, b: &BaseEntry, s: &Entry, t: &Entry) -> bool {
        self.0.settled(Some(b), Some(s), Some(t))
    }
}

impl<'o> Reconciler<'o> {
    fn new(base: BaseTree, src: Tree, tgt: Tree, opts: &'o Options) -> Reconciler<'o> {
        Reconciler {
            base,
            src,
            tgt,
            opts,
            planned: HashSet::new(),
            taken_names: HashSet::new(),
            early: Vec::new(),
            renames: Vec::new(),
            deletes: Vec::new(),
            mkdirs: Vec::new(),
            copies: Vec::new(),
            metas: Vec::new(),
        }
    }
}

impl Reconciler<'_> {
    fn tree(&self, side: Side) -> &Tree {
        match side {
            Side::Source => &self.src,
            Side::Target => &self.tgt,
        }
    }

    fn tree_mut(&mut self, side: Side) -> &mut Tree {
        match side {
            Side::Source => &mut self.src,
            Side::Target => &mut self.tgt,
        }
    }

    fn same_time(&self, a: i64, b: i64) -> bool {
        a.abs_diff(b) <= self.opts.modify_window.unsigned_abs()
    }

    /// Has `e` (on `side`) changed since the baseline `b`?
    fn changed(&self, b: Option<&BaseEntry>, e: Option<&Entry>, side: Side) -> bool {
        match (b, e) {
            (None, None) => false,
            (None, Some(_)) | (Some(_), None) => true,
            (Some(b), Some(e)) => {
                b.kind != e.kind || self.content_moved(b, e, side) || self.meta_moved(b, e, side)
            }
        }
    }

    /// Does `e` hold other content than the baseline? A stat match (same inode, size and
    /// mtime) vouches for unchanged content; otherwise only equal hashes do.
    fn content_moved(&self, b: &BaseEntry, e: &Entry, side: Side) -> bool {
        match e.kind {
            Kind::File => {
                if e.size != b.size {
                    return true;
                }
                if let (true, Some(x), Some(y)) = (self.opts.rescan, b.hash, e.hash) {
                    return x != y;
                }
                let seen = b.seen(side);
                let stat_match = e.ino == seen.ino && self.same_time(e.mtime, seen.mtime);
                let hash_match = matches!((b.hash, e.hash), (Some(x), Some(y)) if x == y);
                !(stat_match || hash_match)
            }
            Kind::Symlink => e.link != b.link,
            _ => false,
        }
    }

    /// Did this side's mode or mtime move since it last agreed (a symlink's: its owner, where
    /// the run keeps owners)? Compared with what this side showed then, not with the other
    /// side.
    fn meta_moved(&self, b: &BaseEntry, e: &Entry, side: Side) -> bool {
        let seen = b.seen(side);
        let keep = &self.opts.keep;
        let extra_moved = (keep.owner && seen.owner != e.owner)
            || (keep.reads_xattrs() && seen.xattrs != e.xattrs);
        match e.kind {
            Kind::File => {
                seen.mode != e.mode || !self.same_time(seen.mtime, e.mtime) || extra_moved
            }
            Kind::Dir => seen.mode != e.mode || extra_moved,
            // A link has no mode or times of its own to keep, but an owner (`chown -h`).
            Kind::Symlink => keep.owner && seen.owner != e.owner,
            _ => false,
        }
    }

    /// Do the two sides hold the same content at `path`?
    fn same_content(&self, path: &RelPath, s: &Entry, t: &Entry) -> bool {
        if s.kind != t.kind {
            return false;
        }
        match s.kind {
            Kind::Dir => true,
            Kind::Symlink => s.link == t.link,
            Kind::File => {
                if s.size != t.size {
                    return false;
                }
                if let (Some(x), Some(y)) = (s.hash, t.hash) {
                    return x == y;
                }
                // Both untouched since an agreed baseline: equal without hashing.
                match self.base.get(path) {
                    Some(b) => {
                        !self.content_moved(b, s, Side::Source)
                            && !self.content_moved(b, t, Side::Target)
                    }
                    None => false,
                }
            }
            _ => false,
        }
    }

    /// Do the two sides show the same metadata, as far as this run keeps it? Setuid and
    /// setgid bits count only where they may travel (`Keep::setid`): a side that holds them
    /// is not in a lasting disagreement with a side they were kept from; Windows attributes
    /// only between two sides that have them (`modes_agree`).
    fn same_meta(&self, s: &Entry, t: &Entry) -> bool {
        let keep = &self.opts.keep;
        let same_mode =
            crate::entry::modes_agree(keep.travelling_mode(s.mode), keep.travelling_mode(t.mode));
        let same_extra =
            (!keep.owner || s.owner == t.owner) && (!keep.reads_xattrs() || s.xattrs == t.xattrs);
        match s.kind {
            Kind::File => same_mode && same_extra && self.same_time(s.mtime, t.mtime),
            Kind::Dir => same_mode && same_extra,
            Kind::Symlink => !keep.owner || s.owner == t.owner,
            _ => true,
        }
    }

    // ---- renames ------------------------------------------------------------------------

    /// Finds paths that vanished from one side while the same object (inode, or content hash
    /// for files) appeared at a new path there, and replays each as one rename on the other
    /// side. The baseline and the other side are then rewritten as if the rename had
    /// happened, so the per-path pass sees edits made before or after the move.
    fn detect_renames(&mut self) {
        let sides: &[Side] = match self.opts.direction {
            Direction::Both => &[Side::Source, Side::Target],
            Direction::Push => &[Side::Source],
            Direction::Pull => &[Side::Target],
        };
        for &x in sides {
            let y = x.other();
            let mut appeared: Vec<RelPath> = Vec::new();
            let mut vanished: Vec<RelPath> = Vec::new();
            merge2(&self.base, self.tree(x), |p, b, e| match (b, e) {
                (None, Some(e)) if e.kind.is_tracked() => appeared.push(p.clone()),
                (Some(_), None) => vanished.push(p.clone()),
                _ => {}
            });
            if appeared.is_empty() {
                continue;
            }
            let mut by_ino: HashMap<u64, Option<RelPath>> = HashMap::new();
            let mut by_hash: HashMap<crate::Hash, Option<RelPath>> = HashMap::new();
            for p in &appeared {
                let e = &self.tree(x)[p];
                // `None` marks an ambiguous key (hard links, duplicate content).
                by_ino
                    .entry(e.ino)
                    .and_modify(|v| *v = None)
                    .or_insert(Some(p.clone()));
                if let (Kind::File, Some(h)) = (&e.kind, e.hash) {
                    by_hash
                        .entry(h)
                        .and_modify(|v| *v = None)
                        .or_insert(Some(p.clone()));
                }
            }
            // A path below a special file or an unreadable entry on `x` was not seen, not
            // moved: it must not be taken for the source of a rename (never write across a
            // problem).
            vanished.retain(|p| !self.hidden(x, p));
            let mut moved_dirs: Vec<RelPath> = Vec::new();
            for p in vanished {
                if moved_dirs.iter().any(|d| p.is_below(d)) || !self.base.contains_key(&p) {
                    continue;
                }
                let Some(b) = self.base.get(&p).cloned() else {
                    continue;
                };
                let by_inode = by_ino.get(&b.ino(x)).cloned().flatten().filter(|q| {
                    let e = &self.tree(x)[q];
                    e.kind == b.kind
                });
                let q = by_inode.or_else(|| match (&b.kind, b.hash) {
                    (Kind::File, Some(h)) => by_hash
                        .get(&h)
                        .cloned()
                        .flatten()
                        .filter(|q| self.tree(x)[q].size == b.size),
                    _ => None,
                });
                let Some(q) = q else { continue };
                if q.is_below(&p)
                    || self.planned.contains(&q)
                    || !self.can_replay_rename(y, &p, &q, &b)
                {
                    continue;
                }
                self.replay_rename(x, y, &p, &q);
                by_ino.remove(&b.ino(x));
                if b.kind == Kind::Dir {
                    moved_dirs.push(p.clone());
                }
            }
        }
    }

    /// Does a special file or an unreadable entry above `p` on `side` hide it from the scan?
    fn hidden(&self, side: Side, p: &RelPath) -> bool {
        let tree = self.tree(side);
        let mut anc = p.parent();
        while let Some(a) = anc {
            if a.is_root() {
                break;
            }
            if tree.get(&a).is_some_and(|e| !e.kind.is_tracked()) {
                return true;
            }
            anc = a.parent();
        }
        false
    }

    /// The rename `p -> q` seen on the other side can be replayed on `y` when `y` still
    /// holds the very object the baseline knows at `p`, nothing at `q`, and `q`'s parent
    /// exists there (or is a directory that the other side created and we can create too).
    fn can_replay_rename(&self, y: Side, p: &RelPath, q: &RelPath, b: &BaseEntry) -> bool {
        if !self.opts.direction.writes(y) {
            return false;
        }
        let ty = self.tree(y);
        let Some(ey) = ty.get(p) else { return false };
        if ey.kind != b.kind || ey.ino != b.ino(y) || ty.contains_key(q) {
            return false;
        }
        // Nothing may be planned under the new name already.
        let (lo, hi) = q.subtree_range();
        if ty.range(lo..hi).next().is_some() {
            return false;
        }
        let mut anc = q.parent();
        while let Some(a) = anc {
            if a.is_root() {
                break;
            }
            match ty.get(&a) {
                Some(e) if e.is_dir() => break,
                Some(_) => return false,
                None => {
                    // A new parent directory on the other side that we will create first.
                    let x = y.other();
                    let new_dir_on_x = matches!(self.tree(x).get(&a), Some(e) if e.is_dir())
                        && !self.base.contains_key(&a);
                    if !new_dir_on_x {
                        return false;
                    }
                }
            }
            anc = a.parent();
        }
        true
    }

    fn replay_rename(&mut self, x: Side, y: Side, p: &RelPath, q: &RelPath) {
        // Create missing parents of `q` on `y`, shallowest first.
        let mut missing = Vec::new();
        let mut anc = q.parent();
        while let Some(a) = anc {
            if a.is_root() || self.tree(y).contains_key(&a) {
                break;
            }
            anc = a.parent();
            missing.push(a);
        }
        for a in missing.into_iter().rev() {
            let src = self.tree(x)[&a].clone();
            self.renames.push(Action::Mkdir {
                path: a.clone(),
                side: y,
                src: src.clone(),
            });
            self.tree_mut(y).insert(a.clone(), src);
            self.planned.insert(a);
        }
        let expect = self.tree(y)[p].clone();
        self.renames.push(Action::Rename {
            side: y,
            from: p.clone(),
            to: q.clone(),
            expect,
            why: RenameWhy::Replay,
        });
        move_subtree(&mut self.base, p, q);
        move_subtree(self.tree_mut(y), p, q);
        self.assume_unread_unchanged(x, q);
    }

    /// After a rename carried the baseline's subtree (and `y`'s) from its old name to `q`:
    /// what of it `x`, the side that renamed, was not read below `q` (a shallow hint: the
    /// content has records of its own) holds there what the baseline says, not nothing.
    /// Otherwise the per-path pass would take every file the rename moved for deleted.
    fn assume_unread_unchanged(&mut self, x: Side, q: &RelPath) {
        let Some(scope) = &self.opts.scope else {
            return;
        };
        let mut inside: Vec<(&RelPath, bool)> = Vec::new();
        for (h, deep) in scope {
            if *deep && (h == q || q.is_below(h)) {
                return; // read in full
            }
            if h.is_below(q) {
                inside.push((h, *deep));
            }
        }
        // A hint reads itself and its parents, and below it where it says so.
        let read = |k: &RelPath| {
            inside
                .iter()
                .any(|(h, deep)| k == *h || h.is_below(k) || (*deep && k.is_below(h)))
        };
        let (lo, hi) = q.subtree_range();
        let tree = self.tree(x);
        let unread: Vec<(RelPath, Entry)> = self
            .base
            .range(lo..hi)
            .filter(|(k, _)| !read(k) && !tree.contains_key(*k))
            .map(|(k, b)| (k.clone(), b.entry_on(x)))
            .collect();
        self.tree_mut(x).extend(unread);
    }

    // ---- per path -----------------------------------------------------------------------

    fn per_path(&mut self) {
        // One merge pass over the three sorted maps picks out the paths that need a
        // decision; an entry unchanged on both sides (the common case) costs no lookup.
        let mut todo: Vec<RelPath> = Vec::new();
        merge3(&self.base, &self.src, &self.tgt, |p, b, s, t| {
            if !p.is_root() && !self.settled(b, s, t) {
                todo.push(p.clone());
            }
        });
        // Every skipped root, not just the last one: a subtree `d/...` is not contiguous with
        // `d` in byte order (`d.txt` and `d-x` sort between them).
        // Looked up by ancestor, so the check costs the path's depth, not the number of
        // skipped roots.
        let mut skipped: HashSet<RelPath> = HashSet::new();
        for p in todo {
            if !skipped.is_empty() && ancestors(&p).any(|a| skipped.contains(&a)) {
                continue;
            }
            if self.planned.contains(&p) {
                continue;
            }
            if self.skip_untrackable(&p) {
                skipped.insert(p);
                continue;
            }
            self.decide(&p);
        }
    }

    /// Nothing to do or record at this path: same kind everywhere, unchanged on both sides
    /// and the baseline up to date. (`decide` would plan nothing for it.)
    fn settled(&self, b: Option<&BaseEntry>, s: Option<&Entry>, t: Option<&Entry>) -> bool {
        let (Some(b), Some(s), Some(t)) = (b, s, t) else {
            return false;
        };
        !self.opts.rescan
            && s.kind.is_tracked()
            && s.kind == b.kind
            && t.kind == b.kind
            && !self.changed(Some(b), Some(s), Side::Source)
            && !self.changed(Some(b), Some(t), Side::Target)
            && s.ino == b.src.ino
            && t.ino == b.tgt.ino
            && !(b.hash.is_none() && (s.hash.is_some() || t.hash.is_some()))
    }

    /// Special files and problems on either side: leave the path and everything below it
    /// on both sides untouched, and say so.
    fn skip_untrackable(&mut self, p: &RelPath) -> bool {
        let mut skipped = false;
        for side in [Side::Source, Side::Target] {
            let reason = match self.tree(side).get(p).map(|e| &e.kind) {
                Some(Kind::Special) => {
                    "special file (FIFO, socket or device): not synced".to_string()
                }
                Some(Kind::Problem(why)) => format!("cannot be read: {why}"),
                _ => continue,
            };
            self.early.push(Action::Skip {
                path: p.clone(),
                side: Some(side),
                reason,
            });
            skipped = true;
        }
        skipped
    }

    fn decide(&mut self, p: &RelPath) {
        let b = self.base.get(p);
        let s = self.src.get(p);
        let t = self.tgt.get(p);
        let mut sc = self.changed(b, s, Side::Source);
        let mut tc = self.changed(b, t, Side::Target);
        // A directory replaced by a non-directory on one side while the other side changed
        // something inside it: both changed (file against directory is always a conflict).
        if let (Some(s), Some(t)) = (s, t) {
            if s.is_dir() != t.is_dir() {
                let dir_side = if s.is_dir() {
                    Side::Source
                } else {
                    Side::Target
                };
                let dir_changed = if dir_side == Side::Source { sc } else { tc };
                let other_changed = if dir_side == Side::Source { tc } else { sc };
                if other_changed && !dir_changed && self.changed_in(p, dir_side) {
                    sc = true;
                    tc = true;
                }
            }
        }
        // A rescan found different content on the two sides though both look untouched
        // and the baseline has no hash to say which moved: a change made behind our back
        // (mtime restored). Which side it was is unknown, so both versions are kept.
        if self.opts.rescan && !sc && !tc {
            if let (Some(s), Some(t)) = (s, t) {
                if let (Kind::File, Some(x), Some(y)) = (&s.kind, s.hash, t.hash) {
                    if t.kind == Kind::File && x != y {
                        sc = true;
                        tc = true;
                    }
                }
            }
        }
        match (sc, tc) {
            (false, false) => self.refresh(p),
            (true, false) => self.one_sided(p, Side::Source),
            (false, true) => self.one_sided(p, Side::Target),
            (true, true) => self.both_changed(p),
        }
    }

    /// Did anything strictly below `p` change on `side`?
    fn changed_in(&self, p: &RelPath, side: Side) -> bool {
        let (lo, hi) = p.subtree_range();
        let tree = self.tree(side);
        let below: BTreeSet<&RelPath> = self
            .base
            .range(lo.clone()..hi.clone())
            .map(|(k, _)| k)
            .chain(tree.range(lo..hi).map(|(k, _)| k))
            .collect();
        below
            .into_iter()
            .any(|q| self.changed(self.base.get(q), tree.get(q), side))
    }

    /// Unchanged on both sides; record new inode numbers or hashes if the baseline lags.
    fn refresh(&mut self, p: &RelPath) {
        let (Some(b), Some(s), Some(t)) = (self.base.get(p), self.src.get(p), self.tgt.get(p))
        else {
            return;
        };
        let fresher_hash = b.hash.is_none() && (s.hash.is_some() || t.hash.is_some());
        if s.ino != b.src.ino || t.ino != b.tgt.ino || fresher_hash {
            self.early.push(Action::Record {
                path: p.clone(),
                src: s.clone(),
                tgt: t.clone(),
            });
        }
    }

    /// Only `x` changed. Propagate it, unless the direction forbids: then the receiving
    /// side's own change is left (safe) or undone from the other side (replica).
    fn one_sided(&mut self, p: &RelPath, x: Side) {
        if self.opts.direction.writes(x.other()) {
            self.propagate(p, x);
            return;
        }
        match self.opts.flavor {
            Flavor::Safe => self.early.push(Action::Skip {
                path: p.clone(),
                side: Some(x),
                reason: format!("the {x}'s own change, left alone in one-way mode"),
            }),
            Flavor::Replica => self.propagate(p, x.other()),
        }
    }

    /// Makes `from.other()` hold at `p` what `from` holds.
    fn propagate(&mut self, p: &RelPath, from: Side) {
        let to = from.other();
        let f = self.tree(from).get(p).cloned();
        let d = self.tree(to).get(p).cloned();
        match (f, d) {
            (None, None) => self.early.push(Action::Forget { path: p.clone() }),
            (None, Some(d)) => self.deletes.push(Action::Delete {
                path: p.clone(),
                side: to,
                expect: d,
            }),
            (Some(f), None) => self.create(p, from, f, None),
            (Some(f), Some(d)) => {
                if f.kind == d.kind {
                    let (s, t) = order(from, &f, &d);
                    if !self.same_content(p, s, t) {
                        self.create(p, from, f, Some(d));
                    } else if !self.same_meta(s, t) {
                        self.metas.push(Action::SetMeta {
                            path: p.clone(),
                            side: to,
                            src: f,
                            expect: d,
                        });
                    } else {
                        self.early.push(Action::Record {
                            path: p.clone(),
                            src: s.clone(),
                            tgt: t.clone(),
                        });
                    }
                } else if d.is_dir() {
                    // Directory replaced by a file or link: its children are deleted by their
                    // own steps, then the directory, then the new entry is created.
                    self.deletes.push(Action::Delete {
                        path: p.clone(),
                        side: to,
                        expect: d,
                    });
                    self.create(p, from, f, None);
                } else if f.is_dir() {
                    self.deletes.push(Action::Delete {
                        path: p.clone(),
                        side: to,
                        expect: d,
                    });
                    self.create(p, from, f, None);
                } else {
                    // File <-> symlink: replaced in one atomic step.
                    self.create(p, from, f, Some(d));
                }
            }
        }
    }

    fn create(&mut self, p: &RelPath, from: Side, f: Entry, expect: Option<Entry>) {
        if f.is_dir() {
            self.mkdirs.push(Action::Mkdir {
                path: p.clone(),
                side: from.other(),
                src: f,
            });
            return;
        }
        // When neither side changed the mode since they agreed, the receiving side keeps its
        // own: a side that cannot store modes (FAT, exFAT) shows placeholder bits that must
        // not be imposed on the other side along with new content. Otherwise (a new file, a
        // changed mode, a conflict's winner) the sending side's mode goes along, less the
        // attributes of a receiving Windows side where the sender has none (`carry_attrs`).
        let to = from.other();
        if let Some(d) = &expect {
            if self.kept_newer(p, from, &f, d) {
                return;
            }
        }
        let mode = match (&expect, self.base.get(p)) {
            (Some(d), Some(b))
                if d.kind == f.kind && b.seen(from).mode == f.mode && b.seen(to).mode == d.mode =>
            {
                d.mode
            }
            (Some(d), _) => crate::entry::carry_attrs(f.mode, d.mode),
            _ => f.mode,
        };
        self.copies.push(Action::Copy {
            path: p.clone(),
            from,
            src: f,
            expect,
            mode,
        });
    }

    /// `--update`: `d`, the file on the receiving side, is newer than `f`, the sending
    /// side's version that would replace it. The step is left out and reported, and the
    /// baseline keeps what it had for `p`: the difference stays in sight of every later run,
    /// and one without the option does what it would have done.
    fn kept_newer(&mut self, p: &RelPath, from: Side, f: &Entry, d: &Entry) -> bool {
        let newer = self.opts.update
            && self.opts.direction != Direction::Both
            && d.kind == Kind::File
            && d.mtime > f.mtime
            && !self.same_time(d.mtime, f.mtime);
        if newer {
            self.early.push(Action::KeptNewer {
                path: p.clone(),
                side: from.other(),
            });
        }
        newer
    }

    fn both_changed(&mut self, p: &RelPath) {
        let s = self.src.get(p).cloned();
        let t = self.tgt.get(p).cloned();
        let (s, t) = match (s, t) {
            (None, None) => {
                self.early.push(Action::Forget { path: p.clone() });
                return;
            }
            (Some(s), None) => return self.delete_against_change(p, Side::Source, s),
            (None, Some(t)) => return self.delete_against_change(p, Side::Target, t),
            (Some(s), Some(t)) => (s, t),
        };
        if self.same_content(p, &s, &t) {
            if self.same_meta(&s, &t) {
                // A false conflict: both sides made the same change.
                self.early.push(Action::Record {
                    path: p.clone(),
                    src: s,
                    tgt: t,
                });
            } else {
                self.meta_conflict(p, s, t);
            }
            return;
        }
        if s.is_dir() != t.is_dir() {
            return self.type_conflict(p, s, t);
        }
        self.content_conflict(p, s, t);
    }

    /// One side deleted `p`, the other (`kept`) changed it. A delete never wins over a
    /// change, whatever the policy; only `flag` leaves both as they are.
    fn delete_against_change(&mut self, p: &RelPath, kept: Side, e: Entry) {
        let deleter = kept.other();
        if !self.opts.direction.writes(deleter) {
            // One-way: the receiving side (`kept`) has its own change.
            return self.one_sided(p, kept);
        }
        if self.opts.policy == Policy::Flag {
            let (src, tgt) = if kept == Side::Source {
                (Some(e), None)
            } else {
                (None, Some(e))
            };
            self.early.push(Action::Conflict(Box::new(Conflict {
                path: p.clone(),
                kind: ConflictKind::DeleteModify,
                src,
                tgt,
                resolution: Resolution::Flagged,
            })));
            return;
        }
        self.create(p, kept, e, None);
    }

    /// Same content, different mode or mtime: the winner's metadata goes to the other side.
    /// No copy is kept: no content is at stake.
    fn meta_conflict(&mut self, p: &RelPath, s: Entry, t: Entry) {
        let winner = match self.winner(&s, &t) {
            Some(w) => w,
            None => {
                self.early.push(Action::Skip {
                    path: p.clone(),
                    side: None,
                    reason: "permissions or times differ on both sides (flagged)".into(),
                });
                return;
            }
        };
        let (w, l) = if winner == Side::Source {
            (s, t)
        } else {
            (t, s)
        };
        self.metas.push(Action::SetMeta {
            path: p.clone(),
            side: winner.other(),
            src: w,
            expect: l,
        });
    }

    /// The side whose version wins a conflict under the policy and direction, or `None` to
    /// leave both sides as they are.
    fn winner(&self, s: &Entry, t: &Entry) -> Option<Side> {
        let newest = if t.mtime > s.mtime {
            Side::Target
        } else {
            Side::Source
        };
        match (self.opts.direction, self.opts.flavor) {
            (Direction::Push, Flavor::Replica) => return Some(Side::Source),
            (Direction::Pull, Flavor::Replica) => return Some(Side::Target),
            _ => {}
        }
        let w = match self.opts.policy {
            Policy::KeepBoth | Policy::Newest => newest,
            Policy::Source => Side::Source,
            Policy::Target => Side::Target,
            Policy::Flag => return None,
        };
        // Safe one-way: the receiving side's version never overwrites the sending side.
        match self.opts.direction {
            Direction::Push if w == Side::Target => None,
            Direction::Pull if w == Side::Source => None,
            _ => Some(w),
        }
    }

    fn content_conflict(&mut self, p: &RelPath, s: Entry, t: Entry) {
        // One-way: under `--update` a newer version on the receiving side is neither set
        // aside nor replaced.
        let sent = match self.opts.direction {
            Direction::Push => Some((Side::Source, &s, &t)),
            Direction::Pull => Some((Side::Target, &t, &s)),
            Direction::Both => None,
        };
        if let Some((from, f, d)) = sent {
            if self.kept_newer(p, from, f, d) {
                return;
            }
        }
        let one_way_replica = matches!(
            (self.opts.direction, self.opts.flavor),
            (Direction::Push | Direction::Pull, Flavor::Replica)
        );
        if one_way_replica {
            let from = if self.opts.direction == Direction::Push {
                Side::Source
            } else {
                Side::Target
            };
            return self.propagate(p, from);
        }
        if self.opts.policy == Policy::KeepBoth {
            let newest = if t.mtime > s.mtime {
                Side::Target
            } else {
                Side::Source
            };
            let (winner, loser) = match self.opts.direction {
                Direction::Both => (newest, newest.other()),
                Direction::Push => (Side::Source, Side::Target),
                Direction::Pull => (Side::Target, Side::Source),
            };
            return self.keep_both(p, ConflictKind::Content, winner, loser, s, t);
        }
        let resolution = match self.winner(&s, &t) {
            Some(w) => {
                self.propagate(p, w);
                Resolution::Won { winner: w }
            }
            None => Resolution::Flagged,
        };
        self.early.push(Action::Conflict(Box::new(Conflict {
            path: p.clone(),
            kind: ConflictKind::Content,
            src: Some(s),
            tgt: Some(t),
            resolution,
        })));
    }

    /// Directory on one side, file or link on the other: the directory keeps the name and the
    /// other entry is kept beside it as a conflict copy, whatever the policy but `flag`.
    fn type_conflict(&mut self, p: &RelPath, s: Entry, t: Entry) {
        let dir_side = if s.is_dir() {
            Side::Source
        } else {
            Side::Target
        };
        let flagged =
            self.opts.policy == Policy::Flag || !self.opts.direction.writes(dir_side.other());
        if flagged {
            self.early.push(Action::Conflict(Box::new(Conflict {
                path: p.clone(),
                kind: ConflictKind::Type,
                src: Some(s),
                tgt: Some(t),
                resolution: Resolution::Flagged,
            })));
            if self.opts.policy == Policy::Flag {
                // `flag` leaves both sides as they are: that includes the directory's
                // subtree, whose entries would otherwise be copied under the other side's
                // file (a plan that cannot apply) or deleted from the directory.
                let (lo, hi) = p.subtree_range();
                let below: Vec<RelPath> = self
                    .base
                    .range(lo.clone()..hi.clone())
                    .map(|(k, _)| k.clone())
                    .chain(
                        self.src
                            .range(lo.clone()..hi.clone())
                            .map(|(k, _)| k.clone()),
                    )
                    .chain(self.tgt.range(lo..hi).map(|(k, _)| k.clone()))
                    .collect();
                self.planned.extend(below);
            }
            return;
        }
        self.keep_both(p, ConflictKind::Type, dir_side, dir_side.other(), s, t);
    }

    /// The loser's version is renamed to a conflict copy name on its side; the winner's
    /// version takes the name there; the copy is sent to the winner's side (when this run may
    /// write there).
    fn keep_both(
        &mut self,
        p: &RelPath,
        kind: ConflictKind,
        winner: Side,
        loser: Side,
        s: Entry,
        t: Entry,
    ) {
        let copy = self.conflict_name(p, loser);
        let (w, l) = if winner == Side::Source {
            (&s, &t)
        } else {
            (&t, &s)
        };
        self.renames.push(Action::Rename {
            side: loser,
            from: p.clone(),
            to: copy.clone(),
            expect: l.clone(),
            why: RenameWhy::ConflictCopy,
        });
        self.create(p, winner, w.clone(), None);
        if self.opts.direction.writes(winner) {
            self.copies.push(Action::Copy {
                path: copy.clone(),
                from: loser,
                mode: l.mode,
                src: l.clone(),
                expect: None,
            });
        }
        if l.is_dir() {
            // A directory loser carries its subtree along; its children are settled next run.
            let (lo, hi) = p.subtree_range();
            let below: Vec<RelPath> = self
                .tree(loser)
                .range(lo..hi)
                .map(|(k, _)| k.clone())
                .collect();
            self.planned.extend(below);
        }
        self.early.push(Action::Conflict(Box::new(Conflict {
            path: p.clone(),
            kind,
            src: Some(s),
            tgt: Some(t),
            resolution: Resolution::KeptBoth { loser, copy },
        })));
    }

    /// `dir/NAME.conflict-YYYYMMDD-HHMMSS-SIDE.EXT`, unique among every name either side or
    /// the baseline knows, and within the 255-byte name limit.
    fn conflict_name(&mut self, p: &RelPath, side: Side) -> RelPath {
        let name = p.file_name();
        let (stem, ext) = match name.iter().rposition(|&b| b == b'.') {
            Some(i) if i > 0 => (&name[..i], &name[i..]),
            _ => (name, &b""[..]),
        };
        let parent = p.parent().unwrap_or_default();
        for n in 1.. {
            let tag = if n == 1 {
                format!(".conflict-{}-{}", self.opts.stamp, side.name())
            } else {
                format!(".conflict-{}-{}-{n}", self.opts.stamp, side.name())
            };
            let room = 255usize.saturating_sub(tag.len() + ext.len());
            let mut stem = stem.to_vec();
            if stem.len() > room {
                stem.truncate(room);
                // Keep valid UTF-8 if it was: cut back to a char boundary.
                while !stem.is_empty()
                    && std::str::from_utf8(&stem).is_err()
                    && std::str::from_utf8(name).is_ok()
                {
                    stem.pop();
                }
            }
            let mut new = stem;
            new.extend_from_slice(tag.as_bytes());
            new.extend_from_slice(ext);
            let candidate = parent.join(&new);
            let free = !self.src.contains_key(&candidate)
                && !self.tgt.contains_key(&candidate)
                && !self.base.contains_key(&candidate)
                && !self.taken_names.contains(&candidate);
            if free {
                self.taken_names.insert(candidate.clone());
                return candidate;
            }
        }
        unreachable!("an unbounded counter always finds a free name")
    }

    // ---- directories that must stay ------------------------------------------------------

    /// A directory is deleted only when everything below it goes too. If something below it
    /// stays or is created there (a change the deleting side never saw), the directory stays,
    /// and it is re-created on the side that deleted it.
    fn keep_dirs_with_survivors(&mut self) {
        // Nothing to keep without a directory to delete: spares the sets below, as large
        // as the plan (a first sync's every copy).
        let deletes_dir =
            |a: &Action| matches!(a, Action::Delete { expect, .. } if expect.is_dir());
        if !self.deletes.iter().any(deletes_dir) {
            return;
        }
        let deleted: HashSet<(Side, RelPath)> = self
            .deletes
            .iter()
            .filter_map(|a| match a {
                Action::Delete { path, side, .. } => Some((*side, path.clone())),
                _ => None,
            })
            .collect();
        let mut created: HashSet<(Side, RelPath)> = HashSet::new();
        for a in self.mkdirs.iter().chain(&self.copies).chain(&self.renames) {
            let (side, path) = match a {
                Action::Mkdir { path, side, .. } => (*side, path),
                Action::Copy { path, from, .. } => (from.other(), path),
                Action::Rename { side, to, .. } => (*side, to),
                _ => continue,
            };
            created.insert((side, path.clone()));
        }
        let mut kept: Vec<(Side, RelPath)> = Vec::new();
        // Deepest first: a kept child keeps its parent.
        let mut dir_deletes: Vec<(Side, RelPath)> = self
            .deletes
            .iter()
            .filter_map(|a| match a {
                Action::Delete { path, side, expect } if expect.is_dir() => {
                    Some((*side, path.clone()))
                }
                _ => None,
            })
            .collect();
        dir_deletes.sort_by(|a, b| b.1.cmp(&a.1));
        let mut keep_set: HashSet<(Side, RelPath)> = HashSet::new();
        for (side, d) in dir_deletes {
            let (lo, hi) = d.subtree_range();
            let survivor_on_disk = self.tree(side).range(lo.clone()..hi.clone()).any(|(q, _)| {
                !deleted.contains(&(side, q.clone())) || keep_set.contains(&(side, q.clone()))
            });
            let created_below = created.iter().any(|(s, q)| *s == side && q.is_below(&d));
            if survivor_on_disk || created_below {
                keep_set.insert((side, d.clone()));
                kept.push((side, d));
            }
        }
        if kept.is_empty() {
            return;
        }
        self.deletes.retain(|a| match a {
            Action::Delete { path, side, .. } => !keep_set.contains(&(*side, path.clone())),
            _ => true,
        });
        for (side, d) in kept {
            let other = side.other();
            // The directory stays on `side`; re-create it where it was deleted.
            let here = self.tree(side)[&d].clone();
            if self.tree(other).get(&d).is_none()
                && self.opts.direction.writes(other)
                && !self.mkdirs.iter().any(|a| matches!(a, Action::Mkdir { path, side: s, .. } if *path == d && *s == other))
            {
                self.mkdirs.push(Action::Mkdir { path: d.clone(), side: other, src: here });
            }
            // A type change that created something else at `d` on `side` cannot happen now.
            self.copies.retain(|a| !matches!(a, Action::Copy { path, from, .. } if *path == d && from.other() == side));
        }
    }

    /// Every copy and mkdir needs its parent directories on the side it writes to. One can
    /// be missing there when that side deleted the directory and the deletion was left
    /// alone (the receiving side's own change in safe one-way mode) while the other side
    /// changed or created something inside: the change wins (a delete never does), so the
    /// directory is re-created, as `keep_dirs_with_survivors` does for directories the plan
    /// itself would have deleted, and is no longer reported as left alone.
    fn create_missing_parents(&mut self) {
        let mut made: HashSet<(Side, RelPath)> = self
            .mkdirs
            .iter()
            .chain(&self.renames)
            .filter_map(|a| match a {
                Action::Mkdir { path, side, .. } => Some((*side, path.clone())),
                _ => None,
            })
            .collect();
        // The mkdirs and copies planned so far (not those pushed below), one at a time:
        // a list of their paths would be as large as the plan.
        let (planned_mkdirs, copies) = (self.mkdirs.len(), self.copies.len());
        for i in 0..planned_mkdirs + copies {
            let write = if i < planned_mkdirs {
                &self.mkdirs[i]
            } else {
                &self.copies[i - planned_mkdirs]
            };
            let (side, p) = match write {
                Action::Mkdir { path, side, .. } => (*side, path.clone()),
                Action::Copy { path, from, .. } => (from.other(), path.clone()),
                _ => continue,
            };
            let mut missing = Vec::new();
            let mut anc = p.parent();
            while let Some(a) = anc {
                if a.is_root()
                    || self.tree(side).contains_key(&a)
                    || made.contains(&(side, a.clone()))
                {
                    break;
                }
                anc = a.parent();
                missing.push(a);
            }
            for a in missing.into_iter().rev() {
                let Some(src) = self
                    .tree(side.other())
                    .get(&a)
                    .filter(|e| e.is_dir())
                    .cloned()
                else {
                    break;
                };
                self.early.retain(|x| {
                    !matches!(x, Action::Skip { path, side: Some(s), .. } if *path == a && *s == side)
                });
                self.mkdirs.push(Action::Mkdir {
                    path: a.clone(),
                    side,
                    src,
                });
                made.insert((side, a));
            }
        }
    }

    fn finish(mut self) -> Plan {
        self.deletes.sort_by(|a, b| b.path().cmp(a.path()));
        self.mkdirs.sort_by(|a, b| a.path().cmp(b.path()));
        // Files before directories, directories deepest first (a read-only directory is
        // closed only after everything inside it is written).
        self.metas.sort_by(|a, b| {
            let key = |x: &Action| match x {
                Action::SetMeta { src, .. } => src.is_dir(),
                _ => false,
            };
            key(a).cmp(&key(b)).then_with(|| b.path().cmp(a.path()))
        });
        let actions = concat(vec![
            self.early,
            self.renames,
            self.deletes,
            self.mkdirs,
            self.copies,
            self.metas,
        ]);
        Plan { actions }
    }
}

/// The parts one after the other, built in the largest part's own allocation: an action
/// is some 500 bytes, and a first sync's copies would otherwise be held twice.
fn concat(mut parts: Vec<Vec<Action>>) -> Vec<Action> {
    let Some(big) = (0..parts.len()).max_by_key(|&i| parts[i].len()) else {
        return Vec::new();
    };
    let mut out = std::mem::take(&mut parts[big]);
    let head: Vec<Action> = parts.drain(..big).flatten().collect();
    out.splice(0..0, head);
    // `parts[0]` is now the part taken.
    for part in parts.into_iter().skip(1) {
        out.extend(part);
    }
    out
}

fn order<'a>(first: Side, a: &'a Entry, b: &'a Entry) -> (&'a Entry, &'a Entry) {
    match first {
        Side::Source => (a, b),
        Side::Target => (b, a),
    }
}

/// Visits every key of two sorted maps once, in order, with what each holds there.
pub fn merge2<'a, A, B>(
    a: &'a BTreeMap<RelPath, A>,
    b: &'a BTreeMap<RelPath, B>,
    mut visit: impl FnMut(&'a RelPath, Option<&'a A>, Option<&'a B>),
) {
    let (mut ia, mut ib) = (a.iter().peekable(), b.iter().peekable());
    loop {
        let key = match (ia.peek(), ib.peek()) {
            (None, None) => return,
            (Some((k, _)), None) | (None, Some((k, _))) => *k,
            (Some((ka, _)), Some((kb, _))) => (*ka).min(*kb),
        };
        let va = ia.next_if(|(k, _)| *k == key).map(|(_, v)| v);
        let vb = ib.next_if(|(k, _)| *k == key).map(|(_, v)| v);
        visit(key, va, vb);
    }
}

/// Visits every key of three sorted maps once, in order, with what each holds there.
pub fn merge3<'a, A, B, C>(
    a: &'a BTreeMap<RelPath, A>,
    b: &'a BTreeMap<RelPath, B>,
    c: &'a BTreeMap<RelPath, C>,
    mut visit: impl FnMut(&'a RelPath, Option<&'a A>, Option<&'a B>, Option<&'a C>),
) {
    let (mut ia, mut ib, mut ic) = (
        a.iter().peekable(),
        b.iter().peekable(),
        c.iter().peekable(),
    );
    loop {
        let key = [
            ia.peek().map(|(k, _)| *k),
            ib.peek().map(|(k, _)| *k),
            ic.peek().map(|(k, _)| *k),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(key) = key else { return };
        let va = ia.next_if(|(k, _)| *k == key).map(|(_, v)| v);
        let vb = ib.next_if(|(k, _)| *k == key).map(|(_, v)| v);
        let vc = ic.next_if(|(k, _)| *k == key).map(|(_, v)| v);
        visit(key, va, vb, vc);
    }
}

/// The proper ancestors of `p`, nearest first, the root excluded.
fn ancestors(p: &RelPath) -> impl Iterator<Item = RelPath> {
    std::iter::successors(p.parent(), |a| a.parent()).take_while(|a| !a.is_root())
}

/// Moves the entry at `from` and everything below it to `to`.
pub fn move_subtree<V>(tree: &mut BTreeMap<RelPath, V>, from: &RelPath, to: &RelPath) {
    let (lo, hi) = from.subtree_range();
    let mut keys: Vec<RelPath> = tree.range(lo..hi).map(|(k, _)| k.clone()).collect();
    keys.push(from.clone());
    let moved: Vec<(RelPath, V)> = keys
        .into_iter()
        .filter_map(|k| {
            let v = tree.remove(&k)?;
            Some((k.rebase(from, to)?, v))
        })
        .collect();
    tree.extend(moved);
}
