//! tandem's named tasks: the layer between the config file and the engine.
//!
//! Owns `config.toml` (read, checked and changed in place, keeping the user's comments and
//! order), the validated `TaskSpec` (a name, a comment, one or more sources, a target and
//! the sync options) and its translation into one engine `SyncSpec` per source. Flow:
//! `config.toml` → `Config::load` → `TaskSpec` → `TaskSpec::sync_specs` → the engine. It
//! decides nothing about files itself: folder checks are `tandem_engine::roots`, syncing
//! is `tandem_engine::sync`. It never prints: callers do.
//!
//! A run of a task (`run_task`) is its priority, its `before` hook, the sync of each pair
//! (done by the caller, who shows it), a JSON summary, its `after` hook (`hooks`) and the
//! mail of its result (`notify` for the settings, `mail` for the sending).
//!
//! Each source `S` pairs with `TARGET/<name of S>` (`TARGET/<task>/<name of S>` with
//! `target_subfolder`), and each pair keeps its state where `tandem sync S T` keeps it
//! (`$XDG_STATE_HOME/tandem/<pair id>`): `tandem status`, `conflicts` and `resolve` work
//! on a task's pairs as on any pair, and renaming or editing a task keeps its baselines.

mod config;
mod error;
mod history;
mod hooks;
mod last_run;
mod limits;
mod live;
mod mail;
mod mail_held;
mod mail_text;
mod marker;
mod notify;
mod read;
mod report;
mod run;
mod schedule;
mod spec;
mod status;
mod sys;

pub use config::{default_config_path, Config, TaskChanges};
pub use error::{Location, Problem, TaskError};
pub use history::{History, HistoryRow, RunCounts, RunEnd, HISTORY_FILE, RETENTION};
pub use hooks::{
    apply_priority, check_command, run_hook, HookEnd, HookOutcome, Hooks, DEFAULT_HOOK_TIMEOUT_NS,
};
pub use limits::{format_brake, format_keep, format_size, parse_brake, parse_keep, parse_size};
pub use live::{events_path, LiveRun, Progress, PROGRESS_FILE};
pub use mail::{send_test, MailError, EMAIL_FAILURE_FILE};
pub use mail_held::held_mailer;
pub use marker::{plan_repoints, read_markers, Marker, PlannedPair, Repoint, MARKERS};
pub use notify::{Notify, Password, Smtp, SMTP_KEYS};
pub use read::TASK_KEYS;
pub use report::{event_json, summary_json, PairOutcome, TaskReport, Totals};
pub use run::{hook_notes, run_task, task_state_dir, RunRequest, EXIT_SKIPPED};
pub use schedule::{next_run, MonthDay, Schedule, ScheduleError};
pub use spec::{
    check_name, format_duration_ns, parse_duration_ns, Origin, TaskOptions, TaskPair, TaskSpec,
};
pub use status::{
    daemon_state, error_of, rfc3339, DaemonState, EmailFailure, PairStatus, TaskStatus,
    DAEMON_FILE, EMAIL_FILE,
};

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod tests;
