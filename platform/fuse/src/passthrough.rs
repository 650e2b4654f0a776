//! `PassthroughFs`: the filesystem itself, as plain Rust over the hidden source directory.
//!
//! Every operation takes node ids and names, acts on the underlying tree with `*at` calls
//! relative to fds that descend from the root fd, and returns `Result<_, FsError>`, where
//! the errno is the one the underlying call gave, so programs see what the plain folder
//! would show them (DESIGN.md invariant 7). It knows nothing of FUSE replies: the adapter in
//! `adapter.rs` unpacks requests, calls in here and replies.
//!
//! Invariants:
//! - Confinement (invariant 6): names are resolved one component at a time with
//!   `O_NOFOLLOW`/`AT_SYMLINK_NOFOLLOW` from a parent fd, never as a path from `/`. The
//!   only absolute paths used are `/proc/self/fd/N` magic links, which land on the very
//!   inode behind fd N and are never followed further, even when that inode is a symlink.
//! - Every mutating operation reports a `Change` to the sink right after it succeeded and
//!   before the kernel gets the reply, while the kernel still holds the directory lock, so
//!   records of one directory arrive in the order the operations took effect. The core
//!   records (not the adapter) because only it knows the paths at that instant: after a
//!   rename the old path is gone. Records never carry file data.
//! - Fds of inodes live in the bounded `FdCache`; nothing else holds an fd per inode.
//!   Open files and directory streams hold one real fd each, as the program's own would.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fuser::{FileAttr, FileType, INodeNo, TimeOrNow};
use rustix::fs::{AtFlags, OFlags, SeekFrom, StatVfs, Timespec, Timestamps};
use rustix::io::Errno;
use tandem_core::{Change, ChangeOp, ChangeSink, RelPath, Version};

use crate::error::{FsError, Op, Result};
use crate::fdcache::FdCache;
use crate::history::{self, History, Taken};
use crate::inode::{Entered, InodeTable, Key, ROOT};
use crate::lock;
use crate::sys::{
    self, key_of, kind_of, mode_of, size_of, stat_at, stat_fd, stat_node, to_attr, DirEnt, DirFd,
    FileHandle, NodeFd, Nodes, Stat,
};

/// Who asked: the calling thread's id as the kernel reports it, and its credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ctx {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) pid: u32,
}

/// A name resolved to a node: what a FUSE entry reply carries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) ino: u64,
    pub(crate) generation: u64,
    pub(crate) attr: FileAttr,
}

impl Entry {
    fn new(e: Entered, st: &Stat) -> Entry {
        Entry {
            ino: e.id,
            generation: e.generation,
            attr: to_attr(e.id, st),
        }
    }
}

/// An open file: its handle, and its fd for the adapter to register for kernel passthrough.
pub(crate) struct Opened {
    pub(crate) fh: u64,
    pub(crate) fd: Arc<OwnedFd>,
    /// Closing the file does nothing on its filesystem (`close_is_silent`): the kernel
    /// need not send FLUSH.
    pub(crate) silent_close: bool,
}

/// The attributes a setattr request changes (None: leave as is).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SetAttr {
    pub(crate) mode: Option<u32>,
    pub(crate) uid: Option<u32>,
    pub(crate) gid: Option<u32>,
    pub(crate) size: Option<u64>,
    pub(crate) atime: Option<TimeOrNow>,
    pub(crate) mtime: Option<TimeOrNow>,
}

/// The answer to getxattr/listxattr: the size when asked with an empty buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Xattr {
    Size(usize),
    Data(Vec<u8>),
}

/// What the kernel must forget about a path changed behind the mount.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Inval {
    /// The name `parent`/`name` (positive or negative dentry).
    Entry(u64, Box<[u8]>),
    /// Attributes and cached pages of a node.
    Inode(u64),
    /// Attributes only (a directory whose entries changed).
    Attr(u64),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct CoreConfig {
    /// How many inode fds may be open at once.
    pub(crate) fd_cache: usize,
    /// Re-open evicted inodes by file handle (else by path only).
    pub(crate) file_handles: bool,
    /// Keep what requests destroy, for files up to this size (`history`); `None`: off.
    pub(crate) history_max_file: Option<u64>,
}

struct OpenFile {
    ino: u64,
    fd: Arc<OwnedFd>,
    /// Opened for writing (or truncated on open): its release is reported as CloseWrite.
    reports_close: bool,
    ctx: Ctx,
    wrote: AtomicBool,
    /// Writes through it only append (`O_APPEND`): they destroy nothing.
    appends: bool,
    /// What it is about to destroy was kept already, or there is nothing to keep (created
    /// by this open, truncated on open, read only): its later writes keep nothing.
    kept: AtomicBool,
    /// Held while its old content is being kept: a second writer waits for the copy.
    keeping: Mutex<()>,
    opened: Instant,
    opened_wall: SystemTime,
    /// (size, mtime) when a long-held writer was last looked at.
    seen: Mutex<Option<(u64, i64, u32)>>,
}

/// An open directory stream. Entries read from the kernel but not yet returned wait in
/// `pending`; `pos` is the offset of the first of them, so a readdir asking for `pos`
/// continues without a seek, and any other offset (rewinddir, seekdir) seeks.
struct DirStream {
    ino: u64,
    dir: DirFd,
    pending: VecDeque<DirEnt>,
    pos: u64,
    eof: bool,
}

pub(crate) struct PassthroughFs {
    root: Arc<NodeFd>,
    /// How nodes are opened, reopened and changed on this system.
    nodes: Nodes,
    table: Mutex<InodeTable>,
    fds: FdCache,
    files: Mutex<HashMap<u64, Arc<OpenFile>>>,
    dirs: Mutex<HashMap<u64, Arc<Mutex<DirStream>>>>,
    next_fh: AtomicU64,
    /// fsyncs of files running now (`flushing`).
    syncing: AtomicUsize,
    sink: Arc<dyn ChangeSink>,
    history: Option<History>,
    /// The daemon's effective uid and gid: callers with these need no switch.
    daemon: (u32, u32),
}

/// Attributes for an entry the kernel takes no attributes from ("." and ".." in
/// readdirplus, negative lookups).
pub(crate) fn bare_attr(ino: u64, kind: FileType) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: 0,
        blocks: 0,
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind,
        perm: 0,
        nlink: 0,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

fn timespec(t: Option<TimeOrNow>) -> Timespec {
    let (tv_sec, tv_nsec) = match t {
        None => (0, rustix::fs::UTIME_OMIT),
        Some(TimeOrNow::Now) => (0, rustix::fs::UTIME_NOW),
        Some(TimeOrNow::SpecificTime(at)) => match at.duration_since(UNIX_EPOCH) {
            Ok(d) => (
                i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                i64::from(d.subsec_nanos()),
            ),
            Err(before) => {
                let d = before.duration();
                let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                match d.subsec_nanos() {
                    0 => (-secs, 0),
                    n => (-secs - 1, 1_000_000_000 - i64::from(n)),
                }
            }
        },
    };
    Timespec { tv_sec, tv_nsec }
}

/// Flags for the daemon's own fd of an open file. O_CREAT/O_EXCL were handled by the
/// kernel or `create`; O_NOFOLLOW would refuse the magic link; O_DIRECT would demand
/// aligned buffers from the daemon (the kernel still honours it on the program's side).
fn open_flags(flags: i32) -> OFlags {
    let flags = OFlags::from_bits_retain(flags as u32);
    (flags - (OFlags::CREATE | OFlags::EXCL | OFlags::NOCTTY | OFlags::NOFOLLOW | sys::DIRECT))
        | OFlags::CLOEXEC
}

fn is_dot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

