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
