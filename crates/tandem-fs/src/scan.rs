//! Parallel, stat-first scanning of a root, and hashing on demand.
//!
//! A scan reads directories and `lstat`s their entries; it never opens a file. Contents are
//! hashed only for the paths the engine asks about.

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::os::fs::{fstat, statat, AtFlags, Dir, FileType, Mode, OFlags};
use tandem_core::{Entry, Filter, Hash, RelPath, Tree};

use crate::error::{FsError, Result};
use crate::root::{entry_from_stat, same_object, Root};

/// Reads the whole tree below `root` (the root itself is not an entry). Excluded paths are
/// left out and excluded directories are not entered. A directory that cannot be read
/// becomes a `Problem` entry; only failing to read the root itself is an error.
pub fn scan(root: &Root, filter: &Filter, threads: usize) -> Result<Scan> {
    let listing = list(root, filter, threads)?;
    Ok(Scan {
        tree: listing.entries.into_iter().collect(),
        stale_temps: listing.stale_temps,
    })
}

/// Like [`scan`], but the entries come as a list in path order, for a caller that merges
/// them with the baseline as they pass (`tandem_core::Merge`) rather than keeping a tree.
pub fn list(root: &Root, filter: &Filter, threads: usize) -> Result<Listing> {
    scan_dirs(root, filter, threads, vec![RelPath::root()])
}

/// What a scan found, as a list in path order (no path twice).
#[derive(Debug, Default)]
pub struct Listing {
    pub entries: Vec<(RelPath, Entry)>,
    pub stale_temps: Vec<RelPath>,
}

/// What a scan found: the tree, and temporary files left by a tandem process that is gone
/// (a crash in the middle of a copy), for the engine to remove.
#[derive(Debug, Default)]
pub struct Scan {
    pub tree: Tree,
    pub stale_temps: Vec<RelPath>,
}

/// Is `name` one of our temporary files whose writer process no longer exists?
fn is_stale_temp(name: &[u8]) -> bool {
    let Some(rest) = name.strip_prefix(b".tandem-tmp.") else {
        return false;
    };
    let pid = rest.split(|&b| b == b'.').next().unwrap_or_default();
    match std::str::from_utf8(pid)
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
    {
        Some(pid) => {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        }
        None => false,
    }
}

/// Reads `paths`, their parent directories, and everything below those that are
/// directories: the part of a tree that journal hints point at.
///
/// Each path comes with `below`: whether to read what is below it when it is a directory.
pub fn scan_paths(
    root: &Root,
    filter: &Filter,
    threads: usize,
    paths: &[(RelPath, bool)],
) -> Result<Scan> {
    let mut tree = Tree::new();
    let mut dirs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (p, _) in paths {
        let mut anc = p.parent();
        while let Some(a) = anc {
            if a.is_root() || !seen.insert(a.clone()) {
                break;
            }
            if let Some(e) = root.stat(&a)? {
                if !filter.excludes_any(&a, e.is_dir()) {
                    tree.insert(a.clone(), e);
                }
            }
            anc = a.parent();
        }
    }
    for (p, below) in paths {
        if p.is_root() {
            return scan(root, filter, threads);
        }
        let Some(e) = root.stat(p)? else { continue };
        if filter.excludes_any(p, e.is_dir()) {
            continue;
        }
        if *below && e.is_dir() && !dirs.iter().any(|d: &RelPath| p.starts_with(d)) {
            dirs.push(p.clone());
        }
        tree.insert(p.clone(), e);
    }
    // Nested hints: scanning the outer directory covers the inner ones.
    dirs.sort();
    dirs.dedup_by(|b, a| b.starts_with(a));
    if !dirs.is_empty() {
        let below = scan_dirs(root, filter, threads, dirs)?;
        tree.extend(below.entries);
        return Ok(Scan {
            tree,
            stale_temps: below.stale_temps,
        });
    }
    Ok(Scan {
        tree,
        stale_temps: Vec::new(),
    })
}

/// Reads everything below each of `starts` (directories).
fn scan_dirs(
    root: &Root,
    filter: &Filter,
    threads: usize,
    starts: Vec<RelPath>,
) -> Result<Listing> {
    let threads = threads.max(1);
    let (tx, rx) = crossbeam_channel::unbounded::<Option<RelPath>>();
    let pending = AtomicUsize::new(starts.len());
    let results: Mutex<Vec<(RelPath, Entry)>> = Mutex::new(Vec::new());
    let fatal: Mutex<Option<FsError>> = Mutex::new(None);
    let stale: Mutex<Vec<RelPath>> = Mutex::new(Vec::new());
    if starts.is_empty() {
        return Ok(Listing::default());
    }
    for d in starts {
        let _ = tx.send(Some(d));
    }
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (tx, rx) = (tx.clone(), rx.clone());
            let (pending, results, fatal, stale) = (&pending, &results, &fatal, &stale);
            s.spawn(move || {
                let mut local = Vec::new();
                let mut local_stale = Vec::new();
                while let Ok(Some(dir)) = rx.recv() {
                    match read_dir(root, &dir, filter, &mut local, &mut local_stale) {
                        Ok(subdirs) => {
                            pending.fetch_add(subdirs.len(), Ordering::SeqCst);
                            for d in subdirs {
                                let _ = tx.send(Some(d));
                            }
                        }
                        Err(e) if dir.is_root() => {
                            *fatal.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        }
                        Err(e) => local.push((dir.clone(), Entry::problem(error_reason(&e)))),
                    }
                    if pending.fetch_sub(1, Ordering::SeqCst) == 1 {
                        for _ in 0..threads {
                            let _ = tx.send(None);
                        }
                    }
                }
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .append(&mut local);
                stale
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .append(&mut local_stale);
            });
        }
    });
    if let Some(e) = fatal.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    // One sort, then a bulk build: cheaper than inserting entries one by one. A directory
    // found unreadable has two entries (its parent's and the failed read's): the problem
    // sorts first (untracked before tracked) and is the one `dedup_by` keeps. Unstable:
    // no buffer of half the list. Entries equal under this order are two problems at one
    // path (an unreadable directory whose attributes failed too): either will do, as the
    // order threads pushed them in decided before.
    let mut entries = results.into_inner().unwrap_or_else(|p| p.into_inner());
    entries.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| a.1.kind.is_tracked().cmp(&b.1.kind.is_tracked()))
    });
    entries.dedup_by(|later, earlier| later.0 == earlier.0);
    let stale_temps = stale.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok(Listing {
        entries,
        stale_temps,
    })
}

