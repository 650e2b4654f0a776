//! Issue 20's injected-error campaign: `tandem sync` with its target on `tandem-testfs`,
//! which fails the Nth read, write, fsync, rename or mkdir with EIO, ENOSPC, EACCES or
//! EROFS (ENOSPC and EROFS from then on, as a full or read-only disk; EIO and EACCES
//! once). N covers the range of an unfaulted run's operations of that kind, counted
//! first. Oracle:
//! - a documented exit code (README: 0, 1, 2, 3), never a success that is not one: exit
//!   0 means both trees are equal;
//! - a clear message: an exit other than 0 names the error, by its system message;
//! - nothing lost, nothing torn, and once the fault is lifted one more sync converges
//!   (the kill -9 campaign's `recover_and_check`).
//!
//! `cargo test` runs a few positions per operation; `scripts/reliability/run` sets
//! `TANDEM_CAMPAIGN_RUNS`, the positions per operation (up to four per possible N).

use tandem_testfs::{Fault, Op, OpCounts};

use crate::crash::*;
use crate::fixtures::*;
use crate::power::{testfs_available, Lab, OnTestFs};

const ERRNOS: [i32; 4] = [libc::EIO, libc::ENOSPC, libc::EACCES, libc::EROFS];

fn strerror(errno: i32) -> String {
    std::io::Error::from_raw_os_error(errno)
        .to_string()
        .split(" (os error")
        .next()
        .unwrap_or_default()
        .to_string()
}

#[derive(Debug, Default)]
struct FaultFigures {
    sync: Figures,
    faults_fired: u64,
    unclear_exits: u64,
    exits: std::collections::BTreeMap<i32, u64>,
}

impl FaultFigures {
    fn json(&self, name: &str, seed: u64) -> String {
        let exits: Vec<String> = self
            .exits
            .iter()
            .map(|(c, n)| format!("\"{c}\":{n}"))
            .collect();
        format!(
            "{{\"campaign\":\"{name}\",\"seed\":{seed},\"injected\":{},\"fired\":{},\"unclear_exits\":{},\"lost_versions\":{},\"torn_files\":{},\"non_converged\":{},\"exits\":{{{}}}}}",
            self.sync.runs,
            self.faults_fired,
            self.unclear_exits,
            self.sync.lost_versions,
            self.sync.torn_files,
            self.sync.non_converged,
            exits.join(",")
        )
    }
}

/// A lab with a random tree on both sides, its target or its state directory (`on`) on a
/// test file system; with `incremental`, synced once and then edited (renames, deletions,
/// conflicts), so that the run under test is incremental.
fn prepared(seed: u64, incremental: bool, on: OnTestFs) -> Lab {
    let mut rng = Rng::new(seed);
    let mut v = Versions::default();
    let mut lab = Lab::new(on);
    populate(&lab.p.src, &mut rng, &mut v, 30);
    populate(&lab.p.tgt, &mut rng, &mut v, 10);
    if incremental {
        lab.p.sync(&["--quiet"]);
        mutate(&lab.p.src, &mut rng, &mut v, 10);
        mutate(&lab.p.tgt, &mut rng, &mut v, 10);
        both_sides_edit(&lab.p, &mut rng, &mut v, 2);
    }
    lab.settle();
    lab
}

/// The lab's test file system: the target's or the state directory's.
fn fs(lab: &Lab) -> &tandem_testfs::TestFs {
    lab.tgt_fs.as_ref().or(lab.state_fs.as_ref()).unwrap()
}

/// The operations of each kind an unfaulted run of each phase asks of the test file system.
fn calibrate(seed: u64, on: OnTestFs) -> [OpCounts; 2] {
    [false, true].map(|incremental| {
        let lab = prepared(seed, incremental, on);
        fs(&lab).reset_counts();
        lab.p.sync(&["--quiet"]);
        fs(&lab).counts()
    })
}

