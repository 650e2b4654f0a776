//! `--hard-links`: which copies of a plan become hard links on the receiving side.
//!
//! Pure, like reconcile: the engine reads which names share a file on each side from the
//! inode numbers its scans already hold (`LinkGroups::of`, before reconcile takes the
//! trees), and calls `link_copies` on the plan. A copy whose file has another name on the
//! sending side becomes a `Link` to that name on the receiving side when the receiving side
//! holds it in step (no step of this plan touches it), or when this plan copies it first
//! (the first copy of a group sends the data, the others link to it). Names in step on
//! both sides that share a file on one side only are linked on the other (`relinks`).
//! Renames, deletions and the rest of the plan are left as reconcile made them.

use std::collections::{HashMap, HashSet};

use crate::entry::{Entry, Kind, Side};
use crate::path::RelPath;
use crate::plan::{Action, Direction};
use crate::reconcile::Tree;

/// The files of each side that have more than one name there, read from the scanned trees.
#[derive(Debug, Default)]
pub struct LinkGroups {
    /// Per side (source, target): inode number → the names of that file, sorted.
    names: [HashMap<u64, Vec<RelPath>>; 2],
    /// Per side: the entry at each path named in a group of either side.
    entries: [HashMap<RelPath, Entry>; 2],
}

fn slot(side: Side) -> usize {
    match side {
        Side::Source => 0,
        Side::Target => 1,
    }
}

impl LinkGroups {
    pub fn of(src: &Tree, tgt: &Tree) -> LinkGroups {
        let mut groups = LinkGroups::default();
        for (side, tree) in [(Side::Source, src), (Side::Target, tgt)] {
            let mut by_ino: HashMap<u64, Vec<RelPath>> = HashMap::new();
            for (path, e) in tree.iter().filter(|(_, e)| e.kind == Kind::File) {
                by_ino.entry(e.ino).or_default().push(path.clone());
            }
            // Trees are ordered: each group's names are already sorted.
            by_ino.retain(|_, names| names.len() > 1);
            groups.names[slot(side)] = by_ino;
        }
        let named: HashSet<RelPath> = groups
            .names
            .iter()
            .flat_map(|m| m.values().flatten().cloned())
            .collect();
        for (side, tree) in [(Side::Source, src), (Side::Target, tgt)] {
            groups.entries[slot(side)] = named
                .iter()
                .filter_map(|p| tree.get(p).map(|e| (p.clone(), e.clone())))
                .collect();
        }
        groups
    }

    pub fn is_empty(&self) -> bool {
        self.names.iter().all(HashMap::is_empty)
    }

    /// Another name of `src`'s file on `from` (not `path`) that the receiving side holds in
    /// step, untouched by the plan, with that side's entry there.
    fn settled_anchor(
        &self,
        from: Side,
        path: &RelPath,
        src: &Entry,
        busy: &HashSet<RelPath>,
    ) -> Option<(RelPath, Entry)> {
        let names = self.names[slot(from)].get(&src.ino)?;
        names
            .iter()
            .filter(|q| *q != path && !busy.contains(*q))
            .find_map(|q| {
                let sent = self.entries[slot(from)].get(q)?;
                let there = self.entries[slot(from.other())].get(q)?;
                // Same size and time as `src`: the same file, not an inode number seen again
                // on another file system below the root.
                let same = sent.size == src.size && sent.mtime == src.mtime;
                (same && there.kind == Kind::File && there.size == src.size)
                    .then(|| (q.clone(), there.clone()))
            })
    }

    fn grouped(&self, from: Side, src: &Entry) -> bool {
        self.names[slot(from)].contains_key(&src.ino)
    }
}

/// The paths a step of the plan writes or leaves out of step: not to be linked to.
fn busy_paths(actions: &[Action]) -> HashSet<RelPath> {
    let mut busy = HashSet::new();
    for a in actions {
        match a {
            Action::Record { .. } => {}
            Action::Rename { from, to, .. } => {
                busy.insert(from.clone());
                busy.insert(to.clone());
            }
            other => {
                busy.insert(other.path().clone());
            }
        }
    }
    busy
}

/// Turns the copies of `actions` whose file has another name on the sending side into
/// links (see the module's header), and links the names in step on both sides that share
/// a file on one side only, on the side `direction` lets be written. Without groups, the
/// plan is returned as it is.
pub fn link_copies(actions: Vec<Action>, groups: &LinkGroups, direction: Direction) -> Vec<Action> {
    if groups.is_empty() {
        return actions;
    }
    let busy = busy_paths(&actions);
    let mut out = copies_to_links(actions, groups, &busy);
    out.extend(relinks(groups, &busy, direction));
    out
}

