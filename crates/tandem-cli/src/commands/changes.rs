//! `tandem changes`: who changed what through a mount, from the journal of the pair's
//! store (the records are kept for the retention of `--history-keep`).

use anyhow::{bail, Result};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::json;
use tandem_state::{By, ChangeQuery, Record, Store};

use crate::args::ChangesArgs;
use crate::output::sanitize;

pub fn run(a: ChangesArgs) -> Result<u8> {
    let tz = TimeZone::system();
    let query = ChangeQuery {
        since_ns: a
            .since
            .as_deref()
            .map(|s| since_ns(s, Timestamp::now(), &tz))
            .transpose()?,
        path_glob: a.path.clone(),
        by: a.by.as_deref().map(by),
        limit: a.limit,
    };
    let (tasks, _) = crate::task::pairs_of(&a.pair)?;
    // The journal of a mount lives in its first pair's store; the others hold the records
    // of times they were mounted alone.
    let mut records = Vec::new();
    for task in &tasks {
        if let Some(store) = Store::open_existing(&task.state_dir, &task.pair)? {
            records.extend(store.changes(&query)?);
        }
    }
    records.sort_by_key(|r| r.time_ns);
    let extra = records.len().saturating_sub(a.limit);
    records.drain(..extra);
    if a.json {
        let list: Vec<_> = records.iter().map(|r| to_json(r, &tz)).collect();
        outln!("{}", json!({ "changes": list }));
    } else if records.is_empty() {
        outln!("no changes recorded");
    } else {
        for r in &records {
            outln!("{}", line(r, &tz));
        }
    }
    Ok(crate::EXIT_OK)
}

/// "30m", "7d" (that long ago), or a date and time, local unless it says its offset.
pub(crate) fn since_ns(s: &str, now: Timestamp, tz: &TimeZone) -> Result<i64> {
    if let Ok(ago) = tandem_task::parse_duration_ns(s) {
        return Ok(ns_of(now).saturating_sub(ago));
    }
    let t = if let Ok(t) = s.parse::<Timestamp>() {
        t
    } else if let Ok(dt) = s.parse::<jiff::civil::DateTime>() {
        tz.to_timestamp(dt)?
    } else if let Ok(d) = s.parse::<jiff::civil::Date>() {
        tz.to_timestamp(d.to_datetime(jiff::civil::Time::midnight()))?
    } else {
        bail!("--since {s:?}: not a time (try 30m, 7d, 2026-12-03 or \"2026-12-03 14:00\")");
    };
    Ok(ns_of(t))
}

/// Nanoseconds since the epoch, as the journal counts them (past 2262: the most there is).
fn ns_of(t: Timestamp) -> i64 {
    i64::try_from(t.as_nanosecond()).unwrap_or(i64::MAX)
}

fn by(s: &str) -> By {
    match s.parse::<u32>() {
        Ok(n) => By::Id(n),
        Err(_) => By::Program(s.to_string()),
    }
}

fn time_of(r: &Record) -> Option<Timestamp> {
    Timestamp::from_nanosecond(i128::from(r.time_ns)).ok()
}

fn line(r: &Record, tz: &TimeZone) -> String {
    let when = time_of(r).map_or_else(
        || "?".to_string(),
        |t| {
            t.to_zoned_datetime(tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S%.3f")
                .to_string()
        },
    );
    let paths = match &r.change.to {
        Some(to) => format!("{} -> {to}", r.change.path),
        None => r.change.path.to_string(),
    };
    let program = r.program.as_deref().unwrap_or("?");
    sanitize(&format!(
        "{when}  {:<11}  {paths}  by {program} (pid {}, uid {})",
        r.change.op.name(),
        r.change.pid,
        r.change.uid
    ))
}

fn to_json(r: &Record, tz: &TimeZone) -> serde_json::Value {
    json!({
        "seq": r.seq,
        "time": time_of(r).map(|t| tandem_task::rfc3339(t, tz)),
        "op": r.change.op.name(),
        "path": r.change.path.to_string(),
        "to": r.change.to.as_ref().map(|p| p.to_string()),
        "pid": r.change.pid,
        "uid": r.change.uid,
        "program": r.program,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_times_ago_and_local_dates() {
        let tz = TimeZone::fixed(jiff::tz::offset(1));
        let now: Timestamp = "2026-12-03T12:00:00Z".parse().unwrap();
        let at = |s: &str| Timestamp::from_nanosecond(since_ns(s, now, &tz).unwrap() as i128);
        assert_eq!(at("30m").unwrap().to_string(), "2026-12-03T11:30:00Z");
        assert_eq!(at("2d").unwrap().to_string(), "2026-12-01T12:00:00Z");
        assert_eq!(
            at("2026-12-03").unwrap().to_string(),
            "2026-12-02T23:00:00Z"
        );
        assert_eq!(
            at("2026-12-03 14:00").unwrap().to_string(),
            "2026-12-03T13:00:00Z"
        );
        assert_eq!(
            at("2026-12-03T14:00:00Z").unwrap().to_string(),
            "2026-12-03T14:00:00Z"
        );
        assert!(since_ns("yesterday-ish", now, &tz).is_err());
        assert_eq!(since_ns("2999-01-01", now, &tz).unwrap(), i64::MAX);
        assert_eq!(by("1000"), By::Id(1000));
        assert_eq!(by("rm"), By::Program("rm".into()));
    }
}
