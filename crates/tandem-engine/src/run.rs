//! One sync of one pair, in rounds: a round scans, plans and applies; steps refused
//! because the disk moved under them are planned again in the next round.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_core::{
    link_copies, reconcile, Action, BaseEntry, BaseTree, Change, ChangeOp, ChangeSink, Conflict,
    Counts, Direction, Filter, FilterError, Kind, LinkGroups, Merge, Merged, Mount, Options,
    RelPath, Resolution, Side,
};
use tandem_fs::{Durability, FsError, Root, Trash};
use tandem_state::{Lock, NewConflict, Pair, StateError, Store};

use crate::folder_times::FolderTimes;
use crate::hashing::fill_hashes;
use crate::roots::{self, RootError};
use crate::side::{copy_between, copy_later, Later, SideRoot, Step};
use crate::spec::{ConflictNote, Event, PathProblem, PlannedStep, Report, Scope, SyncSpec};
use crate::time::{now_ns, stamp};

/// Prints how long each phase of a round took, when `TANDEM_TIMINGS` is set (profiling).
struct PhaseClock {
    on: bool,
    last: Instant,
}

impl PhaseClock {
    fn new() -> PhaseClock {
        PhaseClock {
            on: std::env::var_os("TANDEM_TIMINGS").is_some(),
            last: Instant::now(),
        }
    }

    fn lap(&mut self, phase: &str) {
        if self.on {
            tracing::info!(
                "{phase}: {:.1} ms, {}",
                self.last.elapsed().as_secs_f64() * 1e3,
                memory()
            );
            self.last = Instant::now();
        }
    }
}

/// Resident memory now and at its peak, from `/proc/self/status` (Linux; empty elsewhere).
fn memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    format!("rss {}, peak {}", field("VmRSS:"), field("VmHWM:"))
}

/// `TANDEM_TRACE=1`: every scoped sync's hints and every planned step on stderr (debugging
/// a mount; the mount's log is `STATE_DIR/mount.log`).
pub(crate) fn trace_on() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("TANDEM_TRACE").is_some_and(|v| v == "1"))
}

/// Rounds before a path that keeps changing under us is left for the next run.
const MAX_ROUNDS: usize = 3;
/// `--max-delete` looks at runs deleting more than this many entries: deleting 2 of 3
/// files is a choice, not an accident (an emptied root is caught separately).
const MAX_DELETE_FLOOR: u64 = 10;
/// Why a sync must not delete `deletes` entries (`--max-delete`, `--max-delete-count`), if
/// it must not.
fn too_many_deletes(spec: &SyncSpec, scope: &Scope, deletes: u64, base_len: u64) -> Option<String> {
    if *scope != Scope::All {
        return None;
    }
    if let Some(n) = spec.max_delete_count.filter(|n| deletes > *n) {
        return Some(format!(
            "this sync would delete {deletes} entries (more than --max-delete-count {n}); nothing was changed. Check both folders; if the deletions are intended, run again with a higher --max-delete-count"
        ));
    }
    (deletes > MAX_DELETE_FLOOR && deletes * 100 > u64::from(spec.max_delete_percent) * base_len)
        .then(|| format!(
            "this sync would delete {deletes} of the {base_len} entries synced before (more than --max-delete {}%); nothing was changed. Check both folders; if the deletions are intended, run again with --max-delete 100",
            spec.max_delete_percent
        ))
}

/// A mount's whole-tree reconcile weighs what went missing in the target as the delete
/// brake weighs what the target's watcher sees: more than `limit` deletions to make in the
/// source are taken out of the plan, into `report.braked`, for the brake to hold. Every
/// round plans every path still out of step again: its list is this round's.
fn brake_whole(actions: &mut Vec<Action>, limit: usize, report: &mut Report) {
    report.braked.clear();
    let in_source = |a: &Action| {
        matches!(
            a,
            Action::Delete {
                side: Side::Source,
                ..
            }
        )
    };
    if actions.iter().filter(|a| in_source(a)).count() <= limit {
        return;
    }
    actions.retain(|a| match a {
        Action::Delete {
            side: Side::Source,
            path,
            expect,
        } => {
            report.braked.push((path.clone(), expect.is_dir()));
            false
        }
        _ => true,
    });
}

/// The file data a plan copies, for `Event::Planned`.
fn copy_bytes(actions: &[Action]) -> u64 {
    actions
        .iter()
        .map(|a| match a {
            Action::Copy { src, .. } => src.size,
            _ => 0,
        })
        .sum()
}

