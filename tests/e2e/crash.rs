//! Issue 20's kill -9 campaign for `tandem sync`: a pair with a random tree on both sides,
//! a sync killed at a uniformly random moment, then a sync that finishes, and an oracle:
//! - no lost version: every file content present on either side when the killed sync
//!   started exists afterwards in a tree, a conflict copy or a trash;
//! - no torn file: every file in either tree is a whole version (each content names its own
//!   id and length, so a partial or mixed copy cannot pass);
//! - convergence: both trees are equal, and a dry run afterwards plans nothing.
//!
//! Each run kills twice: during the first sync of a new pair, then during an incremental
//! sync after random edits, creations, deletions, renames (files and folders) and
//! both-sides edits (conflicts). `cargo test` runs a few runs; `scripts/reliability/run`
//! sets `TANDEM_CAMPAIGN_RUNS` (and `TANDEM_CAMPAIGN_SEED`) for the full campaign, and
//! `TANDEM_CAMPAIGN_REPORT=FILE` to get the figures as one JSON line.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::fixtures::*;

/// A small deterministic generator (xorshift64*): the campaign is replayable by seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Versions: file contents that say which version they are and how long they are.
#[derive(Default)]
pub struct Versions {
    next_id: u64,
}

const MAGIC: &[u8] = b"tandem-version ";

impl Versions {
    /// A new version of `len` bytes (at least the header's).
    pub fn make(&mut self, len: usize) -> (u64, Vec<u8>) {
        self.next_id += 1;
        let id = self.next_id;
        (id, content_of(id, len))
    }
}

fn content_of(id: u64, len: usize) -> Vec<u8> {
    let mut v = format!("tandem-version {id:010} {len:010}\n").into_bytes();
    let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(b'a' + (x % 26) as u8);
    }
    v
}

/// The version a file's content is, if it is a whole one.
pub fn version_of(content: &[u8]) -> Option<u64> {
    let head = content.get(..MAGIC.len() + 22)?;
    let text = std::str::from_utf8(head.strip_prefix(MAGIC)?).ok()?;
    let id: u64 = text.get(..10)?.parse().ok()?;
    let len: usize = text.get(11..21)?.parse().ok()?;
    (content.len() == len.max(MAGIC.len() + 22) && content == content_of(id, len)).then_some(id)
}

/// Every file below `dir` (`.tandem` included when `with_meta`), by relative path.
pub fn files_below(dir: &Path, with_meta: bool) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if !with_meta && d == dir && e.file_name() == ".tandem" {
                continue;
            }
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                if let Ok(c) = std::fs::read(&p) {
                    out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), c);
                }
            }
        }
    }
    out
}

/// The versions present in a root: in its tree and, with `with_meta`, in its trash.
pub fn versions_in(root: &Path, with_meta: bool) -> BTreeSet<u64> {
    files_below(root, with_meta)
        .values()
        .filter_map(|c| version_of(c))
        .collect()
}

/// The figures of a campaign.
#[derive(Debug, Default)]
pub struct Figures {
    pub runs: u64,
    /// Versions written by programs while the run was under way (the mounted campaign).
    pub versions_written: u64,
    pub kills_landed: u64,
    pub finished_before_kill: u64,
    pub lost_versions: u64,
    pub torn_files: u64,
    pub non_converged: u64,
    pub failures: Vec<String>,
}

impl Figures {
    pub fn json(&self, what: &str, seed: u64) -> String {
        format!(
            "{{\"campaign\":\"{what}\",\"seed\":{seed},\"runs\":{},\"versions_written\":{},\"kills_landed\":{},\"finished_before_kill\":{},\"lost_versions\":{},\"torn_files\":{},\"non_converged\":{}}}",
            self.runs, self.versions_written, self.kills_landed, self.finished_before_kill, self.lost_versions, self.torn_files, self.non_converged
        )
    }
}

/// Random folders and files on one side: a few large files (so that a kill often lands
/// inside a copy) and many small ones.
pub fn populate(root: &Path, rng: &mut Rng, v: &mut Versions, files: usize) {
    for i in 0..files {
        let dir = format!("d{}/e{}", rng.below(6), rng.below(3));
        let len = if rng.chance(2) {
            (1 << 20) + rng.below(3 << 20) as usize
        } else {
            40 + rng.below(6000) as usize
        };
        let (_, c) = v.make(len);
        write_file(
            &root.join(dir).join(format!("f{i}-{}", rng.below(1000))),
            &c,
        );
    }
}

