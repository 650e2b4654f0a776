//! The passthrough: inodes are the backing files' inode numbers (the root is 1), each
//! known by its path below the backing directory. Unsynced file data lives in
//! `Shared::dirty`, keyed by inode; namespace operations not yet durable in
//! `Shared::journal` (see `namespace.rs`).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::namespace::{Journal, Name};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

/// No caching in the kernel beyond a request: every stat reaches us, so a reboot or a
/// rename is never hidden by a stale entry.
const TTL: Duration = Duration::ZERO;

/// The operations a fault can be injected into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Read,
    Write,
    /// `fsync`, `fdatasync` and `fsync` of a directory.
    Fsync,
    Rename,
    Mkdir,
}

impl Op {
    pub const ALL: [Op; 5] = [Op::Read, Op::Write, Op::Fsync, Op::Rename, Op::Mkdir];

    fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Write => "write",
            Op::Fsync => "fsync",
            Op::Rename => "rename",
            Op::Mkdir => "mkdir",
        }
    }
}

/// An injected error: the `nth` (from 1) operation of kind `op` fails with `errno`, and
/// every later one too when `sticky` (a disk that stays full or read-only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub op: Op,
    pub nth: u64,
    pub errno: i32,
    pub sticky: bool,
}

/// Operations counted per kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCounts([u64; 5]);

impl OpCounts {
    pub fn get(&self, op: Op) -> u64 {
        self.0[op.index()]
    }
}

/// A file's content as programs see it, not yet durable.
struct Dirty {
    data: Vec<u8>,
    mtime: SystemTime,
}

/// What the mount and the test share, across remounts.
pub(crate) struct Shared {
    /// True after a power cut: every operation fails. Operations hold the read side for
    /// their whole duration, so a cut falls between two operations, never inside one.
    dead: RwLock<bool>,
    dirty: Mutex<HashMap<u64, Dirty>>,
    fault: Mutex<Option<Fault>>,
    counts: [AtomicU64; 5],
    /// Inode → path relative to the backing directory ("" for the root).
    paths: Mutex<HashMap<u64, PathBuf>>,
    /// Namespace operations not yet durable. Locked for a whole namespace operation, so
    /// that its order is the order of the operations.
    journal: Mutex<Journal>,
    /// Undos a cut could not apply (see `namespace.rs`), since the mount.
    undo_skipped: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// `attic`: where removed names wait until their removal is durable (a new folder
    /// next to the backing one).
    pub(crate) fn new(attic: PathBuf) -> Shared {
        Shared {
            dead: RwLock::new(false),
            dirty: Mutex::default(),
            fault: Mutex::default(),
            counts: Default::default(),
            paths: Mutex::default(),
            journal: Mutex::new(Journal::new(attic)),
            undo_skipped: AtomicU64::new(0),
        }
    }

    pub(crate) fn cut_power(&self) {
        let mut dead = self.dead.write().unwrap_or_else(|p| p.into_inner());
        if *dead {
            return;
        }
        *dead = true;
        lock(&self.dirty).clear();
        let skipped = lock(&self.journal).undo_all();
        self.undo_skipped
            .fetch_add(skipped as u64, Ordering::SeqCst);
    }

    pub(crate) fn undo_skipped(&self) -> u64 {
        self.undo_skipped.load(Ordering::SeqCst)
    }

    pub(crate) fn remove_attic(&self) {
        lock(&self.journal).remove_attic();
    }

    pub(crate) fn power_on(&self) {
        *self.dead.write().unwrap_or_else(|p| p.into_inner()) = false;
    }

    pub(crate) fn set_fault(&self, fault: Option<Fault>) {
        *lock(&self.fault) = fault;
    }

    pub(crate) fn counts(&self) -> OpCounts {
        OpCounts(std::array::from_fn(|i| {
            self.counts[i].load(Ordering::SeqCst)
        }))
    }

    pub(crate) fn reset_counts(&self) {
        for c in &self.counts {
            c.store(0, Ordering::SeqCst);
        }
    }

