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
//! - `setup`: what mounting needs from the machine (`/dev/fuse`, fusermount3 for a user
//!   without CAP_SYS_ADMIN, `user_allow_other`), checked first; unmounting as that user.
//! - `sys`: everything that differs between systems (how nodes are held, reopened and
//!   changed, credentials, stats, directory streams), behind one interface; all the
//!   `unsafe` of the crate.
//!
//! Linux only so far: elsewhere (macOS) `unported` gives the same names and mounting says
//! it is not available yet.

#[cfg(target_os = "linux")]
mod adapter;
mod backend;
#[cfg(target_os = "linux")]
mod error;
#[cfg(target_os = "linux")]
mod fdcache;
#[cfg(target_os = "linux")]
mod history;
#[cfg(target_os = "linux")]
mod inode;
#[cfg(target_os = "linux")]
mod mount;
#[cfg(target_os = "linux")]
mod passthrough;
#[cfg(target_os = "linux")]
mod setup;
#[cfg(target_os = "linux")]
mod sys;
#[cfg(not(target_os = "linux"))]
mod unported;
#[cfg(target_os = "linux")]
mod uring;

#[cfg(target_os = "linux")]
use std::sync::{Mutex, MutexGuard, PoisonError};

pub use backend::FuseBackend;
#[cfg(target_os = "linux")]
pub use mount::{mount, MountHandle, MountOptions, Transport};
#[cfg(target_os = "linux")]
pub use setup::{check_can_mount, detach, privileged, SetupError};
#[cfg(not(target_os = "linux"))]
pub use unported::{
    check_can_mount, detach, mount, privileged, MountHandle, MountOptions, SetupError,
};

/// Locks, ignoring poisoning: the data behind our mutexes stays consistent across a panic
/// (none is expected), and a request thread must never panic on a lock.
#[cfg(target_os = "linux")]
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
