//! `tandem mount` for real: a FUSE mount over the source, changes made through it reach
//! the target, kill -9 and restart, clean unmount. Needs /dev/fuse; with CI=true a missing
//! /dev/fuse fails the tests instead of skipping them.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::fixtures::*;

const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;

pub(crate) fn fuse_available() -> bool {
    let problem = if !Path::new("/dev/fuse").exists() {
        "/dev/fuse is missing".to_string()
    } else if rustix::fs::access(
        "/dev/fuse",
        rustix::fs::Access::READ_OK | rustix::fs::Access::WRITE_OK,
    )
    .is_err()
    {
        // Run as a user other than root (the second pass of .ci/run).
        format!(
            "/dev/fuse is not readable and writable by uid {} (mode {:o}; Debian makes it \
             0666, and so does .ci/run)",
            rustix::process::getuid().as_raw(),
            std::fs::metadata("/dev/fuse").map_or(0, |m| m.mode() & 0o7777)
        )
    } else {
        return true;
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{problem}: the mount tests cannot run (CI=true makes this a failure)");
    }
    eprintln!("SKIPPED: {problem}; the mount tests did not run");
    false
}

/// Detaches the mount at `p`: as root, or as the user who mounted it (fusermount3).
pub(crate) fn detach(p: &Path) {
    if rustix::mount::unmount(p, rustix::mount::UnmountFlags::DETACH).is_err() {
        let _ = Command::new("fusermount3")
            .args(["-u", "-z", "-q", "--"])
            .arg(p)
            .status();
    }
}

pub(crate) fn is_fuse(p: &Path) -> bool {
    rustix::fs::statfs(p).is_ok_and(|s| s.f_type == FUSE_SUPER_MAGIC)
}

/// Waits until `cond` holds, up to `limit`; panics with `what` otherwise.
pub(crate) fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A running `tandem mount --foreground` over a pair's source; stopped (and, if need be,
/// detached) on drop so a failing test never leaves a mount behind.
pub(crate) struct Mounted<'a> {
    pair: &'a Pair,
    child: Option<Child>,
    /// A process killed by `kill9` that could not be reaped yet.
    killed: Option<Child>,
}

