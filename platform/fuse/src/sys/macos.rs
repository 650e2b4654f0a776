//! macOS (macFUSE): no `O_PATH`, no file handles, no `/proc/self/fd`, no `statx`.
//!
//! - A directory node is a real directory fd (`O_RDONLY | O_DIRECTORY`, or `O_SEARCH`
//!   when the folder may be searched but not read). Every other node is its folder's fd
//!   plus its name there: opening a file only to hold it would need read access to it,
//!   block on a FIFO and open a device. Such a node is never cached (its name moves with
//!   renames); the core builds it again from the inode table's current names and checks
//!   device and inode each time (`PassthroughFs::reopen`).
//! - Identity is by (device, inode) alone: there are no file handles (`FileHandle` has no
//!   value).
//! - Reopening with real access modes goes through the folder and the name with
//!   `O_NOFOLLOW`, never through a path from `/`: the mount hides the source folder, so
//!   an absolute path (`F_GETPATH`) would lead back into the mount.
//! - Credentials: `pthread_setugid_np` gives the calling thread the caller's uid and gid.
//! - Attributes by `fstat`/`fstatat`, directories by `readdir`, no kernel passthrough, no
//!   `copy_file_range`, no FICLONE (history copies by reading), no fallocate.

use std::collections::VecDeque;
use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{FileAttr, INodeNo};
use rustix::fs::{Access, AtFlags, Dir, Gid, Mode, OFlags, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;

use super::{kind_from_raw, kind_of, DirEnt};
use crate::inode::Key;

/// A node as the core holds it (see the module's notes).
#[derive(Debug)]
pub(crate) enum NodeFd {
    /// A directory, open for reading or searching.
    Dir(Arc<OwnedFd>),
    /// Any other file: the fd of its folder and its name there.
    At(Arc<OwnedFd>, Box<[u8]>),
    /// Unlinked but still open through the mount: a duplicate of that open file's fd.
    File(Arc<OwnedFd>),
}

/// The fd `*at` calls take for names under this node: its own for a directory (the core
/// only ever names entries under directories).
impl AsFd for NodeFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            NodeFd::Dir(fd) | NodeFd::At(fd, _) | NodeFd::File(fd) => fd.as_fd(),
        }
    }
}

/// No file handles on macOS: no value of this type exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileHandle {}

pub(crate) type Stat = rustix::fs::Stat;

/// The permission bits of a FUSE mode (`mode_t` is 16 bits here).
pub(crate) fn perm(mode: u32) -> Mode {
    Mode::from_raw_mode((mode & 0o7777) as libc::mode_t)
}

/// The kind of file of a FUSE or `st_mode` mode.
pub(crate) fn raw_kind(mode: u32) -> rustix::fs::FileType {
    rustix::fs::FileType::from_raw_mode((mode & super::S_IFMT) as libc::mode_t)
}

/// macFUSE serves one device fd.
pub(crate) const CLONE_FD: bool = false;

/// `RENAME_SWAP` (renamex_np), what macFUSE sends for an exchange.
pub(crate) const RENAME_EXCHANGE: u32 = libc::RENAME_SWAP;

/// No `O_DIRECT` on macOS.
pub(crate) const DIRECT: OFlags = OFlags::empty();

fn o_symlink() -> OFlags {
    OFlags::from_bits_retain(libc::O_SYMLINK as u32)
}

/// `name` under `dir` as a directory fd: readable, else searchable only.
fn open_dir(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    let base = OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::openat(dir, name, OFlags::RDONLY | base, Mode::empty()) {
        Err(Errno::ACCESS) => rustix::fs::openat(
            dir,
            name,
            OFlags::from_bits_retain(libc::O_SEARCH as u32) | base,
            Mode::empty(),
        ),
        r => r,
    }
}

pub(crate) fn root_node(root: OwnedFd) -> io::Result<NodeFd> {
    Ok(NodeFd::Dir(Arc::new(open_dir(
        root.as_fd(),
        OsStr::new("."),
    )?)))
}

/// Only directories are cached: a name can move.
pub(crate) fn cacheable(node: &NodeFd) -> bool {
    matches!(node, NodeFd::Dir(_))
}

pub(crate) fn node_of_file(fd: OwnedFd) -> NodeFd {
    NodeFd::File(Arc::new(fd))
}

