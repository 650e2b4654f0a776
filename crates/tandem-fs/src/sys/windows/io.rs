//! `rustix::io`'s names on Windows: `Errno` (POSIX numbers, Linux's, as the code above
//! matches on them) with a two-way mapping to Windows error codes, and positioned reads
//! and writes on handles.

use std::fmt;
use std::io;
use std::os::windows::fs::FileExt;

use super::fd::{AsFd, OwnedFd};

pub type Result<T> = std::result::Result<T, Errno>;

/// A POSIX error number (Linux's numbering).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(i32);

/// (errno, the Windows error it becomes, the Windows errors that become it).
const TABLE: &[(Errno, u32, &[u32])] = &[
    (Errno::PERM, 1314, &[1314]),            // ERROR_PRIVILEGE_NOT_HELD
    (Errno::NOENT, 2, &[2, 3, 15, 161, 53]), // FILE_NOT_FOUND, PATH_NOT_FOUND, ...
    (Errno::INTR, 995, &[995]),              // OPERATION_ABORTED
    (Errno::IO, 1117, &[1117, 23, 31]),      // IO_DEVICE, CRC, GEN_FAILURE
    (Errno::AGAIN, 1237, &[1237]),           // RETRY
    (Errno::ACCESS, 5, &[5, 1920]),          // ACCESS_DENIED, CANT_ACCESS_FILE
    (Errno::BUSY, 32, &[32, 33, 170]),       // SHARING_VIOLATION, LOCK_VIOLATION, BUSY
    (Errno::EXIST, 183, &[183, 80]),         // ALREADY_EXISTS, FILE_EXISTS
    (Errno::XDEV, 17, &[17]),                // NOT_SAME_DEVICE
    (Errno::NODEV, 55, &[55, 21]),           // DEV_NOT_EXIST, NOT_READY
    (Errno::NOTDIR, 267, &[267]),            // DIRECTORY (the name is not one)
    (Errno::ISDIR, 336, &[336]),             // DIRECTORY_NOT_SUPPORTED
    (Errno::INVAL, 123, &[123, 87]),         // INVALID_NAME, INVALID_PARAMETER
    (Errno::MLINK, 1142, &[1142]),           // TOO_MANY_LINKS
    (Errno::NOSPC, 112, &[112, 39]),         // DISK_FULL, HANDLE_DISK_FULL
    (Errno::ROFS, 19, &[19]),                // WRITE_PROTECT
    (Errno::NAMETOOLONG, 206, &[206]),       // FILENAME_EXCED_RANGE
    (Errno::NOSYS, 120, &[120]),             // CALL_NOT_IMPLEMENTED
    (Errno::NOTEMPTY, 145, &[145]),          // DIR_NOT_EMPTY
    (Errno::LOOP, 681, &[681, 4390]),        // STOPPED_ON_SYMLINK, NOT_A_REPARSE_POINT
    (Errno::ILSEQ, 1113, &[1113]),           // NO_UNICODE_TRANSLATION
    (Errno::OPNOTSUPP, 50, &[50, 1]),        // NOT_SUPPORTED, INVALID_FUNCTION
    (Errno::DQUOT, 1295, &[1295]),           // DISK_QUOTA_EXCEEDED
];

impl Errno {
    pub const PERM: Errno = Errno(1);
    pub const NOENT: Errno = Errno(2);
    pub const INTR: Errno = Errno(4);
    pub const IO: Errno = Errno(5);
    pub const NXIO: Errno = Errno(6);
    pub const TOOBIG: Errno = Errno(7);
    pub const AGAIN: Errno = Errno(11);
    pub const ACCESS: Errno = Errno(13);
    pub const BUSY: Errno = Errno(16);
    pub const EXIST: Errno = Errno(17);
    pub const XDEV: Errno = Errno(18);
    pub const NODEV: Errno = Errno(19);
    pub const NOTDIR: Errno = Errno(20);
    pub const ISDIR: Errno = Errno(21);
    pub const INVAL: Errno = Errno(22);
    pub const NOSPC: Errno = Errno(28);
    pub const ROFS: Errno = Errno(30);
    pub const MLINK: Errno = Errno(31);
    pub const RANGE: Errno = Errno(34);
    pub const NAMETOOLONG: Errno = Errno(36);
    pub const NOSYS: Errno = Errno(38);
    pub const NOTEMPTY: Errno = Errno(39);
    pub const LOOP: Errno = Errno(40);
    pub const NODATA: Errno = Errno(61);
    pub const ILSEQ: Errno = Errno(84);
    pub const OPNOTSUPP: Errno = Errno(95);
    pub const NOTSUP: Errno = Errno(95);
    pub const DQUOT: Errno = Errno(122);

