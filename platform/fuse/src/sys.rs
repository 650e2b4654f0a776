//! The few Linux calls rustix does not wrap: file handles, per-thread credentials and
//! umask. Every `unsafe` block of the crate lives here.
//!
//! All of them act on the calling thread only (fsuid/fsgid and, after `unshare(CLONE_FS)`,
//! the umask are per-thread on Linux), which is what lets one request thread act as its
//! caller while the others go on as the daemon.

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

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
