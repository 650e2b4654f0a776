//! The config file and TaskSpec validation, on real folders and real files.

use std::path::PathBuf;

use crate::{Config, Problem, TaskChanges, TaskError};

struct Dirs {
    tmp: tempfile::TempDir,
}

impl Dirs {
    fn new(folders: &[&str]) -> Dirs {
        let tmp = tempfile::tempdir().unwrap();
        for f in folders {
            std::fs::create_dir_all(tmp.path().join(f)).unwrap();
        }
        Dirs { tmp }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn config(&self, text: &str) -> PathBuf {
        let path = self.p("config.toml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn adding(d: &Dirs, sources: &[&str], target: &str) -> TaskChanges {
    TaskChanges {
        sources: Some(sources.iter().map(|s| d.p(s)).collect()),
        target: Some(d.p(target)),
        ..TaskChanges::default()
    }
}

fn problem(e: TaskError) -> (String, Problem) {
    match e {
        TaskError::Invalid { at, problem } => (at.to_string(), *problem),
        e => panic!("not an invalid value: {e}"),
    }
}

#[test]
fn add_edit_rename_remove_keep_the_users_comments_and_order() {
    let d = Dirs::new(&["a/Photos", "b/Docs", "t"]);
    let text = format!(
        "# my tasks\n\n# first\n[task.one] # one\ncomment = \"hi\" # a note\nsources = [\"{}\"]\ntarget = \"{}\"\n",
        d.p("a/Photos").display(),
        d.p("t").display()
    );
    let path = d.config(&text);
    let mut cfg = Config::load(&path).unwrap();
    cfg.add("two", &adding(&d, &["b/Docs"], "t")).unwrap();
    let edit = TaskChanges {
        comment: Some("changed".into()),
        direction: Some(tandem_core::Direction::Push),
        ..TaskChanges::default()
    };
    cfg.edit("one", &edit).unwrap();
    cfg.rename("two", "second").unwrap();
    cfg.save().unwrap();
    let saved = std::fs::read_to_string(&path).unwrap();
    let expected_start =
        "# my tasks\n\n# first\n[task.one] # one\ncomment = \"changed\" # a note\n";
    assert!(saved.starts_with(expected_start), "{saved}");
    assert!(saved.contains("direction = \"push\""), "{saved}");
    assert!(
        saved.find("[task.one]") < saved.find("[task.second]"),
        "{saved}"
    );
    assert!(!saved.contains("[task.two]"), "{saved}");
    let again = Config::load(&path).unwrap();
    let names: Vec<_> = again.tasks().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["one", "second"]);
    assert_eq!(
        again.task("one").unwrap().comment.as_deref(),
        Some("changed")
    );

    let mut cfg = again;
    cfg.remove("one").unwrap();
    cfg.save().unwrap();
    let saved = std::fs::read_to_string(&path).unwrap();
    assert!(saved.starts_with("# my tasks\n"), "{saved}");
    assert!(!saved.contains("# first"), "{saved}");
}

#[test]
fn an_unknown_key_names_the_file_line_and_key() {
    let d = Dirs::new(&[]);
    let path = d.config("[task.x]\nsources = [\"/a\"]\ntarget = \"/b\"\ndirektion = \"push\"\n");
    let (at, p) = problem(Config::load(&path).unwrap_err());
    assert_eq!(at, format!("{}:4: task x, direktion", path.display()));
    assert!(matches!(p, Problem::UnknownKey { .. }));
}

#[test]
fn a_bad_value_names_its_line_and_the_words() {
    let d = Dirs::new(&[]);
    let path =
        d.config("[task.x]\nsources = [\"/a\"]\ntarget = \"/b\"\n\nconflict = \"keepboth\"\n");
    let e = Config::load(&path).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}:5: task x, conflict: ", path.display())),
        "{e}"
    );
    assert!(e.contains("keep-both, newest"), "{e}");
    let path = d.config("[task.x]\nsources = [\"/a\"]\ntarget = \"/b\"\nmax_delete = 120\n");
    let e = Config::load(&path).unwrap_err().to_string();
    assert!(
        e.contains(":4: task x, max_delete: 120 is not a percentage"),
        "{e}"
    );
    let path = d.config("[task.x]\nsources = [\"rel\"]\ntarget = \"/b\"\n");
    let e = Config::load(&path).unwrap_err().to_string();
    assert!(
        e.contains(":2: task x, sources: rel is not an absolute path"),
        "{e}"
    );
}

