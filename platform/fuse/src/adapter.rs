//! The `fuser::Filesystem` adapter: unpacks each request, calls `PassthroughFs`, replies.
//!
//! Nothing here decides anything about files. It owns only what is FUSE-specific: the
//! init negotiation, cache timeouts, negative entries, and the kernel passthrough backing
//! ids. A handler never panics and never unwraps: a panic on a request thread would hang
//! every program using the mount (STYLE.md point 5).
//!
//! Kernel passthrough (Linux >= 6.9, CAP_SYS_ADMIN): an open regular file is backed by the
//! daemon's fd, so reads, writes and mmap go straight to the underlying file without a
//! round trip through the daemon. The kernel insists that all passthrough opens of one
//! inode share one backing id, so ids are kept per inode (weakly) and per open handle
//! (strongly, until release). When registering a backing fd fails, passthrough is turned
//! off for good and files are served through the daemon instead.
//!
//! Locks: POSIX and flock locks are left to the kernel (FUSE_POSIX_LOCKS and
//! FUSE_FLOCK_LOCKS are not negotiated), which then arbitrates them among all programs
//! using the mount, exactly as on a local filesystem.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, BackingId, BsdFileFlags, CopyFileRangeFlags, Errno, FileHandle, FileType,
    Filesystem, FopenFlags, Generation, INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty,
    ReplyEntry, ReplyLock, ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request,
    TimeOrNow, WriteFlags,
};

use crate::error::FsError;
use crate::lock;
use crate::passthrough::{bare_attr, Ctx, Opened, PassthroughFs, SetAttr, Xattr};
use crate::sys;

/// Entry and attribute timeout. Long is safe: everything that changes the tree without
/// going through the mount is followed by `Mount::invalidate` (DESIGN.md "The mount").
const TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// State the mount handle reads: was passthrough negotiated, and did it keep working.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) passthrough_negotiated: AtomicBool,
    pub(crate) passthrough_refused: AtomicBool,
    /// The kernel can do without OPENDIR/RELEASEDIR (Linux 5.1+): directories are then
    /// listed statelessly and their listings cached by default.
    pub(crate) no_opendir: AtomicBool,
    /// `FUSE_HANDLE_KILLPRIV_V2` was negotiated (see `FuseFs::init`).
    pub(crate) killpriv_v2: AtomicBool,
    /// GETXATTR requests served (diagnostics: the kernel asks for `security.capability`
    /// before writes).
    pub(crate) getxattrs: AtomicU64,
    /// FLUSH requests served (diagnostics: none come for files on a local disk, see
    /// `reply_flags`).
    pub(crate) flush_requests: AtomicU64,
    /// FUSE over io_uring was asked for, and the kernel accepted it.
    pub(crate) uring_negotiated: AtomicBool,
    /// LOOKUP requests served (diagnostics: negative entries kept by the kernel).
    pub(crate) lookups: AtomicU64,
}

#[derive(Default)]
struct Backing {
    by_fh: HashMap<u64, Arc<BackingId>>,
    by_ino: HashMap<u64, Weak<BackingId>>,
}

pub(crate) struct FuseFs {
    core: Arc<PassthroughFs>,
    want_passthrough: bool,
    want_uring: bool,
    /// Only the mounting user reaches the mount (no `allow_other`).
    owner_only: bool,
    shared: Arc<Shared>,
    backing: Mutex<Backing>,
}

fn ctx(req: &Request) -> Ctx {
    Ctx {
        uid: req.uid(),
        gid: req.gid(),
        pid: req.pid(),
    }
}

/// The open reply's flags every kind of open shares: no FLUSH on close(2) where closing
/// does nothing on the underlying filesystem (one round trip less per close, which every
/// `touch`, untar and `cat` makes).
fn reply_flags(opened: &Opened) -> FopenFlags {
    if opened.silent_close {
        FopenFlags::FOPEN_NOFLUSH
    } else {
        FopenFlags::empty()
    }
}

