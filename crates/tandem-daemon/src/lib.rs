//! tandem's long-running processes, as libraries the CLI only starts.
//!
//! `mounted`: the mounted session (a passthrough FUSE file system over the source, its
//! change journal and live replication to each target) that `tandem mount` serves, with
//! the registry of running mounts and the hold protocol `tandem resolve` uses on a mounted
//! pair. `background`: starting a command of our own in a session of its own and waiting
//! until it is up. It decides nothing about files: syncing is `tandem_engine`, the file
//! system is `tandem_fuse`; it never prints, it logs through `tracing`.

pub mod background;
pub mod daemon;
mod error;
pub mod mounted;

pub use error::DaemonError;
