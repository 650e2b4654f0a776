//! Writing to a root: every step re-checks the path against what the plan saw right before
//! it writes (invariant 2), new content becomes visible only once complete (invariant 3:
//! an unnamed `O_TMPFILE` file linked in under a free name, or a temporary file renamed
//! over the old one), and what is overwritten or deleted goes to the side's trash.

use crate::os::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::os::fs::{
    fstat, linkat, mkdirat, openat, renameat, renameat_with, symlinkat, unlinkat, utimensat,
    AtFlags, Mode, OFlags, RenameFlags, Stat, Timespec, Timestamps, UTIME_OMIT,
};
use crate::os::io::Errno;

use crate::sys::{copy_file_range, fsync};
use tandem_core::{Entry, Kind, RelPath};

use crate::error::{FsError, Result};
use crate::keep::{give_mode, give_owner, give_xattrs, give_xattrs_from};
use crate::root::{entry_from_stat, same_object, stat_at, Root};
use crate::xattrs::{At, AttrsFrom};

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// How long a file must have been left alone (its ctime that old) before it is copied. A
/// program rewriting a file can be paused halfway for tens of milliseconds (preempted on a
/// busy machine, throttled by writeback): a copy made during the pause sees nothing change,
/// yet holds half of each version. Waiting until the last change is this old, then checking
/// the file is unchanged, catches every pause shorter than this.
pub const SETTLE: Duration = Duration::from_millis(100);

