//! Task schedules (issue 15): `--schedule` kept in the config as written back, the next
//! runs printed by `task show` and `task list` from the task's last run, and a schedule
//! that does not parse refused with the config unchanged. The time zone is fixed
//! (`TZ=Europe/Berlin`); the arithmetic itself is a table test in tandem-task.

use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use crate::fixtures::{run_tandem_with_env, Out};

struct Sched {
    tmp: tempfile::TempDir,
    config: PathBuf,
}

impl Sched {
    fn new() -> Sched {
        let tmp = tempfile::tempdir().unwrap();
        for f in ["Photos", "t"] {
            std::fs::create_dir(tmp.path().join(f)).unwrap();
        }
        let config = tmp.path().join("config.toml");
        Sched { tmp, config }
    }

    fn p(&self, rel: &str) -> String {
        self.tmp.path().join(rel).to_string_lossy().into_owned()
    }

    fn tandem(&self, args: &[&str], code: i32) -> Out {
        let state = self.tmp.path().join("state");
        let env = [
            ("XDG_STATE_HOME", state.as_path()),
            ("TZ", Path::new("Europe/Berlin")),
        ];
        let mut all = vec!["--config", self.config.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = run_tandem_with_env(&all, &env);
        assert_eq!(out.code, code, "tandem {args:?}:\n{}", out.all());
        out
    }

    fn show(&self) -> Value {
        let out = self.tandem(&["task", "show", "photos", "--json"], 0);
        serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
    }

    fn config_text(&self) -> String {
        std::fs::read_to_string(&self.config).unwrap()
    }

    fn add(&self, schedules: &[&str]) -> Out {
        let (src, tgt) = (self.p("Photos"), self.p("t"));
        let mut args = vec!["task", "add", "photos", "--source", &src, "--target", &tgt];
        for s in schedules {
            args.extend(["--schedule", s]);
        }
        self.tandem(&args, 0)
    }
}

fn time(v: &Value) -> Timestamp {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn issue_15_schedules_round_trip_and_show_their_next_runs() {
    let t = Sched::new();
    let before = Timestamp::now();
    t.add(&["daily 02:00", "every 30m"]);
    assert!(
        t.config_text()
            .contains("\nschedule = [\"daily 02:00\", \"every 30m\"]\n"),
        "{}",
        t.config_text()
    );

    let task = t.show();
    let s = &task["schedule"];
    assert_eq!(s[0]["spec"], "daily 02:00");
    assert_eq!(s[1]["spec"], "every 30m");
    assert_eq!(task["last_run"], Value::Null, "never run");
    // daily 02:00: the next 02:00 in Berlin, RFC 3339 with the local offset.
    let daily = s[0]["next_run"].as_str().unwrap();
    assert!(
        ["T02:00:00+01:00", "T02:00:00+02:00", "T03:00:00+02:00"]
            .iter()
            .any(|end| daily.ends_with(end)),
        "{daily}"
    );
    let daily = time(&s[0]["next_run"]);
    assert!(
        daily > before && daily <= before + SignedDuration::from_hours(25),
        "{daily}"
    );
    // every 30m, never run: due now, and so the task's next run.
    let every = time(&s[1]["next_run"]);
    assert!(
        every.duration_since(before).abs() < SignedDuration::from_secs(60),
        "{every}"
    );
    assert_eq!(task["next_run"], s[1]["next_run"]);

    t.tandem(&["run", "photos"], 0);
    let task = t.show();
    let last = time(&task["last_run"]);
    assert!(last.as_second() >= before.as_second(), "{last}");
    let every = time(&task["schedule"][1]["next_run"]);
    assert_eq!(
        every,
        last + SignedDuration::from_mins(30),
        "every 30m counts from the run"
    );

    let list = t.tandem(&["task", "list", "--json"], 0);
    let list: Value = serde_json::from_str(list.stdout.trim()).unwrap();
    assert_eq!(list["tasks"][0]["schedule"], task["schedule"]);
    let human = t.tandem(&["task", "show", "photos"], 0).stdout;
    assert!(
        human.contains("  schedule:         daily 02:00  (next "),
        "{human}"
    );
    assert!(
        human.contains("  schedule:         every 30m  (next "),
        "{human}"
    );
    let human = t.tandem(&["task", "list"], 0).stdout;
    assert!(
        human.contains("    schedule: daily 02:00, every 30m; next run: "),
        "{human}"
    );
}

#[test]
fn issue_15_a_bad_schedule_is_refused_and_nothing_changes() {
    let t = Sched::new();
    t.add(&["daily 02:00"]);
    let saved = t.config_text();
    let out = t.tandem(
        &["task", "edit", "photos", "--schedule", "weekly mun 18:30"],
        2,
    );
    assert!(
        out.stderr
            .contains("weekly: 'mun' is not a day (mon, tue, wed, thu, fri, sat, sun)"),
        "{}",
        out.all()
    );
    let (src, tgt) = (t.p("Photos"), t.p("t"));
    let add = ["task", "add", "other", "--source", &src, "--target", &tgt];
    let out = t.tandem(&[&add[..], &["--schedule", "every 0m"]].concat(), 2);
    assert!(
        out.stderr.contains("every: '0m' is no time at all"),
        "{}",
        out.all()
    );
    assert_eq!(t.config_text(), saved, "the config is unchanged");

    // Written by hand: placed at its line, and nothing is rewritten.
    let hand = saved.replace("\"daily 02:00\"", "\"monthly 32 02:00\"");
    std::fs::write(&t.config, &hand).unwrap();
    let out = t.tandem(&["task", "edit", "photos", "--comment", "x"], 2);
    let expected = format!(
        "{}:4: task photos, schedule: \"monthly 32 02:00\" does not parse: monthly: '32' is not a day of the month (1 to 31, or last)",
        t.config.display()
    );
    assert!(out.stderr.contains(&expected), "{}", out.all());
    assert_eq!(t.config_text(), hand);
}

#[test]
fn issue_15_no_schedule_makes_a_task_run_by_hand_only() {
    let t = Sched::new();
    t.add(&["at-start", "on-appear /media/backup"]);
    let task = t.show();
    assert_eq!(task["schedule"][1]["spec"], "on-appear /media/backup");
    assert_eq!(
        task["schedule"][1]["next_run"],
        Value::Null,
        "an event has no time"
    );
    assert_eq!(task["next_run"], Value::Null);
    t.tandem(&["task", "edit", "photos", "--no-schedule"], 0);
    assert!(!t.config_text().contains("schedule"), "{}", t.config_text());
    assert_eq!(t.show()["schedule"], Value::Array(Vec::new()));
}
