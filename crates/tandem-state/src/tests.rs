#![allow(clippy::unwrap_used)]

use super::*;
use tandem_core::Seen;

fn pair() -> Pair {
    Pair {
        src: "/a".into(),
        tgt: "/b".into(),
    }
}

fn p(s: &str) -> RelPath {
    RelPath::from_str_lossless(s)
}

fn entry(size: u64) -> BaseEntry {
    BaseEntry {
        kind: Kind::File,
        size,
        hash: Some(Hash([7; 32])),
        link: None,
        src: Seen {
            ino: 1,
            mtime: 5,
            mode: 0o644,
            owner: None,
            xattrs: None,
        },
        tgt: Seen {
            ino: 2,
            mtime: 4_000_000_000,
            mode: 0o777,
            owner: None,
            xattrs: None,
        },
    }
}

#[test]
fn baseline_round_trips_and_moves_subtrees() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path(), &pair()).unwrap();
    let b = s.batch().unwrap();
    b.put(
        &p("d"),
        &BaseEntry {
            kind: Kind::Dir,
            ..entry(0)
        },
    )
    .unwrap();
    b.put(&p("d/x"), &entry(3)).unwrap();
    b.put(&p("d-y"), &entry(4)).unwrap();
    b.commit().unwrap();
    let b = s.batch().unwrap();
    b.move_tree(&p("d"), &p("e/f")).unwrap();
    b.commit().unwrap();
    let t = s.load_baseline().unwrap();
    let keys: Vec<String> = t.keys().map(|k| k.to_string()).collect();
    assert_eq!(keys, vec!["d-y", "e/f", "e/f/x"]);
    assert_eq!(t[&p("e/f/x")], entry(3));
    let b = s.batch().unwrap();
    b.remove_tree(&p("e/f")).unwrap();
    b.commit().unwrap();
    assert_eq!(s.baseline_len().unwrap(), 1);
}

#[test]
fn reopen_checks_pair_and_refuses_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path(), &pair()).unwrap());
    assert!(Store::open(dir.path(), &pair()).is_ok());
    let other = Pair {
        src: "/x".into(),
        tgt: "/b".into(),
    };
    assert!(matches!(
        Store::open(dir.path(), &other),
        Err(StateError::OtherPair { .. })
    ));

    let junk = tempfile::tempdir().unwrap();
    std::fs::write(
        junk.path().join(DB_FILE),
        b"this is not sqlite at all, just some bytes",
    )
    .unwrap();
    let err = Store::open(junk.path(), &pair()).err().unwrap();
    assert!(
        matches!(err, StateError::Corrupt { .. } | StateError::Foreign { .. }),
        "{err}"
    );
    assert_eq!(
        std::fs::read(junk.path().join(DB_FILE)).unwrap(),
        b"this is not sqlite at all, just some bytes"
    );

    let foreign = tempfile::tempdir().unwrap();
    let c = rusqlite::Connection::open(foreign.path().join(DB_FILE)).unwrap();
    c.execute_batch("CREATE TABLE t(x)").unwrap();
    drop(c);
    assert!(matches!(
        Store::open(foreign.path(), &pair()),
        Err(StateError::Foreign { .. })
    ));
}

#[test]
fn flagged_conflict_recorded_once_per_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path(), &pair()).unwrap();
    let c = NewConflict {
        path: p("f"),
        kind: "both modified".into(),
        src_desc: "a".into(),
        tgt_desc: "b".into(),
        resolution: "flagged".into(),
        copy: None,
        loser: None,
        settled: false,
    };
    for _ in 0..2 {
        let b = s.batch().unwrap();
        b.add_conflict(&c, 1).unwrap();
        b.commit().unwrap();
    }
    assert_eq!(s.conflicts(false).unwrap().len(), 1);
    let id = s.unresolved_conflict(&p("f")).unwrap().unwrap().id;
    let b = s.batch().unwrap();
    b.resolve_conflict(id, 2, "keep source").unwrap();
    b.commit().unwrap();
    assert!(s.conflicts(false).unwrap().is_empty());
    assert_eq!(s.conflicts(true).unwrap().len(), 1);
}

