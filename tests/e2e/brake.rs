//! The delete brake of a mount (issue 18): a burst of deletions through the mount over the
//! limit is held, not replayed to the target; `tandem held` lists it, `tandem release`
//! lets it through, `tandem restore --held` brings the files back into the source.

use std::time::Duration;

use crate::fixtures::*;
use crate::mount::{fuse_available, wait_for, Mounted};

const FILES: usize = 300;
const BRAKE: &[&str] = &["--delete-brake", "100/60s"];

/// A pair whose folder `big/` of `FILES` files is synced, mounted with the brake at
/// 100 deletions per minute.
fn mounted_with_a_big_folder(p: &Pair) -> Mounted<'_> {
    for i in 0..FILES {
        p.write(S::Src, &format!("big/f{i:04}"), &format!("file {i}"));
    }
    p.sync_ok(&[], 0);
    Mounted::start_with(p, &[], BRAKE)
}

fn rm_rf_big(p: &Pair) {
    let st = std::process::Command::new("rm")
        .arg("-rf")
        .arg(p.path(S::Src, "big"))
        .status()
        .unwrap();
    assert!(st.success());
}

fn held(p: &Pair) -> serde_json::Value {
    let out = p.cmd("held", &["--json"]);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.all()))
}

fn held_count(p: &Pair) -> usize {
    held(p)["held"].as_array().unwrap().len()
}

#[test]
fn issue_18_a_mass_delete_through_the_mount_is_held_then_released() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    let m = mounted_with_a_big_folder(&p);
    rm_rf_big(&p);
    // Every file and the folder itself: 301 deletions, all held.
    wait_for("the burst held", Duration::from_secs(30), || {
        held_count(&p) == FILES + 1
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        std::fs::read_dir(p.path(S::Tgt, "big")).unwrap().count(),
        FILES,
        "nothing deleted in the target"
    );
    let h = held(&p);
    let first = &h["held"][0];
    assert_eq!(first["program"], "rm", "{first}");
    assert_eq!(first["uid"], rustix::process::getuid().as_raw(), "{first}");
    let text = p.cmd("held", &[]);
    assert_eq!(text.code, 1, "{}", text.all());
    assert!(
        text.stdout
            .contains(&format!("{} deletions by rm (pid", FILES + 1)),
        "{}",
        text.stdout
    );
    let status = p.cmd("status", &[]);
    assert!(
        status
            .stdout
            .contains(&format!("held:      {} deletions by rm (pid", FILES + 1)),
        "{}",
        status.stdout
    );
    // Other changes still flow while the brake holds.
    p.write(S::Src, "other.txt", "still synced");
    wait_for("other.txt replicated", Duration::from_secs(20), || {
        p.exists(S::Tgt, "other.txt")
    });

    let out = p.cmd("release", &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out
        .stdout
        .contains(&format!("{} held deletions released", FILES + 1)));
    wait_for("the deletions replayed", Duration::from_secs(30), || {
        !p.exists(S::Tgt, "big")
    });
    assert_eq!(held_count(&p), 0);
    m.stop();
}

#[test]
fn issue_18_held_deletions_are_restored_from_the_target() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    let m = mounted_with_a_big_folder(&p);
    rm_rf_big(&p);
    wait_for("the burst held", Duration::from_secs(30), || {
        held_count(&p) == FILES + 1
    });
    let out = p.cmd("restore", &["--held"]);
    assert_eq!(out.code, 0, "{}", out.all());
    wait_for(
        "the files back in the source",
        Duration::from_secs(30),
        || std::fs::read_dir(p.path(S::Src, "big")).is_ok_and(|d| d.count() == FILES),
    );
    assert_eq!(p.read(S::Src, "big/f0123"), "file 123");
    assert_eq!(held_count(&p), 0);
    m.stop();
    // Settled: the next sync has nothing to do, and both sides are equal.
    p.sync_ok(&[], 0);
    p.assert_same();
}

