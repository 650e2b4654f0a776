//! Two-way sync of adds, edits, deletes, renames, folders, links and metadata.

use std::os::unix::fs::PermissionsExt;

use crate::fixtures::*;

#[test]
fn first_sync_is_the_union_of_both_sides() {
    let p = Pair::new();
    p.write(S::Src, "a.txt", "from source");
    p.write(S::Src, "dir/deep/b.txt", "deep");
    p.write(S::Tgt, "c.txt", "from target");
    p.write(S::Tgt, "dir/other.txt", "other");
    let out = p.sync_ok(&[], 0);
    assert!(out.stdout.contains("in sync"), "{}", out.stdout);
    p.assert_same();
    assert_eq!(p.read(S::Tgt, "dir/deep/b.txt"), "deep");
    assert_eq!(p.read(S::Src, "dir/other.txt"), "other");
}

#[test]
fn identical_files_on_first_sync_are_recorded_not_conflicts() {
    let p = Pair::new();
    p.write(S::Src, "same.txt", "identical");
    p.write(S::Tgt, "same.txt", "identical");
    let out = p.sync_ok(&["--json"], 0);
    assert!(out.stdout.contains("\"conflicts\":[]"), "{}", out.stdout);
    assert!(p.names_with(S::Src, "conflict").is_empty());
    let again = p.sync_ok(&["--json"], 0);
    assert!(again.stdout.contains("\"copied\":0"), "{}", again.stdout);
}

#[test]
fn edits_creates_and_deletes_flow_both_ways() {
    let p = Pair::new();
    p.write(S::Src, "keep.txt", "v1");
    p.write(S::Src, "gone-from-src.txt", "x");
    p.write(S::Src, "gone-from-tgt.txt", "y");
    p.sync_ok(&[], 0);
    p.write(S::Src, "keep.txt", "v2 from source");
    p.write(S::Tgt, "new-on-target.txt", "hello");
    std::fs::remove_file(p.path(S::Src, "gone-from-src.txt")).unwrap();
    std::fs::remove_file(p.path(S::Tgt, "gone-from-tgt.txt")).unwrap();
    p.sync_ok(&[], 0);
    p.assert_same();
    assert_eq!(p.read(S::Tgt, "keep.txt"), "v2 from source");
    assert_eq!(p.read(S::Src, "new-on-target.txt"), "hello");
    assert!(!p.exists(S::Tgt, "gone-from-src.txt"));
    assert!(!p.exists(S::Src, "gone-from-tgt.txt"));
    // What was deleted or overwritten is in the trash of the side it left.
    assert!(p.trash_contents(S::Tgt).contains(&"x".to_string()));
    assert!(p.trash_contents(S::Tgt).contains(&"v1".to_string()));
    assert!(p.trash_contents(S::Src).contains(&"y".to_string()));
}

#[test]
fn a_second_sync_does_nothing() {
    let p = Pair::new();
    for i in 0..20 {
        p.write(S::Src, &format!("d{}/f{i}", i % 3), &format!("content {i}"));
    }
    p.sync_ok(&[], 0);
    let out = p.sync_ok(&["--json"], 0);
    let summary = out.stdout.lines().last().unwrap();
    for field in [
        "\"copied\":0",
        "\"deleted\":0",
        "\"renamed\":0",
        "\"dirs_created\":0",
        "\"metadata\":0",
    ] {
        assert!(summary.contains(field), "{field} in {summary}");
    }
}

#[test]
fn file_rename_is_replayed_as_a_rename() {
    let p = Pair::new();
    p.write(S::Src, "old.txt", "payload");
    p.sync_ok(&[], 0);
    let ino = p.ino(S::Tgt, "old.txt");
    std::fs::rename(p.path(S::Src, "old.txt"), p.path(S::Src, "new.txt")).unwrap();
    let out = p.sync_ok(&["--json"], 0);
    assert!(out.stdout.contains("\"renamed\":1"), "{}", out.stdout);
    assert!(out.stdout.contains("\"copied\":0"), "{}", out.stdout);
    assert_eq!(
        p.ino(S::Tgt, "new.txt"),
        ino,
        "the target file was renamed, not copied"
    );
    assert!(!p.exists(S::Tgt, "old.txt"));
    p.assert_same();
}

