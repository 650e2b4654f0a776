//! `--hard-links` (issue 19): names that share a file on one side share one on the other,
//! both ways, through `tandem sync`, a task and a mount; a rename stays a rename, a
//! content change through one name re-links the others, a new name is a link; an exFAT
//! target (no hard links) gets copies, reported once.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use serde_json::Value;

use crate::fixtures::*;
use crate::foreign_fs::ExFat;
use crate::mount::{fuse_available, wait_for, Mounted};
use crate::tasks::{last_json, Tasks};

fn link(p: &Pair, s: S, existing: &str, new: &str) {
    std::fs::hard_link(p.path(s, existing), p.path(s, new)).unwrap();
}

fn append(p: &Pair, s: S, rel: &str, more: &str) {
    std::fs::OpenOptions::new()
        .append(true)
        .open(p.path(s, rel))
        .unwrap()
        .write_all(more.as_bytes())
        .unwrap();
}

/// `tandem sync --hard-links --json`, insisting on exit code `code`; the summary.
fn sync_links(p: &Pair, code: i32) -> Value {
    last_json(&p.sync_ok(&["--hard-links", "--json"], code))
}

fn count(summary: &Value, key: &str) -> u64 {
    summary[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {summary}"))
}

/// Every name of `names` on side `s` is the same file.
fn assert_one_file(p: &Pair, s: S, names: &[&str]) {
    let ino = p.ino(s, names[0]);
    for n in &names[1..] {
        assert_eq!(p.ino(s, n), ino, "{n} and {} on {s:?}", names[0]);
    }
    let nlink = std::fs::metadata(p.path(s, names[0])).unwrap().nlink();
    assert_eq!(nlink, names.len() as u64, "links of {} on {s:?}", names[0]);
}

#[test]
fn issue_19_hard_links_arrive_as_hard_links_both_ways() {
    hard_links_arrive_as_hard_links_both_ways(&Pair::new());
}

#[test]
fn issue_17_hard_links_arrive_as_hard_links_both_ways_with_a_remote_target() {
    if let Some(p) = crate::remote::over_ssh(
        "issue_17_hard_links_arrive_as_hard_links_both_ways_with_a_remote_target",
    ) {
        hard_links_arrive_as_hard_links_both_ways(&p);
    }
}

fn hard_links_arrive_as_hard_links_both_ways(p: &Pair) {
    p.write(S::Src, "a.txt", "one file, two names");
    link(p, S::Src, "a.txt", "b.txt");
    std::fs::create_dir(p.path(S::Src, "sub")).unwrap();
    link(p, S::Src, "a.txt", "sub/c.txt");
    let s = sync_links(p, 0);
    assert_eq!((count(&s, "copied"), count(&s, "linked")), (1, 2), "{s}");
    assert_eq!(count(&s, "bytes"), 19, "the data is sent once: {s}");
    assert_one_file(p, S::Tgt, &["a.txt", "b.txt", "sub/c.txt"]);
    p.assert_same();

    // The other way: a group made on the target.
    p.write(S::Tgt, "t1", "from the target");
    link(p, S::Tgt, "t1", "sub/t2");
    let s = sync_links(p, 0);
    assert_eq!((count(&s, "copied"), count(&s, "linked")), (1, 1), "{s}");
    assert_one_file(p, S::Src, &["t1", "sub/t2"]);
    p.assert_same();
    let s = sync_links(p, 0);
    assert_eq!(s["plan"], Value::Array(vec![]), "{s}");
    assert_eq!((count(&s, "copied"), count(&s, "linked")), (0, 0), "{s}");
}

#[test]
fn issue_19_without_the_option_each_name_is_its_own_copy() {
    let p = Pair::new();
    p.write(S::Src, "a", "x");
    link(&p, S::Src, "a", "b");
    let s = last_json(&p.sync_ok(&["--json"], 0));
    assert_eq!((count(&s, "copied"), count(&s, "linked")), (2, 0), "{s}");
    assert_ne!(p.ino(S::Tgt, "a"), p.ino(S::Tgt, "b"));
}

#[test]
fn issue_19_a_pair_synced_before_the_option_gets_its_links_without_copying() {
    let p = Pair::new();
    p.write(S::Src, "a", "synced as two files");
    link(&p, S::Src, "a", "b");
    p.write(S::Tgt, "t", "on the target");
    link(&p, S::Tgt, "t", "u");
    p.sync_ok(&[], 0);
    assert_ne!(p.ino(S::Tgt, "a"), p.ino(S::Tgt, "b"));
    assert_ne!(p.ino(S::Src, "t"), p.ino(S::Src, "u"));
    let s = sync_links(&p, 0);
    assert_eq!((count(&s, "copied"), count(&s, "linked")), (0, 2), "{s}");
    assert_one_file(&p, S::Tgt, &["a", "b"]);
    assert_one_file(&p, S::Src, &["t", "u"]);
    assert!(p
        .trash_contents(S::Tgt)
        .contains(&"synced as two files".to_string()));
    let s = sync_links(&p, 0);
    assert_eq!(s["plan"], Value::Array(vec![]), "{s}");
    assert_eq!((count(&s, "copied"), count(&s, "linked")), (0, 0), "{s}");
}

#[test]
fn issue_19_push_links_on_the_target_only() {
    let p = Pair::new();
    p.write(S::Src, "a", "x");
    link(&p, S::Src, "a", "b");
    p.write(S::Tgt, "t", "y");
    link(&p, S::Tgt, "t", "u");
    p.sync_ok(&["--direction", "push"], 1);
    let s = last_json(&p.sync_ok(&["--direction", "push", "--hard-links", "--json"], 1));
    assert_eq!(count(&s, "linked"), 1, "{s}");
    assert_one_file(&p, S::Tgt, &["a", "b"]);
    assert!(!p.exists(S::Src, "t"));
}

#[test]
fn issue_19_hard_linked_pair_with_one_name_renamed_stays_a_rename() {
    hard_linked_pair_with_one_name_renamed_stays_a_rename(&Pair::new());
}

#[test]
fn issue_17_hard_linked_pair_with_one_name_renamed_stays_a_rename_with_a_remote_target() {
    if let Some(p) = crate::remote::over_ssh(
        "issue_17_hard_linked_pair_with_one_name_renamed_stays_a_rename_with_a_remote_target",
    ) {
        hard_linked_pair_with_one_name_renamed_stays_a_rename(&p);
    }
}

fn hard_linked_pair_with_one_name_renamed_stays_a_rename(p: &Pair) {
    p.write(S::Src, "a", "some content");
    link(p, S::Src, "a", "b");
    sync_links(p, 0);
    let ino = p.ino(S::Tgt, "a");
    std::fs::create_dir(p.path(S::Src, "moved")).unwrap();
    std::fs::rename(p.path(S::Src, "b"), p.path(S::Src, "moved/b2")).unwrap();
    let s = sync_links(p, 0);
    assert_eq!(count(&s, "renamed"), 1, "{s}");
    assert_eq!(count(&s, "bytes"), 0, "no data sent: {s}");
    assert!(!p.exists(S::Tgt, "b"));
    assert_one_file(p, S::Tgt, &["a", "moved/b2"]);
    assert_eq!(p.ino(S::Tgt, "a"), ino);
    p.assert_same();
}

#[test]
fn issue_19_content_changed_through_one_name_relinks_the_others() {
    content_changed_through_one_name_relinks_the_others(&Pair::new());
}

#[test]
fn issue_17_content_changed_through_one_name_relinks_the_others_with_a_remote_target() {
    if let Some(p) = crate::remote::over_ssh(
        "issue_17_content_changed_through_one_name_relinks_the_others_with_a_remote_target",
    ) {
        content_changed_through_one_name_relinks_the_others(&p);
    }
}

fn content_changed_through_one_name_relinks_the_others(p: &Pair) {
    p.write(S::Src, "a", "v1");
    link(p, S::Src, "a", "b");
    link(p, S::Src, "a", "c");
    sync_links(p, 0);
    // Written in place through "b": every name of the source's file changed.
    append(p, S::Src, "b", "+v2");
    let s = sync_links(p, 0);
    assert_eq!((count(&s, "copied"), count(&s, "linked")), (1, 2), "{s}");
    assert_one_file(p, S::Tgt, &["a", "b", "c"]);
    assert_eq!(p.read(S::Tgt, "c"), "v1+v2");
    assert!(p.trash_contents(S::Tgt).contains(&"v1".to_string()));
    p.assert_same();
    let s = sync_links(p, 0);
    assert_eq!((count(&s, "copied"), count(&s, "linked")), (0, 0), "{s}");
}

#[test]
fn issue_19_a_name_edited_on_the_receiving_side_is_not_relinked_over() {
    a_name_edited_on_the_receiving_side_is_not_relinked_over(&Pair::new());
}

#[test]
fn issue_17_a_name_edited_on_the_receiving_side_is_not_relinked_over_with_a_remote_target() {
    if let Some(p) = crate::remote::over_ssh(
        "issue_17_a_name_edited_on_the_receiving_side_is_not_relinked_over_with_a_remote_target",
    ) {
        a_name_edited_on_the_receiving_side_is_not_relinked_over(&p);
    }
}

fn a_name_edited_on_the_receiving_side_is_not_relinked_over(p: &Pair) {
    // Invariant 2 for each name: "c" was rewritten on the target on its own, so it is a
    // conflict: the target's version survives under the conflict name, and the source's
    // (newer) version takes the name, linked with the others.
    p.write(S::Src, "a", "v1");
    link(p, S::Src, "a", "b");
    link(p, S::Src, "a", "c");
    sync_links(p, 0);
    std::fs::remove_file(p.path(S::Tgt, "c")).unwrap();
    p.write(S::Tgt, "c", "the target's own c");
    append(p, S::Src, "a", "+v2");
    let s = sync_links(p, 1);
    assert_eq!(s["conflicts"].as_array().unwrap().len(), 1, "{s}");
    assert_one_file(p, S::Tgt, &["a", "b", "c"]);
    assert_eq!(p.read(S::Tgt, "c"), "v1+v2");
    let kept: Vec<String> = p
        .names_with(S::Tgt, "c.conflict-")
        .into_iter()
        .chain(p.names_with(S::Tgt, "c"))
        .filter(|n| p.read(S::Tgt, n) == "the target's own c")
        .collect();
    assert!(
        !kept.is_empty(),
        "the target's c is kept: {:?}",
        p.tree(S::Tgt)
    );
}

#[test]
fn issue_19_a_new_link_is_a_link_not_a_copy() {
    a_new_link_is_a_link_not_a_copy(&Pair::new());
}

#[test]
fn issue_17_a_new_link_is_a_link_not_a_copy_with_a_remote_target() {
    if let Some(p) =
        crate::remote::over_ssh("issue_17_a_new_link_is_a_link_not_a_copy_with_a_remote_target")
    {
        a_new_link_is_a_link_not_a_copy(&p);
    }
}

fn a_new_link_is_a_link_not_a_copy(p: &Pair) {
    p.write(S::Src, "a", "linked later");
    sync_links(p, 0);
    link(p, S::Src, "a", "new");
    let s = sync_links(p, 0);
    assert_eq!((count(&s, "copied"), count(&s, "linked")), (0, 1), "{s}");
    assert_eq!(count(&s, "bytes"), 0, "{s}");
    assert_one_file(p, S::Tgt, &["a", "new"]);
}

#[test]
fn issue_19_deleting_one_name_keeps_the_others() {
    let p = Pair::new();
    p.write(S::Src, "a", "kept");
    link(&p, S::Src, "a", "b");
    link(&p, S::Src, "a", "c");
    sync_links(&p, 0);
    std::fs::remove_file(p.path(S::Src, "b")).unwrap();
    let s = sync_links(&p, 0);
    assert_eq!(count(&s, "deleted"), 1, "{s}");
    assert!(!p.exists(S::Tgt, "b"));
    assert_eq!(p.ino(S::Tgt, "a"), p.ino(S::Tgt, "c"));
    assert_eq!(p.read(S::Tgt, "c"), "kept");
    p.assert_same();
}

#[test]
fn issue_19_exfat_target_gets_copies_reported_once_then_nothing() {
    let p = Pair::new();
    let Some(fat) = ExFat::mount(&p.tmp.path().join("fat"), &p.tmp.path().join("fat.img")) else {
        return;
    };
    p.write(S::Src, "a", "two names");
    link(&p, S::Src, "a", "b");
    p.write(S::Src, "plain", "one name");
    let sync = || {
        last_json(&run_tandem([
            "sync".as_ref(),
            p.src.as_os_str(),
            fat.dir.as_os_str(),
            "--state-dir".as_ref(),
            p.state.as_os_str(),
            "--modify-window".as_ref(),
            "2s".as_ref(),
            "--hard-links".as_ref(),
            "--json".as_ref(),
        ]))
    };
    let s = sync();
    assert_eq!(count(&s, "exit_code"), 0, "{s}");
    assert_eq!(count(&s, "copied"), 3, "{s}");
    assert_eq!(s["links_copied"].as_array().unwrap().len(), 1, "{s}");
    for n in ["a", "b"] {
        assert_eq!(std::fs::read(fat.dir.join(n)).unwrap(), b"two names");
    }
    let again = sync();
    assert_eq!(count(&again, "copied"), 0, "{again}");
    assert_eq!(count(&again, "linked"), 0, "{again}");
    assert_eq!(again["links_copied"], Value::Array(vec![]), "{again}");
}

/// A dry run lists the plan a real run makes: on exFAT a new name is a copy, not a link it
/// could not make.
#[test]
fn issue_19_dry_run_on_exfat_lists_copies_not_links() {
    let p = Pair::new();
    let Some(fat) = ExFat::mount(&p.tmp.path().join("fat"), &p.tmp.path().join("fat.img")) else {
        return;
    };
    p.write(S::Src, "a", "two names");
    link(&p, S::Src, "a", "b");
    let sync = |more: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "sync".as_ref(),
            p.src.as_os_str(),
            fat.dir.as_os_str(),
            "--state-dir".as_ref(),
            p.state.as_os_str(),
            "--modify-window".as_ref(),
            "2s".as_ref(),
            "--hard-links".as_ref(),
            "--json".as_ref(),
        ];
        args.extend(more.iter().map(std::ffi::OsStr::new));
        last_json(&run_tandem(args))
    };
    let s = sync(&[]);
    assert_eq!(count(&s, "copied"), 2, "{s}");
    link(&p, S::Src, "a", "c");
    let dry = sync(&["--dry-run"]);
    let plan = dry["plan"].as_array().unwrap();
    assert!(
        !plan.iter().any(|st| st.to_string().contains("hard link")),
        "{dry}"
    );
    assert!(plan.iter().any(|st| st["path"] == "c"), "{dry}");
    assert_eq!(dry["links_copied"].as_array().unwrap().len(), 1, "{dry}");
    assert!(!fat.dir.join("c").exists(), "a dry run changes nothing");
    let real = sync(&[]);
    assert_eq!(count(&real, "copied"), 1, "{real}");
    assert_eq!(count(&real, "linked"), 0, "{real}");
    assert_eq!(std::fs::read(fat.dir.join("c")).unwrap(), b"two names");
}

