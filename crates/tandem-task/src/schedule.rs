//! When a task runs by itself: the forms of a `schedule`, read and written back, and the
//! arithmetic of the next run. Pure: no clock, no file system, no time zone of its own;
//! the caller gives the time now, the zone and the task's last run (the daemon, and
//! `task show`, which only prints the answer).
//!
//! The forms, in local time:
//! - `every 30m` (`s`, `m`, `h`, `d`): that long after the last run started, in elapsed
//!   time (a clock change does not move it); a task never run is due at once.
//! - `daily 02:00`, `weekly mon,thu 18:30` (days `mon`..`sun`, full names, ranges
//!   `mon-fri`), `monthly 1 02:00`, `monthly last 02:00`. The time may be left out: it is
//!   then 00:00 (`monthly last` is the last day of the month at 00:00). A day the month
//!   does not have is its last day: `monthly 31` runs on 30 April and 28 or 29 February
//!   (anacron users expect a monthly job every month; systemd's `OnCalendar` would skip).
//! - `at-start` (when the daemon starts) and `on-appear PATH` (when PATH appears, a disk
//!   mounted): events, with no time of their own.
//!
//! Daylight saving time: a time the clock skips (02:30 on the spring-forward night) runs
//! at the first instant after the jump (03:00); a time the clock passes twice (01:30 on
//! the fall-back night) runs once, the first time. A missed run (the machine off or
//! asleep at the scheduled time) runs once as soon as possible, as anacron and systemd's
//! `Persistent=` do: when the last run is older than the latest scheduled time that has
//! passed, the next run is now.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};

/// One way a task is started by itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// `every N`: N seconds after the last run started.
    Every {
        seconds: i64,
    },
    Daily {
        at: Time,
    },
    /// Days Monday first, each once.
    Weekly {
        days: Vec<Weekday>,
        at: Time,
    },
    Monthly {
        day: MonthDay,
        at: Time,
    },
    AtStart,
    OnAppear(PathBuf),
}

/// The day of a `monthly` schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonthDay {
    /// 1 to 31; past the month's end, its last day.
    Day(i8),
    Last,
}

/// Why a schedule does not parse: the form and the part at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(String);

const FORMS: &str = "every 30m, daily 02:00, weekly mon,thu 18:30, monthly 1 02:00, monthly last 02:00, at-start, on-appear PATH";
const DAYS: &str = "mon, tue, wed, thu, fri, sat, sun";
/// The longest `every`: a year and a day.
const MAX_EVERY: i64 = 366 * 86_400;

fn bad(form: &str, why: String) -> ScheduleError {
    ScheduleError(format!("{form}: {why}"))
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Schedule, ScheduleError> {
        let s = s.trim();
        let (form, rest) = s
            .split_once(char::is_whitespace)
            .map_or((s, ""), |(f, r)| (f, r.trim()));
        let words: Vec<&str> = rest.split_whitespace().collect();
        match form.to_ascii_lowercase().as_str() {
            "" => Err(ScheduleError(format!("empty schedule (forms: {FORMS})"))),
            "every" => parse_every(&words),
            "daily" => Ok(Schedule::Daily {
                at: time_at_end("daily", &words)?,
            }),
            "weekly" => parse_weekly(&words),
            "monthly" => parse_monthly(&words),
            "at-start" => match words.first() {
                None => Ok(Schedule::AtStart),
                Some(w) => Err(bad("at-start", format!("unexpected '{w}' after it"))),
            },
            "on-appear" => {
                let path = PathBuf::from(rest);
                if rest.is_empty() {
                    Err(bad(
                        "on-appear",
                        "give the path to watch, e.g. on-appear /media/backup".into(),
                    ))
                } else if !path.is_absolute() {
                    Err(bad(
                        "on-appear",
                        format!("'{rest}' is not an absolute path"),
                    ))
                } else {
                    Ok(Schedule::OnAppear(path))
                }
            }
            _ => Err(ScheduleError(format!(
                "'{form}' is not a schedule (forms: {FORMS})"
            ))),
        }
    }
}

fn parse_every(words: &[&str]) -> Result<Schedule, ScheduleError> {
    let [word] = words else {
        return Err(bad(
            "every",
            match words {
                [] => "give an interval, e.g. every 30m".to_string(),
                _ => format!("unexpected '{}' after the interval", words[1]),
            },
        ));
    };
    let not = || {
        bad(
            "every",
            format!(
                "'{word}' is not an interval (a whole number and s, m, h or d: 90s, 30m, 2h, 1d)"
            ),
        )
    };
    let split = word.find(|c: char| !c.is_ascii_digit()).ok_or_else(not)?;
    let (num, unit) = word.split_at(split);
    let n: i64 = num.parse().map_err(|_| not())?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(not()),
    };
    match n.checked_mul(scale) {
        Some(0) => Err(bad("every", format!("'{word}' is no time at all"))),
        Some(seconds) if seconds <= MAX_EVERY => Ok(Schedule::Every { seconds }),
        _ => Err(bad(
            "every",
            format!("'{word}' is longer than a year (366d)"),
        )),
    }
}

