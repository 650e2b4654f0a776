//! The change journal of a mounted source: what programs did through the mount, in order,
//! as path records (never file data). Appends are batched (group commit, no fsync per
//! record: `synchronous=NORMAL` in WAL mode); a lost tail is repaired by the startup scan
//! (DESIGN.md invariant 8: the journal is a fast path, not the truth).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use rusqlite::{params, Connection, OpenFlags};
use tandem_core::{Change, ChangeOp, ChangeSink, RelPath, Retention, Version};

use crate::programs::Programs;
use crate::{Result, StateError, Store, DB_FILE};

/// One journal record, as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub seq: i64,
    pub time_ns: i64,
    pub change: Change,
    /// The name of the program that made the change (`/proc/PID/comm`), when it was known.
    pub program: Option<String>,
}

/// The most records the journal keeps once every target has read them, however young:
/// the journal of a busy mount stays bounded (about 100 MB).
pub const JOURNAL_MAX_RECORDS: i64 = 1_000_000;

const GROUP_MAX: usize = 4096;
/// After committing more than one record (a burst), the writer waits this long before it
/// gathers the next batch: the records of the burst then queue up without waking it one by
/// one, and commit together. A lone record is committed at once.
const GROUP_WAIT: Duration = Duration::from_millis(1);

/// Appends change records on a thread of its own, many per transaction. Cloneable handle;
/// `flush()` returns once everything recorded so far is committed.
pub struct JournalWriter {
    tx: Sender<Msg>,
    committed: Arc<(Mutex<i64>, Condvar)>,
    recent: Mutex<Recent>,
    thread: Mutex<Option<JoinHandle<()>>>,
    bells: Bells,
    programs: Programs,
}

/// The changes handed over that make a scan running meanwhile unsafe to apply as it is: a
/// rename or exchange (a renamed path looks gone), an open for writing (the file is not yet
/// known to be held open, and would be copied half written).
#[derive(Default)]
struct Recent {
    renames: u64,
    opens: u64,
    /// The paths of the last `OPENS_KEPT` opens for writing, oldest first.
    opened: VecDeque<RelPath>,
}

/// Opens for writing remembered for `JournalWriter::opened_since`; a scan during which more
/// were handed over is done again.
const OPENS_KEPT: usize = 4096;

/// A point in the journal's stream of renames and opens (`JournalWriter::mark`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    renames: u64,
    opens: u64,
}

/// Rung after every commit: a consumer waiting on several things at once (a replicator
/// waits for the journal and for its target's watcher) selects on its receiver.
type Bells = Arc<Mutex<Vec<Sender<()>>>>;

enum Msg {
    Record(i64, Change, Option<Arc<str>>),
    Version(i64, Version, Option<Arc<str>>),
    Flush(Sender<()>),
    Stop,
}

impl JournalWriter {
    /// Opens a writer on the store in `dir` (created by `Store::open` before).
    pub fn open(dir: &Path) -> Result<JournalWriter> {
        let path = dir.join(DB_FILE);
        let conn = open_conn(&path)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let committed = Arc::new((Mutex::new(0i64), Condvar::new()));
        let c2 = Arc::clone(&committed);
        let bells: Bells = Arc::default();
        let b2 = Arc::clone(&bells);
        let thread = std::thread::Builder::new()
            .name("tandem-journal".into())
            .spawn(move || writer_loop(conn, rx, c2, b2))
            .map_err(|source| StateError::LockIo {
                path: path.clone(),
                source,
            })?;
        Ok(JournalWriter {
            tx,
            committed,
            recent: Mutex::default(),
            thread: Mutex::new(Some(thread)),
            bells,
            programs: Programs::default(),
        })
    }

