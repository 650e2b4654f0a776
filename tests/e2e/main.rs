//! End-to-end tests: the real `tandem` binary on real folders, real SQLite state.
#![allow(clippy::unwrap_used)]

mod fixtures;

mod bad_input;
mod basics;
mod bench;
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
mod hooks;
mod mount;
mod names;
mod power;
mod roots;
mod schedules;
mod sparse;
mod state_admin;
mod status_tasks;
mod tasks;
mod two_way;
mod unprivileged;
