//! A task's commands before and after its sync (`before`, `after`), and its priority.
//!
//! A hook is run as `sh -c COMMAND` in a process group of its own, its output going to
//! the run's stderr (stdout stays the run's JSON). A hook still running at its timeout is
//! killed with every process of its group, so a hook that started helpers leaves none
//! behind. The environment a hook sees is documented in README (Tasks, hooks).

use std::ffi::OsString;
use std::fmt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tandem_core::Priority;

use crate::error::TaskError;

/// The default for `hook_timeout`: ten minutes.
pub const DEFAULT_HOOK_TIMEOUT_NS: i64 = 600_000_000_000;

/// A task's hooks, as the config file holds them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hooks {
    /// Run before the sync: a non-zero exit skips the sync.
    pub before: Option<String>,
    /// Run after the sync (or after a skipped one), with its result.
    pub after: Option<String>,
    /// How long each hook may run (nanoseconds) before its processes are killed.
    pub timeout: i64,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            before: None,
            after: None,
            timeout: DEFAULT_HOOK_TIMEOUT_NS,
        }
    }
}

/// How a hook ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookEnd {
    Exited(i32),
    Signaled(i32),
    /// Still running at its timeout: its process group was killed.
    TimedOut(Duration),
    /// Still running when the run was asked to stop (a signal): its process group was
    /// killed.
    Stopped,
    /// `sh` could not be started (or waited for).
    NotStarted(String),
}

/// One hook's run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookOutcome {
    /// `before` or `after`.
    pub which: &'static str,
    pub command: String,
    pub end: HookEnd,
    pub took: Duration,
}

impl HookOutcome {
    pub fn ok(&self) -> bool {
        self.end == HookEnd::Exited(0)
    }
}

impl fmt::Display for HookOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the {} hook ", self.which)?;
        match &self.end {
            HookEnd::Exited(0) => f.write_str("succeeded"),
            HookEnd::Exited(127) => f.write_str("exited with 127 (command not found?)"),
            HookEnd::Exited(n) => write!(f, "exited with {n}"),
            HookEnd::Signaled(s) => write!(f, "was killed by signal {s}"),
            HookEnd::NotStarted(e) => write!(f, "could not be started: {e}"),
            HookEnd::Stopped => f.write_str(
                "was still running when the run was asked to stop: it was killed with every process it started",
            ),
            HookEnd::TimedOut(t) => write!(
                f,
                "was still running after {}: it was killed with every process it started",
                crate::spec::format_duration_ns(t.as_nanos() as i64)
            ),
        }
    }
}

/// Runs `sh -c command` with `env` added, in its own process group, for at most
/// `timeout` and until `stop` is set; its output goes to our stderr.
pub fn run_hook(
    which: &'static str,
    command: &str,
    env: &[(&str, OsString)],
    timeout: Duration,
    stop: &AtomicBool,
) -> HookOutcome {
    let started = Instant::now();
    let end = spawn_and_wait(which, command, env, timeout, stop)
        .unwrap_or_else(|e| HookEnd::NotStarted(e.to_string()));
    let outcome = HookOutcome {
        which,
        command: command.to_string(),
        end,
        took: started.elapsed(),
    };
    tracing::debug!("{outcome}");
    outcome
}

fn spawn_and_wait(
    which: &str,
    command: &str,
    env: &[(&str, OsString)],
    timeout: Duration,
    stop: &AtomicBool,
) -> std::io::Result<HookEnd> {
    let stderr = crate::sys::stderr_for_child()?;
    let mut child = crate::sys::own_group(
        Command::new("sh")
            .arg("-c")
            .arg(command)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(stderr),
    )
    .spawn()?;
    let group = crate::sys::group_of(&child);
    tracing::debug!("{which} hook started (pid {}): {command}", child.id());
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let deadline = Instant::now() + timeout;
    let end = loop {
        // A stop is looked at every STOP_CHECK while a hook runs (a signal handler can only
        // set a flag); nothing wakes an idle tandem for it.
        let slice = deadline
            .saturating_duration_since(Instant::now())
            .min(STOP_CHECK);
        match rx.recv_timeout(slice) {
            Ok(status) => break ended(status?),
            Err(_) if stop.load(Ordering::Relaxed) => {
                break kill_group(group, &rx, HookEnd::Stopped)
            }
            Err(_) if Instant::now() >= deadline => {
                break kill_group(group, &rx, HookEnd::TimedOut(timeout))
            }
            Err(_) => {}
        }
    };
    let _ = waiter.join();
    Ok(end)
}

