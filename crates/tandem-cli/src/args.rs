//! The command line, as clap sees it. Validation happens in `task`.

use std::path::PathBuf;
use std::str::FromStr;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use tandem_core::{
    Direction, Flavor, Keep, NotifyWhen, Policy, Priority, Side, UnknownWord, Words,
};

const EXIT_CODES: &str = "Exit codes:
  0  in sync
  1  finished, with conflicts, skipped or failed paths (listed)
  2  error: nothing was changed, or the run stopped cleanly (disk full, read-only);
     for `tandem run`, also: the task's --before command failed, so it did not sync
  3  halted for safety (a folder emptied or vanished, too many deletions)
  4  stopped on request (SIGTERM, SIGINT) before it finished: what was done is
     recorded, the next run finishes the rest";

#[derive(Parser, Debug)]
#[command(name = "tandem", version, about = "Keeps two folders in step, both ways", after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// The task config file (default: $XDG_CONFIG_HOME/tandem/config.toml)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Sync SRC and TGT once and exit
    #[command(after_help = EXIT_CODES)]
    Sync(SyncArgs),
    /// List the conflicts recorded for a pair
    #[command(after_help = EXIT_CODES)]
    Conflicts(ConflictsArgs),
    /// Settle a recorded conflict
    #[command(after_help = EXIT_CODES)]
    Resolve(ResolveArgs),
    /// Who changed what through the mount of SRC: the journal's records (time, operation,
    /// paths, pid, uid and the program's name), oldest first
    #[command(after_help = EXIT_CODES)]
    Changes(ChangesArgs),
    /// The deletions the delete brake of the mount of SRC holds back from its targets
    #[command(after_help = EXIT_CODES)]
    Held(HeldArgs),
    /// Let held deletions through: they are replayed to the target
    #[command(after_help = EXIT_CODES)]
    Release(SettleArgs),
    /// The versions tandem kept of a source file (or of a folder's files): what a mount
    /// kept before programs overwrote, truncated, renamed over or deleted it, and what
    /// syncs set aside in either side's trash; when, size, side, who, where
    #[command(after_help = EXIT_CODES)]
    History(HistoryArgs),
    /// Bring a version of a source file back (through the mount when mounted, so that it
    /// replicates); or, with --held, the deletions the delete brake holds
    #[command(after_help = EXIT_CODES)]
    Restore(RestoreArgs),
    /// Show every task at a glance (last run, run going on now, conflicts, errors) and
    /// every other pair; or one task in detail; or one pair (SRC, or SRC TGT)
    #[command(after_help = EXIT_CODES)]
    Status(StatusArgs),
    /// Remove a pair's state (its baseline, conflicts and history) and its markers in both
    /// folders; their files are not touched, and the next sync of the pair is a first sync
    /// (the way to start over when a sync refuses a lost state)
    #[command(after_help = EXIT_CODES)]
    Forget(ForgetArgs),
    /// Mount a passthrough filesystem over SRC and keep each TGT in step continuously, both
    /// ways
    #[command(after_help = EXIT_CODES)]
    Mount(MountArgs),
    /// Stop a mount cleanly: flush the journal, drain the replicator, unmount
    #[command(after_help = EXIT_CODES)]
    Unmount(UnmountArgs),
    /// Keep named tasks in the config file: add, list, show, edit, rename, remove
    #[command(subcommand)]
    Task(TaskCommand),
    /// Run a task once now, in the foreground: each source synced with its target folder
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// The run history of every task, or of one: a line per run, newest first (kept 90
    /// days)
    #[command(after_help = EXIT_CODES)]
    Log(LogArgs),
    /// Run every task on its schedules (one daemon per user; it starts in the background
    /// unless --foreground)
    #[command(after_help = EXIT_CODES)]
    Daemon(DaemonArgs),
    /// Print a completion script for SHELL: `source <(tandem completions bash)`, or save it
    /// where your shell loads completions from (see README)
    Completions(CompletionsArgs),
    /// Write the man pages (tandem.1 and one per subcommand) into DIR (for packagers; see
    /// README)
    #[command(hide = true)]
    Man(ManArgs),
    /// Serve ROOT to a tandem on another machine over stdin and stdout (what ssh runs on
    /// the far side of `tandem sync LOCAL host:/path`; never typed by hand)
    #[command(hide = true)]
    Serve(ServeArgs),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The folder to serve
    pub root: PathBuf,
    /// Create ROOT if it is missing (its parent existing): a first sync
    #[arg(long)]
    pub create: bool,
}

