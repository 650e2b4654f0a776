//! Windows (WinFsp, issue 16): there is no FUSE mount of ours to find or
//! tear down.

use std::path::Path;

use crate::error::DaemonError;

type Result<T> = std::result::Result<T, DaemonError>;

/// macFUSE mounts are not told apart yet (its `statfs` names them `macfuse`).
pub fn is_fuse(_p: &Path) -> bool {
    false
}

/// Whether the mount registered at `p` is up. Nothing here tells our mount from the file
/// system (WinFsp's volume is not FUSE): the record its process writes once the system
/// accepted the mount is the proof.
pub fn serving(_p: &Path) -> bool {
    true
}

/// Never asked: no mount of ours is found here (`fuse_mount_dev`).
pub fn connection_aborted(_p: &Path) -> bool {
    false
}

pub fn fuse_mount_dev(_p: &Path) -> Option<u64> {
    None
}

pub fn abort_and_detach(_dev: u64, p: &Path) -> Result<()> {
    super::super::registry::detach(p)
}
