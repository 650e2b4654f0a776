//! `tandem`: keeps two folders in step, both ways.
//!
//! Parsing, validation into a `SyncSpec`, output and exit codes; nothing else.

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
        Command::Status(a) => commands::status::run(&config, a),
        Command::Forget(a) => commands::forget::run(a),
        Command::Mount(a) => commands::mount::run(a),
        Command::Unmount(a) => commands::unmount::run(a),
        Command::Task(a) => commands::task::run(&config, a),
        Command::Run(a) => commands::run::run(&config, a),
        Command::Log(a) => commands::log::run(&config, a),
        Command::Daemon(a) => commands::daemon::run(&config, a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("tandem: error: {}", output::sanitize(&format!("{e:#}")));
            ExitCode::from(EXIT_ERROR)
        }
    }
}
