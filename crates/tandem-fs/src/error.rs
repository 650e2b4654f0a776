use std::io;

use tandem_core::RelPath;

/// Every error names the path (relative to its root) and what was being done.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("{path}: {op}: {source}")]
    Io {
        path: String,
        op: &'static str,
        source: io::Error,
    },
    /// The disk no longer matches what the plan was made from (invariant 2): nothing was
    /// written; the path is planned again.
    #[error("{path}: changed since it was scanned ({what}); left untouched")]
    Raced { path: String, what: String },
    /// A raced step of a kind of its own: the path to copy from is no longer there (a
    /// program's temporary file, deleted meanwhile). Nothing was written; planned again,
    /// it is a deletion or nothing at all.
    #[error("{path}: gone since it was scanned; nothing copied")]
    Vanished { path: String },
    /// A hard link the file system refused to make (exFAT and FAT hold none; a name on
    /// another file system below the root; too many links): nothing was written, the
    /// name is to be copied instead.
    #[error("{path}: cannot make a hard link here: {source}")]
    CannotLink { path: String, source: io::Error },
}

impl FsError {
    pub fn io(path: &RelPath, op: &'static str, source: impl Into<io::Error>) -> FsError {
        FsError::Io {
            path: path.to_string(),
            op,
            source: source.into(),
        }
    }

    pub fn raced(path: &RelPath, what: impl Into<String>) -> FsError {
        FsError::Raced {
            path: path.to_string(),
            what: what.into(),
        }
    }

    pub fn vanished(path: &RelPath) -> FsError {
        FsError::Vanished {
            path: path.to_string(),
        }
    }

    pub fn errno(&self) -> Option<i32> {
        match self {
            FsError::Io { source, .. } | FsError::CannotLink { source, .. } => {
                crate::os::io::Errno::from_io_error(source).map(|e| e.raw_os_error())
            }
            FsError::Raced { .. } | FsError::Vanished { .. } => None,
        }
    }

    /// The disk moved under the step (vanished included): it is planned again.
    pub fn is_raced(&self) -> bool {
        matches!(self, FsError::Raced { .. } | FsError::Vanished { .. })
    }

    /// The path to copy from was gone when the copy opened it.
    pub fn is_vanished(&self) -> bool {
        matches!(self, FsError::Vanished { .. })
    }

    /// The file system cannot hold this hard link (`tandem_fs::link`).
    pub fn is_cannot_link(&self) -> bool {
        matches!(self, FsError::CannotLink { .. })
    }

    /// Errors that concern the whole side, not one path: stop rather than go on failing.
    pub fn is_fatal_for_side(&self) -> bool {
        matches!(
            self.errno(),
            Some(
                libc_errno::ENOSPC
                    | libc_errno::EDQUOT
                    | libc_errno::EROFS
                    | libc_errno::EIO
                    | libc_errno::ENODEV
            )
        )
    }
}

/// The errno values we branch on (Linux numbering; rustix re-exports them without libc).
pub mod libc_errno {
    use crate::os::io::Errno;
    pub const ENOENT: i32 = Errno::NOENT.raw_os_error();
    pub const EEXIST: i32 = Errno::EXIST.raw_os_error();
    pub const ENOTEMPTY: i32 = Errno::NOTEMPTY.raw_os_error();
    pub const ENOSPC: i32 = Errno::NOSPC.raw_os_error();
    pub const EDQUOT: i32 = Errno::DQUOT.raw_os_error();
    pub const EROFS: i32 = Errno::ROFS.raw_os_error();
    pub const EIO: i32 = Errno::IO.raw_os_error();
    pub const ENODEV: i32 = Errno::NODEV.raw_os_error();
    pub const EXDEV: i32 = Errno::XDEV.raw_os_error();
    pub const ENOSYS: i32 = Errno::NOSYS.raw_os_error();
}

pub type Result<T> = std::result::Result<T, FsError>;
