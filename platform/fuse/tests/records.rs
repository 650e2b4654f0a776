//! Real mounts: the change records each operation produces, kernel passthrough against the
//! fallback through the daemon, invalidation of changes made behind the mount,
//! `allow_other` ownership, and unmounting.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{fuse_available, gettid, rec, Mounted};
use rustix::fs::{Mode, OFlags};
use tandem_core::{ChangeOp::*, Mount, RelPath};
use tandem_fuse::MountOptions;

#[test]
fn every_mutating_operation_is_recorded_with_its_paths() {
    if !fuse_available("every_mutating_operation_is_recorded_with_its_paths") {
        return;
    }
    // Through the daemon, so that writes reach it and are recorded too.
    let m = Mounted::passthrough(false);
    let p = |s: &str| m.path(s);
    let sink = &m.sink;

    let mut f = File::create(p("f")).unwrap();
    f.write_all(b"abc").unwrap();
    f.write_all(b"def").unwrap();
    drop(f);
    assert_eq!(
        sink.wait_ops(4),
        [
            rec(Create, "f", None),
            rec(OpenWrite, "f", None),
            rec(Write, "f", None),
            rec(CloseWrite, "f", None),
        ]
    );

    fs::create_dir(p("d")).unwrap();
    fs::rename(p("f"), p("d/g")).unwrap();
    fs::set_permissions(p("d/g"), fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(p("d/g"), Some(1), Some(1)).unwrap();
    assert_eq!(
        sink.ops(),
        [
            rec(Mkdir, "d", None),
            rec(Rename, "f", Some("d/g")),
            rec(SetAttr, "d/g", None),
            rec(SetAttr, "d/g", None),
        ]
    );
    // ftruncate: a setattr on an open file (release is asynchronous: wait for it).
    File::options()
        .write(true)
        .open(p("d/g"))
        .unwrap()
        .set_len(1)
        .unwrap();
    assert_eq!(
        sink.wait_ops(3),
        [
            rec(OpenWrite, "d/g", None),
            rec(SetAttr, "d/g", None),
            rec(CloseWrite, "d/g", None),
        ]
    );
    rustix::fs::utimensat(
        rustix::fs::CWD,
        p("d/g"),
        &rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: 1,
                tv_nsec: 0,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: 2,
                tv_nsec: 0,
            },
        },
        rustix::fs::AtFlags::empty(),
    )
    .unwrap();
    assert_eq!(sink.ops(), [rec(SetAttr, "d/g", None)]);

    // Reading changes nothing.
    let mut s = String::new();
    File::open(p("d/g"))
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    fs::read_dir(p("d")).unwrap().for_each(drop);
    fs::metadata(p("d/g")).unwrap();
    // O_TRUNC on open is a write.
    drop(
        OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(p("d/g"))
            .unwrap(),
    );
    assert_eq!(
        sink.wait_ops(2),
        [rec(OpenWrite, "d/g", None), rec(CloseWrite, "d/g", None)]
    );

    fs::hard_link(p("d/g"), p("h")).unwrap();
    std::os::unix::fs::symlink("h", p("s")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p("fifo"),
        rustix::fs::FileType::Fifo,
        Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    rustix::fs::setxattr(p("h"), "user.k", b"v", rustix::fs::XattrFlags::empty()).unwrap();
    rustix::fs::removexattr(p("h"), "user.k").unwrap();
    let f = OpenOptions::new().write(true).open(p("h")).unwrap();
    rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, 8192).unwrap();
    drop(f);
    // Operations on the inode itself are reported under both of its names: a content or
    // metadata change of a hard-linked file changes every name.
    assert_eq!(
        sink.wait_ops(13),
        [
            rec(Link, "d/g", Some("h")),
            rec(Symlink, "s", None),
            rec(Mknod, "fifo", None),
            rec(SetXattr, "h", None),
            rec(SetXattr, "d/g", None),
            rec(RemoveXattr, "h", None),
            rec(RemoveXattr, "d/g", None),
            rec(OpenWrite, "h", None),
            rec(OpenWrite, "d/g", None),
            rec(Fallocate, "h", None),
            rec(Fallocate, "d/g", None),
            rec(CloseWrite, "h", None),
            rec(CloseWrite, "d/g", None),
        ]
    );

    let noreplace = rustix::fs::RenameFlags::NOREPLACE;
    let exchange = rustix::fs::RenameFlags::EXCHANGE;
    rename2(&p("h"), &p("h2"), noreplace).unwrap();
    rename2(&p("h2"), &p("s"), exchange).unwrap();
    fs::remove_file(p("s")).unwrap();
    fs::remove_file(p("d/g")).unwrap();
    fs::remove_dir(p("d")).unwrap();
    assert_eq!(
        sink.ops(),
        [
            rec(Rename, "h", Some("h2")),
            rec(Exchange, "h2", Some("s")),
            rec(Unlink, "s", None),
            rec(Unlink, "d/g", None),
            rec(Rmdir, "d", None),
        ]
    );

    // Failed operations leave no record.
    assert!(OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(p("h2"))
        .is_err());
    assert!(fs::rename(p("missing"), p("x")).is_err());
    assert!(fs::remove_dir(p("h2")).is_err());
    assert!(rename2(&p("fifo"), &p("h2"), noreplace).is_err());
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(sink.ops(), []);

    // Who: the calling thread (the kernel reports thread ids) and its uid.
    fs::create_dir(p("who")).unwrap();
    let c = m.sink.take();
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].pid, c[0].uid), (gettid(), 0));
}

