//! Times as people read them, in local time: "today 02:00", "3 min ago"; and in RFC 3339
//! with the local offset for `--json`. The clock and the time zone are passed in (`Clock`),
//! so that the wording is tested without waiting.

use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;

#[derive(Clone, Debug)]
pub struct Clock {
    pub now: Timestamp,
    pub tz: TimeZone,
}

impl Clock {
    /// Now, in the system's time zone (`TZ`, else `/etc/localtime`).
    pub fn system() -> Clock {
        Clock {
            now: Timestamp::now(),
            tz: TimeZone::system(),
        }
    }

    pub fn rfc3339(&self, t: Timestamp) -> String {
        tandem_task::rfc3339(t, &self.tz)
    }

    /// "today 02:00", "yesterday 18:30", "tomorrow 02:00", "Fri 2026-12-11 02:00".
    pub fn at(&self, t: Timestamp) -> String {
        let local = t.to_zoned_datetime(self.tz.clone());
        let today = self.tz.to_datetime(self.now).date();
        let word = match today.until(local.date()).map(|span| span.get_days()) {
            Ok(0) => "today".to_string(),
            Ok(1) => "tomorrow".to_string(),
            Ok(-1) => "yesterday".to_string(),
            _ => local.strftime("%a %Y-%m-%d").to_string(),
        };
        format!("{word} {}", local.strftime("%H:%M"))
    }

    /// A time past: "just now", "40 s ago", "3 min ago" within the hour, else as `at`.
    pub fn ago(&self, t: Timestamp) -> String {
        let secs = self.now.duration_since(t).as_secs();
        match secs {
            i64::MIN..5 => "just now".to_string(),
            5..60 => format!("{secs} s ago"),
            60..3600 => format!("{} min ago", secs / 60),
            _ => self.at(t),
        }
    }
}

/// `0.4s`, `7s`, `2m05s`, `1h03m`: how long a run took.
pub fn took(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        return format!("{:.1}s", d.as_secs_f64());
    }
    super::eta::human(d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn issue_15_times_read_as_today_and_minutes_ago() {
        let tz = TimeZone::get("Europe/Paris").unwrap();
        let at = |s: &str| -> Timestamp { s.parse().unwrap() };
        let clock = Clock {
            now: at("2026-12-03T12:00:00+01:00"),
            tz,
        };
        for (t, want) in [
            ("2026-12-03T11:59:58+01:00", "just now"),
            ("2026-12-03T11:59:20+01:00", "40 s ago"),
            ("2026-12-03T11:57:00+01:00", "3 min ago"),
            ("2026-12-03T02:00:00+01:00", "today 02:00"),
            ("2026-12-02T18:30:00+01:00", "yesterday 18:30"),
            ("2026-11-27T02:00:00+01:00", "Fri 2026-11-27 02:00"),
        ] {
            assert_eq!(clock.ago(at(t)), want, "{t}");
        }
        assert_eq!(clock.at(at("2026-12-04T02:00:00+01:00")), "tomorrow 02:00");
        assert_eq!(
            clock.rfc3339(at("2026-12-03T02:00:00Z")),
            "2026-12-03T03:00:00+01:00"
        );
        assert_eq!(took(Duration::from_millis(2140)), "2.1s");
        assert_eq!(took(Duration::from_secs(125)), "2m05s");
    }
}
