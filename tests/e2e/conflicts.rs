//! Both sides changed the same path: every policy, listing, and resolving.

use crate::fixtures::*;

/// Edits `f.txt` on both sides after a first sync, the target's edit newer.
fn conflicting_pair() -> Pair {
    let p = Pair::new();
    p.write(S::Src, "f.txt", "base");
    p.sync_ok(&[], 0);
    p.write(S::Src, "f.txt", "source edit");
    set_mtime(&p.path(S::Src, "f.txt"), 1_700_000_000, 0);
    p.write(S::Tgt, "f.txt", "target edit, newer");
    set_mtime(&p.path(S::Tgt, "f.txt"), 1_700_000_100, 0);
    p
}

fn is_conflict_name(name: &str, side: &str) -> bool {
    // f.conflict-YYYYMMDD-HHMMSS-SIDE.txt
    let Some(rest) = name.strip_prefix("f.conflict-") else {
        return false;
    };
    let Some(rest) = rest.strip_suffix(&format!("-{side}.txt")) else {
        return false;
    };
    rest.len() == 15
        && rest.as_bytes()[8] == b'-'
        && rest.chars().filter(|c| c.is_ascii_digit()).count() == 14
}

#[test]
fn keep_both_keeps_the_newer_under_the_name_and_the_other_beside_it() {
    let p = conflicting_pair();
    let out = p.sync_ok(&[], 1);
    assert!(
        out.stdout.contains("conflicts:") && out.stdout.contains("f.txt"),
        "{}",
        out.stdout
    );
    for s in [S::Src, S::Tgt] {
        assert_eq!(p.read(s, "f.txt"), "target edit, newer");
        let copies = p.names_with(s, ".conflict-");
        assert_eq!(copies.len(), 1, "{copies:?}");
        assert!(is_conflict_name(&copies[0], "source"), "{}", copies[0]);
        assert_eq!(p.read(s, &copies[0]), "source edit");
    }
    p.assert_same();
    let list = p.cmd("conflicts", &[]);
    assert_eq!(
        list.code,
        1,
        "open conflicts are an exit-1 listing: {}",
        list.all()
    );
    assert!(
        list.stdout.contains("f.txt") && list.stdout.contains("kept-both"),
        "{}",
        list.stdout
    );
    // The next sync is quiet: both sides agree.
    p.sync_ok(&[], 0);
}

#[test]
fn newest_policy_keeps_the_newer_and_trashes_the_other() {
    let p = conflicting_pair();
    p.sync_ok(&["--conflict", "newest"], 1);
    assert_eq!(p.read(S::Src, "f.txt"), "target edit, newer");
    assert!(p.names_with(S::Src, ".conflict-").is_empty());
    assert!(p
        .trash_contents(S::Src)
        .contains(&"source edit".to_string()));
    p.assert_same();
}

#[test]
fn source_and_target_policies_pick_their_side() {
    let p = conflicting_pair();
    p.sync_ok(&["--conflict", "source"], 1);
    assert_eq!(p.read(S::Tgt, "f.txt"), "source edit");
    assert!(p
        .trash_contents(S::Tgt)
        .contains(&"target edit, newer".to_string()));
    p.assert_same();

    let p = conflicting_pair();
    p.sync_ok(&["--conflict", "target"], 1);
    assert_eq!(p.read(S::Src, "f.txt"), "target edit, newer");
    assert!(p
        .trash_contents(S::Src)
        .contains(&"source edit".to_string()));
    p.assert_same();
}

