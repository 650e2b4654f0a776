//! `FsError`: what a failed operation hands back to the kernel.
//!
//! The filesystem must fail exactly as the plain folder does (DESIGN.md invariant 7), so an
//! error is nothing but the errno the underlying call returned, plus the operation's name
//! for messages. There is no "generic" error: whatever goes wrong maps to a real errno.

use rustix::io::Errno;

/// One failed operation and the errno the calling program will see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {errno}")]
pub struct FsError {
    pub op: &'static str,
    pub errno: Errno,
}

impl FsError {
    pub fn new(op: &'static str, errno: Errno) -> FsError {
        FsError { op, errno }
    }

    /// The raw errno value (`ENOENT`, ...), as the FUSE reply carries it.
    pub fn raw_os_error(&self) -> i32 {
        self.errno.raw_os_error()
    }
}

pub type Result<T> = std::result::Result<T, FsError>;

/// Names the operation of a failed system call: `openat(..).op("open")?`.
pub(crate) trait Op<T> {
    fn op(self, op: &'static str) -> Result<T>;
}

impl<T> Op<T> for rustix::io::Result<T> {
    fn op(self, op: &'static str) -> Result<T> {
        self.map_err(|errno| FsError::new(op, errno))
    }
}

impl<T> Op<T> for std::io::Result<T> {
    fn op(self, op: &'static str) -> Result<T> {
        self.map_err(|e| FsError::new(op, Errno::from_io_error(&e).unwrap_or(Errno::IO)))
    }
}