/// Baseline commits happen at least this often while applying...
const COMMIT_EVERY: Duration = Duration::from_secs(2);
/// ...and after this many applied steps.
const COMMIT_BATCH: usize = 2000;
/// A copying thread hands its results back once it has this many, or once the oldest has
/// waited `RESULT_WAIT` (so that a big file's result is not held back by the next ones).
const RESULT_BATCH: usize = 64;
const RESULT_WAIT: Duration = Duration::from_millis(5);
/// A first sync applies what is new on one side in batches of this many steps, as its
/// merge decides them: memory for a batch, not for the plan (issue 21).
const STREAM_BATCH: usize = 2048;
/// Copies in flight at once when one side is on another machine: each waits out a round
/// trip, so small files go at most this many a round trip (at 25 ms, 32 capped a first
/// sync of 30,000 small files at 1,280 a second: 23 s, where rsync took 14 s). A thread
/// each on this side; the agent's workers follow (`tandem_remote`'s `workers`).
const REMOTE_IN_FLIGHT: usize = 128;
/// Most copies sent to a remote side ahead of their answers (`Applier::deferred`).
const DEFERRED_MOST: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot open {}: {source}", path.display())]
    Root {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Roots(#[from] RootError),
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error("internal error: the {0} thread panicked")]
    Panicked(&'static str),
    #[error("the state file {} is missing, but {} says this pair was synced before: its state was lost (deleted, moved away, or on a disk that lost it), and syncing the folders as new could bring deleted files back and turn edits into conflict copies, so nothing was changed. Put the state back; or, to sync the folders as new, run `tandem forget {} {}` (it removes the pair's markers) and sync again", state.display(), marker.display(), src.display(), tgt.display())]
    // Boxed paths: an error this rare should not make every `Result` larger (a `PathBuf`
    // is 32 bytes on Windows).
    StateLost {
        state: Box<Path>,
        marker: Box<Path>,
        src: Box<Path>,
        tgt: Box<Path>,
    },
    #[error("cannot read the pair's markers in {0}")]
    Marker(#[from] crate::marker::MarkerError),
    #[error("cannot scan the {side} ({}): {source}", path.display())]
    Scan {
        side: &'static str,
        path: PathBuf,
        source: FsError,
    },
}

/// Runs one sync of the whole pair as `spec` says, reporting progress to `on_event`.
pub fn sync(spec: &SyncSpec, on_event: &dyn Fn(Event)) -> Result<Report, EngineError> {
    Session::open(spec)?.sync(&Scope::All, on_event)
}

/// `sync`, stopped early once `stop` is set (a signal): no step starts after it, the steps
/// done and verified are committed, and the report says `interrupted`; the next run
/// finishes the rest.
pub fn sync_until(
    spec: &SyncSpec,
    stop: &Arc<AtomicBool>,
    on_event: &dyn Fn(Event),
) -> Result<Report, EngineError> {
    let mut session = Session::open(spec)?;
    session.set_stop(Arc::clone(stop));
    session.sync(&Scope::All, on_event)
}

/// Runs one sync of the paths in `scope` only.
pub fn sync_scoped(
    spec: &SyncSpec,
    scope: &Scope,
    on_event: &dyn Fn(Event),
) -> Result<Report, EngineError> {
    Session::open(spec)?.sync(scope, on_event)
}

/// An open pair: the lock held, the state open, both roots open. A mount keeps one for its
/// whole life and syncs the paths its journal names.
pub struct Session {
    spec: SyncSpec,
    store: Store,
    src: Root,
    tgt: Box<dyn SideRoot>,
    filter: Filter,
    hooks: SourceHooks,
    /// Where to announce the folders and renames made in the target (its watcher).
    echoes: Option<Arc<crate::watch::Echoes>>,
    /// The last conflict-copy stamp handed out, and how often it was reused.
    last_stamp: (String, u32),
    /// The target folder this session created (told in the first report).
    created_target: Option<PathBuf>,
    /// A mount's delete brake for a whole-tree reconcile: more deletions than this found
    /// in the target are not applied to the source (`Report::braked`).
    whole_brake: Option<usize>,
    /// Set from outside (a signal): stop between steps, commit what was done.
    stop: Option<Arc<AtomicBool>>,
    /// Both roots carry the pair's marker, as its state records (`marker`).
    marked: bool,
    /// When both trashes were last pruned to the retention (`prune_trash`).
    last_prune: Option<Instant>,
    /// The source's history is recorded in this session's store (a mount's first pair):
    /// versions a crash left unrecorded are adopted into it (`history::adopt_orphans`).
    keeps_history: bool,
    /// Whether each side's file system folds case (source, target), probed once.
    folds_case: Option<[bool; 2]>,
    /// How the target is opened again (`None`: a local folder at its path).
    opener: Option<TargetOpener>,
    _lock: Option<Lock>,
}

/// Opens a session's target again: a remote side connects again.
pub type TargetOpener = Arc<dyn Fn() -> std::io::Result<Box<dyn SideRoot>> + Send + Sync>;

/// How often a session that syncs again and again (a mount's) prunes the trashes: each
/// prune reads both trashes whole.
const PRUNE_EVERY: Duration = Duration::from_secs(30);

/// What a mounted session does after it changed a source path itself (merging a target's
/// change back through the hidden directory fd, which the mount does not see).
#[derive(Clone, Default)]
pub struct SourceHooks {
    /// Drop the kernel's cached entry, attributes and pages of the path.
    pub mount: Option<Arc<dyn Mount>>,
    /// Record the path in the journal, for the other targets of the mount.
    pub journal: Option<Arc<dyn ChangeSink>>,
}

impl SourceHooks {
    fn after_source_write(&self, a: &Action) {
        let (path, to) = match a {
            Action::Rename { from, to, .. } => (from, Some(to)),
            other => (other.path(), None),
        };
        if let Some(m) = &self.mount {
            if let Some(to) = to {
                m.renamed(path, to);
            }
            let mut paths = vec![path.clone()];
            paths.extend(to.cloned());
            m.invalidate(&paths);
        }
        if let Some(j) = &self.journal {
            j.record(Change {
                op: if to.is_some() {
                    ChangeOp::Rename
                } else {
                    ChangeOp::Merged
                },
                path: path.clone(),
                to: to.cloned(),
                pid: std::process::id(),
                uid: 0,
            });
        }
    }
}

/// A session's source, filter and state, opened before its target is joined to them.
struct Prepared {
    spec: SyncSpec,
    src: Root,
    filter: Filter,
    store: Store,
    lock: Option<Lock>,
    marked: bool,
}

impl Prepared {
    /// Opens what a session on `src` works from; `tgt_root`: the target, when it is a
    /// local folder already there (a marker of a lost state is looked for in it).
    fn open(
        spec: &SyncSpec,
        mut src: Root,
        tgt_root: Option<&Root>,
    ) -> Result<Prepared, EngineError> {
        let mut spec = spec.clone();
        spec.options.keep = crate::kept::keep_for_run(spec.options.keep);
        src.set_keep(spec.options.keep);
        let pair = Pair {
            src: spec.src.to_string_lossy().into_owned(),
            tgt: spec.tgt.to_string_lossy().into_owned(),
        };
        let filter = load_filter(&src, &spec)?;
        let has_state = tandem_state::state_exists(&spec.state_dir)?;
        // Only a missing state file means a new pair, and only when neither root was
        // marked by an earlier sync of it.
        if !has_state {
            if let Some(marker) = crate::marker::lost_state_marker(&pair, &src, tgt_root)? {
                return Err(EngineError::StateLost {
                    state: spec.state_dir.join(tandem_state::DB_FILE).into(),
                    marker: marker.into(),
                    src: spec.src.clone().into(),
                    tgt: spec.tgt.clone().into(),
                });
            }
        }
        // A dry run changes nothing, state included: with no state yet it plans against an
        // empty baseline in memory.
        let fresh_dry_run = spec.dry_run && !has_state;
        let lock = if fresh_dry_run || spec.lock_granted {
            None
        } else {
            Some(Lock::acquire(&spec.state_dir)?)
        };
        let store = if fresh_dry_run {
            Store::in_memory(&pair)?
        } else {
            Store::open(&spec.state_dir, &pair)?
        };
        let marked = fresh_dry_run
            || store.meta(crate::marker::META_KEY)? == Some(crate::marker::pair_marker_id(&pair));
        Ok(Prepared {
            spec,
            src,
            filter,
            store,
            lock,
            marked,
        })
    }

    /// The session on this and `tgt` (`None`: a local target still to be created).
    fn with_target(self, tgt: Option<Box<dyn SideRoot>>) -> Result<Session, EngineError> {
        let spec = self.spec;
        let created_target = tgt.is_none().then(|| spec.tgt.clone());
        let tgt = match tgt {
            Some(t) => t,
            None => {
                roots::create_target(&spec.tgt)?;
                let mut tgt = Root::open(&spec.tgt).map_err(|source| EngineError::Root {
                    path: spec.tgt.clone(),
                    source,
                })?;
                tgt.set_keep(spec.options.keep);
                Box::new(tgt)
            }
        };
        Ok(Session {
            spec,
            store: self.store,
            src: self.src,
            tgt,
            filter: self.filter,
            hooks: SourceHooks::default(),
            echoes: None,
            last_stamp: (String::new(), 0),
            created_target,
            whole_brake: None,
            stop: None,
            marked: self.marked,
            last_prune: None,
            keeps_history: false,
            folds_case: None,
            opener: None,
            _lock: self.lock,
        })
    }
}

impl Session {
    pub fn open(spec: &SyncSpec) -> Result<Session, EngineError> {
        let src = Root::open(&spec.src).map_err(|source| EngineError::Root {
            path: spec.src.clone(),
            source,
        })?;
        Session::with_source(spec, src)
    }

    /// Like `open`, with the source root already open: a mount opens it before the mount
    /// hides the folder, and the engine reaches the real files through that fd.
    pub fn with_source(spec: &SyncSpec, src: Root) -> Result<Session, EngineError> {
        // Bad input (an unopenable root, an invalid filter pattern) fails before the state
        // directory is created or locked: nothing is changed.
        let tgt = match Root::open(&spec.tgt) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                refuse_missing_target(spec)?;
                None
            }
            other => {
                let mut tgt = other.map_err(|source| EngineError::Root {
                    path: spec.tgt.clone(),
                    source,
                })?;
                tgt.set_keep(crate::kept::keep_for_run(spec.options.keep));
                Some(Box::new(tgt) as Box<dyn SideRoot>)
            }
        };
        Session::assemble(spec, src, tgt)
    }

    /// A session whose target is `tgt`, already open (a remote side: `tandem-remote`).
    pub fn with_target(spec: &SyncSpec, tgt: Box<dyn SideRoot>) -> Result<Session, EngineError> {
        let src = Root::open(&spec.src).map_err(|source| EngineError::Root {
            path: spec.src.clone(),
            source,
        })?;
        Session::assemble(spec, src, Some(tgt))
    }

    /// A session whose target `open` opens, in a thread while the source, the filter and
    /// the state are opened here: a remote side's connection (ssh, the far side started)
    /// is the longest wait before a run can scan. The target is taken as not local (no
    /// marker of a lost state is looked for in it).
    pub fn with_target_from<E>(
        spec: &SyncSpec,
        open: impl FnOnce() -> Result<Box<dyn SideRoot>, E> + Send,
    ) -> Result<Session, E>
    where
        E: From<EngineError> + Send,
    {
        std::thread::scope(|sc| {
            let opening = sc.spawn(open);
            let prepared = Root::open(&spec.src)
                .map_err(|source| EngineError::Root {
                    path: spec.src.clone(),
                    source,
                })
                .and_then(|src| Prepared::open(spec, src, None));
            let tgt = opening
                .join()
                .unwrap_or_else(|_| Err(EngineError::Panicked("target opener").into()))?;
            Ok(prepared?.with_target(Some(tgt))?)
        })
    }

    /// A session on both roots, already open (a mount with a remote target: the source
    /// opened before the mount hides it).
    pub fn with_roots(
        spec: &SyncSpec,
        src: Root,
        tgt: Box<dyn SideRoot>,
    ) -> Result<Session, EngineError> {
        Session::assemble(spec, src, Some(tgt))
    }

    /// The session on `src` and `tgt` (`None`: a local target still to be created).
    fn assemble(
        spec: &SyncSpec,
        src: Root,
        tgt: Option<Box<dyn SideRoot>>,
    ) -> Result<Session, EngineError> {
        let tgt_root = tgt.as_ref().and_then(|t| t.local());
        Prepared::open(spec, src, tgt_root)?.with_target(tgt)
    }

    /// The source's history is recorded in this session's store (the mount's first pair):
    /// its retention pass also adopts versions a crash left unrecorded.
    pub fn set_keeps_history(&mut self) {
        self.keeps_history = true;
    }

    /// Once `stop` is set, a sync of this session starts no more steps: what was applied is
    /// committed, and the report says `interrupted`.
    pub fn set_stop(&mut self, stop: Arc<AtomicBool>) {
        self.stop = Some(stop);
    }

    /// Sets what happens after this session changes a source path (a mount's session).
    pub fn set_source_hooks(&mut self, hooks: SourceHooks) {
        self.hooks = hooks;
    }

    /// Announces the folders this session creates and the renames it makes in the target
    /// to `echoes` (a mount's target watcher), before making them.
    pub fn set_target_echoes(&mut self, echoes: Arc<crate::watch::Echoes>) {
        self.echoes = Some(echoes);
    }

    /// A whole-tree sync of this session that finds more than `limit` entries gone from the
    /// target leaves them in the source and in the baseline, and lists them in
    /// `Report::braked` for the mount's delete brake to hold (`None`: applied as found).
    pub(crate) fn set_whole_brake(&mut self, limit: Option<usize>) {
        self.whole_brake = limit;
    }

    /// Opens the target folder again (it was unmounted and mounted again, or replaced):
    /// later syncs reach the folder now at the target's path.
    pub fn reopen_target(&mut self) -> Result<(), EngineError> {
        let root_err = |source| EngineError::Root {
            path: self.spec.tgt.clone(),
            source,
        };
        if let Some(open) = &self.opener {
            self.tgt = open().map_err(root_err)?;
            return Ok(());
        }
        let mut tgt = Root::open(&self.spec.tgt).map_err(root_err)?;
        tgt.set_keep(self.spec.options.keep);
        self.tgt = Box::new(tgt);
        Ok(())
    }

    /// How `reopen_target` opens the target (a remote side: connects again).
    pub fn set_target_opener(&mut self, open: TargetOpener) {
        self.opener = Some(open);
    }

    /// The target side as it is open now.
    pub fn target(&self) -> &dyn SideRoot {
        &*self.tgt
    }

    pub fn spec(&self) -> &SyncSpec {
        &self.spec
    }

    /// A second connection to this session's store, for reading the journal kept there
    /// from another thread (a mount's replicators, one per target, share one journal).
    pub fn journal_reader(&self) -> Result<Store, EngineError> {
        let pair = Pair {
            src: self.spec.src.to_string_lossy().into_owned(),
            tgt: self.spec.tgt.to_string_lossy().into_owned(),
        };
        Ok(Store::open(&self.spec.state_dir, &pair)?)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    /// The key under which this pair's target keeps its journal cursor.
    pub fn target_key(&self) -> String {
        self.spec.tgt.to_string_lossy().into_owned()
    }

    pub fn source(&self) -> &Root {
        &self.src
    }

    /// True while a program's fsync through this session's mount runs (`Mount::flushing`).
    pub fn source_flushing(&self) -> bool {
        self.hooks.mount.as_ref().is_some_and(|m| m.flushing())
    }

    /// A stamp for conflict copies planned now: the time to the second, with `-2`, `-3`...
    /// when a plan in the same second already used it (a mount syncs many times a second,
    /// and two conflicts on one path must not ask for the same copy name).
    fn next_stamp(last: &mut (String, u32)) -> String {
        let base = stamp(now_ns());
        if last.0 == base {
            last.1 += 1;
            format!("{base}-{}", last.1)
        } else {
            *last = (base.clone(), 1);
            base
        }
    }

    /// Syncs what `scope` names: scan, reconcile, apply, commit, in rounds.
    pub fn sync(&mut self, scope: &Scope, on_event: &dyn Fn(Event)) -> Result<Report, EngineError> {
        self.sync_rounds(scope, on_event, None, &HashSet::new())
    }

    /// Like `sync`, but before applying anything, `check` is asked whether what was scanned
    /// can be trusted (a mount's replicator: a program changed something through the mount
    /// while it was scanned, so the scan may be ahead of the journal records it was asked
    /// about). `None`: nothing is applied and the report says `deferred` (a rename: the
    /// paths below its old name would look deleted). `Some(paths)`: everything is applied
    /// but the steps on those paths (files opened for writing meanwhile: their records,
    /// read by the next pass, hold them until closed).
    /// The paths in `held` are left alone, on both sides and in the baseline: files a
    /// program is still writing through the mount, whose last close will hint them again
    /// (a directory being filled is read deeply, and would otherwise copy them half written).
    pub fn sync_guarded(
        &mut self,
        scope: &Scope,
        on_event: &dyn Fn(Event),
        check: &dyn Fn() -> Option<Vec<RelPath>>,
        held: &HashSet<RelPath>,
    ) -> Result<Report, EngineError> {
        self.sync_rounds(scope, on_event, Some(check), held)
    }

    /// `sync_guarded`; without a `check` (nothing to ask before applying), a first sync
    /// applies what is new on one side while it scans (`stream_first_sync`).
    fn sync_rounds(
        &mut self,
        scope: &Scope,
        on_event: &dyn Fn(Event),
        check: Option<&dyn Fn() -> Option<Vec<RelPath>>>,
        held: &HashSet<RelPath>,
    ) -> Result<Report, EngineError> {
        let created_target = self.created_target.take();
        let whole_brake = self.whole_brake.filter(|_| *scope == Scope::All);
        let spec = &self.spec;
        let (src, tgt): (&dyn SideRoot, &dyn SideRoot) = (&self.src, &*self.tgt);
        let store = &mut self.store;
        let started = now_ns();
        let mut opts = spec.options.clone();
        opts.stamp = stamp(started);
        opts.rescan = spec.rescan;
        // Deletions the brake holds (`tandem held`) are left alone by every sync until
        // released or restored, mounted or not.
        let mut held_all = held.clone();
        held_all.extend(store.held_paths(&spec.tgt.to_string_lossy())?);
        opts.held = held_all.iter().cloned().collect();
        // Every whole-tree sync is a run in the history; a mount's many small scoped syncs
        // are recorded only when they did something.
        let run_id = if spec.dry_run || *scope != Scope::All {
            None
        } else {
            Some(store.begin_run(started / 1_000_000_000)?)
        };
        let ctx = Ctx::for_run(
            spec,
            [src, tgt],
            &opts,
            &self.hooks,
            self.echoes.as_deref(),
            self.stop.as_deref(),
        );
        let folds = *self
            .folds_case
            .get_or_insert_with(|| probe_folds_case(spec, [src, tgt], opts.direction));
        // A local root on Windows makes no symbolic links (`tandem_fs::HOLDS_SYMLINKS`).
        let lacks = |r: &dyn SideRoot| r.local().is_some() && !tandem_fs::HOLDS_SYMLINKS;
        let mut rounds = Rounds {
            report: Report {
                dry_run: spec.dry_run,
                created_target,
                ..Report::default()
            },
            ctx,
            spec,
            filter: &self.filter,
            store,
            on_event,
            check,
            held: held_all,
            opts,
            last_stamp: &mut self.last_stamp,
            left_out: HashSet::new(),
            folder_times: FolderTimes::default(),
            // A first sync streams only between two roots on this machine.
            locals: src.local().zip(tgt.local()).map(|(s, t)| [s, t]),
            folds,
            lacks_links: [lacks(src), lacks(tgt)],
            whole_brake,
        };
        if rounds.run(scope)? == Ended::DryRun {
            return Ok(rounds.report);
        }
        let (report, store) = rounds.finish();
        record_run(store, run_id, spec.dry_run, started, &report)?;
        if !spec.dry_run {
            log_problems(&report);
        }
        if !spec.dry_run && report.exit_code() < 2 {
            self.tgt.committed();
            self.mark_roots();
            self.prune_trash();
        }
        Ok(report)
    }

    /// Prunes both sides' trash to the retention, at most every `PRUNE_EVERY`. A failure
    /// is logged: it leaves more in the trash, never less.
    fn prune_trash(&mut self) {
        if self.last_prune.is_some_and(|t| t.elapsed() < PRUNE_EVERY) {
            return;
        }
        self.last_prune = Some(Instant::now());
        let now = now_ns();
        if self.keeps_history {
            self.adopt_orphans(now, self.hooks.mount.is_some());
        } else if self.records_history() {
            // A one-shot sync of the pair a mount recorded the history in: what a crashed
            // mount left unrecorded is weighed by this prune too (adopted first). Another
            // pair of this source may be mounted meanwhile: young versions and copies in
            // progress are left alone, as while serving.
            self.adopt_orphans(now, true);
        }
        self.prune_both_trashes(now);
        let keep = &self.spec.retention;
        let tgt: &dyn SideRoot = &*self.tgt;
        match crate::history::prune(&self.src, tgt, &mut self.store, keep, now) {
            Ok(p) => {
                // Removed underneath a mount: the kernel would go on listing them (and
                // answering for them) through it from its cache.
                if let Some(m) = self.hooks.mount.as_ref().filter(|_| p.removed > 0) {
                    m.invalidate(&p.removed_paths);
                }
                if p.removed > 0 {
                    tracing::info!(
                        "source history: removed {} old versions ({} bytes)",
                        p.removed,
                        p.freed
                    );
                }
                if p.lost > 0 {
                    tracing::warn!(
                        "source history: the files of {} versions recorded are gone (a crash, or the history folder deleted by hand); listed as lost",
                        p.lost
                    );
                }
            }
            Err(e) => tracing::warn!("source history: could not prune it: {e}"),
        }
    }

    /// Prunes each side's trash. What a remote side's trash holds then is recorded with
    /// the pair: `status` shows it without reaching the other machine.
    fn prune_both_trashes(&self, now: i64) {
        let keep = &self.spec.retention;
        let (src, tgt): (&dyn SideRoot, &dyn SideRoot) = (&self.src, &*self.tgt);
        for (name, root, other) in [("source", src, tgt), ("target", tgt, src)] {
            let p = match root.prune_trash(keep, now, other) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!("{name} trash: could not prune it: {e}");
                    continue;
                }
            };
            if p.removed > 0 {
                tracing::info!(
                    "{name} trash: removed {} old versions ({} bytes); {} left ({} bytes)",
                    p.removed,
                    p.freed,
                    p.left.versions,
                    p.left.bytes
                );
            }
            if root.local().is_none() {
                let far = tandem_state::FarTrash {
                    versions: p.left.versions,
                    bytes: p.left.bytes,
                    at_ns: now,
                };
                if let Err(e) = self.store.record_far_trash(far) {
                    tracing::warn!("{name} trash: could not record what it holds: {e}");
                }
            }
        }
    }

    /// Whether this session's store records versions of the source's history (it was a
    /// mount's first pair): only then are they pruned here, and orphans adopted into it.
    fn records_history(&self) -> bool {
        self.store.has_versions().unwrap_or(false)
    }

    /// Records the versions in the source's history that no row names (a crash between
    /// keeping and recording). While a mount may serve (`serving`), the youngest and
    /// copies in progress are left for the next pass.
    fn adopt_orphans(&mut self, now: i64, serving: bool) {
        let others = crate::history::recorded_by_other_pairs(&self.spec);
        match crate::history::adopt_orphans(&self.src, &self.store, &others, serving, now) {
            Ok(a) => {
                if a.versions > 0 {
                    tracing::warn!(
                        "source history: {} versions ({} bytes) were kept but not recorded (the mount stopped in between); recovered",
                        a.versions,
                        a.bytes
                    );
                }
                if a.torn > 0 {
                    tracing::info!("source history: removed {} torn temporary copies", a.torn);
                }
            }
            Err(e) => tracing::warn!("source history: could not look for unrecorded versions: {e}"),
        }
    }

    /// After the pair's first good sync, both roots get its marker, then the state records
    /// that they have it (in this order: a crash in between leaves markers the next sync
    /// writes again, never a state that claims markers the roots lack). A root that cannot
    /// take it (a read-only source pushed from) is logged, and tried again next time.
    fn mark_roots(&mut self) {
        if self.marked {
            return;
        }
        let pair = Pair {
            src: self.spec.src.to_string_lossy().into_owned(),
            tgt: self.spec.tgt.to_string_lossy().into_owned(),
        };
        if let Err(e) = crate::marker::mark(&pair, &self.src, self.tgt.local()) {
            tracing::warn!("cannot mark the folders as synced: {e}");
            return;
        }
        let id = crate::marker::pair_marker_id(&pair);
        match self.store.set_meta(crate::marker::META_KEY, &id) {
            Ok(()) => self.marked = true,
            Err(e) => tracing::warn!("cannot record the folders' markers: {e}"),
        }
    }
}

