//! Namespace operations not yet durable, and how a power cut takes them back.
//!
//! Each create, mkdir, link, symlink, unlink, rmdir and rename done through the mount is
//! applied to the backing folder at once (programs see it) and logged here with the
//! folders it touched. It becomes durable once every one of those folders has been
//! fsynced since (a rename between two folders needs both), or on [`Journal::settle`]
//! (the test's writeback). A cut undoes the rest, newest first.
//!
//! Folders are held by `O_PATH` descriptors, so an undo finds them even when a durable
//! rename moved them since. A removed name is not deleted but moved into the attic (a
//! folder next to the backing one, on the same disk): undoing the removal moves it back,
//! with the content its inode holds, which is the durable content (the unsynced data is
//! dropped by the same cut). An undo that no longer applies (its name was taken or moved
//! by a durable operation since) is skipped: the model is best effort there, never
//! destructive (no undo replaces a name).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags};

/// A folder of the backing tree, held open.
pub(crate) type Dir = Arc<OwnedFd>;

/// A name in a folder.
pub(crate) struct Name {
    pub dir: Dir,
    pub name: OsString,
}

/// How to take one operation back.
enum Undo {
    /// A name that now holds inode `ino` was created (file, symlink, link, folder).
    Created { at: Name, ino: u64, dir: bool },
    /// A name was removed: its inode waits in the attic under `kept`.
    Removed { at: Name, kept: OsString },
    /// `from` was renamed to `to`; what `to` held before waits in the attic.
    Renamed {
        from: Name,
        to: Name,
        replaced: Option<OsString>,
        exchange: bool,
    },
}

struct Pending {
    /// The folders (inode numbers of the mount) still to be fsynced.
    dirs: Vec<u64>,
    undo: Undo,
}

/// The log of namespace operations not yet durable.
pub(crate) struct Journal {
    attic: PathBuf,
    attic_fd: Option<OwnedFd>,
    next: u64,
    pending: Vec<Pending>,
    /// Folders held open, by inode number of the mount.
    dirs: HashMap<u64, Dir>,
}

fn open_dir(path: &Path) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

impl Journal {
    pub(crate) fn new(attic: PathBuf) -> Journal {
        Journal {
            attic,
            attic_fd: None,
            next: 0,
            pending: Vec::new(),
            dirs: HashMap::new(),
        }
    }

    /// `name` in the folder `dir` (inode `ino` of the mount, at `path` in the backing
    /// tree), its folder held open.
    pub(crate) fn name(&mut self, ino: u64, path: &Path, name: &OsStr) -> std::io::Result<Name> {
        // A cached folder still linked (a removed one's number may be reused).
        let live = |d: &Dir| rustix::fs::fstat(&**d).is_ok_and(|st| st.st_nlink > 0);
        let dir = match self.dirs.get(&ino) {
            Some(d) if live(d) => Arc::clone(d),
            _ => {
                let d = Arc::new(open_dir(path)?);
                self.dirs.insert(ino, Arc::clone(&d));
                d
            }
        };
        Ok(Name {
            dir,
            name: name.to_os_string(),
        })
    }

    fn attic(&mut self) -> std::io::Result<&OwnedFd> {
        if self.attic_fd.is_none() {
            match std::fs::create_dir(&self.attic) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
            self.attic_fd = Some(open_dir(&self.attic)?);
        }
        Ok(self.attic_fd.as_ref().expect("opened above"))
    }

    /// Removes `at` as unlink or rmdir would, keeping its inode in the attic.
    pub(crate) fn remove(&mut self, parent: u64, at: Name, is_dir: bool) -> std::io::Result<()> {
        // unlink and rmdir check what they remove; a rename would not.
        let st = rustix::fs::statat(&*at.dir, &at.name, AtFlags::SYMLINK_NOFOLLOW)?;
        let dir =
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory;
        match (is_dir, dir) {
            (false, true) => return Err(rustix::io::Errno::ISDIR.into()),
            (true, false) => return Err(rustix::io::Errno::NOTDIR.into()),
            _ => {}
        }
        if dir && std::fs::read_dir(proc_path(&at))?.next().is_some() {
            return Err(rustix::io::Errno::NOTEMPTY.into());
        }
        let kept = self.keep(&at)?;
        self.log(vec![parent], Undo::Removed { at, kept });
        Ok(())
    }

    /// Moves `at` into the attic; its name there.
    fn keep(&mut self, at: &Name) -> std::io::Result<OsString> {
        self.next += 1;
        let kept = OsString::from(self.next.to_string());
        let attic = self.attic()?;
        rustix::fs::renameat_with(&*at.dir, &at.name, attic, &kept, RenameFlags::NOREPLACE)?;
        Ok(kept)
    }

    /// A name was created, holding inode `ino`.
    pub(crate) fn created(&mut self, parent: u64, at: Name, ino: u64, dir: bool) {
        self.log(vec![parent], Undo::Created { at, ino, dir });
    }

    /// Renames as rename(2) with `flags` would, keeping a replaced inode in the attic.
    pub(crate) fn rename(
        &mut self,
        parents: (u64, u64),
        from: Name,
        to: Name,
        flags: RenameFlags,
    ) -> std::io::Result<()> {
        let exchange = flags.contains(RenameFlags::EXCHANGE);
        let replaced = match exchange || flags.contains(RenameFlags::NOREPLACE) {
            true => None,
            false => self.keep_replaced(&from, &to)?,
        };
        let r = rustix::fs::renameat_with(&*from.dir, &from.name, &*to.dir, &to.name, flags);
        if let Err(e) = r {
            if let Some(kept) = &replaced {
                let _ = rustix::fs::renameat(self.attic()?, kept, &*to.dir, &to.name);
            }
            return Err(e.into());
        }
        let mut dirs = vec![parents.0];
        if parents.1 != parents.0 {
            dirs.push(parents.1);
        }
        let undo = Undo::Renamed {
            from,
            to,
            replaced,
            exchange,
        };
        self.log(dirs, undo);
        Ok(())
    }

