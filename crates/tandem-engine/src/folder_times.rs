//! Folder modification times, kept: a folder tandem created, or whose entries it added,
//! removed or renamed, gets the other side's folder time once the sync's steps are done.
//!
//! Folder times are never compared (an `Entry` of a folder has none): a difference alone
//! plans nothing and is never a conflict. They are set last, deepest folder first, so that
//! no later step of the sync moves them again. The root folders are left alone.

use std::collections::{HashMap, HashSet};

use tandem_core::{Action, RelPath, Side};

use crate::side::{Later, SideRoot};
use crate::watch::Echoes;

/// The folders one sync changes, and their times on each side before it changed them.
#[derive(Default)]
pub(crate) struct FolderTimes {
    /// Per folder, its time on (source, target) before this sync's first step in it.
    before: HashMap<RelPath, [Option<i64>; 2]>,
    /// The folders whose times were asked for.
    asked: HashSet<RelPath>,
    /// Times asked for and not yet taken (a remote side answers while the steps go on):
    /// the folders, and each side's answer.
    waiting: Vec<(Vec<RelPath>, [Times; 2])>,
    /// A step changed a folder since the times were last set.
    dirty: bool,
    /// The folders set on the source so far.
    set_on_source: Vec<RelPath>,
    /// Per folder, whether this sync changed it on (source, target).
    changed: HashMap<RelPath, [bool; 2]>,
}

fn slot(side: Side) -> usize {
    match side {
        Side::Source => 0,
        Side::Target => 1,
    }
}

/// Folder times being set, per side (source, target): the answers to come, and their
/// folders (`FolderTimes::apply`, then `settle`).
pub(crate) struct Setting([(TimesSet, Vec<RelPath>); 2]);

/// A side's folder times, to come (`SideRoot::dir_mtimes_later`).
type Times = Later<Vec<Option<i64>>>;
/// Whether a side set each folder's time, to come (`SideRoot::set_dir_mtimes_later`).
type TimesSet = Later<Vec<tandem_fs::Result<bool>>>;

impl Default for Setting {
    fn default() -> Self {
        Setting([
            (Box::new(Vec::new), Vec::new()),
            (Box::new(Vec::new), Vec::new()),
        ])
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
    /// sides, unless an earlier round of this sync already took them (one request per side:
    /// a remote side answers them all at once). The answers are taken when the times are
    /// set: a remote side's agent reads them before the steps sent after this request, and
    /// the steps need not wait for them.
    pub(crate) fn note_plan(&mut self, roots: [&dyn SideRoot; 2], actions: &[Action]) {
        let mut new = Vec::new();
        for (_, folder) in actions.iter().flat_map(folders_of) {
            if self.asked.insert(folder.clone()) {
                new.push(folder);
            }
        }
        if new.is_empty() {
            return;
        }
        let answers = roots.map(|r| r.dir_mtimes_later(&new));
        self.waiting.push((new, answers));
    }

    /// Takes the answers of the times asked for.
    fn take_answers(&mut self) {
        for (folders, [src, tgt]) in self.waiting.drain(..) {
            let (src, tgt) = (src(), tgt());
            for (i, folder) in folders.into_iter().enumerate() {
                let at = |times: &[Option<i64>]| times.get(i).copied().flatten();
                self.before.insert(folder, [at(&src), at(&tgt)]);
            }
        }
    }

    /// `a` was applied.
    pub(crate) fn note_done(&mut self, a: &Action) {
        for (side, folder) in folders_of(a) {
            self.changed.entry(folder).or_default()[slot(side)] = true;
            self.dirty = true;
        }
    }

    /// The folders set on the source by this sync (for a mount to drop its cached
    /// attributes).
    pub(crate) fn set_on_source(self) -> Vec<RelPath> {
        self.set_on_source
    }

    /// Gives each folder changed so far its time, deepest first: the other side's where
    /// only one side changed, else the later of the two as they were before the sync. Done
    /// at the end of each round, right before its last commit (whose flush then covers
    /// them, and a remote side gets them in the same round trip as the flush): a later
    /// round that changes a folder again sets all of them again, from the same times before
    /// the sync. A folder that cannot take a time is logged and left as it is. The target's
    /// are announced to its watcher (`echoes`) first.
    pub(crate) fn apply(&mut self, roots: [&dyn SideRoot; 2], echoes: Option<&Echoes>) -> Setting {
        if !std::mem::take(&mut self.dirty) {
            return Setting::default();
        }
        // The times before the sync serve only a folder both sides changed: else a remote
        // side's answer is not waited for, and the times set go out at once, with the
        // flush after them (a file propagated: one round trip, not two).
        if self.changed.values().any(|c| *c == [true, true]) {
            self.take_answers();
        }
        let mut folders: Vec<_> = self.changed.iter().map(|(f, c)| (f.clone(), *c)).collect();
        folders.sort_by_key(|(f, _)| std::cmp::Reverse(f.components().count()));
        // The other side's time now, where only one side changed (one request per side).
        let only = |k: usize| move |c: &[bool; 2]| c[k] && !c[1 - k];
        let now_of = |k: usize, changed_alone: &dyn Fn(&[bool; 2]) -> bool| {
            let ask: Vec<RelPath> = folders
                .iter()
                .filter(|(_, c)| changed_alone(c))
                .map(|(f, _)| f.clone())
                .collect();
            let times = roots[k].dir_mtimes(&ask);
            ask.into_iter().zip(times).collect::<HashMap<_, _>>()
        };
        let now = [now_of(0, &only(1)), now_of(1, &only(0))];
        let mut sets: [Vec<(RelPath, i64)>; 2] = Default::default();
        for (folder, changed) in &folders {
            let before = self.before.get(folder).copied().unwrap_or_default();
            let want = match changed {
                [true, true] => before[0].max(before[1]),
                [true, false] => now[1].get(folder).copied().flatten(),
                [false, true] => now[0].get(folder).copied().flatten(),
                [false, false] => None,
            };
            let Some(want) = want else { continue };
            for side in [Side::Source, Side::Target] {
                if changed[slot(side)] {
                    sets[slot(side)].push((folder.clone(), want));
                }
            }
        }
        let [src, tgt] = sets.map(|list| {
            let folders: Vec<RelPath> = list.iter().map(|(f, _)| f.clone()).collect();
            (folders, list)
        });
        // A remote target's watcher is the agent's, told by the agent itself.
        let echoes = echoes.filter(|_| roots[1].local().is_some());
        if let Some(e) = echoes {
            tgt.0.iter().for_each(|f| e.times(f));
        }
        let later = |k: usize, list: &[(RelPath, i64)]| roots[k].set_dir_mtimes_later(list);
        Setting([(later(0, &src.1), src.0), (later(1, &tgt.1), tgt.0)])
    }

    /// The answers of the times set (`apply`), taken once the commit after them was sent:
    /// failures logged, the folders set on the source noted, the target's announcements of
    /// times not set forgotten.
    pub(crate) fn settle(&mut self, setting: Setting, echoes: Option<&Echoes>) {
        let mut failed = 0usize;
        for (side, (answers, folders)) in [Side::Source, Side::Target].into_iter().zip(setting.0) {
            for (folder, r) in folders.into_iter().zip(answers()) {
                if let (Side::Target, Some(e), Ok(false) | Err(_)) = (side, echoes, &r) {
                    e.forget_times(&folder);
                }
                match r {
                    Ok(true) if side == Side::Source => self.set_on_source.push(folder),
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
    }
}
