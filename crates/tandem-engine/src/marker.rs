//! A pair's folders remember that they were synced (DESIGN.md invariant 10; issue 20 item
//! 4). After a pair's first good sync both roots carry a line for it in `.tandem/markers`
//! (never synced), and the pair's state records that they do. A state file that is missing
//! while a root carries the pair's marker was lost (deleted, moved away, on a disk that
//! lost it): the pair is not new, and a first sync would bring deleted files back and turn
//! edits into conflict copies, so the sync is refused. `tandem forget` removes the markers
//! with the state.
//!
//! The file holds one line per pair the folder belongs to, `<id> source|target <label>`: a
//! folder synced with several targets carries several. The engine's ids are `pair-` and
//! the pair's task id (found without any state); the task layer adds lines of its own, with
//! ids it keeps in the pair's state (`tandem_task`'s markers). Reads and writes go through
//! the root's fd, never through its path (a mount hides a source's path behind itself).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use tandem_fs::os::OwnedFd;

use tandem_core::{RelPath, Side};
use tandem_fs::os::fs::{fsync, mkdirat, openat, renameat, Mode, OFlags};
use tandem_fs::os::io::Errno;
use tandem_fs::Root;
use tandem_state::Pair;

/// Where a root's markers are, relative to the root.
pub const MARKERS: &str = ".tandem/markers";
/// The label of the engine's lines (the task layer writes the task's name).
const PAIR_LABEL: &str = "pair";
/// The pair's state keeps the id of the markers it wrote under this key.
pub(crate) const META_KEY: &str = "pair-marker";

/// One line of a root's markers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    pub id: String,
    pub side: Side,
    /// The task's name, or `pair` for a plain pair.
    pub task: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct MarkerError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// The id of a plain pair's marker: derived from the pair, so that it is found without the
/// pair's state.
pub fn pair_marker_id(pair: &Pair) -> String {
    format!("pair-{}", pair.task_id())
}

fn parse(text: &str) -> Vec<Marker> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (id, side, task) = (w.next()?, w.next()?, w.next()?);
            let side = match side {
                "source" => Side::Source,
                "target" => Side::Target,
                _ => return None,
            };
            Some(Marker {
                id: id.to_string(),
                side,
                task: task.to_string(),
            })
        })
        .collect()
}

fn render(lines: &[Marker]) -> String {
    let mut text = String::from("# tandem: the pairs this folder belongs to; do not edit\n");
    for l in lines {
        text.push_str(&format!("{} {} {}\n", l.id, l.side, l.task));
    }
    text
}

fn err(root: &Root, source: impl Into<std::io::Error>) -> MarkerError {
    MarkerError {
        path: root.path().join(MARKERS),
        source: source.into(),
    }
}

/// A root's markers, read through its fd; none when the file is not there.
pub fn read_at(root: &Root) -> Result<Vec<Marker>, MarkerError> {
    let rel = RelPath::from_str_lossless(MARKERS);
    let fd = match root.open_beneath(&rel, OFlags::RDONLY, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(Vec::new()),
        Err(e) => return Err(err(root, e)),
    };
    let mut text = String::new();
    std::fs::File::from(fd)
        .read_to_string(&mut text)
        .map_err(|e| err(root, e))?;
    Ok(parse(&text))
}

