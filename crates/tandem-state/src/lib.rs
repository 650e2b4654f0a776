//! tandem's state: one SQLite file per pair of roots.
//!
//! Owns the schema and its migrations, the baseline (the last state both sides agreed on),
//! recorded conflicts, run history and the per-pair lock. It never looks at the synced
//! folders: the engine tells it what was done, after it was done (invariant 4), and it
//! writes that in one transaction. A database it did not create is refused, never reset.

mod changes;
mod held;
mod home;
mod journal;
mod known;
mod lock;
mod programs;
mod schema;
mod sys;
mod versions;

pub use home::{config_home, state_home};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use tandem_core::{BaseEntry, BaseTree, Hash, Kind, Owner, RelPath, Seen, Side};

pub use changes::{By, ChangeQuery, ChangeScan};
pub use held::{Held, HeldAction};
pub use journal::{JournalWriter, Mark, Record, JOURNAL_MAX_RECORDS};
pub use known::{forget, known_pairs, read_pair, Forgotten, KnownPair};
pub use lock::{try_lock_file, Lock};
pub use versions::{HistoryUsage, VersionRow};

/// What a remote side's trash held after its last prune ([`Store::far_trash`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FarTrash {
    pub versions: u64,
    pub bytes: u64,
    /// When it was counted (ns since the epoch).
    pub at_ns: i64,
}

/// The `meta` key of [`FarTrash`].
const FAR_TRASH: &str = "far_trash";

pub const DB_FILE: &str = "state.db";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create the state directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a tandem state database ({why}); it was left untouched. Move it away or choose another --state-dir", path.display())]
    Foreign { path: PathBuf, why: String },
    #[error("{} is corrupted or unreadable: {source}. It was left untouched; to start over, `tandem forget SRC TGT` removes it and the pair's markers (the next sync then treats both sides as new)", path.display())]
    Corrupt {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{} is empty (0 bytes): the record of the last sync is gone, and syncing this pair as new could bring deleted files back. It was left untouched; to start over, `tandem forget SRC TGT` removes it and the pair's markers (the next sync then treats both sides as new)", path.display())]
    Empty { path: PathBuf },
    #[error("{} cannot be read: {source}. It was left untouched", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is missing, but its write-ahead log {}-wal is not (a database moved away or lost without it); SQLite would replay that log into a new store. It was left untouched; move it away too to start over", path.display(), path.display())]
    Orphaned { path: PathBuf },
    #[error("state file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} belongs to another pair ({stored_src} <-> {stored_tgt}); use another --state-dir", path.display())]
    OtherPair {
        path: PathBuf,
        stored_src: String,
        stored_tgt: String,
    },
    #[error("{} was written by a newer tandem (schema {found}, this one knows {known})", path.display())]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("another tandem is already working on this pair (lock {}{})", path.display(), pid.map(|p| format!(", pid {p}")).unwrap_or_default())]
    Locked { path: PathBuf, pid: Option<u32> },
    #[error("lock file {}: {source}", path.display())]
    LockIo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot remove {}: {source}", path.display())]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state database {}: {source}", path.display())]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// SQLite's error with the system error behind it: SQLite says "disk I/O error" for an
    /// I/O error, a read-only disk and a refused permission alike.
    #[error("state database {}: {source} ({os})", path.display())]
    SqlOs {
        path: PathBuf,
        source: rusqlite::Error,
        os: std::io::Error,
    },
}

/// Commits `tx`, naming the system error when the commit fails (the transaction is
/// consumed: the error is read from the connection it borrowed, which outlives it).
fn commit(tx: rusqlite::Transaction<'_>, path: &Path) -> Result<()> {
    let conn: *const Connection = &*tx;
    tx.commit().map_err(|source| {
        // SAFETY: `conn` points at the connection the transaction borrowed, alive after it.
        sql_error(unsafe { &*conn }, path, source)
    })
}

/// Whether SQLite failed because of the disk (an I/O error, a full, read-only or refused
/// file), not because of what the file holds.
fn from_the_disk(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(
            rusqlite::ErrorCode::SystemIoFailure
                | rusqlite::ErrorCode::DiskFull
                | rusqlite::ErrorCode::CannotOpen
                | rusqlite::ErrorCode::ReadOnly
                | rusqlite::ErrorCode::PermissionDenied
        )
    )
}

