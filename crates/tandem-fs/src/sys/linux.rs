//! Linux: the system calls tandem-fs was written for.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{
    linkat, openat2, statx, AtFlags, Mode, OFlags, ResolveFlags, Stat, StatxFlags, Timestamps,
};
use rustix::io::Errno;

pub(crate) use rustix::fs::{copy_file_range, fsync, syncfs};

use crate::identity::{FileId, Place};

/// An fd that names an object without opening it (no read permission needed, a FIFO or
/// device is not opened): for walking directories and for metadata.
pub const O_PATH: OFlags = OFlags::PATH;

/// Unnamed files in a directory, linked in once written (`None`: not on this system).
pub(crate) const O_TMPFILE: Option<OFlags> = Some(OFlags::TMPFILE);

/// Whether `syncfs` exists here (else every file is fsynced as it is written).
pub(crate) const HAS_SYNCFS: bool = true;

/// Starts the writeback of `len` bytes at `offset` of `fd` without waiting for it, so that
/// a large file's data is on its way to the disk while the rest is written and the later
/// `syncfs`/`fsync` has little left to wait for. A hint: durability still comes from that
/// sync alone, and a failure here is left to it.
pub(crate) fn start_writeback(fd: BorrowedFd<'_>, offset: u64, len: u64) {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a plain system call on an fd borrowed for its length; no memory is passed.
    unsafe {
        libc::sync_file_range(fd.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

pub fn st_dev(st: &Stat) -> u64 {
    st.st_dev
}

pub(crate) fn st_mode(st: &Stat) -> u32 {
    st.st_mode
}

/// The mode an entry keeps: permission bits (no Windows attributes here).
pub(crate) fn kept_mode(st: &Stat) -> u32 {
    st.st_mode & 0o7777
}

/// Permission bits as `Mode`.
pub(crate) fn mode(bits: u32) -> rustix::fs::Mode {
    rustix::fs::Mode::from_raw_mode(bits & 0o7777)
}

/// `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`: ENOSYS on
/// kernels before 5.6.
pub(crate) fn open_resolve_beneath(
    dir: &OwnedFd,
    path: &[u8],
    flags: OFlags,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    openat2(dir, path, flags, mode, resolve)
}

fn proc_path(fd: impl AsFd) -> String {
    format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())
}

/// A path naming the object behind `fd` (an `O_PATH` fd too), for the calls that take no
/// fd: its `/proc/self/fd/N` link.
pub(crate) fn fd_path(fd: BorrowedFd<'_>) -> std::io::Result<Vec<u8>> {
    Ok(proc_path(fd).into_bytes())
}

/// chown of the object behind an `O_PATH` fd.
pub(crate) fn chown_object(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> Result<(), Errno> {
    rustix::fs::chownat(
        fd,
        "",
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
        AtFlags::EMPTY_PATH,
    )
}

/// chmod of the object behind any fd: `fchmod` where it is open for reading or writing
/// (no path to resolve), else through `/proc/self/fd` (`fchmod` refuses `O_PATH` fds with
/// EBADF).
pub(crate) fn chmod_object(fd: impl AsFd, mode: u32) -> Result<(), Errno> {
    // Windows' attributes (`tandem_core::MODE_ATTRS`), from a Windows side: nothing here.
    let mode = Mode::from_raw_mode(mode & 0o7777);
    match rustix::fs::fchmod(&fd, mode) {
        Err(Errno::BADF) => rustix::fs::chmod(proc_path(fd).as_str(), mode),
        r => r,
    }
}

/// Times of the object behind an `O_PATH` fd.
pub(crate) fn utimens_object(fd: &OwnedFd, times: &Timestamps) -> Result<(), Errno> {
    rustix::fs::utimensat(
        rustix::fs::CWD,
        proc_path(fd).as_str(),
        times,
        AtFlags::empty(),
    )
}

/// Whether the file system behind `fd` is told by its type to hold no hard links: FAT and
/// exFAT by the kernel's drivers (through FUSE, `fuseblk` says nothing of what is below).
pub(crate) fn fs_without_hard_links(fd: impl AsFd) -> bool {
    const MSDOS: u32 = 0x4d44;
    const EXFAT: u32 = 0x2011_bab0;
    rustix::fs::fstatfs(fd).is_ok_and(|st| matches!(st.f_type as u32, MSDOS | EXFAT))
}

/// The place of an open file or directory: its identity and mount (`statx`).
pub(crate) fn place_of_fd(fd: impl AsFd) -> io::Result<Place> {
    let st = match statx(
        &fd,
        c"",
        AtFlags::EMPTY_PATH,
        StatxFlags::BASIC_STATS | StatxFlags::MNT_ID,
    ) {
        Err(Errno::NOSYS) => {
            // Before Linux 4.11: no statx, and no mount to compare.
            let st = rustix::fs::fstat(&fd)?;
            let id = FileId {
                dev: st.st_dev,
                ino: st.st_ino,
            };
            return Ok(Place { id, mnt_id: None });
        }
        r => r?,
    };
    Ok(Place {
        id: FileId {
            dev: rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor),
            ino: st.stx_ino,
        },
        mnt_id: (st.stx_mask & StatxFlags::MNT_ID.bits() != 0).then_some(st.stx_mnt_id),
    })
}

/// The mount table (`/proc/self/mountinfo`), empty when it cannot be read.
pub(crate) fn mountinfo_text() -> Option<String> {
    std::fs::read_to_string("/proc/self/mountinfo").ok()
}

/// A device number from its major and minor, as `Stat::st_dev` holds it.
pub(crate) fn makedev(major: u32, minor: u32) -> u64 {
    rustix::fs::makedev(major, minor)
}

/// Whether `/proc/self/fd` can be had, to link an unnamed file in (without the
/// CAP_DAC_READ_SEARCH that `AT_EMPTY_PATH` needs).
pub(crate) fn proc_fds() -> bool {
    static HAVE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAVE.get_or_init(|| std::path::Path::new("/proc/self/fd").is_dir())
}

/// Links the unnamed file `tfd` into `ddir` as `name`: by its fd (`AT_EMPTY_PATH`: allowed
/// with CAP_DAC_READ_SEARCH, and since Linux 6.10 for a file the caller opened), else
/// through its `/proc/self/fd` link, which costs a path lookup. Once the fd way is refused
/// where the other works, the run goes on without trying it.
pub(crate) fn link_unnamed(tfd: &OwnedFd, ddir: &OwnedFd, name: &[u8]) -> rustix::io::Result<()> {
    static BY_FD: AtomicBool = AtomicBool::new(true);
    if BY_FD.load(Ordering::Relaxed) {
        match linkat(tfd, c"", ddir, name, AtFlags::EMPTY_PATH) {
            // Refused (no capability, an older kernel), or the folder is gone: by path.
            Err(Errno::NOENT | Errno::INVAL) => {}
            r => return r,
        }
    }
    let fd_path = format!("/proc/self/fd/{}", tfd.as_raw_fd());
    let r = linkat(
        rustix::fs::CWD,
        fd_path.as_str(),
        ddir,
        name,
        AtFlags::SYMLINK_FOLLOW,
    );
    if r.is_ok() {
        BY_FD.store(false, Ordering::Relaxed);
    }
    r
}

/// Whether `syncfs` makes the data of the file system holding `root` durable. Linux sends
/// `FUSE_SYNCFS` to virtiofs only: on a FUSE file system mounted through `/dev/fuse`
/// (sshfs, ntfs-3g, rclone, ...) syncfs succeeds and the daemon never hears of it, so only
/// an fsync of each file reaches its disk (issue 20's power-loss campaign found the
/// baseline recording copies that a power cut then took back).
// `f_type`'s integer type differs between architectures.
#[allow(clippy::unnecessary_cast)]
pub(crate) fn syncfs_is_durable(root: &OwnedFd) -> bool {
    const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;
    rustix::fs::fstatfs(root).map_or(true, |s| s.f_type as i64 != FUSE_SUPER_MAGIC)
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