#[test]
fn issue_18_a_renamed_folder_is_not_a_mass_delete() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    let m = mounted_with_a_big_folder(&p);
    std::fs::rename(p.path(S::Src, "big"), p.path(S::Src, "moved")).unwrap();
    wait_for("the rename replicated", Duration::from_secs(30), || {
        !p.exists(S::Tgt, "big") && p.exists(S::Tgt, "moved/f0001")
    });
    assert_eq!(held_count(&p), 0);
    m.stop();
}

#[test]
fn issue_18_with_the_brake_off_deletions_go_through() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    for i in 0..FILES {
        p.write(S::Src, &format!("big/f{i:04}"), "x");
    }
    p.sync_ok(&[], 0);
    let m = Mounted::start_with(&p, &[], &["--delete-brake", "off"]);
    rm_rf_big(&p);
    wait_for("the deletions replayed", Duration::from_secs(30), || {
        !p.exists(S::Tgt, "big")
    });
    assert_eq!(held_count(&p), 0);
    m.stop();
}

#[test]
fn issue_18_sync_refuses_more_deletions_than_max_delete_count() {
    let p = Pair::new();
    for i in 0..100 {
        p.write(S::Src, &format!("f{i:03}"), "x");
    }
    p.sync_ok(&[], 0);
    // 15 of 100: well under the default 50 %, but more than a count of 10.
    for i in 0..15 {
        std::fs::remove_file(p.path(S::Src, &format!("f{i:03}"))).unwrap();
    }
    let tgt_before = p.tree(S::Tgt);
    let out = p.sync(&["--max-delete-count", "10"]);
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(
        out.all()
            .contains("would delete 15 entries (more than --max-delete-count 10)"),
        "{}",
        out.all()
    );
    assert_eq!(p.tree(S::Tgt), tgt_before, "nothing deleted in the target");
    // A percentage may be written with its sign; 15 is fine under a count of 15.
    p.sync_ok(&["--max-delete", "50%", "--max-delete-count", "15"], 0);
    assert!(!p.exists(S::Tgt, "f000"));
    assert_eq!(p.sync(&["--max-delete", "120%"]).code, 2);
}

/// Files in `dir`, or `None` when it is not there.
fn files_in(dir: &std::path::Path) -> Option<usize> {
    std::fs::read_dir(dir).ok().map(Iterator::count)
}

/// `tandem CMD SRC TGT ARGS...` for a mount with several targets (their state lives
/// under `tmp/xdg`).
fn with_state_home(p: &Pair, cmd: &str, tgt: &std::path::Path, args: &[&str]) -> Out {
    let mut v: Vec<&std::ffi::OsStr> = vec![cmd.as_ref(), p.src.as_os_str(), tgt.as_os_str()];
    v.extend(args.iter().map(std::ffi::OsStr::new));
    run_tandem_with_env(v, &[("XDG_STATE_HOME", &p.tmp.path().join("xdg"))])
}

fn held_in(p: &Pair, tgt: &std::path::Path) -> Vec<serde_json::Value> {
    let out = with_state_home(p, "held", tgt, &["--json"]);
    let v: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.all()));
    v["held"].as_array().unwrap().clone()
}