    /// A receiver that gets a message (coalesced: at most one waiting) after each commit.
    pub fn subscribe(&self) -> Receiver<()> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.bells
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tx);
        rx
    }

    /// Returns once every record handed over so far is committed.
    pub fn flush(&self) {
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        if self.tx.send(Msg::Flush(done_tx)).is_ok() {
            let _ = done_rx.recv();
        }
    }

    /// Where the stream of renames, exchanges and opens for writing handed over stands.
    pub fn mark(&self) -> Mark {
        let r = self.recent();
        Mark {
            renames: r.renames,
            opens: r.opens,
        }
    }

    /// What was handed over since `mark`: `None` if a rename or exchange was (or more opens
    /// than are remembered), else the paths opened for writing, under the names they were
    /// opened by.
    pub fn opened_since(&self, mark: Mark) -> Option<Vec<RelPath>> {
        let r = self.recent();
        let new = usize::try_from(r.opens - mark.opens).ok()?;
        if r.renames != mark.renames || new > r.opened.len() {
            return None;
        }
        Some(
            r.opened
                .iter()
                .skip(r.opened.len() - new)
                .cloned()
                .collect(),
        )
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Blocks until a record with a sequence number above `seq` is committed, or `timeout`.
    /// Returns the last committed sequence number.
    pub fn wait_past(&self, seq: i64, timeout: Duration) -> i64 {
        let (lock, cv) = &*self.committed;
        let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = cv
            .wait_timeout_while(guard, timeout, |last| *last <= seq)
            .unwrap_or_else(|p| p.into_inner());
        *guard
    }

    /// Flushes and stops the writer thread; records handed over later are dropped.
    pub fn close(&self) {
        self.flush();
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl Drop for JournalWriter {
    fn drop(&mut self) {
        self.close();
    }
}

impl ChangeSink for JournalWriter {
    fn record(&self, change: Change) {
        // Named now: a short-lived program is gone by the time the record is written.
        let program = self.programs.name(change.pid);
        // Counted and handed over under one lock: a `mark` taken in between would count a
        // change whose record a flush right after it might not wait for.
        let guard = match change.op {
            ChangeOp::Rename | ChangeOp::Exchange => {
                let mut r = self.recent();
                r.renames += 1;
                Some(r)
            }
            ChangeOp::OpenWrite => {
                let mut r = self.recent();
                r.opens += 1;
                if r.opened.len() == OPENS_KEPT {
                    r.opened.pop_front();
                }
                r.opened.push_back(change.path.clone());
                Some(r)
            }
            _ => None,
        };
        let _ = self.tx.send(Msg::Record(now_ns(), change, program));
        drop(guard);
    }

    /// Committed with the records around it, in the writer's next transaction.
    fn kept(&self, version: Version) {
        let program = self.programs.name(version.pid);
        let _ = self.tx.send(Msg::Version(now_ns(), version, program));
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// A second connection to the store `Store::open` checked (or created) before: never
/// creates one, and refuses an empty file (SQLite would take it for a new database).
fn open_conn(path: &PathBuf) -> Result<Connection> {
    let dir = path.parent().unwrap_or(Path::new("."));
    if !crate::state_exists(dir)? {
        return Err(StateError::Io {
            path: path.clone(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| crate::unreadable(None, path, source))?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
    )
    .map_err(|source| StateError::Sql {
        path: path.clone(),
        source,
    })?;
    Ok(conn)
}

fn writer_loop(
    mut conn: Connection,
    rx: Receiver<Msg>,
    committed: Arc<(Mutex<i64>, Condvar)>,
    bells: Bells,
) {
    let mut batch: Vec<(i64, Change, Option<Arc<str>>)> = Vec::new();
    let mut versions: Vec<(i64, Version, Option<Arc<str>>)> = Vec::new();
    let mut waiters: Vec<Sender<()>> = Vec::new();
    let mut stop = false;
    while !stop {
        // Block for the first message, then gather what arrives within the window.
        let first = match rx.recv() {
            Ok(Msg::Stop) | Err(_) => break,
            Ok(m) => m,
        };
        // Take what is already queued, and no more: records that arrive while this batch
        // commits (and during the pause after a burst, below) form the next one; a lone
        // record is committed at once.
        let mut msg = Some(first);
        while let Some(m) = msg.take() {
            match m {
                Msg::Record(t, c, p) => batch.push((t, c, p)),
                Msg::Version(t, v, p) => versions.push((t, v, p)),
                Msg::Flush(w) => waiters.push(w),
                Msg::Stop => {
                    stop = true;
                    break;
                }
            }
            if batch.len() >= GROUP_MAX {
                break;
            }
            msg = rx.try_recv().ok();
        }
        if !versions.is_empty() {
            if let Err(e) = crate::versions::append(&mut conn, &versions) {
                tracing::warn!(
                    "history: could not record {} kept versions: {e}",
                    versions.len()
                );
            }
            versions.clear();
        }
        if !batch.is_empty() {
            match append(&mut conn, &batch) {
                Ok(last) => {
                    let (lock, cv) = &*committed;
                    *lock.lock().unwrap_or_else(|p| p.into_inner()) = last;
                    cv.notify_all();
                    for b in bells.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                        let _ = b.try_send(());
                    }
                }
                Err(e) => {
                    // The journal is a fast path: a lost batch is found by the next scan.
                    tracing::warn!("journal write failed ({e}); the next scan will catch up");
                }
            }
        }
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
        if batch.len() > 1 && !stop {
            std::thread::sleep(GROUP_WAIT);
        }
        batch.clear();
    }
}

fn append(
    conn: &mut Connection,
    batch: &[(i64, Change, Option<Arc<str>>)],
) -> rusqlite::Result<i64> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO journal(time, op, path, path2, pid, uid, comm) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (t, c, program) in batch {
            stmt.execute(params![
                t,
                c.op.name(),
                c.path.as_bytes(),
                c.to.as_ref().map(|p| p.as_bytes().to_vec()),
                c.pid,
                c.uid,
                program.as_deref()
            ])?;
        }
    }
    let last = tx.last_insert_rowid();
    tx.commit()?;
    Ok(last)
}

impl Store {
    /// Records after `after`, oldest first, at most `limit`.
    pub fn journal_after(&self, after: i64, limit: usize) -> Result<Vec<Record>> {
        let mut stmt = self.sql(self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM journal WHERE seq > ?1 ORDER BY seq LIMIT ?2"
        )))?;
        let rows = stmt
            .query_map(params![after, limit as i64], read_row)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>());
        Ok(self.sql(rows)?.into_iter().flatten().collect())
    }

    /// The last journal sequence number (0 when empty).
    pub fn journal_head(&self) -> Result<i64> {
        self.sql(
            self.conn
                .prepare_cached("SELECT coalesce(max(seq), 0) FROM journal")
                .and_then(|mut s| s.query_row([], |r| r.get(0))),
        )
    }

    pub fn cursor(&self, target: &str) -> Result<i64> {
        let r = self
            .conn
            .query_row("SELECT seq FROM cursors WHERE target = ?1", [target], |r| {
                r.get(0)
            })
            .or_else(|e| {
                if e == rusqlite::Error::QueryReturnedNoRows {
                    Ok(0)
                } else {
                    Err(e)
                }
            });
        self.sql(r)
    }

    pub fn set_cursor(&self, target: &str, seq: i64) -> Result<()> {
        // Once per replication round, as is the trim below: prepared once.
        let r = self
            .conn
            .prepare_cached(
                "INSERT INTO cursors(target, seq) VALUES (?1, ?2) ON CONFLICT(target) DO UPDATE SET seq = excluded.seq",
            )
            .and_then(|mut s| s.execute(params![target, seq]));
        self.sql(r).map(|_| ())
    }

    /// Makes `targets` the only cursors, all at `seq`: a mount starts after a full
    /// reconcile of each of its targets, and a target no longer mounted must not hold the
    /// journal back (its next start reconciles in full anyway).
    pub fn reset_cursors(&mut self, targets: &[String], seq: i64) -> Result<()> {
        let path = self.path.clone();
        let sql = |source| StateError::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        tx.execute("DELETE FROM cursors", []).map_err(sql)?;
        for t in targets {
            tx.execute(
                "INSERT INTO cursors(target, seq) VALUES (?1, ?2)",
                params![t, seq],
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    /// Drops records every target has read (past the slowest cursor) once they are older
    /// than `keep.keep` or beyond the newest `JOURNAL_MAX_RECORDS` (they are what `tandem
    /// changes` lists meanwhile), but never the newest one: SQLite numbers a new row after
    /// the highest one left, so an emptied table would count from 1 again, below every
    /// cursor, and those records would never be read.
    pub fn trim_journal(&self, keep: &Retention) -> Result<usize> {
        let cutoff = now_ns().saturating_sub(keep.keep.as_nanos().min(i64::MAX as u128) as i64);
        // Records are numbered in time order: the first one young enough bounds the old
        // ones, found without an index on time.
        let r = self
            .conn
            .prepare_cached(
                "DELETE FROM journal WHERE seq <= (SELECT coalesce(min(seq), 0) FROM cursors)
               AND seq < (SELECT max(seq) FROM journal)
               AND (seq < coalesce((SELECT seq FROM journal WHERE time >= ?1 ORDER BY seq LIMIT 1),
                                   (SELECT max(seq) FROM journal))
                    OR seq <= (SELECT max(seq) FROM journal) - ?2)",
            )
            .and_then(|mut s| s.execute(params![cutoff, JOURNAL_MAX_RECORDS]));
        self.sql(r)
    }
}

pub(crate) const COLUMNS: &str = "seq, time, op, path, path2, pid, uid, comm";

/// A row of `COLUMNS`; `None` for one this tandem cannot read (an operation it does not
/// know, a path no longer valid), skipped.
pub(crate) fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Record>> {
    let op: String = r.get(2)?;
    let path: Vec<u8> = r.get(3)?;
    let to: Option<Vec<u8>> = r.get(4)?;
    let (Some(op), Ok(path)) = (ChangeOp::from_name(&op), RelPath::new(path)) else {
        return Ok(None);
    };
    Ok(Some(Record {
        seq: r.get(0)?,
        time_ns: r.get(1)?,
        change: Change {
            op,
            path,
            to: to.and_then(|t| RelPath::new(t).ok()),
            pid: r.get(5)?,
            uid: r.get(6)?,
        },
        program: r.get(7)?,
    }))
}
