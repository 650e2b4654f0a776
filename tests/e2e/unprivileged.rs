//! `tandem mount` as a user other than root (issue 20, item 7): the mount goes through
//! fusermount3, kernel passthrough is off, `tandem unmount` and the cleanup of a crashed
//! mount work for that user, and what the machine lacks is said clearly.
//!
//! The harness runs as root and runs the real binary as `nobody` (uid 65534), in folders
//! that user owns. The refusals are shown in a mount namespace of their own, where a
//! device node of mode 0600 (or an empty /etc/fuse.conf) is bind-mounted over the real one:
//! nothing outside that namespace changes, so tests running alongside are not disturbed.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::fixtures::*;
use crate::mount::{detach, fuse_available, is_fuse, wait_for};

pub(crate) const NOBODY: u32 = 65534;
const T: Duration = Duration::from_secs(20);

/// Root can run the binary as another user; the working case also needs /dev/fuse open to
/// every user, as Debian has it (CI=true makes its absence a failure).
fn can_run_as_nobody(test: &str, need_open_device: bool) -> bool {
    if !fuse_available() {
        return false;
    }
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED {test}: only root can run tandem as another user");
        return false;
    }
    let mode = std::fs::metadata("/dev/fuse").map_or(0, |m| m.mode() & 0o777);
    if need_open_device && mode & 0o006 != 0o006 {
        let why = format!(
            "/dev/fuse is mode {mode:o}, not 0666 as on Debian (.ci/run sets it), so only root may mount"
        );
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true, but {test} cannot run: {why}");
        }
        eprintln!("SKIPPED {test}: {why}");
        return false;
    }
    true
}

/// A refused mount did nothing: no startup sync, no mount.
fn refused_before_any_work(p: &Pair) {
    assert!(
        !p.exists(S::Tgt, "a.txt"),
        "nothing was synced before the refusal"
    );
    assert!(!is_fuse(&p.src));
}

/// A pair whose folders, state and home belong to `nobody`.
pub(crate) fn nobody_pair() -> Pair {
    let p = Pair::new();
    for d in ["state", "xdg", "home", "run"] {
        std::fs::create_dir_all(p.tmp.path().join(d)).unwrap();
    }
    std::fs::set_permissions(p.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let st = Command::new("chown")
        .args(["-R", &format!("{NOBODY}:{NOBODY}")])
        .arg(p.tmp.path())
        .status()
        .unwrap();
    assert!(st.success());
    p
}

/// The environment of a user session: home, state and runtime folders of their own.
fn user_env(p: &Pair, cmd: &mut Command) {
    cmd.env("HOME", p.tmp.path().join("home"))
        .env("XDG_STATE_HOME", p.tmp.path().join("xdg"))
        .env("XDG_RUNTIME_DIR", p.tmp.path().join("run"));
}

/// Runs `cmd` as `nobody` (std drops the supplementary groups too).
pub(crate) fn as_nobody(p: &Pair, mut cmd: Command) -> Out {
    user_env(p, &mut cmd);
    let out = cmd
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub(crate) fn tandem(args: &[&std::ffi::OsStr]) -> Command {
    let mut cmd = Command::new(bin_for_anyone());
    cmd.args(args);
    cmd
}

fn mount_args(p: &Pair) -> Vec<&std::ffi::OsStr> {
    vec![
        "mount".as_ref(),
        p.src.as_os_str(),
        p.tgt.as_os_str(),
        "--state-dir".as_ref(),
        p.state.as_os_str(),
    ]
}

/// Detaches whatever is left mounted over the source, whatever happens in the test.
struct Cleanup<'a>(&'a Path);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if is_fuse(self.0) {
            detach(self.0);
        }
    }
}

/// The mount at `p` as /proc/self/mountinfo lists it, if any.
fn mountinfo_line(p: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let want = format!(" {} ", p.display());
    info.lines()
        .find(|l| l.contains(&want) && l.contains("fuse"))
        .map(str::to_string)
}

