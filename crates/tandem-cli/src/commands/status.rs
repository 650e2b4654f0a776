use anyhow::Result;
use serde_json::json;
use tandem_state::Store;

use crate::args::StatusArgs;
use crate::output::sanitize;
use crate::task::Task;

pub fn run(a: StatusArgs) -> Result<u8> {
    let task = Task::from_args(&a.pair)?;
    let store = Store::open_existing(&task.state_dir, &task.pair)?;
    let (last, entries, open) = match &store {
        Some(s) => (s.last_run()?, s.baseline_len()?, s.conflicts(false)?.len()),
        None => (None, 0, 0),
    };
    // Live: is a tandem mount serving this source, and how far behind is the target?
    let mount = crate::commands::mounts::lookup(&task.src)?
        .filter(|m| crate::commands::mounts::alive(m.pid));
    let backlog = match &store {
        Some(s) => s.journal_head()? - s.cursor(&task.tgt.to_string_lossy())?,
        None => 0,
    };
    if a.json {
        println!(
            "{}",
            json!({
                "source": task.src.to_string_lossy(), "target": task.tgt.to_string_lossy(),
                "state_dir": task.state_dir.to_string_lossy(), "synced_entries": entries,
                "open_conflicts": open,
                "mounted": mount.as_ref().map(|m| json!({"pid": m.pid, "mountpoint": m.mountpoint.to_string_lossy()})),
                "journal_backlog": backlog,
                "last_run": last.as_ref().map(|r| json!({
                    "started_at": r.started_at, "finished_at": r.finished_at,
                    "exit_code": r.exit_code, "summary": r.summary,
                })),
            })
        );
    } else {
        println!("source:    {}", sanitize(&task.src.to_string_lossy()));
        println!("target:    {}", sanitize(&task.tgt.to_string_lossy()));
        println!("state:     {}", sanitize(&task.state_dir.to_string_lossy()));
        match &last {
            None => println!("last sync: never"),
            Some(r) => {
                let how = match (r.finished_at, r.exit_code) {
                    (Some(_), Some(code)) => format!("finished with exit code {code}"),
                    _ => "did not finish (interrupted?)".to_string(),
                };
                println!("last sync: started at {} (unix time), {how}", r.started_at);
                println!("           {}", sanitize(&r.summary));
            }
        }
        match &mount {
            Some(m) => println!(
                "mounted:   yes, pid {} at {}; {backlog} journal records not yet replicated",
                m.pid,
                sanitize(&m.mountpoint.to_string_lossy())
            ),
            None => println!("mounted:   no"),
        }
        println!("synced:    {entries} entries");
        println!(
            "conflicts: {open} open{}",
            if open > 0 {
                " (see `tandem conflicts`)"
            } else {
                ""
            }
        );
    }
    Ok(if open > 0 {
        crate::EXIT_ISSUES
    } else {
        crate::EXIT_OK
    })
}
