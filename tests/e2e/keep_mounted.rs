//! `--owner`, `--xattrs` and `--acls` while mounted (issue 19): a chown, setxattr,
//! removexattr or ACL change made through the mount is journaled and replicated like a
//! chmod, and one made on the target comes back into the source.

use std::os::unix::fs::{chown, MetadataExt};
use std::time::Duration;

use crate::fixtures::*;
use crate::mount::{fuse_available, wait_for, Mounted};
use crate::xattrs::{acl_with_user, set_xattr, xattr};

const T: Duration = Duration::from_secs(20);

fn has_xattr(p: &std::path::Path, name: &str, want: Option<&[u8]>) -> bool {
    xattr(p, name).as_deref() == want
}

#[test]
fn issue_19_xattrs_and_acls_through_the_mount() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    p.write(S::Src, "a.txt", "hello");
    p.write(S::Src, "d/f.txt", "f");
    let m = Mounted::start_with(&p, &[], &["--xattrs", "--acls"]);
    wait_for("startup sync", T, || p.exists(S::Tgt, "d/f.txt"));

    let a = p.path(S::Src, "a.txt");
    set_xattr(&a, "user.color", b"red");
    wait_for("setxattr replicated", T, || {
        has_xattr(&p.path(S::Tgt, "a.txt"), "user.color", Some(b"red"))
    });
    rustix::fs::lremovexattr(&a, "user.color").unwrap();
    wait_for("removexattr replicated", T, || {
        has_xattr(&p.path(S::Tgt, "a.txt"), "user.color", None)
    });
    let acl = acl_with_user(65534);
    set_xattr(&p.path(S::Src, "d"), "system.posix_acl_default", &acl);
    wait_for("default ACL replicated", T, || {
        has_xattr(&p.path(S::Tgt, "d"), "system.posix_acl_default", Some(&acl))
    });
    set_xattr(&a, "system.posix_acl_access", &acl);
    wait_for("access ACL replicated", T, || {
        has_xattr(
            &p.path(S::Tgt, "a.txt"),
            "system.posix_acl_access",
            Some(&acl),
        )
    });

    // The other way: an attribute set on the target reaches the source (and the mount).
    set_xattr(&p.path(S::Tgt, "d/f.txt"), "user.from", b"target");
    wait_for("target's setxattr merged back", T, || {
        has_xattr(&p.path(S::Src, "d/f.txt"), "user.from", Some(b"target"))
    });
    assert_eq!(p.read(S::Src, "a.txt"), "hello", "{}", m.log());
    m.stop();
}

#[test]
fn issue_19_chown_through_the_mount() {
    if !fuse_available() {
        return;
    }
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED issue_19_chown_through_the_mount: only root can give files away");
        return;
    }
    let p = Pair::new();
    p.write(S::Src, "a.txt", "hello");
    let m = Mounted::start_with(&p, &[], &["--owner"]);
    wait_for("startup sync", T, || p.exists(S::Tgt, "a.txt"));
    chown(p.path(S::Src, "a.txt"), Some(65534), Some(1)).unwrap();
    wait_for("chown replicated", T, || {
        std::fs::metadata(p.path(S::Tgt, "a.txt")).is_ok_and(|m| (m.uid(), m.gid()) == (65534, 1))
    });
    assert_eq!(p.read(S::Tgt, "a.txt"), "hello", "{}", m.log());
    m.stop();
}