fn write_as_nobody(p: &Pair, rel: &str, content: &str) {
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "mkdir -p \"${2%/*}\" && printf %s \"$1\" > \"$2\"",
        "sh",
        content,
    ])
    .arg(p.path(S::Src, rel));
    let out = as_nobody(p, cmd);
    assert_eq!(
        out.code,
        0,
        "writing {rel} through the mount: {}",
        out.all()
    );
}

#[test]
fn issue_20_an_ordinary_user_mounts_replicates_and_unmounts() {
    if !can_run_as_nobody(
        "issue_20_an_ordinary_user_mounts_replicates_and_unmounts",
        true,
    ) {
        return;
    }
    let p = nobody_pair();
    p.write(S::Src, "before.txt", "synced at startup");
    std::os::unix::fs::chown(p.path(S::Src, "before.txt"), Some(NOBODY), Some(NOBODY)).unwrap();
    let _cleanup = Cleanup(&p.src);

    let out = as_nobody(&p, tandem(&mount_args(&p)));
    assert_eq!(out.code, 0, "tandem mount as nobody: {}", out.all());
    assert!(is_fuse(&p.src), "mounted when `tandem mount` returns");
    let line = mountinfo_line(&p.src).unwrap();
    assert!(line.contains(&format!("user_id={NOBODY}")), "{line}");
    let log = std::fs::read_to_string(p.state.join("mount.log")).unwrap();
    assert!(
        log.contains("kernel passthrough off: it needs CAP_SYS_ADMIN"),
        "passthrough is not offered to a user without CAP_SYS_ADMIN:\n{log}"
    );

    write_as_nobody(&p, "through/the-mount.txt", "written by nobody");
    wait_for("the file in the target", T, || {
        std::fs::read(p.path(S::Tgt, "through/the-mount.txt"))
            .is_ok_and(|c| c == b"written by nobody")
    });
    assert_eq!(p.read(S::Tgt, "before.txt"), "synced at startup");
    let owner = std::fs::metadata(p.path(S::Tgt, "through/the-mount.txt")).unwrap();
    assert_eq!(owner.uid(), NOBODY, "the target's copy belongs to the user");

    let out = as_nobody(&p, tandem(&["unmount".as_ref(), p.src.as_os_str()]));
    assert_eq!(out.code, 0, "tandem unmount as nobody: {}", out.all());
    assert!(!is_fuse(&p.src), "unmounted");
    assert_eq!(mountinfo_line(&p.src), None, "gone from the mount table");
    assert_eq!(p.read(S::Src, "through/the-mount.txt"), "written by nobody");
}

/// A user's mount whose process was killed: the next `tandem mount` of that user detaches
/// the stale mount (fusermount3; umount2 is root's) and serves again.
#[test]
fn issue_20_an_ordinary_user_recovers_from_a_killed_mount() {
    if !can_run_as_nobody(
        "issue_20_an_ordinary_user_recovers_from_a_killed_mount",
        true,
    ) {
        return;
    }
    let p = nobody_pair();
    let _cleanup = Cleanup(&p.src);
    let mut fg = Command::new(bin_for_anyone());
    fg.args(mount_args(&p)).arg("--foreground");
    user_env(&p, &mut fg);
    let mut child = fg
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the first mount", T, || is_fuse(&p.src));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        mountinfo_line(&p.src).is_some(),
        "a killed mount stays, stale"
    );

    let out = as_nobody(&p, tandem(&mount_args(&p)));
    assert_eq!(out.code, 0, "tandem mount after the crash: {}", out.all());
    assert!(out.stderr.contains("is a stale mount"), "{}", out.all());
    write_as_nobody(&p, "after.txt", "served again");
    wait_for("the file in the target", T, || {
        std::fs::read(p.path(S::Tgt, "after.txt")).is_ok_and(|c| c == b"served again")
    });
    let out = as_nobody(&p, tandem(&["unmount".as_ref(), p.src.as_os_str()]));
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(mountinfo_line(&p.src), None, "nothing left mounted");
}