impl<'a> Mounted<'a> {
    pub(crate) fn start(pair: &'a Pair) -> Mounted<'a> {
        Mounted::start_with(pair, &[], &[])
    }

    /// With more targets (each pair's state then lives under `tmp/xdg`) and more options.
    pub(crate) fn start_with(pair: &'a Pair, more_targets: &[&Path], args: &[&str]) -> Mounted<'a> {
        let mut targets = vec![pair.tgt.as_os_str()];
        targets.extend(more_targets.iter().map(|t| t.as_os_str()));
        Mounted::start_targets(pair, &targets, args)
    }

    /// Over `pair`'s source, with these targets (a remote one named `host:/path`).
    pub(crate) fn start_targets(
        pair: &'a Pair,
        targets: &[&std::ffi::OsStr],
        args: &[&str],
    ) -> Mounted<'a> {
        Mounted::start_targets_env(pair, targets, args, &[])
    }

    /// [`Mounted::start_targets`], with more environment for the mount.
    pub(crate) fn start_targets_env(
        pair: &'a Pair,
        targets: &[&std::ffi::OsStr],
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Mounted<'a> {
        let xdg = pair.tmp.path().join("xdg");
        std::fs::create_dir_all(&xdg).unwrap();
        let log = std::fs::File::create(pair.tmp.path().join("mount.log")).unwrap();
        let mut cmd = Command::new(bin());
        cmd.arg("mount").arg(&pair.src).args(targets);
        if targets.len() == 1 {
            cmd.arg("--state-dir").arg(&pair.state);
        }
        let child = cmd
            .args(args)
            .args(transport_args())
            .arg("--foreground")
            .env("XDG_STATE_HOME", &xdg)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut m = Mounted {
            pair,
            child: Some(child),
            killed: None,
        };
        let start = Instant::now();
        // Up once it says so: the kernel's mount comes first, then the io_uring queues
        // and the mount's record (what another `tandem mount` checks for loops).
        while !is_fuse(&pair.src) || !m.log().contains("tandem: mounted ") {
            if let Some(st) = m.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("tandem mount exited ({st}):\n{}", m.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "mount did not come up:\n{}",
                m.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // Asked for io_uring, served through /dev/fuse: the run would not test it.
        let fell_back = m.log().contains("serving through /dev/fuse");
        assert!(
            !(transport_args().contains(&"uring") && fell_back),
            "the mount fell back to /dev/fuse:\n{}",
            m.log()
        );
        m
    }

    /// The mount process's id (for a test that kills it at its own moment).
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.pair.tmp.path().join("mount.log")).unwrap_or_default()
    }

    /// SIGTERM, and wait for a clean exit.
    pub(crate) fn stop(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let st = child.wait().unwrap();
        assert!(
            !is_fuse(&self.pair.src),
            "still mounted after the process exited:\n{}",
            self.log()
        );
        st
    }

    /// kill -9: leaves a stale mount behind, as a crash does. (Borrows: the guard's drop
    /// would otherwise clean the stale mount up right away.)
    pub(crate) fn kill9(&mut self) {
        let mut child = self.child.take().unwrap();
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(child.id().to_string())
            .status();
        // A thread of the killed process can stay stuck in the kernel on its own mount (a
        // cache invalidation waiting for a directory lock that a request nobody will answer
        // holds) until the connection is aborted, which the next `tandem mount` does.
        let deadline = Instant::now() + Duration::from_secs(2);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.killed = Some(child);
    }

    /// After `kill9`: `tandem mount` again, as a user would after a crash. It aborts the
    /// dead mount's connection and detaches it before anything else, which frees a program
    /// caught in a request the dead process never answered.
    pub(crate) fn restart(mut self) -> Mounted<'a> {
        let pair = self.pair;
        let killed = self.killed.take();
        // Its drop would detach whatever is mounted at the source: the new mount.
        std::mem::forget(self);
        let m = Mounted::start(pair);
        if let Some(mut k) = killed {
            let _ = k.wait();
        }
        m
    }
}

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.killed.is_some() {
            // Possibly a connection left unanswered: abort it (statfs would block). A user
            // other than root can only detach it.
            if rustix::mount::unmount(
                &self.pair.src,
                rustix::mount::UnmountFlags::FORCE | rustix::mount::UnmountFlags::DETACH,
            )
            .is_err()
            {
                detach(&self.pair.src);
            }
        } else if is_fuse(&self.pair.src) || rustix::fs::statfs(&self.pair.src).is_err() {
            detach(&self.pair.src);
        }
        if let Some(mut k) = self.killed.take() {
            let _ = k.wait();
        }
    }
}

const T: Duration = Duration::from_secs(15);

fn tgt_has(p: &Pair, rel: &str, content: &str) -> bool {
    std::fs::read(p.path(S::Tgt, rel)).is_ok_and(|c| c == content.as_bytes())
}

