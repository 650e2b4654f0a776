//! `--xattrs` and `--acls` (issue 19): extended attributes and POSIX ACLs kept both ways,
//! a change to them alone a metadata change and part of conflict detection, and a target
//! that cannot hold them (exFAT) reported once per kind, with the rest synced.

use std::path::Path;

use crate::fixtures::*;
use crate::foreign_fs::ExFat;

pub(crate) fn set_xattr(p: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(p, name, value, rustix::fs::XattrFlags::empty())
        .unwrap_or_else(|e| panic!("setxattr {name} on {}: {e}", p.display()));
}

pub(crate) fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 65536];
    match rustix::fs::lgetxattr(p, name, &mut buf[..]) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(rustix::io::Errno::NODATA) => None,
        Err(e) => panic!("getxattr {name} on {}: {e}", p.display()),
    }
}

fn summary(out: &Out) -> String {
    out.stdout.lines().last().unwrap_or_default().to_string()
}

/// A POSIX ACL as the kernel stores it in `system.posix_acl_*` (version 2; tag, permissions,
/// id per entry): owner rw-, user `uid` r--, group r--, mask r--, other ---.
pub(crate) fn acl_with_user(uid: u32) -> Vec<u8> {
    let mut v = 2u32.to_le_bytes().to_vec();
    let undefined = u32::MAX;
    for (tag, perm, id) in [
        (0x01u16, 6u16, undefined), // ACL_USER_OBJ
        (0x02, 4, uid),             // ACL_USER
        (0x04, 4, undefined),       // ACL_GROUP_OBJ
        (0x10, 4, undefined),       // ACL_MASK
        (0x20, 0, undefined),       // ACL_OTHER
    ] {
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&perm.to_le_bytes());
        v.extend_from_slice(&id.to_le_bytes());
    }
    v
}

#[test]
fn issue_19_xattrs_kept_both_ways() {
    xattrs_kept_both_ways(&Pair::new());
}

#[test]
fn issue_17_xattrs_kept_both_ways_with_a_remote_target() {
    if let Some(p) = crate::remote::over_ssh("issue_17_xattrs_kept_both_ways_with_a_remote_target")
    {
        xattrs_kept_both_ways(&p);
    }
}

fn xattrs_kept_both_ways(p: &Pair) {
    p.write(S::Src, "a.txt", "a");
    p.write(S::Src, "d/b.txt", "b");
    set_xattr(&p.path(S::Src, "a.txt"), "user.color", b"red");
    set_xattr(&p.path(S::Src, "d"), "user.tag", b"folder");
    p.sync_ok(&["--xattrs"], 0);
    assert_eq!(
        xattr(&p.path(S::Tgt, "a.txt"), "user.color").unwrap(),
        b"red"
    );
    assert_eq!(xattr(&p.path(S::Tgt, "d"), "user.tag").unwrap(), b"folder");

    // Nothing changed: nothing to do.
    let out = p.sync_ok(&["--xattrs", "--json"], 0);
    let s = summary(&out);
    assert!(
        s.contains("\"copied\":0") && s.contains("\"metadata\":0"),
        "{s}"
    );

    // An attribute changed alone on the target is a metadata change, carried back.
    set_xattr(&p.path(S::Tgt, "a.txt"), "user.color", b"blue");
    set_xattr(&p.path(S::Tgt, "d/b.txt"), "user.new", b"1");
    let out = p.sync_ok(&["--xattrs", "--json"], 0);
    let s = summary(&out);
    assert!(
        s.contains("\"copied\":0") && s.contains("\"metadata\":2"),
        "{s}"
    );
    assert_eq!(
        xattr(&p.path(S::Src, "a.txt"), "user.color").unwrap(),
        b"blue"
    );
    assert_eq!(xattr(&p.path(S::Src, "d/b.txt"), "user.new").unwrap(), b"1");

    // One removed on the source is removed on the target.
    rustix::fs::lremovexattr(p.path(S::Src, "a.txt"), "user.color").unwrap();
    p.sync_ok(&["--xattrs"], 0);
    assert_eq!(xattr(&p.path(S::Tgt, "a.txt"), "user.color"), None);

    // Without the option attributes are neither compared nor copied.
    set_xattr(&p.path(S::Src, "a.txt"), "user.color", b"green");
    let out = p.sync_ok(&["--json"], 0);
    assert!(summary(&out).contains("\"metadata\":0"), "{}", out.stdout);
    assert_eq!(xattr(&p.path(S::Tgt, "a.txt"), "user.color"), None);
}

