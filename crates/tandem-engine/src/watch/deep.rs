//! Watching folders too deep to be named: inotify takes a whole path of at most PATH_MAX
//! bytes, so `notify` cannot watch a target folder whose path is longer (a deep tree of
//! long names), and says nothing about it. Each such folder, where the tree grows past the
//! limit, gets a foothold: a descriptor opened beneath the target root (confined, as every
//! access), watched through its short name `/proc/self/fd/N`, below which `notify` goes on
//! as usual (and the next foothold is added where that one runs out). Events named below a
//! foothold are translated back to the folder's path (`Bases`).
//!
//! Footholds are added by a thread of their own, as `notify` cannot be asked to watch from
//! inside its event handler: once at start for the folders already there, then for each
//! folder that arrives beyond reach. A folder renamed after its foothold was added keeps
//! being watched (a watch follows the folder) and its events are named by its old path,
//! which the watcher maps to the new one as it does for `notify`'s own watches; a deleted
//! one's foothold is dropped.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use notify::event::{CreateKind, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tandem_core::RelPath;
use tandem_fs::os::fs::{Mode, OFlags};
use tandem_fs::os::OwnedFd;
use tandem_fs::Root;

use super::{ours, TargetHint};

/// The longest path inotify takes: PATH_MAX with its NUL.
const WATCH_PATH_MAX: usize = 4095;

/// How long after a folder arrived its footholds are looked for: `notify` adds its own
/// watches right after reporting it, within this.
const SETTLE: Duration = Duration::from_millis(100);

/// Where the paths `notify` gives start: the target root, and the footholds (each a short
/// `/proc/self/fd/N` standing for a folder's relative path).
pub(super) struct Bases {
    /// (the path events are named by, the folder it stands for); the root first.
    list: Vec<(PathBuf, RelPath)>,
}

impl Bases {
    pub(super) fn at(root: &Path) -> Bases {
        Bases {
            list: vec![(root.to_path_buf(), RelPath::root())],
        }
    }

    /// The path relative to the target root that an event's path names.
    pub(super) fn relative(&self, p: &Path) -> Option<RelPath> {
        // Footholds are pushed after the root and never nest by name: the last match is
        // the only one below the root that can match at all.
        let (rest, rel) = self
            .list
            .iter()
            .rev()
            .find_map(|(base, rel)| p.strip_prefix(base).ok().map(|rest| (rest, rel)))?;
        let rest = &*tandem_core::path_bytes(rest);
        if rest.is_empty() {
            return Some(rel.clone());
        }
        if rel.is_root() {
            return RelPath::new(rest).ok();
        }
        let mut bytes = rel.as_bytes().to_vec();
        bytes.push(b'/');
        bytes.extend_from_slice(rest);
        RelPath::new(bytes).ok()
    }

    /// The shortest relative path below `rel`'s deepest base that this base cannot watch.
    fn limit_for(&self, rel: &RelPath) -> usize {
        let (base, at) = self
            .list
            .iter()
            .filter(|(_, at)| rel.starts_with(at))
            .max_by_key(|(_, at)| at.as_bytes().len())
            .unwrap_or(&self.list[0]);
        // `base/rest` fits when `rest` is at most WATCH_PATH_MAX - len(base) - 1 bytes.
        let sep = usize::from(!at.is_root());
        let reach = WATCH_PATH_MAX.saturating_sub(base.as_os_str().len() + 1);
        at.as_bytes().len() + sep + reach + 1
    }

    fn remove(&mut self, path: &Path) {
        self.list.retain(|(b, _)| b != path);
    }
}

/// A folder an event brings, which may lie beyond reach or hold folders that do: one made
/// or moved in. Not only the long ones: folders made in a quick chain (`mkdir -p`, an untar,
/// tandem's own replication) are watched by `notify` as it walks each new one, after the
/// fact, and the walk drops those beyond reach without an event of their own.
pub(super) fn arrived(bases: &Bases, ev: &Event) -> Option<RelPath> {
    let arrived = matches!(
        ev.kind,
        EventKind::Create(CreateKind::Folder)
            | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
    );
    let rel = bases
        .relative(ev.paths.last()?)
        .filter(|r| arrived && !ours(r))?;
    Some(rel)
}

