//! `tandem mount`: a passthrough filesystem over SRC, its change journal, and live
//! replication to TGT, until `tandem unmount` or a signal.
//!
//! Order matters: the SRC directory fd is opened *before* the mount hides the folder (the
//! engine and the filesystem both reach the real files through it); the startup reconcile
//! runs before anything is mounted (changes made while nothing was mounted must not be
//! missed, DESIGN.md invariant 8); on SIGINT/SIGTERM the journal is flushed and drained
//! before the unmount, and drained once more after it.

use std::io::{Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rustix::fs::{Mode, OFlags};
use tandem_engine::{Replicator, ReplicatorConfig, Session, SourceHooks, SyncSpec, TargetStatus};
use tandem_fs::Root;
use tandem_state::JournalWriter;

use crate::args::{MountArgs, PairArgs};
use crate::commands::mounts::{self, MountRecord};
use crate::commands::sync::spec_of;
use crate::output::sanitize;

/// How long a stopping mount may spend replicating what is still journaled.
const DRAIN: Duration = Duration::from_secs(20);
/// How long `tandem mount` waits for its background process to be serving.
const START_TIMEOUT: Duration = Duration::from_secs(600);

pub fn run(a: MountArgs) -> Result<u8> {
    if a.state_dir.is_some() && a.targets.len() > 1 {
        bail!("--state-dir applies to a single target; with several targets each pair keeps its state in its default place");
    }
    // What the machine lacks (FUSE, access to it, fusermount3), said before any work.
    tandem_fuse::check_can_mount(a.allow_other).context("cannot mount")?;
    if a.at.is_none() {
        // Before anything looks into SRC: a mount left by a killed tandem may leave every
        // call on the folder blocked until its connection is aborted.
        mounts::clean_stale(&mounts::absolute(&a.src)?)?;
    }
    let specs: Vec<SyncSpec> = a
        .targets
        .iter()
        .map(|tgt| {
            let pair = PairArgs {
                src: a.src.clone(),
                tgt: tgt.clone(),
                state_dir: a.state_dir.clone(),
            };
            spec_of(&pair, &a.opts)
        })
        .collect::<Result<_>>()?;
    check_targets(&specs)?;
    let spec = &specs[0];
    let mountpoint = match &a.at {
        Some(p) => mounts::absolute(p)?,
        None => spec.src.clone(),
    };
    mounts::clean_stale(&mountpoint)?;
    if let Some(rec) = mounts::lookup(&mountpoint)? {
        if mounts::alive(rec.pid) {
            bail!(
                "{} is already mounted by tandem (pid {})",
                mountpoint.display(),
                rec.pid
            );
        }
    }
    if mounts::is_fuse(&mountpoint) {
        bail!(
            "{} is already a FUSE mount point; unmount it first",
            mountpoint.display()
        );
    }
    check_loops(&specs)?;
    if !a.foreground {
        return start_in_background(&spec.state_dir, &mountpoint);
    }

    // From here on a signal asks for a clean stop (acted on once the mount serves): one
    // arriving while the mount comes up must not kill the process with the mount half set
    // up.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }

    // Before the mount hides the folder.
    let src_fd: OwnedFd = rustix::fs::open(
        &spec.src,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {}", spec.src.display()))?;

    let mut sessions = Vec::new();
    for spec in &specs {
        let engine_fd = rustix::io::dup(&src_fd).context("dup")?;
        sessions.push(Session::with_source(
            spec,
            Root::from_fd(engine_fd, &spec.src)?,
        )?);
    }
    let journal = Arc::new(JournalWriter::open(&spec.state_dir)?);
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
        rescan_every: if a.rescan_every == 0 {
            Duration::from_secs(u64::from(u32::MAX))
        } else {
            Duration::from_secs(a.rescan_every)
        },
    };
    // Each target's watcher starts before its startup reconcile: a change made in the
    // target meanwhile is seen by one or the other.
    let mut replicators: Vec<Replicator> = Vec::new();
    for (session, reader) in sessions.into_iter().zip(readers.drain(..)) {
        replicators.push(Replicator::new(
            session,
            Arc::clone(&journal),
            reader,
            config.clone(),
        )?);
    }
    let sink: Arc<dyn tandem_core::ChangeSink> = journal.clone();
    // Other targets learn of a change merged from one target through the journal.
    let journal_hook = (replicators.len() > 1).then(|| sink.clone());
    if let Some(code) = startup(&mut replicators, &specs, &journal_hook)? {
        return Ok(code);
    }

    let opts = tandem_fuse::MountOptions {
        allow_other: a.allow_other,
        kernel_passthrough: !a.no_passthrough,
        threads: super::count_from_env("TANDEM_FUSE_THREADS").unwrap_or(4),
    };
    let handle = tandem_fuse::mount(src_fd, &mountpoint, sink.clone(), opts)
        .with_context(|| format!("mounting over {}", mountpoint.display()))?;
    for r in &mut replicators {
        r.set_source_hooks(SourceHooks {
            mount: Some(handle.invalidator()),
            journal: journal_hook.clone(),
        });
    }
    let record = MountRecord {
        pid: std::process::id(),
        src: spec.src.clone(),
        targets: specs.iter().map(|s| s.tgt.clone()).collect(),
        state_dir: spec.state_dir.clone(),
        mountpoint: mountpoint.clone(),
    };
    mounts::register(&record)?;
    errln!(
        "tandem: mounted {} (kernel passthrough {}); replicating to {}",
        mountpoint.display(),
        passthrough_state(&handle, a.no_passthrough),
        specs
            .iter()
            .map(|s| s.tgt.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let status_path = spec.state_dir.join(STATUS_FILE);
    let statuses: Vec<_> = replicators.iter().map(Replicator::status).collect();
    let mut last_status = String::new();
    let holds: Vec<_> = specs
        .iter()
        .map(|s| s.state_dir.clone())
        .zip(replicators.iter().map(Replicator::hold))
        .collect();
    let n = replicators.len();
    let (drained_tx, drained_rx) = crossbeam_channel::unbounded::<()>();
    let (unmounted_tx, unmounted_rx) = crossbeam_channel::bounded::<()>(0);
    let result = std::thread::scope(|sc| -> Result<()> {
        let workers: Vec<_> = replicators
            .into_iter()
            .map(|mut r| {
                let (stop, drained_tx, unmounted_rx, journal) =
                    (&*stop, drained_tx.clone(), unmounted_rx.clone(), &journal);
                sc.spawn(move || -> Result<()> {
                    let ran = r.run(stop, DRAIN, &|_| {});
                    let _ = drained_tx.send(());
                    // Returns when the unmount is done (the sender is dropped).
                    let _ = unmounted_rx.recv();
                    ran?;
                    // Whatever came in while unmounting.
                    journal.flush();
                    r.pass(true, &|_| {})?;
                    Ok(())
                })
            })
            .collect();
        drop(drained_tx);
        // Serve until a signal (or a replicator gives up).
        while !stop.load(Ordering::Relaxed) && drained_rx.is_empty() {
            write_status(&status_path, &statuses, &mut last_status);
            crate::commands::hold::serve(&holds);
            std::thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, Ordering::Relaxed);
        for _ in 0..n {
            let _ = drained_rx.recv();
        }
        errln!("tandem: stopping: unmounting {}", mountpoint.display());
        if let Err(e) = handle.unmount() {
            errln!("tandem: unmount: {e}; detaching it");
            mounts::detach(&mountpoint)?;
        }
        drop(unmounted_tx);
        let mut first_err = None;
        for w in workers {
            let r = w
                .join()
                .unwrap_or_else(|_| Err(anyhow!("a replicator thread panicked")));
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    });
    journal.close();
    let _ = std::fs::remove_file(&status_path);
    mounts::unregister(&mountpoint)?;
    result?;
    errln!("tandem: stopped cleanly");
    Ok(0)
}

/// The startup reconcile of every pair: whatever changed while nothing was mounted. `Some`
/// exit code when it must stop there.
///
/// What is merged into the source is journaled (`journal`) from here on: the pairs are
/// reconciled one after another, so a file found only in the last target reaches the
/// source after the earlier targets' startup ran, and only its record brings it to them
/// (issue 20).
fn startup(
    replicators: &mut [Replicator],
    specs: &[SyncSpec],
    journal: &Option<Arc<dyn tandem_core::ChangeSink>>,
) -> Result<Option<u8>> {
    for r in replicators.iter_mut() {
        r.set_source_hooks(SourceHooks {
            mount: None,
            journal: journal.clone(),
        });
    }
    for (r, spec) in replicators.iter_mut().zip(specs) {
        let report = r.startup(&|_| {})?;
        if let Some(h) = &report.halted {
            errln!("tandem: halted for safety: {}", sanitize(h));
            return Ok(Some(3));
        }
        if let Some(s) = &report.stopped {
            bail!("the startup sync with {} stopped: {s}", spec.tgt.display());
        }
        if let Some(t) = &report.created_target {
            errln!("tandem: created the target folder {}", t.display());
        }
        errln!(
            "tandem: startup sync with {}: {} copied, {} deleted, {} renamed, {} conflicts",
            spec.tgt.display(),
            report.copied,
            report.deleted,
            report.renamed,
            report.conflicts.len()
        );
    }
    Ok(None)
}

/// How the mount serves reads and writes, for the log.
fn passthrough_state(handle: &tandem_fuse::MountHandle, turned_off: bool) -> &'static str {
    if handle.passthrough_active() {
        "on"
    } else if !turned_off && !tandem_fuse::privileged() {
        "off: it needs CAP_SYS_ADMIN"
    } else {
        "off"
    }
}

/// Targets must be distinct and not inside one another (each one's watcher would see the
/// other's writes); each is checked against the source with its pair.
fn check_targets(specs: &[SyncSpec]) -> Result<()> {
    let tgts: Vec<&Path> = specs.iter().map(|s| s.tgt.as_path()).collect();
    Ok(tandem_engine::roots::check_targets_apart(&tgts)?)
}

/// A target that another running tandem mount uses as its source, or a source another
/// mount replicates into, would make changes go round in a loop.
fn check_loops(specs: &[SyncSpec]) -> Result<()> {
    let src = &specs[0].src;
    for other in mounts::all_alive() {
        for s in specs {
            if other.src == s.tgt {
                bail!(
                    "the target {} is the source of another running tandem mount (pid {}); syncing into it would go round in a loop",
                    s.tgt.display(),
                    other.pid
                );
            }
        }
        if other.targets.iter().any(|t| t == src) {
            bail!(
                "the source {} is a target of another running tandem mount (pid {}, source {}); syncing from it would go round in a loop",
                src.display(),
                other.pid,
                other.src.display()
            );
        }
    }
    Ok(())
}

/// Where a running mount publishes where each target stands (read by `tandem status`).
pub const STATUS_FILE: &str = "mount-status.json";

/// Writes the status file when it changed since `last`.
fn write_status(path: &Path, statuses: &[Arc<Mutex<TargetStatus>>], last: &mut String) {
    let targets: Vec<serde_json::Value> = statuses
        .iter()
        .map(|s| {
            let s = s.lock().unwrap_or_else(|p| p.into_inner());
            serde_json::json!({
                "target": s.target,
                "cursor": s.cursor,
                "pending": s.pending,
                "paused": s.paused,
                "unwatched": s.unwatched,
                "conflicts": s.conflicts,
                "failed": s.failed.iter().map(|f| serde_json::json!({"path": f.path.escaped(), "error": f.reason})).collect::<Vec<_>>(),
                "last_full_rescan": s.last_full_rescan_unix,
            })
        })
        .collect();
    let text = serde_json::json!({ "pid": std::process::id(), "targets": targets }).to_string();
    if text == *last {
        return;
    }
    last.clone_from(&text);
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

/// Starts `tandem mount ... --foreground` in a new session, logging to the state
/// directory, and returns once it serves the mount (or failed).
fn start_in_background(state_dir: &Path, mountpoint: &Path) -> Result<u8> {
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let log_path = state_dir.join("mount.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let start_at = log.metadata()?.len();
    let exe = std::env::current_exe().context("finding the tandem binary")?;
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    args.push("--foreground".into());
    let mut cmd = Command::new(exe);
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // A session of its own: the mount outlives this terminal.
    use std::os::unix::process::CommandExt;
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("starting the mount process")?;
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            let tail = read_from(&log_path, start_at);
            crate::output::pipe::err_bytes(sanitize(&tail).as_bytes());
            bail!(
                "the mount process exited ({status}); its log is {}",
                log_path.display()
            );
        }
        if let Some(rec) = mounts::lookup(mountpoint)? {
            if rec.pid == child.id() && mounts::is_fuse(mountpoint) {
                outln!(
                    "tandem: mounted {} (pid {}, log {})",
                    mountpoint.display(),
                    rec.pid,
                    log_path.display()
                );
                return Ok(0);
            }
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(anyhow!(
                "the mount did not come up within {:?}; see {}",
                START_TIMEOUT,
                log_path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_from(path: &PathBuf, offset: u64) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.seek(SeekFrom::Start(offset));
        let _ = f.read_to_string(&mut s);
    }
    s
}
