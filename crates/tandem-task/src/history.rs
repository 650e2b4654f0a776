//! The run history of every task: one row per run in `STATE_HOME/history.db` (SQLite,
//! WAL), for `tandem log` and `tandem status`.
//!
//! A row is opened when a run starts (result `running`, with the run's pid) and completed
//! when it ends, each in its own transaction, so that a run killed half-way stays in the
//! history and reads as `interrupted` once its process is gone. Rows older than
//! `RETENTION` are dropped whenever a row is opened. The file is created complete or not
//! at all (built under another name, then linked into place), so a reader never sees an
//! empty database. Dry runs are not recorded.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};

use crate::error::TaskError;

pub const HISTORY_FILE: &str = "history.db";

/// How long a run is remembered.
pub const RETENTION: SignedDuration = SignedDuration::from_hours(90 * 24);

/// 'TNDH': marks the history database as tandem's.
const APPLICATION_ID: i64 = 0x544E_4448;

const SCHEMA: &str = "
    CREATE TABLE runs(
        id INTEGER PRIMARY KEY,
        task TEXT NOT NULL,
        trigger TEXT NOT NULL,
        started_ms INTEGER NOT NULL,
        ended_ms INTEGER,
        pid INTEGER NOT NULL,
        pid_start INTEGER,
        result TEXT NOT NULL,
        exit_code INTEGER,
        copied INTEGER NOT NULL DEFAULT 0,
        deleted INTEGER NOT NULL DEFAULT 0,
        conflicts INTEGER NOT NULL DEFAULT 0,
        errors INTEGER NOT NULL DEFAULT 0,
        bytes INTEGER NOT NULL DEFAULT 0,
        error TEXT
    );
    CREATE INDEX runs_by_task ON runs(task, started_ms);
    CREATE INDEX runs_by_start ON runs(started_ms);
    PRAGMA user_version = 1;";

/// A run's counts, summed over its pairs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunCounts {
    pub copied: u64,
    pub deleted: u64,
    pub conflicts: u64,
    /// Paths skipped or failed, and pairs (or the task) that could not be synced.
    pub errors: u64,
    pub bytes: u64,
}

/// How a run ended, as its row records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunEnd {
    /// `ok`, `conflicts`, `problems`, `failed`, `halted` or `skipped` (`TaskReport::result`).
    pub result: String,
    pub exit_code: i32,
    pub counts: RunCounts,
    /// What went wrong, in one line (the first of several), if anything did.
    pub error: Option<String>,
}

/// One run of a task, as the history has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryRow {
    pub id: i64,
    pub task: String,
    /// `manual`, `schedule`, `at-start`, `on-appear`, ...
    pub trigger: String,
    pub started: Timestamp,
    pub ended: Option<Timestamp>,
    pub pid: u32,
    /// The run's result; for a row never completed, `running` while its process lives,
    /// `interrupted` once it is gone.
    pub result: String,
    pub exit_code: Option<i32>,
    pub counts: RunCounts,
    pub error: Option<String>,
}

impl HistoryRow {
    pub fn is_running(&self) -> bool {
        self.result == "running"
    }

    /// From start to end, or to `now` for a run still going.
    pub fn duration(&self, now: Timestamp) -> Duration {
        let end = self.ended.unwrap_or(now);
        Duration::try_from(end.duration_since(self.started)).unwrap_or_default()
    }
}

pub struct History {
    conn: Connection,
    path: PathBuf,
}

impl History {
    /// The history in `home` (the state home), created if there is none.
    pub fn open(home: &Path) -> Result<History, TaskError> {
        let path = home.join(HISTORY_FILE);
        if !path.exists() {
            create(&path)?;
        }
        History::connect(path)
    }

    /// The history in `home`, `None` if no run was ever recorded there (nothing created).
    pub fn open_existing(home: &Path) -> Result<Option<History>, TaskError> {
        let path = home.join(HISTORY_FILE);
        if !path.exists() {
            return Ok(None);
        }
        History::connect(path).map(Some)
    }