#[test]
fn directory_rename_is_one_rename_with_edits_inside_kept() {
    let p = Pair::new();
    for i in 0..50 {
        p.write(
            S::Tgt,
            &format!("project/src/f{i}.rs"),
            &format!("fn f{i}() {{}}"),
        );
    }
    p.sync_ok(&[], 0);
    let ino = p.ino(S::Src, "project");
    std::fs::rename(p.path(S::Tgt, "project"), p.path(S::Tgt, "renamed")).unwrap();
    p.write(S::Tgt, "renamed/src/f7.rs", "edited after the move");
    p.write(
        S::Src,
        "project/src/f9.rs",
        "edited before the move, on the other side",
    );
    let out = p.sync_ok(&["--json"], 0);
    assert!(out.stdout.contains("\"renamed\":1"), "{}", out.stdout);
    assert_eq!(p.ino(S::Src, "renamed"), ino, "one rename on the source");
    assert!(!p.exists(S::Src, "project"));
    assert_eq!(p.read(S::Src, "renamed/src/f7.rs"), "edited after the move");
    assert_eq!(
        p.read(S::Tgt, "renamed/src/f9.rs"),
        "edited before the move, on the other side"
    );
    p.assert_same();
}

#[test]
fn move_into_a_new_directory() {
    let p = Pair::new();
    p.write(S::Src, "report.pdf", "pdf bytes");
    p.sync_ok(&[], 0);
    let ino = p.ino(S::Tgt, "report.pdf");
    std::fs::create_dir_all(p.path(S::Src, "archive/2026")).unwrap();
    std::fs::rename(
        p.path(S::Src, "report.pdf"),
        p.path(S::Src, "archive/2026/report.pdf"),
    )
    .unwrap();
    p.sync_ok(&[], 0);
    assert_eq!(p.ino(S::Tgt, "archive/2026/report.pdf"), ino);
    p.assert_same();
}

#[test]
fn rename_by_content_when_the_inode_changed() {
    let p = Pair::new();
    p.write(S::Src, "a.bin", "same content, new inode");
    p.sync_ok(&[], 0);
    let ino = p.ino(S::Tgt, "a.bin");
    // Copy + delete: a new inode with the old content (some editors save this way).
    std::fs::copy(p.path(S::Src, "a.bin"), p.path(S::Src, "b.bin")).unwrap();
    std::fs::remove_file(p.path(S::Src, "a.bin")).unwrap();
    let out = p.sync_ok(&["--json"], 0);
    assert!(out.stdout.contains("\"renamed\":1"), "{}", out.stdout);
    assert_eq!(p.ino(S::Tgt, "b.bin"), ino);
    p.assert_same();
}

#[test]
fn symlinks_are_synced_as_links_and_never_followed() {
    let p = Pair::new();
    let outside = p.tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), "outside").unwrap();
    p.write(S::Src, "real.txt", "real");
    std::os::unix::fs::symlink("real.txt", p.path(S::Src, "rel-link")).unwrap();
    std::os::unix::fs::symlink(&outside, p.path(S::Src, "out-link")).unwrap();
    std::os::unix::fs::symlink("does/not/exist", p.path(S::Src, "dangling")).unwrap();
    p.sync_ok(&[], 0);
    p.assert_same();
    assert_eq!(
        std::fs::read_link(p.path(S::Tgt, "out-link")).unwrap(),
        outside
    );
    assert!(
        !p.exists(S::Tgt, "out-link/secret")
            || std::fs::symlink_metadata(p.path(S::Tgt, "out-link"))
                .unwrap()
                .file_type()
                .is_symlink()
    );
    // Retarget on the target side: reaches the source.
    std::fs::remove_file(p.path(S::Tgt, "rel-link")).unwrap();
    std::os::unix::fs::symlink("elsewhere.txt", p.path(S::Tgt, "rel-link")).unwrap();
    p.sync_ok(&[], 0);
    assert_eq!(
        std::fs::read_link(p.path(S::Src, "rel-link"))
            .unwrap()
            .to_str(),
        Some("elsewhere.txt")
    );
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        1,
        "nothing written outside"
    );
}

