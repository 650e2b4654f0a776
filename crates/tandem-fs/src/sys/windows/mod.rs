//! Windows: the `*at` calls of `fs.rs` over directory handles, file IDs for inodes, the
//! read-only attribute for the write bits and the hidden one in the mode (`sys::attrs`),
//! another program's hold on a file waited out for a while (`sys::retry`). Built and
//! type-checked on Linux; run under Wine (`.ci/wine-sync`), not yet on Windows itself
//! (issue 16).
//!
//! Not here yet: symbolic links (reported per file, never followed, none made), owners,
//! extended attributes and ACLs (refused as a file system without them), sparse copies,
//! and the exchange rename (the replaced version is kept in the trash before the rename
//! instead).

pub(crate) mod fd;
pub mod fs;
pub mod io;

use std::io as stdio;
use std::path::PathBuf;

use self::fd::{AsFd, BorrowedFd, OwnedFd};
use self::fs::{FileType, Mode, OFlags, Stat, Timestamps};
use self::io::Errno;
use crate::identity::{FileId, Place};

/// No `O_PATH`: a handle with attribute access only (no read permission needed).
pub const O_PATH: OFlags = OFlags::PATH;

/// No unnamed files: copies are written under a temporary name.
pub(crate) const O_TMPFILE: Option<OFlags> = None;

/// No `syncfs`: durability is a flush of each file as it is written.
pub(crate) const HAS_SYNCFS: bool = false;

pub fn st_dev(st: &Stat) -> u64 {
    st.st_dev
}

pub(crate) fn st_mode(st: &Stat) -> u32 {
    st.st_mode
}

/// The mode an entry keeps: the write bits, and the attributes (`sys::attrs`).
pub(crate) fn kept_mode(st: &Stat) -> u32 {
    (st.st_mode & 0o7777) | super::attrs::mode_bits(st.st_attrs)
}

