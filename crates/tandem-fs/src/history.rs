//! The source's history folder (`.tandem/history/`, where a mount keeps what requests
//! through it destroyed) as the engine reads, prunes and restores from it, and the atomic
//! copy a restore makes. Which versions exist is the state store's to say; this module only
//! touches files.

use crate::os::{AsFd, OwnedFd};

use crate::os::fs::{fstat, openat, statat, unlinkat, AtFlags, Dir, FileType, Mode, OFlags};
use crate::os::io::Errno;
use tandem_core::{RelPath, HISTORY_DIR};

use crate::error::{FsError, Result};
use crate::root::Root;

/// The path of version `name` in a root.
pub fn version_path(name: &str) -> RelPath {
    RelPath::from_str_lossless(HISTORY_DIR).join(name.as_bytes())
}

/// The names of the files in `root`'s history folder (none when it does not exist).
pub fn history_files(root: &Root) -> Result<Vec<String>> {
    let dir = RelPath::from_str_lossless(HISTORY_DIR);
    let fd = match root.open_beneath(&dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(Vec::new()),
        Err(e) => return Err(FsError::io(&dir, "open directory", e)),
    };
    let mut names = Vec::new();
    for item in Dir::read_from(&fd).map_err(|e| FsError::io(&dir, "read directory", e))? {
        let item = item.map_err(|e| FsError::io(&dir, "read directory", e))?;
        let name = item.file_name().to_string_lossy();
        if name != "." && name != ".." {
            names.push(name.into_owned());
        }
    }
    Ok(names)
}

/// The size of version `name` in `root`'s history; `None` when it is not there or not a
/// regular file.
pub fn version_size(root: &Root, name: &str) -> Result<Option<u64>> {
    let rel = version_path(name);
    let (dir, file) = root.parent(&rel)?;
    match statat(&dir, file.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {
            Ok(Some(st.st_size.max(0) as u64))
        }
        Ok(_) | Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(FsError::io(&rel, "stat", e)),
    }
}

/// Removes version `name` from `root`'s history (gone already: done).
pub fn remove_version(root: &Root, name: &str) -> Result<()> {
    let rel = version_path(name);
    let (dir, file) = root.parent(&rel)?;
    match unlinkat(&dir, file.as_slice(), AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(FsError::io(&rel, "remove from the history", e)),
    }
}

