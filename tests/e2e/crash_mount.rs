//! Issue 20's kill -9 campaign for a mounted session: programs write through the mount and
//! directly in the target while the mount's startup sync, replicator and reverse merge
//! run; the mount is killed at a uniformly random moment, restarted as a user would, and
//! the pair is then stopped and synced once more. The oracle is the one of `crash`: every
//! version a writer completed survives somewhere (tree, conflict copy or trash), no file in
//! either tree is torn (except one a writer itself left half-written when the mount died
//! under it), and the two trees converge with nothing left to plan.
//!
//! The writers never overwrite or delete (each version they make stays someone's to keep):
//! they create files under unique names, rename their own files and folders, and now and
//! then both create the same name (a conflict).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::crash::{self, Figures, Rng, Versions};
use crate::fixtures::*;
use crate::mount::{fuse_available, Mounted};

/// What the writers did: versions whose write and close returned, and versions whose write
/// failed (the mount died under it), which may be left torn.
#[derive(Default)]
pub(crate) struct Written {
    pub done: BTreeSet<u64>,
    pub failed: BTreeSet<u64>,
}

impl Written {
    /// What the oracle excuses as not torn: a writer's file is empty between its create
    /// and its write (and stays so when the mount dies in between), a state tandem may
    /// well have seen and kept, as a conflict copy when the kill fell between copying it
    /// and committing; a writer's half-written version is its own doing.
    pub fn torn_ok(&self, c: &[u8]) -> bool {
        c.is_empty()
            || self
                .failed
                .iter()
                .any(|id| c.starts_with(format!("tandem-version {id:010} ").as_bytes()))
    }
}

/// One writer on one side: creates and renames its own files until told to stop.
pub(crate) fn writer(
    root: PathBuf,
    tag: &'static str,
    seed: u64,
    versions: Arc<Mutex<Versions>>,
    written: Arc<Mutex<Written>>,
    stop: Arc<AtomicBool>,
) {
    let mut rng = Rng::new(seed);
    let mut mine: Vec<PathBuf> = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let r = rng.below(10);
        if r < 2 && !mine.is_empty() {
            let i = rng.below(mine.len() as u64) as usize;
            let to = mine[i].with_file_name(format!("{tag}-moved-{n}"));
            if std::fs::rename(&mine[i], &to).is_ok() {
                mine[i] = to;
            }
        } else {
            let len = if rng.chance(5) {
                200_000 + rng.below(800_000) as usize
            } else {
                40 + rng.below(5000) as usize
            };
            let (id, c) = versions.lock().unwrap().make(len);
            let name = if rng.chance(5) {
                // Both writers make `shared-K` with their own content: a conflict.
                format!("shared-{}", n / 5)
            } else {
                format!("{tag}-{n}")
            };
            let path = root.join(format!("w{}", rng.below(4))).join(name);
            let ok = std::fs::create_dir_all(path.parent().unwrap()).is_ok()
                && std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .and_then(|mut f| std::io::Write::write_all(&mut f, &c))
                    .is_ok();
            let mut w = written.lock().unwrap();
            if ok {
                w.done.insert(id);
                mine.push(path);
            } else {
                w.failed.insert(id);
            }
        }
        std::thread::sleep(Duration::from_micros(rng.below(3000)));
    }
}

/// One run: writers on both sides, a kill at a random moment, a restart, then a stop and a
/// final sync; the oracle.
fn one_run(seed: u64, f: &mut Figures) {
    let mut rng = Rng::new(seed);
    let versions = Arc::new(Mutex::new(Versions::default()));
    let p = Pair::new();
    for (root, files) in [(&p.src, 40), (&p.tgt, 15)] {
        for i in 0..files {
            let (_, c) = versions.lock().unwrap().make(40 + rng.below(4000) as usize);
            write_file(&root.join(format!("d{}/f{i}", rng.below(4))), &c);
        }
    }
    let mut live = crash::live_versions(&p);
    let written = Arc::new(Mutex::new(Written::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut m = Mounted::start(&p);
    let threads: Vec<_> = [(p.src.clone(), "s"), (p.tgt.clone(), "t")]
        .into_iter()
        .enumerate()
        .map(|(i, (root, tag))| {
            let (v, w, s) = (versions.clone(), written.clone(), stop.clone());
            let seed = seed ^ ((i as u64 + 1) * 0x51);
            std::thread::spawn(move || writer(root, tag, seed, v, w, s))
        })
        .collect();
    let delay = Duration::from_millis(rng.below(1500));
    std::thread::sleep(delay);
    m.kill9();
    f.kills_landed += 1;
    stop.store(true, Ordering::SeqCst);
    // The restart aborts the dead connection, which frees a writer caught in it.
    let m = m.restart();
    for t in threads {
        t.join().unwrap();
    }
    let what = format!("seed {seed}, mount killed at {delay:?}");
    let st = m.stop();
    if !st.success() {
        f.non_converged += 1;
        f.failures.push(format!(
            "{what}: the restarted mount exited {st} on SIGTERM"
        ));
    }
    let w = written.lock().unwrap();
    live.extend(&w.done);
    f.versions_written += w.done.len() as u64;
    let before = f.failures.len();
    // Anything that is not a whole version, nor excused by `torn_ok`, is torn.
    crash::recover_and_check(&p, &live, &what, &|c| w.torn_ok(c), f);
    if f.failures.len() > before {
        let kept = p.tmp.path().to_path_buf();
        std::mem::forget(p);
        eprintln!(
            "campaign: folders of the failed run kept in {}",
            kept.display()
        );
    }
}

#[test]
fn campaign_mount_killed_at_random_points_loses_nothing_and_converges() {
    if !fuse_available() {
        return;
    }
    let runs = crash::env_u64("TANDEM_CAMPAIGN_RUNS", 3);
    let seed = crash::env_u64("TANDEM_CAMPAIGN_SEED", 20);
    let mut f = Figures::default();
    let start = Instant::now();
    for r in 0..runs {
        f.runs += 1;
        one_run(seed.wrapping_add(r), &mut f);
    }
    crash::report(&f.json("mount-kill9", seed));
    assert!(
        f.versions_written > 0,
        "the writers wrote nothing: the campaign checked nothing"
    );
    assert!(
        f.failures.is_empty(),
        "{} failures in {:?}:\n{}",
        f.failures.len(),
        start.elapsed(),
        f.failures.join("\n")
    );
}
