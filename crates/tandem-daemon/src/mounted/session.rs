//! One mounted session, from its checks to its clean stop.
//!
//! Order matters: the SRC directory fd is opened *before* the mount hides the folder (the
//! engine and the filesystem both reach the real files through it); the startup reconcile
//! runs before anything is mounted (changes made while nothing was mounted must not be
//! missed, DESIGN.md invariant 8); on a stop the journal is flushed and drained before the
//! unmount, and drained once more after it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tandem_core::{ChangeSink, MountConfig, MountTransport, Mounted};
use tandem_engine::{Replicator, ReplicatorConfig, Session, SourceHooks, SyncSpec, TargetStatus};
use tandem_fs::os::fs::{Mode, OFlags};
use tandem_fs::os::OwnedFd;
use tandem_fs::Root;
use tandem_state::JournalWriter;

use super::backend::backend;
use super::hold;
use super::registry::{self as mounts, MountRecord};
use crate::error::DaemonError;

/// How long a stopping mount may spend replicating what is still journaled.
const DRAIN: Duration = Duration::from_secs(20);
/// How often the serving loop publishes the status and answers holds.
const TICK: Duration = Duration::from_millis(50);
/// The longest wait between two checks when nothing changes: how late a stop, a hold
/// request or a status change may be seen on an idle mount.
const IDLE_TICK: Duration = Duration::from_millis(500);

/// Where a running mount publishes where each target stands (read by `tandem status`).
pub const STATUS_FILE: &str = "mount-status.json";

/// A mount to serve: the source of `specs[0]` (every spec has the same source), one spec
/// per target.
#[derive(Clone, Debug)]
pub struct MountRequest {
    pub specs: Vec<SyncSpec>,
    /// Where the file system is mounted: over the source, or elsewhere.
    pub mountpoint: PathBuf,
    pub allow_other: bool,
    /// Serve reads and writes through this process even where the kernel could pass them
    /// through.
    pub no_passthrough: bool,
    /// How often each whole pair is reconciled (`None`: only at start and after lost
    /// events).
    pub rescan_every: Option<Duration>,
    pub fuse_threads: usize,
    /// Hold deletions through the mount that come faster than this (`None`: never).
    pub brake: Option<tandem_engine::BrakeLimit>,
    /// How FUSE requests reach the mount: io_uring or /dev/fuse.
    pub transport: MountTransport,
    /// Keep what programs destroy through the mount in the source's history, for files
    /// up to this many bytes (`None`: keep nothing).
    pub history_max_file: Option<u64>,
    /// Told of each burst of deletions the brake holds (a continuous task's mail).
    pub on_hold: Option<tandem_engine::OnHold>,
    /// How to reach each target that is on another machine, by the spec's index (`None`,
    /// or missing: a local folder).
    pub remotes: Vec<Option<tandem_remote::Connect>>,
}

/// How a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Served {
    /// Stopped as asked, unmounted, everything journaled replicated.
    Stopped,
    /// The startup sync halted for safety (the reason); nothing was mounted.
    Halted(String),
}

/// What the machine lacks to mount (FUSE, access to it, fusermount3), said before any work.
pub fn check_can_mount(allow_other: bool) -> Result<(), DaemonError> {
    backend().check(allow_other).map_err(DaemonError::Setup)
}

/// The checks before anything is mounted (targets apart, nothing mounted there already,
/// no loop with another mount); a stale mount at the mount point is cleaned up. Returns
/// the mount point: `at`, or the source itself.
/// `remote`: which targets are on another machine (their folders are checked there).
pub fn prepare(
    specs: &[SyncSpec],
    remote: &[bool],
    at: Option<&Path>,
) -> Result<PathBuf, DaemonError> {
    let tgts: Vec<&Path> = specs
        .iter()
        .enumerate()
        .filter(|(i, _)| !remote.get(*i).copied().unwrap_or(false))
        .map(|(_, s)| s.tgt.as_path())
        .collect();
    tandem_engine::roots::check_targets_apart(&tgts)?;
    let mountpoint = match at {
        Some(p) => mounts::absolute(p)?,
        None if !backend().mounts_over_source() => {
            return Err(DaemonError::Refused(format!(
                "this system cannot mount over the source {} while it is in use: serve it \
                 elsewhere with --at (a free drive letter such as X:, or an empty folder) \
                 and work there",
                specs[0].src.display()
            )))
        }
        None => specs[0].src.clone(),
    };
    mounts::clean_stale(&mountpoint)?;
    // Said early, before any work; `serve` claims the mount point for good.
    if let Some(rec) = mounts::lookup(&mountpoint)? {
        if mounts::alive(rec.pid) {
            return Err(mounts::already_mounted(&mountpoint, rec.pid));
        }
    }
    if mounts::is_fuse(&mountpoint) {
        return Err(DaemonError::Refused(format!(
            "{} is already a FUSE mount point; unmount it first",
            mountpoint.display()
        )));
    }
    check_loops(specs)?;
    Ok(mountpoint)
}

