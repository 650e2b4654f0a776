//! The streaming merge (`tandem_core::merge`) drops the paths settled on all three trees
//! before reconcile sees them: issue 21's bound on a sync's memory. It must change no
//! plan. Random consistent trees (a baseline, then per side edits, moves, type changes,
//! new entries, conflict-copy-like names), in every mode: reconcile on the whole trees and
//! reconcile on what the merge kept give the same plan, and the counts are the whole
//! trees' sizes.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use tandem_core::{
    merge_sorted, reconcile, Action, BaseEntry, BaseTree, Direction, Entry, Flavor, Hash, Kind,
    Merge, Options, Policy, RelPath, Side, Tree,
};

/// Names that sort around each other bytewise (`d`, `d-x`, `d.txt`, `d/x`), nested
/// directories, and a name shaped like a conflict copy of `c.txt` in this run.
const PATHS: &[&str] = &[
    "a",
    "a/b",
    "a/b/z",
    "a/x",
    "a/y",
    "b",
    "b/x",
    "b/y",
    "c.conflict-20240102-030405-source.txt",
    "c.txt",
    "d",
    "d-x",
    "d.txt",
    "d/x",
    "d/x/y",
    "e",
];
const N: usize = 16;
const SEC: i64 = 1_000_000_000;

fn path(i: usize) -> RelPath {
    RelPath::new(PATHS[i]).unwrap()
}

fn hash(n: u8) -> Hash {
    Hash([n; 32])
}

/// An entry of kind `k` (0 nothing, 1 file, 2 directory, 3 symlink), content `c`.
fn entry(k: u8, c: u8, ino: u64, hashed: bool) -> Option<Entry> {
    match k % 4 {
        1 => {
            let e = Entry::file(u64::from(c % 3) + 1, i64::from(c) * SEC, 0o644, ino);
            Some(if hashed { e.with_hash(hash(c)) } else { e })
        }
        2 => Some(Entry::dir(0o755, ino)),
        3 => Some(Entry::symlink(vec![b'l', c % 3], ino)),
        _ => None,
    }
}

/// Drops what a real file system could not hold: an entry whose parent is not a directory.
fn consistent<V>(tree: &mut std::collections::BTreeMap<RelPath, V>, is_dir: impl Fn(&V) -> bool) {
    for i in 0..N {
        let p = path(i);
        let Some(parent) = p.parent().filter(|a| !a.is_root()) else {
            continue;
        };
        if !tree.get(&parent).is_some_and(&is_dir) {
            tree.remove(&p);
        }
    }
}

/// One side after `ops` (per path: what happens to it) applied to the baseline.
fn side(base: &BaseTree, ops: &[(u8, u8)], side: Side, hashed: bool) -> Tree {
    let ino_base = if side == Side::Source { 1 } else { 1001 };
    let mut tree: Tree = base
        .iter()
        .map(|(p, b)| (p.clone(), b.entry_on(side)))
        .collect();
    for (i, &(op, arg)) in ops.iter().enumerate() {
        let p = path(i);
        let fresh = ino_base + 500 + i as u64;
        match op % 12 {
            // Touched: a new mtime, same content.
            6 => {
                if let Some(e) = tree.get_mut(&p).filter(|e| e.kind == Kind::File) {
                    e.mtime += SEC;
                }
            }
            7 => {
                if let Some(e) = tree.get_mut(&p) {
                    e.mode ^= 0o010;
                }
            }
            // Edited: new content, maybe a new inode (atomic save).
            8 => {
                if let Some(old) = tree.get(&p).filter(|e| e.kind == Kind::File) {
                    let ino = if arg % 2 == 0 { old.ino } else { fresh };
                    let e = entry(1, arg.wrapping_add(7), ino, hashed).unwrap();
                    tree.insert(p, e);
                }
            }
            9 => {
                tree.remove(&p);
            }
            // Replaced or created: any kind, a new object.
            10 => match entry(arg, arg, fresh, hashed) {
                Some(e) => {
                    tree.insert(p, e);
                }
                None => {
                    tree.remove(&p);
                }
            },
            // Moved here from another path (and everything below it).
            11 => {
                let from = path(usize::from(arg) % N);
                if from != p && !p.is_below(&from) && !from.is_below(&p) && tree.contains_key(&from)
                {
                    let (lo, hi) = p.subtree_range();
                    let below: Vec<RelPath> = tree.range(lo..hi).map(|(k, _)| k.clone()).collect();
                    for k in below {
                        tree.remove(&k);
                    }
                    tree.remove(&p);
                    tandem_core::move_subtree(&mut tree, &from, &p);
                }
            }
            _ => {}
        }
    }
    consistent(&mut tree, Entry::is_dir);
    tree
}