/// How to reach a target on another machine (`[user@]host:/path`, `ssh://...`).
#[derive(Args, Debug, Clone, Default)]
pub struct RemoteArgs {
    /// The ssh command and its options for a remote target, split on spaces (default:
    /// $TANDEM_SSH, else `ssh`), e.g. 'ssh -p 2222 -i ~/.ssh/key'
    #[arg(long, value_name = "COMMAND")]
    pub ssh: Option<String>,
    /// The tandem to run on the remote machine (default: `tandem` on its PATH)
    #[arg(long, value_name = "PATH")]
    pub remote_tandem: Option<String>,
    /// zstd for the file data sent to and from a remote target: `auto` skips data that
    /// does not shrink (media, archives)
    #[arg(long, value_enum, default_value = "auto")]
    pub compress: CompressArg,
    /// Cap the rate of what is sent over ssh, each way, in bytes a second as rsync reads
    /// it: 500K, 2M (powers of 1024), 1MB (of 1000), 100B; a bare number is KiB; 0: none
    #[arg(long, value_name = "RATE", value_parser = bwlimit)]
    pub bwlimit: Option<Rate>,
}

/// A parsed `--bwlimit` (`None` inside: `0`, no limit).
pub type Rate = Option<u64>;

fn bwlimit(text: &str) -> Result<Rate, String> {
    tandem_remote::parse_rate(text)
}

/// A `--bwlimit` checked, kept as written (a task stores it so).
fn rate_text(text: &str) -> Result<String, String> {
    tandem_remote::parse_rate(text).map(|_| text.to_string())
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq, Default)]
pub enum CompressArg {
    #[default]
    Auto,
    On,
    Off,
}

impl From<CompressArg> for tandem_remote::Compress {
    fn from(c: CompressArg) -> tandem_remote::Compress {
        match c {
            CompressArg::Auto => tandem_remote::Compress::Auto,
            CompressArg::On => tandem_remote::Compress::On,
            CompressArg::Off => tandem_remote::Compress::Off,
        }
    }
}

