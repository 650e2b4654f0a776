//! `tandem status` and `tandem log` for tasks (issue 15): the run history after real runs
//! (ok, with a conflict, failed, skipped), checked field by field in JSON; a run killed
//! half-way shown as interrupted; `status NAME --follow` from another process while a run
//! goes on; `status SRC` for a plain pair without its target.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::Value;

use crate::fixtures::{bin, write_file};
use crate::tasks::Tasks;

/// `tandem --config CONFIG ARGS...` started in the background, with the test's state home.
fn spawn(t: &Tasks, args: &[&str], stdout: Stdio) -> Child {
    Command::new(bin())
        .arg("--config")
        .arg(&t.config)
        .args(args)
        .env("XDG_STATE_HOME", t.p("state"))
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn runs(t: &Tasks, args: &[&str]) -> Vec<Value> {
    let v = t.json(args);
    v["runs"].as_array().unwrap().clone()
}

fn time(v: &Value) -> Timestamp {
    v.as_str()
        .unwrap_or_else(|| panic!("not a time: {v}"))
        .parse()
        .unwrap_or_else(|e| panic!("{v}: {e}"))
}

/// Waits until `done` holds, for at most `secs` seconds.
fn wait_for(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A row's fields that do not depend on the clock, and its times checked for sense.
#[track_caller]
fn check_row(r: &Value, task: &str, result: &str, code: i64, counts: [u64; 4]) {
    assert_eq!(r["task"], task, "{r}");
    assert_eq!(r["trigger"], "manual", "{r}");
    assert_eq!(r["result"], result, "{r}");
    assert_eq!(r["exit_code"], code, "{r}");
    let got = ["copied", "deleted", "conflicts", "errors"].map(|k| r[k].as_u64().unwrap());
    assert_eq!(got, counts, "copied, deleted, conflicts, errors: {r}");
    assert!(r["pid"].as_u64().unwrap() > 0, "{r}");
    let (started, ended) = (time(&r["started"]), time(&r["ended"]));
    assert!(started <= ended && ended <= Timestamp::now(), "{r}");
    let took = ended.duration_since(started).as_secs_f64();
    assert!(
        (r["duration_seconds"].as_f64().unwrap() - took).abs() < 0.01,
        "{r}"
    );
}

#[test]
fn issue_15_status_and_log_json_after_ok_conflict_failed_and_skipped_runs() {
    let t = Tasks::new(&["docs", "gone", "keep", "disk"]);
    write_file(&t.p("docs/a"), b"one");
    write_file(&t.p("keep/k"), b"k");
    for args in [
        &["--source", "@docs", "--conflict", "flag"][..],
        &["--source", "@gone"][..],
        &["--source", "@keep", "--before", "echo no disk; exit 3"][..],
    ] {
        let name = &args[1][1..];
        let mut v = vec!["task", "add", name, "--target", "@disk", "--comment", "c"];
        v.extend(args);
        t.ok(&v, 0);
    }
    t.ok(&["run", "docs"], 0);
    write_file(&t.p("docs/a"), b"two, from the source");
    write_file(&t.p("disk/docs/a"), b"three, from the target");
    t.ok(&["run", "docs"], 1);
    std::fs::remove_dir(t.p("gone")).unwrap();
    t.ok(&["run", "gone"], 2)
        .assert_stderr_has("does not exist");
    t.ok(&["run", "keep"], 2);

    let log = runs(&t, &["log", "--json"]);
    assert_eq!(log.len(), 4, "{log:?}");
    check_row(&log[0], "keep", "skipped", 2, [0, 0, 0, 0]);
    assert!(
        log[0]["error"].as_str().unwrap().contains("exit"),
        "{}",
        log[0]
    );
    check_row(&log[1], "gone", "failed", 2, [0, 0, 0, 1]);
    assert!(log[1]["error"].as_str().unwrap().contains("does not exist"));
    check_row(&log[2], "docs", "conflicts", 1, [0, 0, 1, 0]);
    assert_eq!(log[2]["error"], Value::Null);
    check_row(&log[3], "docs", "ok", 0, [1, 0, 0, 0]);
    assert_eq!(log[3]["bytes"], 3);
    let ids: Vec<i64> = log.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let docs = runs(&t, &["log", "docs", "--json"]);
    assert_eq!(docs, log[2..].to_vec(), "one task's runs");
    let human = t.ok(&["log"], 0).stdout;
    assert_eq!(human.lines().count(), 4, "{human}");
    assert!(human.lines().next().unwrap().contains("keep"), "{human}");
    t.ok(&["log", "nosuch"], 2)
        .assert_stderr_has("no task named nosuch");

    // What the mailer and the daemon leave, shown as they left it.
    let when = "2026-12-03T02:01:00Z";
    let email = format!(r#"{{"at": "{when}", "error": "535 auth failed", "to": ["me@x.org"]}}"#);
    std::fs::write(t.p("state/tandem/tasks/docs/email.json"), email).unwrap();
    // A daemon file left by a process that is gone says nothing...
    let dead = {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        c.wait().unwrap();
        c.id()
    };
    let daemon = |pid: u32| {
        let text = format!(r#"{{"pid": {pid}, "config_error": "config.toml:3:1: bad"}}"#);
        std::fs::write(t.p("state/tandem/daemon.json"), text).unwrap();
    };
    daemon(dead);
    let all: Value = serde_json::from_str(&t.ok(&["status", "--json"], 1).stdout).unwrap();
    assert_eq!(all["daemon"]["running"], false, "{all}");
    assert_eq!(all["daemon"]["config_error"], Value::Null, "{all}");
    // ...one by a live process is shown (this test's own pid stands for the daemon).
    daemon(std::process::id());
    // A plain pair besides the tasks.
    t.ok(&["sync", "@keep", "@disk/plain"], 0);

    let all = t.ok(&["status", "--json"], 1).stdout;
    let all: Value = serde_json::from_str(&all).unwrap();
    assert_eq!(all["daemon"]["config_error"], "config.toml:3:1: bad");
    assert_eq!(all["daemon"]["running"], true, "{all}");
    assert_eq!(all["daemon"]["pid"], std::process::id(), "{all}");
    assert_eq!(all["config_error"], Value::Null);
    let tasks = all["tasks"].as_array().unwrap();
    let names: Vec<&str> = tasks.iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["docs", "gone", "keep"]);
    let pairs = all["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 1, "only the plain pair: {pairs:?}");
    assert_eq!(pairs[0]["target"], t.s("disk/plain"));

    let docs = &tasks[0];
    assert_eq!(docs["comment"], "c");
    assert_eq!(docs["kind"], "manual");
    assert_eq!(docs["schedules"], serde_json::json!([]));
    assert_eq!(docs["next_run"], Value::Null);
    assert_eq!(docs["last_run"], log[2]);
    assert_eq!(docs["running"], Value::Null);
    assert_eq!(docs["open_conflicts"], 1);
    assert_eq!(docs["pairs"][0]["source"], t.s("docs"));
    assert_eq!(docs["pairs"][0]["target"], t.s("disk/docs"));
    assert_eq!(docs["pairs"][0]["open_conflicts"], 1);
    assert_eq!(
        docs["last_error"],
        Value::Null,
        "conflicts are not an error"
    );
    let mail = &docs["email_failure"];
    assert_eq!(time(&mail["at"]), when.parse::<Timestamp>().unwrap());
    assert_eq!(mail["error"], "535 auth failed");
    assert_eq!(mail["to"], serde_json::json!(["me@x.org"]));

    let gone = &tasks[1];
    assert_eq!(gone["last_run"]["result"], "failed");
    assert_eq!(gone["last_error"]["result"], "failed");
    assert_eq!(gone["last_error"]["run_id"], log[1]["id"]);
    assert!(gone["last_error"]["message"]
        .as_str()
        .unwrap()
        .contains("does not exist"));
    assert_eq!(gone["email_failure"], Value::Null);
    let keep = &tasks[2];
    assert_eq!(keep["last_error"]["result"], "skipped");
    assert_eq!(keep["open_conflicts"], 0);

    let one = t.ok(&["status", "docs", "--json"], 1).stdout;
    let one: Value = serde_json::from_str(&one).unwrap();
    assert_eq!(&one, docs, "one task's status is its entry in the list");
    let human = t.ok(&["status"], 1).stdout;
    for want in [
        "task docs: c",
        "1 open",
        "last error:",
        "does not exist",
        "not sent",
        "daemon:",
    ] {
        assert!(human.contains(want), "{want:?} in:\n{human}");
    }
}

#[test]
fn issue_15_a_run_killed_half_way_shows_as_interrupted() {
    let t = Tasks::new(&["src", "disk"]);
    write_file(&t.p("src/f"), b"f");
    t.ok(
        &[
            "task", "add", "k", "--source", "@src", "--target", "@disk", "--before", "sleep 3",
        ],
        0,
    );
    let mut run = spawn(&t, &["run", "k"], Stdio::null());
    let pid = run.id() as u64;
    wait_for(20, "the run's row", || {
        runs(&t, &["log", "k", "--json"]).len() == 1
    });
    let row = &runs(&t, &["log", "k", "--json"])[0];
    assert_eq!(
        (row["result"].as_str(), row["pid"].as_u64()),
        (Some("running"), Some(pid))
    );
    assert_eq!(row["ended"], Value::Null);
    let status = t.json(&["status", "k", "--json"]);
    assert_eq!(status["running"]["id"], row["id"]);
    assert_eq!(status["running"]["progress"]["phase"], "starting");
    assert_eq!(status["last_run"], Value::Null);

    run.kill().unwrap();
    run.wait().unwrap();
    let row = &runs(&t, &["log", "k", "--json"])[0];
    assert_eq!(row["result"], "interrupted", "{row}");
    assert_eq!(
        (&row["ended"], &row["exit_code"]),
        (&Value::Null, &Value::Null)
    );
    let status = t.ok(&["status", "k", "--json"], 1).stdout;
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["running"], Value::Null);
    assert_eq!(status["last_run"]["result"], "interrupted");
    assert_eq!(status["last_error"]["result"], "interrupted");
    let human = t.ok(&["status", "k"], 1).stdout;
    assert!(human.contains("interrupted (process"), "{human}");
    let follow = t.ok(&["status", "k", "--follow"], 0).stdout;
    assert!(follow.contains("task k is not running"), "{follow}");
}

#[test]
fn issue_15_a_task_never_runs_twice_at_once() {
    let t = Tasks::new(&["src", "disk"]);
    write_file(&t.p("src/f"), b"f");
    t.ok(
        &[
            "task", "add", "k", "--source", "@src", "--target", "@disk", "--before", "sleep 3",
        ],
        0,
    );
    let mut first = spawn(&t, &["run", "k"], Stdio::null());
    let pid = first.id() as u64;
    wait_for(20, "the first run's row", || {
        runs(&t, &["log", "k", "--json"]).len() == 1
    });
    let second = t.ok(&["run", "k"], 2);
    second.assert_stderr_has(&format!("task k is already running (pid {pid})"));
    let status = t.json(&["status", "k", "--json"]);
    assert_eq!(
        status["running"]["pid"].as_u64(),
        Some(pid),
        "the refused run took over the live progress: {status}"
    );
    assert_eq!(
        runs(&t, &["log", "k", "--json"]).len(),
        1,
        "the refused run was recorded"
    );
    assert!(first.wait().unwrap().success());
    assert_eq!(std::fs::read(t.p("disk/src/f")).unwrap(), b"f");
    // Once the first has ended, the task runs again.
    t.ok(&["run", "k"], 0);
}

#[test]
fn issue_15_follow_streams_a_run_from_another_process_until_it_ends() {
    const FILES: usize = 2000;
    let t = Tasks::new(&["many", "disk"]);
    for i in 0..FILES {
        write_file(&t.p(&format!("many/f{i:04}")), b"some bytes");
    }
    t.ok(
        &[
            "task", "add", "f", "--source", "@many", "--target", "@disk", "--before", "sleep 1",
        ],
        0,
    );
    let mut run = spawn(&t, &["run", "f"], Stdio::null());
    wait_for(20, "the run's row", || {
        !runs(&t, &["log", "f", "--json"]).is_empty()
    });
    let mut follow = spawn(
        &t,
        &["status", "f", "--follow", "-v", "--json"],
        Stdio::piped(),
    );
    let mut out = String::new();
    follow
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let code = follow.wait().unwrap().code();
    assert!(run.wait().unwrap().success());
    assert_eq!(code, Some(0), "{out}");

    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |e: &'static str| lines.iter().filter(move |l| l["event"] == e);
    assert_eq!(lines[0]["event"], "started", "{out}");
    let last = lines.last().unwrap();
    assert_eq!(
        (&last["event"], &last["result"]),
        (&"ended".into(), &"ok".into())
    );
    assert_eq!(last["copied"], FILES);
    let progress: Vec<&Value> = of("progress").collect();
    let applying = progress
        .iter()
        .filter(|p| p["changes_total"] == FILES)
        .count();
    assert!(applying >= 1, "the plan's size seen: {progress:?}");
    let end = progress.last().unwrap();
    assert_eq!(
        (&end["phase"], &end["changes_done"]),
        (&"done".into(), &FILES.into())
    );
    assert_eq!(end["bytes_done"], FILES * 10);
    let done: std::collections::BTreeSet<&str> =
        of("done").map(|d| d["path"].as_str().unwrap()).collect();
    assert_eq!(done.len(), FILES, "each file, once");
    assert!(done.contains("f1999"));
}

#[test]
fn issue_15_status_src_finds_a_plain_pair_without_its_target() {
    let t = Tasks::new(&["a", "b", "c"]);
    write_file(&t.p("a/x"), b"x");
    t.ok(&["sync", "@a", "@b"], 0);
    let one = t.json(&["status", "@a", "--json"]);
    assert_eq!(one["source"], t.s("a"));
    assert_eq!(one["target"], t.s("b"));
    assert_eq!(one["synced_entries"], 1);
    t.ok(&["sync", "@a", "@c"], 0);
    let out = t.ok(&["status", "@a"], 2);
    out.assert_stderr_has("is synced with several targets; name one");
    out.assert_stderr_has(&t.s("b"));
    out.assert_stderr_has(&t.s("c"));
    t.ok(&["status", "@a", "@c", "--json"], 0);
    t.ok(&["status", "@b"], 2)
        .assert_stderr_has("has no known pair; name the target too");
    t.ok(&["status", "@a", "--follow"], 2)
        .assert_stderr_has("--follow follows a task's run");
}

#[test]
fn issue_15_a_renamed_task_keeps_its_runs() {
    let t = Tasks::new(&["src", "disk"]);
    write_file(&t.p("src/f"), b"f");
    t.ok(
        &[
            "task", "add", "old", "--source", "@src", "--target", "@disk",
        ],
        0,
    );
    t.ok(&["run", "old"], 0);
    t.ok(&["task", "rename", "old", "new"], 0);
    let log = runs(&t, &["log", "new", "--json"]);
    assert_eq!(log.len(), 1, "{log:?}");
    check_row(&log[0], "new", "ok", 0, [1, 0, 0, 0]);
    assert_eq!(t.json(&["status", "new", "--json"])["last_run"], log[0]);
}
