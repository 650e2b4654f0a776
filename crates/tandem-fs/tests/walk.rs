//! A walk gives what a listing gives, in the same order (issue 21: the streaming merge
//! reads both sides through walks instead of holding them).

#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use tandem_core::{Filter, RelPath};
use tandem_fs::root::Root;

/// Names that sort around each other bytewise (`d`, `d-x`, `d.txt`, `d/...`, `d0`),
/// nesting, a wide directory (more subdirectories than are read ahead at once), links, a
/// FIFO, an excluded directory and a stale temporary file.
fn tree(root: &Path) {
    for d in ["d", "d-x", "d/x", "d/x/y", "d0", "e/f/g/h", "skip/inner"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    for f in [
        "d.txt",
        "d/x.txt",
        "d/x/y/z",
        "d/x-y",
        "d-x/a",
        "d0/b",
        "e/f/g/h/i",
        "skip/inner/f",
        "top",
        ".tandem-tmp.999999999.x",
    ] {
        fs::write(root.join(f), f.as_bytes()).unwrap();
    }
    for i in 0..700 {
        let d = root.join(format!("wide/{i:04}"));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("f"), b"x").unwrap();
        if i % 7 == 0 {
            fs::create_dir_all(d.join("sub")).unwrap();
        }
    }
    symlink("d.txt", root.join("link")).unwrap();
    symlink("nowhere", root.join("d/dangling")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(root.join("fifo"))
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo");
}

#[test]
fn issue_21_walk_gives_the_listing_in_order() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    let root = Root::open(dir.path()).unwrap();
    let filter = Filter::new(None, &["skip/".to_string()], &[]).unwrap();
    let listed = tandem_fs::list(&root, &filter, 4).unwrap();
    assert!(listed.entries.len() > 1400, "{}", listed.entries.len());
    for threads in [1, 4] {
        let (walked, stale) =
            tandem_fs::walk(&root, &filter, threads, |w| w.collect::<Vec<_>>()).unwrap();
        assert_eq!(walked.len(), listed.entries.len());
        for (a, b) in walked.iter().zip(&listed.entries) {
            assert_eq!(a, b);
        }
        assert_eq!(stale, listed.stale_temps);
    }
    let names: Vec<&[u8]> = listed.entries.iter().map(|(p, _)| p.as_bytes()).collect();
    let at = |n: &str| names.iter().position(|x| *x == n.as_bytes()).unwrap();
    assert!(at("d") < at("d-x") && at("d-x") < at("d.txt") && at("d.txt") < at("d/x"));
    assert!(at("d/x/y/z") < at("d0"));
    assert!(!names.iter().any(|n| n.starts_with(b"skip/")));
}

#[test]
fn issue_21_walk_stopped_early_ends() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    let root = Root::open(dir.path()).unwrap();
    let (first, _) = tandem_fs::walk(&root, &Filter::none(), 4, |w| {
        w.take(5).map(|(p, _)| p).collect::<Vec<RelPath>>()
    })
    .unwrap();
    assert_eq!(first.len(), 5);
    assert_eq!(first[0], RelPath::new("d").unwrap());
}
