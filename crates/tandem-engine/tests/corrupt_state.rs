//! A sync over a damaged state (issue 20). A pair is synced, its `state.db` is damaged
//! (bytes flipped in the file, or baseline fields set to garbage that SQLite's integrity
//! check cannot see: a wrong kind, a negative size, a hash of the wrong length, a path that
//! is not a path), both sides are edited, and the pair is synced again. The sync must not
//! panic; it either refuses the state with an error naming the file, changing nothing, or
//! runs, and then no version present on either side before it is lost (a wrong baseline
//! makes sides look changed, which leads to conflicts, never to a silent overwrite) and a
//! clean run leaves both trees equal.
//!
//! `TANDEM_FUZZ_CASES` sets the number of cases (default 64).

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::Index;
use tandem_engine::{sync, EngineError, Report, SyncSpec};

const FILES: usize = 24;
const PAGE: usize = 4096;
const DB: &str = "state.db";

#[derive(Clone, Debug)]
enum Garbage {
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
    Null,
}

#[derive(Clone, Debug)]
enum Damage {
    /// Bytes of the file XORed with a non-zero mask.
    Flip(Vec<(Index, u8)>),
    /// One field of one baseline row set to a value of any type.
    Field(Index, Index, Garbage),
}

#[derive(Clone, Copy, Debug)]
enum Edit {
    Write,
    Delete,
}

#[derive(Clone, Debug)]
struct Case {
    damage: Vec<Damage>,
    /// (on the target?, file, edit)
    edits: Vec<(bool, Index, Edit)>,
}

fn garbage() -> impl Strategy<Value = Garbage> {
    prop_oneof![
        prop_oneof![
            Just(-1i64),
            Just(0),
            Just(7),
            Just(i64::MIN),
            Just(i64::MAX),
            any::<i64>()
        ]
        .prop_map(Garbage::Int),
        "[a-z/.\\\\]{0,12}".prop_map(Garbage::Text),
        prop::collection::vec(any::<u8>(), 0..48).prop_map(Garbage::Blob),
        Just(Garbage::Null),
    ]
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        1 => prop::collection::vec((any::<Index>(), 1..=255u8), 1..6).prop_map(Damage::Flip),
        3 => (any::<Index>(), any::<Index>(), garbage())
            .prop_map(|(row, col, g)| Damage::Field(row, col, g)),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let edit = prop_oneof![3 => Just(Edit::Write), 1 => Just(Edit::Delete)];
    (
        prop::collection::vec(damage(), 1..4),
        prop::collection::vec((any::<bool>(), any::<Index>(), edit), 0..8),
    )
        .prop_map(|(damage, edits)| Case { damage, edits })
}

const COLUMNS: [&str; 11] = [
    "path",
    "kind",
    "size",
    "hash",
    "link",
    "src_ino",
    "src_mtime",
    "src_mode",
    "tgt_ino",
    "tgt_mtime",
    "tgt_mode",
];

/// Sets one column of one baseline row to garbage of any type.
fn damage_field(
    db: &Path,
    row: &proptest::sample::Index,
    col: &proptest::sample::Index,
    g: &Garbage,
) -> rusqlite::Result<()> {
    let c = rusqlite::Connection::open(db)?;
    // Any type: an earlier damage may have made a path a number.
    let paths: Vec<rusqlite::types::Value> = c
        .prepare("SELECT path FROM baseline ORDER BY path")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if paths.is_empty() {
        return Ok(());
    }
    let path = &paths[row.index(paths.len())];
    let col = COLUMNS[col.index(COLUMNS.len())];
    let sql = format!("UPDATE baseline SET {col} = ?1 WHERE path = ?2");
    let value = match g {
        Garbage::Int(i) => rusqlite::types::Value::Integer(*i),
        Garbage::Text(t) => rusqlite::types::Value::Text(t.clone()),
        Garbage::Blob(b) => rusqlite::types::Value::Blob(b.clone()),
        Garbage::Null => rusqlite::types::Value::Null,
    };
    // A NOT NULL column refusing a null, or a path taken: no damage this time.
    let _ = c.execute(&sql, rusqlite::params![value, path]);
    Ok(())
}

