//! `rustix::fs`'s names on Windows, as far as tandem uses them: the `*at` calls made of
//! `NtCreateFile` relative to a directory handle.
//!
//! Confinement (invariant 6): a path is opened one component at a time, each relative to
//! the handle of the one before, always with `FILE_OPEN_REPARSE_POINT`, so that a symbolic
//! link or junction is opened itself and never followed; one met on the way is `ELOOP`.
//! `..` is refused (`EXDEV`, as `RESOLVE_BENEATH` says), and so is any name Windows would
//! read as something else (a stream after `:`, a device name, a backslash) is `EINVAL`:
//! created, the apply functions report "this file system cannot hold the name"; found in
//! a listing, the scan reports the file as a problem. Relative opens know no `MAX_PATH`.

use std::ffi::CString;
use std::mem::{offset_of, size_of};
use std::path::Path;

use windows_sys::Wdk::Foundation::OBJECT_ATTRIBUTES;
use windows_sys::Wdk::Storage::FileSystem::{
    FileDispositionInformation, FileLinkInformation, FileRenameInformation, NtCreateFile,
    NtSetInformationFile, FILE_CREATE, FILE_DIRECTORY_FILE, FILE_DISPOSITION_INFORMATION,
    FILE_INFORMATION_CLASS, FILE_LINK_INFORMATION, FILE_NON_DIRECTORY_FILE, FILE_OPEN,
    FILE_OPEN_FOR_BACKUP_INTENT, FILE_OPEN_IF, FILE_OPEN_REPARSE_POINT, FILE_OVERWRITE,
    FILE_OVERWRITE_IF, FILE_RENAME_INFORMATION, FILE_SYNCHRONOUS_IO_NONALERT,
};
use windows_sys::Win32::Foundation::{
    RtlNtStatusToDosError, HANDLE, NTSTATUS, OBJ_CASE_INSENSITIVE, UNICODE_STRING,
};
use windows_sys::Win32::Storage::FileSystem::{
    FileAttributeTagInfo, FileBasicInfo, FileIdBothDirectoryInfo, FileIdBothDirectoryRestartInfo,
    FlushFileBuffers, GetFileInformationByHandle, GetFileInformationByHandleEx,
    SetFileInformationByHandle, BY_HANDLE_FILE_INFORMATION, DELETE, FILE_ATTRIBUTE_DIRECTORY,
    FILE_ATTRIBUTE_NORMAL, FILE_ATTRIBUTE_READONLY, FILE_ATTRIBUTE_REPARSE_POINT,
    FILE_ATTRIBUTE_TAG_INFO, FILE_BASIC_INFO, FILE_GENERIC_READ, FILE_GENERIC_WRITE,
    FILE_ID_BOTH_DIR_INFO, FILE_LIST_DIRECTORY, FILE_READ_ATTRIBUTES, FILE_SHARE_DELETE,
    FILE_SHARE_READ, FILE_SHARE_WRITE, FILE_TRAVERSE, FILE_WRITE_ATTRIBUTES, READ_CONTROL,
    SYNCHRONIZE,
};
use windows_sys::Win32::System::IO::IO_STATUS_BLOCK;

use super::fd::{AsFd, BorrowedFd, OwnedFd};
use super::io::{with_file, Errno, Result};
use crate::sys::retry::{while_busy, WINDOWS_WAITS};

macro_rules! flags {
    ($(#[$doc:meta])* $name:ident { $($flag:ident = $bits:expr),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub struct $name(u32);
        impl $name {
            $(pub const $flag: $name = $name($bits);)*
            pub const fn empty() -> $name { $name(0) }
            pub const fn bits(self) -> u32 { self.0 }
            pub const fn contains(self, other: $name) -> bool { self.0 & other.0 == other.0 }
            pub const fn union(self, other: $name) -> $name { $name(self.0 | other.0) }
        }
        impl std::ops::BitOr for $name {
            type Output = $name;
            fn bitor(self, o: $name) -> $name { $name(self.0 | o.0) }
        }
        impl std::ops::BitOrAssign for $name {
            fn bitor_assign(&mut self, o: $name) { self.0 |= o.0 }
        }
    };
}

flags!(
    /// Open flags, with Linux's meanings (`RDONLY` is no bit: the absence of the others).
    OFlags {
        RDONLY = 0, WRONLY = 1, RDWR = 2, CREATE = 0o100, EXCL = 0o200, TRUNC = 0o1000,
        APPEND = 0o2000, NONBLOCK = 0o4000, DIRECTORY = 0o200000, NOFOLLOW = 0o400000,
        CLOEXEC = 0o2000000, PATH = 0o10000000,
    }
);
flags!(AtFlags { SYMLINK_NOFOLLOW = 0x100, REMOVEDIR = 0x200, SYMLINK_FOLLOW = 0x400, EMPTY_PATH = 0x1000 });
flags!(RenameFlags { NOREPLACE = 1, EXCHANGE = 2 });
flags!(XattrFlags { CREATE = 1, REPLACE = 2 });

/// Permission bits: only the owner's write bit means anything here (the read-only
/// attribute).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mode(u32);

impl Mode {
    pub const fn empty() -> Mode {
        Mode(0)
    }
    pub const fn from_raw_mode(bits: u32) -> Mode {
        Mode(bits)
    }
    pub const fn as_raw_mode(self) -> u32 {
        self.0
    }
}

const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    RegularFile,
    Directory,
    Symlink,
    Fifo,
    Socket,
    CharacterDevice,
    BlockDevice,
    Unknown,
}

