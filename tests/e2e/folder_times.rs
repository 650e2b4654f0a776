//! Folder modification times (issue 19): a folder tandem created or changed gets the other
//! side's time once its content is complete; a folder time alone is never work to do.

use std::path::Path;

use rustix::fs::{utimensat, AtFlags, Timespec, Timestamps};

use crate::fixtures::*;

/// Sets a folder's modification time, without following a link.
fn set_dir_mtime(p: &Path, ns: i64) {
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: ns / 1_000_000_000,
            tv_nsec: ns % 1_000_000_000,
        },
        last_modification: Timespec {
            tv_sec: ns / 1_000_000_000,
            tv_nsec: ns % 1_000_000_000,
        },
    };
    utimensat(rustix::fs::CWD, p, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

/// The folders of the test tree, deepest last.
const FOLDERS: [&str; 8] = [
    "a", "a/b", "a/b/c", "a/b/c/d", "e", "e/f", "e/empty", "e/f/g",
];

/// Each folder's time on `s`, by name.
fn folder_times(p: &Pair, s: S) -> Vec<(&'static str, i64)> {
    FOLDERS
        .iter()
        .map(|f| (*f, mtime_ns(&p.path(s, f))))
        .collect()
}

fn plans_nothing(p: &Pair) {
    let out = p.sync_ok(&["--dry-run", "--json"], 0);
    assert!(out.stdout.contains("\"plan\":[]"), "{}", out.stdout);
}

#[test]
fn issue_19_folder_times_are_kept() {
    folder_times_are_kept(&Pair::new());
}

#[test]
fn issue_17_folder_times_are_kept_on_a_remote_target() {
    if let Some(p) = crate::remote::over_ssh("issue_17_folder_times_are_kept_on_a_remote_target") {
        folder_times_are_kept(&p);
    }
}

fn folder_times_are_kept(p: &Pair) {
    p.write(S::Src, "a/x.txt", "x");
    p.write(S::Src, "a/b/c/d/deep.txt", "deep");
    p.write(S::Src, "e/f/g/h.txt", "h");
    std::fs::create_dir(p.path(S::Src, "e/empty")).unwrap();
    // Distinct old times, nanoseconds included; deepest first, so that no folder's time is
    // moved by setting its children's.
    for (i, f) in FOLDERS.iter().enumerate().rev() {
        set_dir_mtime(
            &p.path(S::Src, f),
            1_500_000_000_123_456_789 + i as i64 * 1_000_001,
        );
    }
    let src_times = folder_times(p, S::Src);
    p.sync_ok(&[], 0);
    p.assert_same();
    assert_eq!(folder_times(p, S::Tgt), src_times);
    assert_eq!(
        folder_times(p, S::Src),
        src_times,
        "the source is left alone"
    );
    plans_nothing(p);

    // A file added to a deep folder: that folder takes the source's new time again. A folder
    // whose time alone moved on the source is no work to do, and is left as it was.
    let first = folder_times(p, S::Tgt);
    p.write(S::Src, "a/b/c/d/new.txt", "new");
    set_dir_mtime(&p.path(S::Src, "a/b/c/d"), 1_600_000_000_000_000_007);
    set_dir_mtime(&p.path(S::Src, "e"), 1_650_000_000_000_000_003);
    plans_nothing_but_one_copy(p);
    p.assert_same();
    let deep = mtime_ns(&p.path(S::Tgt, "a/b/c/d"));
    assert_eq!(deep, 1_600_000_000_000_000_007);
    for (f, t) in &first {
        if *f != "a/b/c/d" {
            assert_eq!(mtime_ns(&p.path(S::Tgt, f)), *t, "{f} on the target moved");
        }
    }
    plans_nothing(p);

    // The other way: a file added on the target gives the source's folder the target's time.
    p.write(S::Tgt, "e/f/from_target.txt", "t");
    set_dir_mtime(&p.path(S::Tgt, "e/f"), 1_650_000_000_000_000_011);
    p.sync_ok(&[], 0);
    p.assert_same();
    assert_eq!(mtime_ns(&p.path(S::Src, "e/f")), 1_650_000_000_000_000_011);
    assert_eq!(
        mtime_ns(&p.path(S::Src, "e")),
        1_650_000_000_000_000_003,
        "an untouched folder keeps its own time"
    );
    plans_nothing(p);
}

/// Syncs, and insists that the sync copied one file and did nothing else.
fn plans_nothing_but_one_copy(p: &Pair) {
    let out = p.sync_ok(&["--json"], 0);
    for want in ["\"copied\":1", "\"metadata\":0", "\"deleted\":0"] {
        assert!(out.stdout.contains(want), "{want}: {}", out.stdout);
    }
}

/// While mounted: the replicator gives the target's folder the source's time, and a file
/// merged back from the target gives the source's folder the target's, seen through the
/// mount at once (its cached attributes dropped).
#[test]
fn issue_19_folder_times_are_kept_while_mounted() {
    use crate::mount::{fuse_available, wait_for, Mounted};
    if !fuse_available() {
        return;
    }
    const T: std::time::Duration = std::time::Duration::from_secs(15);
    let p = Pair::new();
    p.write(S::Src, "a/b/x.txt", "x");
    let (t_ab, t_a) = (1_500_000_000_000_000_042, 1_400_000_000_000_000_017);
    set_dir_mtime(&p.path(S::Src, "a/b"), t_ab);
    set_dir_mtime(&p.path(S::Src, "a"), t_a);
    let m = Mounted::start(&p);
    let time = |s: S, rel: &str| mtime_ns(&p.path(s, rel));
    wait_for("the startup sync with the folders' times", T, || {
        p.exists(S::Tgt, "a/b/x.txt") && time(S::Tgt, "a/b") == t_ab && time(S::Tgt, "a") == t_a
    });

    // Through the mount, a file added to the deep folder.
    p.write(S::Src, "a/b/y.txt", "y");
    let now_ab = time(S::Src, "a/b");
    assert_ne!(now_ab, t_ab);
    wait_for("the deep folder's new time on the target", T, || {
        p.exists(S::Tgt, "a/b/y.txt") && time(S::Tgt, "a/b") == now_ab
    });
    assert_eq!(time(S::Tgt, "a"), t_a, "an untouched folder keeps its time");

    // In the target, a file added to `a`: merged into the source, whose folder takes the
    // target's time, read through the mount (its attributes were cached just now).
    assert_eq!(time(S::Src, "a"), t_a);
    p.write(S::Tgt, "a/z.txt", "z");
    let tgt_a = time(S::Tgt, "a");
    wait_for("the target's folder time, through the mount", T, || {
        p.exists(S::Src, "a/z.txt") && time(S::Src, "a") == tgt_a
    });
    assert_eq!(
        time(S::Tgt, "a"),
        tgt_a,
        "the target's folder is left as it is"
    );
    drop(m);
}
