//! A remote target over SSH (issue 17), against a real OpenSSH server: each test starts its
//! own `sshd` on a free loopback port, with a host key and a user key made for it, and the
//! remote `tandem` is the binary under test. Under CI=true a missing or failing sshd is a
//! failure, not a skip (`.ci/run` installs Debian's openssh-server).

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::fixtures::{bin, run_tandem, write_file, Out, Pair, S};

const SSHD: &str = "/usr/sbin/sshd";

/// An sshd of the test's own, stopped when dropped.
struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    /// Replaced when it listens again (`listen_again`).
    child: std::cell::RefCell<Child>,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop_listening();
    }
}

/// Skips (or, under CI=true, fails) a test that cannot have its sshd.
fn unavailable(test: &str, why: &str) -> Option<Sshd> {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true, but {test} cannot start sshd: {why}");
    }
    eprintln!("SKIPPED {test}: cannot start sshd ({why}); set CI=true to make this a failure");
    None
}

fn keygen(path: &Path) -> Result<(), String> {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .output()
        .map_err(|e| format!("ssh-keygen: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Starts sshd with the configuration in `d` and waits until it listens on `port`.
fn spawn_sshd(d: &Path, port: u16) -> Result<Child, String> {
    let mut child = Command::new(SSHD)
        .args(["-D", "-e", "-f"])
        .arg(d.join("sshd_config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{SSHD}: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return Err(format!("sshd exited ({status}): {err}"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("sshd did not listen within 20 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(child)
}

impl Sshd {
    /// Stops listening (the sessions already open live on, as with a restarted sshd).
    fn stop_listening(&self) {
        let mut child = self.child.borrow_mut();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Listens again on the same port, with the same keys.
    fn listen_again(&self) {
        *self.child.borrow_mut() = spawn_sshd(self.dir.path(), self.port).unwrap();
    }

    fn start(test: &str) -> Option<Sshd> {
        if !Path::new(SSHD).exists() {
            return unavailable(test, "no /usr/sbin/sshd (Debian's openssh-server)");
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for key in ["host_key", "client_key"] {
            if let Err(e) = keygen(&d.join(key)) {
                return unavailable(test, &e);
            }
        }
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nPermitRootLogin yes\nLogLevel ERROR\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        // Run as root, sshd insists on its privilege separation folder (made by the
        // service's start-up, which has not run here).
        if rustix::process::geteuid().is_root() {
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let child = match spawn_sshd(d, port) {
            Ok(child) => child,
            Err(e) => return unavailable(test, &e),
        };
        Some(Sshd {
            dir,
            port,
            child: child.into(),
        })
    }

    /// `--ssh`: our key, and no questions about a host key made a moment ago.
    fn ssh(&self) -> String {
        format!(
            "ssh -i {}/client_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes",
            self.dir.path().display()
        )
    }

    /// The remote name of the local folder `path`.
    fn url(&self, path: &Path) -> String {
        let user =
            String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            user.trim(),
            self.port,
            path.display()
        )
    }
}

/// A pair whose target is reached over ssh through an sshd of its own, for a local pair's
/// test to run against a remote target too (one test body, two pairs). `None`: no sshd
/// here (skipped, or under CI=true a failure).
pub(crate) fn over_ssh(test: &str) -> Option<Pair> {
    let sshd = Sshd::start(test)?;
    let mut pair = Pair::new();
    pair.remote = Some(crate::fixtures::Remote {
        url: sshd.url(&pair.tgt),
        ssh: sshd.ssh(),
        _server: std::sync::Mutex::new(Box::new(sshd)),
    });
    Some(pair)
}

/// A pair whose target is reached over ssh (the folder itself is local to the test, so
/// that it can be checked directly).
struct RemotePair {
    pair: Pair,
    sshd: Sshd,
}

impl RemotePair {
    fn new(test: &str) -> Option<RemotePair> {
        let sshd = Sshd::start(test)?;
        Some(RemotePair {
            pair: Pair::new(),
            sshd,
        })
    }

    fn url(&self) -> String {
        self.sshd.url(&self.pair.tgt)
    }

    /// `tandem CMD SRC ssh://...TGT --state-dir STATE ARGS...`
    fn cmd(&self, cmd: &str, args: &[&str]) -> Out {
        self.cmd_env(cmd, args, &[])
    }

    /// [`RemotePair::cmd`] with `env` set for tandem.
    fn cmd_env(&self, cmd: &str, args: &[&str], env: &[(&str, &Path)]) -> Out {
        let (url, ssh) = (self.url(), self.sshd.ssh());
        let mut v: Vec<&OsStr> = vec![OsStr::new(cmd), self.pair.src.as_os_str(), OsStr::new(&url)];
        v.extend([OsStr::new("--state-dir"), self.pair.state.as_os_str()]);
        if cmd == "sync" || cmd == "resolve" {
            v.extend([
                OsStr::new("--ssh"),
                OsStr::new(&ssh),
                OsStr::new("--remote-tandem"),
            ]);
            v.push(OsStr::new(bin()));
        }
        v.extend(args.iter().map(OsStr::new));
        crate::fixtures::run_tandem_with_env(v, env)
    }

    fn sync_ok(&self, args: &[&str], code: i32) -> Out {
        let out = self.cmd("sync", args);
        assert_eq!(out.code, code, "tandem sync {args:?}:\n{}", out.all());
        out
    }
}

/// The file data a run's summary says crossed the wire: (sent, received).
fn data_bytes(out: &Out) -> (u64, u64) {
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("remote: "))
        .unwrap_or_else(|| panic!("no remote line in:\n{}", out.all()));
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[1].parse().unwrap(), words[7].parse().unwrap())
}

#[test]
fn issue_17_first_sync_both_ways() {
    let Some(p) = RemotePair::new("issue_17_first_sync_both_ways") else {
        return;
    };
    let pair = &p.pair;
    pair.write(S::Src, "a.txt", "from the source");
    pair.write(S::Src, "deep/er/b.txt", "nested");
    std::os::unix::fs::symlink("a.txt", pair.path(S::Src, "link")).unwrap();
    pair.write(S::Tgt, "c.txt", "from the target");
    let out = p.sync_ok(&[], 0);
    pair.assert_same();
    assert_eq!(pair.read(S::Tgt, "deep/er/b.txt"), "nested");
    assert_eq!(pair.read(S::Src, "c.txt"), "from the target");
    let sent = "from the source".len() + "nested".len();
    assert_eq!(
        data_bytes(&out),
        (sent as u64, "from the target".len() as u64)
    );
}

#[test]
fn issue_17_a_missing_remote_folder_is_made_by_the_first_sync_only() {
    let Some(p) =
        RemotePair::new("issue_17_a_missing_remote_folder_is_made_by_the_first_sync_only")
    else {
        return;
    };
    let pair = &p.pair;
    std::fs::remove_dir(&pair.tgt).unwrap();
    pair.write(S::Src, "a.txt", "one");
    // A dry run creates nothing there.
    let out = p.cmd("sync", &["--dry-run"]);
    assert_ne!(out.code, 0, "{}", out.all());
    assert!(!pair.tgt.exists());
    p.sync_ok(&[], 0);
    assert_eq!(pair.read(S::Tgt, "a.txt"), "one");
    // Once synced, a folder gone is not made again (an unmounted disk there?).
    std::fs::remove_dir_all(&pair.tgt).unwrap();
    let out = p.cmd("sync", &[]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(!pair.tgt.exists());
}

#[test]
fn issue_17_changes_on_each_side_then_resync() {
    let Some(p) = RemotePair::new("issue_17_changes_on_each_side_then_resync") else {
        return;
    };
    let pair = &p.pair;
    pair.write(S::Src, "edit.txt", "v1");
    pair.write(S::Src, "gone.txt", "to be deleted");
    pair.write(S::Src, "dir/keep.txt", "kept");
    p.sync_ok(&[], 0);
    pair.write(S::Src, "edit.txt", "v2 from the source");
    std::fs::remove_file(pair.path(S::Src, "gone.txt")).unwrap();
    pair.write(S::Tgt, "dir/new.txt", "made on the server");
    // A dry run plans and changes nothing on either side.
    let out = p.sync_ok(&["--dry-run"], 0);
    assert!(out.stdout.contains("edit.txt"), "{}", out.all());
    assert_eq!(pair.read(S::Tgt, "edit.txt"), "v1");
    assert!(!pair.exists(S::Src, "dir/new.txt"));
    p.sync_ok(&[], 0);
    pair.assert_same();
    assert_eq!(pair.read(S::Tgt, "edit.txt"), "v2 from the source");
    assert_eq!(pair.read(S::Src, "dir/new.txt"), "made on the server");
    // What was overwritten and deleted on the remote side is in its trash.
    assert_eq!(pair.trash_contents(S::Tgt), vec!["to be deleted", "v1"]);
}

/// Folders made and files deleted on the remote side are many requests in flight at
/// once, not one round trip after another; related steps keep their order (a folder is
/// made before what goes in it, emptied before it is deleted).
#[test]
fn issue_17_folders_made_and_files_deleted_are_pipelined() {
    let Some(p) = RemotePair::new("issue_17_folders_made_and_files_deleted_are_pipelined") else {
        return;
    };
    let pair = &p.pair;
    for d in 0..150 {
        std::fs::create_dir_all(pair.path(S::Src, &format!("d{d}/inner"))).unwrap();
    }
    let in_flight = |out: &Out| -> u64 {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with("remote: "))
            .unwrap();
        let n = line.rsplit("up to ").next().unwrap();
        n.split_whitespace().next().unwrap().parse().unwrap()
    };
    let made = p.sync_ok(&[], 0);
    pair.assert_same();
    assert!(in_flight(&made) >= 8, "{}", made.all());
    for d in 0..150 {
        pair.write(S::Src, &format!("d{d}/inner/f"), "x");
    }
    p.sync_ok(&[], 0);
    for d in 0..150 {
        std::fs::remove_dir_all(pair.path(S::Src, &format!("d{d}"))).unwrap();
    }
    let gone = p.sync_ok(&["--max-delete", "100%"], 0);
    assert!(in_flight(&gone) >= 8, "{}", gone.all());
    pair.assert_same();
    assert_eq!(pair.trash_contents(S::Tgt).len(), 150);
}

/// A run longer than a window (`order::WINDOW`, 8,192 steps) is pipelined a window at a
/// time: each step's dependencies are worked out over its window, not over the whole run
/// (a debug build checks it), and nothing is lost between windows.
#[test]
fn issue_17_a_run_longer_than_a_window_is_pipelined_window_by_window() {
    let Some(p) = RemotePair::new("issue_17_a_run_longer_than_a_window") else {
        return;
    };
    let pair = &p.pair;
    for d in 0..8_300 {
        std::fs::create_dir(pair.path(S::Src, &format!("d{d}"))).unwrap();
    }
    let out = p.sync_ok(&[], 0);
    let line = out.stdout.lines().find(|l| l.starts_with("remote: "));
    assert!(
        line.is_some_and(|l| !l.ends_with("up to 1 requests in flight")),
        "{}",
        out.all()
    );
    pair.assert_same();
}

/// `tandem forget SRC host:/TGT` forgets the pair the sync recorded under that name (it
/// took the URL for a local path, found another pair's name in the state and refused).
#[test]
fn issue_17_forget_a_pair_with_a_remote_target() {
    let Some(p) = RemotePair::new("issue_17_forget_a_pair_with_a_remote_target") else {
        return;
    };
    let pair = &p.pair;
    pair.write(S::Src, "a.txt", "synced");
    p.sync_ok(&[], 0);
    std::fs::remove_file(pair.path(S::Tgt, "a.txt")).unwrap();
    let out = p.cmd("forget", &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(!pair.state.join("state.db").exists(), "{}", out.all());
    assert!(
        out.stdout.contains("marker"),
        "the source's marker: {}",
        out.all()
    );
    // A first sync again: the file deleted on the target comes back, as it would after
    // forgetting a local pair.
    p.sync_ok(&[], 0);
    assert_eq!(pair.read(S::Tgt, "a.txt"), "synced");
}

/// `status` shows what the remote side's trash holds, as the sync's prune counted it
/// there, without reaching the other machine itself.
#[test]
fn issue_17_status_shows_the_remote_trash_as_its_last_prune_counted_it() {
    let Some(p) = RemotePair::new("issue_17_status_shows_the_remote_trash") else {
        return;
    };
    let pair = &p.pair;
    pair.write(S::Src, "edit.txt", "v1");
    pair.write(S::Src, "gone.txt", "to be deleted");
    p.sync_ok(&[], 0);
    let status = |p: &RemotePair| {
        let out = p.cmd("status", &["--json"]);
        let v: serde_json::Value =
            serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.all()));
        (v["trash"]["target"].clone(), p.cmd("status", &[]).stdout)
    };
    let (t, text) = status(&p);
    assert_eq!(t["versions"], 0, "{t}");
    assert!(text.contains("target 0 versions"), "{text}");
    pair.write(S::Src, "edit.txt", "v2 from the source");
    std::fs::remove_file(pair.path(S::Src, "gone.txt")).unwrap();
    p.sync_ok(&[], 0);
    assert_eq!(pair.trash_contents(S::Tgt), vec!["to be deleted", "v1"]);
    let (t, text) = status(&p);
    assert_eq!(t["versions"], 2, "{t}");
    assert_eq!(t["bytes"], 15, "{t}");
    assert!(t["counted_at_ns"].as_i64().is_some(), "{t}");
    assert!(
        text.contains("target 2 versions, 15 B (counted just now)"),
        "{text}"
    );
}

#[test]
fn issue_17_conflict_kept_both() {
    let Some(p) = RemotePair::new("issue_17_conflict_kept_both") else {
        return;
    };
    let pair = &p.pair;
    pair.write(S::Src, "c.txt", "base");
    p.sync_ok(&[], 0);
    pair.write(S::Src, "c.txt", "source edit");
    pair.write(S::Tgt, "c.txt", "target edit, longer");
    let out = p.sync_ok(&[], 1);
    assert!(out.stdout.contains("kept both"), "{}", out.all());
    pair.assert_same();
    let copies = pair.names_with(S::Src, "c.conflict-");
    assert_eq!(copies.len(), 1, "{copies:?}");
    let mut versions = vec![pair.read(S::Src, "c.txt"), pair.read(S::Src, &copies[0])];
    versions.sort();
    assert_eq!(versions, vec!["source edit", "target edit, longer"]);
    // The pair's conflicts and status are there as for a local pair.
    let listed = p.cmd("conflicts", &[]);
    assert!(listed.stdout.contains("c.txt"), "{}", listed.all());
    let status = p.cmd("status", &[]);
    assert!(status.stdout.contains(&p.url()), "{}", status.all());
    assert!(status.stdout.contains("1 open"), "{}", status.all());
}

#[test]
fn issue_17_a_resync_with_no_change_sends_no_file_data() {
    let Some(p) = RemotePair::new("issue_17_a_resync_with_no_change_sends_no_file_data") else {
        return;
    };
    let pair = &p.pair;
    for i in 0..50 {
        pair.write(
            S::Src,
            &format!("d{}/f{i}.txt", i % 5),
            &"x".repeat(1000 + i),
        );
        pair.write(S::Tgt, &format!("t/g{i}.txt"), &"y".repeat(1000 + i));
    }
    let first = p.sync_ok(&[], 0);
    assert!(data_bytes(&first).0 > 50_000, "{}", first.all());
    let again = p.sync_ok(&[], 0);
    assert!(again.stdout.contains("nothing to do"), "{}", again.all());
    assert_eq!(data_bytes(&again), (0, 0), "{}", again.all());
}

#[test]
fn issue_17_a_renamed_folder_is_replayed_as_a_rename() {
    let Some(p) = RemotePair::new("issue_17_a_renamed_folder_is_replayed_as_a_rename") else {
        return;
    };
    let pair = &p.pair;
    for i in 0..20 {
        pair.write(
            S::Src,
            &format!("photos/p{i}.jpg"),
            &format!("{i}").repeat(5000),
        );
    }
    p.sync_ok(&[], 0);
    let ino = pair.ino(S::Tgt, "photos/p7.jpg");
    std::fs::rename(pair.path(S::Src, "photos"), pair.path(S::Src, "albums")).unwrap();
    let out = p.sync_ok(&[], 0);
    pair.assert_same();
    assert!(out.stdout.contains("1 renamed"), "{}", out.all());
    assert_eq!(data_bytes(&out), (0, 0), "{}", out.all());
    // The very file, moved: not a copy.
    assert_eq!(pair.ino(S::Tgt, "albums/p7.jpg"), ino);
}

#[test]
fn issue_17_a_wrong_remote_tandem_says_what_is_needed() {
    let Some(p) = RemotePair::new("issue_17_a_wrong_remote_tandem_says_what_is_needed") else {
        return;
    };
    let pair = &p.pair;
    pair.write(S::Src, "a.txt", "one");
    let run = |remote: &Path| {
        let (url, ssh) = (p.url(), p.sshd.ssh());
        let mut v: Vec<&OsStr> = vec![OsStr::new("sync"), pair.src.as_os_str(), OsStr::new(&url)];
        v.extend([OsStr::new("--state-dir"), pair.state.as_os_str()]);
        v.extend([
            OsStr::new("--ssh"),
            OsStr::new(&ssh),
            OsStr::new("--remote-tandem"),
        ]);
        v.push(remote.as_os_str());
        run_tandem(v)
    };
    let missing = run(Path::new("/nonexistent/tandem"));
    assert_eq!(missing.code, 2, "{}", missing.all());
    missing.assert_stderr_has("tandem was not found on 127.0.0.1");
    missing.assert_stderr_has("--remote-tandem");
    // An agent of another protocol version: what it speaks and what is needed.
    let old = p.sshd.dir.path().join("old-tandem");
    std::fs::write(
        &old,
        "#!/bin/sh\necho 'tandem-serve 0 0.0.1'\ncat >/dev/null\n",
    )
    .unwrap();
    std::fs::set_permissions(&old, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = run(&old);
    assert_eq!(out.code, 2, "{}", out.all());
    out.assert_stderr_has("speaks protocol 0 (tandem 0.0.1)");
    out.assert_stderr_has(&format!(
        "needs protocol 1: install tandem {}",
        env!("CARGO_PKG_VERSION")
    ));
    // Something else altogether.
    let out = run(Path::new("/bin/echo"));
    assert_eq!(out.code, 2, "{}", out.all());
    out.assert_stderr_has("is not a tandem that serves this protocol");
    assert!(!pair.exists(S::Tgt, "a.txt"));
}

#[test]
fn issue_17_an_emptied_remote_folder_halts() {
    let Some(p) = five_synced("issue_17_an_emptied_remote_folder_halts") else {
        return;
    };
    let pair = &p.pair;
    // Emptied on the server (a disk not mounted there?): the same halt as locally, and
    // nothing deleted on this side.
    for i in 0..5 {
        std::fs::remove_file(pair.path(S::Tgt, &format!("f{i}.txt"))).unwrap();
    }
    let out = p.sync_ok(&[], 3);
    assert!(out.all().contains("is empty"), "{}", out.all());
    assert_eq!(pair.read(S::Src, "f3.txt"), "kept");
}

/// A remote pair with five files, `f0.txt`..`f4.txt` ("kept"), synced.
fn five_synced(test: &str) -> Option<RemotePair> {
    let p = RemotePair::new(test)?;
    for i in 0..5 {
        p.pair.write(S::Src, &format!("f{i}.txt"), "kept");
    }
    p.sync_ok(&[], 0);
    Some(p)
}

/// The remote folder replaced by a symlink to an empty folder (a disk not mounted, a link
/// moved): the same halt as an emptied folder, and nothing deleted on this side.
#[test]
fn issue_17_a_remote_folder_replaced_by_a_symlink_to_an_empty_one_halts() {
    let Some(p) = five_synced("issue_17_a_remote_folder_replaced_by_a_symlink") else {
        return;
    };
    let pair = &p.pair;
    let (away, elsewhere) = (
        pair.tgt.with_file_name("tgt-away"),
        pair.tgt.with_file_name("tgt-elsewhere"),
    );
    std::fs::rename(&pair.tgt, &away).unwrap();
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::metadata(&away).unwrap().permissions()).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &pair.tgt).unwrap();
    let out = p.sync_ok(&[], 3);
    assert!(out.all().contains("is empty"), "{}", out.all());
    for i in 0..5 {
        assert_eq!(pair.read(S::Src, &format!("f{i}.txt")), "kept");
    }
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "nothing was written there"
    );
}

/// The bytes a run's summary says went out and came in on the wire, frames included.
fn wire_bytes(out: &Out) -> (u64, u64) {
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("remote: "))
        .unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    (
        words[9].trim_start_matches('(').parse().unwrap(),
        words[11].parse().unwrap(),
    )
}

#[test]
fn issue_17_compress_auto_shrinks_text_and_off_sends_it_as_it_is() {
    let text = "a line of text that repeats, as logs and sources do\n".repeat(40_000);
    let mut sent = Vec::new();
    for mode in ["off", "auto", "on"] {
        let Some(p) = RemotePair::new("issue_17_compress_auto_shrinks_text") else {
            return;
        };
        // Both ways: a file sent to the server, another coming from it.
        p.pair.write(S::Src, "log.txt", &text);
        p.pair.write(S::Tgt, "srv.txt", &text);
        let out = p.sync_ok(&["--compress", mode], 0);
        p.pair.assert_same();
        let n = text.len() as u64;
        assert_eq!(data_bytes(&out), (n, n));
        sent.push(wire_bytes(&out));
    }
    let n = text.len() as u64;
    assert!(sent[0].0 > n && sent[0].1 > n, "{sent:?}");
    for (out, back) in &sent[1..] {
        assert!(out * 10 < n && back * 10 < n, "{sent:?}");
    }
}

/// A mount of the pair's source with its remote target and a local one (`other`), in the
/// foreground; `None` (the test skipped) without FUSE.
fn mount_remote<'a>(
    p: &'a RemotePair,
    other: &Path,
    args: &[&str],
) -> Option<crate::mount::Mounted<'a>> {
    mount_remote_env(p, other, args, &[])
}

