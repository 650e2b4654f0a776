//! From the parsed config file to typed tasks: every key known, every value checked,
//! every problem placed at its file, line and key.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use tandem_core::{Direction, Priority, UnknownWord};
use toml_edit::{Document, Item, Table};

use crate::config::line_col;
use crate::error::{Location, Problem, TaskError};
use crate::hooks::Hooks;
use crate::limits::{parse_brake, parse_keep, parse_size};
use crate::notify::{addresses, attach_smtp, read_smtp, Notify};
use crate::schedule::Schedule;
use crate::spec::{check_name, parse_duration_ns, Origin, TaskOptions, TaskSpec};

/// The keys of a `[task.NAME]` table.
pub const TASK_KEYS: &[&str] = &[
    "comment",
    "sources",
    "target",
    "target_subfolder",
    "ssh",
    "remote_tandem",
    "compress",
    "bwlimit",
    "direction",
    "mode",
    "conflict",
    "exclude",
    "include",
    "max_delete",
    "max_delete_count",
    "modify_window",
    "fsync",
    "update",
    "owner",
    "numeric_ids",
    "xattrs",
    "acls",
    "hard_links",
    "history_keep",
    "history_max",
    "history_versions",
    "delete_brake",
    "before",
    "after",
    "hook_timeout",
    "priority",
    "schedule",
    "notify_email",
    "notify_when",
    "continuous",
];

/// Where things are in the file being read.
pub(crate) struct Reader<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Reader<'_> {
    pub(crate) fn line(&self, span: Option<std::ops::Range<usize>>) -> Option<usize> {
        span.map(|s| line_col(self.text, s.start).0)
    }

    pub(crate) fn error(
        &self,
        line: Option<usize>,
        task: Option<&str>,
        key: &str,
        problem: Problem,
    ) -> TaskError {
        TaskError::Invalid {
            at: Box::new(Location {
                file: Some(self.path.to_path_buf()),
                line,
                task: task.map(str::to_string),
                key: Some(key.to_string()),
            }),
            problem: Box::new(problem),
        }
    }
}

pub(crate) fn read_tasks(
    path: &Path,
    text: &str,
    doc: &Document<&str>,
) -> Result<Vec<TaskSpec>, TaskError> {
    let r = Reader { path, text };
    let mut tasks = Vec::new();
    let mut smtp = None;
    for (key, item) in doc.iter() {
        let line = r.line(doc.key(key).and_then(|k| k.span()));
        if key == "smtp" {
            smtp = Some(read_smtp(&r, item, line)?);
            continue;
        }
        if key != "task" {
            let known = "task, smtp".to_string();
            return Err(r.error(line, None, key, Problem::UnknownKey { known }));
        }
        let Some(table) = item.as_table() else {
            let expected = "tables written [task.NAME]";
            return Err(r.error(line, None, key, Problem::WrongType { expected }));
        };
        for (name, item) in table.iter() {
            let line = r.line(table.key(name).and_then(|k| k.span()));
            check_name(name).map_err(|e| match e {
                TaskError::BadName { why, .. } => r.error(
                    line,
                    Some(name),
                    "the name",
                    Problem::Value(why.to_string()),
                ),
                e => e,
            })?;
            let Some(t) = item.as_table() else {
                let expected = "a table, written [task.NAME]";
                return Err(r.error(
                    line,
                    Some(name),
                    "the task",
                    Problem::WrongType { expected },
                ));
            };
            tasks.push(read_task(&r, name, t, line)?);
        }
    }
    attach_smtp(&mut tasks, smtp.as_ref())?;
    Ok(tasks)
}

fn read_task(
    r: &Reader,
    name: &str,
    t: &Table,
    header: Option<usize>,
) -> Result<TaskSpec, TaskError> {
    let mut origin = Origin {
        file: Some(r.path.to_path_buf()),
        ..Origin::default()
    };
    if let Some(h) = r.line(t.span()).or(header) {
        origin.lines.insert(String::new(), h);
    }
    let mut spec = TaskSpec {
        name: name.to_string(),
        comment: None,
        sources: Vec::new(),
        target: PathBuf::new(),
        ssh: None,
        remote_tandem: None,
        compress: Default::default(),
        bwlimit: None,
        target_subfolder: false,
        options: TaskOptions::default(),
        hooks: Hooks::default(),
        priority: Priority::default(),
        schedules: Vec::new(),
        notify: Notify::default(),
        continuous: false,
        origin,
    };
    for (key, item) in t.iter() {
        let line = r.line(t.key(key).and_then(|k| k.span())).or(header);
        if let Some(l) = line {
            spec.origin.lines.insert(key.to_string(), l);
        }
        read_value(&mut spec, key, item)
            .map_err(|problem| r.error(line, Some(name), key, problem))?;
    }
    for key in ["sources", "target"] {
        if !t.contains_key(key) {
            let line = spec.origin.lines.get("").copied();
            return Err(r.error(line, Some(name), key, Problem::Missing));
        }
    }
    if spec.options.update && spec.options.direction == Direction::Both {
        let line = spec.origin.lines.get("update").copied();
        let why = "works only one way: set direction = \"push\" or \"pull\"";
        return Err(r.error(line, Some(name), "update", Problem::Value(why.into())));
    }
    Ok(spec)
}