/// A state file that could not be read: a disk error is named as such, with the system
/// error (read again from the file when SQLite kept none: a check reports its failures as
/// text, an open keeps no connection), never called damaged; anything else is.
pub(crate) fn unreadable(
    conn: Option<&Connection>,
    path: &Path,
    source: rusqlite::Error,
) -> StateError {
    if !from_the_disk(&source) {
        return StateError::Corrupt {
            path: path.to_path_buf(),
            source,
        };
    }
    let e = match conn {
        Some(c) => sql_error(c, path, source),
        None => StateError::Sql {
            path: path.to_path_buf(),
            source,
        },
    };
    match e {
        StateError::Sql { path, source } => {
            let read = std::fs::File::open(&path)
                .and_then(|mut f| std::io::copy(&mut f, &mut std::io::sink()));
            match read {
                Err(os) => StateError::SqlOs { path, source, os },
                Ok(_) => StateError::Sql { path, source },
            }
        }
        other => other,
    }
}

/// The I/O error code of a page `quick_check` could not read ("unable to get the page.
/// error code=266"): the disk failed, the file may be whole.
fn disk_failure_in_check(report: &str) -> Option<i32> {
    report
        .split("error code=")
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<i32>().ok()
        })
        .find(|code| {
            matches!(
                code & 0xff,
                rusqlite::ffi::SQLITE_IOERR | rusqlite::ffi::SQLITE_FULL
            )
        })
}

/// The error of a failed call on the connection `conn`, with the system error that made it
/// fail when SQLite had one (the state folder's disk failing, full or read-only).
fn sql_error(conn: &Connection, path: &Path, source: rusqlite::Error) -> StateError {
    let path = path.to_path_buf();
    // SAFETY: the handle is the live connection's (borrowed for this call), and
    // sqlite3_system_errno only reads the errno it kept from its last failed system call.
    let errno = if from_the_disk(&source) {
        unsafe { rusqlite::ffi::sqlite3_system_errno(conn.handle()) }
    } else {
        0
    };
    // SQLite answers a write refused with ENOSPC with SQLITE_FULL and keeps no errno.
    let errno = match source.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) if errno == 0 => sys::disk_full_os_error(),
        _ => errno,
    };
    if errno == 0 {
        StateError::Sql { path, source }
    } else {
        StateError::SqlOs {
            path,
            source,
            os: std::io::Error::from_raw_os_error(errno),
        }
    }
}

pub type Result<T> = std::result::Result<T, StateError>;

/// The two roots a store belongs to, as canonical paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    pub src: String,
    pub tgt: String,
}

impl Pair {
    /// A short stable id for the pair, used as the default state folder name.
    pub fn task_id(&self) -> String {
        let mut h = blake3::Hasher::new();
        h.update(self.src.as_bytes());
        h.update(&[0]);
        h.update(self.tgt.as_bytes());
        h.finalize().to_hex()[..16].to_string()
    }
}

/// `state_home()/<task-id>` (`$XDG_STATE_HOME/tandem/<task-id>`).
pub fn default_state_dir(pair: &Pair) -> PathBuf {
    state_home().join(pair.task_id())
}

/// Whether `dir` holds a state file. Only a missing one means a new pair: an empty one
/// (which a store of ours never is, see `create`) or one that cannot be looked at is an
/// error naming it, never a fresh start.
pub fn state_exists(dir: &Path) -> Result<bool> {
    let path = dir.join(DB_FILE);
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if non_empty(&sibling(&path, "-wal")) {
                return Err(StateError::Orphaned { path });
            }
            Ok(false)
        }
        Err(source) => Err(StateError::Unreadable { path, source }),
        // A non-empty write-ahead log may still hold the whole database (a tandem killed
        // before its first checkpoint): SQLite reads it, and `check` refuses what is blank.
        Ok(m) if m.len() == 0 && !non_empty(&sibling(&path, "-wal")) => {
            Err(StateError::Empty { path })
        }
        Ok(_) => Ok(true),
    }
}

/// Makes folder `dir` and whatever of its parents is missing, each flushed into its parent
/// (fsync of the parent): a folder's name is durable only once its parent is, and a power
/// cut after the first commit must not take the whole state folder with it.
pub(crate) fn create_dir_durable(dir: &Path) -> Result<()> {
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StateError::CreateDir { path, source }
    };
    let missing: Vec<&Path> = dir.ancestors().take_while(|p| !p.exists()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(failed(dir))?;
    for made in missing {
        let parent = match made.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        sys::sync_dir(parent).map_err(failed(parent))?;
    }
    Ok(())
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn non_empty(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() > 0)
}