#[test]
fn second_lock_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _l = Lock::acquire(dir.path()).unwrap();
    match Lock::acquire(dir.path()) {
        Err(StateError::Locked { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
        _ => panic!("second lock should fail"),
    }
}

#[test]
fn journal_appends_in_batches_and_reads_back_in_order() {
    use tandem_core::{Change, ChangeOp, ChangeSink};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &pair()).unwrap();
    let w = std::sync::Arc::new(JournalWriter::open(dir.path()).unwrap());
    std::thread::scope(|s| {
        for t in 0..4 {
            let w = std::sync::Arc::clone(&w);
            s.spawn(move || {
                for i in 0..500 {
                    w.record(Change {
                        op: ChangeOp::Write,
                        path: p(&format!("t{t}/f{i}")),
                        to: None,
                        pid: t,
                        uid: 0,
                    });
                }
            });
        }
    });
    w.record(Change {
        op: ChangeOp::Rename,
        path: p("a"),
        to: Some(p("b/c")),
        pid: 1,
        uid: 2,
    });
    w.flush();
    assert_eq!(store.journal_head().unwrap(), 2001);
    let all = store.journal_after(0, 10_000).unwrap();
    assert_eq!(all.len(), 2001);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    // Each thread's records keep their order.
    for t in 0..4u32 {
        let mine: Vec<String> = all
            .iter()
            .filter(|r| r.change.pid == t && r.change.op == ChangeOp::Write)
            .map(|r| r.change.path.to_string())
            .collect();
        let want: Vec<String> = (0..500).map(|i| format!("t{t}/f{i}")).collect();
        assert_eq!(mine, want);
    }
    let last = all.last().unwrap();
    assert_eq!(
        (last.change.op, last.change.to.clone()),
        (ChangeOp::Rename, Some(p("b/c")))
    );
    // Cursors, and trimming past the slowest one.
    store.set_cursor("t1", 1500).unwrap();
    store.set_cursor("t2", 1000).unwrap();
    assert_eq!(store.cursor("t1").unwrap(), 1500);
    assert_eq!(store.cursor("none").unwrap(), 0);
    assert_eq!(store.trim_journal(&read_is_enough()).unwrap(), 1000);
    assert_eq!(store.journal_after(0, 10).unwrap()[0].seq, 1001);
    assert_eq!(store.journal_after(2000, 10).unwrap().len(), 1);

    // Every target read everything: the newest record stays, so numbering goes on above
    // the cursors (an emptied table would start again at 1, below them: records never read).
    let head = store.journal_head().unwrap();
    store.set_cursor("t1", head).unwrap();
    store.set_cursor("t2", head).unwrap();
    store.trim_journal(&read_is_enough()).unwrap();
    assert_eq!(store.journal_head().unwrap(), head);
    w.record(Change {
        op: ChangeOp::Create,
        path: p("after-trim"),
        to: None,
        pid: 1,
        uid: 0,
    });
    w.flush();
    let after = store.journal_after(head, 10).unwrap();
    assert_eq!(after.len(), 1, "a record made after trimming is read");
    assert_eq!(after[0].seq, head + 1);
    w.close();
}

#[test]
fn the_journal_tells_what_was_opened_or_renamed_since_a_mark() {
    use tandem_core::{Change, ChangeOp, ChangeSink};
    let dir = tempfile::tempdir().unwrap();
    let _store = Store::open(dir.path(), &pair()).unwrap();
    let w = JournalWriter::open(dir.path()).unwrap();
    let rec = |op, path: &str| {
        w.record(Change {
            op,
            path: p(path),
            to: (op == ChangeOp::Rename).then(|| p("elsewhere")),
            pid: 1,
            uid: 0,
        })
    };
    let m = w.mark();
    assert_eq!(w.opened_since(m), Some(vec![]));
    rec(ChangeOp::OpenWrite, "a");
    rec(ChangeOp::Write, "b");
    rec(ChangeOp::OpenWrite, "c");
    assert_eq!(w.opened_since(m), Some(vec![p("a"), p("c")]));
    let m2 = w.mark();
    assert_eq!(w.opened_since(m2), Some(vec![]));
    rec(ChangeOp::Rename, "d");
    assert_eq!(
        w.opened_since(m2),
        None,
        "a rename makes the scan untrustworthy"
    );
    // More opens than are remembered: not listed, so not trusted either.
    let m3 = w.mark();
    for i in 0..5000 {
        rec(ChangeOp::OpenWrite, &format!("f{i}"));
    }
    assert_eq!(w.opened_since(m3), None);
    let m4 = w.mark();
    rec(ChangeOp::OpenWrite, "g");
    assert_eq!(w.opened_since(m4), Some(vec![p("g")]));
}

