//! What mounting needs from the machine, checked before trying, so that a refusal names
//! what is missing instead of a bare "Permission denied"; and unmounting for a user who
//! may not call umount2(2).
//!
//! A process with CAP_SYS_ADMIN (root) mounts with mount(2) itself. Anyone else mounts
//! through `fusermount3`, the set-user-ID helper of the package fuse3 (fuser falls back to
//! it when mount(2) is refused), which opens `/dev/fuse` with the user's own rights, allows
//! the `allow_other` option only when /etc/fuse.conf says `user_allow_other`, and is the
//! only way for that user to unmount again (`fusermount3 -u`).

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use rustix::fs::Access;
use rustix::io::Errno;
use rustix::thread::CapabilitySet;

/// The FUSE device every mount is served through.
pub const FUSE_DEVICE: &str = "/dev/fuse";
/// Where fusermount3 reads `user_allow_other`.
const FUSE_CONF: &str = "/etc/fuse.conf";
/// Where fusermount3 is looked for after `PATH` (fuser looks in the same places).
const HELPER_DIRS: [&str; 4] = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"];

/// Something the machine lacks for mounting, said so that the user knows what to install
/// or ask for.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "{} is missing: mounting needs the FUSE kernel module (as root: `modprobe fuse`) \
         and, for a user other than root, the package fuse3; in a container, pass the \
         device in (`--device /dev/fuse`)",
        dev.display()
    )]
    NoDevice { dev: PathBuf },
    #[error(
        "{} is not readable and writable by this user (uid {uid}): it is mode {mode:04o}, \
         owner {owner}, group {group}, and mounting needs read and write access to it. \
         {remedy}",
        dev.display()
    )]
    DeviceDenied {
        dev: PathBuf,
        uid: u32,
        mode: u32,
        owner: String,
        group: String,
        remedy: String,
    },
    #[error("{}: {source}", dev.display())]
    Device { dev: PathBuf, source: io::Error },
    #[error(
        "mounting as a user other than root needs fusermount3, from the package fuse3: \
         install it (`apt install fuse3`), or mount as root"
    )]
    NoHelper,
    #[error(
        "{} is not set-user-ID root, so it cannot mount for a user other than root: \
         reinstall the package fuse3 (it installs it mode 4755, owner root)",
        helper.display()
    )]
    HelperNotSetuid { helper: PathBuf },
    #[error(
        "the allow_other option, for a user other than root, needs a line \
         `user_allow_other` in {FUSE_CONF} (an administrator adds it); or mount without it"
    )]
    AllowOtherNotPermitted,
}

impl SetupError {
    /// How a mount refused for this reason fails.
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            SetupError::NoDevice { .. } | SetupError::NoHelper => io::ErrorKind::NotFound,
            _ => io::ErrorKind::PermissionDenied,
        }
    }
}

/// Checks that this process can mount a FUSE file system (with `allow_other` if asked).
pub fn check_can_mount(allow_other: bool) -> Result<(), SetupError> {
    check_device(Path::new(FUSE_DEVICE))?;
    if privileged() {
        return Ok(());
    }
    let helper = find_helper(&search_dirs()).ok_or(SetupError::NoHelper)?;
    check_helper(&helper)?;
    // fusermount3 asks for `user_allow_other` of every user but uid 0.
    if allow_other && !rustix::process::getuid().is_root() {
        let conf = std::fs::read_to_string(FUSE_CONF).unwrap_or_default();
        if !user_allow_other(&conf) {
            return Err(SetupError::AllowOtherNotPermitted);
        }
    }
    Ok(())
}

/// True when this process may mount with mount(2) and back files by kernel passthrough:
/// both need CAP_SYS_ADMIN.
pub fn privileged() -> bool {
    rustix::thread::capabilities(None)
        .is_ok_and(|caps| caps.effective.contains(CapabilitySet::SYS_ADMIN))
}

/// The device must open for reading and writing with this user's rights (fusermount3
/// opens it with them too).
fn check_device(dev: &Path) -> Result<(), SetupError> {
    match rustix::fs::access(dev, Access::READ_OK | Access::WRITE_OK) {
        Ok(()) => Ok(()),
        Err(Errno::NOENT) => Err(SetupError::NoDevice { dev: dev.into() }),
        Err(Errno::ACCESS | Errno::PERM) => {
            let md = std::fs::metadata(dev).map_err(|source| SetupError::Device {
                dev: dev.into(),
                source,
            })?;
            Err(device_denied(
                dev,
                rustix::process::getuid().as_raw(),
                md.mode() & 0o7777,
                name_of("/etc/passwd", md.uid()),
                (md.gid(), name_of("/etc/group", md.gid())),
            ))
        }
        Err(e) => Err(SetupError::Device {
            dev: dev.into(),
            source: e.into(),
        }),
    }
}

/// The refusal to open `dev`, with what would fix it: joining the device's group when
/// that group may read and write it, else the mode every Debian system gives it.
fn device_denied(
    dev: &Path,
    uid: u32,
    mode: u32,
    owner: String,
    (gid, group): (u32, String),
) -> SetupError {
    let remedy = if gid != 0 && mode & 0o060 == 0o060 {
        format!(
            "Join its group (as root: `usermod -aG {group} USER`, then log in again), or \
             have it made mode 0666 as on Debian."
        )
    } else {
        format!(
            "On Debian it is mode 0666 (set by udev), which lets every user mount through \
             fusermount3 (package fuse3): as root, `chmod 0666 {}`, and to keep it across \
             reboots, a udev rule `KERNEL==\"fuse\", MODE=\"0666\"`.",
            dev.display()
        )
    };
    SetupError::DeviceDenied {
        dev: dev.into(),
        uid,
        mode,
        owner,
        group,
        remedy,
    }
}

