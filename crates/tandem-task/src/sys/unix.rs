//! Processes on Unix: process groups, signals, mode bits, nice values.

use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};

use rustix::process::{kill_process_group, Pid, Signal};

/// A started command's process group (its own: see [`own_group`]).
pub(crate) type Group = Pid;

/// The command is started in a process group of its own, killed as a whole.
pub(crate) fn own_group(cmd: &mut Command) -> &mut Command {
    cmd.process_group(0)
}

pub(crate) fn group_of(child: &Child) -> Group {
    Pid::from_child(child)
}

/// Kills every process of the group.
pub(crate) fn kill_group(group: Group) {
    let _ = kill_process_group(group, Signal::KILL);
}

/// The signal that ended the process, if one did.
pub(crate) fn signal_of(status: &ExitStatus) -> Option<i32> {
    status.signal()
}

pub(crate) fn is_executable(m: &std::fs::Metadata) -> bool {
    m.is_file() && m.permissions().mode() & 0o111 != 0
}

/// This process's stderr, for a child's stdout.
pub(crate) fn stderr_for_child() -> std::io::Result<Stdio> {
    Ok(Stdio::from(std::io::stderr().as_fd().try_clone_to_owned()?))
}

/// Raises the calling thread's nice value to `nice` (never lowers it: without privileges
/// it could not come back); the value it has afterwards.
pub(crate) fn raise_nice(nice: i32) -> std::io::Result<i32> {
    let now = rustix::process::getpriority_process(None)?;
    rustix::process::setpriority_process(None, nice.max(now))?;
    Ok(nice.max(now))
}

/// Whether a process `pid` exists (one of another user's too).
pub(crate) fn pid_exists(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e == rustix::io::Errno::PERM,
    }
}
