//! One daemon per user: an advisory `flock` on `daemon.lock` under the state home, with the
//! holder's pid written in it so that a second daemon can say who holds it. The kernel
//! drops the lock when the holder dies, however it dies.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::PathBuf;

use rustix::fs::{flock, FlockOperation};

use crate::error::DaemonError;

/// The lock, held until dropped.
#[derive(Debug)]
pub struct DaemonLock {
    _file: File,
}

pub fn lock_path() -> PathBuf {
    tandem_state::state_home().join("daemon.lock")
}

/// Takes the lock, or says which process holds it.
pub fn take() -> Result<DaemonLock, DaemonError> {
    let path = lock_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(DaemonError::io("creating", dir))?;
    }
    let mut file = crate::error::open_lock_file(&path)?;
    if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        return Err(held_by(&mut file));
    }
    let write = |f: &mut File| -> std::io::Result<()> {
        f.set_len(0)?;
        f.rewind()?;
        writeln!(f, "{}", std::process::id())
    };
    write(&mut file).map_err(DaemonError::io("writing", &path))?;
    Ok(DaemonLock { _file: file })
}

/// The pid of the daemon holding the lock, if one does (for a check before starting one).
pub fn holder() -> Option<u32> {
    let mut file = File::open(lock_path()).ok()?;
    if flock(&file, FlockOperation::NonBlockingLockShared).is_ok() {
        return None;
    }
    match held_by(&mut file) {
        DaemonError::AlreadyRunning { pid } => pid,
        _ => None,
    }
}

fn held_by(file: &mut File) -> DaemonError {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    DaemonError::AlreadyRunning {
        pid: text.trim().parse().ok(),
    }
}
