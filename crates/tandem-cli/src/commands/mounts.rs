//! Running mounts: a small registry under `$XDG_STATE_HOME/tandem/mounts/`, one file per
//! mount point (pid and paths), so `tandem unmount SRC` finds the process to stop; and
//! detection of FUSE and stale mounts.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A FUSE file system's `statfs` type.
const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;

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
    use std::os::unix::ffi::OsStrExt;
    let h = blake3::hash(mountpoint.as_os_str().as_bytes());
    registry_dir().join(&h.to_hex()[..16])
}

/// An absolute path whose parent is resolved, the last component kept as written (a stale
/// mount point cannot be resolved).
pub fn absolute(p: &Path) -> Result<PathBuf> {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    };
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => Ok(std::fs::canonicalize(parent)
            .with_context(|| format!("resolving {}", parent.display()))?
            .join(name)),
        _ => Ok(abs),
    }
}

pub fn register(r: &MountRecord) -> Result<()> {
    let dir = registry_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
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
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

pub fn unregister(mountpoint: &Path) -> Result<()> {
    match std::fs::remove_file(entry_path(mountpoint)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
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
        Err(e) => return Err(e.into()),
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

pub fn alive(pid: u32) -> bool {
    pid != 0 && Path::new(&format!("/proc/{pid}")).exists()
}

pub fn is_fuse(p: &Path) -> bool {
    rustix::fs::statfs(p).is_ok_and(|s| s.f_type == FUSE_SUPER_MAGIC)
}

/// A FUSE mount whose daemon died answers ENOTCONN: detach it so the folder is reachable.
pub fn clean_stale(p: &Path) -> Result<bool> {
    match rustix::fs::statfs(p) {
        Err(rustix::io::Errno::NOTCONN) => {
            eprintln!(
                "tandem: {} is a stale mount (its process died); detaching it",
                p.display()
            );
            detach(p)?;
            if let Some(rec) = lookup(p)? {
                if !alive(rec.pid) {
                    unregister(p)?;
                }
            }
            Ok(true)
        }
        _ => Ok(false),
    }
}

pub fn detach(p: &Path) -> Result<()> {
    rustix::mount::unmount(p, rustix::mount::UnmountFlags::DETACH)
        .with_context(|| format!("detaching the mount at {}", p.display()))
}
