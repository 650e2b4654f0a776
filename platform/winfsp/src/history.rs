//! Pre-images through WinFsp: what a request through the mount is about to destroy, kept
//! first in the source's `.tandem\history\` (DESIGN.md "History"), as the FUSE backend
//! keeps it. What is kept, under which name, and what is reported when it cannot be, is
//! the rule every backend shares (`tandem_core::keep_rule`, `VersionNames`); this module
//! only makes the copy, through handles below the source's (invariant 6).
//!
//! Unlike the FUSE backend, which hard-links a name about to be unlinked or renamed over
//! (no data copied), every version here is a copy: written under a temporary name,
//! flushed, then renamed into place before the request goes on. NTFS journals the rename,
//! so no flush of the folder follows (Windows has none to give).

use std::os::windows::io::OwnedHandle;
use std::sync::{Arc, Mutex};

use tandem_core::{keep_rule, NotKept, RelPath, VersionNames};
use windows_sys::Wdk::Storage::FileSystem::{
    FILE_CREATE, FILE_DIRECTORY_FILE, FILE_NON_DIRECTORY_FILE, FILE_OPEN, FILE_OPEN_IF,
};
use windows_sys::Win32::Foundation::{
    ERROR_DISK_FULL, ERROR_HANDLE_DISK_FULL, ERROR_HANDLE_EOF, STATUS_DISK_FULL,
    STATUS_OBJECT_NAME_NOT_FOUND, STATUS_OBJECT_PATH_NOT_FOUND,
};
use windows_sys::Win32::Storage::FileSystem::{
    DELETE, FILE_ADD_FILE, FILE_ADD_SUBDIRECTORY, FILE_LIST_DIRECTORY, FILE_READ_ATTRIBUTES,
    FILE_READ_DATA, FILE_TRAVERSE, FILE_WRITE_DATA,
};
use winfsp::{FspError, Result};

use crate::nt::{self, OpenHow};

/// What was kept of a file about to be changed: its size, and its version's name in the
/// history (or why there is none).
pub(crate) type Taken = (u64, std::result::Result<String, NotKept>);

pub(crate) struct History {
    /// `.tandem\history`, opened on first use; opened again when deleted by hand.
    dir: Mutex<Option<Arc<OwnedHandle>>>,
    max_file: u64,
    names: VersionNames,
}

fn how(access: u32, disposition: u32, options: u32) -> OpenHow {
    OpenHow {
        access,
        disposition,
        options,
        attributes: 0,
        security: None,
    }
}

fn name(s: &str) -> Result<RelPath> {
    // STATUS_OBJECT_NAME_INVALID
    RelPath::new(s.as_bytes().to_vec()).map_err(|_| FspError::NTSTATUS(0xC000_0033_u32 as i32))
}

fn not_found(e: &FspError) -> bool {
    matches!(e, FspError::NTSTATUS(s) if *s == STATUS_OBJECT_NAME_NOT_FOUND || *s == STATUS_OBJECT_PATH_NOT_FOUND)
        || matches!(e, FspError::WIN32(2 | 3))
}

impl History {
    pub(crate) fn new(max_file: u64) -> History {
        History {
            dir: Mutex::new(None),
            max_file,
            names: VersionNames::default(),
        }
    }

    /// Keeps the content of the file open as `file` (with any access: it is opened again
    /// for reading) at `path`, before a request destroys it. `by_name`: an unlink or a
    /// rename over it, which destroys nothing while another hard link holds the content.
    /// `None`: nothing to keep.
    pub(crate) fn keep(
        &self,
        root: &OwnedHandle,
        file: &OwnedHandle,
        path: &RelPath,
        by_name: bool,
    ) -> Option<Taken> {
        let st = nt::standard(file).ok()?;
        let shared = by_name && st.links > 1;
        if let Err(e) = keep_rule(path, !st.is_dir, st.size, shared, self.max_file)? {
            return Some((st.size, Err(e)));
        }
        let version = self.names.next(path);
        let read = how(FILE_READ_DATA | FILE_READ_ATTRIBUTES, FILE_OPEN, 0);
        let r = nt::open(file, &RelPath::root(), &read)
            .and_then(|src| self.in_dir(root, |dir| copy_into(dir, &src, &version)));
        Some((st.size, outcome(r, version, path)))
    }

