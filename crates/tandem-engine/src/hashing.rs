//! Deciding which files need a content hash, and hashing them in parallel.
//!
//! A hash is needed only where size and stat cannot settle a question: a file whose stat
//! moved but whose size did not (touched, or edited in place?), a path where both sides
//! hold files of the same size (equal, or a conflict?), and a new file the size of one that
//! vanished (renamed?). With `--rescan`, every file.

use std::collections::HashSet;

use crate::side::SideRoot;
use tandem_core::{BaseTree, Entry, Kind, RelPath, Side, Tree};

/// A source file the baseline knew changed since (`e`, `b`): when the target still holds
/// the baseline's version, the target is told it will likely be replaced.
fn hint_replacement(
    tgt: &dyn SideRoot,
    p: &RelPath,
    e: &Entry,
    b: &tandem_core::BaseEntry,
    other: &Tree,
    window: i64,
) {
    let unchanged = |t: &&Entry| {
        t.kind == Kind::File
            && t.ino == b.ino(Side::Target)
            && t.size == b.size
            && t.mtime.abs_diff(b.seen(Side::Target).mtime) <= window.unsigned_abs()
    };
    if let Some(t) = other.get(p).filter(unchanged) {
        tgt.expect_replacement(p, t, e);
    }
}

pub fn fill_hashes(
    base: &BaseTree,
    src: &mut Tree,
    tgt: &mut Tree,
    roots: (&dyn SideRoot, &dyn SideRoot),
    rescan: bool,
    window: i64,
    threads: usize,
) {
    let mut want: Vec<(Side, RelPath, Entry)> = Vec::new();
    for side in [Side::Source, Side::Target] {
        let (this, other) = match side {
            Side::Source => (&mut *src, &*tgt),
            Side::Target => (&mut *tgt, &*src),
        };
        // Sorted merges with the baseline: no per-path lookups on this hot path.
        let mut vanished_sizes: HashSet<u64> = HashSet::new();
        tandem_core::merge2(base, this, |_, b, e| {
            if let (Some(b), None) = (b, e) {
                if b.kind == Kind::File && b.hash.is_some() {
                    vanished_sizes.insert(b.size);
                }
            }
        });
        let mut base_iter = base.iter().peekable();
        for (p, e) in this.iter_mut() {
            while base_iter.next_if(|(k, _)| *k < p).is_some() {}
            if e.kind != Kind::File {
                continue;
            }
            let b = base_iter
                .peek()
                .filter(|(k, b)| *k == p && b.kind == Kind::File)
                .map(|(_, b)| *b);
            if rescan {
                want.push((side, p.clone(), e.clone()));
                continue;
            }
            if let Some(b) = b {
                if e.ino == b.ino(side)
                    && e.size == b.size
                    && e.mtime.abs_diff(b.seen(side).mtime) <= window.unsigned_abs()
                {
                    e.hash = b.hash;
                    continue;
                }
                if side == Side::Source {
                    hint_replacement(roots.1, p, e, b, other, window);
                }
                if e.size == b.size {
                    want.push((side, p.clone(), e.clone()));
                    continue;
                }
            }
            let same_size_other =
                matches!(other.get(p), Some(o) if o.kind == Kind::File && o.size == e.size);
            if same_size_other || (b.is_none() && vanished_sizes.contains(&e.size)) {
                want.push((side, p.clone(), e.clone()));
            }
        }
    }
    if want.is_empty() {
        return;
    }
    let results = hash_all(&want, roots, threads);
    for ((side, path, _), result) in want.into_iter().zip(results) {
        let tree = match side {
            Side::Source => &mut *src,
            Side::Target => &mut *tgt,
        };
        let Some(e) = tree.get_mut(&path) else {
            continue;
        };
        match result {
            Ok(h) => e.hash = Some(h),
            Err(err) if err.is_raced() => {
                *e = Entry::problem("changed while it was being read; synced on a later run")
            }
            Err(err) => *e = Entry::problem(err.to_string()),
        }
    }
}

/// Each side hashes its own files, in one request per side (a remote side hashes on its
/// machine and sends back only the hashes).
fn hash_all(
    want: &[(Side, RelPath, Entry)],
    (src, tgt): (&dyn SideRoot, &dyn SideRoot),
    threads: usize,
) -> Vec<tandem_fs::Result<tandem_core::Hash>> {
    let mut out: Vec<Option<tandem_fs::Result<tandem_core::Hash>>> =
        (0..want.len()).map(|_| None).collect();
    let split = |side: Side| -> (Vec<usize>, Vec<(RelPath, Entry)>) {
        want.iter()
            .enumerate()
            .filter(|(_, (s, _, _))| *s == side)
            .map(|(i, (_, p, e))| (i, (p.clone(), e.clone())))
            .unzip()
    };
    let ((s_slots, s_list), (t_slots, t_list)) = (split(Side::Source), split(Side::Target));
    // Both sides at once: one of them may be on another machine.
    let (s_res, t_res) = std::thread::scope(|sc| {
        let s = sc.spawn(|| src.hash(&s_list, threads));
        let t = tgt.hash(&t_list, threads);
        (s.join().unwrap_or_default(), t)
    });
    for (i, r) in s_slots
        .into_iter()
        .zip(s_res)
        .chain(t_slots.into_iter().zip(t_res))
    {
        out[i] = Some(r);
    }
    out.into_iter()
        .map(|r| {
            r.unwrap_or_else(|| Err(tandem_fs::FsError::raced(&RelPath::root(), "not hashed")))
        })
        .collect()
}
