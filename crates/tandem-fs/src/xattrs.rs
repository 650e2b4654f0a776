//! The extended attributes a run keeps (`--xattrs`: `user.*`, and `security.*` and
//! `trusted.*` as root; `--acls`: the POSIX ACLs in `system.posix_acl_*`): read as a sorted
//! list of (name, value), summed up in a digest for the baseline, written to a copy before
//! it is renamed into place, and set or removed in place for a metadata-only change.
//!
//! Read only when the run asks (`Keep::reads_xattrs`): a `listxattr` per entry is the
//! whole cost of the option on a no-change sync. Where a side cannot hold an attribute (a
//! file system without xattrs or ACLs, a value too large), the rest is written, the refusal
//! is noted on the root ([`Root::note_refusal`]) and the entry read back shows what was
//! kept: the baseline records each side as it is, so the difference does not come back.

use crate::os::{AsFd, BorrowedFd};
use std::io;
use std::path::PathBuf;

use crate::os::fs::XattrFlags;
use crate::os::io::Errno;
use tandem_core::{Hash, Keep, RelPath};

use crate::error::{FsError, Result};
use crate::root::Root;

/// The buffer a list or value is first read into: most fit, and need one call.
const FIRST_TRY: usize = 1024;

/// Kept attributes, sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Xattrs(Vec<(Vec<u8>, Vec<u8>)>);

impl Xattrs {
    /// A digest of the list; `None` when it is empty (nothing kept to compare).
    pub fn digest(&self) -> Option<Hash> {
        if self.0.is_empty() {
            return None;
        }
        let mut h = blake3::Hasher::new();
        for (name, value) in &self.0 {
            h.update(&(name.len() as u64).to_le_bytes());
            h.update(name);
            h.update(&(value.len() as u64).to_le_bytes());
            h.update(value);
        }
        Some(Hash(*h.finalize().as_bytes()))
    }

    /// The attributes of a list read on another machine (a remote side), sorted by name,
    /// one value per name.
    pub fn from_list(mut list: Vec<(Vec<u8>, Vec<u8>)>) -> Xattrs {
        list.sort();
        list.dedup_by(|a, b| a.0 == b.0);
        Xattrs(list)
    }

    /// The (name, value) pairs, sorted by name.
    pub fn list(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.0
    }

    pub fn into_list(self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.0
    }

    fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.0
            .binary_search_by(|(n, _)| n.as_slice().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_slice())
    }
}

