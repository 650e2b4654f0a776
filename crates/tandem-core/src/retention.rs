//! How long what tandem keeps of the past is kept: the versions in each side's trash, and
//! the journal records `tandem changes` lists. One policy for all of them, so that "who
//! deleted it" and "where is its old content" are answered for the same stretch of time.

use std::time::Duration;

/// The limits on what is kept. Oldest goes first; each limit alone is enough to drop
/// something, except that the newest version of a path that exists nowhere else is never
/// dropped (the trash is then the only copy left).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Versions and records older than this go.
    pub keep: Duration,
    /// The trash of one side holds at most this many bytes.
    pub max_bytes: u64,
    /// At most this many versions of one path are kept in one side's trash.
    pub versions: usize,
}

impl Retention {
    pub const DEFAULT_KEEP: Duration = Duration::from_secs(30 * 24 * 3600);
    pub const DEFAULT_MAX_BYTES: u64 = 5 << 30;
    pub const DEFAULT_VERSIONS: usize = 10;
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            keep: Retention::DEFAULT_KEEP,
            max_bytes: Retention::DEFAULT_MAX_BYTES,
            versions: Retention::DEFAULT_VERSIONS,
        }
    }
}
