//! `tandem daemon [--foreground]`: runs every task on its schedules, as
//! `tandem_daemon::daemon` does; without `--foreground`, in a process of its own started in
//! the background, returning once it is up.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use tandem_daemon::daemon::{self, DaemonOptions};
use tandem_daemon::DaemonError;

/// How long `tandem daemon` waits for its background process to be up.
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub fn run(config: &Path, a: crate::args::DaemonArgs) -> Result<u8> {
    let config = crate::task::absolute(config)?;
    if !a.foreground {
        if let Some(pid) = daemon::holder() {
            return Err(DaemonError::AlreadyRunning { pid: Some(pid) }.into());
        }
        return start_in_background();
    }
    let lock = daemon::take_lock()?;
    let opts = DaemonOptions {
        config,
        exe: std::env::current_exe().context("finding the tandem binary")?,
    };
    daemon::run(opts, &lock)?;
    Ok(0)
}

/// Starts `tandem daemon --foreground` in a session of its own, logging to the state home,
/// and returns once it is up (its status file names it).
fn start_in_background() -> Result<u8> {
    let log = tandem_state::state_home().join("daemon.log");
    let status = daemon::status_path();
    let is_up = |pid: u32| daemon::status_pid(&status) == Some(pid);
    let pid = super::start_self_in_background("daemon", &log, START_TIMEOUT, &is_up)?;
    outln!("tandem: daemon started (pid {pid}, log {})", log.display());
    Ok(0)
}