/// Where a folder's or file's attributes come from when a step gives them: the other
/// side's root on this machine (read there at the step), or the list read on the other
/// machine (a remote side).
#[derive(Clone, Copy)]
pub enum AttrsFrom<'a> {
    Root(&'a Root),
    Given(&'a Xattrs),
}

/// The attributes the run keeps of `rel` on `root` (`None`: the run keeps none), for the
/// other machine. A symlink has none.
pub fn read_xattrs(root: &Root, rel: &RelPath) -> Result<Option<Xattrs>> {
    let keep = root.keep();
    if !keep.reads_xattrs() {
        return Ok(None);
    }
    let (dir, name) = root.parent(rel)?;
    match At::child(&dir, &name).read(&keep) {
        Ok(x) => Ok(Some(x)),
        Err(e) if Errno::from_io_error(&e) == Some(Errno::NOENT) => Err(FsError::vanished(rel)),
        Err(e) => Err(FsError::io(rel, "read extended attributes", e)),
    }
}

/// Where attributes are read and written: a file or folder opened for reading or writing
/// (the f*xattr calls: no path to resolve), the object behind any other fd (an `O_PATH` one:
/// through its `/proc/self/fd/N` link, followed), or a name in a folder (not followed: a
/// symlink swapped in is acted on itself, never what it points to).
pub(crate) enum At<'a> {
    Open(BorrowedFd<'a>),
    Path { path: PathBuf, follow: bool },
}

impl<'a> At<'a> {
    /// A file or folder opened for reading or writing (never an `O_PATH` fd: the f*xattr
    /// calls refuse those).
    pub(crate) fn open(fd: &'a impl AsFd) -> At<'a> {
        At::Open(fd.as_fd())
    }

    /// The object behind `fd` (an `O_PATH` fd too).
    pub(crate) fn fd(fd: &impl AsFd) -> At<'a> {
        At::Path {
            path: crate::sys::path_from_bytes(crate::sys::fd_path(fd.as_fd()).unwrap_or_default()),
            follow: true,
        }
    }

    /// `name` in the folder `dir`.
    pub(crate) fn child(dir: &impl AsFd, name: &[u8]) -> At<'a> {
        let mut p = crate::sys::fd_path(dir.as_fd()).unwrap_or_default();
        p.push(b'/');
        p.extend_from_slice(name);
        At::Path {
            path: crate::sys::path_from_bytes(p),
            follow: false,
        }
    }

    fn list_into(&self, buf: &mut [u8]) -> crate::os::io::Result<usize> {
        match self {
            At::Open(fd) => crate::os::fs::flistxattr(fd, buf),
            At::Path { path, follow: true } => crate::os::fs::listxattr(path, buf),
            At::Path { path, .. } => crate::os::fs::llistxattr(path, buf),
        }
    }

    /// The size of the list (the `*_into` calls take an empty buffer as empty, not as a
    /// size query).
    fn list_size(&self) -> crate::os::io::Result<usize> {
        match self {
            At::Open(fd) => crate::os::fs::flistxattr_query(fd),
            At::Path { path, follow: true } => crate::os::fs::listxattr_query(path),
            At::Path { path, .. } => crate::os::fs::llistxattr_query(path),
        }
    }

    fn value_size(&self, name: &[u8]) -> crate::os::io::Result<usize> {
        match self {
            At::Open(fd) => crate::os::fs::fgetxattr_query(fd, name),
            At::Path { path, follow: true } => crate::os::fs::getxattr_query(path, name),
            At::Path { path, .. } => crate::os::fs::lgetxattr_query(path, name),
        }
    }

    fn get_into(&self, name: &[u8], buf: &mut [u8]) -> crate::os::io::Result<usize> {
        match self {
            At::Open(fd) => crate::os::fs::fgetxattr(fd, name, buf),
            At::Path { path, follow: true } => crate::os::fs::getxattr(path, name, buf),
            At::Path { path, .. } => crate::os::fs::lgetxattr(path, name, buf),
        }
    }

    fn set(&self, name: &[u8], value: &[u8]) -> crate::os::io::Result<()> {
        let flags = XattrFlags::empty();
        match self {
            At::Open(fd) => crate::os::fs::fsetxattr(fd, name, value, flags),
            At::Path { path, follow: true } => crate::os::fs::setxattr(path, name, value, flags),
            At::Path { path, .. } => crate::os::fs::lsetxattr(path, name, value, flags),
        }
    }

    fn remove(&self, name: &[u8]) -> crate::os::io::Result<()> {
        match self {
            At::Open(fd) => crate::os::fs::fremovexattr(fd, name),
            At::Path { path, follow: true } => crate::os::fs::removexattr(path, name),
            At::Path { path, .. } => crate::os::fs::lremovexattr(path, name),
        }
    }

    /// The list of names, NUL-separated. One call where the list fits a small buffer (the
    /// common case: none at all), a size query and a second call otherwise.
    fn list(&self) -> io::Result<Vec<u8>> {
        let mut first = [0u8; FIRST_TRY];
        match self.list_into(&mut first[..]) {
            Ok(n) => return Ok(first[..n].to_vec()),
            Err(Errno::RANGE) => {}
            Err(e) => return Err(e.into()),
        }
        let mut buf = vec![0u8; self.list_size()?.max(1)];
        loop {
            match self.list_into(&mut buf[..]) {
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(buf);
                }
                // Larger than the buffer (or grown meanwhile): ask for the size.
                Err(Errno::RANGE) => buf = vec![0u8; self.list_size()?.max(1)],
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn value(&self, name: &[u8]) -> io::Result<Option<Vec<u8>>> {
        let mut buf = vec![0u8; FIRST_TRY];
        loop {
            match self.get_into(name, &mut buf[..]) {
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(Some(buf));
                }
                Err(Errno::RANGE) => match self.value_size(name) {
                    Ok(n) => buf = vec![0u8; n.max(1)],
                    Err(Errno::NODATA) => return Ok(None),
                    Err(e) => return Err(e.into()),
                },
                Err(Errno::NODATA) => return Ok(None), // removed meanwhile
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The attributes `keep` keeps. A file system without xattrs has none.
    pub(crate) fn read(&self, keep: &Keep) -> io::Result<Xattrs> {
        let list = match self.list() {
            Ok(l) => l,
            Err(e) if Errno::from_io_error(&e) == Some(Errno::OPNOTSUPP) => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for name in list.split(|b| *b == 0).filter(|n| !n.is_empty()) {
            if !keep.keeps_xattr(name) {
                continue;
            }
            if let Some(v) = self.value(name)? {
                out.push((name.to_vec(), v));
            }
        }
        out.sort();
        Ok(Xattrs(out))
    }

    /// Makes the kept attributes here exactly `want`: sets those missing or different,
    /// removes those `want` lacks. What the side refuses is noted on `root` and left.
    /// Returns the attributes found here when none had to change (then they are what this
    /// side holds, with no need to read them back), `None` when some were set or removed.
    pub(crate) fn write(
        &self,
        root: &Root,
        want: &Xattrs,
        rel: &RelPath,
    ) -> Result<Option<Xattrs>> {
        let keep = root.keep();
        let have = self
            .read(&keep)
            .map_err(|e| FsError::io(rel, "list extended attributes", e))?;
        if &have == want {
            return Ok(Some(have));
        }
        for (name, _) in &have.0 {
            if want.get(name).is_none() {
                match self.remove(name) {
                    Ok(()) | Err(Errno::NODATA) => {}
                    Err(e) => refused(root, rel, name, e, "remove extended attribute")?,
                }
            }
        }
        for (name, value) in &want.0 {
            if have.get(name) == Some(value.as_slice()) {
                continue;
            }
            if let Err(e) = self.set(name, value) {
                refused(root, rel, name, e, "set extended attribute")?;
            }
        }
        Ok(None)
    }
}

/// A refusal this side may give (no support, too large, not allowed) is noted for the
/// run's report; anything else is an error of the step.
fn refused(root: &Root, rel: &RelPath, name: &[u8], e: Errno, op: &'static str) -> Result<()> {
    let kind = if name.starts_with(b"system.posix_acl_") {
        "ACLs"
    } else {
        "extended attributes"
    };
    let why = match e {
        Errno::OPNOTSUPP => "the file system does not hold them",
        Errno::TOOBIG | Errno::NOSPC | Errno::RANGE => "too large for the file system",
        Errno::PERM | Errno::ACCESS => "not permitted",
        Errno::INVAL => "refused by the file system",
        _ => return Err(FsError::io(rel, op, e)),
    };
    root.note_refusal(kind, rel, why);
    Ok(())
}