/// One faulted sync, checked; then the fault lifted and the kill -9 oracle.
fn one_case(seed: u64, incremental: bool, on: OnTestFs, fault: Fault, f: &mut FaultFigures) {
    let lab = prepared(seed, incremental, on);
    let live = live_versions(&lab.p);
    let what = format!(
        "seed {seed}, {} sync, {}'s {} #{} fails with {}{}",
        if incremental { "incremental" } else { "first" },
        if on == OnTestFs::State {
            "state directory"
        } else {
            "target"
        },
        fault.op.name(),
        fault.nth,
        strerror(fault.errno),
        if fault.sticky {
            " from then on"
        } else {
            " once"
        }
    );
    fs(&lab).reset_counts();
    fs(&lab).set_fault(Some(fault));
    let out = lab.p.sync(&[]);
    if std::env::var_os("TANDEM_CAMPAIGN_ONLY").is_some() {
        eprintln!("campaign: {what}: exit {}: {}", out.code, out.all());
    }
    let fired = fs(&lab).counts().get(fault.op) >= fault.nth;
    fs(&lab).set_fault(None);
    f.faults_fired += u64::from(fired);
    *f.exits.entry(out.code).or_default() += 1;
    let before = f.sync.failures.len();
    if let Some(why) = unclear(&lab, &out, fault.errno) {
        f.unclear_exits += 1;
        f.sync.failures.push(format!("{what}: {why}"));
    }
    recover_and_check(&lab.p, &live, &what, &|_| false, &mut f.sync);
    if f.sync.failures.len() > before {
        eprintln!(
            "campaign: folders of the failed case kept in {} (the test file system's disk: tgt-disk or state-disk)",
            lab.keep().display()
        );
    }
}

/// What is unclear about a faulted run's ending, if anything. A failure in SQLite's
/// memory-mapped index of the state (a SIGBUS, which carries no error code) is named as
/// such: the state folder's disk failed.
fn unclear(lab: &Lab, out: &Out, errno: i32) -> Option<String> {
    let text = strerror(errno);
    let bus_error = lab.on == OnTestFs::State
        && out.code == 2
        && out
            .stderr
            .contains("a disk failed under a memory-mapped file (SIGBUS)");
    match out.code {
        2 if bus_error => None,
        0 if lab.p.tree(S::Src) != lab.p.tree(S::Tgt) => {
            Some(format!("exit 0 but the trees differ: {}", out.all()))
        }
        0 => None,
        1 if lab.p.tree(S::Src) == lab.p.tree(S::Tgt) => None,
        1..=3 if out.all().contains(&text) => None,
        1..=3 => Some(format!(
            "exit {} without naming the error ({text}): {}",
            out.code,
            out.all()
        )),
        c => Some(format!("exit {c}, not a documented code: {}", out.all())),
    }
}

/// Where the faults fall: `cases` positions spread over `1..=count`, up to four per N
/// (one per errno, the first one `first_errno`).
fn positions(count: u64, cases: u64, first_errno: u64) -> Vec<(u64, i32)> {
    let n = cases.min(4 * count);
    (0..n)
        .map(|k| (1 + k * count / n, ERRNOS[((k + first_errno) % 4) as usize]))
        .collect()
}

#[test]
fn campaign_sync_injected_errors_end_clearly_and_lose_nothing() {
    if !testfs_available("campaign_sync_injected_errors_end_clearly_and_lose_nothing") {
        return;
    }
    campaign(OnTestFs::Target, "sync-injected-errors", 20);
}

/// The same faults on the state directory (`--state-dir` on the test file system): SQLite's
/// reads, writes, fsyncs, the state file's creation (a rename) and the folder's. Oracle as
/// above; and the state is never damaged: the sync after the fault is lifted works,
/// converges, and the one after it plans nothing (`recover_and_check`).
#[test]
fn campaign_state_dir_injected_errors_end_clearly_and_lose_nothing() {
    if !testfs_available("campaign_state_dir_injected_errors_end_clearly_and_lose_nothing") {
        return;
    }
    campaign(OnTestFs::State, "state-dir-injected-errors", 21);
}