#[test]
fn known_pairs_lists_each_state_directory_read_only() {
    let home = tempfile::tempdir().unwrap();
    let a = home.path().join("aaaa");
    let b = home.path().join("bbbb");
    {
        let mut s = Store::open(&a, &pair()).unwrap();
        let batch = s.batch().unwrap();
        batch.put(&p("x"), &entry(3)).unwrap();
        batch.commit().unwrap();
        let id = s.begin_run(10).unwrap();
        s.finish_run(id, 12, 0, "in sync: 1 copied").unwrap();
    }
    let other = Pair {
        src: "/c".into(),
        tgt: "/d".into(),
    };
    Store::open(&b, &other).unwrap();
    std::fs::create_dir_all(home.path().join("mounts")).unwrap();
    let listed = known_pairs(home.path());
    assert_eq!(listed.len(), 2, "the mount registry is not a pair");
    let first = listed[0].1.as_ref().unwrap();
    assert_eq!(first.pair, pair());
    assert_eq!(first.synced_entries, 1);
    assert_eq!(first.last_run.as_ref().unwrap().exit_code, Some(0));
    assert_eq!(listed[1].1.as_ref().unwrap().pair, other);
}

#[test]
fn known_pairs_reports_an_empty_state_file_and_leaves_it_empty() {
    let home = tempfile::tempdir().unwrap();
    let d = home.path().join("cccc");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join(DB_FILE), b"").unwrap();
    let listed = known_pairs(home.path());
    assert_eq!(listed.len(), 1);
    assert!(matches!(listed[0].1, Err(StateError::Empty { .. })));
    assert_eq!(std::fs::metadata(d.join(DB_FILE)).unwrap().len(), 0);
}

#[test]
fn forget_removes_only_tandems_files_and_refuses_while_locked() {
    let home = tempfile::tempdir().unwrap();
    let d = home.path().join("dddd");
    Store::open(&d, &pair()).unwrap();
    std::fs::write(d.join("mount.log"), b"log").unwrap();
    let held = Lock::acquire(&d).unwrap();
    assert!(matches!(forget(&d), Err(StateError::Locked { .. })));
    assert!(d.join(DB_FILE).exists(), "nothing removed while locked");
    drop(held);
    std::fs::write(d.join("notes.txt"), b"mine").unwrap();
    let done = forget(&d).unwrap();
    assert!(done.removed.contains(&d.join(DB_FILE)));
    assert!(done.removed.contains(&d.join("mount.log")));
    assert_eq!(done.left, vec![d.join("notes.txt")]);
    assert!(!d.join(DB_FILE).exists());
    assert_eq!(std::fs::read(d.join("notes.txt")).unwrap(), b"mine");
    std::fs::remove_file(d.join("notes.txt")).unwrap();
    Store::open(&d, &pair()).unwrap();
    let done = forget(&d).unwrap();
    assert!(done.removed.contains(&d), "an emptied directory goes too");
    assert!(!d.exists());
}

#[test]
fn forget_refuses_a_database_that_is_not_tandems() {
    let d = tempfile::tempdir().unwrap();
    {
        let c = rusqlite::Connection::open(d.path().join(DB_FILE)).unwrap();
        c.execute_batch("CREATE TABLE mine(x); INSERT INTO mine VALUES (1);")
            .unwrap();
    }
    assert!(matches!(forget(d.path()), Err(StateError::Foreign { .. })));
    assert!(d.path().join(DB_FILE).exists());
}

