//! The target watcher of a mounted session: turns the target's inotify events (through the
//! `notify` crate) into paths to look at again. Events are hints, never decisions: every
//! hinted path goes through scan → reconcile → apply.
//!
//! The replicator's own writes come back here too. The commonest, a copy renamed from its
//! temporary name into place, is recognised by the rename itself (its other end is a
//! tandem temporary) and dropped: anything a program does to that path afterwards has
//! events of its own. A new file tandem linked in, a folder it made and a folder time it
//! set are announced beforehand (`Echoes`) and dropped; a rename it replayed is announced
//! and re-checked without its content, which has echoes of its own. Other echoes (a mode
//! set, the old file of an exchange leaving) are re-checked, found equal to the baseline,
//! and change nothing.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RemoveKind, RenameMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tandem_core::RelPath;
use tandem_fs::Root;

use deep::{Bases, Footholds};

mod deep;

/// What the watcher tells the replicator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetHint {
    /// Look at this path again; below it too when `deep` (a directory that appeared: files
    /// created in it before its watch was added have no events of their own).
    Changed { path: RelPath, deep: bool },
    /// A program removed this path (a folder when `dir`) in the target: a deletion the
    /// delete brake counts (a rename never is one). tandem's own removals are not told so.
    Removed { path: RelPath, dir: bool },
    /// A program moved this path out of the target (a rename whose other end is not in the
    /// tree: `mv TGT/dir /elsewhere`): gone with everything below it, which no event names.
    /// Deletions the delete brake counts, like the removals of an `rm -rf` there.
    Left(RelPath),
    /// A file is being written: wait for `Closed` (or a quiet while) before copying it.
    Writing(RelPath),
    /// The last writer closed the file.
    Closed(RelPath),
    /// Read below this path again once the watcher has caught up: a folder renamed or
    /// made in the target, whose watches `notify` (re)adds only after reporting it, so
    /// that a file written there in between has no event of its own.
    Again(RelPath),
    /// Events were lost (the kernel queue overflowed, a watch could not be added): the
    /// whole target must be rescanned.
    Rescan(String),
}

/// Watches a target tree for as long as it lives.
pub struct TargetWatcher {
    _watcher: Arc<Mutex<RecommendedWatcher>>,
    /// Dropped with the watcher: stops the thread that adds footholds (`deep`).
    _stop: Sender<()>,
}

