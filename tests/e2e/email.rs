//! A task's result by mail (issue 15), sent to a real SMTP server on 127.0.0.1: Debian's
//! python3-aiosmtpd (installed by `.ci/run`) driven by `support/smtp_sink.py`, run with
//! `/usr/bin/python3` (the `python3` first on PATH may be another installation, which does
//! not see Debian's modules). The server saves each message it accepts as JSON, and can
//! refuse every recipient, ask for a login, or offer TLS with a self-signed certificate.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::fixtures::write_file;
use crate::tasks::Tasks;

const SUPPORT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/e2e/support");
const TO: [&str; 2] = ["alice@example.org", "Ops <ops@example.org>"];

/// The SMTP server of one test: killed when dropped.
struct Sink {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Sink {
    /// Starts `smtp_sink.py` saving into `dir` (made; its log is `dir/sink.log`), with
    /// `args`, and waits until it listens.
    fn start(dir: &Path, args: &[&str]) -> Sink {
        std::fs::create_dir_all(dir).unwrap();
        let mut child = Command::new("/usr/bin/python3")
            .arg(format!("{SUPPORT}/smtp_sink.py"))
            .arg("--dir")
            .arg(dir)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("sink.log")).unwrap())
            .spawn()
            .expect("/usr/bin/python3 runs the test SMTP server (install python3-aiosmtpd)");
        let mut first = String::new();
        let stdout = child.stdout.take().unwrap();
        BufReader::new(stdout).read_line(&mut first).unwrap();
        let Some(port) = first.trim().strip_prefix("PORT ") else {
            let _ = child.kill();
            panic!("the test SMTP server did not start (is python3-aiosmtpd installed for /usr/bin/python3?): {first:?}");
        };
        Sink {
            port: port.parse().unwrap(),
            child,
            dir: dir.to_path_buf(),
        }
    }

    /// The messages accepted so far, oldest first, their bodies with `\n` line ends.
    fn mails(&self) -> Vec<Value> {
        let mut mails = Vec::new();
        for n in 1.. {
            let Ok(text) = std::fs::read_to_string(self.dir.join(format!("{n}.json"))) else {
                break;
            };
            let mut v: Value = serde_json::from_str(&text).unwrap();
            v["body"] = Value::from(v["body"].as_str().unwrap().replace("\r\n", "\n"));
            mails.push(v);
        }
        mails
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port on which no one listens (bound, then let go).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Writes the config's `[smtp]` table (the config holds nothing else yet).
fn smtp_config(t: &Tasks, port: u16, more: &str) {
    let text = format!(
        "# Mail goes through the test's server.\n[smtp]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"plain\"\nfrom = \"tandem <tandem@example.org>\"\n{more}\n"
    );
    std::fs::write(&t.config, text).unwrap();
}

/// Points the config's `[smtp]` table at another port.
fn set_port(t: &Tasks, port: u16) {
    let text = t.config_text();
    let line = text.lines().find(|l| l.starts_with("port = ")).unwrap();
    let text = text.replace(line, &format!("port = {port}"));
    std::fs::write(&t.config, text).unwrap();
}

/// `task add x` syncing `src` with `disk`, mailing `TO` the runs `when` says.
fn add_mailing_task(t: &Tasks, when: &str) {
    t.ok(
        &[
            "task",
            "add",
            "x",
            "--source",
            "@src",
            "--target",
            "@disk",
            "--notify-email",
            TO[0],
            "--notify-email",
            TO[1],
            "--notify-when",
            when,
        ],
        0,
    );
}

fn body(mail: &Value) -> &str {
    mail["body"].as_str().unwrap()
}

/// The record of the last mail not sent, if any.
fn failure_record(t: &Tasks) -> Option<Value> {
    let text = std::fs::read_to_string(t.p("state/tandem/tasks/x/email.json")).ok()?;
    Some(serde_json::from_str(&text).unwrap())
}

#[test]
fn issue_15_email_the_result_of_a_run_with_its_paths_and_counts() {
    let t = Tasks::new(&["src", "disk", "mails"]);
    let sink = Sink::start(&t.p("mails"), &[]);
    smtp_config(&t, sink.port, "");
    add_mailing_task(&t, "problems");
    let show = t.json(&["task", "show", "x", "--json"]);
    assert_eq!(show["notify_email"], serde_json::json!(TO));
    assert_eq!(show["notify_when"], "problems");
    let shown = t.ok(&["task", "show", "x"], 0).stdout;
    assert!(shown.contains("notify_when:      problems"), "{shown}");

    // In sync: `problems` mails nothing.
    write_file(&t.p("src/p"), b"p");
    write_file(&t.p("src/odd\x1bname"), b"o");
    t.ok(&["run", "x"], 0);
    assert_eq!(sink.mails().len(), 0, "{:?}", sink.mails());

    // Two conflicts (one on a name with a control character) and a path skipped.
    write_file(&t.p("src/p"), b"source side");
    write_file(&t.p("disk/src/p"), b"target side");
    write_file(&t.p("src/odd\x1bname"), b"source side");
    write_file(&t.p("disk/src/odd\x1bname"), b"target side");
    let fifo = t.p("src/pipe");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let out = t.ok(&["run", "x"], 1);
    out.assert_stderr_has("task x: the result was mailed to alice@example.org");
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let m = &mails[0];
    assert_eq!(m["subject"], "[tandem] x: 2 conflicts, 1 problem");
    assert_eq!(m["mail_from"], "tandem@example.org");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["alice@example.org", "ops@example.org"])
    );
    assert_eq!(m["from"], "tandem <tandem@example.org>");
    let b = body(m);
    for line in [
        "Task x: 2 conflicts, 1 problem\n",
        "Trigger:   manual\n",
        "Exit code: 1\n",
        "Counts:    4 copied (44 bytes), 0 deleted, 2 renamed, 0 folders made, 2 conflicts, 1 skipped, 0 failed\n",
        &format!(
            "\n{} -> {}: 4 copied, 0 deleted, 2 renamed, 2 conflicts, 1 skipped, 0 failed\n",
            t.s("src"),
            t.s("disk/src")
        ),
        "  conflict: p: ",
        "  conflict: odd\\x1bname: ",
        "  skipped: pipe: source: special file",
        "Next run:  none (the task runs by hand: tandem run x)\n",
    ] {
        assert!(b.contains(line), "{line:?} not in:\n{b}");
    }
    for label in ["Started:   20", "Ended:     20", "Duration:  "] {
        assert!(b.contains(label), "{label:?} not in:\n{b}");
    }
    assert!(!b.contains('\x1b'), "a raw control character in:\n{b}");
    assert_eq!(failure_record(&t), None);
}