impl FileType {
    pub fn from_raw_mode(mode: u32) -> FileType {
        match mode & S_IFMT {
            S_IFREG => FileType::RegularFile,
            S_IFDIR => FileType::Directory,
            _ => FileType::Unknown,
        }
    }
}

/// What `fstat` says, in `struct stat`'s words: the volume serial number for the device,
/// the file ID for the inode, write bits from the read-only attribute. A symbolic link or
/// junction (a name-surrogate reparse point) is of no type tandem syncs (`Unknown`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Stat {
    pub st_dev: u64,
    pub st_ino: u64,
    pub st_mode: u32,
    pub st_nlink: u64,
    pub st_uid: u32,
    pub st_gid: u32,
    pub st_size: i64,
    /// 512-byte blocks: the size rounded up (sparse files are not looked at here).
    pub st_blocks: i64,
    pub st_atime: i64,
    pub st_atime_nsec: i64,
    pub st_mtime: i64,
    pub st_mtime_nsec: i64,
    pub st_ctime: i64,
    pub st_ctime_nsec: i64,
    /// The file attributes (`FILE_ATTRIBUTE_*`), of which `Entry::mode` keeps some.
    pub st_attrs: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timespec {
    pub tv_sec: i64,
    pub tv_nsec: i64,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Timestamps {
    pub last_access: Timespec,
    pub last_modification: Timespec,
}

/// A time left as it is.
pub const UTIME_OMIT: i64 = (1 << 30) - 2;

/// No current directory to be relative to: the null handle.
pub const CWD: BorrowedFd<'static> = BorrowedFd::NULL;

pub enum SeekFrom {
    Start(u64),
    End(i64),
    Current(i64),
    /// No sparse-file extents here: `EINVAL`, and the caller copies the whole file.
    Data(u64),
    Hole(u64),
}

// ---- opening -------------------------------------------------------------------------

const SHARE_ALL: u32 = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
const STATUS_OBJECT_NAME_COLLISION: NTSTATUS = 0xC000_0035_u32 as i32;
const STATUS_DELETE_PENDING: NTSTATUS = 0xC000_0056_u32 as i32;
const STATUS_FILE_IS_A_DIRECTORY: NTSTATUS = 0xC000_00BA_u32 as i32;
const STATUS_NOT_A_DIRECTORY: NTSTATUS = 0xC000_0103_u32 as i32;
const STATUS_CANNOT_DELETE: NTSTATUS = 0xC000_0121_u32 as i32;

fn status_errno(status: NTSTATUS) -> Errno {
    match status {
        STATUS_OBJECT_NAME_COLLISION => Errno::EXIST,
        STATUS_DELETE_PENDING => Errno::NOENT,
        STATUS_FILE_IS_A_DIRECTORY => Errno::ISDIR,
        STATUS_NOT_A_DIRECTORY => Errno::NOTDIR,
        STATUS_CANNOT_DELETE => Errno::ACCESS,
        // SAFETY: a pure mapping of a status code.
        s => Errno::from_windows(unsafe { RtlNtStatusToDosError(s) }),
    }
}

/// `NtCreateFile` of `name` (one component, or empty for `root` itself) relative to
/// `root`, never following a reparse point.
fn nt_open(
    root: HANDLE,
    name: &[u16],
    access: u32,
    disposition: u32,
    options: u32,
) -> Result<OwnedFd> {
    let len = u16::try_from(name.len() * 2).map_err(|_| Errno::NAMETOOLONG)?;
    let us = UNICODE_STRING {
        Length: len,
        MaximumLength: len,
        Buffer: name.as_ptr().cast_mut(),
    };
    let attrs = OBJECT_ATTRIBUTES {
        Length: size_of::<OBJECT_ATTRIBUTES>() as u32,
        RootDirectory: root,
        ObjectName: &us,
        Attributes: OBJ_CASE_INSENSITIVE,
        SecurityDescriptor: std::ptr::null(),
        SecurityQualityOfService: std::ptr::null(),
    };
    let mut h: HANDLE = std::ptr::null_mut();
    let mut iosb = IO_STATUS_BLOCK::default();
    let options = options
        | FILE_SYNCHRONOUS_IO_NONALERT
        | FILE_OPEN_REPARSE_POINT
        | FILE_OPEN_FOR_BACKUP_INTENT;
    // SAFETY: every pointer is to a live local; `h` is ours once the call succeeds.
    let status = unsafe {
        NtCreateFile(
            &mut h,
            access | SYNCHRONIZE,
            &attrs,
            &mut iosb,
            std::ptr::null(),
            FILE_ATTRIBUTE_NORMAL,
            SHARE_ALL,
            disposition,
            options,
            std::ptr::null(),
            0,
        )
    };
    if status < 0 {
        return Err(status_errno(status));
    }
    // SAFETY: a handle just opened, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw(h) })
}

/// One component as UTF-16, if Windows can hold it as it is. A name it cannot hold is
/// `EINVAL`, looked up or created: a creation is reported as a name this side cannot
/// hold, and one listed in a folder (written there by another system) is scanned as a
/// problem, reported per file, never acted on. A name that is not UTF-8 cannot be on this
/// side: looked up, it is not there; created, `EILSEQ`.
fn component(c: &[u8], creating: bool) -> Result<Vec<u16>> {
    if c == b".." {
        return Err(Errno::XDEV);
    }
    let s =
        std::str::from_utf8(c).map_err(|_| if creating { Errno::ILSEQ } else { Errno::NOENT })?;
    if crate::names::windows_problem(s).is_some() {
        return Err(Errno::INVAL);
    }
    Ok(s.encode_utf16().collect())
}

/// Whether the open object is a symbolic link or junction (a name-surrogate reparse
/// point); other reparse points (deduplicated or cloud files) are files like any other.
fn is_link(fd: &OwnedFd) -> Result<bool> {
    let mut tag = FILE_ATTRIBUTE_TAG_INFO::default();
    get_info(fd.as_fd(), FileAttributeTagInfo, &mut tag)?;
    Ok(tag.FileAttributes & FILE_ATTRIBUTE_REPARSE_POINT != 0 && tag.ReparseTag & 0x2000_0000 != 0)
}

fn get_info<T>(fd: BorrowedFd<'_>, class: i32, out: &mut T) -> Result<()> {
    // SAFETY: `out` is a `T`, the structure `class` fills.
    let ok = unsafe {
        GetFileInformationByHandleEx(
            fd.raw(),
            class,
            (out as *mut T).cast(),
            size_of::<T>() as u32,
        )
    };
    if ok == 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// The directory holding the last component of `path` beneath `dir` (`None`: `dir`
/// itself), and that component (empty for `dir` itself). Each directory on the way is
/// opened relative to the one before, never through a reparse point.
fn walk<'p>(dir: BorrowedFd<'_>, path: &'p [u8]) -> Result<(Option<OwnedFd>, &'p [u8])> {
    let comps: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect();
    let Some((last, dirs)) = comps.split_last() else {
        return Ok((None, b""));
    };
    let mut cur: Option<OwnedFd> = None;
    for c in dirs {
        let name = component(c, false)?;
        let at = cur.as_ref().map_or(dir.raw(), |f| f.as_fd().raw());
        let access = FILE_TRAVERSE | FILE_LIST_DIRECTORY | FILE_READ_ATTRIBUTES;
        let fd = nt_open(at, &name, access, FILE_OPEN, FILE_DIRECTORY_FILE)?;
        if is_link(&fd)? {
            return Err(Errno::LOOP);
        }
        cur = Some(fd);
    }
    Ok((cur, last))
}

/// Opens `last` (one component, or empty for `parent` itself) in `parent`.
fn open_in(
    parent: BorrowedFd<'_>,
    last: &[u8],
    access: u32,
    disposition: u32,
    options: u32,
) -> Result<OwnedFd> {
    let creating = matches!(disposition, FILE_CREATE | FILE_OPEN_IF | FILE_OVERWRITE_IF);
    let name = if last.is_empty() {
        Vec::new()
    } else {
        component(last, creating)?
    };
    nt_open(parent.raw(), &name, access, disposition, options)
}

/// Opens `path` beneath `dir` (see the module's header).
fn open_beneath(
    dir: BorrowedFd<'_>,
    path: &[u8],
    access: u32,
    disposition: u32,
    options: u32,
) -> Result<OwnedFd> {
    let (parent, last) = walk(dir, path)?;
    let at = parent.as_ref().map_or(dir, |p| p.as_fd());
    open_in(at, last, access, disposition, options)
}

fn access_of(flags: OFlags) -> u32 {
    let dir = if flags.contains(OFlags::DIRECTORY) {
        FILE_LIST_DIRECTORY | FILE_TRAVERSE
    } else {
        0
    };
    if flags.contains(OFlags::PATH) {
        return FILE_READ_ATTRIBUTES | READ_CONTROL | dir;
    }
    match flags.bits() & 3 {
        1 => FILE_GENERIC_WRITE | FILE_READ_ATTRIBUTES,
        2 => FILE_GENERIC_READ | FILE_GENERIC_WRITE,
        _ => FILE_GENERIC_READ | dir,
    }
}

fn disposition_of(flags: OFlags) -> u32 {
    let (create, excl, trunc) = (
        flags.contains(OFlags::CREATE),
        flags.contains(OFlags::EXCL),
        flags.contains(OFlags::TRUNC),
    );
    match (create, excl, trunc) {
        (true, true, _) => FILE_CREATE,
        (true, false, true) => FILE_OVERWRITE_IF,
        (true, false, false) => FILE_OPEN_IF,
        (false, _, true) => FILE_OVERWRITE,
        (false, _, false) => FILE_OPEN,
    }
}

pub fn openat(
    dir: impl AsFd,
    path: impl AsRef<[u8]>,
    flags: OFlags,
    _mode: Mode,
) -> Result<OwnedFd> {
    let writes = flags.bits() & 3 != 0;
    let options = if flags.contains(OFlags::DIRECTORY) {
        FILE_DIRECTORY_FILE
    } else if writes {
        FILE_NON_DIRECTORY_FILE
    } else {
        0
    };
    let fd = open_beneath(
        dir.as_fd(),
        path.as_ref(),
        access_of(flags),
        disposition_of(flags),
        options,
    )?;
    if flags.contains(OFlags::NOFOLLOW) && !flags.contains(OFlags::PATH) && is_link(&fd)? {
        return Err(Errno::LOOP);
    }
    Ok(fd)
}

/// Opens an absolute path (a root), through std, which adds `\\?\` to paths too long for
/// `MAX_PATH`.
pub fn open(path: impl AsRef<Path>, flags: OFlags, _mode: Mode) -> Result<OwnedFd> {
    use std::os::windows::fs::OpenOptionsExt;
    use windows_sys::Win32::Storage::FileSystem::{
        FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT,
    };
    let mut custom = FILE_FLAG_BACKUP_SEMANTICS;
    if flags.contains(OFlags::NOFOLLOW) {
        custom |= FILE_FLAG_OPEN_REPARSE_POINT;
    }
    let file = std::fs::OpenOptions::new()
        .access_mode(access_of(flags) | SYNCHRONIZE)
        .share_mode(SHARE_ALL)
        .custom_flags(custom)
        .open(path.as_ref())
        .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
    let fd = OwnedFd::from_file(file);
    if flags.contains(OFlags::DIRECTORY)
        && FileType::from_raw_mode(fstat(&fd)?.st_mode) != FileType::Directory
    {
        return Err(Errno::NOTDIR);
    }
    Ok(fd)
}

/// The object itself (`openat(fd, "")`), reopened with `access`.
pub(crate) fn reopen(fd: BorrowedFd<'_>, access: u32) -> Result<OwnedFd> {
    nt_open(fd.raw(), &[], access, FILE_OPEN, 0)
}

// ---- metadata ------------------------------------------------------------------------

/// 100 ns ticks since 1601 to nanoseconds since 1970.
fn unix_ns(ticks: i64) -> i128 {
    (i128::from(ticks) - 116_444_736_000_000_000) * 100
}

fn split_ns(ns: i128) -> (i64, i64) {
    let sec = ns.div_euclid(1_000_000_000);
    (
        i64::try_from(sec).unwrap_or(i64::MAX),
        ns.rem_euclid(1_000_000_000) as i64,
    )
}

fn ticks(t: Timespec) -> i64 {
    let ns = i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec);
    i64::try_from(ns / 100 + 116_444_736_000_000_000).unwrap_or(0)
}

