//! What differs between systems for starting our own processes in the background.

/// A session of its own: the started command outlives this terminal.
#[cfg(unix)]
pub(crate) fn own_session(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
}

/// No console of its own (`DETACHED_PROCESS`), in a process group of its own
/// (`CREATE_NEW_PROCESS_GROUP`): closing this console does not end it.
#[cfg(windows)]
pub(crate) fn own_session(cmd: &mut std::process::Command) {
    use std::os::windows::process::CommandExt;
    cmd.creation_flags(0x0000_0008 | 0x0000_0200);
}

#[cfg(unix)]
pub(crate) fn terminate(pid: u32) -> std::io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| std::io::Error::other(format!("bad pid {pid}")))?;
    Ok(rustix::process::kill_process(
        pid,
        rustix::process::Signal::TERM,
    )?)
}

/// No signals: the process is ended (`taskkill /F`).
#[cfg(windows)]
pub(crate) fn terminate(pid: u32) -> std::io::Result<()> {
    let status = std::process::Command::new("taskkill")
        .args(["/F", "/PID", &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    match status.success() {
        true => Ok(()),
        false => Err(std::io::Error::other(format!(
            "taskkill /PID {pid}: {status}"
        ))),
    }
}
