use anyhow::{bail, Result};
use tandem_core::{Direction, Options};
use tandem_engine::{Report, SyncSpec};
use tandem_remote::{Connect, RemoteTarget};

use crate::args::{PairArgs, RemoteArgs, SyncArgs, SyncOptions};
use crate::output::{print_summary, summary_json, Printer};
use crate::task::Task;

pub fn run(a: SyncArgs) -> Result<u8> {
    if let Some(target) = crate::task::remote_target(&a.pair.tgt) {
        return run_remote(a, target);
    }
    let spec = spec_from(&a)?;
    let printer = Printer::new(a.json, a.quiet, a.verbose);
    let stop = super::stop_on_signals()?;
    let report = tandem_engine::sync_until(&spec, &stop, &|e| printer.event(e));
    printer.finish();
    Ok(summarize(&a, &report?))
}

fn summarize(a: &SyncArgs, report: &Report) -> u8 {
    if a.json {
        outln!("{}", summary_json(report));
    } else if !a.quiet || report.exit_code() != 0 {
        print_summary(report);
    }
    report.exit_code() as u8
}

/// `tandem sync LOCAL [user@]host:/path`: the same sync, the target served by `tandem
/// serve` on the far machine.
fn run_remote(a: SyncArgs, target: RemoteTarget) -> Result<u8> {
    let spec = spec_from(&a)?;
    let connect = connect_of(target, &a.remote);
    let printer = Printer::new(a.json, a.quiet, a.verbose);
    let stop = super::stop_on_signals()?;
    let result = tandem_remote::sync_until(&spec, &connect, &stop, &|e| printer.event(e));
    printer.finish();
    let (report, stats) = result?;
    let code = summarize(&a, &report);
    if !a.json && !a.quiet {
        print_wire(&stats);
    }
    Ok(code)
}

/// What crossed the wire to and from a remote target.
pub fn print_wire(stats: &tandem_remote::Stats) {
    let n = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    outln!(
        "remote: {} bytes of file data sent, {} received ({} and {} bytes on the wire), up to {} requests in flight, {} round trips waited for",
        n(&stats.data_sent),
        n(&stats.data_received),
        n(&stats.wire_sent),
        n(&stats.wire_received),
        n(&stats.most_in_flight),
        n(&stats.round_trips)
    );
}

/// How to reach a remote target, as the options say.
pub fn connect_of(target: RemoteTarget, remote: &RemoteArgs) -> Connect {
    let ssh = remote
        .ssh
        .clone()
        .or_else(|| std::env::var("TANDEM_SSH").ok())
        .unwrap_or_else(|| "ssh".into());
    Connect {
        target,
        ssh: ssh.split_whitespace().map(str::to_string).collect(),
        remote_tandem: remote
            .remote_tandem
            .clone()
            .unwrap_or_else(|| "tandem".into()),
        create: false,
        compress: remote.compress.into(),
        bwlimit: remote.bwlimit.flatten(),
        keep: Default::default(),
        listing: None,
    }
}

pub fn spec_from(a: &SyncArgs) -> Result<SyncSpec> {
    let mut spec = spec_of(&a.pair, &a.opts)?;
    spec.dry_run = a.dry_run;
    Ok(spec)
}

/// The validated task with its sync options, as the engine takes it.
pub fn spec_of(pair: &PairArgs, a: &SyncOptions) -> Result<SyncSpec> {
    if a.update && a.direction == Direction::Both {
        bail!("--update works only one way: add --direction push or --direction pull");
    }
    let task = Task::to_sync(pair)?;
    Ok(SyncSpec {
        src: task.src,
        tgt: task.tgt,
        state_dir: task.state_dir,
        options: Options {
            direction: a.direction,
            flavor: a.mode,
            policy: a.conflict,
            modify_window: a.modify_window,
            stamp: String::new(),
            rescan: false,
            scope: None,
            held: Default::default(),
            update: a.update,
            keep: a.keep(),
            hard_links: a.hard_links,
        },
        excludes: a.exclude.clone(),
        includes: a.include.clone(),
        dry_run: false,
        rescan: a.rescan,
        max_delete_percent: a.max_delete,
        max_delete_count: a.max_delete_count,
        threads: default_threads(),
        fsync_each: a.fsync,
        lock_granted: false,
        retention: a.retention(),
    })
}

/// I/O-bound work: a few threads per core.
pub fn default_threads() -> usize {
    if let Some(n) = super::count_from_env("TANDEM_THREADS") {
        return n;
    }
    std::thread::available_parallelism().map_or(4, |n| (n.get() * 2).clamp(4, 16))
}