#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// Stay in the foreground, logging to standard error (for systemd and tests); default:
    /// start in the background, logging to $XDG_STATE_HOME/tandem/daemon.log
    #[arg(long)]
    pub foreground: bool,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: ShellArg,
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum ShellArg {
    Bash,
    Zsh,
    Fish,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// The folder to write them into (made if missing)
    pub dir: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum TaskCommand {
    /// Add a task: one or more sources, each synced with TARGET/<its folder name>
    Add(TaskAddArgs),
    /// List the tasks
    List(JsonArg),
    /// Show a task's settings and the pairs it syncs
    Show(TaskNameArgs),
    /// Change the settings given; the others are left as they are
    Edit(TaskAddArgs),
    /// Rename a task (its folders and their sync state are kept)
    Rename(TaskRenameArgs),
    /// Remove a task from the config (its folders and their sync state are left alone)
    Remove(TaskNameArgs),
    /// Send a test message to the task's --notify-email addresses through the [smtp]
    /// server; exit 1 with the server's reason if it cannot be sent
    TestEmail(TaskNameArgs),
}

#[derive(Args, Debug)]
pub struct JsonArg {
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TaskNameArgs {
    pub name: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TaskRenameArgs {
    pub old: String,
    pub new: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TaskAddArgs {
    pub name: String,
    #[command(flatten)]
    pub settings: TaskSettings,
    #[arg(long)]
    pub json: bool,
}

/// A task's settings, as `task add` sets them and `task edit` changes them (each one
/// given replaces the task's; a list given replaces the whole list).
#[derive(Args, Debug, Clone)]
pub struct TaskSettings {
    /// A source folder (repeatable): each is synced with TARGET/<its folder name>
    #[arg(long = "source", value_name = "DIR")]
    pub sources: Vec<PathBuf>,
    /// The folder the sources' copies are in: a local one, or one on another machine
    /// (`[user@]host:/path`, `ssh://[user@]host[:port]/path`)
    #[arg(long, value_name = "DIR")]
    pub target: Option<PathBuf>,
    /// For a remote target: the ssh command and its options, split on spaces (default:
    /// $TANDEM_SSH, else `ssh`; "" for the default again)
    #[arg(long, value_name = "COMMAND")]
    pub ssh: Option<String>,
    /// For a remote target: the tandem to run there (default: `tandem` on its PATH)
    #[arg(long, value_name = "PATH")]
    pub remote_tandem: Option<String>,
    /// For a remote target: zstd for the file data (default auto: data that does not
    /// shrink is sent as it is)
    #[arg(long, value_enum)]
    pub compress: Option<CompressArg>,
    /// For a remote target: cap the rate of what is sent over ssh, each way, as `tandem
    /// sync --bwlimit` reads it (500K, 2M, 1MB; 0: none)
    #[arg(long, value_name = "RATE", value_parser = rate_text)]
    pub bwlimit: Option<String>,
    /// A note for yourself, shown by `task list` and `task show`
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
    /// Put the copies under TARGET/<task name>/ (the folder is made on the first run)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub target_subfolder: Option<bool>,
    /// Keep the copies in step all the time: `tandem daemon` mounts each source (as
    /// `tandem mount` does) instead of running the task on schedules
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub continuous: Option<bool>,
    /// Which way changes flow (default: both)
    #[arg(long, value_parser = words::<Direction>())]
    pub direction: Option<Direction>,
    /// For push and pull: how the receiving side's own changes are treated (default: safe)
    #[arg(long, value_parser = words::<Flavor>())]
    pub mode: Option<Flavor>,
    /// What to do when both sides changed the same path (default: keep-both)
    #[arg(long, value_parser = words::<Policy>())]
    pub conflict: Option<Policy>,
    /// Leave out paths matching PATTERN (gitignore syntax; repeatable)
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// Take back paths an exclude matched (gitignore `!PATTERN`; repeatable)
    #[arg(long, value_name = "PATTERN")]
    pub include: Vec<String>,
    /// Halt (exit 3) when a run would delete more than PERCENT of a pair's synced entries
    /// (default: 50)
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u32).range(0..=100))]
    pub max_delete: Option<u32>,
    /// Modification times this close count as equal (e.g. 2s for FAT; default: 0s)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_ns)]
    pub modify_window: Option<i64>,
    /// fsync every file, and each folder whose entries changed
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub fsync: Option<bool>,
    /// For push and pull: replace a file on the receiving side only with a newer copy
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub update: Option<bool>,
    /// Keep owner and group, both ways (needs root to give files to other users)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub owner: Option<bool>,
    /// With --owner: owners travel as numbers, never mapped by user and group name
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub numeric_ids: Option<bool>,
    /// Keep extended attributes: user.*, and security.* and trusted.* as root
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub xattrs: Option<bool>,
    /// Keep POSIX ACLs (access, and default on folders)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub acls: Option<bool>,
    /// Names that share a file on one side share one on the other
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub hard_links: Option<bool>,
    /// Halt (exit 3) when a run would delete more than N entries, whatever their share
    #[arg(long, value_name = "N")]
    pub max_delete_count: Option<u64>,
    /// How long each side's trash and the journal keep the past (default: 30d)
    #[arg(long, value_name = "DURATION", value_parser = parse_keep)]
    pub history_keep: Option<std::time::Duration>,
    /// The most each side's trash may hold (default: 5GiB)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub history_max: Option<u64>,
    /// The most versions of one path each side's trash keeps (default: 10)
    #[arg(long, value_name = "N")]
    pub history_versions: Option<usize>,
    /// Continuous tasks: hold deletions through the mount when more than COUNT arrive
    /// within DURATION, or `off` (default: 1000/60s)
    #[arg(long, value_name = "COUNT/DURATION|off", value_parser = parse_brake)]
    pub delete_brake: Option<DeleteBrake>,
    /// Run CMD (with `sh -c`) before each sync; if it fails, the sync is skipped (exit 2).
    /// "" removes it
    #[arg(long, value_name = "CMD")]
    pub before: Option<String>,
    /// Run CMD (with `sh -c`) after each sync, told its result in TANDEM_* variables.
    /// "" removes it
    #[arg(long, value_name = "CMD")]
    pub after: Option<String>,
    /// Kill a hook (and every process it started) still running after DURATION
    /// (default: 10m)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_ns)]
    pub hook_timeout: Option<i64>,
    /// The run's CPU and I/O priority, its hooks' too (default: normal)
    #[arg(long, value_parser = words::<Priority>())]
    pub priority: Option<Priority>,
    /// When the task runs by itself, in local time (repeatable; replaces the task's
    /// list): every 30m, daily 02:00, weekly mon,thu 18:30, monthly 1 02:00, monthly
    /// last, at-start, on-appear PATH. Nothing acts on it yet: the daemon comes next
    #[arg(long = "schedule", value_name = "SPEC")]
    pub schedules: Vec<tandem_task::Schedule>,
    /// Remove the task's schedules: it runs only by hand (`tandem run NAME`)
    #[arg(long, conflicts_with = "schedules")]
    pub no_schedule: bool,
    /// Mail the result of a run to ADDR (repeatable; replaces the task's list), through
    /// the config file's [smtp] server
    #[arg(long = "notify-email", value_name = "ADDR")]
    pub notify_email: Vec<String>,
    /// Mail no one any more
    #[arg(long, conflicts_with = "notify_email")]
    pub no_notify_email: bool,
    /// Which runs are mailed: always, problems (conflicts, problems, failed, halted,
    /// skipped) or failure (failed, halted, skipped) (default: problems)
    #[arg(long, value_parser = words::<NotifyWhen>())]
    pub notify_when: Option<NotifyWhen>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The task's name
    pub name: String,
    /// Print what would be done and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// One JSON object per event on stdout, then one summary object for the task
    #[arg(long)]
    pub json: bool,
    /// A line per change
    #[arg(long, short)]
    pub verbose: bool,
    /// What started the run, told to its hooks and kept in its report (the daemon says
    /// schedule, at-start, on-appear)
    #[arg(long, hide = true, default_value = "manual")]
    pub trigger: String,
}

#[derive(Args, Debug, Clone)]
pub struct PairArgs {
    /// The source folder
    pub src: PathBuf,
    /// The target folder: a local path, or one on another machine reached over ssh,
    /// `[user@]host:/path` or `ssh://[user@]host[:port]/path`
    pub tgt: PathBuf,
    /// Where the pair's state lives (default: $XDG_STATE_HOME/tandem/<task-id>)
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// A source and, optionally, one target: without it, every target of the mount serving
/// the source.
#[derive(Args, Debug, Clone)]
pub struct SourceArgs {
    /// The source folder
    pub src: PathBuf,
    /// The target folder (default: every target of the running mount of SRC)
    pub tgt: Option<PathBuf>,
    /// Where the pair's state lives (default: $XDG_STATE_HOME/tandem/<task-id>)
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// A setting spelled with the words of `tandem_core::Words`, each listed in `--help` with
/// its meaning.
pub fn words<T>() -> impl TypedValueParser<Value = T>
where
    T: Words + FromStr<Err = UnknownWord> + Clone + Send + Sync,
{
    let values = T::ALL
        .iter()
        .map(|(_, word, meaning)| PossibleValue::new(*word).help(*meaning));
    PossibleValuesParser::new(values).try_map(|s| s.parse::<T>())
}

#[derive(Args, Debug)]
pub struct SyncArgs {
    #[command(flatten)]
    pub pair: PairArgs,
    #[command(flatten)]
    pub opts: SyncOptions,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Print what would be done and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// One JSON object per event on stdout, then a summary object
    #[arg(long)]
    pub json: bool,
    /// No progress bar, only errors and the final summary's problems
    #[arg(long, short)]
    pub quiet: bool,
    /// A line per change
    #[arg(long, short)]
    pub verbose: bool,
}

/// How to sync: shared by `sync` and `mount`.
#[derive(Args, Debug, Clone)]
pub struct SyncOptions {
    /// Which way changes flow
    #[arg(long, value_parser = words::<Direction>(), default_value = "both")]
    pub direction: Direction,
    /// For push and pull: how the receiving side's own changes are treated
    #[arg(long, value_parser = words::<Flavor>(), default_value = "safe")]
    pub mode: Flavor,
    /// What to do when both sides changed the same path
    #[arg(long, value_parser = words::<Policy>(), default_value = "keep-both")]
    pub conflict: Policy,
    /// Leave out paths matching PATTERN (gitignore syntax; repeatable)
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// Take back paths an exclude matched (gitignore `!PATTERN`; repeatable)
    #[arg(long, value_name = "PATTERN")]
    pub include: Vec<String>,
    /// Trust no file times: hash every file on both sides
    #[arg(long)]
    pub rescan: bool,
    /// Halt (exit 3) when a sync would delete more than PERCENT of the synced entries
    /// (50 or 50%; checked once more than 10 entries would be deleted)
    #[arg(long, value_name = "PERCENT", default_value = "50", value_parser = parse_percent)]
    pub max_delete: u32,
    /// Halt (exit 3) when a sync would delete more than N entries, whatever their share
    #[arg(long, value_name = "N")]
    pub max_delete_count: Option<u64>,
    /// Modification times this close count as equal (e.g. 2s for FAT): 500ms, 2s, 1ns
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration_ns)]
    pub modify_window: i64,
    /// fsync every file, and each folder whose entries changed (default: one flush of each
    /// side per baseline commit)
    #[arg(long)]
    pub fsync: bool,
    /// For push and pull: replace a file on the receiving side only with a newer copy;
    /// newer ones there are left and reported
    #[arg(long)]
    pub update: bool,
    /// Keep owner and group, both ways. Giving a file to another user needs root; files
    /// whose owner could not be kept are reported once per run
    #[arg(long)]
    pub owner: bool,
    /// With --owner: owners travel as numbers, never mapped by user and group name (both
    /// sides of a local pair share one user database: the same either way)
    #[arg(long)]
    pub numeric_ids: bool,
    /// Keep extended attributes (user.*; security.* and trusted.* too as root), both ways;
    /// a change to attributes alone is a metadata change
    #[arg(long)]
    pub xattrs: bool,
    /// Keep POSIX ACLs (access, and default on folders) where both file systems hold them
    #[arg(long)]
    pub acls: bool,
    /// Names that share a file on one side share one on the other (as rsync -H), both
    /// ways; where the receiving side cannot hold hard links they are copied, reported once
    #[arg(long)]
    pub hard_links: bool,
    /// How long what tandem keeps of the past stays: each side's trash and the journal
    /// `tandem changes` reads (30m, 12h, 30d; 0 keeps nothing longer than needed)
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = parse_keep)]
    pub history_keep: std::time::Duration,
    /// The most each side's trash may hold (5GiB, 500MiB, 1G, bytes); oldest versions go
    /// first
    #[arg(long, value_name = "SIZE", default_value = "5GiB", value_parser = parse_size)]
    pub history_max: u64,
    /// The most versions of one path each side's trash keeps
    #[arg(long, value_name = "N", default_value_t = tandem_core::Retention::DEFAULT_VERSIONS)]
    pub history_versions: usize,
}

