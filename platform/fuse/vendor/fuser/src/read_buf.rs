use std::io;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use crate::session::MAX_WRITE_SIZE;

/// Size of the buffer for reading a request from the kernel. Since the kernel may send
/// up to `MAX_WRITE_SIZE` bytes in a write request, we use that value plus some extra space.
const BUFFER_SIZE: usize = MAX_WRITE_SIZE + 4096;

/// The buffer a request is read into: as big as the largest request (the kernel refuses a
/// smaller read), taking memory only for what requests have written into it.
#[derive(Debug)]
pub(crate) struct FuseReadBuf {
    buffer: PageBuf,
}

impl FuseReadBuf {
    /// Creates a new `FuseReadBuf` with the default buffer size.
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Self {
            buffer: PageBuf::new(BUFFER_SIZE)?,
        })
    }

    /// The buffer, page aligned (so aligned for `fuse_in_header`).
    pub(crate) fn as_mut(&mut self) -> &mut [u8] {
        &mut self.buffer
    }
}

/// A zeroed buffer mapped straight from the kernel (anonymous, private): a page takes
/// memory only once something is written to it, and all of it goes back on drop.
///
/// Not a `vec![0; n]`: glibc serves a calloc that size from a thread's arena once a large
/// free has raised its mmap threshold (it does so up to 32 MiB), and clears it there with
/// memset, so every byte becomes resident. A mount's four request threads then held
/// 4 x 16 MiB from the start, and each io_uring entry 16 MiB more, for requests that are
/// a few hundred bytes long unless they carry a write.
#[derive(Debug)]
pub struct PageBuf {
    ptr: NonNull<u8>,
    len: usize,
}

// The mapping is owned by the buffer alone, like a Vec's memory.
unsafe impl Send for PageBuf {}
unsafe impl Sync for PageBuf {}

impl PageBuf {
    /// Maps `len` zeroed bytes (`len` > 0).
    pub fn new(len: usize) -> io::Result<PageBuf> {
        // SAFETY: a fresh anonymous private mapping, at an address the kernel picks.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANON,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok(PageBuf { ptr, len })
    }
}

impl Deref for PageBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `len` mapped, readable bytes, zero until written, owned by `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for PageBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for PageBuf {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; no slice of it outlives `self`.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

