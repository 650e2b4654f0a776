//! Starting one of our own commands in the background: `tandem mount` and `tandem daemon`
//! without `--foreground` run themselves again with it, in a session of their own (they
//! outlive the terminal), logging to a file, and return once the new process is up.

use std::ffi::OsString;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Asks process `pid` (one of ours started in the background) to stop: SIGTERM on Unix,
/// on which it stops cleanly; ended at once elsewhere.
pub fn terminate(pid: u32) -> std::io::Result<()> {
    crate::sys::terminate(pid)
}

/// Why a background start failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// It exited before it was up; `tail` is what it logged meanwhile.
    #[error("the {name} process exited ({status}); its log is {}", log.display())]
    Exited {
        name: &'static str,
        status: ExitStatus,
        log: PathBuf,
        tail: String,
    },
    #[error("the {name} did not come up within {limit:?}; see {}", log.display())]
    NotUp {
        name: &'static str,
        limit: Duration,
        log: PathBuf,
    },
}

/// What to start and how to tell it is up.
pub struct Start<'a> {
    /// What it is, for messages: "mount", "daemon".
    pub name: &'static str,
    /// The arguments of the tandem binary (this process's own executable).
    pub args: Vec<OsString>,
    /// Its standard output and error are appended here.
    pub log: PathBuf,
    /// How long it may take to come up.
    pub limit: Duration,
    /// Called with the child's pid until it says the child is up.
    pub is_up: &'a dyn Fn(u32) -> bool,
}

/// Starts the command and waits until it is up (`Ok(pid)`), has exited, or the limit has
/// passed (it is then left running).
pub fn start(s: &Start<'_>) -> Result<u32, StartError> {
    let io = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| StartError::Io { what, path, source }
    };
    if let Some(dir) = s.log.parent() {
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&s.log)
        .map_err(io("opening", &s.log))?;
    let start_at = log.metadata().map_err(io("reading", &s.log))?.len();
    let exe = std::env::current_exe().map_err(io("finding", Path::new("the tandem binary")))?;
    let mut cmd = Command::new(exe);
    cmd.args(&s.args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(io("opening", &s.log))?)
        .stderr(log);
    crate::sys::own_session(&mut cmd);
    let mut child = cmd.spawn().map_err(io("starting", Path::new(s.name)))?;
    let started = Instant::now();
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(io("waiting for", Path::new(s.name)))?
        {
            return Err(StartError::Exited {
                name: s.name,
                status,
                log: s.log.clone(),
                tail: read_from(&s.log, start_at),
            });
        }
        if (s.is_up)(child.id()) {
            return Ok(child.id());
        }
        if started.elapsed() > s.limit {
            return Err(StartError::NotUp {
                name: s.name,
                limit: s.limit,
                log: s.log.clone(),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_from(path: &Path, offset: u64) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.seek(SeekFrom::Start(offset));
        let _ = f.read_to_string(&mut s);
    }
    s
}