fn read_value(spec: &mut TaskSpec, key: &str, item: &Item) -> Result<(), Problem> {
    let o = &mut spec.options;
    match key {
        "comment" => spec.comment = Some(string(item)?.to_string()),
        "sources" => {
            spec.sources = strings(item)?
                .into_iter()
                .map(absolute)
                .collect::<Result<_, _>>()?;
            if spec.sources.is_empty() {
                return Err(Problem::Value("lists no folder".to_string()));
            }
        }
        "target" => {
            let t = string(item)?;
            spec.target = match tandem_remote::RemoteTarget::parse(t) {
                Some(_) => PathBuf::from(t),
                None => absolute(t.to_string())?,
            }
        }
        "ssh" => spec.ssh = Some(string(item)?.to_string()),
        "remote_tandem" => spec.remote_tandem = Some(string(item)?.to_string()),
        "compress" => {
            let w = string(item)?;
            spec.compress = tandem_remote::Compress::from_word(w).ok_or_else(|| {
                Problem::Value(format!("{w:?} is not one of \"auto\", \"on\", \"off\""))
            })?;
        }
        "bwlimit" => {
            let rate = string(item)?;
            tandem_remote::parse_rate(rate).map_err(Problem::Value)?;
            spec.bwlimit = Some(rate.to_string());
        }
        "target_subfolder" => spec.target_subfolder = boolean(item)?,
        "direction" => o.direction = word(item)?,
        "mode" => o.mode = word(item)?,
        "conflict" => o.conflict = word(item)?,
        "exclude" => o.exclude = strings(item)?,
        "include" => o.include = strings(item)?,
        "max_delete" => {
            let n = item.as_integer().ok_or(Problem::WrongType {
                expected: "a whole number of percent, 0 to 100",
            })?;
            o.max_delete = u32::try_from(n)
                .ok()
                .filter(|n| *n <= 100)
                .ok_or_else(|| Problem::Value(format!("{n} is not a percentage from 0 to 100")))?;
        }
        "modify_window" => {
            o.modify_window = parse_duration_ns(string(item)?).map_err(Problem::Value)?
        }
        "fsync" => o.fsync = boolean(item)?,
        "update" => o.update = boolean(item)?,
        "owner" => o.owner = boolean(item)?,
        "numeric_ids" => o.numeric_ids = boolean(item)?,
        "xattrs" => o.xattrs = boolean(item)?,
        "acls" => o.acls = boolean(item)?,
        "hard_links" => o.hard_links = boolean(item)?,
        "max_delete_count" => o.max_delete_count = Some(count(item)?),
        "history_keep" => o.retention.keep = parse_keep(string(item)?).map_err(Problem::Value)?,
        "history_max" => o.retention.max_bytes = size(item)?,
        "history_versions" => o.retention.versions = count(item)?,
        "delete_brake" => o.delete_brake = parse_brake(string(item)?).map_err(Problem::Value)?,
        "before" => spec.hooks.before = Some(command(item)?),
        "after" => spec.hooks.after = Some(command(item)?),
        "hook_timeout" => {
            spec.hooks.timeout = parse_duration_ns(string(item)?).map_err(Problem::Value)?;
            if spec.hooks.timeout <= 0 {
                return Err(Problem::Value("must be more than 0s".to_string()));
            }
        }
        "priority" => spec.priority = word(item)?,
        "schedule" => spec.schedules = schedules(item)?,
        "notify_email" => spec.notify.to = addresses(item)?,
        "notify_when" => spec.notify.when = word(item)?,
        "continuous" => spec.continuous = boolean(item)?,
        _ => {
            return Err(Problem::UnknownKey {
                known: TASK_KEYS.join(", "),
            })
        }
    }
    Ok(())
}

pub(crate) fn string(item: &Item) -> Result<&str, Problem> {
    item.as_str().ok_or(Problem::WrongType {
        expected: "a string in quotes",
    })
}

fn command(item: &Item) -> Result<String, Problem> {
    let c = string(item)?;
    if c.trim().is_empty() {
        return Err(Problem::Value(
            "is empty (remove the key for no command)".to_string(),
        ));
    }
    Ok(c.to_string())
}

/// A count: a whole number, 0 or more.
fn count<T: TryFrom<i64>>(item: &Item) -> Result<T, Problem> {
    let n = item.as_integer().ok_or(Problem::WrongType {
        expected: "a whole number",
    })?;
    T::try_from(n).map_err(|_| Problem::Value(format!("{n} is not a count (0 or more)")))
}

/// A size: `"5GiB"`, `"500MiB"`, or a number of bytes.
fn size(item: &Item) -> Result<u64, Problem> {
    match item.as_integer() {
        Some(n) => count(item).map_err(|_| Problem::Value(format!("{n} is not a size"))),
        None => parse_size(string(item)?).map_err(Problem::Value),
    }
}

fn boolean(item: &Item) -> Result<bool, Problem> {
    item.as_bool().ok_or(Problem::WrongType {
        expected: "true or false",
    })
}

pub(crate) fn strings(item: &Item) -> Result<Vec<String>, Problem> {
    let expected = "a list of strings, [\"...\", \"...\"]";
    let array = item.as_array().ok_or(Problem::WrongType { expected })?;
    array
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or(Problem::WrongType { expected })
        })
        .collect()
}

/// `schedule`: a list of forms (or one form), each parsed, the bad one quoted.
fn schedules(item: &Item) -> Result<Vec<Schedule>, Problem> {
    let forms = match item.as_str() {
        Some(one) => vec![one.to_string()],
        None => strings(item)?,
    };
    forms
        .iter()
        .map(|f| {
            f.parse()
                .map_err(|e| Problem::Value(format!("{f:?} does not parse: {e}")))
        })
        .collect()
}

pub(crate) fn word<T: FromStr<Err = UnknownWord>>(item: &Item) -> Result<T, Problem> {
    Ok(string(item)?.parse()?)
}

fn absolute(p: String) -> Result<PathBuf, Problem> {
    let p = PathBuf::from(p);
    if p.is_absolute() {
        Ok(p)
    } else {
        Err(Problem::NotAbsolute(p))
    }
}
