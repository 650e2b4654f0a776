//! A task's schedules as `task show`, `task list` and `--json` print them: each with its
//! next run, worked out by `tandem_task::Schedule` from the task's last run, the clock
//! and the system's time zone (`TZ`, else `/etc/localtime`).

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::{json, Value};
use tandem_task::{Schedule, TaskSpec};

use crate::output::sanitize;

pub struct When<'t> {
    schedules: &'t [Schedule],
    /// The task's last run, or why its state could not be read.
    last: Result<Option<Timestamp>, String>,
    now: Timestamp,
    tz: TimeZone,
}

impl When<'_> {
    pub fn of(t: &TaskSpec) -> When<'_> {
        When {
            schedules: &t.schedules,
            last: t.last_run().map_err(|e| format!("{e:#}")),
            // Whole seconds, as runs are recorded.
            now: Timestamp::from_second(Timestamp::now().as_second())
                .unwrap_or(Timestamp::UNIX_EPOCH),
            tz: TimeZone::system(),
        }
    }

    fn last(&self) -> Option<Timestamp> {
        self.last.as_ref().ok().copied().flatten()
    }

    fn next(&self, s: &Schedule) -> Option<Timestamp> {
        s.next_after(self.last(), self.now, &self.tz)
    }

    /// RFC 3339 with the local offset.
    fn rfc3339(&self, t: Timestamp) -> String {
        t.display_with_offset(self.tz.to_offset(t)).to_string()
    }

    pub fn schedules_json(&self) -> Value {
        let each = self.schedules.iter().map(|s| {
            json!({
                "spec": s.to_string(),
                "next_run": self.next(s).map(|t| self.rfc3339(t)),
            })
        });
        Value::Array(each.collect())
    }

    pub fn last_run_json(&self) -> Value {
        match &self.last {
            Ok(last) => json!(last.map(|t| self.rfc3339(t))),
            Err(e) => json!({ "error": e }),
        }
    }

    pub fn next_run_json(&self) -> Value {
        let next = tandem_task::next_run(self.schedules, self.last(), self.now, &self.tz);
        json!(next.map(|t| self.rfc3339(t)))
    }

    /// "today 02:00", "tomorrow 02:00", "Fri 2026-12-11 02:00"; "now" for a run due.
    fn human(&self, t: Timestamp) -> String {
        if t == self.now {
            return "now".to_string();
        }
        let local = t.to_zoned_datetime(self.tz.clone());
        let today = self.tz.to_datetime(self.now).date();
        let day = local.date();
        let word = match today.until(day).map(|span| span.get_days()) {
            Ok(0) => "today".to_string(),
            Ok(1) => "tomorrow".to_string(),
            Ok(-1) => "yesterday".to_string(),
            _ => local.strftime("%a %Y-%m-%d").to_string(),
        };
        format!("{word} {}", local.strftime("%H:%M %Z"))
    }

    fn describe(&self, s: &Schedule) -> String {
        match (s, self.next(s)) {
            (Schedule::AtStart, _) => "when the daemon starts".to_string(),
            (Schedule::OnAppear(p), _) => format!("when {} appears", p.display()),
            (_, Some(t)) if t == self.now && self.last().is_some() => {
                "due now: a run was missed".to_string()
            }
            (_, Some(t)) if t == self.now => "due now: never run".to_string(),
            (_, Some(t)) => format!("next {}", self.human(t)),
            (_, None) => "no next run".to_string(),
        }
    }

    /// The schedule lines of `task show`.
    pub fn print(&self) {
        if self.schedules.is_empty() {
            outln!("  schedule:         none (runs by hand: tandem run NAME)");
            return;
        }
        for s in self.schedules {
            outln!(
                "  schedule:         {}  ({})",
                sanitize(&s.to_string()),
                sanitize(&self.describe(s))
            );
        }
        match &self.last {
            Ok(Some(t)) => outln!("  last run:         {}", self.human(*t)),
            Ok(None) => outln!("  last run:         never run"),
            Err(e) => outln!("  last run:         unknown ({})", sanitize(e)),
        }
        outln!("  note: nothing acts on schedules yet; the daemon that runs them comes next");
    }

    /// The line of `task list` under a scheduled task.
    pub fn summary(&self) -> Option<String> {
        if self.schedules.is_empty() {
            return None;
        }
        let forms: Vec<String> = self.schedules.iter().map(|s| s.to_string()).collect();
        let next = tandem_task::next_run(self.schedules, self.last(), self.now, &self.tz);
        let next = next.map_or_else(|| "on an event".to_string(), |t| self.human(t));
        let last = match &self.last {
            Ok(Some(t)) => self.human(*t),
            Ok(None) => "never run".to_string(),
            Err(_) => "unknown".to_string(),
        };
        Some(sanitize(&format!(
            "{}; next run: {next}; last run: {last}",
            forms.join(", ")
        )))
    }
}

impl When<'_> {
    /// The first next run over the task's schedules, as `human` says it ("today 02:00",
    /// "now"); `None` for a task with none timed.
    pub fn next_human(&self) -> Option<String> {
        tandem_task::next_run(self.schedules, self.last(), self.now, &self.tz)
            .map(|t| self.human(t))
    }
}