#[test]
fn every_kind_of_change_through_the_mount_reaches_the_target() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    p.write(S::Src, "before-mount.txt", "synced at startup");
    let m = Mounted::start(&p);
    wait_for("startup sync", T, || {
        tgt_has(&p, "before-mount.txt", "synced at startup")
    });

    // create + write
    p.write(S::Src, "a.txt", "hello");
    wait_for("a.txt", T, || tgt_has(&p, "a.txt", "hello"));
    // append
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(p.path(S::Src, "a.txt"))
        .unwrap()
        .write_all(b" world")
        .unwrap();
    wait_for("append", T, || tgt_has(&p, "a.txt", "hello world"));
    // mkdir + nested file
    p.write(S::Src, "dir/sub/deep.txt", "deep");
    wait_for("nested file", T, || tgt_has(&p, "dir/sub/deep.txt", "deep"));
    // rename a file, then a directory: renames on the target, same inode
    let ino = p.ino(S::Tgt, "dir/sub/deep.txt");
    std::fs::rename(
        p.path(S::Src, "dir/sub/deep.txt"),
        p.path(S::Src, "dir/sub/renamed.txt"),
    )
    .unwrap();
    wait_for("file rename", T, || {
        tgt_has(&p, "dir/sub/renamed.txt", "deep") && !p.exists(S::Tgt, "dir/sub/deep.txt")
    });
    std::fs::rename(p.path(S::Src, "dir"), p.path(S::Src, "moved")).unwrap();
    wait_for("dir rename", T, || {
        tgt_has(&p, "moved/sub/renamed.txt", "deep") && !p.exists(S::Tgt, "dir")
    });
    assert_eq!(
        p.ino(S::Tgt, "moved/sub/renamed.txt"),
        ino,
        "renamed on the target, not copied\n{}",
        m.log()
    );
    // chmod
    std::fs::set_permissions(
        p.path(S::Src, "a.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    wait_for("chmod", T, || {
        std::fs::metadata(p.path(S::Tgt, "a.txt")).is_ok_and(|m| m.mode() & 0o777 == 0o600)
    });
    // symlink and hard link
    std::os::unix::fs::symlink("a.txt", p.path(S::Src, "link")).unwrap();
    std::fs::hard_link(p.path(S::Src, "a.txt"), p.path(S::Src, "hard.txt")).unwrap();
    wait_for("symlink", T, || {
        std::fs::read_link(p.path(S::Tgt, "link")).is_ok_and(|t| t == Path::new("a.txt"))
    });
    wait_for("hard link", T, || tgt_has(&p, "hard.txt", "hello world"));
    // truncate
    std::fs::OpenOptions::new()
        .write(true)
        .open(p.path(S::Src, "a.txt"))
        .unwrap()
        .set_len(5)
        .unwrap();
    wait_for("truncate", T, || tgt_has(&p, "a.txt", "hello"));
    // unlink and rmdir
    std::fs::remove_file(p.path(S::Src, "hard.txt")).unwrap();
    std::fs::remove_dir_all(p.path(S::Src, "moved")).unwrap();
    wait_for("unlink + rmdir", T, || {
        !p.exists(S::Tgt, "hard.txt") && !p.exists(S::Tgt, "moved")
    });
    assert!(
        p.trash_contents(S::Tgt).contains(&"deep".to_string()),
        "deleted files go to the target's trash"
    );

    let st = m.stop();
    assert!(st.success(), "clean stop");
    // The folder is plain again and both sides agree.
    p.assert_same();
    let again = p.sync(&["--json"]);
    assert_eq!(again.code, 0, "{}", again.all());
    assert!(again.stdout.contains("\"copied\":0"), "{}", again.stdout);
}

#[test]
fn a_write_storm_of_small_files_all_arrives() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    let m = Mounted::start(&p);
    const N: usize = 10_000;
    for i in 0..N {
        let dir = p.path(S::Src, &format!("storm/d{}", i % 50));
        if i < 50 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        std::fs::write(dir.join(format!("f{i}")), format!("file {i}")).unwrap();
    }
    wait_for("all files in the target", Duration::from_secs(120), || {
        std::fs::read_to_string(p.path(S::Tgt, &format!("storm/d{}/f{}", (N - 1) % 50, N - 1)))
            .is_ok()
            && (0..50)
                .map(|d| {
                    std::fs::read_dir(p.path(S::Tgt, &format!("storm/d{d}")))
                        .map_or(0, |r| r.count())
                })
                .sum::<usize>()
                == N
    });
    for i in (0..N).step_by(997) {
        assert_eq!(
            p.read(S::Tgt, &format!("storm/d{}/f{i}", i % 50)),
            format!("file {i}")
        );
    }
    assert!(m.stop().success());
}