pub fn fstat(fd: impl AsFd) -> Result<Stat> {
    let fd = fd.as_fd();
    let mut info = BY_HANDLE_FILE_INFORMATION::default();
    // SAFETY: `info` is the structure the call fills.
    if unsafe { GetFileInformationByHandle(fd.raw(), &mut info) } == 0 {
        return Err(Errno::last());
    }
    let mut basic = FILE_BASIC_INFO::default();
    get_info(fd, FileBasicInfo, &mut basic)?;
    let attrs = info.dwFileAttributes;
    let link = attrs & FILE_ATTRIBUTE_REPARSE_POINT != 0 && {
        let mut tag = FILE_ATTRIBUTE_TAG_INFO::default();
        get_info(fd, FileAttributeTagInfo, &mut tag)?;
        tag.ReparseTag & 0x2000_0000 != 0
    };
    let write = if attrs & FILE_ATTRIBUTE_READONLY != 0 {
        0
    } else {
        0o200
    };
    let st_mode = match (link, attrs & FILE_ATTRIBUTE_DIRECTORY != 0) {
        (true, _) => 0o555 | write,
        (false, true) => S_IFDIR | 0o755,
        (false, false) => S_IFREG | 0o444 | write,
    };
    let (st_mtime, st_mtime_nsec) = split_ns(unix_ns(basic.LastWriteTime));
    let (st_ctime, st_ctime_nsec) = split_ns(unix_ns(basic.ChangeTime));
    let (st_atime, st_atime_nsec) = split_ns(unix_ns(basic.LastAccessTime));
    let size = (i64::from(info.nFileSizeHigh) << 32) | i64::from(info.nFileSizeLow);
    Ok(Stat {
        st_dev: u64::from(info.dwVolumeSerialNumber),
        st_ino: (u64::from(info.nFileIndexHigh) << 32) | u64::from(info.nFileIndexLow),
        st_mode,
        st_nlink: u64::from(info.nNumberOfLinks),
        st_uid: 0,
        st_gid: 0,
        st_size: size,
        st_blocks: (size + 511) / 512,
        st_atime,
        st_atime_nsec,
        st_mtime,
        st_mtime_nsec,
        st_ctime,
        st_ctime_nsec,
        st_attrs: attrs,
    })
}