#[test]
fn flag_leaves_both_sides_and_lists_the_conflict_until_resolved() {
    let p = conflicting_pair();
    p.sync_ok(&["--conflict", "flag"], 1);
    assert_eq!(p.read(S::Src, "f.txt"), "source edit");
    assert_eq!(p.read(S::Tgt, "f.txt"), "target edit, newer");
    // Flagged again on the next run, but listed once.
    p.sync_ok(&["--conflict", "flag"], 1);
    let list = p.cmd("conflicts", &["--json"]);
    assert_eq!(
        list.stdout.matches("\"path\":\"f.txt\"").count(),
        1,
        "{}",
        list.stdout
    );
    let out = p.cmd("resolve", &["f.txt", "--keep", "source"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(p.read(S::Tgt, "f.txt"), "source edit");
    assert!(p
        .trash_contents(S::Tgt)
        .contains(&"target edit, newer".to_string()));
    let list = p.cmd("conflicts", &[]);
    assert_eq!(list.code, 0, "{}", list.all());
    assert!(list.stdout.contains("no conflicts"), "{}", list.stdout);
    p.sync_ok(&[], 0);
    p.assert_same();
}

#[test]
fn resolve_flagged_keeping_both() {
    let p = conflicting_pair();
    p.sync_ok(&["--conflict", "flag"], 1);
    let out = p.cmd("resolve", &["f.txt", "--keep", "both"]);
    assert_eq!(out.code, 0, "{}", out.all());
    p.assert_same();
    let mut contents: Vec<String> = p
        .tree(S::Src)
        .values()
        .filter_map(|n| match n {
            Node::File(c, _) => Some(String::from_utf8_lossy(c).into_owned()),
            _ => None,
        })
        .collect();
    contents.sort();
    assert_eq!(contents, vec!["source edit", "target edit, newer"]);
    assert_eq!(p.cmd("conflicts", &[]).code, 0);
}

#[test]
fn resolve_kept_both_by_choosing_the_losing_version() {
    let p = conflicting_pair();
    p.sync_ok(&[], 1);
    // The source's edit lost the name; keep it after all.
    let out = p.cmd("resolve", &["f.txt", "--keep", "source"]);
    assert_eq!(out.code, 0, "{}", out.all());
    for s in [S::Src, S::Tgt] {
        assert_eq!(p.read(s, "f.txt"), "source edit");
        assert!(p.names_with(s, ".conflict-").is_empty());
    }
    assert!(p
        .trash_contents(S::Tgt)
        .contains(&"target edit, newer".to_string()));
    assert_eq!(p.cmd("conflicts", &[]).code, 0);
    let again = p.sync_ok(&["--json"], 0);
    assert!(again.stdout.contains("\"copied\":0"), "{}", again.stdout);
}

#[test]
fn resolve_kept_both_by_choosing_the_winning_version() {
    let p = conflicting_pair();
    p.sync_ok(&[], 1);
    let out = p.cmd(
        "resolve",
        &[
            p.path(S::Tgt, "f.txt").to_str().unwrap(),
            "--keep",
            "target",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    for s in [S::Src, S::Tgt] {
        assert_eq!(p.read(s, "f.txt"), "target edit, newer");
        assert!(p.names_with(s, ".conflict-").is_empty());
    }
    p.sync_ok(&[], 0);
    p.assert_same();
}

#[test]
fn resolve_refuses_a_path_without_a_conflict() {
    let p = Pair::new();
    p.write(S::Src, "a", "a");
    p.sync_ok(&[], 0);
    let out = p.cmd("resolve", &["a", "--keep", "source"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("no open conflict at a"),
        "{}",
        out.stderr
    );
}

#[test]
fn both_sides_created_different_files_on_first_sync() {
    let p = Pair::new();
    p.write(S::Src, "notes.md", "mine");
    p.write(S::Tgt, "notes.md", "theirs");
    p.sync_ok(&[], 1);
    p.assert_same();
    assert_eq!(p.names_with(S::Src, "notes.conflict-").len(), 1);
}

#[test]
fn file_against_directory_keeps_both() {
    let p = Pair::new();
    p.write(S::Src, "thing", "a file on the source");
    p.write(S::Tgt, "thing/inside.txt", "a folder on the target");
    p.sync_ok(&[], 1);
    p.assert_same();
    assert_eq!(p.read(S::Src, "thing/inside.txt"), "a folder on the target");
    let copies = p.names_with(S::Src, "thing.conflict-");
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(p.read(S::Tgt, &copies[0]), "a file on the source");
}

#[test]
fn the_same_edit_on_both_sides_is_not_a_conflict() {
    let p = Pair::new();
    p.write(S::Src, "f", "old");
    p.sync_ok(&[], 0);
    p.write(S::Src, "f", "same new content");
    p.write(S::Tgt, "f", "same new content");
    let m = mtime_ns(&p.path(S::Src, "f"));
    set_mtime(
        &p.path(S::Tgt, "f"),
        m / 1_000_000_000,
        (m % 1_000_000_000) as u32,
    );
    let out = p.sync_ok(&["--json"], 0);
    assert!(out.stdout.contains("\"conflicts\":[]"), "{}", out.stdout);
    assert!(out.stdout.contains("\"copied\":0"), "{}", out.stdout);
}

/// Issue 20, item 5: `tandem resolve` takes a name back as `tandem conflicts` printed it
/// (escaped), and a name typed exactly as it exists first.
#[test]
fn issue_20_resolve_accepts_the_printed_escaped_name() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let evil: &[u8] = b"evil\x1b]0;title\x07.txt";
    let literal: &[u8] = b"lit\\x41.txt"; // a real backslash in the name
    let decoy: &[u8] = b"litA.txt"; // what that name would read as, unescaped
    let p = Pair::new();
    let at = |s: S, name: &[u8]| p.root(s).join(OsStr::from_bytes(name));
    for name in [evil, literal, decoy] {
        write_file(&at(S::Src, name), b"base");
    }
    p.sync_ok(&[], 0);
    for name in [evil, literal, decoy] {
        write_file(&at(S::Src, name), b"source edit");
        set_mtime(&at(S::Src, name), 1_700_000_000, 0);
        write_file(&at(S::Tgt, name), b"target edit, newer");
        set_mtime(&at(S::Tgt, name), 1_700_000_100, 0);
    }
    p.sync_ok(&["--conflict", "flag"], 1);

    let list = p.cmd("conflicts", &[]);
    assert_eq!(list.code, 1, "{}", list.all());
    assert!(!list.stdout.contains('\x1b'), "a raw ESC was printed");
    let printed = list
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("evil").map(|rest| format!("evil{rest}")))
        .and_then(|l| l.split(": ").next().map(str::to_string))
        .unwrap_or_else(|| panic!("no evil name listed:\n{}", list.stdout));
    assert_eq!(printed, "evil\\x1b]0;title\\x07.txt");

    let out = p.cmd("resolve", &[&printed, "--keep", "target"]);
    assert_eq!(out.code, 0, "resolve {printed}: {}", out.all());
    assert_eq!(
        std::fs::read(at(S::Src, evil)).unwrap(),
        b"target edit, newer"
    );
    let list = p.cmd("conflicts", &[]);
    assert!(!list.stdout.contains("evil"), "{}", list.stdout);

    // A name that exists as typed wins over what it would read as unescaped.
    let out = p.cmd("resolve", &["lit\\x41.txt", "--keep", "source"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(std::fs::read(at(S::Tgt, literal)).unwrap(), b"source edit");
    assert_eq!(
        std::fs::read(at(S::Tgt, decoy)).unwrap(),
        b"target edit, newer"
    );
    let list = p.cmd("conflicts", &[]);
    assert_eq!(list.code, 1, "{}", list.all());
    assert!(list.stdout.contains("litA.txt"), "{}", list.stdout);
    assert!(!list.stdout.contains("lit\\\\x41.txt"), "{}", list.stdout);
    // The decoy is settled by its own name; then nothing is left.
    let out = p.cmd("resolve", &["litA.txt", "--keep", "source"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(p.cmd("conflicts", &[]).code, 0);
    p.sync_ok(&[], 0);
    p.assert_same();
}