/// Issue 20, item 4: only a missing state file means a new pair. SQLite opens a zero-length
/// file as an empty database; taken for a new store, it would make the next sync a first
/// sync (deleted files come back).
#[test]
fn issue_20_empty_state_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(DB_FILE);
    std::fs::write(&db, b"").unwrap();
    for err in [
        Store::open(dir.path(), &pair()).err(),
        Store::open_existing(dir.path(), &pair()).err(),
        JournalWriter::open(dir.path()).err(),
    ] {
        let err = err.expect("an empty state file was opened");
        assert!(matches!(err, StateError::Empty { .. }), "{err}");
        assert!(err.to_string().contains(&db.display().to_string()), "{err}");
    }
    assert!(state_exists(dir.path()).is_err());
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0, "left untouched");

    // A store truncated behind SQLite's back is caught by `check` too (the blank database
    // it would see), should the size probe be passed by.
    let store = tempfile::tempdir().unwrap();
    drop(Store::open(store.path(), &pair()).unwrap());
    std::fs::write(store.path().join(DB_FILE), b"").unwrap();
    let s = Store::connect(&store.path().join(DB_FILE)).unwrap();
    assert!(matches!(
        s.check(false, true),
        Err(StateError::Empty { .. })
    ));

    // A missing one is a new store, created complete: never empty on disk, even before its
    // first baseline is written.
    let fresh = tempfile::tempdir().unwrap();
    assert!(!state_exists(fresh.path()).unwrap());
    assert!(Store::open_existing(fresh.path(), &pair())
        .unwrap()
        .is_none());
    let s = Store::open(fresh.path(), &pair()).unwrap();
    assert!(std::fs::metadata(fresh.path().join(DB_FILE)).unwrap().len() > 0);
    assert!(!fresh.path().join("state.db.new").exists());
    drop(s);
    assert!(state_exists(fresh.path()).unwrap());
    assert!(Store::open_existing(fresh.path(), &pair())
        .unwrap()
        .is_some());
}

#[test]
fn a_state_file_that_cannot_be_looked_at_is_an_error() {
    // A state "directory" that is a file: the state file under it cannot be looked at.
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("f");
    std::fs::write(&not_a_dir, b"x").unwrap();
    assert!(matches!(
        Store::open_existing(&not_a_dir, &pair()),
        Err(StateError::Unreadable { .. })
    ));
}

#[test]
fn a_state_file_moved_away_without_its_log_is_an_error() {
    // The log of a database that is gone would be replayed into a new store.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("state.db-wal"),
        b"frames of another database",
    )
    .unwrap();
    for err in [
        Store::open(dir.path(), &pair()).err(),
        Store::open_existing(dir.path(), &pair()).err(),
    ] {
        let err = err.expect("a store was opened over an orphaned log");
        assert!(matches!(err, StateError::Orphaned { .. }), "{err}");
    }
    assert!(!dir.path().join(DB_FILE).exists());
    // An empty log holds nothing.
    std::fs::write(dir.path().join("state.db-wal"), b"").unwrap();
    assert!(Store::open(dir.path(), &pair()).is_ok());
}

#[test]
fn a_crashed_creation_is_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    // What a crash while creating the store left: a partial file and a hot journal.
    std::fs::write(dir.path().join("state.db.new"), b"partial").unwrap();
    std::fs::write(dir.path().join("state.db.new-journal"), b"junk").unwrap();
    let s = Store::open(dir.path(), &pair()).unwrap();
    assert_eq!(s.baseline_len().unwrap(), 0);
    assert!(!dir.path().join("state.db.new").exists());
    assert!(!dir.path().join("state.db.new-journal").exists());
}

#[test]
fn a_runs_skipped_and_failed_paths_are_kept_by_name_for_the_latest_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path(), &pair()).unwrap();
    let problem = |path: &[u8], what: &str| RunProblem {
        path: RelPath::new(path.to_vec()).unwrap(),
        what: what.into(),
        reason: "why".into(),
    };
    let first = s.begin_run(1).unwrap();
    let deep = [b"d/".repeat(2100).as_slice(), b"fifo\n"].concat();
    let listed = vec![problem(&deep, "skipped"), problem(b"a\xff", "failed")];
    s.set_run_problems(first, &listed).unwrap();
    s.finish_run(first, 2, 1, "skipped=1 failed=1").unwrap();
    drop(s);
    let mut s = Store::open(dir.path(), &pair()).unwrap();
    let last = s.last_run().unwrap().unwrap();
    assert_eq!(s.run_problems(last.id).unwrap(), listed);
    // A later run's list replaces it.
    let second = s.begin_run(3).unwrap();
    s.set_run_problems(second, &[]).unwrap();
    assert!(s.run_problems(first).unwrap().is_empty());
    assert!(s.run_problems(second).unwrap().is_empty());
}

