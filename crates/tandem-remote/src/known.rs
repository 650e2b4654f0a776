//! What the client knows of the agent's tree without asking (issue 17): a mount's pass
//! that propagates a file need not scan the remote root again before it installs the file,
//! when nothing there can have changed since the agent last told its state.
//!
//! The base is the listing of the last whole-tree scan (`crate::listing`). On it go the
//! entries this client's own steps left there (each answer of an install or a step says
//! what it left). A path the agent's watcher named since the listing was made, a step that
//! failed or raced, a rename or a folder deleted (whose subtrees the overlay cannot
//! follow) make that path unknown: any hinted scan touching it goes to the agent, until
//! the next whole-tree scan. A `Rescan` hint makes everything unknown.
//!
//! Safety does not rest on this: every write still carries the state the plan expects and
//! the agent re-checks it right before it writes (invariant 2), so a change on the remote
//! side whose hint had not yet arrived makes the step race, and the next round scans for
//! real (then a conflict, both versions kept, as before).

use std::collections::HashMap;

use tandem_core::{Entry, FilterInputs, RelPath};
use tandem_engine::watch::TargetHint;

/// More paths named than this since the last whole-tree scan: everything is unknown.
const MOST_UNKNOWN: usize = 4096;

#[derive(Default)]
pub(crate) struct Known {
    /// Paths this client's steps changed since the base listing, with what they hold now
    /// (`None`: nothing).
    overlay: HashMap<RelPath, Option<Entry>>,
    /// Paths whose state is unknown, with the hint count when they became so, and
    /// whether what is below them is too (else only their own entry: a folder's mode or
    /// times changed, which a hinted scan that reads it makes known again).
    unknown: Vec<(RelPath, u64, bool)>,
    /// Everything is unknown since this hint count (`Rescan`, too many paths).
    all_unknown: Option<u64>,
    /// The filter the base listing was made with; `None`: no base.
    inputs: Option<FilterInputs>,
    /// Hints taken so far (what `unknown` counts in).
    hints: u64,
}

/// What a known path holds: `Some(None)`, nothing; `None`, not known.
pub(crate) type Lookup = Option<Option<Entry>>;

impl Known {
    /// A hint from the agent's watcher: its path is unknown from now on.
    pub(crate) fn hinted(&mut self, h: &TargetHint) {
        self.hints += 1;
        match h {
            TargetHint::Changed { path, deep: false } => self.unknown_at(path, false),
            TargetHint::Changed { path, .. }
            | TargetHint::Removed { path, .. }
            | TargetHint::Left(path)
            | TargetHint::Writing(path)
            | TargetHint::Closed(path)
            | TargetHint::Again(path) => self.forget(path),
            TargetHint::Rescan(_) => self.all_unknown = Some(self.hints),
        }
    }

    /// The hints taken so far: a whole-tree scan notes it before it asks.
    pub(crate) fn mark(&self) -> u64 {
        self.hints
    }

    /// A whole-tree scan asked at `mark` answered (made with `inputs`): it is the new
    /// base; what was named since it was asked stays unknown.
    pub(crate) fn rebased(&mut self, mark: u64, inputs: FilterInputs) {
        self.overlay.clear();
        self.unknown.retain(|(_, at, _)| *at > mark);
        self.all_unknown = self.all_unknown.filter(|at| *at > mark);
        self.inputs = Some(inputs);
    }

    /// No base any more (a whole-tree scan failed, or made without a listing).
    pub(crate) fn drop_base(&mut self) {
        self.overlay.clear();
        self.inputs = None;
    }

    /// `path` (and what is below it) is unknown from now on.
    pub(crate) fn forget(&mut self, path: &RelPath) {
        self.unknown_at(path, true);
    }

    fn unknown_at(&mut self, path: &RelPath, below: bool) {
        if self.unknown.len() >= MOST_UNKNOWN {
            self.all_unknown.get_or_insert(self.hints);
            return;
        }
        self.overlay
            .retain(|p, _| !(p == path || (below && p.is_below(path))));
        self.unknown.push((path.clone(), self.hints, below));
    }

    /// A hinted scan asked at `mark` read `read` (the paths hinted and the folders above
    /// them) and found `found`: a path only whose own entry was unknown, named before the
    /// scan was asked and read by it, is known again.
    pub(crate) fn read_again(
        &mut self,
        mark: u64,
        read: &[RelPath],
        found: impl Fn(&RelPath) -> Option<Entry>,
    ) {
        let again: Vec<RelPath> = self
            .unknown
            .iter()
            .filter(|(u, at, below)| !below && *at <= mark && read.contains(u))
            .map(|(u, _, _)| u.clone())
            .collect();
        for u in again {
            if self.unknown.iter().any(|(v, at, below)| {
                (*below || *at > mark) && (*v == u || u.is_below(v) || v.is_below(&u))
            }) {
                continue;
            }
            self.unknown.retain(|(v, _, _)| *v != u);
            let entry = found(&u);
            self.overlay.insert(u, entry);
        }
    }

