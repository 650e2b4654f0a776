//! Running mounts: a small registry under `$XDG_STATE_HOME/tandem/mounts/`, one file per
//! mount point (pid and paths), so `tandem unmount SRC` finds the process to stop; and
//! detection of FUSE and stale mounts.

use std::path::{Path, PathBuf};

use crate::error::DaemonError;

use super::sys;

/// Whether `p` is a FUSE mount (as the kernel reports its file system type).
pub use super::sys::{is_fuse, serving};

type Result<T> = std::result::Result<T, DaemonError>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountRecord {
    pub pid: u32,
    pub src: PathBuf,
    /// One or more.
    pub targets: Vec<PathBuf>,
    /// The state directory of the first pair: it holds the journal and the live status.
    pub state_dir: PathBuf,
    pub mountpoint: PathBuf,
}

fn registry_dir() -> PathBuf {
    tandem_state::state_home().join("mounts")
}

fn entry_path(mountpoint: &Path) -> PathBuf {
    let h = blake3::hash(&tandem_core::path_bytes(mountpoint));
    registry_dir().join(&h.to_hex()[..16])
}

/// An absolute path whose parent is resolved, the last component kept as written (a stale
/// mount point cannot be resolved).
pub fn absolute(p: &Path) -> Result<PathBuf> {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(DaemonError::io("finding the current folder for", p))?
            .join(p)
    };
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => Ok(std::fs::canonicalize(parent)
            .map_err(DaemonError::io("resolving", parent))?
            .join(name)),
        _ => Ok(abs),
    }
}

fn register(r: &MountRecord) -> Result<()> {
    let dir = registry_dir();
    std::fs::create_dir_all(&dir).map_err(DaemonError::io("creating", &dir))?;
    // pid, source, first target, state, mount point, then the other targets.
    let mut text = format!(
        "{}\n{}\n{}\n{}\n{}\n",
        r.pid,
        r.src.display(),
        r.targets
            .first()
            .map(|t| t.display().to_string())
            .unwrap_or_default(),
        r.state_dir.display(),
        r.mountpoint.display()
    );
    for t in r.targets.iter().skip(1) {
        text.push_str(&format!("{}\n", t.display()));
    }
    let path = entry_path(&r.mountpoint);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(DaemonError::io("writing", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(DaemonError::io("renaming", &tmp))?;
    Ok(())
}

/// How long a mount waits for another one's turn at the registry (each turn only reads and
/// writes a few small files).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The registry's own lock, held while a mount checks the registry and records its claim,
/// so that two `tandem mount` started together cannot both find the mount point free.
/// Released when dropped, or when the process dies.
struct RegistryLock {
    _file: std::fs::File,
}

fn lock_registry() -> Result<RegistryLock> {
    let dir = registry_dir();
    std::fs::create_dir_all(&dir).map_err(DaemonError::io("creating", &dir))?;
    // Its extension keeps it out of `all_alive`'s records.
    let path = dir.join("registry.lock");
    let file = crate::error::open_lock_file(&path)?;
    let start = std::time::Instant::now();
    while !tandem_state::try_lock_file(&file) {
        if start.elapsed() > LOCK_WAIT {
            return Err(DaemonError::Refused(format!(
                "the mount registry's lock {} stayed taken for {LOCK_WAIT:?}; try again",
                path.display()
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Ok(RegistryLock { _file: file })
}

/// The refusal of a mount point that a living tandem mount holds.
pub fn already_mounted(mountpoint: &Path, pid: u32) -> DaemonError {
    DaemonError::Refused(format!(
        "{} is already mounted by tandem (pid {pid})",
        mountpoint.display()
    ))
}

/// A mount point claimed in the registry: its record is written before anything is
/// mounted, and removed when the claim is dropped (on every failure path and after the
/// unmount).
#[must_use = "the claim is given up when dropped"]
pub struct Claim {
    mountpoint: PathBuf,
    pid: u32,
}

/// Claims `r.mountpoint` for process `r.pid`, atomically under the registry's lock: refused
/// when a living tandem holds it (the record of a dead one is taken over), or when `check`
/// refuses (run under the same lock, it sees every other mount's claim: the loop check).
pub fn claim(r: &MountRecord, check: impl FnOnce() -> Result<()>) -> Result<Claim> {
    let _lock = lock_registry()?;
    if let Some(rec) = lookup(&r.mountpoint)? {
        if rec.pid != r.pid && alive(rec.pid) {
            return Err(already_mounted(&r.mountpoint, rec.pid));
        }
    }
    check()?;
    register(r)?;
    Ok(Claim {
        mountpoint: r.mountpoint.clone(),
        pid: r.pid,
    })
}

impl Drop for Claim {
    fn drop(&mut self) {
        // Only its own record (another mount takes it over only once this one died).
        if let Err(e) = unregister_if(&self.mountpoint, self.pid) {
            tracing::warn!("giving up the mount's record: {e}");
        }
    }
}

/// Removes the record at `mountpoint` if it is still the one of process `pid` (a dead
/// mount's, or this process's own), under the registry's lock: a mount that claimed the
/// mount point meanwhile keeps its record.
pub fn unregister_if(mountpoint: &Path, pid: u32) -> Result<()> {
    let _lock = lock_registry()?;
    match lookup(mountpoint)? {
        Some(rec) if rec.pid == pid => unregister(mountpoint),
        _ => Ok(()),
    }
}

fn unregister(mountpoint: &Path) -> Result<()> {
    let path = entry_path(mountpoint);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(DaemonError::io("removing", &path)(e))
        }
        _ => Ok(()),
    }
}

pub fn lookup(mountpoint: &Path) -> Result<Option<MountRecord>> {
    read_record(&entry_path(mountpoint))
}

/// Every registered mount whose process is alive.
pub fn all_alive() -> Vec<MountRecord> {
    let Ok(dir) = std::fs::read_dir(registry_dir()) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_none())
        .filter_map(|e| read_record(&e.path()).ok().flatten())
        .filter(|r| alive(r.pid))
        .collect()
}

fn read_record(path: &Path) -> Result<Option<MountRecord>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DaemonError::io("reading", path)(e)),
    };
    let l: Vec<&str> = text.lines().collect();
    if l.len() < 5 {
        return Ok(None);
    }
    Ok(Some(MountRecord {
        pid: l[0].parse().unwrap_or(0),
        src: l[1].into(),
        targets: std::iter::once(l[2])
            .chain(l[5..].iter().copied())
            .map(PathBuf::from)
            .collect(),
        state_dir: l[3].into(),
        mountpoint: l[4].into(),
    }))
}

/// True while the process runs. A killed process whose threads have not all exited yet is
/// a zombie: dead for our purposes (one of its threads may be stuck in the kernel on the very
/// mount it served, see `clean_stale`).
pub fn alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": the state follows the last ')' (comm may hold anything).
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next()),
            Some('Z' | 'X')
        ),
        Err(_) => false,
    }
}

