//! `--owner` and `--numeric-ids` (issue 19): owner and group kept both ways as root,
//! reported once per run as an ordinary user, and setuid/setgid bits never taken from the
//! other side unless `--owner` is on and tandem runs as root.

use std::os::unix::fs::{chown, lchown, MetadataExt, PermissionsExt};

use crate::fixtures::*;
use crate::unprivileged::{as_nobody, nobody_pair, tandem, NOBODY};

fn is_root(test: &str) -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        eprintln!("SKIPPED {test}: only root can make files owned by other users");
    }
    root
}

fn owner(p: &Pair, s: S, rel: &str) -> (u32, u32) {
    let m = std::fs::symlink_metadata(p.path(s, rel)).unwrap();
    (m.uid(), m.gid())
}

fn mode(p: &Pair, s: S, rel: &str) -> u32 {
    std::fs::symlink_metadata(p.path(s, rel)).unwrap().mode() & 0o7777
}

fn set_mode(p: &Pair, s: S, rel: &str, mode: u32) {
    std::fs::set_permissions(p.path(s, rel), std::fs::Permissions::from_mode(mode)).unwrap();
}

fn json_summary(out: &Out) -> String {
    out.stdout.lines().last().unwrap_or_default().to_string()
}

#[test]
fn issue_19_owner_kept_as_root() {
    if !is_root("issue_19_owner_kept_as_root") {
        return;
    }
    owner_kept_as_root(&Pair::new());
}

#[test]
fn issue_17_owner_kept_as_root_with_a_remote_target() {
    if !is_root("issue_17_owner_kept_as_root_with_a_remote_target") {
        return;
    }
    if let Some(p) = crate::remote::over_ssh("issue_17_owner_kept_as_root_with_a_remote_target") {
        owner_kept_as_root(&p);
    }
}

fn owner_kept_as_root(p: &Pair) {
    p.write(S::Src, "nobody.txt", "one");
    p.write(S::Src, "daemon.txt", "two");
    p.write(S::Src, "dir/inner.txt", "three");
    chown(p.path(S::Src, "nobody.txt"), Some(NOBODY), Some(NOBODY)).unwrap();
    chown(p.path(S::Src, "daemon.txt"), Some(1), Some(2)).unwrap();
    chown(p.path(S::Src, "dir"), Some(1), Some(1)).unwrap();
    p.sync_ok(&["--owner"], 0);
    assert_eq!(owner(p, S::Tgt, "nobody.txt"), (NOBODY, NOBODY));
    assert_eq!(owner(p, S::Tgt, "daemon.txt"), (1, 2));
    assert_eq!(owner(p, S::Tgt, "dir"), (1, 1));
    assert_eq!(owner(p, S::Tgt, "dir/inner.txt"), (0, 0));

    // A chown alone is a change, carried the other way too, and --numeric-ids is taken.
    chown(p.path(S::Tgt, "dir/inner.txt"), Some(NOBODY), Some(1)).unwrap();
    let out = p.sync_ok(&["--owner", "--numeric-ids", "--json"], 0);
    assert!(
        json_summary(&out).contains("\"metadata\":1"),
        "{}",
        out.all()
    );
    assert_eq!(owner(p, S::Src, "dir/inner.txt"), (NOBODY, 1));

    // Without --owner, owners are left alone.
    chown(p.path(S::Src, "daemon.txt"), Some(3), Some(3)).unwrap();
    let out = p.sync_ok(&["--json"], 0);
    assert!(
        json_summary(&out).contains("\"metadata\":0"),
        "{}",
        out.all()
    );
    assert_eq!(owner(p, S::Tgt, "daemon.txt"), (1, 2));
}

/// A symlink's own owner (`chown -h`) is kept both ways, on the link and never on what it
/// points to.
#[test]
fn issue_19_symlink_owner_kept() {
    if !is_root("issue_19_symlink_owner_kept") {
        return;
    }
    symlink_owner_kept(&Pair::new());
}

#[test]
fn issue_17_symlink_owner_kept_with_a_remote_target() {
    if !is_root("issue_17_symlink_owner_kept_with_a_remote_target") {
        return;
    }
    if let Some(p) = crate::remote::over_ssh("issue_17_symlink_owner_kept_with_a_remote_target") {
        symlink_owner_kept(&p);
    }
}

fn symlink_owner_kept(p: &Pair) {
    p.write(S::Src, "a.txt", "one");
    std::os::unix::fs::symlink("a.txt", p.path(S::Src, "l")).unwrap();
    lchown(p.path(S::Src, "l"), Some(NOBODY), Some(NOBODY)).unwrap();
    p.sync_ok(&["--owner"], 0);
    assert_eq!(owner(p, S::Tgt, "l"), (NOBODY, NOBODY));

    // A chown -h alone is a change, carried the other way too.
    lchown(p.path(S::Tgt, "l"), Some(1), Some(2)).unwrap();
    let out = p.sync_ok(&["--owner", "--json"], 0);
    assert!(
        json_summary(&out).contains("\"metadata\":1"),
        "{}",
        out.all()
    );
    assert_eq!(owner(p, S::Src, "l"), (1, 2));
    assert_eq!(
        owner(p, S::Src, "a.txt"),
        (0, 0),
        "the link's file is left alone"
    );
    assert_eq!(
        owner(p, S::Tgt, "a.txt"),
        (0, 0),
        "the link's file is left alone"
    );
    let out = p.sync_ok(&["--owner", "--json"], 0);
    assert!(
        json_summary(&out).contains("\"metadata\":0"),
        "{}",
        out.all()
    );

    // Without --owner, a link's owner is left alone.
    lchown(p.path(S::Src, "l"), Some(3), Some(3)).unwrap();
    let out = p.sync_ok(&["--json"], 0);
    assert!(
        json_summary(&out).contains("\"metadata\":0"),
        "{}",
        out.all()
    );
    assert_eq!(owner(p, S::Tgt, "l"), (1, 2));
}