/// Whether each side's file system folds case (source, target). Only a side that receives
/// is probed: a one-way sync writes nothing to the other.
fn probe_folds_case(spec: &SyncSpec, roots: [&dyn SideRoot; 2], direction: Direction) -> [bool; 2] {
    let receives = [direction != Direction::Push, direction != Direction::Pull];
    let probe = |r: &dyn SideRoot| {
        r.local()
            .is_some_and(|l| tandem_fs::folds_case(l, !spec.dry_run))
    };
    [
        receives[0] && probe(roots[0]),
        receives[1] && probe(roots[1]),
    ]
}

/// Records a run in the history once it is over: `run_id` when it was begun (a whole-tree
/// sync), else begun now when a scoped sync did something.
fn record_run(
    store: &mut Store,
    mut run_id: Option<i64>,
    dry_run: bool,
    started: i64,
    report: &Report,
) -> Result<(), EngineError> {
    let did_something = report.copied
        + report.linked
        + report.deleted
        + report.renamed
        + report.dirs_created
        + report.metadata
        > 0
        || report.exit_code() != 0;
    if run_id.is_none() && !dry_run && did_something {
        run_id = Some(store.begin_run(started / 1_000_000_000)?);
    }
    let Some(id) = run_id else {
        return Ok(());
    };
    let summary = format!(
        "copied={} bytes={} deleted={} renamed={} conflicts={} skipped={} failed={}{}{}",
        report.copied,
        report.bytes,
        report.deleted,
        report.renamed,
        report.conflicts.len(),
        report.skipped.len(),
        report.failed.len(),
        report
            .halted
            .as_ref()
            .map(|h| format!(" halted: {h}"))
            .unwrap_or_default(),
        report
            .stopped
            .as_ref()
            .map(|h| format!(" stopped: {h}"))
            .unwrap_or_default(),
    );
    store.set_run_problems(id, &problems_of(report))?;
    store.finish_run(id, now_ns() / 1_000_000_000, report.exit_code(), &summary)?;
    Ok(())
}

/// How a sync's rounds ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// Applied, halted, stopped or deferred: the report is to be finished.
    Run,
    /// A dry run: the report holds the plan, and nothing more is done.
    DryRun,
}

/// How one round ended.
enum Round {
    /// Nothing more to do in this sync (done, halted, stopped, deferred).
    Last,
    /// A dry run planned.
    DryRun,
    /// Applied; these steps raced and are planned again in the next round.
    Raced(Vec<Raced>),
}

/// What every round of one sync works with.
struct Rounds<'a> {
    ctx: Ctx<'a>,
    spec: &'a SyncSpec,
    filter: &'a Filter,
    store: &'a mut Store,
    on_event: &'a dyn Fn(Event),
    check: Option<&'a dyn Fn() -> Option<Vec<RelPath>>>,
    /// Paths no step touches: the caller's and the brake's.
    held: HashSet<RelPath>,
    opts: Options,
    last_stamp: &'a mut (String, u32),
    report: Report,
    /// Files opened for writing while scanned (`check`): no step of these rounds on them.
    left_out: HashSet<RelPath>,
    folder_times: FolderTimes,
    locals: Option<[&'a Root; 2]>,
    /// Whether each side folds case.
    folds: [bool; 2],
    /// Whether each side cannot hold symbolic links.
    lacks_links: [bool; 2],
    /// A mount's delete brake for this whole-tree sync (`Session::set_whole_brake`).
    whole_brake: Option<usize>,
}

impl<'a> Rounds<'a> {
    /// Scans, plans and applies in rounds, until nothing raced or `MAX_ROUNDS` ran.
    fn run(&mut self, scope: &Scope) -> Result<Ended, EngineError> {
        // Later rounds look at what the earlier ones named too: a step that raced may be
        // on a path outside the scope (a conflict copy set aside but not yet copied).
        let mut widened = scope.clone();
        if self.opts.hard_links {
            crate::links::widen_to_other_names(
                &mut widened,
                [self.ctx.src, self.ctx.tgt],
                self.store,
            );
        }
        for round in 1..=MAX_ROUNDS {
            let raced = match self.round(round, &widened)? {
                Round::Last => break,
                Round::DryRun => return Ok(Ended::DryRun),
                Round::Raced(raced) => raced,
            };
            if self.report.stopped.is_some() || raced.is_empty() {
                break;
            }
            if round == MAX_ROUNDS {
                let left = left_for_next_run(&self.ctx, raced);
                self.report.failed.extend(left);
            } else {
                (self.on_event)(Event::Retrying {
                    round: round + 1,
                    paths: raced.len(),
                });
                if let Scope::Hints(h) = &mut widened {
                    h.extend(raced.iter().map(|r| (r.path.clone(), true)));
                } else if let Scope::Paths(ps) = &mut widened {
                    ps.extend(raced.iter().map(|r| r.path.clone()));
                }
            }
        }
        Ok(Ended::Run)
    }