/// Adds footholds, on its own thread, until `stop` is dropped.
pub(super) struct Footholds {
    root: Root,
    watcher: Arc<Mutex<RecommendedWatcher>>,
    bases: Arc<Mutex<Bases>>,
    held: Vec<(PathBuf, OwnedFd)>,
    /// Where a new foothold's folder is hinted: whatever was written there before it was
    /// watched has no event of its own.
    hints: Sender<TargetHint>,
}

impl Footholds {
    pub(super) fn spawn(
        root: Root,
        watcher: Arc<Mutex<RecommendedWatcher>>,
        bases: Arc<Mutex<Bases>>,
        requests: Receiver<RelPath>,
        stop: Receiver<()>,
        hints: Sender<TargetHint>,
    ) {
        let mut f = Footholds {
            root,
            watcher,
            bases,
            held: Vec::new(),
            hints,
        };
        std::thread::spawn(move || {
            f.reach(&RelPath::root());
            loop {
                crossbeam_channel::select! {
                    recv(requests) -> r => match r {
                        Ok(first) => f.reach_all(first, &requests),
                        Err(_) => break,
                    },
                    recv(stop) -> _ => break,
                }
            }
        });
    }

    /// Reaches below `first` and the folders that arrive with it, once `notify` has walked
    /// them (`SETTLE` later): a folder made beyond reach after that walk has a watched
    /// parent, so an event, and a request of its own.
    fn reach_all(&mut self, first: RelPath, requests: &Receiver<RelPath>) {
        let mut batch = vec![first];
        let until = Instant::now() + SETTLE;
        while let Ok(r) = requests.recv_deadline(until) {
            batch.push(r);
        }
        batch.sort();
        batch.dedup_by(|later, earlier| later.starts_with(earlier));
        self.prune();
        for dir in &batch {
            self.reach(dir);
        }
    }

    /// Footholds for the folders at or below `start` beyond the reach of its base, and
    /// below those, and so on.
    fn reach(&mut self, start: &RelPath) {
        let limit = lock(&self.bases).limit_for(start);
        for dir in tandem_fs::dirs_reaching(&self.root, start, limit) {
            if self.hold(&dir) {
                self.reach(&dir);
            }
        }
    }

    /// Watches `dir` through a descriptor of its own; false if it cannot be.
    fn hold(&mut self, dir: &RelPath) -> bool {
        if lock(&self.bases).list.iter().any(|(_, at)| at == dir) {
            return false;
        }
        let fd = match self.root.open_beneath(
            dir,
            tandem_fs::O_PATH | OFlags::DIRECTORY,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) => {
                tracing::warn!(path = %dir, error = %e, "a target folder too deep to watch by its path cannot be opened; changes made there are found by the periodic rescan");
                return false;
            }
        };
        let path = match tandem_fs::fd_path(&fd) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(path = %dir, error = %e, "a target folder too deep to watch by its path has no other name; changes made there are found by the periodic rescan");
                return false;
            }
        };
        // Named before it is watched, so that its first events are translated.
        lock(&self.bases).list.push((path.clone(), dir.clone()));
        let watched = lock(&self.watcher).watch(&path, RecursiveMode::Recursive);
        if let Err(e) = watched {
            lock(&self.bases).remove(&path);
            tracing::warn!(path = %dir, error = %e, "cannot watch a target folder too deep to watch by its path; changes made there are found by the periodic rescan");
            return false;
        }
        tracing::debug!(path = %dir, "watching a target folder beyond PATH_MAX through its descriptor");
        self.held.push((path, fd));
        let _ = self.hints.send(TargetHint::Again(dir.clone()));
        true
    }

    /// Lets go of the footholds of folders that were deleted.
    fn prune(&mut self) {
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|(_, fd)| tandem_fs::os::fs::fstat(fd).is_ok_and(|st| st.st_nlink == 0));
        self.held = kept;
        for (path, _fd) in gone {
            let _ = lock(&self.watcher).unwatch(&path);
            lock(&self.bases).remove(&path);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
