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
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rustix::fs::{Mode, OFlags};
use tandem_engine::{Replicator, Scope, Session};
use tandem_fs::Root;
use tandem_state::JournalWriter;

use crate::args::MountArgs;
use crate::commands::mounts::{self, MountRecord};
use crate::commands::sync::spec_of;
use crate::output::sanitize;

/// How long a stopping mount may spend replicating what is still journaled.
const DRAIN: Duration = Duration::from_secs(20);
/// How long `tandem mount` waits for its background process to be serving.
const START_TIMEOUT: Duration = Duration::from_secs(600);

pub fn run(a: MountArgs) -> Result<u8> {
    let spec = spec_of(&a.pair, &a.opts)?;
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
    if !a.foreground {
        return start_in_background(&spec.state_dir, &mountpoint);
    }

    // Before the mount hides the folder.
    let src_fd: OwnedFd = rustix::fs::open(
        &spec.src,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {}", spec.src.display()))?;
    let engine_fd = rustix::io::dup(&src_fd).context("dup")?;
    let mut session = Session::with_source(&spec, Root::from_fd(engine_fd, &spec.src)?)?;

    // Startup reconcile: whatever changed while nothing was mounted.
    let report = session.sync(&Scope::All, &|_| {})?;
    if let Some(h) = &report.halted {
        eprintln!("tandem: halted for safety: {}", sanitize(h));
        return Ok(3);
    }
    if let Some(s) = &report.stopped {
        bail!("the startup sync stopped: {s}");
    }
    eprintln!(
        "tandem: startup sync: {} copied, {} deleted, {} renamed, {} conflicts",
        report.copied,
        report.deleted,
        report.renamed,
        report.conflicts.len()
    );

    let journal = Arc::new(JournalWriter::open(&spec.state_dir)?);
    let opts = tandem_fuse::MountOptions {
        allow_other: a.allow_other,
        kernel_passthrough: !a.no_passthrough,
        threads: 4,
    };
    let sink: Arc<dyn tandem_core::ChangeSink> = journal.clone();
    let handle = tandem_fuse::mount(src_fd, &mountpoint, sink, opts)
        .with_context(|| format!("mounting over {}", mountpoint.display()))?;
    let record = MountRecord {
        pid: std::process::id(),
        src: spec.src.clone(),
        tgt: spec.tgt.clone(),
        state_dir: spec.state_dir.clone(),
        mountpoint: mountpoint.clone(),
    };
    mounts::register(&record)?;
    eprintln!(
        "tandem: mounted {} (kernel passthrough {}); replicating to {}",
        mountpoint.display(),
        if handle.passthrough_active() {
            "on"
        } else {
            "off"
        },
        spec.tgt.display()
    );

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    let result = (|| -> Result<()> {
        let mut replicator = Replicator::new(&mut session, &journal)?;
        replicator.run(&stop, DRAIN, &|_| {})?;
        eprintln!("tandem: stopping: unmounting {}", mountpoint.display());
        if let Err(e) = handle.unmount() {
            eprintln!("tandem: unmount: {e}; detaching it");
            mounts::detach(&mountpoint)?;
        }
        // Whatever came in while unmounting.
        journal.flush();
        replicator.pass(true, &|_| {})?;
        Ok(())
    })();
    journal.close();
    mounts::unregister(&mountpoint)?;
    result?;
    eprintln!("tandem: stopped cleanly");
    Ok(0)
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
            eprint!("{}", sanitize(&tail));
            bail!(
                "the mount process exited ({status}); its log is {}",
                log_path.display()
            );
        }
        if let Some(rec) = mounts::lookup(mountpoint)? {
            if rec.pid == child.id() && mounts::is_fuse(mountpoint) {
                println!(
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
