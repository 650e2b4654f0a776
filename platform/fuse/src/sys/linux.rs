//! Linux: nodes held as `O_PATH` fds, opened again by file handle or through their
//! `/proc/self/fd` magic link, attributes by `statx`, directories by getdents64.
//!
//! The few calls rustix does not wrap (file handles, per-thread credentials and umask) act
//! on the calling thread only (fsuid/fsgid and, after `unshare(CLONE_FS)`, the umask are
//! per-thread on Linux), which is what lets one request thread act as its caller while the
//! others go on as the daemon.

use std::cell::Cell;
use std::ffi::OsStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{kind_from_raw, kind_of, DirEnt};
use crate::inode::Key;
use fuser::{FileAttr, INodeNo};
use rustix::fs::{
    Access, AtFlags, Gid, Mode, OFlags, RawDir, SeekFrom, Statx, StatxFlags, StatxTimestamp,
    Timestamps, Uid, XattrFlags,
};

const MAX_HANDLE_SZ: usize = libc::MAX_HANDLE_SZ as usize;

/// `struct file_handle` with room for the largest handle any filesystem hands out.
#[repr(C)]
struct RawHandle {
    handle_bytes: libc::c_uint,
    handle_type: libc::c_int,
    f_handle: [u8; MAX_HANDLE_SZ],
}

/// A file handle (`name_to_handle_at`): names an inode for as long as it exists, whatever
/// its paths, without holding a file descriptor. Typically 8 to 40 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileHandle {
    handle_type: i32,
    bytes: Box<[u8]>,
}