    /// Writes every file's unsynced data to the backing directory and makes every
    /// namespace operation durable, as the kernel's periodic writeback (or `sync(2)` on
    /// a disk) does: what programs did so far survives a later cut.
    pub(crate) fn sync_all(&self, root: &Path) -> std::io::Result<()> {
        let _on = self
            .alive()
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EIO))?;
        let mut dirty = lock(&self.dirty);
        let paths = lock(&self.paths);
        for (ino, d) in dirty.drain() {
            let Some(rel) = paths.get(&ino) else {
                continue;
            };
            if let Ok(file) = OpenOptions::new().write(true).open(root.join(rel)) {
                if file.metadata()?.ino() == ino {
                    put(&file, &d).map_err(|e| std::io::Error::from_raw_os_error(e.code()))?;
                }
            }
        }
        lock(&self.journal).settle();
        Ok(())
    }

    pub(crate) fn unsynced_names(&self) -> usize {
        lock(&self.journal).pending()
    }

    pub(crate) fn unsynced_files(&self) -> usize {
        lock(&self.dirty).len()
    }

    /// The power is on: the guard keeps it on for the operation.
    fn alive(&self) -> Result<RwLockReadGuard<'_, bool>, Errno> {
        let g = self.dead.read().unwrap_or_else(|p| p.into_inner());
        if *g {
            return Err(Errno::EIO);
        }
        Ok(g)
    }

    /// Counts an operation of kind `op`; its injected error, if this is the one.
    fn count(&self, op: Op) -> Result<(), Errno> {
        let n = self.counts[op.index()].fetch_add(1, Ordering::SeqCst) + 1;
        match *lock(&self.fault) {
            Some(f) if f.op == op && (n == f.nth || (f.sticky && n > f.nth)) => {
                Err(Errno::from_i32(f.errno))
            }
            _ => Ok(()),
        }
    }
}

enum Handle {
    File { file: File, writable: bool },
    Dir(Vec<(u64, FileType, OsString)>),
}

/// The file system served to the kernel.
pub(crate) struct Core {
    root: PathBuf,
    root_ino: u64,
    shared: Arc<Shared>,
    handles: Mutex<HashMap<u64, Handle>>,
    next_fh: AtomicU64,
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))
}

fn rx_errno(e: rustix::io::Errno) -> Errno {
    Errno::from_i32(e.raw_os_error())
}

fn kind_of(m: &Metadata) -> FileType {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_dir() {
        FileType::Directory
    } else if t.is_symlink() {
        FileType::Symlink
    } else if t.is_fifo() {
        FileType::NamedPipe
    } else if t.is_socket() {
        FileType::Socket
    } else if t.is_char_device() {
        FileType::CharDevice
    } else if t.is_block_device() {
        FileType::BlockDevice
    } else {
        FileType::RegularFile
    }
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    let nsecs = nsecs.clamp(0, 999_999_999) as u32;
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nsecs.into())
    }
}

fn timespec(t: SystemTime) -> rustix::fs::Timespec {
    let (tv_sec, tv_nsec) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos() as i64),
        Err(e) => (-(e.duration().as_secs() as i64), 0),
    };
    rustix::fs::Timespec { tv_sec, tv_nsec }
}

/// Writes `d` as the whole content of `file`, with its modification time.
fn put(file: &File, d: &Dirty) -> Result<(), Errno> {
    file.write_all_at(&d.data, 0).map_err(io_errno)?;
    file.set_len(d.data.len() as u64).map_err(io_errno)?;
    let times = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_OMIT,
        },
        last_modification: timespec(d.mtime),
    };
    rustix::fs::futimens(file, &times).map_err(rx_errno)
}

