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

    /// A version of a source file the mount kept (or could not keep) right before a
    /// request destroyed it. Called before the request's own record.
    fn kept(&self, _version: Version) {}
}

/// Where the mount keeps what a request through it was about to destroy, in the source.
/// Never synced (it is inside `.tandem/`).
pub const HISTORY_DIR: &str = ".tandem/history";

/// A version of a source file the mount kept before a write, truncate, rename over or
/// unlink through it destroyed it (DESIGN.md "History").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub path: RelPath,
    pub size: u64,
    /// Its file name in `HISTORY_DIR`, or why it was not kept.
    pub kept: Result<String, NotKept>,
    /// The request that was about to destroy it, and who made it.
    pub op: ChangeOp,
    pub pid: u32,
    pub uid: u32,
}

/// Why a version was not kept. The request went through all the same: history never fails
/// a program's write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotKept {
    /// Larger than the mount's `--history-max-file`.
    TooLarge,
    /// The file system was full (or the quota reached).
    NoSpace,
    /// Any other error (logged by the mount).
    Failed,
}

impl NotKept {
    pub const ALL: [NotKept; 3] = [NotKept::TooLarge, NotKept::NoSpace, NotKept::Failed];

    pub fn name(self) -> &'static str {
        match self {
            NotKept::TooLarge => "too large",
            NotKept::NoSpace => "no space",
            NotKept::Failed => "failed",
        }
    }

    pub fn from_name(s: &str) -> Option<NotKept> {
        NotKept::ALL.into_iter().find(|n| n.name() == s)
    }
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

/// The source folder handed to a mount backend: a directory opened before the mount hides
/// it (an fd on Unix, a handle on Windows).
#[cfg(unix)]
pub type SourceDir = std::os::fd::OwnedFd;
#[cfg(windows)]
pub type SourceDir = std::os::windows::io::OwnedHandle;

/// How a mount behaves, whichever backend serves it.
#[derive(Clone, Debug)]
pub struct MountConfig {
    /// Let every user reach the mount (permissions checked as on the folder; files created
    /// as the calling user).
    pub allow_other: bool,
    /// Serve reads and writes by the kernel's passthrough where the backend has it.
    pub kernel_passthrough: bool,
    /// Request threads; 0: the backend's default.
    pub threads: usize,
    /// Take requests over io_uring where the backend and the kernel offer it (FUSE over
    /// io_uring); otherwise the backend's usual channel, said once in the log.
    pub uring: bool,
    /// Keep what a request through the mount is about to destroy in the source's
    /// `HISTORY_DIR`, for files up to this many bytes (`None`: keep nothing).
    pub history_max_file: Option<u64>,
}

/// What a backend's refusal to mount carries: what the machine lacks, said for the user.
pub type MountSetupError = Box<dyn std::error::Error + Send + Sync>;

/// A file system that serves the source folder (DESIGN.md "MountBackend trait"): fuser on
/// Linux and macOS, WinFsp on Windows. Whoever starts a mount (the CLI's session, the
/// daemon) holds a `&dyn MountBackend` and never names the platform crate.
pub trait MountBackend: Send + Sync {
    /// What the machine lacks to mount (a device, a helper, a right), said before any work.
    fn check(&self, allow_other: bool) -> Result<(), MountSetupError>;

    /// Serves `src` at `mountpoint` and reports every change made through it to `sink`.
    /// Returns once the system has accepted the file system.
    fn mount(
        &self,
        src: SourceDir,
        mountpoint: &std::path::Path,
        sink: std::sync::Arc<dyn ChangeSink>,
        config: &MountConfig,
    ) -> std::io::Result<Box<dyn Mounted>>;

    /// Detaches the mount at `mountpoint` now; it goes once its last user does.
    fn detach(&self, mountpoint: &std::path::Path) -> std::io::Result<()>;

    /// Whether this process may have reads and writes passed through by the kernel.
    fn privileged(&self) -> bool;

    /// Whether the source can be served over itself. WinFsp cannot mount over a folder
    /// that stays in use: there the mount goes to a separate mount point (`--at`).
    fn mounts_over_source(&self) -> bool {
        true
    }
}

/// A running mount, from its backend. Unmounts when dropped.
pub trait Mounted: Mount {
    /// Unmounts; when programs still use the mount it is detached instead.
    fn unmount(self: Box<Self>) -> std::io::Result<()>;

    /// A handle the engine keeps to invalidate the kernel's cache of paths it changed
    /// underneath the mount, from any thread, for as long as the mount lives.
    fn invalidator(&self) -> std::sync::Arc<dyn Mount>;

    /// True when reads and writes bypass this process (kernel passthrough).
    fn passthrough_active(&self) -> bool;
}
