//! Real mounts: one sequence of POSIX operations, error cases included, run in a plain
//! folder and inside the mount (with kernel passthrough and through the daemon) must give
//! the same results and the same errnos (DESIGN.md invariant 7).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod common;

use std::fmt::Debug;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use common::{fuse_available, Mounted};
use rustix::fs::{
    self as rfs, AtFlags, FallocateFlags, FileType, FlockOperation, Mode, OFlags, RenameFlags,
    SeekFrom, Timespec, Timestamps, XattrFlags, CWD,
};
use rustix::io::Errno;

/// What a run did, one line per step, free of anything that differs between two roots
/// (absolute paths, inode numbers, times other than those set explicitly).
#[derive(Default)]
struct Log(Vec<String>);

fn errno_text(e: Errno) -> String {
    std::io::Error::from_raw_os_error(e.raw_os_error()).to_string()
}

impl Log {
    /// Logs "ok" or the errno, and passes the value on.
    fn r<T>(&mut self, what: &str, res: rustix::io::Result<T>) -> Option<T> {
        match res {
            Ok(v) => {
                self.0.push(format!("{what}: ok"));
                Some(v)
            }
            Err(e) => {
                self.0.push(format!("{what}: {}", errno_text(e)));
                None
            }
        }
    }

    fn v(&mut self, what: &str, value: impl Debug) {
        self.0.push(format!("{what}: {value:?}"));
    }

    fn stat(&mut self, what: &str, path: &Path) {
        match rfs::lstat(path) {
            Ok(s) => self.0.push(format!(
                "{what}: {:?} {:o} nlink={} size={} uid={} gid={}",
                FileType::from_raw_mode(s.st_mode),
                s.st_mode & 0o7777,
                s.st_nlink,
                s.st_size,
                s.st_uid,
                s.st_gid
            )),
            Err(e) => self.0.push(format!("{what}: {}", errno_text(e))),
        }
    }

    fn read(&mut self, what: &str, path: &Path) {
        match std::fs::read(path) {
            Ok(data) if data.len() <= 64 => self.v(what, String::from_utf8_lossy(&data)),
            Ok(data) => self.v(
                what,
                (data.len(), data.iter().map(|&b| u64::from(b)).sum::<u64>()),
            ),
            Err(e) => self.v(what, e.to_string()),
        }
    }
}

fn open(path: &Path, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    rfs::open(path, flags | OFlags::CLOEXEC, Mode::from_raw_mode(0o644))
}

fn write_all(fd: impl AsFd, data: &[u8]) -> rustix::io::Result<usize> {
    rustix::io::write(fd, data)
}

fn pread(fd: impl AsFd, at: u64, len: usize) -> rustix::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let n = rustix::io::pread(fd, &mut buf[..], at)?;
    buf.truncate(n);
    Ok(buf)
}

fn ts(sec: i64, nsec: i64) -> Timespec {
    Timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    }
}

fn recent(t: i64) -> bool {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    (now - t).abs() < 120
}

fn rename2(from: &Path, to: &Path, flags: RenameFlags) -> rustix::io::Result<()> {
    rfs::renameat_with(CWD, from, CWD, to, flags)
}

