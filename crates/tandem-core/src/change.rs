//! The seam between a mount backend and the engine (DESIGN.md: "the engine talks to a
//! `Mount` trait at the level of path change records and `invalidate(paths)`").
//!
//! A backend reports what programs did through the mount as `Change` records: hints of
//! which paths to look at again, never file data. The engine feeds them to the same scan →
//! reconcile → apply path as everything else.

use crate::path::RelPath;

/// The kind of operation a program performed through the mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeOp {
    Create,
    Mknod,
    Mkdir,
    Symlink,
    /// A hard link: `path` is the existing name, `to` the new one.
    Link,
    Unlink,
    Rmdir,
    /// `path` renamed to `to` (also with `RENAME_NOREPLACE`).
    Rename,
    /// `RENAME_EXCHANGE`: `path` and `to` swapped.
    Exchange,
    /// A file was opened for writing (or truncated on open).
    OpenWrite,
    /// A file opened for writing was written to (reported at most once per open, and again
    /// periodically for a file held open long).
    Write,
    /// The last writer of a file closed it: its content is settled.
    CloseWrite,
    /// chmod, chown, utimens or truncate.
    SetAttr,
    SetXattr,
    RemoveXattr,
    Fallocate,
    /// Not from a program: the engine changed this source path while merging a target's
    /// change back (through the hidden directory fd, so the mount did not see it). Other
    /// targets replicate it like any source change.
    Merged,
}

impl ChangeOp {
    /// Every operation, for parsing names back.
    pub const ALL: [ChangeOp; 17] = [
        ChangeOp::Create,
        ChangeOp::Mknod,
        ChangeOp::Mkdir,
        ChangeOp::Symlink,
        ChangeOp::Link,
        ChangeOp::Unlink,
        ChangeOp::Rmdir,
        ChangeOp::Rename,
        ChangeOp::Exchange,
        ChangeOp::OpenWrite,
        ChangeOp::Write,
        ChangeOp::CloseWrite,
        ChangeOp::SetAttr,
        ChangeOp::SetXattr,
        ChangeOp::RemoveXattr,
        ChangeOp::Fallocate,
        ChangeOp::Merged,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ChangeOp::Create => "create",
            ChangeOp::Mknod => "mknod",
            ChangeOp::Mkdir => "mkdir",
            ChangeOp::Symlink => "symlink",
            ChangeOp::Link => "link",
            ChangeOp::Unlink => "unlink",
            ChangeOp::Rmdir => "rmdir",
            ChangeOp::Rename => "rename",
            ChangeOp::Exchange => "exchange",
            ChangeOp::OpenWrite => "open-write",
            ChangeOp::Write => "write",
            ChangeOp::CloseWrite => "close-write",
            ChangeOp::SetAttr => "setattr",
            ChangeOp::SetXattr => "setxattr",
            ChangeOp::RemoveXattr => "removexattr",
            ChangeOp::Fallocate => "fallocate",
            ChangeOp::Merged => "merged",
        }
    }

    pub fn from_name(s: &str) -> Option<ChangeOp> {
        ChangeOp::ALL.into_iter().find(|op| op.name() == s)
    }
}

/// One operation seen through the mount. Paths are relative to the mounted root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub op: ChangeOp,
    pub path: RelPath,
    /// The second path of a rename, exchange or link.
    pub to: Option<RelPath>,
    /// The calling process and user.
    pub pid: u32,
    pub uid: u32,
}

/// Where a backend sends its change records. Called on the backend's request threads right
/// after the operation succeeded; it must not block for long (the journal batches writes).
pub trait ChangeSink: Send + Sync {
    fn record(&self, change: Change);
}

/// What the engine needs from a running mount.
pub trait Mount: Send + Sync {
    /// Drops the kernel's cached entries, attributes and pages for these paths: they were
    /// changed underneath the mount (reverse merge from the target).
    fn invalidate(&self, paths: &[RelPath]);

    /// `from` was renamed to `to` underneath the mount: the mount's own record of names
    /// follows, so that a program still holding the file open (through the mount) has its
    /// later writes recorded under the new name.
    fn renamed(&self, from: &RelPath, to: &RelPath);

    /// True while a program's fsync through the mount runs: a file held open that looks
    /// quiet may only be waiting for its data to reach the disk, and copying it now would
    /// compete with that.
    fn flushing(&self) -> bool {
        false
    }
}
