//! `tandem changes` (issue 18): who changed what through a mount, from the journal, with
//! the program's name read when the change was made.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::fixtures::*;
use crate::mount::{fuse_available, wait_for, Mounted};

/// Runs `script` with a copy of dash named `name` (its `comm`), and returns the pid the
/// script printed first (`echo $$`).
fn run_as_program(tmp: &Path, name: &str, script: &str) -> u32 {
    let exe = tmp.join(name);
    if !exe.exists() {
        std::fs::copy("/bin/dash", &exe).unwrap();
    }
    let out = Command::new(&exe).arg("-c").arg(script).output().unwrap();
    assert!(out.status.success(), "{script}: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn changes(p: &Pair, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = p.cmd("changes", &all);
    assert_eq!(out.code, 0, "{}", out.all());
    serde_json::from_str(&out.stdout).unwrap()
}

/// The (op, path) of each record listed.
fn listed(v: &serde_json::Value) -> Vec<(String, String)> {
    v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["op"].as_str().unwrap().to_string(),
                c["path"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn issue_18_changes_names_the_program_pid_and_uid_behind_each_change() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    p.write(S::Src, "old.txt", "old");
    p.write(S::Src, "keep.txt", "keep");
    p.sync_ok(&[], 0);
    let m = Mounted::start(&p);
    let src = p.src.display().to_string();
    let writer = run_as_program(
        p.tmp.path(),
        "tndm-writer",
        &format!("echo $$; echo hello > {src}/written.txt"),
    );
    // A program known by its own name: rm, exec'd in place of the shell (same pid).
    let remover = run_as_program(
        p.tmp.path(),
        "tndm-shell",
        &format!("echo $$; exec rm {src}/old.txt"),
    );
    wait_for("both changes replicated", Duration::from_secs(20), || {
        p.exists(S::Tgt, "written.txt") && !p.exists(S::Tgt, "old.txt")
    });
    let uid = rustix::process::getuid().as_raw();

    let all = changes(&p, &[]);
    let list = all["changes"].as_array().unwrap();
    let created = list
        .iter()
        .find(|c| c["op"] == "create" && c["path"] == "written.txt")
        .unwrap_or_else(|| panic!("no create of written.txt in {all}"));
    assert_eq!(created["program"], "tndm-writer", "{created}");
    assert_eq!(created["pid"], writer, "{created}");
    assert_eq!(created["uid"], uid, "{created}");
    assert!(
        created["time"].as_str().unwrap().starts_with("20"),
        "{created}"
    );
    let removed = list
        .iter()
        .find(|c| c["op"] == "unlink" && c["path"] == "old.txt")
        .unwrap_or_else(|| panic!("no unlink of old.txt in {all}"));
    assert_eq!(removed["program"], "rm", "{removed}");
    assert_eq!(removed["pid"], remover, "{removed}");

    // Filters: by program, by pid, by path, by time.
    let by_writer = listed(&changes(&p, &["--by", "tndm-writer"]));
    assert!(by_writer.contains(&("create".into(), "written.txt".into())));
    assert!(
        by_writer.iter().all(|(_, path)| path == "written.txt"),
        "{by_writer:?}"
    );
    let by_pid = listed(&changes(&p, &["--by", &remover.to_string()]));
    assert_eq!(by_pid, [("unlink".to_string(), "old.txt".to_string())]);
    let by_path = listed(&changes(&p, &["--path", "old*"]));
    assert_eq!(by_path, [("unlink".to_string(), "old.txt".to_string())]);
    assert_eq!(listed(&changes(&p, &["--since", "1h"])).len(), list.len());
    assert!(listed(&changes(&p, &["--since", "2999-01-01"])).is_empty());

    // The text form says who.
    let text = p.cmd("changes", &["--path", "old.txt"]);
    assert_eq!(text.code, 0, "{}", text.all());
    assert!(
        text.stdout
            .contains(&format!("old.txt  by rm (pid {remover}, uid {uid})")),
        "{}",
        text.stdout
    );

    // Every target has read them, and the replicator trims its journal every 10 s: they
    // are kept for the retention, not dropped once replayed.
    std::thread::sleep(Duration::from_secs(11));
    p.write(S::Src, "later.txt", "later");
    wait_for("later.txt replicated", Duration::from_secs(20), || {
        p.exists(S::Tgt, "later.txt")
    });
    std::thread::sleep(Duration::from_millis(300));
    let after = listed(&changes(&p, &["--path", "old.txt"]));
    assert_eq!(after, [("unlink".to_string(), "old.txt".to_string())]);
    m.stop();
}