/// Creates the store at `path` complete or not at all: built under a temporary name with
/// its schema, flushed, then renamed into place (the caller holds the pair's lock). A
/// crash meanwhile leaves no empty `state.db`, which the next run would have to refuse.
fn create(path: &Path, pair: &Pair) -> Result<()> {
    let tmp = sibling(path, ".new");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StateError::Io { path, source }
    };
    // What a crash left: its rollback journal must not be replayed into the new file.
    for stale in [tmp.clone(), sibling(&tmp, "-journal")] {
        match std::fs::remove_file(&stale) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&stale)(e)),
            _ => {}
        }
    }
    let conn = Connection::open_with_flags(
        &tmp,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StateError::Sql {
        path: tmp.clone(),
        source,
    })?;
    let mut store = Store {
        conn,
        path: tmp.clone(),
    };
    let r = store.conn.execute_batch("PRAGMA synchronous=FULL;");
    store.sql(r)?;
    store.check(true, true)?;
    store.migrate(0, pair, true)?;
    store
        .conn
        .close()
        .map_err(|(conn, source)| sql_error(&conn, &tmp, source))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    sys::sync_dir(dir).map_err(io(dir))
}

/// A recorded conflict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConflictRow {
    pub id: i64,
    pub path: RelPath,
    pub kind: String,
    pub detected_at: i64,
    pub src_desc: String,
    pub tgt_desc: String,
    /// "kept-both", "won-by-source", "won-by-target", "flagged".
    pub resolution: String,
    pub copy: Option<RelPath>,
    pub loser: Option<Side>,
    pub resolved_at: Option<i64>,
    pub resolved_how: Option<String>,
}

