//! Undo for the source (issue 18): what a write, truncate, rename over or unlink through
//! the mount destroys is kept first in the source's `.tandem/history/`; `tandem history`
//! lists it with who did it (and what syncs set aside in either trash), `tandem restore`
//! brings it back through the mount, and the retention prunes it.
//!
//! CI runs these once more as `nobody` (.ci/run): then nothing is passed through by the
//! kernel, and the copy is taken on the first write instead of at open.

use std::io::{Seek, SeekFrom, Write};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::fixtures::*;
use crate::mount::{fuse_available, wait_for, Mounted};

const T: Duration = Duration::from_secs(20);

/// `tandem history SRC/REL --state-dir STATE --json`.
fn history(p: &Pair, rel: &str) -> Value {
    let out = run_tandem([
        "history".as_ref(),
        p.src.join(rel).as_os_str(),
        "--state-dir".as_ref(),
        p.state.as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.all()))
}

/// The versions listed, as (side, kept, size) for each.
fn versions(v: &Value) -> Vec<&Value> {
    v["versions"].as_array().unwrap().iter().collect()
}

/// The source versions of `rel` kept in the history.
fn kept_in_history<'a>(v: &'a Value, rel: &str) -> Vec<&'a Value> {
    versions(v)
        .into_iter()
        .filter(|x| x["path"] == rel && x["kept"] == "history")
        .collect()
}

/// `tandem restore SRC/REL --state-dir STATE ARGS...`
fn restore(p: &Pair, rel: &str, args: &[&str]) -> Out {
    let path = p.src.join(rel);
    let mut v: Vec<&std::ffi::OsStr> = vec![
        "restore".as_ref(),
        path.as_os_str(),
        "--state-dir".as_ref(),
        p.state.as_os_str(),
    ];
    v.extend(args.iter().map(std::ffi::OsStr::new));
    run_tandem(v)
}

/// Restores the version the history kept (`v`, as listed).
fn restore_kept(p: &Pair, rel: &str, v: &Value) {
    restore_ok(p, rel, &["--version", &v["version"].to_string()]);
}

fn restore_ok(p: &Pair, rel: &str, args: &[&str]) {
    let out = restore(p, rel, args);
    assert_eq!(out.code, 0, "{}", out.all());
}

/// A pair with `a.txt` ("before", synced), mounted with `args`.
fn mounted_with<'a>(p: &'a Pair, args: &[&str]) -> Mounted<'a> {
    p.write(S::Src, "a.txt", "before: the content to keep");
    p.sync_ok(&[], 0);
    Mounted::start_with(p, &[], args)
}

fn until_target_has(p: &Pair, rel: &str, content: &str) {
    wait_for(&format!("{rel} = {content:?} on the target"), T, || {
        std::fs::read(p.path(S::Tgt, rel)).is_ok_and(|c| c == content.as_bytes())
    });
}

#[test]
fn issue_18_overwrite_in_place_through_the_mount_then_restore() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    let m = mounted_with(&p, &[]);
    // Overwritten in place: no truncation, a write at offset 0 (twice: kept once).
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(p.path(S::Src, "a.txt"))
        .unwrap();
    f.write_all(b"AFTER!").unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.write_all(b"after!").unwrap();
    drop(f);
    let now = "after!: the content to keep";
    assert_eq!(p.read(S::Src, "a.txt"), now);
    until_target_has(&p, "a.txt", now);

    let h = history(&p, "a.txt");
    let kept = kept_in_history(&h, "a.txt");
    assert_eq!(kept.len(), 1, "kept once per open, not per write: {h}");
    let at = kept[0]["where"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(at).unwrap(),
        "before: the content to keep"
    );
    restore_kept(&p, "a.txt", kept[0]);
    assert_eq!(p.read(S::Src, "a.txt"), "before: the content to keep");
    until_target_has(&p, "a.txt", "before: the content to keep");
    // Restoring never loses the present: what it replaced is a version now.
    let h = history(&p, "a.txt");
    let contents: Vec<String> = kept_in_history(&h, "a.txt")
        .iter()
        .map(|v| std::fs::read_to_string(v["where"].as_str().unwrap()).unwrap())
        .collect();
    assert!(contents.contains(&now.to_string()), "{h}");
    m.stop();
}

