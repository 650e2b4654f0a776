//! Issue 20's power-loss campaign: `tandem sync` with its target, its state folder, or
//! both on `tandem-testfs` (a FUSE file system that keeps unsynced writes in memory, as
//! LazyFS does). At a uniformly random moment of a sync the power goes: tandem is killed
//! (kill -9) and every unsynced write is dropped at once; the file systems "reboot"
//! (remount with only what was synced) and a sync runs again. Oracle, on top of the kill
//! -9 campaign's (no lost version, no torn file, convergence):
//! - invariant 4, before the recovery sync: no baseline entry records a file that the
//!   target's disk does not hold (a lost file would look like a user's deletion);
//! - the state database comes back consistent (`PRAGMA integrity_check`), and the next
//!   run opens it.
//!
//! The mounted variant (`campaign_mount_power_cut_...`, see `one_mounted_run`) cuts the
//! power during a `tandem mount` session instead, with a program writing through it.
//!
//! `cargo test` runs a few runs; `scripts/reliability/run` sets `TANDEM_CAMPAIGN_RUNS`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tandem_testfs::TestFs;

use crate::crash::*;
use crate::crash_mount::{writer, Written};
use crate::fixtures::*;
use crate::mount::{fuse_available, Mounted};

/// Which folders sit on the test file system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnTestFs {
    Target,
    State,
    Both,
}

impl OnTestFs {
    const ALL: [OnTestFs; 3] = [OnTestFs::Target, OnTestFs::State, OnTestFs::Both];
}

/// FUSE can be mounted here; under CI=true its absence is a failure.
pub fn testfs_available(test: &str) -> bool {
    let open = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse");
    match open {
        Ok(_) => true,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true, but /dev/fuse cannot be opened for {test}: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED {test}: /dev/fuse cannot be opened ({e})");
            false
        }
    }
}

/// A pair whose target and/or state folder are on test file systems. The mounts are
/// declared first: they go before the folders under them.
pub struct Lab {
    pub tgt_fs: Option<TestFs>,
    pub state_fs: Option<TestFs>,
    pub on: OnTestFs,
    pub p: Pair,
}

impl Lab {
    pub fn new(on: OnTestFs) -> Lab {
        let p = Pair::new();
        let disk = |name: &str| {
            let d = p.tmp.path().join(name);
            std::fs::create_dir(&d).unwrap();
            d
        };
        let tgt_fs =
            (on != OnTestFs::State).then(|| TestFs::mount(&disk("tgt-disk"), &p.tgt).unwrap());
        let state_fs = (on != OnTestFs::Target).then(|| {
            std::fs::create_dir(&p.state).unwrap();
            TestFs::mount(&disk("state-disk"), &p.state).unwrap()
        });
        Lab {
            tgt_fs,
            state_fs,
            on,
            p,
        }
    }

    fn disks(&mut self) -> impl Iterator<Item = &mut TestFs> {
        self.tgt_fs.iter_mut().chain(self.state_fs.iter_mut())
    }

    /// Everything written so far is made durable (the set-up of a run, not the run).
    pub fn settle(&mut self) {
        for fs in self.disks() {
            fs.sync_all().unwrap();
        }
    }

    /// The power goes on every test file system at once, then they come back. What the
    /// cut took: see `cut_power`.
    pub fn power_cut_and_reboot(&mut self) -> Dropped {
        let dropped = cut_power(&self.tgt_fs, &self.state_fs);
        for fs in self.disks() {
            fs.reboot().unwrap();
        }
        dropped
    }

    /// Keeps the folders of a failed run for a look (the mounts go, their disks stay).
    pub fn keep(self) -> std::path::PathBuf {
        let Lab {
            tgt_fs,
            state_fs,
            p,
            ..
        } = self;
        drop((tgt_fs, state_fs));
        let kept = p.tmp.path().to_path_buf();
        std::mem::forget(p);
        kept
    }
}

/// What a power cut took: files with unsynced data, and namespace operations undone
/// (counted right before the cut, so that the figures show the cuts bit).
#[derive(Clone, Copy, Debug, Default)]
pub struct Dropped {
    pub files: u64,
    pub names: u64,
}