    /// One round: scan, reconcile, apply.
    fn round(&mut self, round: usize, scope: &Scope) -> Result<Round, EngineError> {
        self.opts.scope = scope.hints();
        let mut clock = PhaseClock::new();
        let streams = self.streams(scope)?;
        let Some((merged, raced_early)) = self.gather(scope, streams)? else {
            return Ok(Round::Last);
        };
        if !self.scanned(&merged, scope) {
            return Ok(Round::Last);
        }
        clock.lap("scan");
        let base_len = merged.counts.base as u64;
        let Some(mut actions) = self.plan(round, merged, &mut clock) else {
            return Ok(Round::Last);
        };
        clock.lap("reconcile");
        let deletes = actions
            .iter()
            .filter(|a| matches!(a, Action::Delete { .. }))
            .count() as u64;
        // A whole-tree reconcile weighs what it found missing: an unmounted disk or an
        // emptied share looks like mass deletion. A scoped sync deletes what a program
        // was seen deleting (the mount's journal, the target's watcher): replicated as
        // it happens, as any two-way sync does, the originals kept in trash.
        if let Some(why) = too_many_deletes(self.spec, scope, deletes, base_len) {
            self.report.halted = Some(why);
            return Ok(Round::Last);
        }
        if let Some(limit) = self.whole_brake {
            brake_whole(&mut actions, limit, &mut self.report);
        }
        let bytes = copy_bytes(&actions);
        (self.on_event)(Event::Planned {
            actions: actions.iter().filter(|a| a.writes_to().is_some()).count(),
            bytes,
        });
        // Each round plans every path still out of step again: what it skips or fails is
        // the current list; an earlier round's entries were settled or come back.
        if !streams {
            self.report.skipped.clear();
            self.report.failed.clear();
        }
        if self.spec.dry_run {
            self.report.plan = actions.iter().filter_map(step_of).collect();
            for a in &actions {
                note_listing(a, &mut self.report);
            }
            return Ok(Round::DryRun);
        }
        self.folder_times
            .note_plan([self.ctx.src, self.ctx.tgt], &actions);
        let applier = Applier::new(
            &self.ctx,
            self.store,
            &mut self.report,
            self.on_event,
            &mut self.folder_times,
        );
        let mut raced = applier.run(actions)?;
        raced.extend(raced_early);
        clock.lap("apply");
        Ok(Round::Raced(raced))
    }

    /// A first sync of the whole tree, with nothing to ask before applying, on two local
    /// sides that hold names differing only in case: what is new on one side is applied
    /// while the sides are walked, in batches (issue 21). The halts of `round` need a
    /// baseline (an emptied side, mass deletion): there is none to lose.
    fn streams(&self, scope: &Scope) -> Result<bool, EngineError> {
        Ok(self.check.is_none()
            && !self.spec.dry_run
            && *scope == Scope::All
            && self.locals.is_some()
            && self.folds == [false, false]
            && self.store.baseline_len()? == 0)
    }

    /// The round's baseline and sides (`gather`), and the steps that raced among those a
    /// first sync applied while it walked (`streams`). `None`: the run halted or stopped.
    fn gather(
        &mut self,
        scope: &Scope,
        streams: bool,
    ) -> Result<Option<(Merged, Vec<Raced>)>, EngineError> {
        if !streams {
            let merged = gather(
                &self.ctx,
                self.filter,
                self.spec,
                scope,
                self.store,
                &self.held,
                &self.opts,
            )?;
            return Ok(Some((merged, Vec::new())));
        }
        if let Some(why) = vanished_root(&self.ctx, self.spec) {
            self.report.halted = Some(why);
            return Ok(None);
        }
        // This round's apply starts here: its lists start empty.
        self.report.skipped.clear();
        self.report.failed.clear();
        let mut applier = Applier::new(
            &self.ctx,
            self.store,
            &mut self.report,
            self.on_event,
            &mut self.folder_times,
        );
        let gathered = gather_all(
            &self.ctx,
            self.filter,
            self.spec,
            None,
            &self.held,
            &self.opts,
            Some(&mut |a| applier.stream(a)),
        );
        let raced = applier.finish_stream()?;
        // Steps were applied while walking: a root gone since stops the run, as it does
        // any apply (the commits check it too).
        if self.report.stopped.is_none() {
            self.report.stopped = detached_root(&self.ctx);
        }
        if self.report.stopped.is_some() {
            return Ok(None);
        }
        Ok(Some((gathered?, raced)))
    }

    /// Says what each side holds; false (the report says why) when a side vanished or was
    /// emptied since the last sync.
    fn scanned(&mut self, merged: &Merged, scope: &Scope) -> bool {
        let counts = &merged.counts;
        (self.on_event)(Event::Scanned {
            side: "source",
            entries: counts.src,
        });
        (self.on_event)(Event::Scanned {
            side: "target",
            entries: counts.tgt,
        });
        let emptied = match scope {
            Scope::All => emptied_root(counts, &self.ctx, self.spec),
            Scope::Paths(_) | Scope::Hints(_) => vanished_root(&self.ctx, self.spec),
        };
        match emptied {
            Some(why) => {
                self.report.halted = Some(why);
                false
            }
            None => true,
        }
    }

    /// The round's steps: hashes filled where sizes and times cannot tell, reconciled,
    /// fitted to what each side can hold. `None`: deferred (`check`).
    fn plan(
        &mut self,
        round: usize,
        merged: Merged,
        clock: &mut PhaseClock,
    ) -> Option<Vec<Action>> {
        let Merged {
            base,
            src: mut s_tree,
            tgt: mut t_tree,
            ..
        } = merged;
        let (src, tgt) = (self.ctx.src, self.ctx.tgt);
        fill_hashes(
            &base,
            &mut s_tree,
            &mut t_tree,
            (src, tgt),
            self.spec.rescan,
            self.opts.modify_window,
            self.ctx.threads,
        );
        clock.lap("hash");
        self.opts.stamp = Session::next_stamp(self.last_stamp);
        let groups = if self.opts.hard_links {
            LinkGroups::of(&s_tree, &t_tree)
        } else {
            LinkGroups::default()
        };
        let names = crate::case::held_names(self.folds, &s_tree, &t_tree);
        let plan = reconcile(base, s_tree, t_tree, &self.opts);
        let mut actions = link_copies(plan.actions, &groups, self.opts.direction);
        actions = crate::case::fit_both(actions, names);
        actions = crate::symlinks::fit_both(actions, self.lacks_links);
        if !self.spec.dry_run && !self.leave_out_opened(&mut actions, round) {
            self.report.deferred = true;
            clock.lap("deferred");
            return None;
        }
        if self.opts.hard_links {
            actions = crate::links::where_links_hold(
                actions,
                &self.ctx,
                &mut self.report,
                self.spec.dry_run,
            );
        }
        if trace_on() {
            for a in &actions {
                tracing::info!("trace: round {round}: {a:?}");
            }
        }
        Some(actions)
    }

    /// Drops the steps on files opened for writing while scanned (`check`); false when the
    /// round must apply nothing (the scan cannot be trusted, or a rename or conflict would
    /// be split from its other steps in the first round).
    fn leave_out_opened(&mut self, actions: &mut Vec<Action>, round: usize) -> bool {
        // Every round scans again: what was opened since the first is left out of the
        // later ones too.
        match self.check.map_or(Some(Vec::new()), |c| c()) {
            None if round == 1 => return false,
            None => {}
            Some(opened) => self.left_out.extend(opened),
        }
        if self.left_out.is_empty() {
            return true;
        }
        let left_out = &self.left_out;
        let touches = |a: &Action| {
            let to = match a {
                Action::Rename { to, .. } => Some(to),
                _ => None,
            };
            left_out.contains(a.path()) || to.is_some_and(|t| left_out.contains(t))
        };
        // A rename or a conflict is not split from the other steps of its paths (a
        // conflict copy set aside without the winner's copy, one end of a move without the
        // other): the first round waits for the next pass; a later one applies them whole,
        // re-checked as always.
        let whole: HashSet<RelPath> = actions
            .iter()
            .filter(|a| matches!(a, Action::Rename { .. } | Action::Conflict(_)) && touches(a))
            .flat_map(|a| match a {
                Action::Rename { from, to, .. } => vec![from.clone(), to.clone()],
                other => vec![other.path().clone()],
            })
            .collect();
        if round == 1 && !whole.is_empty() {
            return false;
        }
        actions.retain(|a| !touches(a) || whole.contains(a.path()));
        true
    }

    /// The report once every round ran: what was left out, what could not be kept, folder
    /// times (each round set them before its last commit, after its last write; any left
    /// are set here), a root detached after the last commit. With the store, for the
    /// run's record.
    fn finish(self) -> (Report, &'a mut Store) {
        let Rounds {
            ctx,
            spec,
            store,
            mut report,
            left_out,
            folder_times,
            ..
        } = self;
        if !report.deferred {
            report.left_out = left_out.into_iter().collect();
        }
        ctx.not_kept.report_into(&mut report);
        for side in [Side::Source, Side::Target] {
            crate::kept::refusals_into(&mut report, side, ctx.root(side).take_refusals());
        }
        let mut folder_times = folder_times;
        let setting = folder_times.apply([ctx.src, ctx.tgt], ctx.echoes);
        folder_times.settle(setting, ctx.echoes);
        let set_on_source = folder_times.set_on_source();
        if let Some(m) = ctx
            .hooks
            .mount
            .as_ref()
            .filter(|_| !set_on_source.is_empty())
        {
            m.invalidate(&set_on_source);
        }
        // Before reporting: a root detached after the last commit makes no run "in sync".
        // A deferred run applied nothing (`leave_out_opened`: its first round): nothing to
        // check, and a remote side is spared a round trip.
        if !spec.dry_run && report.stopped.is_none() && report.halted.is_none() && !report.deferred
        {
            report.stopped = detached_root(&ctx);
        }
        (report, store)
    }
}

/// Flushes `roots`, in their order when all are on this machine. With a side on another
/// machine, all at once: its round trip and this machine's flush overlap (a mount's pass
/// waited for the source's syncfs, then for the remote flush).
fn flush_all(roots: &[&dyn SideRoot], durability: Durability) -> Vec<tandem_fs::Result<()>> {
    if roots.iter().all(|r| r.local().is_some()) {
        return roots.iter().map(|r| r.flush(durability)).collect();
    }
    std::thread::scope(|s| {
        let flushing: Vec<_> = roots
            .iter()
            .map(|r| s.spawn(move || r.flush(durability)))
            .collect();
        flushing
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(FsError::raced(&RelPath::root(), "a flush panicked")))
            })
            .collect()
    })
}

/// A step refused because the disk moved under it: planned again in the next round.
struct Raced {
    path: RelPath,
    why: String,
    /// The side a copy was to read from, when the path was gone there.
    vanished_from: Option<Side>,
}

