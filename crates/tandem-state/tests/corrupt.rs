//! Fuzzing the state loader against damaged databases (issue 20). A real `state.db` with
//! baseline rows, conflicts, runs and journal records is damaged at random (bytes flipped,
//! runs of bytes overwritten with 0xff, the file cut short, whole pages zeroed), in the
//! database or in its write-ahead log; then what a sync does first (`Store::open`, the
//! baseline, the conflicts, the last run, the journal) must either work or fail with an
//! error that names the file, never panic, and never make SQLite allocate without bound.
//! A huge size field cannot make tandem allocate: sizes, kinds, inodes and modes are read
//! into integers, a hash into a fixed 32 bytes, and paths and link targets are only as long
//! as the bytes SQLite finds in the file.
//!
//! `TANDEM_FUZZ_CASES` sets the number of cases per test (default 128).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::Index;
use tandem_core::{BaseEntry, Change, ChangeOp, ChangeSink, Hash, Kind, RelPath, Seen, Side};
use tandem_state::{JournalWriter, NewConflict, Pair, StateError, Store, DB_FILE};

const PAGE: usize = 4096;
const BASELINE_ROWS: usize = 300;
const CONFLICTS: usize = 20;
const RUNS: usize = 5;
const JOURNAL_RECORDS: usize = 200;
/// SQLite's own allocations while loading a damaged copy stay below this (the whole
/// database is a few hundred kilobytes).
const SQLITE_MEMORY_BOUND: i64 = 64 << 20;

fn pair() -> Pair {
    Pair {
        src: "/fuzz/source".into(),
        tgt: "/fuzz/target".into(),
    }
}

fn p(s: &str) -> RelPath {
    RelPath::from_str_lossless(s)
}

fn entry(i: usize) -> BaseEntry {
    let seen = |ino: usize| Seen {
        ino: ino as u64,
        mtime: 1_700_000_000_000_000_000 + i as i64,
        mode: 0o644,
        owner: None,
        xattrs: None,
    };
    BaseEntry {
        kind: [Kind::File, Kind::Dir, Kind::Symlink][i % 3].clone(),
        size: (i * 1000) as u64,
        hash: i.is_multiple_of(3).then_some(Hash([i as u8; 32])),
        link: (i % 3 == 2).then(|| format!("../target/{i}").into_bytes()),
        src: seen(i),
        tgt: seen(i + 100_000),
    }
}

/// Fills a store in `dir`: baseline rows (long paths, so the table spans many pages and
/// overflow pages), conflicts (open and settled), finished runs and journal records.
fn fill(dir: &Path, from: usize) {
    let mut s = Store::open(dir, &pair()).unwrap();
    let b = s.batch().unwrap();
    for i in from..from + BASELINE_ROWS {
        let name = format!("dir-{}/{}-{i}", i % 7, "long name ".repeat(i % 40));
        b.put(&p(&name), &entry(i)).unwrap();
    }
    for i in from..from + CONFLICTS {
        let c = NewConflict {
            path: p(&format!("conflicted-{i}.txt")),
            kind: "both modified".into(),
            src_desc: format!("source: {i} bytes"),
            tgt_desc: format!("target: {i} bytes"),
            resolution: ["kept-both", "flagged"][i % 2].into(),
            copy: (i % 2 == 0).then(|| p(&format!("conflicted-{i}.conflict.txt"))),
            loser: (i % 2 == 0).then_some(Side::Target),
            settled: i.is_multiple_of(4),
        };
        b.add_conflict(&c, i as i64).unwrap();
    }
    b.commit().unwrap();
    for i in from..from + RUNS {
        let id = s.begin_run(i as i64).unwrap();
        s.finish_run(id, i as i64 + 1, 0, &format!("run {i}: in sync"))
            .unwrap();
    }
    let j = JournalWriter::open(dir).unwrap();
    for i in from..from + JOURNAL_RECORDS {
        j.record(Change {
            op: [ChangeOp::Create, ChangeOp::Rename, ChangeOp::Write][i % 3],
            path: p(&format!("dir-{}/written-{i}", i % 7)),
            to: (i % 3 == 1).then(|| p(&format!("renamed-{i}"))),
            pid: i as u32,
            uid: 1000,
        });
    }
    j.close();
    drop(s);
}

/// The files of a state folder, as bytes.
#[derive(Clone, Debug)]
struct Files {
    db: Vec<u8>,
    /// The write-ahead log of a store copied while still open.
    wal: Option<Vec<u8>>,
}

