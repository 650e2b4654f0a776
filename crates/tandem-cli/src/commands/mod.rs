//! One file per subcommand: each is a thin wrapper around the engine or the store.

pub mod changes;
pub mod completions;
pub mod conflicts;
pub mod daemon;
pub mod forget;
pub mod held;
pub mod history;
pub mod log;
pub mod mount;
pub mod resolve;
pub mod run;
pub mod serve;
pub mod status;
pub mod sync;
pub mod task;
pub mod unmount;

/// A flag set by SIGINT or SIGTERM, for a run to stop between steps and commit what it
/// did; a second signal ends the process at once (what is committed stays consistent).
pub fn stop_on_signals() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    use anyhow::Context;
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for (sig, code) in [(SIGINT, 130), (SIGTERM, 143)] {
        signal_hook::flag::register_conditional_shutdown(sig, code, std::sync::Arc::clone(&stop))
            .context("installing signal handlers")?;
        signal_hook::flag::register(sig, std::sync::Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    Ok(stop)
}

/// A count given in the environment (`TANDEM_THREADS`, `TANDEM_FUSE_THREADS`): tuning knobs
/// for measurements, undocumented in `--help`.
pub fn count_from_env(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Starts this same command again with `--foreground`, in a session of its own, logging
/// to `log`, and returns its pid once `is_up` says it is; when it exits first, the tail of
/// its log is shown before the error.
pub fn start_self_in_background(
    name: &'static str,
    log: &std::path::Path,
    limit: std::time::Duration,
    is_up: &dyn Fn(u32) -> bool,
) -> anyhow::Result<u32> {
    use tandem_daemon::background::{start, Start, StartError};
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    args.push("--foreground".into());
    let started = start(&Start {
        name,
        args,
        log: log.to_path_buf(),
        limit,
        is_up,
    });
    started.map_err(|e| {
        if let StartError::Exited { tail, .. } = &e {
            crate::output::pipe::err_bytes(crate::output::sanitize(tail).as_bytes());
        }
        e.into()
    })
}