/// Deletions made in a watched target count against the same brake: an `rm -rf` there is
/// held (done in that target, not merged into the source nor replayed to the other
/// target), listed with the side it was made on, and `tandem release` applies it to the
/// source, from where it reaches the other target. Other changes flow meanwhile, both ways.
#[test]
fn issue_18_a_mass_delete_in_a_watched_target_is_held_then_released() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    for i in 0..FILES {
        p.write(S::Src, &format!("big/f{i:04}"), &format!("file {i}"));
    }
    let other = p.tmp.path().join("other");
    let m = Mounted::start_with(&p, &[&other], BRAKE);
    wait_for("both targets synced", Duration::from_secs(60), || {
        files_in(&p.path(S::Tgt, "big")) == Some(FILES)
            && files_in(&other.join("big")) == Some(FILES)
    });
    std::fs::remove_dir_all(p.path(S::Tgt, "big")).unwrap();
    wait_for("the burst held", Duration::from_secs(30), || {
        held_in(&p, &p.tgt).len() == FILES + 1
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        files_in(&p.path(S::Src, "big")),
        Some(FILES),
        "the source keeps them"
    );
    assert_eq!(
        files_in(&other.join("big")),
        Some(FILES),
        "so does the other target"
    );
    assert!(!p.exists(S::Tgt, "big"), "done where it was made");
    let held = held_in(&p, &p.tgt);
    assert!(held.iter().all(|h| h["side"] == "target"), "{held:?}");
    assert!(held_in(&p, &other).is_empty());
    let text = with_state_home(&p, "held", &p.tgt, &[]);
    assert_eq!(text.code, 1, "{}", text.all());
    let said = format!(
        "{} deletions in the target {} since ",
        FILES + 1,
        p.tgt.display()
    );
    assert!(text.stdout.contains(&said), "{}", text.stdout);
    let status = with_state_home(&p, "status", &p.tgt, &[]);
    assert!(
        status.stdout.contains(&format!(
            "held:      {} deletions in the target since ",
            FILES + 1
        )),
        "{}",
        status.stdout
    );
    // A held brake blocks nothing else, on either side.
    p.write(S::Src, "from-source.txt", "to both targets");
    p.write(S::Tgt, "from-target.txt", "to the source");
    wait_for("other changes flow", Duration::from_secs(20), || {
        p.exists(S::Tgt, "from-source.txt")
            && other.join("from-source.txt").exists()
            && p.exists(S::Src, "from-target.txt")
            && other.join("from-target.txt").exists()
    });

    let out = with_state_home(&p, "release", &p.tgt, &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains(&format!(
            "{} held deletions released (applied to the source)",
            FILES + 1
        )),
        "{}",
        out.stdout
    );
    wait_for("the deletions applied", Duration::from_secs(30), || {
        !p.exists(S::Src, "big") && !other.join("big").exists()
    });
    assert!(held_in(&p, &p.tgt).is_empty());
    m.stop();
}

/// `tandem restore --held` brings deletions held in a target back into that target, from
/// the source's copies.
#[test]
fn issue_18_deletions_held_in_a_target_are_restored_there_from_the_source() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    let m = mounted_with_a_big_folder(&p);
    std::fs::remove_dir_all(p.path(S::Tgt, "big")).unwrap();
    wait_for("the burst held", Duration::from_secs(30), || {
        held_count(&p) == FILES + 1
    });
    assert_eq!(files_in(&p.path(S::Src, "big")), Some(FILES));
    let out = p.cmd("restore", &["--held"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains(&format!(
            "{} held deletions restored into the target",
            FILES + 1
        )),
        "{}",
        out.stdout
    );
    wait_for(
        "the files back in the target",
        Duration::from_secs(30),
        || files_in(&p.path(S::Tgt, "big")) == Some(FILES),
    );
    assert_eq!(p.read(S::Tgt, "big/f0123"), "file 123");
    assert_eq!(files_in(&p.path(S::Src, "big")), Some(FILES));
    assert_eq!(held_count(&p), 0);
    m.stop();
    p.sync_ok(&[], 0);
    p.assert_same();
}

/// A folder moved in the target is one rename, never a mass delete; a few deletions
/// there, under the limit, are merged into the source as before.
#[test]
fn issue_18_a_folder_renamed_in_a_target_is_not_held() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    let m = mounted_with_a_big_folder(&p);
    std::fs::rename(p.path(S::Tgt, "big"), p.path(S::Tgt, "moved")).unwrap();
    wait_for("the rename merged", Duration::from_secs(30), || {
        !p.exists(S::Src, "big") && files_in(&p.path(S::Src, "moved")) == Some(FILES)
    });
    for i in 0..5 {
        std::fs::remove_file(p.path(S::Tgt, &format!("moved/f{i:04}"))).unwrap();
    }
    wait_for("the deletions merged", Duration::from_secs(30), || {
        files_in(&p.path(S::Src, "moved")) == Some(FILES - 5)
    });
    assert_eq!(held_count(&p), 0);
    m.stop();
}

