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