#[test]
fn issue_19_trusted_xattrs_kept_only_as_root() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED issue_19_trusted_xattrs_kept_only_as_root: needs root");
        return;
    }
    let p = Pair::new();
    p.write(S::Src, "a.txt", "a");
    set_xattr(&p.path(S::Src, "a.txt"), "trusted.t", b"1");
    set_xattr(&p.path(S::Src, "a.txt"), "user.u", b"2");
    p.sync_ok(&["--xattrs"], 0);
    assert_eq!(xattr(&p.path(S::Tgt, "a.txt"), "trusted.t").unwrap(), b"1");
    assert_eq!(xattr(&p.path(S::Tgt, "a.txt"), "user.u").unwrap(), b"2");
}

#[test]
fn issue_19_xattr_change_against_content_change_is_a_conflict() {
    xattr_change_against_content_change_is_a_conflict(&Pair::new());
}

#[test]
fn issue_17_xattr_change_against_content_change_is_a_conflict_with_a_remote_target() {
    if let Some(p) = crate::remote::over_ssh(
        "issue_17_xattr_change_against_content_change_is_a_conflict_with_a_remote_target",
    ) {
        xattr_change_against_content_change_is_a_conflict(&p);
    }
}

fn xattr_change_against_content_change_is_a_conflict(p: &Pair) {
    p.write(S::Src, "a.txt", "v1");
    set_xattr(&p.path(S::Src, "a.txt"), "user.k", b"1");
    p.sync_ok(&["--xattrs"], 0);
    set_mtime(&p.path(S::Src, "a.txt"), 1_600_000_000, 0);
    set_mtime(&p.path(S::Tgt, "a.txt"), 1_600_000_000, 0);
    p.sync_ok(&["--xattrs"], 0);

    set_xattr(&p.path(S::Src, "a.txt"), "user.k", b"2");
    p.write(S::Tgt, "a.txt", "v2 on the target");
    let out = p.sync_ok(&["--xattrs", "--json"], 1);
    let s = summary(&out);
    assert!(s.contains("\"kind\":\"both modified\""), "{s}");
    // As a mode change against an edit: both versions kept, the edit (newer) keeps the name.
    let copies = p.names_with(S::Src, "conflict");
    assert_eq!(copies.len(), 1, "{copies:?} {s}");
    assert_eq!(p.read(S::Src, "a.txt"), "v2 on the target");
    assert_eq!(p.read(S::Tgt, "a.txt"), "v2 on the target");
    let copy = &copies[0];
    assert_eq!(p.read(S::Tgt, copy), "v1");
    assert_eq!(xattr(&p.path(S::Tgt, copy), "user.k").unwrap(), b"2");
    let again = p.sync_ok(&["--xattrs", "--json"], 0);
    assert!(
        summary(&again).contains("\"metadata\":0"),
        "{}",
        again.stdout
    );
}

#[test]
fn issue_19_acls_kept_both_ways() {
    acls_kept_both_ways(&Pair::new());
}

#[test]
fn issue_17_acls_kept_both_ways_with_a_remote_target() {
    if let Some(p) = crate::remote::over_ssh("issue_17_acls_kept_both_ways_with_a_remote_target") {
        acls_kept_both_ways(&p);
    }
}

fn acls_kept_both_ways(p: &Pair) {
    p.write(S::Src, "a.txt", "a");
    p.write(S::Src, "d/f", "f");
    let acl = acl_with_user(65534);
    set_xattr(&p.path(S::Src, "a.txt"), "system.posix_acl_access", &acl);
    set_xattr(&p.path(S::Src, "d"), "system.posix_acl_default", &acl);
    p.sync_ok(&["--acls"], 0);
    let got = xattr(&p.path(S::Tgt, "a.txt"), "system.posix_acl_access").unwrap();
    assert_eq!(got, acl);
    let got = xattr(&p.path(S::Tgt, "d"), "system.posix_acl_default").unwrap();
    assert_eq!(got, acl);
    // The ACL's group entry is the mode's group bits: the modes agree too.
    assert_eq!(p.tree(S::Src), p.tree(S::Tgt));

    // Changed on the target alone: back to the source.
    let acl2 = acl_with_user(1);
    set_xattr(&p.path(S::Tgt, "a.txt"), "system.posix_acl_access", &acl2);
    let out = p.sync_ok(&["--acls", "--json"], 0);
    assert!(summary(&out).contains("\"metadata\":1"), "{}", out.stdout);
    let got = xattr(&p.path(S::Src, "a.txt"), "system.posix_acl_access").unwrap();
    assert_eq!(got, acl2);
    let out = p.sync_ok(&["--acls", "--json"], 0);
    let s = summary(&out);
    assert!(
        s.contains("\"copied\":0") && s.contains("\"metadata\":0"),
        "{s}"
    );
}