#[allow(clippy::too_many_lines)]
fn script(root: &Path) -> Vec<String> {
    let mut log = Log::default();
    let p = |rel: &str| -> PathBuf { root.join(rel) };
    let rw = OFlags::RDWR;
    let wo = OFlags::WRONLY;

    // ---- create, read, write; O_EXCL, O_APPEND, O_TRUNC --------------------------------
    let fd = log.r(
        "create a",
        open(&p("a"), wo | OFlags::CREATE | OFlags::EXCL),
    );
    if let Some(fd) = fd {
        log.r("write a", write_all(&fd, b"hello"));
    }
    log.r(
        "create a again with O_EXCL",
        open(&p("a"), wo | OFlags::CREATE | OFlags::EXCL),
    );
    log.r(
        "open a with O_CREAT",
        open(&p("a"), OFlags::RDONLY | OFlags::CREATE),
    );
    log.read("a", &p("a"));
    if let Some(fd) = log.r("open a O_APPEND", open(&p("a"), wo | OFlags::APPEND)) {
        log.r("append", write_all(&fd, b" world"));
        log.r(
            "pwrite at 0 appends anyway",
            rustix::io::pwrite(&fd, b"!", 0),
        );
    }
    log.read("a after append", &p("a"));
    if let Some(fd) = log.r("open a O_TRUNC", open(&p("a"), wo | OFlags::TRUNC)) {
        log.v("size after O_TRUNC", rfs::fstat(&fd).map(|s| s.st_size));
        log.r("write x", write_all(&fd, b"x"));
        log.r("read on write-only fd", pread(&fd, 0, 1));
    }
    log.read("a after truncate", &p("a"));
    log.stat("stat a", &p("a"));
    // The caller's umask (022) applies once, not again in the daemon.
    log.r(
        "create with 0666",
        rfs::open(p("m666"), wo | OFlags::CREATE, Mode::from_raw_mode(0o666)),
    );
    log.stat("m666", &p("m666"));
    log.r(
        "mkdir with 0777",
        rfs::mkdir(p("m777"), Mode::from_raw_mode(0o777)),
    );
    log.stat("m777", &p("m777"));
    log.r(
        "mkdir m777/sub",
        rfs::mkdir(p("m777/sub"), Mode::from_raw_mode(0o777)),
    );
    log.stat("m777 has nlink 3", &p("m777"));
    log.r("rmdir m777/.", rfs::rmdir(p("m777/.")));
    if let Some(fd) = log.r("open a read-only", open(&p("a"), OFlags::RDONLY)) {
        log.r("write on a read-only fd", write_all(&fd, b"no"));
    }

    // ---- errors on names ---------------------------------------------------------------
    log.r("open missing", open(&p("missing"), OFlags::RDONLY));
    log.r("open a/x", open(&p("a/x"), OFlags::RDONLY));
    log.r(
        "O_DIRECTORY on a file",
        open(&p("a"), OFlags::RDONLY | OFlags::DIRECTORY),
    );
    log.r(
        "O_NOFOLLOW on a file",
        open(&p("a"), OFlags::RDONLY | OFlags::NOFOLLOW),
    );
    log.r("mkdir d", rfs::mkdir(p("d"), Mode::from_raw_mode(0o755)));
    log.r(
        "mkdir d again",
        rfs::mkdir(p("d"), Mode::from_raw_mode(0o755)),
    );
    log.r("open d for writing", open(&p("d"), wo));
    log.r("create d/f", open(&p("d/f"), wo | OFlags::CREATE));
    log.r("rmdir non-empty d", rfs::rmdir(p("d")));
    log.r("unlink dir d", rfs::unlink(p("d")));
    log.r("unlink missing", rfs::unlink(p("missing")));
    log.r("rmdir file a", rfs::rmdir(p("a")));
    log.r(
        "mkdir a/x",
        rfs::mkdir(p("a/x"), Mode::from_raw_mode(0o755)),
    );
    log.r(
        "mkdir missing/x",
        rfs::mkdir(p("missing/x"), Mode::from_raw_mode(0o755)),
    );
    let long = "n".repeat(256);
    log.r(
        "create a 256-byte name",
        open(&p(&long), wo | OFlags::CREATE),
    );
    log.r(
        "create a 255-byte name",
        open(&p(&long[1..]), wo | OFlags::CREATE),
    );
    log.r("unlink it", rfs::unlink(p(&long[1..])));

    // ---- renames -----------------------------------------------------------------------
    std::fs::write(p("b"), b"bee").unwrap();
    log.r("rename a over file b", rfs::rename(p("a"), p("b")));
    log.read("b", &p("b"));
    log.stat("a after rename", &p("a"));
    log.r("mkdir e", rfs::mkdir(p("e"), Mode::from_raw_mode(0o755)));
    log.r("rename file over empty dir", rfs::rename(p("b"), p("e")));
    log.r("mkdir g", rfs::mkdir(p("g"), Mode::from_raw_mode(0o700)));
    log.r("rename dir over empty dir", rfs::rename(p("g"), p("e")));
    log.stat("g", &p("g"));
    log.stat("e", &p("e"));
    log.r("rename dir over non-empty dir", rfs::rename(p("e"), p("d")));
    log.r("rename dir over file", rfs::rename(p("d"), p("b")));
    log.r("rename dir into itself", rfs::rename(p("d"), p("d/sub")));
    log.r("rename onto itself", rfs::rename(p("b"), p("b")));
    log.r("rename missing", rfs::rename(p("missing"), p("z")));
    log.r(
        "NOREPLACE onto d",
        rename2(&p("b"), &p("d"), RenameFlags::NOREPLACE),
    );
    log.r(
        "NOREPLACE onto c",
        rename2(&p("b"), &p("c"), RenameFlags::NOREPLACE),
    );
    log.r(
        "EXCHANGE c and d",
        rename2(&p("c"), &p("d"), RenameFlags::EXCHANGE),
    );
    log.stat("c", &p("c"));
    log.stat("d", &p("d"));
    log.read("d", &p("d"));
    log.stat("c/f", &p("c/f"));
    log.r(
        "EXCHANGE with missing",
        rename2(&p("d"), &p("missing"), RenameFlags::EXCHANGE),
    );
    log.r("rename into another dir", rfs::rename(p("d"), p("c/moved")));
    log.r("and back", rfs::rename(p("c/moved"), p("d")));

    // ---- hard links --------------------------------------------------------------------
    log.r("link d h", rfs::link(p("d"), p("h")));
    log.stat("d", &p("d"));
    log.stat("h", &p("h"));
    log.v(
        "d and h are one inode",
        rfs::stat(p("d")).unwrap().st_ino == rfs::stat(p("h")).unwrap().st_ino,
    );
    log.r("link onto existing", rfs::link(p("d"), p("h")));
    log.r("link a directory", rfs::link(p("c"), p("c2")));
    log.r("link missing", rfs::link(p("missing"), p("q")));
    std::fs::write(p("h"), b"via h").unwrap();
    log.read("d after writing h", &p("d"));
    log.r("unlink d", rfs::unlink(p("d")));
    log.stat("h", &p("h"));

    // ---- symlinks ----------------------------------------------------------------------
    log.r("symlink s -> h", rfs::symlink("h", p("s")));
    log.v(
        "readlink s",
        rfs::readlink(p("s"), Vec::new()).map(|t| t.into_string()),
    );
    log.stat("lstat s", &p("s"));
    log.v("stat s follows", rfs::stat(p("s")).map(|s| s.st_size));
    log.read("read through s", &p("s"));
    log.r("symlink dangling", rfs::symlink("nowhere", p("s2")));
    log.v("stat dangling", rfs::stat(p("s2")).map(|s| s.st_size));
    log.r("symlink onto existing", rfs::symlink("h", p("s")));
    log.v(
        "readlink a file",
        rfs::readlink(p("h"), Vec::new()).map(|t| t.into_string()),
    );
    log.r(
        "symlink out of the root",
        rfs::symlink("../../../etc/passwd", p("out")),
    );
    log.v(
        "readlink it",
        rfs::readlink(p("out"), Vec::new()).map(|t| t.into_string()),
    );
    log.r(
        "open it with O_NOFOLLOW",
        open(&p("out"), OFlags::RDONLY | OFlags::NOFOLLOW),
    );

    // ---- metadata ----------------------------------------------------------------------
    log.r("chmod 600", rfs::chmod(p("h"), Mode::from_raw_mode(0o600)));
    log.stat("h", &p("h"));
    log.r(
        "chmod 4755",
        rfs::chmod(p("h"), Mode::from_raw_mode(0o4755)),
    );
    log.stat("h", &p("h"));
    log.r(
        "chmod through symlink",
        rfs::chmod(p("s"), Mode::from_raw_mode(0o640)),
    );
    log.stat("h", &p("h"));
    let uid = rfs::Uid::from_raw(1234);
    let gid = rfs::Gid::from_raw(5678);
    log.r("chown", rfs::chown(p("h"), Some(uid), Some(gid)));
    log.stat("h", &p("h"));
    log.r(
        "lchown symlink",
        rfs::chownat(CWD, p("s"), Some(uid), None, AtFlags::SYMLINK_NOFOLLOW),
    );
    log.stat("s", &p("s"));
    let set = Timestamps {
        last_access: ts(1000, 500),
        last_modification: ts(2000, 250),
    };
    log.r(
        "utimens",
        rfs::utimensat(CWD, p("h"), &set, AtFlags::empty()),
    );
    let s = rfs::stat(p("h")).unwrap();
    log.v(
        "times",
        (s.st_atime, s.st_atime_nsec, s.st_mtime, s.st_mtime_nsec),
    );
    let omit_now = Timestamps {
        last_access: ts(0, rfs::UTIME_OMIT),
        last_modification: ts(0, rfs::UTIME_NOW),
    };
    log.r(
        "utimens OMIT/NOW",
        rfs::utimensat(CWD, p("h"), &omit_now, AtFlags::empty()),
    );
    let s = rfs::stat(p("h")).unwrap();
    log.v(
        "atime kept, mtime now",
        (s.st_atime, s.st_atime_nsec, recent(s.st_mtime)),
    );
    let old = Timestamps {
        last_access: ts(3000, 0),
        last_modification: ts(-86400, 0),
    };
    log.r(
        "lutimes symlink",
        rfs::utimensat(CWD, p("s"), &old, AtFlags::SYMLINK_NOFOLLOW),
    );
    let s = rfs::lstat(p("s")).unwrap();
    log.v("symlink times", (s.st_atime, s.st_mtime));
    log.v(
        "target untouched",
        recent(rfs::stat(p("h")).unwrap().st_mtime),
    );
    log.r(
        "truncate to 10000",
        rfs::open(p("h"), wo, Mode::empty()).and_then(|f| rfs::ftruncate(&f, 10000)),
    );
    log.stat("h", &p("h"));
    log.read("h", &p("h"));
    if let Some(fd) = log.r("open h rw", open(&p("h"), rw)) {
        log.r("ftruncate to 3", rfs::ftruncate(&fd, 3));
        log.v("fstat", rfs::fstat(&fd).map(|s| s.st_size));
    }
    if let Some(fd) = log.r("open h ro", open(&p("h"), OFlags::RDONLY)) {
        log.r("ftruncate read-only fd", rfs::ftruncate(&fd, 1));
    }
    log.r("truncate a directory", open(&p("c"), wo | OFlags::TRUNC));
    log.r(
        "access rw",
        rfs::access(p("h"), rfs::Access::READ_OK | rfs::Access::WRITE_OK),
    );
    log.r(
        "access missing",
        rfs::access(p("missing"), rfs::Access::EXISTS),
    );
    log.r(
        "mkfifo",
        rfs::mknodat(
            CWD,
            p("fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        ),
    );
    log.stat("fifo", &p("fifo"));
    log.v("statvfs name max", rfs::statvfs(root).map(|s| s.f_namemax));

    // ---- extended attributes -----------------------------------------------------------
    let none = XattrFlags::empty();
    log.r("setxattr", rfs::setxattr(p("h"), "user.k", b"v1", none));
    let mut buf = [0u8; 64];
    log.v(
        "getxattr",
        rfs::getxattr(p("h"), "user.k", &mut buf[..]).map(|n| buf[..n].to_vec()),
    );
    log.v("getxattr size", rfs::getxattr_query(p("h"), "user.k"));
    log.v(
        "getxattr missing",
        rfs::getxattr(p("h"), "user.none", &mut buf[..]),
    );
    log.v(
        "getxattr small buffer",
        rfs::getxattr(p("h"), "user.k", &mut buf[..1]),
    );
    log.r(
        "setxattr CREATE existing",
        rfs::setxattr(p("h"), "user.k", b"v2", XattrFlags::CREATE),
    );
    log.r(
        "setxattr REPLACE missing",
        rfs::setxattr(p("h"), "user.none", b"v", XattrFlags::REPLACE),
    );
    log.r(
        "setxattr REPLACE",
        rfs::setxattr(p("h"), "user.k", b"v3", XattrFlags::REPLACE),
    );
    log.r(
        "second xattr",
        rfs::setxattr(p("h"), "user.other", b"", none),
    );
    let n = rfs::listxattr(p("h"), &mut buf[..]).unwrap();
    let mut names: Vec<&[u8]> = buf[..n]
        .split(|&b| b == 0)
        .filter(|n| n.starts_with(b"user."))
        .collect();
    names.sort();
    log.v(
        "listxattr",
        names
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect::<Vec<_>>(),
    );
    log.r("removexattr", rfs::removexattr(p("h"), "user.k"));
    log.r("removexattr again", rfs::removexattr(p("h"), "user.k"));
    log.r(
        "setxattr on a directory",
        rfs::setxattr(p("c"), "user.d", b"dir", none),
    );
    log.r(
        "user xattr on a symlink",
        rfs::lsetxattr(p("s"), "user.x", b"x", none),
    );
    log.v(
        "lgetxattr on a symlink",
        rfs::lgetxattr(p("s"), "user.x", &mut buf[..]),
    );
    log.r(
        "trusted xattr as root",
        rfs::setxattr(p("h"), "trusted.t", b"t", none),
    );
    log.r(
        "bad namespace",
        rfs::setxattr(p("h"), "bogus.k", b"t", none),
    );

    // ---- sparse files ------------------------------------------------------------------
    if let Some(fd) = log.r("create sp", open(&p("sp"), rw | OFlags::CREATE)) {
        log.r("write at 1 MiB", rustix::io::pwrite(&fd, b"end", 1 << 20));
        let s = rfs::fstat(&fd).unwrap();
        log.v("size, blocks", (s.st_size, s.st_blocks));
        log.v("SEEK_DATA 0", rfs::seek(&fd, SeekFrom::Data(0)));
        log.v("SEEK_HOLE 0", rfs::seek(&fd, SeekFrom::Hole(0)));
        log.v(
            "SEEK_DATA past end",
            rfs::seek(&fd, SeekFrom::Data(2 << 20)),
        );
        log.v("hole reads zeros", pread(&fd, 4096, 4));
    }
    const FIVE_GIB: u64 = 5 << 30;
    if let Some(fd) = log.r("create 5 GiB sparse", open(&p("big"), rw | OFlags::CREATE)) {
        log.v(
            "seek to the end",
            rfs::seek(&fd, SeekFrom::Start(FIVE_GIB - 4)),
        );
        log.r("write tail", write_all(&fd, b"tail"));
        let s = rfs::fstat(&fd).unwrap();
        log.v("5 GiB size, few blocks", (s.st_size, s.st_blocks <= 64));
        log.v("read tail", pread(&fd, FIVE_GIB - 4, 100));
        log.v("read in the middle", pread(&fd, 1 << 30, 8));
        log.v("SEEK_DATA", rfs::seek(&fd, SeekFrom::Data(0)));
    }
    log.stat("big", &p("big"));
    log.r("unlink big", rfs::unlink(p("big")));

    // ---- fallocate, copy_file_range ----------------------------------------------------
    if let Some(fd) = log.r("create fa", open(&p("fa"), rw | OFlags::CREATE)) {
        log.r(
            "fallocate 1 MiB",
            rfs::fallocate(&fd, FallocateFlags::empty(), 0, 1 << 20),
        );
        let s = rfs::fstat(&fd).unwrap();
        log.v("size, blocks", (s.st_size, s.st_blocks));
        let punch = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
        log.r("punch a hole", rfs::fallocate(&fd, punch, 0, 1 << 19));
        let s = rfs::fstat(&fd).unwrap();
        log.v("size, blocks", (s.st_size, s.st_blocks));
        log.r(
            "fallocate KEEP_SIZE past end",
            rfs::fallocate(&fd, FallocateFlags::KEEP_SIZE, 1 << 20, 4096),
        );
        log.v("size", rfs::fstat(&fd).map(|s| s.st_size));
        log.r(
            "bad fallocate mode",
            rfs::fallocate(&fd, FallocateFlags::PUNCH_HOLE, 0, 4096),
        );
    }
    std::fs::write(p("cf1"), b"copy me please").unwrap();
    let (src, dst) = (
        open(&p("cf1"), OFlags::RDONLY).unwrap(),
        open(&p("cf2"), rw | OFlags::CREATE).unwrap(),
    );
    let (mut off_in, mut off_out) = (5u64, 2u64);
    log.v(
        "copy_file_range",
        rfs::copy_file_range(&src, Some(&mut off_in), &dst, Some(&mut off_out), 7),
    );
    log.v("offsets", (off_in, off_out));
    drop((src, dst));
    log.read("cf2", &p("cf2"));

    // ---- mmap: write through a shared mapping, then close --------------------------------
    if let Some(fd) = log.r("create mm", open(&p("mm"), rw | OFlags::CREATE)) {
        rfs::ftruncate(&fd, 8192).unwrap();
        // SAFETY: a fresh shared mapping of a file we own, unmapped below, not aliased.
        unsafe {
            use std::os::fd::AsRawFd;
            let len = 8192;
            let map = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            );
            assert_ne!(map, libc::MAP_FAILED);
            drop(fd); // the mapping outlives the descriptor
            let bytes = std::slice::from_raw_parts_mut(map.cast::<u8>(), len);
            bytes[..6].copy_from_slice(b"mapped");
            bytes[5000..5004].copy_from_slice(b"page");
            assert_eq!(libc::msync(map, len, libc::MS_SYNC), 0);
            assert_eq!(libc::munmap(map, len), 0);
        }
    }
    let mm = std::fs::read(p("mm")).unwrap();
    log.v("mm content", (&mm[..6], &mm[5000..5004], mm.len()));

    // ---- an unlinked file stays readable while open -------------------------------------
    if let Some(fd) = log.r("create ghost", open(&p("ghost"), rw | OFlags::CREATE)) {
        log.r("write ghost", write_all(&fd, b"boo"));
        log.r("unlink ghost", rfs::unlink(p("ghost")));
        log.v("read after unlink", pread(&fd, 0, 10));
        log.r("write after unlink", rustix::io::pwrite(&fd, b"!", 3));
        log.v("read again", pread(&fd, 0, 10));
        log.v("fstat", rfs::fstat(&fd).map(|s| (s.st_nlink, s.st_size)));
        log.stat("ghost by name", &p("ghost"));
        log.r(
            "fchmod unlinked",
            rfs::fchmod(&fd, Mode::from_raw_mode(0o600)),
        );
    }

    // ---- locks --------------------------------------------------------------------------
    std::fs::write(p("lk"), b"lock").unwrap();
    let (l1, l2) = (open(&p("lk"), rw).unwrap(), open(&p("lk"), rw).unwrap());
    log.r(
        "flock first",
        rfs::flock(&l1, FlockOperation::NonBlockingLockExclusive),
    );
    log.r(
        "flock second",
        rfs::flock(&l2, FlockOperation::NonBlockingLockExclusive),
    );
    log.r("flock unlock", rfs::flock(&l1, FlockOperation::Unlock));
    log.r(
        "flock second again",
        rfs::flock(&l2, FlockOperation::NonBlockingLockExclusive),
    );
    let ofd = |fd: &OwnedFd, typ: i16| {
        use std::os::fd::AsRawFd;
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = typ;
        fl.l_whence = libc::SEEK_SET as i16;
        // SAFETY: F_OFD_SETLK with a valid struct flock.
        let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &fl) };
        if r == 0 {
            Ok(())
        } else {
            Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap())
        }
    };
    log.r("OFD write lock", ofd(&l1, libc::F_WRLCK as i16));
    log.r("conflicting OFD lock", ofd(&l2, libc::F_RDLCK as i16));
    log.r("OFD unlock", ofd(&l1, libc::F_UNLCK as i16));
    log.r("OFD lock now free", ofd(&l2, libc::F_RDLCK as i16));
    drop((l1, l2));

    // ---- a directory of 3000 entries ----------------------------------------------------
    log.r(
        "mkdir many",
        rfs::mkdir(p("many"), Mode::from_raw_mode(0o755)),
    );
    for i in 0..3000 {
        std::fs::write(p(&format!("many/f{i:04}")), b"").unwrap();
    }
    let mut names: Vec<String> = Vec::new();
    let dir =
        rfs::Dir::read_from(open(&p("many"), OFlags::RDONLY | OFlags::DIRECTORY).unwrap()).unwrap();
    for e in dir {
        names.push(e.unwrap().file_name().to_string_lossy().into_owned());
    }
    names.sort();
    log.v(
        "readdir many",
        (names.len(), &names[..3], &names[names.len() - 1]),
    );
    let dir = std::fs::read_dir(p("many")).unwrap();
    log.v("read_dir many", dir.count());
    for i in 0..3000 {
        std::fs::remove_file(p(&format!("many/f{i:04}"))).unwrap();
    }
    log.r("rmdir many", rfs::rmdir(p("many")));

    // ---- inode numbers agree between stat and readdir -----------------------------------
    let mut agree = true;
    for e in std::fs::read_dir(root).unwrap() {
        use std::os::unix::fs::DirEntryExt;
        let e = e.unwrap();
        agree &= rfs::lstat(e.path()).unwrap().st_ino == e.ino();
    }
    log.v("readdir d_ino == st_ino", agree);

    // ---- the tree at the end ------------------------------------------------------------
    let mut tree: Vec<String> = Vec::new();
    for e in walk(root) {
        let rel = e.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let s = rfs::lstat(&e).unwrap();
        tree.push(format!(
            "{rel} {:?} {:o} {}",
            FileType::from_raw_mode(s.st_mode),
            s.st_mode & 0o7777,
            s.st_size
        ));
    }
    tree.sort();
    log.v("tree", tree);
    log.0
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let path = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