#[test]
fn issue_15_notify_when_picks_the_runs_mailed() {
    let t = Tasks::new(&["src", "disk", "mails"]);
    let sink = Sink::start(&t.p("mails"), &[]);
    smtp_config(&t, sink.port, "");
    add_mailing_task(&t, "failure");
    write_file(&t.p("src/p"), b"p");
    t.ok(&["run", "x"], 0);
    write_file(&t.p("src/p"), b"source side");
    write_file(&t.p("disk/src/p"), b"target side");
    t.ok(&["run", "x"], 1);
    assert_eq!(
        sink.mails().len(),
        0,
        "`failure` mailed a run with a conflict"
    );

    // A `before` that fails skips the sync: mailed, with the hooks' outcomes.
    t.ok(
        &["task", "edit", "x", "--before", "exit 4", "--after", "true"],
        0,
    );
    t.ok(&["run", "x"], 2);
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(
        mails[0]["subject"],
        "[tandem] x: skipped (the before command failed)"
    );
    let b = body(&mails[0]);
    assert!(
        b.contains("Hook:      the before hook exited with 4 (`exit 4`, "),
        "{b}"
    );
    assert!(
        b.contains("Hook:      the after hook succeeded (`true`, "),
        "{b}"
    );

    // `always`: a run in sync is mailed too, with the next scheduled run.
    t.ok(
        &[
            "task",
            "edit",
            "x",
            "--before",
            "",
            "--notify-when",
            "always",
            "--schedule",
            "every 1h",
            "--schedule",
            "at-start",
        ],
        0,
    );
    // The first run syncs the conflict's copy; the second has nothing to do.
    t.tandem(&["run", "x"]);
    t.ok(&["run", "x"], 0);
    let mails = sink.mails();
    assert_eq!(mails.len(), 3, "{mails:?}");
    assert_eq!(mails[2]["subject"], "[tandem] x: ok");
    let b = body(&mails[2]);
    let next = b.lines().find(|l| l.starts_with("Next run:  ")).unwrap();
    assert!(
        next.starts_with("Next run:  20") && !next.contains("none"),
        "{b}"
    );

    // A source gone: the run fails, and `failure` mails it with the reason.
    t.ok(&["task", "edit", "x", "--notify-when", "failure"], 0);
    std::fs::rename(t.p("src"), t.p("src-moved")).unwrap();
    t.ok(&["run", "x"], 2);
    let mails = sink.mails();
    assert_eq!(mails.len(), 4, "{mails:?}");
    assert_eq!(mails[3]["subject"], "[tandem] x: failed");
    assert!(
        body(&mails[3]).contains("does not exist"),
        "{}",
        body(&mails[3])
    );
}

