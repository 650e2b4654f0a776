//! The target watcher of a mounted session: turns the target's inotify events (through the
//! `notify` crate) into paths to look at again. Events are hints, never decisions: every
//! hinted path goes through scan → reconcile → apply, so the replicator's own writes to the
//! target, seen here too, are re-checked, found equal to the baseline, and cost nothing
//! more (no echo).

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crossbeam_channel::Sender;
use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind};
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
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<Event>| match res {
                Ok(ev) => {
                    for h in hints_of(&base, &ev) {
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

fn hints_of(base: &Path, ev: &Event) -> Vec<TargetHint> {
    if ev.need_rescan() {
        return vec![TargetHint::Rescan(
            "the target's event queue overflowed".to_string(),
        )];
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
