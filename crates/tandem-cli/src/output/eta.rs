//! The progress bar's estimate of the time left (issue 20, item 9: "eta 9d" on a 2 s run).
//!
//! Pure: the printer passes in the time elapsed, nothing here reads a clock. The estimate
//! comes from the average rates since the start, in bytes and in changes both (a run of
//! deletions moves no bytes; one big copy is one change), and is shown only once enough
//! time has passed and enough work is done for a rate to mean something.

use std::time::Duration;

/// Work, in bytes copied and in changes made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    pub bytes: u64,
    pub changes: u64,
}

/// No estimate before this much time has passed...
const MIN_ELAPSED: Duration = Duration::from_secs(1);
/// ...nor while a measure with work left has less than this fraction of it done.
const MIN_DONE: f64 = 0.05;
/// Weight of each new estimate of the finishing time against the ones before.
const SMOOTHING: f64 = 0.3;

/// The time left at the average rates so far: the longer of what the bytes left and the
/// changes left would take. `None` while that means nothing (too early, too little done).
pub fn remaining(elapsed: Duration, done: Work, total: Work) -> Option<Duration> {
    if elapsed < MIN_ELAPSED || (total.bytes == 0 && total.changes == 0) {
        return None;
    }
    let left = |done: u64, total: u64| -> Option<f64> {
        let left = total.saturating_sub(done);
        if left == 0 {
            return Some(0.0);
        }
        let fraction = done as f64 / total as f64;
        (fraction >= MIN_DONE).then(|| elapsed.as_secs_f64() * left as f64 / done as f64)
    };
    let secs = left(done.bytes, total.bytes)?.max(left(done.changes, total.changes)?);
    Some(Duration::from_secs_f64(secs))
}

/// Smooths successive estimates: what moves is the predicted finishing time, and only part
/// of the way towards each new estimate, so the figure shown does not jump about.
#[derive(Clone, Debug, Default)]
pub struct Eta {
    finish: Option<f64>,
}

impl Eta {
    pub fn update(&mut self, elapsed: Duration, done: Work, total: Work) -> Option<Duration> {
        let Some(left) = remaining(elapsed, done, total) else {
            self.finish = None;
            return None;
        };
        let now = elapsed.as_secs_f64();
        let target = now + left.as_secs_f64();
        let finish = match self.finish {
            Some(f) if left > Duration::ZERO => f + SMOOTHING * (target - f),
            _ => target,
        };
        self.finish = Some(finish);
        Some(Duration::from_secs_f64((finish - now).max(0.0)))
    }
}

/// `7s`, `2m05s`, `1h03m`: whole seconds, rounded up (an estimate of 0.2 s reads `1s`).
pub fn human(d: Duration) -> String {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn w(bytes: u64, changes: u64) -> Work {
        Work { bytes, changes }
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn issue_20_eta_from_bytes_and_changes_none_until_meaningful() {
        // (what, elapsed s, done, total, expected s)
        #[rustfmt::skip]
        let cases: &[(&str, f64, Work, Work, Option<f64>)] = &[
            ("too early", 0.5, w(500, 5), w(1000, 10), None),
            ("nothing planned", 5.0, w(0, 0), w(0, 0), None),
            ("too little done", 2.0, w(10, 1), w(1000, 100), None),
            ("halfway at a steady rate", 2.0, w(500, 5), w(1000, 10), Some(2.0)),
            ("all done", 3.0, w(1000, 10), w(1000, 10), Some(0.0)),
            ("bytes ahead: the changes left take longer", 2.0, w(900, 2), w(1000, 10), Some(8.0)),
            ("changes ahead: the bytes left take longer", 2.0, w(100, 9), w(1000, 10), Some(18.0)),
            ("only deletions: no bytes to move", 1.0, w(0, 25), w(0, 100), Some(3.0)),
            ("deletions done, the one big copy not started", 4.0, w(0, 99), w(1 << 30, 100), None),
            ("the big copy done first: one change is no rate", 4.0, w(1 << 30, 1), w(1 << 30, 100), None),
            ("the big copy and 9 more done", 4.0, w(1 << 30, 10), w(1 << 30, 100), Some(36.0)),
            ("a 2 s run, one second in", 1.0, w(60, 60), w(100, 100), Some(2.0 / 3.0)),
            ("more done than planned (a retried path)", 2.0, w(1200, 12), w(1000, 10), Some(0.0)),
        ];
        for (what, elapsed, done, total, want) in cases {
            let got = remaining(secs(*elapsed), *done, *total).map(|d| d.as_secs_f64());
            match (got, want) {
                (Some(g), Some(x)) => assert!((g - x).abs() < 1e-6, "{what}: {g} != {x}"),
                _ => assert_eq!(got, *want, "{what}"),
            }
        }
    }

    #[test]
    fn issue_20_eta_smoothing_follows_a_changed_rate_without_jumping() {
        let total = w(1000, 10);
        let mut eta = Eta::default();
        assert_eq!(eta.update(secs(0.5), w(100, 1), total), None);
        // 20% in 1 s: 4 s left.
        let first = eta.update(secs(1.0), w(200, 2), total).unwrap();
        assert!((first.as_secs_f64() - 4.0).abs() < 1e-6, "{first:?}");
        // Then a burst: 80% at 1.5 s (raw estimate 0.375 s left). The shown figure moves
        // towards it, not all the way, and never below what is raw.
        let second = eta.update(secs(1.5), w(800, 8), total).unwrap();
        let raw = remaining(secs(1.5), w(800, 8), total).unwrap();
        assert!(
            second < first && second > raw,
            "{first:?} {second:?} {raw:?}"
        );
        // Done is done: 0 at once.
        assert_eq!(eta.update(secs(2.0), total, total), Some(Duration::ZERO));
    }

    #[test]
    fn human_durations() {
        for (d, want) in [
            (secs(0.2), "1s"),
            (secs(7.0), "7s"),
            (secs(59.5), "1m00s"),
            (secs(125.0), "2m05s"),
            (secs(3600.0 + 180.0), "1h03m"),
            (secs(9.0 * 86400.0), "216h00m"),
        ] {
            assert_eq!(human(d), want);
        }
    }
}
