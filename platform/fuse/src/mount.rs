//! Mounting, unmounting, and the `tandem_core::Mount` seam (cache invalidation).

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use fuser::{BackgroundSession, Config, INodeNo, MountOption, Notifier, Session, SessionACL};
use tandem_core::{ChangeSink, RelPath};

use crate::adapter::{FuseFs, Shared};
use crate::passthrough::{CoreConfig, Inval, PassthroughFs};
use crate::setup;
use crate::sys::{self, Underlying};
use crate::uring::Rings;

/// How often files held open for writing are looked at, and how long a file must have
/// been open before it is (see `PassthroughFs::report_long_writers`).
const LONG_WRITER_PERIOD: Duration = Duration::from_secs(2);

/// How requests travel between the kernel and the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// `Uring` where the kernel allows it (Linux 6.14+ with `fuse.enable_uring=Y`), else
    /// `Dev`, with one log line saying why. io_uring takes about a quarter off an untar, a
    /// create and an rm (README: performance); kernels ship with the switch off.
    #[default]
    Auto,
    /// read(2) and writev(2) of /dev/fuse, one system call each per request.
    Dev,
    /// FUSE over io_uring (Linux 6.14+, `fuse.enable_uring=Y`), falling back to `Dev`
    /// with one warning where the kernel does not allow it.
    Uring,
}

/// The kernel's switch for FUSE over io_uring (off by default; absent before 6.14 or
/// without `CONFIG_FUSE_IO_URING`).
const ENABLE_URING: &str = "/sys/module/fuse/parameters/enable_uring";

impl Transport {
    /// What `Auto` comes to on this machine, said in the log when it is not io_uring; the
    /// others as they are. `Uring` from `Auto` may still be refused at INIT (`serve`).
    fn resolve(self) -> Transport {
        if self != Transport::Auto {
            return self;
        }
        if !cfg!(target_os = "linux") {
            // FUSE over io_uring is Linux's: nothing to say elsewhere.
            return Transport::Dev;
        }
        match std::fs::read_to_string(ENABLE_URING) {
            Ok(on) if on.trim() == "Y" => Transport::Uring,
            Ok(off) => {
                tracing::info!(
                    "serving through /dev/fuse: FUSE over io_uring is switched off in this kernel \
                     ({ENABLE_URING} is {}; `echo Y` there as root to turn it on)",
                    off.trim()
                );
                Transport::Dev
            }
            Err(_) => {
                tracing::info!(
                    "serving through /dev/fuse: this kernel has no FUSE over io_uring \
                     (Linux 6.14+ built with CONFIG_FUSE_IO_URING)"
                );
                Transport::Dev
            }
        }
    }
}

/// How the mount behaves.
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// Let every user reach the mount. Permissions are then checked by the kernel
    /// (`default_permissions`, always on), and files are created as the calling user.
    pub allow_other: bool,
    /// Serve reads and writes by kernel passthrough when the kernel (>= 6.9) and the
    /// privileges (CAP_SYS_ADMIN, see `privileged`) allow; otherwise through the daemon.
    pub kernel_passthrough: bool,
    /// Request threads; 0 means one per CPU, between 2 and 8 (each thread holds a
    /// 16 MiB request buffer, mostly untouched).
    pub threads: usize,
    /// How requests reach the daemon.
    pub transport: Transport,
    /// Keep what requests are about to destroy in the source's `.tandem/history/`, for
    /// files up to this many bytes (`None`: keep nothing).
    pub history_max_file: Option<u64>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            allow_other: false,
            kernel_passthrough: true,
            threads: 0,
            transport: Transport::Auto,
            history_max_file: None,
        }
    }
}

/// A running mount. Unmounts when dropped.
pub struct MountHandle {
    session: Option<BackgroundSession>,
    notifier: Notifier,
    core: Arc<PassthroughFs>,
    shared: Arc<Shared>,
    mountpoint: PathBuf,
    ticker: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
    rings: Option<Rings>,
}

