//! The daemon (issue 15): `tandem daemon` runs each task on its schedules as child
//! processes, one daemon per user, stops its runs cleanly on SIGTERM. Each test has its
//! own state home and config, and a real daemon process; waits are for a condition, never
//! a fixed time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::fixtures::{run_tandem_with_env, Out};
use crate::mount::wait_for;

/// A user's world: a config file, a state home, and folders to sync.
pub(crate) struct Home {
    pub tmp: tempfile::TempDir,
    pub config: PathBuf,
    pub state: PathBuf,
}

impl Home {
    pub fn new() -> Home {
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("config.toml");
        let state = tmp.path().join("state");
        Home { tmp, config, state }
    }

    pub fn p(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    pub fn dir(&self, rel: &str) -> PathBuf {
        let p = self.p(rel);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    fn env(&self) -> [(&'static str, &Path); 2] {
        [
            ("XDG_STATE_HOME", self.state.as_path()),
            ("TZ", Path::new("UTC")),
        ]
    }

    /// `tandem --config CONFIG ARGS`, checked for its exit code.
    pub fn tandem(&self, args: &[&str], code: i32) -> Out {
        let mut all = vec!["--config", self.config.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = run_tandem_with_env(&all, &self.env());
        assert_eq!(out.code, code, "tandem {args:?}:\n{}", out.all());
        out
    }

    /// A task syncing `src` into `tgt` (made here), with the schedules given.
    pub fn add_task(&self, name: &str, src: &str, tgt: &str, extra: &[&str]) {
        let (s, t) = (self.dir(src), self.dir(tgt));
        let mut args = vec![
            "task",
            "add",
            name,
            "--source",
            s.to_str().unwrap(),
            "--target",
            t.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        self.tandem(&args, 0);
    }

    /// `tandem daemon --foreground`, its standard error in `daemon.err`.
    pub fn daemon(&self) -> Daemon {
        let err = std::fs::File::create(self.p("daemon.err")).unwrap();
        let child = Command::new(crate::fixtures::bin())
            .arg("--config")
            .arg(&self.config)
            .args(["daemon", "--foreground"])
            .envs(self.env())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        let d = Daemon {
            child,
            err: self.p("daemon.err"),
        };
        let status = self.state.join("tandem/daemon.json");
        let pid = d.child.id();
        wait_for("the daemon's status file", Duration::from_secs(30), || {
            std::fs::read_to_string(&status).is_ok_and(|t| t.contains(&format!("\"pid\": {pid}")))
        });
        d
    }

    /// The daemon's log of a task's runs.
    pub fn task_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.state.join(format!("tandem/tasks/{name}/daemon.log")))
            .unwrap_or_default()
    }

    pub fn runs_started(&self, name: &str) -> usize {
        self.task_log(name).matches("run started").count()
    }

    pub fn runs_ended(&self, name: &str) -> usize {
        self.task_log(name).matches("run (pid").count()
    }
}

/// A daemon in the foreground; stopped with SIGTERM on drop.
pub(crate) struct Daemon {
    pub child: Child,
    err: PathBuf,
}

impl Daemon {
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then its exit code.
    pub fn stop(&mut self) -> i32 {
        signal(self.child.id(), rustix::process::Signal::TERM);
        let status = self.child.wait().unwrap();
        status.code().unwrap_or(-1)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            signal(self.child.id(), rustix::process::Signal::TERM);
            let _ = self.child.wait();
        }
    }
}

pub(crate) fn signal(pid: u32, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    let _ = rustix::process::kill_process(pid, sig);
}

#[test]
fn issue_15_the_daemon_runs_a_task_every_2s_and_stops_on_sigterm() {
    let h = Home::new();
    h.add_task("docs", "Docs", "backup", &["--schedule", "every 2s"]);
    std::fs::write(h.p("Docs/a.txt"), "one").unwrap();
    let mut d = h.daemon();
    // Never run: due at once.
    wait_for("a.txt synced", Duration::from_secs(30), || {
        h.p("backup/Docs/a.txt").exists()
    });
    std::fs::write(h.p("Docs/b.txt"), "two").unwrap();
    // Only the next scheduled run brings it.
    wait_for(
        "b.txt synced by the next run",
        Duration::from_secs(30),
        || h.p("backup/Docs/b.txt").exists(),
    );
    assert!(h.runs_started("docs") >= 2, "{}", h.task_log("docs"));
    assert!(
        h.task_log("docs").contains("run started (schedule)"),
        "{}",
        h.task_log("docs")
    );
    assert_eq!(d.stop(), 0, "{}", d.stderr());
    assert!(d.stderr().contains("daemon stopped"), "{}", d.stderr());
    assert!(
        !h.state.join("tandem/daemon.json").exists(),
        "a stopped daemon leaves no status behind"
    );
}

#[test]
fn issue_15_a_second_daemon_says_which_pid_holds_the_lock() {
    let h = Home::new();
    let d = h.daemon();
    let pid = d.pid().to_string();
    for args in [&["daemon"][..], &["daemon", "--foreground"][..]] {
        let out = h.tandem(args, 2);
        out.assert_stderr_has("a tandem daemon is already running (pid ");
        out.assert_stderr_has(&pid);
    }
}

#[test]
fn issue_15_the_daemon_starts_in_the_background_and_returns_once_up() {
    let h = Home::new();
    h.add_task("docs", "Docs", "backup", &["--schedule", "at-start"]);
    std::fs::write(h.p("Docs/a.txt"), "one").unwrap();
    let out = h.tandem(&["daemon"], 0);
    assert!(out.stdout.contains("daemon started (pid "), "{}", out.all());
    let status = std::fs::read_to_string(h.state.join("tandem/daemon.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    let pid = v["pid"].as_u64().unwrap() as u32;
    struct Kill(u32);
    impl Drop for Kill {
        fn drop(&mut self) {
            signal(self.0, rustix::process::Signal::TERM);
        }
    }
    let _kill = Kill(pid);
    wait_for("the at-start run", Duration::from_secs(30), || {
        h.p("backup/Docs/a.txt").exists()
    });
    assert!(h.task_log("docs").contains("run started (at-start)"));
    signal(pid, rustix::process::Signal::TERM);
    wait_for("the daemon gone", Duration::from_secs(30), || {
        !h.state.join("tandem/daemon.json").exists()
    });
}

#[test]
fn issue_15_a_run_missed_while_no_daemon_ran_runs_once_at_startup() {
    let h = Home::new();
    // A daily time one hour ago: passed today (or, just after midnight, yesterday).
    let secs = jiff::Timestamp::now().as_second() - 3600;
    let spec = format!("daily {:02}:{:02}", (secs / 3600) % 24, (secs / 60) % 60);
    h.add_task("docs", "Docs", "backup", &["--schedule", &spec]);
    h.tandem(&["run", "docs"], 0);
    // The last run two days ago: today's time was missed.
    let db = std::fs::read_dir(h.state.join("tandem"))
        .unwrap()
        .map(|e| e.unwrap().path().join("state.db"))
        .find(|p| p.is_file())
        .unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("UPDATE runs SET started_at = started_at - 2 * 86400", [])
        .unwrap();
    drop(conn);
    std::fs::write(h.p("Docs/late.txt"), "missed").unwrap();
    let _d = h.daemon();
    wait_for("the missed run", Duration::from_secs(30), || {
        h.p("backup/Docs/late.txt").exists()
    });
    wait_for("the run's end", Duration::from_secs(30), || {
        h.runs_ended("docs") == 1
    });
    assert_eq!(h.runs_started("docs"), 1, "{}", h.task_log("docs"));
}

#[test]
fn issue_15_a_task_never_runs_twice_at_once() {
    let h = Home::new();
    let trace = h.p("trace");
    let t = trace.to_str().unwrap();
    // Each run takes longer than the interval: every tick in between comes due during a
    // run, and makes one more run after it, never a second one alongside.
    let before = format!("echo start >> {t}; sleep 1.5");
    let after = format!("echo end >> {t}");
    h.add_task(
        "slow",
        "Docs",
        "backup",
        &[
            "--schedule",
            "every 1s",
            "--before",
            &before,
            "--after",
            &after,
        ],
    );
    let _d = h.daemon();
    let read = || std::fs::read_to_string(&trace).unwrap_or_default();
    wait_for("three runs", Duration::from_secs(60), || {
        read().matches("end").count() >= 3
    });
    let lines: Vec<String> = read().lines().map(String::from).collect();
    for (i, l) in lines.iter().enumerate() {
        let want = if i % 2 == 0 { "start" } else { "end" };
        assert_eq!(l, want, "runs overlapped: {lines:?}");
    }
}

/// Files in `dir`, all levels, tandem's own left out.
fn files_in(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.map(|e| e.unwrap())
        .filter(|e| e.file_name() != ".tandem")
        .map(|e| {
            if e.file_type().unwrap().is_dir() {
                files_in(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// The entries of every pair's baseline under the state home.
fn baseline_entries(state: &Path) -> i64 {
    std::fs::read_dir(state.join("tandem"))
        .unwrap()
        .map(|e| e.unwrap().path().join("state.db"))
        .filter(|p| p.is_file())
        .map(|db| {
            let conn = rusqlite::Connection::open(&db).unwrap();
            conn.query_row("SELECT count(*) FROM baseline", [], |r| r.get::<_, i64>(0))
                .unwrap()
        })
        .sum()
}

#[test]
fn issue_15_sigterm_during_a_run_commits_what_it_did_and_the_next_run_finishes() {
    let h = Home::new();
    h.add_task("many", "Docs", "backup", &["--schedule", "every 1h"]);
    const N: usize = 2_000;
    for d in 0..40 {
        let dir = h.dir(&format!("Docs/d{d}"));
        for i in 0..N / 40 {
            std::fs::write(dir.join(format!("f{i}")), format!("{d}/{i}")).unwrap();
        }
    }
    let mut d = h.daemon();
    let target = h.p("backup/Docs");
    wait_for("the run copying", Duration::from_secs(60), || {
        files_in(&target) > 0
    });
    assert_eq!(d.stop(), 0, "{}", d.stderr());
    let copied = files_in(&target);
    assert!(
        copied < N,
        "the run was not stopped: it copied all {copied}"
    );
    let log = h.task_log("many");
    assert!(log.contains("stopped on request"), "{log}");
    assert!(log.contains("(exit code 4)"), "{log}");
    // Committed: the baseline knows what was copied (the folders and files done).
    let known = baseline_entries(&h.state);
    assert!(known > 0, "nothing committed:\n{log}");
    assert!(
        known as usize >= copied,
        "{known} entries for {copied} files"
    );
    // The next run finishes, and nothing is lost.
    h.tandem(&["run", "many"], 0);
    assert_eq!(files_in(&target), N);
    assert_eq!(files_in(&h.p("Docs")), N);
    assert_eq!(
        std::fs::read_to_string(target.join("d39/f49")).unwrap(),
        "39/49"
    );
    let again = h.tandem(&["run", "many"], 0);
    assert!(again.stdout.contains("nothing to do"), "{}", again.all());
}

#[test]
fn issue_15_sigterm_kills_a_running_hook_with_its_children() {
    let h = Home::new();
    let child_pid = h.p("child.pid");
    let before = format!(
        "sleep 300 & echo $! > {}; wait",
        child_pid.to_str().unwrap()
    );
    h.add_task("hooked", "Docs", "backup", &["--before", &before]);
    let run = Command::new(crate::fixtures::bin())
        .arg("--config")
        .arg(&h.config)
        .args(["run", "hooked"])
        .envs(h.env())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the hook's child", Duration::from_secs(30), || {
        std::fs::read_to_string(&child_pid).is_ok_and(|t| t.ends_with('\n'))
    });
    let pid: u32 = std::fs::read_to_string(&child_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    signal(run.id(), rustix::process::Signal::TERM);
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("was still running when the run was asked to stop"),
        "{stderr}"
    );
    wait_for("the hook's child killed", Duration::from_secs(10), || {
        !alive(pid)
    });
    assert!(!h.p("backup/Docs").exists(), "the sync did not run");
}

/// Running, not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !matches!(
            s.rsplit_once(')')
                .and_then(|(_, r)| r.trim_start().chars().next()),
            Some('Z' | 'X')
        )
    })
}

/// The pids of a task's mounts, from the daemon's status file.
fn mount_pids(h: &Home, task: &str) -> Vec<u32> {
    let Ok(text) = std::fs::read_to_string(h.state.join("tandem/daemon.json")) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["name"] == task)
        .flat_map(|t| t["mounts"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p.as_u64().map(|p| p as u32))
        .collect()
}

/// Detaches whatever is still mounted at `p` when the test ends, however it ends.
pub(crate) struct Unmount(pub PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        // Not asked of the mount itself: a stale one would not answer.
        let listed = std::fs::read_to_string("/proc/self/mountinfo")
            .is_ok_and(|m| m.lines().any(|l| l.split(' ').nth(4) == self.0.to_str()));
        if listed {
            crate::mount::detach(&self.0);
        }
    }
}

#[test]
fn issue_15_a_continuous_task_is_mounted_and_restarted_after_kill_9() {
    if !crate::mount::fuse_available() {
        return;
    }
    let h = Home::new();
    h.add_task("live", "Docs", "backup", &["--continuous"]);
    let show = h.tandem(&["task", "show", "live", "--json"], 0);
    assert!(
        show.stdout.contains("\"continuous\":true"),
        "{}",
        show.stdout
    );
    let src = h.p("Docs");
    let _unmount = Unmount(src.clone());
    let mut d = h.daemon();
    wait_for("the mount", Duration::from_secs(60), || {
        mount_pids(&h, "live").len() == 1 && crate::mount::is_fuse(&src)
    });
    std::fs::write(src.join("one.txt"), "through the mount").unwrap();
    wait_for("one.txt replicated", Duration::from_secs(30), || {
        h.p("backup/Docs/one.txt").exists()
    });
    let first = mount_pids(&h, "live")[0];
    signal(first, rustix::process::Signal::KILL);
    wait_for("the mount restarted", Duration::from_secs(60), || {
        mount_pids(&h, "live").first().is_some_and(|p| *p != first)
            && crate::mount::is_fuse(&src)
            && std::fs::read_to_string(h.state.join("tandem/daemon.json")).is_ok()
    });
    let log = h.task_log("live");
    assert!(
        log.contains("killed by signal 9; starting it again in 1s"),
        "{log}"
    );
    // The new mount serves: a file written through it reaches the target.
    wait_for(
        "two.txt written through the new mount",
        Duration::from_secs(30),
        || std::fs::write(src.join("two.txt"), "after the restart").is_ok(),
    );
    wait_for("two.txt replicated", Duration::from_secs(30), || {
        std::fs::read_to_string(h.p("backup/Docs/two.txt")).is_ok_and(|t| t == "after the restart")
    });
    // `tandem status` shows the daemon and the mount it serves for the task.
    let json = |args: &[&str]| -> serde_json::Value {
        serde_json::from_str(&h.tandem(args, 0).stdout).unwrap()
    };
    let serving = mount_pids(&h, "live");
    let one = json(&["status", "live", "--json"]);
    assert_eq!(one["kind"], "continuous", "{one}");
    assert_eq!(one["mounts"], serde_json::json!(serving), "{one}");
    let all = json(&["status", "--json"]);
    assert_eq!(all["daemon"]["running"], true, "{all}");
    assert_eq!(all["daemon"]["pid"], d.pid(), "{all}");
    let human = h.tandem(&["status", "live"], 0).stdout;
    assert!(
        human.contains(&format!(
            "continuous: mounted by the daemon (pid {})",
            serving[0]
        )),
        "{human}"
    );
    // SIGTERM: the daemon unmounts it cleanly.
    assert_eq!(d.stop(), 0, "{}", d.stderr());
    assert!(
        !crate::mount::is_fuse(&src),
        "still mounted after the daemon stopped"
    );
    assert!(
        h.task_log("live").contains("stopped cleanly"),
        "{}",
        h.task_log("live")
    );
    // A daemon that has gone is shown as gone, whatever file it left.
    let all = json(&["status", "--json"]);
    assert_eq!(all["daemon"]["running"], false, "{all}");
    let human = h.tandem(&["status"], 0).stdout;
    assert!(human.contains("daemon:     not running"), "{human}");
    assert!(human.contains("continuous: not mounted now"), "{human}");
}

#[test]
fn issue_15_a_disk_mounted_at_an_on_appear_path_starts_a_run() {
    let h = Home::new();
    let usb = h.dir("usb");
    std::fs::write(h.dir("Docs").join("a.txt"), "to the disk").unwrap();
    let on_appear = format!("on-appear {}", usb.display());
    h.add_task("usb", "Docs", "usb", &["--schedule", &on_appear]);
    let _d = h.daemon();
    let Some(disk) = crate::fixtures::Tmpfs::mount_or_skip(&usb, "16m", "issue_15_on_appear")
    else {
        return;
    };
    wait_for("the run on the disk", Duration::from_secs(30), || {
        h.p("usb/Docs/a.txt").exists()
    });
    assert!(
        h.task_log("usb").contains("run started (on-appear)"),
        "{}",
        h.task_log("usb")
    );
    wait_for("the run's end", Duration::from_secs(30), || {
        h.runs_ended("usb") == 1
    });
    // The disk unplugged: nothing starts, and a run by hand is refused, the source kept.
    drop(disk);
    let out = h.tandem(&["run", "usb"], 2);
    assert!(out.stderr.contains("usb/Docs"), "{}", out.all());
    assert_eq!(
        std::fs::read_to_string(h.p("Docs/a.txt")).unwrap(),
        "to the disk"
    );
    assert_eq!(h.runs_started("usb"), 1, "{}", h.task_log("usb"));
}

#[test]
fn issue_15_a_plain_folder_appearing_starts_a_run() {
    let h = Home::new();
    std::fs::write(h.dir("Docs").join("a.txt"), "x").unwrap();
    let share = h.p("net/share");
    let on_appear = format!("on-appear {}", share.display());
    h.add_task("share", "Docs", "backup", &["--schedule", &on_appear]);
    let _d = h.daemon();
    // Two levels made: the watch moves down from the nearest folder there.
    std::fs::create_dir(h.p("net")).unwrap();
    std::fs::create_dir(&share).unwrap();
    wait_for("the run", Duration::from_secs(30), || {
        h.p("backup/Docs/a.txt").exists()
    });
    assert!(h.task_log("share").contains("appeared"));
}

/// The daemon's status file, parsed.
fn daemon_status(h: &Home) -> serde_json::Value {
    let text = std::fs::read_to_string(h.state.join("tandem/daemon.json")).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_default()
}

#[test]
fn issue_15_the_daemon_rereads_the_config_and_keeps_the_last_good_one() {
    let h = Home::new();
    h.add_task("first", "Docs", "backup", &["--schedule", "every 1h"]);
    let d = h.daemon();
    wait_for("the first run", Duration::from_secs(30), || {
        h.runs_ended("first") == 1
    });
    // A task added while the daemon runs is run on its schedule.
    h.add_task("second", "Photos", "backup", &["--schedule", "every 2s"]);
    std::fs::write(h.p("Photos/p.jpg"), "p").unwrap();
    wait_for("the new task's run", Duration::from_secs(30), || {
        h.p("backup/Photos/p.jpg").exists()
    });
    // A syntax error: said with its place, the tasks kept and still run.
    let good = std::fs::read_to_string(&h.config).unwrap();
    std::fs::write(&h.config, format!("{good}\n[task.broken\n")).unwrap();
    let lines = good.lines().count() + 2;
    wait_for("the error in the status", Duration::from_secs(30), || {
        daemon_status(&h)["config_error"].is_string()
    });
    let err = daemon_status(&h)["config_error"]
        .as_str()
        .unwrap()
        .to_string();
    let place = format!("{}:{lines}:", h.config.display());
    assert!(err.starts_with(&place), "{err} (expected {place})");
    assert_eq!(daemon_status(&h)["tasks"].as_array().unwrap().len(), 2);
    assert!(
        d.stderr().contains("keeping the last good config"),
        "{}",
        d.stderr()
    );
    std::fs::write(h.p("Photos/q.jpg"), "q").unwrap();
    wait_for(
        "a run with the last good config",
        Duration::from_secs(30),
        || h.p("backup/Photos/q.jpg").exists(),
    );
    // Fixed: the error is gone.
    std::fs::write(&h.config, &good).unwrap();
    wait_for("the error gone", Duration::from_secs(30), || {
        daemon_status(&h)["config_error"].is_null()
    });
}

#[test]
fn issue_15_the_daemon_tells_the_service_manager_ready_and_stopping() {
    let h = Home::new();
    let sock_path = h.p("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let err = std::fs::File::create(h.p("daemon.err")).unwrap();
    let mut child = Command::new(crate::fixtures::bin())
        .arg("--config")
        .arg(&h.config)
        .args(["daemon", "--foreground"])
        .envs(h.env())
        .env("NOTIFY_SOCKET", &sock_path)
        .stdin(Stdio::null())
        .stderr(err)
        .spawn()
        .unwrap();
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(std::str::from_utf8(&buf[..n]).unwrap().trim(), "READY=1");
    signal(child.id(), rustix::process::Signal::TERM);
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(std::str::from_utf8(&buf[..n]).unwrap().trim(), "STOPPING=1");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn issue_15_the_systemd_unit_runs_the_daemon_in_the_foreground_as_type_notify() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/systemd/tandem.service"),
    )
    .unwrap();
    let line = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in the unit"))
            .to_string()
    };
    assert_eq!(line("Type"), "notify");
    assert!(line("ExecStart").ends_with("tandem daemon --foreground"));
    assert_eq!(line("KillMode"), "mixed");
    if let Ok(out) = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/systemd/tandem.service"))
        .output()
    {
        // Where systemd is installed, it accepts the unit (a missing ExecStart binary
        // aside: tandem need not be installed where the tests run).
        let err = String::from_utf8_lossy(&out.stderr);
        let bad: Vec<&str> = err
            .lines()
            .filter(|l| !l.contains("/usr/local/bin/tandem") && !l.trim().is_empty())
            .collect();
        assert!(bad.is_empty(), "{err}");
    }
}

/// The paths the delete brake of the mount of `src` holds (`tandem held SRC --json`).
/// Deletes `names` in the mounted `src` with `rm`, then waits until the brake holds them all.
pub(crate) fn rm_until_held(h: &Home, src: &Path, names: &[String]) {
    let st = Command::new("rm")
        .args(names.iter().map(|n| src.join(n)))
        .status()
        .unwrap();
    assert!(st.success());
    wait_for("the deletions held", Duration::from_secs(30), || {
        held_paths(h, src) == names.len()
    });
}

pub(crate) fn held_paths(h: &Home, src: &Path) -> usize {
    let args = [
        "--config",
        h.config.to_str().unwrap(),
        "held",
        src.to_str().unwrap(),
        "--json",
    ];
    let out = run_tandem_with_env(args, &h.env());
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_default();
    v["held"].as_array().map_or(0, Vec::len)
}

#[test]
fn issue_18_a_continuous_task_mounts_with_its_delete_brake() {
    if !crate::mount::fuse_available() {
        return;
    }
    let h = Home::new();
    let src = h.dir("Docs");
    let names: Vec<String> = (0..10).map(|i| format!("f{i}")).collect();
    for n in &names {
        std::fs::write(src.join(n), "x").unwrap();
    }
    // Far under the default brake (1000 per minute), over the task's.
    h.add_task(
        "live",
        "Docs",
        "backup",
        &["--continuous", "--delete-brake", "5/60s"],
    );
    let _unmount = Unmount(src.clone());
    let mut d = h.daemon();
    wait_for(
        "the mount and its first sync",
        Duration::from_secs(60),
        || crate::mount::is_fuse(&src) && h.p("backup/Docs/f9").exists(),
    );
    rm_until_held(&h, &src, &names);
    std::thread::sleep(Duration::from_secs(2));
    for n in &names {
        assert!(h.p(&format!("backup/Docs/{n}")).exists(), "{n} deleted");
    }
    assert_eq!(d.stop(), 0, "{}", d.stderr());
}

/// `tandem status NAME` words each kind of hold as `tandem held` does: deletions made
/// through the mount are not replayed to the target, those made in the target are not
/// applied to the source.
#[test]
fn issue_18_task_status_words_holds_by_the_side_they_were_made_on() {
    if !crate::mount::fuse_available() {
        return;
    }
    let h = Home::new();
    let src = h.dir("Docs");
    let names: Vec<String> = (0..10).map(|i| format!("f{i}")).collect();
    for n in &names {
        std::fs::write(src.join(n), "x").unwrap();
    }
    std::fs::create_dir(src.join("sub")).unwrap();
    for i in 0..10 {
        std::fs::write(src.join(format!("sub/g{i}")), "y").unwrap();
    }
    h.add_task(
        "live",
        "Docs",
        "backup",
        &["--continuous", "--delete-brake", "5/60s"],
    );
    let _unmount = Unmount(src.clone());
    let mut d = h.daemon();
    wait_for(
        "the mount and its first sync",
        Duration::from_secs(60),
        || {
            crate::mount::is_fuse(&src)
                && h.p("backup/Docs/f9").exists()
                && h.p("backup/Docs/sub/g9").exists()
        },
    );
    rm_until_held(&h, &src, &names);
    std::fs::remove_dir_all(h.p("backup/Docs/sub")).unwrap();
    wait_for(
        "the target's deletions held",
        Duration::from_secs(30),
        || held_paths(&h, &src) == names.len() + 11,
    );
    let human = h.tandem(&["status", "live"], 1).stdout;
    let tgt = h.p("backup/Docs");
    for line in [
        format!(
            "  held:       10 deletions not replayed to {} (see `tandem held ",
            tgt.display()
        ),
        format!(
            "  held:       11 deletions in the target {}, not applied to the source (see ",
            tgt.display()
        ),
    ] {
        assert!(human.contains(&line), "{line:?} not in:\n{human}");
    }
    let task: serde_json::Value =
        serde_json::from_str(&h.tandem(&["status", "live", "--json"], 1).stdout).unwrap();
    assert_eq!(task["pairs"][0]["held_deletions"], 21, "{task}");
    assert_eq!(task["pairs"][0]["held_in_target"], 11, "{task}");
    assert_eq!(d.stop(), 0, "{}", d.stderr());
}

/// A continuous task's mount keeps what the task keeps: its extended attributes and hard
/// links reach the target as `tandem run` would carry them.
#[test]
fn issue_19_a_continuous_task_mounts_with_its_metadata_options() {
    if !crate::mount::fuse_available() {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let h = Home::new();
    let src = h.dir("Docs");
    std::fs::write(src.join("a"), "shared").unwrap();
    std::fs::hard_link(src.join("a"), src.join("b")).unwrap();
    crate::xattrs::set_xattr(&src.join("a"), "user.colour", b"blue");
    h.add_task(
        "live",
        "Docs",
        "backup",
        &["--continuous", "--xattrs", "--hard-links"],
    );
    let _unmount = Unmount(src.clone());
    let mut d = h.daemon();
    wait_for(
        "the mount and its first sync",
        Duration::from_secs(60),
        || crate::mount::is_fuse(&src) && h.p("backup/Docs/b").exists(),
    );
    let (a, b) = (h.p("backup/Docs/a"), h.p("backup/Docs/b"));
    assert_eq!(
        crate::xattrs::xattr(&a, "user.colour").as_deref(),
        Some(&b"blue"[..]),
        "the attribute did not reach the target"
    );
    assert_eq!(
        std::fs::metadata(&a).unwrap().ino(),
        std::fs::metadata(&b).unwrap().ino(),
        "the two names are two files on the target"
    );
    assert_eq!(d.stop(), 0, "{}", d.stderr());
}
