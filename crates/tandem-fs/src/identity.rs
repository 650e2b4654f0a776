//! Where a folder is, decided on file identity (DESIGN.md invariant 10: a root is
//! identified, not just named).
//!
//! Two paths name the same folder when they reach the same directory (device and inode),
//! whatever the strings say: a symlink, a bind mount or a second mount of the same disk
//! all give a folder another name. One folder is inside another when the other is among
//! its ancestors, found by walking `..` up to `/`. At the top of a bind mount of a
//! subdirectory, `..` leads to where the mount was put, not to the directory's real
//! parent; there the walk also goes on from the same directory seen in its real place
//! (another mount of the same file system, found in `/proc/self/mountinfo` and checked by
//! identity), so that a bind mount of `SRC/sub` is seen to be inside `SRC`.

use crate::os::{AsFd, OwnedFd};
use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use crate::os::fs::{Mode, OFlags};

/// A directory's identity: its device and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

/// A directory's identity and the mount it was reached through (`None` on kernels before
/// 5.8, which do not say).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    pub id: FileId,
    pub mnt_id: Option<u64>,
}

impl Place {
    /// The place of an open file or directory.
    pub fn of_fd(fd: impl AsFd) -> io::Result<Place> {
        crate::sys::place_of_fd(fd)
    }

    /// The place of the directory `path` leads to now (following symlinks).
    pub fn of_path(path: &Path) -> io::Result<Place> {
        Place::of_fd(open_dir(path)?)
    }
}

/// How folder `a` stands to folder `b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// The same directory, under two names.
    Same,
    /// `a` is below `b`.
    Inside,
    /// `b` is below `a`.
    Contains,
    Apart,
}

/// How the directory at `a` stands to the directory at `b`, on file identity.
pub fn placement(a: &Path, b: &Path) -> io::Result<Placement> {
    let (la, lb) = (Lineage::of(a)?, Lineage::of(b)?);
    Ok(if la.id == lb.id {
        Placement::Same
    } else if la.has_ancestor(lb.id) {
        Placement::Inside
    } else if lb.has_ancestor(la.id) {
        Placement::Contains
    } else {
        Placement::Apart
    })
}

/// A directory's identity and the identities of every directory above it.
#[derive(Debug)]
pub struct Lineage {
    pub id: FileId,
    above: HashSet<FileId>,
}

/// Directories looked at before the walk gives up (a guard against a looping file system).
const MAX_WALK: usize = 4096;

impl Lineage {
    /// Walks up from the directory at `path` (following symlinks) to `/`, through the
    /// parents in this mount namespace and, at the top of a bind mount, the real ones.
    pub fn of(path: &Path) -> io::Result<Lineage> {
        let fd = open_dir(path)?;
        let me = Place::of_fd(&fd)?;
        let mut above = HashSet::new();
        let mut mounts: Option<Vec<MountLine>> = None;
        let mut viewed: HashSet<u64> = HashSet::new();
        let mut todo = vec![(fd, me)];
        let mut walked = 0;
        while let Some((fd, here)) = todo.pop() {
            walked += 1;
            if walked > MAX_WALK {
                break;
            }
            // A parent that cannot be looked at (no search permission) ends this branch.
            let Ok(parent) = crate::sys::open_parent(&fd) else {
                continue;
            };
            let Ok(up) = Place::of_fd(&parent) else {
                continue;
            };
            if up.mnt_id != here.mnt_id {
                if let Some(mnt) = here.mnt_id.filter(|m| viewed.insert(*m)) {
                    let lines = mounts.get_or_insert_with(read_mountinfo);
                    if let Some(view) = real_place(lines, mnt, here.id) {
                        todo.push(view);
                    }
                }
            }
            if up.id != here.id && up.id != me.id && above.insert(up.id) {
                todo.push((parent, up));
            }
        }
        Ok(Lineage { id: me.id, above })
    }

    /// Is `id` one of the directories above this one?
    pub fn has_ancestor(&self, id: FileId) -> bool {
        self.above.contains(&id)
    }

    /// Is `id` this directory or one above it?
    pub fn is_at_or_below(&self, id: FileId) -> bool {
        self.id == id || self.has_ancestor(id)
    }
}

fn dir_flags() -> OFlags {
    crate::sys::O_PATH | OFlags::DIRECTORY | OFlags::CLOEXEC
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(crate::os::fs::open(path, dir_flags(), Mode::empty())?)
}

