//! Handles in the shape of Unix fds: an owned handle (closed on drop), a borrowed one and
//! the trait that lends one, so that the code above takes `impl AsFd` everywhere.

use std::fs::File;
use std::marker::PhantomData;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};

use windows_sys::Win32::Foundation::HANDLE;

/// An open file or directory handle (a `File`, for std's reads, writes and seeks).
#[derive(Debug)]
pub struct OwnedFd(File);

impl OwnedFd {
    /// Takes ownership of `h`, a handle just opened by this process.
    ///
    /// # Safety
    /// `h` must be a valid handle that nothing else closes.
    pub(crate) unsafe fn from_raw(h: HANDLE) -> OwnedFd {
        OwnedFd(File::from(OwnedHandle::from_raw_handle(h)))
    }

    pub(crate) fn from_file(f: File) -> OwnedFd {
        OwnedFd(f)
    }
}

impl From<OwnedFd> for File {
    fn from(fd: OwnedFd) -> File {
        fd.0
    }
}

/// A handle lent for the duration of `'a`; `CWD` is the null handle (a path from the
/// root of the NT namespace).
#[derive(Clone, Copy, Debug)]
pub struct BorrowedFd<'a> {
    handle: HANDLE,
    _life: PhantomData<&'a OwnedFd>,
}

// A handle is an index into the process's handle table, usable from any thread.
unsafe impl Send for BorrowedFd<'_> {}
unsafe impl Sync for BorrowedFd<'_> {}

impl BorrowedFd<'_> {
    pub(crate) const NULL: BorrowedFd<'static> = BorrowedFd {
        handle: std::ptr::null_mut(),
        _life: PhantomData,
    };

    pub(crate) fn raw(self) -> HANDLE {
        self.handle
    }
}

pub trait AsFd {
    fn as_fd(&self) -> BorrowedFd<'_>;
}

impl AsFd for OwnedFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        BorrowedFd {
            handle: self.0.as_raw_handle(),
            _life: PhantomData,
        }
    }
}

impl AsFd for BorrowedFd<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        *self
    }
}

impl<T: AsFd + ?Sized> AsFd for &T {
    fn as_fd(&self) -> BorrowedFd<'_> {
        (**self).as_fd()
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        BorrowedFd {
            handle: self.as_raw_handle(),
            _life: PhantomData,
        }
    }
}
