//! A task's hooks and priority (issue 15): the environment `--before` and `--after` see,
//! a failing `--before` skipping the sync, a hanging hook killed with its children at its
//! timeout, a hook that names no program refused when saved, and the priority of the run
//! read back from `/proc` by its own hook (a hook inherits the run's nice value and I/O
//! class).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fixtures::write_file;
use crate::tasks::{last_json, Tasks};

/// The variables a hook wrote with `env -0 > FILE`, those starting with `TANDEM_`.
fn tandem_env(t: &Tasks, file: &str) -> BTreeMap<String, String> {
    let raw = std::fs::read(t.p(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    raw.split(|b| *b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok()?.split_once('='))
        .filter(|(k, _)| k.starts_with("TANDEM_"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn env_of(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[test]
fn issue_15_hooks_see_the_task_its_folders_and_the_result() {
    let t = Tasks::new(&["Photos", "Docs", "disk", "out"]);
    write_file(&t.p("Photos/p"), b"p");
    for f in ["d", "e", "g"] {
        write_file(&t.p(&format!("Docs/{f}")), b"dd");
    }
    let before = format!("env -0 > {}", t.s("out/before.env"));
    let after = format!(
        "env -0 > {out}/after.env; cp \"$TANDEM_SUMMARY\" {out}/summary.json",
        out = t.s("out")
    );
    t.ok(
        &[
            "task", "add", "x", "--source", "@Photos", "--source", "@Docs", "--target", "@disk",
            "--before", &before, "--after", &after,
        ],
        0,
    );
    let shown = t.json(&["task", "show", "x", "--json"]);
    assert_eq!(shown["before"], before.as_str());
    assert_eq!(shown["after"], after.as_str());
    assert_eq!(shown["hook_timeout"], "10m");
    t.ok(&["run", "x"], 0);

    let common = [
        ("TANDEM_TASK", "x".to_string()),
        (
            "TANDEM_SOURCES",
            format!("{}\n{}", t.s("Photos"), t.s("Docs")),
        ),
        ("TANDEM_TARGET", t.s("disk")),
        ("TANDEM_TRIGGER", "manual".to_string()),
    ];
    assert_eq!(tandem_env(&t, "out/before.env"), env_of(&common));
    let summary_path = t.p("state/tandem/tasks/x/last-run.json");
    let mut want = common.to_vec();
    want.extend([
        ("TANDEM_RESULT", "ok".to_string()),
        ("TANDEM_EXIT_CODE", "0".to_string()),
        ("TANDEM_COPIED", "4".to_string()),
        ("TANDEM_DELETED", "0".to_string()),
        ("TANDEM_CONFLICTS", "0".to_string()),
        ("TANDEM_ERRORS", "0".to_string()),
        (
            "TANDEM_SUMMARY",
            summary_path.to_string_lossy().into_owned(),
        ),
    ]);
    assert_eq!(tandem_env(&t, "out/after.env"), env_of(&want));
    let summary: Value =
        serde_json::from_slice(&std::fs::read(t.p("out/summary.json")).unwrap()).unwrap();
    assert_eq!(summary["task"], "x");
    assert_eq!(summary["result"], "ok");
    assert_eq!(summary["trigger"], "manual");
    assert_eq!(summary["totals"]["copied"], 4);
    assert_eq!(summary["pairs"][1]["target"], t.s("disk/Docs"));
    assert!(summary["before"]["ok"].as_bool().unwrap(), "{summary}");

    // A conflict and a deletion: the after hook is told both.
    write_file(&t.p("Photos/p"), b"source side");
    write_file(&t.p("disk/Photos/p"), b"target side");
    std::fs::remove_file(t.p("Docs/d")).unwrap();
    let out = t.ok(&["run", "x", "--json"], 1);
    let env = tandem_env(&t, "out/after.env");
    assert_eq!(env["TANDEM_RESULT"], "conflicts");
    assert_eq!(env["TANDEM_EXIT_CODE"], "1");
    assert_eq!(env["TANDEM_CONFLICTS"], "1");
    assert_eq!(env["TANDEM_DELETED"], "1");
    assert_eq!(env["TANDEM_ERRORS"], "0");
    let r = last_json(&out);
    assert_eq!(r["result"], "conflicts");
    assert!(r["after"]["ok"].as_bool().unwrap(), "{r}");
    let summary: Value = serde_json::from_slice(&std::fs::read(&summary_path).unwrap()).unwrap();
    assert_eq!(summary["totals"]["conflicts"], 1);
    assert_eq!(summary["pairs"][0]["conflicts"][0]["path"], "p");
}

#[test]
fn issue_15_a_failing_before_skips_the_sync_and_after_still_runs() {
    let t = Tasks::new(&["src", "disk", "out"]);
    write_file(&t.p("src/f"), b"f");
    let after = format!("env -0 > {}", t.s("out/after.env"));
    t.ok(
        &[
            "task",
            "add",
            "x",
            "--source",
            "@src",
            "--target",
            "@disk",
            "--before",
            "echo checking the disk; exit 3",
            "--after",
            &after,
        ],
        0,
    );
    // A dry run runs no hook.
    t.ok(&["run", "x", "--dry-run"], 2);
    assert!(
        !t.p("out/after.env").exists(),
        "a dry run ran the after hook"
    );

    let out = t.ok(&["run", "x"], 2);
    assert!(
        out.stderr.contains("the before hook exited with 3"),
        "{}",
        out.all()
    );
    assert!(out.stdout.contains("the sync was skipped"), "{}", out.all());
    assert!(
        out.stderr.contains("checking the disk"),
        "the hook's output goes to stderr: {}",
        out.all()
    );
    assert!(!t.p("disk/src").exists(), "the sync ran");
    let env = tandem_env(&t, "out/after.env");
    assert_eq!(env["TANDEM_RESULT"], "skipped");
    assert_eq!(env["TANDEM_EXIT_CODE"], "2");
    assert_eq!(env["TANDEM_COPIED"], "0");

    let out = t.ok(&["run", "x", "--json"], 2);
    let r = last_json(&out);
    assert_eq!(r["result"], "skipped");
    assert_eq!(r["exit_code"], 2);
    assert_eq!(r["before"]["ok"], false);
    assert_eq!(r["pairs"].as_array().unwrap().len(), 0);

    // Without the hook, the task syncs.
    t.ok(&["task", "edit", "x", "--before", ""], 0);
    assert!(!t.config_text().contains("before"), "{}", t.config_text());
    t.ok(&["run", "x"], 0);
    assert_eq!(std::fs::read(t.p("disk/src/f")).unwrap(), b"f");
    assert_eq!(tandem_env(&t, "out/after.env")["TANDEM_RESULT"], "ok");
}

/// Kills the processes a failed test left running.
struct KillOnDrop(Vec<String>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let alive: Vec<&String> = self.0.iter().filter(|p| !gone(p)).collect();
        if !alive.is_empty() {
            let _ = std::process::Command::new("kill").args(alive).status();
        }
    }
}

/// Whether a process is gone (or a zombie left for its new parent to reap).
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

#[test]
fn issue_15_a_hanging_hook_is_killed_with_its_children_at_its_timeout() {
    let t = Tasks::new(&["src", "disk", "out"]);
    write_file(&t.p("src/f"), b"f");
    let pids = t.s("out/pids");
    // The sleeps' output away from the run's stderr: were they left running, the test
    // would fail at once instead of waiting for them (they are killed when it ends).
    let before = format!(
        "sleep 1000 >/dev/null 2>&1 & echo $! >> {pids}; \
         sleep 1000 >/dev/null 2>&1 & echo $! >> {pids}; wait"
    );
    let after = format!("env -0 > {}", t.s("out/after.env"));
    t.ok(
        &[
            "task",
            "add",
            "x",
            "--source",
            "@src",
            "--target",
            "@disk",
            "--before",
            &before,
            "--after",
            &after,
            "--hook-timeout",
            "1s",
        ],
        0,
    );
    let started = Instant::now();
    let out = t.ok(&["run", "x"], 2);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        out.stderr
            .contains("was still running after 1s: it was killed"),
        "{}",
        out.all()
    );
    assert!(!t.p("disk/src").exists(), "the sync ran");
    assert_eq!(tandem_env(&t, "out/after.env")["TANDEM_RESULT"], "skipped");
    let pids = std::fs::read_to_string(t.p("out/pids")).unwrap();
    let pids: Vec<&str> = pids.split_whitespace().collect();
    let _cleanup = KillOnDrop(pids.iter().map(|p| p.to_string()).collect());
    assert_eq!(pids.len(), 2, "{pids:?}");
    // SIGKILL is delivered at once, the reaping by init may lag a little.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pids.iter().all(|p| gone(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for p in &pids {
        assert!(gone(p), "the hook's child {p} is still running");
    }
}

#[test]
fn issue_15_a_hook_that_names_no_program_is_refused_and_changes_nothing() {
    let t = Tasks::new(&["src", "disk"]);
    write_file(&t.p("not-executable.sh"), b"#!/bin/sh\n");
    let add = |hook: &str, cmd: &str| {
        t.tandem(&[
            "task", "add", "x", "--source", "@src", "--target", "@disk", hook, cmd,
        ])
    };
    let cases = [
        (
            "--before",
            "/no/such/program --now".to_string(),
            "/no/such/program is not an executable file",
        ),
        (
            "--before",
            format!("{} arg", t.s("not-executable.sh")),
            "not-executable.sh is not an executable file",
        ),
        (
            "--after",
            "no-such-program-15 x".to_string(),
            "no-such-program-15 is not a shell builtin, nor an executable file on PATH",
        ),
    ];
    for (hook, cmd, message) in &cases {
        let out = add(hook, cmd);
        assert_eq!(out.code, 2, "{hook} {cmd}: {}", out.all());
        assert!(out.stderr.contains(message), "{hook} {cmd}: {}", out.all());
        assert!(
            out.stderr.contains(&format!("task x, {}", &hook[2..])),
            "names the key: {}",
            out.all()
        );
        assert!(!t.config.exists(), "{hook} {cmd}: the config was written");
    }
    // Builtins, assignments and programs on PATH are fine.
    t.ok(
        &[
            "task",
            "add",
            "x",
            "--source",
            "@src",
            "--target",
            "@disk",
            "--before",
            "test -d /",
            "--after",
            "LC_ALL=C sh -c true",
        ],
        0,
    );
    let before = t.config_text();
    let out = t.tandem(&["task", "edit", "x", "--after", "/no/such/program"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert_eq!(t.config_text(), before, "a refused edit changed the config");
}

/// The nice value (field 19) of a `/proc/PID/stat` line.
fn nice_of(stat: &str) -> i32 {
    let (_, rest) = stat.rsplit_once(") ").unwrap();
    rest.split_whitespace().nth(16).unwrap().parse().unwrap()
}

#[test]
fn issue_15_priority_is_set_for_the_whole_run_and_read_back_from_proc() {
    let t = Tasks::new(&["src", "disk", "out"]);
    write_file(&t.p("src/f"), b"f");
    // The hook reads its own priority and its parent's, the run itself.
    let after = format!(
        "cat /proc/$$/stat > {o}/hook.stat; cat /proc/$PPID/stat > {o}/run.stat; \
         ionice -p $$ > {o}/hook.io; ionice -p $PPID > {o}/run.io",
        o = t.s("out")
    );
    t.ok(
        &[
            "task",
            "add",
            "x",
            "--source",
            "@src",
            "--target",
            "@disk",
            "--priority",
            "low",
            "--after",
            &after,
        ],
        0,
    );
    assert!(t.config_text().contains("priority = \"low\""));
    let read = |f: &str| std::fs::read_to_string(t.p(f)).unwrap();
    t.ok(&["run", "x"], 0);
    assert!(
        read("out/run.stat").contains("(tandem)"),
        "{}",
        read("out/run.stat")
    );
    for who in ["hook", "run"] {
        assert_eq!(nice_of(&read(&format!("out/{who}.stat"))), 10, "{who}");
        assert_eq!(
            read(&format!("out/{who}.io")).trim(),
            "best-effort: prio 7",
            "{who}"
        );
    }

    t.ok(&["task", "edit", "x", "--priority", "idle"], 0);
    t.ok(&["run", "x"], 0);
    for who in ["hook", "run"] {
        assert_eq!(nice_of(&read(&format!("out/{who}.stat"))), 19, "{who}");
        assert_eq!(read(&format!("out/{who}.io")).trim(), "idle", "{who}");
    }

    // normal changes nothing: the test's own nice value and I/O class are inherited.
    t.ok(&["task", "edit", "x", "--priority", "normal"], 0);
    t.ok(&["run", "x"], 0);
    let ours = nice_of(&std::fs::read_to_string("/proc/self/stat").unwrap());
    assert_eq!(nice_of(&read("out/run.stat")), ours);
}
