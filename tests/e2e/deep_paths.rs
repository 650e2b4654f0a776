//! Paths longer than PATH_MAX (issue 20, item 8): a tree 20 levels deep of 255-byte names,
//! whose relative paths exceed 4,096 bytes from the 16th level on, syncs both ways with
//! `tandem sync` and through `tandem mount`. Such a tree cannot be reached by one path, so
//! these helpers walk it a component at a time from a directory fd, as tandem itself must.

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use rustix::fs::{mkdirat, openat, Mode, OFlags};
use rustix::io::Errno;

use crate::fixtures::*;
use crate::mount::{fuse_available, wait_for, Mounted};

/// Deep enough that the directories themselves, not only the file at the bottom, have
/// relative paths over PATH_MAX (4,096 bytes with its NUL).
const LEVELS: usize = 20;

/// The 255-byte directory name of level `i` (0-based) of the default branch.
fn level_name(i: usize) -> Vec<u8> {
    branch_level('d', i)
}

/// The 255-byte directory name of level `i` of the tree whose names are made of `fill`.
fn branch_level(fill: char, i: usize) -> Vec<u8> {
    let mut n = format!("{i:02}-").into_bytes();
    n.resize(255, fill as u8);
    n
}

/// The relative path of the deepest file, as bytes (over PATH_MAX).
fn deep_rel(file: &str) -> Vec<u8> {
    let mut p = Vec::new();
    for i in 0..LEVELS {
        p.extend_from_slice(&level_name(i));
        p.push(b'/');
    }
    p.extend_from_slice(file.as_bytes());
    p
}