/// A conflict to record.
#[derive(Clone, Debug)]
pub struct NewConflict {
    pub path: RelPath,
    pub kind: String,
    pub src_desc: String,
    pub tgt_desc: String,
    pub resolution: String,
    pub copy: Option<RelPath>,
    pub loser: Option<Side>,
    /// Settled by the policy itself (nothing left for the user to decide).
    pub settled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRow {
    pub id: i64,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub exit_code: Option<i64>,
    pub summary: String,
}

/// A path a run could not sync, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunProblem {
    pub path: RelPath,
    /// `skipped` (left as it is, by design: a special file, a name the side cannot hold)
    /// or `failed` (tried and failed; tried again next time).
    pub what: String,
    pub reason: String,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens the store in `dir` for `pair`, creating it when there is none (the caller
    /// holds the pair's lock). Only a missing state file means a new pair: an empty or
    /// unreadable one is an error, never a fresh start.
    pub fn open(dir: &Path, pair: &Pair) -> Result<Store> {
        create_dir_durable(dir)?;
        let path = dir.join(DB_FILE);
        if !state_exists(dir)? {
            create(&path, pair)?;
        }
        let mut store = Store::connect(&path)?;
        store.check_and_migrate(false, pair)?;
        Ok(store)
    }

    /// A store that lives in memory only (dry runs with no state yet).
    pub fn in_memory(pair: &Pair) -> Result<Store> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| StateError::Corrupt {
            path: path.clone(),
            source,
        })?;
        let mut store = Store { conn, path };
        store.check_and_migrate(true, pair)?;
        Ok(store)
    }

    /// Opens an existing store to list what its journal holds (`tandem changes`): as
    /// `open_existing`, without reading the whole file through first (`PRAGMA
    /// quick_check` takes longer than the listing on a journal of a million records; a
    /// damaged page the listing reads is still an error).
    pub fn open_to_list(dir: &Path, pair: &Pair) -> Result<Option<Store>> {
        if !state_exists(dir)? {
            return Ok(None);
        }
        let mut store = Store::connect(&dir.join(DB_FILE))?;
        store.check_and_migrate_as(false, pair, false)?;
        Ok(Some(store))
    }

    /// Opens an existing store read-only-ish for listing (`conflicts`, `status`): `None`
    /// if there is none.
    pub fn open_existing(dir: &Path, pair: &Pair) -> Result<Option<Store>> {
        if !state_exists(dir)? {
            return Ok(None);
        }
        Store::open(dir, pair).map(Some)
    }

    /// A connection to the existing database at `path`; never creates one (SQLite would
    /// create a missing file and take an empty one for a new database).
    fn connect(path: &Path) -> Result<Store> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| unreadable(None, path, source))?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A value kept with the pair under `key` (the task layer keeps the id of the
    /// markers it writes in both roots under `marker`).
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        let r = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional();
        self.sql(r)
    }

    /// Sets a value kept with the pair (the caller holds the pair's lock).
    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        let r = self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        );
        self.sql(r).map(|_| ())
    }

    /// Records what a remote side's trash held after its last prune (`at_ns`): `status`
    /// shows it without reaching the other machine.
    pub fn record_far_trash(&self, far: FarTrash) -> Result<()> {
        let value = format!("{} {} {}", far.versions, far.bytes, far.at_ns);
        self.set_meta(FAR_TRASH, &value)
    }

    /// What a remote side's trash held after its last prune, if one was recorded.
    pub fn far_trash(&self) -> Result<Option<FarTrash>> {
        let Some(value) = self.meta(FAR_TRASH)? else {
            return Ok(None);
        };
        let mut n = value.split(' ').map(str::parse::<i64>);
        Ok(match (n.next(), n.next(), n.next()) {
            (Some(Ok(v)), Some(Ok(b)), Some(Ok(at))) => Some(FarTrash {
                versions: v.max(0) as u64,
                bytes: b.max(0) as u64,
                at_ns: at,
            }),
            // Not written by `record_far_trash`: as if never recorded.
            _ => None,
        })
    }

    /// The pair's folders were moved: the store now belongs to `pair` (the caller holds
    /// the pair's lock, and moves the state directory to the new pair's).
    pub fn repoint(&self, pair: &Pair) -> Result<()> {
        self.set_meta("source", &pair.src)?;
        self.set_meta("target", &pair.tgt)
    }

    fn sql<T>(&self, r: rusqlite::Result<T>) -> Result<T> {
        r.map_err(|source| sql_error(&self.conn, &self.path, source))
    }

    fn check_and_migrate(&mut self, fresh: bool, pair: &Pair) -> Result<()> {
        self.check_and_migrate_as(fresh, pair, true)
    }

    /// `thorough`: the whole file is checked (`PRAGMA quick_check`) before it is used.
    fn check_and_migrate_as(&mut self, fresh: bool, pair: &Pair, thorough: bool) -> Result<()> {
        let version = self.check(fresh, thorough)?;
        // Known to be ours and whole: closing may checkpoint again.
        let r = self
            .conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, false);
        self.sql(r)?;
        let r = self.conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=10000;",
        );
        self.sql(r)?;
        self.migrate(version, pair, fresh)
    }

    /// Refuses what is not a store of ours (corrupted, foreign, too new, or blank when it
    /// should not be); returns the schema version found.
    fn check(&self, fresh: bool, thorough: bool) -> Result<i64> {
        let path = self.path.clone();
        // A disk that fails while the file is read is not a damaged file: the file is
        // named with the system error, never sent to `tandem forget`.
        let corrupt = |source: rusqlite::Error| unreadable(Some(&self.conn), &path, source);
        // Until the file is known to be ours, whole and not too new, closing the connection
        // must not checkpoint a write-ahead log into it (nor delete the log): a refused file
        // is left as it was, for whoever recovers it.
        self.conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(corrupt)?;
        // Any read fails on a file that is not SQLite at all.
        let app_id: i64 = self
            .conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(corrupt)?;
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(corrupt)?;
        let tables: i64 = self
            .conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(corrupt)?;
        let blank = app_id == 0 && tables == 0 && version == 0;
        if blank && !fresh {
            // SQLite opens an empty file as an empty database; a store is created complete
            // (`create`), so an existing one that is blank lost its content.
            return Err(StateError::Empty {
                path: self.path.clone(),
            });
        }
        if app_id != schema::APPLICATION_ID {
            if !blank {
                return Err(StateError::Foreign {
                    path: self.path.clone(),
                    why: format!("application id {app_id:#x}, {tables} tables"),
                });
            }
        } else if thorough {
            let ok: String = self
                .conn
                .query_row("PRAGMA quick_check", [], |r| r.get(0))
                .map_err(corrupt)?;
            if let Some(code) = disk_failure_in_check(&ok) {
                let why = format!("the disk failed while it was checked ({ok})");
                let source =
                    rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some(why));
                // The check reports the failure as text, without its system error.
                return Err(unreadable(None, &path, source));
            }
            if ok != "ok" {
                // Ours, but damaged: not someone else's file.
                let code = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT);
                let why = format!("integrity check: {ok}");
                return Err(corrupt(rusqlite::Error::SqliteFailure(code, Some(why))));
            }
        }
        if version > schema::VERSION {
            return Err(StateError::TooNew {
                path: self.path.clone(),
                found: version,
                known: schema::VERSION,
            });
        }
        Ok(version)
    }

    /// Brings the schema to this version and checks that the store belongs to `pair`.
    fn migrate(&mut self, version: i64, pair: &Pair, fresh: bool) -> Result<()> {
        let path = self.path.clone();
        let tx = self.conn.transaction();
        let tx = tx.map_err(|source| StateError::Sql {
            path: path.clone(),
            source,
        })?;
        let r = schema::migrate(&tx, version, pair, fresh);
        r.map_err(|source| sql_error(&tx, &path, source))?;
        let stored: (String, String) = tx
            .query_row(
                "SELECT (SELECT value FROM meta WHERE key='source'), (SELECT value FROM meta WHERE key='target')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|source| sql_error(&tx, &path, source))?;
        if stored.0 != pair.src || stored.1 != pair.tgt {
            return Err(StateError::OtherPair {
                path: path.clone(),
                stored_src: stored.0,
                stored_tgt: stored.1,
            });
        }
        commit(tx, &path)
    }

    pub fn load_baseline(&self) -> Result<BaseTree> {
        let mut out = BTreeMap::new();
        self.each_baseline(|path, entry| {
            out.insert(path, entry);
        })?;
        Ok(out)
    }

    /// Hands every baseline entry to `visit`, in path order (bytewise, as `RelPath`
    /// sorts: the table's key order, no sort), one row at a time: a cursor for the
    /// streaming merge, which keeps only what it needs of the baseline.
    pub fn each_baseline(&self, mut visit: impl FnMut(RelPath, BaseEntry)) -> Result<()> {
        let mut stmt = self.sql(self.conn.prepare(
            "SELECT path, kind, size, hash, link, src_ino, src_mtime, src_mode, tgt_ino, tgt_mtime, tgt_mode, src_uid, src_gid, tgt_uid, tgt_gid, src_xattrs, tgt_xattrs FROM baseline ORDER BY path",
        ))?;
        let rows = stmt.query_map([], base_from_row);
        let rows = rows.map_err(|source| StateError::Sql {
            path: self.path.clone(),
            source,
        })?;
        for row in rows {
            let (path, entry) = row.map_err(|source| StateError::Sql {
                path: self.path.clone(),
                source,
            })?;
            let Ok(path) = RelPath::new(path) else {
                continue;
            };
            visit(path, entry);
        }
        Ok(())
    }

    /// The baseline entries at `paths`, below those whose flag says so, and at their parent
    /// directories.
    pub fn load_baseline_scoped(&self, paths: &[(RelPath, bool)]) -> Result<BaseTree> {
        let mut out = BaseTree::new();
        let mut stmt = self.sql(self.conn.prepare_cached(
            "SELECT path, kind, size, hash, link, src_ino, src_mtime, src_mode, tgt_ino, tgt_mtime, tgt_mode, src_uid, src_gid, tgt_uid, tgt_gid, src_xattrs, tgt_xattrs FROM baseline WHERE path = ?1 OR (?2 AND path >= ?3 AND path < ?4)",
        ))?;
        let mut wanted: Vec<(RelPath, bool)> = Vec::new();
        for (p, below) in paths {
            wanted.push((p.clone(), *below));
            let mut anc = p.parent();
            while let Some(a) = anc {
                if a.is_root() {
                    break;
                }
                anc = a.parent();
                wanted.push((a, false));
            }
        }
        wanted.sort();
        wanted.dedup();
        for (p, below) in wanted {
            let (lo, hi) = p.subtree_range();
            let rows = stmt
                .query_map(
                    params![p.as_bytes(), below, lo.as_bytes(), hi.as_bytes()],
                    base_from_row,
                )
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>());
            for (path, entry) in self.sql(rows)? {
                if let Ok(path) = RelPath::new(path) {
                    out.insert(path, entry);
                }
            }
        }
        Ok(out)
    }

    /// `--hard-links`: the baseline paths whose file on `side` had one of the inode numbers
    /// `inos` (the other names of a file written through one). Reads the whole table (no
    /// index on inodes): called only for files that have more than one name.
    pub fn paths_with_inos(&self, side: Side, inos: &[u64]) -> Result<Vec<RelPath>> {
        let column = match side {
            Side::Source => "src_ino",
            Side::Target => "tgt_ino",
        };
        let mut out = Vec::new();
        for chunk in inos.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!("SELECT path FROM baseline WHERE {column} IN ({marks})");
            let mut stmt = self.sql(self.conn.prepare(&sql))?;
            let rows = stmt
                .query_map(
                    rusqlite::params_from_iter(chunk.iter().map(|i| *i as i64)),
                    |r| r.get::<_, Vec<u8>>(0),
                )
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>());
            out.extend(
                self.sql(rows)?
                    .into_iter()
                    .filter_map(|p| RelPath::new(p).ok()),
            );
        }
        Ok(out)
    }

    pub fn baseline_len(&self) -> Result<u64> {
        let n: i64 = self.sql(
            self.conn
                .query_row("SELECT count(*) FROM baseline", [], |r| r.get(0)),
        )?;
        Ok(n as u64)
    }

    /// A batch of baseline and conflict changes, committed together.
    pub fn batch(&mut self) -> Result<Batch<'_>> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|source| StateError::Sql {
            path: path.clone(),
            source,
        })?;
        Ok(Batch { tx, path })
    }

    pub fn conflicts(&self, include_resolved: bool) -> Result<Vec<ConflictRow>> {
        let sql = if include_resolved {
            "SELECT id, path, kind, detected_at, src_desc, tgt_desc, resolution, copy_path, loser, resolved_at, resolved_how FROM conflicts ORDER BY path, id"
        } else {
            "SELECT id, path, kind, detected_at, src_desc, tgt_desc, resolution, copy_path, loser, resolved_at, resolved_how FROM conflicts WHERE resolved_at IS NULL ORDER BY path, id"
        };
        let mut stmt = self.sql(self.conn.prepare(sql))?;
        let rows = stmt
            .query_map([], conflict_from_row)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>());
        self.sql(rows)
    }

    pub fn unresolved_conflict(&self, path: &RelPath) -> Result<Option<ConflictRow>> {
        let r = self
            .conn
            .query_row(
                "SELECT id, path, kind, detected_at, src_desc, tgt_desc, resolution, copy_path, loser, resolved_at, resolved_how FROM conflicts WHERE resolved_at IS NULL AND path = ?1 ORDER BY id DESC LIMIT 1",
                [path.as_bytes()],
                conflict_from_row,
            )
            .optional();
        self.sql(r)
    }

    pub fn begin_run(&mut self, now: i64) -> Result<i64> {
        let r = self
            .conn
            .execute("INSERT INTO runs(started_at) VALUES (?1)", [now]);
        self.sql(r)?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn finish_run(&mut self, id: i64, now: i64, exit_code: i32, summary: &str) -> Result<()> {
        let r = self.conn.execute(
            "UPDATE runs SET finished_at = ?2, exit_code = ?3, summary = ?4 WHERE id = ?1",
            params![id, now, exit_code, summary],
        );
        self.sql(r).map(|_| ())
    }

    /// Records the paths run `id` skipped or failed. Only the latest run's list is kept
    /// (it is what `status` shows; a mount records a run per pass).
    pub fn set_run_problems(&mut self, id: i64, problems: &[RunProblem]) -> Result<()> {
        let r = (|| {
            let tx = self.conn.transaction()?;
            tx.execute("DELETE FROM run_problems WHERE run <= ?1", [id])?;
            {
                let mut ins = tx.prepare(
                    "INSERT INTO run_problems(run, path, what, reason) VALUES (?1, ?2, ?3, ?4)",
                )?;
                for p in problems {
                    ins.execute(params![id, p.path.as_bytes(), p.what, p.reason])?;
                }
            }
            tx.commit()
        })();
        self.sql(r)
    }

    /// The paths run `id` skipped or failed, in the order recorded.
    pub fn run_problems(&self, id: i64) -> Result<Vec<RunProblem>> {
        let r = (|| {
            let mut q = self.conn.prepare(
                "SELECT path, what, reason FROM run_problems WHERE run = ?1 ORDER BY rowid",
            )?;
            let rows = q.query_map([id], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get(1)?, r.get(2)?))
            })?;
            rows.filter_map(|row| match row {
                Ok((path, what, reason)) => RelPath::new(path)
                    .ok()
                    .map(|path| Ok(RunProblem { path, what, reason })),
                Err(e) => Some(Err(e)),
            })
            .collect()
        })();
        self.sql(r)
    }

    pub fn last_run(&self) -> Result<Option<RunRow>> {
        let r = self
            .conn
            .query_row(
                "SELECT id, started_at, finished_at, exit_code, coalesce(summary, '') FROM runs ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok(RunRow { id: r.get(0)?, started_at: r.get(1)?, finished_at: r.get(2)?, exit_code: r.get(3)?, summary: r.get(4)? }),
            )
            .optional();
        self.sql(r)
    }
}

