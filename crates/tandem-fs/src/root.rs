//! `Root`: one side of the pair, reached only through a directory fd opened once.
//!
//! Invariant 6 (confinement): every path is resolved with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS)` from the root fd, and the last component is acted on with `*at`
//! calls that do not follow symlinks. A symlink or `..` planted anywhere in a path, even
//! between scan and apply, makes the call fail instead of leaving the root.

use crate::os::{AsFd, OwnedFd};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::os::fs::{openat, statat, AtFlags, FileType, Mode, OFlags, Stat};
use crate::os::io::Errno;
use tandem_core::{Entry, Keep, Kind, Owner, RelPath};

use crate::error::{FsError, Result};
use crate::identity::Place;

pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
    dev: u64,
    /// The mount the root was reached through when opened.
    mnt_id: Option<u64>,
    /// False when something is mounted over `path` (the source under `tandem mount`): the
    /// path then leads to the mount, not to this directory.
    path_leads_here: bool,
    /// Folders whose entries changed since the last [`Root::sync_dirs`], by device and
    /// inode, held open (so that a folder renamed since is still the one fsynced). Kept
    /// only while [`Root::track_dirs`] asks for it.
    dirs: Mutex<HashMap<(u64, u64), NotedDir>>,
    track_dirs: AtomicBool,
    /// Held for a whole [`Root::sync_dirs`]: two flushes never interleave (one could
    /// otherwise fsync a folder that lost a name before the other fsyncs the trash folder
    /// that kept it).
    syncing: Mutex<()>,
    /// What the apply functions give this side beyond content, mode and times.
    keep: Keep,
    /// What this side refused to hold (extended attributes, ACLs), per kind and reason:
    /// the first path and how many, for the run's report ([`Root::take_refusals`]).
    refusals: Mutex<Refusals>,
}

/// Per (kind, reason): the first path and how many.
type Refusals = BTreeMap<(&'static str, &'static str), (RelPath, u64)>;

/// Something a side could not hold, on `count` files (`first` among them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `extended attributes`, `ACLs`.
    pub kind: &'static str,
    pub why: &'static str,
    pub first: RelPath,
    pub count: u64,
}

/// A folder noted for [`Root::sync_dirs`].
struct NotedDir {
    fd: OwnedFd,
    rel: RelPath,
    /// The folder keeps a version another folder let go of (the trash, and the folders
    /// made for it): fsynced before the others.
    keeps: bool,
}

/// fsyncs a noted folder (see [`Root::sync_dirs`]).
fn fsync_dir(d: &NotedDir) -> Result<()> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let fd = match openat(&d.fd, ".", flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::ACCESS | Errno::PERM) => return Ok(()),
        Err(e) => return Err(FsError::io(&d.rel, "open a folder to fsync it", e)),
    };
    crate::sys::fsync(&fd).map_err(|e| FsError::io(&d.rel, "fsync a folder", e))
}

/// Folders held open for [`Root::sync_dirs`] before they are fsynced early, so that a
/// huge batch does not run out of descriptors.
const MAX_HELD_DIRS: usize = 256;

