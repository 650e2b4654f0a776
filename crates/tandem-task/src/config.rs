//! The config file, `$XDG_CONFIG_HOME/tandem/config.toml`: read into typed tasks, and
//! changed in place through `toml_edit`, so that a user's comments, blank lines and order
//! survive `tandem task add/edit/rename/remove`.
//!
//! Every change is made on a copy of the document, read back as the file would be, and
//! checked (the changed task's folders included) before it replaces the config: a refused
//! change leaves both the config and the file as they were.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tandem_engine::BrakeLimit;
use toml_edit::{Array, Document, DocumentMut, Item, Table, Value};

use crate::error::{Location, Problem, TaskError};
use crate::limits::{format_brake, format_keep, format_size};
use crate::marker::{plan_repoints, Repoint};
use crate::read::read_tasks;
use crate::schedule::Schedule;
use crate::spec::{check_name, format_duration_ns, TaskSpec};
use tandem_core::{Direction, Flavor, NotifyWhen, Policy, Priority};

/// The config file's default place: `$XDG_CONFIG_HOME/tandem/config.toml`, else
/// `~/.config/tandem/config.toml`; `%APPDATA%\tandem\config.toml` on Windows
/// (`tandem_state::config_home`).
pub fn default_config_path() -> PathBuf {
    tandem_state::config_home().join("config.toml")
}

/// What `task add` sets, or `task edit` changes (`None`: left as it is).
#[derive(Clone, Debug, Default)]
pub struct TaskChanges {
    pub comment: Option<String>,
    pub sources: Option<Vec<PathBuf>>,
    pub target: Option<PathBuf>,
    pub target_subfolder: Option<bool>,
    /// A remote target's ssh command (`Some("")`: the default again).
    pub ssh: Option<String>,
    /// The tandem run on a remote target's machine (`Some("")`: the default again).
    pub remote_tandem: Option<String>,
    /// Whether a remote target's file data is compressed.
    pub compress: Option<tandem_remote::Compress>,
    /// A remote target's rate cap, as `--bwlimit` reads it (`Some("")`, `Some("0")`: none).
    pub bwlimit: Option<String>,
    pub direction: Option<Direction>,
    pub mode: Option<Flavor>,
    pub conflict: Option<Policy>,
    pub exclude: Option<Vec<String>>,
    pub include: Option<Vec<String>>,
    pub max_delete: Option<u32>,
    pub modify_window: Option<i64>,
    pub fsync: Option<bool>,
    pub update: Option<bool>,
    pub owner: Option<bool>,
    pub numeric_ids: Option<bool>,
    pub xattrs: Option<bool>,
    pub acls: Option<bool>,
    pub hard_links: Option<bool>,
    pub max_delete_count: Option<u64>,
    pub history_keep: Option<Duration>,
    /// Bytes.
    pub history_max: Option<u64>,
    pub history_versions: Option<usize>,
    /// `Some(None)`: the brake off.
    pub delete_brake: Option<Option<BrakeLimit>>,
    /// A command to run before the sync (`Some("")`: none any more).
    pub before: Option<String>,
    /// A command to run after the sync (`Some("")`: none any more).
    pub after: Option<String>,
    /// How long each hook may run (nanoseconds).
    pub hook_timeout: Option<i64>,
    pub priority: Option<Priority>,
    /// An empty list removes the key: the task then runs only by hand.
    pub schedules: Option<Vec<Schedule>>,
    /// Mail addresses told of runs; an empty list removes the key: no mail.
    pub notify_email: Option<Vec<String>>,
    pub notify_when: Option<NotifyWhen>,
    pub continuous: Option<bool>,
}

/// The config file as read, with its tasks.
#[derive(Debug)]
pub struct Config {
    path: PathBuf,
    doc: DocumentMut,
    tasks: Vec<TaskSpec>,
}

impl Config {
    /// Reads and checks the config file; a missing file is a config without tasks.
    pub fn load(path: &Path) -> Result<Config, TaskError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(TaskError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Config::from_text(path, &text)
    }