#[test]
fn issue_19_exfat_target_reports_xattrs_and_acls_once_per_kind() {
    let p = Pair::new();
    let Some(fat) = ExFat::mount(&p.tmp.path().join("fat"), &p.tmp.path().join("fat.img")) else {
        return;
    };
    for name in ["a.txt", "b.txt", "c.txt"] {
        p.write(S::Src, name, name);
        set_xattr(&p.path(S::Src, name), "user.k", name.as_bytes());
    }
    set_xattr(
        &p.path(S::Src, "a.txt"),
        "system.posix_acl_access",
        &acl_with_user(65534),
    );
    p.write(S::Src, "plain.txt", "no attributes");
    let sync = || {
        run_tandem([
            "sync".as_ref(),
            p.src.as_os_str(),
            fat.dir.as_os_str(),
            "--state-dir".as_ref(),
            p.state.as_os_str(),
            "--modify-window".as_ref(),
            "2s".as_ref(),
            "--xattrs".as_ref(),
            "--acls".as_ref(),
            "--json".as_ref(),
        ])
    };
    let out = sync();
    assert_eq!(out.code, 1, "{}", out.all());
    let s = summary(&out);
    assert!(
        s.contains("extended attributes not kept on 3 files of the target"),
        "{s}"
    );
    assert!(s.contains("ACLs not kept on 1 file of the target"), "{s}");
    assert_eq!(s.matches("not kept").count(), 2, "once per kind: {s}");
    for name in ["a.txt", "b.txt", "c.txt", "plain.txt"] {
        assert!(fat.dir.join(name).exists(), "{name} synced");
    }
    // Nothing changed since: no copy, no report, the source keeps its attributes.
    let again = sync();
    assert_eq!(again.code, 0, "{}", again.all());
    let s = summary(&again);
    assert!(
        s.contains("\"copied\":0") && s.contains("\"metadata\":0"),
        "{s}"
    );
    assert_eq!(xattr(&p.path(S::Src, "b.txt"), "user.k").unwrap(), b"b.txt");
}

#[test]
fn issue_19_xattr_too_large_for_the_target_is_reported_once() {
    let p = Pair::new();
    // tmpfs holds a 10 KiB value; ext4 (the target, under /tmp) holds about one block.
    let test = "issue_19_xattr_too_large_for_the_target_is_reported_once";
    let Some(_fs) = Tmpfs::mount_or_skip(&p.src, "16m", test) else {
        return;
    };
    p.write(S::Src, "big.bin", "big");
    p.write(S::Src, "small.txt", "small");
    let big = vec![b'x'; 10_000];
    set_xattr(&p.path(S::Src, "big.bin"), "user.big", &big);
    set_xattr(&p.path(S::Src, "big.bin"), "user.small", b"fits");
    set_xattr(&p.path(S::Src, "small.txt"), "user.k", b"v");
    let out = p.sync_ok(&["--xattrs", "--json"], 1);
    let s = summary(&out);
    assert!(
        s.contains("extended attributes not kept on 1 file of the target: too large"),
        "{s}"
    );
    assert_eq!(s.matches("not kept").count(), 1, "{s}");
    assert_eq!(p.read(S::Tgt, "big.bin"), "big");
    let tgt_big = p.path(S::Tgt, "big.bin");
    assert_eq!(
        xattr(&tgt_big, "user.small").unwrap(),
        b"fits",
        "the rest kept"
    );
    assert_eq!(xattr(&tgt_big, "user.big"), None);
    assert_eq!(xattr(&p.path(S::Tgt, "small.txt"), "user.k").unwrap(), b"v");

    let again = p.sync_ok(&["--xattrs", "--json"], 0);
    let s = summary(&again);
    assert!(
        s.contains("\"copied\":0") && s.contains("\"metadata\":0"),
        "{s}"
    );
    assert_eq!(xattr(&p.path(S::Src, "big.bin"), "user.big").unwrap(), big);
}
