//! The name of the program behind a change (`/proc/PID/comm`), read when the change is
//! handed to the journal: the program may be gone by the time the record is written.
//!
//! Read on the mount's request threads, so a name is remembered per pid for a short while
//! (`FRESH`): an untar of 35,000 files reads it a few times, not 100,000 times. A pid is
//! only reused after the kernel has gone through every other one, far longer than `FRESH`;
//! what the cache can get wrong is a program that exec()s another under the same pid within
//! `FRESH` (a shell running its last command), named after the program it was a moment
//! earlier.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a name read for a pid is trusted.
const FRESH: Duration = Duration::from_millis(250);
/// Pids remembered at most; past it the cache starts over (a burst of short-lived
/// processes, each its own pid).
const MAX_PIDS: usize = 4096;

/// Per pid: its name (`None`: it was gone) and when that was read.
type Names = HashMap<u32, (Option<Arc<str>>, Instant)>;

#[derive(Default)]
pub(crate) struct Programs {
    names: Mutex<Names>,
}

impl Programs {
    /// The name of the process `pid` now (`None` once it is gone, or for pid 0: a request
    /// no process made).
    pub(crate) fn name(&self, pid: u32) -> Option<Arc<str>> {
        if pid == 0 {
            return None;
        }
        let now = Instant::now();
        if let Some((name, at)) = self.lock().get(&pid) {
            if now.duration_since(*at) < FRESH {
                return name.clone();
            }
        }
        // Read without the lock: other programs' requests do not wait for it.
        let name = read_comm(pid);
        let mut names = self.lock();
        if names.len() >= MAX_PIDS {
            names.clear();
        }
        names.insert(pid, (name.clone(), now));
        name
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Names> {
        self.names.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn read_comm(pid: u32) -> Option<Arc<str>> {
    let bytes = std::fs::read(format!("/proc/{pid}/comm")).ok()?;
    let name = String::from_utf8_lossy(&bytes);
    let name = name.trim_end_matches('\n');
    (!name.is_empty()).then(|| Arc::from(name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_this_process_and_nothing_for_a_gone_one() {
        let p = Programs::default();
        let me = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert_eq!(p.name(std::process::id()).as_deref(), Some(me.trim_end()));
        assert_eq!(p.name(0), None);
        // Above the largest pid the kernel hands out (2^22).
        assert_eq!(p.name(u32::MAX - 1), None);
    }
}
