//! Invariant 2: the disk changes between scan and apply (the engine's `Planned` event
//! fires after the plan is made and before anything is written), and a file changes while
//! it is copied. Nothing is clobbered, nothing is stored torn, no version is lost.
#![allow(clippy::unwrap_used)]
// Symlinks and positioned writes as Unix has them.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use tandem_engine::{Event, Report, SyncSpec};

struct Pair {
    _tmp: tempfile::TempDir,
    src: PathBuf,
    tgt: PathBuf,
    state: PathBuf,
}

impl Pair {
    fn new() -> Pair {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let tgt = tmp.path().join("tgt");
        std::fs::create_dir(&src).unwrap();
        std::fs::create_dir(&tgt).unwrap();
        let state = tmp.path().join("state");
        Pair {
            _tmp: tmp,
            src,
            tgt,
            state,
        }
    }

    fn spec(&self) -> SyncSpec {
        SyncSpec {
            max_delete_percent: 100,
            threads: 2,
            ..SyncSpec::new(self.src.clone(), self.tgt.clone(), self.state.clone())
        }
    }

    fn sync(&self) -> Report {
        tandem_engine::sync(&self.spec(), &|_| {}).unwrap()
    }

    /// Syncs, running `meddle` once, after the plan is made and before it is applied.
    fn sync_meddling(&self, meddle: impl FnOnce()) -> Report {
        let once = Mutex::new(Some(meddle));
        tandem_engine::sync(&self.spec(), &|e| {
            if let Event::Planned { .. } = e {
                if let Some(f) = once.lock().unwrap().take() {
                    f();
                }
            }
        })
        .unwrap()
    }
}

/// Every file content on both sides, conflict copies and trash included.
fn all_contents(roots: &[&Path]) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                walk(&e.path(), out);
            } else if ft.is_file() {
                out.push(String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned());
            }
        }
    }
    for r in roots {
        walk(r, &mut out);
    }
    out
}

#[test]
fn target_edited_between_scan_and_apply_is_not_overwritten() {
    let p = Pair::new();
    std::fs::write(p.src.join("f"), "v1").unwrap();
    p.sync();
    std::fs::write(p.src.join("f"), "v2 from the source").unwrap();
    let r = p.sync_meddling(|| {
        std::fs::write(p.tgt.join("f"), "edited on the target during the sync").unwrap()
    });
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert_eq!(r.conflicts.len(), 1, "re-planned into a conflict: {r:?}");
    for side in [&p.src, &p.tgt] {
        let c = all_contents(&[side]);
        assert!(c.contains(&"v2 from the source".to_string()), "{c:?}");
        assert!(
            c.contains(&"edited on the target during the sync".to_string()),
            "{c:?}"
        );
    }
}

#[test]
fn file_created_on_the_target_at_a_path_being_created_is_kept() {
    let p = Pair::new();
    std::fs::write(p.src.join("new.txt"), "source's new file").unwrap();
    let r = p.sync_meddling(|| {
        std::fs::write(p.tgt.join("new.txt"), "target's new file, same name").unwrap()
    });
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    let c = all_contents(&[&p.src, &p.tgt]);
    assert_eq!(
        c.iter().filter(|s| *s == "source's new file").count(),
        2,
        "{c:?}"
    );
    assert_eq!(
        c.iter()
            .filter(|s| *s == "target's new file, same name")
            .count(),
        2,
        "{c:?}"
    );
}

#[test]
fn a_folder_that_gains_a_file_before_its_deletion_is_kept() {
    let p = Pair::new();
    std::fs::create_dir(p.src.join("d")).unwrap();
    std::fs::write(p.src.join("d/old"), "old").unwrap();
    std::fs::write(p.src.join("keep"), "keep").unwrap();
    p.sync();
    std::fs::remove_dir_all(p.src.join("d")).unwrap();
    let r = p
        .sync_meddling(|| std::fs::write(p.tgt.join("d/late"), "written during the sync").unwrap());
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    for side in [&p.src, &p.tgt] {
        assert_eq!(
            std::fs::read_to_string(side.join("d/late")).unwrap(),
            "written during the sync"
        );
    }
    assert!(!p.tgt.join("d/old").exists());
}

#[test]
fn a_source_deleted_before_its_copy_is_planned_again() {
    let p = Pair::new();
    std::fs::write(p.src.join("a"), "a").unwrap();
    std::fs::write(p.src.join("b"), "b").unwrap();
    let r = p.sync_meddling(|| std::fs::remove_file(p.src.join("a")).unwrap());
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert!(!p.tgt.join("a").exists());
    assert_eq!(std::fs::read_to_string(p.tgt.join("b")).unwrap(), "b");
    let again = p.sync();
    assert_eq!((again.copied, again.deleted), (0, 0));
}