#[test]
fn issue_15_a_refused_mail_leaves_the_run_alone_and_is_recorded() {
    let t = Tasks::new(&["src", "disk", "mails", "mails2"]);
    let refusing = Sink::start(&t.p("mails"), &["--refuse-rcpt"]);
    smtp_config(&t, refusing.port, "");
    add_mailing_task(&t, "always");
    write_file(&t.p("src/f"), b"f");
    let out = t.ok(&["run", "x"], 0);
    out.assert_stderr_has("trying again");
    out.assert_stderr_has("task x: the result could not be mailed to alice@example.org");
    out.assert_stderr_has("550");
    assert_eq!(std::fs::read(t.p("disk/src/f")).unwrap(), b"f");
    let record = failure_record(&t).expect("email.json records the failure");
    assert_eq!(record["to"], serde_json::json!(TO));
    let error = record["error"].as_str().unwrap();
    assert!(
        error.contains("550") && error.contains("refused by the test server"),
        "{error}"
    );
    let at = record["at"].as_str().unwrap();
    at.parse::<jiff::Timestamp>()
        .unwrap_or_else(|e| panic!("{at}: {e}"));
    assert_eq!(record.as_object().unwrap().len(), 3, "{record}");
    assert!(!t.p("state/tandem/tasks/x/email.json.tmp").exists());
    assert_eq!(refusing.mails().len(), 0);

    // A conflict keeps its exit code as well.
    write_file(&t.p("src/f"), b"source side");
    write_file(&t.p("disk/src/f"), b"target side");
    t.ok(&["run", "x"], 1);

    // A server that takes it: the mail goes, the record goes.
    let sink = Sink::start(&t.p("mails2"), &[]);
    set_port(&t, sink.port);
    t.ok(&["run", "x"], 0);
    assert_eq!(sink.mails().len(), 1);
    assert_eq!(failure_record(&t), None);
}

