//! Deletions a mount's brake holds (issue 18): made on one side (through the mount in the
//! source, or in a watched target), not carried to the other until released. A held path
//! is left alone on both sides and in the baseline by every sync of the pair, mounted or
//! not; `tandem release` lets them through, `tandem restore --held` forgets their baseline
//! entries so that the other side's copies come back where they were deleted.
//!
//! A request from another command (`release`, `restore`) is written as the row's `action`;
//! the replicator that owns the pair carries it out (it is the only writer of the
//! baseline while mounted). Unmounted, the command carries it out itself.

use std::collections::HashSet;

use rusqlite::params;
use tandem_core::{RelPath, Side};

use crate::{Record, Result, StateError, Store};

/// One held deletion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub id: i64,
    /// The target it was held from.
    pub target: String,
    /// The burst it was part of: one per time the brake engaged.
    pub batch: i64,
    /// Where the deletion was made (and is done): through the mount in the source, or
    /// in the target.
    pub side: Side,
    pub path: RelPath,
    pub op: String,
    pub time_ns: i64,
    pub pid: u32,
    pub uid: u32,
    pub program: Option<String>,
    /// `release` or `restore` when asked for and not carried out yet.
    pub action: Option<String>,
}

/// What is asked of held deletions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeldAction {
    /// Carry them to the other side.
    Release,
    /// Bring them back where they were deleted, from the other side.
    Restore,
}

impl HeldAction {
    pub fn name(self) -> &'static str {
        match self {
            HeldAction::Release => "release",
            HeldAction::Restore => "restore",
        }
    }
}

impl Store {
    /// Holds the deletions `records`, made on `side`, from the other side of the pair
    /// with `target`, in burst `batch`. A path held already (a folder's removal told
    /// twice by the watcher) is not held again.
    pub fn hold(&mut self, target: &str, side: Side, batch: i64, records: &[Record]) -> Result<()> {
        let path = self.path.clone();
        let sql = |source| StateError::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO held(target, batch, path, op, time, pid, uid, comm, side)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9
                     WHERE NOT EXISTS (SELECT 1 FROM held WHERE target = ?1 AND path = ?3)",
                )
                .map_err(sql)?;
            for r in records {
                stmt.execute(params![
                    target,
                    batch,
                    r.change.path.as_bytes(),
                    r.change.op.name(),
                    r.time_ns,
                    r.change.pid,
                    r.change.uid,
                    r.program,
                    side.name()
                ])
                .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// A batch number not used yet.
    pub fn next_held_batch(&self) -> Result<i64> {
        self.sql(
            self.conn
                .query_row("SELECT coalesce(max(batch), 0) + 1 FROM held", [], |r| {
                    r.get(0)
                }),
        )
    }

    /// Every held deletion (of `target` only, if given), oldest first.
    pub fn held(&self, target: Option<&str>) -> Result<Vec<Held>> {
        self.held_where(target, false)
    }

    /// The held deletions of `target` that `tandem release` or `tandem restore --held` asked
    /// for (`action` set): what a mount's replicator looks for on every pass, so only those
    /// rows are read, however many are held.
    pub fn held_asked(&self, target: &str) -> Result<Vec<Held>> {
        self.held_where(Some(target), true)
    }

    fn held_where(&self, target: Option<&str>, asked: bool) -> Result<Vec<Held>> {
        let mut stmt = self.sql(self.conn.prepare_cached(
            "SELECT id, target, batch, path, op, time, pid, uid, comm, action, side FROM held
             WHERE (?1 IS NULL OR target = ?1) AND (NOT ?2 OR action IS NOT NULL) ORDER BY id",
        ))?;
        let rows = stmt
            .query_map(params![target, asked], |r| {
                let path: Vec<u8> = r.get(3)?;
                Ok(RelPath::new(path).ok().map(|path| Held {
                    id: r.get(0).unwrap_or_default(),
                    target: r.get(1).unwrap_or_default(),
                    batch: r.get(2).unwrap_or_default(),
                    side: match r.get::<_, String>(10).as_deref() {
                        Ok("target") => Side::Target,
                        _ => Side::Source,
                    },
                    path,
                    op: r.get(4).unwrap_or_default(),
                    time_ns: r.get(5).unwrap_or_default(),
                    pid: r.get(6).unwrap_or_default(),
                    uid: r.get(7).unwrap_or_default(),
                    program: r.get(8).unwrap_or_default(),
                    action: r.get(9).unwrap_or_default(),
                }))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>());
        Ok(self.sql(rows)?.into_iter().flatten().collect())
    }

    /// The paths held from `target`: every sync of the pair leaves them alone.
    pub fn held_paths(&self, target: &str) -> Result<HashSet<RelPath>> {
        // Read on every sync of a mounted pair: the paths alone.
        let mut stmt = self.sql(
            self.conn
                .prepare_cached("SELECT path FROM held WHERE target = ?1"),
        )?;
        let rows = stmt
            .query_map(params![target], |r| {
                Ok(RelPath::new(r.get::<_, Vec<u8>>(0)?).ok())
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>());
        Ok(self.sql(rows)?.into_iter().flatten().collect())
    }

    /// Asks for `action` on the held deletions of `batch` (all if `None`); returns how
    /// many rows it concerns.
    pub fn ask_held(&self, batch: Option<i64>, action: HeldAction) -> Result<usize> {
        self.sql(self.conn.execute(
            "UPDATE held SET action = ?2 WHERE ?1 IS NULL OR batch = ?1",
            params![batch, action.name()],
        ))
    }

    /// Drops the held rows `ids`; with `forget`, their paths' baseline entries too (in the
    /// same transaction), so that the next sync copies the target's version back.
    pub fn drop_held(&mut self, ids: &[i64], forget: &[RelPath]) -> Result<()> {
        let path = self.path.clone();
        let sql = |source| StateError::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        for id in ids {
            tx.execute("DELETE FROM held WHERE id = ?1", [id])
                .map_err(sql)?;
        }
        for p in forget {
            tx.execute("DELETE FROM baseline WHERE path = ?1", [p.as_bytes()])
                .map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }
}