/// Names untouched by the plan whose file has more names on one side than it shares on
/// the other (a pair synced before `--hard-links`, links broken on one side): linked on
/// the other side to the name whose file there holds most of them. Each path is linked
/// on one side at most (groups that differ on both sides merge over runs).
fn relinks(groups: &LinkGroups, busy: &HashSet<RelPath>, direction: Direction) -> Vec<Action> {
    let mut out = Vec::new();
    let mut linked: HashSet<RelPath> = HashSet::new();
    for from in [Side::Source, Side::Target] {
        if !direction.writes(from.other()) {
            continue;
        }
        let mut files: Vec<&Vec<RelPath>> = groups.names[slot(from)].values().collect();
        files.sort();
        for names in files {
            let in_step: Vec<(&RelPath, &Entry, &Entry)> = names
                .iter()
                .filter(|q| !busy.contains(*q) && !linked.contains(*q))
                .filter_map(|q| {
                    let sent = groups.entries[slot(from)].get(q)?;
                    let there = groups.entries[slot(from.other())].get(q)?;
                    let fits = there.kind == Kind::File && there.size == sent.size;
                    fits.then_some((q, sent, there))
                })
                .collect();
            let Some(&(_, first, _)) = in_step.first() else {
                continue;
            };
            // One file on the sending side: the same size and time under every name.
            if in_step
                .iter()
                .any(|(_, s, _)| s.size != first.size || s.mtime != first.mtime)
            {
                continue;
            }
            let most = |ino: u64| in_step.iter().filter(|(_, _, t)| t.ino == ino).count();
            // The first such name (`max_by_key` keeps the last of equals).
            let Some(&(anchor, _, at)) = in_step.iter().rev().max_by_key(|(_, _, t)| most(t.ino))
            else {
                continue;
            };
            for &(q, sent, there) in &in_step {
                if there.ino == at.ino {
                    continue;
                }
                linked.insert(q.clone());
                out.push(Action::Link {
                    path: q.clone(),
                    from,
                    src: Box::new(sent.clone()),
                    expect: Some(there.clone()),
                    mode: sent.mode,
                    anchor: anchor.clone(),
                    anchor_expect: Some(Box::new(at.clone())),
                    in_step: true,
                });
            }
        }
    }
    out
}