#[test]
fn issue_15_no_mail_server_listening_is_logged_and_recorded() {
    let t = Tasks::new(&["src", "disk"]);
    smtp_config(&t, free_port(), "");
    add_mailing_task(&t, "always");
    write_file(&t.p("src/f"), b"f");
    let out = t.ok(&["run", "x"], 0);
    out.assert_stderr_has("task x: the result could not be mailed");
    out.assert_stderr_has("Connection refused");
    assert_eq!(std::fs::read(t.p("disk/src/f")).unwrap(), b"f");
    let record = failure_record(&t).expect("email.json records the failure");
    assert!(
        record["error"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{record}"
    );
    // A dry run mails nothing and leaves the record.
    t.ok(&["run", "x", "--dry-run"], 0);
    assert!(failure_record(&t).is_some());
}

#[test]
fn issue_15_test_email_sends_or_fails_with_the_servers_reason() {
    let t = Tasks::new(&["src", "disk", "mails", "refused"]);
    let sink = Sink::start(&t.p("mails"), &[]);
    smtp_config(&t, sink.port, "");
    add_mailing_task(&t, "failure");
    let out = t.ok(&["task", "test-email", "x"], 0);
    assert!(
        out.stdout
            .contains("sent a test message to alice@example.org"),
        "{}",
        out.all()
    );
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0]["subject"], "[tandem] x: test message");
    let b = body(&mails[0]);
    assert!(b.contains("Which runs:  failure"), "{b}");
    assert!(
        b.contains(&format!("Server:      127.0.0.1:{} (plain)", sink.port)),
        "{b}"
    );

    let refusing = Sink::start(&t.p("refused"), &["--refuse-rcpt"]);
    set_port(&t, refusing.port);
    let out = t.ok(&["task", "test-email", "x"], 1);
    out.assert_stderr_has("no test message sent");
    out.assert_stderr_has("550");
    set_port(&t, free_port());
    let out = t.ok(&["task", "test-email", "x"], 1);
    out.assert_stderr_has("Connection refused");

    t.ok(
        &[
            "task", "add", "quiet", "--source", "@src", "--target", "@disk",
        ],
        0,
    );
    let out = t.ok(&["task", "test-email", "quiet"], 2);
    out.assert_stderr_has("task quiet mails no one");
}

#[test]
fn issue_15_login_with_a_password_command() {
    let t = Tasks::new(&["src", "disk", "mails"]);
    let sink = Sink::start(&t.p("mails"), &["--auth", "tandem:s3cret"]);
    smtp_config(
        &t,
        sink.port,
        "user = \"tandem\"\npassword_command = \"printf 's3cret\\\\nnot this line'\"",
    );
    add_mailing_task(&t, "problems");
    t.ok(&["task", "test-email", "x"], 0);
    assert_eq!(sink.mails()[0]["login"], "tandem");

    let text = t.config_text().replace("s3cret\\\\n", "wrong\\\\n");
    std::fs::write(&t.config, text).unwrap();
    let out = t.ok(&["task", "test-email", "x"], 1);
    out.assert_stderr_has("535");

    let text = t.config_text();
    let line = text
        .lines()
        .find(|l| l.starts_with("password_command"))
        .unwrap();
    let text = text.replace(line, "password_command = \"echo no key >&2; exit 3\"");
    std::fs::write(&t.config, text).unwrap();
    let out = t.ok(&["task", "test-email", "x"], 1);
    out.assert_stderr_has(
        "password_command `echo no key >&2; exit 3` failed (exit status: 3): no key",
    );
    assert_eq!(sink.mails().len(), 1);
}