/// How often a running hook looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Kills the hook's whole process group and reaps the shell. The group's id is the
/// shell's pid, not reaped yet: it cannot name another group.
fn kill_group<T>(group: crate::sys::Group, rx: &mpsc::Receiver<T>, end: HookEnd) -> HookEnd {
    crate::sys::kill_group(group);
    let _ = rx.recv();
    end
}

fn ended(status: ExitStatus) -> HookEnd {
    match (status.code(), crate::sys::signal_of(&status)) {
        (Some(c), _) => HookEnd::Exited(c),
        (None, Some(s)) => HookEnd::Signaled(s),
        _ => HookEnd::Exited(-1),
    }
}

/// Words `sh` runs itself, or that start shell syntax rather than name a program.
const SHELL_WORDS: &[&str] = &[
    ".", ":", "[", "alias", "bg", "break", "case", "cd", "command", "continue", "echo", "eval",
    "exec", "exit", "export", "false", "fg", "for", "getopts", "hash", "if", "jobs", "kill",
    "printf", "pwd", "read", "readonly", "return", "set", "shift", "test", "times", "trap", "true",
    "type", "ulimit", "umask", "unalias", "unset", "until", "wait", "while", "!", "{", "(",
];

/// The program a hook's command starts is there: its first word (after any `VAR=value`
/// assignments) is a shell builtin or keyword, an executable file given as a path, or
/// an executable file on `PATH`. Returns why not.
pub fn check_command(command: &str) -> Result<(), String> {
    let Some(first) = program_word(command) else {
        return Err("names no program to run".to_string());
    };
    if SHELL_WORDS.contains(&first)
        || first.starts_with(['(', '{', '$', '`'])
        || first.contains(['(', ';', '|', '&', '<', '>', '$', '`'])
    {
        return Ok(());
    }
    if first.contains('/') {
        return if executable(Path::new(first)) {
            Ok(())
        } else {
            Err(format!("{first} is not an executable file"))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|dir| executable(&dir.join(first))) {
        Ok(())
    } else {
        Err(format!(
            "{first} is not a shell builtin, nor an executable file on PATH"
        ))
    }
}

/// The first word of `command` that is not a `VAR=value` assignment, its quotes taken
/// off (`'/my tools/backup' --now` is `/my tools/backup`).
fn program_word(command: &str) -> Option<&str> {
    let mut rest = command.trim_start();
    while !rest.is_empty() {
        let (word, after) = match rest.chars().next() {
            Some(q @ ('\'' | '"')) => match rest[1..].find(q) {
                Some(end) => (&rest[1..end + 1], &rest[end + 2..]),
                None => (&rest[1..], ""),
            },
            _ => {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            }
        };
        if !is_assignment(word) {
            return Some(word);
        }
        rest = after.trim_start();
    }
    None
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

fn executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| crate::sys::is_executable(&m))
}

/// Lowers the calling thread's CPU nice value and I/O priority for the rest of its life;
/// the threads and processes it starts afterwards (the sync's workers, the hooks) inherit
/// them. On Linux both are per thread: `tandem run` calls this on its main thread before
/// any worker starts, so the whole run has them (`/proc/PID/stat` shows the main
/// thread's). Without privileges they cannot be raised again: a long-lived caller (a
/// daemon) should run each task on a thread or process of its own.
pub fn apply_priority(p: Priority) -> Result<(), TaskError> {
    let (nice, ioprio) = match p {
        Priority::Normal => return Ok(()),
        Priority::Low => (10, (IOPRIO_CLASS_BE << IOPRIO_CLASS_SHIFT) | 7),
        Priority::Idle => (19, IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT),
    };
    let failed = |what: &'static str| {
        move |source| TaskError::Priority {
            what,
            priority: p,
            source,
        }
    };
    // A nice value can only go up without privileges: never below the one we have.
    let nice = crate::sys::raise_nice(nice).map_err(failed("nice"))?;
    crate::sys::set_io_priority(ioprio).map_err(failed("I/O class"))?;
    tracing::debug!("priority {p}: nice {nice}, I/O priority {ioprio:#x}");
    Ok(())
}

const IOPRIO_CLASS_SHIFT: libc::c_int = 13;
const IOPRIO_CLASS_BE: libc::c_int = 2;
const IOPRIO_CLASS_IDLE: libc::c_int = 3;
