use std::path::Path;

use anyhow::Result;
use tandem_task::Config;

use crate::args::TaskNameArgs;

pub fn run(config: &Path, a: TaskNameArgs) -> Result<u8> {
    let cfg = Config::load(config)?;
    let task = cfg.task(&a.name)?;
    if a.json {
        outln!("{}", super::task_json(task));
    } else {
        super::print_task(task);
    }
    Ok(crate::EXIT_OK)
}