impl TargetWatcher {
    /// Starts watching `root` recursively; hints go to `tx`. Fails when the tree cannot be
    /// watched at all (the caller falls back to periodic rescans); a watch limit reached
    /// part way is reported as a `Rescan` hint and the watcher keeps what it has.
    /// `echoes` names the directories and renames tandem is about to make there. Folders
    /// whose paths are too long for inotify are watched through descriptors (`deep`).
    pub fn start(
        root: &Path,
        tx: Sender<TargetHint>,
        echoes: Arc<Echoes>,
    ) -> notify::Result<TargetWatcher> {
        let fd_root = Root::open(root).map_err(notify::Error::io)?;
        let bases = Arc::new(Mutex::new(Bases::at(root)));
        let (reach_tx, reach_rx) = crossbeam_channel::unbounded();
        let handler_tx = tx.clone();
        let handler_bases = Arc::clone(&bases);
        let mut renames = OurRenames::default();
        let moves_tx = Moves::spawn(tx.clone()).map_err(notify::Error::io)?;
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<Event>| match res {
                Ok(ev) => {
                    let bases = handler_bases.lock().unwrap_or_else(|p| p.into_inner());
                    for h in hints_of(&bases, &ev, &mut renames, &echoes) {
                        let _ = handler_tx.send(h);
                    }
                    for m in renames.moves.drain(..) {
                        let _ = moves_tx.send(m);
                    }
                    if let Some(dir) = deep::arrived(&bases, &ev) {
                        let _ = reach_tx.send(dir);
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
        let watcher = Arc::new(Mutex::new(watcher));
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(0);
        Footholds::spawn(fd_root, Arc::clone(&watcher), bases, reach_rx, stop_rx, tx);
        Ok(TargetWatcher {
            _watcher: watcher,
            _stop: stop_tx,
        })
    }
}

/// Renames whose source was one of tandem's temporary files, by inotify cookie: the
/// arriving half of such a rename is tandem installing a copy.
#[derive(Default)]
struct OurRenames {
    recent: std::collections::VecDeque<usize>,
    /// Folders renamed in the target (by anyone), oldest first: the kernel keeps watching a
    /// renamed folder, but `notify` goes on naming its events by the old path.
    folders: VecDeque<(RelPath, RelPath)>,
    /// The halves of programs' renames seen by the last event, for `Moves` to pair.
    moves: Vec<Move>,
}

/// One half of a rename, as `Moves` pairs them.
#[derive(Debug)]
enum Move {
    /// A program's rename (inotify cookie `cookie`) took `path` away from its name; `at`
    /// is the path the event named.
    Left {
        cookie: usize,
        path: RelPath,
        at: std::path::PathBuf,
    },
    /// The other half of rename `cookie` arrived in the tree.
    Arrived(usize),
    /// A watched folder was renamed (its own watch's event, after both halves): told by
    /// the halves already when it left its name for good.
    SelfMoved(RelPath),
}

/// Pairs the halves of renames: a path that left its name and whose other half does not
/// arrive is told `TargetHint::Left` (moved out of the tree); one whose other half arrives
/// is a rename within the tree, re-checked (`Changed`) like any. On its own thread: the
/// other half may come in the next read of the inotify queue, and `notify` calls the
/// handler once per event, never after the last of a read.
struct Moves;

impl Moves {
    /// Both halves of a rename are queued by one system call, back to back: far less than
    /// this apart, even on a loaded machine.
    const ARRIVAL_WAIT: Duration = Duration::from_millis(200);

    /// Starts the thread; it ends once the returned sender (the watcher's handler) is
    /// dropped.
    fn spawn(hints: Sender<TargetHint>) -> std::io::Result<Sender<Move>> {
        let (tx, rx) = crossbeam_channel::unbounded();
        std::thread::Builder::new()
            .name("tandem-watch-moves".into())
            .spawn(move || Moves::pair(&rx, &hints))?;
        Ok(tx)
    }

    fn pair(rx: &crossbeam_channel::Receiver<Move>, hints: &Sender<TargetHint>) {
        let mut waiting: VecDeque<(usize, RelPath, std::path::PathBuf, Instant)> = VecDeque::new();
        loop {
            let wait = waiting.front().map_or(Duration::from_secs(3600), |w| {
                (w.3 + Self::ARRIVAL_WAIT).saturating_duration_since(Instant::now())
            });
            match rx.recv_timeout(wait) {
                Ok(Move::Left { cookie, path, at }) => {
                    waiting.push_back((cookie, path, at, Instant::now()));
                }
                Ok(Move::Arrived(cookie)) => {
                    if let Some(i) = waiting.iter().position(|w| w.0 == cookie) {
                        if let Some((_, path, _, _)) = waiting.remove(i) {
                            let _ = hints.send(TargetHint::Changed { path, deep: true });
                        }
                    }
                }
                Ok(Move::SelfMoved(path)) => {
                    if !waiting.iter().any(|w| w.1 == path) {
                        let _ = hints.send(TargetHint::Changed { path, deep: true });
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
            }
            let now = Instant::now();
            while waiting
                .front()
                .is_some_and(|w| now.duration_since(w.3) >= Self::ARRIVAL_WAIT)
            {
                let Some((_, path, at, _)) = waiting.pop_front() else {
                    break;
                };
                // Something at the name again (saved over it), or no telling: re-checked.
                let gone = matches!(std::fs::symlink_metadata(&at),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound);
                let hint = if gone {
                    TargetHint::Left(path)
                } else {
                    TargetHint::Changed { path, deep: true }
                };
                let _ = hints.send(hint);
            }
        }
    }
}

impl OurRenames {
    /// Both halves of a rename come from one system call, back to back: a few cookies
    /// suffice.
    const KEPT: usize = 16;

    /// Folders renamed remembered for `now_at`.
    const FOLDERS_KEPT: usize = 256;

    /// Remembers a rename within the target (its paired event).
    fn note_folder_rename(&mut self, base: &Bases, ev: &Event) {
        let (EventKind::Modify(ModifyKind::Name(RenameMode::Both)), [from, to]) =
            (ev.kind, ev.paths.as_slice())
        else {
            return;
        };
        let (Some(f), Some(t)) = (base.relative(from), base.relative(to)) else {
            return;
        };
        // Files too: by now the new name may be renamed again, so what it was cannot be
        // told, and nothing lies below a file's old name.
        if self.folders.len() == Self::FOLDERS_KEPT {
            self.folders.pop_front();
        }
        self.folders.push_back((f, t));
    }

    /// Where an event's path may really be: below a folder renamed since its watch was
    /// added, under the folder's new name (and that one's, if renamed again). A name too
    /// many is harmless: hints are looked at, never acted on blindly.
    fn now_at(&self, path: &RelPath) -> Vec<RelPath> {
        let mut out: Vec<RelPath> = Vec::new();
        let mut cur = path.clone();
        for _ in 0..8 {
            let next = self
                .folders
                .iter()
                .rev()
                .find_map(|(f, t)| cur.is_below(f).then(|| cur.rebase(f, t)).flatten());
            match next {
                Some(n) if n != *path && !out.contains(&n) => {
                    out.push(n.clone());
                    cur = n;
                }
                _ => break,
            }
        }
        out
    }

    /// True for an event that only echoes tandem's own rename into place.
    fn is_echo(&mut self, base: &Bases, ev: &Event) -> bool {
        let EventKind::Modify(ModifyKind::Name(mode)) = ev.kind else {
            return false;
        };
        let ours_at = |i: usize| {
            ev.paths
                .get(i)
                .and_then(|p| base.relative(p))
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

/// Directories tandem is about to create in the target and renames it is about to replay
/// there, announced by the engine before it makes them. Their events would otherwise be
/// deep hints (a new folder might hold files made before its watch was added; a folder
/// moved in brings content with it) and make the next pass read their whole content again,
/// on both sides, though tandem itself put it there. Each announcement matches its event
/// once, for `WINDOW` at most; a rename's event is then re-checked without its content,
/// the others (a folder made, a file linked in, a folder's time set) are dropped.
///
/// What this gives up: a file a program makes in the target inside a folder tandem has just
/// created, before the watcher has added that folder's watch (a window of a few
/// microseconds), is found by the next full rescan instead of at once; so is a program's
/// change of the mode or time of a folder within `WINDOW` of tandem making it or setting its
/// time, when the folder's own watch was not there to tell tandem's change twice.
#[derive(Default)]
pub struct Echoes {
    expected: Mutex<ExpectedEchoes>,
}

#[derive(Default)]
struct ExpectedEchoes {
    mkdirs: HashMap<RelPath, Instant>,
    /// Files linked in under a new name (written unnamed, `O_TMPFILE`).
    files: HashMap<RelPath, Instant>,
    /// Paths removed (a deletion replayed): empty folders, and files, which go to the
    /// trash by a rename whose other half may not be seen (a trash folder just made).
    removed: HashMap<RelPath, Instant>,
    /// Folders whose metadata tandem changes: the mode it gives a folder it made, and the
    /// modification time it sets (`FolderTimes`), each told to the parent's watch and to
    /// the folder's own (when there is one yet). A first sync makes every folder of the
    /// tree and then sets its time. Per folder, the events still to match, and when they
    /// were announced.
    meta: HashMap<RelPath, (u8, Instant)>,
    /// (from, to, when, which of the From / To / Both events were matched).
    renames: VecDeque<(RelPath, RelPath, Instant, [bool; 3])>,
}

impl ExpectedEchoes {
    /// `events` metadata events on the folder `path` to come, from a change made `now`.
    fn expect_meta(&mut self, path: &RelPath, events: u8, now: Instant) {
        if self.meta.len() >= 4096 {
            self.meta
                .retain(|_, (_, at)| now.duration_since(*at) < Echoes::WINDOW);
        }
        self.meta.insert(path.clone(), (events, now));
    }
}

impl Echoes {
    /// Events arrive within milliseconds; an announcement whose change failed (and made no
    /// event) must not stay around to match a program's change later.
    const WINDOW: Duration = Duration::from_secs(2);

    /// tandem is about to create the directory `path` in the target.
    pub fn mkdir(&self, path: &RelPath) {
        Self::expect(&mut self.lock().mkdirs, path);
    }

    /// tandem is about to link a complete new file in at `path` in the target.
    pub fn create(&self, path: &RelPath) {
        Self::expect(&mut self.lock().files, path);
    }

    /// tandem is about to remove `path` (a file, or an empty folder) from the target.
    pub fn remove(&self, path: &RelPath) {
        Self::expect(&mut self.lock().removed, path);
    }

    /// tandem is about to set the modification time of the folder `path` in the target.
    pub fn times(&self, path: &RelPath) {
        let now = Instant::now();
        self.lock().expect_meta(path, 2, now);
    }

    /// The time announced for `path` was not set (already right, or the folder went):
    /// no event will come for it, and a program's change of the folder must not match it.
    pub fn forget_times(&self, path: &RelPath) {
        self.lock().meta.remove(path);
    }

    /// Remembers `path` as announced now; stale announcements go once there are many.
    fn expect(announced: &mut HashMap<RelPath, Instant>, path: &RelPath) {
        let now = Instant::now();
        if announced.len() >= 4096 {
            announced.retain(|_, at| now.duration_since(*at) < Self::WINDOW);
        }
        announced.insert(path.clone(), now);
    }

    /// tandem is about to rename `from` to `to` in the target.
    pub fn rename(&self, from: &RelPath, to: &RelPath) {
        let mut e = self.lock();
        let now = Instant::now();
        while e
            .renames
            .front()
            .is_some_and(|r| now.duration_since(r.2) >= Self::WINDOW)
        {
            e.renames.pop_front();
        }
        e.renames
            .push_back((from.clone(), to.clone(), now, [false; 3]));
    }

    /// The change announced did not happen: no event will come for it.
    pub fn forget(&self, path: &RelPath) {
        let mut e = self.lock();
        e.mkdirs.remove(path);
        e.files.remove(path);
        e.removed.remove(path);
        e.renames.retain(|r| r.0 != *path);
    }

    /// True (once) for the event of a change announced above.
    fn matches(&self, kind: &EventKind, paths: &[RelPath]) -> bool {
        let mut e = self.lock();
        let now = Instant::now();
        let fresh = |at: &Instant| now.duration_since(*at) < Self::WINDOW;
        match (kind, paths) {
            (EventKind::Create(CreateKind::Folder), [p]) => {
                let ours = e.mkdirs.remove(p).is_some_and(|at| fresh(&at));
                if ours {
                    // Its mode, set right after (it is made 0700): told to the parent's
                    // watch, and to its own if `notify` has added it by then.
                    e.expect_meta(p, 2, now);
                }
                ours
            }
            (EventKind::Create(CreateKind::File), [p]) => {
                e.files.remove(p).is_some_and(|at| fresh(&at))
            }
            (EventKind::Modify(ModifyKind::Metadata(_)), [p]) => match e.meta.get_mut(p) {
                Some((left, at)) if fresh(at) => {
                    *left -= 1;
                    if *left == 0 {
                        e.meta.remove(p);
                    }
                    true
                }
                _ => false,
            },
            // Told twice (by its parent and by its own watch): matched for the window.
            (EventKind::Remove(_), [p]) => e.removed.get(p).is_some_and(fresh),
            // A file tandem moves to the trash leaving its name.
            (EventKind::Modify(ModifyKind::Name(RenameMode::From)), [p])
                if e.removed.get(p).is_some_and(fresh) =>
            {
                true
            }
            (EventKind::Modify(ModifyKind::Name(mode)), _) => {
                // Which event of the rename this is, and the ends it names.
                let (slot, from, to) = match (mode, paths) {
                    (RenameMode::From, [p]) => (0, Some(p), None),
                    (RenameMode::To, [q]) => (1, None, Some(q)),
                    (RenameMode::Both, [p, q]) => (2, Some(p), Some(q)),
                    _ => return false,
                };
                let found = e.renames.iter_mut().find(|r| {
                    !r.3[slot]
                        && fresh(&r.2)
                        && from.is_none_or(|p| *p == r.0)
                        && to.is_none_or(|q| *q == r.1)
                });
                match found {
                    Some(r) => {
                        r.3[slot] = true;
                        true
                    }
                    None => false,
                }
            }
            _ => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ExpectedEchoes> {
        self.expected.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn hints_of(
    base: &Bases,
    ev: &Event,
    renames: &mut OurRenames,
    echoes: &Echoes,
) -> Vec<TargetHint> {
    if ev.need_rescan() {
        return vec![TargetHint::Rescan(
            "the target's event queue overflowed".to_string(),
        )];
    }
    // The arriving half of any rename, tandem's own too: pairs a program's leaving half.
    if let (EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)), Some(c)) =
        (ev.kind, ev.tracker())
    {
        renames.moves.push(Move::Arrived(c));
    }
    if renames.is_echo(base, ev) {
        return Vec::new();
    }
    // Opens and read-only closes, the commonest events (the replicator reads the target
    // too), change nothing.
    if matches!(ev.kind, EventKind::Access(a) if a != AccessKind::Close(AccessMode::Write)) {
        return Vec::new();
    }
    renames.note_folder_rename(base, ev);
    let named: Vec<(&Path, RelPath)> = ev
        .paths
        .iter()
        .filter_map(|p| Some((p.as_path(), base.relative(p)?)))
        .collect();
    let rel: Vec<RelPath> = named.iter().map(|(_, r)| r.clone()).collect();
    let announced = rel.len() == ev.paths.len() && echoes.matches(&ev.kind, &rel);
    if announced
        && matches!(
            ev.kind,
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Metadata(_))
        )
    {
        // A copy tandem linked in complete (like a copy renamed into place), a folder
        // tandem made, a folder time it set: nothing to see. Whatever a program does there
        // has events of its own. (Re-checked, the folders a first sync makes are a second
        // pass over the whole tree's folders, all held at once.)
        return Vec::new();
    }
    let hint_at = |path: RelPath| match ev.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Some(TargetHint::Closed(path)),
        EventKind::Access(_) => None,
        EventKind::Create(CreateKind::File) | EventKind::Modify(ModifyKind::Data(_)) => {
            Some(TargetHint::Writing(path))
        }
        // The target itself gone is no deletion to hold: its sync pauses the target.
        EventKind::Remove(kind) if !announced && !path.is_root() => Some(TargetHint::Removed {
            path,
            dir: kind == RemoveKind::Folder,
        }),
        EventKind::Modify(ModifyKind::Metadata(_)) | EventKind::Remove(_) => {
            Some(TargetHint::Changed { path, deep: false })
        }
        // Directories created, anything renamed or moved in, and whatever else: read below
        // too, unless tandem did it.
        _ => Some(TargetHint::Changed {
            path,
            deep: !announced,
        }),
    };
    let mut out = Vec::new();
    // The events an unnamed file (tandem writes new files with `O_TMPFILE`) has before and
    // after it is linked in; a removal or rename of a file so named is a program's.
    let unnamed_kind = matches!(
        ev.kind,
        EventKind::Access(_) | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Metadata(_))
    );
    // A program's rename taking a path away: moved within the tree or out of it, as its
    // other half tells (`Moves`). Without a cookie: the event of the folder's own watch
    // (`IN_MOVE_SELF`), which comes after both halves.
    let leaving = match (ev.kind, ev.tracker()) {
        (EventKind::Modify(ModifyKind::Name(RenameMode::From)), c) if !announced => Some(c),
        _ => None,
    };
    // Data written to a folder's own path: an unnamed file being written in it (its link
    // into a name is an event of its own), not a change of the folder.
    let data_kind = matches!(
        ev.kind,
        EventKind::Modify(ModifyKind::Data(_))
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
    );
    for (at, path) in named {
        if ours(&path) || (unnamed_kind && unnamed(at, &path)) {
            continue;
        }
        if data_kind && std::fs::symlink_metadata(at).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        // Hinted under the new name too when a folder renamed in the target moved it.
        let moved = renames.now_at(&path);
        match leaving {
            Some(Some(cookie)) => renames.moves.push(Move::Left {
                cookie,
                path,
                at: at.to_path_buf(),
            }),
            Some(None) if !path.is_root() => renames.moves.push(Move::SelfMoved(path)),
            _ => {
                out.extend(std::iter::once(path).chain(moved).filter_map(hint_at));
                continue;
            }
        }
        out.extend(moved.into_iter().filter_map(hint_at));
    }
    // A folder arriving (by rename or made) gets its watches only after this event is
    // handled, and a program may write there in between. tandem's own are left to the
    // periodic rescan (a program would have to write in them within microseconds).
    let arriving = matches!(
        ev.kind,
        EventKind::Create(CreateKind::Folder)
            | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
    );
    if arriving && !announced {
        if let Some(to) = ev.paths.last().and_then(|p| base.relative(p)) {
            if !ours(&to) {
                out.push(TargetHint::Again(to));
            }
        }
    }
    out
}

/// A name inotify gives an unnamed file's events (`#<inode>`, in its folder) that nothing
/// holds. `at` is the event's path (short, if below a foothold).
fn unnamed(at: &Path, path: &RelPath) -> bool {
    let name = path.file_name();
    name.len() > 1
        && name[0] == b'#'
        && name[1..].iter().all(u8::is_ascii_digit)
        && std::fs::symlink_metadata(at).is_err()
}

/// tandem's own files in a root: its trash and its temporary files.
fn ours(path: &RelPath) -> bool {
    path.components().next() == Some(&b".tandem"[..])
        || path.file_name().starts_with(b".tandem-tmp.")
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Every hint the watcher gives within a short while after `act`.
    fn hints_after(act: impl FnOnce(&Path)) -> Vec<TargetHint> {
        hints_after_with(&Arc::default(), act)
    }

    fn hints_after_with(echoes: &Arc<Echoes>, act: impl FnOnce(&Path)) -> Vec<TargetHint> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("old.txt"), "old").unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let _w = TargetWatcher::start(dir.path(), tx, Arc::clone(echoes)).unwrap();
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
                | TargetHint::Removed { path, .. }
                | TargetHint::Writing(path)
                | TargetHint::Closed(path)
                | TargetHint::Again(path)
                | TargetHint::Left(path) => Some(path.escaped().to_string()),
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
            use tandem_fs::os::fs::{renameat_with, RenameFlags, CWD};
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

    fn p(s: &str) -> RelPath {
        RelPath::from_str_lossless(s)
    }

    /// Where the given events below happen.
    const BASE: &str = "/target";

    /// An event as `notify` gives it, of `paths` below `BASE`.
    fn event(kind: EventKind, paths: &[&str]) -> Event {
        paths
            .iter()
            .fold(Event::new(kind), |e, p| e.add_path(Path::new(BASE).join(p)))
    }

    fn deep_ones(hints: &[TargetHint]) -> Vec<String> {
        hints
            .iter()
            .filter_map(|h| match h {
                TargetHint::Changed { path, deep: true } => Some(path.escaped().to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_rename_tandem_announced_is_hinted_without_its_content_and_a_folder_it_made_not_at_all() {
        let echoes = Arc::new(Echoes::default());
        let hints = hints_after_with(&echoes, |d| {
            std::fs::create_dir(d.join("a")).unwrap();
            std::fs::write(d.join("a/f"), "x").unwrap();
            std::thread::sleep(Duration::from_millis(50));
            echoes.mkdir(&p("made"));
            std::fs::create_dir(d.join("made")).unwrap();
            echoes.rename(&p("a"), &p("b"));
            std::fs::rename(d.join("a"), d.join("b")).unwrap();
        });
        // The rename hinted, so re-checked, but not read below.
        let n = names(&hints);
        for want in ["a", "b"] {
            assert!(n.contains(&want.to_string()), "{want}: {hints:?}");
        }
        assert!(!n.contains(&"made".to_string()), "{hints:?}");
        assert_eq!(deep_ones(&hints), vec!["a".to_string()], "{hints:?}");
    }

    /// A first sync makes every folder of the tree, gives it its mode and then sets its
    /// time: metadata events per folder, each a path the next pass would re-check (issue
    /// 21: 120,000 folders of a million files, held at once). Announced, they are dropped;
    /// the same change made by a program, or made after a time announced but not set, is
    /// hinted.
    #[test]
    fn a_folder_time_tandem_set_is_not_hinted_and_a_programs_is() {
        use rustix::fs::{utimensat, AtFlags, Timespec, Timestamps, CWD};
        use std::os::unix::fs::PermissionsExt;
        let echoes = Arc::new(Echoes::default());
        let set_time = |d: &Path, name: &str, secs: i64| {
            let t = Timespec {
                tv_sec: secs,
                tv_nsec: 0,
            };
            let times = Timestamps {
                last_access: t,
                last_modification: t,
            };
            utimensat(CWD, d.join(name), &times, AtFlags::empty()).unwrap();
        };
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for name in ["ours", "theirs", "unset"] {
            std::fs::create_dir(d.join(name)).unwrap();
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let _w = TargetWatcher::start(d, tx, Arc::clone(&echoes)).unwrap();
        echoes.times(&p("ours"));
        set_time(d, "ours", 1_000_000);
        // A folder tandem makes (0700) and then gives its mode, as `tandem_fs::mkdir` does.
        echoes.mkdir(&p("made"));
        std::fs::create_dir(d.join("made")).unwrap();
        std::fs::set_permissions(d.join("made"), std::fs::Permissions::from_mode(0o755)).unwrap();
        echoes.times(&p("unset"));
        echoes.forget_times(&p("unset"));
        set_time(d, "unset", 1_000_000);
        set_time(d, "theirs", 1_000_000);
        let until = Instant::now() + Duration::from_millis(300);
        let hints: Vec<TargetHint> = std::iter::from_fn(|| rx.recv_deadline(until).ok()).collect();
        let changed: Vec<String> = hints
            .iter()
            .filter_map(|h| match h {
                TargetHint::Changed { path, .. } => Some(path.escaped().to_string()),
                _ => None,
            })
            .collect();
        assert!(!changed.contains(&"ours".to_string()), "{hints:?}");
        assert!(!names(&hints).contains(&"made".to_string()), "{hints:?}");
        for want in ["theirs", "unset"] {
            assert!(changed.contains(&want.to_string()), "{want}: {hints:?}");
        }
    }

    #[test]
    fn a_program_doing_the_same_again_is_read_in_full() {
        let echoes = Arc::new(Echoes::default());
        let hints = hints_after_with(&echoes, |d| {
            std::fs::create_dir(d.join("a")).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            echoes.rename(&p("a"), &p("b"));
            std::fs::rename(d.join("a"), d.join("b")).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            // A program moves it back and forth: its own renames, read in full. So is a
            // folder tandem announced but could not make, made later by a program.
            std::fs::rename(d.join("b"), d.join("a")).unwrap();
            std::fs::rename(d.join("a"), d.join("b")).unwrap();
            echoes.mkdir(&p("made"));
            echoes.forget(&p("made"));
            std::fs::create_dir(d.join("made")).unwrap();
        });
        let deep = deep_ones(&hints);
        for want in ["a", "b", "made"] {
            assert!(deep.contains(&want.to_string()), "{want}: {hints:?}");
        }
    }

    /// Seen with real inotify: a write right after a folder was renamed is named by the
    /// folder's old path until the watcher has taken the rename in (or, in a closer race,
    /// not reported at all, which `TargetHint::Again` covers). Given such events, the
    /// hints name the new path too, through chains of renames.
    #[test]
    fn a_change_named_by_a_renamed_folders_old_path_is_hinted_under_its_new_name() {
        use notify::event::DataChange;
        let base = &Bases::at(Path::new(BASE));
        let mut renames = OurRenames::default();
        let echoes = Echoes::default();
        let both = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        hints_of(base, &event(both, &["a", "b"]), &mut renames, &echoes);
        hints_of(base, &event(both, &["b", "c"]), &mut renames, &echoes);
        let data = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        let hints = hints_of(base, &event(data, &["a/f"]), &mut renames, &echoes);
        assert!(hints.contains(&TargetHint::Writing(p("c/f"))), "{hints:?}");
        assert!(hints.contains(&TargetHint::Writing(p("a/f"))), "{hints:?}");
        // Unrelated paths are hinted as they are, once.
        let hints = hints_of(base, &event(data, &["x/f"]), &mut renames, &echoes);
        assert_eq!(hints, vec![TargetHint::Writing(p("x/f"))]);
    }

    /// `notify` adds the watches of a folder renamed or made only after reporting it: a
    /// program's folder is read again later, tandem's own is not.
    #[test]
    fn a_folder_arriving_is_read_again_unless_tandem_made_it() {
        let base = &Bases::at(Path::new(BASE));
        let mut renames = OurRenames::default();
        let echoes = Echoes::default();
        let again = |hints: Vec<TargetHint>| -> Vec<RelPath> {
            hints
                .into_iter()
                .filter_map(|h| match h {
                    TargetHint::Again(p) => Some(p),
                    _ => None,
                })
                .collect()
        };
        let both = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        let to = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        let from = EventKind::Modify(ModifyKind::Name(RenameMode::From));
        let mkdir = EventKind::Create(CreateKind::Folder);
        let mut hints = |kind, paths: &[&str]| {
            again(hints_of(base, &event(kind, paths), &mut renames, &echoes))
        };

        assert_eq!(hints(both, &["a", "b"]), vec![p("b")]);
        assert_eq!(hints(to, &["moved-in"]), vec![p("moved-in")]);
        assert_eq!(hints(mkdir, &["new"]), vec![p("new")]);
        assert!(hints(from, &["gone"]).is_empty());
        let file = EventKind::Create(CreateKind::File);
        assert!(hints(file, &["f"]).is_empty());
        echoes.mkdir(&p("made"));
        echoes.rename(&p("x"), &p("y"));
        assert!(hints(mkdir, &["made"]).is_empty());
        assert!(hints(both, &["x", "y"]).is_empty());
        // Into tandem's own trash: nothing to read.
        assert!(hints(both, &["c", ".tandem/trash/c"]).is_empty());
    }

    /// A new file tandem copies is written unnamed and linked in complete: no temporary
    /// name ever shows in the target, and with the link announced the watcher says
    /// nothing of it. The same link made unannounced (a program) is hinted.
    #[test]
    fn a_new_file_linked_in_complete_is_not_hinted_and_has_no_temporary_name() {
        use tandem_fs::{Durability, Root, Trash};
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("new.txt"), "copied").unwrap();
        std::fs::write(src.path().join("other.txt"), "copied too").unwrap();
        let echoes = Arc::new(Echoes::default());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let copy = |to: &Root, name: &str, announce: &dyn Fn()| {
            let from = Root::open(src.path()).unwrap();
            let rel = p(name);
            let entry = from.stat(&rel).unwrap().unwrap();
            let trash = Trash::new("t");
            tandem_fs::copy(
                &from,
                to,
                &rel,
                &entry,
                None,
                0o644,
                &trash,
                Durability::Batched,
                announce,
            )
            .unwrap();
        };
        let mut raw = None;
        let hints = hints_after_with(&echoes, |d| {
            let seen = Arc::clone(&seen);
            let mut w = notify::recommended_watcher(move |ev: notify::Result<Event>| {
                if let Ok(ev) = ev {
                    seen.lock().unwrap().extend(ev.paths);
                }
            })
            .unwrap();
            w.watch(d, RecursiveMode::Recursive).unwrap();
            raw = Some(w);
            let to = Root::open(d).unwrap();
            copy(&to, "new.txt", &|| echoes.create(&p("new.txt")));
            copy(&to, "other.txt", &|| {});
        });
        assert_eq!(names(&hints), vec!["other.txt".to_string()], "{hints:?}");
        let seen = seen.lock().unwrap();
        assert!(seen.iter().any(|p| p.ends_with("new.txt")), "{seen:?}");
        assert!(
            !seen
                .iter()
                .any(|p| p.to_string_lossy().contains(".tandem-tmp")),
            "{seen:?}"
        );
        drop(raw);
    }

    /// A program's removals are deletions (a folder's told as such); a folder tandem
    /// announced it removes is only re-checked, and a rename is never a deletion.
    #[test]
    fn removals_are_deletions_unless_tandem_announced_them() {
        let echoes = Arc::new(Echoes::default());
        let hints = hints_after_with(&echoes, |d| {
            std::fs::create_dir(d.join("theirs")).unwrap();
            std::fs::create_dir(d.join("ours")).unwrap();
            std::fs::create_dir(d.join("moved")).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            std::fs::remove_file(d.join("old.txt")).unwrap();
            std::fs::remove_dir(d.join("theirs")).unwrap();
            echoes.remove(&p("ours"));
            std::fs::remove_dir(d.join("ours")).unwrap();
            std::fs::rename(d.join("moved"), d.join("there")).unwrap();
        });
        let removed: Vec<(String, bool)> = hints
            .iter()
            .filter_map(|h| match h {
                TargetHint::Removed { path, dir } => Some((path.escaped().to_string(), *dir)),
                _ => None,
            })
            .collect();
        assert!(removed.contains(&("old.txt".into(), false)), "{hints:?}");
        assert!(removed.contains(&("theirs".into(), true)), "{hints:?}");
        assert!(
            removed.iter().all(|(p, _)| p == "old.txt" || p == "theirs"),
            "{hints:?}"
        );
        assert!(names(&hints).contains(&"ours".to_string()), "{hints:?}");
    }

    /// A folder moved out of the watched tree is told as having left (no event names what
    /// it held); one moved within the tree is a rename, re-checked at both ends.
    #[test]
    fn a_folder_moved_out_of_the_tree_has_left_one_moved_within_has_not() {
        let outside = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir_in(outside.path()).unwrap();
        for d in ["out", "within"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
            std::fs::write(dir.path().join(d).join("f"), "x").unwrap();
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let _w = TargetWatcher::start(dir.path(), tx, Arc::default()).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        std::fs::rename(dir.path().join("out"), outside.path().join("moved")).unwrap();
        std::fs::rename(dir.path().join("within"), dir.path().join("renamed")).unwrap();
        let mut hints = Vec::new();
        let until = Instant::now() + Duration::from_secs(1);
        while let Ok(h) = rx.recv_deadline(until) {
            hints.push(h);
        }
        let left: Vec<&TargetHint> = hints
            .iter()
            .filter(|h| matches!(h, TargetHint::Left(_)))
            .collect();
        assert_eq!(left, vec![&TargetHint::Left(p("out"))], "{hints:?}");
        for (path, deep) in [("within", true), ("renamed", true)] {
            let want = TargetHint::Changed {
                path: p(path),
                deep,
            };
            assert!(hints.contains(&want), "{path}: {hints:?}");
        }
        assert!(
            !hints.iter().any(|h| matches!(h,
                TargetHint::Changed { path, .. } | TargetHint::Removed { path, .. }
                    if *path == p("out"))),
            "{hints:?}"
        );
    }

    /// A program's file that happens to be named like an unnamed file's events is not
    /// lost from view when it is removed or renamed away.
    #[test]
    fn a_file_named_like_an_unnamed_one_is_hinted_when_it_goes() {
        let hints = hints_after(|d| {
            std::fs::write(d.join("#123"), "mine").unwrap();
            std::fs::write(d.join("#456"), "mine too").unwrap();
            std::fs::remove_file(d.join("#123")).unwrap();
            std::fs::rename(d.join("#456"), d.join("kept")).unwrap();
        });
        let n = names(&hints);
        for want in ["#123", "#456", "kept"] {
            assert!(n.contains(&want.to_string()), "{want}: {hints:?}");
        }
        // The removal and the rename themselves are hinted, not only the writes before:
        // the removal as a deletion (the brake counts it).
        assert!(
            hints.contains(&TargetHint::Removed {
                path: p("#123"),
                dir: false
            }),
            "{hints:?}"
        );
        assert!(
            hints
                .iter()
                .any(|h| matches!(h, TargetHint::Changed { path, .. } if *path == p("#456"))),
            "{hints:?}"
        );
    }
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod deep_tests {
    use super::*;
    use tandem_fs::os::fs::{mkdirat, openat, Mode, OFlags};
    use tandem_fs::os::OwnedFd;

    const LEVELS: usize = 20;

    fn level(i: usize) -> Vec<u8> {
        let mut n = format!("{i:02}-").into_bytes();
        n.resize(255, b'd');
        n
    }

    /// Makes the levels below `root` that are missing; returns the deepest one's fd and path.
    fn deep_dir(root: &Path) -> (OwnedFd, RelPath) {
        let mut cur =
            tandem_fs::os::fs::open(root, tandem_fs::O_PATH | OFlags::DIRECTORY, Mode::empty())
                .unwrap();
        let mut rel = RelPath::root();
        for i in 0..LEVELS {
            let _ = mkdirat(&cur, level(i).as_slice(), Mode::from_raw_mode(0o755));
            cur = openat(&cur, level(i).as_slice(), tandem_fs::O_PATH, Mode::empty()).unwrap();
            rel = rel.join(&level(i));
        }
        (cur, rel)
    }

    fn write_in(dir: &OwnedFd, name: &str) {
        let fd = openat(
            dir,
            name,
            OFlags::WRONLY | OFlags::CREATE,
            Mode::from_raw_mode(0o644),
        )
        .unwrap();
        tandem_fs::os::io::write(&fd, b"x").unwrap();
    }

    fn closed_within(rx: &crossbeam_channel::Receiver<TargetHint>, want: &RelPath) -> bool {
        let until = Instant::now() + Duration::from_secs(3);
        while let Ok(h) = rx.recv_deadline(until) {
            if h == TargetHint::Closed(want.clone()) {
                return true;
            }
        }
        false
    }

    /// A folder whose path is over PATH_MAX cannot be watched by its path; it is watched
    /// through a descriptor, whether it was there when the watcher started or made after,
    /// and its events are named by its path relative to the root.
    #[test]
    fn folders_beyond_path_max_are_watched_before_and_after_start() {
        let dir = tempfile::tempdir().unwrap();
        let before = dir.path().join("before");
        std::fs::create_dir(&before).unwrap();
        let (old, old_rel) = deep_dir(&before);
        let (tx, rx) = crossbeam_channel::unbounded();
        let _w = TargetWatcher::start(dir.path(), tx, Arc::default()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        write_in(&old, "old.txt");
        let want = RelPath::new([b"before/".as_slice(), old_rel.as_bytes(), b"/old.txt"].concat());
        assert!(
            closed_within(&rx, &want.unwrap()),
            "a file in an old deep folder"
        );

        let after = dir.path().join("after");
        std::fs::create_dir(&after).unwrap();
        let (new, new_rel) = deep_dir(&after);
        std::thread::sleep(Duration::from_millis(300));
        write_in(&new, "new.txt");
        let want = RelPath::new([b"after/".as_slice(), new_rel.as_bytes(), b"/new.txt"].concat());
        assert!(
            closed_within(&rx, &want.unwrap()),
            "a file in a new deep folder"
        );
    }
}
