//! The values of the limits on what tandem keeps and deletes (issue 18), as `tandem
//! sync`/`mount` options and as task keys read them: `--history-keep` (`30d`),
//! `--history-max` (`5GiB`) and `--delete-brake` (`1000/60s`, `off`). One parser for each,
//! and its inverse for writing the config file and showing a task.

use std::time::Duration;

use tandem_engine::BrakeLimit;

use crate::spec::{format_duration_ns, parse_duration_ns};

const DAY_NS: u128 = 86_400_000_000_000;

/// `30d`, `12h`, `30m`, `0`: how long something is kept (`parse_duration_ns`, never
/// negative).
pub fn parse_keep(s: &str) -> Result<Duration, String> {
    let ns = parse_duration_ns(s)?;
    u64::try_from(ns)
        .map(Duration::from_nanos)
        .map_err(|_| format!("{s:?}: a duration cannot be negative"))
}

/// A duration as `parse_keep` reads it back: whole days as `30d`.
pub fn format_keep(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns != 0 && ns.is_multiple_of(DAY_NS) {
        return format!("{}d", ns / DAY_NS);
    }
    format_duration_ns(i64::try_from(ns).unwrap_or(i64::MAX))
}

/// `5GiB`, `500MiB`, `1G` (powers of 1024 either way), `4096`: a size in bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("not a size: {s:?} (try 5GiB or 500MiB)"))?;
    let shift = match unit.trim().to_ascii_lowercase().trim_end_matches('b') {
        "" => 0,
        "k" | "ki" => 10,
        "m" | "mi" => 20,
        "g" | "gi" => 30,
        "t" | "ti" => 40,
        _ => {
            return Err(format!(
                "unknown unit in {s:?} (use B, KiB, MiB, GiB or TiB)"
            ))
        }
    };
    Ok((value * (1u64 << shift) as f64).round() as u64)
}

/// A size as `parse_size` reads it back, in the largest exact unit: `5GiB`, `4097B`.
pub fn format_size(bytes: u64) -> String {
    for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if bytes != 0 && bytes.is_multiple_of(1u64 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes}B")
}

/// `1000/60s`: the brake engages past 1000 deletions within 60 s; `off`: never (`None`).
pub fn parse_brake(s: &str) -> Result<Option<BrakeLimit>, String> {
    if s == "off" {
        return Ok(None);
    }
    let (count, window) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?}: expected COUNT/DURATION (1000/60s) or off"))?;
    let count: usize = count
        .parse()
        .map_err(|_| format!("{s:?}: {count:?} is not a count"))?;
    let window = parse_keep(window)?;
    if window.is_zero() {
        return Err(format!("{s:?}: the duration must be more than 0"));
    }
    Ok(Some(BrakeLimit { count, window }))
}

/// A brake as `parse_brake` reads it back: `1000/60s`, `off`.
pub fn format_brake(brake: Option<BrakeLimit>) -> String {
    match brake {
        None => "off".to_string(),
        Some(b) => {
            let ns = i64::try_from(b.window.as_nanos()).unwrap_or(i64::MAX);
            let window = if ns % 1_000_000_000 == 0 {
                format!("{}s", ns / 1_000_000_000)
            } else {
                format_duration_ns(ns)
            };
            format!("{}/{window}", b.count)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("5GiB"), Ok(5 << 30));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("500MiB"), Ok(500 << 20));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("5 parsecs").is_err());
        for n in [0, 1, 4097, 1024, 5 << 30, 3 << 40] {
            assert_eq!(parse_size(&format_size(n)), Ok(n));
        }
        assert_eq!(format_size(5 << 30), "5GiB");
    }

    #[test]
    fn keeps_and_brakes_read_back() {
        assert_eq!(format_keep(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(format_keep(Duration::from_secs(90 * 60)), "90m");
        for s in ["30d", "12h", "0s", "1500ms"] {
            let d = parse_keep(s).unwrap();
            assert_eq!(parse_keep(&format_keep(d)), Ok(d));
        }
        assert!(parse_keep("-1s").is_err());
        let b = parse_brake("50/2m").unwrap();
        assert_eq!(format_brake(b), "50/120s");
        assert_eq!(parse_brake(&format_brake(b)), Ok(b));
        assert_eq!(parse_brake("off"), Ok(None));
        assert_eq!(format_brake(None), "off");
        for bad in ["50", "x/1s", "5/0s", "fast"] {
            assert!(parse_brake(bad).is_err(), "{bad}");
        }
    }
}
