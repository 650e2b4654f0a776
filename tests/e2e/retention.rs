//! The trash of each side is pruned to one retention policy (issue 18): `--history-keep`
//! (age), `--history-max` (total size), `--history-versions` (per path), oldest first,
//! never the last copy of a path found on neither side.

use crate::fixtures::*;

/// Rewrites `rel` in the target `times` times, each synced back over the source: each
/// sync sets the source's previous version aside in its trash.
fn overwrite_from_target(p: &Pair, rel: &str, times: usize, size: usize, args: &[&str]) {
    for i in 0..times {
        let body = format!("{i}").repeat(size);
        p.write(S::Tgt, rel, &body);
        p.sync_ok(args, 0);
        assert_eq!(p.read(S::Src, rel), body);
    }
}

fn trash_status(p: &Pair) -> serde_json::Value {
    let out = p.cmd("status", &["--json"]);
    let v: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.all()));
    v["trash"].clone()
}

#[test]
fn issue_18_trash_keeps_at_most_the_versions_per_path() {
    let p = Pair::new();
    p.write(S::Src, "f.txt", "original");
    p.sync_ok(&[], 0);
    overwrite_from_target(&p, "f.txt", 5, 4, &["--history-versions", "2"]);
    let kept = p.trash_contents(S::Src);
    assert_eq!(
        kept,
        ["2222", "3333"],
        "the two newest of the five set aside"
    );
    let t = trash_status(&p);
    assert_eq!(t["source"]["versions"], 2, "{t}");
    assert_eq!(t["source"]["bytes"], 8, "{t}");
    assert_eq!(t["target"]["versions"], 0, "{t}");
    let text = p.cmd("status", &[]);
    assert!(
        text.stdout
            .contains("trash:     source 2 versions, 8 B; target 0 versions"),
        "{}",
        text.stdout
    );
}

#[test]
fn issue_18_trash_fits_in_its_size_limit_oldest_first() {
    let p = Pair::new();
    p.write(S::Src, "big.bin", &"x".repeat(600));
    p.sync_ok(&[], 0);
    overwrite_from_target(&p, "big.bin", 3, 600, &["--history-max", "1KiB"]);
    // 4 versions of 600 bytes were set aside; 1 KiB holds only the newest.
    assert_eq!(p.trash_contents(S::Src), ["1".repeat(600)]);
}

#[test]
fn issue_18_old_versions_go_but_never_the_last_copy_of_a_deleted_file() {
    let p = Pair::new();
    p.write(S::Src, "kept.txt", "v0");
    p.write(S::Src, "gone.txt", "the only copy left");
    p.sync_ok(&[], 0);
    p.write(S::Tgt, "kept.txt", "v1");
    std::fs::remove_file(p.path(S::Tgt, "gone.txt")).unwrap();
    p.sync_ok(&[], 0);
    assert_eq!(p.trash_contents(S::Src), ["the only copy left", "v0"]);
    // Nothing is young enough for a retention of 0 s: the old version of kept.txt goes
    // (kept.txt is on both sides), the deleted gone.txt stays (its trash copy is the last).
    p.sync_ok(&["--history-keep", "0s"], 0);
    assert_eq!(p.trash_contents(S::Src), ["the only copy left"]);
    // Once it is back on a side, its trash copy is no longer the last: then it may go.
    p.write(S::Src, "gone.txt", "back");
    p.sync_ok(&["--history-keep", "0s"], 0);
    assert!(
        p.trash_contents(S::Src).is_empty(),
        "{:?}",
        p.trash_contents(S::Src)
    );
    // Emptied bucket folders go with their last version.
    let buckets = std::fs::read_dir(p.path(S::Src, ".tandem/trash")).map_or(0, |d| d.count());
    assert_eq!(buckets, 0);
}

#[test]
fn issue_18_the_target_trash_is_pruned_but_never_the_last_copy() {
    the_target_trash_is_pruned_but_never_the_last_copy(&Pair::new());
}

#[test]
fn issue_17_the_remote_trash_is_pruned_but_never_the_last_copy() {
    if let Some(p) =
        crate::remote::over_ssh("issue_17_the_remote_trash_is_pruned_but_never_the_last_copy")
    {
        the_target_trash_is_pruned_but_never_the_last_copy(&p);
    }
}

/// The target's trash, as the source's above: what the source replaced or deleted is set
/// aside there, then pruned by the same retention, the last copy of a path kept until the
/// path is back on a side.
fn the_target_trash_is_pruned_but_never_the_last_copy(p: &Pair) {
    p.write(S::Src, "kept.txt", "v0");
    p.write(S::Src, "gone.txt", "the only copy left");
    p.sync_ok(&[], 0);
    p.write(S::Src, "kept.txt", "v1");
    std::fs::remove_file(p.path(S::Src, "gone.txt")).unwrap();
    p.sync_ok(&[], 0);
    assert_eq!(p.trash_contents(S::Tgt), ["the only copy left", "v0"]);
    p.sync_ok(&["--history-keep", "0s"], 0);
    assert_eq!(p.trash_contents(S::Tgt), ["the only copy left"]);
    p.write(S::Src, "gone.txt", "back");
    p.sync_ok(&["--history-keep", "0s"], 0);
    assert!(
        p.trash_contents(S::Tgt).is_empty(),
        "{:?}",
        p.trash_contents(S::Tgt)
    );
}
