//! Processes on Windows: no process groups to signal (a hook's tree is ended with
//! `taskkill /T`), no signals, no mode bits, no nice values yet.

use std::os::windows::io::AsHandle;
use std::os::windows::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};

/// A started command's process id: its tree is killed through it.
pub(crate) type Group = u32;

/// `CREATE_NEW_PROCESS_GROUP`: a Ctrl+C meant for tandem does not reach the command.
pub(crate) fn own_group(cmd: &mut Command) -> &mut Command {
    cmd.creation_flags(0x0000_0200)
}

pub(crate) fn group_of(child: &Child) -> Group {
    child.id()
}

/// Ends the process and every process it started.
pub(crate) fn kill_group(pid: Group) {
    let _ = Command::new("taskkill")
        .args(["/F", "/T", "/PID", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// No signals: a process ends with an exit code.
pub(crate) fn signal_of(_status: &ExitStatus) -> Option<i32> {
    None
}

pub(crate) fn is_executable(m: &std::fs::Metadata) -> bool {
    m.is_file()
}

/// This process's stderr, for a child's stdout.
pub(crate) fn stderr_for_child() -> std::io::Result<Stdio> {
    Ok(Stdio::from(
        std::io::stderr().as_handle().try_clone_to_owned()?,
    ))
}

/// No nice values here yet: the priority is left as it is.
pub(crate) fn raise_nice(nice: i32) -> std::io::Result<i32> {
    tracing::debug!("CPU priority: not supported on this platform yet");
    Ok(nice)
}

/// Whether a process `pid` runs (`STILL_ACTIVE` as its exit code).
pub(crate) fn pid_exists(pid: u32) -> bool {
    use windows_sys::Win32::Foundation::CloseHandle;
    use windows_sys::Win32::System::Threading::{
        GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
    };
    const STILL_ACTIVE: u32 = 259;
    // SAFETY: a handle opened here and closed before returning.
    unsafe {
        let h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
        if h.is_null() {
            // Refused (another user's): it exists.
            return std::io::Error::last_os_error().raw_os_error() == Some(5);
        }
        let mut code = 0u32;
        let ok = GetExitCodeProcess(h, &mut code);
        CloseHandle(h);
        ok != 0 && code == STILL_ACTIVE
    }
}
