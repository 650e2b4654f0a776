//! The target watcher of a mounted session: turns the target's inotify events (through the
//! `notify` crate) into paths to look at again. Events are hints, never decisions: every
//! hinted path goes through scan → reconcile → apply.
//!
//! The replicator's own writes come back here too. The commonest, a copy renamed from its
//! temporary name into place, is recognised by the rename itself (its other end is a
//! tandem temporary) and dropped: anything a program does to that path afterwards has
//! events of its own. Other echoes (a folder made, a mode set, the old file of an
//! exchange leaving) are re-checked, found equal to the baseline, and change nothing.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crossbeam_channel::Sender;
use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tandem_core::RelPath;

/// What the watcher tells the replicator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetHint {
    /// Look at this path again; below it too when `deep` (a directory that appeared: files
    /// created in it before its watch was added have no events of their own).
    Changed { path: RelPath, deep: bool },
    /// A file is being written: wait for `Closed` (or a quiet while) before copying it.
    Writing(RelPath),
    /// The last writer closed the file.
    Closed(RelPath),
    /// Events were lost (the kernel queue overflowed, a watch could not be added): the
    /// whole target must be rescanned.
    Rescan(String),
}

/// Watches a target tree for as long as it lives.
pub struct TargetWatcher {
    _watcher: RecommendedWatcher,
}

impl TargetWatcher {
    /// Starts watching `root` recursively; hints go to `tx`. Fails when the tree cannot be
    /// watched at all (the caller falls back to periodic rescans); a watch limit reached
    /// part way is reported as a `Rescan` hint and the watcher keeps what it has.
    pub fn start(root: &Path, tx: Sender<TargetHint>) -> notify::Result<TargetWatcher> {
        let base = root.to_path_buf();
        let handler_tx = tx.clone();
        let mut renames = OurRenames::default();
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<Event>| match res {
                Ok(ev) => {
                    for h in hints_of(&base, &ev, &mut renames) {
                        let _ = handler_tx.send(h);
                    }
                }
                Err(e) => {
                    let _ = handler_tx.send(TargetHint::Rescan(format!("watcher: {e}")));
                }
            })?;
        if let Err(e) = watcher.watch(root, RecursiveMode::Recursive) {
            if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
                let _ = tx.send(TargetHint::Rescan(format!(
                    "the inotify watch limit was reached ({e}); raise fs.inotify.max_user_watches"
                )));
            } else {
                return Err(e);
            }
        }
        Ok(TargetWatcher { _watcher: watcher })
    }
}

/// Renames whose source was one of tandem's temporary files, by inotify cookie: the
/// arriving half of such a rename is tandem installing a copy.
#[derive(Default)]
struct OurRenames {
    recent: std::collections::VecDeque<usize>,
}

impl OurRenames {
    /// Both halves of a rename come from one system call, back to back: a few cookies
    /// suffice.
    const KEPT: usize = 16;

    /// True for an event that only echoes tandem's own rename into place.
    fn is_echo(&mut self, base: &Path, ev: &Event) -> bool {
        let EventKind::Modify(ModifyKind::Name(mode)) = ev.kind else {
            return false;
        };
        let ours_at = |i: usize| {
            ev.paths
                .get(i)
                .and_then(|p| relative(base, p))
                .is_some_and(|p| ours(&p))
        };
        match (mode, ev.tracker()) {
            (RenameMode::From, Some(cookie)) if ours_at(0) => {
                if self.recent.len() == Self::KEPT {
                    self.recent.pop_front();
                }
                self.recent.push_back(cookie);
                false
            }
            (RenameMode::To, Some(cookie)) => self.recent.contains(&cookie),
            // [from, to]: from a temporary into place, or (an exchange's second half, a
            // delete into the trash) from a path into tandem's own: the path's own half
            // (`From`) is hinted already when it left.
            (RenameMode::Both, _) => ours_at(0) || ours_at(1),
            _ => false,
        }
    }
}