/// The name of `id` in a passwd or group file, or the number itself.
fn name_of(file: &str, id: u32) -> String {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .find_map(|line| {
            let mut f = line.split(':');
            let name = f.next()?;
            (f.nth(1)?.parse::<u32>().ok()? == id).then(|| name.to_string())
        })
        .unwrap_or_else(|| id.to_string())
}

/// `user_allow_other` on a line of its own (fusermount3 ignores leading and trailing
/// blanks; `#` starts a comment).
fn user_allow_other(conf: &str) -> bool {
    conf.lines().any(|l| l.trim() == "user_allow_other")
}

fn search_dirs() -> Vec<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(HELPER_DIRS.iter().map(PathBuf::from))
        .collect()
}

/// fusermount3, or failing that the fuse 2 `fusermount`, as fuser picks them.
fn find_helper(dirs: &[PathBuf]) -> Option<PathBuf> {
    ["fusermount3", "fusermount"].iter().find_map(|name| {
        dirs.iter()
            .map(|d| d.join(name))
            .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
    })
}

fn check_helper(helper: &Path) -> Result<(), SetupError> {
    let setuid_root = std::fs::metadata(helper)
        .is_ok_and(|m| m.uid() == 0 && m.permissions().mode() & 0o4000 != 0);
    if setuid_root {
        Ok(())
    } else {
        Err(SetupError::HelperNotSetuid {
            helper: helper.into(),
        })
    }
}

/// Detaches the mount at `path` now (it goes away once its last user does): umount2(2)
/// with MNT_DETACH, or for a user who may not, `fusermount3 -u -z`, which unmounts only
/// that user's own FUSE mounts.
pub fn detach(path: &Path) -> io::Result<()> {
    match rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) => Ok(()),
        Err(Errno::PERM) => {
            let helper = find_helper(&search_dirs())
                .ok_or_else(|| io::Error::other(SetupError::NoHelper))?;
            let out = Command::new(&helper)
                .args(["-u", "-z", "-q", "--"])
                .arg(path)
                .output()?;
            if out.status.success() {
                Ok(())
            } else {
                Err(io::Error::other(format!(
                    "{} -u -z: {}",
                    helper.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )))
            }
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn issue_20_a_device_closed_to_others_says_the_mode_debian_gives_it() {
        let e = device_denied(
            Path::new("/dev/fuse"),
            65534,
            0o600,
            "root".into(),
            (0, "root".into()),
        );
        let msg = e.to_string();
        assert!(msg.contains("/dev/fuse is not readable and writable by this user (uid 65534)"));
        assert!(msg.contains("mode 0600, owner root, group root"), "{msg}");
        assert!(msg.contains("chmod 0666 /dev/fuse"), "{msg}");
        assert!(msg.contains("fuse3"), "{msg}");
        assert!(!msg.contains("usermod"), "no group to join: {msg}");
    }

    #[test]
    fn issue_20_a_device_open_to_its_group_says_which_group_to_join() {
        let msg = device_denied(
            Path::new("/dev/fuse"),
            1000,
            0o660,
            "root".into(),
            (121, "fuse".into()),
        )
        .to_string();
        assert!(msg.contains("usermod -aG fuse USER"), "{msg}");
        assert!(msg.contains("group fuse"), "{msg}");
    }

    #[test]
    fn issue_20_a_missing_device_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let dev = tmp.path().join("fuse");
        let msg = check_device(&dev).unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!("{} is missing", dev.display())),
            "{msg}"
        );
        assert!(msg.contains("modprobe fuse"), "{msg}");
    }

    #[test]
    fn user_allow_other_must_be_a_line_of_its_own() {
        assert!(!user_allow_other(""));
        assert!(!user_allow_other("#user_allow_other\n# mount_max = 1000\n"));
        assert!(user_allow_other("# comment\n  user_allow_other \n"));
        assert!(!user_allow_other("user_allow_other_not\n"));
    }

    #[test]
    fn issue_20_the_helper_is_found_and_must_be_setuid_root() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = vec![tmp.path().join("none"), tmp.path().to_path_buf()];
        assert_eq!(find_helper(&dirs), None);
        assert_eq!(
            SetupError::NoHelper.to_string(),
            "mounting as a user other than root needs fusermount3, from the package fuse3: \
             install it (`apt install fuse3`), or mount as root"
        );
        let helper = tmp.path().join("fusermount3");
        std::fs::write(&helper, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_helper(&dirs), Some(helper.clone()));
        let msg = check_helper(&helper).unwrap_err().to_string();
        assert!(msg.contains("is not set-user-ID root"), "{msg}");
    }

    #[test]
    fn names_come_from_the_files_or_stay_numbers() {
        assert_eq!(name_of("/etc/passwd", 0), "root");
        assert_eq!(name_of("/etc/group", 4_000_000_000), "4000000000");
    }
}
