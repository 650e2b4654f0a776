//! Whether a root's file system folds case (Windows, macOS's default APFS, exFAT and FAT
//! everywhere): there `Readme.md` and `README.md` are one name, and a second copy would
//! land on the first. Told once per run with a file of tandem's own in `.tandem/`.

use crate::apply::{ensure_dirs, tmp_name};
use crate::os::fs::{openat, unlinkat, AtFlags, Mode, OFlags};
use crate::root::{stat_at, Root};
use tandem_core::RelPath;

/// Whether the file system of `root` folds case: a file of tandem's own is made in
/// `.tandem/` (the folder made if `create`, else tried only where it is there already: a
/// dry run creates nothing), looked up by its upper-case name, and removed at once. All
/// of it relative to the root's handle, as every other write (never through a path a
/// mount may sit on). When it cannot tell: `false`, and the file system's own refusal is
/// reported, as before.
pub fn folds_case(root: &Root, create: bool) -> bool {
    let rel = RelPath::from_str_lossless(".tandem");
    let there = matches!(root.stat(&rel), Ok(Some(e)) if e.is_dir())
        || (create && ensure_dirs(root, &rel).is_ok());
    if !there {
        return false;
    }
    let flags = crate::sys::O_PATH | OFlags::DIRECTORY;
    let Ok(dir) = root.open_beneath(&rel, flags, Mode::empty()) else {
        return false;
    };
    let name = tmp_name();
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
    if openat(&dir, name.as_str(), flags, Mode::from_raw_mode(0o600)).is_err() {
        return false;
    }
    let upper = name.to_uppercase();
    let folds = matches!(stat_at(&dir, upper.as_bytes(), &rel), Ok(Some(_)));
    let _ = unlinkat(&dir, name.as_str(), AtFlags::empty());
    folds
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::folds_case;

    #[test]
    fn issue_16_probe_leaves_nothing_and_creates_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let root = crate::Root::open(dir.path()).unwrap();
        assert!(!folds_case(&root, false));
        assert!(
            !dir.path().join(".tandem").exists(),
            "a dry probe creates nothing"
        );
        // This crate's tests run on Linux file systems, which keep case.
        let folds = folds_case(&root, true);
        assert_eq!(folds, cfg!(any(windows, target_os = "macos")));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(dir.path().join(".tandem")).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        }
        let left: Vec<_> = std::fs::read_dir(dir.path().join(".tandem"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "the probe is removed: {left:?}");
    }
}
