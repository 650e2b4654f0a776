//! Shared fixtures for the mount tests: a recording sink, and `Mounted`, a temp folder
//! served over itself the way `tandem mount` does it (directory fd opened first, then the
//! mount on the same path), unmounted on drop so a failing test leaves no stale mount.
#![allow(dead_code, clippy::unwrap_used)]

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};
use tandem_core::{Change, ChangeOp, ChangeSink};
use tandem_fuse::{MountHandle, MountOptions};

/// True when real mounts can run here. Otherwise says so loudly and returns false, except
/// under `CI=true`, where a missing FUSE is a failure, not a skip.
pub fn fuse_available(test: &str) -> bool {
    let why = if !Path::new("/dev/fuse").exists() {
        Some("/dev/fuse does not exist")
    } else if rustix::fs::open("/dev/fuse", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()).is_err()
    {
        Some("/dev/fuse cannot be opened")
    } else if !rustix::process::geteuid().is_root() {
        Some("the tests mount directly and need root")
    } else {
        None
    };
    let Some(why) = why else { return true };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("FUSE mount tests cannot run ({why}) and CI=true: they must not be skipped");
    }
    // Straight to stderr: the test harness captures `eprintln!` of passing tests.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!! SKIPPING {test}: {why} !!!!!!!!\n"
    );
    false
}

/// Collects change records; `ops` gives them as (op, path, to) for assertions.
#[derive(Default)]
pub struct Recorder(Mutex<Vec<Change>>);

impl ChangeSink for Recorder {
    fn record(&self, change: Change) {
        self.0.lock().unwrap().push(change);
    }
}

pub type Rec = (ChangeOp, String, Option<String>);

pub fn rec(op: ChangeOp, path: &str, to: Option<&str>) -> Rec {
    (op, path.to_string(), to.map(str::to_string))
}

impl Recorder {
    pub fn take(&self) -> Vec<Change> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    pub fn ops(&self) -> Vec<Rec> {
        self.take()
            .into_iter()
            .map(|c| (c.op, c.path.to_string(), c.to.map(|t| t.to_string())))
            .collect()
    }

    /// Waits (up to 5 s) until `n` records arrived (release is asynchronous), then
    /// returns them all.
    pub fn wait_ops(&self, n: usize) -> Vec<Rec> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.0.lock().unwrap().len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.ops()
    }
}

pub struct Mounted {
    handle: Option<MountHandle>,
    /// The served directory itself, hidden under the mount (to change things behind it).
    pub behind: OwnedFd,
    pub root: PathBuf,
    pub sink: Arc<Recorder>,
    _tmp: tempfile::TempDir,
}

impl Mounted {
    pub fn new(opts: MountOptions) -> Mounted {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("src");
        std::fs::create_dir(&root).unwrap();
        let fd = rustix::fs::open(
            &root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let behind = rustix::io::fcntl_dupfd_cloexec(&fd, 0).unwrap();
        let sink = Arc::new(Recorder::default());
        let asked = opts.transport;
        let handle = tandem_fuse::mount(fd, &root, sink.clone(), opts).expect("mount");
        assert!(is_mounted(&root), "{} is not a mount point", root.display());
        // Asked for io_uring by `TANDEM_TRANSPORT`, served through /dev/fuse: the run would
        // not test it.
        assert!(
            !(asked == tandem_fuse::Transport::Uring
                && std::env::var("TANDEM_TRANSPORT").as_deref() == Ok("uring")
                && !handle.uring_active()),
            "TANDEM_TRANSPORT=uring, but the mount fell back to /dev/fuse"
        );
        Mounted {
            handle: Some(handle),
            behind,
            root,
            sink,
            _tmp: tmp,
        }
    }

    pub fn passthrough(on: bool) -> Mounted {
        Mounted::new(MountOptions {
            allow_other: false,
            kernel_passthrough: on,
            threads: 2,
            transport: transport(),
            history_max_file: None,
        })
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn handle(&self) -> &MountHandle {
        self.handle.as_ref().unwrap()
    }

    pub fn unmount(&mut self) {
        if let Some(h) = self.handle.take() {
            h.unmount().unwrap();
        }
    }

    /// The temp folder holding the root, for permission tweaks.
    pub fn tmp(&self) -> &Path {
        self._tmp.path()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            if let Err(e) = h.unmount() {
                eprintln!("unmounting {}: {e}", self.root.display());
            }
        }
    }
}

/// Is `path` a mount point of a tandem FUSE filesystem (per /proc/self/mountinfo: type
/// `fuse`, source `tandem`)?
/// The FUSE transport these tests mount with, from `TANDEM_TRANSPORT` (`dev`, `uring` or
/// `auto`): `TANDEM_TRANSPORT=uring cargo test -p tandem-fuse --test posix` runs them over
/// FUSE over io_uring. Unset: the mount's default.
pub fn transport() -> tandem_fuse::Transport {
    match std::env::var("TANDEM_TRANSPORT").as_deref() {
        Ok("uring") => tandem_fuse::Transport::Uring,
        Ok("dev") => tandem_fuse::Transport::Dev,
        Ok("auto") | Err(_) => tandem_fuse::Transport::Auto,
        Ok(other) => panic!("TANDEM_TRANSPORT={other}: dev, uring or auto"),
    }
}

pub fn is_mounted(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let path = path.to_str().unwrap();
    info.lines().any(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        f.get(4) == Some(&path) && (l.contains(" - fuse tandem ") || l.contains(" - fuse.tandem "))
    })
}

pub fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}
