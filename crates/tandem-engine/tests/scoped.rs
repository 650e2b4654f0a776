//! A scoped sync (the mount's journal hints) looks only at the named paths, their subtrees
//! and their parents, and decides exactly as a full sync would for them.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use tandem_core::RelPath;
use tandem_engine::{Scope, Session, SyncSpec};

fn setup() -> (tempfile::TempDir, SyncSpec) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let tgt = tmp.path().join("tgt");
    std::fs::create_dir(&src).unwrap();
    std::fs::create_dir(&tgt).unwrap();
    let spec = SyncSpec {
        threads: 2,
        ..SyncSpec::new(src, tgt, tmp.path().join("state"))
    };
    (tmp, spec)
}

fn p(s: &str) -> RelPath {
    RelPath::from_str_lossless(s)
}

fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

#[test]
fn only_hinted_paths_are_synced() {
    let (_tmp, spec) = setup();
    let mut s = Session::open(&spec).unwrap();
    write(&spec.src, "a/hinted.txt", "h");
    write(&spec.src, "a/not-hinted.txt", "n");
    let r = s
        .sync(&Scope::Paths(vec![p("a/hinted.txt")]), &|_| {})
        .unwrap();
    assert_eq!((r.copied, r.dirs_created), (1, 1), "{r:?}");
    assert_eq!(
        std::fs::read_to_string(spec.tgt.join("a/hinted.txt")).unwrap(),
        "h"
    );
    assert!(!spec.tgt.join("a/not-hinted.txt").exists());
    // A full sync finds the rest: the journal is a fast path, not the truth.
    let r = s.sync(&Scope::All, &|_| {}).unwrap();
    assert_eq!(r.copied, 1);
}

#[test]
fn a_hinted_directory_brings_its_subtree_and_a_rename_stays_one_rename() {
    let (_tmp, spec) = setup();
    for i in 0..200 {
        write(&spec.src, &format!("big/d{}/f{i}", i % 7), "x");
    }
    let mut s = Session::open(&spec).unwrap();
    let r = s.sync(&Scope::Paths(vec![p("big")]), &|_| {}).unwrap();
    assert_eq!(r.copied, 200);
    let ino = std::fs::symlink_metadata(spec.tgt.join("big")).unwrap();
    std::fs::rename(spec.src.join("big"), spec.src.join("moved")).unwrap();
    let r = s
        .sync(&Scope::Paths(vec![p("big"), p("moved")]), &|_| {})
        .unwrap();
    assert_eq!((r.renamed, r.copied, r.deleted), (1, 0, 0), "{r:?}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::symlink_metadata(spec.tgt.join("moved"))
            .unwrap()
            .ino(),
        ino.ino()
    );
    let again = s.sync(&Scope::All, &|_| {}).unwrap();
    assert_eq!((again.copied, again.renamed, again.deleted), (0, 0, 0));
}

#[test]
fn deleting_many_hinted_files_is_weighed_against_the_whole_baseline() {
    let (_tmp, spec) = setup();
    for i in 0..100 {
        write(&spec.src, &format!("f{i}"), "x");
    }
    let mut s = Session::open(&spec).unwrap();
    s.sync(&Scope::All, &|_| {}).unwrap();
    let hints: Vec<RelPath> = (0..20).map(|i| p(&format!("f{i}"))).collect();
    for i in 0..20 {
        std::fs::remove_file(spec.src.join(format!("f{i}"))).unwrap();
    }
    // 20 of 100 synced entries: under the 50% limit, though it is all of the scope.
    let r = s.sync(&Scope::Paths(hints), &|_| {}).unwrap();
    assert_eq!((r.deleted, r.halted.is_none()), (20, true), "{r:?}");
}

/// The mount hints a renamed directory's new name shallowly (its content has records of
/// its own), while the old name may be read deeply at the same time (the target watcher
/// hinted it). What the rename carried into the new name was not read on the side that
/// renamed: it must count as unchanged there, not as deleted.
#[test]
fn a_rename_read_deeply_at_its_old_name_only_deletes_nothing_it_moved() {
    let (_tmp, spec) = setup();
    for i in 0..50 {
        write(&spec.src, &format!("big/f{i}"), "x");
    }
    let mut s = Session::open(&spec).unwrap();
    s.sync(&Scope::All, &|_| {}).unwrap();
    // Meanwhile in the target: one file edited, one added below the old name.
    write(&spec.tgt, "big/f7", "edited in the target");
    write(&spec.tgt, "big/new", "new in the target");
    std::fs::rename(spec.src.join("big"), spec.src.join("moved")).unwrap();
    let hints = vec![(p("big"), true), (p("moved"), false)];
    let r = s.sync(&Scope::Hints(hints), &|_| {}).unwrap();
    assert_eq!((r.renamed, r.deleted), (1, 0), "{r:?}");
    assert_eq!(
        r.copied, 2,
        "the target's two changes, to the source: {r:?}"
    );
    for i in 0..50 {
        assert!(spec.tgt.join(format!("moved/f{i}")).exists(), "moved/f{i}");
    }
    assert_eq!(
        std::fs::read_to_string(spec.src.join("moved/f7")).unwrap(),
        "edited in the target"
    );
    assert_eq!(
        std::fs::read_to_string(spec.src.join("moved/new")).unwrap(),
        "new in the target"
    );
    let again = s.sync(&Scope::All, &|_| {}).unwrap();
    assert_eq!(
        (again.copied, again.renamed, again.deleted),
        (0, 0, 0),
        "{again:?}"
    );
}

/// ... while a file the source deleted after the rename, hinted itself, is read, found
/// gone, and deleted in the target.
#[test]
fn a_file_hinted_below_a_shallow_new_name_is_read_there() {
    let (_tmp, spec) = setup();
    for i in 0..20 {
        write(&spec.src, &format!("big/f{i}"), "x");
    }
    let mut s = Session::open(&spec).unwrap();
    s.sync(&Scope::All, &|_| {}).unwrap();
    std::fs::rename(spec.src.join("big"), spec.src.join("moved")).unwrap();
    std::fs::remove_file(spec.src.join("moved/f3")).unwrap();
    let hints = vec![
        (p("big"), true),
        (p("moved"), false),
        (p("moved/f3"), false),
    ];
    let r = s.sync(&Scope::Hints(hints), &|_| {}).unwrap();
    assert_eq!((r.renamed, r.deleted, r.copied), (1, 1, 0), "{r:?}");
    assert!(!spec.tgt.join("moved/f3").exists());
    assert!(spec.tgt.join("moved/f4").exists());
    let again = s.sync(&Scope::All, &|_| {}).unwrap();
    assert_eq!(
        (again.copied, again.renamed, again.deleted),
        (0, 0, 0),
        "{again:?}"
    );
}