#[test]
fn issue_18_unlink_through_the_mount_then_restore() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    let m = mounted_with(&p, &[]);
    std::fs::remove_file(p.path(S::Src, "a.txt")).unwrap();
    wait_for("the deletion replicated", T, || !p.exists(S::Tgt, "a.txt"));
    let h = history(&p, "a.txt");
    let kept = kept_in_history(&h, "a.txt");
    assert_eq!(kept.len(), 1, "{h}");
    assert_eq!(kept[0]["op"], "unlink", "{h}");
    restore_kept(&p, "a.txt", kept[0]);
    assert_eq!(p.read(S::Src, "a.txt"), "before: the content to keep");
    until_target_has(&p, "a.txt", "before: the content to keep");
    m.stop();
}

#[test]
fn issue_18_truncate_through_the_mount_then_restore() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    let m = mounted_with(&p, &[]);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(p.path(S::Src, "a.txt"))
        .unwrap();
    f.set_len(6).unwrap();
    drop(f);
    until_target_has(&p, "a.txt", "before");
    let h = history(&p, "a.txt");
    let kept = kept_in_history(&h, "a.txt");
    assert_eq!(kept.len(), 1, "{h}");
    restore_kept(&p, "a.txt", kept[0]);
    assert_eq!(p.read(S::Src, "a.txt"), "before: the content to keep");
    until_target_has(&p, "a.txt", "before: the content to keep");
    m.stop();
}

#[test]
fn issue_18_rename_over_through_the_mount_then_restore() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    let m = mounted_with(&p, &[]);
    // An editor's save: a new file renamed over the old one.
    p.write(S::Src, ".a.txt.swp", "saved over");
    std::fs::rename(p.path(S::Src, ".a.txt.swp"), p.path(S::Src, "a.txt")).unwrap();
    until_target_has(&p, "a.txt", "saved over");
    let h = history(&p, "a.txt");
    let kept = kept_in_history(&h, "a.txt");
    assert_eq!(kept.len(), 1, "{h}");
    assert_eq!(kept[0]["op"], "rename", "{h}");
    // Brought back under another name, then over its own.
    let n = kept[0]["version"].to_string();
    restore_ok(
        &p,
        "a.txt",
        &[
            "--version",
            &n,
            "--to",
            p.path(S::Src, "b.txt").to_str().unwrap(),
        ],
    );
    assert_eq!(p.read(S::Src, "b.txt"), "before: the content to keep");
    let out = restore(
        &p,
        "a.txt",
        &["--to", p.path(S::Src, "b.txt").to_str().unwrap()],
    );
    assert_ne!(out.code, 0, "--to onto an existing path needs --force");
    restore_ok(&p, "a.txt", &["--version", &n]);
    assert_eq!(p.read(S::Src, "a.txt"), "before: the content to keep");
    until_target_has(&p, "a.txt", "before: the content to keep");
    until_target_has(&p, "b.txt", "before: the content to keep");
    m.stop();
}