/// [`mount_remote`], with more environment for the mount.
fn mount_remote_env<'a>(
    p: &'a RemotePair,
    other: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Option<crate::mount::Mounted<'a>> {
    if !crate::mount::fuse_available() {
        return None;
    }
    std::fs::create_dir_all(other).unwrap();
    let (url, ssh) = (p.url(), p.sshd.ssh());
    let mut all = vec!["--ssh", ssh.as_str(), "--remote-tandem", bin()];
    all.extend(args);
    let targets = [OsStr::new(&url), other.as_os_str()];
    Some(crate::mount::Mounted::start_targets_env(
        &p.pair, &targets, &all, env,
    ))
}

fn has(root: &Path, rel: &str, content: &str) -> bool {
    std::fs::read(root.join(rel)).is_ok_and(|c| c == content.as_bytes())
}

const SOON: Duration = Duration::from_secs(20);

#[test]
fn issue_17_a_write_through_the_mount_arrives_on_the_remote_side() {
    let Some(p) = RemotePair::new("issue_17_a_write_through_the_mount_arrives_on_the_remote_side")
    else {
        return;
    };
    let pair = &p.pair;
    let other = pair.tmp.path().join("other");
    pair.write(S::Tgt, "before.txt", "on the server before the mount");
    let Some(m) = mount_remote(&p, &other, &[]) else {
        return;
    };
    // The startup reconcile ran before the mount served.
    assert_eq!(
        pair.read(S::Src, "before.txt"),
        "on the server before the mount"
    );
    pair.write(S::Src, "dir/a.txt", "written through the mount");
    crate::mount::wait_for("the write on the remote side", SOON, || {
        has(&pair.tgt, "dir/a.txt", "written through the mount")
    });
    crate::mount::wait_for("the write in the local target", SOON, || {
        has(&other, "dir/a.txt", "written through the mount")
    });
    std::fs::rename(pair.path(S::Src, "dir"), pair.path(S::Src, "moved")).unwrap();
    crate::mount::wait_for("the rename on the remote side", SOON, || {
        has(&pair.tgt, "moved/a.txt", "written through the mount") && !pair.exists(S::Tgt, "dir")
    });
    assert!(has(&other, "before.txt", "on the server before the mount"));
    m.stop();
    pair.assert_same();
}