pub(crate) fn root_dir(root: &Arc<NodeFd>) -> Arc<OwnedFd> {
    match &**root {
        NodeFd::Dir(fd) | NodeFd::At(fd, _) | NodeFd::File(fd) => Arc::clone(fd),
    }
}

// ---- attributes -------------------------------------------------------------------------

pub(crate) fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<Stat> {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
}

pub(crate) fn stat_fd(fd: BorrowedFd<'_>) -> rustix::io::Result<Stat> {
    rustix::fs::fstat(fd)
}

pub(crate) fn stat_node(node: &NodeFd) -> rustix::io::Result<Stat> {
    match node {
        NodeFd::Dir(fd) | NodeFd::File(fd) => rustix::fs::fstat(fd),
        NodeFd::At(dir, name) => stat_at(dir.as_fd(), OsStr::from_bytes(name)),
    }
}

pub(crate) fn key_of(st: &Stat) -> Key {
    (st.st_dev as u32 as u64, st.st_ino)
}

pub(crate) fn mode_of(st: &Stat) -> u32 {
    u32::from(st.st_mode)
}

pub(crate) fn size_of(st: &Stat) -> u64 {
    st.st_size.max(0) as u64
}

pub(crate) fn mtime_of(st: &Stat) -> (i64, u32) {
    (st.st_mtime, st.st_mtime_nsec.clamp(0, 999_999_999) as u32)
}

pub(crate) fn mtime(st: &Stat) -> SystemTime {
    time_of(st.st_mtime, st.st_mtime_nsec)
}

fn time_of(sec: i64, nsec: i64) -> SystemTime {
    let nanos = Duration::from_nanos(nsec.clamp(0, 999_999_999) as u64);
    let at = if sec >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(sec.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(sec.unsigned_abs()))
    };
    at.and_then(|at| at.checked_add(nanos))
        .unwrap_or(UNIX_EPOCH)
}

/// A special file `name` in `dir` (`rdev`: macFUSE carries `dev_t` as is). rustix has
/// no `mknodat` for macOS (libSystem has it since macOS 13).
pub(crate) fn mknodat(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    kind: rustix::fs::FileType,
    perm: Mode,
    rdev: u32,
) -> rustix::io::Result<()> {
    let name = CString::new(name.as_bytes()).map_err(|_| Errno::INVAL)?;
    let mode = (kind.as_raw_mode() | perm.as_raw_mode()) as libc::mode_t;
    // SAFETY: `name` is a NUL-terminated string that outlives the call; `dir` is an open fd.
    let r = unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, rdev as libc::dev_t) };
    if r == 0 {
        Ok(())
    } else {
        Err(Errno::from_io_error(&io::Error::last_os_error()).unwrap_or(Errno::IO))
    }
}

/// No `fdatasync` on macOS: `fsync`.
pub(crate) fn fdatasync(fd: BorrowedFd<'_>) -> rustix::io::Result<()> {
    rustix::fs::fsync(fd)
}

pub(crate) fn to_attr(ino: u64, st: &Stat) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: size_of(st),
        blocks: st.st_blocks.max(0) as u64,
        atime: time_of(st.st_atime, st.st_atime_nsec),
        mtime: time_of(st.st_mtime, st.st_mtime_nsec),
        ctime: time_of(st.st_ctime, st.st_ctime_nsec),
        crtime: time_of(st.st_birthtime, st.st_birthtime_nsec),
        kind: kind_of(u32::from(st.st_mode)),
        perm: st.st_mode & 0o7777,
        nlink: u32::from(st.st_nlink),
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: st.st_rdev as u32,
        blksize: st.st_blksize.max(0) as u32,
        flags: st.st_flags,
    }
}

/// Not known for any macOS file system yet: FLUSH is always served.
pub(crate) fn close_is_silent(_fd: BorrowedFd<'_>) -> bool {
    false
}

/// macFUSE sends no fallocate with modes that destroy content.
pub(crate) fn fallocate_destroys(_mode: i32) -> bool {
    false
}

pub(crate) fn fallocate(
    _fd: BorrowedFd<'_>,
    _mode: i32,
    _offset: u64,
    _len: u64,
) -> rustix::io::Result<()> {
    Err(Errno::OPNOTSUPP)
}

/// None on macOS: callers copy by reading (`NOSYS`).
pub(crate) fn copy_file_range(
    _input: BorrowedFd<'_>,
    _off_in: &mut u64,
    _output: BorrowedFd<'_>,
    _off_out: &mut u64,
    _len: usize,
) -> rustix::io::Result<usize> {
    Err(Errno::NOSYS)
}