#[test]
fn issue_15_a_self_signed_certificate_is_refused() {
    let t = Tasks::new(&["src", "disk", "mails", "mails2"]);
    let (cert, key) = (
        format!("{SUPPORT}/selfsigned.crt"),
        format!("{SUPPORT}/selfsigned.key"),
    );
    let sink = Sink::start(&t.p("mails"), &["--starttls", &cert, &key]);
    smtp_config(&t, sink.port, "");
    let text = t.config_text().replace("\"plain\"", "\"starttls\"");
    std::fs::write(&t.config, text).unwrap();
    add_mailing_task(&t, "always");
    let out = t.ok(&["task", "test-email", "x"], 1);
    out.assert_stderr_has("certificate");
    out.assert_stderr_has("the server's certificate is not trusted here");
    write_file(&t.p("src/f"), b"f");
    t.ok(&["run", "x"], 0);
    let record = failure_record(&t).expect("email.json records the failure");
    assert!(
        record["error"].as_str().unwrap().contains("certificate"),
        "{record}"
    );

    // TLS from the first byte: refused the same way.
    let tls = Sink::start(&t.p("mails2"), &["--tls", &cert, &key]);
    set_port(&t, tls.port);
    let text = t.config_text().replace("\"starttls\"", "\"tls\"");
    std::fs::write(&t.config, text).unwrap();
    let out = t.ok(&["task", "test-email", "x"], 1);
    out.assert_stderr_has("the server's certificate is not trusted here");
    assert_eq!(sink.mails().len() + tls.mails().len(), 0);
}

/// A config the test writes, then `task list`: refused with `message`.
fn refused_config(t: &Tasks, text: &str, message: &str) {
    std::fs::write(&t.config, text).unwrap();
    let out = t.ok(&["task", "list"], 2);
    let want = format!("{}{message}", t.config.display());
    out.assert_stderr_has(&want);
}

#[test]
fn issue_15_mail_settings_are_checked_with_file_line_and_key() {
    let t = Tasks::new(&["src", "disk"]);
    let smtp = "[smtp]\nhost = \"mail.example.org\"\nfrom = \"tandem@example.org\"\n";
    refused_config(&t, &format!("{smtp}hots = \"x\"\n"), ":4: smtp.hots: unknown key (known keys: host, port, security, user, password_command, password_env, from)");
    refused_config(
        &t,
        &format!("{smtp}security = \"ssl\"\n"),
        ":4: smtp.security: \"ssl\" is not a security (use tls, starttls, plain)",
    );
    refused_config(
        &t,
        &format!("{smtp}port = 70000\n"),
        ":4: smtp.port: 70000 is not a port number",
    );
    refused_config(
        &t,
        "\n[smtp]\nhost = \"mail.example.org\"\n",
        ":2: smtp.from: is required",
    );
    refused_config(
        &t,
        "[smtp]\nhost = \"h\"\nfrom = \"not an address\"\n",
        ":3: smtp.from: \"not an address\" is not a mail address",
    );
    refused_config(
        &t,
        &format!("{smtp}user = \"me\"\n"),
        ":4: smtp.user: needs password_command or password_env",
    );
    let task = format!(
        "[task.x]\nsources = [\"{}\"]\ntarget = \"{}\"\nnotify_email = [\"a@example.org\"]\n",
        t.s("src"),
        t.s("disk")
    );
    refused_config(
        &t,
        &task,
        ":4: task x, notify_email: mail needs an [smtp] table",
    );
    refused_config(&t, &format!("{smtp}{}notify_when = \"sometimes\"\n", task), ":8: task x, notify_when: \"sometimes\" is not a notify-when (use always, problems, failure)");

    // Bad input on the command line: refused, the config unchanged.
    std::fs::write(&t.config, smtp).unwrap();
    let out = t.ok(
        &[
            "task",
            "add",
            "x",
            "--source",
            "@src",
            "--target",
            "@disk",
            "--notify-email",
            "alice at example",
        ],
        2,
    );
    out.assert_stderr_has("task x, notify_email: \"alice at example\" is not a mail address");
    let out = t.ok(
        &[
            "task",
            "add",
            "x",
            "--source",
            "@src",
            "--target",
            "@disk",
            "--notify-when",
            "sometimes",
        ],
        2,
    );
    out.assert_stderr_has("sometimes");
    assert_eq!(t.config_text(), smtp);

    // An address list can be emptied: no mail, the key gone.
    t.ok(
        &[
            "task",
            "add",
            "x",
            "--source",
            "@src",
            "--target",
            "@disk",
            "--notify-email",
            "a@example.org",
        ],
        0,
    );
    t.ok(&["task", "edit", "x", "--no-notify-email"], 0);
    assert!(
        !t.config_text().contains("notify_email"),
        "{}",
        t.config_text()
    );
}