/// `fs::openat` already walks one component at a time, never through a reparse point.
pub(crate) fn open_resolve_beneath(
    dir: &OwnedFd,
    path: &[u8],
    flags: OFlags,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    fs::openat(dir, path, flags, mode)
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

pub(crate) use self::fs::fsync;

/// Every file is flushed as it is written (`HAS_SYNCFS` is false); folders' entries are
/// in NTFS's journal.
pub(crate) fn syncfs(fd: impl AsFd) -> Result<(), Errno> {
    fsync(fd)
}

/// Whether `syncfs` makes the root's data durable: there is no `syncfs`.
pub(crate) fn syncfs_is_durable(_root: &OwnedFd) -> bool {
    false
}

/// The path Windows has for the object behind `fd` (`\\?\C:\...`), as UTF-8.
pub(crate) fn fd_path(fd: BorrowedFd<'_>) -> stdio::Result<Vec<u8>> {
    Ok(final_path(fd)?.to_string_lossy().into_owned().into_bytes())
}

/// No owners to give: refused as an unprivileged chown is (the entry read back shows it).
pub(crate) fn chown_object(_fd: BorrowedFd<'_>, _uid: u32, _gid: u32) -> Result<(), Errno> {
    Err(Errno::PERM)
}

/// The owner's write bit as the read-only attribute, and the hidden attribute where `mode`
/// comes from a Windows side (`tandem_core::MODE_ATTRS`).
pub(crate) fn chmod_object(fd: impl AsFd, mode: u32) -> Result<(), Errno> {
    fs::set_attributes(fd.as_fd(), mode)
}

pub(crate) fn utimens_object(fd: &OwnedFd, times: &Timestamps) -> Result<(), Errno> {
    use windows_sys::Win32::Storage::FileSystem::{FILE_READ_ATTRIBUTES, FILE_WRITE_ATTRIBUTES};
    let fd = fs::reopen(fd.as_fd(), FILE_READ_ATTRIBUTES | FILE_WRITE_ATTRIBUTES)?;
    fs::futimens(&fd, times)
}

/// Identity only (volume serial number and file ID): no mount ids.
pub(crate) fn place_of_fd(fd: impl AsFd) -> stdio::Result<Place> {
    let st = fs::fstat(fd)?;
    let id = FileId {
        dev: st.st_dev,
        ino: st.st_ino,
    };
    Ok(Place { id, mnt_id: None })
}

/// The folder holding the directory behind `fd`, found by its final path (there is no
/// `..` to open relative to a handle).
pub(crate) fn open_parent(fd: &OwnedFd) -> stdio::Result<OwnedFd> {
    let path = final_path(fd.as_fd())?;
    let parent = path
        .parent()
        .ok_or_else(|| stdio::Error::from(Errno::NOENT))?;
    Ok(fs::open(parent, O_PATH | OFlags::DIRECTORY, Mode::empty())?)
}

/// The path Windows has for the object behind `fd` (`\\?\C:\...`).
fn final_path(fd: BorrowedFd<'_>) -> stdio::Result<PathBuf> {
    use std::os::windows::ffi::OsStringExt;
    use windows_sys::Win32::Storage::FileSystem::GetFinalPathNameByHandleW;
    let mut buf = vec![0u16; 512];
    loop {
        // SAFETY: `buf` holds `buf.len()` units.
        let n =
            unsafe { GetFinalPathNameByHandleW(fd.raw(), buf.as_mut_ptr(), buf.len() as u32, 0) };
        let n = n as usize;
        if n == 0 {
            return Err(stdio::Error::last_os_error());
        }
        if n < buf.len() {
            buf.truncate(n);
            return Ok(PathBuf::from(std::ffi::OsString::from_wide(&buf)));
        }
        buf.resize(n + 1, 0);
    }
}

/// No mount table here.
pub(crate) fn mountinfo_text() -> Option<String> {
    None
}

/// Never called: only mount table lines carry device numbers.
pub(crate) fn makedev(major: u32, minor: u32) -> u64 {
    (u64::from(major) << 32) | u64::from(minor)
}

/// A path from bytes (UTF-8 here).
pub(crate) fn path_from_bytes(b: Vec<u8>) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&b).into_owned())
}

/// Permission bits as `Mode` (only the write bits mean something here: read-only).
pub(crate) fn mode(bits: u32) -> Mode {
    Mode::from_raw_mode(bits & 0o7777)
}

/// No `/proc/self/fd` (and no unnamed files to link in through it).
pub(crate) fn proc_fds() -> bool {
    false
}

/// Never called: there are no unnamed files here ([`O_TMPFILE`] is `None`).
pub(crate) fn link_unnamed(_tfd: &OwnedFd, _ddir: &OwnedFd, _name: &[u8]) -> Result<(), Errno> {
    Err(Errno::NOSYS)
}

/// NTFS holds hard links; FAT volumes refuse the probe's link (a dry run assumes they hold).
pub(crate) fn fs_without_hard_links(_fd: impl AsFd) -> bool {
    false
}

/// Whether `e` says another program holds the file open (a sharing violation, still there
/// after `sys::retry`'s tries).
pub(crate) fn held_open(e: Errno) -> bool {
    e == Errno::BUSY
}

/// Making a symbolic link needs a privilege most users lack (or Developer Mode): none are
/// made here; the engine reports each link it would have made (`tandem_engine` `symlinks`).
pub const HOLDS_SYMLINKS: bool = false;

/// A symbolic link or junction (a name-surrogate reparse point, which `fs::fstat` gives no
/// file type): reported per file, never followed, never replaced.
pub(crate) fn link_not_synced(st: &Stat) -> Option<&'static str> {
    (FileType::from_raw_mode(st.st_mode) == FileType::Unknown && st.st_attrs & 0x400 != 0)
        .then_some("a symbolic link or junction: not synced on Windows yet, never followed")
}
