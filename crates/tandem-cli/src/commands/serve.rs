//! `tandem serve ROOT`: what ssh runs on the far side of a remote sync. Standard output
//! carries the protocol alone; logs go to standard error, which ssh brings back.

use anyhow::{Context, Result};

use crate::args::ServeArgs;

pub fn run(a: ServeArgs) -> Result<u8> {
    // Frames go out through a buffer of their own on the raw descriptor: std's stdout is
    // line-buffered, which would cut binary data at every newline byte.
    let out = raw_stdout().context("standard output")?;
    let out = std::io::BufWriter::with_capacity(1 << 20, out);
    let input = std::io::BufReader::with_capacity(1 << 20, std::io::stdin());
    tandem_remote::serve(&a.root, a.create, input, out)?;
    Ok(crate::EXIT_OK)
}

/// A second descriptor for standard output, unbuffered.
#[cfg(unix)]
fn raw_stdout() -> std::io::Result<std::fs::File> {
    use std::os::fd::AsFd;
    Ok(std::io::stdout().as_fd().try_clone_to_owned()?.into())
}

/// A second handle for standard output, unbuffered.
#[cfg(windows)]
fn raw_stdout() -> std::io::Result<std::fs::File> {
    use std::os::windows::io::AsHandle;
    Ok(std::io::stdout().as_handle().try_clone_to_owned()?.into())
}
