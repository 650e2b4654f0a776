use std::fs::File;

use rustix::fs::{flock, FlockOperation};

/// Takes an exclusive lock on `file` without waiting; false when another process holds it.
/// Released when the file is closed (or the process ends).
pub(crate) fn try_lock_exclusive(file: &File) -> bool {
    flock(file, FlockOperation::NonBlockingLockExclusive).is_ok()
}

/// The OS error of a full disk (`ENOSPC`).
pub(crate) fn disk_full_os_error() -> i32 {
    rustix::io::Errno::NOSPC.raw_os_error()
}

/// fsyncs the folder `dir`: the names made in it are durable afterwards.
pub(crate) fn sync_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
