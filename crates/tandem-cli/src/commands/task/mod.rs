//! `tandem task ...`: one file per subcommand; the config is `tandem_task::Config`.

mod add;
mod edit;
mod list;
mod remove;
mod rename;
mod show;
mod test_email;
pub mod when;

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{json, Value};
use tandem_task::{
    format_brake, format_duration_ns, format_keep, format_size, TaskChanges, TaskSpec,
};

use crate::args::{TaskCommand, TaskSettings};
use crate::output::sanitize;

pub fn run(config: &Path, c: TaskCommand) -> Result<u8> {
    match c {
        TaskCommand::Add(a) => add::run(config, a),
        TaskCommand::List(a) => list::run(config, a),
        TaskCommand::Show(a) => show::run(config, a),
        TaskCommand::Edit(a) => edit::run(config, a),
        TaskCommand::Rename(a) => rename::run(config, a),
        TaskCommand::Remove(a) => remove::run(config, a),
        TaskCommand::TestEmail(a) => test_email::run(config, a),
    }
}

/// The settings given on the command line, folders made absolute (canonical where they
/// exist, as `tandem sync` names a pair).
fn changes(s: &TaskSettings) -> Result<TaskChanges> {
    let folder = |p: &PathBuf| -> Result<PathBuf> {
        if let Some(remote) = crate::task::remote_target(p) {
            return Ok(PathBuf::from(remote.to_string()));
        }
        let abs = crate::task::absolute(p)?;
        Ok(std::fs::canonicalize(&abs).unwrap_or(abs))
    };
    let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    Ok(TaskChanges {
        comment: s.comment.clone(),
        sources: if s.sources.is_empty() {
            None
        } else {
            Some(s.sources.iter().map(folder).collect::<Result<_>>()?)
        },
        target: s.target.as_ref().map(folder).transpose()?,
        target_subfolder: s.target_subfolder,
        ssh: s.ssh.clone(),
        remote_tandem: s.remote_tandem.clone(),
        compress: s.compress.map(Into::into),
        bwlimit: s.bwlimit.clone(),
        continuous: s.continuous,
        direction: s.direction,
        mode: s.mode,
        conflict: s.conflict,
        exclude: list(&s.exclude),
        include: list(&s.include),
        max_delete: s.max_delete,
        modify_window: s.modify_window,
        fsync: s.fsync,
        update: s.update,
        owner: s.owner,
        numeric_ids: s.numeric_ids,
        xattrs: s.xattrs,
        acls: s.acls,
        hard_links: s.hard_links,
        max_delete_count: s.max_delete_count,
        history_keep: s.history_keep,
        history_max: s.history_max,
        history_versions: s.history_versions,
        delete_brake: s.delete_brake.map(|b| b.0),
        before: s.before.clone(),
        after: s.after.clone(),
        hook_timeout: s.hook_timeout,
        priority: s.priority,
        schedules: if s.no_schedule {
            Some(Vec::new())
        } else {
            (!s.schedules.is_empty()).then(|| s.schedules.clone())
        },
        notify_email: if s.no_notify_email {
            Some(Vec::new())
        } else {
            list(&s.notify_email)
        },
        notify_when: s.notify_when,
    })
}