/// No FICLONE: the history copies.
pub(crate) fn clone_file(_out: BorrowedFd<'_>, _src: BorrowedFd<'_>) -> rustix::io::Result<()> {
    Err(Errno::OPNOTSUPP)
}

/// The mount options the underlying folder's mount has that the FUSE mount must repeat.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Underlying {
    pub(crate) nodev: bool,
    pub(crate) nosuid: bool,
    pub(crate) noexec: bool,
    pub(crate) rdonly: bool,
    pub(crate) noatime: bool,
}

pub(crate) fn underlying(fd: BorrowedFd<'_>) -> io::Result<Underlying> {
    let f = rustix::fs::fstatfs(fd)?.f_flags;
    let has = |flag: libc::c_int| f & (flag as u32) != 0;
    Ok(Underlying {
        nodev: has(libc::MNT_NODEV),
        nosuid: has(libc::MNT_NOSUID),
        noexec: has(libc::MNT_NOEXEC),
        rdonly: has(libc::MNT_RDONLY),
        noatime: has(libc::MNT_NOATIME),
    })
}

// ---- node operations --------------------------------------------------------------------

/// Nothing per mount on macOS: every operation goes through the node's own fds.
pub(crate) struct Nodes;

fn not_dir() -> Errno {
    Errno::NOTDIR
}

impl Nodes {
    pub(crate) fn new(
        _root: &NodeFd,
        _file_handles: bool,
    ) -> io::Result<(Nodes, Option<Arc<FileHandle>>)> {
        Ok((Nodes, None))
    }

    /// `name` in directory `dir`, not followed if it is a symlink.
    pub(crate) fn open_node(&self, dir: &NodeFd, name: &OsStr) -> rustix::io::Result<NodeFd> {
        let NodeFd::Dir(dir) = dir else {
            return Err(not_dir());
        };
        let st = stat_at(dir.as_fd(), name)?;
        if kind_of(mode_of(&st)) == fuser::FileType::Directory {
            Ok(NodeFd::Dir(Arc::new(open_dir(dir.as_fd(), name)?)))
        } else {
            Ok(NodeFd::At(Arc::clone(dir), name.as_bytes().into()))
        }
    }

    pub(crate) fn handle_of(&self, _node: &NodeFd) -> Option<Arc<FileHandle>> {
        None
    }

    pub(crate) fn by_handle(&self, handle: &FileHandle) -> Option<NodeFd> {
        match *handle {}
    }

    /// The node opened for real with `flags`; by name, never following a symlink.
    pub(crate) fn reopen(&self, node: &NodeFd, flags: OFlags) -> rustix::io::Result<OwnedFd> {
        match node {
            NodeFd::Dir(fd) => rustix::fs::openat(fd, c".", flags, Mode::empty()),
            NodeFd::At(dir, name) => rustix::fs::openat(
                dir,
                OsStr::from_bytes(name),
                flags | OFlags::NOFOLLOW,
                Mode::empty(),
            ),
            NodeFd::File(fd) => self.reopen_file(fd, flags),
        }
    }

    /// An open file `fd` for reading: a duplicate when it was opened readable (reads go
    /// by offset, so the shared position does not matter), else refused.
    pub(crate) fn reopen_file(&self, fd: &OwnedFd, flags: OFlags) -> rustix::io::Result<OwnedFd> {
        let mode = rustix::fs::fcntl_getfl(fd)? & OFlags::RWMODE;
        let wants_write = flags & OFlags::RWMODE != OFlags::RDONLY;
        if (wants_write && mode == OFlags::RDONLY) || (!wants_write && mode == OFlags::WRONLY) {
            return Err(Errno::BADF);
        }
        rustix::io::fcntl_dupfd_cloexec(fd, 0)
    }

    pub(crate) fn chmod(&self, node: &NodeFd, mode: Mode) -> rustix::io::Result<()> {
        match node {
            NodeFd::Dir(fd) | NodeFd::File(fd) => rustix::fs::fchmod(fd, mode),
            NodeFd::At(dir, name) => rustix::fs::chmodat(
                dir,
                OsStr::from_bytes(name),
                mode,
                AtFlags::SYMLINK_NOFOLLOW,
            ),
        }
    }

