//! `tandem changes`: who changed what through a mount, from the journal of the pair's
//! store (the records are kept for the retention of `--history-keep`).

use anyhow::{bail, Result};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::json;
use tandem_state::{By, ChangeQuery, Record, StateError, Store};

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
    let mut stores = Vec::new();
    for task in &tasks {
        stores.extend(Store::open_to_list(&task.state_dir, &task.pair)?);
    }
    let mut scans = stores
        .iter()
        .map(|s| s.scan_changes(&query))
        .collect::<Result<Vec<_>, _>>()?;
    // Each store lists its newest `limit`; merged by time, the oldest beyond `limit` go.
    let skip = match scans.as_slice() {
        [_, _, ..] => {
            let mut total = 0;
            for s in &scans {
                total += s.count()?;
            }
            total.saturating_sub(a.limit)
        }
        _ => 0,
    };
    let mut streams = Vec::new();
    for s in &mut scans {
        streams.push(s.records()?.peekable());
    }
    let mut out = Out::new(a.json);
    let mut listed = 0usize;
    while let Some(r) = next_by_time(&mut streams) {
        listed += 1;
        if listed > skip {
            out.record(&r?, &tz);
        }
    }
    out.finish();
    Ok(crate::EXIT_OK)
}

/// The oldest of the records the streams offer next (the first stream's on a tie).
fn next_by_time<I>(streams: &mut [std::iter::Peekable<I>]) -> Option<Result<Record, StateError>>
where
    I: Iterator<Item = Result<Record, StateError>>,
{
    let time = |s: &mut std::iter::Peekable<I>| match s.peek() {
        Some(Ok(r)) => Some(r.time_ns),
        Some(Err(_)) => Some(i64::MIN),
        None => None,
    };
    let mut best: Option<(usize, i64)> = None;
    for (i, s) in streams.iter_mut().enumerate() {
        if let Some(t) = time(s) {
            if best.is_none_or(|(_, b)| t < b) {
                best = Some((i, t));
            }
        }
    }
    streams[best?.0].next()
}

/// Prints the records as they come, in lines or in one JSON object, a buffer at a time:
/// a million records take no more memory than ten.
struct Out {
    json: bool,
    buf: String,
    count: usize,
}

impl Out {
    const FLUSH_AT: usize = 1 << 16;

    fn new(json: bool) -> Out {
        let buf = if json {
            String::from("{\"changes\":[")
        } else {
            String::new()
        };
        Out {
            json,
            buf,
            count: 0,
        }
    }

    fn record(&mut self, r: &Record, tz: &TimeZone) {
        if self.json {
            if self.count > 0 {
                self.buf.push(',');
            }
            self.buf.push_str(&to_json(r, tz).to_string());
        } else {
            self.buf.push_str(&line(r, tz));
            self.buf.push('\n');
        }
        self.count += 1;
        if self.buf.len() >= Self::FLUSH_AT {
            crate::output::pipe::stdout_bytes(self.buf.as_bytes());
            self.buf.clear();
        }
    }

    fn finish(mut self) {
        if self.json {
            self.buf.push_str("]}\n");
        } else if self.count == 0 {
            self.buf.push_str("no changes recorded\n");
        }
        crate::output::pipe::stdout_bytes(self.buf.as_bytes());
    }
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
