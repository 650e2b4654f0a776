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

/// One version kept in a trash, as `Retention::to_drop` weighs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    /// The path it had in its root.
    pub path: crate::RelPath,
    /// When it was set aside (nanoseconds since the epoch).
    pub time_ns: i64,
    pub bytes: u64,
    /// Something is at `path` on one of the sides now: this is not the last copy of it.
    pub elsewhere: bool,
}

impl Retention {
    /// The newest version of each path in `kept` (indexes, in no order), as `to_drop`
    /// ranks them: only these can be the last copy of their path, so only theirs need
    /// `Kept::elsewhere` looked up on the sides (the others' is never read). A prune over
    /// many versions of a path stats the sides once for it, not once per version.
    pub fn newest_of_each_path(kept: &[Kept]) -> Vec<usize> {
        let mut newest: std::collections::HashMap<&crate::RelPath, usize> = Default::default();
        for (i, k) in kept.iter().enumerate() {
            let slot = newest.entry(&k.path).or_insert(i);
            if (k.time_ns, i) > (kept[*slot].time_ns, *slot) {
                *slot = i;
            }
        }
        newest.into_values().collect()
    }

    /// Which of `kept` go (indexes), oldest first: those older than `keep`, those past the
    /// newest `versions` of their path, then the oldest left until the total fits in
    /// `max_bytes`. The newest version of a path found on neither side always stays.
    pub fn to_drop(&self, kept: &[Kept], now_ns: i64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..kept.len()).collect();
        order.sort_by_key(|&i| (kept[i].time_ns, i));
        // Newest first per path: each version's rank among its path's.
        let mut seen: std::collections::HashMap<&crate::RelPath, usize> = Default::default();
        let mut rank = vec![0; kept.len()];
        for &i in order.iter().rev() {
            let n = seen.entry(&kept[i].path).or_default();
            rank[i] = *n;
            *n += 1;
        }
        let keep_ns = i64::try_from(self.keep.as_nanos()).unwrap_or(i64::MAX);
        let protected = |i: usize| rank[i] == 0 && !kept[i].elsewhere;
        let mut drop = vec![false; kept.len()];
        for &i in &order {
            let old = now_ns.saturating_sub(kept[i].time_ns) > keep_ns;
            drop[i] = !protected(i) && (old || rank[i] >= self.versions);
        }
        let mut total: u64 = (0..kept.len())
            .filter(|&i| !drop[i])
            .map(|i| kept[i].bytes)
            .sum();
        for &i in &order {
            if total <= self.max_bytes {
                break;
            }
            if !drop[i] && !protected(i) {
                drop[i] = true;
                total -= kept[i].bytes;
            }
        }
        order.into_iter().filter(|&i| drop[i]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RelPath;

    const DAY: i64 = 86_400_000_000_000;

    fn kept(path: &str, day: i64, bytes: u64, elsewhere: bool) -> Kept {
        Kept {
            path: RelPath::from_str_lossless(path),
            time_ns: day * DAY,
            bytes,
            elsewhere,
        }
    }

    fn limits(days: u64, max_bytes: u64, versions: usize) -> Retention {
        Retention {
            keep: Duration::from_secs(days * 86_400),
            max_bytes,
            versions,
        }
    }

    #[test]
    fn old_versions_go_but_not_the_last_copy_of_a_path() {
        let k = [
            kept("a", 1, 10, true),   // old, a exists: goes
            kept("b", 1, 10, false),  // old, but b's only (newest) version: stays
            kept("c", 1, 10, false),  // old and not c's newest: goes
            kept("c", 50, 10, false), // young: stays
        ];
        assert_eq!(limits(30, u64::MAX, 10).to_drop(&k, 60 * DAY), [0, 2]);
    }

    #[test]
    fn past_the_versions_limit_the_oldest_of_a_path_go() {
        let k: Vec<Kept> = (0..5).map(|d| kept("f", d, 1, true)).collect();
        assert_eq!(limits(30, u64::MAX, 2).to_drop(&k, 5 * DAY), [0, 1, 2]);
        // Versions of other paths do not count.
        let mut k = k;
        k.push(kept("g", 0, 1, true));
        assert_eq!(limits(30, u64::MAX, 2).to_drop(&k, 5 * DAY), [0, 1, 2]);
    }

    #[test]
    fn over_the_size_limit_the_oldest_go_first_until_it_fits() {
        let k = [
            kept("x", 3, 40, true),
            kept("y", 1, 40, false), // y's only version: stays whatever its size
            kept("z", 2, 40, true),
            kept("w", 4, 40, true),
        ];
        assert_eq!(limits(30, 100, 10).to_drop(&k, 5 * DAY), [2, 0]);
        assert!(limits(30, 160, 10).to_drop(&k, 5 * DAY).is_empty());
    }

    #[test]
    fn only_the_newest_of_each_path_needs_looking_up_and_the_others_lookups_change_nothing() {
        let mut k = vec![
            kept("a", 3, 10, false),
            kept("b", 1, 10, false),
            kept("a", 9, 10, false), // a's newest
            kept("a", 1, 10, false),
            kept("b", 1, 10, false), // b's newest: same time as index 1, later in the list
        ];
        let mut newest = Retention::newest_of_each_path(&k);
        newest.sort_unstable();
        assert_eq!(newest, [2, 4]);
        // Whatever the others say, the same go: only the newest's lookups are ever read.
        let r = limits(2, 25, 10);
        let before = r.to_drop(&k, 10 * DAY);
        for (i, v) in k.iter_mut().enumerate() {
            v.elsewhere = !newest.contains(&i);
        }
        assert_eq!(r.to_drop(&k, 10 * DAY), before);
        assert_eq!(before, [1, 3, 0]);
    }
}
