//! tandem's passthrough file system through WinFsp (Windows), served at a mount point of
//! its own.
//!
//! Windows cannot mount over a folder that stays in use, so the source folder is served
//! elsewhere (a drive letter such as `X:`, or an empty folder): programs work there, and
//! every mutating request is reported as a `tandem_core::Change` to a `ChangeSink`, the
//! same records the FUSE backend sends, so the journal and the replicator work unchanged.
//! The source is reached only through its directory handle, opened before mounting, with
//! `NtCreateFile` relative to it (invariant 6). It never decides anything about syncing.
//!
//! Layout:
//! - `names`: the platform-neutral half (WinFsp names to paths, the changes each request
//!   reports, attributes, mount points), tested on every system.
//! - `backend` (Windows): `WinFspBackend`, this crate behind `tandem_core::MountBackend`:
//!   loading WinFsp's DLL, mounting, unmounting.
//! - `fs` (Windows): `PassthroughFs`, the `winfsp::filesystem::FileSystemContext`.
//! - `history` (Windows): the versions it keeps of what requests destroy, by the rule the
//!   FUSE backend follows too (`tandem_core::keep_rule`).
//! - `nt` (Windows): the handle calls it makes on the source (all `unsafe`).
//!
//! On other systems only `names` is built.

pub mod names;

#[cfg(windows)]
mod backend;
#[cfg(windows)]
mod fs;
#[cfg(windows)]
mod history;
#[cfg(windows)]
mod nt;

#[cfg(windows)]
pub use backend::WinFspBackend;
