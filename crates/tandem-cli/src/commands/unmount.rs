//! `tandem unmount SRC`: asks the mount process to stop (SIGTERM: flush the journal,
//! drain the replicator, unmount) and waits for it.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::args::UnmountArgs;
use tandem_daemon::mounted::registry as mounts;

const WAIT: Duration = Duration::from_secs(120);

pub fn run(a: UnmountArgs) -> Result<u8> {
    let mountpoint = mounts::absolute(&a.src)?;
    let Some(rec) = mounts::lookup(&mountpoint)? else {
        if mounts::clean_stale(&mountpoint)? {
            outln!(
                "tandem: detached the stale mount at {}",
                mountpoint.display()
            );
            return Ok(0);
        }
        bail!("nothing is mounted by tandem at {}", mountpoint.display());
    };
    if !mounts::alive(rec.pid) {
        mounts::clean_stale(&mountpoint)?;
        mounts::unregister_if(&mountpoint, rec.pid)?;
        outln!(
            "tandem: the mount process (pid {}) was gone; cleaned up",
            rec.pid
        );
        return Ok(0);
    }
    tandem_daemon::background::terminate(rec.pid)
        .with_context(|| format!("stopping the mount process (pid {})", rec.pid))?;
    let start = Instant::now();
    while mounts::alive(rec.pid) {
        if start.elapsed() > WAIT {
            bail!(
                "the mount process (pid {}) did not stop within {:?}; see {}",
                rec.pid,
                WAIT,
                rec.state_dir.join("mount.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    outln!("tandem: unmounted {}", mountpoint.display());
    Ok(0)
}