/// The failures to report for the steps that raced in the last round: each is synced by
/// the next run. A copy whose source is gone, and still gone, leaves nothing to sync: a
/// program's temporary file deleted meanwhile (issue 20). Nothing was written for it, so
/// the next run sees a deletion if the baseline has the path, or nothing.
fn left_for_next_run(ctx: &Ctx<'_>, raced: Vec<Raced>) -> Vec<PathProblem> {
    raced
        .into_iter()
        .filter(|r| {
            r.vanished_from
                .is_none_or(|side| !matches!(ctx.root(side).stat(&r.path), Ok(None)))
        })
        .map(|r| {
            let why = format!("{}; it will be synced on the next run", r.why);
            PathProblem::new(r.path, why)
        })
        .collect()
}

/// A missing target is created by a first sync only: once the pair has a baseline, a
/// missing target may be an unmounted disk (its mount point gone with it), and a dry run
/// creates nothing.
fn refuse_missing_target(spec: &SyncSpec) -> Result<(), RootError> {
    let path = spec.tgt.clone();
    if spec.state_dir.join(tandem_state::DB_FILE).exists() {
        Err(RootError::TargetGone { path })
    } else if spec.dry_run {
        Err(RootError::TargetToCreate { path })
    } else {
        Ok(())
    }
}

fn load_filter(src: &Root, spec: &SyncSpec) -> Result<Filter, EngineError> {
    use tandem_fs::os::fs::{Mode, OFlags};
    let rel = RelPath::from_str_lossless(tandem_core::filter::IGNORE_FILE);
    let text = match src.open_beneath(&rel, OFlags::RDONLY, Mode::empty()) {
        Ok(fd) => {
            let mut s = Vec::new();
            std::fs::File::from(fd)
                .read_to_end(&mut s)
                .map_err(|source| EngineError::Root {
                    path: spec.src.join(".tandemignore"),
                    source,
                })?;
            Some(String::from_utf8_lossy(&s).into_owned())
        }
        Err(_) => None,
    };
    Ok(Filter::new(
        text.as_deref(),
        &spec.excludes,
        &spec.includes,
    )?)
}

/// What a round works from: the baseline and both sides as far as reconcile needs them,
/// with the number of entries each holds in all. A scoped sync reads what its hints name,
/// the baseline while both sides are scanned; a whole-tree one streams (`gather_all`).
fn gather(
    ctx: &Ctx<'_>,
    filter: &Filter,
    spec: &SyncSpec,
    scope: &Scope,
    store: &Store,
    held: &HashSet<RelPath>,
    opts: &Options,
) -> Result<Merged, EngineError> {
    let Some(hints) = scope.hints() else {
        return gather_all(ctx, filter, spec, Some(store), held, opts, None);
    };
    let (base, scanned) = std::thread::scope(|sc| {
        let scans = sc.spawn(|| {
            scan_both(ctx, spec, |root| {
                root.scan(filter, ctx.threads, Some(&hints))
                    .map(|s| (s.tree, s.stale_temps))
            })
        });
        let base = store.load_baseline_scoped(&hints);
        let scanned = scans
            .join()
            .unwrap_or_else(|_| Err(EngineError::Panicked("scanner")));
        (base, scanned)
    });
    let base: BaseTree = base?
        .into_iter()
        .filter(|(p, b)| !filter.excludes_any(p, b.kind == Kind::Dir) && !held.contains(p))
        .collect();
    let (mut src, mut tgt) = scanned?;
    if !held.is_empty() {
        src.retain(|p, _| !held.contains(p));
        tgt.retain(|p, _| !held.contains(p));
    }
    let counts = Counts {
        base: base.len(),
        src: src.len(),
        tgt: tgt.len(),
        ..Counts::default()
    };
    Ok(Merged {
        base,
        src,
        tgt,
        counts,
    })
}

/// A whole-tree sync walks both sides and the baseline in path order at once
/// (`tandem_fs::walk`, a cursor on the baseline, `tandem_core::Merge`; issue 21): what is
/// settled on all three is dropped as it passes, so a round holds the tree's directories
/// and its work, not every unchanged file three times over. `store`: `None` when the
/// baseline is empty; then the steps that create what is new on one side go to `stream`
/// as the merge decides them (`Merge::finish_into`), not into the trees returned.
fn gather_all(
    ctx: &Ctx<'_>,
    filter: &Filter,
    spec: &SyncSpec,
    store: Option<&Store>,
    held: &HashSet<RelPath>,
    opts: &Options,
    stream: Option<&mut dyn FnMut(Action)>,
) -> Result<Merged, EngineError> {
    let Some((src, tgt)) = ctx.src.local().zip(ctx.tgt.local()) else {
        return gather_listed(ctx, filter, spec, store, held, opts, stream);
    };
    let scan_error = |side: &'static str, path: &PathBuf| {
        let path = path.clone();
        move |source| EngineError::Scan { side, path, source }
    };
    let keep = |(p, _): &(RelPath, tandem_core::Entry)| !held.contains(p);
    let merge = move |s: &mut dyn Iterator<Item = (RelPath, tandem_core::Entry)>,
                      t: &mut dyn Iterator<Item = (RelPath, tandem_core::Entry)>| {
        let mut merge = Merge::new(s.filter(keep), t.filter(keep), opts);
        if let Some(store) = store {
            store.each_baseline(|p, b| {
                if !filter.excludes_any(&p, b.kind == Kind::Dir) && !held.contains(&p) {
                    merge.base(p, b);
                }
            })?;
        }
        Ok::<_, StateError>(merge.finish_into(stream))
    };
    let (walked, s_stale) = tandem_fs::walk(src, filter, ctx.threads, |s| {
        tandem_fs::walk(tgt, filter, ctx.threads, |t| merge(&mut { s }, &mut { t }))
    })
    .map_err(scan_error("source", &spec.src))?;
    let (merged, t_stale) = walked.map_err(scan_error("target", &spec.tgt))?;
    remove_stale_temps(ctx, spec, [&s_stale, &t_stale]);
    Ok(merged?)
}

/// `gather_all` with a remote side, which lists its whole tree (sorted, in batches): the
/// baseline is read while both sides are listed (the far side's scan is the longest wait
/// of a run; nothing of the baseline depends on it), then all three are merged.
fn gather_listed(
    ctx: &Ctx<'_>,
    filter: &Filter,
    spec: &SyncSpec,
    store: Option<&Store>,
    held: &HashSet<RelPath>,
    opts: &Options,
    stream: Option<&mut dyn FnMut(Action)>,
) -> Result<Merged, EngineError> {
    let (base, scanned) = std::thread::scope(|sc| {
        let scans = sc.spawn(|| {
            scan_both(ctx, spec, |root| {
                root.scan(filter, ctx.threads, None)
                    .map(|s| (s.tree, s.stale_temps))
            })
        });
        let mut base = Vec::new();
        let read = store.map_or(Ok(()), |store| {
            store.each_baseline(|p, b| {
                if !filter.excludes_any(&p, b.kind == Kind::Dir) && !held.contains(&p) {
                    base.push((p, b));
                }
            })
        });
        let scanned = scans
            .join()
            .unwrap_or_else(|_| Err(EngineError::Panicked("scanner")));
        (read.map(|()| base), scanned)
    });
    let (s, t) = scanned?;
    let base = base?;
    let keep = |(p, _): &(RelPath, tandem_core::Entry)| !held.contains(p);
    let mut merge = Merge::new(s.into_iter().filter(keep), t.into_iter().filter(keep), opts);
    for (p, b) in base {
        merge.base(p, b);
    }
    Ok(merge.finish_into(stream))
}

/// Temporary files of a tandem that crashed mid-copy: ours, incomplete, never synced.
fn remove_stale_temps(ctx: &Ctx<'_>, spec: &SyncSpec, stale: [&Vec<RelPath>; 2]) {
    if spec.dry_run {
        return;
    }
    for (root, stale) in [(ctx.src, stale[0]), (ctx.tgt, stale[1])] {
        for rel in stale {
            let _ = root.apply(Step::RemoveStaleTemp { path: rel }, &ctx.trash);
        }
    }
}

/// Scans both sides at once with `scan`, which returns what it found and the stale
/// temporary files it passed.
fn scan_both<T: Send>(
    ctx: &Ctx<'_>,
    spec: &SyncSpec,
    scan: impl Fn(&dyn SideRoot) -> tandem_fs::Result<(T, Vec<RelPath>)> + Sync,
) -> Result<(T, T), EngineError> {
    let (s, t) = std::thread::scope(|sc| {
        let s = sc.spawn(|| scan(ctx.src));
        let t = scan(ctx.tgt);
        (s.join(), t)
    });
    let s = s.unwrap_or_else(|_| Err(FsError::raced(&RelPath::root(), "scanner panicked")));
    let (s, s_stale) = s.map_err(|source| EngineError::Scan {
        side: "source",
        path: spec.src.clone(),
        source,
    })?;
    let (t, t_stale) = t.map_err(|source| EngineError::Scan {
        side: "target",
        path: spec.tgt.clone(),
        source,
    })?;
    remove_stale_temps(ctx, spec, [&s_stale, &t_stale]);
    Ok((s, t))
}

fn vanished_root(ctx: &Ctx<'_>, spec: &SyncSpec) -> Option<String> {
    for (side, root, path) in [
        ("source", ctx.src, &spec.src),
        ("target", ctx.tgt, &spec.tgt),
    ] {
        if !root.still_present() {
            return Some(format!(
                "the {side} folder {} vanished; nothing more was changed",
                path.display()
            ));
        }
    }
    None
}

/// A root that is no longer the directory at its path, reached through the same mount (its
/// file system unmounted with `umount -l`, the folder moved or removed): what was written
/// through it since is not where anybody will look.
fn detached_root(ctx: &Ctx<'_>) -> Option<String> {
    [("source", ctx.src), ("target", ctx.tgt)]
        .into_iter()
        .find(|(_, root)| !root.still_present())
        .map(|(side, root)| match root.lost() {
            // A remote side's connection gone: not a mount to put back.
            Some(why) => format!(
                "the connection to the {side} {} was lost during the sync ({why}); nothing done since the last check is recorded as synced. Run again once it can be reached",
                root.name()
            ),
            None => format!(
                "the {side} was unmounted during the sync ({} is no longer the folder that was opened: unmounted, moved or removed); nothing done since the last check is recorded as synced. Mount it again and run again",
                root.name()
            ),
        })
}

/// A root that vanished or was emptied since the last sync is never taken for "the user
/// deleted everything" (an unmounted disk leaves an empty mount point).
fn emptied_root(counts: &Counts, ctx: &Ctx<'_>, spec: &SyncSpec) -> Option<String> {
    if let Some(why) = vanished_root(ctx, spec) {
        return Some(why);
    }
    if counts.base == 0 || spec.max_delete_percent >= 100 {
        return None;
    }
    for (side, len, path) in [
        ("source", counts.src, &spec.src),
        ("target", counts.tgt, &spec.tgt),
    ] {
        if len == 0 {
            return Some(format!(
                "the {side} folder {} is empty, but {} entries were synced before (an unmounted disk?); nothing was changed. If the folder was emptied on purpose, run again with --max-delete 100",
                path.display(),
                counts.base
            ));
        }
    }
    None
}

