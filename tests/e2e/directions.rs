//! One-way directions, safe and replica.

use crate::fixtures::*;

fn diverged() -> Pair {
    let p = Pair::new();
    p.write(S::Src, "shared.txt", "v1");
    p.write(S::Src, "both-edit.txt", "v1");
    p.sync_ok(&[], 0);
    p.write(S::Src, "from-src.txt", "new on source");
    p.write(S::Src, "shared.txt", "edited on source");
    p.write(S::Tgt, "from-tgt.txt", "new on target");
    p.write(S::Tgt, "both-edit.txt", "target's own edit");
    p
}

#[test]
fn push_safe_sends_source_changes_and_leaves_the_targets_own() {
    let p = diverged();
    let out = p.sync_ok(&["--direction", "push"], 1);
    assert!(
        out.stdout.contains("from-tgt.txt") && out.stdout.contains("own change"),
        "{}",
        out.stdout
    );
    assert_eq!(p.read(S::Tgt, "from-src.txt"), "new on source");
    assert_eq!(p.read(S::Tgt, "shared.txt"), "edited on source");
    assert_eq!(p.read(S::Tgt, "from-tgt.txt"), "new on target");
    assert_eq!(p.read(S::Tgt, "both-edit.txt"), "target's own edit");
    assert!(
        !p.exists(S::Src, "from-tgt.txt"),
        "push never writes the source"
    );
    assert_eq!(p.read(S::Src, "both-edit.txt"), "v1");
}

#[test]
fn push_replica_makes_the_target_an_exact_copy() {
    let p = diverged();
    p.sync_ok(&["--direction", "push", "--mode", "replica"], 0);
    p.assert_same();
    assert!(!p.exists(S::Tgt, "from-tgt.txt"));
    assert_eq!(p.read(S::Tgt, "both-edit.txt"), "v1");
    let trash = p.trash_contents(S::Tgt);
    assert!(
        trash.contains(&"new on target".to_string())
            && trash.contains(&"target's own edit".to_string()),
        "{trash:?}"
    );
}

#[test]
fn pull_safe_and_replica_mirror_push() {
    let p = diverged();
    p.sync_ok(&["--direction", "pull"], 1);
    assert_eq!(p.read(S::Src, "from-tgt.txt"), "new on target");
    assert_eq!(p.read(S::Src, "both-edit.txt"), "target's own edit");
    assert!(
        !p.exists(S::Tgt, "from-src.txt"),
        "pull never writes the target"
    );
    assert_eq!(p.read(S::Src, "from-src.txt"), "new on source");

    let p = diverged();
    p.sync_ok(&["--direction", "pull", "--mode", "replica"], 0);
    p.assert_same();
    assert!(!p.exists(S::Src, "from-src.txt"));
    assert_eq!(p.read(S::Src, "shared.txt"), "v1");
}

#[test]
fn push_replica_restores_what_the_target_deleted() {
    let p = Pair::new();
    p.write(S::Src, "a", "a");
    p.write(S::Src, "b", "b");
    p.write(S::Src, "c", "c");
    p.sync_ok(&[], 0);
    std::fs::remove_file(p.path(S::Tgt, "a")).unwrap();
    p.sync_ok(&["--direction", "push", "--mode", "replica"], 0);
    p.assert_same();
}

const Y2001: i64 = 978_307_200;
const Y2010: i64 = 1_262_304_000;
const Y2015: i64 = 1_420_070_400;
const Y2020: i64 = 1_577_836_800;

