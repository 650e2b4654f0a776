//! What can be wrong with a task or the config file, always saying where: the file, the
//! line and the key when the task was read from the file, the task's name otherwise.

use std::fmt;
use std::io;
use std::path::PathBuf;

use tandem_core::{Side, UnknownWord};
use tandem_engine::RootError;
use tandem_state::StateError;

/// Where a problem is: a task's key in the config file (`FILE:LINE: task NAME, KEY`), or a
/// task given on the command line (`task NAME, KEY`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: Option<PathBuf>,
    pub line: Option<usize>,
    pub task: Option<String>,
    pub key: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
            f.write_str(": ")?;
        }
        match (&self.task, &self.key) {
            (Some(t), Some(k)) => write!(f, "task {t}, {k}"),
            (Some(t), None) => write!(f, "task {t}"),
            (None, Some(k)) => write!(f, "{k}"),
            (None, None) => f.write_str("the config"),
        }
    }
}

/// What is wrong with one value.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("unknown key (known keys: {known})")]
    UnknownKey { known: String },
    #[error("is required")]
    Missing,
    #[error("must be {expected}")]
    WrongType { expected: &'static str },
    #[error(transparent)]
    Word(#[from] UnknownWord),
    #[error("{0}")]
    Value(String),
    #[error("{} is not an absolute path", .0.display())]
    NotAbsolute(PathBuf),
    #[error(transparent)]
    Root(#[from] RootError),
    #[error("the sources {} and {} have the same folder name {name:?}: both would go to the same target folder; rename one of them or make two tasks", a.display(), b.display())]
    SameName {
        name: String,
        a: PathBuf,
        b: PathBuf,
    },
    #[error("the source {} is given twice{}", a.display(), if a == b { String::new() } else { format!(", also reached as {}", b.display()) })]
    SourceTwice { a: PathBuf, b: PathBuf },
    #[error("the source {} is inside the source {}; choose folders that do not contain each other", inner.display(), outer.display())]
    SourcesNested { inner: PathBuf, outer: PathBuf },
    #[error("the source {} has no folder name", .0.display())]
    NoFolderName(PathBuf),
    #[error("the source folder {} does not exist: was it renamed or moved? Nothing was changed. If it moved, `tandem task edit {task} --source NEW-PLACE` points the task at it and keeps its history", path.display())]
    SourceGone { path: PathBuf, task: String },
    #[error("{}", marker_missing(*.side, root, expected, task))]
    MarkerMissing {
        side: Side,
        root: PathBuf,
        expected: PathBuf,
        task: String,
    },
    #[error("both {} and {} carry the marker of an earlier sync of this pair, but its state {} is missing: syncing them as new could bring deleted files back, so nothing was changed. Put the state back, or remove this pair's line from both folders' .tandem/markers to sync them as new", src.display(), tgt.display(), state.display())]
    StateLost {
        state: PathBuf,
        src: PathBuf,
        tgt: PathBuf,
    },
    #[error("{} carries the marker of the source whose copy is {}; with its new folder name its copy would be {}: rename {} to {} as well, then edit the task again (nothing was changed)", src.display(), old_target.display(), new_target.display(), old_target.display(), new_target.display())]
    CopyNotMoved {
        src: PathBuf,
        old_target: PathBuf,
        new_target: PathBuf,
    },
    #[error(transparent)]
    State(StateError),
}

fn marker_missing(
    side: Side,
    root: &std::path::Path,
    expected: &std::path::Path,
    task: &str,
) -> String {
    match side {
        Side::Source => format!(
            "the source {} is not the folder synced before: it does not carry this task's marker (expected in {}). It was renamed, moved or replaced since the last run; nothing was changed. If it moved, `tandem task edit {task} --source NEW-PLACE` points the task at it and keeps its history",
            root.display(),
            expected.display()
        ),
        Side::Target => format!(
            "the target {} is not the folder synced before: it does not carry this task's marker (expected in {}). Another folder or disk is there now; nothing was changed. Put back (or mount) the folder synced before",
            root.display(),
            expected.display()
        ),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{at}: {problem}")]
    Invalid {
        at: Box<Location>,
        problem: Box<Problem>,
    },
    #[error("could not lower the {what} to the priority {priority}: {source}")]
    Priority {
        what: &'static str,
        priority: tandem_core::Priority,
        source: io::Error,
    },
    #[error("run history {}: {source}", path.display())]
    History {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("task {name} is already running{}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Running { name: String, pid: Option<u32> },
    #[error("{0}")]
    State(Box<tandem_state::StateError>),
    #[error("{name:?} is not a task name: {why}")]
    BadName { name: String, why: &'static str },
    #[error("there is already a task named {name} in {}", path.display())]
    Exists { name: String, path: PathBuf },
    #[error("there is no task named {name} in {}{}", path.display(), known_tasks(.known))]
    NoSuchTask {
        name: String,
        path: PathBuf,
        known: Vec<String>,
    },
}

fn known_tasks(names: &[String]) -> String {
    if names.is_empty() {
        " (it has no tasks: add one with `tandem task add`)".to_string()
    } else {
        format!(" (tasks: {})", names.join(", "))
    }
}
