//! Windows: built and type-checked, not yet tested on the platform (issue 16).

use std::fs::File;
use std::os::windows::io::AsRawHandle;

use windows_sys::Win32::Foundation::ERROR_DISK_FULL;
use windows_sys::Win32::Storage::FileSystem::{
    LockFileEx, LOCKFILE_EXCLUSIVE_LOCK, LOCKFILE_FAIL_IMMEDIATELY,
};
use windows_sys::Win32::System::IO::OVERLAPPED;

/// Takes an exclusive lock on `file` without waiting; false when another process holds it.
/// Released when the file is closed (or the process ends). Windows' locks are mandatory:
/// the holder's pid in the file cannot be read by the one refused.
pub(crate) fn try_lock_exclusive(file: &File) -> bool {
    // SAFETY: an all-zero OVERLAPPED is valid (offset 0, no event).
    let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
    // SAFETY: the handle is open for as long as `file` lives; `ov` outlives the call,
    // which returns at once (LOCKFILE_FAIL_IMMEDIATELY, a synchronous handle).
    let ok = unsafe {
        LockFileEx(
            file.as_raw_handle(),
            LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY,
            0,
            u32::MAX,
            u32::MAX,
            &mut ov,
        )
    };
    ok != 0
}

/// The OS error of a full disk (`ERROR_DISK_FULL`).
pub(crate) fn disk_full_os_error() -> i32 {
    ERROR_DISK_FULL as i32
}

/// Nothing to do: a folder cannot be flushed through a handle Windows lets us open on it,
/// and NTFS journals the names it holds.
pub(crate) fn sync_dir(_dir: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}