#[test]
fn issue_18_history_names_the_program_that_destroyed_each_version() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    let m = mounted_with(&p, &[]);
    let editor = p.tmp.path().join("tndm-editor");
    std::fs::copy("/bin/dash", &editor).unwrap();
    let out = Command::new(&editor)
        .arg("-c")
        .arg(format!(
            "echo $$; echo edited > {}",
            p.path(S::Src, "a.txt").display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let pid: u32 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    until_target_has(&p, "a.txt", "edited\n");
    let h = history(&p, "a.txt");
    let kept = kept_in_history(&h, "a.txt");
    assert_eq!(kept.len(), 1, "{h}");
    assert_eq!(kept[0]["program"], "tndm-editor", "{h}");
    assert_eq!(kept[0]["pid"], pid, "{h}");
    assert_eq!(kept[0]["uid"], rustix::process::getuid().as_raw(), "{h}");
    // The text form says who, and where the version is.
    let text = run_tandem([
        "history".as_ref(),
        p.src.as_os_str(),
        "--state-dir".as_ref(),
        p.state.as_os_str(),
    ]);
    assert_eq!(text.code, 0, "{}", text.all());
    assert!(
        text.stdout.contains(&format!("by tndm-editor (pid {pid}")),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains(".tandem/history/"), "{}", text.stdout);
    m.stop();
}

#[test]
fn issue_18_a_file_over_the_size_limit_is_listed_as_not_kept() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    p.write(S::Src, "big.bin", &"x".repeat(4096));
    let m = mounted_with(&p, &["--history-max-file", "1KiB"]);
    p.write(S::Src, "big.bin", "small now");
    p.write(S::Src, "a.txt", "small files are still kept");
    until_target_has(&p, "big.bin", "small now");
    until_target_has(&p, "a.txt", "small files are still kept");
    let h = history(&p, "big.bin");
    let listed: Vec<&Value> = versions(&h)
        .into_iter()
        .filter(|v| v["side"] == "source")
        .collect();
    assert_eq!(listed.len(), 1, "{h}");
    assert_eq!(listed[0]["kept"], Value::Null, "{h}");
    assert_eq!(listed[0]["not_kept"], "too large", "{h}");
    assert_eq!(listed[0]["size"], 4096, "{h}");
    assert_eq!(kept_in_history(&history(&p, "a.txt"), "a.txt").len(), 1);
    let text = run_tandem([
        "history".as_ref(),
        p.path(S::Src, "big.bin").as_os_str(),
        "--state-dir".as_ref(),
        p.state.as_os_str(),
    ]);
    assert!(
        text.stdout.contains("not kept: too large"),
        "{}",
        text.stdout
    );
    let out = restore(
        &p,
        "big.bin",
        &["--version", &listed[0]["version"].to_string()],
    );
    assert_ne!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains("not kept (too large)"), "{}", out.all());
    m.stop();
}

fn history_files(p: &Pair) -> usize {
    std::fs::read_dir(p.src.join(".tandem/history")).map_or(0, |d| d.count())
}