fn lossy(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A task as `--json` prints it.
pub fn task_json(t: &TaskSpec) -> Value {
    let o = &t.options;
    let when = when::When::of(t);
    json!({
        "name": t.name,
        "comment": t.comment,
        "sources": t.sources.iter().map(|p| lossy(p)).collect::<Vec<_>>(),
        "target": lossy(&t.target),
        "target_subfolder": t.target_subfolder,
        "ssh": t.ssh,
        "remote_tandem": t.remote_tandem,
        "continuous": t.continuous,
        "direction": o.direction.to_string(),
        "mode": o.mode.to_string(),
        "conflict": o.conflict.to_string(),
        "exclude": o.exclude,
        "include": o.include,
        "max_delete": o.max_delete,
        "modify_window": format_duration_ns(o.modify_window),
        "fsync": o.fsync,
        "update": o.update,
        "owner": o.owner,
        "numeric_ids": o.numeric_ids,
        "xattrs": o.xattrs,
        "acls": o.acls,
        "hard_links": o.hard_links,
        "max_delete_count": o.max_delete_count,
        "history_keep": format_keep(o.retention.keep),
        "history_max": format_size(o.retention.max_bytes),
        "history_versions": o.retention.versions,
        "delete_brake": format_brake(o.delete_brake),
        "before": t.hooks.before,
        "after": t.hooks.after,
        "hook_timeout": format_duration_ns(t.hooks.timeout),
        "priority": t.priority.to_string(),
        "schedule": when.schedules_json(),
        "last_run": when.last_run_json(),
        "next_run": when.next_run_json(),
        "notify_email": t.notify.to,
        "notify_when": t.notify.when.to_string(),
        "pairs": t.pairs().iter().map(|p| json!({
            "source": lossy(&p.source),
            "target": lossy(&p.target),
            "state_dir": lossy(&TaskSpec::state_dir(p)),
        })).collect::<Vec<_>>(),
    })
}

/// A task as `task show` prints it.
pub fn print_task(t: &TaskSpec) {
    let o = &t.options;
    let shown = |p: &Path| sanitize(&p.display().to_string());
    outln!("task {}", t.name);
    if let Some(c) = &t.comment {
        outln!("  comment:          {}", sanitize(c));
    }
    for p in t.pairs() {
        outln!("  source:           {}", shown(&p.source));
        outln!("    synced with:    {}", shown(&p.target));
    }
    outln!("  target:           {}", shown(&t.target));
    outln!("  target_subfolder: {}", t.target_subfolder);
    if let Some(ssh) = &t.ssh {
        outln!("  ssh:              {}", sanitize(ssh));
    }
    if let Some(remote) = &t.remote_tandem {
        outln!("  remote_tandem:    {}", sanitize(remote));
    }
    if t.remote_target().is_some() {
        outln!("  compress:         {}", t.compress.word());
        let rate = t.bwlimit.as_deref().unwrap_or("none");
        outln!("  bwlimit:          {}", sanitize(rate));
    }
    outln!("  direction:        {}", o.direction);
    outln!("  mode:             {}", o.mode);
    outln!("  conflict:         {}", o.conflict);
    if !o.exclude.is_empty() {
        outln!("  exclude:          {}", sanitize(&o.exclude.join(" ")));
    }
    if !o.include.is_empty() {
        outln!("  include:          {}", sanitize(&o.include.join(" ")));
    }
    outln!("  max_delete:       {}%", o.max_delete);
    if let Some(n) = o.max_delete_count {
        outln!("  max_delete_count: {n}");
    }
    outln!(
        "  modify_window:    {}",
        format_duration_ns(o.modify_window)
    );
    outln!("  fsync:            {}", o.fsync);
    outln!("  update:           {}", o.update);
    outln!("  owner:            {}", o.owner);
    outln!("  numeric_ids:      {}", o.numeric_ids);
    outln!("  xattrs:           {}", o.xattrs);
    outln!("  acls:             {}", o.acls);
    outln!("  hard_links:       {}", o.hard_links);
    outln!("  history_keep:     {}", format_keep(o.retention.keep));
    outln!("  history_max:      {}", format_size(o.retention.max_bytes));
    outln!("  history_versions: {}", o.retention.versions);
    outln!("  delete_brake:     {}", format_brake(o.delete_brake));
    if let Some(c) = &t.hooks.before {
        outln!("  before:           {}", sanitize(c));
    }
    if let Some(c) = &t.hooks.after {
        outln!("  after:            {}", sanitize(c));
    }
    if t.hooks.before.is_some() || t.hooks.after.is_some() {
        outln!(
            "  hook_timeout:     {}",
            format_duration_ns(t.hooks.timeout)
        );
    }
    outln!("  priority:         {}", t.priority);
    if !t.notify.to.is_empty() {
        outln!("  notify_email:     {}", sanitize(&t.notify.to.join(", ")));
        outln!("  notify_when:      {}", t.notify.when);
    }
    if t.continuous {
        outln!("  continuous:       true (the daemon keeps it mounted)");
    }
    when::When::of(t).print();
}