type BaseRow = (Vec<u8>, BaseEntry);

fn base_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BaseRow> {
    let path: Vec<u8> = r.get(0)?;
    let kind: i64 = r.get(1)?;
    let hash: Option<Vec<u8>> = r.get(3)?;
    // Columns `at..at + 3` hold ino, mtime and mode; `extra..extra + 2` uid and gid;
    // `digest` the xattr digest.
    let seen = |at: usize, extra: usize, digest: usize| -> rusqlite::Result<Seen> {
        let uid: Option<u32> = r.get(extra)?;
        let gid: Option<u32> = r.get(extra + 1)?;
        let xattrs: Option<Vec<u8>> = r.get(digest)?;
        Ok(Seen {
            ino: r.get::<_, i64>(at)? as u64,
            mtime: r.get(at + 1)?,
            mode: r.get::<_, i64>(at + 2)? as u32,
            owner: uid.zip(gid).map(|(uid, gid)| Owner { uid, gid }),
            xattrs: xattrs.as_deref().and_then(hash_of),
        })
    };
    Ok((
        path,
        BaseEntry {
            kind: kind_from_code(kind),
            size: r.get::<_, i64>(2)? as u64,
            hash: hash.as_deref().and_then(hash_of),
            link: r.get(4)?,
            src: seen(5, 11, 15)?,
            tgt: seen(8, 13, 16)?,
        },
    ))
}