fn open_dir(at: &OwnedFd, name: &[u8]) -> Result<OwnedFd, Errno> {
    openat(
        at,
        OsStr::from_bytes(name),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn open_root(root: &Path) -> OwnedFd {
    rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap()
}

/// Creates the 20 levels below `root` (those missing) and writes `file` at the bottom.
fn make_deep(root: &Path, file: &str, content: &[u8]) {
    make_branch(root, 'd', file, content);
}

/// `make_deep` for the tree whose names are made of `fill`.
fn make_branch(root: &Path, fill: char, file: &str, content: &[u8]) {
    let mut dir = open_root(root);
    for i in 0..LEVELS {
        let name = branch_level(fill, i);
        match mkdirat(&dir, OsStr::from_bytes(&name), Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => panic!("mkdir level {i}: {e}"),
        }
        dir = open_dir(&dir, &name).unwrap();
    }
    let fd = openat(
        &dir,
        file,
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .unwrap();
    let mut f = std::fs::File::from(fd);
    std::io::Write::write_all(&mut f, content).unwrap();
}

/// The content of `file` at the bottom of the 20 levels below `root`, if it is there.
fn read_deep(root: &Path, file: &str) -> Option<Vec<u8>> {
    read_branch(root, 'd', file)
}

/// `read_deep` for the tree whose names are made of `fill`.
fn read_branch(root: &Path, fill: char, file: &str) -> Option<Vec<u8>> {
    let mut dir = open_root(root);
    for i in 0..LEVELS {
        dir = open_dir(&dir, &branch_level(fill, i)).ok()?;
    }
    let fd = openat(&dir, file, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut std::fs::File::from(fd), &mut out).ok()?;
    Some(out)
}

fn delete_deep(root: &Path, file: &str) {
    let mut dir = open_root(root);
    for i in 0..LEVELS {
        dir = open_dir(&dir, &level_name(i)).unwrap();
    }
    rustix::fs::unlinkat(&dir, file, rustix::fs::AtFlags::empty()).unwrap();
}

/// The one bucket of `root`'s trash (a sync's stamp).
fn only_trash_bucket(root: &Path) -> std::path::PathBuf {
    let buckets: Vec<_> = std::fs::read_dir(root.join(".tandem/trash"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(buckets.len(), 1, "{buckets:?}");
    buckets[0].clone()
}

#[test]
fn issue_20_paths_over_path_max_sync_source_to_target() {
    let p = Pair::new();
    assert!(deep_rel("deep.txt").len() > 5000);
    make_deep(&p.src, "deep.txt", b"from the source, 20 levels down");
    let out = p.sync(&["--json"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(
        read_deep(&p.tgt, "deep.txt").as_deref(),
        Some(&b"from the source, 20 levels down"[..]),
        "the deepest file reached the target\n{}",
        out.all()
    );
    // Converged: a second sync has nothing to do.
    let again = p.sync(&["--json"]);
    assert_eq!(again.code, 0, "{}", again.all());
    assert!(again.stdout.contains("\"copied\":0"), "{}", again.stdout);
}

#[test]
fn issue_20_paths_over_path_max_sync_target_to_source() {
    let p = Pair::new();
    p.write(S::Src, "shallow.txt", "baseline");
    p.sync_ok(&[], 0);
    make_deep(&p.tgt, "deep.txt", b"from the target, 20 levels down");
    let out = p.sync(&["--json"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(
        read_deep(&p.src, "deep.txt").as_deref(),
        Some(&b"from the target, 20 levels down"[..]),
        "the deepest file reached the source\n{}",
        out.all()
    );
    // An edit at depth goes back the other way, and a delete follows.
    make_deep(&p.src, "deep.txt", b"edited in the source");
    p.sync_ok(&[], 0);
    assert_eq!(
        read_deep(&p.tgt, "deep.txt").as_deref(),
        Some(&b"edited in the source"[..])
    );
    delete_deep(&p.tgt, "deep.txt");
    p.sync_ok(&[], 0);
    assert_eq!(read_deep(&p.src, "deep.txt"), None, "the delete followed");
    assert_eq!(
        read_deep(&only_trash_bucket(&p.src), "deep.txt").as_deref(),
        Some(&b"edited in the source"[..]),
        "the deleted version is in the source's trash"
    );
}

/// Both ways while mounted: into folders that were there before the mount (found by the
/// watcher's first walk) and into folders made while it runs (found by their events).
#[test]
fn issue_20_paths_over_path_max_through_the_mount_reach_the_target() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    make_deep(&p.src, "before.txt", b"synced at startup");
    let m = Mounted::start(&p);
    let t = Duration::from_secs(30);
    let arrived = |root: &Path, fill, file: &str, content: &[u8]| {
        read_branch(root, fill, file).as_deref() == Some(content)
    };
    wait_for("startup sync", t, || {
        arrived(&p.tgt, 'd', "before.txt", b"synced at startup")
    });
    // Written in the target, in folders that were there before: read through the mount.
    make_deep(&p.tgt, "back.txt", b"written in the target");
    wait_for("the deep target file through the mount", t, || {
        arrived(&p.src, 'd', "back.txt", b"written in the target")
    });
    // A new tree made through the mount reaches the target...
    make_branch(&p.src, 'n', "new.txt", b"written through the mount");
    wait_for("the new deep file in the target", t, || {
        arrived(&p.tgt, 'n', "new.txt", b"written through the mount")
    });
    // ...and a file written in the target in its deepest folder comes back.
    make_branch(&p.tgt, 'n', "reply.txt", b"a reply from the target");
    wait_for("the reply through the mount", t, || {
        arrived(&p.src, 'n', "reply.txt", b"a reply from the target")
    });
    // What a mounted pass skips (a FIFO made through the mount, down there) is named in
    // the mount's log and in `tandem status`.
    mkfifo_deep(&p.src, 'n', "fifo");
    let shown = format!("{}fifo", String::from_utf8(branch_rel('n')).unwrap());
    let start = std::time::Instant::now();
    loop {
        let status = p.cmd("status", &[]).stdout;
        if status.contains(&format!("skipped:   {shown}: ")) {
            break;
        }
        assert!(
            start.elapsed() < t,
            "status names the skipped FIFO:\n{status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        m.log().contains(&format!("skipped {shown}: ")),
        "the mount's log names it:\n{}",
        m_log_tail(&p)
    );
    let st = m.stop();
    assert!(st.success(), "clean stop\n{}", m_log_tail(&p));
    assert_eq!(
        read_branch(&p.src, 'n', "reply.txt").as_deref(),
        Some(&b"a reply from the target"[..])
    );
}

/// The relative path of the bottom folder of the tree made of `fill`, with a final `/`.
fn branch_rel(fill: char) -> Vec<u8> {
    let mut p = Vec::new();
    for i in 0..LEVELS {
        p.extend_from_slice(&branch_level(fill, i));
        p.push(b'/');
    }
    p
}

/// Makes a FIFO named `name` at the bottom of the tree made of `fill`.
fn mkfifo_deep(root: &Path, fill: char, name: &str) {
    let mut dir = open_root(root);
    for i in 0..LEVELS {
        dir = open_dir(&dir, &branch_level(fill, i)).unwrap();
    }
    rustix::fs::mknodat(
        &dir,
        name,
        rustix::fs::FileType::Fifo,
        Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
}

/// The end of the mount's log (its paths are long).
fn m_log_tail(p: &Pair) -> String {
    let log = std::fs::read_to_string(p.tmp.path().join("mount.log")).unwrap_or_default();
    log.chars()
        .rev()
        .take(4000)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect()
}

/// What is still left out (here a FIFO 20 levels down, named with a newline) is named,
/// escaped, in the log, in the JSON summary and in `tandem status`, not only counted.
#[test]
fn issue_20_paths_over_path_max_anything_skipped_is_named() {
    let p = Pair::new();
    make_deep(&p.src, "deep.txt", b"synced");
    mkfifo_deep(&p.src, 'd', "pipe\nname");
    let shown = String::from_utf8(deep_rel("pipe\\nname")).unwrap();
    let out = p.sync(&["--json"]);
    assert_eq!(out.code, 1, "exit 1: something was skipped");
    assert_eq!(
        read_deep(&p.tgt, "deep.txt").as_deref(),
        Some(&b"synced"[..])
    );
    let summary: serde_json::Value =
        serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        summary["skipped"][0]["path"].as_str(),
        Some(shown.as_str()),
        "the JSON summary names it"
    );
    assert!(
        out.stderr
            .contains(&format!("tandem: warning: skipped {shown}: ")),
        "the log names it: {}",
        out.stderr
    );
    let status = p.cmd("status", &[]);
    assert!(
        status.stdout.contains(&format!("skipped:   {shown}: ")),
        "status names it: {}",
        status.stdout
    );
    let json: serde_json::Value =
        serde_json::from_str(&p.cmd("status", &["--json"]).stdout).unwrap();
    let listed = &json["last_run"]["problems"][0];
    assert_eq!(listed["path"].as_str(), Some(shown.as_str()), "{json}");
    assert_eq!(listed["what"].as_str(), Some("skipped"), "{json}");
}
