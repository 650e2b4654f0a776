//! What a result mail says: its subject (`[tandem] NAME: 3 conflicts`) and its body (the
//! run's times, counts, every conflict and error with its path escaped as tandem prints
//! paths, the hooks and the next scheduled run). Text only: sending is `mail`.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use tandem_core::{escape_bytes, Words};

use crate::notify::Smtp;
use crate::report::{PairOutcome, TaskReport, Totals};
use crate::schedule::next_run;
use crate::spec::TaskSpec;

/// The run's result in a few words: `ok`, `3 conflicts`, `2 problems`, `failed`,
/// `halted for safety`, `skipped (the before command failed)`.
pub(crate) fn headline(r: &TaskReport) -> String {
    let t = r.totals();
    let problems = t.skipped + t.failed;
    match r.result() {
        "ok" => "ok".to_string(),
        "conflicts" if problems > 0 => format!(
            "{}, {}",
            count(t.conflicts, "conflict"),
            count(problems, "problem")
        ),
        "conflicts" => count(t.conflicts, "conflict"),
        "problems" if problems > 0 => count(problems, "problem"),
        "problems" => "problems".to_string(),
        "halted" => "halted for safety".to_string(),
        "skipped" => "skipped (the before command failed)".to_string(),
        _ => "failed".to_string(),
    }
}

fn count(n: u64, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// The body of a run's result mail.
pub(crate) fn result_body(
    task: &TaskSpec,
    r: &TaskReport,
    started: Timestamp,
    ended: Timestamp,
) -> String {
    let tz = TimeZone::system();
    let mut b = String::new();
    let _ = writeln!(b, "Task {}: {}", task.name, headline(r));
    if let Some(c) = &task.comment {
        let _ = writeln!(b, "Comment:   {}", clean(c));
    }
    let _ = writeln!(b, "Trigger:   {}", clean(&r.trigger));
    let _ = writeln!(b, "Started:   {}", local(started, &tz));
    let _ = writeln!(b, "Ended:     {}", local(ended, &tz));
    let took = ended.duration_since(started).unsigned_abs();
    let _ = writeln!(b, "Duration:  {}", duration(took));
    let _ = writeln!(b, "Exit code: {}", r.exit_code());
    let _ = writeln!(b, "Counts:    {}", counts(&r.totals()));
    if let Some(why) = &r.skipped {
        let _ = writeln!(b, "Skipped:   {}", clean(why));
    }
    if let Some(e) = &r.error {
        let _ = writeln!(b, "Error:     {}", clean(&e.to_string()));
    }
    for p in &r.pairs {
        pair_lines(&mut b, p);
    }
    b.push('\n');
    for h in r.before.iter().chain(r.after.iter()) {
        let took = duration(h.took);
        let _ = writeln!(b, "Hook:      {h} (`{}`, {took})", clean(&h.command));
    }
    let next = next_run_text(task, started, ended, &tz);
    let _ = writeln!(b, "Next run:  {next}");
    b
}

fn counts(t: &Totals) -> String {
    let mut s = format!(
        "{} copied ({} bytes), {} deleted, {} renamed, {} folders made, {} conflicts, {} skipped, {} failed",
        t.copied, t.bytes, t.deleted, t.renamed, t.dirs_created, t.conflicts, t.skipped, t.failed
    );
    if t.pairs_in_error > 0 {
        let _ = write!(s, ", {}", count(t.pairs_in_error, "pair in error"));
    }
    s
}

/// A pair's folders and result, then a line per conflict, skipped and failed path.
fn pair_lines(b: &mut String, p: &PairOutcome) {
    let _ = write!(b, "\n{} -> {}: ", folder(&p.source), folder(&p.target));
    let r = match &p.result {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(b, "could not be synced: {}", clean(e));
            return;
        }
    };
    let _ = writeln!(
        b,
        "{} copied, {} deleted, {} renamed, {} conflicts, {} skipped, {} failed",
        r.copied,
        r.deleted,
        r.renamed,
        r.conflicts.len(),
        r.skipped.len(),
        r.failed.len()
    );
    if let Some(h) = &r.halted {
        let _ = writeln!(b, "  halted for safety: {}", clean(h));
    }
    if let Some(s) = &r.stopped {
        let _ = writeln!(b, "  stopped: {}", clean(s));
    }
    for c in &r.conflicts {
        let _ = writeln!(
            b,
            "  conflict: {}: {}; {}",
            c.path,
            c.kind,
            clean(&c.resolution)
        );
    }
    for (what, list) in [("skipped", &r.skipped), ("failed", &r.failed)] {
        for f in list {
            let _ = writeln!(b, "  {what}: {}: {}", f.path, clean(&f.reason));
        }
    }
}

/// The next scheduled run after this one; "none" for a task run only by hand.
fn next_run_text(task: &TaskSpec, started: Timestamp, now: Timestamp, tz: &TimeZone) -> String {
    if task.schedules.is_empty() {
        return format!("none (the task runs by hand: tandem run {})", task.name);
    }
    // Whole seconds, as runs are recorded.
    let last = Timestamp::from_second(started.as_second()).ok();
    match next_run(&task.schedules, last, now, tz) {
        Some(t) => local(t, tz),
        None => {
            let forms: Vec<String> = task.schedules.iter().map(|s| s.to_string()).collect();
            format!("on an event: {}", clean(&forms.join(", ")))
        }
    }
}

/// The body of `tandem task test-email`: what the task's mails will be, and how sent.
pub(crate) fn test_body(task: &TaskSpec, smtp: &Smtp) -> String {
    let when = task.notify.when;
    let meaning = tandem_core::NotifyWhen::ALL
        .iter()
        .find(|(v, _, _)| *v == when)
        .map_or("", |(_, _, m)| m);
    let mut b = String::new();
    let _ = writeln!(
        b,
        "This is a test message from tandem (tandem task test-email {}).\n",
        task.name
    );
    let _ = writeln!(
        b,
        "Task {} mails its results to: {}",
        task.name,
        clean(&task.notify.to.join(", "))
    );
    let _ = writeln!(b, "Which runs:  {when} ({meaning})");
    let _ = write!(
        b,
        "Server:      {}:{} ({})",
        clean(&smtp.host),
        smtp.port,
        smtp.security
    );
    match &smtp.user {
        Some(u) => {
            let _ = writeln!(b, ", logged in as {}", clean(u));
        }
        None => b.push('\n'),
    }
    b
}

/// A local time as people read it: `2026-12-03 14:05:09 CET`.
pub(crate) fn local(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned_datetime(tz.clone())
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// `850ms`, `12.3s`, `4m 05s`, `2h 03m`.
pub(crate) fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        1..60 => format!("{:.1}s", d.as_secs_f64()),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

/// A folder as tandem prints paths: control characters and bytes that are not UTF-8
/// escaped.
pub(crate) fn folder(p: &Path) -> String {
    escape_bytes(&tandem_core::path_bytes(p))
}

/// Text from elsewhere (a reason, a command) with its control characters escaped, as the
/// CLI prints it.
pub(crate) fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() && c != '\n' {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}