    /// Checks `text` as the content of the config file `path` (the daemon keeps the text
    /// it last read well, and hands it to its runs).
    pub fn from_text(path: &Path, text: &str) -> Result<Config, TaskError> {
        let (doc, tasks) = parse(path, text)?;
        Ok(Config {
            path: path.to_path_buf(),
            doc,
            tasks,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn tasks(&self) -> &[TaskSpec] {
        &self.tasks
    }

    pub fn task(&self, name: &str) -> Result<&TaskSpec, TaskError> {
        self.tasks
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| TaskError::NoSuchTask {
                name: name.to_string(),
                path: self.path.clone(),
                known: self.tasks.iter().map(|t| t.name.clone()).collect(),
            })
    }

    /// Adds a task (sources and target required), checked with its folders.
    pub fn add(&mut self, name: &str, changes: &TaskChanges) -> Result<&TaskSpec, TaskError> {
        check_name(name)?;
        if self.task(name).is_ok() {
            return Err(TaskError::Exists {
                name: name.to_string(),
                path: self.path.clone(),
            });
        }
        let mut doc = self.doc.clone();
        let table = tasks_table(&mut doc)
            .entry(name)
            .or_insert(Item::Table(Table::new()));
        apply(name, table.as_table_mut(), changes)?;
        self.replace(doc, Some(name))?;
        self.task(name)
    }

    /// Changes the given settings of a task, checked with its folders. A source or target
    /// given a new place is matched with its old one by the markers the folders carry:
    /// the pairs to re-point (their state to move, `Repoint::apply`) are returned.
    pub fn edit(
        &mut self,
        name: &str,
        changes: &TaskChanges,
    ) -> Result<(&TaskSpec, Vec<Repoint>), TaskError> {
        let old = self.task(name)?.clone();
        let mut doc = self.doc.clone();
        let table = tasks_table(&mut doc).get_mut(name);
        apply(name, table.and_then(Item::as_table_mut), changes)?;
        let (was_doc, was_tasks) = (self.doc.clone(), self.tasks.clone());
        self.replace(doc, Some(name))?;
        match plan_repoints(&old, self.task(name)?) {
            Ok(moves) => Ok((self.task(name)?, moves)),
            Err(e) => {
                (self.doc, self.tasks) = (was_doc, was_tasks);
                Err(e)
            }
        }
    }

    /// Renames a task; its table keeps its place and its comments.
    pub fn rename(&mut self, old: &str, new: &str) -> Result<&TaskSpec, TaskError> {
        self.task(old)?;
        check_name(new)?;
        if self.task(new).is_ok() {
            return Err(TaskError::Exists {
                name: new.to_string(),
                path: self.path.clone(),
            });
        }
        let mut doc = self.doc.clone();
        let tasks = tasks_table(&mut doc);
        let item = tasks.remove(old).unwrap_or(Item::None);
        tasks.insert(new, item);
        self.replace(doc, None)?;
        self.task(new)
    }

    /// Removes a task from the config (its folders and pairs' state are left alone).
    pub fn remove(&mut self, name: &str) -> Result<TaskSpec, TaskError> {
        let task = self.task(name)?.clone();
        let mut doc = self.doc.clone();
        let removed = tasks_table(&mut doc).remove(name);
        keep_file_comments(&mut doc, removed.as_ref().and_then(Item::as_table));
        self.replace(doc, None)?;
        Ok(task)
    }

    /// Writes the config file: a new file beside it, then renamed over it (through a
    /// symlink to the file it points at).
    pub fn save(&self) -> Result<(), TaskError> {
        let real = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TaskError::Io { path, source }
        };
        if let Some(dir) = real.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let tmp = real.with_extension("toml.tmp");
        let write = |tmp: &Path| -> std::io::Result<()> {
            let mut f = std::fs::File::create(tmp)?;
            f.write_all(self.doc.to_string().as_bytes())?;
            f.sync_all()
        };
        write(&tmp).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &real).map_err(io(&real))
    }