/// Reads a whole file through an open descriptor.
fn read_all(file: &File) -> std::io::Result<Vec<u8>> {
    let len = file.metadata()?.len();
    let mut data = vec![0; len as usize];
    let mut done = 0;
    while done < data.len() {
        match file.read_at(&mut data[done..], done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    data.truncate(done);
    Ok(data)
}

impl Core {
    pub(crate) fn new(root: &Path, shared: Arc<Shared>) -> std::io::Result<Core> {
        let root_ino = std::fs::symlink_metadata(root)?.ino();
        *lock(&shared.paths) = HashMap::from([(1, PathBuf::new())]);
        Ok(Core {
            root: root.to_path_buf(),
            root_ino,
            shared,
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
        })
    }

    fn ino_of(&self, m: &Metadata) -> u64 {
        if m.ino() == self.root_ino {
            1
        } else {
            m.ino()
        }
    }

    fn rel(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        lock(&self.shared.paths)
            .get(&ino.0)
            .cloned()
            .ok_or(Errno::ENOENT)
    }

    fn abs(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(self.rel(parent)?.join(name))
    }

    /// A path's attributes as programs see them: size and mtime from unsynced data.
    fn attr(&self, rel: &Path) -> Result<FileAttr, Errno> {
        let m = std::fs::symlink_metadata(self.abs(rel)).map_err(io_errno)?;
        let ino = self.ino_of(&m);
        lock(&self.shared.paths).insert(ino, rel.to_path_buf());
        let (mut size, mut mtime) = (m.size(), time(m.mtime(), m.mtime_nsec()));
        if let Some(d) = lock(&self.shared.dirty).get(&ino) {
            size = d.data.len() as u64;
            mtime = d.mtime;
        }
        Ok(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: time(m.atime(), m.atime_nsec()),
            mtime,
            ctime: time(m.ctime(), m.ctime_nsec()),
            crtime: UNIX_EPOCH,
            kind: kind_of(&m),
            perm: (m.mode() & 0o7777) as u16,
            nlink: m.nlink() as u32,
            uid: m.uid(),
            gid: m.gid(),
            rdev: m.rdev() as u32,
            blksize: 4096,
            flags: 0,
        })
    }

    /// `name` in folder `parent`, for the journal.
    fn name(&self, j: &mut Journal, parent: INodeNo, name: &OsStr) -> Result<Name, Errno> {
        let dir = self.abs(&self.rel(parent)?);
        j.name(parent.0, &dir, name).map_err(io_errno)
    }

    /// Logs a name just created in `parent`, holding backing inode `ino`.
    fn created(
        &self,
        j: &mut Journal,
        parent: INodeNo,
        name: &OsStr,
        ino: u64,
        dir: bool,
    ) -> Result<(), Errno> {
        let at = self.name(j, parent, name)?;
        j.created(parent.0, at, ino, dir);
        Ok(())
    }

    fn new_fh(&self, h: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::SeqCst);
        lock(&self.handles).insert(fh, h);
        fh
    }

    /// Runs `f` on the open file `fh`.
    fn with_file<T>(
        &self,
        fh: FileHandle,
        f: impl FnOnce(&File, bool) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        match lock(&self.handles).get(&fh.0) {
            Some(Handle::File { file, writable }) => f(file, *writable),
            _ => Err(Errno::EBADF),
        }
    }

    /// The unsynced content of `ino`, loaded from the backing file on first change.
    fn dirty_of<'a>(
        map: &'a mut HashMap<u64, Dirty>,
        ino: u64,
        file: &File,
    ) -> Result<&'a mut Dirty, Errno> {
        match map.entry(ino) {
            Entry::Occupied(e) => Ok(e.into_mut()),
            Entry::Vacant(e) => {
                let data = read_all(file).map_err(io_errno)?;
                let m = file.metadata().map_err(io_errno)?;
                let mtime = time(m.mtime(), m.mtime_nsec());
                Ok(e.insert(Dirty { data, mtime }))
            }
        }
    }

    fn do_write(&self, ino: u64, fh: FileHandle, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        let _on = self.shared.alive()?;
        self.shared.count(Op::Write)?;
        self.with_file(fh, |file, _| {
            let mut map = lock(&self.shared.dirty);
            let d = Self::dirty_of(&mut map, ino, file)?;
            let end = offset as usize + data.len();
            if d.data.len() < end {
                d.data.resize(end, 0);
            }
            d.data[offset as usize..end].copy_from_slice(data);
            d.mtime = SystemTime::now();
            Ok(data.len() as u32)
        })
    }

    fn do_read(&self, ino: u64, fh: FileHandle, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let _on = self.shared.alive()?;
        self.shared.count(Op::Read)?;
        if let Some(d) = lock(&self.shared.dirty).get(&ino) {
            let start = (offset as usize).min(d.data.len());
            let end = (start + size as usize).min(d.data.len());
            return Ok(d.data[start..end].to_vec());
        }
        self.with_file(fh, |file, _| {
            let mut buf = vec![0; size as usize];
            let mut done = 0;
            while done < buf.len() {
                match file.read_at(&mut buf[done..], offset + done as u64) {
                    Ok(0) => break,
                    Ok(n) => done += n,
                    Err(e) => return Err(io_errno(e)),
                }
            }
            buf.truncate(done);
            Ok(buf)
        })
    }

    /// Makes `ino`'s unsynced data durable: written to the backing file, whole, under
    /// the dirty lock (a power cut waits for it or comes before it).
    fn write_back(&self, ino: u64, fh: FileHandle) -> Result<(), Errno> {
        let mut map = lock(&self.shared.dirty);
        let Some(d) = map.get(&ino) else {
            return Ok(());
        };
        let put = |file: &File| put(file, d);
        let via_handle = self.with_file(fh, |file, writable| match writable {
            true => put(file).map(|()| true),
            false => Ok(false),
        })?;
        if !via_handle {
            // Opened read-only (fsync is allowed on such a file): write through the path,
            // if it still names this inode; an unlinked file has nothing left to keep.
            let abs = self.abs(&self.rel(INodeNo(ino))?);
            if let Ok(file) = OpenOptions::new().write(true).open(&abs) {
                if file.metadata().map_err(io_errno)?.ino() == ino {
                    put(&file)?;
                }
            }
        }
        map.remove(&ino);
        Ok(())
    }

    fn do_setattr(
        &self,
        ino: INodeNo,
        mode: Option<u32>,
        size: Option<u64>,
        times: (Option<TimeOrNow>, Option<TimeOrNow>),
        fh: Option<FileHandle>,
    ) -> Result<FileAttr, Errno> {
        let _on = self.shared.alive()?;
        let rel = self.rel(ino)?;
        let abs = self.abs(&rel);
        if let Some(mode) = mode {
            std::fs::set_permissions(&abs, std::fs::Permissions::from_mode(mode & 0o7777))
                .map_err(io_errno)?;
        }
        if let Some(size) = size {
            let resize = |file: &File| {
                let mut map = lock(&self.shared.dirty);
                let d = Self::dirty_of(&mut map, ino.0, file)?;
                d.data.resize(size as usize, 0);
                d.mtime = SystemTime::now();
                Ok(())
            };
            match fh {
                Some(fh) => self.with_file(fh, |f, _| resize(f))?,
                None => resize(&File::open(&abs).map_err(io_errno)?)?,
            }
        }
        if times.0.is_some() || times.1.is_some() {
            self.set_times(ino.0, &abs, times)?;
        }
        self.attr(&rel)
    }

    fn set_times(
        &self,
        ino: u64,
        abs: &Path,
        (atime, mtime): (Option<TimeOrNow>, Option<TimeOrNow>),
    ) -> Result<(), Errno> {
        let ts = |t: Option<TimeOrNow>| match t {
            None => rustix::fs::Timespec {
                tv_sec: 0,
                tv_nsec: rustix::fs::UTIME_OMIT,
            },
            Some(TimeOrNow::Now) => timespec(SystemTime::now()),
            Some(TimeOrNow::SpecificTime(t)) => timespec(t),
        };
        let times = rustix::fs::Timestamps {
            last_access: ts(atime),
            last_modification: ts(mtime),
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            abs,
            &times,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(rx_errno)?;
        if let (Some(m), Some(d)) = (mtime, lock(&self.shared.dirty).get_mut(&ino)) {
            d.mtime = match m {
                TimeOrNow::Now => SystemTime::now(),
                TimeOrNow::SpecificTime(t) => t,
            };
        }
        Ok(())
    }

    fn do_open(&self, ino: INodeNo, flags: OpenFlags) -> Result<u64, Errno> {
        let _on = self.shared.alive()?;
        let abs = self.abs(&self.rel(ino)?);
        let writable = flags.acc_mode() != fuser::OpenAccMode::O_RDONLY;
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&abs)
            .map_err(io_errno)?;
        if flags.0 & libc::O_TRUNC != 0 && writable {
            let mut map = lock(&self.shared.dirty);
            let d = Self::dirty_of(&mut map, ino.0, &file)?;
            d.data.clear();
            d.mtime = SystemTime::now();
        }
        Ok(self.new_fh(Handle::File { file, writable }))
    }

    fn do_create(
        &self,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        flags: i32,
    ) -> Result<(FileAttr, u64), Errno> {
        let _on = self.shared.alive()?;
        let mut j = lock(&self.shared.journal);
        let rel = self.child(parent, name)?;
        let mut o = OpenOptions::new();
        o.read(true).write(true).mode(mode & 0o7777);
        let file = match o.clone().create_new(true).open(self.abs(&rel)) {
            Ok(file) => {
                let ino = file.metadata().map_err(io_errno)?.ino();
                self.created(&mut j, parent, name, ino, false)?;
                file
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::AlreadyExists && flags & libc::O_EXCL == 0 =>
            {
                o.open(self.abs(&rel)).map_err(io_errno)?
            }
            Err(e) => return Err(io_errno(e)),
        };
        drop(j);
        let attr = self.attr(&rel)?;
        if flags & libc::O_TRUNC != 0 {
            let mut map = lock(&self.shared.dirty);
            let d = Self::dirty_of(&mut map, attr.ino.0, &file)?;
            d.data.clear();
        }
        let fh = self.new_fh(Handle::File {
            file,
            writable: true,
        });
        Ok((self.attr(&rel)?, fh))
    }

    fn do_mkdir(&self, parent: INodeNo, name: &OsStr, mode: u32) -> Result<FileAttr, Errno> {
        let _on = self.shared.alive()?;
        self.shared.count(Op::Mkdir)?;
        let mut j = lock(&self.shared.journal);
        let rel = self.child(parent, name)?;
        std::fs::DirBuilder::new()
            .mode(mode & 0o7777)
            .create(self.abs(&rel))
            .map_err(io_errno)?;
        let attr = self.attr(&rel)?;
        let ino = std::fs::symlink_metadata(self.abs(&rel))
            .map_err(io_errno)?
            .ino();
        self.created(&mut j, parent, name, ino, true)?;
        Ok(attr)
    }

    /// Forgets the unsynced data of an inode whose last name went away (its number may
    /// be given to a new file).
    fn gone(&self, before: Option<Metadata>) {
        if let Some(m) = before {
            if m.nlink() <= 1 || m.is_dir() {
                let ino = self.ino_of(&m);
                lock(&self.shared.dirty).remove(&ino);
                lock(&self.shared.paths).remove(&ino);
            }
        }
    }

    fn do_remove(&self, parent: INodeNo, name: &OsStr, dir: bool) -> Result<(), Errno> {
        let _on = self.shared.alive()?;
        let mut j = lock(&self.shared.journal);
        let abs = self.abs(&self.child(parent, name)?);
        let before = std::fs::symlink_metadata(&abs).ok();
        let at = self.name(&mut j, parent, name)?;
        j.remove(parent.0, at, dir).map_err(io_errno)?;
        self.gone(before);
        Ok(())
    }

    fn do_rename(
        &self,
        from: (INodeNo, &OsStr),
        to: (INodeNo, &OsStr),
        flags: RenameFlags,
    ) -> Result<(), Errno> {
        let _on = self.shared.alive()?;
        self.shared.count(Op::Rename)?;
        let mut j = lock(&self.shared.journal);
        let names = (
            self.name(&mut j, from.0, from.1)?,
            self.name(&mut j, to.0, to.1)?,
        );
        let parents = (from.0 .0, to.0 .0);
        let (from, to) = (self.child(from.0, from.1)?, self.child(to.0, to.1)?);
        let replaced = std::fs::symlink_metadata(self.abs(&to)).ok();
        let flags = rustix::fs::RenameFlags::from_bits_retain(flags.bits());
        j.rename(parents, names.0, names.1, flags)
            .map_err(io_errno)?;
        drop(j);
        let flags = RenameFlags::from_bits_retain(flags.bits());
        let exchange = flags.contains(RenameFlags::RENAME_EXCHANGE);
        if !exchange {
            self.gone(replaced);
        }
        // `join("")` would add a trailing slash, which a file's path must not have.
        let under = |base: &Path, rest: &Path| match rest.as_os_str().is_empty() {
            true => base.to_path_buf(),
            false => base.join(rest),
        };
        let mut paths = lock(&self.shared.paths);
        for p in paths.values_mut() {
            if let Ok(rest) = p.strip_prefix(&from) {
                *p = under(&to, rest);
            } else if let (true, Ok(rest)) = (exchange, p.strip_prefix(&to)) {
                *p = under(&from, rest);
            }
        }
        Ok(())
    }

    fn do_opendir(&self, ino: INodeNo) -> Result<u64, Errno> {
        let _on = self.shared.alive()?;
        let abs = self.abs(&self.rel(ino)?);
        let mut entries = Vec::new();
        for e in std::fs::read_dir(&abs).map_err(io_errno)? {
            let e = e.map_err(io_errno)?;
            let m = e.metadata().map_err(io_errno)?;
            entries.push((self.ino_of(&m), kind_of(&m), e.file_name()));
        }
        Ok(self.new_fh(Handle::Dir(entries)))
    }

    fn do_readdir(
        &self,
        fh: FileHandle,
        offset: u64,
        reply: &mut ReplyDirectory,
    ) -> Result<(), Errno> {
        let _on = self.shared.alive()?;
        let handles = lock(&self.handles);
        let Some(Handle::Dir(entries)) = handles.get(&fh.0) else {
            return Err(Errno::EBADF);
        };
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*ino), i as u64 + 1, *kind, name) {
                break;
            }
        }
        Ok(())
    }
}

