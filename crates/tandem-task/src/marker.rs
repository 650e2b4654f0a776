//! A task's folders are identified, not just named (DESIGN.md invariant 10): after a
//! pair's first sync, both roots carry a marker, a line `<id> source|target <task>` in
//! `.tandem/markers` (never synced), and the pair's state keeps the id. A later run finds
//! the marker in each root or changes nothing: a source renamed, moved or replaced, or a
//! target place that now holds another folder, is named instead of being synced as new.
//! A state that is missing while both roots carry their markers is an error, never a
//! silent first sync. `tandem task edit --source NEW` re-points a pair by its markers and
//! keeps its state.

use std::io::Read;
use std::path::{Path, PathBuf};

use tandem_core::Side;
use tandem_engine::{Report, SyncSpec};
use tandem_state::{Lock, Pair, StateError, Store};

use crate::error::{Problem, TaskError};
use crate::spec::{TaskPair, TaskSpec};

pub use tandem_engine::marker::{Marker, MARKERS};
/// The key of the marker id in the pair's state.
const META_KEY: &str = "marker";

impl From<tandem_engine::marker::MarkerError> for TaskError {
    fn from(e: tandem_engine::marker::MarkerError) -> TaskError {
        TaskError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

/// A root's markers; none when the root or the file is not there.
pub fn read_markers(root: &Path) -> Result<Vec<Marker>, TaskError> {
    Ok(tandem_engine::marker::read_markers(root)?)
}

fn carries(root: &Path, id: &str, side: Side) -> Result<bool, TaskError> {
    Ok(read_markers(root)?
        .iter()
        .any(|m| m.id == id && m.side == side))
}

/// Adds a marker to a root's file (written beside it, then renamed over it).
fn add_marker(root: &Path, m: &Marker) -> Result<(), TaskError> {
    Ok(tandem_engine::marker::add_marker(root, m)?)
}

fn new_id() -> Result<String, TaskError> {
    let path = PathBuf::from("/dev/urandom");
    let mut bytes = [0u8; 12];
    std::fs::File::open(&path)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|source| TaskError::Io { path, source })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn state_error(task: &TaskSpec, key: &str, e: StateError) -> TaskError {
    TaskError::Invalid {
        at: Box::new(task.at(key)),
        problem: Box::new(Problem::State(e)),
    }
}

fn pair_of(spec: &SyncSpec) -> Pair {
    Pair {
        src: spec.src.to_string_lossy().into_owned(),
        tgt: spec.tgt.to_string_lossy().into_owned(),
    }
}

/// The marker id a pair's state keeps, if it has state and an id.
fn stored_id(dir: &Path, pair: &Pair) -> Result<Option<String>, StateError> {
    match Store::open_existing(dir, pair)? {
        Some(store) => store.meta(META_KEY),
        None => Ok(None),
    }
}

/// One pair of a task run: the engine's spec and the pair's marker id (`None`: the
/// markers are written after its first good sync).
#[derive(Clone, Debug)]
pub struct PlannedPair {
    pub spec: SyncSpec,
    pub marker: Option<String>,
    /// How to reach the target when it is on another machine (synced through
    /// `tandem_remote`, as `tandem sync` does): its marker is then only on the source.
    pub remote: Option<tandem_remote::Connect>,
    task: String,
}

impl PlannedPair {
    /// Checks the pair's markers against its state before it is synced.
    pub(crate) fn checked(
        task: &TaskSpec,
        key: &str,
        spec: SyncSpec,
    ) -> Result<PlannedPair, TaskError> {
        let pair = pair_of(&spec);
        let has_state =
            tandem_state::state_exists(&spec.state_dir).map_err(|e| state_error(task, key, e))?;
        let invalid = |problem| TaskError::Invalid {
            at: Box::new(task.at(key)),
            problem: Box::new(problem),
        };
        let remote = task.connect(&spec.tgt);
        let marker = if has_state {
            stored_id(&spec.state_dir, &pair).map_err(|e| state_error(task, key, e))?
        } else {
            None
        };
        if let Some(id) = &marker {
            let sides = [(Side::Source, &spec.src), (Side::Target, &spec.tgt)];
            let local = sides.len() - usize::from(remote.is_some());
            for (side, root) in sides.into_iter().take(local) {
                // A target that is gone is the engine's to refuse (an unmounted disk).
                let gone = side == Side::Target && std::fs::symlink_metadata(root).is_err();
                if !gone && !carries(root, id, side)? {
                    return Err(invalid(Problem::MarkerMissing {
                        side,
                        root: root.clone(),
                        expected: root.join(MARKERS),
                        task: task.name.clone(),
                    }));
                }
            }
        } else if !has_state && remote.is_none() {
            let src = read_markers(&spec.src)?;
            let tgt = read_markers(&spec.tgt)?;
            let both = src.iter().find(|s| {
                s.side == Side::Source && tgt.iter().any(|t| t.id == s.id && t.side == Side::Target)
            });
            if both.is_some() {
                return Err(invalid(Problem::StateLost {
                    state: spec.state_dir.join(tandem_state::DB_FILE),
                    src: spec.src.clone(),
                    tgt: spec.tgt.clone(),
                }));
            }
        }
        Ok(PlannedPair {
            spec,
            marker,
            remote,
            task: task.name.clone(),
        })
    }

    /// After a pair's first good sync (not a dry run, nothing stopped), both roots get
    /// their marker, then the state keeps its id.
    pub fn mark_synced(&self, report: &Report) -> Result<(), TaskError> {
        if self.marker.is_some() || self.spec.dry_run || report.exit_code() >= 2 {
            return Ok(());
        }
        let id = new_id()?;
        let sides = [
            (Side::Source, &self.spec.src),
            (Side::Target, &self.spec.tgt),
        ];
        let local = sides.len() - usize::from(self.remote.is_some());
        for (side, root) in sides.into_iter().take(local) {
            let m = Marker {
                id: id.clone(),
                side,
                task: self.task.clone(),
            };
            add_marker(root, &m)?;
        }
        let dir = &self.spec.state_dir;
        let state = |e| TaskError::Io {
            path: dir.clone(),
            source: std::io::Error::other(e),
        };
        let _lock = Lock::acquire(dir).map_err(state)?;
        let store = Store::open(dir, &pair_of(&self.spec)).map_err(state)?;
        store.set_meta(META_KEY, &id).map_err(state)
    }
}

/// A pair's state to move with its folders (`task edit` re-pointing a source or target).
#[derive(Clone, Debug)]
pub struct Repoint {
    pub from: TaskPair,
    pub to: TaskPair,
    from_dir: PathBuf,
    to_dir: PathBuf,
    from_pair: Pair,
    to_pair: Pair,
}

/// The pairs of `old` that `new` no longer has, matched by their markers with the new
/// pairs: each one found is to be re-pointed, keeping its state. A new source that
/// carries an old pair's marker while its target does not (the folder was renamed, so
/// its copy's name changed) is refused.
pub fn plan_repoints(old: &TaskSpec, new: &TaskSpec) -> Result<Vec<Repoint>, TaskError> {
    let (old_pairs, new_pairs) = (old.pairs(), new.pairs());
    let added: Vec<&TaskPair> = new_pairs
        .iter()
        .filter(|p| !old_pairs.contains(p))
        .collect();
    let mut moves = Vec::new();
    for from in old_pairs.iter().filter(|p| !new_pairs.contains(p)) {
        let from_pair = TaskSpec::state_pair(from);
        let from_dir = tandem_state::default_state_dir(&from_pair);
        let Some(id) =
            stored_id(&from_dir, &from_pair).map_err(|e| state_error(old, "sources", e))?
        else {
            continue;
        };
        for (i, to) in added.iter().enumerate() {
            if !carries(&to.source, &id, Side::Source)? {
                continue;
            }
            if !carries(&to.target, &id, Side::Target)? {
                return Err(TaskError::Invalid {
                    at: Box::new(new.at(&format!("sources[{i}]"))),
                    problem: Box::new(Problem::CopyNotMoved {
                        src: to.source.clone(),
                        old_target: from.target.clone(),
                        new_target: to.target.clone(),
                    }),
                });
            }
            let to_pair = TaskSpec::state_pair(to);
            let to_dir = tandem_state::default_state_dir(&to_pair);
            moves.push(Repoint {
                from: from.clone(),
                to: (*to).clone(),
                from_dir: from_dir.clone(),
                to_dir,
                from_pair: from_pair.clone(),
                to_pair,
            });
        }
    }
    Ok(moves)
}

impl Repoint {
    /// Moves the pair's state to the new pair's place, under its lock. Refused when the
    /// new pair has state of its own.
    pub fn apply(&self) -> Result<(), TaskError> {
        let state = |dir: &Path| {
            let path = dir.to_path_buf();
            move |e| TaskError::Io {
                path,
                source: std::io::Error::other(e),
            }
        };
        if tandem_state::state_exists(&self.to_dir).map_err(state(&self.to_dir))? {
            return Err(TaskError::Io {
                path: self.to_dir.clone(),
                source: std::io::Error::other(
                    "the re-pointed pair already has state here; move it away first",
                ),
            });
        }
        let _lock = Lock::acquire(&self.from_dir).map_err(state(&self.from_dir))?;
        let store = Store::open(&self.from_dir, &self.from_pair).map_err(state(&self.from_dir))?;
        store
            .repoint(&self.to_pair)
            .map_err(state(&self.from_dir))?;
        drop(store);
        // A directory left with a lock file only (an earlier attempt) gives way; one that
        // holds anything else makes the rename below fail, naming it.
        let _ = std::fs::remove_file(self.to_dir.join("lock"));
        let _ = std::fs::remove_dir(&self.to_dir);
        std::fs::rename(&self.from_dir, &self.to_dir).map_err(|source| TaskError::Io {
            path: self.to_dir.clone(),
            source,
        })
    }
}
