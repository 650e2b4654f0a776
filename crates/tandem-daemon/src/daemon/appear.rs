//! `on-appear PATH` schedules: a run when PATH appears, a folder created or a file system
//! mounted on it (a removable disk plugged in, a network share attached). What is there
//! when the daemon starts, or when the schedule is added, is taken as it is: only a change
//! starts a run. A file system going away from the path starts nothing.

use std::path::{Path, PathBuf};

use tandem_task::Schedule;

use super::Daemon;

/// What is at an `on-appear` path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Presence {
    dev: u64,
    ino: u64,
    /// A mount point: another file system than the folder above, or listed as one.
    mounted: bool,
}

impl Presence {
    pub fn of(p: &Path) -> Option<Presence> {
        let st = rustix::fs::stat(p).ok()?;
        let parent_dev = p
            .parent()
            .and_then(|d| rustix::fs::stat(d).ok())
            .map(|s| tandem_fs::dev_of(&s));
        let mounted = parent_dev != Some(tandem_fs::dev_of(&st))
            || tandem_fs::read_mountinfo().iter().any(|l| l.point == p);
        Some(Presence {
            dev: tandem_fs::dev_of(&st),
            ino: st.st_ino,
            mounted,
        })
    }
}

/// Whether going from `old` to `new` is the path appearing: there now and not before, or
/// a file system mounted where a plain folder was.
fn appeared(old: Option<Presence>, new: Option<Presence>) -> bool {
    match (old, new) {
        (None, Some(_)) => true,
        (Some(o), Some(n)) => n != o && n.mounted,
        _ => false,
    }
}

/// The `on-appear` paths of a task's schedules.
pub(super) fn paths_of(schedules: &[Schedule]) -> Vec<PathBuf> {
    schedules
        .iter()
        .filter_map(|s| match s {
            Schedule::OnAppear(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

impl Daemon {
    /// Every `on-appear` path of every task, for the watcher.
    pub(super) fn appear_paths(&self) -> Vec<PathBuf> {
        let mut all: Vec<PathBuf> = self
            .slots
            .values()
            .flat_map(|s| s.appear.iter().map(|(p, _)| p.clone()))
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// Looks at every `on-appear` path; a task whose path appeared is started.
    pub(super) fn check_appeared(&mut self) {
        let mut due = Vec::new();
        for (name, slot) in &mut self.slots {
            for (path, seen) in &mut slot.appear {
                let now = Presence::of(path);
                if appeared(*seen, now) {
                    due.push((name.clone(), path.clone()));
                }
                *seen = now;
            }
        }
        for (name, path) in due {
            super::note(&name, &format!("{} appeared", path.display()));
            self.start(&name, "on-appear");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appearing_is_a_path_coming_or_a_file_system_mounted_on_it() {
        let dir = |ino| Presence {
            dev: 1,
            ino,
            mounted: false,
        };
        let disk = Presence {
            dev: 9,
            ino: 2,
            mounted: true,
        };
        assert!(appeared(None, Some(dir(5))), "a folder created");
        assert!(appeared(Some(dir(5)), Some(disk)), "a disk mounted on it");
        assert!(!appeared(Some(disk), Some(dir(5))), "the disk unmounted");
        assert!(!appeared(Some(dir(5)), None), "the folder removed");
        assert!(!appeared(Some(dir(5)), Some(dir(5))), "nothing changed");
        assert!(!appeared(None, None));
        assert!(
            !appeared(Some(dir(5)), Some(dir(6))),
            "a folder replaced by a folder"
        );
    }
}