fn parse_weekly(words: &[&str]) -> Result<Schedule, ScheduleError> {
    let Some(list) = words.first() else {
        return Err(bad(
            "weekly",
            "give the days, e.g. weekly mon,thu 18:30".into(),
        ));
    };
    let mut days: Vec<Weekday> = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((from, to)) => {
                let (mut d, to) = (weekday(from)?, weekday(to)?);
                days.push(d);
                while d != to {
                    d = d.next();
                    days.push(d);
                }
            }
            None => days.push(weekday(part)?),
        }
    }
    if days.is_empty() {
        return Err(bad(
            "weekly",
            "give the days, e.g. weekly mon,thu 18:30".into(),
        ));
    }
    days.sort_by_key(|d| d.to_monday_one_offset());
    days.dedup();
    let at = time_at_end("weekly", &words[1..])?;
    Ok(Schedule::Weekly { days, at })
}

fn weekday(word: &str) -> Result<Weekday, ScheduleError> {
    let w = word.to_ascii_lowercase();
    let names = [
        ("mon", "monday", Weekday::Monday),
        ("tue", "tuesday", Weekday::Tuesday),
        ("wed", "wednesday", Weekday::Wednesday),
        ("thu", "thursday", Weekday::Thursday),
        ("fri", "friday", Weekday::Friday),
        ("sat", "saturday", Weekday::Saturday),
        ("sun", "sunday", Weekday::Sunday),
    ];
    names
        .iter()
        .find(|(short, long, _)| w == *short || w == *long)
        .map(|(_, _, d)| *d)
        .ok_or_else(|| bad("weekly", format!("'{word}' is not a day ({DAYS})")))
}

fn parse_monthly(words: &[&str]) -> Result<Schedule, ScheduleError> {
    let Some(word) = words.first() else {
        return Err(bad(
            "monthly",
            "give the day of the month, e.g. monthly 1 02:00 or monthly last 02:00".into(),
        ));
    };
    let day = if word.eq_ignore_ascii_case("last") {
        MonthDay::Last
    } else {
        word.parse::<i8>()
            .ok()
            .filter(|d| (1..=31).contains(d))
            .map(MonthDay::Day)
            .ok_or_else(|| {
                bad(
                    "monthly",
                    format!("'{word}' is not a day of the month (1 to 31, or last)"),
                )
            })?
    };
    let at = time_at_end("monthly", &words[1..])?;
    Ok(Schedule::Monthly { day, at })
}

/// The optional `HH:MM` that ends a calendar form (00:00 when left out).
fn time_at_end(form: &str, words: &[&str]) -> Result<Time, ScheduleError> {
    match words {
        [] => Ok(Time::midnight()),
        [word] => time_of_day(word).ok_or_else(|| {
            bad(
                form,
                format!("'{word}' is not a time of day (HH:MM, 00:00 to 23:59)"),
            )
        }),
        [_, extra, ..] => Err(bad(form, format!("unexpected '{extra}' after the time"))),
    }
}

fn time_of_day(word: &str) -> Option<Time> {
    let (h, m) = word.split_once(':')?;
    let digits = |s: &str, max_len| {
        (!s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<i8>().ok())
            .flatten()
    };
    let (h, m) = (digits(h, 2)?, digits(m, 2).filter(|_| m.len() == 2)?);
    Time::new(h, m, 0, 0).ok()
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hm = |t: &Time| format!("{:02}:{:02}", t.hour(), t.minute());
        match self {
            Schedule::Every { seconds } => {
                let (n, unit) = [(86_400, "d"), (3600, "h"), (60, "m")]
                    .into_iter()
                    .find(|(scale, _)| seconds % scale == 0)
                    .map_or((*seconds, "s"), |(scale, unit)| (seconds / scale, unit));
                write!(f, "every {n}{unit}")
            }
            Schedule::Daily { at } => write!(f, "daily {}", hm(at)),
            Schedule::Weekly { days, at } => {
                let names: Vec<&str> = days.iter().map(|d| day_name(*d)).collect();
                write!(f, "weekly {} {}", names.join(","), hm(at))
            }
            Schedule::Monthly { day, at } => match day {
                MonthDay::Day(d) => write!(f, "monthly {d} {}", hm(at)),
                MonthDay::Last => write!(f, "monthly last {}", hm(at)),
            },
            Schedule::AtStart => f.write_str("at-start"),
            Schedule::OnAppear(path) => write!(f, "on-appear {}", path.display()),
        }
    }
}