fn rename2(
    from: &std::path::Path,
    to: &std::path::Path,
    flags: rustix::fs::RenameFlags,
) -> rustix::io::Result<()> {
    rustix::fs::renameat_with(rustix::fs::CWD, from, rustix::fs::CWD, to, flags)
}

/// Write, read back, and report which path the data took.
fn write_and_read(m: &Mounted) {
    let mut f = File::create(m.path("data")).unwrap();
    let block = vec![7u8; 1 << 20];
    for _ in 0..4 {
        f.write_all(&block).unwrap();
    }
    drop(f);
    let back = fs::read(m.path("data")).unwrap();
    assert_eq!(back.len(), 4 << 20);
    assert!(back.iter().all(|&b| b == 7));
}

#[test]
fn kernel_passthrough_is_used_when_asked_for() {
    if !fuse_available("kernel_passthrough_is_used_when_asked_for") {
        return;
    }
    let m = Mounted::passthrough(true);
    write_and_read(&m);
    let ops = m.sink.wait_ops(3);
    assert!(
        m.handle().passthrough_active(),
        "kernel passthrough was refused here (kernel < 6.9 or no CAP_SYS_ADMIN?)"
    );
    // Writes went from the kernel straight to the file: the daemon saw none.
    assert_eq!(
        ops,
        [
            rec(Create, "data", None),
            rec(OpenWrite, "data", None),
            rec(CloseWrite, "data", None),
        ]
    );
}

#[test]
fn without_passthrough_data_goes_through_the_daemon() {
    if !fuse_available("without_passthrough_data_goes_through_the_daemon") {
        return;
    }
    let m = Mounted::passthrough(false);
    assert!(!m.handle().passthrough_active());
    write_and_read(&m);
    // Many writes, one Write record.
    assert_eq!(
        m.sink.wait_ops(4),
        [
            rec(Create, "data", None),
            rec(OpenWrite, "data", None),
            rec(Write, "data", None),
            rec(CloseWrite, "data", None),
        ]
    );
}

