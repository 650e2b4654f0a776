//! Folder modification times, kept: a folder tandem created, or whose entries it added,
//! removed or renamed, gets the other side's folder time once the sync's steps are done.
//!
//! Folder times are never compared (an `Entry` of a folder has none): a difference alone
//! plans nothing and is never a conflict. They are set last, deepest folder first, so that
//! no later step of the sync moves them again. The root folders are left alone.

use std::collections::HashMap;

use tandem_core::{Action, RelPath, Side};
use tandem_fs::Root;

/// The folders one sync changes, and their times on each side before it changed them.
#[derive(Default)]
pub(crate) struct FolderTimes {
    /// Per folder, its time on (source, target) before this sync's first step in it.
    before: HashMap<RelPath, [Option<i64>; 2]>,
    /// Per folder, whether this sync changed it on (source, target).
    changed: HashMap<RelPath, [bool; 2]>,
}

fn slot(side: Side) -> usize {
    match side {
        Side::Source => 0,
        Side::Target => 1,
    }
}

/// The folders (other than a root) whose entries `a` changes, with the side it changes them on.
fn folders_of(a: &Action) -> Vec<(Side, RelPath)> {
    let parent = |p: &RelPath| p.parent().unwrap_or_default();
    let folders = match a {
        Action::Rename { side, from, to, .. } => vec![(*side, parent(from)), (*side, parent(to))],
        Action::Copy { path, from, .. } | Action::Link { path, from, .. } => {
            vec![(from.other(), parent(path))]
        }
        Action::Mkdir { path, side, .. } => vec![(*side, parent(path)), (*side, path.clone())],
        Action::Delete { path, side, .. } => vec![(*side, parent(path))],
        _ => Vec::new(),
    };
    folders.into_iter().filter(|(_, f)| !f.is_root()).collect()
}

impl FolderTimes {
    /// Before `actions` are applied: the times of the folders they will change, on both
    /// sides, unless an earlier round of this sync already took them.
    pub(crate) fn note_plan(&mut self, roots: [&Root; 2], actions: &[Action]) {
        for (_, folder) in actions.iter().flat_map(folders_of) {
            if self.before.contains_key(&folder) {
                continue;
            }
            let time = |r: &Root| r.dir_mtime(&folder).ok().flatten();
            let times = [time(roots[0]), time(roots[1])];
            self.before.insert(folder, times);
        }
    }

    /// `a` was applied.
    pub(crate) fn note_done(&mut self, a: &Action) {
        for (side, folder) in folders_of(a) {
            self.changed.entry(folder).or_default()[slot(side)] = true;
        }
    }

    /// Gives each changed folder its time, deepest first: the other side's where only one
    /// side changed, else the later of the two as they were before the sync. Returns the
    /// folders set on the source (for a mount to drop its cached attributes); a folder that
    /// cannot take a time is logged and left as it is.
    pub(crate) fn apply(self, roots: [&Root; 2]) -> Vec<RelPath> {
        let mut folders: Vec<_> = self.changed.into_iter().collect();
        folders.sort_by_key(|(f, _)| std::cmp::Reverse(f.components().count()));
        let mut set_on_source = Vec::new();
        let mut failed = 0usize;
        for (folder, changed) in folders {
            let before = self.before.get(&folder).copied().unwrap_or_default();
            let want = match changed {
                [true, true] => before[0].max(before[1]),
                [true, false] => roots[1].dir_mtime(&folder).ok().flatten(),
                [false, true] => roots[0].dir_mtime(&folder).ok().flatten(),
                [false, false] => None,
            };
            let Some(want) = want else { continue };
            for side in [Side::Source, Side::Target] {
                if !changed[slot(side)] {
                    continue;
                }
                match tandem_fs::set_dir_mtime(roots[slot(side)], &folder, want) {
                    Ok(true) if side == Side::Source => set_on_source.push(folder.clone()),
                    Ok(_) => {}
                    Err(e) if e.is_raced() => {}
                    Err(e) => {
                        failed += 1;
                        tracing::debug!("cannot keep a folder's time: {e}");
                    }
                }
            }
        }
        if failed > 0 {
            tracing::warn!("{failed} folders could not take the other side's modification time");
        }
        set_on_source
    }
}
