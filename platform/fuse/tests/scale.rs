//! Real mount under a low open-file limit: more files than the limit, created, stat'ed,
//! changed and read through the mount, without EMFILE (the bounded inode fd cache).
//!
//! A test binary of its own: it lowers RLIMIT_NOFILE for the whole process.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::{fuse_available, Mounted};
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

const LIMIT: u64 = 1024;
const FILES: usize = 5000;

/// Restores the open-file limit however the test ends.
struct Limit(Rlimit);

impl Limit {
    fn lower_to(n: u64) -> Limit {
        let old = getrlimit(Resource::Nofile);
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(n),
                maximum: old.maximum,
            },
        )
        .unwrap();
        Limit(old)
    }
}

impl Drop for Limit {
    fn drop(&mut self) {
        setrlimit(Resource::Nofile, self.0).unwrap();
    }
}

fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn more_files_than_the_open_file_limit() {
    if !fuse_available("more_files_than_the_open_file_limit") {
        return;
    }
    let _limit = Limit::lower_to(LIMIT);
    // Mounted after lowering: the daemon sizes its fd cache from the limit it sees.
    let m = Mounted::passthrough(true);
    let path = |i: usize| m.path(&format!("d{}/f{i:05}", i % 5));
    for d in 0..5 {
        fs::create_dir(m.path(&format!("d{d}"))).unwrap();
    }
    for i in 0..FILES {
        fs::write(path(i), i.to_string()).unwrap();
    }
    for i in 0..FILES {
        assert_eq!(
            fs::metadata(path(i)).unwrap().len(),
            i.to_string().len() as u64
        );
    }
    // setattr and open need the inode's fd: most were evicted and are opened again.
    for i in 0..FILES {
        fs::set_permissions(path(i), fs::Permissions::from_mode(0o600)).unwrap();
    }
    for i in (0..FILES).step_by(7) {
        assert_eq!(fs::read_to_string(path(i)).unwrap(), i.to_string());
    }
    // Renaming a directory keeps every path right, evicted or not.
    fs::rename(m.path("d3"), m.path("moved")).unwrap();
    for i in (3..FILES).step_by(5).take(100) {
        let moved = m.path(&format!("moved/f{i:05}"));
        assert_eq!(fs::read_to_string(moved).unwrap(), i.to_string());
    }
    let (inodes, fds) = m.handle().inode_counts();
    eprintln!(
        "inodes known {inodes}, inode fds open {fds}, process fds {}",
        open_fds()
    );
    assert!(inodes > FILES, "the kernel still knows the files: {inodes}");
    assert!(fds <= (LIMIT / 4) as usize, "{fds} inode fds open");
    assert!(open_fds() < LIMIT as usize / 2, "{} fds open", open_fds());
    // The journal saw every file.
    let creates = m
        .sink
        .take()
        .iter()
        .filter(|c| c.op == tandem_core::ChangeOp::Create)
        .count();
    assert_eq!(creates, FILES);
    for i in 0..FILES {
        if i % 5 != 3 {
            fs::remove_file(path(i)).unwrap();
        }
    }
}
