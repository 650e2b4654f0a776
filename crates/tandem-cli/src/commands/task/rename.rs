use std::path::Path;

use anyhow::Result;
use tandem_task::{Config, History};

use crate::args::TaskRenameArgs;
use crate::output::sanitize;

pub fn run(config: &Path, a: TaskRenameArgs) -> Result<u8> {
    let mut cfg = Config::load(config)?;
    let old_base = cfg.task(&a.old)?.target_base();
    let task = cfg.rename(&a.old, &a.new)?.clone();
    cfg.save()?;
    // Its runs go with it: `tandem log NEW` shows them.
    if let Some(mut h) = History::open_existing(&tandem_state::state_home())? {
        h.rename_task(&a.old, &task.name)?;
    }
    if a.json {
        outln!("{}", super::task_json(&task));
        return Ok(crate::EXIT_OK);
    }
    outln!("renamed task {} to {}", a.old, task.name);
    if task.target_subfolder {
        // The copies' folder is named after the task: the next run syncs into a new one.
        outln!(
            "note: the task's copies now go to {}; {} is left as it is",
            sanitize(&task.target_base().display().to_string()),
            sanitize(&old_base.display().to_string())
        );
    }
    Ok(crate::EXIT_OK)
}