    pub const fn raw_os_error(self) -> i32 {
        self.0
    }

    pub const fn from_raw_os_error(raw: i32) -> Errno {
        Errno(raw)
    }

    /// The errno for a Windows error code (EIO for one without a counterpart).
    pub fn from_windows(code: u32) -> Errno {
        TABLE
            .iter()
            .find(|(_, _, from)| from.contains(&code))
            .map_or(Errno::IO, |(e, _, _)| *e)
    }

    /// The Windows error code this errno is shown as (its message comes from Windows).
    pub fn windows_code(self) -> u32 {
        TABLE
            .iter()
            .find(|(e, _, _)| *e == self)
            .map_or(31, |(_, code, _)| *code) // ERROR_GEN_FAILURE
    }

    /// The errno of an `io::Error` made from a Windows error code.
    pub fn from_io_error(e: &io::Error) -> Option<Errno> {
        let code = e.raw_os_error()?;
        Some(Errno::from_windows(u32::try_from(code).ok()?))
    }

    /// The last Windows error of this thread.
    pub(crate) fn last() -> Errno {
        Errno::from_io_error(&io::Error::last_os_error()).unwrap_or(Errno::IO)
    }

    pub fn kind(self) -> io::ErrorKind {
        io::Error::from(self).kind()
    }
}

impl From<Errno> for io::Error {
    fn from(e: Errno) -> io::Error {
        // Windows error codes are below i32::MAX.
        io::Error::from_raw_os_error(e.windows_code() as i32)
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Errno({}: {})", self.0, io::Error::from(*self))
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        io::Error::from(*self).fmt(f)
    }
}

impl std::error::Error for Errno {}

fn errno(e: io::Error) -> Errno {
    Errno::from_io_error(&e).unwrap_or(Errno::IO)
}

pub fn pread(fd: impl AsFd, buf: &mut [u8], at: u64) -> Result<usize> {
    let fd = fd.as_fd();
    with_file(fd, |f| f.seek_read(buf, at)).map_err(errno)
}

pub fn pwrite(fd: impl AsFd, buf: &[u8], at: u64) -> Result<usize> {
    let fd = fd.as_fd();
    with_file(fd, |f| f.seek_write(buf, at)).map_err(errno)
}

pub fn write(fd: impl AsFd, buf: &[u8]) -> Result<usize> {
    use std::io::Write;
    let fd = fd.as_fd();
    with_file(fd, |mut f| f.write(buf)).map_err(errno)
}

pub fn dup(fd: impl AsFd) -> Result<OwnedFd> {
    let fd = fd.as_fd();
    with_file(fd, |f| f.try_clone())
        .map(OwnedFd::from_file)
        .map_err(errno)
}

pub fn fcntl_dupfd_cloexec(fd: impl AsFd, _min: i32) -> Result<OwnedFd> {
    dup(fd)
}

/// Runs `f` on the borrowed handle seen as a `File` (not closed afterwards).
pub(crate) fn with_file<T>(
    fd: super::fd::BorrowedFd<'_>,
    f: impl FnOnce(&std::fs::File) -> io::Result<T>,
) -> io::Result<T> {
    use std::os::windows::io::FromRawHandle;
    // SAFETY: the handle stays open for the borrow; ManuallyDrop keeps it from being closed.
    let file = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_handle(fd.raw()) });
    f(&file)
}