pub(crate) fn error_reason(e: &FsError) -> String {
    match e {
        FsError::Io { source, .. } | FsError::CannotLink { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

/// Lists one directory into `out`; returns the subdirectories to enter.
pub(crate) fn read_dir(
    root: &Root,
    dir: &RelPath,
    filter: &Filter,
    out: &mut Vec<(RelPath, Entry)>,
    stale: &mut Vec<RelPath>,
) -> Result<Vec<RelPath>> {
    let fd = root
        .open_beneath(dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
        .map_err(|e| FsError::io(dir, "open directory", e))?;
    let mut subdirs = Vec::new();
    let entries = Dir::read_from(&fd).map_err(|e| FsError::io(dir, "read directory", e))?;
    for item in entries {
        let item = item.map_err(|e| FsError::io(dir, "read directory", e))?;
        let name = item.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let path = dir.join(name);
        let st = match statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(crate::os::io::Errno::NOENT) => continue, // gone meanwhile: not there
            Err(e) => {
                out.push((path, Entry::problem(std::io::Error::from(e).to_string())));
                continue;
            }
        };
        let ftype = FileType::from_raw_mode(st.st_mode);
        let is_dir = ftype == FileType::Directory;
        if filter.excludes(&path, is_dir) {
            if !is_dir && is_stale_temp(name) {
                stale.push(path);
            }
            continue;
        }
        let link = if ftype == FileType::Symlink {
            match crate::os::fs::readlinkat(&fd, name, Vec::new()) {
                Ok(t) => Some(t.into_bytes()),
                Err(e) => {
                    out.push((path, Entry::problem(std::io::Error::from(e).to_string())));
                    continue;
                }
            }
        } else {
            None
        };
        if is_dir {
            subdirs.push(path.clone());
        }
        let e = entry_from_stat(&st, link);
        let at = crate::xattrs::At::child(&fd, name);
        let e = root
            .with_xattrs(e, &at, &path)
            .unwrap_or_else(|e| Entry::problem(error_reason(&e)));
        out.push((path, e));
    }
    Ok(subdirs)
}

/// The directories at or below `start` whose relative path is `min_len` bytes or longer
/// while their parent's is shorter: where the tree grows past a length limit (inotify
/// takes a whole path of at most PATH_MAX bytes, so a watcher needs another foothold
/// there). `.tandem` at the top is left out. Reads directories only, with the entry types
/// they give (a `stat` only where the file system gives none); what cannot be read is left
/// out: this finds footholds for a watcher, the scan finds the tree.
pub fn dirs_reaching(root: &Root, start: &RelPath, min_len: usize) -> Vec<RelPath> {
    let mut out = Vec::new();
    let mut todo = vec![start.clone()];
    while let Some(dir) = todo.pop() {
        if dir.as_bytes().len() >= min_len {
            out.push(dir);
            continue;
        }
        let Ok(fd) = root.open_beneath(&dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
        else {
            continue;
        };
        let Ok(entries) = Dir::read_from(&fd) else {
            continue;
        };
        for item in entries.flatten() {
            let name = item.file_name().to_bytes();
            if name == b"." || name == b".." || (dir.is_root() && name == b".tandem") {
                continue;
            }
            let is_dir = match item.file_type() {
                FileType::Directory => true,
                FileType::Unknown => statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory),
                _ => false,
            };
            if is_dir {
                todo.push(dir.join(name));
            }
        }
    }
    out
}

/// The blake3 hash of the file at `rel`, which must still be the file the scan saw; a file
/// that changes while it is read is reported as raced, never hashed torn.
pub fn hash_file(root: &Root, rel: &RelPath, expect: &Entry) -> Result<Hash> {
    let fd = root
        .open_beneath(rel, OFlags::RDONLY, Mode::empty())
        .map_err(|e| FsError::io(rel, "open for hashing", e))?;
    let before = entry_from_stat(&fstat(&fd).map_err(|e| FsError::io(rel, "stat", e))?, None);
    if !same_object(&before, expect) {
        return Err(FsError::raced(rel, "replaced before hashing"));
    }
    let mut file = std::fs::File::from(fd);
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| FsError::io(rel, "read", e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let after = entry_from_stat(
        &fstat(&file).map_err(|e| FsError::io(rel, "stat", e))?,
        None,
    );
    if !same_object(&after, expect) {
        return Err(FsError::raced(rel, "changed while hashing"));
    }
    Ok(Hash(*hasher.finalize().as_bytes()))
}