/// The `.tandem` folder of a root, made if missing (never through a symlink).
fn tandem_dir(root: &Root) -> Result<OwnedFd, MarkerError> {
    match mkdirat(root.fd(), ".tandem", Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(err(root, e)),
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY;
    root.open_beneath(&RelPath::from_str_lossless(".tandem"), flags, Mode::empty())
        .map_err(|e| err(root, e))
}

/// Replaces a root's markers with `lines`: written beside the file, flushed, renamed over
/// it, and the rename flushed (a marker must not outlive a power cut less than the state
/// that says it was written). No line left: the file is removed.
pub fn write_at(root: &Root, lines: &[Marker]) -> Result<(), MarkerError> {
    let dir = tandem_dir(root)?;
    if lines.is_empty() {
        return match tandem_fs::os::fs::unlinkat(
            &dir,
            "markers",
            tandem_fs::os::fs::AtFlags::empty(),
        ) {
            Ok(()) | Err(Errno::NOENT) => fsync(&dir).map_err(|e| err(root, e)),
            Err(e) => Err(err(root, e)),
        };
    }
    let flags =
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let tmp =
        openat(&dir, "markers.tmp", flags, Mode::from_raw_mode(0o644)).map_err(|e| err(root, e))?;
    let mut f = std::fs::File::from(tmp);
    f.write_all(render(lines).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| err(root, e))?;
    renameat(&dir, "markers.tmp", &dir, "markers").map_err(|e| err(root, e))?;
    fsync(&dir).map_err(|e| err(root, e))
}

/// Adds `m` to a root's markers (replacing a line with the same id and side).
pub fn add_at(root: &Root, m: &Marker) -> Result<(), MarkerError> {
    let mut lines = read_at(root)?;
    if lines.contains(m) {
        return Ok(());
    }
    lines.retain(|l| !(l.id == m.id && l.side == m.side));
    lines.push(m.clone());
    write_at(root, &lines)
}

/// Whether the root carries a marker `id` for `side`.
pub fn carries_at(root: &Root, id: &str, side: Side) -> Result<bool, MarkerError> {
    Ok(read_at(root)?.iter().any(|m| m.id == id && m.side == side))
}

fn open(root: &Path) -> Result<Option<Root>, MarkerError> {
    match Root::open(root) {
        Ok(r) => Ok(Some(r)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(MarkerError {
            path: root.to_path_buf(),
            source,
        }),
    }
}

/// A folder's markers, by its path; none when the folder or the file is not there.
pub fn read_markers(root: &Path) -> Result<Vec<Marker>, MarkerError> {
    match open(root)? {
        Some(r) => read_at(&r),
        None => Ok(Vec::new()),
    }
}

/// Adds `m` to the markers of the folder at `root`.
pub fn add_marker(root: &Path, m: &Marker) -> Result<(), MarkerError> {
    let r = Root::open(root).map_err(|source| MarkerError {
        path: root.to_path_buf(),
        source,
    })?;
    add_at(&r, m)
}

/// Removes the lines with one of `ids` from the markers of the folder at `root` (a folder
/// that is gone has none). Returns the markers file when something was removed.
pub fn remove_markers(root: &Path, ids: &[String]) -> Result<Option<PathBuf>, MarkerError> {
    let Some(r) = open(root)? else {
        return Ok(None);
    };
    let mut lines = read_at(&r)?;
    let before = lines.len();
    lines.retain(|l| !ids.contains(&l.id));
    if lines.len() == before {
        return Ok(None);
    }
    write_at(&r, &lines)?;
    Ok(Some(root.join(MARKERS)))
}

/// The marker of the pair found in either root, when the pair has no state: the state was
/// lost, and the pair is not new.
pub(crate) fn lost_state_marker(
    pair: &Pair,
    src: &Root,
    tgt: Option<&Root>,
) -> Result<Option<PathBuf>, MarkerError> {
    let id = pair_marker_id(pair);
    if carries_at(src, &id, Side::Source)? {
        return Ok(Some(src.path().join(MARKERS)));
    }
    match tgt {
        Some(t) if carries_at(t, &id, Side::Target)? => Ok(Some(t.path().join(MARKERS))),
        _ => Ok(None),
    }
}

/// Marks both roots as synced as `pair` (a remote target, `None`, carries no marker yet).
pub(crate) fn mark(pair: &Pair, src: &Root, tgt: Option<&Root>) -> Result<(), MarkerError> {
    let id = pair_marker_id(pair);
    let roots = [(Side::Source, Some(src)), (Side::Target, tgt)];
    for (side, root) in roots.into_iter().filter_map(|(s, r)| Some((s, r?))) {
        let m = Marker {
            id: id.clone(),
            side,
            task: PAIR_LABEL.to_string(),
        };
        add_at(root, &m)?;
    }
    Ok(())
}
