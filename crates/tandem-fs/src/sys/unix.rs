//! macOS (and the BSDs): no `openat2`, `O_PATH`, `O_TMPFILE`, `statx`, `syncfs` or
//! `/proc`. Built and type-checked; not yet tested on the platform (issue 16).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags, Stat, Timestamps};
use rustix::io::Errno;

use crate::identity::{FileId, Place};

/// No `O_PATH`: objects are opened read-only, non-blocking (a FIFO must not wait for a
/// writer). Needs read permission where Linux needs none.
pub const O_PATH: OFlags = OFlags::RDONLY.union(OFlags::NONBLOCK);

/// No unnamed files: copies are written under a temporary name.
pub(crate) const O_TMPFILE: Option<OFlags> = None;

/// No `syncfs`: durability is an fsync of each file and folder as it is written.
pub(crate) const HAS_SYNCFS: bool = false;

// `dev_t` is an `i32` and `mode_t` a `u16` here: the same bits, widened.
#[allow(clippy::cast_sign_loss)]
pub fn st_dev(st: &Stat) -> u64 {
    u64::from(st.st_dev as u32)
}

pub(crate) fn st_mode(st: &Stat) -> u32 {
    u32::from(st.st_mode)
}

/// The mode an entry keeps: permission bits (no Windows attributes here).
pub(crate) fn kept_mode(st: &Stat) -> u32 {
    st_mode(st) & 0o7777
}

/// Permission bits as `Mode` (a `u16` here; permission bits fit).
pub(crate) fn mode(bits: u32) -> Mode {
    Mode::from_raw_mode(u16::try_from(bits & 0o7777).unwrap_or_default())
}

/// No `openat2`: ENOSYS, so that the caller walks one component at a time with
/// `O_NOFOLLOW` (root.rs `open_walk`).
pub(crate) fn open_resolve_beneath(
    _dir: &OwnedFd,
    _path: &[u8],
    _flags: OFlags,
    _mode: Mode,
) -> Result<OwnedFd, Errno> {
    Err(Errno::NOSYS)
}

/// No early writeback here: the later sync writes all.
pub(crate) fn start_writeback(_fd: BorrowedFd<'_>, _offset: u64, _len: u64) {}

/// No `copy_file_range`: ENOSYS, and the caller copies by hand.
pub(crate) fn copy_file_range(
    _src: impl AsFd,
    _off_in: Option<&mut u64>,
    _dst: impl AsFd,
    _off_out: Option<&mut u64>,
    _len: usize,
) -> Result<usize, Errno> {
    Err(Errno::NOSYS)
}

/// Data and metadata on the disk itself, past its cache (`F_FULLFSYNC`; a plain fsync
/// on macOS leaves them in the drive's cache).
#[cfg(target_vendor = "apple")]
pub(crate) fn fsync(fd: impl AsFd) -> Result<(), Errno> {
    rustix::fs::fcntl_fullfsync(fd)
}

#[cfg(not(target_vendor = "apple"))]
pub(crate) use rustix::fs::fsync;

/// Everything is already fsynced file by file (`HAS_SYNCFS` is false): only the folder
/// itself is left.
pub(crate) fn syncfs(fd: impl AsFd) -> Result<(), Errno> {
    fsync(fd)
}

/// The fd was opened read-only on the object itself: `fchmod` works on it.
/// A path naming the object behind `fd`, for the calls that take no fd (`F_GETPATH`).
/// Unlike Linux's `/proc/self/fd` link it is resolved again by name.
pub(crate) fn fd_path(fd: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    Ok(rustix::fs::getpath(fd)?.into_bytes())
}

pub(crate) fn chown_object(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> Result<(), Errno> {
    rustix::fs::fchown(
        fd,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
}

/// Not told by the file system's type here: a dry run assumes links hold.
pub(crate) fn fs_without_hard_links(_fd: impl AsFd) -> bool {
    false
}

pub(crate) fn chmod_object(fd: impl AsFd, mode: u32) -> Result<(), Errno> {
    // Windows' attributes (`tandem_core::MODE_ATTRS`), from a Windows side: nothing here.
    rustix::fs::fchmod(fd, self::mode(mode & 0o7777))
}

pub(crate) fn utimens_object(fd: &OwnedFd, times: &Timestamps) -> Result<(), Errno> {
    rustix::fs::futimens(fd, times)
}

/// Identity only: no mount ids here (a root unmounted under us is noticed by its path no
/// longer leading to it).
pub(crate) fn place_of_fd(fd: impl AsFd) -> io::Result<Place> {
    let st = rustix::fs::fstat(&fd)?;
    let id = FileId {
        dev: st_dev(&st),
        ino: st.st_ino,
    };
    Ok(Place { id, mnt_id: None })
}

/// No `/proc/self/mountinfo`: bind mounts are a Linux matter.
pub(crate) fn mountinfo_text() -> Option<String> {
    None
}

/// A device number in Linux's encoding (only `/proc/self/mountinfo` lines carry them).
pub(crate) fn makedev(major: u32, minor: u32) -> u64 {
    (u64::from(major & 0xffff_f000) << 32)
        | (u64::from(major & 0xfff) << 8)
        | (u64::from(minor & 0xffff_ff00) << 12)
        | u64::from(minor & 0xff)
}

/// No `/proc/self/fd` (and no unnamed files to link in through it).
pub(crate) fn proc_fds() -> bool {
    false
}

/// Never called: there are no unnamed files here ([`O_TMPFILE`] is `None`).
pub(crate) fn link_unnamed(_tfd: &OwnedFd, _ddir: &OwnedFd, _name: &[u8]) -> Result<(), Errno> {
    Err(Errno::NOSYS)
}

/// No `syncfs` here (`HAS_SYNCFS` is false).
pub(crate) fn syncfs_is_durable(_root: &OwnedFd) -> bool {
    false
}

/// Whether `e` says another program holds the file open: no such refusal here (a file
/// open elsewhere is renamed over and deleted like any other).
pub(crate) fn held_open(_e: Errno) -> bool {
    false
}

/// Symbolic links are made and read as links.
pub const HOLDS_SYMLINKS: bool = true;

/// Every object without a type tandem syncs is a special file here.
pub(crate) fn link_not_synced(_st: &Stat) -> Option<&'static str> {
    None
}
