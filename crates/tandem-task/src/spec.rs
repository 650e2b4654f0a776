//! A validated task: what the config says, typed, and the pairs it syncs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tandem_core::{Direction, Flavor, Keep, Options, Policy, Priority, Retention};
use tandem_engine::{roots, BrakeLimit, SyncSpec};
use tandem_fs::Placement;
use tandem_remote::{Compress, Connect, RemoteTarget};
use tandem_state::Pair;

use crate::error::{Location, Problem, TaskError};
use crate::hooks::{check_command, Hooks};
use crate::marker::PlannedPair;
use crate::notify::Notify;
use crate::schedule::Schedule;

/// How a task syncs: the options of `tandem sync`, with its defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskOptions {
    pub direction: Direction,
    pub mode: Flavor,
    pub conflict: Policy,
    pub exclude: Vec<String>,
    pub include: Vec<String>,
    /// Halt when a run would delete more than this share of the synced entries.
    pub max_delete: u32,
    /// Halt when a run would delete more than this many entries (`--max-delete-count`).
    pub max_delete_count: Option<u64>,
    /// Modification times this close (nanoseconds) count as equal.
    pub modify_window: i64,
    pub fsync: bool,
    /// One-way only: replace a file on the receiving side only with a newer one.
    pub update: bool,
    /// Owner and group kept, both ways (`--owner`).
    pub owner: bool,
    /// Owners travel as numbers (`--numeric-ids`).
    pub numeric_ids: bool,
    /// Extended attributes kept (`--xattrs`).
    pub xattrs: bool,
    /// POSIX ACLs kept (`--acls`).
    pub acls: bool,
    /// Names that share a file on one side share one on the other (`--hard-links`).
    pub hard_links: bool,
    /// What each side's trash and the journal keep (`--history-keep`, `--history-max`,
    /// `--history-versions`).
    pub retention: Retention,
    /// The brake on mass deletions through a continuous task's mounts (`--delete-brake`;
    /// `None`: off).
    pub delete_brake: Option<BrakeLimit>,
}

impl Default for TaskOptions {
    fn default() -> Self {
        TaskOptions {
            direction: Direction::Both,
            mode: Flavor::Safe,
            conflict: Policy::KeepBoth,
            exclude: Vec::new(),
            include: Vec::new(),
            max_delete: 50,
            modify_window: 0,
            fsync: false,
            update: false,
            owner: false,
            numeric_ids: false,
            xattrs: false,
            acls: false,
            hard_links: false,
            retention: Retention::default(),
            delete_brake: Some(BrakeLimit::default()),
            max_delete_count: None,
        }
    }
}

/// A named task: one or more sources, each synced with `TARGET/<its folder name>` (under
/// `TARGET/<task name>/` with `target_subfolder`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskSpec {
    pub name: String,
    pub comment: Option<String>,
    /// Absolute paths, in the order given.
    pub sources: Vec<PathBuf>,
    /// An absolute path, or a folder on another machine (`[user@]host:/path`,
    /// `ssh://...`) reached as `tandem sync` reaches it.
    pub target: PathBuf,
    /// For a remote target: the ssh command and its options (default: `$TANDEM_SSH`,
    /// else `ssh`).
    pub ssh: Option<String>,
    /// For a remote target: the tandem to run there (default: `tandem` on its PATH).
    pub remote_tandem: Option<String>,
    /// For a remote target: whether file data is compressed (`--compress`).
    pub compress: Compress,
    /// For a remote target: the cap on the rate each way (`--bwlimit`), as the user wrote
    /// it (checked by `tandem_remote::parse_rate` when read).
    pub bwlimit: Option<String>,
    pub target_subfolder: bool,
    pub options: TaskOptions,
    /// Commands run before and after the sync.
    pub hooks: Hooks,
    /// The run's CPU and I/O priority (its hooks' too).
    pub priority: Priority,
    /// When the task starts by itself (the daemon's business); empty: only by hand.
    pub schedules: Vec<Schedule>,
    /// Who is mailed the result of a run, and which runs.
    pub notify: Notify,
    /// Kept in step all the time: the daemon serves each source's mount (`tandem mount`)
    /// instead of running the task on its schedules.
    pub continuous: bool,
    /// Where each key was read from (the config file's lines), for messages.
    pub origin: Origin,
}

/// The file a task was read from and the line of each of its keys (`""`: the table's
/// header). Empty for a task not read from a file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    pub file: Option<PathBuf>,
    pub lines: BTreeMap<String, usize>,
}

/// One source and the folder it is synced with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskPair {
    pub source: PathBuf,
    pub target: PathBuf,
}

