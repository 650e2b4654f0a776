//! The one place that names the platform's mount backend; everything else talks to
//! `tandem_core::MountBackend`.

use tandem_core::MountBackend;

/// The backend that serves mounts on this platform.
#[cfg(unix)]
pub fn backend() -> &'static dyn MountBackend {
    &tandem_fuse::FuseBackend
}

/// The backend that serves mounts on this platform: WinFsp (`platform/winfsp`), which is
/// not there yet.
#[cfg(windows)]
pub fn backend() -> &'static dyn MountBackend {
    &winfsp_missing::NoWinFsp
}

#[cfg(windows)]
mod winfsp_missing {
    use std::path::Path;
    use std::sync::Arc;

    use tandem_core::{ChangeSink, MountBackend, MountConfig, MountSetupError, Mounted, SourceDir};

    const WHY: &str =
        "tandem mount needs WinFsp on Windows: not available yet (`tandem sync` works here)";

    /// Says that mounting needs WinFsp, before any work.
    pub struct NoWinFsp;

    fn unsupported() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::Unsupported, WHY)
    }

    impl MountBackend for NoWinFsp {
        fn check(&self, _allow_other: bool) -> Result<(), MountSetupError> {
            Err(WHY.into())
        }

        fn mount(
            &self,
            _src: SourceDir,
            _mountpoint: &Path,
            _sink: Arc<dyn ChangeSink>,
            _config: &MountConfig,
        ) -> std::io::Result<Box<dyn Mounted>> {
            Err(unsupported())
        }

        fn detach(&self, _mountpoint: &Path) -> std::io::Result<()> {
            Err(unsupported())
        }

        fn privileged(&self) -> bool {
            false
        }
    }
}
