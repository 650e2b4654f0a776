//! macOS: macFUSE mounts are told apart by their file system type name (`macfuse`, or
//! `osxfuse` for macFUSE 3). There is no connection to abort: a stale mount is unmounted
//! by force.

use std::path::Path;

use crate::error::DaemonError;

type Result<T> = std::result::Result<T, DaemonError>;

/// Whether a macFUSE file system is mounted at `p`.
pub fn is_fuse(p: &Path) -> bool {
    rustix::fs::statfs(p).is_ok_and(|s| {
        let name: Vec<u8> = s
            .f_fstypename
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        name.starts_with(b"macfuse") || name.starts_with(b"osxfuse")
    })
}

/// Whether the mount registered at `p` is up: a macFUSE file system is there.
pub fn serving(p: &Path) -> bool {
    is_fuse(p)
}

/// A macFUSE mount whose daemon died answers with `ENXIO` or `ENOTCONN`.
pub fn connection_aborted(p: &Path) -> bool {
    matches!(
        rustix::fs::statfs(p),
        Err(rustix::io::Errno::NOTCONN | rustix::io::Errno::NXIO)
    )
}

/// macFUSE has no per-connection device to name: the mount point stands for it. Asking
/// does not hang on a mount whose daemon died: macFUSE marks it dead when the daemon's
/// device closes, and `statfs` then fails at once.
pub fn fuse_mount_dev(p: &Path) -> Option<u64> {
    is_fuse(p).then_some(0)
}

/// Unmounts the stale mount at `p` by force (`diskutil unmount force`).
pub fn abort_and_detach(_dev: u64, p: &Path) -> Result<()> {
    super::super::registry::detach(p)
}
