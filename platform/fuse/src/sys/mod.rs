//! Everything the core does that differs between operating systems, behind one interface,
//! chosen here with `cfg` (issue 16): how a node is held and opened again (file identity),
//! how a request thread acts as its caller (credentials), how a node's attributes are read
//! and changed, directory streams, and what the machine's mount needs. Every `unsafe` block
//! of the crate lives below this module.
//!
//! - `linux`: `O_PATH` fds, file handles (`open_by_handle_at`), `/proc/self/fd` to reopen,
//!   `statx`, `setfsuid`, getdents64.
//! - `macos` (macFUSE): directory fds (`O_RDONLY | O_DIRECTORY`) and, for every other node,
//!   its folder's fd plus its name; no file handles (identity by device and inode only);
//!   `pthread_setugid_np` for credentials; `fstatat`; `readdir`.
//!
//! Both give the same names: `NodeFd` (what the fd cache holds per node), `Nodes` (the
//! per-mount state behind the node operations), `Stat`, `FileHandle`, `AsCaller`,
//! `DirFd`, and free functions for stats, keys and attributes.

use fuser::FileType;
use rustix::fs::FileType as RawKind;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
pub(crate) use macos::*;

// Mode bits, the same on Linux and macOS (POSIX), as `u32` on both (`libc`'s are
// `mode_t`: `u32` on Linux, `u16` on macOS).
pub(crate) const S_IFMT: u32 = 0o170_000;
pub(crate) const S_IFREG: u32 = 0o100_000;
pub(crate) const S_ISUID: u32 = 0o4000;
pub(crate) const S_ISGID: u32 = 0o2000;
pub(crate) const S_IXGRP: u32 = 0o010;

/// One directory entry as read from the underlying folder.
#[derive(Clone)]
pub(crate) struct DirEnt {
    pub(crate) name: Box<[u8]>,
    pub(crate) d_ino: u64,
    pub(crate) kind: FileType,
    /// The offset of the entry after this one: what readdir hands back to resume.
    pub(crate) cookie: u64,
}

pub(crate) fn kind_from_raw(kind: RawKind) -> Option<FileType> {
    Some(match kind {
        RawKind::RegularFile => FileType::RegularFile,
        RawKind::Directory => FileType::Directory,
        RawKind::Symlink => FileType::Symlink,
        RawKind::Fifo => FileType::NamedPipe,
        RawKind::Socket => FileType::Socket,
        RawKind::CharacterDevice => FileType::CharDevice,
        RawKind::BlockDevice => FileType::BlockDevice,
        _ => return None,
    })
}

/// The kind of file a `st_mode` describes.
pub(crate) fn kind_of(mode: u32) -> FileType {
    kind_from_raw(raw_kind(mode)).unwrap_or(FileType::RegularFile)
}
