//! Names differing only in case, sent to a side whose file system folds case (Windows,
//! macOS's default APFS, exFAT): there the second name would land on the first. The first
//! name holds the place (the one the side has already, else the first in path order);
//! each other one, and what lies under it, is left out and reported per file. Nothing on
//! that side is deleted or overwritten for it.

use std::collections::{HashMap, HashSet};

use tandem_core::{Action, RelPath, Side, Tree};

/// A side's paths by their case-folded form.
pub(crate) type Folded = HashMap<String, RelPath>;

/// Each path of `tree` by its case-folded form: the names a side holds already.
fn folded(tree: &Tree) -> Folded {
    tree.keys().map(|p| (fold(p), p.clone())).collect()
}

/// `actions` with each step that would make a name on `side` differing only in case
/// from another one there (in `held`, or made by an earlier step) turned into a skip.
fn fit_case(actions: Vec<Action>, side: Side, mut held: Folded) -> Vec<Action> {
    let mut made: Vec<(&RelPath, Option<&RelPath>)> =
        actions.iter().filter_map(|a| makes_on(a, side)).collect();
    made.sort();
    let mut refused: HashSet<RelPath> = HashSet::new();
    for (path, renamed_from) in made {
        let key = fold(path);
        match held.get(&key) {
            Some(holder) if holder != path && Some(holder) != renamed_from => {
                refused.insert(path.clone());
            }
            Some(_) => {}
            None => {
                held.insert(key, path.clone());
            }
        }
    }
    if refused.is_empty() {
        return actions;
    }
    let under_refused = |p: &RelPath| {
        let mut at = Some(p.clone());
        while let Some(q) = at {
            if refused.contains(&q) {
                return true;
            }
            at = q.parent().filter(|r| !r.is_root());
        }
        false
    };
    actions
        .into_iter()
        .map(|a| match makes_on(&a, side) {
            Some((path, _)) if under_refused(path) => Action::Skip {
                path: path.clone(),
                side: None,
                reason: format!("the {side} cannot hold two names differing only in case"),
            },
            _ => a,
        })
        .collect()
}

/// The name a step makes on `side` (and, for a rename, the name it leaves).
fn makes_on(a: &Action, side: Side) -> Option<(&RelPath, Option<&RelPath>)> {
    match a {
        Action::Copy { path, from, .. } | Action::Link { path, from, .. } if *from != side => {
            Some((path, None))
        }
        Action::Mkdir { path, side: s, .. } if *s == side => Some((path, None)),
        Action::Rename {
            from, to, side: s, ..
        } if *s == side => Some((to, Some(from))),
        _ => None,
    }
}

pub(crate) fn fold(p: &RelPath) -> String {
    String::from_utf8_lossy(p.as_bytes()).to_lowercase()
}

/// For each side that folds case (`folds`: source, target), the names it holds.
pub(crate) fn held_names(folds: [bool; 2], src: &Tree, tgt: &Tree) -> [Option<Folded>; 2] {
    [folds[0].then(|| folded(src)), folds[1].then(|| folded(tgt))]
}

/// [`fit_case`] for each side that folds case.
pub(crate) fn fit_both(mut actions: Vec<Action>, held: [Option<Folded>; 2]) -> Vec<Action> {
    for (side, names) in [Side::Source, Side::Target].into_iter().zip(held) {
        if let Some(names) = names {
            actions = fit_case(actions, side, names);
        }
    }
    actions
}