/// A FUSE mount whose daemon died: its connection is aborted and the mount detached, so
/// the folder is reachable again. Nothing here touches the mount itself before the abort:
/// a daemon killed while a request was in flight can leave the connection open but
/// unanswered (a thread of the dead process stuck in the kernel holds `/dev/fuse`), and any
/// call on the mount, `statfs` included, would block for good.
pub fn clean_stale(p: &Path) -> Result<bool> {
    let Some(dev) = sys::fuse_mount_dev(p) else {
        return Ok(false);
    };
    let rec = lookup(p)?;
    let daemon_dead = match &rec {
        Some(rec) => !alive(rec.pid),
        // Not ours to judge by a pid: a connection the kernel already aborted says so.
        None => sys::connection_aborted(p),
    };
    if !daemon_dead {
        return Ok(false);
    }
    tracing::info!(
        "{} is a stale mount (its process died); detaching it",
        p.display()
    );
    sys::abort_and_detach(dev, p)?;
    if let Some(rec) = &rec {
        wait_exited(rec.pid, EXIT_WAIT);
        unregister_if(p, rec.pid)?;
    }
    Ok(true)
}

/// How long a killed mount's last threads may take to leave once its connection is aborted.
const EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits until every thread of `pid` has exited, up to `limit`. A killed daemon whose
/// thread was stuck on its own mount leaves only when the abort frees that thread; until
/// then it still holds its files, the pair's lock among them, and the mount that replaces
/// it would be refused as "another tandem is already working on this pair" (found by the
/// kill -9 campaign, issue 20).
fn wait_exited(pid: u32, limit: std::time::Duration) {
    let start = std::time::Instant::now();
    while threads_left(pid) > 0 && start.elapsed() < limit {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Threads of `pid` that have not exited: a zombie leader whose other threads are gone
/// counts none (its files are closed), a process gone or reaped likewise.
fn threads_left(pid: u32) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|t| t.ok())
        .filter(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some('Z' | 'X') | None)
        })
        .count()
}

/// Lazily, as root or (through fusermount3) as the user who mounted it.
pub fn detach(p: &Path) -> Result<()> {
    super::backend::backend()
        .detach(p)
        .map_err(DaemonError::io("detaching the mount at", p))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_zombie_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Not reaped yet: a zombie once it has exited.
        let start = std::time::Instant::now();
        while alive(pid) {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "true never exited"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "still a zombie"
        );
        assert_eq!(threads_left(pid), 0, "a zombie has no thread left");
        child.wait().unwrap();
        assert!(alive(std::process::id()));
        assert!(!alive(0));
        assert_eq!(threads_left(pid), 0, "a reaped process has none");
    }

    #[test]
    fn issue_20_a_running_process_has_threads_left() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert_eq!(threads_left(child.id()), 1);
        assert!(threads_left(std::process::id()) >= 1);
        let start = std::time::Instant::now();
        wait_exited(child.id(), std::time::Duration::from_millis(100));
        assert!(
            start.elapsed() >= std::time::Duration::from_millis(100),
            "waited while it ran"
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
