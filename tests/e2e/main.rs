//! End-to-end tests: the real `tandem` binary on real folders, real SQLite state.
//! Linux only for now: they mount, use `/proc` and Linux calls throughout; the portable
//! subset for macOS and Windows is issue 16's next step.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod fixtures;

mod bad_input;
mod basics;
mod bench;
mod brake;
mod changes;
mod cli_output;
mod confinement;
mod conflicts;
mod crash;
mod crash_mount;
mod daemon;
mod deep_paths;
mod directions;
mod email;
mod faults;
mod folder_times;
mod foreign_fs;
mod hard_links;
mod history;
mod hooks;
mod keep_mounted;
mod mount;
mod names;
mod ownership;
mod power;
mod remote;
mod retention;
mod roots;
mod schedules;
mod sparse;
mod state_admin;
mod status_tasks;
mod task_limits;
mod tasks;
mod two_way;
mod unprivileged;
mod xattrs;