/// The number of the last round trip a remote client logged (`TANDEM_LOG=debug`).
fn last_round_trip(log: &str) -> u64 {
    log.lines()
        .filter_map(|l| l.split(": round trip ").nth(1))
        .filter_map(|rest| rest.split(':').next()?.parse().ok())
        .max()
        .unwrap_or(0)
}

/// Waits until the mount's client has sent nothing more for a while; its last round trip.
fn quiet_round_trips(m: &crate::mount::Mounted<'_>) -> u64 {
    let mut last = (last_round_trip(&m.log()), Instant::now());
    let start = Instant::now();
    while last.1.elapsed() < Duration::from_millis(1500) && start.elapsed() < SOON {
        std::thread::sleep(Duration::from_millis(50));
        let now = last_round_trip(&m.log());
        if now != last.0 {
            last = (now, Instant::now());
        }
    }
    last.0
}

/// A file written through the mount reaches the remote side in one round trip: the
/// remote folder is not scanned again (nothing was heard of it since the agent last said
/// what it holds), and the folder's time asked for, the file, the folder time set, the
/// flush and the check of the remote root all go out before any answer is waited for.
/// Before, 3 a file (scan, file, flush; 8 before that), which over a 25 ms link made a
/// file arrive 75 ms after it was written. A round trip is counted at each request sent
/// after an answer was taken, as a slow link would wait them out.
#[test]
fn issue_17_a_file_written_through_the_mount_takes_few_round_trips() {
    let Some(p) =
        RemotePair::new("issue_17_a_file_written_through_the_mount_takes_few_round_trips")
    else {
        return;
    };
    if !crate::mount::fuse_available() {
        return;
    }
    let pair = &p.pair;
    let (url, ssh) = (p.url(), p.sshd.ssh());
    let args = ["--ssh", ssh.as_str(), "--remote-tandem", bin()];
    let m = crate::mount::Mounted::start_targets_env(
        pair,
        &[OsStr::new(&url)],
        &args,
        &[("TANDEM_LOG", "debug")],
    );
    std::fs::create_dir_all(pair.path(S::Src, "prop")).unwrap();
    crate::mount::wait_for("the folder on the remote side", SOON, || {
        pair.tgt.join("prop").is_dir()
    });
    // The folder just made is read again once (the agent heard its mode and time set).
    pair.write(S::Src, "prop/first", "first");
    crate::mount::wait_for("the first file on the remote side", SOON, || {
        has(&pair.tgt, "prop/first", "first")
    });
    let before = quiet_round_trips(&m);
    assert!(before > 0, "no round trip logged:\n{}", m.log());
    let files = 10;
    for i in 0..files {
        let (rel, content) = (format!("prop/f{i}"), format!("sample {i}"));
        pair.write(S::Src, &rel, &content);
        crate::mount::wait_for("the file on the remote side", SOON, || {
            has(&pair.tgt, &rel, &content)
        });
        // One file a pass, as a program writing now and then makes them.
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = quiet_round_trips(&m);
    let log = m.log();
    m.stop();
    pair.assert_same();
    let per_file = (after - before) as f64 / files as f64;
    assert!(
        per_file <= 1.2,
        "{per_file} round trips a file ({before} before, {after} after):\n{log}"
    );
}

/// The remote side is not scanned again before a file is propagated when nothing was
/// heard of it: a change made there that its agent did not see (written through a hard
/// link outside its folder, which inotify does not report there) is still not overwritten.
/// The agent re-checks the state the plan expected before it writes, the step races, the
/// next round scans for real and keeps both versions, as for any conflict.
#[test]
fn issue_17_a_remote_change_unheard_of_is_not_overwritten_by_the_mount() {
    let Some(p) =
        RemotePair::new("issue_17_a_remote_change_unheard_of_is_not_overwritten_by_the_mount")
    else {
        return;
    };
    if !crate::mount::fuse_available() {
        return;
    }
    let pair = &p.pair;
    let (url, ssh) = (p.url(), p.sshd.ssh());
    let args = [
        "--ssh",
        ssh.as_str(),
        "--remote-tandem",
        bin(),
        "--rescan-every",
        "0",
    ];
    let m = crate::mount::Mounted::start_targets_env(
        pair,
        &[OsStr::new(&url)],
        &args,
        &[("TANDEM_LOG", "debug")],
    );
    pair.write(S::Src, "dir/f.txt", "first version");
    crate::mount::wait_for("the file on the remote side", SOON, || {
        has(&pair.tgt, "dir/f.txt", "first version")
    });
    // A second name for the remote file, outside the remote folder.
    let outside = pair.tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::hard_link(pair.tgt.join("dir/f.txt"), outside.join("f.txt")).unwrap();
    quiet_round_trips(&m);
    let known = |log: &str| log.matches("not scanned again").count();
    let known_before = known(&m.log());
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(outside.join("f.txt"))
            .unwrap();
        f.write_all(b"changed on the server, unseen").unwrap();
    }
    assert!(has(&pair.tgt, "dir/f.txt", "changed on the server, unseen"));
    pair.write(S::Src, "dir/f.txt", "second version, from the mount");
    crate::mount::wait_for("a conflict copy on the remote side", SOON, || {
        !pair.names_with(S::Tgt, "f.conflict-").is_empty()
    });
    quiet_round_trips(&m);
    let log = m.log();
    m.stop();
    assert!(
        known(&log) > known_before,
        "the pass did not skip the scan of the remote side:\n{log}"
    );
    pair.assert_same();
    let copies = pair.names_with(S::Src, "f.conflict-");
    assert_eq!(copies.len(), 1, "{copies:?}\n{log}");
    let mut versions = vec![
        pair.read(S::Src, "dir/f.txt"),
        pair.read(
            S::Src,
            &format!("dir/{}", copies[0].rsplit('/').next().unwrap()),
        ),
    ];
    versions.sort();
    assert_eq!(
        versions,
        vec![
            "changed on the server, unseen",
            "second version, from the mount"
        ]
    );
}

