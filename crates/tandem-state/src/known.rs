//! The pairs this user's tandem knows (every state directory under the state home), and
//! forgetting one.
//!
//! Listing opens each database read-only and never creates or migrates anything, so that
//! `tandem status` cannot turn a damaged state file into a fresh one. Forgetting removes
//! only the files tandem itself writes in a state directory, under the pair's lock, and
//! only when the directory is recognisably tandem's.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::{schema, Lock, Pair, Result, RunRow, StateError, DB_FILE};

/// What a state directory says about its pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownPair {
    pub dir: PathBuf,
    pub pair: Pair,
    pub synced_entries: u64,
    pub open_conflicts: u64,
    /// Deletions a mount's delete brake holds (none in a state made before the brake).
    pub held_deletions: u64,
    /// Of those, the ones made in the target (held from the source); the rest were made
    /// through the mount (held from the target).
    pub held_in_target: u64,
    pub last_run: Option<RunRow>,
}

/// Every state directory under `home` that holds a state database, in name order, each
/// read or with the reason it could not be. Folders without a database (the mount
/// registry, a half-made directory) are not pairs and are left out.
pub fn known_pairs(home: &Path) -> Vec<(PathBuf, Result<KnownPair>)> {
    let Ok(entries) = std::fs::read_dir(home) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|d| d.join(DB_FILE).is_file())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .map(|d| {
            let r = read_pair(&d);
            (d, r)
        })
        .collect()
}

/// Reads one state directory without changing it.
pub fn read_pair(dir: &Path) -> Result<KnownPair> {
    let path = dir.join(DB_FILE);
    let sql = |source| StateError::Sql {
        path: path.clone(),
        source,
    };
    crate::state_exists(dir)?;
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| crate::unreadable(None, &path, source))?;
    let app_id: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|source| crate::unreadable(Some(&conn), &path, source))?;
    if app_id != schema::APPLICATION_ID {
        return Err(StateError::Foreign {
            path,
            why: format!("application id {app_id:#x}"),
        });
    }
    let meta = |key: &str| -> Result<String> {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .map_err(sql)
    };
    let pair = Pair {
        src: meta("source")?,
        tgt: meta("target")?,
    };
    let count = |q: &str| -> Result<u64> {
        conn.query_row(q, [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(sql)
    };
    let synced_entries = count("SELECT count(*) FROM baseline")?;
    let open_conflicts = count("SELECT count(*) FROM conflicts WHERE resolved_at IS NULL")?;
    let held_deletions = count("SELECT count(*) FROM held").unwrap_or(0);
    // No `side` before schema step 8: all were made through the mount.
    let held_in_target = count("SELECT count(*) FROM held WHERE side = 'target'").unwrap_or(0);
    let last_run = conn
        .query_row(
            "SELECT id, started_at, finished_at, exit_code, coalesce(summary, '') FROM runs ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok(RunRow { id: r.get(0)?, started_at: r.get(1)?, finished_at: r.get(2)?, exit_code: r.get(3)?, summary: r.get(4)? }),
        )
        .optional()
        .map_err(sql)?;
    Ok(KnownPair {
        dir: dir.to_path_buf(),
        pair,
        synced_entries,
        open_conflicts,
        held_deletions,
        held_in_target,
        last_run,
    })
}

/// The files tandem writes in a state directory: the database and its WAL, the lock, a
/// mount's log and live status, and a resolve's hold handshake.
const OWN_FILES: &[&str] = &[
    DB_FILE,
    "state.db-wal",
    "state.db-shm",
    "state.db-journal",
    "state.db.new",
    "state.db.new-journal",
    "mount.log",
    "mount-status.json",
    "hold.request",
    "hold.granted",
    "lock",
];

/// What `forget` did: the files it removed, and whether the directory itself went (it
/// stays when it holds files tandem did not write; those are named).
#[derive(Debug, Default)]
pub struct Forgotten {
    pub removed: Vec<PathBuf>,
    pub left: Vec<PathBuf>,
}

/// Removes a pair's state: refused while another tandem holds the pair's lock (a sync or a
/// mount is running), and for a directory whose database is not tandem's. An empty or
/// unreadable database is removed too: forgetting is how a user starts over.
pub fn forget(dir: &Path) -> Result<Forgotten> {
    if let Err(e @ StateError::Foreign { .. }) = read_pair(dir) {
        return Err(e);
    }
    let lock = Lock::acquire(dir)?;
    let mut out = Forgotten::default();
    for name in OWN_FILES {
        let p = dir.join(name);
        if *name == "lock" {
            // Removed last, while still held: nobody can start on the pair meanwhile.
            continue;
        }
        match std::fs::remove_file(&p) {
            Ok(()) => out.removed.push(p),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(StateError::Remove { path: p, source }),
        }
    }
    let lock_path = dir.join("lock");
    std::fs::remove_file(&lock_path).map_err(|source| StateError::Remove {
        path: lock_path.clone(),
        source,
    })?;
    drop(lock);
    out.removed.push(lock_path);
    match std::fs::remove_dir(dir) {
        Ok(()) => out.removed.push(dir.to_path_buf()),
        Err(_) => {
            if let Ok(rest) = std::fs::read_dir(dir) {
                out.left = rest.filter_map(|e| e.ok().map(|e| e.path())).collect();
                out.left.sort();
            }
        }
    }
    Ok(out)
}
