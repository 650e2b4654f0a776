//! tandem's engine: runs a sync of one pair.
//!
//! Owns the flow scan both sides → hash where stat cannot decide → `reconcile` → safety
//! checks → apply (parallel copy workers) → commit the baseline in batches after the
//! applied steps are on disk. It decides nothing itself (that is `tandem_core::reconcile`)
//! and touches files only through `tandem_fs`. Steps refused because the disk changed
//! under them are planned again in a fresh round, never written blind.

mod brake;
mod case;
mod folder_times;
mod hashing;
pub mod history;
mod kept;
mod links;
pub mod marker;
mod order;
pub mod replicate;
pub mod roots;
mod run;
pub mod side;
pub mod spec;
mod symlinks;
pub mod time;
pub mod watch;

pub use brake::{settle_held, BrakeLimit, HoldNotice, OnHold, UNNAMED};
pub use kept::keep_for_run;
pub use replicate::{Hold, Replicator, ReplicatorConfig, TargetStatus};
pub use roots::{PairRoots, RootError};
pub use run::{sync, sync_scoped, sync_until, EngineError, Session, SourceHooks, TargetOpener};
pub use side::{Later, SideRoot, Source, Step, Watch, DELTA_MISMATCH};
pub use spec::{ConflictNote, Event, PathProblem, PlannedStep, Report, Scope, SyncSpec};
