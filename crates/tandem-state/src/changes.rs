//! `tandem changes`: the journal's records a query asks for, read one at a time, so that
//! listing a million of them takes no more memory than listing ten. Each filter is a
//! clause of the SQL, present only when asked for: a `--since` reads through the time
//! index only the records it lists; the newest first are read until `limit` match; a
//! `--path` glob that starts with a literal folder compares bytes before it globs.

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Statement};

use crate::journal::{read_row, COLUMNS};
use crate::{Record, Result, Store};

/// Which records `Store::scan_changes` lists.
#[derive(Clone, Debug, Default)]
pub struct ChangeQuery {
    /// Only records made at or after this time (nanoseconds since the epoch).
    pub since_ns: Option<i64>,
    /// Only records whose path (or second path) matches this glob (SQLite GLOB: `*`
    /// matches `/` too).
    pub path_glob: Option<String>,
    /// Only records made by this pid or uid, or by a program of this name.
    pub by: Option<By>,
    /// At most this many, the newest.
    pub limit: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum By {
    /// A number: a pid or a uid.
    Id(u32),
    Program(String),
}

/// A query prepared on one store: the records it lists are those from sequence number
/// `from` on, read oldest first by `records`.
pub struct ChangeScan<'s> {
    store: &'s Store,
    stmt: Statement<'s>,
    filter: String,
    params: Vec<Value>,
    from: i64,
}

/// The WHERE clause of `q` (with a leading `1`) and its parameters. `since_seq`: the
/// first record at or after `q.since_ns`.
fn filter_of(q: &ChangeQuery, since_seq: Option<i64>) -> (String, Vec<Value>) {
    let mut sql = String::from("1");
    let mut params: Vec<Value> = Vec::new();
    if let Some(t) = q.since_ns {
        // Records come in time order, mostly (a clock set back aside): the first at or
        // after `t` bounds the sequence numbers to read, and the time itself decides.
        sql.push_str(" AND +time >= ? AND seq >= ?");
        params.push(Value::Integer(t));
        params.push(Value::Integer(since_seq.unwrap_or(i64::MAX)));
    }
    if let Some(glob) = &q.path_glob {
        // The literal folder a glob starts with bounds both paths (a comparison of bytes,
        // cheaper than the glob, which then decides).
        let prefix: Vec<u8> = glob
            .bytes()
            .take_while(|b| !matches!(b, b'*' | b'?' | b'['))
            .collect();
        if !prefix.is_empty() {
            let mut range = |col: &str| match next_after(&prefix) {
                Some(end) => {
                    params.push(Value::Blob(prefix.clone()));
                    params.push(Value::Blob(end));
                    format!("({col} >= ? AND {col} < ?)")
                }
                None => {
                    params.push(Value::Blob(prefix.clone()));
                    format!("{col} >= ?")
                }
            };
            let (a, b) = (range("path"), range("path2"));
            sql.push_str(&format!(" AND ({a} OR {b})"));
        }
        sql.push_str(" AND (CAST(path AS TEXT) GLOB ? OR CAST(path2 AS TEXT) GLOB ?)");
        params.push(Value::Text(glob.clone()));
        params.push(Value::Text(glob.clone()));
    }
    match &q.by {
        Some(By::Id(n)) => {
            sql.push_str(" AND (pid = ? OR uid = ?)");
            params.push(Value::Integer(i64::from(*n)));
            params.push(Value::Integer(i64::from(*n)));
        }
        Some(By::Program(name)) => {
            sql.push_str(" AND comm = ?");
            params.push(Value::Text(name.clone()));
        }
        None => {}
    }
    (sql, params)
}

/// The smallest byte string above every string that starts with `prefix` (`None`: there
/// is none, the prefix being all 0xFF).
fn next_after(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl Store {
    /// Prepares `q`: finds where its newest `q.limit` records begin (one query that reads
    /// no more than those), ready to read them oldest first.
    pub fn scan_changes(&self, q: &ChangeQuery) -> Result<ChangeScan<'_>> {
        let since_seq: Option<i64> = match q.since_ns {
            Some(t) => self.sql(self.conn.query_row(
                "SELECT min(seq) FROM journal INDEXED BY journal_time WHERE time >= ?1",
                [t],
                |r| r.get(0),
            ))?,
            None => None,
        };
        let (filter, mut params) = filter_of(q, since_seq);
        let from: Option<i64> = if q.limit == 0 {
            Some(i64::MAX)
        } else {
            params.push(Value::Integer(q.limit as i64 - 1));
            let first = self
                .conn
                .prepare(&format!(
                    "SELECT seq FROM journal WHERE {filter} ORDER BY seq DESC LIMIT 1 OFFSET ?"
                ))
                .and_then(|mut s| {
                    s.query_row(params_from_iter(params.iter()), |r| r.get(0))
                        .or_else(|e| match e {
                            rusqlite::Error::QueryReturnedNoRows => Ok(None),
                            e => Err(e),
                        })
                });
            params.pop();
            self.sql(first)?
        };
        let stmt = self.sql(self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM journal WHERE {filter} AND seq >= ? ORDER BY seq"
        )))?;
        Ok(ChangeScan {
            store: self,
            stmt,
            filter,
            params,
            from: from.unwrap_or(0),
        })
    }

    /// The records `q` asks for, the newest `q.limit`, oldest first, all in memory (a
    /// few, for tests and short lists; `scan_changes` reads them one at a time).
    pub fn changes(&self, q: &ChangeQuery) -> Result<Vec<Record>> {
        let mut scan = self.scan_changes(q)?;
        let records = scan.records()?.collect();
        records
    }
}

impl ChangeScan<'_> {
    /// How many records `records` reads.
    pub fn count(&self) -> Result<usize> {
        let mut params = self.params.clone();
        params.push(Value::Integer(self.from));
        let sql = format!(
            "SELECT count(*) FROM journal WHERE {} AND seq >= ?",
            self.filter
        );
        let n: i64 = self.store.sql(self.store.conn.query_row(
            &sql,
            params_from_iter(params.iter()),
            |r| r.get(0),
        ))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// The records, oldest first, read as they are taken (one this tandem cannot read is
    /// skipped).
    pub fn records(&mut self) -> Result<impl Iterator<Item = Result<Record>> + '_> {
        let mut params = self.params.clone();
        params.push(Value::Integer(self.from));
        let store = self.store;
        let rows = store.sql(self.stmt.query_map(params_from_iter(params), read_row))?;
        Ok(rows.filter_map(move |r| store.sql(r).transpose()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_is_bounded_by_the_next_string_up() {
        assert_eq!(next_after(b"d1/"), Some(b"d10".to_vec()));
        assert_eq!(next_after(&[b'a', 0xFF]), Some(b"b".to_vec()));
        assert_eq!(next_after(&[0xFF, 0xFF]), None);
    }
}