    /// Reads `doc` back as the file would hold it; with `changed`, that task's folders are
    /// checked too. Only then does it become the config.
    fn replace(&mut self, doc: DocumentMut, changed: Option<&str>) -> Result<(), TaskError> {
        let (doc, tasks) = parse(&self.path, &doc.to_string())?;
        if let Some(t) = changed.and_then(|n| tasks.iter().find(|t| t.name == n)) {
            // Messages name the task and key: the lines are those of a file not written.
            let mut t = t.clone();
            t.origin = Default::default();
            t.check_folders()?;
            t.check_hooks()?;
        }
        self.doc = doc;
        self.tasks = tasks;
        Ok(())
    }
}

fn parse(path: &Path, text: &str) -> Result<(DocumentMut, Vec<TaskSpec>), TaskError> {
    let doc = Document::parse(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        let (line, column) = line_col(text, at);
        TaskError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })?;
    let tasks = read_tasks(path, text, &doc)?;
    Ok((doc.into_mut(), tasks))
}

/// 1-based line and column (in characters) of byte `at` of `text`.
pub(crate) fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The comments above a removed task's header that are apart from it (a blank line
/// between) are about the file, not the task: they move to the next task, or the end.
fn keep_file_comments(doc: &mut DocumentMut, removed: Option<&Table>) {
    let prefix = removed
        .and_then(|t| t.decor().prefix())
        .and_then(|p| p.as_str())
        .unwrap_or("");
    let Some(cut) = prefix.rfind("\n\n") else {
        return;
    };
    let kept = &prefix[..cut + 1];
    let pos = removed.and_then(Table::position);
    let next = tasks_table(doc)
        .iter_mut()
        .filter_map(|(_, item)| item.as_table_mut())
        .filter(|t| t.position() > pos)
        .min_by_key(|t| t.position());
    match next {
        Some(t) => {
            let old = t.decor().prefix().and_then(|p| p.as_str()).unwrap_or("");
            let joined = format!("{kept}{old}");
            t.decor_mut().set_prefix(joined);
        }
        None => {
            let old = doc.trailing().as_str().unwrap_or("").to_string();
            doc.set_trailing(format!("{kept}{old}"));
        }
    }
}

/// The `[task]` table, made (implicit: only `[task.NAME]` headers show) when missing.
fn tasks_table(doc: &mut DocumentMut) -> &mut Table {
    let item = doc.entry("task").or_insert_with(|| {
        let mut t = Table::new();
        t.set_implicit(true);
        Item::Table(t)
    });
    if !item.is_table() {
        let mut t = Table::new();
        t.set_implicit(true);
        *item = Item::Table(t);
    }
    item.as_table_mut().expect("made a table just above")
}