/// Pushed once with every file dated 2010; then the source's `older-on-target.txt` gets a
/// 2020 version, `newer-on-target.txt` an old one (2001, a restore from a backup), and
/// `both.txt` changes on both sides, the target's edit (2020) newer than the source's (2015).
fn pushed_then_dated() -> Pair {
    let p = Pair::new();
    for name in ["older-on-target.txt", "newer-on-target.txt", "both.txt"] {
        p.write(S::Src, name, "v1");
        set_mtime(&p.path(S::Src, name), Y2010, 0);
    }
    p.sync_ok(&["--direction", "push"], 0);
    let edit = |s: S, name: &str, text: &str, secs: i64| {
        p.write(s, name, text);
        set_mtime(&p.path(s, name), secs, 0);
    };
    edit(S::Src, "older-on-target.txt", "source 2020", Y2020);
    edit(S::Src, "newer-on-target.txt", "source 2001", Y2001);
    edit(S::Src, "both.txt", "source 2015", Y2015);
    edit(S::Tgt, "both.txt", "target 2020", Y2020);
    p
}

#[test]
fn issue_19_update_skips_files_newer_on_the_target() {
    let p = pushed_then_dated();
    let out = p.sync_ok(&["--direction", "push", "--update", "--json"], 1);
    assert_eq!(p.read(S::Tgt, "older-on-target.txt"), "source 2020");
    assert_eq!(p.read(S::Tgt, "newer-on-target.txt"), "v1");
    assert_eq!(
        mtime_ns(&p.path(S::Tgt, "newer-on-target.txt")),
        Y2010 * 1_000_000_000
    );
    assert_eq!(p.read(S::Tgt, "both.txt"), "target 2020");
    assert!(
        p.names_with(S::Tgt, "conflict").is_empty(),
        "{:?}",
        p.tree(S::Tgt)
    );
    let summary: serde_json::Value =
        serde_json::from_str(out.stdout.lines().last().unwrap_or("")).unwrap();
    let mut skipped: Vec<(String, String)> = summary["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["path"].as_str().unwrap().into(),
                s["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    skipped.sort();
    let newer = "the target's copy is newer".to_string();
    assert_eq!(
        skipped,
        [
            ("both.txt".into(), newer.clone()),
            ("newer-on-target.txt".into(), newer)
        ],
        "{}",
        out.stdout
    );
    assert_eq!(
        summary["kept_newer"].as_array().map(Vec::len),
        Some(2),
        "{summary}"
    );
    assert!(
        summary["conflicts"].as_array().unwrap().is_empty(),
        "{summary}"
    );

    // Reported again, in text this time, and nothing changes.
    let (src, tgt) = (p.tree(S::Src), p.tree(S::Tgt));
    let out = p.sync_ok(&["--direction", "push", "--update"], 1);
    assert!(
        out.stdout.contains("2 skipped: newer on the target")
            && out
                .stdout
                .contains("newer-on-target.txt: the target's copy is newer")
            && !out.stdout.contains("copied"),
        "{}",
        out.stdout
    );
    assert_eq!((p.tree(S::Src), p.tree(S::Tgt)), (src, tgt));
    assert_eq!(
        mtime_ns(&p.path(S::Tgt, "newer-on-target.txt")),
        Y2010 * 1_000_000_000
    );

    // Without it, the same run as if --update had never been used: the source's version
    // replaces the newer file, and the two-sided edit is a conflict (both versions kept).
    let out = p.sync_ok(&["--direction", "push"], 1);
    assert_eq!(p.read(S::Tgt, "newer-on-target.txt"), "source 2001");
    assert_eq!(p.read(S::Tgt, "both.txt"), "source 2015");
    let copies = p.names_with(S::Tgt, "both.conflict-");
    assert_eq!(copies.len(), 1, "{}", out.stdout);
    assert_eq!(p.read(S::Tgt, &copies[0]), "target 2020");
}

#[test]
fn issue_19_update_is_refused_for_two_way() {
    let p = Pair::new();
    p.write(S::Src, "a.txt", "a");
    for args in [&["--update"][..], &["--direction", "both", "--update"]] {
        let out = p.sync_ok(args, 2);
        out.assert_stderr_has("--update works only one way");
        out.assert_stderr_has("--direction push");
    }
    assert!(!p.exists(S::Tgt, "a.txt"));
    assert!(!p.state.exists(), "nothing was written, not even the state");
}
