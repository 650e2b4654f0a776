//! `tandem completions SHELL` and the hidden `tandem man DIR`: what shells and `man` need,
//! generated from the same clap definitions as `--help`, so they never drift from it.

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use crate::args::{Cli, CompletionsArgs, ManArgs, ShellArg};
use crate::output::{pipe, sanitize};

pub fn run(a: CompletionsArgs) -> Result<u8> {
    let shell = match a.shell {
        ShellArg::Bash => Shell::Bash,
        ShellArg::Zsh => Shell::Zsh,
        ShellArg::Fish => Shell::Fish,
    };
    // Generated into memory first: clap_complete panics on a write error, and the reader
    // of stdout may be gone (`| head`).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "tandem", &mut script);
    pipe::stdout_bytes(&script);
    Ok(crate::EXIT_OK)
}

/// Writes `tandem.1` and a page per visible subcommand (`tandem-sync.1`,
/// `tandem-task-add.1`...) into the folder, and lists them.
pub fn man(a: ManArgs) -> Result<u8> {
    let shown = sanitize(&a.dir.to_string_lossy());
    std::fs::create_dir_all(&a.dir).with_context(|| format!("cannot create {shown}"))?;
    clap_mangen::generate_to(Cli::command(), &a.dir)
        .with_context(|| format!("cannot write the man pages into {shown}"))?;
    let mut pages: Vec<String> = std::fs::read_dir(&a.dir)
        .with_context(|| format!("cannot list {shown}"))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("tandem") && n.ends_with(".1"))
        .collect();
    pages.sort();
    for p in pages {
        outln!("{}", sanitize(&a.dir.join(p).to_string_lossy()));
    }
    Ok(crate::EXIT_OK)
}