fn compare(passthrough: bool) {
    compare_on(Mounted::passthrough(passthrough), passthrough);
}

fn compare_on(m: Mounted, passthrough: bool) -> Mounted {
    let plain = tempfile::tempdir().unwrap();
    let expected = script(plain.path());
    let got = script(&m.root);
    if std::env::var_os("TANDEM_FUSE_SHOW_LOG").is_some() {
        eprintln!("{}", got.join("\n"));
    }
    assert_eq!(m.handle().passthrough_active(), passthrough);
    for (i, (e, g)) in expected.iter().zip(&got).enumerate() {
        assert_eq!(e, g, "step {i} differs (plain folder left, mount right)");
    }
    assert_eq!(expected.len(), got.len());
    m
}

#[test]
fn the_mount_behaves_like_the_plain_folder_with_kernel_passthrough() {
    if fuse_available("the_mount_behaves_like_the_plain_folder_with_kernel_passthrough") {
        compare(true);
    }
}

#[test]
fn the_mount_behaves_like_the_plain_folder_through_the_daemon() {
    if fuse_available("the_mount_behaves_like_the_plain_folder_through_the_daemon") {
        compare(false);
    }
}

/// With the history on (as `tandem mount` has it): programs see the same results and
/// errors, whatever the mount keeps aside first. The script runs in a folder of each root:
/// the mount's root also gets `.tandem/history`.
#[test]
fn the_mount_behaves_like_the_plain_folder_keeping_history() {
    if !fuse_available("the_mount_behaves_like_the_plain_folder_keeping_history") {
        return;
    }
    for passthrough in [true, false] {
        let m = Mounted::new(tandem_fuse::MountOptions {
            allow_other: false,
            kernel_passthrough: passthrough,
            threads: 2,
            transport: common::transport(),
            history_max_file: Some(1 << 20),
        });
        let plain = tempfile::tempdir().unwrap();
        std::fs::create_dir(plain.path().join("w")).unwrap();
        std::fs::create_dir(m.root.join("w")).unwrap();
        let expected = script(&plain.path().join("w"));
        let got = script(&m.root.join("w"));
        for (i, (e, g)) in expected.iter().zip(&got).enumerate() {
            assert_eq!(e, g, "step {i} differs (plain folder left, mount right)");
        }
        assert_eq!(expected.len(), got.len());
        let kept = std::fs::read_dir(m.root.join(".tandem/history")).map_or(0, |d| d.count());
        assert!(
            kept > 0,
            "the script overwrites and deletes files: something is kept"
        );
    }
}