impl SyncOptions {
    /// What the run keeps beyond content, mode and times.
    pub fn keep(&self) -> Keep {
        Keep {
            owner: self.owner,
            numeric_ids: self.numeric_ids,
            xattrs: self.xattrs,
            acls: self.acls,
            ..Keep::default()
        }
    }

    pub fn retention(&self) -> tandem_core::Retention {
        tandem_core::Retention {
            keep: self.history_keep,
            max_bytes: self.history_max,
            versions: self.history_versions,
        }
    }
}

fn parse_percent(s: &str) -> Result<u32, String> {
    s.strip_suffix('%')
        .unwrap_or(s)
        .parse::<u32>()
        .ok()
        .filter(|p| *p <= 100)
        .ok_or_else(|| format!("{s:?} is not a percentage (0 to 100)"))
}

#[derive(Args, Debug)]
pub struct MountArgs {
    /// The source folder (the mount goes over it)
    pub src: PathBuf,
    /// The target folders: one or more, each kept in step on its own
    #[arg(required = true, num_args = 1..)]
    pub targets: Vec<PathBuf>,
    /// Where the pair's state lives (only with a single target; default:
    /// $XDG_STATE_HOME/tandem/<task-id> for each pair)
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Reconcile each whole pair this often, for changes the target watcher missed (0:
    /// only at start and after lost events)
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub rescan_every: u64,
    #[command(flatten)]
    pub opts: SyncOptions,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Stay in the foreground (for systemd and tests); default: run in the background,
    /// logging to the state directory
    #[arg(long)]
    pub foreground: bool,
    /// Let other users use the mount (with the kernel's permission checks; files are
    /// created as the calling user)
    #[arg(long)]
    pub allow_other: bool,
    /// Mount somewhere else than over SRC itself: an empty folder (on Windows, where the
    /// source cannot be mounted over, required: a free drive letter such as X:, or an
    /// empty folder)
    #[arg(long, value_name = "MOUNTPOINT")]
    pub at: Option<PathBuf>,
    /// Serve reads and writes through the daemon even where the kernel could pass them
    /// through
    #[arg(long)]
    pub no_passthrough: bool,
    /// Hold deletions through the mount (unlink, rmdir; never renames) when more than
    /// COUNT arrive within DURATION: not replayed to the targets until `tandem release`,
    /// or brought back with `tandem restore --held`; deletions made in a watched target
    /// likewise (not applied to the source); `off` carries every deletion over
    #[arg(long, value_name = "COUNT/DURATION|off", default_value = "1000/60s", value_parser = parse_brake)]
    pub delete_brake: DeleteBrake,
    /// How requests travel between the kernel and tandem: FUSE over io_uring (Linux 6.14+
    /// with fuse.enable_uring=Y; falls back to dev, with a warning) or /dev/fuse reads;
    /// auto: uring where the kernel allows it, else dev, said once in the log
    #[arg(long, value_enum, default_value_t = Transport::Auto)]
    pub transport: Transport,
    /// Keep what programs overwrite, truncate, rename over or delete through the mount
    /// (`tandem history`, `tandem restore`) for files up to SIZE; larger ones are listed
    /// as not kept
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub history_max_file: u64,
    /// Keep nothing of what programs destroy through the mount
    #[arg(long)]
    pub no_history: bool,
    /// The continuous task this mount serves (set by the daemon): its addresses are
    /// mailed when the delete brake holds deletions
    #[arg(long, value_name = "NAME", hide = true)]
    pub task: Option<String>,
}

/// `tandem mount --transport`.
#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum Transport {
    Auto,
    Uring,
    Dev,
}