fn step_of(a: &Action) -> Option<PlannedStep> {
    let side = a.writes_to().map(Side::name);
    let (to, detail) = match a {
        Action::Rename { to, .. } => (Some(to.clone()), String::new()),
        Action::Copy { from, src, .. } => (
            None,
            format!("{} -> {}, {} bytes", from, from.other(), src.size),
        ),
        Action::Link { from, anchor, .. } => (
            None,
            format!("{}: hard link to {}", from.other(), anchor.escaped()),
        ),
        Action::Mkdir { src, .. } => (None, format!("mode {}", tandem_core::mode_words(src.mode))),
        Action::SetMeta { src, .. } => {
            (None, format!("mode {}", tandem_core::mode_words(src.mode)))
        }
        Action::Delete { expect, .. } => (None, format!("{} to trash", expect.kind.word())),
        Action::Conflict(c) => (None, resolution_word(c)),
        Action::Skip { .. } | Action::KeptNewer { .. } => {
            (None, a.skip_reason().unwrap_or_default())
        }
        Action::Record { .. } | Action::Forget { .. } => return None,
    };
    Some(PlannedStep {
        verb: a.verb(),
        path: a.path().clone(),
        to,
        side,
        detail,
    })
}

fn resolution_word(c: &Conflict) -> String {
    match &c.resolution {
        Resolution::KeptBoth { loser, copy } => {
            format!("kept both: the {loser}'s version is now {copy}")
        }
        Resolution::Won { winner } => format!("the {winner}'s version won; the other is in trash"),
        Resolution::Flagged => "flagged: both sides left as they are".to_string(),
    }
}

/// Lists conflicts and skips in the report (for dry runs and for real ones).
fn note_listing(a: &Action, report: &mut Report) {
    match a {
        Action::Conflict(c) => report.conflicts.push(ConflictNote {
            path: c.path.clone(),
            kind: c.kind.word().to_string(),
            resolution: resolution_word(c),
        }),
        Action::Skip { path, reason, side } => {
            let why = match side {
                Some(s) => format!("{s}: {reason}"),
                None => reason.clone(),
            };
            report.skipped.push(PathProblem::new(path.clone(), why));
        }
        Action::KeptNewer { path, side } => {
            let why = a.skip_reason().unwrap_or_default();
            report.skipped.push(PathProblem::new(path.clone(), why));
            report.kept_newer.push((*side, path.clone()));
        }
        _ => {}
    }
}

/// The paths a run skipped or failed, as the store keeps them for `tandem status`.
fn problems_of(report: &Report) -> Vec<tandem_state::RunProblem> {
    let listed = |what: &str, list: &[PathProblem]| {
        list.iter()
            .map(|p| tandem_state::RunProblem {
                path: p.path.clone(),
                what: what.to_string(),
                reason: p.reason.clone(),
            })
            .collect::<Vec<_>>()
    };
    let mut out = listed("skipped", &report.skipped);
    out.extend(listed("failed", &report.failed));
    out
}

/// Every path left out of step is named in the log (escaped), not only counted.
fn log_problems(report: &Report) {
    let printable = |s: &str| tandem_core::escape_bytes(s.as_bytes());
    for p in &report.skipped {
        tracing::warn!("skipped {}: {}", p.path.escaped(), printable(&p.reason));
    }
    for p in &report.failed {
        tracing::warn!("failed {}: {}", p.path.escaped(), printable(&p.reason));
    }
    // Once per run, not per name: each such name is in step, as a copy.
    for side in [Side::Source, Side::Target] {
        let n = report
            .links_copied
            .iter()
            .filter(|(s, _)| *s == side)
            .count();
        if n > 0 {
            tracing::warn!(
                "{n} hard-linked names copied as separate files: the {side} cannot hold hard links"
            );
        }
    }
}

fn describe(e: Option<&tandem_core::Entry>) -> String {
    match e {
        None => "absent".to_string(),
        Some(e) => match e.kind {
            Kind::File => format!("file, {} bytes, mtime {}", e.size, e.mtime),
            Kind::Symlink => format!(
                "symlink to {}",
                tandem_core::escape_bytes(e.link.as_deref().unwrap_or_default())
            ),
            _ => e.kind.word().to_string(),
        },
    }
}

pub(crate) struct Ctx<'a> {
    src: &'a dyn SideRoot,
    tgt: &'a dyn SideRoot,
    trash: Trash,
    durability: Durability,
    threads: usize,
    hooks: &'a SourceHooks,
    echoes: Option<&'a crate::watch::Echoes>,
    stop: Option<&'a AtomicBool>,
    /// What the run keeps beyond content, and the files where that failed.
    keep: tandem_core::Keep,
    not_kept: crate::kept::NotKept,
}

impl<'a> Ctx<'a> {
    /// The context of one sync of `roots` (source, target). Invariant 4: where syncfs
    /// flushes nothing (a FUSE root), each file is fsynced before it is renamed into
    /// place, and the folders whose entries changed before the baseline is committed.
    fn for_run(
        spec: &SyncSpec,
        roots: [&'a dyn SideRoot; 2],
        opts: &Options,
        hooks: &'a SourceHooks,
        echoes: Option<&'a crate::watch::Echoes>,
        stop: Option<&'a AtomicBool>,
    ) -> Ctx<'a> {
        let [src, tgt] = roots;
        let durability = if spec.fsync_each || !src.syncfs_is_durable() || !tgt.syncfs_is_durable()
        {
            Durability::EachFile
        } else {
            Durability::Batched
        };
        for root in roots {
            root.track_dirs(durability == Durability::EachFile);
        }
        Ctx {
            src,
            tgt,
            trash: Trash::new(opts.stamp.clone()),
            durability,
            threads: spec.threads.max(1),
            hooks,
            echoes,
            stop,
            keep: opts.keep,
            not_kept: Default::default(),
        }
    }
}

/// What a worker of `run_parallel` hands back: each step's index and result.
type Results = crossbeam_channel::Sender<Vec<(usize, tandem_fs::Result<Vec<Update>>)>>;

/// One worker of `run_parallel`: takes the next step of `group` until none is left or
/// the run stops, each once the steps it depends on are done (`gate`).
fn work(
    ctx: &Ctx<'_>,
    group: &[Action],
    gate: Option<&crate::order::Gate>,
    stop: &AtomicBool,
    next: &AtomicUsize,
    results: &Results,
) {
    let mut done = Vec::new();
    let mut since = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) || ctx.stop_asked() {
            break;
        }
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= group.len() {
            break;
        }
        if done.is_empty() {
            since = Instant::now();
        }
        // A step taken is carried out even if the run stops meanwhile: a later one may
        // be waiting for it. It counts as done once carried out, or if that panicked.
        let r = {
            let _done = gate.map(|g| g.enter(i));
            ctx.execute(&group[i])
        };
        done.push((i, r));
        if done.len() >= RESULT_BATCH || since.elapsed() >= RESULT_WAIT {
            let _ = results.send(std::mem::take(&mut done));
        }
    }
    if !done.is_empty() {
        let _ = results.send(done);
    }
}