#[test]
fn a_target_file_deleted_before_its_update_is_not_resurrected_blindly() {
    let p = Pair::new();
    std::fs::write(p.src.join("f"), "v1").unwrap();
    std::fs::write(p.src.join("g"), "g").unwrap();
    p.sync();
    std::fs::write(p.src.join("f"), "v2").unwrap();
    let r = p.sync_meddling(|| std::fs::remove_file(p.tgt.join("f")).unwrap());
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    // Source modified, target deleted: the modification wins, on the second round.
    assert_eq!(std::fs::read_to_string(p.tgt.join("f")).unwrap(), "v2");
}

/// The paths the baseline holds.
fn baseline_paths(p: &Pair) -> Vec<String> {
    let pair = tandem_state::Pair {
        src: p.src.to_string_lossy().into_owned(),
        tgt: p.tgt.to_string_lossy().into_owned(),
    };
    let store = tandem_state::Store::open_existing(&p.state, &pair)
        .unwrap()
        .unwrap();
    store
        .load_baseline()
        .unwrap()
        .keys()
        .map(|k| k.to_string())
        .collect()
}

#[test]
fn issue_20_a_temporary_file_gone_before_its_copy_in_every_round_is_not_a_failure() {
    let p = Pair::new();
    std::fs::write(p.src.join("keep"), "keep").unwrap();
    std::fs::write(p.src.join("dl.1.partial"), "part").unwrap();
    // A downloader's temporary file, replaced under a new name after each plan: every
    // round (the last included) finds its copy's source gone.
    let rounds = Mutex::new(1);
    let r = tandem_engine::sync(&p.spec(), &|e| {
        if let Event::Planned { .. } = e {
            let mut n = rounds.lock().unwrap();
            std::fs::remove_file(p.src.join(format!("dl.{n}.partial"))).unwrap();
            *n += 1;
            std::fs::write(p.src.join(format!("dl.{n}.partial")), "part").unwrap();
        }
    })
    .unwrap();
    let last = *rounds.lock().unwrap();
    assert!(last > 2, "the copy raced in more than one round: {last}");
    assert!(r.failed.is_empty(), "nothing left to sync: {:?}", r.failed);
    assert_eq!(r.exit_code(), 0, "{r:?}");
    assert_eq!(std::fs::read_to_string(p.tgt.join("keep")).unwrap(), "keep");
    let names: Vec<_> = std::fs::read_dir(&p.tgt)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        // tandem's own folder (the pair's marker) is not synced content.
        .filter(|n| n != ".tandem")
        .collect();
    assert_eq!(
        names,
        vec!["keep".to_string()],
        "nothing else in the target"
    );
    assert_eq!(
        std::fs::read_dir(p.tgt.join(".tandem"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect::<Vec<_>>(),
        vec!["markers".to_string()],
        "no temporary file in tandem's folder either"
    );
    // Invariant 4: the baseline does not take the vanished files for existing.
    assert_eq!(baseline_paths(&p), vec!["keep".to_string()]);
    // The one made after the last plan is an ordinary new file for the next run.
    std::fs::remove_file(p.src.join(format!("dl.{last}.partial"))).unwrap();
    let again = p.sync();
    assert_eq!((again.copied, again.deleted), (0, 0), "{again:?}");
    assert!(again.failed.is_empty(), "{:?}", again.failed);
}

#[test]
fn issue_20_a_symlink_gone_before_its_copy_is_not_a_failure() {
    let p = Pair::new();
    std::fs::write(p.src.join("keep"), "keep").unwrap();
    std::os::unix::fs::symlink("keep", p.src.join("link")).unwrap();
    let r = p.sync_meddling(|| std::fs::remove_file(p.src.join("link")).unwrap());
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert_eq!(r.exit_code(), 0, "{r:?}");
    assert!(std::fs::symlink_metadata(p.tgt.join("link")).is_err());
    assert_eq!(baseline_paths(&p), vec!["keep".to_string()]);
}

/// A file rewritten without pause while it is synced: every 4 KiB block carries the
/// version number of the write that produced it, so a torn copy would mix versions.
#[test]
fn a_file_written_while_it_is_copied_is_never_stored_torn() {
    const BLOCKS: usize = 4096; // 16 MiB
    let p = Pair::new();
    let path = p.src.join("busy.bin");
    let write_version = |v: u64| {
        let block: Vec<u8> = v.to_le_bytes().iter().cycle().take(4096).copied().collect();
        // In place, never truncated (every state of the file is full-size), one block per
        // write call as programs do: a copy can interleave with it.
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap();
        for _ in 0..BLOCKS {
            f.write_all(&block).unwrap();
        }
    };
    write_version(0);
    let stop = AtomicBool::new(false);
    let report = std::thread::scope(|s| {
        s.spawn(|| {
            let mut v = 1;
            while !stop.load(Ordering::Relaxed) {
                write_version(v);
                v += 1;
            }
        });
        let r = p.sync();
        stop.store(true, Ordering::Relaxed);
        r
    });
    if let Ok(data) = std::fs::read(p.tgt.join("busy.bin")) {
        assert_eq!(data.len(), BLOCKS * 4096, "a complete file or none");
        let first = &data[..8];
        assert!(
            data.chunks(8).all(|c| c == first),
            "torn copy: blocks from different writes"
        );
    } else {
        assert!(
            report
                .failed
                .iter()
                .any(|f| f.path.to_string() == "busy.bin" && f.reason.contains("next run")),
            "a file that never settles is reported: {report:?}"
        );
    }
    // Once it settles, it syncs.
    let r = p.sync();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert_eq!(
        std::fs::read(p.tgt.join("busy.bin")).unwrap(),
        std::fs::read(&path).unwrap()
    );
}

/// A program rewriting a file in place pauses halfway (preempted on a busy machine,
/// throttled by writeback) right when the file is copied: nothing changes while the copy
/// runs, yet the file holds half of each version. The copy waits for the file to settle,
/// sees the rest of the write land, and copies the finished version.
///
/// The first half is written after the plan with the mtime put back, as on kernels with
/// coarse timestamps a write in the same clock tick as the scan leaves it: the plan still
/// holds. The ctime, which no program can set back, shows the write.
#[test]
fn issue_20_a_file_whose_writer_pauses_halfway_is_not_copied_torn() {
    const BLOCKS: usize = 64;
    let p = Pair::new();
    let path = p.src.join("paused.bin");
    let version = |v: u8| vec![v; BLOCKS / 2 * 4096];
    let write_at = |data: &[u8], at: u64| {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(data, at).unwrap();
        f
    };
    std::fs::write(&path, [version(0), version(0)].concat()).unwrap();
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    let report = std::thread::scope(|s| {
        let once = Mutex::new(true);
        tandem_engine::sync(&p.spec(), &|e| {
            if let Event::Planned { .. } = e {
                if std::mem::take(&mut *once.lock().unwrap()) {
                    write_at(&version(1), 0).set_modified(mtime).unwrap();
                    // The writer resumes well within the settle time.
                    s.spawn(|| {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                        write_at(&version(1), (BLOCKS / 2 * 4096) as u64);
                    });
                }
            }
        })
        .unwrap()
    });
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let data = std::fs::read(p.tgt.join("paused.bin")).unwrap();
    assert_eq!(data.len(), BLOCKS * 4096);
    assert!(
        data.iter().all(|b| *b == 1),
        "torn copy: the first half of the new version over the old one"
    );
}

#[test]
fn temporary_files_of_a_crashed_tandem_go_to_the_trash_and_live_ones_are_kept() {
    let p = Pair::new();
    std::fs::write(p.src.join("f"), "f").unwrap();
    p.sync();
    // A pid that cannot be running (above the kernel's maximum), and this test's own.
    std::fs::create_dir(p.tgt.join("d")).unwrap();
    std::fs::write(p.tgt.join("d/.tandem-tmp.99999999.3"), "half a copy").unwrap();
    let live = format!(".tandem-tmp.{}.1", std::process::id());
    std::fs::write(p.tgt.join(&live), "a copy in progress").unwrap();
    let r = p.sync();
    assert!(r.failed.is_empty(), "{r:?}");
    assert!(
        !p.tgt.join("d/.tandem-tmp.99999999.3").exists(),
        "the dead writer's temp file is gone"
    );
    // A crash can leave a user's version under that name (swapped out to be checked
    // before a replace): it is kept in the trash, never deleted.
    let trashed: Vec<String> = walk_files(&p.tgt.join(".tandem/trash"))
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert_eq!(trashed, vec!["half a copy".to_string()]);
    assert!(
        p.tgt.join(&live).exists(),
        "a live writer's temp file is left alone"
    );
    assert!(
        !p.src.join("d/.tandem-tmp.99999999.3").exists(),
        "never synced"
    );
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}