fn apply(name: &str, table: Option<&mut Table>, c: &TaskChanges) -> Result<(), TaskError> {
    let Some(t) = table else {
        return Ok(());
    };
    if let Some(v) = &c.comment {
        set(t, "comment", v.as_str());
    }
    if let Some(v) = &c.sources {
        let paths = v
            .iter()
            .map(|p| text(name, "sources", p))
            .collect::<Result<Vec<_>, _>>()?;
        set(t, "sources", Array::from_iter(paths));
    }
    if let Some(v) = &c.target {
        set(t, "target", text(name, "target", v)?);
    }
    if let Some(v) = c.target_subfolder {
        set(t, "target_subfolder", v);
    }
    if let Some(v) = c.compress {
        set(t, "compress", v.word());
    }
    let bwlimit = c.bwlimit.as_deref().map(|r| {
        let none = matches!(tandem_remote::parse_rate(r), Ok(None));
        if none {
            ""
        } else {
            r
        }
    });
    let strings = [
        ("ssh", c.ssh.as_deref()),
        ("remote_tandem", c.remote_tandem.as_deref()),
        ("bwlimit", bwlimit),
    ];
    for (key, v) in strings {
        match v {
            Some("") => {
                t.remove(key);
            }
            Some(v) => set(t, key, v),
            None => {}
        }
    }
    if let Some(v) = c.direction {
        set(t, "direction", v.to_string());
    }
    if let Some(v) = c.mode {
        set(t, "mode", v.to_string());
    }
    if let Some(v) = c.conflict {
        set(t, "conflict", v.to_string());
    }
    if let Some(v) = &c.exclude {
        set(t, "exclude", Array::from_iter(v));
    }
    if let Some(v) = &c.include {
        set(t, "include", Array::from_iter(v));
    }
    if let Some(v) = c.max_delete {
        set(t, "max_delete", i64::from(v));
    }
    if let Some(v) = c.modify_window {
        set(t, "modify_window", format_duration_ns(v));
    }
    if let Some(v) = c.fsync {
        set(t, "fsync", v);
    }
    if let Some(v) = c.update {
        set(t, "update", v);
    }
    if let Some(v) = c.owner {
        set(t, "owner", v);
    }
    if let Some(v) = c.numeric_ids {
        set(t, "numeric_ids", v);
    }
    if let Some(v) = c.xattrs {
        set(t, "xattrs", v);
    }
    if let Some(v) = c.acls {
        set(t, "acls", v);
    }
    if let Some(v) = c.hard_links {
        set(t, "hard_links", v);
    }
    if let Some(v) = c.continuous {
        set(t, "continuous", v);
    }
    for (key, v) in [("before", &c.before), ("after", &c.after)] {
        match v.as_deref() {
            Some("") => {
                t.remove(key);
            }
            Some(v) => set(t, key, v),
            None => {}
        }
    }
    if let Some(v) = c.hook_timeout {
        set(t, "hook_timeout", format_duration_ns(v));
    }
    if let Some(v) = c.priority {
        set(t, "priority", v.to_string());
    }
    match &c.schedules {
        Some(v) if v.is_empty() => {
            t.remove("schedule");
        }
        Some(v) => set(
            t,
            "schedule",
            Array::from_iter(v.iter().map(|s| s.to_string())),
        ),
        None => {}
    }
    apply_notify(t, c);
    apply_limits(t, c);
    Ok(())
}

/// The limits on what is kept and deleted, written as `tandem sync` reads them.
fn apply_limits(t: &mut Table, c: &TaskChanges) {
    if let Some(v) = c.max_delete_count {
        set(t, "max_delete_count", i64::try_from(v).unwrap_or(i64::MAX));
    }
    if let Some(v) = c.history_keep {
        set(t, "history_keep", format_keep(v));
    }
    if let Some(v) = c.history_max {
        set(t, "history_max", format_size(v));
    }
    if let Some(v) = c.history_versions {
        set(t, "history_versions", i64::try_from(v).unwrap_or(i64::MAX));
    }
    if let Some(v) = c.delete_brake {
        set(t, "delete_brake", format_brake(v));
    }
}

fn apply_notify(t: &mut Table, c: &TaskChanges) {
    match &c.notify_email {
        Some(v) if v.is_empty() => {
            t.remove("notify_email");
        }
        Some(v) => set(t, "notify_email", Array::from_iter(v)),
        None => {}
    }
    if let Some(v) = c.notify_when {
        set(t, "notify_when", v.to_string());
    }
}

/// Sets `key`, keeping the old value's surroundings (a comment at the end of its line).
fn set(table: &mut Table, key: &str, value: impl Into<Value>) {
    let mut value = value.into();
    if let Some(old) = table.get(key).and_then(Item::as_value) {
        *value.decor_mut() = old.decor().clone();
    }
    table[key] = Item::Value(value);
}

fn text(task: &str, key: &str, p: &Path) -> Result<String, TaskError> {
    p.to_str()
        .map(str::to_string)
        .ok_or_else(|| TaskError::Invalid {
            at: Box::new(Location {
                file: None,
                line: None,
                task: Some(task.to_string()),
                key: Some(key.to_string()),
            }),
            problem: Box::new(Problem::Value(format!(
                "{} is not valid UTF-8, which the config file cannot hold",
                p.display()
            ))),
        })
}
