//! `tandem log [NAME]`: the run history, a line per run, newest first.

use std::path::Path;

use anyhow::Result;
use serde_json::json;
use tandem_task::{Config, History};

use crate::args::LogArgs;
use crate::output::history::log_line;
use crate::output::time::Clock;

pub fn run(config: &Path, a: LogArgs) -> Result<u8> {
    let history = History::open_existing(&tandem_state::state_home())?;
    let rows = match &history {
        Some(h) => h.runs(a.name.as_deref(), a.limit.unwrap_or(usize::MAX >> 1))?,
        None => Vec::new(),
    };
    if let (Some(name), true) = (&a.name, rows.is_empty()) {
        // No run of it: say so if it is a task, refuse a name that is none.
        Config::load(config)?.task(name)?;
    }
    let clock = Clock::system();
    if a.json {
        let runs: Vec<_> = rows
            .iter()
            .map(|r| r.to_json(clock.now, &clock.tz))
            .collect();
        outln!("{}", json!({ "runs": runs }));
        return Ok(crate::EXIT_OK);
    }
    if rows.is_empty() {
        outln!("no runs recorded yet (runs are kept 90 days)");
    }
    for r in &rows {
        outln!("{}", log_line(r, &clock));
    }
    Ok(crate::EXIT_OK)
}
