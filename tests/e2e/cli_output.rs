//! What the binary prints besides syncing: completion scripts and man pages (issue 15),
//! and output to a reader that left (`tandem ... | head`).

use std::process::{Command, Stdio};

use crate::fixtures::*;

/// `tandem ARGS` with stdout a pipe whose reader is already gone (`| head` that has read
/// its lines): every write to it fails with EPIPE.
fn with_reader_gone(args: &[&std::ffi::OsStr]) -> Out {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(bin())
        .args(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn issue_15_sync_piped_into_a_closed_reader_finishes_quietly() {
    let p = Pair::new();
    for i in 0..50 {
        p.write(S::Src, &format!("f{i}"), "x");
    }
    let mut args: Vec<&std::ffi::OsStr> = vec!["sync".as_ref(), p.src.as_os_str()];
    args.extend([
        p.tgt.as_os_str(),
        "--state-dir".as_ref(),
        p.state.as_os_str(),
    ]);
    args.push("-v".as_ref());
    let out = with_reader_gone(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(out.stderr.is_empty(), "not quiet: {}", out.stderr);
    // The sync was not cut short by its reader leaving.
    p.assert_same();
    p.sync_ok(&["--dry-run"], 0);
    for cmd in ["conflicts", "status"] {
        let mut args: Vec<&std::ffi::OsStr> = vec![cmd.as_ref(), p.src.as_os_str()];
        args.extend([
            p.tgt.as_os_str(),
            "--state-dir".as_ref(),
            p.state.as_os_str(),
        ]);
        let out = with_reader_gone(&args);
        assert_eq!(out.code, 0, "tandem {cmd}: {}", out.stderr);
        assert!(
            out.stderr.is_empty(),
            "tandem {cmd} not quiet: {}",
            out.stderr
        );
    }
}

#[test]
fn issue_15_completions_load_in_each_shell() {
    let out = run_tandem(["completions", "bash"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("_tandem()"), "{}", out.stdout);
    // Every subcommand is offered.
    for sub in ["sync", "mount", "resolve", "task", "completions"] {
        assert!(
            out.stdout.contains(sub),
            "{sub} missing from the bash script"
        );
    }
    let sourced = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source <('{}' completions bash) && complete -p tandem",
            bin()
        ))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&sourced.stdout);
    assert!(
        sourced.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&sourced.stderr)
    );
    assert!(said.contains("-F _tandem tandem"), "{said}");
    for (shell, needle) in [("zsh", "#compdef tandem"), ("fish", "complete -c tandem")] {
        let out = run_tandem(["completions", shell]);
        assert_eq!(out.code, 0, "{}", out.all());
        assert!(out.stdout.contains(needle), "{shell}: {}", out.stdout);
    }
    let bad = run_tandem(["completions", "tcsh"]);
    assert_eq!(bad.code, 2, "{}", bad.all());
    bad.assert_stderr_has("tcsh");
}

/// The subcommands as `tandem --help` lists them, with `task`'s own.
fn subcommands() -> Vec<String> {
    let mut names = Vec::new();
    for (prefix, help) in [
        ("", run_tandem(["--help"])),
        ("task-", run_tandem(["task", "--help"])),
    ] {
        let listed = help.stdout.split("Commands:").nth(1).unwrap().to_string();
        for line in listed.lines() {
            let line = line.trim();
            if line.starts_with("Options:") {
                break;
            }
            match line.split_whitespace().next() {
                Some(name) if name != "help" => names.push(format!("{prefix}{name}")),
                _ => {}
            }
        }
    }
    names
}

#[test]
fn issue_15_a_man_page_for_tandem_and_each_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_tandem(["man".as_ref(), dir.path().as_os_str()]);
    assert_eq!(out.code, 0, "{}", out.all());
    let subs = subcommands();
    assert!(subs.len() >= 10, "{subs:?}");
    assert!(subs.contains(&"task-add".to_string()), "{subs:?}");
    let mut pages = vec!["tandem".to_string()];
    pages.extend(subs.iter().map(|s| format!("tandem-{s}")));
    for page in &pages {
        let path = dir.path().join(format!("{page}.1"));
        let roff = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; tandem man said:\n{}", path.display(), out.all()));
        assert!(roff.contains(".TH"), "{page}: no title line");
        // Rendered by man itself: the name section and the options.
        let shown = Command::new("man")
            .arg("-l")
            .arg(&path)
            .env("MANWIDTH", "80")
            .output()
            .expect("man (Debian's man-db, installed by .ci/run)");
        let text = plain(&String::from_utf8_lossy(&shown.stdout));
        assert!(
            shown.status.success(),
            "man -l {page}: {}",
            String::from_utf8_lossy(&shown.stderr)
        );
        assert!(
            text.contains("NAME") && text.contains(page.as_str()),
            "{page}:\n{text}"
        );
        assert!(text.contains("OPTIONS"), "{page}:\n{text}");
    }
    let sync = std::fs::read_to_string(dir.path().join("tandem-sync.1")).unwrap();
    assert!(sync.contains("max\\-delete"), "{sync}");
    // The hidden command writes no page of its own.
    assert!(!dir.path().join("tandem-man.1").exists());
}

/// `man`'s output without its overstrike (`N\x08N` for a bold N).
fn plain(text: &str) -> String {
    let mut out: Vec<char> = Vec::new();
    for c in text.chars() {
        if c == '\x08' {
            out.pop();
        } else {
            out.push(c);
        }
    }
    out.into_iter().collect()
}
