//! Borrowing a mounted pair for a moment: `tandem resolve` while a mount serves the pair
//! asks the mount (a request file in the pair's state directory) to pause that target's
//! replicator between passes, works on the pair while the mount keeps its lock, and lets go
//! by removing the request. What it changed is re-checked by the replicator afterwards.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tandem_engine::Hold;

use super::registry as mounts;
use crate::error::DaemonError;

const REQUEST: &str = "hold.request";
const GRANTED: &str = "hold.granted";
/// How long a command waits for the mount to pause the pair.
const WAIT: Duration = Duration::from_secs(60);

/// The pair, paused by its mount until dropped.
pub struct Granted {
    dir: PathBuf,
    /// The mount that paused the pair.
    pid: u32,
}

impl Granted {
    /// Whether the mount that paused the pair still runs. Once it is gone (killed), the
    /// pause means nothing: a new mount may start on the pair at any moment, so the caller
    /// must take the pair's lock itself before it goes on.
    pub fn still_held(&self) -> bool {
        mounts::alive(self.pid) && self.dir.join(GRANTED).exists()
    }
}

impl Drop for Granted {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.dir.join(REQUEST));
    }
}

/// When a running mount serves this pair, asks it to pause the pair and waits until it
/// has; `None` when no mount serves it (the caller takes the pair's lock as usual).
pub fn ask(src: &Path, tgt: &Path, state_dir: &Path) -> Result<Option<Granted>, DaemonError> {
    let Some(m) = mounts::lookup(src)?.filter(|m| mounts::alive(m.pid)) else {
        return Ok(None);
    };
    if !m.targets.iter().any(|t| t == tgt) {
        return Ok(None);
    }
    let dir = state_dir.to_path_buf();
    let _ = std::fs::remove_file(dir.join(GRANTED));
    let request = dir.join(REQUEST);
    std::fs::write(&request, std::process::id().to_string())
        .map_err(DaemonError::io("writing", &request))?;
    let granted = Granted { dir, pid: m.pid };
    let start = Instant::now();
    while !granted.dir.join(GRANTED).exists() {
        if start.elapsed() > WAIT || !mounts::alive(m.pid) {
            return Err(DaemonError::Refused(format!(
                "the mount of {} (pid {}) did not pause the pair; try again, or `tandem unmount` first",
                src.display(),
                m.pid
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(Some(granted))
}

/// The mount's side, called on every tick: pauses the replicators whose pair is asked for
/// by a live process, grants once paused, resumes when the request is gone. Whether any
/// pair is asked for or was until now (the caller keeps checking often meanwhile).
pub fn serve(pairs: &[(PathBuf, std::sync::Arc<Hold>)]) -> bool {
    let mut busy = false;
    for (dir, hold) in pairs {
        let requester = std::fs::read_to_string(dir.join(REQUEST))
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
            .filter(|pid| mounts::alive(*pid));
        if requester.is_some() {
            busy = true;
            hold.wanted.store(true, Ordering::SeqCst);
            if hold.holding.load(Ordering::SeqCst) && !dir.join(GRANTED).exists() {
                let _ = std::fs::write(dir.join(GRANTED), "");
            }
        } else if hold.wanted.swap(false, Ordering::SeqCst) {
            busy = true;
            remove(dir);
        }
    }
    busy
}

fn remove(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(GRANTED));
    let _ = std::fs::remove_file(dir.join(REQUEST));
}
