/// Sets the calling thread's I/O priority (`ioprio_set`, an `IOPRIO_PRIO_VALUE`).
pub(crate) fn set_io_priority(ioprio: libc::c_int) -> std::io::Result<()> {
    // SAFETY: ioprio_set takes three integers and touches no memory of ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0 as libc::c_int,
            ioprio,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

const IOPRIO_WHO_PROCESS: libc::c_int = 1;