#[test]
fn issue_18_retention_prunes_the_history_which_survives_a_restart() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    let m = mounted_with(&p, &[]);
    for i in 0..5 {
        p.write(S::Src, "a.txt", &format!("version {i}"));
    }
    until_target_has(&p, "a.txt", "version 4");
    m.stop();
    // Five versions were kept: "before", then versions 0 to 3.
    assert_eq!(history_files(&p), 5);
    assert_eq!(kept_in_history(&history(&p, "a.txt"), "a.txt").len(), 5);
    let status = p.cmd("status", &["--json"]);
    let s: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(s["history"]["versions"], 5, "{s}");

    // The next session prunes it to the retention: the two newest stay.
    p.sync_ok(&["--history-versions", "2"], 0);
    assert_eq!(history_files(&p), 2);
    let h = history(&p, "a.txt");
    let left: Vec<String> = kept_in_history(&h, "a.txt")
        .iter()
        .map(|v| std::fs::read_to_string(v["where"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(left, ["version 2", "version 3"], "{h}");
    let status = p.cmd("status", &[]);
    assert!(
        status.stdout.contains("history:   2 versions, 18 B"),
        "{}",
        status.stdout
    );

    // Mounted again, the history is still there and grows from it.
    let m = Mounted::start(&p);
    p.write(S::Src, "a.txt", "version 5");
    until_target_has(&p, "a.txt", "version 5");
    let h = history(&p, "a.txt");
    let kept = kept_in_history(&h, "a.txt");
    assert_eq!(kept.len(), 3, "{h}");
    restore_kept(&p, "a.txt", kept[0]);
    assert_eq!(p.read(S::Src, "a.txt"), "version 2");
    m.stop();
}

#[test]
fn issue_18_a_version_a_sync_moved_to_the_target_trash_is_listed_and_restored() {
    let p = Pair::new();
    p.write(S::Src, "docs/a.txt", "first");
    p.sync_ok(&[], 0);
    p.write(S::Src, "docs/a.txt", "second");
    p.sync_ok(&[], 0);
    std::fs::remove_file(p.path(S::Src, "docs/a.txt")).unwrap();
    p.sync_ok(&[], 0);
    // A folder lists its files' versions.
    let h = history(&p, "docs");
    let listed: Vec<(String, String, String)> = versions(&h)
        .iter()
        .map(|v| {
            let at = v["where"].as_str().unwrap();
            (
                v["side"].as_str().unwrap().to_string(),
                v["kept"].as_str().unwrap().to_string(),
                std::fs::read_to_string(at).unwrap(),
            )
        })
        .collect();
    let t = |c: &str| ("target".to_string(), "trash".to_string(), c.to_string());
    assert_eq!(listed, [t("first"), t("second")], "{h}");
    assert!(versions(&h).iter().all(|v| v["path"] == "docs/a.txt"));
    // Nothing is mounted: restored into the source folder, then synced like any change.
    restore_ok(&p, "docs/a.txt", &[]);
    assert_eq!(p.read(S::Src, "docs/a.txt"), "second");
    p.sync_ok(&[], 0);
    assert_eq!(p.read(S::Tgt, "docs/a.txt"), "second");
    // Over the present file: what it holds is kept in the history first.
    restore_ok(&p, "docs/a.txt", &["--version", "1"]);
    assert_eq!(p.read(S::Src, "docs/a.txt"), "first");
    let h = history(&p, "docs/a.txt");
    let kept = kept_in_history(&h, "docs/a.txt");
    assert_eq!(kept.len(), 1, "{h}");
    assert_eq!(kept[0]["op"], "restore", "{h}");
    assert_eq!(
        std::fs::read_to_string(kept[0]["where"].as_str().unwrap()).unwrap(),
        "second"
    );
    // Bad input: no such version, a path with no history.
    let out = restore(&p, "docs/a.txt", &["--version", "99"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("no version 99"), "{}", out.all());
    let out = restore(&p, "never.txt", &[]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("no version kept"), "{}", out.all());
}

/// `tandem history SRC/REL --state-dir STATE` as text.
fn history_text(p: &Pair, rel: &str) -> String {
    let out = run_tandem([
        "history".as_ref(),
        p.src.join(rel).as_os_str(),
        "--state-dir".as_ref(),
        p.state.as_os_str(),
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    out.stdout
}

fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A mount that died between keeping a version and recording it leaves a file in the
/// history no row names; one that recorded it and lost the file (the history folder
/// emptied by hand, a crash before the link reached the disk) leaves a row naming nothing.
/// The next mount adopts the first (listed as recovered after a crash, pruned as any
/// other) and lists the second as lost (never offered for a restore, gone with the age
/// limit).
#[test]
fn issue_18_a_version_left_unrecorded_is_adopted_and_a_missing_one_is_listed_as_lost() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    p.write(S::Src, "d/a.txt", "a now");
    p.write(S::Src, "d/b.txt", "b before");
    p.sync_ok(&[], 0);
    let m = Mounted::start(&p);
    p.write(S::Src, "d/b.txt", "b after");
    until_target_has(&p, "d/b.txt", "b after");
    m.stop();
    let h = history(&p, "d/b.txt");
    let kept = kept_in_history(&h, "d/b.txt");
    assert_eq!(kept.len(), 1, "{h}");
    // The file of b's version goes; an unrecorded version of a appears, named and made
    // as the mount makes them (`<time>.<n>~<path escaped>`, mode 0600).
    std::fs::remove_file(kept[0]["where"].as_str().unwrap()).unwrap();
    let hist = p.src.join(".tandem/history");
    let an_hour_ago = now_ns() - 3_600_000_000_000;
    let orphan = hist.join(format!("{an_hour_ago}.7~d%2Fa.txt"));
    write_file(&orphan, b"a as it was before the crash");
    std::fs::set_permissions(&orphan, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();

    let m = Mounted::start(&p);
    let h = history(&p, "d");
    let of = |rel: &str| -> Vec<&Value> {
        versions(&h)
            .into_iter()
            .filter(|v| v["path"] == rel && v["side"] == "source")
            .collect()
    };
    let a = of("d/a.txt");
    assert_eq!(a.len(), 1, "the unrecorded version is listed: {h}");
    assert_eq!(a[0]["kept"], "history", "{h}");
    assert_eq!(a[0]["op"], "recovered", "{h}");
    assert_eq!(a[0]["pid"], Value::Null, "who made it is not known: {h}");
    assert_eq!(a[0]["size"], 28, "{h}");
    let t = a[0]["time"].as_str().unwrap();
    let listed: jiff::Timestamp = t.parse().unwrap();
    assert_eq!(
        listed.as_nanosecond() / 1_000_000_000,
        (an_hour_ago / 1_000_000_000) as i128,
        "its time comes from its name: {h}"
    );
    let b = of("d/b.txt");
    assert_eq!(b.len(), 1, "{h}");
    assert_eq!(b[0]["kept"], Value::Null, "{h}");
    assert_eq!(b[0]["not_kept"], "lost", "{h}");
    let text = history_text(&p, "d");
    assert!(text.contains("recovered after a crash"), "{text}");
    assert!(
        text.contains("lost: its file is gone from the history"),
        "{text}"
    );
    // The adopted version restores like any other; the lost one is never offered.
    let ha = history(&p, "d/a.txt");
    restore_kept(&p, "d/a.txt", kept_in_history(&ha, "d/a.txt")[0]);
    assert_eq!(p.read(S::Src, "d/a.txt"), "a as it was before the crash");
    until_target_has(&p, "d/a.txt", "a as it was before the crash");
    let hb = history(&p, "d/b.txt");
    let lost = versions(&hb)
        .into_iter()
        .find(|v| v["not_kept"] == "lost")
        .unwrap_or_else(|| panic!("{hb}"));
    let out = restore(&p, "d/b.txt", &["--version", &lost["version"].to_string()]);
    assert_ne!(out.code, 0, "{}", out.all());
    assert!(out.all().contains("was not kept (lost)"), "{}", out.all());
    m.stop();

    // The retention prunes the adopted version's bytes as any other's.
    assert!(orphan.exists());
    let m = Mounted::start_with(&p, &[], &["--history-max", "1"]);
    assert!(
        !orphan.exists(),
        "the adopted version was pruned to the size limit"
    );
    m.stop();
    // And the record of the lost one goes with the age limit.
    p.sync_ok(&["--history-keep", "0s"], 0);
    let h = history(&p, "d/b.txt");
    assert!(versions(&h).iter().all(|v| v["not_kept"] != "lost"), "{h}");
}

/// A one-shot `tandem sync` prunes the source's history the mount recorded in the pair's
/// store: a version a crashed mount left unrecorded is adopted first, so that the prune
/// weighs (and may drop) it as any other, instead of it staying unlisted, outside every
/// limit, until the next mount. One younger than a minute is left alone (another pair's
/// mount of this source may be recording it).
#[test]
fn issue_18_a_one_shot_sync_adopts_unrecorded_versions_before_it_prunes() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    p.write(S::Src, "d/a.txt", "a now");
    p.write(S::Src, "d/b.txt", "b before");
    p.sync_ok(&[], 0);
    let m = Mounted::start(&p);
    p.write(S::Src, "d/b.txt", "b after");
    until_target_has(&p, "d/b.txt", "b after");
    m.stop();
    assert_eq!(kept_in_history(&history(&p, "d/b.txt"), "d/b.txt").len(), 1);
    let hist = p.src.join(".tandem/history");
    let orphan_at = |t: u128, body: &[u8]| {
        let f = hist.join(format!("{t}.7~d%2Fa.txt"));
        write_file(&f, body);
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        f
    };
    let old = orphan_at(
        now_ns() - 3_600_000_000_000,
        b"a as it was before the crash",
    );
    let young = orphan_at(now_ns(), b"a a moment ago");

    p.sync_ok(&[], 0);
    let h = history(&p, "d/a.txt");
    let a = kept_in_history(&h, "d/a.txt");
    assert_eq!(
        a.len(),
        1,
        "the old one adopted, the young one not yet: {h}"
    );
    assert_eq!(a[0]["op"], "recovered", "{h}");
    assert_eq!(a[0]["size"], 28, "{h}");

    p.sync_ok(&["--history-max", "1"], 0);
    assert!(
        !old.exists(),
        "the adopted version was pruned to the size limit"
    );
    assert!(
        young.exists(),
        "a version younger than a minute is left alone"
    );
    assert_eq!(p.read(S::Src, "d/a.txt"), "a now");
}

/// kill -9 while programs overwrite files through the mount: whatever the dead mount left
/// in the history (versions kept, recorded or not; copies half made) is, after the
/// restart, listed by `tandem history` or gone, never left unlisted.
#[test]
fn issue_18_after_a_kill_9_every_file_in_the_history_is_listed() {
    if !fuse_available() {
        return;
    }
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    const FILES: usize = 48;
    let p = Pair::new();
    let body = |i: usize, round: usize| format!("{i:04} round {round} ").repeat(4 << 10);
    for i in 0..FILES {
        p.write(S::Src, &format!("w{}/f{i}", i % 3), &body(i, 0));
    }
    p.sync_ok(&[], 0);
    let mut m = Mounted::start(&p);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (src, stop) = (p.src.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut round = 1;
                while !stop.load(Ordering::SeqCst) {
                    for i in (w..FILES).step_by(3) {
                        // In place: each open keeps the file as it was.
                        let f = std::fs::OpenOptions::new()
                            .write(true)
                            .open(src.join(format!("w{}/f{i}", i % 3)));
                        if f.and_then(|mut f| f.write_all(body(i, round).as_bytes()))
                            .is_err()
                        {
                            return;
                        }
                    }
                    round += 1;
                }
            })
        })
        .collect();
    // Well into the burst: the history holds versions by then.
    // (Counted by `history`: the mount's listing of its own history folder is cached.)
    wait_for("versions kept", 3 * T, || {
        versions(&history(&p, ""))
            .iter()
            .filter(|v| v["kept"] == "history")
            .count()
            >= FILES / 4
    });
    m.kill9();
    stop.store(true, Ordering::SeqCst);
    let m = m.restart();
    for w in writers {
        w.join().unwrap();
    }
    let h = history(&p, "");
    let listed: std::collections::BTreeSet<String> = versions(&h)
        .iter()
        .filter(|v| v["kept"] == "history")
        .map(|v| {
            let at = v["where"].as_str().unwrap();
            at.rsplit('/').next().unwrap().to_string()
        })
        .collect();
    let files: std::collections::BTreeSet<String> =
        std::fs::read_dir(p.src.join(".tandem/history"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
    let unlisted: Vec<_> = files.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "{} of {} files in the history are not listed: {unlisted:?}",
        unlisted.len(),
        files.len()
    );
    assert!(files.len() >= FILES / 4, "{}", files.len());
    m.stop();
}

/// An XFS file system with reflinks (`mkfs.xfs -m reflink=1`) in a file, on a loop device,
/// mounted; undone on drop.
struct Xfs {
    _dir: tempfile::TempDir,
    mnt: std::path::PathBuf,
    loopdev: String,
}

impl Xfs {
    /// `None` (said loudly) where one cannot be made: tools missing (a failure under
    /// CI=true: .ci/run installs xfsprogs), or not root (CI's second pass, as `nobody`).
    fn mount() -> Option<Xfs> {
        let missing = ["mkfs.xfs", "losetup", "filefrag"].into_iter().find(|t| {
            Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .map_or(true, |o| !o.status.success())
        });
        if let Some(t) = missing {
            let msg = format!(
                "{t} is not installed (Debian: xfsprogs, mount, e2fsprogs); .ci/run installs it"
            );
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
            eprintln!("SKIPPED: the reflink test: {msg}");
            return None;
        }
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIPPED: the reflink test needs root (a loop device and a mount)");
            return None;
        }
        let run = |cmd: &mut Command| {
            let out = cmd.output().unwrap();
            assert!(
                out.status.success(),
                "{cmd:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("xfs.img");
        let mnt = dir.path().join("xfs");
        run(Command::new("truncate").args(["-s", "512M"]).arg(&image));
        run(Command::new("mkfs.xfs")
            .args(["-q", "-m", "reflink=1"])
            .arg(&image));
        let loopdev = run(Command::new("losetup").args(["-f", "--show"]).arg(&image));
        std::fs::create_dir(&mnt).unwrap();
        let xfs = Xfs {
            _dir: dir,
            mnt,
            loopdev,
        };
        run(Command::new("mount").arg(&xfs.loopdev).arg(&xfs.mnt));
        Some(xfs)
    }
}

impl Drop for Xfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mnt).status();
        let _ = Command::new("losetup").args(["-d", &self.loopdev]).status();
    }
}