/// Runs `tandem ARGS` as `nobody` in a mount namespace of its own, where each `(from, to)`
/// of `binds` is bind-mounted first.
fn in_namespace(p: &Pair, binds: &[(&Path, &str)], args: &[&std::ffi::OsStr]) -> Out {
    let mut script = String::new();
    for (i, _) in binds.iter().enumerate() {
        script.push_str(&format!(
            "mount --bind \"${}\" \"${}\" || exit 97; ",
            2 * i + 1,
            2 * i + 2
        ));
    }
    script.push_str(&format!("shift {}; exec \"$@\"", 2 * binds.len()));
    let mut cmd = Command::new("unshare");
    cmd.args([
        "-m",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        &script,
        "sh",
    ]);
    for (from, to) in binds {
        cmd.arg(from).arg(to);
    }
    cmd.args([
        "setpriv",
        &format!("--reuid={NOBODY}"),
        &format!("--regid={NOBODY}"),
        "--clear-groups",
        "--",
    ]);
    cmd.arg(bin_for_anyone()).args(args);
    user_env(p, &mut cmd);
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let out = Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_ne!(out.code, 97, "bind mount in the namespace: {}", out.all());
    out
}

#[test]
fn issue_20_an_ordinary_user_without_access_to_dev_fuse_is_told_what_is_missing() {
    if !can_run_as_nobody("issue_20_..._without_access_to_dev_fuse", false) {
        return;
    }
    let p = nobody_pair();
    p.write(S::Src, "a.txt", "stays here");
    let _cleanup = Cleanup(&p.src);
    // The same device, mode 0600 as on this machine before .ci/run: only root may open it.
    let node = p.tmp.path().join("fuse-0600");
    let st = Command::new("mknod")
        .args(["-m", "0600"])
        .arg(&node)
        .args(["c", "10", "229"])
        .status()
        .unwrap();
    assert!(st.success(), "mknod");
    let out = in_namespace(&p, &[(&node, "/dev/fuse")], &mount_args(&p));
    assert_eq!(out.code, 2, "{}", out.all());
    let msg = out.stderr.replace('\n', " ");
    for needed in [
        "tandem: error: cannot mount: /dev/fuse is not readable and writable by this user (uid 65534)",
        "mode 0600, owner root, group root",
        "On Debian it is mode 0666",
        "fusermount3 (package fuse3)",
        "chmod 0666 /dev/fuse",
    ] {
        assert!(msg.contains(needed), "{needed:?} not in: {}", out.stderr);
    }
    assert!(
        !msg.contains("startup sync"),
        "said before any work: {}",
        out.stderr
    );
    refused_before_any_work(&p);
}

#[test]
fn issue_20_allow_other_for_an_ordinary_user_needs_user_allow_other() {
    if !can_run_as_nobody("issue_20_allow_other_...", true) {
        return;
    }
    let p = nobody_pair();
    p.write(S::Src, "a.txt", "stays here");
    let _cleanup = Cleanup(&p.src);
    // A fuse.conf without `user_allow_other`, as Debian installs it.
    let conf = p.tmp.path().join("fuse.conf");
    std::fs::write(&conf, "#user_allow_other\n").unwrap();
    let mut args = mount_args(&p);
    args.push("--allow-other".as_ref());
    let out = in_namespace(&p, &[(&conf, "/etc/fuse.conf")], &args);
    assert_eq!(out.code, 2, "{}", out.all());
    out.assert_stderr_has("cannot mount: the allow_other option, for a user other than root, needs a line `user_allow_other` in /etc/fuse.conf");
    refused_before_any_work(&p);
}