/// Serves `src_dir` at `mountpoint` (usually the very path `src_dir` was opened at, which
/// the mount then hides from everyone but this process's fd) and reports every change made
/// through it to `sink`. Returns once the kernel has accepted the filesystem.
///
/// `src_dir` must be a directory fd (`O_PATH` or `O_RDONLY | O_DIRECTORY`) opened before
/// mounting. Needs, on Linux, `/dev/fuse`, `/proc`, and the right to mount (root, or
/// fusermount3); on macOS, macFUSE: what is missing is said by a `SetupError` inside the
/// returned error.
pub fn mount(
    src_dir: OwnedFd,
    mountpoint: &Path,
    sink: Arc<dyn ChangeSink>,
    opts: MountOptions,
) -> io::Result<MountHandle> {
    setup::check_can_mount(opts.allow_other).map_err(|e| io::Error::new(e.io_kind(), e))?;
    // Resolved now: once mounted, the path leads into the mount itself.
    let mountpoint = mountpoint.canonicalize()?;
    let underlying = sys::underlying(src_dir.as_fd())?;
    let core = Arc::new(PassthroughFs::new(
        src_dir,
        sink,
        CoreConfig {
            fd_cache: fd_cache_capacity(),
            file_handles: true,
            history_max_file: opts.history_max_file,
        },
    )?);
    let shared = Arc::new(Shared::default());
    let transport = opts.transport.resolve();
    // Without CAP_SYS_ADMIN the kernel refuses every backing file: not even asked for.
    let privileged = setup::privileged();
    let fs = FuseFs::new(
        Arc::clone(&core),
        opts.kernel_passthrough && privileged,
        transport == Transport::Uring,
        !opts.allow_other,
        Arc::clone(&shared),
    );

    let config = session_config(underlying, privileged, &opts);

    // Mounts and completes the INIT handshake before returning.
    let session = Session::new(fs, &mountpoint, &config)?;
    let notifier = session.notifier();
    let named = opts.transport == Transport::Uring;
    let (session, rings) = serve(session, &shared, transport, named)?;

    let (stop, stopped) = mpsc::channel::<()>();
    let ticking = Arc::clone(&core);
    let ticker = std::thread::Builder::new()
        .name("tandem-fuse-writers".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(LONG_WRITER_PERIOD)
            {
                ticking.report_long_writers(LONG_WRITER_PERIOD);
            }
        })?;

    Ok(MountHandle {
        session: Some(session),
        notifier,
        core,
        shared,
        mountpoint,
        ticker: Some((stop, ticker)),
        rings,
    })
}

/// Starts serving: fuser's threads reading /dev/fuse, and the io_uring queues when
/// asked for and the kernel accepted them at INIT. A refusal of io_uring asked for by
/// name (`named`) is a warning; one that `Auto` met, a note.
fn serve(
    session: Session<FuseFs>,
    shared: &Shared,
    transport: Transport,
    named: bool,
) -> io::Result<(BackgroundSession, Option<Rings>)> {
    if transport != Transport::Uring {
        return Ok((session.spawn()?, None));
    }
    if !shared.uring_negotiated.load(Ordering::Relaxed) {
        let enabled = std::fs::read_to_string(ENABLE_URING)
            .map_or_else(|_| "absent".to_string(), |s| s.trim().to_string());
        fell_back(
            named,
            &format!(
                "FUSE over io_uring not offered by the kernel (Linux 6.14+ with \
                 fuse.enable_uring=Y; enable_uring: {enabled})"
            ),
        );
        return Ok((session.spawn()?, None));
    }
    let dev = rustix::io::fcntl_dupfd_cloexec(session.as_fd(), 0)?;
    let (session, dispatcher) = session.spawn_with_dispatcher()?;
    match Rings::start(dev, dispatcher, URING_PAYLOAD) {
        Ok(rings) => Ok((session, Some(rings))),
        Err(e) => {
            fell_back(named, &format!("FUSE over io_uring refused ({e})"));
            Ok((session, None))
        }
    }
}

/// The one log line of a mount served through /dev/fuse where io_uring was wanted.
fn fell_back(named: bool, why: &str) {
    if named {
        tracing::warn!("{why}: serving through /dev/fuse");
    } else {
        tracing::info!("{why}: serving through /dev/fuse");
    }
}

/// The payload buffer of each io_uring entry: the kernel wants room for the largest
/// request (fuser's `max_write`, 16 MiB). Mapped (`fuser::PageBuf`), so the pages no
/// request has used cost nothing.
const URING_PAYLOAD: usize = 16 * 1024 * 1024;

/// fuser's options: the mount allows what the plain folder allows, only the mounting user
/// reaches it unless `allow_other`.
fn session_config(underlying: Underlying, privileged: bool, opts: &MountOptions) -> Config {
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("tandem".into()),
        MountOption::Subtype("tandem".into()),
        MountOption::DefaultPermissions,
    ];
    // The mount allows what the plain folder allows (fuser defaults to nodev, nosuid).
    // fusermount3 mounts nodev, nosuid for a user whatever is asked (and warns).
    if privileged && !underlying.nodev {
        config.mount_options.push(MountOption::Dev);
    }
    if privileged && !underlying.nosuid {
        config.mount_options.push(MountOption::Suid);
    }
    if underlying.noexec {
        config.mount_options.push(MountOption::NoExec);
    }
    if underlying.rdonly {
        config.mount_options.push(MountOption::RO);
    }
    if underlying.noatime {
        config.mount_options.push(MountOption::NoAtime);
    }
    config.acl = if opts.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8)),
        n => n,
    };
    config.n_threads = Some(threads);
    config.clone_fd = sys::CLONE_FD;
    config
}

/// A quarter of the open-file limit for inode fds: the rest is for open files, directory
/// streams, and the rest of tandem (journal, workers, watcher).
fn fd_cache_capacity() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let quarter = limit.map_or(16384, |n| usize::try_from(n / 4).unwrap_or(16384));
    quarter.clamp(16, 16384)
}

impl MountHandle {
    /// Unmounts. When programs still use the mount (open files, working directories), it
    /// is detached lazily instead: it leaves the namespace at once and the request threads
    /// keep serving those programs until the kernel lets go of it.
    pub fn unmount(mut self) -> io::Result<()> {
        self.shutdown()
    }