/// The power goes on every test file system of a lab at once (a borrow of the mounts
/// alone, for a test that holds the pair).
fn cut_power(tgt_fs: &Option<TestFs>, state_fs: &Option<TestFs>) -> Dropped {
    let mut d = Dropped::default();
    for fs in tgt_fs.iter().chain(state_fs.iter()) {
        d.files += fs.unsynced_files() as u64;
        d.names += fs.unsynced_names() as u64;
        fs.cut_power();
    }
    d
}

/// Runs a sync and, after `delay`, cuts the power: kill -9 and the unsynced writes
/// dropped in the same moment, then a reboot. True when the sync was still running.
fn sync_cut_after(lab: &mut Lab, delay: Duration, f: &mut PowerFigures) -> bool {
    let mut child = Command::new(bin())
        .arg("sync")
        .arg(&lab.p.src)
        .arg(&lab.p.tgt)
        .arg("--state-dir")
        .arg(&lab.p.state)
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + delay;
    while Instant::now() < until && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_micros(200).min(until - Instant::now()));
    }
    let landed = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    f.took(lab.power_cut_and_reboot());
    landed
}

/// Baseline entries the cut sync wrote for a file on neither side: not a loss (the next
/// sync drops them), but not reality either. Reported apart from `baseline_ahead_of_disk`.
pub fn stale_entries(lab: &Lab, before: &BaseFiles) -> Result<Vec<String>, String> {
    Ok(baseline_files(lab)?
        .into_iter()
        .filter(|(rel, v)| before.get(rel) != Some(v))
        .map(|(rel, _)| rel)
        .filter(|rel| !lab.p.tgt.join(rel).exists() && !lab.p.src.join(rel).exists())
        .collect())
}

/// A baseline's file entries: path → (size, content hash).
pub type BaseFiles = BTreeMap<String, (i64, Option<Vec<u8>>)>;

/// The file entries of the pair's baseline (none before a first sync). An error: the
/// state database is not consistent.
pub fn baseline_files(lab: &Lab) -> Result<BaseFiles, String> {
    let db = lab.p.state.join("state.db");
    if !db.exists() {
        return Ok(BaseFiles::new());
    }
    let conn = rusqlite::Connection::open(&db).map_err(|e| format!("open {db:?}: {e}"))?;
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| format!("integrity_check: {e}"))?;
    if check != "ok" {
        return Err(format!("integrity_check: {check}"));
    }
    let mut stmt = conn
        .prepare("SELECT path, size, hash FROM baseline WHERE kind = 1")
        .map_err(|e| format!("read the baseline: {e}"))?;
    let rows = stmt
        .query_map([], |r| {
            let path: Vec<u8> = r.get(0)?;
            Ok((
                String::from_utf8_lossy(&path).into_owned(),
                (r.get(1)?, r.get(2)?),
            ))
        })
        .map_err(|e| format!("read the baseline: {e}"))?;
    rows.collect::<Result<_, _>>()
        .map_err(|e| format!("read the baseline: {e}"))
}

/// Invariant 4 after a reboot, before anything runs: each baseline entry that the cut
/// sync wrote (new or changed since `before`) against the target's disk. Where the state
/// folder kept every commit (it is not on a test file system), such an entry must match
/// the disk exactly; where it may have lost its last commits too, the baseline may lag
/// the disk (harmless: both sides agree), so only a torn file counts.
pub fn baseline_ahead_of_disk(lab: &Lab, before: &BaseFiles) -> Result<Vec<String>, String> {
    let exact = lab.on == OnTestFs::Target;
    let mut ahead = Vec::new();
    for (rel, (size, hash)) in baseline_files(lab)? {
        if before.get(&rel) == Some(&(size, hash.clone())) {
            continue;
        }
        let why = match std::fs::read(lab.p.tgt.join(&rel)) {
            // On neither side: nothing is at stake (the next sync drops the entry), and
            // the disk lost nothing; counted apart (see `stale_entries`).
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound && !lab.p.src.join(&rel).exists() =>
            {
                None
            }
            Err(e) => (exact || e.kind() != std::io::ErrorKind::NotFound)
                .then(|| format!("missing ({e})")),
            Ok(c) if version_of(&c).is_none() => Some(format!("torn ({} bytes)", c.len())),
            Ok(c) if exact && c.len() as i64 != size => {
                Some(format!("{} bytes, the baseline says {size}", c.len()))
            }
            Ok(c)
                if exact
                    && hash
                        .as_ref()
                        .is_some_and(|h| h != blake3::hash(&c).as_bytes()) =>
            {
                Some("another content than the baseline's".into())
            }
            Ok(_) => None,
        };
        if let Some(why) = why {
            ahead.push(format!("{rel}: {why}"));
        }
    }
    Ok(ahead)
}

