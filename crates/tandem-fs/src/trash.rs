//! What a side's trash (`.tandem/trash/<stamp>/<path>`) holds, and pruning it to a
//! `Retention`. Which versions go is `Retention::to_drop`'s decision; this module only
//! reads the trash and removes what it is told.
//!
//! A version's time is its ctime: moving or linking a file into the trash sets it, and
//! nothing touches a file in the trash afterwards.

use std::collections::HashSet;

use crate::os::fs::{statat, unlinkat, AtFlags, Dir, FileType, Mode, OFlags};
use crate::os::io::Errno;
use tandem_core::{Kept, RelPath, Retention};

use crate::error::{FsError, Result};
use crate::root::Root;

const TRASH: &str = ".tandem/trash";

/// How much a trash holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrashUsage {
    pub versions: u64,
    pub bytes: u64,
}

/// What a prune removed, and what is left.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub removed: u64,
    pub freed: u64,
    pub left: TrashUsage,
}

/// One file in the trash: where it is in the root, and what it is a version of.
struct Found {
    at: RelPath,
    kept: Kept,
}

/// One version in a side's trash, for `tandem history`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrashVersion {
    /// Where it is in its root (`.tandem/trash/<bucket>/<path>`).
    pub at: RelPath,
    /// The path it was a version of.
    pub path: RelPath,
    /// When it was set aside (its ctime, nanoseconds since the epoch).
    pub time_ns: i64,
    pub bytes: u64,
}

/// Every version in `root`'s trash.
pub fn trash_versions(root: &Root) -> Result<Vec<TrashVersion>> {
    let (found, _) = walk(root)?;
    Ok(found
        .into_iter()
        .map(|f| TrashVersion {
            at: f.at,
            path: f.kept.path,
            time_ns: f.kept.time_ns,
            bytes: f.kept.bytes,
        })
        .collect())
}

/// The versions in `root`'s trash, counted and sized.
pub fn trash_usage(root: &Root) -> Result<TrashUsage> {
    let (found, _) = walk(root)?;
    Ok(usage(found.iter().map(|f| f.kept.bytes)))
}

/// Removes from `root`'s trash what `retention` lets go of at `now_ns`; `other` is the
/// other side of the pair: a path present on either side has a copy outside the trash.
pub fn prune_trash(
    root: &Root,
    other: &Root,
    retention: &Retention,
    now_ns: i64,
) -> Result<Pruned> {
    prune_trash_where(root, &|p| present(other, p), retention, now_ns)
}

/// The paths the versions in `root`'s trash are of, each once: for the other side of the
/// pair, on another machine, to say which it holds ([`prune_trash_where`]).
pub fn trash_paths(root: &Root) -> Result<Vec<RelPath>> {
    let (found, _) = walk(root)?;
    let mut paths: Vec<RelPath> = found.into_iter().map(|f| f.kept.path).collect();
    paths.sort();
    paths.dedup();
    Ok(paths)
}

/// [`prune_trash`], with `elsewhere` saying whether the other side holds a path (it is on
/// another machine).
pub fn prune_trash_where(
    root: &Root,
    elsewhere: &dyn Fn(&RelPath) -> bool,
    retention: &Retention,
    now_ns: i64,
) -> Result<Pruned> {
    let (found, dirs) = walk(root)?;
    let mut kept: Vec<Kept> = found.iter().map(|f| f.kept.clone()).collect();
    // Only a path's newest version can be its last copy: the sides are looked up for it
    // alone, not for each of its versions.
    for i in Retention::newest_of_each_path(&kept) {
        kept[i].elsewhere = present(root, &kept[i].path) || elsewhere(&kept[i].path);
    }
    let mut out = Pruned::default();
    let mut gone = HashSet::new();
    for i in retention.to_drop(&kept, now_ns) {
        let f = &found[i];
        let (dir, name) = root.parent(&f.at)?;
        match unlinkat(&dir, name.as_slice(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(FsError::io(&f.at, "remove from the trash", e)),
        }
        out.removed += 1;
        out.freed += f.kept.bytes;
        gone.insert(i);
    }
    // Deepest first: a folder emptied by the removals goes, then its parent.
    for dir in dirs.iter().rev() {
        if let Ok((parent, name)) = root.parent(dir) {
            let _ = unlinkat(&parent, name.as_slice(), AtFlags::REMOVEDIR);
        }
    }
    out.left = usage(
        found
            .iter()
            .enumerate()
            .filter(|(i, _)| !gone.contains(i))
            .map(|(_, f)| f.kept.bytes),
    );
    Ok(out)
}

fn usage(sizes: impl Iterator<Item = u64>) -> TrashUsage {
    sizes.fold(TrashUsage::default(), |u, b| TrashUsage {
        versions: u.versions + 1,
        bytes: u.bytes + b,
    })
}

/// Whether `root` holds `path` (anything there); unknown counts as held.
pub fn present(root: &Root, path: &RelPath) -> bool {
    // Unknown counts as present: a version is never kept as the last copy by mistake,
    // only possibly dropped as an older one.
    !matches!(root.stat(path), Ok(None))
}

/// Every file in the trash, and every folder below it (parents before children).
fn walk(root: &Root) -> Result<(Vec<Found>, Vec<RelPath>)> {
    let trash = RelPath::from_str_lossless(TRASH);
    let mut found = Vec::new();
    let mut dirs = Vec::new();
    let mut todo = vec![trash.clone()];
    while let Some(dir) = todo.pop() {
        let fd = match root.open_beneath(&dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if dir == trash => return Ok((found, dirs)),
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(FsError::io(&dir, "open directory", e)),
        };
        if dir != trash {
            dirs.push(dir.clone());
        }
        let mut names = Vec::new();
        for item in Dir::read_from(&fd).map_err(|e| FsError::io(&dir, "read directory", e))? {
            let item = item.map_err(|e| FsError::io(&dir, "read directory", e))?;
            let name = item.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(name.to_vec());
            }
        }
        for name in &names {
            let at = dir.join(name);
            let st = match statat(&fd, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(FsError::io(&at, "stat", e)),
            };
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                todo.push(at);
                continue;
            }
            let Some(path) = version_of(&at) else {
                continue;
            };
            found.push(Found {
                at,
                kept: Kept {
                    path,
                    time_ns: st
                        .st_ctime
                        .saturating_mul(1_000_000_000)
                        .saturating_add(st.st_ctime_nsec as i64),
                    bytes: st.st_size.max(0) as u64,
                    elsewhere: false,
                },
            });
        }
    }
    Ok((found, dirs))
}

/// The path `at` (`.tandem/trash/<bucket>/<path>`) is a version of: each bucket holds one
/// version of a path at most (`Trash::slot`).
fn version_of(at: &RelPath) -> Option<RelPath> {
    let mut path = RelPath::root();
    let mut inner = at.components().skip(3).peekable();
    inner.peek()?;
    for c in inner {
        path = path.join(c);
    }
    Some(path)
}