impl Ctx<'_> {
    fn stop_asked(&self) -> bool {
        self.stop.is_some_and(|s| s.load(Ordering::Relaxed))
    }

    pub(crate) fn root(&self, side: Side) -> &'_ dyn SideRoot {
        match side {
            Side::Source => self.src,
            Side::Target => self.tgt,
        }
    }

    /// Carries out the file system part of one step; returns the baseline change to make
    /// once it is durable.
    fn execute(&self, a: &Action) -> tandem_fs::Result<Vec<Update>> {
        Ok(match a {
            Action::Rename {
                side,
                from,
                to,
                expect,
                why,
            } => {
                let echoes = self.echoes.filter(|_| *side == Side::Target);
                if let Some(e) = echoes {
                    e.rename(from, to);
                }
                self.root(*side)
                    .apply(Step::Rename { from, to, expect }, &self.trash)
                    .inspect_err(|_| {
                        if let Some(e) = echoes {
                            e.forget(from);
                        }
                    })?;
                match why {
                    tandem_core::RenameWhy::Replay => vec![Update::Move(from.clone(), to.clone())],
                    tandem_core::RenameWhy::ConflictCopy => vec![],
                }
            }
            Action::Copy {
                path,
                from,
                src,
                expect,
                mode,
            } => {
                let echoes = self.echoes.filter(|_| from.other() == Side::Target);
                let announce = || {
                    if let Some(e) = echoes {
                        e.create(path);
                    }
                };
                let new = copy_between(
                    self.root(*from),
                    self.root(from.other()),
                    path,
                    src,
                    expect.as_ref(),
                    *mode,
                    &self.trash,
                    self.durability,
                    &announce,
                )
                .inspect_err(|_| {
                    if let Some(e) = echoes {
                        e.forget(path);
                    }
                })?;
                vec![Update::Put(
                    path.clone(),
                    BaseEntry::agreed_from(*from, src, &new),
                )]
            }
            Action::Mkdir { path, side, src } => {
                // A folder already there (a program made it meanwhile) makes no event of
                // tandem's: its own event must not be taken for an echo.
                let echoes = self.echoes.filter(|_| {
                    *side == Side::Target && matches!(self.root(*side).stat(path), Ok(None))
                });
                if let Some(e) = echoes {
                    e.mkdir(path);
                }
                let listed = self.listed_xattrs(side.other(), path, src.xattrs.is_some())?;
                let step = Step::Mkdir {
                    path,
                    src,
                    from: self.attrs_from(side.other(), listed.as_ref()),
                };
                let new = self.applied(*side, step).inspect_err(|_| {
                    if let Some(e) = echoes {
                        e.forget(path);
                    }
                })?;
                vec![Update::Put(
                    path.clone(),
                    BaseEntry::agreed_from(side.other(), src, &new),
                )]
            }
            Action::SetMeta {
                path,
                side,
                src,
                expect,
            } => {
                let listed = self.listed_xattrs(side.other(), path, src.xattrs != expect.xattrs)?;
                let step = Step::SetMeta {
                    path,
                    src,
                    expect,
                    from: self.attrs_from(side.other(), listed.as_ref()),
                };
                let new = self.applied(*side, step)?;
                vec![Update::Put(
                    path.clone(),
                    BaseEntry::agreed_from(side.other(), src, &new),
                )]
            }
            Action::Delete { path, side, expect } => {
                // A file goes to the trash by a rename, an empty folder is removed: the
                // target's watcher must count neither as a program's deletion (the brake),
                // nor the rename, whose trash half it may not see, as a move out of the tree.
                let echoes = self.echoes.filter(|_| *side == Side::Target);
                if let Some(e) = echoes {
                    e.remove(path);
                }
                self.root(*side)
                    .apply(Step::Delete { path, expect }, &self.trash)
                    .inspect_err(|_| {
                        if let Some(e) = echoes {
                            e.forget(path);
                        }
                    })?;
                vec![Update::Remove(path.clone())]
            }
            Action::Record { path, src, tgt } => {
                vec![
                    Update::Put(path.clone(), BaseEntry::agreed(src, tgt)),
                    Update::Settle(path.clone()),
                ]
            }
            Action::Forget { path } => {
                vec![Update::Remove(path.clone()), Update::Settle(path.clone())]
            }
            Action::Conflict(c) => vec![Update::Conflict(NewConflict {
                path: c.path.clone(),
                kind: c.kind.word().to_string(),
                src_desc: describe(c.src.as_ref()),
                tgt_desc: describe(c.tgt.as_ref()),
                resolution: match &c.resolution {
                    Resolution::KeptBoth { .. } => "kept-both".to_string(),
                    Resolution::Won { winner } => format!("won-by-{winner}"),
                    Resolution::Flagged => "flagged".to_string(),
                },
                copy: match &c.resolution {
                    Resolution::KeptBoth { copy, .. } => Some(copy.clone()),
                    _ => None,
                },
                loser: match &c.resolution {
                    Resolution::KeptBoth { loser, .. } => Some(*loser),
                    Resolution::Won { winner } => Some(winner.other()),
                    Resolution::Flagged => None,
                },
                settled: matches!(c.resolution, Resolution::Won { .. }),
            })],
            Action::Link {
                path,
                from,
                src,
                expect,
                anchor,
                anchor_expect: Some(at),
                ..
            } => {
                let new = self.link(path, from.other(), anchor, at, expect.as_ref())?;
                vec![Update::Put(
                    path.clone(),
                    BaseEntry::agreed_from(*from, src, &new),
                )]
            }
            // The anchor's entry comes from its copy (`Applier::link_step`); without it,
            // nothing is known to link to: planned again.
            Action::Link {
                path,
                anchor_expect: None,
                ..
            } => return Err(FsError::raced(path, "the copy to link to was not made")),
            // Invariant 4 the other way round: nothing was done, so the baseline keeps
            // what it had (a kept newer file stays a difference for the next run).
            Action::Skip { .. } | Action::KeptNewer { .. } => vec![],
        })
    }

    /// A copy from this machine to a side on another, sent, its answer to be taken later
    /// (`Applier::deferred`); `None`: not such a copy.
    #[allow(clippy::type_complexity)]
    fn copy_later(
        &self,
        a: &Action,
    ) -> Option<tandem_fs::Result<Later<tandem_fs::Result<tandem_core::Entry>>>> {
        let Action::Copy {
            path,
            from,
            src,
            expect,
            mode,
        } = a
        else {
            return None;
        };
        let to = self.root(from.other());
        if to.local().is_some() || self.root(*from).local().is_none() {
            return None;
        }
        let echoes = self.echoes.filter(|_| from.other() == Side::Target);
        let announce = || {
            if let Some(e) = echoes {
                e.create(path);
            }
        };
        let (trash, durability) = (&self.trash, self.durability);
        let from = self.root(*from);
        Some(copy_later(
            from,
            to,
            path,
            src,
            expect.as_ref(),
            *mode,
            trash,
            durability,
            &announce,
        ))
    }

    /// The baseline change of a copy (`copy_later`) that left `r`.
    fn copied(
        &self,
        a: &Action,
        r: tandem_fs::Result<tandem_core::Entry>,
    ) -> tandem_fs::Result<Vec<Update>> {
        let Action::Copy {
            path, from, src, ..
        } = a
        else {
            return Ok(Vec::new());
        };
        let echoes = self.echoes.filter(|_| from.other() == Side::Target);
        let new = r.inspect_err(|_| {
            if let Some(e) = echoes {
                e.forget(path);
            }
        })?;
        Ok(vec![Update::Put(
            path.clone(),
            BaseEntry::agreed_from(*from, src, &new),
        )])
    }

    /// `step` applied on `side`, for the entry it leaves.
    fn applied(&self, side: Side, step: Step<'_>) -> tandem_fs::Result<tandem_core::Entry> {
        let path = match step {
            Step::Mkdir { path, .. } | Step::SetMeta { path, .. } => path,
            _ => &RelPath::root(),
        };
        self.root(side)
            .apply(step, &self.trash)?
            .ok_or_else(|| FsError::raced(path, "the side answered without an entry"))
    }

    /// The extended attributes of `path` on `side` when that side is on another machine and
    /// the step `needed` them (a local side's are read at the step itself).
    fn listed_xattrs(
        &self,
        side: Side,
        path: &RelPath,
        needed: bool,
    ) -> tandem_fs::Result<Option<tandem_fs::Xattrs>> {
        let root = self.root(side);
        match root.local() {
            None if needed => root.xattrs(path),
            _ => Ok(None),
        }
    }

    /// Where a step's attributes come from: `side`'s root when local, else `listed`.
    fn attrs_from<'x>(
        &'x self,
        side: Side,
        listed: Option<&'x tandem_fs::Xattrs>,
    ) -> Option<tandem_fs::AttrsFrom<'x>> {
        match self.root(side).local() {
            Some(r) => Some(tandem_fs::AttrsFrom::Root(r)),
            None => listed.map(tandem_fs::AttrsFrom::Given),
        }
    }

    /// `--hard-links`: `path` on `side` made another name of the file at `anchor` there.
    fn link(
        &self,
        path: &RelPath,
        side: Side,
        anchor: &RelPath,
        anchor_expect: &tandem_core::Entry,
        expect: Option<&tandem_core::Entry>,
    ) -> tandem_fs::Result<tandem_core::Entry> {
        let echoes = self.echoes.filter(|_| side == Side::Target);
        if let Some(e) = echoes {
            e.create(path);
        }
        self.root(side)
            .link(anchor, anchor_expect, path, expect, &self.trash)
            .map(|new| tandem_core::Entry {
                hash: anchor_expect.hash,
                ..new
            })
            .inspect_err(|_| {
                if let Some(e) = echoes {
                    e.forget(path);
                }
            })
    }
}

enum Update {
    Put(RelPath, BaseEntry),
    Remove(RelPath),
    Move(RelPath, RelPath),
    Conflict(NewConflict),
    Settle(RelPath),
}

struct Applier<'a, 'r> {
    ctx: &'a Ctx<'r>,
    store: &'a mut Store,
    report: &'a mut Report,
    on_event: &'a dyn Fn(Event),
    pending: Vec<Update>,
    /// Steps handed in by a first sync's merge (`stream`), not yet applied.
    batch: Vec<Action>,
    /// The error that stopped a stream: returned by `finish_stream`.
    error: Option<EngineError>,
    wrote_since_commit: bool,
    last_commit: Instant,
    raced: Vec<Raced>,
    folder_times: &'a mut FolderTimes,
    /// `--hard-links`: what each copy of this run left on its receiving side, for the
    /// links that follow it (kept only when the plan has links).
    written: Option<HashMap<RelPath, tandem_core::Entry>>,
    /// Copies to a remote side sent one at a time (a mount's pass), whose answers are
    /// taken after the flush sent behind them (`commit`), or before the next step that is
    /// not such a copy: the file, the folder times and the flush in one round trip.
    deferred: Vec<(Action, Later<tandem_fs::Result<tandem_core::Entry>>)>,
    /// Settling the deferred copies: their folders were noted when they were sent, and no
    /// commit is nested in it (one follows).
    settling: bool,
}

impl<'a, 'r> Applier<'a, 'r> {
    fn new(
        ctx: &'a Ctx<'r>,
        store: &'a mut Store,
        report: &'a mut Report,
        on_event: &'a dyn Fn(Event),
        folder_times: &'a mut FolderTimes,
    ) -> Self {
        Applier {
            ctx,
            store,
            report,
            on_event,
            pending: Vec::new(),
            batch: Vec::new(),
            error: None,
            wrote_since_commit: false,
            last_commit: Instant::now(),
            raced: Vec::new(),
            folder_times,
            written: None,
            deferred: Vec::new(),
            settling: false,
        }
    }

    /// Applies the plan in order, copies in parallel; returns the steps refused because the
    /// disk changed under them.
    fn run(mut self, actions: Vec<Action>) -> Result<Vec<Raced>, EngineError> {
        // Renames first: the plan's early steps (forget, record) name paths as they are
        // after the renames, and a baseline change below a renamed folder recorded before
        // that folder's move was left behind by it (issue 20: an entry for a file that
        // neither side holds).
        // Links last: after the copies they may follow. Reordered in place (renames and
        // links, usually few, copied out): a plan is not held twice.
        let mut actions = actions;
        let rename = |a: &Action| matches!(a, Action::Rename { .. });
        let link = |a: &Action| matches!(a, Action::Link { .. });
        let renames: Vec<Action> = actions.iter().filter(|a| rename(a)).cloned().collect();
        let links: Vec<Action> = actions.iter().filter(|a| link(a)).cloned().collect();
        if !renames.is_empty() || !links.is_empty() {
            actions.retain(|a| !rename(a) && !link(a));
            actions.splice(0..0, renames);
        }
        if !links.is_empty() {
            self.written = Some(HashMap::new());
        }
        actions.extend(links);
        self.steps(&actions)?;
        self.last_commit()?;
        Ok(self.raced)
    }

    /// A step of a first sync, handed in as the merge decides it (a folder's `Mkdir`
    /// before what goes inside it): applied in batches of `STREAM_BATCH`, each announced
    /// as planned before it starts.
    fn stream(&mut self, a: Action) {
        if trace_on() {
            tracing::info!("trace: streamed: {a:?}");
        }
        self.batch.push(a);
        if self.batch.len() >= STREAM_BATCH && self.error.is_none() {
            if let Err(e) = self.apply_batch() {
                self.error = Some(e);
            }
        }
    }

    fn apply_batch(&mut self) -> Result<(), EngineError> {
        let mut batch = std::mem::take(&mut self.batch);
        if batch.is_empty() || self.stopping() {
            return Ok(());
        }
        // The batch's folders first (a stable sort: in path order, each before what goes
        // inside it), then its copies: one parallel run of copies, not one per folder with
        // its own threads started (30k files: 5,800 thread starts, a quarter of the first
        // sync's time on tmpfs).
        batch.sort_by_key(|a| !matches!(a, Action::Mkdir { .. }));
        let bytes = copy_bytes(&batch);
        (self.on_event)(Event::Planned {
            actions: batch.len(),
            bytes,
        });
        self.folder_times
            .note_plan([self.ctx.src, self.ctx.tgt], &batch);
        self.steps(&batch)
    }