    fn connect(path: PathBuf) -> Result<History, TaskError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| sql(&path, e))?;
        let h = History { conn, path };
        h.conn
            .busy_timeout(Duration::from_secs(10))
            .map_err(|e| sql(&h.path, e))?;
        let id: i64 = h.query_one("PRAGMA application_id")?;
        if id != APPLICATION_ID {
            return Err(sql(
                &h.path,
                rusqlite::Error::InvalidParameterName(format!(
                    "not tandem's run history (application id {id:#x}); it was left untouched"
                )),
            ));
        }
        h.conn
            .execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
            .map_err(|e| sql(&h.path, e))?;
        Ok(h)
    }

    fn query_one(&self, q: &str) -> Result<i64, TaskError> {
        self.conn
            .query_row(q, [], |r| r.get(0))
            .map_err(|e| sql(&self.path, e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the row of a run of `task` started `now` by process `pid`, and drops the
    /// rows older than `RETENTION`, in one transaction. Returns the row's id.
    pub fn begin(
        &mut self,
        task: &str,
        trigger: &str,
        pid: u32,
        now: Timestamp,
    ) -> Result<i64, TaskError> {
        let path = self.path.clone();
        let err = |e| sql(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        let oldest = now.checked_sub(RETENTION).unwrap_or(Timestamp::MIN);
        tx.execute(
            "DELETE FROM runs WHERE started_ms < ?1",
            [oldest.as_millisecond()],
        )
        .map_err(err)?;
        tx.execute(
            "INSERT INTO runs(task, trigger, started_ms, pid, pid_start, result)
             VALUES (?1, ?2, ?3, ?4, ?5, 'running')",
            params![
                task,
                trigger,
                now.as_millisecond(),
                pid,
                process_start(pid).map(|s| s as i64)
            ],
        )
        .map_err(err)?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(err)?;
        Ok(id)
    }

    /// Completes the row `id` with how its run ended.
    pub fn finish(&mut self, id: i64, now: Timestamp, end: &RunEnd) -> Result<(), TaskError> {
        let c = &end.counts;
        self.conn
            .execute(
                "UPDATE runs SET ended_ms = ?2, result = ?3, exit_code = ?4, copied = ?5,
                 deleted = ?6, conflicts = ?7, errors = ?8, bytes = ?9, error = ?10
                 WHERE id = ?1",
                params![
                    id,
                    now.as_millisecond(),
                    end.result,
                    end.exit_code,
                    c.copied as i64,
                    c.deleted as i64,
                    c.conflicts as i64,
                    c.errors as i64,
                    c.bytes as i64,
                    end.error,
                ],
            )
            .map_err(|e| sql(&self.path, e))?;
        Ok(())
    }

    /// The runs of `task` (of every task with `None`), newest first, at most `limit`.
    pub fn runs(&self, task: Option<&str>, limit: usize) -> Result<Vec<HistoryRow>, TaskError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, task, trigger, started_ms, ended_ms, pid, pid_start, result,
                 exit_code, copied, deleted, conflicts, errors, bytes, error FROM runs
                 WHERE ?1 IS NULL OR task = ?1 ORDER BY started_ms DESC, id DESC LIMIT ?2",
            )
            .map_err(|e| sql(&self.path, e))?;
        let rows = stmt
            .query_map(params![task, limit as i64], read_row)
            .map_err(|e| sql(&self.path, e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| sql(&self.path, e))
    }

    /// The latest run of `task`, if any.
    pub fn last(&self, task: &str) -> Result<Option<HistoryRow>, TaskError> {
        Ok(self.runs(Some(task), 1)?.pop())
    }

    /// The run of `task` going on now, if any.
    pub fn running(&self, task: &str) -> Result<Option<HistoryRow>, TaskError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, task, trigger, started_ms, ended_ms, pid, pid_start, result,
                 exit_code, copied, deleted, conflicts, errors, bytes, error FROM runs
                 WHERE task = ?1 AND ended_ms IS NULL ORDER BY started_ms DESC, id DESC",
            )
            .map_err(|e| sql(&self.path, e))?;
        let rows = stmt
            .query_map([task], read_row)
            .map_err(|e| sql(&self.path, e))?;
        for row in rows {
            let row = row.map_err(|e| sql(&self.path, e))?;
            if row.is_running() {
                return Ok(Some(row));
            }
        }
        Ok(None)
    }

    /// Gives the runs of task `old` to `new` (the task was renamed). Returns how many.
    pub fn rename_task(&mut self, old: &str, new: &str) -> Result<usize, TaskError> {
        self.conn
            .execute("UPDATE runs SET task = ?2 WHERE task = ?1", [old, new])
            .map_err(|e| sql(&self.path, e))
    }

    /// The row `id`, if it is still kept.
    pub fn row(&self, id: i64) -> Result<Option<HistoryRow>, TaskError> {
        self.conn
            .query_row(
                "SELECT id, task, trigger, started_ms, ended_ms, pid, pid_start, result,
                 exit_code, copied, deleted, conflicts, errors, bytes, error FROM runs
                 WHERE id = ?1",
                [id],
                read_row,
            )
            .optional()
            .map_err(|e| sql(&self.path, e))
    }
}

