//! Named tasks (issue 15): the config file kept as the user wrote it, bad input refused
//! with the config unchanged, several sources synced two ways by `tandem run`, and the
//! JSON of `task list`, `task show` and `run`. Each test has its own config file
//! (`--config`) and state home (`XDG_STATE_HOME`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::fixtures::{run_tandem_with_env, tree_of, write_file, Out};

pub(crate) struct Tasks {
    tmp: tempfile::TempDir,
    pub(crate) config: PathBuf,
    state: PathBuf,
}

impl Tasks {
    pub(crate) fn new(folders: &[&str]) -> Tasks {
        let tmp = tempfile::tempdir().unwrap();
        for f in folders {
            std::fs::create_dir_all(tmp.path().join(f)).unwrap();
        }
        let config = tmp.path().join("config.toml");
        let state = tmp.path().join("state");
        Tasks { tmp, config, state }
    }

    pub(crate) fn p(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    pub(crate) fn s(&self, rel: &str) -> String {
        self.p(rel).to_string_lossy().into_owned()
    }

    /// `tandem --config CONFIG ARGS...`, with the test's state home.
    pub(crate) fn tandem(&self, args: &[&str]) -> Out {
        let mut v: Vec<&OsStr> = vec![OsStr::new("--config"), self.config.as_os_str()];
        v.extend(args.iter().map(OsStr::new));
        let env = [("XDG_STATE_HOME", self.state.as_path())];
        // `@REL` is a folder of the test's own.
        let v: Vec<std::ffi::OsString> = v
            .iter()
            .map(|a| {
                let s = a.to_string_lossy();
                match s.strip_prefix("@") {
                    Some(rel) => self.p(rel).into_os_string(),
                    None => a.to_os_string(),
                }
            })
            .collect();
        run_tandem_with_env(v, &env)
    }

    pub(crate) fn ok(&self, args: &[&str], code: i32) -> Out {
        let out = self.tandem(args);
        assert_eq!(out.code, code, "tandem {args:?}:\n{}", out.all());
        out
    }

    pub(crate) fn config_text(&self) -> String {
        std::fs::read_to_string(&self.config).unwrap_or_default()
    }

    pub(crate) fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args, 0);
        serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
    }
}

pub(crate) fn last_json(out: &Out) -> Value {
    let line = out.stdout.lines().last().unwrap_or("");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {}", out.all()))
}

