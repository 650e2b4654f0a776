use std::path::Path;

use anyhow::Result;
use tandem_task::Config;

use crate::args::TaskAddArgs;

pub fn run(config: &Path, a: TaskAddArgs) -> Result<u8> {
    let changes = super::changes(&a.settings)?;
    let mut cfg = Config::load(config)?;
    let task = cfg.edit(&a.name, &changes)?.clone();
    cfg.save()?;
    if a.json {
        println!("{}", super::task_json(&task));
    } else {
        println!("changed task {}", task.name);
        super::print_task(&task);
    }
    Ok(crate::EXIT_OK)
}