impl From<Transport> for tandem_core::MountTransport {
    fn from(t: Transport) -> Self {
        match t {
            Transport::Auto => tandem_core::MountTransport::Auto,
            Transport::Uring => tandem_core::MountTransport::Uring,
            Transport::Dev => tandem_core::MountTransport::Dev,
        }
    }
}

/// `--delete-brake`: the limit, or none (`off`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeleteBrake(pub Option<tandem_engine::BrakeLimit>);

/// `1000/60s`, or `off` (`tandem_task::parse_brake`).
fn parse_brake(s: &str) -> Result<DeleteBrake, String> {
    tandem_task::parse_brake(s).map(DeleteBrake)
}

#[derive(Args, Debug)]
pub struct UnmountArgs {
    /// The mounted source folder (or the --at mount point)
    pub src: PathBuf,
}

#[derive(Args, Debug)]
pub struct ConflictsArgs {
    #[command(flatten)]
    pub pair: SourceArgs,
    /// Include resolved conflicts
    #[arg(long)]
    pub all: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ChangesArgs {
    #[command(flatten)]
    pub pair: SourceArgs,
    /// Only changes made since TIME: a time ago (30m, 2h, 7d) or a local date and time
    /// (2026-12-03, 2026-12-03 14:00, or RFC 3339)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only changes to paths matching GLOB (relative to SRC; `*` matches `/` too), as the
    /// first or second path of a rename
    #[arg(long, value_name = "GLOB")]
    pub path: Option<String>,
    /// Only changes made by this process id or user id (a number matches either), or by a
    /// program of this name (as in `ps -o comm`)
    #[arg(long, value_name = "PID|UID|PROGRAM")]
    pub by: Option<String>,
    /// At most the newest N changes
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub limit: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct HeldArgs {
    #[command(flatten)]
    pub pair: SourceArgs,
    /// List every held path (default: a summary of each burst and its first paths)
    #[arg(long)]
    pub all: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SettleArgs {
    #[command(flatten)]
    pub pair: SourceArgs,
    /// Only the burst numbered ID (as `tandem held` lists them; default: every one)
    #[arg(long, value_name = "ID")]
    pub batch: Option<i64>,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// A file or folder in a source folder (it may be gone)
    pub path: PathBuf,
    /// The state directory of the pair (default: found from the mount or the known pairs)
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The file to bring back (with --held: the source folder)
    pub path: PathBuf,
    /// With --held: the target folder (default: every target of the running mount)
    pub tgt: Option<PathBuf>,
    /// The state directory of the pair
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Version N as `tandem history` numbers them (default: the newest kept)
    #[arg(long, value_name = "N", conflicts_with_all = ["at", "held"])]
    pub version: Option<usize>,
    /// The content the file had at TIME: a time ago (30m, 2h) or a local date and time
    #[arg(long, value_name = "TIME", conflicts_with = "held")]
    pub at: Option<String>,
    /// Restore it under another path (refused when that exists, unless --force)
    #[arg(long, value_name = "NEWPATH", conflicts_with = "held")]
    pub to: Option<PathBuf>,
    /// With --to: replace what is at NEWPATH (it is kept in the history first)
    #[arg(long, requires = "to")]
    pub force: bool,
    /// Restore the deletions the delete brake holds, instead of a version
    #[arg(long)]
    pub held: bool,
    /// With --held: only the burst numbered ID (as `tandem held` lists them)
    #[arg(long, value_name = "ID", requires = "held")]
    pub batch: Option<i64>,
}

impl RestoreArgs {
    /// `restore SRC [TGT] --held [--batch ID]` as the arguments of a settle.
    pub fn settle(&self) -> SettleArgs {
        SettleArgs {
            pair: SourceArgs {
                src: self.path.clone(),
                tgt: self.tgt.clone(),
                state_dir: self.state_dir.clone(),
            },
            batch: self.batch,
        }
    }
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum KeepArg {
    Source,
    Target,
    Both,
}

impl KeepArg {
    /// The side whose version is kept; `None` for both.
    pub fn side(self) -> Option<Side> {
        match self {
            KeepArg::Source => Some(Side::Source),
            KeepArg::Target => Some(Side::Target),
            KeepArg::Both => None,
        }
    }
}

#[derive(Args, Debug)]
pub struct ResolveArgs {
    #[command(flatten)]
    pub pair: PairArgs,
    /// The conflicting path, relative to the folders (or absolute inside one). It may be
    /// given as tandem prints it, escaped: `\n`, `\t`, `\r`, `\x1b` or `\xff` for one
    /// byte, `\u{202e}` for one character, `\\` for a backslash. A conflict on the name
    /// exactly as typed is taken first
    pub path: PathBuf,
    /// Which version to keep
    #[arg(long, value_enum)]
    pub keep: KeepArg,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// A task's name, or a source folder (default: every task, then every other pair
    /// tandem knows). A folder that has a task's name is reached as ./NAME
    #[arg(value_name = "TASK|SRC")]
    pub src: Option<PathBuf>,
    /// The target folder (default: the target SRC is synced with, or every target of its
    /// running mount)
    pub tgt: Option<PathBuf>,
    /// Where the pair's state lives (default: $XDG_STATE_HOME/tandem/<task-id>)
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Show a task's run going on now as it goes, until it ends
    #[arg(long, requires = "src", conflicts_with = "tgt")]
    pub follow: bool,
    /// With --follow, a line per change
    #[arg(long, short, requires = "follow")]
    pub verbose: bool,
    /// One JSON object (with --follow, one a line)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct LogArgs {
    /// Only this task's runs
    pub name: Option<String>,
    /// At most this many runs (the newest)
    #[arg(long, short = 'n', value_name = "N")]
    pub limit: Option<usize>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ForgetArgs {
    /// The source folder (it need not exist any more)
    pub src: PathBuf,
    /// The target folder (it need not exist any more)
    pub tgt: PathBuf,
    /// Where the pair's state lives (default: $XDG_STATE_HOME/tandem/<task-id>)
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

pub use tandem_task::{parse_duration_ns, parse_keep, parse_size};

#[cfg(test)]
mod tests {
    use super::parse_duration_ns;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ns("2s"), Ok(2_000_000_000));
        assert_eq!(parse_duration_ns("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_duration_ns("500ms"), Ok(500_000_000));
        assert_eq!(parse_duration_ns("7ns"), Ok(7));
        assert!(parse_duration_ns("2 weeks").is_err());
        assert_eq!(parse_duration_ns("30d"), Ok(30 * 86_400_000_000_000));
    }

    #[test]
    fn delete_brakes() {
        use clap::Parser;
        let brake = |args: &[&str]| {
            let mut all = vec!["tandem", "mount", "/a", "/b"];
            all.extend_from_slice(args);
            match super::Cli::try_parse_from(all).map(|c| c.command) {
                Ok(super::Command::Mount(m)) => Ok(m.delete_brake.0),
                Ok(_) => unreachable!(),
                Err(e) => Err(e.to_string()),
            }
        };
        let limit = |count, secs| {
            Some(tandem_engine::BrakeLimit {
                count,
                window: std::time::Duration::from_secs(secs),
            })
        };
        assert_eq!(brake(&[]), Ok(limit(1000, 60)));
        assert_eq!(brake(&["--delete-brake", "50/2m"]), Ok(limit(50, 120)));
        assert_eq!(brake(&["--delete-brake", "off"]), Ok(None));
        assert!(brake(&["--delete-brake", "50"]).is_err());
        assert!(brake(&["--delete-brake", "x/1s"]).is_err());
    }
}