/// A directory being filled is read whole by the pass that creates it in the target; a
/// file in it that a program still holds open for writing is not copied half written: it
/// arrives once closed, complete.
#[test]
fn a_file_still_open_in_a_new_directory_waits_for_its_close() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    let m = Mounted::start(&p);
    std::fs::create_dir(p.path(S::Src, "fresh")).unwrap();
    let mut open = std::fs::File::create(p.path(S::Src, "fresh/open.txt")).unwrap();
    open.write_all(b"first half, ").unwrap();
    std::fs::write(p.path(S::Src, "fresh/closed.txt"), "done").unwrap();
    wait_for(
        "the closed file in the target",
        Duration::from_secs(20),
        || tgt_has(&p, "fresh/closed.txt", "done"),
    );
    // Well within the 2 s after which a file held open is copied anyway.
    assert!(
        !p.path(S::Tgt, "fresh/open.txt").exists(),
        "a file still open for writing was copied: {:?}",
        std::fs::read_to_string(p.path(S::Tgt, "fresh/open.txt"))
    );
    open.write_all(b"second half").unwrap();
    drop(open);
    wait_for("the file once closed", Duration::from_secs(20), || {
        tgt_has(&p, "fresh/open.txt", "first half, second half")
    });
    assert!(m.stop().success());
}

/// A folder renamed right after the mount came up, while the target watcher's events of
/// the startup sync (tandem's own `mkdir`s and copies in the target) are still coming in:
/// one rename in the target, and not a file of it deleted on the way.
#[test]
fn a_directory_renamed_right_after_startup_is_one_rename_in_the_target() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    for i in 0..3000 {
        p.write(S::Src, &format!("big/f{i}"), "x");
    }
    let m = Mounted::start(&p);
    let ino = p.ino(S::Tgt, "big");
    std::fs::rename(p.path(S::Src, "big"), p.path(S::Src, "moved")).unwrap();
    wait_for("the rename in the target", T, || {
        p.exists(S::Tgt, "moved") && !p.exists(S::Tgt, "big")
    });
    assert_eq!(p.ino(S::Tgt, "moved"), ino, "renamed, not made again");
    // Whatever the passes after it do, they settle with nothing deleted on the way.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(m.stop().success());
    assert_eq!(
        p.trash_contents(S::Tgt).len(),
        0,
        "files of the renamed folder were deleted in the target"
    );
    p.assert_same();
}

/// A file held open and written for longer than the 2 s after which an open file may be
/// copied is not copied while it grows (kernel passthrough writes leave no records: its
/// size and mtime are watched), and is copied once it has been quiet for a moment, even
/// while still open.
#[test]
fn a_long_write_is_copied_once_quiet_not_while_it_grows() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    let m = Mounted::start(&p);
    let mut f = std::fs::File::create(p.path(S::Src, "growing.log")).unwrap();
    let started = Instant::now();
    let mut written = 0usize;
    while started.elapsed() < Duration::from_millis(4500) {
        f.write_all(&[b'x'; 4096]).unwrap();
        written += 4096;
        std::thread::sleep(Duration::from_millis(100));
        if let Ok(md) = std::fs::metadata(p.path(S::Tgt, "growing.log")) {
            panic!(
                "copied while still growing: {} of {written} bytes, after {:?}",
                md.len(),
                started.elapsed()
            );
        }
    }
    // Quiet now, still open.
    wait_for(
        "the quiet file in the target",
        Duration::from_secs(20),
        || {
            std::fs::metadata(p.path(S::Tgt, "growing.log"))
                .is_ok_and(|md| md.len() == written as u64)
        },
    );
    drop(f);
    assert_eq!(p.read(S::Tgt, "growing.log").len(), written);
    assert!(m.stop().success());
}

