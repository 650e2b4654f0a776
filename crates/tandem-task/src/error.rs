//! What can be wrong with a task or the config file, always saying where: the file, the
//! line and the key when the task was read from the file, the task's name otherwise.

use std::fmt;
use std::io;
use std::path::PathBuf;

use tandem_core::UnknownWord;
use tandem_engine::RootError;

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
