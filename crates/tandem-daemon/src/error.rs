use std::path::PathBuf;

use tandem_engine::{EngineError, RootError};
use tandem_state::StateError;

/// What stops a mount or the daemon. The message says what was being done; the cause
/// follows as the error's source.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot mount")]
    Setup(#[source] tandem_core::MountSetupError),
    #[error("{what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A request refused before anything changed, with its reason.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Config(tandem_task::TaskError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Roots(#[from] RootError),
    #[error(transparent)]
    Remote(#[from] tandem_remote::RemoteSyncError),
    #[error("the startup sync with {} stopped: {why}", tgt.display())]
    StartupStopped { tgt: PathBuf, why: String },
    #[error("internal error: a replicator thread panicked")]
    Panicked,
    #[error("a tandem daemon is already running{}; stop it first (`kill {}`, or `systemctl --user stop tandem`)", pid.map(|p| format!(" (pid {p})")).unwrap_or_default(), pid.map(|p| p.to_string()).unwrap_or_else(|| "PID".into()))]
    AlreadyRunning { pid: Option<u32> },
    /// Something this platform cannot do yet.
    #[error("{0}")]
    NotSupported(&'static str),
}

impl DaemonError {
    /// An I/O error on `path` while doing `what` ("opening", "creating", ...).
    pub fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> DaemonError {
        let path = path.into();
        move |source| DaemonError::Io { what, path, source }
    }
}

/// Opens (or makes) a lock file to take an advisory lock on, its content left as it is.
pub(crate) fn open_lock_file(path: &std::path::Path) -> Result<std::fs::File, DaemonError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(DaemonError::io("opening", path))
}