#[test]
fn issue_15_config_round_trip_keeps_comments_and_order() {
    let t = Tasks::new(&["a/Photos", "b/Docs", "t"]);
    let mine = format!(
        "# My tandem tasks.\n# Edited by hand too.\n\n# The important one.\n[task.first]   # keep me\ncomment = \"by hand\"   # why\nsources = [\"{}\"]\ntarget = \"{}\"\nconflict = \"flag\" # always ask\n",
        t.s("a/Photos"),
        t.s("t")
    );
    std::fs::write(&t.config, &mine).unwrap();
    t.ok(
        &[
            "task",
            "add",
            "second",
            "--source",
            "@b/Docs",
            "--target",
            "@t",
            "--comment",
            "added",
        ],
        0,
    );
    let text = t.config_text();
    assert!(
        text.starts_with(&mine),
        "the user's text is kept as written:\n{text}"
    );
    assert!(
        text.ends_with(&format!(
            "\n[task.second]\ncomment = \"added\"\nsources = [\"{}\"]\ntarget = \"{}\"\n",
            t.s("b/Docs"),
            t.s("t")
        )),
        "{text}"
    );

    t.ok(
        &[
            "task",
            "edit",
            "first",
            "--conflict",
            "newest",
            "--comment",
            "edited",
        ],
        0,
    );
    let text = t.config_text();
    assert!(
        text.contains("[task.first]   # keep me\ncomment = \"edited\"   # why\n"),
        "{text}"
    );
    assert!(
        text.contains("conflict = \"newest\" # always ask\n"),
        "{text}"
    );

    t.ok(&["task", "rename", "first", "main"], 0);
    let text = t.config_text();
    assert!(
        text.starts_with(
            "# My tandem tasks.\n# Edited by hand too.\n\n# The important one.\n[task.main]"
        ),
        "{text}"
    );
    assert!(
        text.find("[task.main]") < text.find("[task.second]"),
        "order kept:\n{text}"
    );

    t.ok(&["task", "remove", "main"], 0);
    let text = t.config_text();
    assert!(
        text.starts_with("# My tandem tasks.\n# Edited by hand too.\n\n[task.second]"),
        "{text}"
    );
    assert!(!text.contains("important"), "{text}");
    let list = t.json(&["task", "list", "--json"]);
    assert_eq!(list["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(list["tasks"][0]["name"], "second");
}

#[test]
fn issue_15_the_default_config_is_under_xdg_config_home() {
    let t = Tasks::new(&["a/Photos", "t", "xdg"]);
    let env = [
        ("XDG_CONFIG_HOME", t.p("xdg")),
        ("XDG_STATE_HOME", t.state.clone()),
    ];
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let add = [
        "task",
        "add",
        "x",
        "--source",
        &t.s("a/Photos"),
        "--target",
        &t.s("t"),
    ];
    let out = run_tandem_with_env(add, &env);
    assert_eq!(out.code, 0, "{}", out.all());
    let text = std::fs::read_to_string(t.p("xdg/tandem/config.toml")).unwrap();
    assert!(text.contains("[task.x]"), "{text}");
}

/// Runs a command that must be refused: exit 2, the message, the config file unchanged.
fn refused(t: &Tasks, args: &[&str], message: &str) {
    let before = std::fs::read(&t.config).ok();
    let out = t.tandem(args);
    assert_eq!(out.code, 2, "tandem {args:?}:\n{}", out.all());
    assert!(
        out.stderr.contains(message),
        "tandem {args:?}: expected {message:?} in:\n{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read(&t.config).ok(),
        before,
        "tandem {args:?} changed the config"
    );
}

#[test]
fn issue_15_bad_input_is_refused_and_changes_nothing() {
    let t = Tasks::new(&["a/Photos/inner", "b/Photos", "c/Docs", "t"]);
    t.ok(
        &[
            "task",
            "add",
            "x",
            "--source",
            "@a/Photos",
            "--target",
            "@t",
        ],
        0,
    );
    refused(
        &t,
        &["task", "add", "x", "--source", "@c/Docs", "--target", "@t"],
        "there is already a task named x",
    );
    refused(
        &t,
        &["task", "rename", "x", "x"],
        "there is already a task named x",
    );
    for cmd in [
        &["task", "show", "nope"][..],
        &["task", "edit", "nope", "--comment", "c"],
        &["task", "rename", "nope", "y"],
        &["task", "remove", "nope"],
        &["run", "nope"],
    ] {
        refused(&t, cmd, "there is no task named nope");
    }
    refused(
        &t,
        &[
            "task",
            "add",
            "y",
            "--source",
            "@a/Photos",
            "--source",
            "@a/Photos/inner",
            "--target",
            "@t",
        ],
        "is inside the source",
    );
    refused(
        &t,
        &[
            "task",
            "add",
            "y",
            "--source",
            "@a/Photos",
            "--source",
            "@b/Photos",
            "--target",
            "@t",
        ],
        "have the same folder name \"Photos\"",
    );
    refused(
        &t,
        &[
            "task",
            "edit",
            "x",
            "--source",
            "@a/Photos",
            "--source",
            "@b/Photos",
        ],
        "have the same folder name \"Photos\"",
    );
    refused(
        &t,
        &["task", "add", "y", "--source", "@t/../t", "--target", "@t"],
        "the source and the target are the same folder",
    );
    refused(
        &t,
        &[
            "task",
            "add",
            "y",
            "--source",
            "@a",
            "--target",
            "@a/Photos/inner",
        ],
        "is inside the source",
    );
    refused(
        &t,
        &["task", "add", "y", "--source", "@gone", "--target", "@t"],
        "task y, sources[0]: the source folder",
    );
    refused(
        &t,
        &[
            "task", "add", "y", "--source", "@c/Docs", "--target", "@nowhere",
        ],
        "task y, target: the target folder",
    );
    refused(
        &t,
        &["task", "add", "y", "--target", "@t"],
        "at least one --source",
    );
    refused(
        &t,
        &[
            "task", "add", "bad name", "--source", "@c/Docs", "--target", "@t",
        ],
        "is not a task name",
    );
    refused(
        &t,
        &[
            "task",
            "add",
            "y",
            "--source",
            "@c/Docs",
            "--target",
            "@t",
            "--conflict",
            "keepboth",
        ],
        "invalid value 'keepboth'",
    );

    // A config file with a syntax error, an unknown key, a bad value: file, line, key.
    let good = t.config_text();
    let cfg = t.config.display().to_string();
    std::fs::write(
        &t.config,
        format!("{good}direction = \"push\"\nsources = [\"/a\"\n"),
    )
    .unwrap();
    refused(
        &t,
        &["task", "list"],
        &format!("{cfg}:{}:16: unclosed array", good.lines().count() + 2),
    );
    std::fs::write(&t.config, format!("{good}direktion = \"push\"\n")).unwrap();
    refused(
        &t,
        &["task", "add", "z", "--source", "@c/Docs", "--target", "@t"],
        &format!(
            "{cfg}:{}: task x, direktion: unknown key",
            good.lines().count() + 1
        ),
    );
    std::fs::write(&t.config, format!("{good}\ndirection = \"sideways\"\n")).unwrap();
    refused(
        &t,
        &["run", "x"],
        &format!(
            "{cfg}:{}: task x, direction: \"sideways\" is not a direction (use both, push, pull)",
            good.lines().count() + 2
        ),
    );

    // A folder gone since the task was saved: named with its line at run time.
    std::fs::write(&t.config, &good).unwrap();
    std::fs::rename(t.p("a/Photos"), t.p("a/Pictures")).unwrap();
    let line = good.lines().position(|l| l.starts_with("sources")).unwrap() + 1;
    refused(
        &t,
        &["run", "x"],
        &format!("{cfg}:{line}: task x, sources[0]: the source folder"),
    );
    assert!(!t.p("t/Photos").exists(), "nothing was synced");
}

#[test]
fn issue_15_several_sources_in_a_target_subfolder_two_ways_with_a_conflict() {
    let t = Tasks::new(&["home/Photos", "home/Docs", "disk"]);
    write_file(&t.p("home/Photos/cat.jpg"), b"cat");
    write_file(&t.p("home/Docs/a/letter.txt"), b"dear");
    t.ok(
        &[
            "task",
            "add",
            "backup",
            "--source",
            "@home/Photos",
            "--source",
            "@home/Docs",
            "--target",
            "@disk",
            "--target-subfolder",
        ],
        0,
    );

    // A dry run before the first changes nothing, not even the subfolder.
    t.ok(&["run", "backup", "--dry-run"], 2);
    assert!(!t.p("disk/backup").exists());

    let out = t.ok(&["run", "backup"], 0);
    assert!(
        out.stdout
            .contains("task backup: 2 pairs in sync: 2 copied"),
        "{}",
        out.stdout
    );
    for (src, tgt) in [
        ("home/Photos", "disk/backup/Photos"),
        ("home/Docs", "disk/backup/Docs"),
    ] {
        assert_eq!(tree_of(&t.p(src)), tree_of(&t.p(tgt)), "{src} and {tgt}");
    }

    // Two ways: a change on the target side comes back; a change on each side of one
    // file is a conflict, both versions kept; the exit code is the worst pair's.
    write_file(&t.p("disk/backup/Docs/a/new.txt"), b"from the disk");
    write_file(&t.p("home/Photos/cat.jpg"), b"cat, source edit");
    write_file(
        &t.p("disk/backup/Photos/cat.jpg"),
        b"cat, edited on the disk",
    );
    let out = t.ok(&["run", "backup"], 1);
    assert!(out.stdout.contains("conflicts:"), "{}", out.stdout);
    assert!(
        out.stdout.contains("1 copied") && out.stdout.contains("1 conflicts"),
        "{}",
        out.stdout
    );
    assert_eq!(
        std::fs::read(t.p("home/Docs/a/new.txt")).unwrap(),
        b"from the disk"
    );
    let copies = |dir: &str| -> usize {
        std::fs::read_dir(t.p(dir))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".conflict-")
            })
            .count()
    };
    assert_eq!(
        (copies("home/Photos"), copies("disk/backup/Photos")),
        (1, 1)
    );
    assert_eq!(
        tree_of(&t.p("home/Photos")),
        tree_of(&t.p("disk/backup/Photos"))
    );

    // Each pair keeps the state `tandem sync` would: status reads it without a task.
    let status = run_tandem_with_env(
        ["status", &t.s("home/Docs"), &t.s("disk/backup/Docs")],
        &[("XDG_STATE_HOME", t.state.as_path())],
    );
    assert_eq!(status.code, 0, "{}", status.all());
    let again = t.ok(&["run", "backup"], 0);
    assert!(
        again
            .stdout
            .contains("task backup: 2 pairs in sync: nothing to do"),
        "{}",
        again.stdout
    );

    // The task's subfolder gone after it was synced (another disk at the target?): it is
    // not made again, nothing is copied.
    std::fs::remove_dir_all(t.p("disk/backup")).unwrap();
    let out = t.ok(&["run", "backup"], 2);
    out.assert_stderr_has("does not exist, but this pair was synced before");
    assert!(!t.p("disk/backup").exists());
}

