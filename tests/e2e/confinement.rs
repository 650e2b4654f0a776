//! Confinement (DESIGN.md invariant 6): nothing outside the two roots is read or written.
//!
//! The class of Syncthing's CVE-2017-1000420: a symlink planted where a directory was (or
//! will be) must never let a sync write, delete or chmod through it. Every test keeps an
//! `outside` folder next to the pair and checks it is exactly as it was at the end.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::fixtures::*;

/// A folder outside both roots, with files named like the ones the pair syncs.
struct Outside {
    path: PathBuf,
    before: BTreeMap<Vec<u8>, Node>,
    mtime: i64,
    /// The pair's two roots, searched for outside content.
    roots: [PathBuf; 2],
}

impl Outside {
    fn new(p: &Pair) -> Outside {
        let path = p.tmp.path().join("outside");
        write_file(&path.join("a.txt"), b"OUTSIDE a");
        write_file(&path.join("b.txt"), b"OUTSIDE b");
        write_file(&path.join("c.txt"), b"OUTSIDE c");
        write_file(&path.join("x"), b"OUTSIDE x");
        write_file(&path.join("sub/deep.txt"), b"OUTSIDE deep");
        std::fs::set_permissions(path.join("c.txt"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        let before = tree_of(&path);
        let mtime = mtime_ns(&path);
        Outside {
            path,
            before,
            mtime,
            roots: [p.src.clone(), p.tgt.clone()],
        }
    }

    /// Nothing of the outside folder was read into the pair: no file on either side (trash
    /// included) holds an outside file's content.
    fn assert_not_copied_in(&self) {
        for root in &self.roots {
            for (name, node) in tree_of(root).into_iter().chain(tree_of_all(root)) {
                if let Node::File(c, _) = node {
                    assert!(
                        !c.starts_with(b"OUTSIDE "),
                        "{} in {} holds an outside file's content",
                        String::from_utf8_lossy(&name),
                        root.display()
                    );
                }
            }
        }
    }

    /// Same paths, kinds, contents and modes; nothing created (not even a `.tandem`); and
    /// nothing of it was read into the pair.
    fn assert_unchanged(&self) {
        let now = tree_of(&self.path);
        assert_eq!(now, self.before, "the folder outside the pair changed");
        let names: Vec<_> = std::fs::read_dir(&self.path)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 5, "something was created outside: {names:?}");
        assert!(
            !self.path.join(".tandem").exists(),
            "a trash was created outside"
        );
        assert_eq!(
            mtime_ns(&self.path),
            self.mtime,
            "an entry was added or removed outside"
        );
        self.assert_not_copied_in();
    }
}

/// Everything below `.tandem` too (`tree_of` leaves it out).
fn tree_of_all(root: &Path) -> BTreeMap<Vec<u8>, Node> {
    let t = root.join(".tandem");
    if t.exists() {
        tree_of(&t)
    } else {
        BTreeMap::new()
    }
}

/// How many symlinks on side `s` point at `to`.
fn links_to(p: &Pair, s: S, to: &Path) -> usize {
    let want = Node::Link(to.as_os_str().as_bytes().to_vec());
    p.tree(s).into_values().filter(|n| *n == want).count()
}

fn is_link(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}

#[test]
fn a_target_directory_swapped_for_a_link_between_syncs() {
    let p = Pair::new();
    let outside = Outside::new(&p);
    p.write(S::Src, "d/a.txt", "a v1");
    p.write(S::Src, "d/b.txt", "b v1");
    p.write(S::Src, "d/c.txt", "c v1");
    p.write(S::Src, "d/sub/deep.txt", "deep v1");
    p.sync_ok(&[], 0);
    // On the target, `d` becomes a link to the outside folder...
    std::fs::remove_dir_all(p.path(S::Tgt, "d")).unwrap();
    symlink(&outside.path, p.path(S::Tgt, "d")).unwrap();
    // ...while the source edits, adds, deletes and chmods inside `d`.
    p.write(S::Src, "d/a.txt", "a v2 from the source");
    p.write(S::Src, "d/new.txt", "new on the source");
    p.write(S::Src, "d/sub/deep.txt", "deep v2 from the source");
    std::fs::remove_file(p.path(S::Src, "d/b.txt")).unwrap();
    std::fs::set_permissions(
        p.path(S::Src, "d/c.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = p.sync(&["--max-delete", "100"]);
    assert_eq!(
        out.code,
        1,
        "the link against the folder is a conflict:\n{}",
        out.all()
    );
    assert!(
        out.stdout.contains("conflicts:") && out.stdout.contains("d.conflict-"),
        "{}",
        out.stdout
    );
    outside.assert_unchanged();
    // The source's folder wins the name on both sides, as a real folder with its changes...
    assert!(
        !is_link(&p.path(S::Tgt, "d")),
        "the target's `d` is a real folder again"
    );
    assert_eq!(p.read(S::Tgt, "d/a.txt"), "a v2 from the source");
    assert_eq!(p.read(S::Tgt, "d/new.txt"), "new on the source");
    assert_eq!(p.read(S::Tgt, "d/sub/deep.txt"), "deep v2 from the source");
    assert_eq!(p.read(S::Src, "d/a.txt"), "a v2 from the source");
    // ...and the target's link is kept as a link, under a conflict name.
    assert_eq!(
        links_to(&p, S::Tgt, &outside.path),
        1,
        "{:?}",
        p.tree(S::Tgt).keys()
    );
    p.assert_same();
    // The next run has nothing to do and still leaves the outside alone.
    p.sync_ok(&[], 0);
    outside.assert_unchanged();
}

#[test]
fn a_link_on_one_side_where_the_other_side_has_a_directory() {
    let p = Pair::new();
    let outside = Outside::new(&p);
    // First sync: the source has d/x, the target has `d` as a link to the outside folder.
    p.write(S::Src, "d/x", "x from the source");
    p.write(S::Src, "d/sub/deep.txt", "deep from the source");
    symlink(&outside.path, p.path(S::Tgt, "d")).unwrap();
    let out = p.sync(&[]);
    assert_eq!(
        out.code,
        1,
        "the link against the folder is a conflict:\n{}",
        out.all()
    );
    assert!(out.stdout.contains("d.conflict-"), "{}", out.stdout);
    outside.assert_unchanged();
    assert!(
        !is_link(&p.path(S::Tgt, "d")),
        "the target's `d` is a real folder now"
    );
    assert_eq!(p.read(S::Tgt, "d/x"), "x from the source");
    assert_eq!(p.read(S::Tgt, "d/sub/deep.txt"), "deep from the source");
    assert_eq!(p.read(S::Src, "d/x"), "x from the source");
    assert_eq!(
        links_to(&p, S::Tgt, &outside.path),
        1,
        "the link is kept as a link"
    );
    p.assert_same();
    p.sync_ok(&[], 0);
    outside.assert_unchanged();
    // The same with the sides swapped: the source holds the link, the target the folder.
    let q = Pair::new();
    let outside2 = Outside::new(&q);
    q.write(S::Tgt, "d/x", "x from the target");
    symlink(&outside2.path, q.path(S::Src, "d")).unwrap();
    let out = q.sync(&[]);
    assert_eq!(out.code, 1, "{}", out.all());
    outside2.assert_unchanged();
    assert!(!is_link(&q.path(S::Src, "d")));
    assert_eq!(q.read(S::Src, "d/x"), "x from the target");
    assert_eq!(links_to(&q, S::Src, &outside2.path), 1);
    q.assert_same();
    q.sync_ok(&[], 0);
    outside2.assert_unchanged();
}

#[test]
fn a_link_pointing_outside_is_synced_as_a_link() {
    let p = Pair::new();
    let outside = Outside::new(&p);
    symlink("../outside", p.path(S::Src, "link")).unwrap();
    symlink("../outside/a.txt", p.path(S::Src, "file-link")).unwrap();
    p.write(S::Src, "plain.txt", "plain");
    p.sync_ok(&[], 0);
    p.assert_same();
    // The same target bytes, even though on the target they resolve outside too.
    let target_of = |s: S, rel: &str| {
        std::fs::read_link(p.path(s, rel))
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec()
    };
    assert_eq!(target_of(S::Tgt, "link"), b"../outside");
    assert_eq!(target_of(S::Tgt, "file-link"), b"../outside/a.txt");
    outside.assert_unchanged();
    p.sync_ok(&[], 0);
    outside.assert_unchanged();
    // The source turns `link` into a real folder with files named like the outside ones,
    // and `file-link` into a file: the target's links are replaced, never written through.
    std::fs::remove_file(p.path(S::Src, "link")).unwrap();
    p.write(S::Src, "link/a.txt", "a inside the pair");
    p.write(S::Src, "link/sub/deep.txt", "deep inside the pair");
    std::fs::remove_file(p.path(S::Src, "file-link")).unwrap();
    p.write(S::Src, "file-link", "now a plain file");
    p.sync_ok(&[], 0);
    outside.assert_unchanged();
    assert!(
        !is_link(&p.path(S::Tgt, "link")),
        "the link was replaced by a folder"
    );
    assert_eq!(p.read(S::Tgt, "link/a.txt"), "a inside the pair");
    assert_eq!(p.read(S::Tgt, "link/sub/deep.txt"), "deep inside the pair");
    assert!(!is_link(&p.path(S::Tgt, "file-link")));
    assert_eq!(p.read(S::Tgt, "file-link"), "now a plain file");
    p.assert_same();
    // The replaced links are in the target's trash, as links.
    let trash = tree_of(&p.tgt.join(".tandem/trash"));
    let trashed: Vec<_> = trash
        .values()
        .filter(|n| matches!(n, Node::Link(_)))
        .collect();
    assert_eq!(trashed.len(), 2, "{trash:?}");
}

/// A synced pair with `d/{a,b,c}.txt`; then the source edits, adds (in a new sub folder),
/// chmods and deletes inside `d`, and adds `unrelated.txt` outside it.
fn pair_with_changes_in_d() -> (Pair, Outside) {
    let p = Pair::new();
    let outside = Outside::new(&p);
    p.write(S::Src, "d/a.txt", "a v1");
    p.write(S::Src, "d/b.txt", "b v1");
    p.write(S::Src, "d/c.txt", "c v1");
    p.write(S::Src, "keep.txt", "outside d");
    p.sync_ok(&[], 0);
    p.write(S::Src, "unrelated.txt", "not in d");
    p.write(S::Src, "d/a.txt", "a v2 from the source");
    p.write(S::Src, "d/new.txt", "new on the source");
    p.write(S::Src, "d/sub/deep.txt", "deep, in a new folder");
    std::fs::set_permissions(
        p.path(S::Src, "d/c.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    // Deleted last, so that no new file reuses its inode (that would read as a move).
    std::fs::remove_file(p.path(S::Src, "d/b.txt")).unwrap();
    (p, outside)
}

fn spec_of(p: &Pair) -> tandem_engine::SyncSpec {
    tandem_engine::SyncSpec::new(
        std::fs::canonicalize(&p.src).unwrap(),
        std::fs::canonicalize(&p.tgt).unwrap(),
        p.state.clone(),
    )
}

/// Runs the engine; on the first `Planned` event (after scan and plan, before any write)
/// the target's `d` becomes a link to the outside folder and `also` runs.
fn sync_swapping_d(
    p: &Pair,
    outside: &Outside,
    also: &dyn Fn(),
) -> (tandem_engine::Report, Vec<tandem_engine::Event>) {
    let events: Mutex<Vec<tandem_engine::Event>> = Mutex::new(Vec::new());
    let swapped = Mutex::new(false);
    let tgt_d = p.path(S::Tgt, "d");
    let report = tandem_engine::sync(&spec_of(p), &|e| {
        if matches!(e, tandem_engine::Event::Planned { .. }) {
            let mut done = swapped.lock().unwrap();
            if !*done {
                std::fs::remove_dir_all(&tgt_d).unwrap();
                symlink(&outside.path, &tgt_d).unwrap();
                also();
                *done = true;
            }
        }
        events.lock().unwrap().push(e);
    })
    .expect("the sync runs to its end");
    assert!(
        *swapped.lock().unwrap(),
        "the plan was made and the swap happened"
    );
    (report, events.into_inner().unwrap())
}

/// Every write reported done under `d` on the target landed inside the target root: the
/// path is there, with no symlink on the way.
fn assert_done_writes_landed_inside(p: &Pair, events: &[tandem_engine::Event]) {
    for e in events {
        if let tandem_engine::Event::Done {
            path,
            side: Some("target"),
            verb,
            ..
        } = e
        {
            let bytes = path.as_bytes();
            if !bytes.starts_with(b"d/") {
                continue;
            }
            let mut cur = p.tgt.clone();
            for comp in bytes.split(|b| *b == b'/') {
                assert!(
                    !is_link(&cur),
                    "{verb} {path} reported done below a symlink"
                );
                cur.push(std::ffi::OsStr::from_bytes(comp));
            }
            assert!(
                std::fs::symlink_metadata(&cur).is_ok(),
                "{verb} {path} reported done but absent"
            );
        }
    }
}

/// The race itself: the target's `d` becomes a link to the outside folder after the scan
/// and plan, right before the first write. Uses the engine directly to hit that moment.
#[test]
fn a_directory_swapped_for_a_link_between_scan_and_apply() {
    let (p, outside) = pair_with_changes_in_d();
    let (report, events) = sync_swapping_d(&p, &outside, &|| {});
    outside.assert_unchanged();
    assert_done_writes_landed_inside(&p, &events);
    // Every step into `d` found its parent replaced: refused as raced, never followed, and
    // planned again in a second round, which sees the link as the target's own change
    // against the source's changes inside `d`: a conflict, both kept.
    assert!(
        events
            .iter()
            .any(|e| matches!(e, tandem_engine::Event::Retrying { .. })),
        "the refused steps were planned again: {events:?}"
    );
    assert_eq!(report.exit_code(), 1, "{report:?}");
    assert_eq!(report.conflicts.len(), 1, "{report:?}");
    assert!(report.failed.is_empty(), "{report:?}");
    assert!(
        !is_link(&p.path(S::Tgt, "d")),
        "the source's folder took the name"
    );
    assert_eq!(
        links_to(&p, S::Tgt, &outside.path),
        1,
        "the planted link is kept, as a link"
    );
    assert_eq!(p.read(S::Tgt, "unrelated.txt"), "not in d");
    assert_eq!(p.read(S::Tgt, "d/a.txt"), "a v2 from the source");
    assert_eq!(p.read(S::Tgt, "d/new.txt"), "new on the source");
    assert_eq!(p.read(S::Tgt, "d/sub/deep.txt"), "deep, in a new folder");
    assert!(!p.exists(S::Tgt, "d/b.txt"));
    // The source lost nothing.
    assert_eq!(p.read(S::Src, "d/a.txt"), "a v2 from the source");
    assert_eq!(p.read(S::Src, "d/new.txt"), "new on the source");
    assert_eq!(
        std::fs::metadata(p.path(S::Src, "d/c.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    p.assert_same();
    p.sync_ok(&[], 0);
    outside.assert_unchanged();
}

/// The same swap, plus a source file edited after the plan: that step is refused as raced
/// and the engine plans a second round, which now sees the link. Re-planning must not
/// follow it either, and what the second round synced is not reported as failed.
#[test]
fn a_replan_after_the_swap_keeps_the_link_and_follows_nothing() {
    let (p, outside) = pair_with_changes_in_d();
    let unrelated = p.path(S::Src, "unrelated.txt");
    let (report, events) = sync_swapping_d(&p, &outside, &|| {
        std::fs::write(&unrelated, "edited after the plan").unwrap();
    });
    outside.assert_unchanged();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, tandem_engine::Event::Retrying { .. })),
        "a second round was planned: {events:?}"
    );
    assert_done_writes_landed_inside(&p, &events);
    // Round two: the link against the source's folder is a conflict; both are kept.
    assert_eq!(report.exit_code(), 1, "{report:?}");
    assert_eq!(report.conflicts.len(), 1, "{report:?}");
    assert!(
        !is_link(&p.path(S::Tgt, "d")),
        "the source's folder took the name"
    );
    assert_eq!(
        links_to(&p, S::Tgt, &outside.path),
        1,
        "the link is kept, as a link"
    );
    assert_eq!(p.read(S::Tgt, "d/a.txt"), "a v2 from the source");
    assert_eq!(p.read(S::Tgt, "d/new.txt"), "new on the source");
    assert_eq!(p.read(S::Tgt, "d/sub/deep.txt"), "deep, in a new folder");
    assert_eq!(p.read(S::Tgt, "unrelated.txt"), "edited after the plan");
    p.assert_same();
    // Round one's failures were settled by round two: none is left to report.
    assert!(
        report.failed.is_empty(),
        "synced paths reported as failed: {:?}",
        report.failed
    );
    p.sync_ok(&[], 0);
    outside.assert_unchanged();
}
