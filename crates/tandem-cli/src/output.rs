//! Everything printed: progress bars, human summaries, JSON lines. Paths are always
//! escaped (`RelPath`'s Display), never written raw to a terminal.

pub mod eta;
pub mod history;
pub mod pipe;
pub mod time;

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tandem_engine::{Event, Report};

/// Escapes control characters in any text we print (error messages carry paths).
pub fn sanitize(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() && c != '\n' {
                format!("\\x{:02x}", c as u32).chars().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

pub struct Printer {
    json: bool,
    verbose: bool,
    bar: Mutex<Option<ProgressBar>>,
    progress: Mutex<Progress>,
    show_bar: bool,
}

/// What the bar shows besides bytes: changes done of planned, and the time left.
struct Progress {
    started: Instant,
    done: eta::Work,
    total: eta::Work,
    eta: eta::Eta,
}

impl Progress {
    fn new(total: eta::Work) -> Progress {
        Progress {
            started: Instant::now(),
            done: eta::Work::default(),
            total,
            eta: eta::Eta::default(),
        }
    }

    /// Counts one change of `bytes` done; returns the bar's counts and its estimate.
    fn step(&mut self, bytes: u64) -> (String, String) {
        self.done.bytes += bytes;
        self.done.changes += 1;
        let left = self
            .eta
            .update(self.started.elapsed(), self.done, self.total);
        (
            format!("{}/{} changes", self.done.changes, self.total.changes),
            left.map(|d| format!("eta {}", eta::human(d)))
                .unwrap_or_default(),
        )
    }
}

impl Printer {
    pub fn new(json: bool, quiet: bool, verbose: bool) -> Printer {
        let show_bar = !json && !quiet && std::io::stderr().is_terminal();
        Printer {
            json,
            verbose: verbose && !quiet,
            bar: Mutex::new(None),
            progress: Mutex::new(Progress::new(eta::Work::default())),
            show_bar,
        }
    }

    pub fn event(&self, e: Event) {
        if self.json {
            outln!("{}", event_json(&e));
            return;
        }
        let mut bar = self.bar.lock().unwrap_or_else(|p| p.into_inner());
        match &e {
            // More work planned: a first sync plans in batches as it scans, a later round
            // plans what changed meanwhile.
            Event::Planned { actions, bytes } if self.show_bar && *actions > 0 && bar.is_some() => {
                if let Some(pb) = bar.as_ref() {
                    let mut progress = self.progress.lock().unwrap_or_else(|p| p.into_inner());
                    progress.total.changes += *actions as u64;
                    progress.total.bytes += bytes;
                    pb.inc_length(*bytes);
                }
            }
            Event::Planned { actions, bytes } if self.show_bar && *actions > 0 => {
                let pb = ProgressBar::with_draw_target(Some(*bytes), ProgressDrawTarget::stderr());
                pb.set_style(
                    ProgressStyle::with_template(
                        "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                pb.set_prefix(format!("0/{actions} changes"));
                pb.set_length(*bytes);
                *bar = Some(pb);
                *self.progress.lock().unwrap_or_else(|p| p.into_inner()) =
                    Progress::new(eta::Work {
                        bytes: *bytes,
                        changes: *actions as u64,
                    });
            }
            Event::Done { bytes, .. } => {
                if let Some(pb) = bar.as_ref() {
                    let mut progress = self.progress.lock().unwrap_or_else(|p| p.into_inner());
                    let (counts, left) = progress.step(*bytes);
                    pb.inc(*bytes);
                    pb.set_prefix(counts);
                    pb.set_message(left);
                }
            }
            _ => {}
        }
        if self.verbose {
            let line = match &e {
                Event::Done {
                    verb, path, side, ..
                } => Some(format!("{verb:<9} {:<7} {path}", side.unwrap_or(""))),
                Event::Conflict {
                    path,
                    kind,
                    resolution,
                } => Some(format!("conflict  {path}: {kind}; {resolution}")),
                Event::Skipped { path, reason } => Some(format!("skip      {path}: {reason}")),
                Event::Failed { path, error } => {
                    Some(format!("failed    {path}: {}", sanitize(error)))
                }
                Event::Retrying { round, paths } => Some(format!(
                    "round {round}: {paths} paths changed during the sync, planning them again"
                )),
                _ => None,
            };
            if let Some(line) = line {
                match bar.as_ref() {
                    Some(pb) => pb.println(line),
                    None => outln!("{line}"),
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Some(pb) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            pb.finish_and_clear();
        }
    }
}

pub use tandem_task::{event_json, summary_json};

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The human summary: counts on stdout; problems listed; the reason for a halt or stop on
/// stderr.
pub fn print_summary(r: &Report) {
    if r.dry_run {
        for s in &r.plan {
            let to =
                s.to.as_ref()
                    .map(|t| format!(" -> {t}"))
                    .unwrap_or_default();
            let side = s.side.unwrap_or("-");
            outln!(
                "{:<9} {:<7} {}{}  ({})",
                s.verb,
                side,
                s.path,
                to,
                sanitize(&s.detail)
            );
        }
    }
    if let Some(t) = &r.created_target {
        outln!(
            "created the target folder {}",
            sanitize(&t.display().to_string())
        );
    }
    if let Some(h) = &r.halted {
        errln!("tandem: halted for safety: {}", sanitize(h));
    }
    if let Some(s) = &r.stopped {
        errln!("tandem: {}", sanitize(s));
    }
    if !r.conflicts.is_empty() {
        outln!("conflicts:");
        for c in &r.conflicts {
            outln!("  {}: {}; {}", c.path, c.kind, sanitize(&c.resolution));
        }
    }
    if !r.skipped.is_empty() {
        outln!("skipped:");
        for p in &r.skipped {
            outln!("  {}: {}", p.path, sanitize(&p.reason));
        }
    }
    if !r.failed.is_empty() {
        outln!("failed:");
        for p in &r.failed {
            outln!("  {}: {}", p.path, sanitize(&p.reason));
        }
    }
    if r.dry_run {
        outln!(
            "dry run: {} changes planned, nothing was changed",
            r.plan.iter().filter(|s| s.side.is_some()).count()
        );
    } else {
        let counts = [
            (r.copied, "copied"),
            (r.linked, "linked"),
            (r.deleted, "deleted"),
            (r.renamed, "renamed"),
            (r.dirs_created, "folders created"),
            (r.metadata, "metadata updates"),
            (r.conflicts.len() as u64, "conflicts"),
            ((r.skipped.len() - r.kept_newer.len()) as u64, "skipped"),
            (r.failed.len() as u64, "failed"),
        ];
        let mut parts: Vec<String> = counts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        parts.extend(kept_newer_counts(r));
        parts.extend(links_copied_counts(r));
        if r.copied > 0 {
            parts[0] = format!("{} copied ({})", r.copied, human_bytes(r.bytes));
        }
        let state = if r.exit_code() == 0 {
            "in sync"
        } else {
            "done"
        };
        if parts.is_empty() {
            outln!("{state}: nothing to do");
        } else {
            outln!("{state}: {}", parts.join(", "));
        }
    }
}

/// `--hard-links` where the receiving side holds none: once per side, not per name.
fn links_copied_counts(r: &Report) -> Vec<String> {
    [tandem_core::Side::Source, tandem_core::Side::Target]
        .into_iter()
        .filter_map(|side| {
            let n = r.links_copied.iter().filter(|(s, _)| *s == side).count();
            (n > 0).then(|| {
                format!(
                    "{n} hard links copied as separate files (the {side} cannot hold hard links)"
                )
            })
        })
        .collect()
}

/// `N skipped: newer on the target` (`--update`), per receiving side.
fn kept_newer_counts(r: &Report) -> Vec<String> {
    [tandem_core::Side::Source, tandem_core::Side::Target]
        .into_iter()
        .filter_map(|side| {
            let n = r.kept_newer.iter().filter(|(s, _)| *s == side).count();
            (n > 0).then(|| format!("{n} skipped: newer on the {side}"))
        })
        .collect()
}