impl PassthroughFs {
    /// A filesystem serving the directory `root` (any directory fd, `O_PATH` included).
    pub(crate) fn new(
        root: OwnedFd,
        sink: Arc<dyn ChangeSink>,
        config: CoreConfig,
    ) -> std::io::Result<PassthroughFs> {
        let root = sys::root_node(root)?;
        let st = stat_node(&root)?;
        if kind_of(mode_of(&st)) != FileType::Directory {
            return Err(Errno::NOTDIR.into());
        }
        let (nodes, root_handle) = Nodes::new(&root, config.file_handles)?;
        let root = Arc::new(root);
        Ok(PassthroughFs {
            table: Mutex::new(InodeTable::new(key_of(&st), root_handle)),
            history: config
                .history_max_file
                .map(|max| History::new(sys::root_dir(&root), max)),
            root,
            nodes,
            fds: FdCache::new(config.fd_cache),
            files: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            syncing: AtomicUsize::new(0),
            sink,
            daemon: (
                rustix::process::geteuid().as_raw(),
                rustix::process::getegid().as_raw(),
            ),
        })
    }

    fn record(&self, ctx: Ctx, op: ChangeOp, path: Option<RelPath>, to: Option<RelPath>) {
        if let Some(path) = path {
            self.sink.record(Change {
                op,
                path,
                to,
                pid: ctx.pid,
                uid: ctx.uid,
            });
        }
    }

    /// An operation on an inode (not on a name): every name of a hard-linked file changed,
    /// so each is reported (the kernel does not say which name the program used).
    fn record_inode(&self, ctx: Ctx, op: ChangeOp, ino: u64) {
        let paths = lock(&self.table).paths(ino);
        for path in paths {
            self.record(ctx, op, Some(path), None);
        }
    }

    fn path_of(&self, ino: u64) -> Option<RelPath> {
        lock(&self.table).path(ino)
    }

    /// Runs `f` on the table, then drops the cached fds of nodes it removed.
    fn with_table<R>(&self, f: impl FnOnce(&mut InodeTable) -> R) -> R {
        let (r, removed) = {
            let mut t = lock(&self.table);
            let r = f(&mut t);
            (r, t.take_removed())
        };
        for id in removed {
            self.fds.remove(id);
        }
        r
    }

    fn file(&self, fh: u64) -> Result<Arc<OpenFile>> {
        lock(&self.files)
            .get(&fh)
            .cloned()
            .ok_or(FsError::new("file handle", Errno::BADF))
    }

    /// The directory stream of handle `fh`; with no handle (0: the kernel does not send
    /// OPENDIR, see `adapter::FuseFs::opendir`), a fresh one on directory `ino`, positioned
    /// by the offset of each request (getdents cookies are stable across opens).
    fn dir(&self, ino: u64, fh: u64) -> Result<Arc<Mutex<DirStream>>> {
        if fh == 0 {
            return Ok(Arc::new(Mutex::new(self.open_stream(ino)?)));
        }
        lock(&self.dirs)
            .get(&fh)
            .cloned()
            .ok_or(FsError::new("directory handle", Errno::BADF))
    }

    /// Number of inodes known and of inode fds open (for tests and diagnostics).
    pub(crate) fn counts(&self) -> (usize, usize) {
        (lock(&self.table).len(), self.fds.len())
    }

    // ---- inode fds ----------------------------------------------------------------------

    /// The node `ino` as `sys` holds it (Linux: an `O_PATH` fd): from the cache, else
    /// opened again by file handle, by one of its known names, or (unlinked but open) from
    /// an open file.
    fn inode_fd(&self, ino: u64) -> Result<Arc<NodeFd>> {
        if ino == ROOT {
            return Ok(Arc::clone(&self.root));
        }
        let stale = FsError::new("inode", Errno::STALE);
        let epoch = lock(&self.table).get(ino).map(|n| n.epoch).ok_or(stale)?;
        if let Some(fd) = self.fds.get(ino, epoch) {
            return Ok(fd);
        }
        let (key, handle, names) = {
            let t = lock(&self.table);
            let n = t.get(ino).ok_or(stale)?;
            (n.key, n.handle.clone(), n.names.clone())
        };
        let fd = Arc::new(self.reopen(ino, key, handle.as_deref(), &names)?);
        if sys::cacheable(&fd) {
            self.fds.insert(ino, epoch, Arc::clone(&fd));
        }
        Ok(fd)
    }

    fn reopen(
        &self,
        ino: u64,
        key: Key,
        handle: Option<&FileHandle>,
        names: &[(u64, Box<[u8]>)],
    ) -> Result<NodeFd> {
        let is_it = |fd: &NodeFd| stat_node(fd).is_ok_and(|st| key_of(&st) == key);
        if let Some(fd) = handle.and_then(|h| self.nodes.by_handle(h)) {
            if is_it(&fd) {
                return Ok(fd);
            }
        }
        for (parent, name) in names {
            let Ok(dir) = self.inode_fd(*parent) else {
                continue;
            };
            let name = OsStr::from_bytes(name);
            if let Ok(fd) = self.nodes.open_node(&dir, name) {
                if is_it(&fd) {
                    return Ok(fd);
                }
            }
        }
        // Unlinked but still open: the open file's fd reaches it.
        let open = lock(&self.files).values().find(|f| f.ino == ino).cloned();
        if let Some(f) = open {
            let fd = rustix::io::fcntl_dupfd_cloexec(f.fd.as_fd(), 0).op("reopen")?;
            return Ok(sys::node_of_file(fd));
        }
        Err(FsError::new("reopen", Errno::STALE))
    }

    // ---- names --------------------------------------------------------------------------

    pub(crate) fn lookup(&self, parent: u64, name: &OsStr) -> Result<Entry> {
        let dir = self.inode_fd(parent)?;
        self.lookup_in(parent, name, &dir, "lookup")
    }

    fn lookup_in(
        &self,
        parent: u64,
        name: &OsStr,
        dir: &Arc<NodeFd>,
        op: &'static str,
    ) -> Result<Entry> {
        let st = stat_at(dir.as_fd(), name).op(op)?;
        let (key, kind) = (key_of(&st), kind_of(mode_of(&st)));
        if let Some(e) = self.with_table(|t| t.reference(parent, name.as_bytes(), key, kind)) {
            return Ok(Entry::new(e, &st));
        }
        self.adopt(parent, name, dir, op)
    }

    /// Opens `parent`/`name`, identifies it and enters it in the table (one lookup).
    fn adopt(
        &self,
        parent: u64,
        name: &OsStr,
        dir: &Arc<NodeFd>,
        op: &'static str,
    ) -> Result<Entry> {
        let fd = self.nodes.open_node(dir, name).op(op)?;
        let st = stat_node(&fd).op(op)?;
        let handle = self.nodes.handle_of(&fd);
        let (key, kind) = (key_of(&st), kind_of(mode_of(&st)));
        let e = self.with_table(|t| t.enter(parent, name.as_bytes(), key, kind, handle));
        if sys::cacheable(&fd) {
            self.fds.insert(e.id, e.epoch, Arc::new(fd));
        }
        Ok(Entry::new(e, &st))
    }

    pub(crate) fn forget(&self, ino: u64, nlookup: u64) {
        self.with_table(|t| t.forget(ino, nlookup));
    }

    pub(crate) fn getattr(&self, ino: u64, fh: Option<u64>) -> Result<FileAttr> {
        let st = match fh.and_then(|fh| self.file(fh).ok()) {
            Some(f) => stat_fd(f.fd.as_fd()),
            None => stat_node(self.inode_fd(ino)?.as_ref()),
        }
        .op("getattr")?;
        Ok(to_attr(ino, &st))
    }

