//! The one place that names the platform's mount backend; everything else talks to
//! `tandem_core::MountBackend`.

use tandem_core::MountBackend;

/// The backend that serves mounts on this platform.
#[cfg(unix)]
pub fn backend() -> &'static dyn MountBackend {
    &tandem_fuse::FuseBackend
}

/// The backend that serves mounts on this platform: WinFsp (`platform/winfsp`).
#[cfg(windows)]
pub fn backend() -> &'static dyn MountBackend {
    &tandem_winfsp::WinFspBackend
}