fn hints_of(base: &Path, ev: &Event, renames: &mut OurRenames) -> Vec<TargetHint> {
    if ev.need_rescan() {
        return vec![TargetHint::Rescan(
            "the target's event queue overflowed".to_string(),
        )];
    }
    if renames.is_echo(base, ev) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for p in &ev.paths {
        let Some(path) = relative(base, p) else {
            continue;
        };
        if ours(&path) {
            continue;
        }
        let hint = match ev.kind {
            // Opens and read-only closes change nothing (and the replicator reads the
            // target too).
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => TargetHint::Closed(path),
            EventKind::Access(_) => continue,
            EventKind::Create(CreateKind::File) | EventKind::Modify(ModifyKind::Data(_)) => {
                TargetHint::Writing(path)
            }
            EventKind::Modify(ModifyKind::Metadata(_)) | EventKind::Remove(_) => {
                TargetHint::Changed { path, deep: false }
            }
            // Directories created, anything renamed or moved in, and whatever else: read
            // below too.
            _ => TargetHint::Changed { path, deep: true },
        };
        out.push(hint);
    }
    out
}

fn relative(base: &Path, p: &Path) -> Option<RelPath> {
    let rest = p.strip_prefix(base).ok()?;
    RelPath::new(rest.as_os_str().as_bytes()).ok()
}

/// tandem's own files in a root: its trash and its temporary files.
fn ours(path: &RelPath) -> bool {
    path.components().next() == Some(&b".tandem"[..])
        || path.file_name().starts_with(b".tandem-tmp.")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Every hint the watcher gives within a short while after `act`.
    fn hints_after(act: impl FnOnce(&Path)) -> Vec<TargetHint> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("old.txt"), "old").unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let _w = TargetWatcher::start(dir.path(), tx).unwrap();
        act(dir.path());
        let mut out = Vec::new();
        let until = Instant::now() + Duration::from_millis(300);
        while let Ok(h) = rx.recv_deadline(until) {
            out.push(h);
        }
        out
    }

    fn names(hints: &[TargetHint]) -> Vec<String> {
        hints
            .iter()
            .filter_map(|h| match h {
                TargetHint::Changed { path, .. }
                | TargetHint::Writing(path)
                | TargetHint::Closed(path) => Some(path.escaped().to_string()),
                TargetHint::Rescan(_) => None,
            })
            .collect()
    }

    #[test]
    fn a_copy_renamed_into_place_is_not_hinted() {
        let hints = hints_after(|d| {
            std::fs::write(d.join(".tandem-tmp.1"), "copied").unwrap();
            std::fs::rename(d.join(".tandem-tmp.1"), d.join("new.txt")).unwrap();
        });
        assert!(names(&hints).is_empty(), "{hints:?}");
    }

    #[test]
    fn a_program_renaming_into_place_is_hinted() {
        let hints = hints_after(|d| {
            std::fs::write(d.join(".save-1"), "saved").unwrap();
            std::fs::rename(d.join(".save-1"), d.join("new.txt")).unwrap();
        });
        assert!(names(&hints).contains(&"new.txt".to_string()), "{hints:?}");
    }

    #[test]
    fn a_program_changing_the_file_right_after_tandem_installed_it_is_hinted() {
        let hints = hints_after(|d| {
            std::fs::write(d.join(".tandem-tmp.1"), "copied").unwrap();
            std::fs::rename(d.join(".tandem-tmp.1"), d.join("old.txt")).unwrap();
            std::fs::write(d.join("old.txt"), "edited").unwrap();
        });
        assert!(names(&hints).contains(&"old.txt".to_string()), "{hints:?}");
    }

    #[test]
    fn an_exchange_into_place_is_hinted_only_for_the_file_that_left() {
        let hints = hints_after(|d| {
            use rustix::fs::{renameat_with, RenameFlags, CWD};
            std::fs::write(d.join(".tandem-tmp.1"), "copied").unwrap();
            renameat_with(
                CWD,
                d.join(".tandem-tmp.1"),
                CWD,
                d.join("old.txt"),
                RenameFlags::EXCHANGE,
            )
            .unwrap();
        });
        // The old file leaving its name is hinted (re-checked, harmless); the copy
        // arriving is not.
        let n = names(&hints);
        assert_eq!(n, vec!["old.txt".to_string()], "{hints:?}");
    }
}