fn campaign(on: OnTestFs, name: &str, default_seed: u64) {
    let per_op = env_u64("TANDEM_CAMPAIGN_RUNS", 2);
    let seed = env_u64("TANDEM_CAMPAIGN_SEED", default_seed);
    let counts = calibrate(seed, on);
    let mut f = FaultFigures::default();
    for op in Op::ALL {
        for (phase, c) in counts.iter().enumerate() {
            for (nth, errno) in positions(c.get(op), per_op, 2 * phase as u64) {
                // Replays one case: TANDEM_CAMPAIGN_ONLY=rename#9 (and the seed).
                let only = std::env::var("TANDEM_CAMPAIGN_ONLY").ok();
                if only.is_some_and(|o| o != format!("{}#{nth}", op.name())) {
                    continue;
                }
                let sticky = errno == libc::ENOSPC || errno == libc::EROFS;
                f.sync.runs += 1;
                let fault = Fault {
                    op,
                    nth,
                    errno,
                    sticky,
                };
                one_case(seed, phase == 1, on, fault, &mut f);
            }
        }
    }
    report(&f.json(name, seed));
    assert!(
        f.sync.failures.is_empty(),
        "{} failures (operation counts of unfaulted runs: {counts:?}):\n{}",
        f.sync.failures.len(),
        f.sync.failures.join("\n")
    );
}

/// Issue 20, found by the injected-error campaign: a file replaced on the target is
/// swapped with the copy (RENAME_EXCHANGE), then its old version is moved to the trash.
/// When that move failed (a disk turned read-only), the clean-up removed the temporary
/// name, which by then held the old version: gone for good.
#[test]
fn issue_20_a_failed_move_to_the_trash_keeps_the_replaced_version() {
    if !testfs_available("issue_20_a_failed_move_to_the_trash_keeps_the_replaced_version") {
        return;
    }
    let lab = Lab::new(OnTestFs::Target);
    let mut v = Versions::default();
    let (old_id, old) = v.make(500);
    write_file(&lab.p.src.join("f"), &old);
    lab.p.sync_ok(&["--quiet"], 0);
    let (new_id, new) = v.make(700);
    std::fs::write(lab.p.src.join("f"), new).unwrap();
    fs(&lab).reset_counts();
    // Rename #1 swaps the copy in; the old version then goes to the trash, as a hard link
    // (a rename where links are refused) in the trash's folder, whose mkdir #1 fails.
    fs(&lab).set_fault(Some(Fault {
        op: Op::Mkdir,
        nth: 1,
        errno: libc::EROFS,
        sticky: true,
    }));
    let out = lab.p.sync(&[]);
    fs(&lab).set_fault(None);
    assert!(
        out.all().contains(&strerror(libc::EROFS)),
        "the error is named: {}",
        out.all()
    );
    lab.p.sync_ok(&[], 0);
    let mut found = versions_in(&lab.p.src, true);
    found.extend(versions_in(&lab.p.tgt, true));
    assert!(
        found.contains(&old_id),
        "the replaced version {old_id} survives: {found:?}"
    );
    assert!(
        lab.p
            .trash_contents(S::Tgt)
            .iter()
            .any(|c| version_of(c.as_bytes()) == Some(old_id)),
        "in the target's trash"
    );
    assert_eq!(
        version_of(&std::fs::read(lab.p.tgt.join("f")).unwrap()),
        Some(new_id)
    );
    lab.p.assert_same();
}

