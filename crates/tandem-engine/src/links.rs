//! `--hard-links` in a scoped sync (a mount's pass, a target watcher's hints): a file
//! written in place through one name changed under all its names, but only that name is
//! hinted. The other names the baseline knows for a hinted file with more than one link
//! are read too, so that reconcile sees them change and `link_copies` links them again.

use std::collections::HashSet;

use tandem_core::{Action, RelPath, Side};
use tandem_state::Store;

use crate::run::Ctx;
use crate::side::SideRoot;
use crate::spec::{Report, Scope};

/// Before the plan is applied: on a side whose file system holds no hard links (exFAT),
/// each link becomes the copy it stands for, noted in the report (once per run, not per
/// name), and a link between names already in step is dropped: they stay two files, and
/// the next run has nothing to do or say about them. Probed once per side, and only when
/// a link is planned there; in a dry run without writing where it can (see
/// `tandem_fs::holds_hard_links_dry`), so that the plan it lists is the one a real run makes.
pub(crate) fn where_links_hold(
    actions: Vec<Action>,
    ctx: &Ctx<'_>,
    report: &mut Report,
    dry_run: bool,
) -> Vec<Action> {
    let mut held: [Option<bool>; 2] = [None, None];
    let mut out = Vec::with_capacity(actions.len());
    for a in actions {
        let Action::Link {
            path,
            from,
            in_step,
            ..
        } = &a
        else {
            out.push(a);
            continue;
        };
        let side = from.other();
        let slot = usize::from(side == Side::Target);
        let holds = *held[slot].get_or_insert_with(|| ctx.root(side).holds_hard_links(dry_run));
        if holds {
            out.push(a);
        } else if !*in_step {
            report.links_copied.push((side, path.clone()));
            out.extend(a.as_copy());
        }
    }
    out
}

/// Adds to `scope` the other names of its hinted files that have more than one name on
/// either side on this machine (a remote side's other names wait for a whole-tree sync). A
/// whole-tree scope has them already.
pub(crate) fn widen_to_other_names(scope: &mut Scope, roots: [&dyn SideRoot; 2], store: &Store) {
    let hinted: Vec<RelPath> = match scope {
        Scope::All => return,
        Scope::Paths(ps) => ps.clone(),
        Scope::Hints(hs) => hs.iter().map(|(p, _)| p.clone()).collect(),
    };
    let known: HashSet<&RelPath> = hinted.iter().collect();
    let mut more: Vec<RelPath> = Vec::new();
    for (side, root) in [(Side::Source, roots[0]), (Side::Target, roots[1])] {
        let Some(root) = root.local() else {
            continue;
        };
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