#[test]
fn a_repointed_store_belongs_to_its_new_pair_and_keeps_its_meta() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), &pair()).unwrap();
    assert_eq!(s.meta("marker").unwrap(), None);
    s.set_meta("marker", "abc").unwrap();
    s.set_meta("marker", "def").unwrap();
    let moved = Pair {
        src: "/moved".into(),
        tgt: "/b".into(),
    };
    s.repoint(&moved).unwrap();
    drop(s);
    assert!(matches!(
        Store::open(dir.path(), &pair()),
        Err(StateError::OtherPair { .. })
    ));
    let s = Store::open(dir.path(), &moved).unwrap();
    assert_eq!(s.meta("marker").unwrap().as_deref(), Some("def"));
}

#[test]
fn issue_17_a_remote_trash_counted_at_its_last_prune_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), &pair()).unwrap();
    assert_eq!(s.far_trash().unwrap(), None, "nothing recorded yet");
    let far = FarTrash {
        versions: 3,
        bytes: 5 << 30,
        at_ns: 1_796_000_000_000_000_000,
    };
    s.record_far_trash(far).unwrap();
    drop(s);
    let s = Store::open(dir.path(), &pair()).unwrap();
    assert_eq!(s.far_trash().unwrap(), Some(far));
    s.set_meta("far_trash", "garbled").unwrap();
    assert_eq!(
        s.far_trash().unwrap(),
        None,
        "a value it did not write is ignored"
    );
}

/// A retention that keeps nothing once every target has read it.
fn read_is_enough() -> tandem_core::Retention {
    tandem_core::Retention {
        keep: std::time::Duration::ZERO,
        ..Default::default()
    }
}