#[test]
fn issue_19_hard_links_is_stored_with_a_task() {
    let t = Tasks::new(&["home/Docs", "disk"]);
    write_file(&t.p("home/Docs/a"), b"task");
    std::fs::hard_link(t.p("home/Docs/a"), t.p("home/Docs/b")).unwrap();
    let add = [
        "task",
        "add",
        "x",
        "--source",
        "@home/Docs",
        "--target",
        "@disk",
        "--hard-links",
    ];
    t.ok(&add, 0);
    assert!(
        t.config_text().contains("hard_links = true"),
        "{}",
        t.config_text()
    );
    let ino = |rel: &str| std::fs::metadata(t.p(rel)).unwrap().ino();
    t.ok(&["run", "x"], 0);
    assert_eq!(ino("disk/Docs/a"), ino("disk/Docs/b"));
    let shown = t.json(&["task", "show", "x", "--json"]);
    assert_eq!(shown["hard_links"], Value::Bool(true), "{shown}");
}

#[test]
fn issue_19_a_link_made_through_the_mount_is_a_link_on_the_target() {
    if !fuse_available() {
        return;
    }
    let t = Duration::from_secs(15);
    let p = Pair::new();
    p.write(S::Src, "a", "before the mount");
    link(&p, S::Src, "a", "b");
    let m = Mounted::start_with(&p, &[], &["--hard-links"]);
    wait_for("startup sync", t, || p.exists(S::Tgt, "b"));
    assert_one_file(&p, S::Tgt, &["a", "b"]);

    p.write(S::Src, "new", "made in the mount");
    wait_for("new", t, || p.exists(S::Tgt, "new"));
    link(&p, S::Src, "new", "new-link");
    wait_for("new-link", t, || p.exists(S::Tgt, "new-link"));
    assert_one_file(&p, S::Tgt, &["new", "new-link"]);
    std::fs::rename(p.path(S::Src, "new-link"), p.path(S::Src, "renamed")).unwrap();
    wait_for("renamed", t, || p.exists(S::Tgt, "renamed"));
    assert_one_file(&p, S::Tgt, &["new", "renamed"]);

    // Written in place through one name: the journal names only "a"; "b" follows.
    append(&p, S::Src, "a", " + an edit");
    let edited = "before the mount + an edit";
    wait_for("the edit under both names", t, || {
        p.read(S::Tgt, "b") == edited && p.ino(S::Tgt, "a") == p.ino(S::Tgt, "b")
    });
    assert_one_file(&p, S::Tgt, &["a", "b"]);
    // And on the target (its watcher names only "renamed"): both source names follow.
    append(&p, S::Tgt, "renamed", " + from the target");
    let edited = "made in the mount + from the target";
    wait_for("the target's edit under both names", t, || {
        p.read(S::Src, "new") == edited && p.ino(S::Src, "new") == p.ino(S::Src, "renamed")
    });
    assert_one_file(&p, S::Src, &["new", "renamed"]);
    drop(m);
    assert!(!std::fs::read_to_string(p.tmp.path().join("mount.log"))
        .unwrap_or_default()
        .contains("panicked"),);
}