fn hash_of(bytes: &[u8]) -> Option<Hash> {
    <[u8; 32]>::try_from(bytes).ok().map(Hash)
}

fn conflict_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ConflictRow> {
    let path: Vec<u8> = r.get(1)?;
    let copy: Option<Vec<u8>> = r.get(7)?;
    let loser: Option<String> = r.get(8)?;
    Ok(ConflictRow {
        id: r.get(0)?,
        path: RelPath::new(path).unwrap_or_default(),
        kind: r.get(2)?,
        detected_at: r.get(3)?,
        src_desc: r.get(4)?,
        tgt_desc: r.get(5)?,
        resolution: r.get(6)?,
        copy: copy.and_then(|c| RelPath::new(c).ok()),
        loser: loser.and_then(|l| match l.as_str() {
            "source" => Some(Side::Source),
            "target" => Some(Side::Target),
            _ => None,
        }),
        resolved_at: r.get(9)?,
        resolved_how: r.get(10)?,
    })
}

fn kind_code(kind: &Kind) -> i64 {
    match kind {
        Kind::File => 1,
        Kind::Dir => 2,
        Kind::Symlink => 3,
        _ => 0,
    }
}

fn kind_from_code(code: i64) -> Kind {
    match code {
        1 => Kind::File,
        2 => Kind::Dir,
        3 => Kind::Symlink,
        _ => Kind::Problem("unknown kind in baseline".into()),
    }
}

