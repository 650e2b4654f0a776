//! tandem's passthrough filesystem, mounted over the source folder.
//!
//! Serves the source directory from a directory fd opened before the mount hid it, and
//! reports every mutating operation as a `tandem_core::Change` to a `ChangeSink`. It never
//! decides anything about syncing; it must behave exactly like the plain folder
//! (DESIGN.md invariant 7) and never reach outside it (invariant 6).
//!
//! Layout, from the kernel inwards:
//! - `backend`: `FuseBackend`, the crate behind `tandem_core::MountBackend`.
//! - `mount`: `mount()`, `MountHandle` (unmount, `Mount::invalidate`).
//! - `adapter`: the thin `fuser::Filesystem` impl: FUSE negotiation, replies, timeouts and
//!   kernel passthrough backing ids. No file logic.
//! - `passthrough`: `PassthroughFs`, the filesystem as plain Rust returning
//!   `Result<_, FsError>` (errno included); it also emits the change records.
//! - `inode`: node ids keyed by the underlying (device, inode), with the names that give
//!   each node its path. `fdcache`: the bounded cache of the node fds behind them.
//! - `setup`: what mounting needs from the machine, checked first; unmounting as that user.
//!   Linux: `/dev/fuse`, fusermount3 for a user without CAP_SYS_ADMIN, `user_allow_other`.
//!   macOS (`setup_macos.rs`): macFUSE.
//! - `sys`: everything that differs between Linux and macOS (how nodes are held, reopened
//!   and changed, credentials, stats, directory streams), behind one interface; all the
//!   `unsafe` of the crate.
//!
//! Linux and macOS (macFUSE, through the same fuser). Elsewhere (Windows: its own backend
//! in `platform/winfsp`) `unported` gives the same names and mounting says it is not
//! available.

#[cfg(any(target_os = "linux", target_os = "macos"))]
mod adapter;
mod backend;
#[cfg(any(target_os = "linux", target_os = "macos"))]
mod error;
#[cfg(any(target_os = "linux", target_os = "macos"))]
mod fdcache;
#[cfg(any(target_os = "linux", target_os = "macos"))]
mod history;
#[cfg(any(target_os = "linux", target_os = "macos"))]
mod inode;
#[cfg(any(target_os = "linux", target_os = "macos"))]
mod mount;
#[cfg(any(target_os = "linux", target_os = "macos"))]
mod passthrough;
#[cfg(target_os = "linux")]
mod setup;
#[cfg(target_os = "macos")]
#[path = "setup_macos.rs"]
mod setup;
#[cfg(any(target_os = "linux", target_os = "macos"))]
mod sys;
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
mod unported;
#[cfg(target_os = "linux")]
mod uring;
#[cfg(target_os = "macos")]
#[path = "uring_none.rs"]
mod uring;

#[cfg(any(target_os = "linux", target_os = "macos"))]
use std::sync::{Mutex, MutexGuard, PoisonError};

pub use backend::FuseBackend;
#[cfg(any(target_os = "linux", target_os = "macos"))]
pub use mount::{mount, MountHandle, MountOptions, Transport};
#[cfg(any(target_os = "linux", target_os = "macos"))]
pub use setup::{check_can_mount, detach, privileged, SetupError};
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub use unported::{
    check_can_mount, detach, mount, privileged, MountHandle, MountOptions, SetupError,
};

/// Locks, ignoring poisoning: the data behind our mutexes stays consistent across a panic
/// (none is expected), and a request thread must never panic on a lock.
#[cfg(any(target_os = "linux", target_os = "macos"))]
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
