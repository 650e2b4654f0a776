use anyhow::Result;
use serde_json::json;
use tandem_state::Store;

use crate::args::ConflictsArgs;
use crate::output::sanitize;
use crate::task::Task;

pub fn run(a: ConflictsArgs) -> Result<u8> {
    let (tasks, _) = crate::task::pairs_of(&a.pair)?;
    let several = tasks.len() > 1;
    let mut code = crate::EXIT_OK;
    for task in &tasks {
        if several && !a.json {
            outln!("target {}:", sanitize(&task.tgt.to_string_lossy()));
        }
        code = code.max(list(&a, task)?);
    }
    Ok(code)
}

fn list(a: &ConflictsArgs, task: &Task) -> Result<u8> {
    let rows = match Store::open_existing(&task.state_dir, &task.pair)? {
        Some(store) => store.conflicts(a.all)?,
        None => Vec::new(),
    };
    if a.json {
        let list: Vec<_> = rows
            .iter()
            .map(|c| {
                json!({
                    "id": c.id, "path": c.path.to_string(), "kind": c.kind, "detected_at": c.detected_at,
                    "source": c.src_desc, "target": c.tgt_desc, "resolution": c.resolution,
                    "copy": c.copy.as_ref().map(|p| p.to_string()), "loser": c.loser.map(|s| s.name()),
                    "resolved_at": c.resolved_at, "resolved_how": c.resolved_how,
                })
            })
            .collect();
        outln!(
            "{}",
            json!({ "target": task.tgt.to_string_lossy(), "conflicts": list })
        );
    } else if rows.is_empty() {
        outln!("no conflicts");
    } else {
        for c in &rows {
            let copy = c
                .copy
                .as_ref()
                .map(|p| {
                    format!(
                        "; the {} version is kept as {p}",
                        c.loser.map_or("other", |s| s.name())
                    )
                })
                .unwrap_or_default();
            let state = match &c.resolved_how {
                Some(how) => format!(" [resolved: {}]", sanitize(how)),
                None => String::new(),
            };
            outln!("{}: {} ({}){copy}{state}", c.path, c.kind, c.resolution);
            outln!("    source: {}", sanitize(&c.src_desc));
            outln!("    target: {}", sanitize(&c.tgt_desc));
        }
    }
    Ok(if rows.iter().any(|c| c.resolved_at.is_none()) {
        crate::EXIT_ISSUES
    } else {
        crate::EXIT_OK
    })
}