fn errno(e: FsError) -> Errno {
    Errno::from_i32(e.raw_os_error())
}

impl FuseFs {
    pub(crate) fn new(
        core: Arc<PassthroughFs>,
        want_passthrough: bool,
        want_uring: bool,
        owner_only: bool,
        shared: Arc<Shared>,
    ) -> FuseFs {
        FuseFs {
            core,
            want_passthrough,
            want_uring,
            owner_only,
            shared,
            backing: Mutex::new(Backing::default()),
        }
    }

    /// The backing id to open `ino` with in passthrough mode, or None to serve it through
    /// the daemon.
    fn backing_for(
        &self,
        ino: u64,
        fh: u64,
        fd: BorrowedFd<'_>,
        open_backing: impl FnOnce(BorrowedFd<'_>) -> std::io::Result<BackingId>,
    ) -> Option<Arc<BackingId>> {
        if !self.shared.passthrough_negotiated.load(Ordering::Relaxed) {
            return None;
        }
        let mut b = lock(&self.backing);
        // Reuse the inode's live id even after a refusal: mixing passthrough and cached
        // opens of one inode is refused by the kernel.
        if let Some(id) = b.by_ino.get(&ino).and_then(Weak::upgrade) {
            b.by_fh.insert(fh, Arc::clone(&id));
            return Some(id);
        }
        if self.shared.passthrough_refused.load(Ordering::Relaxed) {
            return None;
        }
        match open_backing(fd) {
            Ok(id) => {
                let id = Arc::new(id);
                b.by_ino.insert(ino, Arc::downgrade(&id));
                b.by_fh.insert(fh, Arc::clone(&id));
                Some(id)
            }
            Err(_) => {
                self.shared
                    .passthrough_refused
                    .store(true, Ordering::Relaxed);
                None
            }
        }
    }

    fn drop_backing(&self, ino: u64, fh: u64) {
        let mut b = lock(&self.backing);
        if b.by_fh.remove(&fh).is_some()
            && b.by_ino.get(&ino).is_some_and(|w| w.strong_count() == 0)
        {
            b.by_ino.remove(&ino);
        }
    }

    fn reply_entry(
        &self,
        reply: ReplyEntry,
        result: crate::error::Result<crate::passthrough::Entry>,
    ) {
        match result {
            Ok(e) => reply.entry(&TTL, &e.attr, Generation(e.generation)),
            Err(e) => reply.error(errno(e)),
        }
    }
}

impl Filesystem for FuseFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let available = config.capabilities();
        // READDIRPLUS_AUTO: attributes with a listing's first reply, and with later ones
        // only once a program has looked at entries of it. READDIRPLUS throughout would
        // spare a walk of a folder the kernel has not seen (find, rm -rf after a remount)
        // a LOOKUP per entry past the first reply, but costs every walk of a folder whose
        // entries the kernel knows already (right after an untar) replies four times
        // fuller and a stat per entry in the daemon: mount-io's warm find went from 0.32
        // to 2.64 s with it (issue 21).
        let wanted = InitFlags::FUSE_ATOMIC_O_TRUNC
            | InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_READDIRPLUS_AUTO
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_CACHE_SYMLINKS;
        // Only what the kernel offers is asked for, so this cannot fail.
        let _ = config.add_capabilities(wanted & available);
        // Set-user-ID, set-group-ID and file capabilities are dropped on write, truncate and
        // chown by the underlying filesystem itself, for the daemon's own write, truncate
        // and chown, under the daemon's credentials. When only the mounting user reaches the
        // mount, those are the caller's, and the rules are the plain folder's: the kernel
        // need not check before every write. Without this, it asks for the file's
        // `security.capability` before each write(2) (a FUSE round trip per 4 KiB block of
        // a `dd bs=4k`: 13x slower than the plain folder), and re-reads its attributes before
        // each chown. With `allow_other`, callers are other users than the daemon, and
        // kernel passthrough writes carry the daemon's credentials: the kernel's checks stay.
        if self.owner_only
            && available.contains(InitFlags::FUSE_HANDLE_KILLPRIV_V2)
            && config
                .add_capabilities(InitFlags::FUSE_HANDLE_KILLPRIV_V2)
                .is_ok()
        {
            self.shared.killpriv_v2.store(true, Ordering::Relaxed);
        }
        let uring = InitFlags::from_bits_retain(crate::uring::FUSE_OVER_IO_URING);
        if self.want_uring
            && !uring.is_empty()
            && available.contains(uring)
            && config.add_capabilities(uring).is_ok()
        {
            self.shared.uring_negotiated.store(true, Ordering::Relaxed);
        }
        if available.contains(InitFlags::FUSE_NO_OPENDIR_SUPPORT) {
            self.shared.no_opendir.store(true, Ordering::Relaxed);
        }
        if self.want_passthrough
            && available.contains(InitFlags::FUSE_PASSTHROUGH)
            && config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
            // 2: the source may itself sit on a stacked filesystem (overlayfs).
            && config.set_max_stack_depth(2).is_ok()
        {
            self.shared
                .passthrough_negotiated
                .store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.shared.lookups.fetch_add(1, Ordering::Relaxed);
        match self.core.lookup(parent.0, name) {
            Ok(e) => reply.entry(&TTL, &e.attr, Generation(e.generation)),
            // A negative entry (node id 0) that the kernel may cache for TTL.
            Err(e) if e.errno == rustix::io::Errno::NOENT => {
                reply.entry(&TTL, &bare_attr(0, FileType::RegularFile), Generation(0));
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.core.forget(ino.0, nlookup);
    }

    // batch_forget: fuser's default calls `forget` for each node (its `ForgetOne` type
    // cannot be named outside fuser).

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.core.getattr(ino.0, fh.map(|fh| fh.0)) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let set = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
        };
        match self.core.setattr(ctx(req), ino.0, fh.map(|fh| fh.0), &set) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.core.readlink(ino.0) {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        // The kernel applied the caller's umask to `mode` already.
        sys::private_zero_umask();
        self.reply_entry(reply, self.core.mknod(ctx(req), parent.0, name, mode, rdev));
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        sys::private_zero_umask();
        self.reply_entry(reply, self.core.mkdir(ctx(req), parent.0, name, mode));
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.core.unlink(ctx(req), parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.core.rmdir(ctx(req), parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        self.reply_entry(
            reply,
            self.core
                .symlink(ctx(req), parent.0, link_name, target.as_os_str()),
        );
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        match self
            .core
            .rename(ctx(req), parent.0, name, newparent.0, newname, flags.bits())
        {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        self.reply_entry(reply, self.core.link(ctx(req), ino.0, newparent.0, newname));
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let opened = match self.core.open(ctx(req), ino.0, flags.0) {
            Ok(opened) => opened,
            Err(e) => return reply.error(errno(e)),
        };
        let (fh, flags) = (FileHandle(opened.fh), reply_flags(&opened));
        match self.backing_for(ino.0, opened.fh, opened.fd.as_fd(), |fd| {
            reply.open_backing(fd)
        }) {
            Some(id) => {
                self.core.writes_bypass(opened.fh);
                reply.opened_passthrough(fh, flags, &id)
            }
            None => reply.opened(fh, flags | FopenFlags::FOPEN_KEEP_CACHE),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.core.read(fh.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn write(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.core.write(ctx(req), fh.0, offset, data) {
            Ok(n) => reply.written(u32::try_from(n).unwrap_or(u32::MAX)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.shared.flush_requests.fetch_add(1, Ordering::Relaxed);
        match self.core.flush(fh.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let result = self.core.release(fh.0);
        self.drop_backing(ino.0, fh.0);
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.core.fsync(fh.0, datasync) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        // The kernel may keep directory listings (and keep them across opens): it drops them
        // itself when the directory changes through the mount, and `invalidate` drops them
        // for changes made behind it. Without this every walk re-reads every directory.
        //
        // Where the kernel allows, no OPENDIR at all: ENOSYS once makes it stop sending
        // OPENDIR and RELEASEDIR (two round trips per directory walked) and open every
        // directory as if answered FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE; readdir then comes
        // with no handle and is served statelessly.
        if self.shared.no_opendir.load(Ordering::Relaxed) {
            reply.error(Errno::ENOSYS);
            return;
        }
        match self.core.opendir(ino.0) {
            Ok(fh) => reply.opened(
                FileHandle(fh),
                FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE,
            ),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let result = self
            .core
            .readdir(ino.0, fh.0, offset, |ino, next, kind, name| {
                reply.add(INodeNo(ino), next, kind, name)
            });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let result = self.core.readdirplus(ino.0, fh.0, offset, |next, name, e| {
            reply.add(
                INodeNo(e.ino),
                next,
                name,
                &TTL,
                &e.attr,
                Generation(e.generation),
            )
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.core.releasedir(fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.core.fsyncdir(ino.0, fh.0, datasync) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn statfs(&self, _req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        match self.core.statfs(ino.0) {
            Ok(s) => reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                u32::try_from(s.f_bsize).unwrap_or(u32::MAX),
                u32::try_from(s.f_namemax).unwrap_or(u32::MAX),
                u32::try_from(s.f_frsize).unwrap_or(u32::MAX),
            ),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        match self.core.setxattr(ctx(req), ino.0, name, value, flags) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        self.shared.getxattrs.fetch_add(1, Ordering::Relaxed);
        match self.core.getxattr(ino.0, name, size) {
            Ok(Xattr::Size(n)) => reply.size(u32::try_from(n).unwrap_or(u32::MAX)),
            Ok(Xattr::Data(data)) => reply.data(&data),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        match self.core.listxattr(ino.0, size) {
            Ok(Xattr::Size(n)) => reply.size(u32::try_from(n).unwrap_or(u32::MAX)),
            Ok(Xattr::Data(data)) => reply.data(&data),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.core.removexattr(ctx(req), ino.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    /// Not called under `default_permissions` (the kernel checks); kept for completeness.
    fn access(&self, _req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        match self.core.access(ino.0, mask.bits()) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        sys::private_zero_umask();
        let (entry, opened) = match self.core.create(ctx(req), parent.0, name, mode, flags) {
            Ok(created) => created,
            Err(e) => return reply.error(errno(e)),
        };
        let (fh, generation) = (FileHandle(opened.fh), Generation(entry.generation));
        let flags = reply_flags(&opened);
        match self.backing_for(entry.ino, opened.fh, opened.fd.as_fd(), |fd| {
            reply.open_backing(fd)
        }) {
            Some(id) => reply.created_passthrough(&TTL, &entry.attr, generation, fh, flags, &id),
            None => reply.created(
                &TTL,
                &entry.attr,
                generation,
                fh,
                flags | FopenFlags::FOPEN_KEEP_CACHE,
            ),
        }
    }

    /// Never called: without FUSE_POSIX_LOCKS the kernel keeps POSIX locks itself.
    fn getlk(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        _start: u64,
        _end: u64,
        _typ: i32,
        _pid: u32,
        reply: ReplyLock,
    ) {
        reply.error(Errno::ENOSYS);
    }

    /// Never called: see `getlk`.
    fn setlk(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        _start: u64,
        _end: u64,
        _typ: i32,
        _pid: u32,
        _sleep: bool,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn fallocate(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        match self.core.fallocate(ctx(req), fh.0, offset, length, mode) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        match self.core.lseek(fh.0, offset, whence) {
            Ok(at) => reply.offset(at),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn copy_file_range(
        &self,
        req: &Request,
        _ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        _ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        match self.core.copy_file_range(
            ctx(req),
            fh_in.0,
            offset_in,
            fh_out.0,
            offset_out,
            len,
            flags.bits(),
        ) {
            Ok(n) => reply.written(u32::try_from(n).unwrap_or(u32::MAX)),
            Err(e) => reply.error(errno(e)),
        }
    }
}