    /// The stream's last batch applied and everything committed; the steps refused
    /// because the disk changed under them.
    fn finish_stream(mut self) -> Result<Vec<Raced>, EngineError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.apply_batch()?;
        self.last_commit()?;
        Ok(self.raced)
    }

    /// Applies `actions` in order, runs of copies in parallel. With a side on another
    /// machine, runs of every step but renames, links and conflicts, each waiting only for
    /// the earlier steps on related paths (`order`): one round trip per folder made or
    /// file deleted, in a row, would be the whole run's time there.
    fn steps(&mut self, actions: &[Action]) -> Result<(), EngineError> {
        let remote = self.ctx.src.local().is_none() || self.ctx.tgt.local().is_none();
        let together = |a: &Action| match remote {
            true => crate::order::pipelined(a),
            false => matches!(a, Action::Copy { .. }),
        };
        let mut i = 0;
        while i < actions.len() && !self.stopping() {
            let a = &actions[i];
            if matches!(a, Action::Link { .. }) {
                self.settle_deferred()?;
                self.link_step(a)?;
                i += 1;
                continue;
            }
            if together(a) {
                let end = actions[i..]
                    .iter()
                    .position(|a| !together(a))
                    .map_or(actions.len(), |n| i + n);
                // On a remote side, a window at a time: each step's dependencies are
                // worked out over its window, and everything before it is done.
                let window = if remote {
                    crate::order::WINDOW
                } else {
                    end - i
                };
                for group in actions[i..end].chunks(window) {
                    if self.stopping() {
                        break;
                    }
                    self.run_parallel(group, remote)?;
                }
                i = end;
                continue;
            }
            self.settle_deferred()?;
            let r = self.ctx.execute(a);
            self.settle(a, r)?;
            i += 1;
        }
        Ok(())
    }

    /// Runs `group` on `ctx.threads` threads. Workers take the next step from a shared
    /// counter and hand results back in small batches: for small files, a wake-up of this
    /// thread per file cost more than the copy (100k empty files: see `RESULT_BATCH`).
    /// `remote`: a side on another machine, where more workers keep more steps in flight
    /// on the wire; each step then waits for the earlier ones on related paths, and the
    /// results are recorded in the plan's order.
    fn run_parallel(&mut self, group: &[Action], remote: bool) -> Result<(), EngineError> {
        let threads = if remote {
            self.ctx.threads.max(REMOTE_IN_FLIGHT)
        } else {
            self.ctx.threads
        };
        let workers = threads.min(group.len());
        if workers <= 1 {
            // One copy (the commonest pass while mounted), or one thread: no thread to start.
            for a in group {
                if self.stopping() {
                    break;
                }
                if remote && self.deferred.len() < DEFERRED_MOST {
                    if let Some(sent) = self.ctx.copy_later(a) {
                        match sent {
                            Ok(later) => {
                                // Its folder's time goes out before the flush, with it. (A
                                // copy that then fails has it set all the same: harmless,
                                // folder times are never compared; its retry sets it again.)
                                self.folder_times.note_done(a);
                                self.deferred.push((a.clone(), later));
                            }
                            Err(e) => {
                                let r = self.ctx.copied(a, Err(e));
                                self.settle(a, r)?;
                            }
                        }
                        continue;
                    }
                }
                self.settle_deferred()?;
                let r = self.ctx.execute(a);
                self.settle(a, r)?;
            }
            return Ok(());
        }
        self.settle_deferred()?;
        let gate = remote.then(|| crate::order::Gate::new(group));
        let stop = AtomicBool::new(false);
        let next = AtomicUsize::new(0);
        let (res_tx, res_rx) = crossbeam_channel::unbounded::<Vec<(usize, _)>>();
        let ctx = self.ctx;
        std::thread::scope(|s| -> Result<(), EngineError> {
            for _ in 0..workers {
                let (res_tx, stop, next, gate) = (res_tx.clone(), &stop, &next, gate.as_ref());
                s.spawn(move || work(ctx, group, gate, stop, next, &res_tx));
            }
            drop(res_tx);
            // In the plan's order where steps may depend on each other: a folder's
            // deletion is recorded after its contents'.
            let mut ready = std::collections::BTreeMap::new();
            let mut settled_to = 0;
            for batch in res_rx.iter() {
                ready.extend(batch);
                loop {
                    let first = match remote {
                        true => ready.remove(&settled_to).map(|r| (settled_to, r)),
                        false => ready.pop_first(),
                    };
                    let Some((i, r)) = first else { break };
                    settled_to = i + 1;
                    let settled = self.settle(&group[i], r);
                    if settled.is_err() || self.stopping() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    settled?;
                }
            }
            Ok(())
        })
    }

    /// Takes the answers of the copies sent ahead (`deferred`), in their order.
    fn settle_deferred(&mut self) -> Result<(), EngineError> {
        self.settling = true;
        let mut settled = Ok(());
        for (a, later) in std::mem::take(&mut self.deferred) {
            let r = self.ctx.copied(&a, later());
            settled = self.settle(&a, r);
            if settled.is_err() {
                break;
            }
        }
        self.settling = false;
        settled
    }

    /// A `Link` whose anchor this plan copied links to what that copy wrote. One whose
    /// anchor was not copied (the copy failed or raced), or that the receiving side cannot
    /// hold (reported once per run), is carried out as the copy it stands for.
    fn link_step(&mut self, a: &Action) -> Result<(), EngineError> {
        let Action::Link {
            path,
            from,
            anchor,
            anchor_expect,
            in_step,
            ..
        } = a
        else {
            return Ok(());
        };
        let mut resolved = a.clone();
        if anchor_expect.is_none() {
            let written = self.written.as_ref().and_then(|w| w.get(anchor));
            let (Some(e), Action::Link { anchor_expect, .. }) = (written, &mut resolved) else {
                return self.copy_instead(a);
            };
            *anchor_expect = Some(Box::new(e.clone()));
        }
        match self.ctx.execute(&resolved) {
            // Already the same content: left as two files.
            Err(e) if e.is_cannot_link() && *in_step => {
                tracing::debug!("{e}: left as it is");
                Ok(())
            }
            Err(e) if e.is_cannot_link() => {
                tracing::debug!("{e}: copied instead");
                self.report.links_copied.push((from.other(), path.clone()));
                self.copy_instead(a)
            }
            r => self.settle(&resolved, r),
        }
    }

    fn copy_instead(&mut self, a: &Action) -> Result<(), EngineError> {
        let Some(copy) = a.as_copy() else {
            return Ok(());
        };
        let r = self.ctx.execute(&copy);
        self.settle(&copy, r)
    }

    /// True once the run must start no more steps: stopped on an error, or asked to stop
    /// (which is then said in the report: the steps already done are committed as usual).
    fn stopping(&mut self) -> bool {
        if self.report.stopped.is_none() && self.ctx.stop_asked() {
            self.report.interrupted = true;
            self.report.stopped = Some(
                "stopped on request: what was done so far is recorded; the next run finishes the rest".into(),
            );
        }
        self.report.stopped.is_some()
    }

    fn settle(&mut self, a: &Action, r: tandem_fs::Result<Vec<Update>>) -> Result<(), EngineError> {
        match r {
            Ok(updates) => {
                if let Some(Update::Put(_, agreed)) = updates.first() {
                    self.ctx.not_kept.check(&self.ctx.keep, a, agreed);
                }
                if let (Some(w), Action::Copy { from, .. }) = (self.written.as_mut(), a) {
                    for u in &updates {
                        if let Update::Put(p, b) = u {
                            w.insert(p.clone(), b.entry_on(from.other()));
                        }
                    }
                }
                if a.writes_to() == Some(Side::Source) {
                    self.ctx.hooks.after_source_write(a);
                }
                self.count(a);
                if !self.settling {
                    self.folder_times.note_done(a);
                }
                if a.writes_to().is_some() {
                    self.wrote_since_commit = true;
                }
                self.pending.extend(updates);
                let due = self.pending.len() >= COMMIT_BATCH
                    || self.last_commit.elapsed() >= COMMIT_EVERY;
                if due && !self.settling {
                    self.commit()?;
                }
            }
            Err(e) if e.is_raced() => self.raced.push(Raced {
                path: a.path().clone(),
                why: e.to_string(),
                vanished_from: match a {
                    Action::Copy { from, .. } if e.is_vanished() => Some(*from),
                    _ => None,
                },
            }),
            Err(e) if e.is_fatal_for_side() => {
                let side = a.writes_to().map(Side::name).unwrap_or("?");
                self.report.stopped = Some(format!(
                    "stopped: the {side} cannot take more writes ({e}). What was done so far is recorded; run again once the problem is fixed to finish"
                ));
            }
            Err(e) => {
                (self.on_event)(Event::Failed {
                    path: a.path().clone(),
                    error: e.to_string(),
                });
                self.report
                    .failed
                    .push(PathProblem::new(a.path().clone(), e.to_string()));
            }
        }
        Ok(())
    }

    fn count(&mut self, a: &Action) {
        let r = &mut *self.report;
        let mut bytes = 0;
        match a {
            Action::Copy { src, .. } => {
                r.copied += 1;
                r.bytes += src.size;
                bytes = src.size;
            }
            Action::Link { .. } => r.linked += 1,
            Action::Delete { .. } => r.deleted += 1,
            Action::Rename { .. } => r.renamed += 1,
            Action::Mkdir { .. } => r.dirs_created += 1,
            Action::SetMeta { .. } => r.metadata += 1,
            Action::Conflict(c) => {
                (self.on_event)(Event::Conflict {
                    path: c.path.clone(),
                    kind: c.kind.word(),
                    resolution: resolution_word(c),
                });
            }
            Action::Skip { path, .. } | Action::KeptNewer { path, .. } => {
                (self.on_event)(Event::Skipped {
                    path: path.clone(),
                    reason: a.skip_reason().unwrap_or_default(),
                });
            }
            Action::Record { .. } | Action::Forget { .. } => {}
        }
        note_listing(a, self.report);
        if a.writes_to().is_some() {
            (self.on_event)(Event::Done {
                verb: a.verb(),
                path: a.path().clone(),
                side: a.writes_to().map(Side::name),
                bytes,
            });
        }
    }

    /// The round's last commit, the folder times set first (`FolderTimes::apply`): its
    /// flush covers them, and a remote side gets both in one round trip.
    fn last_commit(&mut self) -> Result<(), EngineError> {
        let setting = self
            .folder_times
            .apply([self.ctx.src, self.ctx.tgt], self.ctx.echoes);
        self.commit()?;
        self.folder_times.settle(setting, self.ctx.echoes);
        Ok(())
    }

    /// Invariant 4: the baseline follows what is durable. Flush both roots, then write
    /// every pending change in one transaction.
    fn commit(&mut self) -> Result<(), EngineError> {
        if self.pending.is_empty() && self.deferred.is_empty() {
            return Ok(());
        }
        let mut clock = PhaseClock::new();
        if self.wrote_since_commit || !self.deferred.is_empty() {
            // EachFile: each file was fsynced as it was written; its name is durable only
            // once its folder is (invariant 3), each folder once per batch. Batched: one
            // syncfs covers both roots when they share a file system.
            let durability = self.ctx.durability;
            let (src, tgt) = (self.ctx.src, self.ctx.tgt);
            let shared = durability == Durability::Batched
                && matches!((src.local(), tgt.local()), (Some(s), Some(t)) if s.dev() == t.dev());
            let roots: &[&dyn SideRoot] = if shared { &[tgt] } else { &[src, tgt] };
            for (root, flushed) in roots.iter().zip(flush_all(roots, durability)) {
                if let Err(e) = flushed {
                    self.report.stopped = Some(format!("cannot flush {}: {e}", root.name()));
                    // Not recorded: the next run finds them done, or does them again.
                    self.deferred.clear();
                    return Ok(());
                }
            }
        }
        clock.lap("flush");
        // The copies sent before the flush: their agent finished them before it flushed.
        self.settle_deferred()?;
        // Right before the baseline records anything as done: the roots must still be the
        // folders at their paths, or the steps went into a tree nobody sees any more.
        if let Some(why) = detached_root(self.ctx) {
            self.report.stopped = Some(why);
            self.pending.clear();
            return Ok(());
        }
        let now = now_ns() / 1_000_000_000;
        let batch = self.store.batch()?;
        for u in self.pending.drain(..) {
            match u {
                Update::Put(p, b) => batch.put(&p, &b)?,
                Update::Remove(p) => batch.remove_tree(&p)?,
                Update::Move(from, to) => batch.move_tree(&from, &to)?,
                Update::Conflict(c) => batch.add_conflict(&c, now)?,
                Update::Settle(p) => batch.settle_conflicts_at(&p, now)?,
            }
        }
        batch.commit()?;
        clock.lap("commit");
        self.wrote_since_commit = false;
        self.last_commit = Instant::now();
        Ok(())
    }
}