#[test]
fn a_missing_key_and_a_syntax_error_are_placed() {
    let d = Dirs::new(&[]);
    let path = d.config("\n[task.x]\nsources = [\"/a\"]\n");
    let e = Config::load(&path).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("{}:2: task x, target: is required", path.display())
    );
    let path = d.config("[task.x]\nsources = [\"/a\"\ntarget = \"/b\"\n");
    match Config::load(&path).unwrap_err() {
        TaskError::Syntax { line, column, .. } => assert_eq!((line, column), (3, 1)),
        e => panic!("{e}"),
    }
}

#[test]
fn a_missing_folder_is_an_error_at_its_line() {
    let d = Dirs::new(&["t"]);
    let path = d.config(&format!(
        "[task.x]\nsources = [\"{}\"]\ntarget = \"{}\"\n",
        d.p("gone").display(),
        d.p("t").display()
    ));
    let cfg = Config::load(&path).unwrap();
    let (at, p) = problem(cfg.task("x").unwrap().check_folders().unwrap_err());
    assert_eq!(at, format!("{}:2: task x, sources[0]", path.display()));
    assert!(matches!(p, Problem::Root(_)), "{p}");
}

#[test]
fn sources_with_the_same_folder_name_are_refused_and_nothing_changes() {
    let d = Dirs::new(&["a/Photos", "b/Photos", "t"]);
    let path = d.config("# mine\n");
    let mut cfg = Config::load(&path).unwrap();
    let e = cfg
        .add("x", &adding(&d, &["a/Photos", "b/Photos"], "t"))
        .unwrap_err();
    let (at, p) = problem(e);
    assert_eq!(at, "task x, sources[1]");
    assert!(
        matches!(p, Problem::SameName { ref name, .. } if name == "Photos"),
        "{p}"
    );
    assert!(cfg.tasks().is_empty());
}

#[test]
fn nested_sources_and_a_source_around_the_target_are_refused() {
    let d = Dirs::new(&["a/Photos/sub", "t"]);
    let path = d.config("");
    let mut cfg = Config::load(&path).unwrap();
    let e = cfg
        .add("x", &adding(&d, &["a/Photos", "a/Photos/sub"], "t"))
        .unwrap_err();
    assert!(matches!(problem(e).1, Problem::SourcesNested { .. }));
    let e = cfg
        .add("x", &adding(&d, &["a/Photos", "a/Photos"], "t"))
        .unwrap_err();
    assert!(matches!(problem(e).1, Problem::SourceTwice { .. }));
    let e = cfg.add("x", &adding(&d, &[""], "t")).unwrap_err();
    assert!(matches!(problem(e).1, Problem::Root(_)));
    let e = cfg
        .add("x", &adding(&d, &["a/Photos"], "a/Photos/sub"))
        .unwrap_err();
    assert!(matches!(problem(e).1, Problem::Root(_)));
    assert!(cfg.tasks().is_empty());
}

#[test]
fn names_that_exist_or_do_not_and_bad_names() {
    let d = Dirs::new(&["a/Photos", "t"]);
    let mut cfg = Config::load(&d.config("")).unwrap();
    cfg.add("x", &adding(&d, &["a/Photos"], "t")).unwrap();
    let e = cfg.add("x", &adding(&d, &["a/Photos"], "t")).unwrap_err();
    assert!(matches!(e, TaskError::Exists { .. }), "{e}");
    assert!(matches!(
        cfg.task("y").unwrap_err(),
        TaskError::NoSuchTask { .. }
    ));
    assert!(matches!(
        cfg.rename("y", "z").unwrap_err(),
        TaskError::NoSuchTask { .. }
    ));
    for bad in ["", "-x", "a b", "a/b", ".hidden"] {
        let e = cfg.add(bad, &adding(&d, &["a/Photos"], "t")).unwrap_err();
        assert!(matches!(e, TaskError::BadName { .. }), "{bad:?}: {e}");
    }
}

