//! What differs between the systems tandem-fs runs on, behind one set of names, so that
//! `root`, `scan` and `apply` read the same everywhere.
//!
//! - `linux`: `openat2(RESOLVE_BENEATH)`, `O_PATH`, `O_TMPFILE`, `statx` (mount ids),
//!   `copy_file_range`, `syncfs`, metadata set through `/proc/self/fd`.
//! - `unix` (macOS and the BSDs): none of those. Confinement walks one component at a
//!   time with `O_NOFOLLOW` (root.rs `open_walk`); objects are opened read-only instead
//!   of `O_PATH`; copies go through a named temporary file; durability is an
//!   `F_FULLFSYNC` of each file (macOS), as `syncfs` says nothing about the disk's cache.
//! - `windows`: the `*at` calls tandem-fs is written against, made of `NtCreateFile`
//!   relative to a directory handle (`windows/fs.rs`), one component at a time, never
//!   through a reparse point; file IDs for inodes; the read-only attribute for the write
//!   bits and the hidden attribute kept in the mode (`attrs`); names Windows cannot hold
//!   refused as EINVAL on creation (`crate::names`).
//!
//! [`os`] is the one place that says which: `os::{fs, io}` are rustix's modules on Unix
//! and the Windows stand-ins of the same names elsewhere, and `os::{OwnedFd, AsFd,
//! BorrowedFd}` std's fds or Windows handles.

mod attrs;
#[cfg(target_os = "linux")]
mod linux;
mod retry;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;
#[cfg(target_os = "linux")]
pub use linux::{st_dev, HOLDS_SYMLINKS, O_PATH};

#[cfg(all(unix, not(target_os = "linux")))]
mod unix;
#[cfg(all(unix, not(target_os = "linux")))]
pub(crate) use unix::*;
#[cfg(all(unix, not(target_os = "linux")))]
pub use unix::{st_dev, HOLDS_SYMLINKS, O_PATH};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;
#[cfg(windows)]
pub use windows::{st_dev, HOLDS_SYMLINKS, O_PATH};

/// The file system calls and types tandem-fs (and the crates above it) use: rustix's on
/// Unix, a stand-in with the same names on Windows.
pub mod os {
    #[cfg(unix)]
    pub use rustix::{fs, io};
    #[cfg(unix)]
    pub use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

    #[cfg(windows)]
    pub use super::windows::{
        fd::{AsFd, BorrowedFd, OwnedFd},
        fs, io,
    };

    /// A directory fd as a mount backend takes the source folder's.
    #[cfg(unix)]
    pub fn source_dir(fd: OwnedFd) -> tandem_core::SourceDir {
        fd
    }

    /// A directory handle as a mount backend takes the source folder's.
    #[cfg(windows)]
    pub fn source_dir(fd: OwnedFd) -> tandem_core::SourceDir {
        std::fs::File::from(fd).into()
    }

    /// The user this process runs as (recorded with what it changes).
    #[cfg(unix)]
    pub fn uid() -> u32 {
        rustix::process::getuid().as_raw()
    }

    /// No numeric users on Windows: 0.
    #[cfg(windows)]
    pub fn uid() -> u32 {
        0
    }
}

#[cfg(unix)]
mod common {
    use std::path::PathBuf;

    use super::os::fs::{openat, Mode, OFlags};
    use super::os::OwnedFd;

    /// The folder holding the directory behind `fd` (its `..`).
    pub(crate) fn open_parent(fd: &OwnedFd) -> std::io::Result<OwnedFd> {
        let flags = super::O_PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        Ok(openat(fd, "..", flags, Mode::empty())?)
    }

    /// A path from bytes, as they are.
    pub(crate) fn path_from_bytes(b: Vec<u8>) -> PathBuf {
        use std::os::unix::ffi::OsStringExt;
        PathBuf::from(std::ffi::OsString::from_vec(b))
    }
}
#[cfg(unix)]
pub(crate) use common::*;