/// A store closed cleanly: everything checkpointed into `state.db`.
fn closed() -> &'static Files {
    static FILES: OnceLock<Files> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        fill(dir.path(), 0);
        assert!(!dir.path().join(format!("{DB_FILE}-wal")).exists());
        Files {
            db: std::fs::read(dir.path().join(DB_FILE)).unwrap(),
            wal: None,
        }
    })
}

/// A store copied while open, its latest rows still in the write-ahead log (as after a
/// crash or a power cut).
fn with_wal() -> &'static Files {
    static FILES: OnceLock<Files> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        fill(dir.path(), 0);
        let keep_open = Store::open(dir.path(), &pair()).unwrap();
        fill(dir.path(), 10_000);
        let wal = std::fs::read(dir.path().join(format!("{DB_FILE}-wal"))).unwrap();
        assert!(wal.len() > PAGE, "the write-ahead log is empty");
        let files = Files {
            db: std::fs::read(dir.path().join(DB_FILE)).unwrap(),
            wal: Some(wal),
        };
        drop(keep_open);
        files
    })
}

#[derive(Clone, Debug)]
enum Damage {
    /// Bytes XORed with a non-zero mask.
    Flip(Vec<(Index, u8)>),
    /// A run of bytes set to 0xff: a length or size field becomes huge.
    Ones(Index, usize),
    /// The file cut at an offset.
    Truncate(Index),
    /// A whole page zeroed.
    ZeroPage(Index),
    /// A byte of a page's header (or of the file's header, on the first page) XORed: cell
    /// counts, offsets, free-block pointers, the page size, the schema's size.
    PageHeader(Index, Index, u8),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        3 => prop::collection::vec((any::<Index>(), 1..=255u8), 1..16).prop_map(Damage::Flip),
        1 => (any::<Index>(), 1..9usize).prop_map(|(at, n)| Damage::Ones(at, n)),
        1 => any::<Index>().prop_map(Damage::Truncate),
        2 => any::<Index>().prop_map(Damage::ZeroPage),
        2 => (any::<Index>(), any::<Index>(), 1..=255u8)
            .prop_map(|(page, at, mask)| Damage::PageHeader(page, at, mask)),
    ]
}

fn apply(d: &Damage, bytes: &mut Vec<u8>) {
    let len = bytes.len();
    match d {
        Damage::Flip(flips) => {
            for (at, mask) in flips {
                bytes[at.index(len)] ^= mask;
            }
        }
        Damage::Ones(at, n) => {
            let at = at.index(len);
            let end = (at + n).min(len);
            bytes[at..end].fill(0xff);
        }
        Damage::Truncate(at) => bytes.truncate(at.index(len)),
        Damage::ZeroPage(at) => {
            let page = at.index(len.div_ceil(PAGE));
            let end = ((page + 1) * PAGE).min(len);
            bytes[page * PAGE..end].fill(0);
        }
        Damage::PageHeader(page, at, mask) => {
            // The file header is 100 bytes; a b-tree page header 8 or 12.
            let page = page.index(len / PAGE);
            let header = if page == 0 { 112 } else { 12 };
            bytes[page * PAGE + at.index(header)] ^= mask;
        }
    }
}

/// What a sync reads first, counted.
#[derive(Debug, PartialEq, Eq)]
struct Loaded {
    baseline: usize,
    conflicts: usize,
    last_run: Option<String>,
    journal: usize,
}

fn load(dir: &Path) -> Result<Loaded, StateError> {
    let s = Store::open(dir, &pair())?;
    let baseline = s.load_baseline()?.len();
    let conflicts = s.conflicts(true)?.len();
    let last_run = s.last_run()?.map(|r| r.summary);
    let journal = s.journal_after(s.cursor("fuzz")?, 1 << 20)?.len();
    s.journal_head()?;
    Ok(Loaded {
        baseline,
        conflicts,
        last_run,
        journal,
    })
}

/// Writes `files` into a fresh state folder.
fn state_dir(files: &Files) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(DB_FILE);
    std::fs::write(&db, &files.db).unwrap();
    if let Some(wal) = &files.wal {
        std::fs::write(dir.path().join(format!("{DB_FILE}-wal")), wal).unwrap();
    }
    (dir, db)
}

fn sqlite_memory_highwater(reset: bool) -> i64 {
    // SAFETY: a read (and reset) of SQLite's global memory statistics; no pointers.
    unsafe { rusqlite::ffi::sqlite3_memory_highwater(i32::from(reset)) }
}

