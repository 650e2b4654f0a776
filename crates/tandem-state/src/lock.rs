//! The per-pair lock (invariant 9): an advisory `flock` on `lock` in the state directory,
//! released when the process ends however it ends.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

use crate::{Result, StateError};

pub struct Lock {
    _file: File,
}

/// Takes an exclusive advisory lock on `file` without waiting; false when another process
/// holds it. Released when the file is closed or the process ends, however it ends.
pub fn try_lock_file(file: &File) -> bool {
    crate::sys::try_lock_exclusive(file)
}

impl Lock {
    pub fn acquire(dir: &Path) -> Result<Lock> {
        crate::create_dir_durable(dir)?;
        let path = dir.join("lock");
        let io = |source| StateError::LockIo {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        if !crate::sys::try_lock_exclusive(&file) {
            let mut s = String::new();
            let _ = file.read_to_string(&mut s);
            return Err(StateError::Locked {
                path,
                pid: s.trim().parse().ok(),
            });
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(Lock { _file: file })
    }
}