/// The figures of a power-loss campaign.
#[derive(Debug, Default)]
struct PowerFigures {
    sync: Figures,
    cuts: u64,
    cuts_during_sync: u64,
    baseline_ahead: u64,
    stale_entries: u64,
    state_inconsistent: u64,
    dropped: Dropped,
}

impl PowerFigures {
    fn took(&mut self, d: Dropped) {
        self.dropped.files += d.files;
        self.dropped.names += d.names;
    }

    fn json(&self, campaign: &str, seed: u64) -> String {
        format!(
            "{{\"campaign\":\"{campaign}\",\"seed\":{seed},\"runs\":{},\"versions_written\":{},\"power_cuts\":{},\"cuts_during_sync\":{},\"lost_versions\":{},\"torn_files\":{},\"non_converged\":{},\"baseline_ahead_of_disk\":{},\"stale_baseline_entries\":{},\"state_inconsistent\":{},\"unsynced_files_dropped\":{},\"unsynced_names_undone\":{}}}",
            self.sync.runs,
            self.sync.versions_written,
            self.cuts,
            self.cuts_during_sync,
            self.sync.lost_versions,
            self.sync.torn_files,
            self.sync.non_converged,
            self.baseline_ahead,
            self.stale_entries,
            self.state_inconsistent,
            self.dropped.files,
            self.dropped.names
        )
    }
}

/// After a reboot: invariant 4 and the state's consistency, then the kill -9 oracle.
fn check_after_cut(
    lab: &mut Lab,
    live: &BTreeSet<u64>,
    before: &BaseFiles,
    what: &str,
    f: &mut PowerFigures,
) {
    check_baseline(lab, before, what, f);
    recover_and_check(&lab.p, live, what, &|_| false, &mut f.sync);
    lab.settle();
}

/// Invariant 4 and the state's consistency after a reboot, before anything runs.
fn check_baseline(lab: &Lab, before: &BaseFiles, what: &str, f: &mut PowerFigures) {
    if let Ok(stale) = stale_entries(lab, before) {
        if !stale.is_empty() {
            eprintln!("campaign: {what}: baseline entries for files on neither side: {stale:?}");
        }
        f.stale_entries += stale.len() as u64;
    }
    match baseline_ahead_of_disk(lab, before) {
        Ok(ahead) if ahead.is_empty() => {}
        Ok(ahead) => {
            f.baseline_ahead += ahead.len() as u64;
            f.sync.failures.push(format!(
                "{what}: the baseline is ahead of the disk for {} files: {}",
                ahead.len(),
                ahead.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
            ));
        }
        Err(e) => {
            f.state_inconsistent += 1;
            f.sync
                .failures
                .push(format!("{what}: the state database is not consistent: {e}"));
        }
    }
}

