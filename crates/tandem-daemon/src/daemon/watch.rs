//! What the daemon waits on besides its children and the clock: the config file changing,
//! and the paths of `on-appear` schedules appearing. One thread blocks in `poll` on three
//! descriptors, and nothing polls on a timer:
//! - `/proc/self/mountinfo`, which the kernel marks (POLLPRI | POLLERR) whenever the mount
//!   table changes: a disk mounted on a folder that was already there;
//! - an inotify descriptor watching the config file's folder, and the nearest existing
//!   folder above each `on-appear` path (a folder created, a share attached, a parent
//!   mounted: the watches are set again after every change);
//! - an eventfd by which the daemon hands over a new list of paths.
//!
//! It only says that something may have changed (`Event::Config`, `Event::Paths`); the
//! daemon looks at the paths itself. With no `on-appear` path, neither the mount table nor
//! any folder above is watched: a busy mount table costs an idle daemon nothing.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crossbeam_channel::Sender;
use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags};
use rustix::fs::inotify::{self, CreateFlags, WatchFlags};

use super::Event;

/// The daemon's handle on the watching thread.
pub(super) struct Watch {
    wake: Arc<OwnedFd>,
    paths: Arc<Mutex<Vec<PathBuf>>>,
}

impl Watch {
    /// Starts watching `config` (its folder is made if missing, so that it can be watched).
    pub fn start(config: &Path, events: Sender<Event>) -> std::io::Result<Watch> {
        let dir = config.parent().unwrap_or(Path::new("/")).to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let name = config.file_name().map(OsString::from).unwrap_or_default();
        let ino = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        let changed = WatchFlags::CLOSE_WRITE
            | WatchFlags::MOVED_TO
            | WatchFlags::CREATE
            | WatchFlags::DELETE;
        let config_wd = inotify::add_watch(&ino, &dir, changed)?;
        let wake = Arc::new(eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?);
        let paths = Arc::new(Mutex::new(Vec::new()));
        let mut t = Thread {
            ino,
            config_wd,
            config_name: name,
            mountinfo: None,
            wake: Arc::clone(&wake),
            paths: Arc::clone(&paths),
            armed: Vec::new(),
            events,
        };
        std::thread::Builder::new()
            .name("watch".into())
            .spawn(move || t.run())?;
        Ok(Watch { wake, paths })
    }

    /// The `on-appear` paths to watch from now on.
    pub fn set_paths(&self, paths: Vec<PathBuf>) {
        *self.paths.lock().unwrap_or_else(|p| p.into_inner()) = paths;
        let _ = rustix::io::write(&*self.wake, &1u64.to_ne_bytes());
    }
}

struct Thread {
    ino: OwnedFd,
    config_wd: i32,
    config_name: OsString,
    /// Open while there are paths to watch.
    mountinfo: Option<File>,
    wake: Arc<OwnedFd>,
    paths: Arc<Mutex<Vec<PathBuf>>>,
    /// The watches on the folders above the paths.
    armed: Vec<i32>,
    events: Sender<Event>,
}

impl Thread {
    fn run(&mut self) {
        loop {
            let watching = self.arm();
            let (ino, wake, mounts) = {
                let mut fds = vec![
                    PollFd::new(&self.ino, PollFlags::IN),
                    PollFd::new(&*self.wake, PollFlags::IN),
                ];
                if let Some(m) = &self.mountinfo {
                    fds.push(PollFd::new(m, PollFlags::PRI | PollFlags::ERR));
                }
                if let Err(e) = poll(&mut fds, None) {
                    if e == rustix::io::Errno::INTR {
                        continue;
                    }
                    tracing::error!("watching the config and the on-appear paths: {e}");
                    return;
                }
                let r: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
                (r[0], r[1], r.get(2).copied().unwrap_or(false))
            };
            let mut paths = watching && (mounts || wake);
            if let Some(m) = self.mountinfo.as_mut().filter(|_| mounts) {
                drain(m);
            }
            if wake {
                let mut buf = [0u8; 8];
                let _ = rustix::io::read(&*self.wake, &mut buf);
            }
            let mut config = false;
            if ino {
                let (c, p) = self.read_inotify();
                config |= c;
                paths |= p;
            }
            let sent = [(config, Event::Config), (paths, Event::Paths)]
                .into_iter()
                .filter(|(wanted, _)| *wanted)
                .all(|(_, e)| self.events.send(e).is_ok());
            if !sent {
                return;
            }
        }
    }

    /// Whether the config file and whether a watched folder changed.
    fn read_inotify(&mut self) -> (bool, bool) {
        let (mut config, mut paths) = (false, false);
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = inotify::Reader::new(&self.ino, &mut buf);
        while let Ok(ev) = reader.next() {
            if ev.wd() == self.config_wd
                && ev
                    .file_name()
                    .is_some_and(|n| n.to_bytes() == self.config_name.as_encoded_bytes())
            {
                config = true;
            }
            if self.armed.contains(&ev.wd()) || ev.wd() == -1 {
                paths = true;
            }
        }
        (config, paths)
    }

    /// Watches the mount table and the nearest existing folder above each path (set again
    /// each time: the folders that exist change). False when there is no path to watch.
    fn arm(&mut self) -> bool {
        for wd in self.armed.drain(..) {
            if wd != self.config_wd {
                let _ = inotify::remove_watch(&self.ino, wd);
            }
        }
        let paths = self.paths.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if paths.is_empty() {
            self.mountinfo = None;
            return false;
        }
        if self.mountinfo.is_none() {
            // Read once: from here on the kernel marks it when the mount table changes.
            match File::open("/proc/self/mountinfo") {
                Ok(mut f) => {
                    drain(&mut f);
                    self.mountinfo = Some(f);
                }
                Err(e) => tracing::error!("cannot watch the mount table: {e}"),
            }
        }
        let flags = WatchFlags::CREATE
            | WatchFlags::MOVED_TO
            | WatchFlags::DELETE
            | WatchFlags::MOVED_FROM
            | WatchFlags::DELETE_SELF
            | WatchFlags::MOVE_SELF
            | WatchFlags::ONLYDIR
            // Added to the config folder's watch when it is the same folder, not replacing it.
            | WatchFlags::MASK_ADD;
        for p in &paths {
            let mut dir = p.parent();
            while let Some(d) = dir {
                if let Ok(wd) = inotify::add_watch(&self.ino, d, flags) {
                    self.armed.push(wd);
                    break;
                }
                dir = d.parent();
            }
        }
        true
    }
}

/// Reads the file to its end from its start (what re-arms the mount table's mark).
fn drain(f: &mut File) {
    let _ = f.rewind();
    let mut sink = Vec::new();
    let _ = f.read_to_end(&mut sink);
}