pub fn statat(dir: impl AsFd, path: impl AsRef<[u8]>, _flags: AtFlags) -> Result<Stat> {
    let fd = open_beneath(
        dir.as_fd(),
        path.as_ref(),
        FILE_READ_ATTRIBUTES,
        FILE_OPEN,
        0,
    )?;
    fstat(&fd)
}

fn set_basic(fd: BorrowedFd<'_>, basic: &FILE_BASIC_INFO) -> Result<()> {
    // SAFETY: `basic` is the structure FileBasicInfo takes.
    let ok = unsafe {
        SetFileInformationByHandle(
            fd.raw(),
            FileBasicInfo,
            (basic as *const FILE_BASIC_INFO).cast(),
            size_of::<FILE_BASIC_INFO>() as u32,
        )
    };
    if ok == 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Sets the times of an open object (0 in a field: left as it is). The handle needs
/// `FILE_WRITE_ATTRIBUTES`.
pub fn futimens(fd: impl AsFd, times: &Timestamps) -> Result<()> {
    let time = |t: Timespec| if t.tv_nsec == UTIME_OMIT { 0 } else { ticks(t) };
    let basic = FILE_BASIC_INFO {
        LastAccessTime: time(times.last_access),
        LastWriteTime: time(times.last_modification),
        ..FILE_BASIC_INFO::default()
    };
    set_basic(fd.as_fd(), &basic)
}

pub fn utimensat(
    dir: impl AsFd,
    path: impl AsRef<[u8]>,
    times: &Timestamps,
    _flags: AtFlags,
) -> Result<()> {
    let access = FILE_READ_ATTRIBUTES | FILE_WRITE_ATTRIBUTES;
    let fd = open_beneath(dir.as_fd(), path.as_ref(), access, FILE_OPEN, 0)?;
    futimens(&fd, times)
}

/// The read-only and hidden attributes for `mode` (see `sys::attrs::for_mode`).
pub(crate) fn set_attributes(fd: BorrowedFd<'_>, mode: u32) -> Result<()> {
    let fd = reopen(fd, FILE_READ_ATTRIBUTES | FILE_WRITE_ATTRIBUTES)?;
    let mut basic = FILE_BASIC_INFO::default();
    get_info(fd.as_fd(), FileBasicInfo, &mut basic)?;
    let attrs = crate::sys::attrs::for_mode(basic.FileAttributes, mode);
    if attrs == basic.FileAttributes {
        return Ok(());
    }
    let set = FILE_BASIC_INFO {
        FileAttributes: attrs,
        ..FILE_BASIC_INFO::default()
    };
    set_basic(fd.as_fd(), &set)
}

pub fn fsync(fd: impl AsFd) -> Result<()> {
    // SAFETY: a handle borrowed for the call.
    if unsafe { FlushFileBuffers(fd.as_fd().raw()) } != 0 {
        return Ok(());
    }
    match std::io::Error::last_os_error().raw_os_error() {
        // A folder, or a handle opened without write access: nothing of it to flush
        // (NTFS journals its metadata).
        Some(5 | 6) => Ok(()),
        _ => Err(Errno::last()),
    }
}

pub fn ftruncate(fd: impl AsFd, len: u64) -> Result<()> {
    with_file(fd.as_fd(), |f| f.set_len(len))
        .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))
}