pub(crate) fn tmp_name() -> String {
    format!(
        ".tandem-tmp.{}.{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Buckets tried for one stamp (versions of one path set aside within one second).
const BUCKETS_MAX: usize = 10_000;

/// Where overwritten and deleted entries go: `.tandem/trash/<stamp>/<path>` in the same root.
#[derive(Clone, Debug)]
pub struct Trash {
    stamp: String,
}

impl Trash {
    pub fn new(stamp: impl Into<String>) -> Trash {
        Trash {
            stamp: stamp.into(),
        }
    }

    /// The folder name under `.tandem/trash/` (a remote side's trash takes the same).
    pub fn stamp(&self) -> &str {
        &self.stamp
    }

    /// A free slot for `rel` in the trash, its parent directories created.
    fn slot(&self, root: &Root, rel: &RelPath) -> Result<(OwnedFd, Vec<u8>)> {
        // A name already kept under this stamp (a second version of `rel` within the same
        // second), or a parent's name held by a non-directory (the file `d` trashed, then
        // `d/e` from the directory `d`): the slot goes to the next free bucket, `<stamp>.1`,
        // `<stamp>.2`... so that a path in a bucket is always the path it was (retention
        // counts versions per path, `trash.rs`).
        let mut bucket = self.stamp.clone();
        let mut n = 0;
        loop {
            match self.slot_in(root, &bucket, rel) {
                Err(e) if e.errno() == Some(Errno::NOTDIR.raw_os_error()) && n < BUCKETS_MAX => {}
                Ok(None) if n < BUCKETS_MAX => {}
                Ok(None) => {
                    return Err(FsError::io(rel, "trash slot", Errno::EXIST));
                }
                Ok(Some(slot)) => return Ok(slot),
                Err(e) => return Err(e),
            }
            n += 1;
            bucket = format!("{}.{n}", self.stamp);
        }
    }

    /// The slot for `rel` in `bucket`, or `None` if the name is taken there.
    fn slot_in(
        &self,
        root: &Root,
        bucket: &str,
        rel: &RelPath,
    ) -> Result<Option<(OwnedFd, Vec<u8>)>> {
        let mut bytes = format!(".tandem/trash/{bucket}/").into_bytes();
        bytes.extend_from_slice(rel.as_bytes());
        let trash_rel = RelPath::new(bytes)
            .map_err(|e| FsError::io(rel, "trash path", std::io::Error::other(e)))?;
        ensure_dirs(root, &trash_rel.parent().unwrap_or_default())?;
        let (dir, name) = root.parent(&trash_rel)?;
        if stat_at(&dir, &name, rel)?.is_some() {
            return Ok(None);
        }
        Ok(Some((dir, name)))
    }

    /// Moves `name` in `dir` into the trash.
    /// Moves `name` into the trash if it is still `expect`. The check and the move are
    /// two steps: if `name` was replaced in between (a program saving over it), what was
    /// moved is put back, or left in the trash if the name was taken again meanwhile;
    /// never lost either way.
    fn move_in(
        &self,
        root: &Root,
        dir: &OwnedFd,
        name: &[u8],
        rel: &RelPath,
        expect: &Entry,
    ) -> Result<()> {
        let (tdir, tname) = self.slot(root, rel)?;
        renameat(dir, name, &tdir, tname.as_slice())
            .map_err(|e| FsError::io(rel, "move to trash", e))?;
        root.note_keeping_dir(&tdir, rel)?;
        match stat_at(&tdir, &tname, rel)? {
            Some(moved) if !same_object(&moved, expect) => {
                let _ = rename_noreplace(&tdir, &tname, dir, name);
                Err(FsError::raced(rel, "modified since scan"))
            }
            _ => Ok(()),
        }
    }

    /// Keeps a hard link of `name` in the trash (the original stays until it is renamed
    /// over, so readers never see the path missing); moves it there if it cannot be linked.
    fn keep(&self, root: &Root, dir: &OwnedFd, name: &[u8], rel: &RelPath) -> Result<()> {
        let (tdir, tname) = self.slot(root, rel)?;
        match linkat(dir, name, &tdir, tname.as_slice(), AtFlags::empty()) {
            Ok(()) => Ok(()),
            Err(_) => renameat(dir, name, &tdir, tname.as_slice())
                .map_err(|e| FsError::io(rel, "move to trash", e)),
        }?;
        root.note_keeping_dir(&tdir, rel)
    }
}

/// Creates `rel` and its missing parents as directories (mode 0700) beneath the root.
pub(crate) fn ensure_dirs(root: &Root, rel: &RelPath) -> Result<()> {
    let mut cur = RelPath::root();
    for comp in rel.components() {
        let next = cur.join(comp);
        let dir = root
            .open_beneath(&cur, crate::sys::O_PATH | OFlags::DIRECTORY, Mode::empty())
            .map_err(|e| FsError::io(&cur, "open directory", e))?;
        match mkdirat(&dir, comp, Mode::from_raw_mode(0o700)) {
            Ok(()) => root.note_keeping_dir(&dir, &cur)?,
            // The name may be held by something else (a file trashed earlier): ENOTDIR,
            // which `Trash::slot` answers with another bucket.
            Err(Errno::EXIST) => {
                if !matches!(stat_at(&dir, comp, &next)?, Some(e) if e.is_dir()) {
                    return Err(FsError::io(&next, "create directory", Errno::NOTDIR));
                }
            }
            Err(e) => return Err(FsError::io(&next, "create directory", e)),
        }
        cur = next;
    }
    Ok(())
}

/// How hard to push data to stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// `fsync` every file before it is renamed into place, and (the engine's part, with
    /// [`Root::track_dirs`] and [`Root::sync_dirs`]) each folder whose entries changed
    /// before the baseline is committed.
    EachFile,
    /// Rely on `sync_root` before the baseline is committed (the engine's default).
    Batched,
}

/// Makes `rel` on `to` hold `src`, the file or symlink at `rel` on `from`. `expect` is what
/// the plan saw at `rel` on `to` (`None`: nothing). Returns the new entry on `to`.
///
/// A new file is written unnamed (`O_TMPFILE`) and linked in under its name once complete
/// (`announce` is called right before, for a watcher of `to` to know the name's creation
/// for tandem's own); a file replacing another, and any file where `O_TMPFILE` is not
/// supported, is written under a temporary name and renamed into place.
#[allow(clippy::too_many_arguments)]
pub fn copy(
    from: &Root,
    to: &Root,
    rel: &RelPath,
    src: &Entry,
    expect: Option<&Entry>,
    mode: u32,
    trash: &Trash,
    durability: Durability,
    announce: &dyn Fn(),
) -> Result<Entry> {
    copy_as(
        from, rel, to, rel, src, expect, mode, trash, durability, announce,
    )
}

/// Like [`copy`], reading `src_rel` on `from` and writing `dst_rel` on `to`.
#[allow(clippy::too_many_arguments)]
pub fn copy_as(
    from: &Root,
    src_rel: &RelPath,
    to: &Root,
    dst_rel: &RelPath,
    src: &Entry,
    expect: Option<&Entry>,
    mode: u32,
    trash: &Trash,
    durability: Durability,
    announce: &dyn Fn(),
) -> Result<Entry> {
    // A folder above the source gone or replaced: the source is gone from where it was.
    let (sdir, sname) = from.parent(src_rel).map_err(|e| match e {
        FsError::Raced { .. } => FsError::vanished(src_rel),
        other => other,
    })?;
    let (ddir, dname) = to.parent(dst_rel)?;
    let copy = Copy {
        sdir: &sdir,
        sname: &sname,
        src_rel,
        src,
        dst_rel,
        mode,
        durability,
        settle: !from.writers_tracked(),
        to,
    };
    let result = copy.put(to, &ddir, &dname, expect, trash, announce);
    // Whatever it did in the folder, done: to be made durable with it (invariant 3).
    to.note_dir(&ddir, &dst_rel.parent().unwrap_or_default())?;
    result
}

impl Copy<'_> {
    /// Writes the copy into `ddir` and puts it in place as `dname` (see [`copy`]).
    fn put(
        &self,
        to: &Root,
        ddir: &OwnedFd,
        dname: &[u8],
        expect: Option<&Entry>,
        trash: &Trash,
        announce: &dyn Fn(),
    ) -> Result<Entry> {
        let (src, src_rel, dst_rel) = (self.src, self.src_rel, self.dst_rel);
        if src.kind == Kind::File && expect.is_none() {
            if let Some(new) = self.unnamed(ddir, dname, announce)? {
                return Ok(new);
            }
        }
        let tmp = tmp_name();
        let written = match src.kind {
            Kind::File => open_tmp(ddir, &tmp, dst_rel).and_then(|tfd| self.write(&tfd)),
            Kind::Symlink => {
                let target = match crate::os::fs::readlinkat(self.sdir, self.sname, Vec::new()) {
                    Ok(t) => t.into_bytes(),
                    Err(Errno::NOENT) => return Err(FsError::vanished(src_rel)),
                    // No longer a symlink.
                    Err(Errno::INVAL) => {
                        return Err(FsError::raced(src_rel, "symlink changed since scan"))
                    }
                    Err(e) => return Err(FsError::io(src_rel, "readlink", e)),
                };
                if src.link.as_deref() != Some(target.as_slice()) {
                    return Err(FsError::raced(src_rel, "symlink changed since scan"));
                }
                symlinkat(target.as_slice(), ddir, tmp.as_str())
                    .map_err(|e| FsError::io(dst_rel, "create symlink", e))
                    .and_then(|()| self.link_owner(ddir, &tmp))
                    .and_then(|()| match stat_at(ddir, tmp.as_bytes(), dst_rel)? {
                        Some(e) => Ok(e),
                        None => Err(FsError::raced(dst_rel, "temporary symlink vanished")),
                    })
            }
            _ => {
                return Err(FsError::io(
                    src_rel,
                    "copy",
                    std::io::Error::other("not a file or symlink"),
                ))
            }
        };
        let mut swapped = false;
        let result = written.and_then(|new| {
            let tmp = tmp.as_bytes();
            put_in_place(to, ddir, tmp, dname, dst_rel, expect, trash, &mut swapped)?;
            Ok(new)
        });
        // Invariant 1: once `put_in_place` has swapped the copy in, the temporary name holds
        // the version it replaced; if moving that one to the trash failed, it stays there (the
        // next run moves it to the trash, as a crash's). Only our own copy is removed.
        if result.is_err() && !swapped {
            let _ = unlinkat(ddir, tmp.as_str(), AtFlags::empty());
        }
        result
    }
}