#[test]
fn issue_3_rm_rf_of_most_of_the_tree_in_the_mount_is_replicated_not_halted() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    p.write(S::Src, "keep.txt", "kept");
    for i in 0..40 {
        p.write(
            S::Src,
            &format!("big/d{}/f{i}", i % 4),
            &format!("file {i}"),
        );
    }
    let m = Mounted::start(&p);
    wait_for("the startup sync", T, || {
        tgt_has(&p, "big/d3/f39", "file 39")
    });
    // 44 of the 46 synced entries, deleted by a program through the mount: an operation
    // seen as it happened, not a folder found emptied (which --max-delete guards against).
    std::fs::remove_dir_all(p.path(S::Src, "big")).unwrap();
    wait_for("the deletion in the target", T, || !p.exists(S::Tgt, "big"));
    std::fs::write(p.path(S::Src, "after.txt"), "later").unwrap();
    wait_for("later changes still flow", T, || {
        tgt_has(&p, "after.txt", "later")
    });
    assert!(tgt_has(&p, "keep.txt", "kept"));
    assert_eq!(
        p.trash_contents(S::Tgt).len(),
        40,
        "every deleted file kept in the target's trash"
    );
    assert!(m.stop().success());
    p.assert_same();
}

#[test]
fn after_kill_9_the_next_mount_cleans_up_and_converges() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    // Three crashes at different moments of a busy writer; what a program saw written
    // (write and close returned) must survive and reach the target.
    let mut written: Vec<(String, String)> = Vec::new();
    for (round, kill_after_ms) in [60u64, 150, 330].into_iter().enumerate() {
        let mut m = Mounted::start(&p);
        let stop = std::sync::atomic::AtomicBool::new(false);
        let done = std::thread::scope(|s| {
            let writer = s.spawn(|| {
                let mut ok = Vec::new();
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let rel = format!("k{round}/d{}/f{i}", i % 7);
                    let content = format!("round {round} file {i} ").repeat(50);
                    let path = p.path(S::Src, &rel);
                    let res = std::fs::create_dir_all(path.parent().unwrap())
                        .and_then(|_| std::fs::write(&path, &content));
                    if res.is_err() {
                        break; // the daemon is gone: ENOTCONN from here on
                    }
                    ok.push((rel, content));
                    i += 1;
                }
                ok
            });
            std::thread::sleep(Duration::from_millis(kill_after_ms));
            m.kill9();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            writer.join().unwrap()
        });
        assert!(
            !done.is_empty(),
            "the writer got some files through before the kill"
        );
        written.extend(done);
        assert!(
            rustix::fs::statfs(&p.src).is_err() || is_fuse(&p.src),
            "a crash leaves the mount stale"
        );
    }
    let m = Mounted::start(&p);
    wait_for(
        "every file written before the kills, in the target",
        T,
        || written.iter().all(|(rel, c)| tgt_has(&p, rel, c)),
    );
    let st = m.stop();
    assert!(
        st.success(),
        "{st}: {}",
        std::fs::read_to_string(p.tmp.path().join("mount.log")).unwrap_or_default()
    );
    for (rel, c) in &written {
        assert_eq!(&p.read(S::Src, rel), c, "{rel} survived in the source");
    }
    p.assert_same();
}