/// Random changes on one side, as a user makes them between two syncs.
pub fn mutate(root: &Path, rng: &mut Rng, v: &mut Versions, ops: usize) {
    for n in 0..ops {
        let files: Vec<PathBuf> = files_below(root, false).into_keys().collect();
        let Some(pick) =
            (!files.is_empty()).then(|| &files[rng.below(files.len() as u64) as usize])
        else {
            break;
        };
        let path = root.join(pick);
        match rng.below(10) {
            0..=3 => {
                let (_, c) = v.make(40 + rng.below(200_000) as usize);
                std::fs::write(&path, c).unwrap();
            }
            4 => {
                let _ = std::fs::remove_file(&path);
            }
            5 | 6 => {
                let to = path.with_file_name(format!("moved-{n}-{}", rng.below(1000)));
                let _ = std::fs::rename(&path, to);
            }
            7 => {
                let parent = path.parent().unwrap();
                if parent != root {
                    let to = parent.with_file_name(format!(
                        "{}-r{n}",
                        parent.file_name().unwrap().to_string_lossy()
                    ));
                    let _ = std::fs::rename(parent, to);
                }
            }
            _ => {
                let (_, c) = v.make(40 + rng.below(4000) as usize);
                write_file(&root.join(format!("new/n{n}-{}", rng.below(1000))), &c);
            }
        }
    }
}

/// Edits the same existing paths on both sides differently: conflicts.
pub fn both_sides_edit(p: &Pair, rng: &mut Rng, v: &mut Versions, count: usize) {
    let common: Vec<PathBuf> = files_below(&p.src, false)
        .into_keys()
        .filter(|k| p.tgt.join(k).is_file())
        .collect();
    for _ in 0..count.min(common.len()) {
        let k = &common[rng.below(common.len() as u64) as usize];
        for root in [&p.src, &p.tgt] {
            let (_, c) = v.make(40 + rng.below(3000) as usize);
            std::fs::write(root.join(k), c).unwrap();
        }
    }
}

fn sync_args(p: &Pair) -> Vec<&OsStr> {
    vec![
        OsStr::new("sync"),
        p.src.as_os_str(),
        p.tgt.as_os_str(),
        OsStr::new("--state-dir"),
        p.state.as_os_str(),
        OsStr::new("--quiet"),
    ]
}

/// Runs a sync and kills it with SIGKILL after `delay`; true when the kill landed (the
/// sync was still running).
fn sync_killed_after(p: &Pair, delay: Duration) -> bool {
    let mut child = Command::new(bin())
        .args(sync_args(p))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + delay;
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if Instant::now() >= until {
            break;
        }
        std::thread::sleep(Duration::from_micros(200).min(until - Instant::now()));
    }
    let landed = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    landed
}

/// A sync run to its end; its duration.
fn sync_timed(p: &Pair) -> (Out, Duration) {
    let t = Instant::now();
    let out = run_tandem(sync_args(p));
    (out, t.elapsed())
}

/// After a kill: sync to the end, then check the oracle against `live`, the versions both
/// sides held when the killed sync started.
/// `torn_ok` excuses a file a writer itself left half-written.
pub fn recover_and_check(
    p: &Pair,
    live: &BTreeSet<u64>,
    what: &str,
    torn_ok: &dyn Fn(&[u8]) -> bool,
    f: &mut Figures,
) {
    let (out, _) = sync_timed(p);
    let mut converged = out.code == 0 || out.code == 1;
    let mut found = versions_in(&p.src, true);
    found.extend(versions_in(&p.tgt, true));
    let lost: Vec<_> = live.difference(&found).collect();
    if !lost.is_empty() {
        f.lost_versions += lost.len() as u64;
        f.failures.push(format!(
            "{what}: lost versions {lost:?}; state kept in {}",
            p.tmp.path().display()
        ));
    }
    for root in [&p.src, &p.tgt] {
        for (path, c) in files_below(root, false) {
            if version_of(&c).is_none() && !torn_ok(&c) {
                f.torn_files += 1;
                f.failures.push(format!(
                    "{what}: torn file {} in {}",
                    path.display(),
                    root.display()
                ));
            }
        }
    }
    if converged {
        let (a, b) = (p.tree(S::Src), p.tree(S::Tgt));
        let dry = p.sync(&["--dry-run", "--json"]);
        let plan_empty =
            serde_json::from_str::<serde_json::Value>(dry.stdout.lines().last().unwrap_or(""))
                .is_ok_and(|v| v["plan"].as_array().is_some_and(|s| s.is_empty()));
        converged = a == b && plan_empty;
        if !converged {
            f.failures.push(format!(
                "{what}: not converged (trees equal: {}, plan after: {}); after the kill: {}",
                a == b,
                dry.stdout,
                out.all()
            ));
        }
    } else {
        f.failures.push(format!(
            "{what}: the sync after the kill exited {}: {}",
            out.code,
            out.all()
        ));
    }
    if !converged {
        f.non_converged += 1;
    }
}