/// The handle of the file `fd` refers to (any kind of fd, `O_PATH` included) and the id
/// of the mount it was found on.
pub(crate) fn name_to_handle(fd: BorrowedFd<'_>) -> io::Result<(FileHandle, i32)> {
    let mut raw = RawHandle {
        handle_bytes: MAX_HANDLE_SZ as libc::c_uint,
        handle_type: 0,
        f_handle: [0; MAX_HANDLE_SZ],
    };
    let mut mount_id: libc::c_int = 0;
    // SAFETY: `raw` is a properly aligned `struct file_handle` whose `handle_bytes` matches
    // the room that follows it; the empty path with AT_EMPTY_PATH names `fd` itself.
    let r = unsafe {
        libc::name_to_handle_at(
            fd.as_raw_fd(),
            c"".as_ptr(),
            (&raw mut raw).cast::<libc::file_handle>(),
            &mut mount_id,
            libc::AT_EMPTY_PATH,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let len = (raw.handle_bytes as usize).min(MAX_HANDLE_SZ);
    Ok((
        FileHandle {
            handle_type: raw.handle_type,
            bytes: raw.f_handle[..len].into(),
        },
        mount_id,
    ))
}

/// Opens the inode behind `handle` on the filesystem of `mount_fd` (which must not be an
/// `O_PATH` fd). Needs CAP_DAC_READ_SEARCH; fails with ESTALE once the inode is gone.
pub(crate) fn open_by_handle(
    mount_fd: BorrowedFd<'_>,
    handle: &FileHandle,
    flags: libc::c_int,
) -> io::Result<OwnedFd> {
    let mut raw = RawHandle {
        handle_bytes: handle.bytes.len() as libc::c_uint,
        handle_type: handle.handle_type,
        f_handle: [0; MAX_HANDLE_SZ],
    };
    raw.f_handle[..handle.bytes.len()].copy_from_slice(&handle.bytes);
    // SAFETY: `raw` is a valid `struct file_handle` (length checked above); the kernel only
    // reads it. A non-negative return value is a new fd that we then own.
    let fd = unsafe {
        libc::open_by_handle_at(
            mount_fd.as_raw_fd(),
            (&raw mut raw).cast::<libc::file_handle>(),
            flags | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by the kernel and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// While alive, the calling thread's filesystem uid and gid are the caller's, so what it
/// creates belongs to the caller and the underlying permission checks are the caller's
/// (`--allow-other`: no user gains rights through the mount). Dropping restores them.
pub(crate) struct AsCaller {
    previous: Option<(u32, u32)>,
}

impl AsCaller {
    /// Switches to `uid`/`gid` when they differ from the daemon's (`daemon`: its effective
    /// uid and gid). `active()` tells whether the switch took effect (it needs
    /// CAP_SETUID/CAP_SETGID).
    pub(crate) fn enter(uid: u32, gid: u32, daemon: (u32, u32)) -> AsCaller {
        if (uid, gid) == daemon {
            return AsCaller { previous: None };
        }
        // SAFETY: setfsgid/setfsuid change only the calling thread's fs credentials (the raw
        // system calls are per-thread); passing -1 (invalid) only queries the current value.
        unsafe {
            let old_gid = libc::setfsgid(gid) as u32;
            let old_uid = libc::setfsuid(uid) as u32;
            let now_uid = libc::setfsuid(u32::MAX) as u32;
            let now_gid = libc::setfsgid(u32::MAX) as u32;
            let guard = AsCaller {
                previous: Some((old_uid, old_gid)),
            };
            if now_uid != uid || now_gid != gid {
                // Not privileged enough: restore (on drop) and report no switch.
                drop(guard);
                return AsCaller { previous: None };
            }
            guard
        }
    }

    pub(crate) fn active(&self) -> bool {
        self.previous.is_some()
    }
}

impl Drop for AsCaller {
    fn drop(&mut self) {
        if let Some((uid, gid)) = self.previous.take() {
            // SAFETY: as in `enter`; going back to fsuid 0 also restores the fs capabilities.
            unsafe {
                libc::setfsuid(uid);
                libc::setfsgid(gid);
            }
        }
    }
}

thread_local! {
    static PRIVATE_UMASK: Cell<Option<bool>> = const { Cell::new(None) };
}

/// Gives the calling thread its own umask, set to 0, once. The kernel has already applied
/// the caller's umask to the mode of a create, mkdir or mknod request; without this the
/// daemon's umask would be applied a second time. Returns false when `unshare(CLONE_FS)` is
/// refused (the process umask then applies on top).
///
/// Only FUSE request threads call this: it changes the thread's umask for good.
pub(crate) fn private_zero_umask() -> bool {
    PRIVATE_UMASK.with(|done| {
        if let Some(ok) = done.get() {
            return ok;
        }
        // SAFETY: unshare(CLONE_FS) gives this thread its own copy of cwd, root and umask;
        // umask then changes only that copy.
        let ok = unsafe { libc::unshare(libc::CLONE_FS) } == 0;
        if ok {
            // SAFETY: see above.
            unsafe { libc::umask(0) };
        }
        done.set(Some(ok));
        ok
    })
}

// ---- nodes ------------------------------------------------------------------------------

/// What the fd cache holds per node: an `O_PATH` fd, which any kind of file gives without
/// needing any permission on the file itself.
pub(crate) type NodeFd = OwnedFd;

/// The root as the core holds it: the directory fd it was given (`O_PATH` or not).
pub(crate) fn root_node(root: OwnedFd) -> io::Result<NodeFd> {
    Ok(root)
}

/// Whether the fd cache may keep `node` (always: an fd follows its inode).
#[inline]
pub(crate) fn cacheable(_node: &NodeFd) -> bool {
    true
}

/// An unlinked node reached through a duplicate of an open file's fd.
pub(crate) fn node_of_file(fd: OwnedFd) -> NodeFd {
    fd
}

/// Open flags the daemon's own fd of an open file never carries (see `open_flags`).
pub(crate) const DIRECT: OFlags = OFlags::DIRECT;

/// The permission bits of a FUSE mode.
pub(crate) fn perm(mode: u32) -> Mode {
    Mode::from_raw_mode(mode & 0o7777)
}

/// The kind of file of a FUSE or `st_mode` mode.
pub(crate) fn raw_kind(mode: u32) -> rustix::fs::FileType {
    rustix::fs::FileType::from_raw_mode(mode)
}

/// A node's attributes as the kernel reports them.
pub(crate) type Stat = Statx;

/// Each request thread reads its own clone of the FUSE device fd (fuser's `clone_fd`).
pub(crate) const CLONE_FD: bool = true;

/// `RENAME_EXCHANGE` as FUSE carries it.
pub(crate) const RENAME_EXCHANGE: u32 = libc::RENAME_EXCHANGE;

fn stat_flags() -> StatxFlags {
    StatxFlags::BASIC_STATS | StatxFlags::BTIME
}

pub(crate) fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<Stat> {
    rustix::fs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, stat_flags())
}

pub(crate) fn stat_fd(fd: BorrowedFd<'_>) -> rustix::io::Result<Stat> {
    rustix::fs::statx(
        fd,
        c"",
        AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
        stat_flags(),
    )
}

pub(crate) fn stat_node(node: &NodeFd) -> rustix::io::Result<Stat> {
    stat_fd(node.as_fd())
}

pub(crate) fn key_of(st: &Stat) -> Key {
    (
        (u64::from(st.stx_dev_major) << 32) | u64::from(st.stx_dev_minor),
        st.stx_ino,
    )
}

pub(crate) fn mode_of(st: &Stat) -> u32 {
    u32::from(st.stx_mode)
}

pub(crate) fn size_of(st: &Stat) -> u64 {
    st.stx_size
}

/// Seconds and nanoseconds of the last modification.
pub(crate) fn mtime_of(st: &Stat) -> (i64, u32) {
    (st.stx_mtime.tv_sec, st.stx_mtime.tv_nsec)
}

pub(crate) fn mtime(st: &Stat) -> SystemTime {
    time_of(&st.stx_mtime)
}

fn time_of(t: &StatxTimestamp) -> SystemTime {
    let nanos = Duration::from_nanos(u64::from(t.tv_nsec));
    let at = if t.tv_sec >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(t.tv_sec.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(t.tv_sec.unsigned_abs()))
    };
    at.and_then(|at| at.checked_add(nanos))
        .unwrap_or(UNIX_EPOCH)
}

/// `makedev` in the kernel's 32-bit encoding, which is what FUSE carries.
fn encode_dev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

fn decode_dev(rdev: u32) -> rustix::fs::Dev {
    let major = (rdev >> 8) & 0xfff;
    let minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
    rustix::fs::makedev(major, minor)
}

/// A special file `name` in `dir` (`rdev` as FUSE carries it).
pub(crate) fn mknodat(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    kind: rustix::fs::FileType,
    perm: Mode,
    rdev: u32,
) -> rustix::io::Result<()> {
    rustix::fs::mknodat(dir, name, kind, perm, decode_dev(rdev))
}

pub(crate) fn fdatasync(fd: BorrowedFd<'_>) -> rustix::io::Result<()> {
    rustix::fs::fdatasync(fd)
}

pub(crate) fn to_attr(ino: u64, st: &Stat) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: st.stx_size,
        blocks: st.stx_blocks,
        atime: time_of(&st.stx_atime),
        mtime: time_of(&st.stx_mtime),
        ctime: time_of(&st.stx_ctime),
        crtime: time_of(&st.stx_btime),
        kind: kind_of(u32::from(st.stx_mode)),
        perm: st.stx_mode & 0o7777,
        nlink: st.stx_nlink,
        uid: st.stx_uid,
        gid: st.stx_gid,
        rdev: encode_dev(st.stx_rdev_major, st.stx_rdev_minor),
        blksize: st.stx_blksize,
        flags: 0,
    }
}

/// Whether close(2) of a file on `fd`'s filesystem does nothing a program could see: no
/// data written back, no error reported, no lease or lock given up. True for the local
/// disk filesystems listed; false for network ones (NFS writes back and reports errors
/// on close, SMB closes on the server), FUSE ones (their own FLUSH), and any not known.
/// There the daemon's FLUSH (close of a duplicate, `flush`) gives the program close()'s
/// meaning; here it is a round trip that changes nothing. (ext4, xfs and btrfs do their
/// close-time work in `release`, at the last close of the daemon's own fd; f2fs's flush
/// only ends an atomic write of the task that exits.)
pub(crate) fn close_is_silent(fd: BorrowedFd<'_>) -> bool {
    type Kind = rustix::fs::FsWord;
    const EXT4: Kind = 0xEF53; // ext2, ext3, ext4
    const XFS: Kind = 0x5846_5342;
    const BTRFS: Kind = 0x9123_683E;
    const TMPFS: Kind = 0x0102_1994;
    const F2FS: Kind = 0xF2F5_2010;
    const BCACHEFS: Kind = 0xCA45_1A4E;
    rustix::fs::fstatfs(fd)
        .is_ok_and(|s| matches!(s.f_type, EXT4 | XFS | BTRFS | TMPFS | F2FS | BCACHEFS))
}

/// Whether a `fallocate` mode destroys content (punches, collapses, zeroes, shifts).
pub(crate) fn fallocate_destroys(mode: i32) -> bool {
    mode & (libc::FALLOC_FL_PUNCH_HOLE
        | libc::FALLOC_FL_COLLAPSE_RANGE
        | libc::FALLOC_FL_ZERO_RANGE
        | libc::FALLOC_FL_INSERT_RANGE)
        != 0
}

pub(crate) fn fallocate(
    fd: BorrowedFd<'_>,
    mode: i32,
    offset: u64,
    len: u64,
) -> rustix::io::Result<()> {
    let flags = rustix::fs::FallocateFlags::from_bits_retain(mode as u32);
    rustix::fs::fallocate(fd, flags, offset, len)
}

pub(crate) fn copy_file_range(
    input: BorrowedFd<'_>,
    off_in: &mut u64,
    output: BorrowedFd<'_>,
    off_out: &mut u64,
    len: usize,
) -> rustix::io::Result<usize> {
    rustix::fs::copy_file_range(input, Some(off_in), output, Some(off_out), len)
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
    use rustix::fs::StatVfsMountFlags as F;
    let f = rustix::fs::fstatvfs(fd)?.f_flag;
    Ok(Underlying {
        nodev: f.contains(F::NODEV),
        nosuid: f.contains(F::NOSUID),
        noexec: f.contains(F::NOEXEC),
        rdonly: f.contains(F::RDONLY),
        noatime: f.contains(F::NOATIME),
    })
}

/// The per-mount state behind node operations: a non-`O_PATH` fd on the root's filesystem
/// for `open_by_handle_at`, `/proc/self/fd` to reopen an `O_PATH` fd with real access
/// modes (the only absolute path used: each magic link lands on the very inode behind its
/// fd and is never followed further, even when that inode is a symlink), and whether file
/// handles still work.
pub(crate) struct Nodes {
    mount_fd: OwnedFd,
    proc_fd: OwnedFd,
    root_mount_id: Option<i32>,
    handles: AtomicBool,
}

/// The name of `fd` under `/proc/self/fd`.
fn proc_name(fd: &OwnedFd) -> String {
    fd.as_raw_fd().to_string()
}

fn proc_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

impl Nodes {
    /// For the root `root` (any directory fd); with `file_handles`, evicted nodes are
    /// reopened by handle where the kernel allows. Also returns the root's handle.
    pub(crate) fn new(
        root: &NodeFd,
        file_handles: bool,
    ) -> io::Result<(Nodes, Option<Arc<FileHandle>>)> {
        let mount_fd = rustix::fs::openat(
            root.as_fd(),
            c".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let proc_fd = rustix::fs::open(
            "/proc/self/fd",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let (root_handle, root_mount_id) = match name_to_handle(root.as_fd()) {
            Ok((h, mount_id)) if file_handles => (Some(Arc::new(h)), Some(mount_id)),
            _ => (None, None),
        };
        let nodes = Nodes {
            mount_fd,
            proc_fd,
            root_mount_id,
            handles: AtomicBool::new(root_mount_id.is_some()),
        };
        Ok((nodes, root_handle))
    }

    /// `name` in directory `dir`, not followed if it is a symlink.
    pub(crate) fn open_node(&self, dir: &NodeFd, name: &OsStr) -> rustix::io::Result<NodeFd> {
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        rustix::fs::openat(dir.as_fd(), name, flags, Mode::empty())
    }

    /// The node's handle, when handles work and it is on the root's mount.
    pub(crate) fn handle_of(&self, node: &NodeFd) -> Option<Arc<FileHandle>> {
        if !self.handles.load(Ordering::Relaxed) {
            return None;
        }
        match name_to_handle(node.as_fd()) {
            Ok((h, mount_id)) if Some(mount_id) == self.root_mount_id => Some(Arc::new(h)),
            _ => None,
        }
    }

    /// Opens the node behind `handle` again (None: not possible).
    pub(crate) fn by_handle(&self, handle: &FileHandle) -> Option<NodeFd> {
        if !self.handles.load(Ordering::Relaxed) {
            return None;
        }
        match open_by_handle(self.mount_fd.as_fd(), handle, libc::O_PATH) {
            Ok(fd) => Some(fd),
            // Without CAP_DAC_READ_SEARCH handles are useless: stop trying.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                self.handles.store(false, Ordering::Relaxed);
                None
            }
            Err(_) => None,
        }
    }

    /// The node opened for real with `flags` (through its magic link).
    pub(crate) fn reopen(&self, node: &NodeFd, flags: OFlags) -> rustix::io::Result<OwnedFd> {
        rustix::fs::openat(self.proc_fd.as_fd(), proc_name(node), flags, Mode::empty())
    }

    /// An open file `fd` opened again with `flags` (through its magic link).
    pub(crate) fn reopen_file(&self, fd: &OwnedFd, flags: OFlags) -> rustix::io::Result<OwnedFd> {
        self.reopen(fd, flags)
    }

    pub(crate) fn chmod(&self, node: &NodeFd, mode: Mode) -> rustix::io::Result<()> {
        // fchmodat(AT_EMPTY_PATH) is refused on O_PATH fds; the magic link is not.
        rustix::fs::chmodat(
            self.proc_fd.as_fd(),
            proc_name(node),
            mode,
            AtFlags::empty(),
        )
    }

    pub(crate) fn chown(
        &self,
        node: &NodeFd,
        uid: Option<Uid>,
        gid: Option<Gid>,
    ) -> rustix::io::Result<()> {
        rustix::fs::chownat(
            node.as_fd(),
            c"",
            uid,
            gid,
            AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
        )
    }

    pub(crate) fn utimens(&self, node: &NodeFd, times: &Timestamps) -> rustix::io::Result<()> {
        rustix::fs::utimensat(
            node.as_fd(),
            c"",
            times,
            AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
        )
    }

    pub(crate) fn readlink(&self, node: &NodeFd) -> rustix::io::Result<Vec<u8>> {
        Ok(rustix::fs::readlinkat(node.as_fd(), c"", Vec::new())?.into_bytes())
    }

    /// A new name `dir`/`name` for the node.
    pub(crate) fn link(
        &self,
        node: &NodeFd,
        dir: BorrowedFd<'_>,
        name: &OsStr,
    ) -> rustix::io::Result<()> {
        // AT_EMPTY_PATH links the fd's inode itself (needs CAP_DAC_READ_SEARCH); the magic
        // link does the same without it.
        rustix::fs::linkat(node.as_fd(), c"", dir, name, AtFlags::EMPTY_PATH).or_else(|_| {
            rustix::fs::linkat(
                self.proc_fd.as_fd(),
                proc_name(node),
                dir,
                name,
                AtFlags::SYMLINK_FOLLOW,
            )
        })
    }

    /// access(2) of the node for `mask` (`R_OK`...).
    pub(crate) fn access(&self, node: &NodeFd, mask: i32) -> rustix::io::Result<()> {
        let access = Access::from_bits_retain(mask as u32);
        rustix::fs::accessat(
            self.proc_fd.as_fd(),
            proc_name(node),
            access,
            AtFlags::empty(),
        )
    }

    // Extended attributes go through the magic link: f*xattr refuse O_PATH fds.

    pub(crate) fn setxattr(
        &self,
        node: &NodeFd,
        name: &OsStr,
        value: &[u8],
        flags: XattrFlags,
    ) -> rustix::io::Result<()> {
        rustix::fs::setxattr(proc_path(node).as_str(), name, value, flags)
    }

    /// The value's size with an empty `buf`, else the value read into `buf`.
    pub(crate) fn getxattr(
        &self,
        node: &NodeFd,
        name: &OsStr,
        buf: &mut [u8],
    ) -> rustix::io::Result<usize> {
        let path = proc_path(node);
        if buf.is_empty() {
            return rustix::fs::getxattr_query(path.as_str(), name);
        }
        rustix::fs::getxattr(path.as_str(), name, buf)
    }

    /// The list's size with an empty `buf`, else the list read into `buf`.
    pub(crate) fn listxattr(&self, node: &NodeFd, buf: &mut [u8]) -> rustix::io::Result<usize> {
        let path = proc_path(node);
        if buf.is_empty() {
            return rustix::fs::listxattr_query(path.as_str());
        }
        rustix::fs::listxattr(path.as_str(), buf)
    }

    pub(crate) fn removexattr(&self, node: &NodeFd, name: &OsStr) -> rustix::io::Result<()> {
        rustix::fs::removexattr(proc_path(node).as_str(), name)
    }
}

/// The fd `History` keeps the root folder by.
pub(crate) fn root_dir(root: &Arc<NodeFd>) -> Arc<OwnedFd> {
    Arc::clone(root)
}

// ---- directory streams ------------------------------------------------------------------

/// A directory open for reading, read with getdents64. Offsets are the kernel's cookies,
/// stable across opens of the directory.
pub(crate) struct DirFd {
    fd: OwnedFd,
    buf: Vec<MaybeUninit<u8>>,
}

impl DirFd {
    pub(crate) fn open(node: &NodeFd) -> rustix::io::Result<DirFd> {
        let fd = rustix::fs::openat(
            node.as_fd(),
            c".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(DirFd {
            fd,
            buf: Vec::new(),
        })
    }

    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub(crate) fn seek(&mut self, offset: u64) -> rustix::io::Result<()> {
        rustix::fs::seek(&self.fd, SeekFrom::Start(offset)).map(drop)
    }

    /// One getdents64 call's worth of entries, appended to `out`; true at the end.
    pub(crate) fn fill(
        &mut self,
        out: &mut std::collections::VecDeque<DirEnt>,
    ) -> rustix::io::Result<bool> {
        let DirFd { fd, buf } = self;
        if buf.is_empty() {
            buf.resize(32 * 1024, MaybeUninit::uninit());
        }
        let mut dir = RawDir::new(fd.as_fd(), &mut buf[..]);
        loop {
            match dir.next() {
                None => return Ok(true),
                Some(Err(e)) => return Err(e),
                Some(Ok(e)) => {
                    let name = e.file_name().to_bytes();
                    let kind = kind_from_raw(e.file_type()).unwrap_or_else(|| {
                        // DT_UNKNOWN: the filesystem does not fill d_type; ask.
                        stat_at(fd.as_fd(), OsStr::from_bytes(name))
                            .map(|st| kind_of(u32::from(st.stx_mode)))
                            .unwrap_or(fuser::FileType::RegularFile)
                    });
                    out.push_back(DirEnt {
                        name: name.into(),
                        d_ino: e.ino(),
                        kind,
                        cookie: e.next_entry_cookie(),
                    });
                }
            }
            if dir.is_buffer_empty() {
                return Ok(false);
            }
        }
    }
}

/// Makes `out` share `src`'s extents (FICLONE: btrfs, XFS).
pub(crate) fn clone_file(out: BorrowedFd<'_>, src: BorrowedFd<'_>) -> rustix::io::Result<()> {
    rustix::fs::ioctl_ficlone(out, src)
}