#[test]
fn background_mount_and_unmount() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    let xdg = p.tmp.path().join("xdg");
    let run = |args: &[&std::ffi::OsStr]| {
        let mounts = args.first().is_some_and(|a| *a == "mount");
        let out = Command::new(bin())
            .args(args)
            .args(transport_args().into_iter().filter(|_| mounts))
            .env("XDG_STATE_HOME", &xdg)
            .output()
            .unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    let out = run(&[
        "mount".as_ref(),
        p.src.as_os_str(),
        p.tgt.as_os_str(),
        "--state-dir".as_ref(),
        p.state.as_os_str(),
    ]);
    // Detach guard in case an assertion fails below.
    struct Detach<'a>(&'a Path);
    impl Drop for Detach<'_> {
        fn drop(&mut self) {
            if is_fuse(self.0) {
                detach(self.0);
            }
        }
    }
    let _guard = Detach(&p.src);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(is_fuse(&p.src), "mounted when `tandem mount` returns");
    let again = run(&[
        "mount".as_ref(),
        p.src.as_os_str(),
        p.tgt.as_os_str(),
        "--state-dir".as_ref(),
        p.state.as_os_str(),
    ]);
    assert_eq!(again.code, 2, "a second mount is refused: {}", again.all());
    assert!(again.stderr.contains("already mounted"), "{}", again.stderr);
    p.write(S::Src, "x.txt", "through the background mount");
    let out = run(&["unmount".as_ref(), p.src.as_os_str()]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(!is_fuse(&p.src));
    assert!(
        tgt_has(&p, "x.txt", "through the background mount"),
        "drained before the unmount"
    );
    let out = run(&["unmount".as_ref(), p.src.as_os_str()]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("nothing is mounted"), "{}", out.stderr);
}

#[test]
fn git_works_inside_the_mount_and_is_replicated() {
    if !fuse_available() || Command::new("git").arg("--version").output().is_err() {
        return;
    }
    let p = Pair::new();
    let m = Mounted::start(&p);
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.invalid",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(&p.src)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    git(&["init", "-q"]);
    for i in 0..20 {
        p.write(
            S::Src,
            &format!("src/m{i}.rs"),
            &format!("fn m{i}() {{}}\n"),
        );
    }
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "first"]);
    p.write(S::Src, "src/m3.rs", "fn m3() { changed() }\n");
    git(&["commit", "-q", "-am", "second"]);
    assert_eq!(git(&["status", "--porcelain"]), "");
    assert!(m.stop().success());
    p.assert_same();
    let out = Command::new("git")
        .args(["status", "--porcelain"])
        .current_dir(&p.tgt)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = Command::new("git")
        .args(["log", "--oneline"])
        .current_dir(&p.tgt)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&log.stdout).lines().count(),
        2,
        "both commits replicated"
    );
}

#[test]
fn untar_of_a_source_tree_inside_the_mount_is_replicated() {
    if !fuse_available() {
        return;
    }
    // A tree made outside the mount, packed, then unpacked through it.
    let p = Pair::new();
    let staging = p.tmp.path().join("staging");
    for i in 0..1500 {
        write_file(
            &staging.join(format!("proj/mod{}/sub{}/f{i}.rs", i % 17, i % 5)),
            format!("// {i}\n").repeat(i % 40 + 1).as_bytes(),
        );
    }
    std::os::unix::fs::symlink("mod1", staging.join("proj/link")).unwrap();
    let tarball = p.tmp.path().join("proj.tar");
    let st = Command::new("tar")
        .arg("-cf")
        .arg(&tarball)
        .arg("-C")
        .arg(&staging)
        .arg("proj")
        .status()
        .unwrap();
    assert!(st.success());
    let m = Mounted::start(&p);
    let st = Command::new("tar")
        .arg("-xf")
        .arg(&tarball)
        .arg("-C")
        .arg(&p.src)
        .status()
        .unwrap();
    assert!(st.success());
    assert!(m.stop().success(), "clean stop drains the journal");
    p.assert_same();
    assert_eq!(
        tree_of(&p.src.join("proj")),
        tree_of(&staging.join("proj")),
        "the untar is intact"
    );
}