    /// True when kernel passthrough was negotiated and no backing file has been refused:
    /// reads and writes then bypass the daemon.
    pub fn passthrough_active(&self) -> bool {
        self.shared.passthrough_negotiated.load(Ordering::Relaxed)
            && !self.shared.passthrough_refused.load(Ordering::Relaxed)
    }

    /// True when requests are served over io_uring (`Transport::Uring`, and the kernel
    /// allowed it).
    pub fn uring_active(&self) -> bool {
        self.rings.is_some()
    }

    /// Requests served through io_uring so far (diagnostics).
    #[doc(hidden)]
    pub fn uring_requests(&self) -> u64 {
        self.rings.as_ref().map_or(0, Rings::served)
    }

    /// GETXATTR requests served so far, and whether the kernel leaves the dropping of
    /// set-user-ID and capabilities to the daemon's own writes (diagnostics).
    #[doc(hidden)]
    pub fn xattr_lookups(&self) -> (u64, bool) {
        (
            self.shared.getxattrs.load(Ordering::Relaxed),
            self.shared.killpriv_v2.load(Ordering::Relaxed),
        )
    }

    /// FLUSH requests served so far (diagnostics).
    #[doc(hidden)]
    pub fn flush_requests(&self) -> u64 {
        self.shared.flush_requests.load(Ordering::Relaxed)
    }

    /// LOOKUP requests served so far (diagnostics).
    #[doc(hidden)]
    pub fn lookup_requests(&self) -> u64 {
        self.shared.lookups.load(Ordering::Relaxed)
    }

    /// Inodes known and inode fds open (diagnostics; the second stays bounded).
    #[doc(hidden)]
    pub fn inode_counts(&self) -> (usize, usize) {
        self.core.counts()
    }

    /// Unmounts, then waits for the ring threads (they end when the connection goes and
    /// hold the filesystem too), then for the session, which checks it holds the last
    /// reference to the filesystem before destroying it.
    fn shutdown(&mut self) -> io::Result<()> {
        if let Some((stop, ticker)) = self.ticker.take() {
            let _ = stop.send(());
            drop(ticker.join());
        }
        let rings = self.rings.take();
        let Some(mut session) = self.session.take() else {
            return Ok(());
        };
        if let Err(e) = session.umount() {
            // Busy (or any other refusal): detach lazily; the session and ring threads
            // live on until the last user is gone.
            if let Some(rings) = rings {
                rings.detach();
            }
            return setup::detach(&self.mountpoint).map_err(|_| e);
        }
        if let Some(rings) = rings {
            rings.join();
        }
        session.join()
    }
}

impl Drop for MountHandle {
    fn drop(&mut self) {
        drop(self.shutdown());
    }
}

impl tandem_core::Mount for MountHandle {
    fn invalidate(&self, paths: &[RelPath]) {
        if self.session.is_some() {
            self.invalidator_ref().invalidate(paths);
        }
    }

    fn renamed(&self, from: &RelPath, to: &RelPath) {
        self.core.renamed_underneath(from, to);
    }

    fn flushing(&self) -> bool {
        self.core.flushing()
    }
}

impl MountHandle {
    /// A handle the engine keeps to invalidate the kernel's cache of paths it changed
    /// underneath the mount, from any thread, for as long as the mount lives.
    pub fn invalidator(&self) -> Arc<dyn tandem_core::Mount> {
        Arc::new(self.invalidator_ref())
    }

    fn invalidator_ref(&self) -> Invalidator {
        Invalidator {
            notifier: self.notifier.clone(),
            core: Arc::clone(&self.core),
        }
    }
}

struct Invalidator {
    notifier: Notifier,
    core: Arc<PassthroughFs>,
}

impl tandem_core::Mount for Invalidator {
    /// Best effort: a path the kernel does not know needs nothing, and errors (the mount
    /// going away meanwhile) are ignored. Dropping cached pages may make the kernel write
    /// dirty ones back through the request threads, so this must not be called from one.
    fn invalidate(&self, paths: &[RelPath]) {
        for path in paths {
            // The table lock is not held while notifying: the kernel may need a request
            // thread (and the table) to finish what it is doing with that directory.
            for inval in self.core.invalidations(path) {
                let _ = match inval {
                    Inval::Entry(parent, name) => self
                        .notifier
                        .inval_entry(INodeNo(parent), OsStr::from_bytes(&name)),
                    Inval::Inode(ino) => self.notifier.inval_inode(INodeNo(ino), 0, 0),
                    // The parent directory: its attributes and its cached listing (kept in
                    // its pages, `FOPEN_CACHE_DIR`).
                    Inval::Attr(ino) => self.notifier.inval_inode(INodeNo(ino), 0, 0),
                };
            }
        }
    }

    fn renamed(&self, from: &RelPath, to: &RelPath) {
        self.core.renamed_underneath(from, to);
    }

    fn flushing(&self) -> bool {
        self.core.flushing()
    }
}