#[test]
fn issue_20_a_missing_dev_fuse_is_named() {
    if !can_run_as_nobody("issue_20_a_missing_dev_fuse_is_named", false) {
        return;
    }
    let p = nobody_pair();
    // A /dev with no FUSE device (only /dev/null), as in a container started without it.
    let dev = p.tmp.path().join("dev");
    std::fs::create_dir(&dev).unwrap();
    let st = Command::new("mknod")
        .args(["-m", "0666"])
        .arg(dev.join("null"))
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(st.success(), "mknod");
    let out = in_namespace(&p, &[(&dev, "/dev")], &mount_args(&p));
    assert_eq!(out.code, 2, "{}", out.all());
    out.assert_stderr_has(
        "cannot mount: /dev/fuse is missing: mounting needs the FUSE kernel module",
    );
    out.assert_stderr_has("package fuse3");
}

/// With `user_allow_other` in /etc/fuse.conf, a user's `--allow-other` mount lets root in:
/// what root writes through it reaches the target (created by the mounting user, who alone
/// the daemon can act as). All of it inside a mount namespace with that fuse.conf.
#[test]
fn allow_other_for_an_ordinary_user_works_with_user_allow_other() {
    if !can_run_as_nobody("allow_other_..._with_user_allow_other", true) {
        return;
    }
    let p = nobody_pair();
    let _cleanup = Cleanup(&p.src);
    let conf = p.tmp.path().join("fuse.conf");
    std::fs::write(&conf, "# as an administrator would\nuser_allow_other\n").unwrap();
    let owner = p.tmp.path().join("owner");
    let script = r#"
        mount --bind "$1" /etc/fuse.conf || exit 97
        as_user() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
        as_user "$2" mount "$3" "$4" --state-dir "$5" --allow-other || exit 98
        rc=0
        mkdir "$3/dir" && printf 'written by root' > "$3/dir/by-root.txt" || rc=99
        stat -c %u "$3/dir/by-root.txt" > "$6"
        as_user "$2" unmount "$3" || rc=96
        exit $rc
    "#;
    let mut cmd = Command::new("unshare");
    cmd.args([
        "-m",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        script,
        "sh",
    ])
    .arg(&conf)
    .arg(bin_for_anyone())
    .args([&p.src, &p.tgt, &p.state, &owner]);
    user_env(&p, &mut cmd);
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let log = std::fs::read_to_string(p.state.join("mount.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "{:?}\n{}{}\nlog:\n{log}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(p.read(S::Tgt, "dir/by-root.txt"), "written by root");
    assert_eq!(p.read(S::Src, "dir/by-root.txt"), "written by root");
    assert_eq!(
        std::fs::read_to_string(&owner).unwrap().trim(),
        NOBODY.to_string(),
        "created as the mounting user"
    );
}

#[test]
fn issue_20_a_fusermount3_that_cannot_mount_for_a_user_is_named() {
    if !can_run_as_nobody("issue_20_a_fusermount3_that_cannot_mount_...", true) {
        return;
    }
    let Some(helper) = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("fusermount3"))
        .find(|p| p.is_file())
    else {
        panic!("fusermount3 is not installed (package fuse3; .ci/run installs it)");
    };
    let p = nobody_pair();
    p.write(S::Src, "a.txt", "stays here");
    let _cleanup = Cleanup(&p.src);
    // Installed without its set-user-ID bit (a copy by hand, a broken package).
    let plain = p.tmp.path().join("fusermount3");
    std::fs::copy(&helper, &plain).unwrap();
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o755)).unwrap();
    let to = helper.to_str().unwrap();
    let out = in_namespace(&p, &[(&plain, to)], &mount_args(&p));
    assert_eq!(out.code, 2, "{}", out.all());
    out.assert_stderr_has(&format!(
            "cannot mount: {to} is not set-user-ID root, so it cannot mount for a user other than root: reinstall the package fuse3"
        ));
    assert!(
        !p.exists(S::Tgt, "a.txt"),
        "nothing was synced before the refusal"
    );
}
