use std::path::Path;

use anyhow::Result;
use serde_json::json;
use tandem_task::Config;

use crate::args::JsonArg;
use crate::output::sanitize;

pub fn run(config: &Path, a: JsonArg) -> Result<u8> {
    let cfg = Config::load(config)?;
    if a.json {
        let tasks: Vec<_> = cfg.tasks().iter().map(super::task_json).collect();
        let path = cfg.path().to_string_lossy();
        outln!("{}", json!({"config": path, "tasks": tasks}));
        return Ok(crate::EXIT_OK);
    }
    if cfg.tasks().is_empty() {
        outln!(
            "no tasks in {} (add one with `tandem task add`)",
            sanitize(&cfg.path().display().to_string())
        );
    }
    for t in cfg.tasks() {
        let sources: Vec<String> = t.sources.iter().map(|s| s.display().to_string()).collect();
        outln!(
            "{}  {} -> {}{}",
            t.name,
            sanitize(&sources.join(", ")),
            sanitize(&t.target_base().display().to_string()),
            t.comment
                .as_ref()
                .map(|c| format!("  ({})", sanitize(c)))
                .unwrap_or_default()
        );
        if let Some(line) = super::when::When::of(t).summary() {
            outln!("    schedule: {line}");
        }
    }
    Ok(crate::EXIT_OK)
}
