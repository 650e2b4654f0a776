//! What mounting needs on macOS: macFUSE, whose mount helper (set-user-ID root, in
//! `/Library/Filesystems/macfuse.fs`) mounts for any user, and whose `libfuse` fuser links
//! to. Unmounting a mount still in use is forced (macOS has no lazy detach).

use std::io;
use std::path::Path;
use std::process::Command;

/// Where macFUSE installs its file system bundle.
pub const MACFUSE: &str = "/Library/Filesystems/macfuse.fs";

/// Something the machine lacks for mounting.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "{MACFUSE} is missing: mounting on macOS needs macFUSE (https://macfuse.github.io, \
         or `brew install --cask macfuse`), allowed in System Settings > Privacy & \
         Security; `tandem sync` works without it"
    )]
    NoMacFuse,
}

impl SetupError {
    /// How a mount refused for this reason fails.
    pub fn io_kind(&self) -> io::ErrorKind {
        io::ErrorKind::NotFound
    }
}

/// Checks that macFUSE is installed. `allow_other` needs nothing more from the machine
/// (macFUSE allows it to the mounting user).
pub fn check_can_mount(_allow_other: bool) -> Result<(), SetupError> {
    if Path::new(MACFUSE).is_dir() {
        Ok(())
    } else {
        Err(SetupError::NoMacFuse)
    }
}

/// False: macOS has no kernel passthrough, and macFUSE's helper mounts for everyone.
pub fn privileged() -> bool {
    false
}

/// Unmounts the mount at `path` now, even while programs use it (`diskutil unmount
/// force`, which any user may run on their own mounts).
pub fn detach(path: &Path) -> io::Result<()> {
    let out = Command::new("/usr/sbin/diskutil")
        .args(["unmount", "force"])
        .arg(path)
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "diskutil unmount force {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