#[test]
fn issue_17_a_change_on_the_remote_side_arrives_in_the_mounted_source() {
    let Some(p) =
        RemotePair::new("issue_17_a_change_on_the_remote_side_arrives_in_the_mounted_source")
    else {
        return;
    };
    let pair = &p.pair;
    let other = pair.tmp.path().join("other");
    // No periodic rescan: only the agent's hints can bring the change.
    let Some(m) = mount_remote(&p, &other, &["--rescan-every", "0"]) else {
        return;
    };
    pair.write(S::Tgt, "server/made.txt", "made on the server");
    let start = Instant::now();
    crate::mount::wait_for("the server's change in the mounted source", SOON, || {
        has(&pair.src, "server/made.txt", "made on the server")
    });
    let took = start.elapsed();
    crate::mount::wait_for("the server's change in the local target", SOON, || {
        has(&other, "server/made.txt", "made on the server")
    });
    assert!(
        took < Duration::from_secs(5),
        "the server's change took {took:?} to arrive"
    );
    std::fs::remove_file(pair.path(S::Tgt, "server/made.txt")).unwrap();
    crate::mount::wait_for("the server's deletion in the mounted source", SOON, || {
        !pair.exists(S::Src, "server/made.txt")
    });
    m.stop();
}

/// The ssh client processes a process started (its children named `ssh`).
fn ssh_children(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let comm = head.split_once(" (").map_or("", |(_, c)| c);
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if comm == "ssh" && ppid == Some(parent) {
            out.extend(e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()));
        }
    }
    out
}

#[test]
fn issue_17_a_dropped_connection_is_retried_and_nothing_is_lost() {
    let Some(p) = RemotePair::new("issue_17_a_dropped_connection_is_retried_and_nothing_is_lost")
    else {
        return;
    };
    let other = p.pair.tmp.path().join("other");
    p.pair.write(S::Src, "keep.txt", "kept");
    p.pair
        .write(S::Src, "old.txt", "renamed while disconnected");
    let Some(m) = mount_remote(&p, &other, &[]) else {
        return;
    };
    let pair = &p.pair;
    crate::mount::wait_for("the startup sync", SOON, || {
        has(&pair.tgt, "keep.txt", "kept")
    });
    // The server stops taking connections, and the mount's connection is cut.
    let mount_pid = m.pid().unwrap();
    let ssh = ssh_children(mount_pid);
    assert!(
        !ssh.is_empty(),
        "no ssh process under the mount (pid {mount_pid})"
    );
    let xdg = pair.tmp.path().join("xdg");
    let status = || {
        crate::fixtures::run_tandem_with_env(
            [
                OsStr::new("status"),
                pair.src.as_os_str(),
                OsStr::new("--json"),
            ],
            &[("XDG_STATE_HOME", &xdg)],
        )
    };
    p.sshd.stop_listening();
    for pid in ssh {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(pid.to_string())
            .status();
    }
    pair.write(S::Src, "while/one.txt", "written while disconnected");
    pair.write(S::Src, "while/two.txt", "this one too");
    std::fs::rename(pair.path(S::Src, "old.txt"), pair.path(S::Src, "new.txt")).unwrap();
    std::fs::remove_file(pair.path(S::Src, "keep.txt")).unwrap();
    let mut said = String::new();
    crate::mount::wait_for("status to say disconnected", SOON, || {
        said = status().stdout;
        said.contains("\"disconnected_since\":1")
    });
    let text = crate::fixtures::run_tandem_with_env(
        [OsStr::new("status"), pair.src.as_os_str()],
        &[("XDG_STATE_HOME", &xdg)],
    );
    assert!(
        text.stdout.contains("disconnected since") && text.stdout.contains("retrying"),
        "{}",
        text.all()
    );
    // The local target is not held back by the remote one.
    crate::mount::wait_for("the local target", SOON, || {
        has(&other, "while/two.txt", "this one too")
    });
    assert!(!pair.exists(S::Tgt, "while/one.txt"));
    p.sshd.listen_again();
    crate::mount::wait_for(
        "the changes on the remote side after reconnecting",
        Duration::from_secs(90),
        || {
            has(&pair.tgt, "while/one.txt", "written while disconnected")
                && has(&pair.tgt, "while/two.txt", "this one too")
                && has(&pair.tgt, "new.txt", "renamed while disconnected")
                && !pair.exists(S::Tgt, "old.txt")
                && !pair.exists(S::Tgt, "keep.txt")
        },
    );
    crate::mount::wait_for("status to say connected", SOON, || {
        !status().stdout.contains("\"disconnected_since\":1")
    });
    m.stop();
    pair.assert_same();
}

/// The pid of the `tandem serve` of `root` (the agent under sshd), if it runs.
fn agent_of(root: &Path) -> Option<u32> {
    let want = root.as_os_str().as_encoded_bytes();
    std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        let serves = args.contains(&&b"serve"[..]) && args.contains(&want);
        serves.then(|| e.file_name().to_str()?.parse().ok())?
    })
}

