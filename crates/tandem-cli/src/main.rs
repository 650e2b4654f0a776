//! `tandem`: keeps two folders in step, both ways.
//!
//! Parsing, validation into a `SyncSpec`, output and exit codes; nothing else.

/// `outln!` that stops printing, instead of panicking, once stdout's reader is gone
/// (`tandem ... | head`): see `output::pipe`.
macro_rules! outln {
    () => {
        $crate::output::pipe::out_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::pipe::out_line(format_args!($($arg)*))
    };
}

/// `errln!` that stops printing, instead of panicking, once stderr's reader is gone.
macro_rules! errln {
    () => {
        $crate::output::pipe::err_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::pipe::err_line(format_args!($($arg)*))
    };
}

mod args;
mod commands;
mod logging;
mod output;
mod task;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

/// Exit codes, as documented in `--help` and the README.
pub const EXIT_OK: u8 = 0;
pub const EXIT_ISSUES: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

/// What a bus error means here, said before exiting like a crash (see `on_bus_error`).
#[cfg(unix)]
const BUS_ERROR: &str = "tandem: error: a disk failed under a memory-mapped file (SIGBUS): SQLite's shared index of the state (state.db-shm) could not be read or written, from an I/O error or a full or read-only disk in the state folder. Stopped at once, as in a crash: what was committed is kept, and the next run picks up from there once the disk works\n";

/// SQLite maps its write-ahead log's index (`state.db-shm`) into memory: when the state
/// folder's disk fails under it, the kernel answers with SIGBUS instead of an error code,
/// and the process would die of it without a word. Say what happened and exit 2, as the
/// documented exit code for a stop on a failing disk; nothing else runs in the handler
/// (only `write` and `_exit`, both async-signal-safe).
#[cfg(unix)]
fn on_bus_error() {
    let handler = || {
        // SAFETY: fd 2 is the process's standard error for its whole life.
        let stderr = unsafe { std::os::fd::BorrowedFd::borrow_raw(2) };
        let _ = rustix::io::write(stderr, BUS_ERROR.as_bytes());
        signal_hook::low_level::exit(EXIT_ERROR.into());
    };
    // SAFETY: the handler only calls async-signal-safe functions and never returns.
    if let Err(e) =
        unsafe { signal_hook::low_level::register(signal_hook::consts::SIGBUS, handler) }
    {
        tracing::debug!("cannot handle SIGBUS: {e}");
    }
}

/// No SIGBUS on Windows: a failing disk under SQLite's index is an error code there.
#[cfg(windows)]
fn on_bus_error() {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    on_bus_error();
    let config = cli
        .config
        .clone()
        .unwrap_or_else(tandem_task::default_config_path);
    let result = match cli.command {
        Command::Sync(a) => commands::sync::run(a),
        Command::Conflicts(a) => commands::conflicts::run(a),
        Command::Changes(a) => commands::changes::run(a),
        Command::Held(a) => commands::held::list(a),
        Command::Release(a) => commands::held::settle(a, tandem_state::HeldAction::Release),
        Command::History(a) => commands::history::list(a),
        Command::Restore(a) if a.held => {
            commands::held::settle(a.settle(), tandem_state::HeldAction::Restore)
        }
        Command::Restore(a) => commands::history::restore(&a),
        Command::Resolve(a) => commands::resolve::run(a),
        Command::Status(a) => commands::status::run(&config, a),
        Command::Forget(a) => commands::forget::run(a),
        Command::Mount(a) => commands::mount::run(&config, a),
        Command::Unmount(a) => commands::unmount::run(a),
        Command::Task(a) => commands::task::run(&config, a),
        Command::Run(a) => commands::run::run(&config, a),
        Command::Log(a) => commands::log::run(&config, a),
        Command::Daemon(a) => commands::daemon::run(&config, a),
        Command::Completions(a) => commands::completions::run(a),
        Command::Man(a) => commands::completions::man(a),
        Command::Serve(a) => commands::serve::run(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            errln!("tandem: error: {}", output::sanitize(&format!("{e:#}")));
            ExitCode::from(EXIT_ERROR)
        }
    }
}