pub fn seek(fd: impl AsFd, pos: SeekFrom) -> Result<u64> {
    use std::io::{Seek, SeekFrom as Std};
    let pos = match pos {
        SeekFrom::Start(n) => Std::Start(n),
        SeekFrom::End(n) => Std::End(n),
        SeekFrom::Current(n) => Std::Current(n),
        SeekFrom::Data(_) | SeekFrom::Hole(_) => return Err(Errno::INVAL),
    };
    with_file(fd.as_fd(), |mut f| f.seek(pos))
        .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))
}

// ---- names ---------------------------------------------------------------------------

pub fn mkdirat(dir: impl AsFd, path: impl AsRef<[u8]>, _mode: Mode) -> Result<()> {
    let access = FILE_LIST_DIRECTORY | FILE_READ_ATTRIBUTES;
    open_beneath(
        dir.as_fd(),
        path.as_ref(),
        access,
        FILE_CREATE,
        FILE_DIRECTORY_FILE,
    )
    .map(drop)
}

fn set_info<T>(
    fd: BorrowedFd<'_>,
    class: FILE_INFORMATION_CLASS,
    info: *const T,
    len: usize,
) -> Result<()> {
    let mut iosb = IO_STATUS_BLOCK::default();
    let len = u32::try_from(len).map_err(|_| Errno::NAMETOOLONG)?;
    // SAFETY: `info` points to `len` bytes laid out as `class` expects.
    let status = unsafe { NtSetInformationFile(fd.raw(), &mut iosb, info.cast(), len, class) };
    if status < 0 {
        return Err(status_errno(status));
    }
    Ok(())
}

