//! A file's content carried between two roots that do not share a machine (a remote side,
//! `tandem-remote`): read on one side as a stream ([`open_content`]), written on the other
//! from a stream ([`install`]), with the checks a local copy makes (`apply::copy`): the
//! source is what the plan saw and did not change while it was read, the copy is complete
//! before it takes its name (invariant 3), and what it replaces is still what the plan saw,
//! kept in the trash (invariant 2). Two roots on one machine use `apply::copy`, which copies
//! in the kernel.

use crate::os::OwnedFd;
use std::io::{Read, Seek, SeekFrom};

use crate::os::fs::{fstat, openat, symlinkat, unlinkat, AtFlags, Mode, OFlags, Stat, Timestamps};
use crate::os::io::Errno;
use tandem_core::{Entry, Kind, RelPath};

use crate::apply::{
    open_source, open_tmp, put_in_place, timespec, tmp_name, unchanged, Durability, Trash,
};
use crate::error::{FsError, Result};
use crate::keep::{give_mode, give_owner};
use crate::root::{entry_from_stat, stat_at, Root};
use crate::sys::fsync;
use crate::xattrs::{At, Xattrs};

/// The content of one file or symlink, opened to be sent to the other side.
pub struct Content {
    rel: RelPath,
    file: Option<std::fs::File>,
    before: Option<Stat>,
    link: Option<Vec<u8>>,
}

impl Content {
    /// A symlink's target (its content); `None` for a file.
    pub fn link(&self) -> Option<&[u8]> {
        self.link.as_deref()
    }

    /// After the last byte was read: fails as raced when the file changed while it was read
    /// (a copy of it would be torn).
    pub fn finish(&self) -> Result<()> {
        let (Some(f), Some(before)) = (&self.file, &self.before) else {
            return Ok(());
        };
        let after = fstat(f).map_err(|e| FsError::io(&self.rel, "stat", e))?;
        if unchanged(&after, before) {
            Ok(())
        } else {
            Err(FsError::raced(&self.rel, "changed while it was copied"))
        }
    }
}

impl Read for Content {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.file {
            Some(f) => f.read(buf),
            None => Ok(0),
        }
    }
}

/// A receiver's own old copy is read at the offsets a delta names (`tandem-remote`).
impl Seek for Content {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        match &mut self.file {
            Some(f) => f.seek(pos),
            None => Ok(0),
        }
    }
}

/// Opens `rel` on `root` to send its content, if it is still `src` (the plan's view).
pub fn open_content(root: &Root, rel: &RelPath, src: &Entry) -> Result<Content> {
    // A folder above it gone or replaced: the source is gone from where it was.
    let (dir, name) = root.parent(rel).map_err(|e| match e {
        FsError::Raced { .. } => FsError::vanished(rel),
        other => other,
    })?;
    let mut content = Content {
        rel: rel.clone(),
        file: None,
        before: None,
        link: None,
    };
    match src.kind {
        Kind::File => {
            let settle = !root.writers_tracked();
            let (fd, before) = open_source(&dir, name.as_slice(), rel, src, settle)?;
            content.file = Some(std::fs::File::from(fd));
            content.before = Some(before);
        }
        Kind::Symlink => {
            let target = match crate::os::fs::readlinkat(&dir, name.as_slice(), Vec::new()) {
                Ok(t) => t.into_bytes(),
                Err(Errno::NOENT) => return Err(FsError::vanished(rel)),
                Err(Errno::INVAL) => return Err(FsError::raced(rel, "symlink changed since scan")),
                Err(e) => return Err(FsError::io(rel, "readlink", e)),
            };
            if src.link.as_deref() != Some(target.as_slice()) {
                return Err(FsError::raced(rel, "symlink changed since scan"));
            }
            content.link = Some(target);
        }
        _ => {
            return Err(FsError::io(
                rel,
                "copy",
                std::io::Error::other("not a file or symlink"),
            ))
        }
    }
    Ok(content)
}

/// What [`install`] writes: the entry it stands for, with its mode on this side.
pub struct Incoming<'a> {
    pub src: &'a Entry,
    pub mode: u32,
    /// The file's bytes (nothing for a symlink, whose target is `src.link`).
    pub data: &'a mut dyn Read,
    /// Called once `data` is exhausted, with the blake3 of what was written (a file's;
    /// `None` for a symlink): the sender's word that the source did not change while it was
    /// read, and that the content is what it sent (an error: nothing is put in place).
    pub verify: &'a mut dyn FnMut(Option<&tandem_core::Hash>) -> Result<()>,
    /// The extended attributes the copy gets, read on the other side where the run keeps
    /// them (`None`: none given).
    pub xattrs: Option<&'a Xattrs>,
}

/// Makes `rel` on `to` hold `incoming`, if `rel` is still `expect` (`None`: nothing there).
/// The content is written under a temporary name and renamed into place once complete and
/// verified; a stream cut short leaves nothing but the temporary file, removed here.
pub fn install(
    to: &Root,
    rel: &RelPath,
    expect: Option<&Entry>,
    incoming: Incoming<'_>,
    trash: &Trash,
    durability: Durability,
) -> Result<Entry> {
    let (ddir, dname) = to.parent(rel)?;
    let tmp = tmp_name();
    let written = match incoming.src.kind {
        Kind::File => write_file(to, &ddir, &tmp, rel, incoming, durability),
        Kind::Symlink => write_link(to, &ddir, &tmp, rel, incoming),
        _ => Err(FsError::io(
            rel,
            "copy",
            std::io::Error::other("not a file or symlink"),
        )),
    };
    let mut swapped = false;
    let result = written.and_then(|new| {
        put_in_place(
            to,
            &ddir,
            tmp.as_bytes(),
            &dname,
            rel,
            expect,
            trash,
            &mut swapped,
        )?;
        Ok(new)
    });
    if result.is_err() && !swapped {
        let _ = unlinkat(&ddir, tmp.as_str(), AtFlags::empty());
    }
    to.note_dir(&ddir, &rel.parent().unwrap_or_default())?;
    result
}