#[test]
fn issue_18_read_records_stay_for_the_retention_and_name_their_program() {
    use tandem_core::{Change, ChangeOp, ChangeSink};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &pair()).unwrap();
    let w = JournalWriter::open(dir.path()).unwrap();
    let me = std::process::id();
    let rec = |op, path: &str, pid: u32, uid: u32| {
        w.record(Change {
            op,
            path: p(path),
            to: (op == ChangeOp::Rename).then(|| p("docs/moved.txt")),
            pid,
            uid,
        })
    };
    rec(ChangeOp::Create, "docs/a.txt", me, 1000);
    rec(ChangeOp::Unlink, "docs/b.txt", me, 1001);
    rec(ChangeOp::Rename, "c.txt", me, 1000);
    rec(ChangeOp::Write, "d.bin", 0, 1000);
    w.flush();
    let head = store.journal_head().unwrap();
    store.set_cursor("t1", head).unwrap();

    // Every target read them all, but they are younger than the retention: kept.
    assert_eq!(store.trim_journal(&Default::default()).unwrap(), 0);
    let all = store
        .changes(&ChangeQuery {
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.len(), 4);
    let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    assert_eq!(all[0].program.as_deref(), Some(comm.trim_end()));
    assert_eq!(all[3].program, None, "pid 0 is no program");

    let query = |q: ChangeQuery| -> Vec<String> {
        store
            .changes(&ChangeQuery { limit: 100, ..q })
            .unwrap()
            .iter()
            .map(|r| r.change.path.to_string())
            .collect()
    };
    let glob = |g: &str| ChangeQuery {
        path_glob: Some(g.into()),
        ..Default::default()
    };
    assert_eq!(query(glob("docs/*")), ["docs/a.txt", "docs/b.txt", "c.txt"]);
    let by = |b: By| ChangeQuery {
        by: Some(b),
        ..Default::default()
    };
    assert_eq!(query(by(By::Id(1001))), ["docs/b.txt"]);
    assert_eq!(query(by(By::Id(me))).len(), 3);
    assert_eq!(query(by(By::Program(comm.trim_end().into()))).len(), 3);
    let since = |ns| ChangeQuery {
        since_ns: Some(ns),
        ..Default::default()
    };
    assert_eq!(query(since(all[1].time_ns)).len(), 3);
    assert!(query(since(i64::MAX)).is_empty());
    let newest = store
        .changes(&ChangeQuery {
            limit: 2,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        newest.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [all[2].seq, all[3].seq],
        "the newest, oldest first"
    );

    // Past the retention they go, but never the newest (nor what a target has not read).
    store.set_cursor("t2", head - 2).unwrap();
    assert_eq!(store.trim_journal(&read_is_enough()).unwrap(), 2);
    store.set_cursor("t2", head).unwrap();
    assert_eq!(store.trim_journal(&read_is_enough()).unwrap(), 1);
    assert_eq!(store.journal_after(0, 10).unwrap().len(), 1);
    w.close();
}

#[test]
fn kept_versions_are_recorded_by_the_journal_writer_and_listed_per_file_or_folder() {
    use tandem_core::{ChangeOp, ChangeSink, NotKept, Version};
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), &pair()).unwrap();
    let w = JournalWriter::open(dir.path()).unwrap();
    let version = |path: &str, size: u64, kept: std::result::Result<String, NotKept>| Version {
        path: p(path),
        size,
        kept,
        op: ChangeOp::Write,
        pid: std::process::id(),
        uid: 7,
    };
    w.kept(version("d/a", 10, Ok("1.0~a".into())));
    w.kept(version("d/sub/b", 20, Ok("2.1~b".into())));
    w.kept(version("d0", 30, Ok("3.2~d0".into())));
    w.kept(version("d/big", 1 << 40, Err(NotKept::TooLarge)));
    w.flush();
    let names = |rows: Vec<VersionRow>| -> Vec<String> {
        rows.into_iter().map(|r| r.path.to_string()).collect()
    };
    // A folder lists what is below it, not its neighbours with the same prefix ("d0").
    assert_eq!(
        names(store.versions_of(&p("d")).unwrap()),
        ["d/a", "d/sub/b", "d/big"]
    );
    assert_eq!(names(store.versions_of(&p("d/a")).unwrap()), ["d/a"]);
    assert_eq!(store.versions_of(&RelPath::root()).unwrap().len(), 4);
    let big = &store.versions_of(&p("d/big")).unwrap()[0];
    assert_eq!(big.kept, Err(NotKept::TooLarge));
    assert_eq!((big.uid, big.op.as_str()), (7, "write"));
    assert!(big.program.is_some(), "the program is named");
    // Only what was kept counts.
    assert_eq!(
        store.history_usage().unwrap(),
        HistoryUsage {
            versions: 3,
            bytes: 60
        }
    );
    let a = store.versions_of(&p("d/a")).unwrap()[0].id;
    store.drop_versions(&[a]).unwrap();
    assert!(store.versions_of(&p("d/a")).unwrap().is_empty());
}

/// A deletion's journal record, as the brake holds it.
fn deletion(op: tandem_core::ChangeOp, path: &str) -> Record {
    Record {
        seq: 0,
        time_ns: 1,
        change: tandem_core::Change {
            op,
            path: p(path),
            to: None,
            pid: 0,
            uid: 0,
        },
        program: None,
    }
}

#[test]
fn issue_18_held_deletions_keep_their_side_and_a_path_is_held_once() {
    use tandem_core::{ChangeOp, Side};
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), &pair()).unwrap();
    let rec = |path: &str| deletion(ChangeOp::Rmdir, path);
    store
        .hold("/b", Side::Target, 1, &[rec("d/f"), rec("d")])
        .unwrap();
    // The folder told again (by its own watch), and a source deletion.
    store.hold("/b", Side::Target, 1, &[rec("d")]).unwrap();
    store.hold("/b", Side::Source, 2, &[rec("e")]).unwrap();
    let held = store.held(Some("/b")).unwrap();
    let got: Vec<(String, Side, i64)> = held
        .iter()
        .map(|h| (h.path.to_string(), h.side, h.batch))
        .collect();
    assert_eq!(
        got,
        [
            ("d/f".to_string(), Side::Target, 1),
            ("d".to_string(), Side::Target, 1),
            ("e".to_string(), Side::Source, 2),
        ]
    );
    // Reopened (the schema as migrated), the side is still there.
    drop(store);
    let store = Store::open(dir.path(), &pair()).unwrap();
    assert_eq!(store.held(None).unwrap()[0].side, Side::Target);
}

