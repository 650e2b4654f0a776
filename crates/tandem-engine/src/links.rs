//! `--hard-links` in a scoped sync (a mount's pass, a target watcher's hints): a file
//! written in place through one name changed under all its names, but only that name is
//! hinted. The other names the baseline knows for a hinted file with more than one link
//! are read too, so that reconcile sees them change and `link_copies` links them again.

use std::collections::HashSet;

use tandem_core::{RelPath, Side};
use tandem_fs::Root;
use tandem_state::Store;

use crate::spec::Scope;

/// Adds to `scope` the other names of its hinted files that have more than one name on
/// either side. A whole-tree scope has them already.
pub(crate) fn widen_to_other_names(scope: &mut Scope, roots: [&Root; 2], store: &Store) {
    let hinted: Vec<RelPath> = match scope {
        Scope::All => return,
        Scope::Paths(ps) => ps.clone(),
        Scope::Hints(hs) => hs.iter().map(|(p, _)| p.clone()).collect(),
    };
    let known: HashSet<&RelPath> = hinted.iter().collect();
    let mut more: Vec<RelPath> = Vec::new();
    for (side, root) in [(Side::Source, roots[0]), (Side::Target, roots[1])] {
        let inos: Vec<u64> = hinted.iter().filter_map(|p| root.shared_file(p)).collect();
        if inos.is_empty() {
            continue;
        }
        match store.paths_with_inos(side, &inos) {
            Ok(names) => more.extend(names.into_iter().filter(|p| !known.contains(p))),
            // Only the hinted names are synced now; the next full scan finds the others.
            Err(e) => tracing::warn!("cannot look up the other names of hard-linked files: {e}"),
        }
    }
    more.sort();
    more.dedup();
    match scope {
        Scope::All => {}
        Scope::Paths(ps) => ps.extend(more),
        Scope::Hints(hs) => hs.extend(more.into_iter().map(|p| (p, false))),
    }
}