#[test]
fn each_source_pairs_with_its_folder_name_under_the_target() {
    let d = Dirs::new(&["a/Photos", "b/Docs", "t"]);
    let mut cfg = Config::load(&d.config("")).unwrap();
    let mut c = adding(&d, &["a/Photos", "b/Docs"], "t");
    let t = cfg.add("x", &c).unwrap();
    let targets: Vec<PathBuf> = t.pairs().into_iter().map(|p| p.target).collect();
    assert_eq!(targets, [d.p("t/Photos"), d.p("t/Docs")]);
    c.target_subfolder = Some(true);
    let t = cfg.edit("x", &c).unwrap().0;
    let targets: Vec<PathBuf> = t.pairs().into_iter().map(|p| p.target).collect();
    assert_eq!(targets, [d.p("t/x/Photos"), d.p("t/x/Docs")]);
    assert_ne!(
        crate::TaskSpec::state_dir(&t.pairs()[0]),
        crate::TaskSpec::state_dir(&t.pairs()[1])
    );
}

#[test]
fn durations_read_back_as_written() {
    for ns in [
        0,
        1,
        1_000,
        2_000_000,
        2_000_000_000,
        90_000_000_000,
        3_600_000_000_000,
    ] {
        let s = crate::format_duration_ns(ns);
        assert_eq!(crate::parse_duration_ns(&s), Ok(ns), "{s}");
    }
    assert_eq!(crate::parse_duration_ns("1.5"), Ok(1_500_000_000));
    assert!(crate::parse_duration_ns("2 weeks").is_err());
}

#[test]
fn issue_15_hook_and_priority_keys_are_read_and_checked() {
    let d = Dirs::new(&[]);
    let head = "[task.x]\nsources = [\"/a\"]\ntarget = \"/b\"\n";
    let path = d.config(&format!(
        "{head}before = \"mount /mnt/disk\"\nafter = \"true\"\nhook_timeout = \"90s\"\npriority = \"idle\"\n"
    ));
    let cfg = Config::load(&path).unwrap();
    let t = cfg.task("x").unwrap();
    assert_eq!(t.hooks.before.as_deref(), Some("mount /mnt/disk"));
    assert_eq!(t.hooks.after.as_deref(), Some("true"));
    assert_eq!(t.hooks.timeout, 90_000_000_000);
    assert_eq!(t.priority, tandem_core::Priority::Idle);
    let path = d.config(&format!("{head}\npriority = \"high\"\n"));
    let e = Config::load(&path).unwrap_err().to_string();
    assert!(
        e.contains(":5: task x, priority: \"high\" is not a priority (use normal, low, idle)"),
        "{e}"
    );
    let path = d.config(&format!("{head}hook_timeout = \"0s\"\n"));
    let e = Config::load(&path).unwrap_err().to_string();
    assert!(
        e.contains(":4: task x, hook_timeout: must be more than 0s"),
        "{e}"
    );
    let path = d.config(&format!("{head}after = \" \"\n"));
    let e = Config::load(&path).unwrap_err().to_string();
    assert!(e.contains(":4: task x, after: is empty"), "{e}");
}

#[test]
fn issue_15_a_hook_command_names_a_program_that_is_there() {
    use crate::check_command;
    for ok in [
        "true",
        "exit 3",
        "FOO=1 sh -c 'x'",
        "cd /tmp && ls",
        "(sleep 1)",
        "/bin/sh -c :",
    ] {
        assert_eq!(check_command(ok), Ok(()), "{ok}");
    }
    for bad in [
        "",
        "   ",
        "/no/such/thing",
        "no-such-program-15",
        "/etc/passwd x",
        "A=1 B=2",
    ] {
        assert!(check_command(bad).is_err(), "{bad:?} was accepted");
    }
    // A quoted program may have spaces in its path.
    let d = Dirs::new(&["my tools"]);
    let prog = d.p("my tools/backup");
    std::fs::write(&prog, "#!/bin/sh\n").unwrap();
    let quoted = format!("'{}' --now", prog.display());
    let refused = format!("{} is not an executable file", prog.display());
    assert_eq!(check_command(&quoted), Err(refused));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(check_command(&quoted), Ok(()));
    assert_eq!(
        check_command(&format!("X=1 \"{}\"", prog.display())),
        Ok(())
    );
}
