//! Linux: FUSE's magic number, `/proc/self/mountinfo` and `fusectl`.

use std::path::Path;

use super::super::registry::detach;
use crate::error::DaemonError;

type Result<T> = std::result::Result<T, DaemonError>;

const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;

/// Whether the FUSE connection at `p` was aborted (`ENOTCONN` on any call).
pub fn connection_aborted(p: &Path) -> bool {
    matches!(rustix::fs::statfs(p), Err(rustix::io::Errno::NOTCONN))
}

pub fn is_fuse(p: &Path) -> bool {
    rustix::fs::statfs(p).is_ok_and(|s| s.f_type == FUSE_SUPER_MAGIC)
}

/// Whether the mount registered at `p` is up: a FUSE file system is there.
pub fn serving(p: &Path) -> bool {
    is_fuse(p)
}

/// The device number of the FUSE file system mounted at `p` (the topmost one), read from
/// `/proc/self/mountinfo` without touching the mount, as the kernel numbers it (the name of
/// its folder under `/sys/fs/fuse/connections`).
pub fn fuse_mount_dev(p: &Path) -> Option<u64> {
    let line = tandem_fs::read_mountinfo()
        .into_iter()
        .rev()
        .find(|l| (l.fstype == "fuse" || l.fstype.starts_with("fuse.")) && l.point == p)?;
    let (major, minor) = (rustix::fs::major(line.dev), rustix::fs::minor(line.dev));
    Some((u64::from(major) << 20) | u64::from(minor))
}

/// Ends every request of the FUSE connection mounted at `p` with an error, which frees
/// whatever waits on it, and detaches the mount: `fusectl`'s `abort` (open to the mount's
/// owner, where fusectl is mounted), else MNT_FORCE (root), which aborts the connection
/// as it unmounts; else, for a user, only the detach (fusermount3 cannot abort).
pub fn abort_and_detach(dev: u64, p: &Path) -> Result<()> {
    use rustix::mount::{unmount, UnmountFlags};
    let aborted = std::fs::write(format!("/sys/fs/fuse/connections/{dev}/abort"), "1").is_ok();
    if !aborted && unmount(p, UnmountFlags::FORCE | UnmountFlags::DETACH).is_ok() {
        return Ok(());
    }
    detach(p)
}