/// One line of `/proc/self/mountinfo`: which directory of which file system is mounted where.
#[derive(Debug)]
pub struct MountLine {
    pub id: u64,
    /// The file system's device number (`makedev(major, minor)`).
    pub dev: u64,
    /// The mounted directory, as a path inside its file system (`/` for a whole one).
    pub root: PathBuf,
    pub point: PathBuf,
    /// `ext4`, `fuse`, `fuse.sshfs`...
    pub fstype: String,
}

/// The mount table, in mount order, or none when it cannot be read (no `/proc`): the walk
/// then stays in this namespace's parents.
pub fn read_mountinfo() -> Vec<MountLine> {
    crate::sys::mountinfo_text()
        .map(|text| text.lines().filter_map(parse_mountinfo_line).collect())
        .unwrap_or_default()
}

/// "id parent major:minor root mountpoint options [optional fields] - fstype source ..."
fn parse_mountinfo_line(line: &str) -> Option<MountLine> {
    let (head, tail) = line.split_once(" - ")?;
    let fstype = tail.split(' ').next()?.to_string();
    let mut f = head.split(' ');
    let id = f.next()?.parse().ok()?;
    let _parent = f.next()?;
    let (major, minor) = f.next()?.split_once(':')?;
    let dev = crate::sys::makedev(major.parse().ok()?, minor.parse().ok()?);
    let root = unescape(f.next()?);
    let point = unescape(f.next()?);
    Some(MountLine {
        id,
        dev,
        root,
        point,
        fstype,
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\134` for a backslash...).
fn unescape(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match oct {
            Some(d) if b[i] == b'\\' => {
                let v = d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
                out.push(v as u8);
                i += 4;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    crate::sys::path_from_bytes(out)
}

/// The top directory of mount `mnt` (identity `id`) seen in its real place: through another
/// mount of the same file system that shows more of it, checked to be the same directory.
/// `None` for a mount of a whole file system, or when no other mount shows its parent.
fn real_place(lines: &[MountLine], mnt: u64, id: FileId) -> Option<(OwnedFd, Place)> {
    let this = lines.iter().find(|l| l.id == mnt)?;
    if this.root == Path::new("/") {
        return None;
    }
    let mut wider: Vec<&MountLine> = lines
        .iter()
        .filter(|l| l.dev == this.dev && l.id != mnt && this.root.starts_with(&l.root))
        .filter(|l| l.root != this.root)
        .collect();
    wider.sort_by_key(|l| l.root.as_os_str().len());
    wider.into_iter().find_map(|l| {
        let rest = this.root.strip_prefix(&l.root).ok()?;
        let fd = open_dir(&l.point.join(rest)).ok()?;
        let place = Place::of_fd(&fd).ok()?;
        (place.id == id).then_some((fd, place))
    })
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_and_escapes() {
        let l = parse_mountinfo_line(
            "36 35 98:0 /mnt\\0401 /mnt/par\\134ent rw,noatime master:1 - ext3 /dev/root rw",
        )
        .unwrap();
        assert_eq!(l.id, 36);
        assert_eq!(l.dev, crate::sys::makedev(98, 0));
        assert_eq!(l.root, Path::new("/mnt 1"));
        assert_eq!(l.point, Path::new("/mnt/par\\ent"));
        assert_eq!(l.fstype, "ext3");
        // A backslash not followed by three octal digits stays as it is.
        assert_eq!(unescape(r"/x\9y\04"), Path::new(r"/x\9y\04"));
        assert_eq!(unescape(r"/tmp/a\040b\011c"), Path::new("/tmp/a b\tc"));
    }

    #[test]
    fn nesting_and_sameness_through_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        std::fs::create_dir_all(a.join("sub/deeper")).unwrap();
        std::os::unix::fs::symlink(a.join("sub"), tmp.path().join("alias")).unwrap();
        let b = tmp.path().join("b");
        std::fs::create_dir(&b).unwrap();
        let alias = tmp.path().join("alias");
        assert_eq!(placement(&a, &a).unwrap(), Placement::Same);
        assert_eq!(placement(&alias, &a.join("sub")).unwrap(), Placement::Same);
        assert_eq!(placement(&alias, &a).unwrap(), Placement::Inside);
        assert_eq!(
            placement(&a, &alias.join("deeper")).unwrap(),
            Placement::Contains
        );
        assert_eq!(placement(&a, &b).unwrap(), Placement::Apart);
        assert_eq!(placement(&b, Path::new("/")).unwrap(), Placement::Inside);
    }
}