/// Loads a damaged copy: it works or fails naming the file, within bounded memory. A file
/// refused as corrupted or foreign is left as it was, as the message says; so is any file
/// after `read_pair` (what `tandem status` lists).
fn check_damaged(files: &Files) -> Result<(), TestCaseError> {
    let (dir, db) = state_dir(files);
    sqlite_memory_highwater(true);
    if let Err(e) = tandem_state::read_pair(dir.path()) {
        prop_assert!(e.to_string().contains(&db.display().to_string()), "{}", e);
    }
    prop_assert!(
        std::fs::read(&db).unwrap() == files.db,
        "read_pair changed the file"
    );
    match load(dir.path()) {
        Ok(_) => {}
        Err(e) => match &e {
            StateError::Corrupt { path, .. } | StateError::Foreign { path, .. } => {
                prop_assert_eq!(path, &db, "{}", e);
                prop_assert!(std::fs::read(&db).unwrap() == files.db, "{} was changed", e);
            }
            StateError::Sql { path, .. }
            | StateError::OtherPair { path, .. }
            | StateError::TooNew { path, .. } => {
                prop_assert_eq!(path, &db, "{}", e);
                prop_assert!(e.to_string().contains(&db.display().to_string()));
            }
            other => prop_assert!(false, "unexpected kind of error: {other}"),
        },
    }
    let used = sqlite_memory_highwater(false);
    prop_assert!(
        used < SQLITE_MEMORY_BOUND,
        "SQLite allocated {used} bytes for a {}-byte database",
        files.db.len()
    );
    Ok(())
}

fn cases() -> u32 {
    std::env::var("TANDEM_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128)
}

#[test]
fn undamaged_copies_load_everything() {
    for (files, stores) in [(closed(), 1), (with_wal(), 2)] {
        let (dir, _) = state_dir(files);
        let loaded = load(dir.path()).unwrap();
        assert_eq!(
            loaded,
            Loaded {
                baseline: BASELINE_ROWS * stores,
                // Conflicts are recorded by path; every fill uses new ones.
                conflicts: CONFLICTS * stores,
                last_run: Some(format!("run {}: in sync", (stores - 1) * 10_000 + RUNS - 1)),
                journal: JOURNAL_RECORDS * stores,
            }
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn a_damaged_database_loads_or_fails_naming_the_file(d in damage()) {
        let mut files = closed().clone();
        apply(&d, &mut files.db);
        check_damaged(&files)?;
    }

    #[test]
    fn a_damaged_write_ahead_log_loads_or_fails_naming_the_file(
        d in damage(),
        in_log in prop::bool::weighted(0.75),
    ) {
        let mut files = with_wal().clone();
        match (in_log, files.wal.as_mut()) {
            (true, Some(wal)) => apply(&d, wal),
            _ => apply(&d, &mut files.db),
        }
        check_damaged(&files)?;
    }
}

// ---- regression tests: failures found by the properties above --------------------------------

/// A database cut short next to a write-ahead log full of committed transactions (a crash of
/// the file system, a copy taken while tandem ran) is refused as damaged; the refusal says
/// the file was left untouched, and closing the connection must then not checkpoint the
/// log into it (nor delete the log): whoever recovers it needs both as they were.
#[test]
fn issue_20_a_refused_database_and_its_write_ahead_log_are_left_untouched() {
    let mut files = with_wal().clone();
    files.db.truncate(2 * PAGE);
    let (dir, db) = state_dir(&files);
    let err = load(dir.path()).err().unwrap();
    assert!(
        matches!(err, StateError::Corrupt { .. } | StateError::Foreign { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("left untouched"), "{err}");
    assert!(
        std::fs::read(&db).unwrap() == files.db,
        "{} was changed",
        db.display()
    );
    let wal = std::fs::read(dir.path().join(format!("{DB_FILE}-wal"))).ok();
    assert!(
        wal == files.wal,
        "the write-ahead log was changed or removed"
    );
}

/// A tandem database that fails SQLite's integrity check is tandem's, damaged: the message
/// must say so (and how to start over), not call it someone else's file and send the user to
/// another --state-dir.
#[test]
fn issue_20_a_damaged_tandem_database_is_called_damaged_not_foreign() {
    let mut files = closed().clone();
    let middle = files.db.len() / PAGE / 2 * PAGE;
    files.db[middle..middle + PAGE].fill(0);
    let (dir, db) = state_dir(&files);
    let err = Store::open(dir.path(), &pair()).err().unwrap();
    let said = err.to_string();
    assert!(matches!(err, StateError::Corrupt { .. }), "{said}");
    assert!(said.contains(&db.display().to_string()), "{said}");
    assert!(!said.contains("not a tandem state database"), "{said}");
    assert!(said.contains("to start over, `tandem forget"), "{said}");
}
