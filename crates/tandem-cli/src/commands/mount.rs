//! `tandem mount`: parses, builds each pair's spec, and serves the mounted session of
//! `tandem_daemon::mounted` in this process (`--foreground`) or in one started in the
//! background.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tandem_daemon::mounted::{self, registry, MountRequest, Served};
use tandem_engine::SyncSpec;
use tandem_remote::Connect;

use crate::args::{MountArgs, PairArgs};
use crate::commands::sync::{connect_of, spec_of};
use crate::output::sanitize;

/// How long `tandem mount` waits for its background process to be serving.
const START_TIMEOUT: Duration = Duration::from_secs(600);

pub fn run(config: &Path, a: MountArgs) -> Result<u8> {
    if a.state_dir.is_some() && a.targets.len() > 1 {
        bail!("--state-dir applies to a single target; with several targets each pair keeps its state in its default place");
    }
    mounted::check_can_mount(a.allow_other)?;
    if a.at.is_none() {
        // Before anything looks into SRC: a mount left by a killed tandem may leave every
        // call on the folder blocked until its connection is aborted.
        registry::clean_stale(&registry::absolute(&a.src)?)?;
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
    let remotes: Vec<Option<Connect>> = a
        .targets
        .iter()
        .map(|t| crate::task::remote_target(t).map(|t| connect_of(t, &a.remote)))
        .collect();
    let remote: Vec<bool> = remotes.iter().map(Option::is_some).collect();
    let mountpoint = mounted::prepare(&specs, &remote, a.at.as_deref())?;
    if !a.foreground {
        return start_in_background(&specs[0], &mountpoint);
    }
    // From here on a signal asks for a clean stop (acted on once the mount serves): one
    // arriving while the mount comes up must not kill the process with the mount half set
    // up.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    let req = MountRequest {
        specs,
        mountpoint,
        allow_other: a.allow_other,
        no_passthrough: a.no_passthrough,
        rescan_every: (a.rescan_every > 0).then(|| Duration::from_secs(a.rescan_every)),
        fuse_threads: super::count_from_env("TANDEM_FUSE_THREADS").unwrap_or(4),
        brake: a.delete_brake.0,
        transport: a.transport.into(),
        history_max_file: (!a.no_history).then_some(a.history_max_file),
        on_hold: a.task.as_deref().and_then(|name| held_mailer(config, name)),
        remotes,
    };
    match mounted::serve(&req, &stop)? {
        Served::Stopped => Ok(0),
        Served::Halted(why) => {
            errln!("tandem: halted for safety: {}", sanitize(&why));
            Ok(3)
        }
    }
}

/// The hook that mails task `name`'s addresses when the brake holds deletions; a task or
/// config that cannot be read is said, and the mount serves without it.
fn held_mailer(config: &Path, name: &str) -> Option<tandem_engine::OnHold> {
    let loaded = tandem_task::Config::load(config)
        .and_then(|cfg| cfg.task(name).map(tandem_task::held_mailer));
    match loaded {
        Ok(hook) => hook,
        Err(e) => {
            errln!(
                "tandem: held deletions will not be mailed: {}",
                sanitize(&e.to_string())
            );
            None
        }
    }
}

/// Starts `tandem mount ... --foreground` in a session of its own, logging to the state
/// directory, and returns once it serves the mount (or failed).
fn start_in_background(spec: &SyncSpec, mountpoint: &std::path::Path) -> Result<u8> {
    let log = spec.state_dir.join("mount.log");
    let is_up = |pid: u32| {
        registry::lookup(mountpoint)
            .ok()
            .flatten()
            .is_some_and(|rec| rec.pid == pid && registry::serving(mountpoint))
    };
    let pid = super::start_self_in_background("mount", &log, START_TIMEOUT, &is_up)?;
    outln!(
        "tandem: mounted {} (pid {pid}, log {})",
        mountpoint.display(),
        log.display()
    );
    Ok(0)
}
