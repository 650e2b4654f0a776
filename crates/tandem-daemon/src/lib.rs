//! tandem's long-running processes, as libraries the CLI only starts.
//!
//! `mounted`: the mounted session (a passthrough FUSE file system over the source, its
//! change journal and live replication to each target) that `tandem mount` serves, with
//! the registry of running mounts and the hold protocol `tandem resolve` uses on a mounted
//! pair. `daemon`: `tandem daemon`, which runs every task on its schedules as child
//! processes (`tandem run`, `tandem mount` for continuous tasks), woken by its children,
//! signals, the clock, the config file and the mount table, never on a timer of its own.
//! `background`: starting a command of our own in a session of its own and waiting until
//! it is up. It decides nothing about files: syncing is `tandem_engine` (in the children),
//! the file system is a `tandem_core::MountBackend` (`tandem_fuse`, named only in
//! `mounted/backend.rs`), what a task is is `tandem_task`; it never prints, it logs
//! through `tracing`.

pub mod background;
#[cfg(unix)]
pub mod daemon;
/// Windows: the daemon is not supported yet (issue 16); the same names, refusing.
#[cfg(windows)]
#[path = "daemon_unsupported.rs"]
pub mod daemon;
mod error;
pub mod mounted;
mod sys;

pub use error::DaemonError;