fn apply_damage(db: &Path, damage: &[Damage]) {
    for d in damage {
        match d {
            Damage::Flip(flips) => {
                let mut bytes = fs::read(db).unwrap();
                // Past the file header: the pages that hold rows.
                let len = bytes.len() - PAGE;
                for (at, mask) in flips {
                    bytes[PAGE + at.index(len)] ^= mask;
                }
                fs::write(db, bytes).unwrap();
            }
            Damage::Field(row, col, g) => {
                // A database an earlier flip made unreadable takes no field edit: no damage
                // this time (the flip is damage enough).
                let _ = damage_field(db, row, col, g);
            }
        }
    }
}

struct Pair {
    _dirs: [tempfile::TempDir; 3],
    spec: SyncSpec,
}

impl Pair {
    fn new() -> Pair {
        let dirs = [(); 3].map(|_| tempfile::tempdir().unwrap());
        let spec = SyncSpec {
            max_delete_percent: 100,
            threads: 2,
            ..SyncSpec::new(
                fs::canonicalize(dirs[0].path()).unwrap(),
                fs::canonicalize(dirs[1].path()).unwrap(),
                dirs[2].path().to_path_buf(),
            )
        };
        Pair { _dirs: dirs, spec }
    }

    fn db(&self) -> PathBuf {
        self.spec.state_dir.join(DB)
    }

    fn sync(&self) -> Result<Report, EngineError> {
        sync(&self.spec, &|_| {})
    }
}

fn file(i: usize) -> String {
    format!("d{}/f{i}.txt", i % 3)
}

/// Every regular file below `root` (trash and conflict copies included), by path; none if
/// there is no `root`.
fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo: Vec<PathBuf> = root
        .exists()
        .then(|| root.to_path_buf())
        .into_iter()
        .collect();
    while let Some(dir) = todo.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                todo.push(e.path());
            } else if t.is_file() {
                let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

fn versions(p: &Pair) -> BTreeSet<Vec<u8>> {
    let mut all: BTreeSet<Vec<u8>> = files(&p.spec.src).into_values().collect();
    all.extend(files(&p.spec.tgt).into_values());
    all
}

/// The synced trees, without tandem's own folder.
fn trees(p: &Pair) -> [BTreeMap<PathBuf, Vec<u8>>; 2] {
    [&p.spec.src, &p.spec.tgt].map(|root| {
        let mut t = files(root);
        t.retain(|path, _| !path.starts_with(".tandem"));
        t
    })
}

fn check(case: &Case) -> Result<(), TestCaseError> {
    let p = Pair::new();
    for i in 0..FILES {
        let path = p.spec.src.join(file(i));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, format!("base {i}\n")).unwrap();
    }
    let first = p.sync().unwrap();
    prop_assert_eq!(first.exit_code(), 0);
    apply_damage(&p.db(), &case.damage);
    for (n, (on_tgt, i, edit)) in case.edits.iter().enumerate() {
        let i = i.index(FILES);
        let root = if *on_tgt { &p.spec.tgt } else { &p.spec.src };
        let path = root.join(file(i));
        match edit {
            Edit::Write => fs::write(&path, format!("edit {n} of {i} on {on_tgt}\n")).unwrap(),
            Edit::Delete => {
                let _ = fs::remove_file(&path);
            }
        }
    }
    let before = versions(&p);
    let trees_before = trees(&p);
    let db_before = fs::read(p.db()).unwrap();
    match p.sync() {
        Err(e) => {
            let said = e.to_string();
            prop_assert!(matches!(e, EngineError::State(_)), "{}", said);
            prop_assert!(said.contains(&p.db().display().to_string()), "{}", said);
            prop_assert!(trees(&p) == trees_before, "a refused sync changed a side");
            if said.contains("left untouched") {
                prop_assert!(
                    fs::read(p.db()).unwrap() == db_before,
                    "{} was changed",
                    said
                );
            }
        }
        Ok(r) => {
            let mut after: BTreeSet<Vec<u8>> = versions(&p);
            after.extend(files(&p.spec.src.join(".tandem")).into_values());
            after.extend(files(&p.spec.tgt.join(".tandem")).into_values());
            let lost: Vec<String> = before
                .difference(&after)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect();
            prop_assert!(
                lost.is_empty(),
                "versions lost: {:?}\nreport: {:#?}",
                lost,
                r
            );
            let clean = r.failed.is_empty()
                && r.skipped.is_empty()
                && r.halted.is_none()
                && r.stopped.is_none();
            if clean {
                let [s, t] = trees(&p);
                prop_assert!(s == t, "the trees differ after a clean sync: {:#?}", r);
            }
        }
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("TANDEM_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn a_sync_over_a_damaged_state_loses_nothing(case in case()) {
        check(&case)?;
    }
}
