//! `--bwlimit RATE`: what one end writes to the connection, paced to at most RATE bytes a
//! second on average (frames included). Each end paces what it sends: the client itself,
//! the agent once `Limit` told it the rate.

use std::time::{Duration, Instant};

/// A token bucket: a writer that got ahead of the rate sleeps until it is back on it; a
/// writer that was idle may burst a tenth of a second's worth, no more.
#[derive(Debug)]
pub struct Pace {
    rate: u64,
    /// Bytes that may still be sent without waiting (negative: owed).
    credit: f64,
    at: Instant,
}

impl Pace {
    pub fn new(rate: u64) -> Pace {
        Pace {
            rate: rate.max(1),
            credit: 0.0,
            at: Instant::now(),
        }
    }

    /// `n` bytes were just written: waits as long as the rate says.
    pub fn sent(&mut self, n: usize) {
        let now = Instant::now();
        let rate = self.rate as f64;
        let earned = now.duration_since(self.at).as_secs_f64() * rate;
        self.credit = (self.credit + earned).min(rate / 10.0) - n as f64;
        self.at = now;
        if self.credit < 0.0 {
            std::thread::sleep(Duration::from_secs_f64(-self.credit / rate));
            self.credit = 0.0;
            self.at = Instant::now();
        }
    }
}

/// Parses a rate as rsync's `--bwlimit` does: a number, maybe with a fraction, in KiB a
/// second unless a suffix says otherwise (`B` bytes; `K`, `M`, `G` or `KiB`, `MiB`, `GiB`
/// powers of 1024; `KB`, `MB`, `GB` powers of 1000; any case). `0` is no limit (`None`).
pub fn parse_rate(text: &str) -> Result<Option<u64>, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = || {
        format!(
            "{text:?} is not a rate: give bytes a second as a number with an optional unit \
             (K, M, G: powers of 1024; KB, MB, GB: of 1000; B: bytes; none: K), e.g. 500K or 2M"
        )
    };
    let number: f64 = number.parse().map_err(|_| bad())?;
    let scale: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "k" | "kib" => 1024.0,
        "b" => 1.0,
        "kb" => 1e3,
        "m" | "mib" => 1024.0 * 1024.0,
        "mb" => 1e6,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "gb" => 1e9,
        _ => return Err(bad()),
    };
    let rate = number * scale;
    if number == 0.0 {
        Ok(None)
    } else if rate < 1.0 || !rate.is_finite() || rate > u64::MAX as f64 {
        Err(bad())
    } else {
        Ok(Some(rate as u64))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn issue_17_rates_read_as_rsync_reads_them() {
        for (text, rate) in [
            ("500K", Some(512_000)),
            ("2M", Some(2 << 20)),
            ("1.5m", Some(3 << 19)),
            ("100", Some(102_400)),
            ("100B", Some(100)),
            ("1MB", Some(1_000_000)),
            ("1GiB", Some(1 << 30)),
            ("0", None),
        ] {
            assert_eq!(parse_rate(text), Ok(rate), "{text}");
        }
        for bad in ["", "abc", "-1K", "5X", "1..2M", "K", "0.1B"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn issue_17_a_paced_writer_keeps_to_its_rate() {
        let start = Instant::now();
        let mut pace = Pace::new(1 << 20);
        for _ in 0..8 {
            pace.sent(64 << 10);
        }
        // Half a MiB at 1 MiB/s.
        assert!(
            start.elapsed() >= Duration::from_millis(450),
            "{:?}",
            start.elapsed()
        );
    }
}
