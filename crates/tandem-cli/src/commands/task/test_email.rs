//! `tandem task test-email NAME`: one test message, sent as a run's result would be.

use std::path::Path;

use anyhow::Result;
use serde_json::json;
use tandem_task::Config;

use crate::args::TaskNameArgs;
use crate::output::sanitize;

pub fn run(config: &Path, a: TaskNameArgs) -> Result<u8> {
    let cfg = Config::load(config)?;
    let task = cfg.task(&a.name)?;
    let to = task.notify.to.join(", ");
    match tandem_task::send_test(task) {
        Ok(()) if a.json => outln!("{}", json!({"sent": true, "to": task.notify.to})),
        Ok(()) => outln!("sent a test message to {}", sanitize(&to)),
        Err(e @ tandem_task::MailError::NoAddress { .. }) => return Err(e.into()),
        Err(e) => {
            if a.json {
                let error = e.to_string();
                outln!(
                    "{}",
                    json!({"sent": false, "to": task.notify.to, "error": error})
                );
            }
            errln!(
                "tandem: error: no test message sent: {}",
                sanitize(&e.to_string())
            );
            return Ok(crate::EXIT_ISSUES);
        }
    }
    Ok(crate::EXIT_OK)
}