fn day_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Monday => "mon",
        Weekday::Tuesday => "tue",
        Weekday::Wednesday => "wed",
        Weekday::Thursday => "thu",
        Weekday::Friday => "fri",
        Weekday::Saturday => "sat",
        Weekday::Sunday => "sun",
    }
}

/// How far the calendar forms look for an occurrence (every form has one a month).
const SEARCH_DAYS: usize = 400;

impl Schedule {
    /// When this schedule next starts the task, given its last run's start (`None`:
    /// never run), the time now and the local time zone. `None` for the events
    /// (`at-start`, `on-appear`), which have no time. `now` when a run is due: an `every`
    /// whose interval has passed (or that never ran), a calendar time missed since the
    /// last run. A calendar form never run is due at its first time at or after `now`:
    /// a daemon that waited for that time passes, once woken, the time it began
    /// waiting as the last run, so that the time just passed counts as missed.
    pub fn next_after(
        &self,
        last_run: Option<Timestamp>,
        now: Timestamp,
        tz: &TimeZone,
    ) -> Option<Timestamp> {
        match self {
            Schedule::AtStart | Schedule::OnAppear(_) => None,
            Schedule::Every { seconds } => {
                let Some(last) = last_run else {
                    return Some(now);
                };
                let step = SignedDuration::from_secs(*seconds);
                let later = |t: Timestamp| t.checked_add(step).unwrap_or(Timestamp::MAX);
                // A last run in the future (the clock set back) waits one interval.
                Some(later(last).clamp(now, later(now)))
            }
            _ => match last_run {
                None => self.first_from(now, tz, true),
                Some(last) => match self.latest_until(now, tz) {
                    Some(passed) if last < passed => Some(now),
                    _ => self.first_from(now, tz, false),
                },
            },
        }
    }

    /// The instant this calendar schedule fires on `date`, if it does.
    fn on(&self, date: Date, tz: &TimeZone) -> Option<Timestamp> {
        let (fires, at) = match self {
            Schedule::Daily { at } => (true, at),
            Schedule::Weekly { days, at } => (days.contains(&date.weekday()), at),
            Schedule::Monthly { day, at } => {
                let last = date.days_in_month();
                let wanted = match day {
                    MonthDay::Day(d) => (*d).min(last),
                    MonthDay::Last => last,
                };
                (date.day() == wanted, at)
            }
            _ => return None,
        };
        fires
            .then(|| local_instant(date.to_datetime(*at), tz))
            .flatten()
    }

    /// The first time after `now` (or at it, with `inclusive`).
    fn first_from(&self, now: Timestamp, tz: &TimeZone, inclusive: bool) -> Option<Timestamp> {
        let mut date = tz.to_datetime(now).date().yesterday().ok()?;
        for _ in 0..SEARCH_DAYS {
            if let Some(t) = self.on(date, tz) {
                if t > now || (inclusive && t == now) {
                    return Some(t);
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    /// The latest time at or before `now`.
    fn latest_until(&self, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let mut date = tz.to_datetime(now).date().tomorrow().ok()?;
        for _ in 0..SEARCH_DAYS {
            if let Some(t) = self.on(date, tz) {
                if t <= now {
                    return Some(t);
                }
            }
            date = date.yesterday().ok()?;
        }
        None
    }
}

/// The instant of a local time: in a gap (the clock jumped over it), the jump itself,
/// the first instant after; in a fold (the clock passed it twice), the first time.
fn local_instant(dt: DateTime, tz: &TimeZone) -> Option<Timestamp> {
    let ambiguous = tz.to_ambiguous_timestamp(dt);
    let gap = matches!(ambiguous.offset(), AmbiguousOffset::Gap { .. });
    let earlier = ambiguous.earlier().ok()?;
    if gap {
        tz.following(earlier).next().map(|t| t.timestamp())
    } else {
        Some(earlier)
    }
}

/// The first of several schedules' next runs.
pub fn next_run(
    schedules: &[Schedule],
    last_run: Option<Timestamp>,
    now: Timestamp,
    tz: &TimeZone,
) -> Option<Timestamp> {
    schedules
        .iter()
        .filter_map(|s| s.next_after(last_run, now, tz))
        .min()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "schedule_tests.rs"]
mod tests;
