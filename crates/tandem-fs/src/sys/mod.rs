//! What differs between the systems tandem-fs runs on, behind one set of names, so that
//! `root`, `scan` and `apply` read the same everywhere.
//!
//! - `linux`: `openat2(RESOLVE_BENEATH)`, `O_PATH`, `O_TMPFILE`, `statx` (mount ids),
//!   `copy_file_range`, `syncfs`, metadata set through `/proc/self/fd`.
//! - `unix` (macOS and the BSDs): none of those. Confinement walks one component at a
//!   time with `O_NOFOLLOW` (root.rs `open_walk`); objects are opened read-only instead
//!   of `O_PATH`; copies go through a named temporary file; durability is an
//!   `F_FULLFSYNC` of each file (macOS), as `syncfs` says nothing about the disk's cache.
//!
//! Windows has no implementation yet: tandem-fs does not build there (the crates above it
//! give the user a clear "not supported on this platform yet" instead).

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;
#[cfg(target_os = "linux")]
pub use linux::{st_dev, O_PATH};

#[cfg(all(unix, not(target_os = "linux")))]
mod unix;
#[cfg(all(unix, not(target_os = "linux")))]
pub(crate) use unix::*;
#[cfg(all(unix, not(target_os = "linux")))]
pub use unix::{st_dev, O_PATH};