/// A folder moved out of a watched target (`mv TGT/big /elsewhere`: a rename whose other
/// end is outside the tree, so no event names what it held) is a deletion of everything
/// in it, held like an `rm -rf` there: the source keeps every file, `held` lists them on
/// the target's side, and `release` applies them to the source.
#[test]
fn issue_18_a_folder_moved_out_of_a_target_is_held_then_released() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    let m = mounted_with_a_big_folder(&p);
    let elsewhere = p.tmp.path().join("elsewhere");
    std::fs::rename(p.path(S::Tgt, "big"), &elsewhere).unwrap();
    wait_for("the move held", Duration::from_secs(30), || {
        held_count(&p) == FILES + 1
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        files_in(&p.path(S::Src, "big")),
        Some(FILES),
        "the source keeps them"
    );
    assert_eq!(p.read(S::Src, "big/f0123"), "file 123");
    assert_eq!(files_in(&elsewhere), Some(FILES));
    let h = held(&p);
    let rows = h["held"].as_array().unwrap();
    assert!(rows.iter().all(|r| r["side"] == "target"), "{h}");
    let text = p.cmd("held", &[]);
    let said = format!(
        "{} deletions in the target {} since ",
        FILES + 1,
        p.tgt.display()
    );
    assert!(text.stdout.contains(&said), "{}", text.stdout);

    let out = p.cmd("release", &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains(&format!(
            "{} held deletions released (applied to the source)",
            FILES + 1
        )),
        "{}",
        out.stdout
    );
    wait_for("the deletions applied", Duration::from_secs(30), || {
        !p.exists(S::Src, "big")
    });
    assert_eq!(held_count(&p), 0);
    assert_eq!(
        files_in(&elsewhere),
        Some(FILES),
        "what was moved is untouched"
    );
    m.stop();
}

/// The folders tandem itself removes from a target (replaying deletions released through
/// the mount) are not counted there as a program's mass delete.
#[test]
fn issue_18_folders_tandem_removes_from_a_target_are_not_held_there() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    for i in 0..150 {
        p.write(S::Src, &format!("big/d{i:03}/f"), "x");
    }
    p.sync_ok(&[], 0);
    let m = Mounted::start_with(&p, &[], BRAKE);
    rm_rf_big(&p);
    wait_for("the burst held", Duration::from_secs(30), || {
        held_count(&p) == 301
    });
    let out = p.cmd("release", &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    wait_for("the deletions replayed", Duration::from_secs(30), || {
        !p.exists(S::Tgt, "big")
    });
    // The watcher has told what it saw by now, and the brake would have held it.
    std::thread::sleep(Duration::from_secs(3));
    let h = held(&p);
    let first = &h["held"][0];
    assert_eq!(held_count(&p), 0, "held, the first: {first}");
    m.stop();
}

/// A hold made in a target names no process (the watcher sees what changed, not who):
/// `held`, `status` and their `--json` say that tandem cannot name the program, and give
/// no pid or uid rather than a made-up 0.
#[test]
fn issue_18_a_hold_in_a_target_says_tandem_cannot_name_the_program() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    let m = mounted_with_a_big_folder(&p);
    std::fs::remove_dir_all(p.path(S::Tgt, "big")).unwrap();
    wait_for("the burst held", Duration::from_secs(30), || {
        held_count(&p) == FILES + 1
    });
    let who = "a program tandem cannot name (changes made in the target are seen by inotify)";
    let text = p.cmd("held", &[]);
    assert!(
        text.stdout
            .contains(&format!(", by {who}, not applied to the source")),
        "{}",
        text.stdout
    );
    let status = p.cmd("status", &[]);
    assert!(
        status.stdout.contains(&format!(", by {who}, not applied")),
        "{}",
        status.stdout
    );
    let h = held(&p);
    let first = &h["held"][0];
    assert!(first["pid"].is_null(), "{first}");
    assert!(first["uid"].is_null(), "{first}");
    assert!(first["program"].is_null(), "{first}");
    assert_eq!(first["by"], who, "{first}");
    let out = p.cmd("status", &["--json"]);
    let s: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.all()));
    let burst = &s["held"][0];
    assert!(burst["pid"].is_null(), "{burst}");
    assert_eq!(burst["by"], who, "{burst}");
    m.stop();
}

