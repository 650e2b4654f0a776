//! A local side of the pair.
//!
//! Owns all file system access to the two roots: opening a root once as a directory fd,
//! scanning it (parallel, stat-first), hashing files on demand, and applying plan steps
//! atomically with a re-check right before each write. It must never follow a symlink out
//! of a root or write a path whose state differs from what the plan saw. The engine calls
//! it; it decides nothing.

pub mod apply;
mod case;
pub mod error;
pub mod history;
pub mod identity;
mod keep;
pub mod names;
pub mod root;
pub mod scan;
pub(crate) mod sys;
pub mod transfer;
pub mod trash;
pub mod walk;
pub mod xattrs;

pub use apply::{
    copy, copy_as, delete, holds_hard_links, holds_hard_links_dry, link, mkdir, remove_stale_temp,
    rename, set_dir_mtime, set_meta, sync_root, Durability, Trash,
};
pub use case::folds_case;
pub use error::{FsError, Result};
pub use identity::{placement, read_mountinfo, FileId, Lineage, MountLine, Place, Placement};
pub use root::{create_root, same_object, Refusal, Root};
pub use scan::{dirs_reaching, hash_file, list, scan, scan_paths, Listing, Scan};
/// The file system calls and types (rustix's on Unix, stand-ins of the same names on
/// Windows) that `Root`'s interface speaks: `os::OwnedFd`, `os::fs::OFlags`,
/// `os::io::Errno`...
pub use sys::os;
pub use sys::HOLDS_SYMLINKS;

/// A path naming the object behind `fd` now (`/proc/self/fd/N` on Linux, the path the
/// system has for it elsewhere): for the calls that take no fd.
pub fn fd_path(fd: &os::OwnedFd) -> std::io::Result<std::path::PathBuf> {
    use os::AsFd;
    sys::fd_path(fd.as_fd()).map(sys::path_from_bytes)
}
/// A stat's device number as a `u64` (whose integer type differs between systems).
pub use sys::st_dev as dev_of;
/// Open flags for an fd that only names a directory or object (`O_PATH` on Linux, a
/// read-only open elsewhere): for `Root::open_beneath` callers outside this crate.
pub use sys::O_PATH;
pub use transfer::{install, open_content, Content, Incoming};
pub use trash::{
    present, prune_trash, prune_trash_where, trash_paths, trash_usage, trash_versions, Pruned,
    TrashUsage, TrashVersion,
};
pub use walk::{walk, Walk};
pub use xattrs::{read_xattrs, AttrsFrom, Xattrs};