    /// Keeps the file at `path` (when there is one) before a rename over it.
    pub(crate) fn keep_path(&self, root: &OwnedHandle, path: &RelPath) -> Option<Taken> {
        let probe = how(FILE_READ_ATTRIBUTES, FILE_OPEN, FILE_NON_DIRECTORY_FILE);
        let file = nt::open(root, path, &probe).ok()?;
        self.keep(root, &file, path, true)
    }

    /// Removes a version kept for a request that then failed (nothing was destroyed).
    pub(crate) fn discard(&self, version: &str) {
        let dir = crate::fs::lock(&self.dir).clone();
        if let (Some(dir), Ok(n)) = (dir, name(version)) {
            let del = how(DELETE, FILE_OPEN, FILE_NON_DIRECTORY_FILE);
            if let Ok(h) = nt::open(&dir, &n, &del) {
                let _ = nt::set_delete(&h, true);
            }
        }
    }

    /// Runs `f` in the history folder, made if missing; once more in a fresh one when the
    /// folder went (deleted by hand).
    fn in_dir(&self, root: &OwnedHandle, f: impl Fn(&OwnedHandle) -> Result<()>) -> Result<()> {
        let dir = self.dir(root)?;
        match f(&dir) {
            Err(e) if not_found(&e) => {
                *crate::fs::lock(&self.dir) = None;
                let fresh = self.dir(root)?;
                f(&fresh)
            }
            r => r,
        }
    }

    fn dir(&self, root: &OwnedHandle) -> Result<Arc<OwnedHandle>> {
        let mut slot = crate::fs::lock(&self.dir);
        if let Some(d) = slot.as_ref() {
            return Ok(Arc::clone(d));
        }
        let access = FILE_TRAVERSE
            | FILE_LIST_DIRECTORY
            | FILE_ADD_FILE
            | FILE_ADD_SUBDIRECTORY
            | FILE_READ_ATTRIBUTES;
        let folder = how(access, FILE_OPEN_IF, FILE_DIRECTORY_FILE);
        let own = nt::open(root, &name(".tandem")?, &folder)?;
        let d = Arc::new(nt::open(&own, &name("history")?, &folder)?);
        *slot = Some(Arc::clone(&d));
        Ok(d)
    }
}

fn outcome(r: Result<()>, version: String, path: &RelPath) -> std::result::Result<String, NotKept> {
    match r {
        Ok(()) => Ok(version),
        Err(FspError::WIN32(ERROR_DISK_FULL | ERROR_HANDLE_DISK_FULL)) => Err(NotKept::NoSpace),
        Err(FspError::NTSTATUS(STATUS_DISK_FULL)) => Err(NotKept::NoSpace),
        Err(e) => {
            tracing::warn!("history: could not keep the old content of {path}: {e:?}");
            Err(NotKept::Failed)
        }
    }
}

/// Copies `src` to `dir\name` durably: a temporary name, a copy, a flush, a rename.
fn copy_into(dir: &OwnedHandle, src: &OwnedHandle, version: &str) -> Result<()> {
    let tmp = name(&format!(".tmp-{version}"))?;
    let create = how(
        FILE_WRITE_DATA | DELETE | FILE_READ_ATTRIBUTES,
        FILE_CREATE,
        FILE_NON_DIRECTORY_FILE,
    );
    let out = nt::open(dir, &tmp, &create)?;
    let r = (|| {
        copy_data(src, &out)?;
        nt::flush(&out)?;
        nt::rename(dir, &out, &name(version)?, false)
    })();
    if r.is_err() {
        let _ = nt::set_delete(&out, true);
    }
    r
}

fn copy_data(src: &OwnedHandle, out: &OwnedHandle) -> Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0u64;
    loop {
        let n = match nt::read_at(src, &mut buf, off) {
            Ok(0) | Err(FspError::WIN32(ERROR_HANDLE_EOF)) => return Ok(()),
            Ok(n) => n as usize,
            Err(e) => return Err(e),
        };
        let mut done = 0;
        while done < n {
            let w = nt::write_at(out, &buf[done..n], off + done as u64, false)?;
            if w == 0 {
                return Err(FspError::WIN32(ERROR_HANDLE_DISK_FULL));
            }
            done += w as usize;
        }
        off += n as u64;
    }
}