pub(crate) fn open_tmp(ddir: &OwnedFd, tmp: &str, dst_rel: &RelPath) -> Result<OwnedFd> {
    openat(
        ddir,
        tmp,
        OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| FsError::io(dst_rel, "create temporary file", e))
}

/// Opens the file `name` in `dir` (`rel`) to read its content, if it is still `src` (the
/// plan's view) and, with `settle`, left alone long enough ([`settled`]); with its stat.
pub(crate) fn open_source(
    dir: &OwnedFd,
    name: &[u8],
    rel: &RelPath,
    src: &Entry,
    settle: bool,
) -> Result<(OwnedFd, Stat)> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = match openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        // Gone, or replaced by a link, since the scan: plan it again.
        Err(Errno::NOENT) => return Err(FsError::vanished(rel)),
        Err(Errno::LOOP) => return Err(FsError::raced(rel, "replaced by a symlink since scan")),
        Err(e) => return Err(FsError::io(rel, "open", e)),
    };
    let before = fstat(&fd).map_err(|e| FsError::io(rel, "stat", e))?;
    if !same_object(&entry_from_stat(&before, None), src) {
        return Err(FsError::raced(rel, "source changed since scan"));
    }
    if settle && !settled(&fd, &before).map_err(|e| FsError::io(rel, "stat", e))? {
        return Err(FsError::raced(rel, "still being written"));
    }
    Ok((fd, before))
}

/// One file's content copied from its source into a file on the other side.
struct Copy<'a> {
    sdir: &'a OwnedFd,
    sname: &'a [u8],
    src_rel: &'a RelPath,
    src: &'a Entry,
    dst_rel: &'a RelPath,
    mode: u32,
    durability: Durability,
    /// Wait for the file to be left alone before copying it ([`SETTLE`]); false where the
    /// source's writers are tracked (a mounted source: copied after its writers closed it).
    settle: bool,
    /// The receiving side: what it keeps beyond content (`Root::keep`).
    to: &'a Root,
}

impl Copy<'_> {
    /// Writes an unnamed file in `ddir` and links it in as `name`, which must not exist.
    /// `None` where the file system (or a missing `/proc`) does not allow it: the caller
    /// writes a named temporary file instead.
    fn unnamed(&self, ddir: &OwnedFd, name: &[u8], announce: &dyn Fn()) -> Result<Option<Entry>> {
        let Some(tmpfile) = crate::sys::O_TMPFILE.filter(|_| crate::sys::proc_fds()) else {
            return Ok(None);
        };
        let flags = tmpfile | OFlags::RDWR | OFlags::CLOEXEC;
        let tfd = match openat(ddir, ".", flags, Mode::from_raw_mode(0o600)) {
            Ok(fd) => fd,
            // Not supported here (EISDIR: a kernel that predates O_TMPFILE).
            Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL | Errno::NOSYS) => return Ok(None),
            Err(e) => return Err(FsError::io(self.dst_rel, "create temporary file", e)),
        };
        let new = self.write(&tfd)?;
        announce();
        match crate::sys::link_unnamed(&tfd, ddir, name) {
            Ok(()) => Ok(Some(new)),
            Err(Errno::EXIST) => Err(FsError::raced(self.dst_rel, "appeared since scan")),
            // The complete copy exists; only its name was refused, if its folder is still
            // there (a folder removed meanwhile also says ENOENT).
            Err(e) if is_name_errno(e) && fstat(ddir).is_ok_and(|st| st.st_nlink > 0) => Err(
                FsError::io(self.dst_rel, "this file system cannot hold the name", e),
            ),
            Err(e) => Err(FsError::io(self.dst_rel, "link the copy in", e)),
        }
    }

    /// `--owner`: the temporary symlink `tmp` gets the source link's owner.
    fn link_owner(&self, ddir: &OwnedFd, tmp: &str) -> Result<()> {
        if !self.to.keep().owner {
            return Ok(());
        }
        let flags = crate::sys::O_PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = openat(ddir, tmp, flags, Mode::empty())
            .map_err(|e| FsError::io(self.dst_rel, "open the new symlink", e))?;
        give_owner(self.to, &fd, self.src.owner, self.dst_rel)
    }

    /// Fills `tfd` with the source's content, mode and mtime; returns its entry. Fails
    /// as raced when the source is not what the plan saw or changed while copied.
    fn write(&self, tfd: &OwnedFd) -> Result<Entry> {
        let (src_rel, dst_rel, src) = (self.src_rel, self.dst_rel, self.src);
        let (sfd, before) = open_source(self.sdir, self.sname, src_rel, src, self.settle)?;
        copy_data(&sfd, tfd, &before).map_err(|e| FsError::io(dst_rel, "copy data", e))?;
        give_owner(self.to, tfd, src.owner, dst_rel)?;
        give_mode(self.to, tfd, self.mode, dst_rel)?;
        let kept = give_xattrs(self.to, &At::open(&sfd), &At::open(tfd), src_rel, dst_rel)?;
        let times = Timestamps {
            last_access: Timespec {
                tv_sec: 0,
                tv_nsec: UTIME_OMIT,
            },
            last_modification: timespec(src.mtime),
        };
        crate::os::fs::futimens(tfd, &times).map_err(|e| FsError::io(dst_rel, "set times", e))?;
        if self.durability == Durability::EachFile {
            fsync(tfd).map_err(|e| FsError::io(dst_rel, "fsync", e))?;
        }
        // A file written while it was copied is never stored torn: compare before and after.
        let after = fstat(&sfd).map_err(|e| FsError::io(src_rel, "stat", e))?;
        if !unchanged(&after, &before) {
            return Err(FsError::raced(src_rel, "changed while it was copied"));
        }
        let st = fstat(tfd).map_err(|e| FsError::io(dst_rel, "stat", e))?;
        if st.st_size != before.st_size {
            return Err(FsError::raced(src_rel, "size changed while it was copied"));
        }
        // The baseline records the hash of exactly the bytes stored (read back from the
        // page cache): it lets a later scan recognise this content under another name.
        let hash = hash_fd(tfd, st.st_size).map_err(|e| FsError::io(dst_rel, "hash copy", e))?;
        let new = entry_from_stat(&st, None).with_hash(hash);
        self.to
            .with_known_xattrs(new, kept, &At::open(tfd), dst_rel)
    }
}