#[test]
fn issue_15_run_reports_each_pair_and_exits_with_the_worst() {
    let t = Tasks::new(&["Photos", "Docs", "disk"]);
    write_file(&t.p("Photos/p"), b"p");
    write_file(&t.p("Docs/d"), b"dd");
    t.ok(
        &[
            "task", "add", "x", "--source", "@Photos", "--source", "@Docs", "--target", "@disk",
        ],
        0,
    );
    let out = t.ok(&["run", "x", "--json"], 0);
    let r = last_json(&out);
    assert_eq!(r["event"], "task");
    assert_eq!(r["task"], "x");
    assert_eq!(r["exit_code"], 0);
    assert_eq!(r["totals"]["copied"], 2);
    assert_eq!(r["totals"]["bytes"], 3);
    assert_eq!(r["totals"]["pairs_in_error"], 0);
    let pairs = r["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 2);
    assert_eq!(pairs[0]["source"], t.s("Photos"));
    assert_eq!(pairs[0]["target"], t.s("disk/Photos"));
    assert_eq!(pairs[0]["copied"], 1);
    assert_eq!(pairs[0]["created_target"], t.s("disk/Photos"));
    assert_eq!(pairs[1]["target"], t.s("disk/Docs"));
    assert_eq!(pairs[1]["exit_code"], 0);
    assert!(
        out.stdout.lines().count() > 1,
        "events come before the summary"
    );

    // One pair's target gone (an unplugged disk): that pair is an error, the other syncs.
    std::fs::remove_dir_all(t.p("disk/Docs")).unwrap();
    write_file(&t.p("Photos/q"), b"q");
    let out = t.ok(&["run", "x", "--json"], 2);
    let r = last_json(&out);
    assert_eq!(r["exit_code"], 2);
    assert_eq!(r["pairs"][0]["exit_code"], 0);
    assert_eq!(r["pairs"][0]["copied"], 1);
    assert_eq!(r["pairs"][1]["exit_code"], 2);
    assert!(
        r["pairs"][1]["error"]
            .as_str()
            .unwrap()
            .contains("does not exist, but this pair was synced before"),
        "{r}"
    );
    assert_eq!(r["totals"]["pairs_in_error"], 1);
    assert!(
        !t.p("disk/Docs").exists(),
        "a vanished target is not made again"
    );
    assert_eq!(std::fs::read(t.p("disk/Photos/q")).unwrap(), b"q");

    // A dry run lists and changes nothing.
    write_file(&t.p("Photos/r"), b"r");
    let out = t.tandem(&["run", "x", "--dry-run"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stdout.contains("dry run: 1 changes planned"),
        "{}",
        out.all()
    );
    assert!(!t.p("disk/Photos/r").exists());
}

#[test]
fn issue_15_task_list_and_show_json_field_by_field() {
    let t = Tasks::new(&["a/Photos", "b/Docs", "disk"]);
    t.ok(
        &[
            "task",
            "add",
            "x",
            "--source",
            "@a/Photos",
            "--source",
            "@b/Docs",
            "--target",
            "@disk",
            "--target-subfolder",
            "--comment",
            "my photos",
            "--direction",
            "push",
            "--mode",
            "replica",
            "--conflict",
            "newest",
            "--exclude",
            "*.tmp",
            "--exclude",
            "cache/",
            "--include",
            "keep.tmp",
            "--max-delete",
            "20",
            "--modify-window",
            "2s",
            "--fsync",
        ],
        0,
    );
    t.ok(
        &[
            "task", "add", "y", "--source", "@b/Docs", "--target", "@disk",
        ],
        0,
    );
    let show = t.json(&["task", "show", "x", "--json"]);
    assert_eq!(show["name"], "x");
    assert_eq!(show["comment"], "my photos");
    assert_eq!(
        show["sources"],
        serde_json::json!([t.s("a/Photos"), t.s("b/Docs")])
    );
    assert_eq!(show["target"], t.s("disk"));
    assert_eq!(show["target_subfolder"], true);
    assert_eq!(show["direction"], "push");
    assert_eq!(show["mode"], "replica");
    assert_eq!(show["conflict"], "newest");
    assert_eq!(show["exclude"], serde_json::json!(["*.tmp", "cache/"]));
    assert_eq!(show["include"], serde_json::json!(["keep.tmp"]));
    assert_eq!(show["max_delete"], 20);
    assert_eq!(show["modify_window"], "2s");
    assert_eq!(show["fsync"], true);
    assert_eq!(show["pairs"][0]["source"], t.s("a/Photos"));
    assert_eq!(show["pairs"][0]["target"], t.s("disk/x/Photos"));
    assert_eq!(show["pairs"][1]["target"], t.s("disk/x/Docs"));
    let state = show["pairs"][0]["state_dir"].as_str().unwrap();
    assert!(
        state.starts_with(&format!("{}/tandem/", t.state.display())),
        "{state}"
    );
    assert_ne!(show["pairs"][0]["state_dir"], show["pairs"][1]["state_dir"]);

    let list = t.json(&["task", "list", "--json"]);
    assert_eq!(list["config"], t.config.to_string_lossy().as_ref());
    assert_eq!(list["tasks"][0], show);
    let y = &list["tasks"][1];
    assert_eq!(y["name"], "y");
    assert_eq!(y["comment"], Value::Null);
    assert_eq!(y["direction"], "both");
    assert_eq!(y["mode"], "safe");
    assert_eq!(y["conflict"], "keep-both");
    assert_eq!(y["max_delete"], 50);
    assert_eq!(y["modify_window"], "0s");
    assert_eq!(y["fsync"], false);
    assert_eq!(y["target_subfolder"], false);
    assert_eq!(y["pairs"][0]["target"], t.s("disk/Docs"));

    // The edit of one setting leaves the others; the options reach the config as words.
    let edited = t.json(&[
        "task",
        "edit",
        "x",
        "--direction",
        "both",
        "--fsync=false",
        "--json",
    ]);
    assert_eq!(edited["direction"], "both");
    assert_eq!(edited["fsync"], false);
    assert_eq!(edited["mode"], "replica");
    let text = t.config_text();
    assert!(
        text.contains("direction = \"both\"\nmode = \"replica\"\nconflict = \"newest\""),
        "{text}"
    );
}

#[test]
fn issue_15_a_moved_source_is_refused_then_repointed_keeping_its_baseline() {
    let t = Tasks::new(&["home/Photos", "data", "disk"]);
    write_file(&t.p("home/Photos/a"), b"a");
    write_file(&t.p("home/Photos/b"), b"b");
    t.ok(
        &[
            "task",
            "add",
            "p",
            "--source",
            "@home/Photos",
            "--target",
            "@disk",
        ],
        0,
    );
    t.ok(&["run", "p"], 0);
    for root in ["home/Photos", "disk/Photos"] {
        let markers = std::fs::read_to_string(t.p(root).join(".tandem/markers")).unwrap();
        assert!(
            markers.lines().any(|l| l.ends_with(" p")),
            "{root}: {markers}"
        );
    }
    // A delete on the target that only the baseline knows about: a first sync would
    // bring `b` back from the source.
    std::fs::remove_file(t.p("disk/Photos/b")).unwrap();
    std::fs::rename(t.p("home/Photos"), t.p("data/Photos")).unwrap();
    let config = t.config_text();

    let out = t.ok(&["run", "p"], 2);
    assert!(
        out.stderr.contains("the source folder")
            && out
                .stderr
                .contains("does not exist: was it renamed or moved?"),
        "{}",
        out.stderr
    );
    out.assert_stderr_has("`tandem task edit p --source NEW-PLACE`");

    // An empty folder made at the old place is not the folder synced before.
    std::fs::create_dir(t.p("home/Photos")).unwrap();
    let out = t.ok(&["run", "p"], 2);
    out.assert_stderr_has("is not the folder synced before: it does not carry this task's marker");
    assert!(
        out.stderr.contains(&format!(
            "expected in {}",
            t.p("home/Photos/.tandem/markers").display()
        )),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_dir(t.p("home/Photos")).unwrap().count(),
        0,
        "nothing was synced into it"
    );
    assert_eq!(t.config_text(), config);
    std::fs::remove_dir(t.p("home/Photos")).unwrap();

    let out = t.ok(&["task", "edit", "p", "--source", "@data/Photos"], 0);
    assert!(out.stdout.contains("re-pointed"), "{}", out.stdout);
    let out = t.ok(&["run", "p"], 0);
    assert!(
        out.stdout.contains("in sync: 1 deleted"),
        "the baseline was kept:\n{}",
        out.stdout
    );
    assert!(!t.p("data/Photos/b").exists());
    let out = t.ok(&["run", "p"], 0);
    assert!(out.stdout.contains("nothing to do"), "{}", out.stdout);
}

#[test]
fn issue_15_markers_refuse_a_lost_state_a_replaced_target_and_a_renamed_source() {
    let t = Tasks::new(&["home/Photos", "disk"]);
    write_file(&t.p("home/Photos/a"), b"a");
    t.ok(
        &[
            "task",
            "add",
            "p",
            "--source",
            "@home/Photos",
            "--target",
            "@disk",
        ],
        0,
    );
    t.ok(&["run", "p"], 0);

    // The state lost while both folders carry their markers: never a silent first sync.
    std::fs::rename(&t.state, t.p("state-away")).unwrap();
    let out = t.ok(&["run", "p"], 2);
    out.assert_stderr_has("carry the marker of an earlier sync of this pair, but its state");
    // The refused run is in the run history of the new state home: gone with it.
    assert!(t.state.join("tandem/history.db").is_file());
    std::fs::remove_dir_all(&t.state).unwrap();
    std::fs::rename(t.p("state-away"), &t.state).unwrap();

    // Another folder where the target was (a different disk mounted there).
    std::fs::rename(t.p("disk/Photos"), t.p("disk/Old")).unwrap();
    std::fs::create_dir(t.p("disk/Photos")).unwrap();
    let out = t.ok(&["run", "p"], 2);
    assert!(
        out.stderr.contains("the target")
            && out.stderr.contains("Another folder or disk is there now"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_dir(t.p("disk/Photos")).unwrap().count(), 0);
    std::fs::remove_dir(t.p("disk/Photos")).unwrap();
    std::fs::rename(t.p("disk/Old"), t.p("disk/Photos")).unwrap();

    // A source renamed: its copy's name would change, which the edit says.
    std::fs::rename(t.p("home/Photos"), t.p("home/Pics")).unwrap();
    let config = t.config_text();
    let out = t.ok(&["task", "edit", "p", "--source", "@home/Pics"], 2);
    assert!(
        out.stderr.contains(&format!(
            "rename {} to {} as well",
            t.s("disk/Photos"),
            t.s("disk/Pics")
        )),
        "{}",
        out.stderr
    );
    assert_eq!(t.config_text(), config);
    std::fs::rename(t.p("disk/Photos"), t.p("disk/Pics")).unwrap();
    t.ok(&["task", "edit", "p", "--source", "@home/Pics"], 0);
    let out = t.ok(&["run", "p"], 0);
    assert!(out.stdout.contains("nothing to do"), "{}", out.stdout);
}

#[test]
fn issue_19_update_is_stored_with_a_task() {
    let t = Tasks::new(&["home/Docs", "disk"]);
    let (src, tgt) = (t.p("home/Docs/a.txt"), t.p("disk/Docs/a.txt"));
    write_file(&src, b"v1");
    crate::fixtures::set_mtime(&src, 1_262_304_000, 0); // 2010
    let add = [
        "task",
        "add",
        "x",
        "--source",
        "@home/Docs",
        "--target",
        "@disk",
    ];
    refused(
        &t,
        &[&add[..], &["--update"]].concat(),
        "works only one way",
    );
    t.ok(
        &[&add[..], &["--direction", "push", "--update"]].concat(),
        0,
    );
    let config = std::fs::read_to_string(&t.config).unwrap();
    assert!(config.contains("update = true"), "{config}");
    t.ok(&["run", "x"], 0);

    // An older version restored on the source stays there.
    write_file(&src, b"restored from 2001");
    crate::fixtures::set_mtime(&src, 978_307_200, 0);
    let out = t.ok(&["run", "x"], 1);
    assert!(out.stdout.contains("newer on the target"), "{}", out.stdout);
    assert_eq!(std::fs::read(&tgt).unwrap(), b"v1");

    t.ok(&["task", "edit", "x", "--update", "false"], 0);
    t.ok(&["run", "x"], 0);
    assert_eq!(std::fs::read(&tgt).unwrap(), b"restored from 2001");
}

#[test]
fn issue_19_owner_xattrs_acls_are_stored_with_a_task() {
    use std::os::unix::fs::MetadataExt;
    let t = Tasks::new(&["home/Docs", "disk"]);
    let (src, tgt) = (t.p("home/Docs/a.txt"), t.p("disk/Docs/a.txt"));
    write_file(&src, b"v1");
    let add = [
        "task",
        "add",
        "x",
        "--source",
        "@home/Docs",
        "--target",
        "@disk",
    ];
    let keep = ["--owner", "--numeric-ids", "--xattrs", "--acls"];
    t.ok(&[&add[..], &keep[..]].concat(), 0);
    let config = std::fs::read_to_string(&t.config).unwrap();
    for key in ["owner", "numeric_ids", "xattrs", "acls"] {
        assert!(config.contains(&format!("{key} = true")), "{config}");
    }
    let shown = t.json(&["task", "show", "x", "--json"]);
    assert_eq!(shown["owner"], true, "{shown}");
    if !rustix::process::geteuid().is_root() {
        return;
    }
    std::os::unix::fs::chown(&src, Some(1), Some(2)).unwrap();
    t.ok(&["run", "x"], 0);
    let m = std::fs::metadata(&tgt).unwrap();
    assert_eq!((m.uid(), m.gid()), (1, 2));

    t.ok(&["task", "edit", "x", "--owner", "false"], 0);
    std::os::unix::fs::chown(&src, Some(3), Some(3)).unwrap();
    t.ok(&["run", "x"], 0);
    assert_eq!(
        std::fs::metadata(&tgt).unwrap().uid(),
        1,
        "owners left alone"
    );
}
