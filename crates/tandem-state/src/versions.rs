//! The versions of source files a mount kept before requests through it destroyed them
//! (issue 18, `tandem history`): a row per version, pointing to its file in the source's
//! `.tandem/history/`, or saying why it was not kept. The files themselves are the mount's
//! to write and the engine's to prune; rows are written by the journal writer, in its
//! transactions, and by a restore made without a mount.

use rusqlite::{params, Connection};
use tandem_core::{NotKept, RelPath, Version};

use crate::{Result, StateError, Store};

/// One version as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionRow {
    pub id: i64,
    /// When it was kept (nanoseconds since the epoch): the content it holds is what the
    /// file had until then.
    pub time_ns: i64,
    pub path: RelPath,
    pub size: u64,
    /// Its file name in the source's `.tandem/history/`, or why it was not kept.
    pub kept: std::result::Result<String, NotKept>,
    /// The request that destroyed it (`write`, `unlink`, `rename`, ..., `restore`).
    pub op: String,
    pub pid: u32,
    pub uid: u32,
    pub program: Option<String>,
}

/// What the history holds: kept versions and their bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryUsage {
    pub versions: u64,
    pub bytes: u64,
}

const COLUMNS: &str = "id, time, path, size, file, why_not, op, pid, uid, comm";

/// Writes `versions` (time, version, program name) in one transaction.
pub(crate) fn append(
    conn: &mut Connection,
    versions: &[(i64, Version, Option<std::sync::Arc<str>>)],
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for (t, v, program) in versions {
        insert(&tx, *t, v, v.op.name(), program.as_deref())?;
    }
    tx.commit()
}

fn insert(
    conn: &Connection,
    time_ns: i64,
    v: &Version,
    op: &str,
    program: Option<&str>,
) -> rusqlite::Result<i64> {
    let (file, why_not) = match &v.kept {
        Ok(f) => (Some(f.as_str()), None),
        Err(n) => (None, Some(n.name())),
    };
    conn.prepare_cached(
        "INSERT INTO versions(time, path, size, file, why_not, op, pid, uid, comm)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        time_ns,
        v.path.as_bytes(),
        i64::try_from(v.size).unwrap_or(i64::MAX),
        file,
        why_not,
        op,
        v.pid,
        v.uid,
        program
    ])?;
    Ok(conn.last_insert_rowid())
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<VersionRow>> {
    let path: Vec<u8> = r.get(2)?;
    let Ok(path) = RelPath::new(path) else {
        return Ok(None);
    };
    let file: Option<String> = r.get(4)?;
    let why_not: Option<String> = r.get(5)?;
    let kept = match file {
        Some(f) => Ok(f),
        None => Err(why_not
            .as_deref()
            .and_then(NotKept::from_name)
            .unwrap_or(NotKept::Failed)),
    };
    Ok(Some(VersionRow {
        id: r.get(0)?,
        time_ns: r.get(1)?,
        path,
        size: r.get::<_, i64>(3)?.max(0) as u64,
        kept,
        op: r.get(6)?,
        pid: r.get(7)?,
        uid: r.get(8)?,
        program: r.get(9)?,
    }))
}

impl Store {
    /// The versions of `path`, and of everything below it when it is a folder (the root:
    /// every version), oldest first.
    pub fn versions_of(&self, path: &RelPath) -> Result<Vec<VersionRow>> {
        let exact = path.as_bytes().to_vec();
        // Below `path`: from "path/" up to "path0" ('0' follows '/'), as bytes compare.
        let (low, high) = if exact.is_empty() {
            (Vec::new(), vec![0xFF; 8])
        } else {
            let mut low = exact.clone();
            low.push(b'/');
            let mut high = exact.clone();
            high.push(b'0');
            (low, high)
        };
        self.query_versions(
            &format!(
                "SELECT {COLUMNS} FROM versions
                 WHERE path = ?1 OR (path >= ?2 AND path < ?3) ORDER BY time, id"
            ),
            params![exact, low, high],
        )
    }

    /// Whether any version is recorded here (a mount recorded its source's history in
    /// this pair's store).
    pub fn has_versions(&self) -> Result<bool> {
        let any = self
            .conn
            .query_row("SELECT EXISTS (SELECT 1 FROM versions)", params![], |r| {
                r.get::<_, bool>(0)
            });
        self.sql(any)
    }

    /// Every version recorded, oldest first (for pruning).
    pub fn all_versions(&self) -> Result<Vec<VersionRow>> {
        self.query_versions(
            &format!("SELECT {COLUMNS} FROM versions ORDER BY time, id"),
            params![],
        )
    }

    fn query_versions(&self, sql: &str, p: &[&dyn rusqlite::ToSql]) -> Result<Vec<VersionRow>> {
        let mut stmt = self.sql(self.conn.prepare_cached(sql))?;
        let rows = stmt
            .query_map(p, read_row)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>());
        Ok(self.sql(rows)?.into_iter().flatten().collect())
    }

    /// Records a version kept outside a mount (a restore keeping the present first),
    /// destroyed by `op` (`restore`).
    pub fn add_version(
        &self,
        time_ns: i64,
        v: &Version,
        op: &str,
        program: Option<&str>,
    ) -> Result<i64> {
        self.sql(insert(&self.conn, time_ns, v, op, program))
    }

    /// Forgets the versions `ids` (their files were removed, or are gone).
    pub fn drop_versions(&mut self, ids: &[i64]) -> Result<()> {
        self.each_version("DELETE FROM versions WHERE id = ?1", ids, &[])
    }

    /// Lists the versions `ids` as lost: recorded, but their file is gone from the history.
    /// They are never offered for a restore, and go with the retention's age limit.
    pub fn mark_versions_lost(&mut self, ids: &[i64]) -> Result<()> {
        self.each_version(
            "UPDATE versions SET file = NULL, why_not = ?2 WHERE id = ?1",
            ids,
            &[NotKept::Lost.name()],
        )
    }

    /// Runs `statement` once per id (`?1`, then `extra` as `?2`...), in one transaction.
    fn each_version(&mut self, statement: &str, ids: &[i64], extra: &[&str]) -> Result<()> {
        let path = self.path.clone();
        let sql = |source| StateError::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut stmt = tx.prepare_cached(statement).map_err(sql)?;
            for id in ids {
                let mut args: Vec<&dyn rusqlite::ToSql> = vec![id];
                args.extend(extra.iter().map(|e| e as &dyn rusqlite::ToSql));
                stmt.execute(args.as_slice()).map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// How many versions the history holds, and their bytes.
    pub fn history_usage(&self) -> Result<HistoryUsage> {
        self.sql(self.conn.query_row(
            "SELECT count(*), coalesce(sum(size), 0) FROM versions WHERE file IS NOT NULL",
            [],
            |r| {
                Ok(HistoryUsage {
                    versions: r.get::<_, i64>(0)?.max(0) as u64,
                    bytes: r.get::<_, i64>(1)?.max(0) as u64,
                })
            },
        ))
    }
}