/// On a file system with reflinks, the version kept of a file overwritten in place through
/// the mount is a clone (FICLONE): it shares its extents with the file, no data copied.
#[test]
fn issue_18_on_xfs_the_version_kept_of_an_overwrite_shares_extents_with_the_file() {
    if !fuse_available() {
        return;
    }
    let Some(xfs) = Xfs::mount() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let p = Pair {
        src: xfs.mnt.join("src"),
        tgt: xfs.mnt.join("tgt"),
        state: tmp.path().join("state"),
        tmp,
        remote: None,
    };
    std::fs::create_dir(&p.src).unwrap();
    std::fs::create_dir(&p.tgt).unwrap();
    let before: Vec<u8> = (0..4u32 << 18)
        .flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes())
        .collect();
    write_file(&p.path(S::Src, "big.bin"), &before);
    p.sync_ok(&[], 0);
    let m = Mounted::start(&p);
    // 4 KiB overwritten at the start of a 4 MiB file: the rest stays shared with the clone.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(p.path(S::Src, "big.bin"))
        .unwrap();
    f.write_all(&[0xAB; 4096]).unwrap();
    f.sync_all().unwrap();
    drop(f);
    let h = history(&p, "big.bin");
    let kept = kept_in_history(&h, "big.bin");
    assert_eq!(kept.len(), 1, "{h}");
    let at = kept[0]["where"].as_str().unwrap().to_string();
    assert!(
        std::fs::read(&at).unwrap() == before,
        "the version holds the old content"
    );
    m.stop();
    // Read below the mount (FUSE answers no FIEMAP).
    let frag = Command::new("filefrag")
        .arg("-v")
        .arg(&at)
        .output()
        .unwrap();
    let frag = String::from_utf8_lossy(&frag.stdout);
    assert!(
        frag.lines().any(|l| l.contains("shared")),
        "no extent of the version is shared with the file: it was copied, not cloned\n{frag}"
    );
    drop(p);
}