/// The same script over FUSE over io_uring (Linux 6.14+ with `fuse.enable_uring=Y`):
/// skipped, loudly, where the kernel does not offer it.
#[test]
fn the_mount_behaves_like_the_plain_folder_over_io_uring() {
    let name = "the_mount_behaves_like_the_plain_folder_over_io_uring";
    if !fuse_available(name) {
        return;
    }
    for passthrough in [true, false] {
        let m = Mounted::new(tandem_fuse::MountOptions {
            allow_other: false,
            kernel_passthrough: passthrough,
            threads: 2,
            transport: tandem_fuse::Transport::Uring,
            history_max_file: None,
        });
        if !m.handle().uring_active() {
            let param = std::fs::read_to_string("/sys/module/fuse/parameters/enable_uring");
            eprintln!("{name}: SKIPPED, the kernel does not offer FUSE over io_uring (enable_uring: {param:?})");
            return;
        }
        let handle_served = |m: &Mounted| m.handle().uring_requests();
        let before = handle_served(&m);
        let m = compare_on(m, passthrough);
        let served = handle_served(&m) - before;
        // The script makes a few hundred requests: (nearly) all of them through the rings.
        assert!(
            served > 200,
            "passthrough {passthrough}: {served} requests over io_uring"
        );
    }
}
