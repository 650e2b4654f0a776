use std::path::Path;

use anyhow::{bail, Result};
use tandem_task::Config;

use crate::args::TaskAddArgs;
use crate::output::sanitize;

pub fn run(config: &Path, a: TaskAddArgs) -> Result<u8> {
    if a.settings.sources.is_empty() || a.settings.target.is_none() {
        bail!("a task needs at least one --source DIR and a --target DIR");
    }
    let changes = super::changes(&a.settings)?;
    let mut cfg = Config::load(config)?;
    let task = cfg.add(&a.name, &changes)?.clone();
    cfg.save()?;
    if a.json {
        outln!("{}", super::task_json(&task));
    } else {
        outln!(
            "added task {} to {}",
            task.name,
            sanitize(&cfg.path().display().to_string())
        );
        super::print_task(&task);
    }
    Ok(crate::EXIT_OK)
}