/// A target emptied of a folder while nothing was mounted: the mount's startup reconcile
/// finds the deletions all at once and holds them as made in the target, as the brake
/// holds an `rm -rf` there while mounted, instead of emptying the source. `tandem release`
/// then applies them to the source.
#[test]
fn issue_18_a_mass_delete_in_the_target_while_unmounted_is_held_at_startup() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    // Besides `big/`, enough that `--max-delete` (half the tree) lets the startup through.
    for i in 0..400 {
        p.write(S::Src, &format!("keep/k{i:04}"), "kept");
    }
    mounted_with_a_big_folder(&p).stop();
    std::fs::remove_dir_all(p.path(S::Tgt, "big")).unwrap();

    let m = Mounted::start_with(&p, &[], BRAKE);
    // The startup ran before the mount serves: the hold is already there.
    let held = held(&p)["held"].as_array().unwrap().clone();
    assert_eq!(held.len(), FILES + 1, "{held:?}\n{}", m.log());
    assert!(held.iter().all(|h| h["side"] == "target"), "{held:?}");
    assert_eq!(
        files_in(&p.path(S::Src, "big")),
        Some(FILES),
        "the source keeps them"
    );
    assert_eq!(p.read(S::Src, "big/f0123"), "file 123");
    assert!(!p.exists(S::Tgt, "big"), "nothing put back in the target");
    let status = p.cmd("status", &[]);
    assert!(
        status.stdout.contains(&format!(
            "held:      {} deletions in the target since ",
            FILES + 1
        )),
        "{}",
        status.stdout
    );
    // Held, not retried: a change elsewhere flows, the hold stays whole.
    p.write(S::Src, "other.txt", "still synced");
    wait_for("other.txt replicated", Duration::from_secs(20), || {
        p.exists(S::Tgt, "other.txt")
    });
    assert_eq!(held_count(&p), FILES + 1);

    let out = p.cmd("release", &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    wait_for("the deletions applied", Duration::from_secs(30), || {
        !p.exists(S::Src, "big")
    });
    assert_eq!(held_count(&p), 0);
    assert_eq!(files_in(&p.path(S::Src, "keep")), Some(400));
    m.stop();
    p.sync_ok(&[], 0);
    p.assert_same();
}

/// A held burst is logged when it starts and as it grows, not once per pass of the
/// replicator: an `rm -rf` of 20,000 files logged about 110 "holding" lines.
#[test]
fn issue_18_a_held_burst_is_logged_a_few_times_not_once_per_pass() {
    if !fuse_available() {
        return;
    }
    const MANY: usize = 2000;
    let p = Pair::new();
    for i in 0..MANY {
        p.write(S::Src, &format!("big/f{i:04}"), "x");
    }
    p.sync_ok(&[], 0);
    let m = Mounted::start_with(&p, &[], &["--delete-brake", "1000/60s"]);
    rm_rf_big(&p);
    wait_for("the burst held", Duration::from_secs(60), || {
        held_count(&p) == MANY + 1
    });
    // Passes that find nothing more to hold log nothing either.
    std::thread::sleep(Duration::from_secs(3));
    let log = m.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("`tandem held` lists them"))
        .collect();
    assert!(
        lines.first().is_some_and(|l| l.contains("holding ")),
        "the hold's start is logged:\n{log}"
    );
    // Its start alone: a line as it grows comes once it has doubled (2,001 deletions are
    // less than twice the 1,001 or more of the first), its total once the brake lets go.
    assert_eq!(
        lines.len(),
        1,
        "{} lines:\n{}",
        lines.len(),
        lines.join("\n")
    );
    assert_eq!(files_in(&p.path(S::Tgt, "big")), Some(MANY));
    m.stop();
}