#[test]
fn a_file_held_open_for_writing_is_reported_again_while_written() {
    if !fuse_available("a_file_held_open_for_writing_is_reported_again_while_written") {
        return;
    }
    let m = Mounted::passthrough(true);
    let mut f = File::create(m.path("log")).unwrap();
    assert_eq!(m.sink.wait_ops(2).len(), 2);
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut reported = Vec::new();
    while reported.is_empty() && Instant::now() < deadline {
        f.write_all(b"line\n").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        reported = m.sink.ops();
    }
    assert_eq!(reported.first(), Some(&rec(Write, "log", None)));
}

#[test]
fn invalidate_shows_changes_made_behind_the_mount() {
    if !fuse_available("invalidate_shows_changes_made_behind_the_mount") {
        return;
    }
    let m = Mounted::passthrough(false);
    fs::write(m.path("f"), b"one").unwrap();
    fs::write(m.path("old"), b"").unwrap();
    fs::create_dir(m.path("dir")).unwrap();
    fs::write(m.path("dir/inner"), b"1").unwrap();
    assert_eq!(fs::read(m.path("f")).unwrap(), b"one");
    // Warm the kernel's caches (a write leaves the attributes to be fetched again).
    for name in ["f", "old", "dir/inner"] {
        fs::metadata(m.path(name)).unwrap();
    }
    assert!(fs::metadata(m.path("new")).is_err());
    // f: create, open-write, write, close-write; old: the same but no write; dir; dir/inner.
    assert_eq!(m.sink.wait_ops(12).len(), 12);

    // Behind the mount, as the reverse merge does.
    let at = |name: &str, flags: OFlags| {
        File::from(
            rustix::fs::openat(
                &m.behind,
                name,
                flags | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            )
            .unwrap(),
        )
    };
    at("f", OFlags::WRONLY | OFlags::TRUNC)
        .write_all(b"two-two")
        .unwrap();
    at("new", OFlags::WRONLY | OFlags::CREATE)
        .write_all(b"hi")
        .unwrap();
    at("dir/inner", OFlags::WRONLY | OFlags::TRUNC)
        .write_all(b"22")
        .unwrap();
    rustix::fs::unlinkat(&m.behind, "old", rustix::fs::AtFlags::empty()).unwrap();

    // Long timeouts: the mount does not see it yet...
    assert_eq!(fs::metadata(m.path("f")).unwrap().len(), 3);
    assert!(fs::metadata(m.path("new")).is_err());
    assert!(fs::metadata(m.path("old")).is_ok());

    // ...until told.
    let paths = ["f", "new", "old", "dir/inner", "never/seen"].map(RelPath::from_str_lossless);
    m.handle().invalidate(&paths);
    assert_eq!(fs::read(m.path("f")).unwrap(), b"two-two");
    assert_eq!(fs::read(m.path("new")).unwrap(), b"hi");
    assert_eq!(fs::read(m.path("dir/inner")).unwrap(), b"22");
    assert_eq!(
        fs::metadata(m.path("old")).unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    // Changes made behind the mount are not reported back as changes.
    assert_eq!(m.sink.ops(), []);
}

#[test]
fn a_file_renamed_behind_the_mount_while_open_is_recorded_under_its_new_name() {
    if !fuse_available("a_file_renamed_behind_the_mount_while_open_is_recorded_under_its_new_name")
    {
        return;
    }
    let m = Mounted::passthrough(false);
    fs::write(m.path("b"), b"one").unwrap();
    // A program holds b open for writing...
    let mut held = OpenOptions::new().write(true).open(m.path("b")).unwrap();
    m.sink.wait_ops(5);
    // ...while the reverse merge sets it aside as a conflict copy, behind the mount.
    rustix::fs::renameat(&m.behind, "b", &m.behind, "b.conflict").unwrap();
    let (from, to) = (
        RelPath::from_str_lossless("b"),
        RelPath::from_str_lossless("b.conflict"),
    );
    m.handle().renamed(&from, &to);
    m.handle().invalidate(&[from, to]);
    held.write_all(b"two").unwrap();
    drop(held);
    // The write and the close.
    let ops = m.sink.wait_ops(2);
    assert!(
        ops.contains(&rec(CloseWrite, "b.conflict", None)),
        "the program's write is recorded where the file is now: {ops:?}"
    );
    assert!(
        !ops.iter().any(|(_, p, _)| p == "b"),
        "nothing recorded under the old name: {ops:?}"
    );
}

#[test]
fn allow_other_creates_files_as_the_calling_user() {
    if !fuse_available("allow_other_creates_files_as_the_calling_user") {
        return;
    }
    let m = Mounted::new(MountOptions {
        allow_other: true,
        kernel_passthrough: true,
        threads: 2,
        transport: tandem_fuse::Transport::Dev,
        history_max_file: None,
    });
    fs::set_permissions(m.tmp(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir(m.path("pub")).unwrap();
    fs::set_permissions(m.path("pub"), fs::Permissions::from_mode(0o777)).unwrap();
    fs::write(m.path("root-only"), b"x").unwrap();

    let nobody = |program: &str, arg: std::path::PathBuf| {
        Command::new(program)
            .arg(arg)
            .uid(65534)
            .gid(65534)
            .status()
            .unwrap()
            .success()
    };
    use std::os::unix::process::CommandExt;
    assert!(nobody("touch", m.path("pub/file")));
    assert!(nobody("mkdir", m.path("pub/dir")));
    for name in ["pub/file", "pub/dir"] {
        let md = fs::metadata(m.path(name)).unwrap();
        assert_eq!((md.uid(), md.gid()), (65534, 65534), "{name}");
    }
    // default_permissions: the kernel refuses what the plain folder would.
    assert!(!nobody("touch", m.path("not-yours")));
    assert!(!nobody("touch", m.path("root-only")));
    assert!(fs::metadata(m.path("not-yours")).is_err());
    let who: Vec<u32> = m.sink.take().iter().map(|c| c.uid).collect();
    assert!(who.contains(&65534), "{who:?}");

    // Write access through a supplementary group only: the kernel grants it, the
    // underlying filesystem refuses the switched fsuid (which carries no groups), so the
    // file is created by the daemon and handed over, with the directory's set-group-ID.
    fs::create_dir(m.path("group")).unwrap();
    std::os::unix::fs::chown(m.path("group"), Some(0), Some(4321)).unwrap();
    fs::set_permissions(m.path("group"), fs::Permissions::from_mode(0o2775)).unwrap();
    let in_group = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--groups=4321", "touch"])
        .arg(m.path("group/file"))
        .status()
        .unwrap();
    assert!(in_group.success());
    let md = fs::metadata(m.path("group/file")).unwrap();
    assert_eq!((md.uid(), md.gid()), (65534, 4321));
    let outsider = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "touch"])
        .arg(m.path("group/other"))
        .status()
        .unwrap();
    assert!(!outsider.success());
}

#[test]
fn unmount_with_a_file_still_open_detaches_and_keeps_serving_it() {
    if !fuse_available("unmount_with_a_file_still_open_detaches_and_keeps_serving_it") {
        return;
    }
    let mut m = Mounted::passthrough(false);
    fs::write(m.path("kept"), b"content").unwrap();
    let mut open = File::open(m.path("kept")).unwrap();
    m.unmount();
    assert!(!common::is_mounted(&m.root));
    // The plain folder is back at the path...
    assert!(fs::read_dir(&m.root).unwrap().next().is_some());
    // ...and the file opened through the mount still reads.
    let mut s = String::new();
    open.read_to_string(&mut s).unwrap();
    assert_eq!(s, "content");
}

#[test]
fn unmount_on_drop() {
    if !fuse_available("unmount_on_drop") {
        return;
    }
    let m = Mounted::passthrough(true);
    let root = m.root.clone();
    fs::write(m.path("x"), b"").unwrap();
    drop(m);
    assert!(!common::is_mounted(&root));
}

/// Many small writes, through kernel passthrough and through the daemon: the kernel does
/// not ask the daemon for the file's capabilities before each one (it did: one GETXATTR
/// round trip per write(2)).
#[test]
fn small_writes_cost_no_request_each() {
    if !fuse_available("small_writes_cost_no_request_each") {
        return;
    }
    for passthrough in [true, false] {
        let m = Mounted::passthrough(passthrough);
        let (before, v2) = m.handle().xattr_lookups();
        assert!(
            v2,
            "FUSE_HANDLE_KILLPRIV_V2 was not negotiated (kernel < 5.11?)"
        );
        let mut f = fs::File::create(m.path("log")).unwrap();
        for _ in 0..500 {
            f.write_all(&[b'x'; 4096]).unwrap();
        }
        f.sync_all().unwrap();
        drop(f);
        let (after, _) = m.handle().xattr_lookups();
        assert!(
            after - before < 10,
            "passthrough {passthrough}: {} GETXATTR requests for 500 writes",
            after - before
        );
        assert_eq!(fs::metadata(m.path("log")).unwrap().len(), 500 * 4096);
    }
}

/// close(2) of a file whose source lies on a local disk costs no FLUSH round trip (the
/// daemon's flush would close a duplicate fd, which does nothing there), through kernel
/// passthrough and through the daemon, for files created, opened for writing and read.
#[test]
fn closing_a_file_on_a_local_disk_sends_no_flush() {
    if !fuse_available("closing_a_file_on_a_local_disk_sends_no_flush") {
        return;
    }
    for passthrough in [true, false] {
        let m = Mounted::passthrough(passthrough);
        let kind = rustix::fs::fstatfs(&m.behind).unwrap().f_type;
        // ext4, tmpfs, xfs, btrfs: where temporary folders usually are.
        if ![0xEF53, 0x0102_1994, 0x5846_5342, 0x9123_683E].contains(&kind) {
            eprintln!("closing_a_file_on_a_local_disk_sends_no_flush: SKIPPED, the test folder is on a file system of type {kind:#x}");
            return;
        }
        let before = m.handle().flush_requests();
        for i in 0..20 {
            let p = m.path(&format!("f{i}"));
            fs::write(&p, b"data").unwrap();
            let mut f = fs::OpenOptions::new().append(true).open(&p).unwrap();
            f.write_all(b"more").unwrap();
            let g = f.try_clone().unwrap();
            drop(f);
            drop(g);
            assert_eq!(fs::read(&p).unwrap(), b"datamore");
        }
        assert_eq!(
            m.handle().flush_requests() - before,
            0,
            "passthrough {passthrough}: FLUSH requests on close"
        );
    }
}

/// Set-user-ID and set-group-ID are dropped when another user writes, truncates or has
/// the file chowned, exactly as in the plain folder, with `allow_other` (where the kernel
/// keeps checking before writes) and without (where the daemon's own calls, made with the
/// caller's credentials, make the underlying filesystem drop them).
#[test]
fn set_user_id_is_dropped_as_in_the_plain_folder() {
    if !fuse_available("set_user_id_is_dropped_as_in_the_plain_folder") {
        return;
    }
    use std::path::Path;
    // (what, run as a group member who may write: "nobody" in group 4321)
    let steps: &[(&str, &str)] = &[
        ("append", "echo more >> f"),
        ("truncate", "truncate -s 1 f"),
        ("open with O_TRUNC", ": > f"),
    ];
    let run = |dir: &Path, cmd: &str, as_nobody: bool| {
        let mut c = Command::new("setpriv");
        if as_nobody {
            c.args(["--reuid=65534", "--regid=65534", "--groups=4321"]);
        } else {
            c.arg("--keep-groups");
        }
        let st = c.args(["sh", "-c", cmd]).current_dir(dir).status().unwrap();
        assert!(st.success(), "{cmd} in {}", dir.display());
    };
    let modes_after = |dir: &Path, as_nobody: bool| -> Vec<String> {
        let mut out = Vec::new();
        for (what, cmd) in steps {
            fs::write(dir.join("f"), b"content").unwrap();
            std::os::unix::fs::chown(dir.join("f"), Some(0), Some(4321)).unwrap();
            fs::set_permissions(dir.join("f"), fs::Permissions::from_mode(0o6775)).unwrap();
            run(dir, cmd, as_nobody);
            let mode = fs::metadata(dir.join("f")).unwrap().permissions().mode() & 0o7777;
            out.push(format!("{what}: {mode:o}"));
        }
        // chown by root: drops both bits (the group may execute) whoever asks.
        fs::set_permissions(dir.join("f"), fs::Permissions::from_mode(0o6775)).unwrap();
        std::os::unix::fs::chown(dir.join("f"), Some(1), None).unwrap();
        let mode = fs::metadata(dir.join("f")).unwrap().permissions().mode() & 0o7777;
        out.push(format!("chown: {mode:o}"));
        out
    };
    let plain = tempfile::tempdir().unwrap();
    fs::set_permissions(plain.path(), fs::Permissions::from_mode(0o777)).unwrap();
    for allow_other in [false, true] {
        let m = Mounted::new(MountOptions {
            allow_other,
            kernel_passthrough: true,
            threads: 2,
            transport: tandem_fuse::Transport::Dev,
            history_max_file: None,
        });
        // Only the mounting user (root) reaches a mount without allow_other.
        let users: &[bool] = if allow_other {
            &[false, true]
        } else {
            &[false]
        };
        fs::set_permissions(m.tmp(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&m.root, fs::Permissions::from_mode(0o777)).unwrap();
        for &as_nobody in users {
            assert_eq!(
                modes_after(&m.root, as_nobody),
                modes_after(plain.path(), as_nobody),
                "allow_other {allow_other}, as nobody {as_nobody}"
            );
        }
    }
}

/// A name looked up and found missing is remembered by the kernel (a negative entry, one
/// round trip less for the next look). When tandem creates it underneath the mount, as
/// the reverse merge does, together with folders the mount has never seen, invalidating
/// the new path must drop that negative entry too, whichever part of the path it is.
#[test]
fn issue_21_a_name_cached_as_missing_shows_once_created_underneath() {
    if !fuse_available("issue_21_a_name_cached_as_missing_shows_once_created_underneath") {
        return;
    }
    let m = Mounted::passthrough(true);
    fs::create_dir(m.path("known")).unwrap();
    // Missing, and remembered as such: the second look costs no request.
    assert!(fs::metadata(m.path("a")).is_err());
    assert!(fs::metadata(m.path("known/b")).is_err());
    let before = m.handle().lookup_requests();
    assert!(fs::metadata(m.path("a")).is_err());
    assert!(fs::metadata(m.path("known/b")).is_err());
    assert_eq!(
        m.handle().lookup_requests(),
        before,
        "negative entries not kept"
    );

    // Behind the mount: whole new paths under a missing name.
    for dir in ["a", "a/deeper", "known/b", "known/b/c"] {
        rustix::fs::mkdirat(&m.behind, dir, Mode::from_raw_mode(0o755)).unwrap();
    }
    for file in ["a/deeper/f", "known/b/c/g"] {
        let fd = rustix::fs::openat(
            &m.behind,
            file,
            OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .unwrap();
        rustix::io::write(&fd, b"new").unwrap();
    }
    // Only the files are named, not the folders made on the way.
    let paths = ["a/deeper/f", "known/b/c/g"].map(RelPath::from_str_lossless);
    m.handle().invalidate(&paths);
    assert_eq!(fs::read(m.path("a/deeper/f")).unwrap(), b"new");
    assert_eq!(fs::read(m.path("known/b/c/g")).unwrap(), b"new");
}
