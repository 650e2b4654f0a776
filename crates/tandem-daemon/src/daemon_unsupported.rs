//! `tandem daemon` on a platform it does not run on yet (Windows, issue 16): the names the
//! CLI uses, each saying so. Tasks run with `tandem run` (from Task Scheduler) meanwhile.

use std::path::{Path, PathBuf};

use crate::error::DaemonError;

const WHY: &str = "tandem daemon is not supported on Windows yet: run tasks with `tandem run NAME` (from Task Scheduler, for schedules)";

#[derive(Clone, Debug)]
pub struct DaemonOptions {
    pub config: PathBuf,
    pub exe: PathBuf,
}

/// Never held: `take_lock` refuses.
#[derive(Debug)]
pub struct DaemonLock(());

pub fn take_lock() -> Result<DaemonLock, DaemonError> {
    Err(DaemonError::NotSupported(WHY))
}

/// No daemon runs here.
pub fn holder() -> Option<u32> {
    None
}

pub fn run(_opts: DaemonOptions, _lock: &DaemonLock) -> Result<(), DaemonError> {
    Err(DaemonError::NotSupported(WHY))
}

pub fn status_path() -> PathBuf {
    tandem_state::state_home().join("daemon.json")
}

pub fn status_pid(_path: &Path) -> Option<u32> {
    None
}
