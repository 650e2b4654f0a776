use std::path::Path;

use anyhow::Result;
use serde_json::json;
use tandem_task::Config;

use crate::args::TaskNameArgs;
use crate::output::sanitize;

pub fn run(config: &Path, a: TaskNameArgs) -> Result<u8> {
    let mut cfg = Config::load(config)?;
    let task = cfg.remove(&a.name)?;
    cfg.save()?;
    if a.json {
        outln!("{}", json!({"removed": task.name}));
    } else {
        outln!(
            "removed task {} from {}; its folders and their sync state are left as they are",
            task.name,
            sanitize(&cfg.path().display().to_string())
        );
    }
    Ok(crate::EXIT_OK)
}