/// Bytes a process has written so far (`/proc/PID/io`).
fn written(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn issue_17_a_connection_cut_mid_file_leaves_no_torn_file_and_converges() {
    let Some(p) =
        RemotePair::new("issue_17_a_connection_cut_mid_file_leaves_no_torn_file_and_converges")
    else {
        return;
    };
    let other = p.pair.tmp.path().join("other");
    let Some(m) = mount_remote(&p, &other, &["--compress", "off"]) else {
        return;
    };
    let pair = &p.pair;
    let big: Vec<u8> = (0..128u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(pair.path(S::Src, "big.bin"), &big).unwrap();
    let agent = {
        let mut found = None;
        crate::mount::wait_for("the agent", SOON, || {
            found = agent_of(&pair.tgt);
            found.is_some()
        });
        found.unwrap()
    };
    // Cut once the agent is receiving the file, before it is complete.
    crate::mount::wait_for("the transfer under way", SOON, || {
        written(agent) > 8 << 20 || pair.exists(S::Tgt, "big.bin")
    });
    let caught = !pair.exists(S::Tgt, "big.bin");
    for pid in ssh_children(m.pid().unwrap()) {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(pid.to_string())
            .status();
    }
    assert!(
        caught,
        "the file arrived before the connection could be cut"
    );
    let whole = |at: &Path| std::fs::read(at.join("big.bin")).is_ok_and(|c| c == big);
    // Never a torn file: absent, or whole.
    crate::mount::wait_for(
        "the file on the remote side after reconnecting",
        Duration::from_secs(90),
        || {
            let there = pair.exists(S::Tgt, "big.bin");
            assert!(!there || whole(&pair.tgt), "a torn file on the remote side");
            there
        },
    );
    let temps = pair.names_with(S::Tgt, ".tandem-tmp");
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
    m.stop();
    pair.assert_same();
}

/// Pseudo-random bytes: incompressible, so that what is counted is what a delta saved.
fn noise(n: usize, mut x: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn issue_17_a_modified_large_file_sends_only_what_changed() {
    let Some(p) = RemotePair::new("issue_17_a_modified_large_file_sends_only_what_changed") else {
        return;
    };
    let pair = &p.pair;
    let size = 20 << 20;
    let mut up = noise(size, 1);
    let mut down = noise(size, 2);
    std::fs::write(pair.path(S::Src, "up.bin"), &up).unwrap();
    std::fs::write(pair.path(S::Tgt, "down.bin"), &down).unwrap();
    let first = p.sync_ok(&[], 0);
    assert_eq!(data_bytes(&first), (size as u64, size as u64));
    // One byte changed in the middle of each, one on each side.
    up[size / 2] ^= 0xff;
    down[size / 2 + 12345] ^= 0xff;
    std::fs::write(pair.path(S::Src, "up.bin"), &up).unwrap();
    std::fs::write(pair.path(S::Tgt, "down.bin"), &down).unwrap();
    let again = p.sync_ok(&[], 0);
    let (sent, received) = data_bytes(&again);
    let (wire_out, wire_in) = wire_bytes(&again);
    eprintln!(
        "20 MiB, 1 byte changed: {sent} bytes of file data sent, {received} received \
         ({wire_out} and {wire_in} bytes on the wire)"
    );
    assert!(sent < 1 << 20 && received < 1 << 20, "{}", again.all());
    assert!(sent > 0 && received > 0, "{}", again.all());
    assert!(std::fs::read(pair.path(S::Tgt, "up.bin")).unwrap() == up);
    assert!(std::fs::read(pair.path(S::Src, "down.bin")).unwrap() == down);
    pair.assert_same();
    // What was replaced is in the trash as ever.
    assert_eq!(pair.trash_contents(S::Tgt).len(), 1);
}

/// A large file modified on the source side: its old copy's chunks are asked of the agent
/// before this side hashes the new content, so that both cut and hash at once (1 GiB with
/// 1 MiB changed: about 2 s earlier); the delta is as small and the copy as right as ever.
#[test]
fn issue_17_a_large_file_s_old_chunks_are_asked_for_while_the_new_one_is_hashed() {
    let name = "issue_17_a_large_file_s_old_chunks_are_asked_for_while_the_new_one_is_hashed";
    let Some(p) = RemotePair::new(name) else {
        return;
    };
    let pair = &p.pair;
    let size = 20 << 20;
    let mut big = noise(size, 5);
    std::fs::write(pair.path(S::Src, "big.bin"), &big).unwrap();
    p.sync_ok(&[], 0);
    big[size / 3] ^= 0xff;
    std::fs::write(pair.path(S::Src, "big.bin"), &big).unwrap();
    let out = p.cmd_env("sync", &[], &[("TANDEM_LOG", Path::new("debug"))]);
    assert_eq!(out.code, 0, "{}", out.all());
    let asked = out.stderr.find("big.bin: its chunks there asked for ahead");
    let used = out
        .stderr
        .find("big.bin: the chunks asked for ahead are used");
    assert!(asked.is_some() && used.is_some(), "{}", out.all());
    let (sent, _) = data_bytes(&out);
    assert!(sent > 0 && sent < 1 << 20, "{}", out.all());
    assert!(std::fs::read(pair.path(S::Tgt, "big.bin")).unwrap() == big);
    pair.assert_same();
}

#[test]
fn issue_17_bwlimit_caps_the_rate_both_ways() {
    let Some(p) = RemotePair::new("issue_17_bwlimit_caps_the_rate_both_ways") else {
        return;
    };
    let pair = &p.pair;
    // Bad rates: said so, exit 2, nothing done.
    pair.write(S::Src, "small.txt", "x");
    for bad in ["fast", "-1M", "2X"] {
        let out = p.cmd("sync", &[&format!("--bwlimit={bad}")]);
        assert_eq!(out.code, 2, "{bad}: {}", out.all());
        out.assert_stderr_has(&format!("\"{bad}\" is not a rate"));
    }
    assert!(!pair.exists(S::Tgt, "small.txt"));
    // 4 MiB each way (incompressible) at 1 MiB/s: 3 s at the very least, each way.
    std::fs::write(pair.path(S::Src, "up.bin"), noise(4 << 20, 3)).unwrap();
    let start = Instant::now();
    p.sync_ok(&["--bwlimit", "1M"], 0);
    let up = start.elapsed();
    std::fs::write(pair.path(S::Tgt, "down.bin"), noise(4 << 20, 4)).unwrap();
    let start = Instant::now();
    p.sync_ok(&["--bwlimit", "1M"], 0);
    let down = start.elapsed();
    pair.assert_same();
    assert!(up >= Duration::from_secs(3), "{up:?}");
    assert!(down >= Duration::from_secs(3), "{down:?}");
}

/// The temporary files of a copy in progress in `dir`, with their sizes.
fn temps(dir: &Path) -> Vec<(String, u64)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tandem-tmp."))
        .map(|e| {
            let len = e.metadata().map_or(0, |m| m.len());
            (e.file_name().to_string_lossy().into_owned(), len)
        })
        .collect()
}

/// A sync (at 2 MiB/s) whose ssh is killed once a copy has written a MiB into a temporary
/// file in `watch`.
fn sync_killed_mid_file(p: &RemotePair, watch: &Path) -> Out {
    let d = p.sshd.dir.path();
    let (wrap, pid_file) = (d.join("ssh-wrap"), d.join("ssh.pid"));
    let script = format!(
        "#!/bin/sh\necho $$ > {}\nexec ssh \"$@\"\n",
        pid_file.display()
    );
    std::fs::write(&wrap, script).unwrap();
    std::fs::set_permissions(&wrap, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let _ = std::fs::remove_file(&pid_file);
    let ssh = p.sshd.ssh().replacen("ssh", &wrap.display().to_string(), 1);
    let pair = &p.pair;
    let child = Command::new(bin())
        .arg("sync")
        .args([pair.src.as_os_str(), OsStr::new(&p.url())])
        .arg("--state-dir")
        .arg(&pair.state)
        .args(["--ssh", &ssh, "--remote-tandem", bin(), "--bwlimit", "2M"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !temps(watch).iter().any(|(_, len)| *len > 1 << 20) {
        assert!(Instant::now() < deadline, "no copy began in {watch:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let killed = Command::new("kill")
        .args(["-KILL", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let out = Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!("ssh killed mid-file: exit {}\n{}", out.code, out.all());
    out
}

#[test]
fn issue_17_ssh_killed_mid_file_leaves_no_torn_file() {
    let Some(p) = RemotePair::new("issue_17_ssh_killed_mid_file_leaves_no_torn_file") else {
        return;
    };
    let pair = &p.pair;
    let size = 8 << 20;
    let (up1, up2, down1, down2) = (
        noise(size, 5),
        noise(size, 6),
        noise(size, 7),
        noise(size, 8),
    );
    std::fs::write(pair.path(S::Src, "up.bin"), &up1).unwrap();
    std::fs::write(pair.path(S::Tgt, "down.bin"), &down1).unwrap();
    p.sync_ok(&[], 0);
    let read = |s: S, name: &str| std::fs::read(pair.path(s, name)).unwrap();

    // Sending: the remote copy keeps its old content, its temporary file goes.
    std::fs::write(pair.path(S::Src, "up.bin"), &up2).unwrap();
    let out = sync_killed_mid_file(&p, &pair.tgt);
    assert!(out.code != 0, "{}", out.all());
    out.assert_stderr_has("the connection was lost");
    assert!(read(S::Tgt, "up.bin") == up1, "torn: {}", out.all());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !temps(&pair.tgt).is_empty() {
        assert!(Instant::now() < deadline, "left: {:?}", temps(&pair.tgt));
        std::thread::sleep(Duration::from_millis(20));
    }

    // Receiving: the local copy keeps its old content, no temporary file.
    std::fs::write(pair.path(S::Tgt, "down.bin"), &down2).unwrap();
    let out = sync_killed_mid_file(&p, &pair.src);
    assert!(out.code != 0, "{}", out.all());
    out.assert_stderr_has("the connection was lost");
    assert!(read(S::Src, "down.bin") == down1, "torn: {}", out.all());
    assert_eq!(temps(&pair.src), vec![]);
    let up = read(S::Tgt, "up.bin");
    assert!(up == up1 || up == up2);

    // The next run completes; nothing is left behind on either side.
    p.sync_ok(&[], 0);
    assert!(read(S::Tgt, "up.bin") == up2);
    assert!(read(S::Src, "down.bin") == down2);
    pair.assert_same();
    assert_eq!((temps(&pair.src), temps(&pair.tgt)), (vec![], vec![]));
}

#[test]
fn issue_17_resolve_with_a_remote_target() {
    let Some(p) = RemotePair::new("issue_17_resolve_with_a_remote_target") else {
        return;
    };
    let pair = &p.pair;
    pair.write(S::Src, "c.txt", "base");
    pair.write(S::Src, "d.txt", "base");
    p.sync_ok(&[], 0);
    pair.write(S::Src, "c.txt", "source edit");
    pair.write(S::Tgt, "c.txt", "target edit, longer");
    pair.write(S::Src, "d.txt", "source edit of d");
    pair.write(S::Tgt, "d.txt", "target edit of d");
    p.sync_ok(&[], 1);
    assert_eq!(pair.names_with(S::Tgt, ".conflict-").len(), 2);
    // Kept both: keeping one version removes the other on both sides, the remote one too.
    let out = p.cmd("resolve", &["c.txt", "--keep", "target"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("resolved c.txt"), "{}", out.all());
    let out = p.cmd("resolve", &["d.txt", "--keep", "source"]);
    assert_eq!(out.code, 0, "{}", out.all());
    for s in [S::Src, S::Tgt] {
        assert_eq!(pair.read(s, "c.txt"), "target edit, longer");
        assert_eq!(pair.read(s, "d.txt"), "source edit of d");
        assert_eq!(pair.names_with(s, ".conflict-"), Vec::<String>::new());
    }
    let listed = p.cmd("conflicts", &[]);
    assert!(!listed.stdout.contains("c.txt"), "{}", listed.all());
    // The state agrees: the next sync has nothing to do.
    let again = p.sync_ok(&[], 0);
    assert!(again.stdout.contains("nothing to do"), "{}", again.all());
    // Flagged: keeping a side syncs that path with that side's version, over ssh.
    pair.write(S::Src, "c.txt", "source again");
    pair.write(S::Tgt, "c.txt", "target again");
    let out = p.cmd("sync", &["--conflict", "flag"]);
    assert_ne!(out.code, 0, "{}", out.all());
    assert_eq!(pair.read(S::Src, "c.txt"), "source again");
    let out = p.cmd("resolve", &["c.txt", "--keep", "target"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(pair.read(S::Src, "c.txt"), "target again");
    let again = p.sync_ok(&[], 0);
    assert!(again.stdout.contains("nothing to do"), "{}", again.all());
    pair.assert_same();
}

#[test]
fn issue_17_a_task_with_a_remote_target_runs_through_ssh() {
    let Some(sshd) = Sshd::start("issue_17_a_task_with_a_remote_target_runs_through_ssh") else {
        return;
    };
    let t = crate::tasks::Tasks::new(&["work/deep", "srv"]);
    write_file(&t.p("work/a.txt"), b"from the source");
    write_file(&t.p("work/deep/b.txt"), b"nested");
    let (url, ssh) = (sshd.url(&t.p("srv")), sshd.ssh());
    let args = ["task", "add", "w", "--source", "@work", "--target", &url];
    let add = [&args[..], &["--ssh", &ssh, "--remote-tandem", bin()]].concat();
    t.ok(&add, 0);
    let config = t.config_text();
    assert!(config.contains(&format!("target = \"{url}\"")), "{config}");
    assert!(config.contains(&format!("ssh = \"{ssh}\"")), "{config}");
    let show = t.ok(&["task", "show", "w"], 0).stdout;
    assert!(
        show.contains(&format!("synced with:    {url}/work")),
        "{show}"
    );
    assert!(show.contains(&format!("ssh:              {ssh}")), "{show}");
    let list = t.ok(&["task", "list"], 0).stdout;
    assert!(list.contains(&url), "{list}");
    // The first run makes the remote folder, through the agent.
    t.ok(&["run", "w"], 0);
    assert_eq!(
        std::fs::read_to_string(t.p("srv/work/a.txt")).unwrap(),
        "from the source"
    );
    assert_eq!(
        std::fs::read_to_string(t.p("srv/work/deep/b.txt")).unwrap(),
        "nested"
    );
    // A change on the remote side comes back on the next run.
    write_file(&t.p("srv/work/c.txt"), b"from the far side");
    std::fs::remove_file(t.p("srv/work/a.txt")).unwrap();
    t.ok(&["run", "w"], 0);
    let c = std::fs::read_to_string(t.p("work/c.txt")).unwrap();
    assert_eq!(c, "from the far side");
    assert!(!t.p("work/a.txt").exists());
}

#[test]
fn issue_17_a_continuous_task_with_a_remote_target_mounts_through_ssh() {
    if !crate::mount::fuse_available() {
        return;
    }
    let test = "issue_17_a_continuous_task_with_a_remote_target_mounts_through_ssh";
    let Some(sshd) = Sshd::start(test) else {
        return;
    };
    let h = crate::daemon::Home::new();
    let src = h.dir("Docs");
    std::fs::write(src.join("a.txt"), "from the source").unwrap();
    h.dir("srv");
    let (url, ssh) = (sshd.url(&h.p("srv")), sshd.ssh());
    let add = ["task", "add", "live", "--source", src.to_str().unwrap()];
    let rest = ["--target", &url, "--ssh", &ssh, "--remote-tandem", bin()];
    h.tandem(&[&add[..], &rest, &["--continuous"]].concat(), 0);
    let _unmount = crate::daemon::Unmount(src.clone());
    let mut d = h.daemon();
    let remote = h.p("srv/Docs");
    crate::mount::wait_for(
        "the mount and its first sync",
        Duration::from_secs(60),
        || crate::mount::is_fuse(&src) && remote.join("a.txt").exists(),
    );
    std::fs::write(src.join("b.txt"), "through the mount").unwrap();
    crate::mount::wait_for(
        "the write to reach the remote side",
        Duration::from_secs(30),
        || has(&remote, "b.txt", "through the mount"),
    );
    assert_eq!(d.stop(), 0, "{}", d.stderr());
}

/// An agent of an older tandem (one that announces only the features of before): the
/// options it cannot keep are refused before anything is changed, with what to do; a sync
/// without them goes on, its folder times not kept.
#[test]
fn issue_17_an_older_agent_is_told_apart_and_its_missing_options_refused() {
    let test = "issue_17_an_older_agent_is_told_apart_and_its_missing_options_refused";
    let Some(p) = RemotePair::new(test) else {
        return;
    };
    let pair = &p.pair;
    pair.write(S::Src, "d/a.txt", "one");
    let old = p.sshd.dir.path().join("older-tandem");
    std::fs::write(
        &old,
        format!(
            "#!/bin/sh\nTANDEM_SERVE_FEATURES=delta,bwlimit,watch exec {} \"$@\"\n",
            bin()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&old, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let run = |args: &[&str]| {
        let (url, ssh) = (p.url(), p.sshd.ssh());
        let mut v: Vec<&OsStr> = vec![OsStr::new("sync"), pair.src.as_os_str(), OsStr::new(&url)];
        v.extend([OsStr::new("--state-dir"), pair.state.as_os_str()]);
        v.extend([OsStr::new("--ssh"), OsStr::new(&ssh)]);
        v.extend([OsStr::new("--remote-tandem"), old.as_os_str()]);
        v.extend(args.iter().map(OsStr::new));
        run_tandem(v)
    };
    for option in ["--xattrs", "--acls", "--owner", "--hard-links"] {
        let out = run(&[option]);
        assert_eq!(out.code, 2, "{option}: {}", out.all());
        out.assert_stderr_has(&format!(
            "{option} is not available with this remote target: the tandem on 127.0.0.1 (tandem {}) is older",
            env!("CARGO_PKG_VERSION")
        ));
        out.assert_stderr_has("--remote-tandem");
        assert!(!pair.exists(S::Tgt, "d"), "{option}: nothing is changed");
    }
    let out = run(&[]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(pair.read(S::Tgt, "d/a.txt"), "one");
    out.assert_stderr_has("is older and keeps no folder times");
    out.assert_stderr_has("is older and prunes no trash");
}

/// `kill -SIGNAL pid`.
fn signal(sig: &str, pid: u32) {
    let done = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(done.success(), "kill -{sig} {pid}");
}

/// The agent serving `root`, waited for.
fn wait_agent(root: &Path) -> u32 {
    wait_agent_for(root, SOON)
}

fn wait_agent_for(root: &Path, limit: Duration) -> u32 {
    let mut found = None;
    crate::mount::wait_for("the agent", limit, || {
        found = agent_of(root);
        found.is_some()
    });
    found.unwrap()
}

/// Pings every second: a connection with nothing heard for 3 s is given up.
const KEEPALIVE: (&str, &str) = ("TANDEM_KEEPALIVE", "1");

#[test]
fn issue_17_a_hung_agent_stops_a_sync_in_bounded_time() {
    let Some(p) = RemotePair::new("issue_17_a_hung_agent_stops_a_sync_in_bounded_time") else {
        return;
    };
    let pair = &p.pair;
    let big = noise(16 << 20, 9);
    std::fs::write(pair.path(S::Tgt, "big.bin"), &big).unwrap();
    let child = Command::new(bin())
        .arg("sync")
        .args([pair.src.as_os_str(), OsStr::new(&p.url())])
        .arg("--state-dir")
        .arg(&pair.state)
        .args(["--ssh", &p.sshd.ssh(), "--remote-tandem", bin()])
        .args(["--bwlimit", "2M"])
        .env(KEEPALIVE.0, KEEPALIVE.1)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Set-up waits as long as a loaded machine needs (what is timed starts at the stop).
    let slow = Duration::from_secs(90);
    let agent = wait_agent_for(&pair.tgt, slow);
    // Stopped while it sends the file: the connection stays open, and nothing comes.
    let mut child = child;
    crate::mount::wait_for("the copy under way", slow, || {
        // A sync that ended before (a healthy connection given up on a starved machine,
        // say) is shown rather than waited for.
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err);
            panic!("the sync ended ({st}) before the copy was under way:\n{err}");
        }
        temps(&pair.src).iter().any(|(_, len)| *len > 1 << 20)
    });
    signal("STOP", agent);
    let stopped = Instant::now();
    let deadline = stopped + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = stopped.elapsed();
    let hung = child.try_wait().unwrap().is_none();
    if hung {
        let _ = child.kill();
    }
    signal("KILL", agent);
    let out = child.wait_with_output().unwrap();
    let out = Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!hung, "the sync still waited 30 s after the agent stopped");
    eprintln!("a hung agent: the sync ended {took:?} after\n{}", out.all());
    assert_eq!(out.code, 2, "{}", out.all());
    out.assert_stderr_has("no answer from 127.0.0.1 for 3 s");
    out.assert_stderr_has("was lost during the sync");
    assert!(took < Duration::from_secs(10), "{took:?}");
    // No torn file; the next run completes.
    assert!(!pair.exists(S::Src, "big.bin"));
    p.sync_ok(&[], 0);
    assert!(std::fs::read(pair.path(S::Src, "big.bin")).unwrap() == big);
    assert_eq!((temps(&pair.src), temps(&pair.tgt)), (vec![], vec![]));
}

#[test]
fn issue_17_a_hung_connection_under_a_mount_is_noticed_and_retried() {
    let Some(p) =
        RemotePair::new("issue_17_a_hung_connection_under_a_mount_is_noticed_and_retried")
    else {
        return;
    };
    let other = p.pair.tmp.path().join("other");
    p.pair.write(S::Src, "keep.txt", "kept");
    let Some(m) = mount_remote_env(&p, &other, &[], &[KEEPALIVE]) else {
        return;
    };
    let pair = &p.pair;
    crate::mount::wait_for("the startup sync", SOON, || {
        has(&pair.tgt, "keep.txt", "kept")
    });
    let xdg = pair.tmp.path().join("xdg");
    let status = || {
        crate::fixtures::run_tandem_with_env(
            [
                OsStr::new("status"),
                pair.src.as_os_str(),
                OsStr::new("--json"),
            ],
            &[("XDG_STATE_HOME", &xdg)],
        )
        .stdout
    };
    // The agent stops: its connection stays open, and nothing answers on it.
    let agent = wait_agent(&pair.tgt);
    signal("STOP", agent);
    let stopped = Instant::now();
    pair.write(
        S::Src,
        "while/hung.txt",
        "written while the agent was stopped",
    );
    let mut said = String::new();
    let noticed = (|| {
        while stopped.elapsed() < Duration::from_secs(15) {
            said = status();
            if said.contains("\"disconnected_since\":1") {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    })();
    let took = stopped.elapsed();
    signal("CONT", agent);
    assert!(noticed, "not noticed in {took:?}: {said}\n{}", m.log());
    eprintln!("a hung agent under a mount: noticed after {took:?}");
    // The local target is not held back meanwhile.
    crate::mount::wait_for("the local target", SOON, || {
        has(
            &other,
            "while/hung.txt",
            "written while the agent was stopped",
        )
    });
    crate::mount::wait_for(
        "the change on the remote side after reconnecting",
        Duration::from_secs(90),
        || {
            has(
                &pair.tgt,
                "while/hung.txt",
                "written while the agent was stopped",
            )
        },
    );
    crate::mount::wait_for("status to say connected", SOON, || {
        !status().contains("\"disconnected_since\":1")
    });
    assert!(
        m.log().contains("no answer from 127.0.0.1 for 3 s"),
        "{}",
        m.log()
    );
    m.stop();
    pair.assert_same();
}

/// A task `w` of `@work` with the remote folder `srv` as its target, and these options.
fn remote_task(sshd: &Sshd, t: &crate::tasks::Tasks, more: &[&str]) -> String {
    let (url, ssh) = (sshd.url(&t.p("srv")), sshd.ssh());
    let args = ["task", "add", "w", "--source", "@work", "--target", &url];
    let add = [&args[..], &["--ssh", &ssh, "--remote-tandem", bin()], more].concat();
    t.ok(&add, 0);
    url
}

#[test]
fn issue_17_a_task_keeps_its_compress_and_bwlimit() {
    let Some(sshd) = Sshd::start("issue_17_a_task_keeps_its_compress_and_bwlimit") else {
        return;
    };
    let t = crate::tasks::Tasks::new(&["work", "srv"]);
    let text = b"the same words again and again\n".repeat((4 << 20) / 31);
    write_file(&t.p("work/one.txt"), &text);
    remote_task(&sshd, &t, &["--compress", "off", "--bwlimit", "1M"]);
    let config = t.config_text();
    assert!(config.contains("compress = \"off\""), "{config}");
    assert!(config.contains("bwlimit = \"1M\""), "{config}");
    let show = t.ok(&["task", "show", "w"], 0).stdout;
    assert!(show.contains("compress:         off"), "{show}");
    assert!(show.contains("bwlimit:          1M"), "{show}");
    // Sent as it is (4 MiB on the wire), at 1 MiB/s.
    let start = Instant::now();
    let run = t.ok(&["run", "w"], 0);
    let took = start.elapsed();
    let (sent, _) = wire_bytes(&run);
    assert!(sent >= text.len() as u64, "{}", run.all());
    assert!(took >= Duration::from_secs(3), "{took:?}");
    assert!(std::fs::read(t.p("srv/work/one.txt")).unwrap() == text);
    // Changed: compressed, and no limit.
    t.ok(
        &["task", "edit", "w", "--compress", "on", "--bwlimit", "0"],
        0,
    );
    let config = t.config_text();
    assert!(config.contains("compress = \"on\""), "{config}");
    assert!(!config.contains("bwlimit"), "{config}");
    write_file(&t.p("work/two.txt"), &text);
    let run = t.ok(&["run", "w"], 0);
    let (sent, _) = wire_bytes(&run);
    assert!(sent * 10 < text.len() as u64, "{}", run.all());
    assert!(std::fs::read(t.p("srv/work/two.txt")).unwrap() == text);
}

#[test]
fn issue_17_a_task_with_a_target_subfolder_reaches_the_remote_path() {
    let test = "issue_17_a_task_with_a_target_subfolder_reaches_the_remote_path";
    let Some(sshd) = Sshd::start(test) else {
        return;
    };
    let t = crate::tasks::Tasks::new(&["work", "srv"]);
    write_file(&t.p("work/a.txt"), b"from the source");
    let url = remote_task(&sshd, &t, &["--target-subfolder"]);
    let show = t.ok(&["task", "show", "w"], 0).stdout;
    assert!(
        show.contains(&format!("synced with:    {url}/w/work")),
        "{show}"
    );
    // A dry run makes nothing there.
    t.tandem(&["run", "w", "--dry-run"]);
    assert!(!t.p("srv/w").exists());
    // The first run makes TARGET/<task name>, then the pair's folder in it.
    t.ok(&["run", "w"], 0);
    assert_eq!(
        std::fs::read_to_string(t.p("srv/w/work/a.txt")).unwrap(),
        "from the source"
    );
    assert!(!t.p("srv/work").exists());
    write_file(&t.p("srv/w/work/b.txt"), b"from the far side");
    t.ok(&["run", "w"], 0);
    assert_eq!(
        std::fs::read_to_string(t.p("work/b.txt")).unwrap(),
        "from the far side"
    );
}

#[test]
fn issue_17_a_continuous_task_keeps_its_bwlimit() {
    if !crate::mount::fuse_available() {
        return;
    }
    let Some(sshd) = Sshd::start("issue_17_a_continuous_task_keeps_its_bwlimit") else {
        return;
    };
    let h = crate::daemon::Home::new();
    let src = h.dir("Docs");
    h.dir("srv");
    let (url, ssh) = (sshd.url(&h.p("srv")), sshd.ssh());
    let add = ["task", "add", "live", "--source", src.to_str().unwrap()];
    let rest = ["--target", &url, "--ssh", &ssh, "--remote-tandem", bin()];
    let limits = ["--bwlimit", "1M", "--compress", "off", "--continuous"];
    h.tandem(&[&add[..], &rest, &limits].concat(), 0);
    let _unmount = crate::daemon::Unmount(src.clone());
    let mut d = h.daemon();
    let remote = h.p("srv/Docs");
    crate::mount::wait_for(
        "the mount and its first sync",
        Duration::from_secs(60),
        || crate::mount::is_fuse(&src) && remote.is_dir(),
    );
    // 4 MiB through the mount, at 1 MiB/s.
    let big = noise(4 << 20, 10);
    let start = Instant::now();
    std::fs::write(src.join("big.bin"), &big).unwrap();
    crate::mount::wait_for(
        "the file to reach the remote side",
        Duration::from_secs(60),
        || std::fs::read(remote.join("big.bin")).is_ok_and(|c| c == big),
    );
    let took = start.elapsed();
    eprintln!("4 MiB through a continuous task's mount at --bwlimit 1M: {took:?}");
    assert!(took >= Duration::from_secs(3), "{took:?}");
    assert_eq!(d.stop(), 0, "{}", d.stderr());
}

/// A mount whose first target is remote keeps the source's history (its pair's store
/// records the versions) and prunes it to the retention like a mount with a local first
/// target: the startup's sync of a mount with a lower limit drops the oldest.
#[test]
fn issue_18_a_mount_whose_first_target_is_remote_prunes_the_history() {
    let Some(p) =
        RemotePair::new("issue_18_a_mount_whose_first_target_is_remote_prunes_the_history")
    else {
        return;
    };
    let pair = &p.pair;
    let other = pair.tmp.path().join("other");
    let history = || std::fs::read_dir(pair.src.join(".tandem/history")).map_or(0, |d| d.count());
    let Some(m) = mount_remote(&p, &other, &[]) else {
        return;
    };
    for i in 0..5 {
        pair.write(S::Src, "a.txt", &format!("version {i}"));
    }
    crate::mount::wait_for("the last version on the remote side", SOON, || {
        has(&pair.tgt, "a.txt", "version 4")
    });
    m.stop();
    // Versions 0 to 3 kept.
    assert_eq!(history(), 4);
    let Some(m) = mount_remote(&p, &other, &["--history-versions", "2"]) else {
        return;
    };
    // The startup ran before the mount served: its prune too.
    assert_eq!(history(), 2, "{}", m.log());
    assert!(
        m.log().contains("source history: removed 2 old versions"),
        "{}",
        m.log()
    );
    // While it serves, a sync prunes at most every 30 s: the one after that drops what
    // went over the limit meanwhile, and the kernel forgets the files it removed (read
    // through the mount, the history folder listed them from its cache).
    pair.write(S::Src, "a.txt", "version 5");
    std::thread::sleep(Duration::from_secs(31));
    pair.write(S::Src, "a.txt", "version 6");
    crate::mount::wait_for("version 6 on the remote side", SOON, || {
        has(&pair.tgt, "a.txt", "version 6")
    });
    let start = Instant::now();
    while history() != 2 {
        assert!(
            start.elapsed() < SOON,
            "{} versions listed, not pruned while mounted: {:?}\n{}",
            history(),
            std::fs::read_dir(pair.src.join(".tandem/history"))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect::<Vec<_>>(),
            m.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    m.stop();
}

/// What the agent keeps of the listing it last sent (`tandem_remote::listing`).
fn listing_records(p: &RemotePair) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(p.pair.tgt.join(".tandem/listings")) {
        Ok(d) => d.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// A remote tree of `n` files made on the remote side.
fn remote_tree(p: &RemotePair, n: usize) {
    for i in 0..n {
        p.pair
            .write(S::Tgt, &format!("d{}/made-there-{i}.txt", i % 20), "x");
    }
}

/// A re-sync with nothing changed receives an empty change set, not the remote side's
/// whole listing: the agent sends what differs from the listing it sent last.
#[test]
fn issue_17_a_no_change_resync_receives_no_listing() {
    let Some(p) = RemotePair::new("issue_17_a_no_change_resync_receives_no_listing") else {
        return;
    };
    remote_tree(&p, 2000);
    let first = p.sync_ok(&[], 0);
    let again = p.sync_ok(&[], 0);
    let copy = || {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p.pair.state.join("remote-listing"))
            .unwrap()
            .ino()
    };
    let kept = copy();
    let third = p.sync_ok(&[], 0);
    assert!(third.stdout.contains("nothing to do"), "{}", third.all());
    // Nothing differed from the listing both ends keep: it is not written again.
    assert_eq!(copy(), kept, "the copy kept here was rewritten");
    let (first_in, again_in, third_in) = (
        wire_bytes(&first).1,
        wire_bytes(&again).1,
        wire_bytes(&third).1,
    );
    // The listing of 2000 files is tens of KiB; what is left, a few frames.
    assert!(first_in > 40_000, "{}", first.all());
    assert!(again_in * 20 < first_in, "{first_in} then {again_in}");
    assert!(third_in * 20 < first_in, "{first_in} then {third_in}");
    assert_eq!(listing_records(&p).len(), 1);
}

/// Only what crosses the wire shrinks: a change made on the remote side between two runs
/// (new, modified, deleted, a folder) is found as before.
#[test]
fn issue_17_a_change_on_the_remote_side_between_runs_still_arrives() {
    let Some(p) =
        RemotePair::new("issue_17_a_change_on_the_remote_side_between_runs_still_arrives")
    else {
        return;
    };
    let pair = &p.pair;
    remote_tree(&p, 300);
    pair.write(S::Src, "from-here.txt", "source");
    p.sync_ok(&[], 0);
    p.sync_ok(&[], 0);
    pair.write(S::Tgt, "d3/new.txt", "new there");
    pair.write(S::Tgt, "d4/made-there-4.txt", "modified there, longer");
    std::fs::remove_file(pair.path(S::Tgt, "d5/made-there-5.txt")).unwrap();
    std::fs::create_dir(pair.path(S::Tgt, "empty-folder")).unwrap();
    let out = p.sync_ok(&[], 0);
    pair.assert_same();
    assert_eq!(pair.read(S::Src, "d3/new.txt"), "new there");
    assert_eq!(
        pair.read(S::Src, "d4/made-there-4.txt"),
        "modified there, longer"
    );
    assert!(!pair.exists(S::Src, "d5/made-there-5.txt"));
    assert!(pair.path(S::Src, "empty-folder").is_dir());
    let (_, received) = wire_bytes(&out);
    assert!(received < 20_000, "{}", out.all());
}

/// A listing lost, stale or corrupt on either end, or `--rescan`, makes the next scan
/// list it all; every run still converges.
#[test]
fn issue_17_a_lost_or_stale_listing_falls_back_to_the_whole_listing() {
    let Some(p) =
        RemotePair::new("issue_17_a_lost_or_stale_listing_falls_back_to_the_whole_listing")
    else {
        return;
    };
    let pair = &p.pair;
    remote_tree(&p, 1000);
    let copy = pair.state.join("remote-listing");
    let whole = wire_bytes(&p.sync_ok(&[], 0)).1;
    let stale = std::fs::read(&copy).unwrap();
    p.sync_ok(&[], 0);
    let small = wire_bytes(&p.sync_ok(&[], 0)).1;
    assert!(small * 10 < whole, "{whole} then {small}");
    let mut n = 0;
    let mut change_and_sync = |args: &[&str]| {
        n += 1;
        let name = format!("d1/changed-{n}.txt");
        pair.write(S::Tgt, &name, "changed there");
        let out = p.sync_ok(args, 0);
        pair.assert_same();
        assert_eq!(pair.read(S::Src, &name), "changed there");
        wire_bytes(&out).1
    };
    // The client's copy is an older one than the agent's record (the copy is its file and
    // the deltas appended beside it since: there were none when `stale` was read).
    assert!(change_and_sync(&[]) * 10 < whole);
    std::fs::write(&copy, &stale).unwrap();
    let _ = std::fs::remove_file(copy.with_extension("delta"));
    assert!(change_and_sync(&[]) * 2 > whole);
    assert!(change_and_sync(&[]) * 10 < whole, "back to small");
    // The agent's record corrupt, then gone.
    for r in listing_records(&p) {
        let mut bytes = std::fs::read(&r).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&r, bytes).unwrap();
    }
    assert!(change_and_sync(&[]) * 2 > whole);
    assert!(change_and_sync(&[]) * 10 < whole);
    std::fs::remove_dir_all(pair.tgt.join(".tandem/listings")).unwrap();
    assert!(change_and_sync(&[]) * 2 > whole);
    // The client's copy junk, then gone (a new key: the agent keeps both records).
    std::fs::write(&copy, b"junk").unwrap();
    assert!(change_and_sync(&[]) * 2 > whole);
    std::fs::remove_file(&copy).unwrap();
    assert!(change_and_sync(&[]) * 2 > whole);
    assert!(change_and_sync(&[]) * 10 < whole);
    // `--rescan` lists it all.
    assert!(change_and_sync(&["--rescan"]) * 2 > whole);
    assert!(change_and_sync(&[]) * 10 < whole);
    // The client's state lost and made afresh, the agent's records left: a first sync
    // again (the source's marker removed too, as `forget` would), listed whole, and
    // converged.
    std::fs::remove_dir_all(&pair.state).unwrap();
    std::fs::remove_file(pair.src.join(".tandem/markers")).unwrap();
    pair.write(S::Tgt, "d2/after-a-new-state.txt", "there");
    let out = p.sync_ok(&[], 0);
    pair.assert_same();
    assert!(wire_bytes(&out).1 * 2 > whole, "{}", out.all());
    let out = p.sync_ok(&[], 0);
    assert!(wire_bytes(&out).1 * 10 < whole, "{}", out.all());
}

/// Runs that each change both sides (files written, modified, deleted, a folder renamed
/// on the far side) keep both ends' listings in step: every run converges, each receives
/// only what changed there, and the copy kept here always rebuilds the agent's listing
/// (the copy and the record are read while the connection is made and the tree scanned).
#[test]
fn issue_17_many_changes_across_runs_keep_the_listings_in_step() {
    let Some(p) = RemotePair::new("issue_17_many_changes_across_runs_keep_the_listings_in_step")
    else {
        return;
    };
    let pair = &p.pair;
    remote_tree(&p, 1000);
    pair.write(S::Tgt, "box-0/a.txt", "a");
    pair.write(S::Tgt, "box-0/b.txt", "b");
    let whole = wire_bytes(&p.sync_ok(&[], 0)).1;
    for run in 0..6 {
        pair.write(S::Src, &format!("d{run}/from-here-{run}.txt"), "here");
        pair.write(S::Tgt, &format!("d{run}/made-there-{run}.txt"), "modified");
        pair.write(S::Tgt, &format!("new-{run}/there.txt"), "new there");
        let gone = format!("d{}/made-there-{}.txt", run + 6, run + 26);
        std::fs::remove_file(pair.path(S::Tgt, &gone)).unwrap();
        let (from, to) = (format!("box-{run}"), format!("box-{}", run + 1));
        std::fs::rename(pair.path(S::Tgt, &from), pair.path(S::Tgt, &to)).unwrap();
        let out = p.sync_ok(&[], 0);
        pair.assert_same();
        assert_eq!(
            pair.read(S::Src, &format!("new-{run}/there.txt")),
            "new there"
        );
        assert_eq!(pair.read(S::Src, &format!("{to}/b.txt")), "b");
        assert!(!pair.exists(S::Src, &gone) && !pair.exists(S::Src, &from));
        assert!(
            !out.all().contains("listing it all"),
            "run {run}: {}",
            out.all()
        );
        let received = wire_bytes(&out).1;
        assert!(
            received * 5 < whole,
            "run {run}: {received} of {whole}\n{}",
            out.all()
        );
    }
    let out = p.sync_ok(&[], 0);
    assert!(out.stdout.contains("nothing to do"), "{}", out.all());
    let records = listing_records(&p);
    let whole: Vec<_> = records.iter().filter(|r| r.extension().is_none()).collect();
    assert_eq!(whole.len(), 1, "{records:?}");
}

/// After a run that changed a few entries, each end appends them to the deltas beside its
/// listing instead of writing the whole listing again; a delta damaged or torn on either
/// end makes the next scan list it all, and the run after it is small again.
#[test]
fn issue_17_a_damaged_listing_delta_falls_back_to_the_whole_listing() {
    let Some(p) =
        RemotePair::new("issue_17_a_damaged_listing_delta_falls_back_to_the_whole_listing")
    else {
        return;
    };
    let pair = &p.pair;
    remote_tree(&p, 1000);
    let copy = pair.state.join("remote-listing");
    let whole = wire_bytes(&p.sync_ok(&[], 0)).1;
    let mut n = 0;
    let mut change_and_sync = || {
        n += 1;
        let name = format!("d1/changed-{n}.txt");
        pair.write(S::Tgt, &name, "changed there");
        let out = p.sync_ok(&[], 0);
        pair.assert_same();
        assert_eq!(pair.read(S::Src, &name), "changed there");
        wire_bytes(&out).1
    };
    assert!(change_and_sync() * 10 < whole);
    assert!(change_and_sync() * 10 < whole);
    let len = |f: &std::path::Path| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
    let deltas = || {
        let mut d = vec![copy.with_extension("delta")];
        d.extend(
            listing_records(&p)
                .into_iter()
                .filter(|r| r.extension().is_some_and(|e| e == "delta")),
        );
        d
    };
    // Both ends appended what changed: a few hundred bytes each, beside a listing of 1000.
    let kept = deltas();
    assert_eq!(kept.len(), 2, "{kept:?}");
    for d in &kept {
        assert!(
            len(d) > 0 && len(d) * 20 < len(&copy),
            "{d:?}: {} of {}",
            len(d),
            len(&copy)
        );
    }
    // A delta torn on the agent's end, then damaged on this one: the whole listing, once
    // (a copy lost here takes a new key: the agent's delta is hurt first).
    for agent in [true, false] {
        let d = deltas()
            .into_iter()
            .find(|d| d.starts_with(&pair.tgt) == agent)
            .unwrap();
        assert!(len(&d) > 0, "{d:?}");
        let mut bytes = std::fs::read(&d).unwrap();
        if agent {
            bytes.truncate(bytes.len() - 3);
        } else {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x20;
        }
        std::fs::write(&d, bytes).unwrap();
        assert!(change_and_sync() * 2 > whole, "{d:?}");
        assert!(change_and_sync() * 10 < whole, "{d:?}");
        assert!(change_and_sync() * 10 < whole, "{d:?}");
    }
}