/// One run: a first sync cut, then an incremental one (edits, renames, conflicts) cut.
fn one_run(seed: u64, on: OnTestFs, window: (Duration, Duration), f: &mut PowerFigures) {
    let mut rng = Rng::new(seed);
    let mut v = Versions::default();
    let mut lab = Lab::new(on);
    populate(&lab.p.src, &mut rng, &mut v, 100);
    populate(&lab.p.tgt, &mut rng, &mut v, 30);
    lab.settle();
    let phases = [("first sync", window.0), ("incremental sync", window.1)];
    for (i, (phase, w)) in phases.into_iter().enumerate() {
        if i == 1 {
            mutate(&lab.p.src, &mut rng, &mut v, 20);
            mutate(&lab.p.tgt, &mut rng, &mut v, 20);
            both_sides_edit(&lab.p, &mut rng, &mut v, 3);
            lab.settle();
        }
        let live = live_versions(&lab.p);
        let base_before = baseline_files(&lab).unwrap();
        let delay = Duration::from_nanos(rng.below((w.as_nanos() as u64 * 6 / 5).max(1)));
        f.cuts += 1;
        if sync_cut_after(&mut lab, delay, f) {
            f.cuts_during_sync += 1;
        }
        let before = f.sync.failures.len();
        let what = format!("seed {seed}, {on:?} on the test fs, {phase}, power cut at {delay:?}");
        check_after_cut(&mut lab, &live, &base_before, &what, f);
        if f.sync.failures.len() > before {
            for failure in &f.sync.failures[before..] {
                eprintln!(
                    "campaign: FAILED {}",
                    failure.chars().take(2000).collect::<String>()
                );
            }
            eprintln!(
                "campaign: folders of the failed run kept in {} (the test file systems' disks: tgt-disk, state-disk)",
                lab.keep().display()
            );
            return;
        }
    }
}

/// How long each phase's sync takes uncut, with everything on test file systems.
fn calibrate(seed: u64) -> (Duration, Duration) {
    let mut rng = Rng::new(seed);
    let mut v = Versions::default();
    let mut lab = Lab::new(OnTestFs::Both);
    populate(&lab.p.src, &mut rng, &mut v, 100);
    populate(&lab.p.tgt, &mut rng, &mut v, 30);
    lab.settle();
    let t = Instant::now();
    lab.p.sync(&["--quiet"]);
    let first = t.elapsed();
    mutate(&lab.p.src, &mut rng, &mut v, 20);
    mutate(&lab.p.tgt, &mut rng, &mut v, 20);
    both_sides_edit(&lab.p, &mut rng, &mut v, 3);
    lab.settle();
    let t = Instant::now();
    lab.p.sync(&["--quiet"]);
    (first, t.elapsed())
}

#[test]
fn campaign_sync_power_cut_at_random_points_loses_nothing() {
    if !testfs_available("campaign_sync_power_cut_at_random_points_loses_nothing") {
        return;
    }
    let runs = env_u64("TANDEM_CAMPAIGN_RUNS", 3);
    let seed = env_u64("TANDEM_CAMPAIGN_SEED", 20);
    let window = calibrate(seed ^ 0x90E);
    let mut f = PowerFigures::default();
    for r in 0..runs {
        f.sync.runs += 1;
        let on = OnTestFs::ALL[(r % 3) as usize];
        one_run(seed.wrapping_add(r), on, window, &mut f);
    }
    report(&f.json("sync-power-loss", seed));
    assert!(
        f.sync.failures.is_empty(),
        "{} failures (calibrated windows {window:?}):\n{}",
        f.sync.failures.len(),
        f.sync.failures.join("\n")
    );
}