/// A continuous task's mount mails one message per burst its delete brake holds (issue
/// 18): how many, by whom, and the commands to release or restore them; whatever
/// `notify_when` says (a hold waits for the user), never again for the same burst, and
/// not for its release.
#[test]
fn issue_18_a_hold_sends_one_email() {
    use crate::daemon::{held_paths, Home, Unmount};
    use crate::mount::wait_for;
    use std::time::Duration;
    if !crate::mount::fuse_available() {
        return;
    }
    let h = Home::new();
    let sink = Sink::start(&h.p("mails"), &[]);
    let smtp = format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"plain\"\nfrom = \"tandem <tandem@example.org>\"\n",
        sink.port
    );
    std::fs::write(&h.config, smtp).unwrap();
    let src = h.dir("Docs");
    let names: Vec<String> = (0..20).map(|i| format!("f{i:02}")).collect();
    for n in &names {
        std::fs::write(src.join(n), "x").unwrap();
    }
    h.add_task(
        "live",
        "Docs",
        "backup",
        &[
            "--continuous",
            "--delete-brake",
            "5/60s",
            "--notify-email",
            TO[0],
            "--notify-when",
            "failure",
        ],
    );
    let _unmount = Unmount(src.clone());
    let mut d = h.daemon();
    wait_for(
        "the mount and its first sync",
        Duration::from_secs(60),
        || crate::mount::is_fuse(&src) && h.p("backup/Docs/f19").exists(),
    );
    crate::daemon::rm_until_held(&h, &src, &names);
    wait_for("the mail of the hold", Duration::from_secs(30), || {
        !sink.mails().is_empty()
    });
    // Long enough for a second message, were the burst mailed in parts.
    std::thread::sleep(Duration::from_secs(5));
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let m = &mails[0];
    assert_eq!(m["subject"], "[tandem] live: 20 deletions held", "{m}");
    assert_eq!(m["rcpt_tos"], serde_json::json!(["alice@example.org"]));
    let b = body(m);
    let (s, t) = (src.display(), h.p("backup/Docs").display().to_string());
    for line in [
        format!("the delete brake of the mount of {s} holds 20 deletions.\n"),
        "By:     rm (pid ".to_string(),
        format!(", uid {})\n", rustix::process::getuid().as_raw()),
        "Since:  20".to_string(),
        format!("    tandem release {s} {t} --batch 1\n"),
        format!("    tandem restore {s} {t} --held --batch 1\n"),
    ] {
        assert!(b.contains(&line), "{line:?} not in:\n{b}");
    }
    // `status --json` reports the hold too.
    let status: Value = serde_json::from_str(
        &h.tandem(&["status", src.to_str().unwrap(), "--json"], 1)
            .stdout,
    )
    .unwrap();
    assert_eq!(status["held_deletions"], 20, "{status}");
    assert_eq!(status["held"][0]["count"], 20, "{status}");
    assert_eq!(status["held"][0]["program"], "rm", "{status}");
    assert_eq!(status["held"][0]["batch"], 1, "{status}");
    let task: Value =
        serde_json::from_str(&h.tandem(&["status", "live", "--json"], 1).stdout).unwrap();
    assert_eq!(task["pairs"][0]["held_deletions"], 20, "{task}");
    let human = h.tandem(&["status", "live"], 1).stdout;
    assert!(
        human.contains("  held:       20 deletions not replayed to "),
        "{human}"
    );
    // Released: replicated, and no other mail.
    h.tandem(&["release", src.to_str().unwrap()], 0);
    wait_for("the release replicated", Duration::from_secs(30), || {
        !h.p("backup/Docs/f00").exists() && held_paths(&h, &src) == 0
    });
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(sink.mails().len(), 1, "{:?}", sink.mails());
    assert_eq!(d.stop(), 0, "{}", d.stderr());
    assert_eq!(sink.mails().len(), 1, "{:?}", sink.mails());
}