/// Whether `now` shows the file as `seen`: a write changes the ctime (which, unlike the
/// mtime, no program can set back), and the size or mtime with it.
pub(crate) fn unchanged(now: &Stat, seen: &Stat) -> bool {
    now.st_size == seen.st_size
        && now.st_mtime == seen.st_mtime
        && now.st_mtime_nsec == seen.st_mtime_nsec
        && now.st_ctime == seen.st_ctime
        && now.st_ctime_nsec == seen.st_ctime_nsec
}

/// Whether the file behind `fd`, seen as `seen`, has been left alone for [`SETTLE`]: if it
/// changed more recently, waits until its last change is that old and looks again (false:
/// it changed meanwhile, its writer is still at work). A ctime ahead of this clock (another
/// machine's) counts as a change just now: the wait is never longer than `SETTLE`.
///
/// Waiting first, rather than checking the age after the copy, also lets the copy start
/// after the clock tick of the last change: where timestamps are coarse (kernels before
/// 6.13), a write within that same tick would not show in the ctime.
fn settled(fd: &OwnedFd, seen: &Stat) -> crate::os::io::Result<bool> {
    let changed = i128::from(seen.st_ctime) * 1_000_000_000 + i128::from(seen.st_ctime_nsec);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    let age = (now - changed).max(0);
    let settle = SETTLE.as_nanos() as i128;
    if age >= settle {
        return Ok(true);
    }
    std::thread::sleep(Duration::from_nanos((settle - age) as u64));
    Ok(unchanged(&fstat(fd)?, seen))
}