/// Clears the read-only attribute of what `fd` opened (POSIX removes and replaces a file
/// whatever its mode).
fn clear_readonly(fd: BorrowedFd<'_>) -> Result<()> {
    set_attributes(fd, 0o200)
}

/// Another program's hold on a file (a sharing violation, `EBUSY`) is waited out for a
/// while (`sys::retry`) before it is returned.
pub fn unlinkat(dir: impl AsFd, path: impl AsRef<[u8]>, flags: AtFlags) -> Result<()> {
    let (dir, path) = (dir.as_fd(), path.as_ref());
    while_busy(&WINDOWS_WAITS, || unlink_once(dir, path, flags))
}

fn unlink_once(dir: BorrowedFd<'_>, path: &[u8], flags: AtFlags) -> Result<()> {
    let options = if flags.contains(AtFlags::REMOVEDIR) {
        FILE_DIRECTORY_FILE
    } else {
        FILE_NON_DIRECTORY_FILE
    };
    let access = DELETE | FILE_READ_ATTRIBUTES | FILE_WRITE_ATTRIBUTES;
    let fd = open_beneath(dir, path, access, FILE_OPEN, options)?;
    let info = FILE_DISPOSITION_INFORMATION { DeleteFile: true };
    let size = size_of::<FILE_DISPOSITION_INFORMATION>();
    match set_info(fd.as_fd(), FileDispositionInformation, &info, size) {
        Err(Errno::ACCESS) => {
            clear_readonly(fd.as_fd())?;
            set_info(fd.as_fd(), FileDispositionInformation, &info, size)
        }
        r => r,
    }
}

/// A `FILE_RENAME_INFORMATION` or `FILE_LINK_INFORMATION` (the same layout): a flag word,
/// the directory the new name is relative to, and the name.
fn name_info(replace: bool, root: HANDLE, name: &[u16]) -> Vec<u64> {
    let head = offset_of!(FILE_RENAME_INFORMATION, FileName);
    let bytes = head + name.len() * 2;
    let mut buf = vec![0u64; bytes.div_ceil(8) + 1];
    let info = buf.as_mut_ptr().cast::<FILE_RENAME_INFORMATION>();
    // SAFETY: `buf` is zeroed, 8-aligned and long enough for the header and the name.
    unsafe {
        (*info).Anonymous.ReplaceIfExists = replace;
        (*info).RootDirectory = root;
        (*info).FileNameLength = (name.len() * 2) as u32;
        let dst = buf.as_mut_ptr().cast::<u8>().add(head).cast::<u16>();
        std::ptr::copy_nonoverlapping(name.as_ptr(), dst, name.len());
    }
    buf
}

/// A rename or link; another program's hold on either file (`EBUSY`) is waited out for a
/// while (`sys::retry`) before it is returned.
fn rename_or_link(
    old_dir: BorrowedFd<'_>,
    old: &[u8],
    new_dir: BorrowedFd<'_>,
    new: &[u8],
    replace: bool,
    link: bool,
) -> Result<()> {
    while_busy(&WINDOWS_WAITS, || {
        rename_or_link_once(old_dir, old, new_dir, new, replace, link)
    })
}

