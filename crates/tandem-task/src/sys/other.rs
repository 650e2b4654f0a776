/// No I/O priority classes here (the nice value still applies): nothing to set. Not yet
/// ported: macOS's `setiopolicy_np` (issue 16).
pub(crate) fn set_io_priority(_ioprio: libc::c_int) -> std::io::Result<()> {
    tracing::debug!("I/O priority: not supported on this platform yet; nice value only");
    Ok(())
}