/// The blake3 hash of the `size` bytes of `fd` from its start (read with `pread`, so the
/// file offset does not matter); a buffer no bigger than the file (most are small). `fd`
/// is our own copy, of the size just checked: the reading stops there, without a last
/// call to find the end.
pub(crate) fn hash_fd(fd: &OwnedFd, size: i64) -> std::io::Result<tandem_core::Hash> {
    let mut hasher = blake3::Hasher::new();
    let size = size.max(0) as u64;
    let mut buf = vec![0u8; (size as usize).clamp(1, 256 * 1024)];
    let mut at = 0u64;
    while at < size {
        let want = ((size - at) as usize).min(buf.len());
        let n = match crate::os::io::pread(fd, &mut buf[..want], at) {
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        at += n as u64;
    }
    Ok(tandem_core::Hash(*hasher.finalize().as_bytes()))
}

pub(crate) fn timespec(ns: i64) -> Timespec {
    Timespec {
        tv_sec: ns.div_euclid(1_000_000_000),
        tv_nsec: ns.rem_euclid(1_000_000_000),
    }
}

/// Copies all of `src` (as `st` saw it when it was opened) to the new, empty `dst`: only
/// its data extents when it has holes (a sparse file stays sparse, issue 19), else the
/// whole file in the kernel.
fn copy_data(src: &impl AsFd, dst: &impl AsFd, st: &Stat) -> std::io::Result<()> {
    let len = st.st_size.max(0) as u64;
    if len == 0 {
        return Ok(());
    }
    // A file with as many blocks as bytes has no hole worth keeping (GNU cp's test): it is
    // copied whole, without the three seeks that look for holes, most files' case.
    if !may_have_holes(st) {
        return copy_all(src, dst, len);
    }
    match data_extents(src, len)? {
        Some(extents) => {
            for (start, end) in extents {
                copy_range(src, dst, start, end)?;
            }
            // A hole at the end: the length without the blocks.
            crate::os::fs::ftruncate(dst, len)?;
            Ok(())
        }
        None => copy_all(src, dst, len),
    }
}

/// Whether the file `st` describes has fewer blocks than its size needs, as a file with
/// holes has. One with blocks allocated past its end as well may pass for whole: it is
/// then copied with its holes filled, as GNU cp does.
fn may_have_holes(st: &Stat) -> bool {
    (st.st_blocks as u64).saturating_mul(512) < st.st_size.max(0) as u64
}

/// The data extents of `fd` (`SEEK_DATA`/`SEEK_HOLE`), `None` when it has no hole (or the
/// file system cannot tell, which reads as one extent): then it is copied whole.
fn data_extents(fd: &impl AsFd, len: u64) -> std::io::Result<Option<Vec<(u64, u64)>>> {
    use crate::os::fs::{seek, SeekFrom};
    let mut extents = Vec::new();
    let mut at = 0;
    while at < len {
        let start = match seek(fd, SeekFrom::Data(at)) {
            Ok(s) => s,
            // No data past `at`: the rest is a hole.
            Err(Errno::NXIO) => break,
            Err(Errno::INVAL | Errno::OPNOTSUPP) => {
                seek(fd, SeekFrom::Start(0))?;
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let end = seek(fd, SeekFrom::Hole(start))?.min(len);
        extents.push((start, end));
        at = end;
    }
    // The seeks moved the file offset, from which a whole copy reads.
    seek(fd, SeekFrom::Start(0))?;
    let whole = extents.len() == 1 && extents[0] == (0, len);
    Ok((!whole && len > 0).then_some(extents))
}

/// Copies bytes `start..end` of `src` to the same place in `dst`, in the kernel where it
/// can, else by `pread`/`pwrite`.
fn copy_range(src: &impl AsFd, dst: &impl AsFd, start: u64, end: u64) -> std::io::Result<()> {
    let (mut off_in, mut off_out) = (start, start);
    while off_in < end {
        let want = (end - off_in).min(1 << 30) as usize;
        match copy_file_range(src, Some(&mut off_in), dst, Some(&mut off_out), want) {
            // Shorter than it was: the check after the copy sees the change.
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(Errno::XDEV | Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP | Errno::PERM) => {
                return copy_range_by_hand(src, dst, off_in, end)
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn copy_range_by_hand(
    src: &impl AsFd,
    dst: &impl AsFd,
    start: u64,
    end: u64,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    let mut at = start;
    while at < end {
        let want = ((end - at) as usize).min(buf.len());
        let n = crate::os::io::pread(src, &mut buf[..want], at)?;
        if n == 0 {
            return Ok(());
        }
        let mut done = 0;
        while done < n {
            done += crate::os::io::pwrite(dst, &buf[done..n], at + done as u64)?;
        }
        at += n as u64;
    }
    Ok(())
}

/// Copies all of `src` (`len` bytes when it was opened) to `dst` in the kernel
/// (`copy_file_range`, which reflinks where the file system can), falling back to
/// read/write where it is not supported. Stops at `len` without asking for the end of the
/// file: a source that grew meanwhile fails the caller's check after the copy.
fn copy_all(src: &impl AsFd, dst: &impl AsFd, len: u64) -> std::io::Result<()> {
    let mut done = 0u64;
    loop {
        match copy_file_range(src, None, dst, None, 1 << 30) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                done += n as u64;
                if done >= len {
                    return Ok(());
                }
            }
            Err(Errno::XDEV | Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP | Errno::PERM) => {
                break
            }
            Err(e) => return Err(e.into()),
        }
    }
    let src = crate::os::io::dup(src)?;
    let dst = crate::os::io::dup(dst)?;
    let mut r = std::fs::File::from(src);
    let mut w = std::fs::File::from(dst);
    std::io::copy(&mut r, &mut w).map(|_| ())
}

/// Renames the finished temporary file over `name`, after checking `name` is still what
/// the plan expected; the old entry is kept in the trash. `swapped` says, when it fails,
/// that the temporary name holds the version that was at `name`: not to be removed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn put_in_place(
    root: &Root,
    dir: &OwnedFd,
    tmp: &[u8],
    name: &[u8],
    rel: &RelPath,
    expect: Option<&Entry>,
    trash: &Trash,
    swapped: &mut bool,
) -> Result<()> {
    match expect {
        None => match rename_noreplace(dir, tmp, dir, name) {
            Ok(()) => Ok(()),
            Err(Errno::EXIST) => Err(FsError::raced(rel, "appeared since scan")),
            Err(e) => Err(rename_error(dir, tmp, rel, e)),
        },
        Some(expect) => {
            match stat_at(dir, name, rel)? {
                Some(now) if same_object(&now, expect) && !now.is_dir() => {}
                Some(_) => return Err(FsError::raced(rel, "modified since scan")),
                None => return Err(FsError::raced(rel, "deleted since scan")),
            }
            // Swap the copy in, then look at what came out: a program may have saved over
            // `name` since the check above. Renaming over it blindly would unlink that
            // version for good.
            match renameat_with(dir, tmp, dir, name, RenameFlags::EXCHANGE) {
                Ok(()) => match stat_at(dir, tmp, rel).inspect(|_| *swapped = true)? {
                    Some(old) if same_object(&old, expect) => {
                        trash.keep(root, dir, tmp, rel)?;
                        let _ = unlinkat(dir, tmp, AtFlags::empty());
                        Ok(())
                    }
                    _ => {
                        // Not what was planned over: put it back (our copy returns to the
                        // temporary name, which the caller removes).
                        let back = renameat_with(dir, tmp, dir, name, RenameFlags::EXCHANGE);
                        *swapped = back.is_err();
                        if back.is_err() {
                            // Cannot put it back: the program's version goes to the trash
                            // rather than be removed with the temporary name.
                            trash.keep(root, dir, tmp, rel)?;
                            let _ = unlinkat(dir, tmp, AtFlags::empty());
                        }
                        Err(FsError::raced(rel, "modified since scan"))
                    }
                },
                // File systems without RENAME_EXCHANGE (some FUSE ones): keep a link of the
                // checked entry in the trash, then rename over it (a narrower guarantee).
                Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                    trash.keep(root, dir, name, rel)?;
                    renameat(dir, tmp, dir, name).map_err(|e| rename_error(dir, tmp, rel, e))
                }
                Err(e) => Err(rename_error(dir, tmp, rel, e)),
            }
        }
    }
}

/// `renameat2(RENAME_NOREPLACE)`, or where the file system does not support the flag
/// (some FUSE file systems, exFAT among them, answer EINVAL), a check for the new name and a
/// plain rename: a narrower guarantee only on those file systems.
fn rename_noreplace(
    old_dir: &OwnedFd,
    old: &[u8],
    new_dir: &OwnedFd,
    new: &[u8],
) -> std::result::Result<(), Errno> {
    match renameat_with(old_dir, old, new_dir, new, RenameFlags::NOREPLACE) {
        Err(Errno::INVAL) => match crate::os::fs::statat(new_dir, new, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => Err(Errno::EXIST),
            Err(Errno::NOENT) => renameat(old_dir, old, new_dir, new),
            Err(e) => Err(e),
        },
        r => r,
    }
}

/// Errors a file system gives for a name it cannot hold (FAT and exFAT refuse `:*?"<>|\`
/// and control characters, some with EINVAL, some with ENOENT).
fn is_name_errno(e: Errno) -> bool {
    matches!(
        e,
        Errno::INVAL | Errno::ILSEQ | Errno::NAMETOOLONG | Errno::NOENT
    )
}

/// Says "cannot hold this name" when the complete temporary file is still there and only
/// its final name was refused.
fn rename_error(dir: &OwnedFd, tmp: &[u8], rel: &RelPath, e: Errno) -> FsError {
    if crate::sys::held_open(e) {
        // Windows: both versions stay (this one at `rel`, the other on its side); the
        // next run tries again.
        return FsError::io(rel, "in use by another program, not replaced", e);
    }
    let tmp_there = matches!(stat_at(dir, tmp, rel), Ok(Some(_)));
    if is_name_errno(e) && tmp_there {
        FsError::io(rel, "this file system cannot hold the name", e)
    } else {
        FsError::io(rel, "rename into place", e)
    }
}

/// Creates directory `rel` like `src`, the folder at `rel` on the other side (its mode, and
/// its owner and extended attributes, read `from` there, where the root keeps them). An
/// existing directory is fine.
pub fn mkdir(from: AttrsFrom<'_>, root: &Root, rel: &RelPath, src: &Entry) -> Result<Entry> {
    let (dir, name) = root.parent(rel)?;
    match mkdirat(&dir, name.as_slice(), Mode::from_raw_mode(0o700)) {
        Ok(()) => root.note_dir(&dir, &rel.parent().unwrap_or_default())?,
        Err(Errno::EXIST) => {}
        Err(e) if is_name_errno(e) => {
            return Err(FsError::io(rel, "this file system cannot hold the name", e))
        }
        Err(e) => return Err(FsError::io(rel, "create directory", e)),
    }
    match stat_at(&dir, &name, rel)? {
        Some(e) if e.is_dir() => {
            let fd = open_object(&dir, &name, rel, &e)?;
            give_owner(root, &fd, src.owner, rel)?;
            give_mode(root, &fd, src.mode, rel)?;
            let mut known = None;
            if src.xattrs.is_some() || matches!(from, AttrsFrom::Given(_)) {
                known = give_xattrs_from(root, from, &At::fd(&fd), rel)?;
            }
            // What the file system kept (one without permission bits keeps its own).
            let st = fstat(&fd).map_err(|e| FsError::io(rel, "stat", e))?;
            root.with_known_xattrs(entry_from_stat(&st, None), known, &At::fd(&fd), rel)
        }
        _ => Err(FsError::raced(rel, "something else appeared at this path")),
    }
}

/// Gives `rel` the mode (and for files the mtime; the owner and extended attributes where
/// the root keeps them, read `from` the other side; for a symlink only its owner) of `src`,
/// the entry at `rel` on the other side, if it is still `expect`.
pub fn set_meta(
    from: AttrsFrom<'_>,
    root: &Root,
    rel: &RelPath,
    src: &Entry,
    expect: &Entry,
) -> Result<Entry> {
    let (dir, name) = root.parent(rel)?;
    let fd = open_object(&dir, &name, rel, expect)?;
    if matches!(src.kind, Kind::File | Kind::Dir) {
        if src.owner != expect.owner {
            give_owner(root, &fd, src.owner, rel)?;
        }
        give_mode(root, &fd, src.mode, rel)?;
        // A list from the other machine is written whatever the digests: writing what is
        // already there changes nothing.
        let given = matches!(from, AttrsFrom::Given(_));
        if root.keep().reads_xattrs() && (given || src.xattrs != expect.xattrs) {
            give_xattrs_from(root, from, &At::fd(&fd), rel)?;
        }
    }
    // A symlink's owner is its own (`chown -h`): set on the link, never what it points to.
    if src.kind == Kind::Symlink && src.owner != expect.owner {
        give_owner(root, &fd, src.owner, rel)?;
    }
    if src.kind == Kind::File {
        let times = Timestamps {
            last_access: Timespec {
                tv_sec: 0,
                tv_nsec: UTIME_OMIT,
            },
            last_modification: timespec(src.mtime),
        };
        crate::sys::utimens_object(&fd, &times).map_err(|e| FsError::io(rel, "set times", e))?;
    }
    // What the file system kept: coarse times and missing mode bits show here, and the
    // baseline records this side as it is.
    let st = fstat(&fd).map_err(|e| FsError::io(rel, "stat", e))?;
    let now = Entry {
        hash: expect.hash,
        ..entry_from_stat(&st, expect.link.clone())
    };
    root.with_xattrs(now, &At::fd(&fd), rel)
}

/// Gives the folder at `rel` the modification time `mtime` (nanoseconds), its access time
/// left alone. Set relative to its parent's fd without following a final symlink
/// (invariant 6): a folder replaced by anything else since is left alone (`false`).
pub fn set_dir_mtime(root: &Root, rel: &RelPath, mtime: i64) -> Result<bool> {
    let (dir, name) = root.parent(rel)?;
    if !matches!(stat_at(&dir, &name, rel)?, Some(e) if e.is_dir()) {
        return Ok(false);
    }
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        last_modification: timespec(mtime),
    };
    match utimensat(&dir, name.as_slice(), &times, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(()) => Ok(true),
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(FsError::io(rel, "set folder time", e)),
    }
}

/// An `O_PATH` handle on the very object at `name`, checked to be `expect`. Metadata
/// changes go through it (via `/proc/self/fd`), so a symlink swapped in after the check is
/// never followed.
fn open_object(dir: &OwnedFd, name: &[u8], rel: &RelPath, expect: &Entry) -> Result<OwnedFd> {
    let fd = match openat(
        dir,
        name,
        crate::sys::O_PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Err(FsError::raced(rel, "deleted since scan")),
        Err(e) => return Err(FsError::io(rel, "open", e)),
    };
    let now = entry_from_stat(
        &fstat(&fd).map_err(|e| FsError::io(rel, "stat", e))?,
        expect.link.clone(),
    );
    if !same_object(&now, expect) {
        return Err(FsError::raced(rel, "modified since scan"));
    }
    Ok(fd)
}

/// Moves `rel` to the trash (a directory is removed once empty), if it is still `expect`.
/// Already gone is fine.
pub fn delete(root: &Root, rel: &RelPath, expect: &Entry, trash: &Trash) -> Result<()> {
    let (dir, name) = root.parent(rel)?;
    match stat_at(&dir, &name, rel)? {
        None => return Ok(()),
        Some(now) if !same_object(&now, expect) => {
            return Err(FsError::raced(rel, "modified since scan"))
        }
        Some(_) => {}
    }
    let parent = rel.parent().unwrap_or_default();
    if expect.is_dir() {
        return match unlinkat(&dir, name.as_slice(), AtFlags::REMOVEDIR) {
            Ok(()) => root.note_dir(&dir, &parent),
            Err(Errno::NOTEMPTY | Errno::EXIST) => Err(FsError::raced(
                rel,
                "directory holds entries this sync did not delete (new, excluded or unreadable); kept",
            )),
            Err(e) => Err(FsError::io(rel, "remove directory", e)),
        };
    }
    let moved = trash.move_in(root, &dir, &name, rel, expect);
    root.note_dir(&dir, &parent)?;
    moved
}

/// `--hard-links`: makes `rel` on `root` another name of the file at `anchor`, if `anchor`
/// is still `anchor_expect` and `rel` still `expect` (`None`: nothing); what was at `rel`
/// goes to the trash. The link is made under a temporary name and put in place like a
/// copy (invariants 2 and 3). Returns the new entry at `rel`. A file system that holds no
/// hard links (exFAT), or not this one, answers `FsError::CannotLink`, having written
/// nothing.
pub fn link(
    root: &Root,
    anchor: &RelPath,
    anchor_expect: &Entry,
    rel: &RelPath,
    expect: Option<&Entry>,
    trash: &Trash,
) -> Result<Entry> {
    let (adir, aname) = root.parent(anchor)?;
    match stat_at(&adir, &aname, anchor)? {
        Some(now) if same_object(&now, anchor_expect) => {}
        _ => {
            return Err(FsError::raced(
                anchor,
                "changed since scan (the file to link to)",
            ))
        }
    }
    let (ddir, dname) = root.parent(rel)?;
    let tmp = tmp_name();
    match linkat(
        &adir,
        aname.as_slice(),
        &ddir,
        tmp.as_str(),
        AtFlags::empty(),
    ) {
        Ok(()) => {}
        Err(e @ (Errno::PERM | Errno::OPNOTSUPP | Errno::MLINK | Errno::XDEV)) => {
            return Err(FsError::CannotLink {
                path: rel.to_string(),
                source: e.into(),
            })
        }
        Err(Errno::NOENT) => return Err(FsError::raced(anchor, "deleted since scan")),
        Err(e) => return Err(FsError::io(rel, "hard link", e)),
    }
    // The name linked may have been replaced between the check and the link: the
    // temporary name says what was linked.
    let linked = stat_at(&ddir, tmp.as_bytes(), rel);
    let mut swapped = false;
    let result = match linked {
        Ok(Some(now)) if same_object(&now, anchor_expect) => put_in_place(
            root,
            &ddir,
            tmp.as_bytes(),
            &dname,
            rel,
            expect,
            trash,
            &mut swapped,
        )
        .map(|()| now),
        Ok(_) => Err(FsError::raced(
            anchor,
            "changed since scan (the file to link to)",
        )),
        Err(e) => Err(e),
    };
    if result.is_err() && !swapped {
        let _ = unlinkat(&ddir, tmp.as_str(), AtFlags::empty());
    }
    root.note_dir(&ddir, &rel.parent().unwrap_or_default())?;
    result
}

/// `--hard-links`: whether the root's file system holds hard links, tried with a file of
/// tandem's own in `.tandem/` (exFAT and FAT hold none). When it cannot tell (the probe
/// could not be written): `true`, and each link refused falls back to a copy.
pub fn holds_hard_links(root: &Root) -> bool {
    let rel = RelPath::from_str_lossless(".tandem");
    if ensure_dirs(root, &rel).is_err() {
        return true;
    }
    probe_links(root, &rel)
}

/// [`holds_hard_links`] for a dry run, which creates nothing: tried in `.tandem/` only
/// where that folder is there already (two names of tandem's own, removed at once, as a
/// real run does), else told by the file system's type (FAT and exFAT by the kernel's
/// drivers), else `true`.
pub fn holds_hard_links_dry(root: &Root) -> bool {
    let rel = RelPath::from_str_lossless(".tandem");
    if matches!(root.stat(&rel), Ok(Some(e)) if e.is_dir()) {
        return probe_links(root, &rel);
    }
    let flags = crate::sys::O_PATH | OFlags::DIRECTORY;
    match root.open_beneath(&RelPath::root(), flags, Mode::empty()) {
        Ok(fd) => !crate::sys::fs_without_hard_links(&fd),
        Err(_) => true,
    }
}

/// Whether a second name can be linked to a file of tandem's own in the folder `rel`.
fn probe_links(root: &Root, rel: &RelPath) -> bool {
    let Ok(dir) = root.open_beneath(rel, crate::sys::O_PATH | OFlags::DIRECTORY, Mode::empty())
    else {
        return true;
    };
    let (a, b) = (tmp_name(), tmp_name());
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
    if openat(&dir, a.as_str(), flags, Mode::from_raw_mode(0o600)).is_err() {
        return true;
    }
    let held = !matches!(
        linkat(&dir, a.as_str(), &dir, b.as_str(), AtFlags::empty()),
        Err(Errno::PERM | Errno::OPNOTSUPP)
    );
    let _ = unlinkat(&dir, b.as_str(), AtFlags::empty());
    let _ = unlinkat(&dir, a.as_str(), AtFlags::empty());
    held
}

/// Renames `from` to `to` on one root, if `from` is still `expect` and `to` is free.
pub fn rename(root: &Root, from: &RelPath, to: &RelPath, expect: &Entry) -> Result<Entry> {
    let (fdir, fname) = root.parent(from)?;
    match stat_at(&fdir, &fname, from)? {
        Some(now) if same_object(&now, expect) => {}
        Some(_) => return Err(FsError::raced(from, "modified since scan")),
        None => return Err(FsError::raced(from, "deleted since scan")),
    }
    let (tdir, tname) = root.parent(to)?;
    match rename_noreplace(&fdir, fname.as_slice(), &tdir, tname.as_slice()) {
        Ok(()) => {
            root.note_dir(&fdir, &from.parent().unwrap_or_default())?;
            root.note_dir(&tdir, &to.parent().unwrap_or_default())?;
        }
        Err(Errno::EXIST) => return Err(FsError::raced(to, "appeared since scan")),
        Err(e) => return Err(FsError::io(from, "rename", e)),
    }
    root.stat_in(&tdir, &tname, to)?
        .ok_or_else(|| FsError::raced(to, "vanished right after rename"))
}

/// Moves a temporary file a crashed tandem left behind (only names of that form) into the
/// trash. Most are copies cut short, but a crash in the middle of `put_in_place` can leave
/// a user's version there (swapped out to be checked): never deleted outright.
pub fn remove_stale_temp(root: &Root, rel: &RelPath, trash: &Trash) -> Result<()> {
    if !rel.file_name().starts_with(b".tandem-tmp.") {
        return Ok(());
    }
    let (dir, name) = root.parent(rel)?;
    let (tdir, tname) = trash.slot(root, rel)?;
    match renameat(&dir, name.as_slice(), &tdir, tname.as_slice()) {
        Ok(()) => {
            root.note_keeping_dir(&tdir, rel)?;
            root.note_dir(&dir, &rel.parent().unwrap_or_default())
        }
        Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(FsError::io(
            rel,
            "move a stale temporary file to the trash",
            e,
        )),
    }
}

/// Flushes everything written to the root's file system (before the baseline is committed).
pub fn sync_root(root: &Root) -> Result<()> {
    let rel = RelPath::root();
    // syncfs needs a real descriptor, not the root's O_PATH one.
    let fd = root
        .open_beneath(&rel, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
        .map_err(|e| FsError::io(&rel, "open root", e))?;
    crate::sys::syncfs(&fd).map_err(|e| FsError::io(&rel, "syncfs", e))
}
