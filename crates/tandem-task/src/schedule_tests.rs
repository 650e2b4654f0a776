//! The schedule forms and the next-run arithmetic, with the clock and the time zone
//! given. Times are written with their UTC offset, so each case says which instant it
//! means on the nights the clock changes. (Europe/Berlin in 2026: 03:00 on 29 March,
//! 02:00 again on 25 October; America/New_York: 8 March and 1 November.)

use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::Schedule;

/// `(case, time zone, schedule, last run, now, next run)`; `"now"` for a run due now.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    Option<&'static str>,
);

#[rustfmt::skip]
const NEXT: &[Case] = &[
    ("daily, before today's time", "Europe/Berlin", "daily 02:00",
     Some("2026-01-14T02:00:00+01:00"), "2026-01-15T01:00:00+01:00", Some("2026-01-15T02:00:00+01:00")),
    ("daily, ran today", "Europe/Berlin", "daily 02:00",
     Some("2026-01-15T02:00:05+01:00"), "2026-01-15T10:00:00+01:00", Some("2026-01-16T02:00:00+01:00")),
    ("daily, missed for days while the machine was off: once, now", "Europe/Berlin", "daily 02:00",
     Some("2026-01-10T02:00:00+01:00"), "2026-01-15T10:00:00+01:00", Some("now")),
    ("daily, run by hand after the missed time: not again", "Europe/Berlin", "daily 02:00",
     Some("2026-01-15T09:00:00+01:00"), "2026-01-15T10:00:00+01:00", Some("2026-01-16T02:00:00+01:00")),
    ("daily, never run: its next time, no catching up", "Europe/Berlin", "daily 02:00",
     None, "2026-01-15T10:00:00+01:00", Some("2026-01-16T02:00:00+01:00")),
    ("daily, never run, now is its time", "Europe/Berlin", "daily 02:00",
     None, "2026-01-15T02:00:00+01:00", Some("now")),
    ("spring forward: 02:30 does not exist, runs at the jump, 03:00", "Europe/Berlin", "daily 02:30",
     Some("2026-03-28T02:30:00+01:00"), "2026-03-29T01:00:00+01:00", Some("2026-03-29T03:00:00+02:00")),
    ("the day after spring forward: 02:30 summer time", "Europe/Berlin", "daily 02:30",
     Some("2026-03-29T03:00:00+02:00"), "2026-03-29T12:00:00+02:00", Some("2026-03-30T02:30:00+02:00")),
    ("fall back: 02:30 twice, the first one", "Europe/Berlin", "daily 02:30",
     Some("2026-10-24T02:30:00+02:00"), "2026-10-25T00:00:00+02:00", Some("2026-10-25T02:30:00+02:00")),
    ("fall back: ran at the first 02:30, not again at the second", "Europe/Berlin", "daily 02:30",
     Some("2026-10-25T02:30:00+02:00"), "2026-10-25T02:30:00+01:00", Some("2026-10-26T02:30:00+01:00")),
    ("fall back: never run, between the two 02:30s: tomorrow", "Europe/Berlin", "daily 02:30",
     None, "2026-10-25T02:45:00+01:00", Some("2026-10-26T02:30:00+01:00")),
    ("fall back: asleep through the first 02:30, woken before the second: now", "Europe/Berlin", "daily 02:30",
     Some("2026-10-24T02:30:00+02:00"), "2026-10-25T02:10:00+01:00", Some("now")),
    ("New York spring forward: 02:30 runs at 03:00 EDT", "America/New_York", "daily 02:30",
     Some("2026-03-07T02:30:00-05:00"), "2026-03-08T00:00:00-05:00", Some("2026-03-08T03:00:00-04:00")),
    ("New York fall back: 01:30 EDT, the first one", "America/New_York", "daily 01:30",
     Some("2026-10-31T01:30:00-04:00"), "2026-11-01T00:00:00-04:00", Some("2026-11-01T01:30:00-04:00")),
    ("New York fall back: not again at 01:30 EST", "America/New_York", "daily 01:30",
     Some("2026-11-01T01:30:00-04:00"), "2026-11-01T01:30:00-05:00", Some("2026-11-02T01:30:00-05:00")),
    ("every, from the last run", "Europe/Berlin", "every 30m",
     Some("2026-01-15T10:00:00+01:00"), "2026-01-15T10:10:00+01:00", Some("2026-01-15T10:30:00+01:00")),
    ("every, overdue: now", "Europe/Berlin", "every 30m",
     Some("2026-01-15T10:00:00+01:00"), "2026-01-15T11:10:00+01:00", Some("now")),
    ("every, never run: now", "Europe/Berlin", "every 2h",
     None, "2026-01-15T10:00:00+01:00", Some("now")),
    ("every counts elapsed time across spring forward", "Europe/Berlin", "every 1h",
     Some("2026-03-29T01:30:00+01:00"), "2026-03-29T01:40:00+01:00", Some("2026-03-29T03:30:00+02:00")),
    ("every, last run in the future (clock set back): one interval from now", "Europe/Berlin", "every 30m",
     Some("2026-01-15T12:00:00+01:00"), "2026-01-15T10:00:00+01:00", Some("2026-01-15T10:30:00+01:00")),
    ("weekly, Sunday to Monday across the week boundary", "Europe/Berlin", "weekly mon,thu 18:30",
     Some("2026-01-15T18:30:00+01:00"), "2026-01-18T20:00:00+01:00", Some("2026-01-19T18:30:00+01:00")),
    ("weekly, Thursday missed: now", "Europe/Berlin", "weekly mon,thu 18:30",
     Some("2026-01-12T18:30:00+01:00"), "2026-01-16T09:00:00+01:00", Some("now")),
    ("weekly, one day: next week", "Europe/Berlin", "weekly fri 18:30",
     Some("2026-01-16T18:30:00+01:00"), "2026-01-17T10:00:00+01:00", Some("2026-01-23T18:30:00+01:00")),
    ("weekly, across the new year", "Europe/Berlin", "weekly sun 09:00",
     Some("2026-12-27T09:00:00+01:00"), "2026-12-31T12:00:00+01:00", Some("2027-01-03T09:00:00+01:00")),
    ("monthly 31 in February: its last day", "Europe/Berlin", "monthly 31 02:00",
     Some("2026-01-31T02:00:00+01:00"), "2026-02-10T00:00:00+01:00", Some("2026-02-28T02:00:00+01:00")),
    ("monthly 31 in April: the 30th", "Europe/Berlin", "monthly 31 02:00",
     Some("2026-03-31T02:00:00+02:00"), "2026-04-02T00:00:00+02:00", Some("2026-04-30T02:00:00+02:00")),
    ("monthly 31 back to the 31st in May", "Europe/Berlin", "monthly 31 02:00",
     Some("2026-04-30T02:00:00+02:00"), "2026-05-02T00:00:00+02:00", Some("2026-05-31T02:00:00+02:00")),
    ("monthly 29, leap year: 29 February", "Europe/Berlin", "monthly 29 02:00",
     Some("2028-01-29T02:00:00+01:00"), "2028-02-01T00:00:00+01:00", Some("2028-02-29T02:00:00+01:00")),
    ("monthly 29, common year: 28 February", "Europe/Berlin", "monthly 29 02:00",
     Some("2027-01-29T02:00:00+01:00"), "2027-02-01T00:00:00+01:00", Some("2027-02-28T02:00:00+01:00")),
    ("monthly last, leap year, at 00:00", "Europe/Berlin", "monthly last",
     Some("2028-01-31T00:00:00+01:00"), "2028-02-15T00:00:00+01:00", Some("2028-02-29T00:00:00+01:00")),
    ("monthly last, after February: 31 March, summer time", "Europe/Berlin", "monthly last 00:00",
     Some("2026-02-28T00:00:00+01:00"), "2026-03-01T12:00:00+01:00", Some("2026-03-31T00:00:00+02:00")),
    ("monthly, months missed: once, now", "Europe/Berlin", "monthly 1 02:00",
     Some("2026-01-01T02:00:00+01:00"), "2026-03-15T12:00:00+01:00", Some("now")),
    ("monthly, across the new year", "America/New_York", "monthly 1 02:00",
     Some("2026-12-01T02:00:00-05:00"), "2026-12-20T12:00:00-05:00", Some("2027-01-01T02:00:00-05:00")),
    ("at-start has no time", "Europe/Berlin", "at-start",
     None, "2026-01-15T10:00:00+01:00", None),
    ("on-appear has no time", "Europe/Berlin", "on-appear /media/backup",
     Some("2026-01-15T09:00:00+01:00"), "2026-01-15T10:00:00+01:00", None),
];

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap_or_else(|e| {
        panic!("time zone {name}: {e} (the system's database, /usr/share/zoneinfo: install tzdata)")
    })
}