/// Checks a task name: it becomes a folder name (`target_subfolder`) and a TOML key.
pub fn check_name(name: &str) -> Result<(), TaskError> {
    let bad = |why| {
        Err(TaskError::BadName {
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() || name.len() > 64 {
        return bad("use 1 to 64 characters");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return bad("it must start with a letter or a digit");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return bad("use letters, digits, '-', '_' and '.'");
    }
    Ok(())
}

impl TaskSpec {
    /// Where `key` of this task is (`key` with an index for one item of a list).
    pub fn at(&self, key: &str) -> Location {
        let base = key.split('[').next().unwrap_or(key);
        Location {
            file: self.origin.file.clone(),
            line: self
                .origin
                .lines
                .get(base)
                .or_else(|| self.origin.lines.get(""))
                .copied(),
            task: Some(self.name.clone()),
            key: Some(key.to_string()),
        }
    }

    pub(crate) fn invalid(&self, key: &str, problem: impl Into<Problem>) -> TaskError {
        TaskError::Invalid {
            at: Box::new(self.at(key)),
            problem: Box::new(problem.into()),
        }
    }

    /// The target as a folder on another machine, if it names one.
    pub fn remote_target(&self) -> Option<RemoteTarget> {
        self.target.to_str().and_then(RemoteTarget::parse)
    }

    /// How to reach a pair's remote target `tgt` (`None`: a local one), with the task's
    /// ssh options, as `tandem sync --ssh ... --remote-tandem ...` reaches it.
    pub fn connect(&self, tgt: &Path) -> Option<Connect> {
        let target = tgt.to_str().and_then(RemoteTarget::parse)?;
        let ssh = self
            .ssh
            .clone()
            .or_else(|| std::env::var("TANDEM_SSH").ok())
            .unwrap_or_else(|| "ssh".into());
        Some(Connect {
            target,
            ssh: ssh.split_whitespace().map(str::to_string).collect(),
            remote_tandem: self
                .remote_tandem
                .clone()
                .unwrap_or_else(|| "tandem".into()),
            create: false,
            compress: self.compress,
            bwlimit: self.bwlimit_rate(),
            keep: Default::default(),
            listing: None,
        })
    }

    /// The `bwlimit` in bytes a second (`None`: no limit).
    pub fn bwlimit_rate(&self) -> Option<u64> {
        let text = self.bwlimit.as_deref()?;
        tandem_remote::parse_rate(text).ok().flatten()
    }

    /// The folder all the pairs' targets are in: `TARGET`, or `TARGET/<task name>`.
    pub fn target_base(&self) -> PathBuf {
        if self.target_subfolder {
            self.target.join(&self.name)
        } else {
            self.target.clone()
        }
    }

    /// Each source with its target folder, `<target base>/<source folder name>`.
    pub fn pairs(&self) -> Vec<TaskPair> {
        let base = self.target_base();
        self.sources
            .iter()
            .map(|s| TaskPair {
                source: s.clone(),
                target: base.join(s.file_name().unwrap_or(s.as_os_str())),
            })
            .collect()
    }

    /// Where a pair's state is (or will be): the directory `tandem sync SOURCE TARGET`
    /// uses, named after the canonical paths as far as they exist.
    pub fn state_dir(pair: &TaskPair) -> PathBuf {
        tandem_state::default_state_dir(&Self::state_pair(pair))
    }

    /// The pair as its state records it: canonical paths as far as they exist.
    pub fn state_pair(pair: &TaskPair) -> Pair {
        if let Some(remote) = pair.target.to_str().and_then(RemoteTarget::parse) {
            let src = std::fs::canonicalize(&pair.source).unwrap_or(pair.source.clone());
            return Pair {
                src: src.to_string_lossy().into_owned(),
                tgt: remote.to_string(),
            };
        }
        let canonical = |p: &Path| {
            let mut rest = Vec::new();
            let mut cur = p;
            loop {
                if let Ok(c) = std::fs::canonicalize(cur) {
                    return rest.iter().rev().fold(c, |acc: PathBuf, r| acc.join(r));
                }
                match (cur.file_name(), cur.parent()) {
                    (Some(name), Some(parent)) => {
                        rest.push(name);
                        cur = parent;
                    }
                    _ => return p.to_path_buf(),
                }
            }
        };
        Pair {
            src: canonical(&pair.source).to_string_lossy().into_owned(),
            tgt: canonical(&pair.target).to_string_lossy().into_owned(),
        }
    }

    /// The folders exist and are apart: every source and the target are existing folders,
    /// no two sources share a folder name, and no two of them contain each other (decided
    /// on file identity, `tandem_engine::roots`).
    pub fn check_folders(&self) -> Result<(), TaskError> {
        // A remote target is checked there, by the agent, when the task runs.
        let target = match self.remote_target() {
            Some(_) => None,
            None => Some(
                roots::canonical_dir(&self.target, "target")
                    .map_err(|e| self.invalid("target", e))?,
            ),
        };
        let mut seen: Vec<(PathBuf, &Path)> = Vec::new();
        for (i, src) in self.sources.iter().enumerate() {
            let key = format!("sources[{i}]");
            let name = src
                .file_name()
                .ok_or_else(|| self.invalid(&key, Problem::NoFolderName(src.clone())))?;
            let canon = roots::canonical_dir(src, "source").map_err(|e| self.invalid(&key, e))?;
            for (other, other_given) in &seen {
                self.check_apart(&key, src, &canon, other_given, other)?;
            }
            if let Some((_, b)) = seen.iter().find(|(_, b)| b.file_name() == Some(name)) {
                return Err(self.invalid(
                    &key,
                    Problem::SameName {
                        name: name.to_string_lossy().into_owned(),
                        a: b.to_path_buf(),
                        b: src.clone(),
                    },
                ));
            }
            if let Some(target) = &target {
                roots::check_pair(&canon, target, false).map_err(|e| self.invalid(&key, e))?;
            }
            seen.push((canon, src));
        }
        Ok(())
    }

    fn check_apart(
        &self,
        key: &str,
        given: &Path,
        canon: &Path,
        other_given: &Path,
        other: &Path,
    ) -> Result<(), TaskError> {
        let placed = tandem_fs::placement(canon, other).map_err(|source| {
            self.invalid(
                key,
                roots::RootError::Unusable {
                    side: "source",
                    path: given.to_path_buf(),
                    source,
                },
            )
        })?;
        let problem = match placed {
            Placement::Same => Problem::SourceTwice {
                a: other_given.to_path_buf(),
                b: given.to_path_buf(),
            },
            Placement::Inside => Problem::SourcesNested {
                inner: given.to_path_buf(),
                outer: other_given.to_path_buf(),
            },
            Placement::Contains => Problem::SourcesNested {
                inner: other_given.to_path_buf(),
                outer: given.to_path_buf(),
            },
            _ => return Ok(()),
        };
        Err(self.invalid(key, problem))
    }

    /// The engine's spec for each pair, as `tandem sync SOURCE TARGET` with the task's
    /// options would build it (so the pair's state is the one `tandem status SOURCE
    /// TARGET` reads), its roots' markers checked against its state.
    pub fn sync_specs(&self, dry_run: bool, threads: usize) -> Result<Vec<PlannedPair>, TaskError> {
        self.check_sources_there()?;
        self.check_folders()?;
        self.make_target_base(dry_run)?;
        self.pairs()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let key = format!("sources[{i}]");
                let roots = self.pair_roots(p).map_err(|e| self.invalid(&key, e))?;
                let pair = Pair {
                    src: roots.src.to_string_lossy().into_owned(),
                    tgt: roots.tgt.to_string_lossy().into_owned(),
                };
                let state_dir = tandem_state::default_state_dir(&pair);
                roots::check_state_dir(&state_dir, &roots).map_err(|e| self.invalid(&key, e))?;
                let spec = self.sync_spec(roots, state_dir, dry_run, threads);
                PlannedPair::checked(self, &key, spec)
            })
            .collect()
    }

    /// A pair's roots as `tandem sync SOURCE TARGET` names them: a remote target by its
    /// normalised name, checked (and made on a first sync) by the agent.
    fn pair_roots(&self, p: &TaskPair) -> Result<roots::PairRoots, roots::RootError> {
        match p.target.to_str().and_then(RemoteTarget::parse) {
            Some(remote) => Ok(roots::PairRoots {
                src: roots::canonical_dir(&p.source, "source")?,
                tgt: PathBuf::from(remote.to_string()),
                tgt_missing: true,
            }),
            None => roots::check_pair(&p.source, &p.target, true),
        }
    }

    /// Each hook's program is there (`hooks::check_command`): checked when a task is
    /// added or changed, not when it runs (a hook that fails then is reported as such).
    pub fn check_hooks(&self) -> Result<(), TaskError> {
        let hooks = [("before", &self.hooks.before), ("after", &self.hooks.after)];
        for (key, command) in hooks {
            if let Some(c) = command {
                check_command(c)
                    .map_err(|why| self.invalid(key, Problem::Value(format!("`{c}`: {why}"))))?;
            }
        }
        Ok(())
    }

    /// A source of a task that was saved is gone: renamed or moved, most likely.
    fn check_sources_there(&self) -> Result<(), TaskError> {
        for (i, src) in self.sources.iter().enumerate() {
            if let Err(e) = std::fs::symlink_metadata(src) {
                if e.kind() == std::io::ErrorKind::NotFound {
                    let gone = Problem::SourceGone {
                        path: src.clone(),
                        task: self.name.clone(),
                    };
                    return Err(self.invalid(&format!("sources[{i}]"), gone));
                }
            }
        }
        Ok(())
    }

    fn sync_spec(
        &self,
        roots: roots::PairRoots,
        state_dir: PathBuf,
        dry_run: bool,
        threads: usize,
    ) -> SyncSpec {
        let o = &self.options;
        let mut spec = SyncSpec::new(roots.src, roots.tgt, state_dir);
        spec.options = Options {
            direction: o.direction,
            flavor: o.mode,
            policy: o.conflict,
            modify_window: o.modify_window,
            update: o.update,
            keep: Keep {
                owner: o.owner,
                numeric_ids: o.numeric_ids,
                xattrs: o.xattrs,
                acls: o.acls,
                ..Keep::default()
            },
            hard_links: o.hard_links,
            stamp: String::new(),
            ..Options::default()
        };
        spec.excludes = o.exclude.clone();
        spec.includes = o.include.clone();
        spec.dry_run = dry_run;
        spec.max_delete_percent = o.max_delete;
        spec.max_delete_count = o.max_delete_count;
        spec.retention = o.retention;
        spec.threads = threads;
        spec.fsync_each = o.fsync;
        spec
    }

    /// `TARGET/<task name>` is made on the first run (one level, `TARGET` existing). Never
    /// when a pair was synced before: a missing folder then is an unmounted disk or a
    /// mistake, and the engine refuses the pair.
    fn make_target_base(&self, dry_run: bool) -> Result<(), TaskError> {
        let base = self.target_base();
        let remote = self.remote_target().is_some();
        if !self.target_subfolder || (!remote && std::fs::symlink_metadata(&base).is_ok()) {
            return Ok(());
        }
        let synced_before = self
            .pairs()
            .iter()
            .any(|p| TaskSpec::state_dir(p).join(tandem_state::DB_FILE).exists());
        if remote {
            // Once synced, a missing folder there is the agent's to refuse.
            if synced_before || dry_run {
                return Ok(());
            }
            return self.make_remote_target_base(&base);
        }
        if synced_before {
            return Err(self.invalid(
                "target_subfolder",
                roots::RootError::TargetGone { path: base },
            ));
        }
        if dry_run {
            return Err(self.invalid(
                "target_subfolder",
                roots::RootError::TargetToCreate { path: base },
            ));
        }
        roots::create_target(&base).map_err(|e| self.invalid("target_subfolder", e))
    }

    /// `TARGET/<task name>` on another machine, made by its agent before the first run (as
    /// `tandem sync` makes a missing target: one level, `TARGET` existing there).
    fn make_remote_target_base(&self, base: &Path) -> Result<(), TaskError> {
        let Some(mut connect) = self.connect(base) else {
            return Ok(());
        };
        connect.create = true;
        match tandem_remote::RemoteSide::connect(&connect) {
            // Closing the connection ends the agent.
            Ok(side) => {
                drop(side);
                Ok(())
            }
            Err(e) => Err(self.invalid(
                "target_subfolder",
                roots::RootError::Create {
                    path: base.to_path_buf(),
                    source: std::io::Error::other(e.to_string()),
                },
            )),
        }
    }
}

/// `500ms`, `2s`, `1m`, `10us`, `3ns`, `30d`, or a bare number of seconds, in nanoseconds.
pub fn parse_duration_ns(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("not a duration: {s:?} (try 2s or 500ms)"))?;
    let scale = match unit {
        "" | "s" => 1e9,
        "ms" => 1e6,
        "us" | "µs" => 1e3,
        "ns" => 1.0,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        "d" => 86400e9,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?} (use ns, us, ms, s, m, h or d)"
            ))
        }
    };
    Ok((value * scale).round() as i64)
}

/// A duration as `parse_duration_ns` reads it back, in the largest exact unit.
pub fn format_duration_ns(ns: i64) -> String {
    for (unit, scale) in [
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ] {
        if ns != 0 && ns % scale == 0 {
            return format!("{}{unit}", ns / scale);
        }
    }
    if ns == 0 {
        "0s".to_string()
    } else {
        format!("{ns}ns")
    }
}