    pub(crate) fn setattr(
        &self,
        ctx: Ctx,
        ino: u64,
        fh: Option<u64>,
        set: &SetAttr,
    ) -> Result<FileAttr> {
        let file = fh.and_then(|fh| self.file(fh).ok());
        let fd = self.inode_fd(ino)?;
        if let Some(mode) = set.mode {
            let mode = sys::perm(mode);
            match &file {
                Some(f) => rustix::fs::fchmod(f.fd.as_fd(), mode),
                None => self.nodes.chmod(&fd, mode),
            }
            .op("chmod")?;
        }
        let uid = set.uid.filter(|&u| u != u32::MAX);
        let gid = set.gid.filter(|&g| g != u32::MAX);
        if uid.is_some() || gid.is_some() {
            self.nodes
                .chown(
                    &fd,
                    uid.map(rustix::fs::Uid::from_raw_unchecked),
                    gid.map(rustix::fs::Gid::from_raw_unchecked),
                )
                .op("chown")?;
        }
        if let Some(size) = set.size {
            self.keep_before_truncate(ctx, ino, &fd, file.as_deref(), size);
            match &file {
                Some(f) if f.reports_close => rustix::fs::ftruncate(f.fd.as_fd(), size),
                _ => self
                    .nodes
                    .reopen(&fd, OFlags::WRONLY | OFlags::CLOEXEC)
                    .and_then(|w| rustix::fs::ftruncate(&w, size)),
            }
            .op("truncate")?;
        }
        if set.atime.is_some() || set.mtime.is_some() {
            let times = Timestamps {
                last_access: timespec(set.atime),
                last_modification: timespec(set.mtime),
            };
            self.nodes.utimens(&fd, &times).op("utimens")?;
        }
        let st = stat_node(&fd).op("setattr")?;
        self.record_inode(ctx, ChangeOp::SetAttr, ino);
        Ok(to_attr(ino, &st))
    }

    pub(crate) fn readlink(&self, ino: u64) -> Result<Vec<u8>> {
        let fd = self.inode_fd(ino)?;
        self.nodes.readlink(&fd).op("readlink")
    }

    /// Runs a creating call as the caller (fsuid/fsgid), so the new file is theirs. When
    /// the underlying filesystem refuses the caller although the kernel already granted
    /// the request (write access through a supplementary group, which fsuid switching
    /// does not carry), it is done as the daemon and handed over afterwards: the bool.
    fn as_caller<T>(
        &self,
        ctx: Ctx,
        f: impl Fn() -> rustix::io::Result<T>,
    ) -> rustix::io::Result<(T, bool)> {
        let (first, switched) = {
            let guard = sys::AsCaller::enter(ctx.uid, ctx.gid, self.daemon);
            (f(), guard.active())
        };
        match first {
            Ok(t) => Ok((t, false)),
            Err(Errno::ACCESS | Errno::PERM) if switched => f().map(|t| (t, true)),
            Err(e) => Err(e),
        }
    }

    /// Gives a file created as the daemon to the caller (group: the directory's when it is
    /// set-group-ID, as the kernel would have chosen).
    fn hand_over(&self, ctx: Ctx, dir: &NodeFd, entry: &mut Entry) -> Result<()> {
        let fd = self.inode_fd(entry.ino)?;
        let dir_st = stat_node(dir).op("chown")?;
        let gid = (mode_of(&dir_st) & sys::S_ISGID == 0)
            .then(|| rustix::fs::Gid::from_raw_unchecked(ctx.gid));
        self.nodes
            .chown(&fd, Some(rustix::fs::Uid::from_raw_unchecked(ctx.uid)), gid)
            .op("chown")?;
        let st = stat_node(&fd).op("chown")?;
        entry.attr = to_attr(entry.ino, &st);
        Ok(())
    }

    /// Enters a node just created at `parent`/`name` and reports it.
    #[allow(clippy::too_many_arguments)]
    fn created(
        &self,
        ctx: Ctx,
        parent: u64,
        name: &OsStr,
        dir: &Arc<NodeFd>,
        hand_over: bool,
        op: ChangeOp,
        op_name: &'static str,
    ) -> Result<Entry> {
        let mut entry = self.adopt(parent, name, dir, op_name)?;
        if hand_over {
            self.hand_over(ctx, dir, &mut entry)?;
        }
        let path = lock(&self.table).child_path(parent, name.as_bytes());
        self.record(ctx, op, path, None);
        Ok(entry)
    }

    pub(crate) fn mknod(
        &self,
        ctx: Ctx,
        parent: u64,
        name: &OsStr,
        mode: u32,
        rdev: u32,
    ) -> Result<Entry> {
        let dir = self.inode_fd(parent)?;
        let kind = sys::raw_kind(mode);
        let perm = sys::perm(mode);
        let (_, hand_over) = self
            .as_caller(ctx, || sys::mknodat(dir.as_fd(), name, kind, perm, rdev))
            .op("mknod")?;
        self.created(ctx, parent, name, &dir, hand_over, ChangeOp::Mknod, "mknod")
    }

    pub(crate) fn mkdir(&self, ctx: Ctx, parent: u64, name: &OsStr, mode: u32) -> Result<Entry> {
        let dir = self.inode_fd(parent)?;
        let perm = sys::perm(mode);
        let (_, hand_over) = self
            .as_caller(ctx, || rustix::fs::mkdirat(dir.as_fd(), name, perm))
            .op("mkdir")?;
        self.created(ctx, parent, name, &dir, hand_over, ChangeOp::Mkdir, "mkdir")
    }

    pub(crate) fn symlink(
        &self,
        ctx: Ctx,
        parent: u64,
        name: &OsStr,
        target: &OsStr,
    ) -> Result<Entry> {
        let dir = self.inode_fd(parent)?;
        let (_, hand_over) = self
            .as_caller(ctx, || rustix::fs::symlinkat(target, dir.as_fd(), name))
            .op("symlink")?;
        self.created(
            ctx,
            parent,
            name,
            &dir,
            hand_over,
            ChangeOp::Symlink,
            "symlink",
        )
    }

    pub(crate) fn link(
        &self,
        ctx: Ctx,
        ino: u64,
        new_parent: u64,
        new_name: &OsStr,
    ) -> Result<Entry> {
        let fd = self.inode_fd(ino)?;
        let dir = self.inode_fd(new_parent)?;
        let existing = self.path_of(ino);
        self.nodes.link(&fd, dir.as_fd(), new_name).op("link")?;
        let entry = self.lookup_in(new_parent, new_name, &dir, "link")?;
        let to = lock(&self.table).child_path(new_parent, new_name.as_bytes());
        self.record(ctx, ChangeOp::Link, existing, to);
        Ok(entry)
    }

    pub(crate) fn unlink(&self, ctx: Ctx, parent: u64, name: &OsStr) -> Result<()> {
        self.remove(
            ctx,
            parent,
            name,
            AtFlags::empty(),
            ChangeOp::Unlink,
            "unlink",
        )
    }

    pub(crate) fn rmdir(&self, ctx: Ctx, parent: u64, name: &OsStr) -> Result<()> {
        self.remove(
            ctx,
            parent,
            name,
            AtFlags::REMOVEDIR,
            ChangeOp::Rmdir,
            "rmdir",
        )
    }

    fn remove(
        &self,
        ctx: Ctx,
        parent: u64,
        name: &OsStr,
        flags: AtFlags,
        op: ChangeOp,
        op_name: &'static str,
    ) -> Result<()> {
        let dir = self.inode_fd(parent)?;
        let kept = if flags.is_empty() {
            self.keep_name(&dir, parent, name)
        } else {
            None
        };
        if let Err(e) = rustix::fs::unlinkat(dir.as_fd(), name, flags) {
            self.discard(kept);
            return Err(FsError::new(op_name, e));
        }
        let path = self.with_table(|t| {
            let path = t.child_path(parent, name.as_bytes());
            t.remove_name(parent, name.as_bytes());
            path
        });
        self.report_kept(ctx, op, kept);
        self.record(ctx, op, path, None);
        Ok(())
    }