#[test]
fn permissions_and_nanosecond_mtimes_are_synced() {
    let p = Pair::new();
    p.write(S::Src, "script.sh", "#!/bin/sh\n");
    std::fs::set_permissions(
        p.path(S::Src, "script.sh"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    set_mtime(&p.path(S::Src, "script.sh"), 1_600_000_000, 123_456_789);
    std::fs::create_dir(p.path(S::Src, "private")).unwrap();
    std::fs::set_permissions(
        p.path(S::Src, "private"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    p.sync_ok(&[], 0);
    p.assert_same();
    assert_eq!(
        mtime_ns(&p.path(S::Tgt, "script.sh")),
        1_600_000_000_123_456_789
    );
    // A chmod alone is a metadata update, not a copy.
    std::fs::set_permissions(
        p.path(S::Tgt, "script.sh"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let out = p.sync_ok(&["--json"], 0);
    assert!(out.stdout.contains("\"metadata\":1"), "{}", out.stdout);
    assert!(out.stdout.contains("\"copied\":0"), "{}", out.stdout);
    p.assert_same();
    // A touch alone (same content, new mtime) moves the mtime only.
    set_mtime(&p.path(S::Src, "script.sh"), 1_700_000_000, 1);
    let out = p.sync_ok(&["--json"], 0);
    assert!(out.stdout.contains("\"metadata\":1"), "{}", out.stdout);
    assert_eq!(
        mtime_ns(&p.path(S::Tgt, "script.sh")),
        1_700_000_000_000_000_001
    );
}

#[test]
fn modify_window_absorbs_coarse_timestamps() {
    let p = Pair::new();
    p.write(S::Src, "f", "x");
    set_mtime(&p.path(S::Src, "f"), 1_600_000_000, 500_000_000);
    p.write(S::Tgt, "f", "x");
    set_mtime(&p.path(S::Tgt, "f"), 1_600_000_001, 0);
    // Same content, mtimes 0.5 s apart: a metadata difference without a window...
    let out = p.sync(&["--dry-run", "--json", "--modify-window", "2s"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("\"plan\":[]"), "{}", out.stdout);
    let out = p.sync(&["--dry-run", "--json"]);
    assert!(
        out.stdout.contains("\"action\":\"metadata\""),
        "{}",
        out.stdout
    );
}

#[test]
fn a_delete_never_wins_over_a_modification() {
    let p = Pair::new();
    p.write(S::Src, "doc.txt", "v1");
    // Another file, so the source is not emptied (an emptied root halts: another test).
    p.write(S::Src, "other.txt", "stays");
    p.sync_ok(&[], 0);
    std::fs::remove_file(p.path(S::Src, "doc.txt")).unwrap();
    p.write(S::Tgt, "doc.txt", "v2, edited on the target");
    p.sync_ok(&[], 0);
    assert_eq!(p.read(S::Src, "doc.txt"), "v2, edited on the target");
    p.assert_same();
}

#[test]
fn a_folder_deleted_on_one_side_keeps_what_the_other_side_added() {
    let p = Pair::new();
    p.write(S::Src, "photos/a.jpg", "a");
    p.write(S::Src, "photos/b.jpg", "b");
    p.sync_ok(&[], 0);
    std::fs::remove_dir_all(p.path(S::Src, "photos")).unwrap();
    p.write(S::Tgt, "photos/new.jpg", "added on the target meanwhile");
    p.sync_ok(&["--max-delete", "100"], 0);
    assert_eq!(
        p.read(S::Src, "photos/new.jpg"),
        "added on the target meanwhile"
    );
    assert!(!p.exists(S::Tgt, "photos/a.jpg"));
    assert!(p.trash_contents(S::Tgt).contains(&"a".to_string()));
    p.assert_same();
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let p = Pair::new();
    p.write(S::Src, "a.txt", "a");
    p.write(S::Tgt, "b.txt", "b");
    let before_src = p.tree(S::Src);
    let before_tgt = p.tree(S::Tgt);
    let out = p.sync_ok(&["--dry-run"], 0);
    assert!(
        out.stdout.contains("create")
            && out.stdout.contains("a.txt")
            && out.stdout.contains("b.txt"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("nothing was changed"), "{}", out.stdout);
    assert_eq!(p.tree(S::Src), before_src);
    assert_eq!(p.tree(S::Tgt), before_tgt);
    assert!(
        !p.state.join("state.db").exists(),
        "a dry run writes no state"
    );
    let json = p.sync_ok(&["--dry-run", "--json"], 0);
    let summary = json.stdout.lines().last().unwrap();
    assert!(summary.contains("\"plan\":[{"), "{summary}");
    assert!(summary.contains("\"dry_run\":true"), "{summary}");
    // After a real sync, a dry run leaves the state as it was too.
    p.sync_ok(&[], 0);
    p.write(S::Src, "c.txt", "c");
    let db = std::fs::read(p.state.join("state.db")).unwrap();
    p.sync_ok(&["--dry-run"], 0);
    assert!(!p.exists(S::Tgt, "c.txt"));
    assert_eq!(std::fs::read(p.state.join("state.db")).unwrap(), db);
}

#[test]
fn json_output_is_one_object_per_line() {
    let p = Pair::new();
    p.write(S::Src, "a", "1");
    p.write(S::Src, "b", "2");
    let out = p.sync_ok(&["--json"], 0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines.len() >= 3, "{}", out.stdout);
    for l in &lines {
        assert!(
            l.starts_with('{') && l.ends_with('}'),
            "not a JSON object: {l}"
        );
    }
    assert!(
        lines
            .iter()
            .filter(|l| l.contains("\"event\":\"done\""))
            .count()
            == 2
    );
    assert!(lines.last().unwrap().contains("\"event\":\"summary\""));
}

#[test]
fn rescan_finds_an_edit_that_kept_size_and_mtime() {
    let p = Pair::new();
    p.write(S::Src, "f", "aaaa");
    p.sync_ok(&[], 0);
    let m = mtime_ns(&p.path(S::Tgt, "f"));
    // Same size, mtime put back: a stat-only scan cannot see this.
    std::fs::write(p.path(S::Tgt, "f"), "bbbb").unwrap();
    set_mtime(
        &p.path(S::Tgt, "f"),
        m / 1_000_000_000,
        (m % 1_000_000_000) as u32,
    );
    let quick = p.sync_ok(&["--json"], 0);
    assert!(quick.stdout.contains("\"copied\":0"), "{}", quick.stdout);
    // The baseline holds the hash of what was copied, so a rescan can tell the target
    // moved: its version goes to the source, the old one to the source's trash.
    let out = p.sync(&["--rescan", "--json"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("\"copied\":1"), "{}", out.stdout);
    assert_eq!(p.read(S::Src, "f"), "bbbb");
    assert!(p.trash_contents(S::Src).contains(&"aaaa".to_string()));
    p.assert_same();
}

#[test]
fn special_files_are_skipped_with_a_warning() {
    let p = Pair::new();
    p.write(S::Src, "normal.txt", "n");
    let st = std::process::Command::new("mkfifo")
        .arg(p.path(S::Src, "fifo"))
        .status()
        .unwrap();
    assert!(st.success());
    let _sock = std::os::unix::net::UnixListener::bind(p.path(S::Src, "sock")).unwrap();
    let out = p.sync_ok(&[], 1);
    assert!(
        out.stdout.contains("fifo") && out.stdout.contains("special file"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("sock"), "{}", out.stdout);
    assert!(p.exists(S::Tgt, "normal.txt"));
    assert!(!p.exists(S::Tgt, "fifo"));
    assert!(!p.exists(S::Tgt, "sock"));
}

#[test]
fn filters_from_tandemignore_and_the_command_line() {
    let p = Pair::new();
    p.write(S::Src, ".tandemignore", "*.log\nbuild/\n");
    p.write(S::Src, "app.log", "log");
    p.write(S::Src, "keep.log", "kept by --include");
    p.write(S::Src, "build/out.o", "obj");
    p.write(S::Src, "cache.tmp", "tmp");
    p.write(S::Src, "src/main.rs", "fn main() {}");
    p.write(S::Tgt, "target-only.log", "excluded on the target too");
    p.sync_ok(&["--exclude", "*.tmp", "--include", "keep.log"], 0);
    assert!(p.exists(S::Tgt, "src/main.rs"));
    assert!(p.exists(S::Tgt, ".tandemignore"));
    assert!(p.exists(S::Tgt, "keep.log"));
    for excluded in ["app.log", "build", "cache.tmp"] {
        assert!(!p.exists(S::Tgt, excluded), "{excluded} must not be synced");
    }
    assert!(!p.exists(S::Src, "target-only.log"));
    // Deleting an excluded file on one side is never propagated.
    std::fs::remove_file(p.path(S::Tgt, "target-only.log")).unwrap();
    p.sync_ok(&["--exclude", "*.tmp", "--include", "keep.log"], 0);
    assert!(p.exists(S::Src, "app.log"));
}

#[test]
fn status_reports_the_last_sync() {
    let p = Pair::new();
    let out = p.cmd("status", &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("last sync: never"), "{}", out.stdout);
    p.write(S::Src, "a", "a");
    p.sync_ok(&[], 0);
    let out = p.cmd("status", &["--json"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("\"exit_code\":0"), "{}", out.stdout);
    assert!(
        out.stdout.contains("\"synced_entries\":1"),
        "{}",
        out.stdout
    );
}

#[test]
fn help_documents_exit_codes() {
    let out = run_tandem(["sync", "--help"]);
    assert_eq!(out.code, 0);
    for needle in [
        "Exit codes",
        "halted for safety",
        "--conflict",
        "--max-delete",
        "--modify-window",
    ] {
        assert!(
            out.stdout.contains(needle),
            "{needle} missing from help:\n{}",
            out.stdout
        );
    }
}
