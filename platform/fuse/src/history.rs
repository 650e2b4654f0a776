//! Pre-images: what a request through the mount is about to destroy, kept first in the
//! source's `.tandem/history/` (DESIGN.md "History"). Listing, restoring and pruning them
//! is the engine's; this module only takes them.
//!
//! Taken on the request's own thread, before the destructive call, through the source
//! directory fd, with the cost bounded:
//! - a name about to be unlinked or renamed over is hard-linked into the history: no data
//!   is copied. The link and the unlink that follows are metadata of one file system,
//!   journaled in order: a crash that keeps the unlink keeps the link.
//! - content about to be overwritten or truncated is cloned (FICLONE: btrfs, XFS; no data
//!   copied), else copied, once per open handle (the caller's part); the copy is written
//!   under a temporary name, fsynced, renamed into place and its folder fsynced before
//!   the request goes on.
//!
//! Empty files and files larger than the limit are not copied (the latter reported as
//! not kept). A version that cannot be kept never fails the request: it is reported as
//! not kept (`NotKept`), never the other way round.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use tandem_core::{NotKept, RelPath, VersionNames};

use crate::lock;

/// What was kept of a file about to be changed: its size, and its version's name in the
/// history (or why there is none).
pub(crate) type Taken = (u64, Result<String, NotKept>);

pub(crate) struct History {
    root: Arc<OwnedFd>,
    /// `.tandem/history`, opened on first use; opened again when deleted by hand.
    dir: Mutex<Option<Arc<OwnedFd>>>,
    max_file: u64,
    /// `<time in ns>.<n>~<path, escaped>` (`tandem_core::version_name`): unique, in time
    /// order, readable by hand, and naming its path should a crash leave it unrecorded.
    names: VersionNames,
}

/// Whether `path` is tandem's own (`.tandem/...`): never kept (the rule every backend
/// shares, `tandem_core::keep_rule`).
pub(crate) use tandem_core::is_own_path as is_own;

impl History {
    pub(crate) fn new(root: Arc<OwnedFd>, max_file: u64) -> History {
        History {
            root,
            dir: Mutex::new(None),
            max_file,
            names: VersionNames::default(),
        }
    }

    /// Keeps the content of the regular file open as `file` (readable) before it is
    /// overwritten or truncated. `None`: nothing to keep (empty, or not a regular file).
    pub(crate) fn copy(&self, file: BorrowedFd<'_>, path: &RelPath) -> Option<Taken> {
        let st = rustix::fs::fstat(file).ok()?;
        let size = st.st_size.max(0) as u64;
        let regular = FileType::from_raw_mode(st.st_mode) == FileType::RegularFile;
        if let Err(e) = tandem_core::keep_rule(path, regular, size, false, self.max_file)? {
            return Some((size, Err(e)));
        }
        let name = self.names.next(path);
        let r = self.in_dir(|dir| copy_into(dir, file, &name));
        Some((size, self.outcome(r, name, path)))
    }