    pub(crate) fn rename(
        &self,
        ctx: Ctx,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        flags: u32,
    ) -> Result<()> {
        let dir = self.inode_fd(parent)?;
        let new_dir = self.inode_fd(new_parent)?;
        // RENAME_NOREPLACE and RENAME_EXCHANGE destroy nothing.
        let kept = if flags == 0 {
            self.keep_name(&new_dir, new_parent, new_name)
        } else {
            None
        };
        let renamed = if flags == 0 {
            rustix::fs::renameat(dir.as_fd(), name, new_dir.as_fd(), new_name)
        } else {
            rustix::fs::renameat_with(
                dir.as_fd(),
                name,
                new_dir.as_fd(),
                new_name,
                rustix::fs::RenameFlags::from_bits_retain(flags),
            )
        };
        if let Err(e) = renamed {
            self.discard(kept);
            return Err(FsError::new("rename", e));
        }
        let exchange = flags & sys::RENAME_EXCHANGE != 0;
        let (from, to) = self.with_table(|t| {
            let from = t.child_path(parent, name.as_bytes());
            let to = t.child_path(new_parent, new_name.as_bytes());
            t.rename(
                parent,
                name.as_bytes(),
                new_parent,
                new_name.as_bytes(),
                exchange,
            );
            (from, to)
        });
        let op = if exchange {
            ChangeOp::Exchange
        } else {
            ChangeOp::Rename
        };
        self.report_kept(ctx, op, kept);
        self.record(ctx, op, from, to);
        Ok(())
    }

    // ---- files --------------------------------------------------------------------------

    pub(crate) fn open(&self, ctx: Ctx, ino: u64, flags: i32) -> Result<Opened> {
        let fd = self.inode_fd(ino)?;
        let truncates = flags & libc::O_TRUNC != 0 && flags & libc::O_ACCMODE != libc::O_RDONLY;
        if truncates {
            self.keep_node(ctx, ChangeOp::OpenWrite, ino, &fd);
        }
        let file = self.nodes.reopen(&fd, open_flags(flags)).op("open")?;
        if flags & libc::O_TRUNC != 0 {
            // The file is truncated already: opened (and recorded) whatever this says.
            if let Err(e) = self.truncated_by(ctx, &file) {
                tracing::warn!("dropping set-user-ID after O_TRUNC: {e}");
            }
        }
        Ok(self.opened(ctx, ino, file, flags, truncates))
    }

    /// A file truncated by opening it with `O_TRUNC` for `ctx` loses its set-user-ID bit,
    /// and its set-group-ID bit where its group may execute it, unless the caller is root,
    /// as in the plain folder. The open itself ran as the daemon, which keeps them.
    fn truncated_by(&self, ctx: Ctx, file: &OwnedFd) -> Result<()> {
        if ctx.uid == 0 {
            return Ok(());
        }
        let st = stat_fd(file.as_fd()).op("open")?;
        let mode = mode_of(&st);
        let kill = (mode & sys::S_ISUID)
            | if mode & sys::S_IXGRP != 0 {
                mode & sys::S_ISGID
            } else {
                0
            };
        if mode & sys::S_IFMT == sys::S_IFREG && kill != 0 {
            rustix::fs::fchmod(file, sys::perm(mode & !kill)).op("open")?;
        }
        Ok(())
    }

    /// A file opened (`kept`: what its writes may destroy needs no keeping: it was just
    /// created or truncated).
    fn opened(&self, ctx: Ctx, ino: u64, file: OwnedFd, flags: i32, kept: bool) -> Opened {
        let writing = flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0;
        let fd = Arc::new(file);
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        let open = OpenFile {
            ino,
            fd: Arc::clone(&fd),
            reports_close: writing,
            ctx,
            wrote: AtomicBool::new(false),
            appends: flags & libc::O_APPEND != 0,
            kept: AtomicBool::new(kept || !writing),
            keeping: Mutex::new(()),
            opened: Instant::now(),
            opened_wall: SystemTime::now(),
            seen: Mutex::new(None),
        };
        lock(&self.files).insert(fh, Arc::new(open));
        if writing {
            self.record_inode(ctx, ChangeOp::OpenWrite, ino);
        }
        let silent_close = sys::close_is_silent(fd.as_fd());
        Opened {
            fh,
            fd,
            silent_close,
        }
    }

    pub(crate) fn create(
        &self,
        ctx: Ctx,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
    ) -> Result<(Entry, Opened)> {
        let dir = self.inode_fd(parent)?;
        let oflags = OFlags::from_bits_retain(flags as u32);
        let oflags = (oflags - (OFlags::NOCTTY | sys::DIRECT))
            | OFlags::CREATE
            | OFlags::NOFOLLOW
            | OFlags::CLOEXEC;
        let perm = sys::perm(mode);
        // Done again as the daemon (`as_caller`), it must create the file: an existing one
        // (behind a stale negative entry) is not the caller's to be handed, and the kernel
        // checked only the directory's permissions.
        let again = std::cell::Cell::new(false);
        let (file, hand_over) = self
            .as_caller(ctx, || {
                let extra = if again.replace(true) {
                    OFlags::EXCL
                } else {
                    OFlags::empty()
                };
                rustix::fs::openat(dir.as_fd(), name, oflags | extra, perm)
            })
            .map_err(|e| {
                if e == Errno::EXIST && oflags & OFlags::EXCL == OFlags::empty() {
                    Errno::ACCESS
                } else {
                    e
                }
            })
            .op("create")?;
        let entry = self.created(
            ctx,
            parent,
            name,
            &dir,
            hand_over,
            ChangeOp::Create,
            "create",
        )?;
        let opened = self.opened(ctx, entry.ino, file, flags, true);
        Ok((entry, opened))
    }

    pub(crate) fn read(&self, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        let f = self.file(fh)?;
        let mut buf = vec![0u8; size as usize];
        let mut done = 0;
        while done < buf.len() {
            match rustix::io::pread(f.fd.as_fd(), &mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(Errno::INTR) => continue,
                Err(e) if done == 0 => return Err(FsError::new("read", e)),
                Err(_) => break,
            }
        }
        buf.truncate(done);
        Ok(buf)
    }