pub fn live_versions(p: &Pair) -> BTreeSet<u64> {
    let mut live = versions_in(&p.src, false);
    live.extend(versions_in(&p.tgt, false));
    live
}

/// One run: a first sync killed, recovered and checked, then an incremental one likewise.
/// `window` is how long an unkilled sync of each phase took: kills fall uniformly within
/// 1.2 times that.
fn one_run(seed: u64, window: (Duration, Duration), f: &mut Figures) {
    let mut rng = Rng::new(seed);
    let mut v = Versions::default();
    let p = Pair::new();
    populate(&p.src, &mut rng, &mut v, 160);
    populate(&p.tgt, &mut rng, &mut v, 60);
    let phases = [("first sync", window.0), ("incremental sync", window.1)];
    for (i, (what, w)) in phases.into_iter().enumerate() {
        if i == 1 {
            mutate(&p.src, &mut rng, &mut v, 30);
            mutate(&p.tgt, &mut rng, &mut v, 30);
            both_sides_edit(&p, &mut rng, &mut v, 4);
        }
        let live = live_versions(&p);
        let delay = Duration::from_nanos(rng.below((w.as_nanos() as u64 * 6 / 5).max(1)));
        if sync_killed_after(&p, delay) {
            f.kills_landed += 1;
        } else {
            f.finished_before_kill += 1;
        }
        let before = f.failures.len();
        let what = format!("seed {seed}, {what}, kill at {delay:?}");
        recover_and_check(&p, &live, &what, &|_| false, f);
        if f.failures.len() > before {
            // Keep the folders for a look.
            let kept = p.tmp.path().to_path_buf();
            std::mem::forget(p);
            eprintln!(
                "campaign: folders of the failed run kept in {}",
                kept.display()
            );
            return;
        }
    }
}

/// How long each phase's sync takes unkilled on this machine, from one calibration run.
fn calibrate(seed: u64) -> (Duration, Duration) {
    let mut rng = Rng::new(seed);
    let mut v = Versions::default();
    let p = Pair::new();
    populate(&p.src, &mut rng, &mut v, 160);
    populate(&p.tgt, &mut rng, &mut v, 60);
    let (_, first) = sync_timed(&p);
    mutate(&p.src, &mut rng, &mut v, 30);
    mutate(&p.tgt, &mut rng, &mut v, 30);
    both_sides_edit(&p, &mut rng, &mut v, 4);
    let (_, second) = sync_timed(&p);
    (first, second)
}

pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Appends the figures to `TANDEM_CAMPAIGN_REPORT` when set.
pub fn report(line: &str) {
    eprintln!("campaign: {line}");
    if let Some(file) = std::env::var_os("TANDEM_CAMPAIGN_REPORT") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .unwrap();
        writeln!(f, "{line}").unwrap();
    }
}

#[test]
fn campaign_sync_killed_at_random_points_loses_nothing_and_converges() {
    let runs = env_u64("TANDEM_CAMPAIGN_RUNS", 4);
    let seed = env_u64("TANDEM_CAMPAIGN_SEED", 20);
    let window = calibrate(seed ^ 0xCA1);
    let mut f = Figures::default();
    for r in 0..runs {
        f.runs += 1;
        one_run(seed.wrapping_add(r), window, &mut f);
    }
    report(&f.json("sync-kill9", seed));
    assert!(
        f.failures.is_empty(),
        "{} failures (calibrated windows {window:?}):\n{}",
        f.failures.len(),
        f.failures.join("\n")
    );
}

#[test]
fn versions_know_when_they_are_torn() {
    let mut v = Versions::default();
    let (id, c) = v.make(5000);
    assert_eq!(version_of(&c), Some(id));
    assert_eq!(version_of(&c[..4000]), None, "a prefix is torn");
    let mut mixed = c.clone();
    mixed[4500] ^= 1;
    assert_eq!(version_of(&mixed), None, "a changed byte is torn");
    let (_, tiny) = v.make(3);
    assert!(
        version_of(&tiny).is_some(),
        "short versions are just the header"
    );
}