/// Issue 20, found by the power-loss campaign: syncfs does not reach a FUSE file system,
/// so a sync to a FUSE target committed a baseline for copies a power cut then took back
/// (empty files under their names, and the next sync took them for the user's edits).
#[test]
fn issue_20_a_sync_to_a_fuse_target_is_durable_before_its_baseline() {
    if !testfs_available("issue_20_a_sync_to_a_fuse_target_is_durable_before_its_baseline") {
        return;
    }
    let mut lab = Lab::new(OnTestFs::Target);
    let mut v = Versions::default();
    let mut want = BTreeSet::new();
    for i in 0..20 {
        let (id, c) = v.make(100 + i * 500);
        write_file(&lab.p.src.join(format!("d{}/f{i}", i % 3)), &c);
        want.insert(id);
    }
    lab.p.sync_ok(&["--quiet"], 0);
    lab.power_cut_and_reboot();
    assert_eq!(
        baseline_ahead_of_disk(&lab, &BaseFiles::new()).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(versions_in(&lab.p.tgt, false), want, "every copy is whole");
    lab.p.sync_ok(&["--quiet"], 0);
    assert_eq!(versions_in(&lab.p.src, false), want);
    lab.p.assert_same();
}

/// Issue 20, found by the power-loss campaign's invariant-4 check (and then on plain
/// disks): a file renamed differently on each side, inside a folder the source renamed,
/// left a baseline entry under the folder's new name for a file neither side held. The
/// plan's "forget" of that path was recorded before the folder's move, which then moved
/// the old entry there.
#[test]
fn issue_20_a_file_renamed_on_both_sides_in_a_renamed_folder_leaves_no_baseline_entry() {
    let p = Pair::new();
    for f in ["f1", "f2"] {
        p.write(S::Src, &format!("d/e/{f}"), &format!("content of {f}"));
    }
    p.sync_ok(&["--quiet"], 0);
    std::fs::rename(p.path(S::Src, "d/e"), p.path(S::Src, "d/e-r")).unwrap();
    std::fs::rename(p.path(S::Src, "d/e-r/f1"), p.path(S::Src, "d/e-r/m-src")).unwrap();
    std::fs::rename(p.path(S::Tgt, "d/e/f1"), p.path(S::Tgt, "d/e/m-tgt")).unwrap();
    p.sync_ok(&["--quiet"], 0);
    p.assert_same();
    let conn = rusqlite::Connection::open(p.state.join("state.db")).unwrap();
    let mut stmt = conn.prepare("SELECT path FROM baseline").unwrap();
    let stale: Vec<String> = stmt
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|r| String::from_utf8_lossy(&r.unwrap()).into_owned())
        .filter(|rel| !p.path(S::Src, rel).exists() && !p.path(S::Tgt, rel).exists())
        .collect();
    assert_eq!(
        stale,
        Vec::<String>::new(),
        "baseline entries for files on neither side"
    );
}

/// Issue 20, found by the power-loss campaign once tandem-testfs modelled names as
/// volatile (as a disk does): with durability asked for (`--fsync`, and always on a FUSE
/// root) each file was fsynced but not its folder, so a cut right after the sync undid
/// the renames into place and the baseline recorded files the disk no longer named (the
/// next sync took them for deletions on the target). Each folder whose entries changed is
/// now fsynced once before the baseline is committed.
#[test]
fn issue_20_fsync_makes_new_and_renamed_names_durable_before_the_baseline() {
    if !testfs_available("issue_20_fsync_makes_new_and_renamed_names_durable_before_the_baseline") {
        return;
    }
    let mut lab = Lab::new(OnTestFs::Target);
    let mut v = Versions::default();
    let mut want = BTreeSet::new();
    for i in 0..12 {
        let (id, c) = v.make(100 + i * 300);
        write_file(&lab.p.src.join(format!("d{}/e/f{i}", i % 3)), &c);
        want.insert(id);
    }
    lab.p.sync_ok(&["--quiet", "--fsync"], 0);
    lab.power_cut_and_reboot();
    assert_eq!(
        baseline_ahead_of_disk(&lab, &BaseFiles::new()).unwrap(),
        Vec::<String>::new(),
        "after the first sync"
    );
    assert_eq!(versions_in(&lab.p.tgt, false), want, "after the first sync");

    // A file renamed into a new folder, a folder renamed, a file replaced.
    let before = baseline_files(&lab).unwrap();
    std::fs::create_dir(lab.p.src.join("new")).unwrap();
    std::fs::rename(lab.p.src.join("d0/e/f0"), lab.p.src.join("new/g0")).unwrap();
    std::fs::rename(lab.p.src.join("d1/e"), lab.p.src.join("d1/e2")).unwrap();
    let (id, c) = v.make(777);
    write_file(&lab.p.src.join("d2/e/f2"), &c);
    want.insert(id);
    lab.p.sync_ok(&["--quiet", "--fsync"], 0);
    lab.power_cut_and_reboot();
    assert_eq!(
        baseline_ahead_of_disk(&lab, &before).unwrap(),
        Vec::<String>::new(),
        "after the incremental sync"
    );
    assert!(
        lab.p.tgt.join("new/g0").is_file(),
        "the renamed file is there"
    );
    assert!(
        lab.p.tgt.join("d1/e2/f1").is_file(),
        "the renamed folder is there"
    );
    let live: BTreeSet<u64> = versions_in(&lab.p.tgt, true);
    assert!(want.iter().all(|id| live.contains(id)), "no version lost");
    lab.p.sync_ok(&["--quiet"], 0);
    lab.p.assert_same();
}

