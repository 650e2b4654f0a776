//! Whether a root's file system folds case (Windows, macOS's default APFS, exFAT and FAT
//! everywhere): there `Readme.md` and `README.md` are one name, and a second copy would
//! land on the first. Told once per run with a file of tandem's own in `.tandem/`.

use std::path::Path;

/// Whether the file system of the root at `root` folds case: a probe file of tandem's own
/// is created in `.tandem/` (made if `create`, else only where it is a folder already)
/// and looked up by its case-flipped name, then removed. When it cannot tell: `false`
/// (then the file system's own refusal is reported, as before).
pub fn folds_case(root: &Path, create: bool) -> bool {
    let dir = root.join(".tandem");
    let is_dir = |d: &Path| std::fs::symlink_metadata(d).is_ok_and(|m| m.is_dir());
    let there = is_dir(&dir) || (create && make_dir(&dir) && is_dir(&dir));
    if !there {
        return false;
    }
    let name = format!("case-probe-{}", std::process::id());
    let probe = dir.join(&name);
    let made = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe);
    if made.is_err() {
        return false;
    }
    let folds = std::fs::symlink_metadata(dir.join(name.to_uppercase())).is_ok();
    let _ = std::fs::remove_file(&probe);
    folds
}

/// `.tandem/`, private to its owner as `marker` makes it.
fn make_dir(dir: &Path) -> bool {
    let builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    let builder = {
        let mut b = builder;
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b
    };
    builder.create(dir).is_ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::folds_case;

    #[test]
    fn issue_16_probe_leaves_nothing_and_creates_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!folds_case(dir.path(), false));
        assert!(
            !dir.path().join(".tandem").exists(),
            "a dry probe creates nothing"
        );
        // This crate's tests run on Linux file systems, which keep case.
        let folds = folds_case(dir.path(), true);
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
