//! The daemon's child processes: each run of a task is `tandem run NAME --trigger T`, a
//! process of its own (its priority, its crash and its memory stay its own), in a process
//! group of its own (a Ctrl-C in the daemon's terminal reaches the daemon, which stops its
//! children in order). A thread per child waits for it and reports its end as an event:
//! nothing polls.

use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crossbeam_channel::Sender;
use rustix::process::{kill_process, kill_process_group, Pid, Signal};

use super::Event;

/// What a child process is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One run of the task.
    Run,
    /// The mount of a continuous task's source number `pair`.
    Mount { pair: usize },
}

/// How a child ended: its exit code, or the signal that killed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Code(i32),
    Signal(i32),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Code(c) => write!(f, "exit code {c}"),
            Ended::Signal(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// Starts `exe ARGS` with its output appended to `log`; its end is sent as
/// `Event::Exited` for `task`. Returns its pid.
pub fn spawn(
    exe: &Path,
    args: &[OsString],
    log: &Path,
    task: &str,
    kind: Kind,
    events: &Sender<Event>,
) -> std::io::Result<u32> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        // The service manager hears from the daemon only.
        .env_remove("NOTIFY_SOCKET")
        .process_group(0)
        .spawn()?;
    let pid = child.id();
    let (task, events) = (task.to_string(), events.clone());
    std::thread::Builder::new()
        .name(format!("wait-{pid}"))
        .spawn(move || {
            let ended = match child.wait() {
                Ok(s) => match (s.code(), s.signal()) {
                    (Some(c), _) => Ended::Code(c),
                    (None, Some(sig)) => Ended::Signal(sig),
                    _ => Ended::Code(-1),
                },
                Err(_) => Ended::Code(-1),
            };
            let _ = events.send(Event::Exited {
                task,
                kind,
                pid,
                ended,
            });
        })?;
    Ok(pid)
}

/// Asks a child to stop (SIGTERM to the child itself: it stops its own helpers).
pub fn terminate(pid: u32) {
    if let Some(pid) = Pid::from_raw(pid as i32) {
        let _ = kill_process(pid, Signal::TERM);
    }
}

/// Kills a child and everything in its process group.
pub fn kill(pid: u32) {
    if let Some(pid) = Pid::from_raw(pid as i32) {
        let _ = kill_process_group(pid, Signal::KILL);
    }
}

/// The log of a task's runs started by the daemon: their output and the daemon's lines
/// about them.
pub fn task_log(task: &str) -> PathBuf {
    tandem_task::task_state_dir(task).join("daemon.log")
}
