use std::path::Path;

use anyhow::Result;
use tandem_task::Config;

use crate::args::TaskAddArgs;
use crate::output::sanitize;

pub fn run(config: &Path, a: TaskAddArgs) -> Result<u8> {
    let changes = super::changes(&a.settings)?;
    let mut cfg = Config::load(config)?;
    let (task, moves) = cfg.edit(&a.name, &changes)?;
    let task = task.clone();
    for m in &moves {
        m.apply()?;
    }
    cfg.save()?;
    if a.json {
        outln!("{}", super::task_json(&task));
        return Ok(crate::EXIT_OK);
    }
    outln!("changed task {}", task.name);
    for m in &moves {
        outln!(
            "re-pointed {} -> {} (was {} -> {}); its sync history is kept",
            sanitize(&m.to.source.display().to_string()),
            sanitize(&m.to.target.display().to_string()),
            sanitize(&m.from.source.display().to_string()),
            sanitize(&m.from.target.display().to_string())
        );
    }
    super::print_task(&task);
    Ok(crate::EXIT_OK)
}
