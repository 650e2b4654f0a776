//! A scoped sync (the mount's journal hints) looks only at the named paths, their subtrees
//! and their parents, and decides exactly as a full sync would for them.
#![allow(clippy::unwrap_used)]
// Unix file modes, symlinks and names as bytes.
#![cfg(unix)]

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

/// A file still being written (held) inside a directory renamed meanwhile: the rename is
/// replayed, and the held file is left alone under its new name, not taken for deleted
/// in the source (the rename brings the target's copy and the baseline to the new name).
#[test]
fn a_held_file_in_a_renamed_directory_is_left_alone_under_its_new_name() {
    let (_tmp, spec) = setup();
    for i in 0..10 {
        write(&spec.src, &format!("big/f{i}"), "x");
    }
    let mut s = Session::open(&spec).unwrap();
    s.sync(&Scope::All, &|_| {}).unwrap();
    std::fs::rename(spec.src.join("big"), spec.src.join("moved")).unwrap();
    write(&spec.src, "moved/f3", "half writ");
    let held: std::collections::HashSet<RelPath> = [p("moved/f3")].into_iter().collect();
    let hints = vec![(p("big"), true), (p("moved"), true)];
    let r = s
        .sync_guarded(&Scope::Hints(hints), &|_| {}, &|| Some(Vec::new()), &held)
        .unwrap();
    assert_eq!((r.renamed, r.deleted, r.copied), (1, 0, 0), "{r:?}");
    assert_eq!(
        std::fs::read_to_string(spec.tgt.join("moved/f3")).unwrap(),
        "x",
        "the held file's old copy stays until its writer closes it"
    );
    // Once closed, it is synced like any change.
    let r = s.sync(&Scope::Paths(vec![p("moved/f3")]), &|_| {}).unwrap();
    assert_eq!(r.copied, 1, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(spec.tgt.join("moved/f3")).unwrap(),
        "half writ"
    );
}

/// A file opened for writing while a pass scanned (`check` lists it): its copy is left out
/// of the pass and reported for the next; a rename of it makes the whole pass wait instead
/// (one end of a move is not applied without the other).
#[test]
fn a_file_opened_while_scanned_is_left_out_and_a_rename_of_it_defers_the_pass() {
    let (_tmp, spec) = setup();
    write(&spec.src, "old.txt", "o");
    let mut s = Session::open(&spec).unwrap();
    s.sync(&Scope::All, &|_| {}).unwrap();
    write(&spec.src, "opened.txt", "half");
    write(&spec.src, "other.txt", "whole");
    let none = std::collections::HashSet::new();
    let opened = || Some(vec![p("opened.txt")]);
    let scope = Scope::Paths(vec![p("opened.txt"), p("other.txt")]);
    let r = s.sync_guarded(&scope, &|_| {}, &opened, &none).unwrap();
    assert_eq!(r.copied, 1, "{r:?}");
    assert_eq!(r.left_out, vec![p("opened.txt")]);
    assert!(!spec.tgt.join("opened.txt").exists());

    std::fs::rename(spec.src.join("old.txt"), spec.src.join("new.txt")).unwrap();
    let opened = || Some(vec![p("new.txt")]);
    let scope = Scope::Paths(vec![p("old.txt"), p("new.txt")]);
    let r = s.sync_guarded(&scope, &|_| {}, &opened, &none).unwrap();
    assert!(r.deferred, "{r:?}");
    assert!(spec.tgt.join("old.txt").exists() && !spec.tgt.join("new.txt").exists());
}