fn read_row(r: &Row<'_>) -> rusqlite::Result<HistoryRow> {
    let ms = |v: i64| Timestamp::from_millisecond(v).unwrap_or(Timestamp::UNIX_EPOCH);
    let n = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(i)?.max(0) as u64) };
    let ended: Option<i64> = r.get(4)?;
    let pid: u32 = r.get(5)?;
    let pid_start = r.get::<_, Option<i64>>(6)?.map(|s| s as u64);
    let mut result: String = r.get(7)?;
    if ended.is_none() && !alive(pid, pid_start) {
        result = "interrupted".to_string();
    }
    Ok(HistoryRow {
        id: r.get(0)?,
        task: r.get(1)?,
        trigger: r.get(2)?,
        started: ms(r.get(3)?),
        ended: ended.map(ms),
        pid,
        result,
        exit_code: r.get(8)?,
        counts: RunCounts {
            copied: n(9)?,
            deleted: n(10)?,
            conflicts: n(11)?,
            errors: n(12)?,
            bytes: n(13)?,
        },
        error: r.get(14)?,
    })
}

/// Creates the history at `path` complete: its schema is written under a name of this
/// process's own, then linked into place (which fails, harmlessly, if another process
/// got there first).
fn create(path: &Path) -> Result<(), TaskError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let tmp = dir.join(format!("{HISTORY_FILE}.new-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let build = || -> rusqlite::Result<()> {
        let conn = Connection::open(&tmp)?;
        conn.execute_batch("PRAGMA synchronous=FULL;")?;
        conn.pragma_update(None, "application_id", APPLICATION_ID)?;
        conn.execute_batch(&format!("BEGIN; {SCHEMA} COMMIT;"))?;
        conn.close().map_err(|(_, e)| e)
    };
    let built = build().map_err(|e| sql(&tmp, e));
    let linked = built.and_then(|()| match std::fs::hard_link(&tmp, path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(io(path, e)),
        _ => Ok(()),
    });
    let _ = std::fs::remove_file(&tmp);
    linked?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

fn sql(path: &Path, source: rusqlite::Error) -> TaskError {
    TaskError::History {
        path: path.to_path_buf(),
        source,
    }
}

fn io(path: &Path, source: std::io::Error) -> TaskError {
    TaskError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// When process `pid` started (clock ticks since boot, `/proc/PID/stat` field 22): with
/// the pid, it names the process even after the pid is reused.
fn process_start(pid: u32) -> Option<u64> {
    proc_stat(pid).map(|(_, start)| start)
}

/// The state letter and start time of process `pid`, from `/proc`.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Whether process `pid` runs (and is not a zombie).
pub(crate) fn process_alive(pid: u32) -> bool {
    alive(pid, None)
}

/// Whether the process that opened a row still runs: the same pid, started at the same
/// time, and not a zombie. Without `/proc`, whether the pid exists.
fn alive(pid: u32, started: Option<u64>) -> bool {
    if Path::new("/proc/self/stat").exists() {
        return match proc_stat(pid) {
            None => false,
            Some(('Z' | 'X' | 'x', _)) => false,
            Some((_, start)) => started.is_none_or(|s| s == start),
        };
    }
    crate::sys::pid_exists(pid)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ended(result: &str, copied: u64) -> RunEnd {
        RunEnd {
            result: result.to_string(),
            exit_code: 0,
            counts: RunCounts {
                copied,
                ..RunCounts::default()
            },
            error: None,
        }
    }

    #[test]
    fn issue_15_history_drops_runs_older_than_90_days_on_write() {
        let home = tempfile::tempdir().unwrap();
        let mut h = History::open(home.path()).unwrap();
        let now = Timestamp::now();
        let old = now - SignedDuration::from_hours(91 * 24);
        let kept = now - SignedDuration::from_hours(89 * 24);
        let me = std::process::id();
        let a = h.begin("t", "schedule", me, old).unwrap();
        h.finish(a, old, &ended("ok", 1)).unwrap();
        let b = h.begin("t", "manual", me, kept).unwrap();
        h.finish(b, kept, &ended("ok", 2)).unwrap();
        // Rows are dropped relative to the time of the write, and reading drops nothing.
        assert_eq!(h.runs(None, 10).unwrap().len(), 2);
        let c = h.begin("u", "manual", me, now).unwrap();
        let ids: Vec<i64> = h.runs(None, 10).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![c, b], "91 days old: gone; 89 days old: kept");
        assert!(h.row(a).unwrap().is_none());
        // A day and a second later, b is past 90 days too.
        let later = now + SignedDuration::from_hours(24) + SignedDuration::from_secs(1);
        h.begin("u", "manual", me, later).unwrap();
        assert!(h.row(b).unwrap().is_none(), "90 days and a second: gone");
    }

    #[test]
    fn issue_15_history_open_row_is_running_then_interrupted_when_its_process_is_gone() {
        let home = tempfile::tempdir().unwrap();
        let mut h = History::open(home.path()).unwrap();
        let now = Timestamp::now();
        let mine = h.begin("t", "manual", std::process::id(), now).unwrap();
        assert_eq!(h.running("t").unwrap().unwrap().id, mine);
        // A process that has exited and been reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let dead = h.begin("u", "schedule", gone, now).unwrap();
        assert_eq!(h.row(dead).unwrap().unwrap().result, "interrupted");
        assert!(h.running("u").unwrap().is_none());
        h.finish(mine, now, &ended("conflicts", 3)).unwrap();
        let row = h.last("t").unwrap().unwrap();
        assert_eq!((row.result.as_str(), row.counts.copied), ("conflicts", 3));
        assert!(h.running("t").unwrap().is_none());
    }

    #[test]
    fn issue_15_history_is_created_whole_and_a_foreign_file_is_refused() {
        let home = tempfile::tempdir().unwrap();
        assert!(History::open_existing(home.path()).unwrap().is_none());
        assert!(
            !home.path().join(HISTORY_FILE).exists(),
            "reading creates nothing"
        );
        History::open(home.path()).unwrap();
        let names: Vec<_> = std::fs::read_dir(home.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".new-"))
            .collect();
        assert!(names.is_empty(), "no temporary file left: {names:?}");
        let other = tempfile::tempdir().unwrap();
        let conn = Connection::open(other.path().join(HISTORY_FILE)).unwrap();
        conn.execute_batch("CREATE TABLE x(y);").unwrap();
        drop(conn);
        let e = History::open(other.path()).err().unwrap().to_string();
        assert!(e.contains("not tandem's run history"), "{e}");
    }
}
