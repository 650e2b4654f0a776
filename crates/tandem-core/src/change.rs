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

/// The longest a path takes in a version's name (escaped), far below NAME_MAX with the
/// stamp and a temporary prefix in front. A longer path keeps only its file name there.
const NAME_PATH_MAX: usize = 200;

/// The name of a version of `path` kept at `time_ns` in `HISTORY_DIR`:
/// `<time in ns>.<tag>~<path>`, unique with a unique `tag`, in time order, readable by hand.
/// The path is escaped (`%` as `%25`, `/` as `%2F`, control characters and bytes that are
/// not UTF-8 as `%XX`) so that a version a crash left unrecorded can be adopted under its
/// path (`parse_version_name`); a path over `NAME_PATH_MAX` escaped keeps only its file
/// name (cut to fit).
pub fn version_name(time_ns: i64, tag: &str, path: &RelPath) -> String {
    let mut part = escape_name(path.as_bytes());
    if part.len() > NAME_PATH_MAX {
        let base = path.as_bytes().rsplit(|&b| b == b'/').next().unwrap_or(b"");
        part = escape_name(base);
        let mut cut = NAME_PATH_MAX.min(part.len());
        while !part.is_char_boundary(cut) {
            cut -= 1;
        }
        // Never inside an escape: one that would be cut short goes whole.
        if let Some(i) = part[..cut].rfind('%').filter(|&i| cut - i < 3) {
            cut = i;
        }
        part.truncate(cut);
    }
    format!("{time_ns}.{tag}~{part}")
}

/// The time and path a version's name (`version_name`) gives; `None` for a name not of
/// that shape (a temporary copy, a file put there by hand).
pub fn parse_version_name(name: &str) -> Option<(i64, RelPath)> {
    let (stamp, part) = name.split_once('~')?;
    let (time, tag) = stamp.split_once('.')?;
    if tag.is_empty() || !time.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let time: i64 = time.parse().ok()?;
    let mut bytes = Vec::with_capacity(part.len());
    let mut rest = part.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    let path = RelPath::new(bytes)
        .ok()
        .filter(|p| !p.as_bytes().is_empty())?;
    Some((time, path))
}

fn escape_name(bytes: &[u8]) -> String {
    let utf8 = std::str::from_utf8(bytes).is_ok();
    let mut out = String::with_capacity(bytes.len());
    let mut raw = Vec::new();
    for &b in bytes {
        if b == b'%' || b == b'/' || b < 0x20 || b == 0x7f || (b >= 0x80 && !utf8) {
            out.push_str(&String::from_utf8_lossy(&raw));
            raw.clear();
            out.push_str(&format!("%{b:02X}"));
        } else {
            raw.push(b);
        }
    }
    out.push_str(&String::from_utf8_lossy(&raw));
    out
}

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

/// Whether `path` is tandem's own (`.tandem/...`): never kept, whichever mount backend.
pub fn is_own_path(path: &RelPath) -> bool {
    let b = path.as_bytes();
    b == b".tandem" || b.starts_with(b".tandem/")
}

/// What a mount keeps of a file a request is about to destroy (DESIGN.md "History"), the
/// same rule for every backend: `regular` and `size` as the mount saw it, `other_names`
/// when another hard link still holds its content (an unlink or a rename over it destroys
/// nothing then). `None`: nothing to keep (tandem's own file, not a regular file, empty,
/// or still held by another name); `Some(Err(TooLarge))`: reported as not kept;
/// `Some(Ok(()))`: keep it.
pub fn keep_rule(
    path: &RelPath,
    regular: bool,
    size: u64,
    other_names: bool,
    max_file: u64,
) -> Option<Result<(), NotKept>> {
    if is_own_path(path) || !regular || size == 0 || other_names {
        return None;
    }
    Some(if size > max_file {
        Err(NotKept::TooLarge)
    } else {
        Ok(())
    })
}

/// Names for the versions one mount keeps: `version_name` with the time now and a counter
/// of its own, so that two versions of one path kept in the same nanosecond differ.
#[derive(Debug, Default)]
pub struct VersionNames(std::sync::atomic::AtomicU64);

impl VersionNames {
    pub fn next(&self, path: &RelPath) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        version_name(now, &n.to_string(), path)
    }
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
    /// Kept once, but its file is gone from the history (a crash between recording it and
    /// writing it durably, or the folder deleted by hand): never offered for a restore.
    Lost,
}