/// Serves the mount until `stop` is set (a signal) or a replicator gives up, then drains,
/// unmounts and drains again. A stop asked for while the mount comes up is acted on once
/// it serves: the mount is never left half set up.
pub fn serve(req: &MountRequest, stop: &AtomicBool) -> Result<Served, DaemonError> {
    let spec = &req.specs[0];
    // Claimed before any work, so that of two mounts started together only one goes on
    // (the other would stack a second FUSE mount over the first); given up on every way
    // out of here.
    let claim = mounts::claim(
        &MountRecord {
            pid: std::process::id(),
            src: spec.src.clone(),
            targets: req.specs.iter().map(|s| s.tgt.clone()).collect(),
            state_dir: spec.state_dir.clone(),
            mountpoint: req.mountpoint.clone(),
        },
        || check_loops(&req.specs),
    )?;
    // Before the mount hides the folder.
    let src_fd: OwnedFd = tandem_fs::os::fs::open(
        &spec.src,
        tandem_fs::O_PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| DaemonError::io("opening", &spec.src)(e.into()))?;
    let (mut replicators, journal) = open_replicators(req, &src_fd)?;
    let sink: Arc<dyn ChangeSink> = journal.clone();
    // Other targets learn of a change merged from one target through the journal.
    let journal_hook = (replicators.len() > 1).then(|| sink.clone());
    if let Some(why) = startup(&mut replicators, &req.specs, &journal_hook)? {
        return Ok(Served::Halted(why));
    }
    let config = MountConfig {
        allow_other: req.allow_other,
        kernel_passthrough: !req.no_passthrough,
        threads: req.fuse_threads,
        transport: req.transport,
        history_max_file: req.history_max_file,
    };
    let handle = backend()
        .mount(
            tandem_fs::os::source_dir(src_fd),
            &req.mountpoint,
            sink,
            &config,
        )
        .map_err(DaemonError::io("mounting over", &req.mountpoint))?;
    for r in &mut replicators {
        r.set_source_hooks(SourceHooks {
            mount: Some(handle.invalidator()),
            journal: journal_hook.clone(),
        });
    }
    tracing::info!(
        "mounted {} (kernel passthrough {}{}); replicating to {}",
        req.mountpoint.display(),
        passthrough_state(handle.as_ref(), req.no_passthrough),
        if handle.uring_active() {
            ", requests over io_uring"
        } else if cfg!(target_os = "linux") {
            ", requests through /dev/fuse"
        } else {
            ""
        },
        req.specs
            .iter()
            .map(|s| s.tgt.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let status_path = spec.state_dir.join(STATUS_FILE);
    let result = run_until_stopped(req, replicators, handle, &journal, stop);
    journal.close();
    let _ = std::fs::remove_file(&status_path);
    drop(claim);
    result?;
    tracing::info!("stopped cleanly");
    Ok(Served::Stopped)
}

/// One replicator per target, each on its own session over the source fd. Each target's
/// watcher starts before its startup reconcile: a change made in the target meanwhile is
/// seen by one or the other.
/// The journal (in the first pair's state) is opened once every pair's session is.
fn open_replicators(
    req: &MountRequest,
    src_fd: &OwnedFd,
) -> Result<(Vec<Replicator>, Arc<JournalWriter>), DaemonError> {
    let mut sessions = Vec::new();
    for (i, spec) in req.specs.iter().enumerate() {
        let engine_fd = tandem_fs::os::io::dup(src_fd)
            .map_err(|e| DaemonError::io("duplicating", &spec.src)(e.into()))?;
        let root =
            Root::from_fd(engine_fd, &spec.src).map_err(DaemonError::io("opening", &spec.src))?;
        // A remote target: the same connection and session as `tandem sync` makes.
        sessions.push(match req.remotes.get(i).and_then(Option::as_ref) {
            Some(connect) => tandem_remote::mounted_session(spec, connect, root)?,
            None => Session::with_source(spec, root)?,
        });
    }
    let journal = Arc::new(JournalWriter::open(&req.specs[0].state_dir)?);
    // So do the versions the mount keeps: its retention pass adopts those a crash left
    // unrecorded (the startup's pass, before the mount serves, first).
    if let Some(first) = sessions.first_mut() {
        first.set_keeps_history();
    }
    // The journal lives in the first pair's store; every replicator reads it there. Only
    // the targets mounted now hold it back.
    let mut readers = sessions
        .iter()
        .map(|_| sessions[0].journal_reader())
        .collect::<Result<Vec<_>, _>>()?;
    {
        let head = readers[0].journal_head()?;
        let keys: Vec<String> = sessions.iter().map(Session::target_key).collect();
        readers[0].reset_cursors(&keys, head)?;
    }
    let config = ReplicatorConfig {
        watch_target: true,
        rescan_every: req
            .rescan_every
            .unwrap_or(Duration::from_secs(u64::from(u32::MAX))),
        brake: req.brake,
        on_hold: req.on_hold.clone(),
    };
    let mut replicators = Vec::new();
    for (session, reader) in sessions.into_iter().zip(readers.drain(..)) {
        replicators.push(Replicator::new(
            session,
            Arc::clone(&journal),
            reader,
            config.clone(),
        )?);
    }
    Ok((replicators, journal))
}

/// The startup reconcile of every pair: whatever changed while nothing was mounted.
/// `Some(reason)` when it halted for safety.
///
/// What is merged into the source is journaled (`journal`) from here on: the pairs are
/// reconciled one after another, so a file found only in the last target reaches the
/// source after the earlier targets' startup ran, and only its record brings it to them
/// (issue 20).
fn startup(
    replicators: &mut [Replicator],
    specs: &[SyncSpec],
    journal: &Option<Arc<dyn ChangeSink>>,
) -> Result<Option<String>, DaemonError> {
    for r in replicators.iter_mut() {
        r.set_source_hooks(SourceHooks {
            mount: None,
            journal: journal.clone(),
        });
    }
    for (r, spec) in replicators.iter_mut().zip(specs) {
        let report = r.startup(&|_| {})?;
        if let Some(h) = &report.halted {
            return Ok(Some(h.clone()));
        }
        if let Some(s) = &report.stopped {
            return Err(DaemonError::StartupStopped {
                tgt: spec.tgt.clone(),
                why: s.clone(),
            });
        }
        if let Some(t) = &report.created_target {
            tracing::info!("created the target folder {}", t.display());
        }
        tracing::info!(
            "startup sync with {}: {} copied, {} deleted, {} renamed, {} conflicts",
            spec.tgt.display(),
            report.copied,
            report.deleted,
            report.renamed,
            report.conflicts.len()
        );
    }
    Ok(None)
}

/// Serves until `stop` (or a replicator gives up), then the stop in order: every
/// replicator drains, the mount goes, every replicator takes what came in meanwhile.
fn run_until_stopped(
    req: &MountRequest,
    replicators: Vec<Replicator>,
    handle: Box<dyn Mounted>,
    journal: &Arc<JournalWriter>,
    stop: &AtomicBool,
) -> Result<(), DaemonError> {
    let status_path = req.specs[0].state_dir.join(STATUS_FILE);
    let statuses: Vec<_> = replicators.iter().map(Replicator::status).collect();
    let holds: Vec<_> = req
        .specs
        .iter()
        .map(|s| s.state_dir.clone())
        .zip(replicators.iter().map(Replicator::hold))
        .collect();
    let n = replicators.len();
    let mut last_status = String::new();
    let (drained_tx, drained_rx) = crossbeam_channel::unbounded::<()>();
    let (unmounted_tx, unmounted_rx) = crossbeam_channel::bounded::<()>(0);
    std::thread::scope(|sc| -> Result<(), DaemonError> {
        let workers: Vec<_> = replicators
            .into_iter()
            .map(|r| {
                let (drained_tx, unmounted_rx) = (drained_tx.clone(), unmounted_rx.clone());
                sc.spawn(move || replicate(r, stop, drained_tx, unmounted_rx, journal))
            })
            .collect();
        drop(drained_tx);
        let mut tick = TICK;
        while !stop.load(Ordering::Relaxed) && drained_rx.is_empty() {
            let changed = write_status(&status_path, &statuses, &mut last_status);
            let asked = hold::serve(&holds);
            // Idle, the checks slow down to IDLE_TICK: a mount left running all day should
            // not wake its machine twenty times a second for nothing.
            tick = if changed || asked {
                TICK
            } else {
                (tick * 2).min(IDLE_TICK)
            };
            std::thread::sleep(tick);
        }
        stop.store(true, Ordering::Relaxed);
        for _ in 0..n {
            let _ = drained_rx.recv();
        }
        tracing::info!("stopping: unmounting {}", req.mountpoint.display());
        if let Err(e) = handle.unmount() {
            tracing::info!("unmount: {e}; detaching it");
            mounts::detach(&req.mountpoint)?;
        }
        drop(unmounted_tx);
        let mut first_err = None;
        for w in workers {
            if let Err(e) = w.join().unwrap_or(Err(DaemonError::Panicked)) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    })
}

/// One target's replicator thread: replicate until the stop, say so, wait for the
/// unmount (`unmounted` is dropped), then take whatever came in while unmounting.
fn replicate(
    mut r: Replicator,
    stop: &AtomicBool,
    drained: crossbeam_channel::Sender<()>,
    unmounted: crossbeam_channel::Receiver<()>,
    journal: &JournalWriter,
) -> Result<(), DaemonError> {
    let ran = r.run(stop, DRAIN, &|_| {});
    let _ = drained.send(());
    let _ = unmounted.recv();
    ran?;
    journal.flush();
    r.pass(true, &|_| {})?;
    Ok(())
}

/// How the mount serves reads and writes, for the log.
fn passthrough_state(handle: &dyn Mounted, turned_off: bool) -> &'static str {
    if handle.passthrough_active() {
        "on"
    } else if !turned_off && !backend().privileged() {
        "off: it needs CAP_SYS_ADMIN"
    } else {
        "off"
    }
}

/// A target that another running tandem mount uses as its source, or a source another
/// mount replicates into, would make changes go round in a loop.
fn check_loops(specs: &[SyncSpec]) -> Result<(), DaemonError> {
    let src = &specs[0].src;
    for other in mounts::all_alive() {
        for s in specs {
            if other.src == s.tgt {
                return Err(DaemonError::Refused(format!(
                    "the target {} is the source of another running tandem mount (pid {}); syncing into it would go round in a loop",
                    s.tgt.display(),
                    other.pid
                )));
            }
        }
        if other.targets.iter().any(|t| t == src) {
            return Err(DaemonError::Refused(format!(
                "the source {} is a target of another running tandem mount (pid {}, source {}); syncing from it would go round in a loop",
                src.display(),
                other.pid,
                other.src.display()
            )));
        }
    }
    Ok(())
}

/// Writes the status file when it changed since `last`.
/// Writes the mount's status file when it changed; whether it did.
fn write_status(path: &Path, statuses: &[Arc<Mutex<TargetStatus>>], last: &mut String) -> bool {
    let targets: Vec<serde_json::Value> = statuses
        .iter()
        .map(|s| {
            let s = s.lock().unwrap_or_else(|p| p.into_inner());
            serde_json::json!({
                "target": s.target,
                "cursor": s.cursor,
                "pending": s.pending,
                "paused": s.paused,
                "disconnected_since": s.disconnected_since_unix,
                "unwatched": s.unwatched,
                "conflicts": s.conflicts,
                "failed": s.failed.iter().map(|f| serde_json::json!({"path": f.path.escaped(), "error": f.reason})).collect::<Vec<_>>(),
                "last_full_rescan": s.last_full_rescan_unix,
            })
        })
        .collect();
    let text = serde_json::json!({ "pid": std::process::id(), "targets": targets }).to_string();
    if text == *last {
        return false;
    }
    last.clone_from(&text);
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
    true
}
