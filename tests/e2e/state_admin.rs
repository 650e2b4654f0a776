//! Issue 20 item 10: the pairs tandem keeps state for can be listed (`tandem status` with no
//! folder) and removed (`tandem forget SRC TGT`).

use std::path::Path;

use crate::fixtures::*;

/// `tandem ARGS` with its state home in `home` (no `--state-dir`: the default layout).
fn at_home(home: &Path, args: &[&std::ffi::OsStr]) -> Out {
    run_tandem_with_env(args, &[("XDG_STATE_HOME", home)])
}

fn sync_default(home: &Path, p: &Pair) -> Out {
    at_home(
        home,
        &["sync".as_ref(), p.src.as_os_str(), p.tgt.as_os_str()],
    )
}

#[test]
fn issue_20_status_without_folders_lists_every_known_pair() {
    let home = tempfile::tempdir().unwrap();
    let empty = at_home(home.path(), &["status".as_ref()]);
    assert_eq!(empty.code, 0, "{}", empty.all());
    assert!(empty.stdout.contains("knows no pairs"), "{}", empty.all());
    let (a, b) = (Pair::new(), Pair::new());
    std::fs::write(a.src.join("one"), b"1").unwrap();
    std::fs::write(b.src.join("two"), b"2").unwrap();
    std::fs::write(b.src.join("three"), b"3").unwrap();
    for p in [&a, &b] {
        let out = sync_default(home.path(), p);
        assert_eq!(out.code, 0, "{}", out.all());
    }
    let out = at_home(home.path(), &["status".as_ref(), "--json".as_ref()]);
    assert_eq!(out.code, 0, "{}", out.all());
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let pairs = v["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 2, "{v}");
    for (p, files) in [(&a, 1), (&b, 2)] {
        let src = std::fs::canonicalize(&p.src).unwrap();
        let row = pairs
            .iter()
            .find(|r| r["source"].as_str() == Some(src.to_str().unwrap()))
            .unwrap_or_else(|| panic!("{} not listed: {v}", src.display()));
        let tgt = std::fs::canonicalize(&p.tgt).unwrap();
        assert_eq!(row["target"].as_str(), tgt.to_str());
        assert_eq!(row["synced_entries"], files, "{row}");
        assert_eq!(row["last_run"]["exit_code"], 0, "{row}");
    }
    let text = at_home(home.path(), &["status".as_ref()]);
    assert!(
        text.stdout.contains(&format!(
            "{} <-> {}",
            std::fs::canonicalize(&a.src).unwrap().display(),
            std::fs::canonicalize(&a.tgt).unwrap().display()
        )),
        "{}",
        text.all()
    );
}

#[test]
fn issue_20_forget_removes_a_pairs_state_and_nothing_else() {
    let home = tempfile::tempdir().unwrap();
    let p = Pair::new();
    std::fs::write(p.src.join("kept"), b"data").unwrap();
    let out = sync_default(home.path(), &p);
    assert_eq!(out.code, 0, "{}", out.all());
    // The usual reason to forget: the source folder is gone.
    let moved = p.tmp.path().join("moved");
    std::fs::rename(&p.src, &moved).unwrap();
    let out = at_home(
        home.path(),
        &["forget".as_ref(), p.src.as_os_str(), p.tgt.as_os_str()],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("1 synced entries"), "{}", out.all());
    assert!(
        out.stdout.contains("state.db"),
        "says what it removes: {}",
        out.all()
    );
    let listed = at_home(home.path(), &["status".as_ref(), "--json".as_ref()]);
    let v: serde_json::Value = serde_json::from_str(listed.stdout.trim()).unwrap();
    assert_eq!(v["pairs"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(std::fs::read(moved.join("kept")).unwrap(), b"data");
    assert_eq!(std::fs::read(p.tgt.join("kept")).unwrap(), b"data");

    let again = at_home(
        home.path(),
        &["forget".as_ref(), p.src.as_os_str(), p.tgt.as_os_str()],
    );
    assert_eq!(again.code, 2, "{}", again.all());
    assert!(again.stderr.contains("has no state"), "{}", again.all());
}

#[test]
fn issue_20_forget_refuses_while_the_pair_is_in_use() {
    let home = tempfile::tempdir().unwrap();
    let p = Pair::new();
    assert_eq!(sync_default(home.path(), &p).code, 0);
    let pair = tandem_state_dir(home.path());
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(pair.join("lock"))
        .unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    let out = at_home(
        home.path(),
        &["forget".as_ref(), p.src.as_os_str(), p.tgt.as_os_str()],
    );
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("already working"), "{}", out.all());
    assert!(pair.join("state.db").exists());
}

/// The one pair's state directory under `home/tandem`.
fn tandem_state_dir(home: &Path) -> std::path::PathBuf {
    let dirs: Vec<_> = std::fs::read_dir(home.join("tandem"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|d| d.join("state.db").exists())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

/// The pair lines (`pair-...`) of a folder's markers.
fn pair_markers(root: &Path) -> Vec<String> {
    std::fs::read_to_string(root.join(".tandem/markers"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("pair-"))
        .map(str::to_string)
        .collect()
}

/// Issue 20 item 4: a plain pair's state file deleted is not a new pair. Both folders carry
/// the pair's marker since its first sync; taken for a first sync, the next run would bring
/// back a file deleted since (and turn edits into conflict copies).
#[test]
fn issue_20_a_missing_state_file_is_no_first_sync_when_the_folders_carry_the_marker() {
    let p = Pair::new();
    p.write(S::Src, "a.txt", "a");
    p.write(S::Src, "b.txt", "b");
    p.sync_ok(&[], 0);
    for root in [&p.src, &p.tgt] {
        assert_eq!(pair_markers(root).len(), 1, "{}", root.display());
    }
    std::fs::remove_file(p.path(S::Tgt, "b.txt")).unwrap();
    let db = p.state.join("state.db");
    for f in ["state.db", "state.db-wal", "state.db-shm"] {
        let _ = std::fs::remove_file(p.state.join(f));
    }
    let (src_before, tgt_before) = (p.tree(S::Src), p.tree(S::Tgt));
    for args in [&[][..], &["--dry-run"][..]] {
        let out = p.sync(args);
        assert_eq!(out.code, 2, "sync {args:?}: {}", out.all());
        out.assert_stderr_has(&db.display().to_string());
        out.assert_stderr_has(&p.src.join(".tandem/markers").display().to_string());
        out.assert_stderr_has("tandem forget");
        assert!(!p.exists(S::Tgt, "b.txt"), "the deleted file came back");
        assert!(!db.exists(), "a new state was made");
    }
    let out = p.cmd("mount", &["--foreground"]);
    assert_eq!(out.code, 2, "mount: {}", out.all());
    out.assert_stderr_has(&db.display().to_string());
    assert_eq!(p.tree(S::Src), src_before);
    assert_eq!(p.tree(S::Tgt), tgt_before);

    // The source synced with a second target carries a marker for each pair.
    let other = p.tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let state2 = p.tmp.path().join("state2");
    let mut args: Vec<&std::ffi::OsStr> = vec!["sync".as_ref(), p.src.as_os_str()];
    args.extend([
        other.as_os_str(),
        "--state-dir".as_ref(),
        state2.as_os_str(),
    ]);
    let out = run_tandem(&args);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(pair_markers(&p.src).len(), 2);

    // `tandem forget` removes this pair's markers, and only them: a first sync again.
    let out = p.cmd("forget", &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("marker"), "{}", out.all());
    assert_eq!(pair_markers(&p.src).len(), 1);
    assert!(pair_markers(&p.tgt).is_empty());
    p.sync_ok(&[], 0);
    p.assert_same();
    assert_eq!(pair_markers(&p.tgt).len(), 1);
    let out = run_tandem(&args);
    assert_eq!(out.code, 0, "the other pair syncs on: {}", out.all());
}
