//! Continuous tasks: each source's mount (`tandem mount SRC TGT --foreground`, a child
//! process), restarted after a crash with a backoff that doubles from `FIRST_BACKOFF` to
//! `MAX_BACKOFF` and starts over once a mount has served for `STEADY`. A stale mount left
//! by a killed child is cleaned up before its folder is looked at (a call on it could
//! block). A task whose folders are not there (a source gone, the target disk not
//! mounted) is reported and tried again on the same backoff: never mounted on the wrong
//! folder, never "everything deleted".

use std::ffi::OsString;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use tandem_engine::SyncSpec;
use tandem_task::{format_brake, format_duration_ns, format_keep, TaskOptions};

use super::children::{self, Ended, Kind};
use super::{note, task_log, warn, Daemon};
use crate::mounted::registry;

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A mount up this long counts as healthy: its next crash waits `FIRST_BACKOFF` again.
const STEADY: Duration = Duration::from_secs(60);

/// The mount of one source of a continuous task.
#[derive(Debug)]
pub(super) struct MountChild {
    pub pid: Option<u32>,
    since: Instant,
    backoff: Duration,
    /// When to start it again (after a crash, or folders not there).
    pub restart_at: Option<Timestamp>,
}

impl MountChild {
    fn new() -> MountChild {
        MountChild {
            pid: None,
            since: Instant::now(),
            backoff: FIRST_BACKOFF,
            restart_at: None,
        }
    }

    /// Schedules the next start after a failure, with the backoff doubled after a short life.
    fn failed(&mut self) -> Duration {
        if self.since.elapsed() >= STEADY {
            self.backoff = FIRST_BACKOFF;
        }
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.restart_at = Timestamp::now()
            .checked_add(SignedDuration::try_from(wait).unwrap_or(SignedDuration::ZERO))
            .ok();
        wait
    }
}

impl Daemon {
    /// Starts (or starts again) the mounts of a continuous task that are not running.
    pub(super) fn start_mounts(&mut self, name: &str) {
        if self.stopping {
            return;
        }
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        let sources = slot.spec.sources.clone();
        for src in &sources {
            // A mount left by a killed child: abort and detach it before the checks below
            // look into the folder.
            if let Err(e) = registry::clean_stale(src) {
                warn(
                    name,
                    &format!("cleaning up the stale mount at {}: {e}", src.display()),
                );
            }
        }
        let planned = slot.spec.sync_specs(false, 1);
        slot.mounts.resize_with(sources.len(), MountChild::new);
        let planned = match planned {
            Ok(p) => p,
            Err(e) => {
                for m in slot.mounts.iter_mut().filter(|m| m.pid.is_none()) {
                    m.failed();
                }
                warn(name, &format!("not mounted: {e}; trying again later"));
                return;
            }
        };
        for (i, pair) in planned.iter().enumerate() {
            let m = &mut slot.mounts[i];
            if m.pid.is_some() {
                continue;
            }
            m.restart_at = None;
            let args = mount_args(name, &pair.spec, &slot.spec.options, pair.remote.as_ref());
            let kind = Kind::Mount { pair: i };
            match children::spawn(&self.opts.exe, &args, &task_log(name), name, kind, &self.tx) {
                Ok(pid) => {
                    m.pid = Some(pid);
                    m.since = Instant::now();
                    note(
                        name,
                        &format!("mount of {} started, pid {pid}", pair.spec.src.display()),
                    );
                }
                Err(e) => {
                    let wait = m.failed();
                    warn(
                        name,
                        &format!("could not start the mount: {e}; trying again in {wait:?}"),
                    );
                }
            }
        }
    }

    /// A mount child ended: started again after its backoff, unless the daemon stops or
    /// the task is no longer continuous.
    pub(super) fn mount_ended(&mut self, name: &str, pair: usize, pid: u32, ended: Ended) {
        let stopping = self.stopping;
        let Some(m) = self
            .slots
            .get_mut(name)
            .and_then(|s| s.mounts.get_mut(pair))
            .filter(|m| m.pid == Some(pid))
        else {
            note(name, &format!("mount (pid {pid}) ended: {ended}"));
            return;
        };
        m.pid = None;
        if stopping {
            note(name, &format!("mount (pid {pid}) stopped: {ended}"));
            return;
        }
        let wait = m.failed();
        warn(
            name,
            &format!("mount (pid {pid}) ended: {ended}; starting it again in {wait:?}"),
        );
    }

    /// Mounts whose restart time has come.
    pub(super) fn restart_due(&mut self, now: Timestamp) {
        let due: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, s)| s.spec.continuous)
            .filter(|(_, s)| {
                s.mounts.is_empty()
                    || s.mounts
                        .iter()
                        .any(|m| m.pid.is_none() && m.restart_at.is_some_and(|t| t <= now))
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            self.start_mounts(&name);
        }
    }

    /// The next mount restart.
    pub(super) fn next_restart(&self) -> Option<Timestamp> {
        self.slots
            .values()
            .filter(|s| s.spec.continuous)
            .flat_map(|s| s.mounts.iter())
            .filter(|m| m.pid.is_none())
            .filter_map(|m| m.restart_at)
            .min()
    }
}

/// `tandem mount SRC TGT --foreground` with the task's options, and its name and config
/// (the mount mails the task's addresses when its delete brake holds deletions).
fn mount_args(
    name: &str,
    spec: &SyncSpec,
    o: &TaskOptions,
    remote: Option<&tandem_remote::Connect>,
) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec![
        "--config".into(),
        super::good_config_path().into(),
        "mount".into(),
        spec.src.clone().into(),
        spec.tgt.clone().into(),
        "--foreground".into(),
        "--state-dir".into(),
        spec.state_dir.clone().into(),
        "--direction".into(),
        o.direction.to_string().into(),
        "--mode".into(),
        o.mode.to_string().into(),
        "--conflict".into(),
        o.conflict.to_string().into(),
        "--max-delete".into(),
        o.max_delete.to_string().into(),
        "--modify-window".into(),
        format_duration_ns(o.modify_window).into(),
        "--history-keep".into(),
        format_keep(o.retention.keep).into(),
        "--history-max".into(),
        o.retention.max_bytes.to_string().into(),
        "--history-versions".into(),
        o.retention.versions.to_string().into(),
        "--delete-brake".into(),
        format_brake(o.delete_brake).into(),
        "--task".into(),
        name.into(),
    ];
    if let Some(n) = o.max_delete_count {
        a.push(format!("--max-delete-count={n}").into());
    }
    for (flag, patterns) in [("--exclude=", &o.exclude), ("--include=", &o.include)] {
        for p in patterns {
            // One word: a pattern that starts with '-' is not taken for a flag.
            a.push(format!("{flag}{p}").into());
        }
    }
    // What the task keeps beyond content: a continuous task's mount keeps it too.
    for (on, flag) in [
        (o.fsync, "--fsync"),
        (o.update, "--update"),
        (o.owner, "--owner"),
        (o.numeric_ids, "--numeric-ids"),
        (o.xattrs, "--xattrs"),
        (o.acls, "--acls"),
        (o.hard_links, "--hard-links"),
    ] {
        if on {
            a.push(flag.into());
        }
    }
    // A remote target is reached as the task's runs reach it.
    if let Some(c) = remote {
        a.push(format!("--ssh={}", c.ssh.join(" ")).into());
        a.push(format!("--remote-tandem={}", c.remote_tandem).into());
        a.push(format!("--compress={}", c.compress.word()).into());
        if let Some(rate) = c.bwlimit {
            a.push(format!("--bwlimit={rate}B").into());
        }
    }
    a
}