/// Keeps what the regular file `rel` holds now as version `name` in `root`'s history: a
/// hard link when the file is about to be replaced by a rename (no data copied), else a
/// copy. Its size, or `None` when there is nothing to keep (no such file, empty, not a
/// regular file).
pub fn keep_version(root: &Root, rel: &RelPath, name: &str) -> Result<Option<u64>> {
    let (dir, file) = match root.parent(rel) {
        Ok(x) => x,
        Err(FsError::Raced { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let st = match statat(&dir, file.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(FsError::io(rel, "stat", e)),
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile || st.st_size == 0 {
        return Ok(None);
    }
    let hist = history_dir(root)?;
    let to = version_path(name);
    match crate::os::fs::linkat(&dir, file.as_slice(), &hist, name, AtFlags::empty()) {
        Ok(()) => {}
        Err(Errno::XDEV | Errno::PERM | Errno::MLINK) => {
            let src = openat(
                &dir,
                file.as_slice(),
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| FsError::io(rel, "open", e))?;
            write_new(&hist, name, &src, 0o600, &to)?;
        }
        Err(e) => return Err(FsError::io(&to, "keep in the history", e)),
    }
    crate::os::fs::fsync(&hist).map_err(|e| FsError::io(&to, "fsync", e))?;
    Ok(Some(st.st_size.max(0) as u64))
}

/// `.tandem/history` in `root`, made if missing.
fn history_dir(root: &Root) -> Result<OwnedFd> {
    let mut cur = RelPath::root();
    for (name, mode) in [(".tandem", 0o755), ("history", 0o700)] {
        let dir = root
            .open_beneath(&cur, crate::sys::O_PATH | OFlags::DIRECTORY, Mode::empty())
            .map_err(|e| FsError::io(&cur, "open directory", e))?;
        cur = cur.join(name.as_bytes());
        match crate::os::fs::mkdirat(&dir, name, crate::sys::mode(mode)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(FsError::io(&cur, "create directory", e)),
        }
    }
    root.open_beneath(&cur, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
        .map_err(|e| FsError::io(&cur, "open directory", e))
}

/// Writes a copy of `from_rel` on `from` at `to_rel` on `to`, atomically: under a temporary
/// name in the destination folder (its missing parents made), fsynced, then renamed over
/// whatever `to_rel` holds. The copy gets the mode of what it replaces, else `mode`.
/// Returns its size.
pub fn restore_copy(
    from: &Root,
    from_rel: &RelPath,
    to: &Root,
    to_rel: &RelPath,
    mode: u32,
) -> Result<u64> {
    let src = from
        .open_beneath(from_rel, OFlags::RDONLY, Mode::empty())
        .map_err(|e| FsError::io(from_rel, "open", e))?;
    make_parents(to, to_rel)?;
    let (dir, name) = to.parent(to_rel)?;
    let mode = match statat(&dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {
            crate::sys::st_mode(&st) & 0o777
        }
        _ => mode & 0o777,
    };
    let tmp = format!(
        ".tandem-tmp.{}.restore.{}",
        std::process::id(),
        String::from_utf8_lossy(&name)
            .chars()
            .take(60)
            .collect::<String>()
    );
    let size = write_new(&dir, &tmp, &src, mode, to_rel)?;
    if let Err(e) = crate::os::fs::renameat(&dir, tmp.as_str(), &dir, name.as_slice()) {
        let _ = unlinkat(&dir, tmp.as_str(), AtFlags::empty());
        return Err(FsError::io(to_rel, "rename into place", e));
    }
    if let Ok(d) = to.open_beneath(
        &to_rel.parent().unwrap_or_default(),
        OFlags::RDONLY | OFlags::DIRECTORY,
        Mode::empty(),
    ) {
        let _ = crate::os::fs::fsync(&d);
    }
    Ok(size)
}

/// Creates `name` in `dir` holding all of `src`, fsynced; removed again on failure.
fn write_new(dir: &impl AsFd, name: &str, src: &OwnedFd, mode: u32, rel: &RelPath) -> Result<u64> {
    let out = openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        crate::sys::mode(mode),
    )
    .map_err(|e| FsError::io(rel, "create temporary file", e))?;
    let r = (|| -> std::io::Result<u64> {
        let src = std::fs::File::from(crate::os::io::dup(src)?);
        let mut w = std::fs::File::from(crate::os::io::dup(&out)?);
        let mut r = std::io::BufReader::with_capacity(1 << 20, src);
        let n = std::io::copy(&mut r, &mut w)?;
        crate::os::fs::fsync(&out)?;
        Ok(n)
    })();
    r.map_err(|e| {
        let _ = unlinkat(dir, name, AtFlags::empty());
        FsError::io(rel, "write the copy", e)
    })
}

/// Makes the missing folders above `rel` (mode 0777 less the umask, as `mkdir` would).
fn make_parents(root: &Root, rel: &RelPath) -> Result<()> {
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    let mut cur = RelPath::root();
    for comp in parent.components() {
        let next = cur.join(comp);
        let dir = root
            .open_beneath(&cur, crate::sys::O_PATH | OFlags::DIRECTORY, Mode::empty())
            .map_err(|e| FsError::io(&cur, "open directory", e))?;
        match crate::os::fs::mkdirat(&dir, comp, crate::sys::mode(0o777)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(FsError::io(&next, "create directory", e)),
        }
        cur = next;
    }
    Ok(())
}

/// The size and permission bits of the file `rel` on `root`, if it is a regular file.
pub fn file_mode(root: &Root, rel: &RelPath) -> Option<(u64, u32)> {
    let fd = root
        .open_beneath(rel, crate::sys::O_PATH, Mode::empty())
        .ok()?;
    let st = fstat(&fd).ok()?;
    (FileType::from_raw_mode(st.st_mode) == FileType::RegularFile)
        .then(|| (st.st_size.max(0) as u64, crate::sys::st_mode(&st) & 0o7777))
}