fn copies_to_links(
    actions: Vec<Action>,
    groups: &LinkGroups,
    busy: &HashSet<RelPath>,
) -> Vec<Action> {
    // Per sending side and file: the first copy of it in this plan, which sends the data.
    let mut leaders: HashMap<(Side, u64), (RelPath, u64, i64)> = HashMap::new();
    let mut out = Vec::with_capacity(actions.len());
    for a in actions {
        let Action::Copy {
            path, from, src, ..
        } = &a
        else {
            out.push(a);
            continue;
        };
        if src.kind != Kind::File || !groups.grouped(*from, src) {
            out.push(a);
            continue;
        }
        let anchor = match groups.settled_anchor(*from, path, src, busy) {
            Some((q, there)) => Some((q, Some(there))),
            None => match leaders.get(&(*from, src.ino)) {
                Some((q, size, mtime)) if *size == src.size && *mtime == src.mtime => {
                    Some((q.clone(), None))
                }
                _ => None,
            },
        };
        let Some((anchor, anchor_expect)) = anchor else {
            leaders
                .entry((*from, src.ino))
                .or_insert_with(|| (path.clone(), src.size, src.mtime));
            out.push(a);
            continue;
        };
        let Action::Copy {
            path,
            from,
            src,
            expect,
            mode,
        } = a
        else {
            unreachable!("matched as a copy above")
        };
        out.push(Action::Link {
            path,
            from,
            src: Box::new(src),
            expect,
            mode,
            anchor,
            anchor_expect: anchor_expect.map(Box::new),
            in_step: false,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(p: &str) -> RelPath {
        RelPath::from_str_lossless(p)
    }

    fn tree(files: &[(&str, u64)]) -> Tree {
        files
            .iter()
            .map(|(p, ino)| (rel(p), Entry::file(5, 1_000, 0o644, *ino)))
            .collect()
    }

    fn copy(p: &str, from: Side, ino: u64, expect: Option<Entry>) -> Action {
        Action::Copy {
            path: rel(p),
            from,
            src: Entry::file(5, 1_000, 0o644, ino),
            expect,
            mode: 0o644,
        }
    }

    fn anchor_of(a: &Action) -> Option<(&RelPath, bool)> {
        match a {
            Action::Link {
                anchor,
                anchor_expect,
                ..
            } => Some((anchor, anchor_expect.is_some())),
            _ => None,
        }
    }

    #[test]
    fn a_new_name_of_a_synced_file_links_to_it_on_the_other_side() {
        let src = tree(&[("a", 7), ("b", 7)]);
        let tgt = tree(&[("a", 70)]);
        let groups = LinkGroups::of(&src, &tgt);
        let out = link_copies(
            vec![copy("b", Side::Source, 7, None)],
            &groups,
            Direction::Both,
        );
        assert_eq!(anchor_of(&out[0]), Some((&rel("a"), true)));
    }

    #[test]
    fn a_new_group_sends_its_data_once_the_other_names_link_to_the_first() {
        let src = Tree::new();
        let tgt = tree(&[("x", 3), ("y", 3), ("z", 3)]);
        let groups = LinkGroups::of(&src, &tgt);
        let plan = ["x", "y", "z"]
            .iter()
            .map(|p| copy(p, Side::Target, 3, None))
            .collect();
        let out = link_copies(plan, &groups, Direction::Both);
        assert!(matches!(out[0], Action::Copy { .. }));
        assert_eq!(anchor_of(&out[1]), Some((&rel("x"), false)));
        assert_eq!(anchor_of(&out[2]), Some((&rel("x"), false)));
    }

    #[test]
    fn a_name_the_plan_touches_is_no_anchor() {
        // Content changed through "a": both names are copied; "a" is not in step on the
        // target, so "b" follows the copy of "a" instead of linking to the old file.
        let src = tree(&[("a", 7), ("b", 7)]);
        let tgt = tree(&[("a", 70), ("b", 70)]);
        let groups = LinkGroups::of(&src, &tgt);
        let old = Some(Entry::file(5, 1_000, 0o644, 70));
        let plan = vec![
            copy("a", Side::Source, 7, old.clone()),
            copy("b", Side::Source, 7, old),
        ];
        let out = link_copies(plan, &groups, Direction::Both);
        assert!(matches!(out[0], Action::Copy { .. }));
        assert_eq!(anchor_of(&out[1]), Some((&rel("a"), false)));
    }

    #[test]
    fn files_with_one_name_stay_copies() {
        let src = tree(&[("a", 1), ("b", 2)]);
        let groups = LinkGroups::of(&src, &Tree::new());
        assert!(groups.is_empty());
        let plan = vec![copy("a", Side::Source, 1, None)];
        assert_eq!(link_copies(plan.clone(), &groups, Direction::Both), plan);
    }

    #[test]
    fn a_different_file_behind_the_same_inode_number_is_no_anchor() {
        let mut src = tree(&[("a", 7), ("b", 7)]);
        src.insert(rel("a"), Entry::file(9, 2_000, 0o644, 7));
        let tgt = tree(&[("a", 70)]);
        let groups = LinkGroups::of(&src, &tgt);
        let out = link_copies(
            vec![copy("b", Side::Source, 7, None)],
            &groups,
            Direction::Both,
        );
        assert!(matches!(out[0], Action::Copy { .. }));
    }

    #[test]
    fn names_in_step_linked_on_one_side_only_are_linked_on_the_other() {
        // Synced before --hard-links: the source's two names are two files on the target.
        let src = tree(&[("a", 7), ("b", 7), ("c", 7)]);
        let tgt = tree(&[("a", 70), ("b", 71), ("c", 71)]);
        let groups = LinkGroups::of(&src, &tgt);
        let out = link_copies(Vec::new(), &groups, Direction::Both);
        assert_eq!(out.len(), 1, "{out:?}");
        let Action::Link {
            path,
            anchor,
            in_step,
            from,
            ..
        } = &out[0]
        else {
            panic!("{out:?}");
        };
        assert_eq!(
            (path, anchor, *in_step, *from),
            (&rel("a"), &rel("b"), true, Side::Source)
        );
        // Pull never writes the target: nothing to do there.
        assert!(link_copies(Vec::new(), &groups, Direction::Pull).is_empty());
    }
}
