//! Which steps of a plan may be in flight at once on a side on another machine.
//!
//! Locally a folder made, a file deleted or a mode set costs a system call; over a network
//! each is a round trip, and a plan that makes 3,000 folders one after the other waits
//! 3,000 round trips. There the steps of a run (everything but renames, hard links and
//! conflicts, which stay where the plan put them) go to the workers that copy files, each
//! waiting only for the earlier steps its own depends on: those on the same path, on a
//! folder above it or on anything below it. Steps on unrelated paths commute; related ones
//! keep the plan's order (a folder made before what goes in it, a folder's contents
//! deleted before it, a file deleted before a folder of its name is made).

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};

use tandem_core::Action;

use crate::case::fold;

/// The most steps whose dependencies are worked out at once: a run is pipelined a window
/// at a time, each started once the one before is done. [`dependencies`] holds a few
/// indices per step and level of folders, and every path of its window (over a whole run
/// of 1M steps, about 80 MB of indices alone); a window costs one round trip's pause, at
/// most 32 steps in flight, every 8,192 steps.
pub(crate) const WINDOW: usize = 8192;

/// Whether `a` may run among other steps on a remote side ([`dependencies`]).
pub(crate) fn pipelined(a: &Action) -> bool {
    !matches!(
        a,
        Action::Rename { .. } | Action::Link { .. } | Action::Conflict(_)
    )
}

/// For each step of `group`, the earlier steps it must wait for: those on its path, on a
/// folder above it, or below it. Paths are compared case-folded: on a side that folds
/// case, `A` and `a` are one name (a false dependency only costs a wait).
pub(crate) fn dependencies(group: &[Action]) -> Vec<Vec<usize>> {
    // The steps on each path; the steps strictly below each folder.
    let mut at: HashMap<String, Vec<usize>> = HashMap::new();
    let mut below: HashMap<String, Vec<usize>> = HashMap::new();
    let mut deps = Vec::with_capacity(group.len());
    for (i, a) in group.iter().enumerate() {
        let path = fold(a.path());
        let above = ancestors(&path);
        let mut mine: Vec<usize> = Vec::new();
        for p in above.iter().copied().chain([path.as_str()]) {
            mine.extend(at.get(p).into_iter().flatten());
        }
        mine.extend(below.get(&path).into_iter().flatten());
        deps.push(mine);
        for p in above {
            below.entry(p.to_string()).or_default().push(i);
        }
        at.entry(path).or_default().push(i);
    }
    deps
}

/// Where the workers of a run wait for the steps theirs depends on ([`dependencies`]).
pub(crate) struct Gate {
    deps: Vec<Vec<usize>>,
    done: Mutex<Vec<bool>>,
    changed: Condvar,
}

impl Gate {
    pub(crate) fn new(group: &[Action]) -> Gate {
        debug_assert!(group.len() <= WINDOW, "a window at a time");
        Gate {
            deps: dependencies(group),
            done: Mutex::new(vec![false; group.len()]),
            changed: Condvar::new(),
        }
    }

    /// Returns once every step `i` depends on is done; step `i` is done when what
    /// this returns is dropped. The steps waited for were taken by workers before `i`
    /// (workers take steps in order), which carry them out whatever happens.
    pub(crate) fn enter(&self, i: usize) -> Done<'_> {
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        // A step done stays done: each wake-up looks on from the first one not yet done.
        let mut waiting = self.deps[i].iter().peekable();
        while let Some(&&j) = waiting.peek() {
            if done[j] {
                waiting.next();
            } else {
                done = self.changed.wait(done).unwrap_or_else(|p| p.into_inner());
            }
        }
        Done { gate: self, i }
    }
}

/// A step under way ([`Gate::enter`]): done when dropped, even by a panic.
pub(crate) struct Done<'a> {
    gate: &'a Gate,
    i: usize,
}

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.gate.done.lock().unwrap_or_else(|p| p.into_inner())[self.i] = true;
        self.gate.changed.notify_all();
    }
}

/// The folders above `path` ("a", "a/b" for "a/b/c"), the root left out.
fn ancestors(path: &str) -> Vec<&str> {
    path.match_indices('/').map(|(i, _)| &path[..i]).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tandem_core::{Entry, RelPath, Side};

    fn p(s: &str) -> RelPath {
        RelPath::new(s).unwrap()
    }

    fn mkdir(s: &str) -> Action {
        Action::Mkdir {
            path: p(s),
            side: Side::Target,
            src: Entry::dir(0o755, 1),
        }
    }

    fn delete(s: &str) -> Action {
        Action::Delete {
            path: p(s),
            side: Side::Target,
            expect: Entry::dir(0o755, 1),
        }
    }

    #[test]
    fn issue_17_a_step_waits_for_the_folder_above_it_and_nothing_unrelated() {
        let group = [
            mkdir("a"),
            mkdir("a/b"),
            mkdir("c"),
            mkdir("a/b/d"),
            mkdir("ab"),
        ];
        assert_eq!(
            dependencies(&group),
            [vec![], vec![0], vec![], vec![0, 1], vec![]],
            "\"ab\" is not below \"a\""
        );
    }

    #[test]
    fn issue_17_a_folder_deleted_waits_for_everything_below_it_and_the_same_path_keeps_its_order() {
        let group = [
            delete("d/x"),
            delete("e"),
            delete("d/y/z"),
            delete("d/y"),
            delete("d"),
            mkdir("d"),
        ];
        let deps = dependencies(&group);
        assert_eq!(deps[3], [2], "d/y after d/y/z");
        assert_eq!(deps[4], [0, 2, 3], "d after all that was in it");
        assert_eq!(
            deps[5],
            [4, 0, 2, 3],
            "the folder made again after the deletions"
        );
        assert!(deps[1].is_empty());
    }

    #[test]
    fn issue_17_names_differing_only_in_case_are_one_path() {
        let group = [delete("Readme"), mkdir("README"), mkdir("readme/x")];
        assert_eq!(dependencies(&group), [vec![], vec![0], vec![0, 1]]);
    }

    #[test]
    fn issue_17_renames_links_and_conflicts_stay_where_the_plan_put_them() {
        assert!(pipelined(&mkdir("a")) && pipelined(&delete("a")));
        let rename = Action::Rename {
            side: Side::Target,
            from: p("a"),
            to: p("b"),
            expect: Entry::dir(0o755, 1),
            why: tandem_core::RenameWhy::Replay,
        };
        assert!(!pipelined(&rename));
    }
}