impl Root {
    /// Opens the directory at `path` (which must be a directory, not a symlink to one).
    pub fn open(path: &Path) -> std::io::Result<Root> {
        let fd = crate::os::fs::open(
            path,
            crate::sys::O_PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let st = crate::os::fs::fstat(&fd)?;
        let mnt_id = Place::of_fd(&fd)?.mnt_id;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
            dev: crate::sys::st_dev(&st),
            mnt_id,
            path_leads_here: true,
            dirs: Mutex::default(),
            track_dirs: AtomicBool::new(false),
            syncing: Mutex::default(),
            keep: Keep::default(),
            refusals: Mutex::default(),
        })
    }

    /// A root from a directory fd opened earlier, before something was mounted over `path`.
    pub fn from_fd(fd: OwnedFd, path: &Path) -> std::io::Result<Root> {
        let st = crate::os::fs::fstat(&fd)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(std::io::Error::other("not a directory"));
        }
        let mnt_id = Place::of_fd(&fd)?.mnt_id;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
            dev: crate::sys::st_dev(&st),
            mnt_id,
            path_leads_here: false,
            dirs: Mutex::default(),
            track_dirs: AtomicBool::new(false),
            syncing: Mutex::default(),
            keep: Keep::default(),
            refusals: Mutex::default(),
        })
    }

    /// What the apply functions give this side beyond content, mode and times (owners,
    /// setuid bits): set once, before the root is shared.
    pub fn set_keep(&mut self, keep: Keep) {
        self.keep = keep;
    }

    pub fn keep(&self) -> Keep {
        self.keep
    }

    /// Notes that this side refused to hold `kind` at `rel` (see [`Refusal`]).
    pub(crate) fn note_refusal(&self, kind: &'static str, rel: &RelPath, why: &'static str) {
        let mut r = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        r.entry((kind, why)).or_insert_with(|| (rel.clone(), 0)).1 += 1;
    }

    /// What this side refused since the last call, one line per kind and reason.
    pub fn take_refusals(&self) -> Vec<Refusal> {
        let mut r = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *r)
            .into_iter()
            .map(|((kind, why), (first, count))| Refusal {
                kind,
                why,
                first,
                count,
            })
            .collect()
    }

    /// `stat_at`, with the kept extended attributes read where the run keeps them.
    pub fn stat_in(&self, dir: &OwnedFd, name: &[u8], rel: &RelPath) -> Result<Option<Entry>> {
        let Some(e) = stat_at(dir, name, rel)? else {
            return Ok(None);
        };
        self.with_xattrs(e, &crate::xattrs::At::child(dir, name), rel)
            .map(Some)
    }

    /// Fills in `e.xattrs` from `at` where the run keeps extended attributes (files and
    /// folders: Linux keeps no user attributes on symlinks).
    pub(crate) fn with_xattrs(
        &self,
        mut e: Entry,
        at: &crate::xattrs::At,
        rel: &RelPath,
    ) -> Result<Entry> {
        if self.keep.reads_xattrs() && matches!(e.kind, Kind::File | Kind::Dir) {
            e.xattrs = match at.read(&self.keep) {
                Ok(x) => x.digest(),
                Err(err) if Errno::from_io_error(&err) == Some(Errno::NOENT) => None,
                Err(err) => return Err(FsError::io(rel, "read extended attributes", err)),
            };
        }
        Ok(e)
    }

    /// [`Root::with_xattrs`], where the attributes may already be `known` (what was found
    /// when nothing had to be written): then they are not read again.
    pub(crate) fn with_known_xattrs(
        &self,
        mut e: Entry,
        known: Option<crate::xattrs::Xattrs>,
        at: &crate::xattrs::At,
        rel: &RelPath,
    ) -> Result<Entry> {
        match known {
            Some(x) if self.keep.reads_xattrs() && matches!(e.kind, Kind::File | Kind::Dir) => {
                e.xattrs = x.digest();
                Ok(e)
            }
            _ => self.with_xattrs(e, at, rel),
        }
    }

    /// From now on (`on`), the folders whose entries the apply functions change are
    /// remembered, for [`Root::sync_dirs`] to fsync. Invariant 3 with durability asked
    /// for: a rename, link or mkdir is durable only once its folder is fsynced.
    pub fn track_dirs(&self, on: bool) {
        self.track_dirs.store(on, Ordering::SeqCst);
    }

    /// Remembers that an entry of the folder `dir` (an fd beneath this root, at `rel`) was
    /// created, renamed or removed. Called after the change, so that a flush running
    /// meanwhile (another worker's, or the commit's) cannot take the note before it.
    pub(crate) fn note_dir(&self, dir: &OwnedFd, rel: &RelPath) -> Result<()> {
        self.note(dir, rel, false)
    }

    /// Like [`Root::note_dir`], for a folder that now keeps a version that another folder
    /// is letting go of (the trash, and the folders made for it): it is made durable
    /// first, lest a cut keep the removal and lose the kept name.
    pub(crate) fn note_keeping_dir(&self, dir: &OwnedFd, rel: &RelPath) -> Result<()> {
        self.note(dir, rel, true)
    }

    fn note(&self, dir: &OwnedFd, rel: &RelPath, keeps: bool) -> Result<()> {
        use std::collections::hash_map::Entry as Slot;
        if !self.track_dirs.load(Ordering::SeqCst) {
            return Ok(());
        }
        let st = crate::os::fs::fstat(dir).map_err(|e| FsError::io(rel, "stat folder", e))?;
        let full = {
            let mut dirs = self.dirs.lock().unwrap_or_else(|p| p.into_inner());
            match dirs.entry((crate::sys::st_dev(&st), st.st_ino)) {
                Slot::Occupied(mut o) => o.get_mut().keeps |= keeps,
                Slot::Vacant(v) => {
                    let fd = crate::os::io::fcntl_dupfd_cloexec(dir, 0)
                        .map_err(|e| FsError::io(rel, "hold folder", e))?;
                    let rel = rel.clone();
                    v.insert(NotedDir { fd, rel, keeps });
                }
            }
            dirs.len() >= MAX_HELD_DIRS
        };
        match full {
            true => self.sync_dirs(),
            false => Ok(()),
        }
    }

    /// fsyncs each folder noted since the last call, once: those that keep versions
    /// (the trash) first, so that a version is never let go of durably before the name
    /// that keeps it is durable. A folder removed since has nothing left to make durable
    /// (its removal is its parent's); one this user may not open for reading cannot be
    /// fsynced and is passed over.
    pub fn sync_dirs(&self) -> Result<()> {
        let _one_at_a_time = self.syncing.lock().unwrap_or_else(|p| p.into_inner());
        let dirs = std::mem::take(&mut *self.dirs.lock().unwrap_or_else(|p| p.into_inner()));
        let (mut order, rest): (Vec<_>, Vec<_>) = dirs.into_iter().partition(|(_, d)| d.keeps);
        order.extend(rest);
        let mut order = order.into_iter();
        while let Some((key, d)) = order.next() {
            if let Err(e) = fsync_dir(&d) {
                // Not durable yet: noted again, for the next flush to retry.
                let mut dirs = self.dirs.lock().unwrap_or_else(|p| p.into_inner());
                for (key, d) in std::iter::once((key, d)).chain(order) {
                    let keeps = d.keeps;
                    dirs.entry(key).or_insert(d).keeps |= keeps;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Whether every writer of this root is seen as it opens and closes files: a root
    /// reached through `from_fd`, the folder a tandem mount serves, whose replicator copies
    /// a file only once its last writer closed it. A copy from such a root need not wait for
    /// the file to settle (see `apply::SETTLE`): no writer can be paused halfway through it.
    pub fn writers_tracked(&self) -> bool {
        !self.path_leads_here
    }

    /// The path it was opened at (for messages; never used for access).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn dev(&self) -> u64 {
        self.dev
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Whether `syncfs` makes this root's data durable (see `sys::syncfs_is_durable`).
    pub fn syncfs_is_durable(&self) -> bool {
        crate::sys::HAS_SYNCFS && crate::sys::syncfs_is_durable(&self.fd)
    }

    /// Is the root still there, and still the directory we opened, at the same place: its
    /// path leads to the same directory (device and inode) through the same mount? A file
    /// system unmounted under us (`umount -l`) leaves the fd working on a detached tree
    /// that nobody sees any more.
    pub fn still_present(&self) -> bool {
        if !self.path_leads_here {
            // Still linked into its parent: a removed directory has no links left.
            return crate::os::fs::fstat(&self.fd).is_ok_and(|st| st.st_nlink > 0);
        }
        match (Place::of_path(&self.path), Place::of_fd(&self.fd)) {
            (Ok(path), Ok(fd)) => path == fd && fd.mnt_id == self.mnt_id,
            _ => false,
        }
    }

    /// Opens `rel` (a path beneath the root) with `flags`, never crossing a symlink or
    /// leaving the root.
    ///
    /// `openat2` takes a path of at most PATH_MAX bytes; a longer `rel` (a deep tree of long
    /// names) is resolved in pieces, each piece beneath the directory fd the previous one
    /// opened, with the same flags at every step (invariant 6 holds for each piece, so for
    /// the whole). Paths of up to `ONE_CALL_MAX` bytes, nearly all of them, take one call.
    pub fn open_beneath(
        &self,
        rel: &RelPath,
        flags: OFlags,
        mode: Mode,
    ) -> std::result::Result<OwnedFd, Errno> {
        let flags = flags | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        let bytes = rel.as_bytes();
        if bytes.len() <= ONE_CALL_MAX {
            return open_beneath_at(&self.fd, bytes, flags, mode);
        }
        let pieces = split_pieces(bytes, ONE_CALL_MAX);
        let Some((last, dirs)) = pieces.split_last() else {
            return open_beneath_at(&self.fd, bytes, flags, mode);
        };
        let dir_flags = crate::sys::O_PATH | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        let mut cur: Option<OwnedFd> = None;
        for piece in dirs {
            let at = cur.as_ref().unwrap_or(&self.fd);
            cur = Some(open_beneath_at(at, piece, dir_flags, Mode::empty())?);
        }
        open_beneath_at(cur.as_ref().unwrap_or(&self.fd), last, flags, mode)
    }

    /// An `O_PATH` fd of the directory holding `rel`, and `rel`'s name in it.
    /// A parent that vanished, or became a file or a symlink, since the scan makes the step
    /// raced (planned again), never followed.
    pub fn parent(&self, rel: &RelPath) -> Result<(OwnedFd, Vec<u8>)> {
        let parent = rel.parent().unwrap_or_default();
        match self.parent_raw(rel) {
            Ok(x) => Ok(x),
            Err(e @ (Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::XDEV)) => {
                Err(FsError::raced(
                    &parent,
                    format!(
                        "a parent folder vanished or was replaced ({})",
                        std::io::Error::from(e)
                    ),
                ))
            }
            Err(e) => Err(FsError::io(&parent, "open parent directory", e)),
        }
    }

    fn parent_raw(&self, rel: &RelPath) -> std::result::Result<(OwnedFd, Vec<u8>), Errno> {
        let parent = rel.parent().unwrap_or_default();
        let fd = self.open_beneath(
            &parent,
            crate::sys::O_PATH | OFlags::DIRECTORY,
            Mode::empty(),
        )?;
        Ok((fd, rel.file_name().to_vec()))
    }

    /// `--hard-links`: the inode number of the file at `rel` when it has other names there
    /// (a regular file with more than one link); `None` otherwise, or when it cannot be read.
    pub fn shared_file(&self, rel: &RelPath) -> Option<u64> {
        let (dir, name) = self.parent_raw(rel).ok()?;
        let st = statat(&dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW).ok()?;
        let file = FileType::from_raw_mode(st.st_mode) == FileType::RegularFile;
        (file && st.st_nlink > 1).then_some(st.st_ino)
    }

    /// What is at `rel` now (`None` if nothing), without following a final symlink.
    pub fn stat(&self, rel: &RelPath) -> Result<Option<Entry>> {
        if rel.is_root() {
            let st = crate::os::fs::fstat(&self.fd).map_err(|e| FsError::io(rel, "stat", e))?;
            let e = entry_from_stat(&st, None);
            return self
                .with_xattrs(e, &crate::xattrs::At::fd(&self.fd), rel)
                .map(Some);
        }
        let (dir, name) = match self.parent_raw(rel) {
            Ok(x) => x,
            Err(Errno::NOENT | Errno::NOTDIR) => return Ok(None),
            Err(e) => {
                return Err(FsError::io(
                    &rel.parent().unwrap_or_default(),
                    "open parent directory",
                    e,
                ))
            }
        };
        self.stat_in(&dir, &name, rel)
    }
}

impl Root {
    /// The modification time (nanoseconds) of the folder at `rel`; `None` when nothing, or
    /// something other than a folder, is there. Folder times are not part of an `Entry`
    /// (they change with every name added or removed, and are never compared).
    pub fn dir_mtime(&self, rel: &RelPath) -> Result<Option<i64>> {
        let (dir, name) = match self.parent_raw(rel) {
            Ok(x) => x,
            Err(Errno::NOENT | Errno::NOTDIR) => return Ok(None),
            Err(e) => return Err(FsError::io(rel, "open parent directory", e)),
        };
        match statat(&dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                Ok(Some(mtime_ns(&st)))
            }
            Ok(_) | Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(FsError::io(rel, "stat folder", e)),
        }
    }
}

/// Creates the folder `path` (its parent must exist): the target a first sync makes.
pub fn create_root(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir(path)?;
    // The new name is durable only once its folder is fsynced, and the baseline will
    // soon say that this folder holds the pair's files (invariant 4). A parent this user
    // may not read cannot be fsynced; the folder is made all the same.
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match std::fs::File::open(parent) {
        Ok(dir) => dir.sync_all(),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Ok(()),
        Err(e) => Err(e),
    }
}

/// The longest relative path `open_beneath` hands to one `openat2` call. Half of PATH_MAX:
/// any path below it takes the fast path; a longer one is split at component boundaries
/// into pieces no longer than this (a component is at most 255 bytes, so each piece holds
/// at least one).
const ONE_CALL_MAX: usize = 2048;

/// `path` (relative, no empty components) cut at slashes into pieces of at most `max`
/// bytes each, except for a single component longer than `max`, which is its own piece.
fn split_pieces(path: &[u8], max: usize) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut end = 0; // end of the last whole component that fits in the current piece
    for (i, &b) in path
        .iter()
        .enumerate()
        .chain(std::iter::once((path.len(), &b'/')))
    {
        if b != b'/' {
            continue;
        }
        if i - start > max && end > start {
            pieces.push(&path[start..end]);
            start = end + 1;
        }
        end = i;
    }
    pieces.push(&path[start..]);
    pieces
}

/// `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` of `path` beneath `dir` (`dir` itself
/// when `path` is empty), with `flags` as given (`O_NOFOLLOW` included by the caller).
fn open_beneath_at(
    dir: &OwnedFd,
    path: &[u8],
    flags: OFlags,
    mode: Mode,
) -> std::result::Result<OwnedFd, Errno> {
    let path: &[u8] = if path.is_empty() { b"." } else { path };
    match crate::sys::open_resolve_beneath(dir, path, flags, mode) {
        Err(Errno::NOSYS) => open_walk(dir, path, flags, mode),
        Err(Errno::AGAIN) => crate::sys::open_resolve_beneath(dir, path, flags, mode),
        r => r,
    }
}

/// Fallback for kernels without `openat2`: one component at a time, `O_NOFOLLOW`.
fn open_walk(
    dir: &OwnedFd,
    path: &[u8],
    flags: OFlags,
    mode: Mode,
) -> std::result::Result<OwnedFd, Errno> {
    let comps: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .collect();
    let Some((last, dirs)) = comps.split_last() else {
        return openat(dir, ".", flags, mode);
    };
    let mut cur = openat(
        dir,
        ".",
        crate::sys::O_PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for c in dirs {
        cur = openat(
            &cur,
            *c,
            crate::sys::O_PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
    }
    openat(&cur, *last, flags, mode)
}

/// `lstat` of `name` in `dir`, as an `Entry` (symlink targets read).
pub fn stat_at(dir: &impl AsFd, name: &[u8], rel: &RelPath) -> Result<Option<Entry>> {
    match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => {
            let link = if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
                Some(
                    crate::os::fs::readlinkat(dir, name, Vec::new())
                        .map_err(|e| FsError::io(rel, "readlink", e))?
                        .into_bytes(),
                )
            } else {
                None
            };
            Ok(Some(entry_from_stat(&st, link)))
        }
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(FsError::io(rel, "stat", e)),
    }
}

// `st_mtime_nsec` is an `i64` on macOS, a `u64` or `i64` on Linux (by architecture).
#[allow(clippy::unnecessary_cast)]
pub fn mtime_ns(st: &Stat) -> i64 {
    st.st_mtime
        .saturating_mul(1_000_000_000)
        .saturating_add(st.st_mtime_nsec as i64)
}

pub fn entry_from_stat(st: &Stat, link: Option<Vec<u8>>) -> Entry {
    let mode = crate::sys::kept_mode(st);
    let ino = st.st_ino;
    let mut e = match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => Entry::file(st.st_size as u64, mtime_ns(st), mode, ino),
        FileType::Directory => Entry::dir(mode, ino),
        FileType::Symlink => Entry::symlink(link.unwrap_or_default(), ino),
        _ => match crate::sys::link_not_synced(st) {
            Some(why) => Entry::problem(why),
            None => Entry::special(ino),
        },
    };
    // Free with the stat; compared only where the run keeps owners.
    e.owner = Some(Owner {
        uid: st.st_uid,
        gid: st.st_gid,
    });
    e
}