/// The mounted variant, one run: `tandem mount SRC TGT` with the target, the state folder
/// or both on test file systems (in turn); 40 files in the source and 15 in the target; a
/// program writes through the mount (new files, 5 % of them 0.2-1 MiB, and renames of its
/// own) while the startup sync, the replicator and the reverse merge run. At a uniformly
/// random moment within 2 s of the mount's start the power goes: the mount is killed
/// (kill -9) and every unsynced write dropped at once. The dead mount is detached (which
/// frees the writer), the disks "reboot", invariant 4 and the state are checked before
/// anything runs, `tandem mount` starts again (its startup sync recovers) and is stopped
/// cleanly, and the kill -9 oracle runs on a last sync, counting the writer's versions.
fn one_mounted_run(seed: u64, on: OnTestFs, f: &mut PowerFigures) {
    let mut rng = Rng::new(seed);
    let versions = Arc::new(Mutex::new(Versions::default()));
    let mut lab = Lab::new(on);
    for (root, files) in [(&lab.p.src, 40), (&lab.p.tgt, 15)] {
        for i in 0..files {
            let (_, c) = versions.lock().unwrap().make(40 + rng.below(4000) as usize);
            write_file(&root.join(format!("d{}/f{i}", rng.below(4))), &c);
        }
    }
    lab.settle();
    let mut live = live_versions(&lab.p);
    let written = Arc::new(Mutex::new(Written::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let delay = Duration::from_millis(rng.below(2000));
    let mut m = Mounted::start(&lab.p);
    let w = {
        let (root, v, w, s) = (
            lab.p.src.clone(),
            versions.clone(),
            written.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || writer(root, "s", seed ^ 0x51, v, w, s))
    };
    std::thread::sleep(delay);
    if let Some(pid) = m
        .pid()
        .and_then(|p| rustix::process::Pid::from_raw(p as i32))
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
    f.took(cut_power(&lab.tgt_fs, &lab.state_fs));
    m.kill9();
    stop.store(true, Ordering::SeqCst);
    // Aborts the dead mount's connection (a writer caught in it is freed) and reaps it.
    drop(m);
    w.join().unwrap();
    // Every cut falls during the session (its startup sync, replicator or reverse merge).
    f.cuts += 1;
    f.cuts_during_sync += 1;
    for fs in lab.disks() {
        fs.reboot().unwrap();
    }
    let what = format!("seed {seed}, {on:?} on the test fs, mounted, power cut at {delay:?}");
    let failures = f.sync.failures.len();
    check_baseline(&lab, &BaseFiles::new(), &what, f);
    let st = Mounted::start(&lab.p).stop();
    if !st.success() {
        f.sync.non_converged += 1;
        f.sync.failures.push(format!(
            "{what}: the restarted mount exited {st} on SIGTERM"
        ));
    }
    let w = written.lock().unwrap();
    live.extend(&w.done);
    f.sync.versions_written += w.done.len() as u64;
    recover_and_check(&lab.p, &live, &what, &|c| w.torn_ok(c), &mut f.sync);
    drop(w);
    if f.sync.failures.len() > failures {
        for failure in &f.sync.failures[failures..] {
            let failure: String = failure.chars().take(2000).collect();
            eprintln!("campaign: FAILED {failure}");
        }
        eprintln!(
            "campaign: folders of the failed run kept in {} (the test file systems' disks: tgt-disk, state-disk)",
            lab.keep().display()
        );
    }
}

#[test]
fn campaign_mount_power_cut_at_random_points_loses_nothing() {
    let name = "campaign_mount_power_cut_at_random_points_loses_nothing";
    if !testfs_available(name) || !fuse_available() {
        return;
    }
    let runs = env_u64("TANDEM_CAMPAIGN_RUNS", 3);
    let seed = env_u64("TANDEM_CAMPAIGN_SEED", 20);
    let mut f = PowerFigures::default();
    for r in 0..runs {
        f.sync.runs += 1;
        let on = OnTestFs::ALL[(r % 3) as usize];
        one_mounted_run(seed.wrapping_add(r), on, &mut f);
    }
    report(&f.json("mount-power-loss", seed));
    assert!(
        f.sync.versions_written > 0,
        "the writer wrote nothing: the campaign checked nothing"
    );
    assert!(
        f.sync.failures.is_empty(),
        "{} failures:\n{}",
        f.sync.failures.len(),
        f.sync.failures.join("\n")
    );
}

/// Issue 20, with names volatile on tandem-testfs: a first sync creates a missing target
/// folder (as rsync does), then records the pair as synced; the new folder's own name was
/// never made durable, so a power cut right after took the whole copy back, under a
/// baseline that said it was there (the next sync refused the missing target, and a state
/// on another disk kept claiming it). Its parent is now fsynced once it is made.
#[test]
fn issue_20_a_target_folder_made_by_a_first_sync_survives_a_power_cut() {
    if !testfs_available("issue_20_a_target_folder_made_by_a_first_sync_survives_a_power_cut") {
        return;
    }
    let mut lab = Lab::new(OnTestFs::Target);
    let mut v = Versions::default();
    let mut want = BTreeSet::new();
    for i in 0..3 {
        let (id, c) = v.make(200 + i * 100);
        write_file(&lab.p.src.join(format!("f{i}")), &c);
        want.insert(id);
    }
    let made = lab.p.tgt.join("made-by-the-sync");
    let out = run_tandem([
        "sync".as_ref(),
        lab.p.src.as_os_str(),
        made.as_os_str(),
        "--state-dir".as_ref(),
        lab.p.state.as_os_str(),
        "--quiet".as_ref(),
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    lab.power_cut_and_reboot();
    assert!(made.is_dir(), "the target folder survives the cut");
    assert_eq!(versions_in(&made, false), want, "with every copy");
}

/// Issue 20, noticed while building the power campaign: a state folder that tandem made
/// itself (`--state-dir` not there yet, or the first pair under the state home) was not
/// made durable in its parent, so a power cut after the first sync could take the whole
/// state folder with it: the next sync found the state gone while both folders carried
/// the pair's marker, and refused. The parents of the folders made are fsynced now.
#[test]
fn issue_20_a_state_folder_made_by_a_first_sync_survives_a_power_cut() {
    if !testfs_available("issue_20_a_state_folder_made_by_a_first_sync_survives_a_power_cut") {
        return;
    }
    let mut lab = Lab::new(OnTestFs::State);
    write_file(&lab.p.src.join("f"), b"a file");
    lab.settle();
    let state = lab.p.state.join("made/by/the-sync");
    let sync = |lab: &Lab| {
        run_tandem([
            "sync".as_ref(),
            lab.p.src.as_os_str(),
            lab.p.tgt.as_os_str(),
            "--state-dir".as_ref(),
            state.as_os_str(),
            "--json".as_ref(),
        ])
    };
    let out = sync(&lab);
    assert_eq!(out.code, 0, "{}", out.all());
    lab.power_cut_and_reboot();
    assert!(
        state.join("state.db").is_file(),
        "the state folder survives the cut"
    );
    let out = sync(&lab);
    assert_eq!(out.code, 0, "after the cut: {}", out.all());
    let summary = crate::tasks::last_json(&out);
    assert_eq!(summary["copied"], 0, "{summary}");
}