    /// What a rename from `from` would replace at `to`, moved to the attic first, when
    /// the rename may go ahead (same checks as rename(2), so that a refused rename
    /// replaces nothing).
    fn keep_replaced(&mut self, from: &Name, to: &Name) -> std::io::Result<Option<OsString>> {
        let kind = |n: &Name| {
            rustix::fs::statat(&*n.dir, &n.name, AtFlags::SYMLINK_NOFOLLOW).map(|st| {
                (
                    st.st_ino,
                    st.st_dev,
                    st.st_mode & libc::S_IFMT == libc::S_IFDIR,
                )
            })
        };
        let src = kind(from)?;
        let dst = match kind(to) {
            Ok(d) => d,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if (src.0, src.1) == (dst.0, dst.1) {
            return Ok(None); // the same inode: rename(2) does nothing
        }
        match (src.2, dst.2) {
            (true, false) => return Err(rustix::io::Errno::NOTDIR.into()),
            (false, true) => return Err(rustix::io::Errno::ISDIR.into()),
            (true, true) if std::fs::read_dir(proc_path(to))?.next().is_some() => {
                return Err(rustix::io::Errno::NOTEMPTY.into())
            }
            _ => {}
        }
        self.keep(to).map(Some)
    }

    fn log(&mut self, dirs: Vec<u64>, undo: Undo) {
        self.pending.push(Pending { dirs, undo });
    }

    /// How many operations are not durable yet.
    pub(crate) fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The folder `dir` was fsynced: what only waited for it is durable.
    pub(crate) fn dir_synced(&mut self, dir: u64) {
        for p in &mut self.pending {
            p.dirs.retain(|&d| d != dir);
        }
        let (done, rest) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.dirs.is_empty());
        self.pending = rest;
        self.forget(done);
        if self.pending.is_empty() {
            self.dirs.clear();
        }
    }

    /// Everything so far is durable (the writeback of a real disk, or `sync(2)`).
    pub(crate) fn settle(&mut self) {
        let done = std::mem::take(&mut self.pending);
        self.forget(done);
        self.dirs.clear();
    }

    /// Durable operations: what they removed is gone for good.
    fn forget(&mut self, done: Vec<Pending>) {
        for p in done {
            let kept = match p.undo {
                Undo::Removed { kept, .. } => Some(kept),
                Undo::Renamed { replaced, .. } => replaced,
                Undo::Created { .. } => None,
            };
            if let Some(kept) = kept {
                let _ = std::fs::remove_dir_all(self.attic.join(&kept))
                    .or_else(|_| std::fs::remove_file(self.attic.join(&kept)));
            }
        }
    }

    /// The power went: every operation not durable is taken back, newest first.
    /// How many could not be (skipped: see the module's doc).
    pub(crate) fn undo_all(&mut self) -> usize {
        let pending = std::mem::take(&mut self.pending);
        let mut skipped = 0;
        for p in pending.into_iter().rev() {
            if self.undo(p.undo).is_err() {
                skipped += 1;
            }
        }
        self.dirs.clear();
        skipped
    }

    fn undo(&mut self, undo: Undo) -> std::io::Result<()> {
        match undo {
            Undo::Created { at, ino, dir } => {
                let st = rustix::fs::statat(&*at.dir, &at.name, AtFlags::SYMLINK_NOFOLLOW)?;
                if st.st_ino != ino {
                    return Err(rustix::io::Errno::STALE.into());
                }
                match dir {
                    // Whatever was made in it since is orphaned with it, as fsck would find.
                    true => std::fs::remove_dir_all(proc_path(&at)),
                    false => Ok(rustix::fs::unlinkat(&*at.dir, &at.name, AtFlags::empty())?),
                }
            }
            Undo::Removed { at, kept } => {
                let attic = self.attic()?;
                Ok(rustix::fs::renameat_with(
                    attic,
                    &kept,
                    &*at.dir,
                    &at.name,
                    RenameFlags::NOREPLACE,
                )?)
            }
            Undo::Renamed {
                from,
                to,
                replaced,
                exchange,
            } => {
                let flags = match exchange {
                    true => RenameFlags::EXCHANGE,
                    false => RenameFlags::NOREPLACE,
                };
                rustix::fs::renameat_with(&*to.dir, &to.name, &*from.dir, &from.name, flags)?;
                if let Some(kept) = replaced {
                    let attic = self.attic()?;
                    rustix::fs::renameat_with(
                        attic,
                        &kept,
                        &*to.dir,
                        &to.name,
                        RenameFlags::NOREPLACE,
                    )?;
                }
                Ok(())
            }
        }
    }

    /// Removes the attic (the mount goes for good).
    pub(crate) fn remove_attic(&mut self) {
        self.attic_fd = None;
        let _ = std::fs::remove_dir_all(&self.attic);
    }
}

/// A path that names `at` through this process's descriptor of its folder.
fn proc_path(at: &Name) -> PathBuf {
    use std::os::fd::AsRawFd;
    Path::new("/proc/self/fd")
        .join(at.dir.as_raw_fd().to_string())
        .join(&at.name)
}
