//! tandem's passthrough filesystem, mounted over the source folder.
//!
//! Serves the source directory from a directory fd opened before the mount hid it, and
//! reports every mutating operation as a `tandem_core::Change` to a `ChangeSink`. It never
//! decides anything about syncing; it must behave exactly like the plain folder
//! (DESIGN.md invariant 7) and never reach outside it (invariant 6).
//!
//! Layout, from the kernel inwards:
//! - `mount`: `mount()`, `MountHandle` (unmount, `Mount::invalidate`).
//! - `adapter`: the thin `fuser::Filesystem` impl: FUSE negotiation, replies, timeouts and
//!   kernel passthrough backing ids. No file logic.
//! - `passthrough`: `PassthroughFs`, the filesystem as plain Rust returning
//!   `Result<_, FsError>` (errno included); it also emits the change records.
//! - `inode`: node ids keyed by the underlying (device, inode), with the names that give
//!   each node its path. `fdcache`: the bounded cache of the `O_PATH` fds behind them.
//! - `setup`: what mounting needs from the machine (`/dev/fuse`, fusermount3 for a user
//!   without CAP_SYS_ADMIN, `user_allow_other`), checked first; unmounting as that user.
//! - `sys`: file handles, per-thread credentials and umask (all `unsafe`).
//!
//! Linux only.

mod adapter;
mod error;
mod fdcache;
mod inode;
mod mount;
mod passthrough;
mod setup;
mod sys;
mod uring;

use std::sync::{Mutex, MutexGuard, PoisonError};

pub use mount::{mount, MountHandle, MountOptions, Transport};
pub use setup::{check_can_mount, detach, privileged, SetupError};

/// Locks, ignoring poisoning: the data behind our mutexes stays consistent across a panic
/// (none is expected), and a request thread must never panic on a lock.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