    pub(crate) fn write(&self, ctx: Ctx, fh: u64, offset: u64, data: &[u8]) -> Result<usize> {
        let f = self.file(fh)?;
        self.keep_before_write(ctx, &f, offset);
        let mut done = 0;
        while done < data.len() {
            // On an O_APPEND fd Linux's pwrite appends whatever the offset: O_APPEND holds.
            match rustix::io::pwrite(f.fd.as_fd(), &data[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(Errno::INTR) => continue,
                Err(e) if done == 0 => return Err(FsError::new("write", e)),
                Err(_) => break,
            }
        }
        self.wrote(ctx, &f);
        Ok(done)
    }

    /// Reports the first write through a handle (later ones are not reported: the record
    /// says "look at this path", once is enough until the writer closes).
    fn wrote(&self, ctx: Ctx, f: &OpenFile) {
        if !f.wrote.swap(true, Ordering::Relaxed) {
            self.record_inode(ctx, ChangeOp::Write, f.ino);
        }
    }

    /// close() of one descriptor of the file: closing a duplicate of our fd gives the
    /// underlying filesystem its close-time semantics (NFS writes back and reports errors).
    /// The program's own locks are the kernel's, released on its close without this.
    pub(crate) fn flush(&self, fh: u64) -> Result<()> {
        let f = self.file(fh)?;
        drop(rustix::io::fcntl_dupfd_cloexec(f.fd.as_fd(), 0).op("flush")?);
        Ok(())
    }

    /// The last reference to an open file is gone. A file opened for writing is reported
    /// as CloseWrite, with the opener's pid and uid (the release request itself usually
    /// comes from no process).
    pub(crate) fn release(&self, fh: u64) -> Result<()> {
        let f = lock(&self.files)
            .remove(&fh)
            .ok_or(FsError::new("release", Errno::BADF))?;
        if f.reports_close {
            self.record_inode(f.ctx, ChangeOp::CloseWrite, f.ino);
        }
        Ok(())
    }

    pub(crate) fn fsync(&self, fh: u64, datasync: bool) -> Result<()> {
        let f = self.file(fh)?;
        self.syncing.fetch_add(1, Ordering::SeqCst);
        let r = if datasync {
            sys::fdatasync(f.fd.as_fd()).op("fdatasync")
        } else {
            rustix::fs::fsync(f.fd.as_fd()).op("fsync")
        };
        self.syncing.fetch_sub(1, Ordering::SeqCst);
        r
    }

    /// True while a program's fsync of a file runs: its data is still going to disk (with
    /// kernel passthrough, the only sign of it the daemon sees).
    pub(crate) fn flushing(&self) -> bool {
        self.syncing.load(Ordering::SeqCst) > 0
    }

    pub(crate) fn fallocate(
        &self,
        ctx: Ctx,
        fh: u64,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> Result<()> {
        let f = self.file(fh)?;
        if sys::fallocate_destroys(mode) {
            self.keep_once(ctx, ChangeOp::Fallocate, &f);
        }
        sys::fallocate(f.fd.as_fd(), mode, offset, length).op("fallocate")?;
        self.record_inode(ctx, ChangeOp::Fallocate, f.ino);
        Ok(())
    }

    /// Only SEEK_DATA and SEEK_HOLE reach the filesystem; the others are handled too.
    pub(crate) fn lseek(&self, fh: u64, offset: i64, whence: i32) -> Result<i64> {
        let f = self.file(fh)?;
        let pos = match whence {
            libc::SEEK_SET => SeekFrom::Start(offset as u64),
            libc::SEEK_CUR => SeekFrom::Current(offset),
            libc::SEEK_END => SeekFrom::End(offset),
            libc::SEEK_DATA => SeekFrom::Data(offset as u64),
            libc::SEEK_HOLE => SeekFrom::Hole(offset as u64),
            _ => return Err(FsError::new("lseek", Errno::INVAL)),
        };
        let at = rustix::fs::seek(f.fd.as_fd(), pos).op("lseek")?;
        i64::try_from(at).map_err(|_| FsError::new("lseek", Errno::OVERFLOW))
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn copy_file_range(
        &self,
        ctx: Ctx,
        fh_in: u64,
        offset_in: u64,
        fh_out: u64,
        offset_out: u64,
        len: u64,
        flags: u64,
    ) -> Result<usize> {
        if flags != 0 {
            return Err(FsError::new("copy_file_range", Errno::INVAL));
        }
        let (input, output) = (self.file(fh_in)?, self.file(fh_out)?);
        self.keep_before_write(ctx, &output, offset_out);
        let (mut off_in, mut off_out) = (offset_in, offset_out);
        let n = sys::copy_file_range(
            input.fd.as_fd(),
            &mut off_in,
            output.fd.as_fd(),
            &mut off_out,
            usize::try_from(len).unwrap_or(usize::MAX),
        )
        .op("copy_file_range")?;
        if n > 0 {
            self.wrote(ctx, &output);
        }
        Ok(n)
    }

    /// Reports files held open for writing for longer than `older_than` whose size or
    /// mtime moved since they were last looked at: with kernel passthrough their writes
    /// never reach the daemon, and a log written for hours must not wait for its close.
    pub(crate) fn report_long_writers(&self, older_than: Duration) {
        let files: Vec<Arc<OpenFile>> = lock(&self.files)
            .values()
            .filter(|f| f.reports_close && f.opened.elapsed() >= older_than)
            .cloned()
            .collect();
        for f in files {
            let Ok(st) = stat_fd(f.fd.as_fd()) else {
                continue;
            };
            let (sec, nsec) = sys::mtime_of(&st);
            let now = (size_of(&st), sec, nsec);
            let changed = {
                let mut seen = lock(&f.seen);
                let changed = match *seen {
                    Some(before) => before != now,
                    None => sys::mtime(&st) >= f.opened_wall,
                };
                *seen = Some(now);
                changed
            };
            if changed {
                self.record_inode(f.ctx, ChangeOp::Write, f.ino);
            }
        }
    }

    // ---- history: what requests are about to destroy -------------------------------------

    /// Hands what was kept before request `op` of `ctx` to the sink.
    fn report_kept(&self, ctx: Ctx, op: ChangeOp, kept: Option<(RelPath, Taken)>) {
        if let Some((path, (size, kept))) = kept {
            self.sink.kept(Version {
                path,
                size,
                kept,
                op,
                pid: ctx.pid,
                uid: ctx.uid,
            });
        }
    }

    /// Keeps the content of regular file `ino` (its inode fd `fd`) before request `op` of
    /// `ctx` destroys it.
    fn keep_node(&self, ctx: Ctx, op: ChangeOp, ino: u64, fd: &NodeFd) {
        self.keep_content(ctx, op, ino, || stat_node(fd), |f| self.nodes.reopen(fd, f));
    }

    /// Keeps the content of regular file `ino` before request `op` of `ctx` destroys it:
    /// `stat` says what it is, `reopen` opens it again with the flags given (from its inode
    /// fd or from an open file).
    fn keep_content(
        &self,
        ctx: Ctx,
        op: ChangeOp,
        ino: u64,
        stat: impl FnOnce() -> rustix::io::Result<Stat>,
        reopen: impl FnOnce(OFlags) -> rustix::io::Result<OwnedFd>,
    ) {
        let Some(h) = &self.history else {
            return;
        };
        let Some(path) = self.path_of(ino).filter(|p| !history::is_own(p)) else {
            return;
        };
        if !stat().is_ok_and(|st| kind_of(mode_of(&st)) == FileType::RegularFile) {
            return;
        }
        // Read through a fresh fd: the program's may be write-only. Non-blocking, in case
        // the node changed kind under us (a FIFO would wait for a writer).
        let readable = reopen(OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC);
        let taken = match readable {
            Ok(r) => h.copy(r.as_fd(), &path),
            Err(e) => {
                tracing::warn!("history: could not read {path} to keep it: {e}");
                Some((0, Err(tandem_core::NotKept::Failed)))
            }
        };
        self.report_kept(ctx, op, taken.map(|t| (path, t)));
    }

    /// Before the first request through open file `f` that destroys content: keeps it,
    /// once per open. A second writer on the same handle waits until the copy is done.
    fn keep_once(&self, ctx: Ctx, op: ChangeOp, f: &OpenFile) {
        if self.history.is_none() || f.kept.load(Ordering::Acquire) {
            return;
        }
        let _copying = lock(&f.keeping);
        if f.kept.load(Ordering::Acquire) {
            return;
        }
        self.keep_content(
            ctx,
            op,
            f.ino,
            || stat_fd(f.fd.as_fd()),
            // Where the open file cannot be opened again (macOS, write-only), by its node.
            |flags| {
                self.nodes.reopen_file(&f.fd, flags).or_else(|e| {
                    let node = self.inode_fd(f.ino).map_err(|_| e)?;
                    self.nodes.reopen(&node, flags)
                })
            },
        );
        f.kept.store(true, Ordering::Release);
    }

    /// Before a write at `offset` through `f`: only what it overwrites is destroyed (a
    /// write past the end, or through `O_APPEND`, destroys nothing).
    fn keep_before_write(&self, ctx: Ctx, f: &OpenFile, offset: u64) {
        if self.history.is_none() || f.appends || f.kept.load(Ordering::Relaxed) {
            return;
        }
        if stat_fd(f.fd.as_fd()).map_or(true, |st| offset < size_of(&st)) {
            self.keep_once(ctx, ChangeOp::Write, f);
        }
    }

    /// Before node `ino` (inode fd `fd`) is truncated to `size` (through open file `file`
    /// when it is one opened for writing): growing it destroys nothing.
    fn keep_before_truncate(
        &self,
        ctx: Ctx,
        ino: u64,
        fd: &NodeFd,
        file: Option<&OpenFile>,
        size: u64,
    ) {
        if self.history.is_none() || !stat_node(fd).is_ok_and(|st| size < size_of(&st)) {
            return;
        }
        match file {
            Some(f) if f.reports_close => self.keep_once(ctx, ChangeOp::SetAttr, f),
            _ => self.keep_node(ctx, ChangeOp::SetAttr, ino, fd),
        }
    }

    /// The kernel passes the reads and writes of open file `fh` through without this
    /// process seeing them: what they may destroy is kept now, before the open is answered.
    pub(crate) fn writes_bypass(&self, fh: u64) {
        if let Ok(f) = self.file(fh) {
            self.keep_once(f.ctx, ChangeOp::OpenWrite, &f);
        }
    }

    /// Keeps the file `name` in `dir` (node `parent`) before an unlink or a rename over it.
    fn keep_name(&self, dir: &NodeFd, parent: u64, name: &OsStr) -> Option<(RelPath, Taken)> {
        let h = self.history.as_ref()?;
        let (path, node) = {
            let t = lock(&self.table);
            let path = t.child_path(parent, name.as_bytes());
            (path, t.child(parent, name.as_bytes()))
        };
        let path = path.filter(|p| !history::is_own(p))?;
        let open = node.is_some_and(|id| lock(&self.files).values().any(|f| f.ino == id));
        let taken = h.link(dir.as_fd(), name, &path, open)?;
        Some((path, taken))
    }

    /// Drops what `keep_name` kept for a request that then failed.
    fn discard(&self, kept: Option<(RelPath, Taken)>) {
        if let (Some(h), Some((_, (_, Ok(version))))) = (&self.history, kept) {
            h.discard(&version);
        }
    }

    // ---- directories --------------------------------------------------------------------

    pub(crate) fn opendir(&self, ino: u64) -> Result<u64> {
        let stream = self.open_stream(ino)?;
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        lock(&self.dirs).insert(fh, Arc::new(Mutex::new(stream)));
        Ok(fh)
    }

    fn open_stream(&self, ino: u64) -> Result<DirStream> {
        let fd = self.inode_fd(ino)?;
        let dir = DirFd::open(&fd).op("opendir")?;
        Ok(DirStream {
            ino,
            dir,
            pending: VecDeque::new(),
            pos: 0,
            eof: false,
        })
    }

    /// Lists entries from `offset` on; `add(ino, next_offset, kind, name)` returns true
    /// when the reply is full (that entry was not taken).
    pub(crate) fn readdir(
        &self,
        ino: u64,
        fh: u64,
        offset: u64,
        mut add: impl FnMut(u64, u64, FileType, &OsStr) -> bool,
    ) -> Result<()> {
        let dir = self.dir(ino, fh)?;
        let mut d = lock(&dir);
        d.seek(offset)?;
        while let Some(e) = d.front()? {
            let ino = if &*e.name == b"." {
                d.ino
            } else {
                lock(&self.table).dirent_ino(e.d_ino)
            };
            if add(ino, e.cookie, e.kind, OsStr::from_bytes(&e.name)) {
                break;
            }
            d.consume();
        }
        Ok(())
    }

    /// Like `readdir`, with each entry looked up (the kernel counts each one it takes as a
    /// lookup; one it did not take is forgotten again). "." and ".." carry no lookup.
    pub(crate) fn readdirplus(
        &self,
        ino: u64,
        fh: u64,
        offset: u64,
        mut add: impl FnMut(u64, &OsStr, &Entry) -> bool,
    ) -> Result<()> {
        let dir = self.dir(ino, fh)?;
        let mut d = lock(&dir);
        d.seek(offset)?;
        let parent_fd = self.inode_fd(d.ino)?;
        while let Some(e) = d.front()? {
            let name = OsStr::from_bytes(&e.name);
            let dot = is_dot(&e.name);
            let entry = if dot {
                let ino = if &*e.name == b"." {
                    d.ino
                } else {
                    lock(&self.table).dirent_ino(e.d_ino)
                };
                Entry {
                    ino,
                    generation: 0,
                    attr: bare_attr(ino, FileType::Directory),
                }
            } else {
                match self.lookup_in(d.ino, name, &parent_fd, "readdirplus") {
                    Ok(entry) => entry,
                    // Gone since it was listed: skip it, as a later readdir would.
                    Err(_) => {
                        d.consume();
                        continue;
                    }
                }
            };
            if add(e.cookie, name, &entry) {
                if !dot {
                    self.forget(entry.ino, 1);
                }
                break;
            }
            d.consume();
        }
        Ok(())
    }

    pub(crate) fn releasedir(&self, fh: u64) {
        lock(&self.dirs).remove(&fh);
    }

    pub(crate) fn fsyncdir(&self, ino: u64, fh: u64, datasync: bool) -> Result<()> {
        let dir = self.dir(ino, fh)?;
        let d = lock(&dir);
        if datasync {
            sys::fdatasync(d.dir.as_fd()).op("fsyncdir")
        } else {
            rustix::fs::fsync(d.dir.as_fd()).op("fsyncdir")
        }
    }

    pub(crate) fn statfs(&self, ino: u64) -> Result<StatVfs> {
        let fd = self.inode_fd(ino)?;
        rustix::fs::fstatvfs(fd.as_fd()).op("statfs")
    }

    pub(crate) fn access(&self, ino: u64, mask: i32) -> Result<()> {
        let fd = self.inode_fd(ino)?;
        self.nodes.access(&fd, mask).op("access")
    }

    // ---- extended attributes ------------------------------------------------------------

    pub(crate) fn setxattr(
        &self,
        ctx: Ctx,
        ino: u64,
        name: &OsStr,
        value: &[u8],
        flags: i32,
    ) -> Result<()> {
        let fd = self.inode_fd(ino)?;
        let flags = rustix::fs::XattrFlags::from_bits_retain(flags as u32);
        self.nodes
            .setxattr(&fd, name, value, flags)
            .op("setxattr")?;
        self.record_inode(ctx, ChangeOp::SetXattr, ino);
        Ok(())
    }

    pub(crate) fn getxattr(&self, ino: u64, name: &OsStr, size: u32) -> Result<Xattr> {
        let fd = self.inode_fd(ino)?;
        if size == 0 {
            let n = self.nodes.getxattr(&fd, name, &mut []).op("getxattr")?;
            return Ok(Xattr::Size(n));
        }
        let mut buf = vec![0u8; size as usize];
        let n = self.nodes.getxattr(&fd, name, &mut buf).op("getxattr")?;
        buf.truncate(n);
        Ok(Xattr::Data(buf))
    }

    pub(crate) fn listxattr(&self, ino: u64, size: u32) -> Result<Xattr> {
        let fd = self.inode_fd(ino)?;
        if size == 0 {
            let n = self.nodes.listxattr(&fd, &mut []).op("listxattr")?;
            return Ok(Xattr::Size(n));
        }
        let mut buf = vec![0u8; size as usize];
        let n = self.nodes.listxattr(&fd, &mut buf).op("listxattr")?;
        buf.truncate(n);
        Ok(Xattr::Data(buf))
    }

    pub(crate) fn removexattr(&self, ctx: Ctx, ino: u64, name: &OsStr) -> Result<()> {
        let fd = self.inode_fd(ino)?;
        self.nodes.removexattr(&fd, name).op("removexattr")?;
        self.record_inode(ctx, ChangeOp::RemoveXattr, ino);
        Ok(())
    }

    // ---- changes made behind the mount --------------------------------------------------

    /// What the kernel must drop for `path`, changed underneath the mount: the name in its
    /// parent (known parent), the node's attributes and pages (known node), and the
    /// parent's attributes. The table keeps its names: the next lookup corrects them.
    /// `from` was renamed to `to` in the folder, not through the mount (a merge from the
    /// target). The names follow, so that a file still open under `from` is recorded under
    /// `to`; with `to`'s folder unknown to the kernel, `from` is just forgotten.
    pub(crate) fn renamed_underneath(&self, from: &RelPath, to: &RelPath) {
        self.with_table(|t| {
            let (Some(parent), Some(_)) = t.resolve(from) else {
                return;
            };
            match t.resolve(to) {
                (Some(new_parent), _) => {
                    t.rename(parent, from.file_name(), new_parent, to.file_name(), false)
                }
                (None, _) => t.remove_name(parent, from.file_name()),
            }
        });
    }

    pub(crate) fn invalidations(&self, path: &RelPath) -> Vec<Inval> {
        let table = lock(&self.table);
        let (parent, child) = table.resolve(path);
        let mut out = Vec::new();
        // Folders made on the way to `path`: the first one's name may be cached as missing.
        if let Some((known, name)) = table.first_unknown(path) {
            out.push(Inval::Entry(known, name.into()));
            out.push(Inval::Attr(known));
        }
        drop(table);
        if let Some(child) = child {
            out.push(Inval::Inode(child));
        }
        if let Some(parent) = parent {
            out.push(Inval::Entry(parent, path.file_name().into()));
            out.push(Inval::Attr(parent));
        }
        out
    }
}

impl DirStream {
    fn seek(&mut self, offset: u64) -> Result<()> {
        if offset != self.pos {
            self.dir.seek(offset).op("readdir")?;
            self.pending.clear();
            self.eof = false;
            self.pos = offset;
        }
        Ok(())
    }

    fn front(&mut self) -> Result<Option<DirEnt>> {
        if self.pending.is_empty() && !self.eof {
            self.fill()?;
        }
        Ok(self.pending.front().cloned())
    }

    fn consume(&mut self) {
        if let Some(e) = self.pending.pop_front() {
            self.pos = e.cookie;
        }
    }

    /// One read's worth of entries.
    fn fill(&mut self) -> Result<()> {
        self.eof = self.dir.fill(&mut self.pending).op("readdir")?;
        Ok(())
    }
}

#[cfg(all(test, target_os = "linux"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use rustix::fs::Mode;

    use super::*;

    #[derive(Default)]
    struct Sink(Mutex<Vec<Change>>, Mutex<Vec<Version>>);

    impl ChangeSink for Sink {
        fn record(&self, change: Change) {
            lock(&self.0).push(change);
        }

        fn kept(&self, version: Version) {
            lock(&self.1).push(version);
        }
    }

    impl Sink {
        fn take(&self) -> Vec<(ChangeOp, String, Option<String>)> {
            std::mem::take(&mut *lock(&self.0))
                .into_iter()
                .map(|c| (c.op, c.path.to_string(), c.to.map(|t| t.to_string())))
                .collect()
        }
    }

    fn ctx() -> Ctx {
        Ctx {
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
            pid: 42,
        }
    }

    fn fs(dir: &Path, fd_cache: usize, file_handles: bool) -> (PassthroughFs, Arc<Sink>) {
        let root = rustix::fs::open(dir, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let sink = Arc::new(Sink::default());
        let config = CoreConfig {
            fd_cache,
            file_handles,
            history_max_file: None,
        };
        (
            PassthroughFs::new(root, sink.clone(), config).unwrap(),
            sink,
        )
    }

    fn name(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    fn rec(op: ChangeOp, path: &str, to: Option<&str>) -> (ChangeOp, String, Option<String>) {
        (op, path.to_string(), to.map(str::to_string))
    }

    #[test]
    fn close_is_silent_on_local_disks_only() {
        let at = |p: &str| rustix::fs::open(p, OFlags::PATH, Mode::empty()).unwrap();
        // procfs stands for every filesystem not known; tmpfs has nothing to write back.
        assert!(!sys::close_is_silent(at("/proc/self").as_fd()));
        let shm = at("/dev/shm");
        if rustix::fs::fstatfs(&shm).unwrap().f_type == 0x0102_1994 {
            assert!(sys::close_is_silent(shm.as_fd()));
        } else {
            eprintln!(
                "close_is_silent_on_local_disks_only: /dev/shm is no tmpfs here, not checked"
            );
        }
    }

    #[test]
    fn create_write_read_and_what_is_recorded() {
        let tmp = tempfile::tempdir().unwrap();
        let (fs, sink) = fs(tmp.path(), 64, true);
        let d = fs.mkdir(ctx(), ROOT, name("d"), 0o755).unwrap();
        let (f, opened) = fs
            .create(
                ctx(),
                d.ino,
                name("f"),
                0o644,
                libc::O_WRONLY | libc::O_CREAT,
            )
            .unwrap();
        assert_eq!(fs.write(ctx(), opened.fh, 0, b"hello").unwrap(), 5);
        assert_eq!(fs.write(ctx(), opened.fh, 5, b"!").unwrap(), 1);
        fs.release(opened.fh).unwrap();
        let r = fs.open(ctx(), f.ino, libc::O_RDONLY).unwrap();
        assert_eq!(fs.read(r.fh, 0, 100).unwrap(), b"hello!");
        fs.release(r.fh).unwrap();
        assert_eq!(fs.getattr(f.ino, None).unwrap().size, 6);
        fs.rename(ctx(), d.ino, name("f"), ROOT, name("g"), 0)
            .unwrap();
        fs.unlink(ctx(), ROOT, name("g")).unwrap();
        fs.rmdir(ctx(), ROOT, name("d")).unwrap();
        assert_eq!(
            sink.take(),
            vec![
                rec(ChangeOp::Mkdir, "d", None),
                rec(ChangeOp::Create, "d/f", None),
                rec(ChangeOp::OpenWrite, "d/f", None),
                rec(ChangeOp::Write, "d/f", None),
                rec(ChangeOp::CloseWrite, "d/f", None),
                rec(ChangeOp::Rename, "d/f", Some("g")),
                rec(ChangeOp::Unlink, "g", None),
                rec(ChangeOp::Rmdir, "d", None),
            ]
        );
        assert_eq!(fs.lookup(ROOT, name("d")).unwrap_err().errno, Errno::NOENT);
    }

    /// 200 files behind a cache of 4 fds: every one stays reachable, by file handle or,
    /// without handles, through the names the table tracks.
    fn evicted_inodes_reopen(file_handles: bool) {
        let tmp = tempfile::tempdir().unwrap();
        let (fs, _) = fs(tmp.path(), 4, file_handles);
        let a = fs.mkdir(ctx(), ROOT, name("a"), 0o755).unwrap();
        let b = fs.mkdir(ctx(), a.ino, name("b"), 0o755).unwrap();
        let mut files = Vec::new();
        for i in 0..200 {
            let (e, o) = fs
                .create(ctx(), b.ino, name(&format!("f{i}")), 0o644, libc::O_WRONLY)
                .unwrap();
            fs.release(o.fh).unwrap();
            files.push(e.ino);
            assert!(fs.counts().1 <= 4);
        }
        for (i, ino) in files.iter().enumerate() {
            let set = SetAttr {
                size: Some(i as u64),
                ..SetAttr::default()
            };
            assert_eq!(fs.setattr(ctx(), *ino, None, &set).unwrap().size, i as u64);
            assert!(fs.counts().1 <= 4);
        }
        // The parent directories themselves were evicted too.
        fs.rename(ctx(), ROOT, name("a"), ROOT, name("z"), 0)
            .unwrap();
        let o = fs.open(ctx(), files[7], libc::O_RDONLY).unwrap();
        assert_eq!(fs.read(o.fh, 0, 100).unwrap(), vec![0u8; 7]);
        assert_eq!(fs.path_of(files[7]).unwrap().to_string(), "z/b/f7");
    }

    #[test]
    fn evicted_inodes_reopen_by_file_handle() {
        evicted_inodes_reopen(true);
    }

    #[test]
    fn evicted_inodes_reopen_by_path() {
        evicted_inodes_reopen(false);
    }

    #[test]
    fn an_unlinked_open_file_stays_reachable_after_eviction() {
        let tmp = tempfile::tempdir().unwrap();
        let (fs, _) = fs(tmp.path(), 1, false);
        let (f, o) = fs
            .create(ctx(), ROOT, name("f"), 0o644, libc::O_RDWR)
            .unwrap();
        fs.write(ctx(), o.fh, 0, b"still here").unwrap();
        fs.unlink(ctx(), ROOT, name("f")).unwrap();
        for i in 0..3 {
            fs.mkdir(ctx(), ROOT, name(&format!("d{i}")), 0o755)
                .unwrap();
        }
        let attr = fs.getattr(f.ino, None).unwrap();
        assert_eq!((attr.size, attr.nlink), (10, 0));
        assert_eq!(fs.read(o.fh, 0, 100).unwrap(), b"still here");
    }

    #[test]
    fn readdir_resumes_across_small_replies() {
        let tmp = tempfile::tempdir().unwrap();
        let (fs, _) = fs(tmp.path(), 16, true);
        for i in 0..300 {
            std::fs::write(tmp.path().join(format!("n{i:03}")), b"").unwrap();
        }
        let dir = fs.opendir(ROOT).unwrap();
        // With a handle (OPENDIR), and without (0: the kernel sends no OPENDIR and every
        // request opens the directory afresh at the offset it names).
        for fh in [dir, 0] {
            let mut seen = Vec::new();
            let mut offset = 0;
            loop {
                let mut batch = Vec::new();
                fs.readdir(ROOT, fh, offset, |_, next, _, name| {
                    if batch.len() == 7 {
                        return true;
                    }
                    batch.push((next, name.to_string_lossy().into_owned()));
                    false
                })
                .unwrap();
                let Some(&(next, _)) = batch.last() else {
                    break;
                };
                offset = next;
                seen.extend(batch.into_iter().map(|(_, n)| n));
            }
            seen.sort();
            assert_eq!(seen.len(), 302, "handle {fh}");
            assert_eq!(&seen[..3], [".", "..", "n000"], "handle {fh}");
            // Rewind: everything again, now with lookups.
            let mut plus = 0;
            fs.readdirplus(ROOT, fh, 0, |_, _, _| {
                plus += 1;
                false
            })
            .unwrap();
            assert_eq!(plus, 302, "handle {fh}");
        }
        fs.releasedir(dir);
    }

    #[test]
    fn hard_links_and_exchange_are_reported_with_both_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let (fs, sink) = fs(tmp.path(), 16, true);
        let (a, o) = fs
            .create(ctx(), ROOT, name("a"), 0o644, libc::O_WRONLY)
            .unwrap();
        fs.release(o.fh).unwrap();
        let d = fs.mkdir(ctx(), ROOT, name("d"), 0o755).unwrap();
        sink.take();
        let linked = fs.link(ctx(), a.ino, d.ino, name("b")).unwrap();
        assert_eq!((linked.ino, linked.attr.nlink), (a.ino, 2));
        fs.rename(
            ctx(),
            ROOT,
            name("a"),
            ROOT,
            name("d"),
            libc::RENAME_EXCHANGE,
        )
        .unwrap();
        let err = fs
            .rename(
                ctx(),
                ROOT,
                name("d"),
                ROOT,
                name("a"),
                libc::RENAME_NOREPLACE,
            )
            .unwrap_err();
        assert_eq!(err.errno, Errno::EXIST);
        assert_eq!(
            sink.take(),
            vec![
                rec(ChangeOp::Link, "a", Some("d/b")),
                rec(ChangeOp::Exchange, "a", Some("d")),
            ]
        );
        // After the exchange the directory is "a": the link's path follows.
        assert_eq!(fs.path_of(d.ino).unwrap().to_string(), "a");
        assert_eq!(
            lock(&fs.table).child_path(d.ino, b"b").unwrap().to_string(),
            "a/b"
        );
        // An operation on the inode itself changed every name of the file: each is reported.
        sink.take();
        let chmod = SetAttr {
            mode: Some(0o600),
            ..SetAttr::default()
        };
        fs.setattr(ctx(), a.ino, None, &chmod).unwrap();
        let mut paths: Vec<String> = sink.take().into_iter().map(|c| c.1).collect();
        paths.sort();
        assert_eq!(paths, vec!["a/b", "d"]);
    }

    /// What `.tandem/history` of `dir` holds, by content.
    fn history_contents(dir: &Path) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(dir.join(".tandem/history"))
            .map(|d| {
                d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    #[test]
    fn what_requests_destroy_is_kept_once_per_open_and_nothing_of_new_files() {
        let tmp = tempfile::tempdir().unwrap();
        let root =
            rustix::fs::open(tmp.path(), OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let sink = Arc::new(Sink::default());
        let config = CoreConfig {
            fd_cache: 64,
            file_handles: true,
            history_max_file: Some(20),
        };
        let fs = PassthroughFs::new(root, sink.clone(), config).unwrap();
        std::fs::write(tmp.path().join("a"), "old content").unwrap();
        std::fs::write(tmp.path().join("big"), "x".repeat(21)).unwrap();
        let a = fs.lookup(ROOT, name("a")).unwrap();
        // Two overwrites through one open: kept once, before the first.
        let fh = fs.open(ctx(), a.ino, libc::O_WRONLY).unwrap().fh;
        fs.write(ctx(), fh, 0, b"NEW").unwrap();
        fs.write(ctx(), fh, 3, b"!!!").unwrap();
        fs.release(fh).unwrap();
        assert_eq!(history_contents(tmp.path()), ["old content"]);
        // An append destroys nothing; a new file has nothing to keep.
        let fh = fs
            .open(ctx(), a.ino, libc::O_WRONLY | libc::O_APPEND)
            .unwrap()
            .fh;
        fs.write(ctx(), fh, 11, b" more").unwrap();
        fs.release(fh).unwrap();
        let (_, opened) = fs
            .create(ctx(), ROOT, name("new"), 0o644, libc::O_WRONLY)
            .unwrap();
        fs.write(ctx(), opened.fh, 0, b"fresh").unwrap();
        fs.release(opened.fh).unwrap();
        assert_eq!(history_contents(tmp.path()), ["old content"]);
        // Renamed over, then deleted: each kept (a link, the same content).
        fs.rename(ctx(), ROOT, name("new"), ROOT, name("a"), 0)
            .unwrap();
        fs.unlink(ctx(), ROOT, name("a")).unwrap();
        assert_eq!(
            history_contents(tmp.path()),
            ["NEW!!!ntent more", "fresh", "old content"]
        );
        // Too large: listed, not kept; a failed unlink keeps nothing.
        let big = fs.lookup(ROOT, name("big")).unwrap();
        fs.open(ctx(), big.ino, libc::O_WRONLY | libc::O_TRUNC)
            .unwrap();
        assert!(fs.unlink(ctx(), ROOT, name("missing")).is_err());
        let kept: Vec<(String, ChangeOp, bool)> = lock(&sink.1)
            .iter()
            .map(|v| (v.path.to_string(), v.op, v.kept.is_ok()))
            .collect();
        assert_eq!(
            kept,
            [
                ("a".to_string(), ChangeOp::Write, true),
                ("a".to_string(), ChangeOp::Rename, true),
                ("a".to_string(), ChangeOp::Unlink, true),
                ("big".to_string(), ChangeOp::OpenWrite, false),
            ]
        );
        assert_eq!(history_contents(tmp.path()).len(), 3);
    }
}