/// Does the entry on disk still match what the plan saw? Content identity for files is
/// inode, size and mtime; for links, inode and target; for directories, the inode.
pub fn same_object(now: &Entry, planned: &Entry) -> bool {
    if now.kind != planned.kind || now.ino != planned.ino {
        return false;
    }
    match now.kind {
        tandem_core::Kind::File => now.size == planned.size && now.mtime == planned.mtime,
        tandem_core::Kind::Symlink => now.link == planned.link,
        _ => true,
    }
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::os::OwnedFd;
    use std::path::Path;

    use crate::os::fs::{mkdirat, openat, symlinkat, Mode, OFlags};
    use crate::os::io::Errno;
    use tandem_core::RelPath;

    use super::{split_pieces, Root, ONE_CALL_MAX};

    /// Levels of 255-byte names: from the 16th on, the path is over PATH_MAX.
    const LEVELS: usize = 20;

    fn level(i: usize) -> Vec<u8> {
        let mut n = format!("{i:02}-").into_bytes();
        n.resize(255, b'd');
        n
    }

    fn rel_of(levels: std::ops::Range<usize>, file: &[u8]) -> Vec<u8> {
        let mut p = Vec::new();
        for i in levels {
            p.extend_from_slice(&level(i));
            p.push(b'/');
        }
        p.extend_from_slice(file);
        p
    }

    fn dir_fd(p: &Path) -> OwnedFd {
        crate::os::fs::open(p, crate::sys::O_PATH | OFlags::DIRECTORY, Mode::empty()).unwrap()
    }

    /// Makes levels `levels` below `at` (one directory each) and `file` at the bottom;
    /// returns the fd of the directory at `stop` levels in, if asked (to plant a link).
    fn make_chain(at: OwnedFd, levels: std::ops::Range<usize>, file: &[u8], content: &[u8]) {
        let mut cur = at;
        for i in levels {
            mkdirat(&cur, level(i).as_slice(), Mode::from_raw_mode(0o755)).unwrap();
            cur = openat(
                &cur,
                level(i).as_slice(),
                crate::sys::O_PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW,
                Mode::empty(),
            )
            .unwrap();
        }
        let fd = openat(
            &cur,
            file,
            OFlags::WRONLY | OFlags::CREATE,
            Mode::from_raw_mode(0o644),
        )
        .unwrap();
        crate::os::io::write(&fd, content).unwrap();
    }

    fn read_all(fd: OwnedFd) -> Vec<u8> {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut std::fs::File::from(fd), &mut out).unwrap();
        out
    }

    #[test]
    fn pieces_fit_and_join_back_to_the_path() {
        let path = rel_of(0..LEVELS, b"file");
        let pieces = split_pieces(&path, ONE_CALL_MAX);
        assert!(pieces.len() >= 3, "{} pieces", pieces.len());
        assert!(pieces
            .iter()
            .all(|p| p.len() <= ONE_CALL_MAX && !p.is_empty()));
        assert!(pieces
            .iter()
            .all(|p| !p.starts_with(b"/") && !p.ends_with(b"/")));
        assert_eq!(pieces.join(&b'/'), path);
        assert_eq!(split_pieces(b"a/b/c", ONE_CALL_MAX), vec![&b"a/b/c"[..]]);
        assert_eq!(split_pieces(b"aa/bb/cc", 5), vec![&b"aa/bb"[..], b"cc"]);
        assert_eq!(split_pieces(b"aaaaaa/b", 5), vec![&b"aaaaaa"[..], b"b"]);
    }

    #[test]
    fn a_path_over_path_max_opens_beneath_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        make_chain(dir_fd(tmp.path()), 0..LEVELS, b"deep.txt", b"deep content");
        let root = Root::open(tmp.path()).unwrap();
        let rel = RelPath::new(rel_of(0..LEVELS, b"deep.txt")).unwrap();
        assert!(rel.as_bytes().len() > 4096);
        let fd = root
            .open_beneath(&rel, OFlags::RDONLY, Mode::empty())
            .unwrap();
        assert_eq!(read_all(fd), b"deep content");
        let entry = root.stat(&rel).unwrap().expect("the deep file is seen");
        assert_eq!(entry.size, 12);
    }

    /// Invariant 6 at every depth: a symlink planted in place of any directory of a deep
    /// path (at a piece boundary or inside a piece) is never followed, though following
    /// it would lead to a file of the same name outside the root.
    #[test]
    fn a_symlink_at_any_component_of_a_deep_path_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let rel = RelPath::new(rel_of(0..LEVELS, b"secret.txt")).unwrap();
        for k in 0..LEVELS {
            let case = tmp.path().join(format!("case{k}"));
            let (inside, outside) = (case.join("root"), case.join("outside"));
            std::fs::create_dir_all(&inside).unwrap();
            std::fs::create_dir_all(&outside).unwrap();
            // Outside: levels k.. with the secret at the bottom.
            make_chain(dir_fd(&outside), k..LEVELS, b"secret.txt", b"outside");
            // Inside: levels ..k as directories, level k a symlink to the outside copy.
            let mut cur = dir_fd(&inside);
            for i in 0..k {
                mkdirat(&cur, level(i).as_slice(), Mode::from_raw_mode(0o755)).unwrap();
                cur = openat(&cur, level(i).as_slice(), crate::sys::O_PATH, Mode::empty()).unwrap();
            }
            let target = outside.join(std::str::from_utf8(&level(k)).unwrap());
            symlinkat(&target, &cur, level(k).as_slice()).unwrap();

            let root = Root::open(&inside).unwrap();
            for flags in [OFlags::RDONLY, crate::sys::O_PATH | OFlags::DIRECTORY] {
                let what = if flags.contains(crate::sys::O_PATH) {
                    root.open_beneath(&rel.parent().unwrap(), flags, Mode::empty())
                } else {
                    root.open_beneath(&rel, flags, Mode::empty())
                };
                match what {
                    Err(Errno::LOOP | Errno::NOTDIR | Errno::XDEV) => {}
                    Err(e) => panic!("symlink at level {k}: unexpected {e}"),
                    Ok(_) => panic!("symlink at level {k} was followed out of the root"),
                }
            }
            assert!(
                matches!(root.parent(&rel), Err(e) if e.is_raced()),
                "level {k}"
            );
        }
    }

    /// Invariant 6 for folder times: a symlink at the folder's name or above it leads
    /// nowhere; only a folder beneath the root takes a time, and its own.
    #[test]
    fn a_folder_time_is_set_beneath_the_root_never_through_a_symlink() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let (inside, outside) = (tmp.path().join("root"), tmp.path().join("outside"));
        std::fs::create_dir_all(inside.join("real/sub")).unwrap();
        std::fs::create_dir_all(outside.join("inner")).unwrap();
        std::os::unix::fs::symlink(&outside, inside.join("link")).unwrap();
        let mtime = |p: &Path| {
            let m = std::fs::symlink_metadata(p).unwrap();
            m.mtime() * 1_000_000_000 + m.mtime_nsec()
        };
        let before = [mtime(&outside), mtime(&outside.join("inner"))];
        let root = Root::open(&inside).unwrap();
        let rel = |s: &str| RelPath::new(s.as_bytes().to_vec()).unwrap();
        let t = 1_500_000_000_123_456_789;
        assert!(crate::set_dir_mtime(&root, &rel("real/sub"), t).unwrap());
        assert_eq!(mtime(&inside.join("real/sub")), t);
        assert_eq!(root.dir_mtime(&rel("real/sub")).unwrap(), Some(t));
        assert!(!crate::set_dir_mtime(&root, &rel("link"), t).unwrap());
        assert!(crate::set_dir_mtime(&root, &rel("link/inner"), t).is_err_and(|e| e.is_raced()));
        assert_eq!(root.dir_mtime(&rel("link")).unwrap(), None);
        assert_eq!([mtime(&outside), mtime(&outside.join("inner"))], before);
    }
}
