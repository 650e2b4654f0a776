//! One file per subcommand: each is a thin wrapper around the engine or the store.

pub mod conflicts;
pub mod hold;
pub mod mount;
pub mod mounts;
pub mod resolve;
pub mod status;
pub mod sync;
pub mod unmount;