/// What a mount's replicator reads on every pass while deletions are held: only the rows a
/// `release` or `restore --held` asked for, and the paths alone.
#[test]
fn issue_18_the_replicator_reads_only_the_held_deletions_asked_for() {
    use tandem_core::{ChangeOp, Side};
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), &pair()).unwrap();
    let rec = |path: &str| deletion(ChangeOp::Unlink, path);
    store
        .hold("/b", Side::Source, 1, &[rec("a"), rec("b")])
        .unwrap();
    store.hold("/b", Side::Source, 2, &[rec("c")]).unwrap();
    store.hold("/c", Side::Source, 3, &[rec("d")]).unwrap();
    assert!(store.held_asked("/b").unwrap().is_empty());
    store.ask_held(Some(2), HeldAction::Release).unwrap();
    let asked: Vec<String> = store
        .held_asked("/b")
        .unwrap()
        .iter()
        .map(|h| h.path.to_string())
        .collect();
    assert_eq!(asked, ["c"]);
    assert!(store.held_asked("/c").unwrap().is_empty());
    let mut paths: Vec<String> = store
        .held_paths("/b")
        .unwrap()
        .iter()
        .map(|p| p.to_string())
        .collect();
    paths.sort();
    assert_eq!(paths, ["a", "b", "c"]);
}

/// `tandem changes` over a journal: each filter, alone and together, lists the newest
/// `limit` of the records it matches, oldest first, whether it reads through the time
/// index or not, and a glob starting with a folder or not.
#[test]
fn issue_18_changes_lists_the_newest_matches_through_the_indexes() {
    use tandem_core::{Change, ChangeOp, ChangeSink};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &pair()).unwrap();
    let w = JournalWriter::open(dir.path()).unwrap();
    for i in 0..300u32 {
        let rename = i % 10 == 9;
        w.record(Change {
            op: if rename {
                ChangeOp::Rename
            } else {
                ChangeOp::Write
            },
            path: p(&format!("d{}/f{i:03}", i % 3)),
            to: rename.then(|| p(&format!("moved/f{i:03}"))),
            pid: 0,
            uid: 1000 + i % 2,
        });
    }
    w.flush();
    let all = store
        .changes(&ChangeQuery {
            limit: 1000,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.len(), 300);
    // What a filter should list, from all of them: the newest `limit`, oldest first.
    let expect = |keep: &dyn Fn(&Record) -> bool, limit: usize| -> Vec<i64> {
        let m: Vec<i64> = all.iter().filter(|r| keep(r)).map(|r| r.seq).collect();
        m[m.len().saturating_sub(limit)..].to_vec()
    };
    let got = |q: ChangeQuery| -> Vec<i64> {
        let mut scan = store.scan_changes(&q).unwrap();
        let n = scan.count().unwrap();
        let seqs: Vec<i64> = scan.records().unwrap().map(|r| r.unwrap().seq).collect();
        assert_eq!(n, seqs.len(), "count agrees with the records read");
        seqs
    };
    let t = all[150].time_ns;
    let path_is = |r: &Record, pre: &str| {
        r.change.path.to_string().starts_with(pre)
            || r.change
                .to
                .as_ref()
                .is_some_and(|to| to.to_string().starts_with(pre))
    };
    for limit in [0, 1, 7, 1000] {
        let q = |q: ChangeQuery| ChangeQuery { limit, ..q };
        assert_eq!(
            got(q(ChangeQuery {
                path_glob: Some("d1/*".into()),
                ..Default::default()
            })),
            expect(&|r| path_is(r, "d1/"), limit)
        );
        assert_eq!(
            got(q(ChangeQuery {
                path_glob: Some("moved/*".into()),
                since_ns: Some(t),
                ..Default::default()
            })),
            expect(&|r| path_is(r, "moved/") && r.time_ns >= t, limit)
        );
        assert_eq!(
            got(q(ChangeQuery {
                path_glob: Some("*f1[0-4]?".into()),
                by: Some(By::Id(1001)),
                ..Default::default()
            })),
            expect(
                &|r| {
                    let name = r.change.path.to_string();
                    let n: u32 = name[name.len() - 3..].parse().unwrap();
                    (100..150).contains(&n) && r.change.uid == 1001
                },
                limit
            )
        );
    }
    w.close();
}
