//! A task's limits on what is kept and deleted (issue 18): `history_keep`, `history_max`,
//! `history_versions`, `delete_brake` and `max_delete_count` in config.toml and on `task
//! add/edit`, shown by `task show`, and acted on by `tandem run`.

use crate::fixtures::{write_file, Node};
use crate::tasks::Tasks;

/// A config of one task `x`, syncing `a/Docs` with `t/Docs`, with `extra` lines.
fn task_with(t: &Tasks, extra: &str) {
    let text = format!(
        "[task.x]\nsources = [\"{}\"]\ntarget = \"{}\"\n{extra}",
        t.s("a/Docs"),
        t.s("t")
    );
    std::fs::write(&t.config, text).unwrap();
}

/// The contents of the files in `root`'s trash, sorted.
fn trash(root: &std::path::Path) -> Vec<String> {
    let dir = root.join(".tandem/trash");
    let mut out: Vec<String> = crate::fixtures::tree_of(&dir)
        .into_values()
        .filter_map(|n| match n {
            Node::File(c, _) => Some(String::from_utf8_lossy(&c).into_owned()),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

#[test]
fn issue_18_task_history_versions_keeps_one_trash_version_per_path() {
    let t = Tasks::new(&["a/Docs", "t"]);
    task_with(&t, "history_versions = 1\n");
    write_file(&t.p("a/Docs/f.txt"), b"original");
    t.ok(&["run", "x"], 0);
    // Each rewrite in the target replaces the source's copy, whose old content goes to
    // the source's trash.
    for i in 1..=3 {
        let body = format!("v{i}").repeat(i);
        write_file(&t.p("t/Docs/f.txt"), body.as_bytes());
        t.ok(&["run", "x"], 0);
        assert_eq!(std::fs::read_to_string(t.p("a/Docs/f.txt")).unwrap(), body);
    }
    assert_eq!(
        trash(&t.p("a/Docs")),
        ["v2v2"],
        "only the newest of the three set aside"
    );
}

#[test]
fn issue_18_task_max_delete_count_refuses_a_run_deleting_more() {
    let t = Tasks::new(&["a/Docs", "t"]);
    task_with(&t, "max_delete_count = 2\n");
    for i in 0..10 {
        write_file(&t.p(&format!("a/Docs/f{i}")), b"x");
    }
    t.ok(&["run", "x"], 0);
    // 3 of 10: under the default 50 %, but more than the count of 2.
    for i in 0..3 {
        std::fs::remove_file(t.p(&format!("a/Docs/f{i}"))).unwrap();
    }
    let out = t.tandem(&["run", "x"]);
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(
        out.all().contains("would delete 3 entries"),
        "{}",
        out.all()
    );
    assert!(t.p("t/Docs/f0").exists(), "nothing deleted in the target");
    // Raised to 3 by `task edit`, the same run goes through.
    t.ok(&["task", "edit", "x", "--max-delete-count", "3"], 0);
    t.ok(&["run", "x"], 0);
    assert!(!t.p("t/Docs/f0").exists());
}

#[test]
fn issue_18_task_bad_delete_brake_is_refused_naming_the_key() {
    let t = Tasks::new(&["a/Docs", "t"]);
    task_with(&t, "delete_brake = \"fast\"\n");
    let cfg = t.config.display().to_string();
    for cmd in [&["task", "show", "x"][..], &["run", "x"]] {
        let out = t.tandem(cmd);
        assert_eq!(out.code, 2, "{cmd:?}: {}", out.all());
        let expected = format!("{cfg}:4: task x, delete_brake: \"fast\": expected COUNT/DURATION");
        assert!(out.stderr.contains(&expected), "{cmd:?}: {}", out.stderr);
    }
    for (line, why) in [
        (
            "history_keep = \"soon\"",
            "task x, history_keep: not a duration",
        ),
        (
            "history_max = \"5 parsecs\"",
            "task x, history_max: unknown unit",
        ),
        (
            "history_versions = -1",
            "task x, history_versions: -1 is not a count",
        ),
        (
            "max_delete_count = \"2\"",
            "task x, max_delete_count: must be a whole number",
        ),
    ] {
        task_with(&t, &format!("{line}\n"));
        let out = t.tandem(&["task", "show", "x"]);
        assert_eq!(out.code, 2, "{line}: {}", out.all());
        assert!(out.stderr.contains(why), "{line}: {}", out.stderr);
    }
    // On the command line, the parsers of `tandem mount`.
    let out = t.tandem(&["task", "edit", "x", "--delete-brake", "fast"]);
    assert_eq!(out.code, 2, "{}", out.all());
}

#[test]
fn issue_18_task_show_prints_the_limits() {
    let t = Tasks::new(&["a/Docs", "b/Mail", "t"]);
    t.ok(
        &[
            "task",
            "add",
            "x",
            "--source",
            "@a/Docs",
            "--target",
            "@t",
            "--history-keep",
            "7d",
            "--history-max",
            "500MiB",
            "--history-versions",
            "3",
            "--delete-brake",
            "50/2m",
            "--max-delete-count",
            "100",
        ],
        0,
    );
    let text = t.config_text();
    for line in [
        "history_keep = \"7d\"",
        "history_max = \"500MiB\"",
        "history_versions = 3",
        "delete_brake = \"50/120s\"",
        "max_delete_count = 100",
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
    let show = t.json(&["task", "show", "x", "--json"]);
    assert_eq!(show["history_keep"], "7d");
    assert_eq!(show["history_max"], "500MiB");
    assert_eq!(show["history_versions"], 3);
    assert_eq!(show["delete_brake"], "50/120s");
    assert_eq!(show["max_delete_count"], 100);
    let out = t.ok(&["task", "show", "x"], 0);
    for line in [
        "  history_keep:     7d\n",
        "  history_max:      500MiB\n",
        "  history_versions: 3\n",
        "  delete_brake:     50/120s\n",
        "  max_delete_count: 100\n",
    ] {
        assert!(out.stdout.contains(line), "{line:?} in:\n{}", out.stdout);
    }

    // A task without them shows the defaults of `tandem sync` and `tandem mount`.
    t.ok(
        &["task", "add", "y", "--source", "@b/Mail", "--target", "@t"],
        0,
    );
    let y = t.json(&["task", "show", "y", "--json"]);
    assert_eq!(y["history_keep"], "30d");
    assert_eq!(y["history_max"], "5GiB");
    assert_eq!(y["history_versions"], 10);
    assert_eq!(y["delete_brake"], "1000/60s");
    assert_eq!(y["max_delete_count"], serde_json::Value::Null);
    t.ok(&["task", "edit", "y", "--delete-brake", "off"], 0);
    assert_eq!(
        t.json(&["task", "show", "y", "--json"])["delete_brake"],
        "off"
    );
}
