//! The mounted session: a passthrough file system over SRC, its change journal, and live
//! replication to each target, until a stop is asked for. `tandem mount` serves one in
//! its own process; the daemon runs continuous tasks as such processes.

mod backend;
pub mod hold;
pub mod registry;
mod session;
mod sys;

pub use registry::MountRecord;
pub use session::{check_can_mount, prepare, serve, MountRequest, Served, STATUS_FILE};