    /// This client's step left `entry` at `path` (a file, a folder made or set; `None`:
    /// a file removed).
    pub(crate) fn left(&mut self, path: &RelPath, entry: Option<Entry>) {
        if self.is_unknown(path) {
            return;
        }
        self.overlay.insert(path.clone(), entry);
    }

    fn is_unknown(&self, path: &RelPath) -> bool {
        self.all_unknown.is_some()
            || self
                .unknown
                .iter()
                .any(|(u, _, _)| u == path || path.is_below(u) || u.is_below(path))
    }

    /// Whether a hinted scan made with `inputs` could be answered here: a base, made with
    /// the same filter, and nothing unknown on the way to `path` or below it.
    pub(crate) fn usable(&self, inputs: &FilterInputs, path: &RelPath) -> bool {
        self.inputs.as_ref() == Some(inputs) && !path.is_root() && !self.is_unknown(path)
    }

    /// What `path` holds as known here, `base` looking it up in the listing.
    pub(crate) fn lookup(&self, path: &RelPath, base: impl FnOnce(&RelPath) -> Lookup) -> Lookup {
        match self.overlay.get(path) {
            Some(e) => Some(e.clone()),
            None => base(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RelPath {
        RelPath::new(s).expect("a relative path")
    }

    fn known() -> Known {
        let mut k = Known::default();
        k.rebased(k.mark(), FilterInputs::default());
        k
    }

    /// A path the watcher named, what is below it and what is above it are unknown until
    /// the next whole-tree scan; a hint that came while that scan was asked stays.
    #[test]
    fn issue_17_a_hinted_path_is_unknown_until_a_whole_scan_asked_after_it() {
        let mut k = known();
        let inputs = FilterInputs::default();
        assert!(k.usable(&inputs, &p("dir/a")));
        k.hinted(&TargetHint::Changed {
            path: p("dir"),
            deep: false,
        });
        for path in ["dir", "dir/a", "dir/a/b"] {
            assert!(!k.usable(&inputs, &p(path)), "{path}");
        }
        assert!(k.usable(&inputs, &p("other/a")));
        let mark = k.mark();
        k.hinted(&TargetHint::Closed(p("other/a")));
        k.rebased(mark, inputs.clone());
        assert!(k.usable(&inputs, &p("dir/a")));
        assert!(
            !k.usable(&inputs, &p("other/a")),
            "named while the scan was asked"
        );
        k.hinted(&TargetHint::Rescan("lost events".into()));
        assert!(!k.usable(&inputs, &p("x")));
        assert!(!k.usable(&FilterInputs::default(), &RelPath::root()));
    }

    /// A folder whose own entry changed is known again once a hinted scan asked after the
    /// hint read it; one named as changed below is not.
    #[test]
    fn issue_17_a_folder_whose_entry_changed_is_known_again_once_read() {
        let mut k = known();
        let inputs = FilterInputs::default();
        let changed = |path: &str, deep| TargetHint::Changed {
            path: p(path),
            deep,
        };
        k.hinted(&changed("dir", false));
        k.hinted(&changed("deep", true));
        assert!(!k.usable(&inputs, &p("dir/a")));
        let mark = k.mark();
        let dir = Entry::dir(0o700, 7);
        k.read_again(mark, &[p("dir"), p("deep")], |_| Some(dir.clone()));
        assert!(k.usable(&inputs, &p("dir/a")));
        assert_eq!(k.lookup(&p("dir"), |_| None), Some(Some(dir.clone())));
        assert!(
            !k.usable(&inputs, &p("deep/a")),
            "what is below it is unknown"
        );
        // Named again after the scan was asked: still unknown.
        k.hinted(&changed("dir", false));
        k.read_again(mark, &[p("dir")], |_| Some(dir.clone()));
        assert!(!k.usable(&inputs, &p("dir/a")));
    }

    /// What a step left overrides the listing; a path made unknown drops it.
    #[test]
    fn issue_17_what_a_step_left_is_known_until_its_path_is_named() {
        let mut k = known();
        let e = Entry::file(3, 1, 0o644, 9);
        k.left(&p("a"), Some(e.clone()));
        k.left(&p("gone"), None);
        assert_eq!(k.lookup(&p("a"), |_| None), Some(Some(e)));
        assert_eq!(
            k.lookup(&p("gone"), |_| Some(Some(Entry::dir(0o755, 1)))),
            Some(None)
        );
        k.forget(&p("a"));
        assert_eq!(k.lookup(&p("a"), |_| None), None);
        assert!(!k.usable(&FilterInputs::default(), &p("a")));
        let other = FilterInputs {
            excludes: vec!["*.tmp".into()],
            ..FilterInputs::default()
        };
        assert!(!k.usable(&other, &p("b")), "another filter");
    }
}