    pub(crate) fn chown(
        &self,
        node: &NodeFd,
        uid: Option<Uid>,
        gid: Option<Gid>,
    ) -> rustix::io::Result<()> {
        match node {
            NodeFd::Dir(fd) | NodeFd::File(fd) => rustix::fs::fchown(fd, uid, gid),
            NodeFd::At(dir, name) => rustix::fs::chownat(
                dir,
                OsStr::from_bytes(name),
                uid,
                gid,
                AtFlags::SYMLINK_NOFOLLOW,
            ),
        }
    }

    pub(crate) fn utimens(&self, node: &NodeFd, times: &Timestamps) -> rustix::io::Result<()> {
        match node {
            NodeFd::Dir(fd) | NodeFd::File(fd) => rustix::fs::futimens(fd, times),
            NodeFd::At(dir, name) => rustix::fs::utimensat(
                dir,
                OsStr::from_bytes(name),
                times,
                AtFlags::SYMLINK_NOFOLLOW,
            ),
        }
    }

    pub(crate) fn readlink(&self, node: &NodeFd) -> rustix::io::Result<Vec<u8>> {
        match node {
            NodeFd::At(dir, name) => {
                Ok(rustix::fs::readlinkat(dir, OsStr::from_bytes(name), Vec::new())?.into_bytes())
            }
            NodeFd::Dir(_) | NodeFd::File(_) => Err(Errno::INVAL),
        }
    }

    /// A new name `dir`/`name` for the node (never a directory; an unlinked file has no
    /// name left to link from).
    pub(crate) fn link(
        &self,
        node: &NodeFd,
        dir: BorrowedFd<'_>,
        name: &OsStr,
    ) -> rustix::io::Result<()> {
        match node {
            NodeFd::At(from, old) => {
                rustix::fs::linkat(from, OsStr::from_bytes(old), dir, name, AtFlags::empty())
            }
            NodeFd::Dir(_) => Err(Errno::PERM),
            NodeFd::File(_) => Err(Errno::NOENT),
        }
    }

    /// access(2) of the node for `mask` (`R_OK`...).
    pub(crate) fn access(&self, node: &NodeFd, mask: i32) -> rustix::io::Result<()> {
        let access = Access::from_bits_retain(mask);
        match node {
            NodeFd::Dir(fd) => rustix::fs::accessat(fd, c".", access, AtFlags::empty()),
            NodeFd::At(dir, name) => rustix::fs::accessat(
                dir,
                OsStr::from_bytes(name),
                access,
                AtFlags::SYMLINK_NOFOLLOW,
            ),
            // Open through the mount, so the caller had access.
            NodeFd::File(_) => Ok(()),
        }
    }