#[test]
fn next_run_table() {
    let mut failed = Vec::new();
    for (case, tz, form, last, now, expected) in NEXT {
        let tz = zone(tz);
        let schedule: Schedule = form.parse().unwrap();
        let now = ts(now);
        let expected = expected.map(|e| if e == "now" { now } else { ts(e) });
        let got = schedule.next_after(last.map(ts), now, &tz);
        if got != expected {
            let show = |t: Option<Timestamp>| {
                t.map_or("none".to_string(), |t| {
                    t.to_zoned_datetime(tz.clone()).to_string()
                })
            };
            failed.push(format!(
                "{case}: {form}: got {}, expected {}",
                show(got),
                show(expected)
            ));
        }
    }
    assert!(failed.is_empty(), "\n{}", failed.join("\n"));
}

#[test]
fn the_first_of_several_schedules_wins() {
    let tz = zone("Europe/Berlin");
    let schedules: Vec<Schedule> = ["daily 02:00", "every 30m", "at-start"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let last = ts("2026-01-15T01:50:00+01:00");
    let now = ts("2026-01-15T01:55:00+01:00");
    let next = super::next_run(&schedules, Some(last), now, &tz);
    assert_eq!(next, Some(ts("2026-01-15T02:00:00+01:00")));
    assert_eq!(super::next_run(&schedules[2..], Some(last), now, &tz), None);
}

/// `(written, shown)`: each parses, shows as `shown`, and `shown` parses to the same.
#[rustfmt::skip]
const GOOD: &[(&str, &str)] = &[
    ("every 30m", "every 30m"),
    ("every 90s", "every 90s"),
    ("every 120m", "every 2h"),
    ("every 1d", "every 1d"),
    ("EVERY 2H", "every 2h"),
    ("  daily   02:00  ", "daily 02:00"),
    ("daily 2:05", "daily 02:05"),
    ("daily", "daily 00:00"),
    ("weekly mon,thu 18:30", "weekly mon,thu 18:30"),
    ("weekly thu,mon,mon 18:30", "weekly mon,thu 18:30"),
    ("weekly mon-fri 07:00", "weekly mon,tue,wed,thu,fri 07:00"),
    ("weekly fri-mon", "weekly mon,fri,sat,sun 00:00"),
    ("weekly Sunday 09:15", "weekly sun 09:15"),
    ("monthly 1 02:00", "monthly 1 02:00"),
    ("monthly 31", "monthly 31 00:00"),
    ("monthly last 02:00", "monthly last 02:00"),
    ("monthly last", "monthly last 00:00"),
    ("at-start", "at-start"),
    ("on-appear /media/my disk", "on-appear /media/my disk"),
];

#[test]
fn forms_parse_and_show_as_they_parse_back() {
    for (written, shown) in GOOD {
        let s: Schedule = written.parse().unwrap_or_else(|e| panic!("{written}: {e}"));
        assert_eq!(s.to_string(), *shown, "{written}");
        assert_eq!(shown.parse::<Schedule>().unwrap(), s, "{shown}");
    }
}

/// `(written, the start of the message)`.
#[rustfmt::skip]
const BAD: &[(&str, &str)] = &[
    ("", "empty schedule (forms: every 30m,"),
    ("hourly", "'hourly' is not a schedule (forms: every 30m,"),
    ("every", "every: give an interval, e.g. every 30m"),
    ("every 30", "every: '30' is not an interval (a whole number and s, m, h or d"),
    ("every 30x", "every: '30x' is not an interval"),
    ("every m", "every: 'm' is not an interval"),
    ("every -5m", "every: '-5m' is not an interval"),
    ("every 0m", "every: '0m' is no time at all"),
    ("every 400d", "every: '400d' is longer than a year"),
    ("every 30m 5", "every: unexpected '5' after the interval"),
    ("daily 25:00", "daily: '25:00' is not a time of day (HH:MM, 00:00 to 23:59)"),
    ("daily 2pm", "daily: '2pm' is not a time of day"),
    ("daily 02:0", "daily: '02:0' is not a time of day"),
    ("daily 02:00 x", "daily: unexpected 'x' after the time"),
    ("weekly mun 18:30", "weekly: 'mun' is not a day (mon, tue, wed, thu, fri, sat, sun)"),
    ("weekly mon,thu,fry 18:30", "weekly: 'fry' is not a day"),
    ("weekly mon-frx", "weekly: 'frx' is not a day"),
    ("weekly", "weekly: give the days, e.g. weekly mon,thu 18:30"),
    ("weekly ,", "weekly: give the days"),
    ("weekly mon 18:61", "weekly: '18:61' is not a time of day"),
    ("monthly 32 02:00", "monthly: '32' is not a day of the month (1 to 31, or last)"),
    ("monthly 0", "monthly: '0' is not a day of the month"),
    ("monthly first", "monthly: 'first' is not a day of the month"),
    ("monthly", "monthly: give the day of the month"),
    ("monthly last 24:00", "monthly: '24:00' is not a time of day"),
    ("at-start now", "at-start: unexpected 'now' after it"),
    ("on-appear", "on-appear: give the path to watch"),
    ("on-appear media/usb", "on-appear: 'media/usb' is not an absolute path"),
];

#[test]
fn a_bad_form_names_the_part_that_does_not_parse() {
    for (written, start) in BAD {
        match written.parse::<Schedule>() {
            Ok(s) => panic!("{written:?} parsed as {s}"),
            Err(e) => assert!(e.to_string().starts_with(start), "{written:?}: {e}"),
        }
    }
}

fn config_with(schedule_line: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    for d in ["Photos", "t"] {
        std::fs::create_dir(tmp.path().join(d)).unwrap();
    }
    let path = tmp.path().join("config.toml");
    let text = format!(
        "[task.photos]\nsources = [\"{}\"]\ntarget = \"{}\"\n{schedule_line}\n",
        tmp.path().join("Photos").display(),
        tmp.path().join("t").display()
    );
    std::fs::write(&path, text).unwrap();
    (tmp, path)
}

#[test]
fn the_config_key_takes_a_list_or_one_form() {
    let (_tmp, path) = config_with("schedule = [\"daily 02:00\", \"every 30m\"] # nightly");
    let cfg = crate::Config::load(&path).unwrap();
    let shown: Vec<String> = cfg
        .task("photos")
        .unwrap()
        .schedules
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(shown, ["daily 02:00", "every 30m"]);
    let (_tmp, path) = config_with("schedule = \"monthly last\"");
    let cfg = crate::Config::load(&path).unwrap();
    assert_eq!(
        cfg.task("photos").unwrap().schedules[0].to_string(),
        "monthly last 00:00"
    );
}

#[test]
fn a_bad_form_in_the_config_is_placed_at_its_file_line_and_key() {
    let (_tmp, path) = config_with("schedule = [\"daily 02:00\", \"weekly mun 18:30\"]");
    let e = crate::Config::load(&path).unwrap_err().to_string();
    let expected = format!(
        "{}:4: task photos, schedule: \"weekly mun 18:30\" does not parse: weekly: 'mun' is not a day (mon, tue, wed, thu, fri, sat, sun)",
        path.display()
    );
    assert_eq!(e, expected);
}

#[test]
fn edit_sets_and_clears_the_schedule_keeping_the_file_otherwise() {
    let (_tmp, path) = config_with("# by hand\nfsync = true");
    let mut cfg = crate::Config::load(&path).unwrap();
    let set = crate::TaskChanges {
        schedules: Some(vec![
            "every 30m".parse().unwrap(),
            "at-start".parse().unwrap(),
        ]),
        ..Default::default()
    };
    cfg.edit("photos", &set).unwrap();
    cfg.save().unwrap();
    let saved = std::fs::read_to_string(&path).unwrap();
    assert!(
        saved.contains("# by hand\nfsync = true\nschedule = [\"every 30m\", \"at-start\"]\n"),
        "{saved}"
    );
    let mut cfg = crate::Config::load(&path).unwrap();
    assert_eq!(cfg.task("photos").unwrap().schedules.len(), 2);
    let clear = crate::TaskChanges {
        schedules: Some(Vec::new()),
        ..Default::default()
    };
    cfg.edit("photos", &clear).unwrap();
    cfg.save().unwrap();
    let saved = std::fs::read_to_string(&path).unwrap();
    assert!(!saved.contains("schedule"), "{saved}");
    assert!(crate::Config::load(&path)
        .unwrap()
        .task("photos")
        .unwrap()
        .schedules
        .is_empty());
}
