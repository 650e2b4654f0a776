//! One file per subcommand: each is a thin wrapper around the engine or the store.

pub mod completions;
pub mod conflicts;
pub mod forget;
pub mod hold;
pub mod mount;
pub mod mounts;
pub mod resolve;
pub mod run;
pub mod status;
pub mod sync;
pub mod task;
pub mod unmount;

/// A count given in the environment (`TANDEM_THREADS`, `TANDEM_FUSE_THREADS`): tuning knobs
/// for measurements, undocumented in `--help`.
pub fn count_from_env(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}
