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

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    let config = cli
        .config
        .clone()
        .unwrap_or_else(tandem_task::default_config_path);
    let result = match cli.command {
        Command::Sync(a) => commands::sync::run(a),
        Command::Conflicts(a) => commands::conflicts::run(a),
        Command::Resolve(a) => commands::resolve::run(a),
        Command::Status(a) => commands::status::run(a),
        Command::Forget(a) => commands::forget::run(a),
        Command::Mount(a) => commands::mount::run(a),
        Command::Unmount(a) => commands::unmount::run(a),
        Command::Task(a) => commands::task::run(&config, a),
        Command::Run(a) => commands::run::run(&config, a),
        Command::Completions(a) => commands::completions::run(a),
        Command::Man(a) => commands::completions::man(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            errln!("tandem: error: {}", output::sanitize(&format!("{e:#}")));
            ExitCode::from(EXIT_ERROR)
        }
    }
}