fn write_file(
    to: &Root,
    ddir: &OwnedFd,
    tmp: &str,
    rel: &RelPath,
    incoming: Incoming<'_>,
    durability: Durability,
) -> Result<Entry> {
    let tfd = open_tmp(ddir, tmp, rel)?;
    let dup = crate::os::io::dup(&tfd).map_err(|e| FsError::io(rel, "dup", e))?;
    let mut out = std::fs::File::from(dup);
    // Never more than the entry's size and a byte (to see it grew): a peer that keeps
    // sending cannot fill the disk.
    let (src, xattrs) = (incoming.src, incoming.xattrs);
    let mut data = incoming.data.take(src.size.saturating_add(1));
    let hash = copy_hashing(&mut data, &mut out, src.size)
        .map_err(|e| FsError::io(rel, "receive data", e))?;
    (incoming.verify)(Some(&hash))?;
    give_owner(to, &tfd, src.owner, rel)?;
    give_mode(to, &tfd, incoming.mode, rel)?;
    let kept = match xattrs {
        Some(want) if to.keep().reads_xattrs() => At::open(&tfd).write(to, want, rel)?,
        _ => None,
    };
    let times = Timestamps {
        last_access: crate::os::fs::Timespec {
            tv_sec: 0,
            tv_nsec: crate::os::fs::UTIME_OMIT,
        },
        last_modification: timespec(src.mtime),
    };
    crate::os::fs::futimens(&tfd, &times).map_err(|e| FsError::io(rel, "set times", e))?;
    if durability == Durability::EachFile {
        fsync(&tfd).map_err(|e| FsError::io(rel, "fsync", e))?;
    }
    let st = fstat(&tfd).map_err(|e| FsError::io(rel, "stat", e))?;
    if st.st_size as u64 != src.size {
        return Err(FsError::raced(rel, "size changed while it was copied"));
    }
    let new = entry_from_stat(&st, None).with_hash(hash);
    to.with_known_xattrs(new, kept, &At::open(&tfd), rel)
}

/// The largest piece [`copy_hashing`] reads and writes at once.
const PIECE: usize = 256 << 10;

/// How much of a file [`copy_hashing`] writes before it starts that part's writeback.
const WRITEBACK_STEP: u64 = 8 << 20;

/// Copies all of `data` (about `size` bytes) to `out` in pieces of up to [`PIECE`], and
/// returns the blake3 of what was written: the content of the new file, which is written
/// from its start in one sequence, hashed as it passes rather than read again (a large
/// file's copy once through, not twice). Each [`WRITEBACK_STEP`] written is sent on to the
/// disk at once, so that the sync at the end of the run does not wait for all of a large
/// file's data then (a 1 GiB file: seconds).
fn copy_hashing(
    data: &mut dyn Read,
    out: &mut std::fs::File,
    size: u64,
) -> std::io::Result<tandem_core::Hash> {
    use crate::os::AsFd;
    use std::io::Write;
    // No bigger than the file and a byte: most files are small.
    let mut buf = vec![0u8; size.saturating_add(1).min(PIECE as u64) as usize];
    let mut hasher = blake3::Hasher::new();
    let (mut written, mut started) = (0u64, 0u64);
    loop {
        let n = match data.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        written += n as u64;
        if written - started >= WRITEBACK_STEP {
            crate::sys::start_writeback(out.as_fd(), started, written - started);
            started = written;
        }
        if n == buf.len() && buf.len() < PIECE {
            buf.resize((buf.len() * 2).min(PIECE), 0);
        }
    }
    Ok(tandem_core::Hash(*hasher.finalize().as_bytes()))
}

fn write_link(
    to: &Root,
    ddir: &OwnedFd,
    tmp: &str,
    rel: &RelPath,
    incoming: Incoming<'_>,
) -> Result<Entry> {
    // A symlink's content is its target: the stream carries nothing but its end.
    let extra = std::io::copy(&mut incoming.data.take(1), &mut std::io::sink())
        .map_err(|e| FsError::io(rel, "receive data", e))?;
    if extra > 0 {
        return Err(FsError::raced(rel, "a symlink came with data"));
    }
    (incoming.verify)(None)?;
    let target = incoming.src.link.as_deref().unwrap_or_default();
    symlinkat(target, ddir, tmp).map_err(|e| FsError::io(rel, "create symlink", e))?;
    // A symlink's own owner (`chown -h`), as `apply::copy` gives it.
    if to.keep().owner {
        let flags = crate::sys::O_PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = openat(ddir, tmp, flags, Mode::empty())
            .map_err(|e| FsError::io(rel, "open the new symlink", e))?;
        give_owner(to, &fd, incoming.src.owner, rel)?;
    }
    match stat_at(ddir, tmp.as_bytes(), rel)? {
        Some(e) => Ok(e),
        None => Err(FsError::raced(rel, "temporary symlink vanished")),
    }
}