fn rename_or_link_once(
    old_dir: BorrowedFd<'_>,
    old: &[u8],
    new_dir: BorrowedFd<'_>,
    new: &[u8],
    replace: bool,
    link: bool,
) -> Result<()> {
    let access = if link {
        FILE_READ_ATTRIBUTES
    } else {
        DELETE | FILE_READ_ATTRIBUTES
    };
    let fd = open_beneath(old_dir, old, access, FILE_OPEN, 0)?;
    let (parent, last) = walk(new_dir, new)?;
    let at = parent.as_ref().map_or(new_dir, |p| p.as_fd());
    let name = component(last, true)?;
    let info = name_info(replace, at.raw(), &name);
    let len = offset_of!(FILE_RENAME_INFORMATION, FileName) + name.len() * 2;
    let _ = size_of::<FILE_LINK_INFORMATION>();
    let class = if link {
        FileLinkInformation
    } else {
        FileRenameInformation
    };
    match set_info(fd.as_fd(), class, info.as_ptr(), len) {
        // A read-only file in the way (POSIX replaces it all the same), or one another
        // program holds open: then opening it for deletion is a sharing violation (EBUSY).
        Err(Errno::ACCESS) if replace && !link => {
            let flags = DELETE | FILE_READ_ATTRIBUTES | FILE_WRITE_ATTRIBUTES;
            let target = open_in(at, last, flags, FILE_OPEN, FILE_NON_DIRECTORY_FILE)?;
            clear_readonly(target.as_fd())?;
            drop(target);
            set_info(fd.as_fd(), class, info.as_ptr(), len)
        }
        r => r,
    }
}

pub fn renameat(
    old_dir: impl AsFd,
    old: impl AsRef<[u8]>,
    new_dir: impl AsFd,
    new: impl AsRef<[u8]>,
) -> Result<()> {
    rename_or_link(
        old_dir.as_fd(),
        old.as_ref(),
        new_dir.as_fd(),
        new.as_ref(),
        true,
        false,
    )
}

/// `NOREPLACE` is a rename that does not replace; `EXCHANGE` does not exist here
/// (`EINVAL`, and the caller keeps the old version before renaming over it).
pub fn renameat_with(
    old_dir: impl AsFd,
    old: impl AsRef<[u8]>,
    new_dir: impl AsFd,
    new: impl AsRef<[u8]>,
    flags: RenameFlags,
) -> Result<()> {
    if flags.contains(RenameFlags::EXCHANGE) {
        return Err(Errno::INVAL);
    }
    let replace = !flags.contains(RenameFlags::NOREPLACE);
    rename_or_link(
        old_dir.as_fd(),
        old.as_ref(),
        new_dir.as_fd(),
        new.as_ref(),
        replace,
        false,
    )
}

pub fn linkat(
    old_dir: impl AsFd,
    old: impl AsRef<[u8]>,
    new_dir: impl AsFd,
    new: impl AsRef<[u8]>,
    _flags: AtFlags,
) -> Result<()> {
    rename_or_link(
        old_dir.as_fd(),
        old.as_ref(),
        new_dir.as_fd(),
        new.as_ref(),
        false,
        true,
    )
}

/// Symbolic links need a privilege most users lack: not made yet (reported per file).
pub fn symlinkat(
    _target: impl AsRef<[u8]>,
    _dir: impl AsFd,
    _path: impl AsRef<[u8]>,
) -> Result<()> {
    Err(Errno::OPNOTSUPP)
}

/// Never asked: a link is of type `Unknown` here, not `Symlink`.
pub fn readlinkat(_dir: impl AsFd, _path: impl AsRef<[u8]>, _reuse: Vec<u8>) -> Result<CString> {
    Err(Errno::OPNOTSUPP)
}

// ---- directories ---------------------------------------------------------------------

/// A directory's entries, read all at once (`GetFileInformationByHandleEx`).
pub struct Dir(std::vec::IntoIter<DirEntry>);

pub struct DirEntry {
    name: CString,
    ftype: FileType,
    ino: u64,
}

impl DirEntry {
    pub fn file_name(&self) -> &std::ffi::CStr {
        &self.name
    }
    pub fn file_type(&self) -> FileType {
        self.ftype
    }
    pub fn ino(&self) -> u64 {
        self.ino
    }
}

impl Iterator for Dir {
    type Item = Result<DirEntry>;
    fn next(&mut self) -> Option<Result<DirEntry>> {
        self.0.next().map(Ok)
    }
}

impl Dir {
    pub fn read_from(fd: impl AsFd) -> Result<Dir> {
        const ERROR_NO_MORE_FILES: i32 = 18;
        let fd = fd.as_fd();
        let mut out = Vec::new();
        let mut buf = vec![0u64; 8192];
        let mut class = FileIdBothDirectoryRestartInfo;
        loop {
            // SAFETY: `buf` is 64 KiB, 8-aligned.
            let ok = unsafe {
                GetFileInformationByHandleEx(
                    fd.raw(),
                    class,
                    buf.as_mut_ptr().cast(),
                    (buf.len() * 8) as u32,
                )
            };
            if ok == 0 {
                return match std::io::Error::last_os_error().raw_os_error() {
                    Some(ERROR_NO_MORE_FILES) => Ok(Dir(out.into_iter())),
                    _ => Err(Errno::last()),
                };
            }
            class = FileIdBothDirectoryInfo;
            parse_entries(&buf, &mut out);
        }
    }
}

