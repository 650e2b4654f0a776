//! The replicator: journal records in, scoped syncs out. Changes are made on disk and
//! recorded in the real journal by hand, as the mount records them.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use tandem_core::{Change, ChangeOp, ChangeSink, RelPath};
use tandem_engine::{Replicator, ReplicatorConfig, Scope, Session, SyncSpec};
use tandem_state::JournalWriter;

fn spec(tmp: &Path) -> SyncSpec {
    let (src, tgt) = (tmp.join("src"), tmp.join("tgt"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&tgt).unwrap();
    SyncSpec {
        threads: 2,
        ..SyncSpec::new(src, tgt, tmp.join("state"))
    }
}

/// A pair synced once, its session and its journal: what a mount has when it starts.
fn synced(tmp: &Path) -> (SyncSpec, Session, Arc<JournalWriter>) {
    let spec = spec(tmp);
    let mut session = Session::open(&spec).unwrap();
    session.sync(&Scope::All, &|_| {}).unwrap();
    let journal = Arc::new(JournalWriter::open(&spec.state_dir).unwrap());
    (spec, session, journal)
}

/// A replicator driven by hand (`pass`), without a target watcher.
fn replicator(session: Session, journal: &Arc<JournalWriter>) -> Replicator {
    let reader = session.journal_reader().unwrap();
    let config = ReplicatorConfig {
        watch_target: false,
        ..ReplicatorConfig::default()
    };
    Replicator::new(session, Arc::clone(journal), reader, config).unwrap()
}

fn rec(j: &JournalWriter, op: ChangeOp, path: &str, to: Option<&str>) {
    j.record(Change {
        op,
        path: RelPath::from_str_lossless(path),
        to: to.map(RelPath::from_str_lossless),
        pid: 1,
        uid: 0,
    });
}

#[test]
fn records_become_scoped_syncs_and_a_file_waits_for_its_last_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let (spec, session, journal) = synced(tmp.path());
    let mut r = replicator(session, &journal);

    // A file created and written 1000 times, still open: held back.
    std::fs::write(spec.src.join("log.txt"), "x".repeat(1000)).unwrap();
    rec(&journal, ChangeOp::Create, "log.txt", None);
    rec(&journal, ChangeOp::OpenWrite, "log.txt", None);
    for _ in 0..1000 {
        rec(&journal, ChangeOp::Write, "log.txt", None);
    }
    std::fs::create_dir(spec.src.join("d")).unwrap();
    std::fs::write(spec.src.join("d/a"), "a").unwrap();
    rec(&journal, ChangeOp::Mkdir, "d", None);
    rec(&journal, ChangeOp::Create, "d/a", None);
    journal.flush();
    let (read, report) = r.pass(false, &|_| {}).unwrap();
    assert_eq!(read, 1004);
    let report = report.unwrap();
    assert_eq!((report.copied, report.dirs_created), (1, 1), "{report:?}");
    assert!(spec.tgt.join("d/a").exists());
    assert!(
        !spec.tgt.join("log.txt").exists(),
        "an open file waits for its last writer"
    );

    // The last writer closes: copied once.
    rec(&journal, ChangeOp::CloseWrite, "log.txt", None);
    journal.flush();
    let (_, report) = r.pass(false, &|_| {}).unwrap();
    assert_eq!(report.unwrap().copied, 1);
    assert_eq!(
        std::fs::read_to_string(spec.tgt.join("log.txt"))
            .unwrap()
            .len(),
        1000
    );

    // A directory rename is one rename on the target.
    std::fs::rename(spec.src.join("d"), spec.src.join("e")).unwrap();
    rec(&journal, ChangeOp::Rename, "d", Some("e"));
    journal.flush();
    let (_, report) = r.pass(false, &|_| {}).unwrap();
    let report = report.unwrap();
    assert_eq!(
        (report.renamed, report.copied, report.deleted),
        (1, 0, 0),
        "{report:?}"
    );
    assert!(spec.tgt.join("e/a").exists() && !spec.tgt.join("d").exists());

    // The cursor is stored: a new replicator resumes after it.
    let cursor = r.cursor();
    let session = r.into_session();
    let r2 = replicator(session, &journal);
    assert_eq!(r2.cursor(), cursor);
}

#[test]
fn a_new_folder_renamed_before_its_first_sync_arrives_whole_under_its_new_name() {
    let tmp = tempfile::tempdir().unwrap();
    let (spec, session, journal) = synced(tmp.path());
    let mut r = replicator(session, &journal);
    // Recorded under the old name, then moved: only the rename names the new place.
    std::fs::create_dir(spec.src.join("d")).unwrap();
    std::fs::write(spec.src.join("d/a"), "inside").unwrap();
    std::fs::rename(spec.src.join("d"), spec.src.join("e")).unwrap();
    rec(&journal, ChangeOp::Mkdir, "d", None);
    rec(&journal, ChangeOp::Create, "d/a", None);
    rec(&journal, ChangeOp::Rename, "d", Some("e"));
    journal.flush();
    r.pass(false, &|_| {}).unwrap();
    assert_eq!(
        std::fs::read_to_string(spec.tgt.join("e/a")).unwrap(),
        "inside"
    );
    assert!(!spec.tgt.join("d").exists());

    // A folder already synced, renamed: one rename, its content not read again.
    std::fs::rename(spec.src.join("e"), spec.src.join("f")).unwrap();
    rec(&journal, ChangeOp::Rename, "e", Some("f"));
    journal.flush();
    let (_, report) = r.pass(false, &|_| {}).unwrap();
    let report = report.unwrap();
    assert_eq!((report.renamed, report.copied), (1, 0), "{report:?}");
    assert_eq!(
        std::fs::read_to_string(spec.tgt.join("f/a")).unwrap(),
        "inside"
    );
}