    /// Keeps the file named `name` in `dir` by a hard link before it is unlinked or renamed
    /// over; by a copy when it is `open` through the mount (a link would show in the link
    /// count its holders see: 1 instead of 0 once unlinked). `None`: nothing to keep (no
    /// such name, not a regular file, empty, or another name still holds its content).
    pub(crate) fn link(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        path: &RelPath,
        open: bool,
    ) -> Option<Taken> {
        let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
        let size = st.st_size.max(0) as u64;
        let regular = FileType::from_raw_mode(st.st_mode) == FileType::RegularFile;
        let shared = st.st_nlink > 1;
        if let Err(e) = tandem_core::keep_rule(path, regular, size, shared, self.max_file)? {
            return Some((size, Err(e)));
        }
        let version = self.names.next(path);
        let r = self.in_dir(|hist| {
            let linked = if open {
                Err(Errno::PERM)
            } else {
                rustix::fs::linkat(dir, name, hist, version.as_str(), AtFlags::empty())
            };
            match linked {
                // Open, another file system below the source, or a link refused
                // (protected hard links): copied instead.
                Err(Errno::XDEV | Errno::PERM | Errno::MLINK) => {
                    let file = rustix::fs::openat(
                        dir,
                        name,
                        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?;
                    copy_into(hist, file.as_fd(), &version)
                }
                r => r,
            }
        });
        Some((size, self.outcome(r, version, path)))
    }

    /// Removes a version kept for a request that then failed (nothing was destroyed).
    pub(crate) fn discard(&self, version: &str) {
        if let Some(dir) = lock(&self.dir).clone() {
            let _ = rustix::fs::unlinkat(dir.as_fd(), version, AtFlags::empty());
        }
    }

    fn outcome(
        &self,
        r: rustix::io::Result<()>,
        version: String,
        path: &RelPath,
    ) -> Result<String, NotKept> {
        match r {
            Ok(()) => Ok(version),
            Err(Errno::NOSPC | Errno::DQUOT) => Err(NotKept::NoSpace),
            Err(e) => {
                tracing::warn!("history: could not keep the old content of {path}: {e}");
                Err(NotKept::Failed)
            }
        }
    }

    /// Runs `f` in the history folder, made if missing; once more in a fresh one when the
    /// folder went (deleted by hand).
    fn in_dir(
        &self,
        f: impl Fn(BorrowedFd<'_>) -> rustix::io::Result<()>,
    ) -> rustix::io::Result<()> {
        let dir = self.dir()?;
        match f(dir.as_fd()) {
            Err(Errno::NOENT) => {
                *lock(&self.dir) = None;
                f(self.dir()?.as_fd())
            }
            r => r,
        }
    }

    fn dir(&self) -> rustix::io::Result<Arc<OwnedFd>> {
        let mut slot = lock(&self.dir);
        if let Some(d) = slot.as_ref() {
            return Ok(Arc::clone(d));
        }
        let own = sub_dir(self.root.as_fd(), ".tandem", Mode::from_raw_mode(0o755))?;
        let d = Arc::new(sub_dir(own.as_fd(), "history", Mode::from_raw_mode(0o700))?);
        *slot = Some(Arc::clone(&d));
        Ok(d)
    }
}

/// The folder `name` in `parent`, made if missing; never through a symlink.
fn sub_dir(parent: BorrowedFd<'_>, name: &str, mode: Mode) -> rustix::io::Result<OwnedFd> {
    match rustix::fs::mkdirat(parent, name, mode) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(e),
    }
    rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Copies `src` to `dir/name` durably: a temporary name, a clone or a copy, fsync, rename,
/// fsync of the folder.
fn copy_into(dir: BorrowedFd<'_>, src: BorrowedFd<'_>, name: &str) -> rustix::io::Result<()> {
    let tmp = format!(".tmp-{name}");
    let out = rustix::fs::openat(
        dir,
        tmp.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    let r = (|| {
        if crate::sys::clone_file(out.as_fd(), src).is_err() {
            copy_data(src, out.as_fd())?;
        }
        rustix::fs::fsync(&out)?;
        rustix::fs::renameat(dir, tmp.as_str(), dir, name)?;
        rustix::fs::fsync(dir)
    })();
    if r.is_err() {
        let _ = rustix::fs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
    }
    r
}

/// Copies all of `src` from its start: `copy_file_range` (in the kernel, shared extents
/// where the file system can), else reads and writes.
fn copy_data(src: BorrowedFd<'_>, out: BorrowedFd<'_>) -> rustix::io::Result<()> {
    let (mut off_in, mut off_out) = (0u64, 0u64);
    loop {
        match crate::sys::copy_file_range(src, &mut off_in, out, &mut off_out, 1 << 30) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(Errno::INTR) => {}
            Err(Errno::XDEV | Errno::NOSYS | Errno::INVAL | Errno::OPNOTSUPP) if off_in == 0 => {
                return copy_by_reading(src, out)
            }
            Err(e) => return Err(e),
        }
    }
}

fn copy_by_reading(src: BorrowedFd<'_>, out: BorrowedFd<'_>) -> rustix::io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0u64;
    loop {
        let n = match rustix::io::pread(src, &mut buf, off) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        };
        let mut done = 0;
        while done < n {
            match rustix::io::pwrite(out, &buf[done..n], off + done as u64) {
                Ok(w) => done += w,
                Err(Errno::INTR) => {}
                Err(e) => return Err(e),
            }
        }
        off += n as u64;
    }
}