fn parse_entries(buf: &[u64], out: &mut Vec<DirEntry>) {
    let base = buf.as_ptr().cast::<u8>();
    let total = buf.len() * 8;
    let head = offset_of!(FILE_ID_BOTH_DIR_INFO, FileName);
    let mut at = 0usize;
    while at + head <= total {
        // SAFETY: entries lie within `buf`, each starting 8-aligned at `at`.
        let info =
            unsafe { std::ptr::read_unaligned(base.add(at).cast::<FILE_ID_BOTH_DIR_INFO>()) };
        let len = info.FileNameLength as usize / 2;
        if at + head + len * 2 > total {
            break;
        }
        // SAFETY: the name's `len` UTF-16 units follow the header, within `buf`.
        let units: Vec<u16> = (0..len)
            .map(|i| unsafe { std::ptr::read_unaligned(base.add(at + head + i * 2).cast::<u16>()) })
            .collect();
        let name = String::from_utf16_lossy(&units);
        let ftype = if info.FileAttributes & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
            FileType::Unknown
        } else if info.FileAttributes & FILE_ATTRIBUTE_DIRECTORY != 0 {
            FileType::Directory
        } else {
            FileType::RegularFile
        };
        if let Ok(name) = CString::new(name) {
            out.push(DirEntry {
                name,
                ftype,
                ino: info.FileId as u64,
            });
        }
        match info.NextEntryOffset {
            0 => break,
            n => at += n as usize,
        }
    }
}

// ---- extended attributes: none here --------------------------------------------------

pub fn listxattr(_path: &Path, _buf: &mut [u8]) -> Result<usize> {
    Err(Errno::OPNOTSUPP)
}
pub fn llistxattr(_path: &Path, _buf: &mut [u8]) -> Result<usize> {
    Err(Errno::OPNOTSUPP)
}
pub fn listxattr_query(_path: &Path) -> Result<usize> {
    Err(Errno::OPNOTSUPP)
}
pub fn llistxattr_query(_path: &Path) -> Result<usize> {
    Err(Errno::OPNOTSUPP)
}
pub fn getxattr(_path: &Path, _name: &[u8], _buf: &mut [u8]) -> Result<usize> {
    Err(Errno::OPNOTSUPP)
}
pub fn lgetxattr(_path: &Path, _name: &[u8], _buf: &mut [u8]) -> Result<usize> {
    Err(Errno::OPNOTSUPP)
}
pub fn getxattr_query(_path: &Path, _name: &[u8]) -> Result<usize> {
    Err(Errno::OPNOTSUPP)
}
pub fn lgetxattr_query(_path: &Path, _name: &[u8]) -> Result<usize> {
    Err(Errno::OPNOTSUPP)
}
pub fn setxattr(_path: &Path, _name: &[u8], _value: &[u8], _flags: XattrFlags) -> Result<()> {
    Err(Errno::OPNOTSUPP)
}
pub fn lsetxattr(_path: &Path, _name: &[u8], _value: &[u8], _flags: XattrFlags) -> Result<()> {
    Err(Errno::OPNOTSUPP)
}
pub fn removexattr(_path: &Path, _name: &[u8]) -> Result<()> {
    Err(Errno::OPNOTSUPP)
}
pub fn lremovexattr(_path: &Path, _name: &[u8]) -> Result<()> {
    Err(Errno::OPNOTSUPP)
}
pub fn flistxattr(_fd: impl AsFd, _buf: &mut [u8]) -> Result<usize> {
    Err(Errno::OPNOTSUPP)
}
pub fn flistxattr_query(_fd: impl AsFd) -> Result<usize> {
    Err(Errno::OPNOTSUPP)
}
pub fn fgetxattr(_fd: impl AsFd, _name: &[u8], _buf: &mut [u8]) -> Result<usize> {
    Err(Errno::OPNOTSUPP)
}
pub fn fgetxattr_query(_fd: impl AsFd, _name: &[u8]) -> Result<usize> {
    Err(Errno::OPNOTSUPP)
}
pub fn fsetxattr(_fd: impl AsFd, _name: &[u8], _value: &[u8], _flags: XattrFlags) -> Result<()> {
    Err(Errno::OPNOTSUPP)
}
pub fn fremovexattr(_fd: impl AsFd, _name: &[u8]) -> Result<()> {
    Err(Errno::OPNOTSUPP)
}