/// Issue 21: by default a mount takes its requests over FUSE over io_uring where the
/// kernel's switch is on, and where it is off serves through /dev/fuse, saying why in one
/// log line.
#[test]
fn issue_21_the_default_transport_is_io_uring_where_the_kernel_allows_it() {
    if !fuse_available() {
        return;
    }
    if std::env::var_os("TANDEM_TRANSPORT").is_some() {
        eprintln!(
            "SKIPPED: TANDEM_TRANSPORT names the transport, and this test is about the default"
        );
        return;
    }
    let p = Pair::new();
    p.write(S::Src, "a.txt", "one");
    let switch = std::fs::read_to_string("/sys/module/fuse/parameters/enable_uring");
    let m = Mounted::start(&p);
    let log = m.log();
    let why: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("serving through /dev/fuse"))
        .collect();
    match switch.as_deref().map(str::trim) {
        Ok("Y") => {
            assert!(why.is_empty(), "{log}");
            assert!(log.contains("requests over io_uring"), "{log}");
        }
        Ok(_) => {
            assert_eq!(why.len(), 1, "{log}");
            assert!(why[0].contains("enable_uring is N"), "{log}");
            assert!(log.contains("requests through /dev/fuse"), "{log}");
        }
        Err(_) => {
            assert_eq!(why.len(), 1, "{log}");
            assert!(why[0].contains("no FUSE over io_uring"), "{log}");
        }
    }
    std::fs::write(p.src.join("b.txt"), "two").unwrap();
    wait_for("b.txt in the target", Duration::from_secs(10), || {
        tgt_has(&p, "b.txt", "two")
    });
    assert!(m.stop().success());
}

/// Issue 21: what a mount holds beyond its tree is small. Each request thread's read
/// buffer and each io_uring entry's payload is as big as the largest request (16 MiB). As
/// zeroed Vecs, glibc cleared them with memset wherever it served them from a thread's
/// arena, which it does once a large free has raised its mmap threshold: a mount of
/// 10,000 small files peaked at 80-90 MiB, 64 MiB of it buffers no request had used. How
/// many were cleared depended on the arenas' past; the tunables here make glibc do it
/// every time (a fixed mmap threshold above 16 MiB, and calloc clearing all it hands out).
#[test]
fn issue_21_a_mount_holds_little_memory_beyond_its_tree() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    for i in 0..100 {
        p.write(S::Src, &format!("d{}/f{i}", i / 10), &"x".repeat(i * 10));
    }
    let tgt = p.tgt.as_os_str();
    let tunables = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.perturb=165";
    let m = Mounted::start_targets_env(&p, &[tgt], &[], &[("GLIBC_TUNABLES", tunables)]);
    std::fs::write(p.src.join("new.txt"), "through the mount").unwrap();
    wait_for("new.txt in the target", Duration::from_secs(30), || {
        tgt_has(&p, "new.txt", "through the mount")
    });
    let status = std::fs::read_to_string(format!("/proc/{}/status", m.pid().unwrap())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    eprintln!("a mount of 100 files: peak RSS {peak_kib} KiB");
    // Generous: a debug build peaks at about 20 MiB here (85 MiB with the Vecs).
    assert!(
        peak_kib < 40 * 1024,
        "peak RSS {peak_kib} KiB:\n{}",
        m.log()
    );
    assert!(m.stop().success());
}

/// The FUSE mounts at `p`, as /proc/self/mountinfo lists them (a mount stacked over another
/// is one more line).
fn fuse_mounts_at(p: &Path) -> usize {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let fs_type = l.split(" - ").nth(1).unwrap_or("");
            fields.get(4).is_some_and(|m| Path::new(m) == p) && fs_type.starts_with("fuse")
        })
        .count()
}