fn baseline(kinds: &[u8], contents: &[u8], hashed: bool) -> BaseTree {
    let mut base = BaseTree::new();
    for i in 0..N {
        let (Some(s), Some(t)) = (
            entry(kinds[i], contents[i], 1 + i as u64, hashed),
            entry(kinds[i], contents[i], 1001 + i as u64, hashed),
        ) else {
            continue;
        };
        base.insert(path(i), BaseEntry::agreed(&s, &t));
    }
    consistent(&mut base, |b| b.kind == Kind::Dir);
    base
}

fn options(mode: (u8, u8, u8), held: Option<usize>) -> Options {
    Options {
        direction: [Direction::Both, Direction::Push, Direction::Pull][usize::from(mode.0 % 3)],
        flavor: [Flavor::Safe, Flavor::Replica][usize::from(mode.1 % 2)],
        policy: [
            Policy::KeepBoth,
            Policy::Newest,
            Policy::Source,
            Policy::Target,
            Policy::Flag,
        ][usize::from(mode.2 % 5)],
        stamp: "20240102-030405".to_string(),
        held: held.map(path).into_iter().collect(),
        ..Options::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn issue_21_streaming_merge_plans_like_whole_trees(
        kinds in prop::collection::vec(0u8..4, N),
        contents in prop::collection::vec(any::<u8>(), N),
        src_ops in prop::collection::vec((0u8..12, any::<u8>()), N),
        tgt_ops in prop::collection::vec((0u8..12, any::<u8>()), N),
        mode in (0u8..3, 0u8..2, 0u8..5),
        hashed in any::<bool>(),
        held in prop::option::weighted(0.1, 0..N),
    ) {
        let base = baseline(&kinds, &contents, hashed);
        let src = side(&base, &src_ops, Side::Source, hashed);
        let tgt = side(&base, &tgt_ops, Side::Target, hashed);
        let opts = options(mode, held);
        let whole = reconcile(base.clone(), src.clone(), tgt.clone(), &opts);
        let (b, s, t) = (base.len(), src.len(), tgt.len());
        let merged = merge_sorted(base, src, tgt, &opts);
        prop_assert_eq!((merged.counts.base, merged.counts.src, merged.counts.tgt), (b, s, t));
        let streamed = reconcile(merged.base, merged.src, merged.tgt, &opts);
        prop_assert_eq!(whole, streamed);
    }
}

/// The merge drops what is settled: an unchanged tree keeps its directories only.
#[test]
fn issue_21_streaming_merge_drops_settled_files() {
    let kinds = [2, 2, 1, 1, 3, 2, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1];
    let base = baseline(&kinds, &[5; N], false);
    let src = side(&base, &[(0, 0); N], Side::Source, false);
    let tgt = side(&base, &[(0, 0); N], Side::Target, false);
    let merged = merge_sorted(base.clone(), src, tgt, &Options::default());
    let dirs = base.values().filter(|b| b.kind == Kind::Dir).count();
    assert_eq!(
        merged.base.len(),
        dirs + 1,
        "directories and the conflict-like name"
    );
    assert_eq!(merged.src.len(), dirs + 1);
    assert_eq!(merged.counts.dropped, base.len() - dirs - 1);
    assert!(reconcile(merged.base, merged.src, merged.tgt, &Options::default()).is_noop());
}

/// `reconcile` on what a first sync's merge kept, after the steps it handed out.
fn first_sync_streamed(src: Tree, tgt: Tree, opts: &Options) -> (Vec<Action>, Vec<Action>) {
    let mut out = Vec::new();
    let m = Merge::new(src.into_iter(), tgt.into_iter(), opts);
    let merged = m.finish_into(Some(&mut |a| out.push(a)));
    assert_eq!(merged.counts.streamed, out.len());
    let rest = reconcile(merged.base, merged.src, merged.tgt, opts).actions;
    (out, rest)
}

fn sorted(actions: impl IntoIterator<Item = Action>) -> Vec<String> {
    let mut v: Vec<String> = actions.into_iter().map(|a| format!("{a:?}")).collect();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// A first sync (no baseline) whose merge hands out the steps for what is new on one
    /// side plans the same steps as reconcile on the whole trees, and hands out each step
    /// after the one that makes its parent folder on the receiving side.
    #[test]
    fn issue_21_first_sync_streamed_steps_plan_like_whole_trees(
        src_ops in prop::collection::vec((0u8..12, any::<u8>()), N),
        tgt_ops in prop::collection::vec((0u8..12, any::<u8>()), N),
        mode in (0u8..3, 0u8..2, 0u8..5),
        hashed in any::<bool>(),
    ) {
        let src = side(&BaseTree::new(), &src_ops, Side::Source, hashed);
        let tgt = side(&BaseTree::new(), &tgt_ops, Side::Target, hashed);
        let opts = options(mode, None);
        let whole = reconcile(BaseTree::new(), src.clone(), tgt.clone(), &opts);
        let (streamed, rest) = first_sync_streamed(src.clone(), tgt.clone(), &opts);
        let mut made: Vec<(Side, RelPath)> = Vec::new();
        for a in &streamed {
            let (side, p) = match a {
                Action::Mkdir { path, side, .. } => (*side, path),
                Action::Copy { path, from, .. } => (from.other(), path),
                other => return Err(TestCaseError::fail(format!("handed out {other:?}"))),
            };
            let parent = p.parent().unwrap_or_default();
            let tree = if side == Side::Source { &src } else { &tgt };
            prop_assert!(
                parent.is_root()
                    || tree.get(&parent).is_some_and(Entry::is_dir)
                    || made.contains(&(side, parent.clone())),
                "{:?} before its parent", a
            );
            made.push((side, p.clone()));
        }
        prop_assert_eq!(sorted(whole.actions), sorted(streamed.into_iter().chain(rest)));
    }
}

/// A first sync into an empty folder hands out every step: nothing is kept but the root.
#[test]
fn issue_21_first_sync_into_an_empty_folder_keeps_nothing() {
    let mut src = Tree::new();
    for p in [
        "a",
        "a/b",
        "a/b/f",
        "a/g",
        "d-x",
        "d.txt",
        "d",
        "d/x.conflict-1",
    ] {
        let e = if p.contains('.') || p.ends_with('f') || p.ends_with('g') || p == "d-x" {
            Entry::file(1, SEC, 0o644, 1)
        } else {
            Entry::dir(0o755, 1)
        };
        src.insert(RelPath::new(p).unwrap(), e);
    }
    let opts = Options::default();
    let (streamed, rest) = first_sync_streamed(src.clone(), Tree::new(), &opts);
    assert_eq!(streamed.len(), src.len(), "{streamed:?}");
    assert!(rest.is_empty(), "{rest:?}");
    // Pull only: nothing goes to the target, all is left to reconcile.
    let pull = Options {
        direction: Direction::Pull,
        ..Options::default()
    };
    let (streamed, _) = first_sync_streamed(src, Tree::new(), &pull);
    assert!(streamed.is_empty(), "{streamed:?}");
}