impl NotKept {
    pub const ALL: [NotKept; 4] = [
        NotKept::TooLarge,
        NotKept::NoSpace,
        NotKept::Failed,
        NotKept::Lost,
    ];

    pub fn name(self) -> &'static str {
        match self {
            NotKept::TooLarge => "too large",
            NotKept::NoSpace => "no space",
            NotKept::Failed => "failed",
            NotKept::Lost => "lost",
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
    /// How requests reach the backend (`MountTransport`).
    pub transport: MountTransport,
    /// Keep what a request through the mount is about to destroy in the source's
    /// `HISTORY_DIR`, for files up to this many bytes (`None`: keep nothing).
    pub history_max_file: Option<u64>,
}

/// How a mount's requests travel from the kernel (FUSE over io_uring, or the backend's
/// usual channel: reads of /dev/fuse).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MountTransport {
    /// io_uring where the kernel allows it, else the usual channel, said once in the log.
    #[default]
    Auto,
    /// io_uring, asked for by name: where the kernel refuses, the usual channel with a
    /// warning.
    Uring,
    /// The usual channel.
    Dev,
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

    /// True when requests arrive over io_uring (`MountTransport`).
    fn uring_active(&self) -> bool {
        false
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_version_name_gives_back_its_time_and_path() {
        for path in [
            b"a.txt".to_vec(),
            b"docs/2024 report%/final.txt".to_vec(),
            "d/caf\u{e9}/\u{65e5}\u{672c}".as_bytes().to_vec(),
            b"d/not utf8 \xff\xfe/x\ny".to_vec(),
        ] {
            let rel = RelPath::new(path).unwrap();
            let name = version_name(1_700_000_000_123_456_789, "42", &rel);
            assert!(!name.contains('/') && !name.contains('\n'), "{name}");
            assert_eq!(
                parse_version_name(&name),
                Some((1_700_000_000_123_456_789, rel))
            );
        }
        // Too long for a name: its file name alone, cut to fit, never inside an escape.
        let long = RelPath::new(format!("{}f%%%.txt", "d/".repeat(150)).into_bytes()).unwrap();
        let name = version_name(7, "restore", &long);
        assert!(name.len() < 255 - 5, "{}", name.len());
        assert_eq!(parse_version_name(&name).unwrap().1.as_bytes(), b"f%%%.txt");
        let deep = RelPath::new(format!("d/{}", "\u{e9}%".repeat(200)).into_bytes()).unwrap();
        let (_, cut) = parse_version_name(&version_name(7, "1", &deep)).unwrap();
        assert!(deep.as_bytes()[2..].starts_with(cut.as_bytes()));
        // Not a version's name: a temporary copy, something put there by hand.
        assert_eq!(parse_version_name(".tmp-1.2~a"), None);
        assert_eq!(parse_version_name("notes.txt"), None);
        assert_eq!(parse_version_name("1.2~bad%zz"), None);
        assert_eq!(parse_version_name("1.2~"), None);
    }

    #[test]
    fn issue_16_one_keep_rule_for_every_mount_backend() {
        let p = |s: &str| RelPath::from_str_lossless(s);
        assert_eq!(keep_rule(&p("a.txt"), true, 10, false, 100), Some(Ok(())));
        assert_eq!(
            keep_rule(&p("a.txt"), true, 101, false, 100),
            Some(Err(NotKept::TooLarge))
        );
        assert_eq!(keep_rule(&p("a.txt"), true, 0, false, 100), None);
        assert_eq!(keep_rule(&p("a.txt"), false, 10, false, 100), None);
        assert_eq!(keep_rule(&p("a.txt"), true, 10, true, 100), None);
        assert_eq!(
            keep_rule(&p(".tandem/history/x"), true, 10, false, 100),
            None
        );
        assert_eq!(keep_rule(&p(".tandem"), true, 10, false, 100), None);
        assert_eq!(
            keep_rule(&p(".tandemx"), true, 10, false, 100),
            Some(Ok(()))
        );
        let names = VersionNames::default();
        let (a, b) = (names.next(&p("d/a")), names.next(&p("d/a")));
        assert_ne!(a, b);
        assert_eq!(parse_version_name(&a).map(|(_, path)| path), Some(p("d/a")));
    }
}