/// A pair synced once with 300 files in `big/` and 400 others, and a replicator (without a
/// target watcher) whose delete brake holds more than 100 deletions.
fn braked_pair(tmp: &Path) -> (SyncSpec, Replicator) {
    let spec = spec(tmp);
    std::fs::create_dir_all(spec.src.join("big")).unwrap();
    for i in 0..300 {
        std::fs::write(spec.src.join(format!("big/f{i:03}")), format!("file {i}")).unwrap();
    }
    // Enough besides that `--max-delete` (half the tree) lets the reconcile through.
    for i in 0..400 {
        std::fs::write(spec.src.join(format!("k{i:03}")), "kept").unwrap();
    }
    let mut session = Session::open(&spec).unwrap();
    session.sync(&Scope::All, &|_| {}).unwrap();
    let journal = Arc::new(JournalWriter::open(&spec.state_dir).unwrap());
    let reader = session.journal_reader().unwrap();
    let config = ReplicatorConfig {
        watch_target: false,
        brake: Some(tandem_engine::BrakeLimit {
            count: 100,
            window: std::time::Duration::from_secs(60),
        }),
        ..ReplicatorConfig::default()
    };
    let r = Replicator::new(session, Arc::clone(&journal), reader, config).unwrap();
    (spec, r)
}

/// Deletes `big/` and 5 other files in the target, unseen by any watcher.
fn mass_delete_in_target(spec: &SyncSpec) {
    std::fs::remove_dir_all(spec.tgt.join("big")).unwrap();
    for i in 0..5 {
        std::fs::remove_file(spec.tgt.join(format!("k{i:03}"))).unwrap();
    }
}

/// The source kept everything; the store holds the 306 deletions as made in the target;
/// a release applies them to the source.
fn held_then_released(spec: &SyncSpec, r: Replicator) {
    use tandem_core::Side;
    assert_eq!(
        std::fs::read_dir(spec.src.join("big")).unwrap().count(),
        300
    );
    assert_eq!(
        std::fs::read_to_string(spec.src.join("big/f123")).unwrap(),
        "file 123"
    );
    let session = r.into_session();
    let held = session.store().held(None).unwrap();
    assert_eq!(held.len(), 306, "the files, their folder and the 5 others");
    assert!(held.iter().all(|h| h.side == Side::Target), "{held:?}");
    // Under the brake's limit on their own, but found in the same reconcile: held too.
    assert!(spec.src.join("k000").exists());
    drop(session);

    let n = tandem_engine::settle_held(
        &SyncSpec {
            max_delete_percent: 100,
            ..spec.clone()
        },
        None,
        tandem_state::HeldAction::Release,
    )
    .unwrap();
    assert_eq!(n, 306);
    assert!(
        !spec.src.join("big").exists(),
        "released: applied to the source"
    );
    assert!(!spec.src.join("k000").exists() && spec.src.join("k005").exists());
}

/// A whole-tree reconcile of a mount (after lost watcher events, or the periodic rescan)
/// that finds more deletions in the target than the delete brake allows holds them as
/// deletions made in the target: the source keeps them, `tandem held` lists them, and a
/// release applies them. (issue 18)
#[test]
fn issue_18_a_rescan_finding_a_mass_delete_in_the_target_holds_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (spec, mut r) = braked_pair(tmp.path());
    mass_delete_in_target(&spec);
    // What a watcher's lost events (a queue overflow) and `--rescan-every` ask for.
    r.rescan("lost events");
    r.pass(false, &|_| {}).unwrap();
    // A later reconcile leaves what is held alone: not held twice, not applied.
    r.rescan("periodic rescan");
    r.pass(false, &|_| {}).unwrap();
    held_then_released(&spec, r);
}

/// A mount started after its target was emptied while nothing was mounted holds the mass
/// delete as one made in the target while mounted, instead of emptying the source. (issue 18)
#[test]
fn issue_18_a_mounts_startup_holds_a_mass_delete_made_in_the_target_while_down() {
    let tmp = tempfile::tempdir().unwrap();
    let (spec, mut r) = braked_pair(tmp.path());
    mass_delete_in_target(&spec);
    let report = r.startup(&|_| {}).unwrap();
    assert_eq!(report.braked.len(), 306, "{:?}", report.braked);
    held_then_released(&spec, r);
}

/// Deletions found by a reconcile up to the brake's count are applied as found.
#[test]
fn issue_18_a_rescan_applies_deletions_under_the_brakes_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let (spec, mut r) = braked_pair(tmp.path());
    for i in 0..100 {
        std::fs::remove_file(spec.tgt.join(format!("k{i:03}"))).unwrap();
    }
    r.rescan("lost events");
    r.pass(false, &|_| {}).unwrap();
    assert!(!spec.src.join("k000").exists() && !spec.src.join("k099").exists());
    assert!(spec.src.join("k100").exists());
    assert!(r.into_session().store().held(None).unwrap().is_empty());
}