/// A mount with two targets holds a burst of deletions through it once per target: the
/// two holds begin together and go out in one message, which lists each with its own
/// commands.
#[test]
fn issue_18_the_holds_of_several_targets_go_out_in_one_email() {
    use crate::fixtures::{run_tandem_with_env, Pair, S};
    use crate::mount::{fuse_available, wait_for, Mounted};
    use std::time::Duration;
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    let sink = Sink::start(&p.tmp.path().join("mails"), &[]);
    let config = p.tmp.path().join("config.toml");
    let smtp = format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"plain\"\nfrom = \"tandem <tandem@example.org>\"\n",
        sink.port
    );
    std::fs::write(&config, smtp).unwrap();
    let xdg = p.tmp.path().join("xdg");
    let env = [("XDG_STATE_HOME", xdg.as_path())];
    let tandem = |args: &[&str]| {
        let mut all = vec!["--config", config.to_str().unwrap()];
        all.extend_from_slice(args);
        run_tandem_with_env(all, &env)
    };
    let (src, tgt) = (p.src.to_str().unwrap(), p.tgt.to_str().unwrap());
    let add = tandem(&[
        "task",
        "add",
        "live",
        "--source",
        src,
        "--target",
        tgt,
        "--notify-email",
        TO[0],
        "--notify-when",
        "failure",
    ]);
    assert_eq!(add.code, 0, "{}", add.all());
    let names: Vec<String> = (0..20).map(|i| format!("f{i:02}")).collect();
    for n in &names {
        p.write(S::Src, n, "x");
    }
    let other = p.tmp.path().join("other");
    let config_arg = config.to_str().unwrap();
    let m = Mounted::start_with(
        &p,
        &[&other],
        &[
            "--delete-brake",
            "5/60s",
            "--task",
            "live",
            "--config",
            config_arg,
        ],
    );
    wait_for("both targets synced", Duration::from_secs(60), || {
        p.exists(S::Tgt, "f19") && other.join("f19").exists()
    });
    let st = Command::new("rm")
        .args(names.iter().map(|n| p.path(S::Src, n)))
        .status()
        .unwrap();
    assert!(st.success());
    let held = |t: &str| -> usize {
        let out = tandem(&["held", src, t, "--json"]);
        let v: Value = serde_json::from_str(&out.stdout).unwrap_or_default();
        v["held"].as_array().map_or(0, Vec::len)
    };
    let other_s = other.to_str().unwrap();
    wait_for("both targets hold", Duration::from_secs(30), || {
        held(tgt) == names.len() && held(other_s) == names.len()
    });
    wait_for("the mail of the holds", Duration::from_secs(30), || {
        !sink.mails().is_empty()
    });
    // Long enough for a second message, were each target's hold mailed on its own.
    std::thread::sleep(Duration::from_secs(5));
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let m0 = &mails[0];
    assert_eq!(
        m0["subject"], "[tandem] live: 40 deletions held in 2 holds",
        "{m0}"
    );
    let b = body(m0);
    for line in [
        format!("the delete brake of the mount of {src} holds 40 deletions, in\n2 holds"),
        "--- Hold 1 of 2: 20 deletions, target ".to_string(),
        "--- Hold 2 of 2: 20 deletions, target ".to_string(),
        format!("    tandem release {src} {tgt} --batch "),
        format!("    tandem release {src} {other_s} --batch "),
        format!("    tandem restore {src} {other_s} --held --batch "),
    ] {
        assert!(b.contains(&line), "{line:?} not in:\n{b}");
    }
    assert_eq!(b.matches("By:     rm (pid ").count(), 2, "{b}");
    m.stop();
}
