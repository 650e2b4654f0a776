//! `Root`: one side of the pair, reached only through a directory fd opened once.
//!
//! Invariant 6 (confinement): every path is resolved with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS)` from the root fd, and the last component is acted on with `*at`
//! calls that do not follow symlinks. A symlink or `..` planted anywhere in a path, even
//! between scan and apply, makes the call fail instead of leaving the root.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{openat, openat2, statat, AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;
use tandem_core::{Entry, RelPath};

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
}

impl Root {
    /// Opens the directory at `path` (which must be a directory, not a symlink to one).
    pub fn open(path: &Path) -> std::io::Result<Root> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let st = rustix::fs::fstat(&fd)?;
        let mnt_id = Place::of_fd(&fd)?.mnt_id;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
            dev: st.st_dev,
            mnt_id,
            path_leads_here: true,
        })
    }

    /// A root from a directory fd opened earlier, before something was mounted over `path`.
    pub fn from_fd(fd: OwnedFd, path: &Path) -> std::io::Result<Root> {
        let st = rustix::fs::fstat(&fd)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(std::io::Error::other("not a directory"));
        }
        let mnt_id = Place::of_fd(&fd)?.mnt_id;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
            dev: st.st_dev,
            mnt_id,
            path_leads_here: false,
        })
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

    /// Whether `syncfs` makes this root's data durable. Linux sends `FUSE_SYNCFS` to
    /// virtiofs only: on a FUSE file system mounted through `/dev/fuse` (sshfs, ntfs-3g,
    /// rclone, ...) syncfs succeeds and the daemon never hears of it, so only an fsync of
    /// each file reaches its disk (issue 20's power-loss campaign found the baseline
    /// recording copies that a power cut then took back).
    // `f_type`'s integer type differs between architectures.
    #[allow(clippy::unnecessary_cast)]
    pub fn syncfs_is_durable(&self) -> bool {
        const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;
        rustix::fs::fstatfs(&self.fd).map_or(true, |s| s.f_type as i64 != FUSE_SUPER_MAGIC)
    }

    /// Is the root still there, and still the directory we opened, at the same place: its
    /// path leads to the same directory (device and inode) through the same mount? A file
    /// system unmounted under us (`umount -l`) leaves the fd working on a detached tree
    /// that nobody sees any more.
    pub fn still_present(&self) -> bool {
        if !self.path_leads_here {
            // Still linked into its parent: a removed directory has no links left.
            return rustix::fs::fstat(&self.fd).is_ok_and(|st| st.st_nlink > 0);
        }
        match (Place::of_path(&self.path), Place::of_fd(&self.fd)) {
            (Ok(path), Ok(fd)) => path == fd && fd.mnt_id == self.mnt_id,
            _ => false,
        }
    }

    /// Opens `rel` (a path beneath the root) with `flags`, never crossing a symlink or
    /// leaving the root.
    pub fn open_beneath(
        &self,
        rel: &RelPath,
        flags: OFlags,
        mode: Mode,
    ) -> std::result::Result<OwnedFd, Errno> {
        let flags = flags | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        match openat2(&self.fd, rel.as_path(), flags, mode, resolve) {
            Err(Errno::NOSYS) => self.open_walk(rel, flags, mode),
            Err(Errno::AGAIN) => openat2(&self.fd, rel.as_path(), flags, mode, resolve),
            r => r,
        }
    }

    /// Fallback for kernels without `openat2`: one component at a time, `O_NOFOLLOW`.
    fn open_walk(
        &self,
        rel: &RelPath,
        flags: OFlags,
        mode: Mode,
    ) -> std::result::Result<OwnedFd, Errno> {
        let comps: Vec<&[u8]> = rel.components().collect();
        let Some((last, dirs)) = comps.split_last() else {
            return openat(&self.fd, ".", flags, mode);
        };
        let mut cur = openat(
            &self.fd,
            ".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        for c in dirs {
            cur = openat(
                &cur,
                *c,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
        }
        openat(&cur, *last, flags, mode)
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
        let fd = self.open_beneath(&parent, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())?;
        Ok((fd, rel.file_name().to_vec()))
    }

    /// What is at `rel` now (`None` if nothing), without following a final symlink.
    pub fn stat(&self, rel: &RelPath) -> Result<Option<Entry>> {
        if rel.is_root() {
            let st = rustix::fs::fstat(&self.fd).map_err(|e| FsError::io(rel, "stat", e))?;
            return Ok(Some(entry_from_stat(&st, None)));
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
        stat_at(&dir, &name, rel)
    }
}

/// Creates the folder `path` (its parent must exist): the target a first sync makes.
pub fn create_root(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir(path)
}

/// `lstat` of `name` in `dir`, as an `Entry` (symlink targets read).
pub fn stat_at(dir: &impl AsFd, name: &[u8], rel: &RelPath) -> Result<Option<Entry>> {
    match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => {
            let link = if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
                Some(
                    rustix::fs::readlinkat(dir, name, Vec::new())
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

pub fn mtime_ns(st: &Stat) -> i64 {
    st.st_mtime
        .saturating_mul(1_000_000_000)
        .saturating_add(st.st_mtime_nsec as i64)
}

pub fn entry_from_stat(st: &Stat, link: Option<Vec<u8>>) -> Entry {
    let mode = st.st_mode & 0o7777;
    let ino = st.st_ino;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => Entry::file(st.st_size as u64, mtime_ns(st), mode, ino),
        FileType::Directory => Entry::dir(mode, ino),
        FileType::Symlink => Entry::symlink(link.unwrap_or_default(), ino),
        _ => Entry::special(ino),
    }
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