/// Baseline and conflict changes in one transaction (invariant 4: written after the
/// actions they describe are durable, committed together).
pub struct Batch<'a> {
    tx: rusqlite::Transaction<'a>,
    path: PathBuf,
}

impl Batch<'_> {
    fn sql<T>(&self, r: rusqlite::Result<T>) -> Result<T> {
        r.map_err(|source| sql_error(&self.tx, &self.path, source))
    }

    /// Runs one statement, prepared once per connection (a pass writes thousands of rows
    /// with the same few statements).
    fn run(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.tx.prepare_cached(sql)?.execute(params)
    }

    pub fn put(&self, path: &RelPath, e: &BaseEntry) -> Result<()> {
        let r = self.run(
            "INSERT OR REPLACE INTO baseline(path, kind, size, hash, link, src_ino, src_mtime, src_mode, tgt_ino, tgt_mtime, tgt_mode, src_uid, src_gid, tgt_uid, tgt_gid, src_xattrs, tgt_xattrs) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            params![
                path.as_bytes(),
                kind_code(&e.kind),
                e.size as i64,
                e.hash.map(|h| h.0.to_vec()),
                e.link,
                e.src.ino as i64,
                e.src.mtime,
                e.src.mode as i64,
                e.tgt.ino as i64,
                e.tgt.mtime,
                e.tgt.mode as i64,
                e.src.owner.map(|o| o.uid),
                e.src.owner.map(|o| o.gid),
                e.tgt.owner.map(|o| o.uid),
                e.tgt.owner.map(|o| o.gid),
                e.src.xattrs.map(|h| h.0.to_vec()),
                e.tgt.xattrs.map(|h| h.0.to_vec())
            ],
        );
        self.sql(r).map(|_| ())
    }

    /// Removes the entry at `path` and everything below it.
    pub fn remove_tree(&self, path: &RelPath) -> Result<()> {
        let (lo, hi) = path.subtree_range();
        let r = self.run(
            "DELETE FROM baseline WHERE path = ?1 OR (path >= ?2 AND path < ?3)",
            params![path.as_bytes(), lo.as_bytes(), hi.as_bytes()],
        );
        self.sql(r).map(|_| ())
    }

    /// Moves the entries at `from` and below to `to` (a rename replayed on one side), and
    /// sets that side's inode for the moved root.
    pub fn move_tree(&self, from: &RelPath, to: &RelPath) -> Result<()> {
        let (lo, hi) = from.subtree_range();
        let r = self.run(
            "UPDATE OR REPLACE baseline SET path = CAST(?2 || substr(path, ?3) AS BLOB) WHERE path = ?1 OR (path >= ?4 AND path < ?5)",
            params![from.as_bytes(), to.as_bytes(), from.as_bytes().len() as i64 + 1, lo.as_bytes(), hi.as_bytes()],
        );
        self.sql(r).map(|_| ())
    }

    pub fn add_conflict(&self, c: &NewConflict, now: i64) -> Result<()> {
        // One open record per path: a conflict flagged again on the next run is the same one.
        let r = self.run(
            "DELETE FROM conflicts WHERE path = ?1 AND resolved_at IS NULL AND resolution = 'flagged'",
            [c.path.as_bytes()],
        );
        self.sql(r)?;
        let r = self.run(
            "INSERT INTO conflicts(path, kind, detected_at, src_desc, tgt_desc, resolution, copy_path, loser, resolved_at, resolved_how) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                c.path.as_bytes(),
                c.kind,
                now,
                c.src_desc,
                c.tgt_desc,
                c.resolution,
                c.copy.as_ref().map(|p| p.as_bytes().to_vec()),
                c.loser.map(|s| s.name()),
                if c.settled { Some(now) } else { None },
                if c.settled { Some("by policy") } else { None },
            ],
        );
        self.sql(r).map(|_| ())
    }

    pub fn resolve_conflict(&self, id: i64, now: i64, how: &str) -> Result<()> {
        let r = self.run(
            "UPDATE conflicts SET resolved_at = ?2, resolved_how = ?3 WHERE id = ?1",
            params![id, now, how],
        );
        self.sql(r).map(|_| ())
    }

    /// Marks open conflicts at `path` resolved (the sides agree again).
    pub fn settle_conflicts_at(&self, path: &RelPath, now: i64) -> Result<()> {
        let r = self.run(
            "UPDATE conflicts SET resolved_at = ?2, resolved_how = 'sides agree' WHERE path = ?1 AND resolved_at IS NULL AND resolution = 'flagged'",
            params![path.as_bytes(), now],
        );
        self.sql(r).map(|_| ())
    }

    pub fn commit(self) -> Result<()> {
        commit(self.tx, &self.path)
    }
}

#[cfg(test)]
mod tests;
