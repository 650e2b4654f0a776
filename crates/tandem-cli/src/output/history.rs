//! Runs and live progress as `tandem log` and `tandem status` print them.

use std::time::Duration;

use serde_json::{json, Value};
use tandem_task::{HistoryRow, Progress, RunCounts};

use super::eta;
use super::human_bytes;
use super::sanitize;
use super::time::{took, Clock};

/// "12 copied (3.4 MiB), 1 deleted, 2 conflicts, 0 errors".
pub fn counts(c: &RunCounts) -> String {
    let copied = if c.copied > 0 {
        format!("{} copied ({})", c.copied, human_bytes(c.bytes))
    } else {
        "0 copied".to_string()
    };
    format!(
        "{copied}, {} deleted, {} conflicts, {} errors",
        c.deleted, c.conflicts, c.errors
    )
}

/// A line of `tandem log`: when, task, trigger, result, counts, duration.
pub fn log_line(r: &HistoryRow, clock: &Clock) -> String {
    let how_long = match r.result.as_str() {
        "running" => format!("running for {}", took(r.duration(clock.now))),
        "interrupted" => "did not finish".to_string(),
        _ => format!("took {}", took(r.duration(clock.now))),
    };
    sanitize(&format!(
        "{:<21} {:<12} {:<10} {:<11} {}; {how_long}",
        clock.at(r.started),
        r.task,
        r.trigger,
        r.result,
        counts(&r.counts),
    ))
}

/// How a run ended, after when it started: "3 min ago (manual): ok, 12 copied (...),
/// ...; took 2.1s".
pub fn outcome(r: &HistoryRow, clock: &Clock) -> String {
    let end = match r.result.as_str() {
        "interrupted" => format!(
            "interrupted (process {} is gone; what it synced is kept)",
            r.pid
        ),
        result => format!(
            "{result}, {}; took {}",
            counts(&r.counts),
            took(r.duration(clock.now))
        ),
    };
    sanitize(&format!("{} ({}): {end}", clock.ago(r.started), r.trigger))
}

/// The time left, from the snapshot's rates (only while the plan is being applied).
pub fn eta_of(p: &Progress) -> Option<Duration> {
    if p.phase != "applying" {
        return None;
    }
    let w = |bytes, changes| eta::Work { bytes, changes };
    eta::remaining(
        p.phase_elapsed(),
        w(p.bytes_done, p.changes_done),
        w(p.bytes_total, p.changes_total),
    )
}

/// "pair 1/2 applying: 120/500 changes, 3.4 MiB/10.0 MiB, 1.2 MiB/s, eta 5s".
pub fn progress_line(p: &Progress) -> String {
    let pair = if p.pairs > 1 {
        format!("pair {}/{} ", p.pair, p.pairs)
    } else {
        String::new()
    };
    match p.phase.as_str() {
        "starting" => return "starting".to_string(),
        "scanning" => return format!("{pair}scanning both sides"),
        _ => {}
    }
    let eta = eta_of(p)
        .map(|d| format!(", eta {}", eta::human(d)))
        .unwrap_or_default();
    format!(
        "{pair}{}: {}/{} changes, {}/{}, {}/s{eta}",
        p.phase,
        p.changes_done,
        p.changes_total,
        human_bytes(p.bytes_done),
        human_bytes(p.bytes_total),
        human_bytes(p.rate() as u64),
    )
}

pub fn progress_json(p: &Progress, clock: &Clock) -> Value {
    let at = |ms| {
        jiff::Timestamp::from_millisecond(ms)
            .ok()
            .map(|t| clock.rfc3339(t))
    };
    json!({
        "pair": p.pair, "pairs": p.pairs, "source": p.source, "target": p.target,
        "phase": p.phase, "phase_started": at(p.phase_started_ms), "updated": at(p.updated_ms),
        "changes_done": p.changes_done, "changes_total": p.changes_total,
        "bytes_done": p.bytes_done, "bytes_total": p.bytes_total,
        "rate_bytes_per_second": p.rate().round(),
        "eta_seconds": eta_of(p).map(|d| d.as_secs_f64().ceil()),
    })
}