    /// Runs `f` on an fd of the node itself: a file, a symlink (`O_SYMLINK`) or a FIFO
    /// (non-blocking) opened by name for reading its attributes.
    fn with_fd<T>(
        &self,
        node: &NodeFd,
        f: impl FnOnce(BorrowedFd<'_>) -> rustix::io::Result<T>,
    ) -> rustix::io::Result<T> {
        match node {
            NodeFd::Dir(fd) | NodeFd::File(fd) => f(fd.as_fd()),
            NodeFd::At(dir, name) => {
                let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | o_symlink();
                let fd = rustix::fs::openat(dir, OsStr::from_bytes(name), flags, Mode::empty())?;
                f(fd.as_fd())
            }
        }
    }

    pub(crate) fn setxattr(
        &self,
        node: &NodeFd,
        name: &OsStr,
        value: &[u8],
        flags: XattrFlags,
    ) -> rustix::io::Result<()> {
        self.with_fd(node, |fd| rustix::fs::fsetxattr(fd, name, value, flags))
    }

    pub(crate) fn getxattr(
        &self,
        node: &NodeFd,
        name: &OsStr,
        buf: &mut [u8],
    ) -> rustix::io::Result<usize> {
        self.with_fd(node, |fd| {
            if buf.is_empty() {
                rustix::fs::fgetxattr_query(fd, name)
            } else {
                rustix::fs::fgetxattr(fd, name, &mut *buf)
            }
        })
    }

    pub(crate) fn listxattr(&self, node: &NodeFd, buf: &mut [u8]) -> rustix::io::Result<usize> {
        self.with_fd(node, |fd| {
            if buf.is_empty() {
                rustix::fs::flistxattr_query(fd)
            } else {
                rustix::fs::flistxattr(fd, &mut *buf)
            }
        })
    }

    pub(crate) fn removexattr(&self, node: &NodeFd, name: &OsStr) -> rustix::io::Result<()> {
        self.with_fd(node, |fd| rustix::fs::fremovexattr(fd, name))
    }
}

// ---- directory streams ------------------------------------------------------------------

/// How many entries one `fill` reads.
const BATCH: usize = 256;

/// A directory open for reading with `readdir`. Offsets are entry indexes (macOS gives no
/// cookie `seekdir` takes across opens): entry `i` hands back `i + 1`, and seeking to `n`
/// rewinds and skips `n` entries.
pub(crate) struct DirFd {
    fd: OwnedFd,
    dir: Dir,
    /// The index of the next entry `readdir` returns.
    next: u64,
}

impl DirFd {
    pub(crate) fn open(node: &NodeFd) -> rustix::io::Result<DirFd> {
        let fd = rustix::fs::openat(
            node,
            c".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let dir = Dir::read_from(&fd)?;
        Ok(DirFd { fd, dir, next: 0 })
    }

    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub(crate) fn seek(&mut self, offset: u64) -> rustix::io::Result<()> {
        if offset < self.next {
            self.dir.rewind();
            self.next = 0;
        }
        while self.next < offset {
            match self.dir.read() {
                None => break,
                Some(r) => {
                    r?;
                    self.next += 1;
                }
            }
        }
        Ok(())
    }

    /// Up to `BATCH` entries, appended to `out`; true at the end.
    pub(crate) fn fill(&mut self, out: &mut VecDeque<DirEnt>) -> rustix::io::Result<bool> {
        for _ in 0..BATCH {
            let Some(e) = self.dir.read() else {
                return Ok(true);
            };
            let e = e?;
            self.next += 1;
            let name = e.file_name().to_bytes();
            let kind = kind_from_raw(e.file_type()).unwrap_or_else(|| {
                // DT_UNKNOWN: the filesystem does not fill d_type; ask.
                stat_at(self.fd.as_fd(), OsStr::from_bytes(name))
                    .map(|st| kind_of(mode_of(&st)))
                    .unwrap_or(fuser::FileType::RegularFile)
            });
            out.push_back(DirEnt {
                name: name.into(),
                d_ino: e.ino(),
                kind,
                cookie: self.next,
            });
        }
        Ok(false)
    }
}

// ---- credentials ------------------------------------------------------------------------

unsafe extern "C" {
    /// Sets the calling thread's uid and gid (libSystem; not in the `libc` crate).
    /// `KAUTH_UID_NONE`/`KAUTH_GID_NONE` go back to the process's own.
    fn pthread_setugid_np(uid: libc::uid_t, gid: libc::gid_t) -> libc::c_int;
}

/// `KAUTH_UID_NONE` and `KAUTH_GID_NONE`: `(uid_t)0 - 100`.
const KAUTH_NONE: u32 = 0u32.wrapping_sub(100);

/// While alive, the calling thread acts as the caller (`pthread_setugid_np`), so what it
/// creates belongs to the caller and permission checks are the caller's. Dropping goes
/// back to the daemon's credentials.
pub(crate) struct AsCaller {
    active: bool,
}

impl AsCaller {
    /// Switches to `uid`/`gid` when they differ from the daemon's (`daemon`: its effective
    /// uid and gid). `active()` tells whether the switch took effect (it needs root).
    pub(crate) fn enter(uid: u32, gid: u32, daemon: (u32, u32)) -> AsCaller {
        if (uid, gid) == daemon {
            return AsCaller { active: false };
        }
        // SAFETY: pthread_setugid_np changes only the calling thread's credentials.
        let ok = unsafe { pthread_setugid_np(uid, gid) } == 0;
        AsCaller { active: ok }
    }

    pub(crate) fn active(&self) -> bool {
        self.active
    }
}

impl Drop for AsCaller {
    fn drop(&mut self) {
        if self.active {
            // SAFETY: as in `enter`; KAUTH_*_NONE restores the process's credentials.
            unsafe {
                pthread_setugid_np(KAUTH_NONE, KAUTH_NONE);
            }
        }
    }
}

/// The umask is per process on macOS: a thread cannot have its own. Returns false: the
/// daemon's umask applies on top of the caller's (a mode the caller's umask allowed but
/// the daemon's masks comes out narrower).
pub(crate) fn private_zero_umask() -> bool {
    false
}
