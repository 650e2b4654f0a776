//! `FuseBackend`: this crate behind the `tandem_core::MountBackend` seam, so that whoever
//! starts a mount never names `tandem_fuse`.

use std::io;
use std::path::Path;
use std::sync::Arc;

use tandem_core::{ChangeSink, Mount, MountBackend, MountConfig, MountSetupError, Mounted};

use crate::{MountHandle, MountOptions};

/// The fuser-based backend (Linux; macOS through macFUSE).
#[derive(Clone, Copy, Debug, Default)]
pub struct FuseBackend;

impl MountBackend for FuseBackend {
    fn check(&self, allow_other: bool) -> Result<(), MountSetupError> {
        crate::check_can_mount(allow_other).map_err(Into::into)
    }

    fn mount(
        &self,
        src: tandem_core::SourceDir,
        mountpoint: &Path,
        sink: Arc<dyn ChangeSink>,
        config: &MountConfig,
    ) -> io::Result<Box<dyn Mounted>> {
        let opts = MountOptions {
            allow_other: config.allow_other,
            kernel_passthrough: config.kernel_passthrough,
            threads: config.threads,
            #[cfg(any(target_os = "linux", target_os = "macos"))]
            transport: match config.transport {
                tandem_core::MountTransport::Auto => crate::Transport::Auto,
                tandem_core::MountTransport::Uring => crate::Transport::Uring,
                tandem_core::MountTransport::Dev => crate::Transport::Dev,
            },
            #[cfg(any(target_os = "linux", target_os = "macos"))]
            history_max_file: config.history_max_file,
        };
        Ok(Box::new(crate::mount(src, mountpoint, sink, opts)?))
    }

    fn detach(&self, mountpoint: &Path) -> io::Result<()> {
        crate::detach(mountpoint)
    }

    fn privileged(&self) -> bool {
        crate::privileged()
    }
}

impl Mounted for MountHandle {
    fn unmount(self: Box<Self>) -> io::Result<()> {
        MountHandle::unmount(*self)
    }

    fn invalidator(&self) -> Arc<dyn Mount> {
        MountHandle::invalidator(self)
    }

    fn passthrough_active(&self) -> bool {
        MountHandle::passthrough_active(self)
    }

    fn uring_active(&self) -> bool {
        MountHandle::uring_active(self)
    }
}
