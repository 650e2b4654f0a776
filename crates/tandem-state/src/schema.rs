//! The schema and its migrations, numbered by `PRAGMA user_version`.

use rusqlite::{params, Transaction};

use crate::Pair;

/// 'TNDM': marks a database as tandem's.
pub const APPLICATION_ID: i64 = 0x544E_444D;

/// Each step takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE baseline(
        path BLOB PRIMARY KEY,
        kind INTEGER NOT NULL,
        size INTEGER NOT NULL,
        hash BLOB,
        link BLOB,
        src_ino INTEGER NOT NULL,
        src_mtime INTEGER NOT NULL,
        src_mode INTEGER NOT NULL,
        tgt_ino INTEGER NOT NULL,
        tgt_mtime INTEGER NOT NULL,
        tgt_mode INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE conflicts(
        id INTEGER PRIMARY KEY,
        path BLOB NOT NULL,
        kind TEXT NOT NULL,
        detected_at INTEGER NOT NULL,
        src_desc TEXT NOT NULL,
        tgt_desc TEXT NOT NULL,
        resolution TEXT NOT NULL,
        copy_path BLOB,
        loser TEXT,
        resolved_at INTEGER,
        resolved_how TEXT
     );
     CREATE INDEX conflicts_open ON conflicts(path) WHERE resolved_at IS NULL;
     CREATE TABLE runs(
        id INTEGER PRIMARY KEY,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        exit_code INTEGER,
        summary TEXT
     );",
    // 1 -> 2: the change journal of a mounted source, and how far each target has read it.
    "CREATE TABLE journal(
        seq INTEGER PRIMARY KEY,
        time INTEGER NOT NULL,
        op TEXT NOT NULL,
        path BLOB NOT NULL,
        path2 BLOB,
        pid INTEGER NOT NULL,
        uid INTEGER NOT NULL
     );
     CREATE TABLE cursors(
        target TEXT PRIMARY KEY,
        seq INTEGER NOT NULL
     );",
    // 2 -> 3: the paths a run skipped or failed, by name, for `tandem status`.
    "CREATE TABLE run_problems(
        run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        path BLOB NOT NULL,
        what TEXT NOT NULL,
        reason TEXT NOT NULL
     );
     CREATE INDEX run_problems_run ON run_problems(run);",
    // 3 -> 4: what each side showed beyond mode and mtime when both agreed: its owner
    // (`--owner`) and a digest of the extended attributes a run keeps (`--xattrs`,
    // `--acls`). NULL where the run that agreed did not read them.
    "ALTER TABLE baseline ADD COLUMN src_uid INTEGER;
     ALTER TABLE baseline ADD COLUMN src_gid INTEGER;
     ALTER TABLE baseline ADD COLUMN src_xattrs BLOB;
     ALTER TABLE baseline ADD COLUMN tgt_uid INTEGER;
     ALTER TABLE baseline ADD COLUMN tgt_gid INTEGER;
     ALTER TABLE baseline ADD COLUMN tgt_xattrs BLOB;",
    // 4 -> 5: the name of the program behind each journal record, for `tandem changes`.
    "ALTER TABLE journal ADD COLUMN comm TEXT;",
    // 5 -> 6: deletions a mount's brake holds back from a target (`tandem held`).
    "CREATE TABLE held(
        id INTEGER PRIMARY KEY,
        target TEXT NOT NULL,
        batch INTEGER NOT NULL,
        path BLOB NOT NULL,
        op TEXT NOT NULL,
        time INTEGER NOT NULL,
        pid INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        comm TEXT,
        action TEXT
     );
     CREATE INDEX held_target ON held(target);",
    // 6 -> 7: versions of source files the mount kept before a request destroyed them
    // (`tandem history`): `file` is the name in the source's `.tandem/history/`, NULL when
    // not kept (`why_not`).
    "CREATE TABLE versions(
        id INTEGER PRIMARY KEY,
        time INTEGER NOT NULL,
        path BLOB NOT NULL,
        size INTEGER NOT NULL,
        file TEXT,
        why_not TEXT,
        op TEXT NOT NULL,
        pid INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        comm TEXT
     );
     CREATE INDEX versions_path ON versions(path);",
    // 7 -> 8: which side a held deletion was made on: through the mount (`source`) or in
    // a watched target (`target`); a path is held once per target.
    "ALTER TABLE held ADD COLUMN side TEXT NOT NULL DEFAULT 'source';
     CREATE INDEX held_target_path ON held(target, path);",
    // 8 -> 9: `tandem changes --since` over a million records reads only what it lists.
    // (Paths are not indexed: an index on them made appending to the journal, the
    // mount's hot path, 3 to 6 times slower; a `--path` query reads every record, cheaply.)
    "CREATE INDEX journal_time ON journal(time);",
];

pub const VERSION: i64 = MIGRATIONS.len() as i64;

pub fn migrate(tx: &Transaction<'_>, from: i64, pair: &Pair, fresh: bool) -> rusqlite::Result<()> {
    for (i, step) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    if from == 0 || fresh {
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('source', ?1)",
            params![pair.src],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('target', ?1)",
            params![pair.tgt],
        )?;
    }
    Ok(())
}
