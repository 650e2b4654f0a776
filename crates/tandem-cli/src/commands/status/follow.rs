//! `tandem status NAME --follow`: a task's run going on now, shown from another process
//! as it goes (its progress snapshot, and with `-v` each change from its events file),
//! until it ends. No run going on: says so and exits.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};
use tandem_task::{events_path, task_state_dir, History, HistoryRow, Progress, TaskSpec};

use crate::output::history::{outcome, progress_json, progress_line};
use crate::output::sanitize;
use crate::output::time::Clock;

/// How often the run's files are looked at.
const POLL: Duration = Duration::from_millis(100);

pub fn run(task: &TaskSpec, verbose: bool, as_json: bool) -> Result<u8> {
    let history = History::open_existing(&tandem_state::state_home())?;
    let running = match &history {
        Some(h) => h.running(&task.name)?,
        None => None,
    };
    let (Some(h), Some(row)) = (history, running) else {
        let last = match History::open_existing(&tandem_state::state_home())? {
            Some(h) => h.last(&task.name)?,
            None => None,
        };
        not_running(task, last.as_ref(), as_json);
        return Ok(crate::EXIT_OK);
    };
    let mut f = Follower {
        dir: task_state_dir(&task.name),
        run: row.id,
        shown: None,
        events: verbose.then(|| Tail::new(events_path(&task_state_dir(&task.name), row.id))),
        as_json,
    };
    f.say(&row, "started");
    loop {
        let now = h.row(row.id)?;
        // Read after the row: what the run wrote before it ended is all there.
        f.show();
        match now {
            Some(r) if r.is_running() => std::thread::sleep(POLL),
            Some(r) => {
                f.say(&r, "ended");
                return Ok(exit_code(&r.result));
            }
            None => return Ok(crate::EXIT_ERROR),
        }
    }
}

fn not_running(task: &TaskSpec, last: Option<&HistoryRow>, as_json: bool) {
    let clock = Clock::system();
    if as_json {
        let last = last.map(|r| r.to_json(clock.now, &clock.tz));
        outln!(
            "{}",
            json!({"event": "idle", "task": task.name, "last_run": last})
        );
        return;
    }
    let last = last.map_or("never run".to_string(), |r| outcome(r, &clock));
    outln!("task {} is not running; last run: {last}", task.name);
}

/// The exit code of the run followed, as `tandem run` gave it.
fn exit_code(result: &str) -> u8 {
    match result {
        "ok" => crate::EXIT_OK,
        "conflicts" | "problems" => crate::EXIT_ISSUES,
        _ => crate::EXIT_ERROR,
    }
}

struct Follower {
    dir: PathBuf,
    run: i64,
    shown: Option<Progress>,
    events: Option<Tail>,
    as_json: bool,
}

impl Follower {
    fn say(&self, r: &HistoryRow, event: &str) {
        let clock = Clock::system();
        if self.as_json {
            let mut v = r.to_json(clock.now, &clock.tz);
            v["event"] = json!(event);
            outln!("{v}");
        } else if event == "started" {
            let since = format!(
                "started {} ({}), pid {}",
                clock.ago(r.started),
                r.trigger,
                r.pid
            );
            outln!("task {}: run {}", r.task, sanitize(&since));
        } else {
            outln!("task {}: run ended: {}", r.task, outcome(r, &clock));
        }
    }

    /// The changes made since the last look, then the progress if it moved.
    fn show(&mut self) {
        if let Some(tail) = &mut self.events {
            for line in tail.new_lines() {
                self.change(&line);
            }
        }
        let Some(p) = Progress::read(&self.dir).filter(|p| p.run_id == self.run) else {
            return;
        };
        if self.shown.as_ref() == Some(&p) {
            return;
        }
        if self.as_json {
            let mut v = progress_json(&p, &Clock::system());
            v["event"] = json!("progress");
            outln!("{v}");
        } else {
            outln!("{}", sanitize(&progress_line(&p)));
        }
        self.shown = Some(p);
    }

    fn change(&self, line: &str) {
        if self.as_json {
            outln!("{line}");
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            return;
        };
        let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
        let text = match s("event").as_str() {
            "done" => format!("{:<9} {:<7} {}", s("action"), s("side"), s("path")),
            "conflict" => format!(
                "conflict  {}: {}; {}",
                s("path"),
                s("kind"),
                s("resolution")
            ),
            "skipped" => format!("skip      {}: {}", s("path"), s("reason")),
            "failed" => format!("failed    {}: {}", s("path"), s("error")),
            _ => return,
        };
        outln!("{}", sanitize(&text));
    }
}

/// The whole lines appended to a file since the last look (it may not exist yet).
struct Tail {
    path: PathBuf,
    file: Option<File>,
    pos: u64,
    partial: Vec<u8>,
}

impl Tail {
    fn new(path: PathBuf) -> Tail {
        Tail {
            path,
            file: None,
            pos: 0,
            partial: Vec::new(),
        }
    }

    fn new_lines(&mut self) -> Vec<String> {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let Some(f) = &mut self.file else {
            return Vec::new();
        };
        let mut buf = Vec::new();
        let read = f
            .seek(SeekFrom::Start(self.pos))
            .and_then(|_| f.read_to_end(&mut buf));
        if read.is_err() {
            return Vec::new();
        }
        self.pos += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        let rest = self.partial.split_off(end + 1);
        let whole = std::mem::replace(&mut self.partial, rest);
        String::from_utf8_lossy(&whole)
            .lines()
            .map(String::from)
            .collect()
    }
}