fn entry(reply: ReplyEntry, r: Result<FileAttr, Errno>) {
    match r {
        Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
        Err(e) => reply.error(e),
    }
}

fn empty(reply: ReplyEmpty, r: Result<(), Errno>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

impl Filesystem for Core {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = self
            .shared
            .alive()
            .and_then(|_on| self.attr(&self.child(parent, name)?));
        entry(reply, r);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self
            .shared
            .alive()
            .and_then(|_on| self.attr(&self.rel(ino)?))
        {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
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
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let owner = (uid.is_some() || gid.is_some()).then(|| {
            let abs = self.abs(&self.rel(ino)?);
            let id = |v: Option<u32>| v.map(rustix::process::Uid::from_raw);
            let gid = gid.map(rustix::process::Gid::from_raw);
            rustix::fs::chownat(
                rustix::fs::CWD,
                &abs,
                id(uid),
                gid,
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(rx_errno)
        });
        let r = owner
            .unwrap_or(Ok(()))
            .and_then(|()| self.do_setattr(ino, mode, size, (atime, mtime), fh));
        match r {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let r = self
            .shared
            .alive()
            .and_then(|_on| std::fs::read_link(self.abs(&self.rel(ino)?)).map_err(io_errno));
        match r {
            Ok(t) => reply.data(t.as_os_str().as_bytes()),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        entry(reply, self.do_mkdir(parent, name, mode & !umask));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(reply, self.do_remove(parent, name, false));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(reply, self.do_remove(parent, name, true));
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let r = self.shared.alive().and_then(|_on| {
            let mut j = lock(&self.shared.journal);
            let rel = self.child(parent, link_name)?;
            std::os::unix::fs::symlink(target, self.abs(&rel)).map_err(io_errno)?;
            let ino = std::fs::symlink_metadata(self.abs(&rel))
                .map_err(io_errno)?
                .ino();
            self.created(&mut j, parent, link_name, ino, false)?;
            drop(j);
            self.attr(&rel)
        });
        entry(reply, r);
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let r = self.shared.alive().and_then(|_on| {
            let mut j = lock(&self.shared.journal);
            let rel = self.child(newparent, newname)?;
            std::fs::hard_link(self.abs(&self.rel(ino)?), self.abs(&rel)).map_err(io_errno)?;
            let backing_ino = std::fs::symlink_metadata(self.abs(&rel))
                .map_err(io_errno)?
                .ino();
            self.created(&mut j, newparent, newname, backing_ino, false)?;
            drop(j);
            self.attr(&rel)
        });
        entry(reply, r);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        empty(
            reply,
            self.do_rename((parent, name), (newparent, newname), flags),
        );
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.do_open(ino, flags) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.do_read(ino.0, fh, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.do_write(ino.0, fh, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2) makes nothing durable.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        lock(&self.handles).remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let r = self.shared.alive().and_then(|_on| {
            self.shared.count(Op::Fsync)?;
            self.write_back(ino.0, fh)
        });
        empty(reply, r);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.do_opendir(ino) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        match self.do_readdir(fh, offset, &mut reply) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
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
        lock(&self.handles).remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Makes the namespace operations in this folder durable (see `namespace.rs`).
        let r = self.shared.alive().and_then(|_on| {
            self.shared.count(Op::Fsync)?;
            lock(&self.shared.journal).dir_synced(ino.0);
            Ok(())
        });
        empty(reply, r);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match rustix::fs::statvfs(&self.root) {
            Ok(s) => reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                s.f_bsize as u32,
                s.f_namemax as u32,
                s.f_frsize as u32,
            ),
            Err(e) => reply.error(rx_errno(e)),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        match self.do_create(parent, name, mode & !umask, flags) {
            Ok((attr, fh)) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }
}
