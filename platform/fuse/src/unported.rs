//! Where fuser does not run (Windows, served by WinFsp in `platform/winfsp`, issue 16):
//! the same names as on Linux and macOS, and mounting says plainly that it is not
//! available through this crate.

use std::convert::Infallible;
use std::io;
use std::path::Path;
use std::sync::Arc;

use tandem_core::{ChangeSink, RelPath};

/// The source directory, opened before the mount hides it.
#[cfg(unix)]
pub type SrcDir = std::os::fd::OwnedFd;
#[cfg(windows)]
pub type SrcDir = std::os::windows::io::OwnedHandle;

/// How the mount behaves (as on Linux; nothing is mounted here yet).
#[derive(Debug, Clone)]
pub struct MountOptions {
    pub allow_other: bool,
    pub kernel_passthrough: bool,
    pub threads: usize,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            allow_other: false,
            kernel_passthrough: true,
            threads: 0,
        }
    }
}

/// What stops a mount here.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "mounting through FUSE is not available on this platform: tandem's FUSE backend \
         runs on Linux and macOS (`tandem sync` works here)"
    )]
    Unsupported,
}

fn unsupported() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, SetupError::Unsupported)
}

pub fn check_can_mount(_allow_other: bool) -> Result<(), SetupError> {
    Err(SetupError::Unsupported)
}

pub fn privileged() -> bool {
    false
}

pub fn detach(_path: &Path) -> io::Result<()> {
    Err(unsupported())
}

/// A running mount: none can exist here.
pub struct MountHandle {
    never: Infallible,
}

pub fn mount(
    _src_dir: SrcDir,
    _mountpoint: &Path,
    _sink: Arc<dyn ChangeSink>,
    _opts: MountOptions,
) -> io::Result<MountHandle> {
    Err(unsupported())
}

impl MountHandle {
    pub fn unmount(self) -> io::Result<()> {
        match self.never {}
    }

    pub fn passthrough_active(&self) -> bool {
        match self.never {}
    }

    pub fn uring_active(&self) -> bool {
        match self.never {}
    }

    pub fn invalidator(&self) -> Arc<dyn tandem_core::Mount> {
        match self.never {}
    }
}

impl tandem_core::Mount for MountHandle {
    fn invalidate(&self, _paths: &[RelPath]) {
        match self.never {}
    }

    fn renamed(&self, _from: &RelPath, _to: &RelPath) {
        match self.never {}
    }
}
