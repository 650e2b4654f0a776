//! tandem's vocabulary and its one decision.
//!
//! Owns the types every other crate speaks (`RelPath`, `Entry`, `BaseEntry`, `Action`,
//! `Plan`, `Conflict`, `Options`), the include/exclude `Filter`, and `reconcile()`, which
//! turns the baseline and the two scanned sides into a plan. Nothing here touches a file
//! system or reads a clock: the engine gathers state, calls `reconcile`, and applies.

pub mod change;
pub mod entry;
pub mod filter;
pub mod links;
pub mod merge;
pub mod path;
pub mod plan;
pub mod reconcile;
pub mod retention;
pub mod words;

pub use change::{
    is_own_path, keep_rule, parse_version_name, version_name, Change, ChangeOp, ChangeSink, Mount,
    MountBackend, MountConfig, MountSetupError, MountTransport, Mounted, NotKept, SourceDir,
    Version, VersionNames, HISTORY_DIR,
};
pub use entry::{
    carry_attrs, mode_words, modes_agree, BaseEntry, Entry, Hash, Kind, Owner, Seen, Side,
    MODE_ATTRS, MODE_ATTR_BITS, MODE_HIDDEN,
};
pub use filter::{Filter, FilterError, FilterInputs};
pub use links::{link_copies, LinkGroups};
pub use merge::{merge_sorted, Counts, Merge, Merged};
pub use path::{escape_bytes, path_bytes, unescape_bytes, InvalidPath, RelPath};
pub use plan::{
    Action, Conflict, ConflictKind, Direction, Flavor, IdMap, Keep, Options, Plan, Policy,
    RenameWhy, Resolution, SETID_BITS,
};
pub use reconcile::{merge2, merge3, move_subtree, reconcile, BaseTree, Tree};
pub use retention::{Kept, Retention};
pub use words::{NotifyWhen, Priority, SmtpSecurity, UnknownWord, Words};