/// Several `tandem mount` of one source started at once, each with a target of its own (so
/// no pair's lock tells them apart): exactly one mounts, the others are refused as "already
/// mounted" with exit 2, and one FUSE mount sits at the source. The claim on the mount point
/// used to be written after the kernel mount, so the others could all pass the check and
/// stack a FUSE mount over the first (issue 21).
#[test]
fn issue_21_mounts_of_one_source_started_together_mount_it_once() {
    if !fuse_available() {
        return;
    }
    const N: usize = 4;
    let p = Pair::new();
    p.write(S::Src, "a.txt", "one");
    let xdg = p.tmp.path().join("xdg");
    let logs: Vec<std::path::PathBuf> = (0..N)
        .map(|i| p.tmp.path().join(format!("mount{i}.log")))
        .collect();
    let cmds: Vec<Command> = (0..N)
        .map(|i| {
            let tgt = p.tmp.path().join(format!("tgt{i}"));
            std::fs::create_dir_all(&tgt).unwrap();
            let log = std::fs::File::create(&logs[i]).unwrap();
            let mut cmd = Command::new(bin());
            cmd.arg("mount")
                .arg(&p.src)
                .arg(&tgt)
                .args(transport_args())
                .arg("--foreground")
                .env("XDG_STATE_HOME", &xdg)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            cmd
        })
        .collect();
    /// Stops whatever still runs and detaches every mount left (stacked ones too).
    struct Guard<'a>(Vec<Child>, &'a Path);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            for c in &mut self.0 {
                if c.try_wait().ok().flatten().is_some() {
                    continue;
                }
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(c.id().to_string())
                    .status();
            }
            for c in &mut self.0 {
                let deadline = Instant::now() + Duration::from_secs(20);
                while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = c.kill();
                let _ = c.wait();
            }
            for _ in 0..N {
                if is_fuse(self.1) {
                    detach(self.1);
                }
            }
        }
    }
    let mut g = Guard(Vec::new(), &p.src);
    for mut cmd in cmds {
        g.0.push(cmd.spawn().unwrap());
    }
    let log = |i: usize| std::fs::read_to_string(&logs[i]).unwrap_or_default();
    let mounted = |i: usize| log(i).contains("tandem: mounted ");
    // Settled once every one but one has exited and that one serves, or once two serve.
    let mut codes: Vec<Option<i32>> = vec![None; N];
    let start = Instant::now();
    loop {
        for (i, c) in g.0.iter_mut().enumerate() {
            if codes[i].is_none() {
                codes[i] = c.try_wait().unwrap().map(|st| st.code().unwrap_or(-1));
            }
        }
        let serving = (0..N).filter(|&i| codes[i].is_none() && mounted(i)).count();
        let exited = codes.iter().filter(|c| c.is_some()).count();
        if serving > 1 || (serving == 1 && exited == N - 1) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not settled: exits {codes:?}\n{}",
            (0..N).map(log).collect::<Vec<_>>().join("\n---\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let all_logs = (0..N).map(log).collect::<Vec<_>>().join("\n---\n");
    let winners: Vec<usize> = (0..N).filter(|&i| codes[i].is_none()).collect();
    assert_eq!(winners.len(), 1, "one mount serves: {codes:?}\n{all_logs}");
    assert_eq!(
        fuse_mounts_at(&p.src),
        1,
        "one FUSE mount at the source\n{all_logs}"
    );
    for i in (0..N).filter(|&i| codes[i].is_some()) {
        assert_eq!(codes[i], Some(2), "refused with exit 2\n{}", log(i));
        assert!(
            log(i).contains("is already mounted by tandem"),
            "{}",
            log(i)
        );
        assert!(!mounted(i), "{}", log(i));
    }
    // The one that serves works, and stops cleanly, leaving nothing mounted.
    let w = winners[0];
    let tgt = p.tmp.path().join(format!("tgt{w}"));
    std::fs::write(p.src.join("b.txt"), "two").unwrap();
    wait_for("b.txt in the serving mount's target", T, || {
        std::fs::read(tgt.join("b.txt")).is_ok_and(|c| c == b"two")
    });
    let mut winner = g.0.swap_remove(w);
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(winner.id().to_string())
        .status();
    let st = winner.wait().unwrap();
    assert!(st.success(), "{}", log(w));
    assert_eq!(fuse_mounts_at(&p.src), 0, "nothing left mounted");
}