#[test]
fn issue_19_owner_not_kept_as_ordinary_user_is_reported_once() {
    if !is_root("issue_19_owner_not_kept_as_ordinary_user_is_reported_once") {
        return;
    }
    let p = nobody_pair();
    for name in ["a.txt", "b.txt", "c.txt"] {
        p.write(S::Src, name, name);
        set_mode(&p, S::Src, name, 0o644);
    }
    chown(p.path(S::Src, "a.txt"), Some(1), Some(1)).unwrap();
    chown(p.path(S::Src, "b.txt"), Some(2), Some(2)).unwrap();
    chown(p.path(S::Src, "c.txt"), Some(NOBODY), Some(NOBODY)).unwrap();
    let sync = || {
        as_nobody(
            &p,
            tandem(&[
                "sync".as_ref(),
                p.src.as_os_str(),
                p.tgt.as_os_str(),
                "--state-dir".as_ref(),
                p.state.as_os_str(),
                "--owner".as_ref(),
                "--json".as_ref(),
            ]),
        )
    };
    let out = sync();
    assert_eq!(out.code, 1, "{}", out.all());
    let summary = json_summary(&out);
    assert!(
        summary.contains("owner not kept on 2 files: not running as root"),
        "{summary}"
    );
    assert_eq!(
        summary.matches("not kept").count(),
        1,
        "one report, not one per file: {summary}"
    );
    for name in ["a.txt", "b.txt", "c.txt"] {
        assert_eq!(p.read(S::Tgt, name), name, "the rest synced");
        assert_eq!(owner(&p, S::Tgt, name), (NOBODY, NOBODY));
    }
    // Nothing changed since: nothing to copy, nothing to report, the source untouched.
    let again = sync();
    assert_eq!(again.code, 0, "{}", again.all());
    assert!(
        json_summary(&again).contains("\"copied\":0"),
        "{}",
        again.all()
    );
    assert_eq!(owner(&p, S::Src, "a.txt"), (1, 1));
}

#[test]
fn issue_19_setuid_bit_not_copied_without_owner_as_root() {
    setuid_bit_not_copied_without_owner_as_root(&Pair::new());
}

#[test]
fn issue_17_setuid_bit_not_copied_without_owner_with_a_remote_target() {
    if let Some(p) =
        crate::remote::over_ssh("issue_17_setuid_bit_not_copied_without_owner_with_a_remote_target")
    {
        setuid_bit_not_copied_without_owner_as_root(&p);
    }
}

fn setuid_bit_not_copied_without_owner_as_root(p: &Pair) {
    p.write(S::Src, "prog", "#!/bin/sh\n");
    set_mode(p, S::Src, "prog", 0o4755);
    p.write(S::Src, "shared/f", "x");
    set_mode(p, S::Src, "shared", 0o2775);
    p.sync_ok(&[], 0);
    assert_eq!(mode(p, S::Tgt, "prog"), 0o755, "setuid bit not copied");
    assert_eq!(mode(p, S::Tgt, "shared"), 0o775, "setgid bit not copied");
    assert_eq!(p.read(S::Tgt, "prog"), "#!/bin/sh\n");

    // Not a lasting difference: the next run does nothing, both sides keep their own.
    let out = p.sync_ok(&["--json"], 0);
    let summary = json_summary(&out);
    assert!(
        summary.contains("\"copied\":0") && summary.contains("\"metadata\":0"),
        "{summary}"
    );
    assert_eq!(mode(p, S::Src, "prog"), 0o4755);

    // A setuid bit added on the target does not travel back either.
    set_mode(p, S::Tgt, "prog", 0o4711);
    p.sync_ok(&[], 0);
    assert_eq!(mode(p, S::Src, "prog"), 0o711);

    // With --owner as root, it does.
    if rustix::process::geteuid().is_root() {
        set_mode(p, S::Src, "prog", 0o4755);
        p.sync_ok(&["--owner"], 0);
        assert_eq!(mode(p, S::Tgt, "prog"), 0o4755);
    }
}

#[test]
fn issue_19_setuid_bit_not_copied_with_owner_as_ordinary_user() {
    if !is_root("issue_19_setuid_bit_not_copied_with_owner_as_ordinary_user") {
        return;
    }
    let p = nobody_pair();
    p.write(S::Src, "prog", "#!/bin/sh\n");
    chown(p.path(S::Src, "prog"), Some(NOBODY), Some(NOBODY)).unwrap();
    set_mode(&p, S::Src, "prog", 0o4755);
    let out = as_nobody(
        &p,
        tandem(&[
            "sync".as_ref(),
            p.src.as_os_str(),
            p.tgt.as_os_str(),
            "--state-dir".as_ref(),
            p.state.as_os_str(),
            "--owner".as_ref(),
        ]),
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(mode(&p, S::Tgt, "prog"), 0o755);
}
