//! Printing to a reader that may leave: `tandem conflicts | head` closes the pipe after a
//! few lines. std's `outln!` panics then; tandem stops printing instead, as coreutils
//! do, and finishes what it was doing (a sync is never cut short by its reader leaving),
//! exiting with the code it would have had.

use std::fmt::Arguments;
use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
static STDERR_GONE: AtomicBool = AtomicBool::new(false);

/// Writes `bytes` to stdout, unless its reader is gone.
pub fn stdout_bytes(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    write_to(&mut out, &STDOUT_GONE, bytes);
}

/// Writes a line to stdout, unless its reader is gone (`outln!`).
pub fn out_line(args: Arguments<'_>) {
    stdout_bytes(format!("{args}\n").as_bytes());
}

/// Writes a line to stderr, unless its reader is gone (`errln!`).
pub fn err_line(args: Arguments<'_>) {
    err_bytes(format!("{args}\n").as_bytes());
}

/// Writes `bytes` to stderr, unless its reader is gone.
pub fn err_bytes(bytes: &[u8]) {
    let mut err = std::io::stderr().lock();
    write_to(&mut err, &STDERR_GONE, bytes);
}

fn write_to(w: &mut dyn Write, gone: &AtomicBool, bytes: &[u8]) {
    if gone.load(Ordering::Relaxed) {
        return;
    }
    // Nothing else can be done with an output that fails otherwise (a full disk under a
    // redirection): the run's result is its exit code.
    if let Err(e) = w.write_all(bytes).and_then(|()| w.flush()) {
        if e.kind() == ErrorKind::BrokenPipe {
            gone.store(true, Ordering::Relaxed);
        }
    }
}