/// Issue 20, found by the power-loss campaign (seed 6096: 4 versions lost in 400 cuts): a
/// version replaced on the target is kept in the trash as a hard link, then its temporary
/// name is removed. The folder fsyncs before the commit came in no set order, so a cut in
/// their middle could keep the removal (its folder fsynced) and lose the trash's link or
/// the trash folder itself (not yet fsynced): the replaced version was gone. The folders
/// that keep versions (the trash and those made for it) are now fsynced first, a flush at
/// a time. Here the power goes right after the Nth fsync of the sync failed, for every N.
#[test]
fn issue_20_a_cut_between_folder_fsyncs_keeps_the_replaced_version() {
    if !testfs_available("issue_20_a_cut_between_folder_fsyncs_keeps_the_replaced_version") {
        return;
    }
    // The folders' order was a hash map's, new in each process: every N, twice.
    for nth in (1..=8).chain(1..=8) {
        let mut lab = Lab::new(OnTestFs::Target);
        let mut v = Versions::default();
        let (old_id, old) = v.make(500);
        write_file(&lab.p.src.join("d/e/f"), &old);
        lab.p.sync_ok(&["--quiet"], 0);
        lab.settle();
        let (_, new) = v.make(700);
        std::fs::write(lab.p.src.join("d/e/f"), new).unwrap();
        fs(&lab).reset_counts();
        fs(&lab).set_fault(Some(Fault {
            op: Op::Fsync,
            nth,
            errno: libc::EIO,
            sticky: true,
        }));
        lab.p.sync(&["--quiet"]);
        lab.power_cut_and_reboot();
        fs(&lab).set_fault(None);
        let mut found = versions_in(&lab.p.src, true);
        found.extend(versions_in(&lab.p.tgt, true));
        assert!(
            found.contains(&old_id),
            "fsync #{nth} failed, then the power: the replaced version {old_id} is lost ({found:?})"
        );
    }
}

/// Issue 20, found by the state-directory campaign (seed 21): faults on the state folder
/// ended unclearly. SQLite reported every failing read, write or fsync there as "disk I/O
/// error" (a read-only disk and a refused permission included), and a failing read of its
/// memory-mapped index (`state.db-shm`) killed tandem with SIGBUS, without a word. The
/// system error is now named, and a bus error is a clear stop with exit 2; nothing is
/// lost, and once the fault is lifted the pair converges (TANDEM_CAMPAIGN_RUNS=12).
#[test]
fn issue_20_faults_on_the_state_folder_end_with_a_clear_message() {
    if !testfs_available("issue_20_faults_on_the_state_folder_end_with_a_clear_message") {
        return;
    }
    let cases = [
        (false, Op::Read, 12, libc::ENOSPC),
        (true, Op::Read, 11, libc::EROFS),
        (true, Op::Write, 18, libc::EROFS),
        (false, Op::Fsync, 1, libc::EIO),
        (false, Op::Fsync, 7, libc::ENOSPC),
        (true, Op::Fsync, 1, libc::EACCES),
        // A read or write failing while the state was checked at open was called
        // corruption, and the user sent to `tandem forget` a state that was whole.
        (false, Op::Read, 2, libc::ENOSPC),
        (false, Op::Read, 6, libc::EROFS),
        (true, Op::Read, 6, libc::ENOSPC),
        (true, Op::Write, 3, libc::EROFS),
        (true, Op::Write, 6, libc::EIO),
        (true, Op::Write, 9, libc::ENOSPC),
        // The same for the very first read, at the state's open (seed 2121).
        (false, Op::Read, 1, libc::ENOSPC),
        (true, Op::Read, 1, libc::EROFS),
    ];
    let mut f = FaultFigures::default();
    for (incremental, op, nth, errno) in cases {
        let sticky = errno == libc::ENOSPC || errno == libc::EROFS;
        let fault = Fault {
            op,
            nth,
            errno,
            sticky,
        };
        one_case(21, incremental, OnTestFs::State, fault, &mut f);
    }
    assert_eq!(f.faults_fired, cases.len() as u64, "{f:?}");
    assert!(f.sync.failures.is_empty(), "{}", f.sync.failures.join("\n"));
}
