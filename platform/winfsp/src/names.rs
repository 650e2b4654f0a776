//! The platform-neutral half of the WinFsp backend: what WinFsp's requests mean in
//! tandem's words (paths, the changes each request reports, attributes, where to mount).
//! Pure functions, compiled and tested everywhere; `fs` (Windows) calls them.

use tandem_core::change::ChangeOp;
use tandem_core::path::RelPath;

/// Access rights that let a handle change a file's content (`FILE_WRITE_DATA`,
/// `FILE_APPEND_DATA`): an open with one of them is reported as `OpenWrite`, and its
/// cleanup as `CloseWrite`, as FUSE reports an open for writing and its release.
pub const CONTENT_WRITE_ACCESS: u32 = 0x0002 | 0x0004;

/// `FspCleanupDelete`: the file's last handle closed with its delete flag set.
pub const CLEANUP_DELETE: u32 = 0x01;

/// `FILE_ATTRIBUTE_DIRECTORY`, `FILE_ATTRIBUTE_NORMAL` and `INVALID_FILE_ATTRIBUTES`.
pub const ATTR_DIRECTORY: u32 = 0x10;
pub const ATTR_NORMAL: u32 = 0x80;
pub const ATTR_UNCHANGED: u32 = u32::MAX;

/// A name WinFsp handed over that is not a path below the source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a path below the source: {0}")]
pub struct BadName(pub String);

/// The path below the source of a WinFsp file name (`\dir\file`, UTF-16, the volume's
/// root being `\`). Names that are not UTF-16 text, or that hold a `/`, an empty, `.` or
/// `..` component, are refused: the source is reached by path only below its root
/// (invariant 6).
pub fn rel_path(name: &[u16]) -> Result<RelPath, BadName> {
    let text = String::from_utf16(name).map_err(|_| BadName(String::from_utf16_lossy(name)))?;
    let inner = text.strip_prefix('\\').unwrap_or(&text);
    if inner.is_empty() {
        return Ok(RelPath::root());
    }
    if inner.contains('/') {
        return Err(BadName(text));
    }
    RelPath::new(inner.replace('\\', "/").into_bytes()).map_err(|_| BadName(text.clone()))
}

/// The name below the source handle for `path`, in the form `NtCreateFile` takes relative
/// to a directory handle (`dir\file`; empty for the root itself).
pub fn nt_relative(path: &RelPath) -> Vec<u16> {
    String::from_utf8_lossy(path.as_bytes())
        .replace('/', "\\")
        .encode_utf16()
        .collect()
}

/// What an open reports: `OpenWrite` when the handle may change the file's content.
pub fn on_open(granted_access: u32) -> Option<ChangeOp> {
    (granted_access & CONTENT_WRITE_ACCESS != 0).then_some(ChangeOp::OpenWrite)
}

/// What a create reports, in order: a folder is `Mkdir`; a file is `Create`, then
/// `OpenWrite` when its handle may write (FUSE's create is an open too).
pub fn on_create(is_dir: bool, granted_access: u32) -> Vec<ChangeOp> {
    if is_dir {
        return vec![ChangeOp::Mkdir];
    }
    let mut ops = vec![ChangeOp::Create];
    ops.extend(on_open(granted_access));
    ops
}

/// What a cleanup (the last handle of an open closed) reports: a delete asked for through
/// the delete flag is `Unlink` or `Rmdir`; otherwise a handle that could write reports
/// `CloseWrite` (its content is settled: the volume flushes the cache at cleanup).
pub fn on_cleanup(flags: u32, is_dir: bool, opened_for_write: bool) -> Option<ChangeOp> {
    if flags & CLEANUP_DELETE != 0 {
        Some(if is_dir {
            ChangeOp::Rmdir
        } else {
            ChangeOp::Unlink
        })
    } else {
        (opened_for_write && !is_dir).then_some(ChangeOp::CloseWrite)
    }
}

/// The attributes a new file or folder is created with: `FILE_ATTRIBUTE_NORMAL` is "no
/// attribute" and may not be combined with others; the directory bit follows what is made.
pub fn create_attributes(requested: u32, is_dir: bool) -> u32 {
    let attrs = requested & !(ATTR_NORMAL | ATTR_DIRECTORY);
    match (is_dir, attrs) {
        (true, a) => a | ATTR_DIRECTORY,
        (false, 0) => ATTR_NORMAL,
        (false, a) => a,
    }
}

/// What `SetBasicInfo` changes: attributes (`INVALID_FILE_ATTRIBUTES`: unchanged, `0`:
/// clear them all) and times (`0`: unchanged). `None`: nothing, so nothing to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BasicInfo {
    pub attributes: Option<u32>,
    pub creation: u64,
    pub last_access: u64,
    pub last_write: u64,
    pub change: u64,
}

pub fn basic_info(
    attributes: u32,
    is_dir: bool,
    creation: u64,
    last_access: u64,
    last_write: u64,
    change: u64,
) -> Option<BasicInfo> {
    let attributes = (attributes != ATTR_UNCHANGED).then(|| {
        let a = attributes & !(ATTR_NORMAL | ATTR_DIRECTORY);
        if is_dir {
            a | ATTR_DIRECTORY
        } else if a == 0 {
            ATTR_NORMAL
        } else {
            a
        }
    });
    let info = BasicInfo {
        attributes,
        creation,
        last_access,
        last_write,
        change,
    };
    (attributes.is_some() || creation | last_access | last_write | change != 0).then_some(info)
}

/// Where a mount is served: a drive letter (`X:`, given as `X:` or `X:\`) or a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountAt {
    Drive(char),
    Folder(String),
}

impl MountAt {
    /// From the path `--at` gave (made absolute: a folder may come with Windows' `\\?\`
    /// prefix, which WinFsp's mount point does not take).
    pub fn of(mountpoint: &str) -> MountAt {
        let mountpoint = mountpoint.strip_prefix("\\\\?\\").unwrap_or(mountpoint);
        let b = mountpoint.as_bytes();
        let drive = b.first().filter(|c| c.is_ascii_alphabetic());
        match (drive, &b[1.min(b.len())..]) {
            (Some(&c), b":" | b":\\" | b":/") => MountAt::Drive(char::from(c).to_ascii_uppercase()),
            _ => MountAt::Folder(mountpoint.to_string()),
        }
    }

    /// The form WinFsp's `FspFileSystemSetMountPoint` takes: `X:`, or the folder's path.
    pub fn winfsp_name(&self) -> String {
        match self {
            MountAt::Drive(c) => format!("{c}:"),
            MountAt::Folder(f) => f.clone(),
        }
    }
}

/// The paths of open files after `from` was renamed to `to` (through the mount, or
/// underneath it by a reverse merge): the file itself and everything below it follow.
pub fn renamed(path: &RelPath, from: &RelPath, to: &RelPath) -> Option<RelPath> {
    path.rebase(from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    fn p(s: &str) -> RelPath {
        RelPath::from_str_lossless(s)
    }

    #[test]
    fn issue_16_winfsp_names_become_paths_below_the_source() {
        assert_eq!(rel_path(&w("\\")), Ok(RelPath::root()));
        assert_eq!(rel_path(&w("")), Ok(RelPath::root()));
        assert_eq!(rel_path(&w("\\a.txt")), Ok(p("a.txt")));
        assert_eq!(rel_path(&w("\\d\\é f\\g")), Ok(p("d/é f/g")));
        assert_eq!(nt_relative(&p("d/é f/g")), w("d\\é f\\g"));
        assert!(nt_relative(&RelPath::root()).is_empty());
    }

    #[test]
    fn issue_16_names_reaching_out_of_the_source_are_refused() {
        for bad in [
            "\\..\\x",
            "\\d\\..\\..\\x",
            "\\.\\x",
            "\\d\\\\x",
            "\\a/b",
            "\\d\\",
        ] {
            assert!(rel_path(&w(bad)).is_err(), "{bad} was accepted");
        }
        // An unpaired surrogate is not text.
        assert!(rel_path(&[u16::from(b'\\'), 0xD800]).is_err());
    }

    #[test]
    fn issue_16_requests_report_what_fuse_reports() {
        let read = 0x0001 | 0x0080; // FILE_READ_DATA | FILE_READ_ATTRIBUTES
        let write = 0x0002;
        let append = 0x0004;
        assert_eq!(on_open(read), None);
        assert_eq!(on_open(write), Some(ChangeOp::OpenWrite));
        assert_eq!(on_open(append | read), Some(ChangeOp::OpenWrite));
        assert_eq!(
            on_create(false, write),
            vec![ChangeOp::Create, ChangeOp::OpenWrite]
        );
        assert_eq!(on_create(false, read), vec![ChangeOp::Create]);
        assert_eq!(on_create(true, write), vec![ChangeOp::Mkdir]);
        assert_eq!(
            on_cleanup(CLEANUP_DELETE, false, true),
            Some(ChangeOp::Unlink)
        );
        assert_eq!(
            on_cleanup(CLEANUP_DELETE, true, false),
            Some(ChangeOp::Rmdir)
        );
        assert_eq!(on_cleanup(0, false, true), Some(ChangeOp::CloseWrite));
        assert_eq!(on_cleanup(0x40, false, false), None);
        assert_eq!(on_cleanup(0, true, true), None);
    }

    #[test]
    fn issue_16_attributes_follow_what_is_made() {
        let readonly = 0x01;
        let hidden = 0x02;
        assert_eq!(create_attributes(ATTR_NORMAL, false), ATTR_NORMAL);
        assert_eq!(create_attributes(0, false), ATTR_NORMAL);
        assert_eq!(create_attributes(readonly | ATTR_NORMAL, false), readonly);
        assert_eq!(create_attributes(ATTR_DIRECTORY | hidden, false), hidden);
        assert_eq!(create_attributes(0, true), ATTR_DIRECTORY);
        assert_eq!(create_attributes(hidden, true), hidden | ATTR_DIRECTORY);
    }

    #[test]
    fn issue_16_set_basic_info_reports_only_a_change() {
        assert_eq!(basic_info(ATTR_UNCHANGED, false, 0, 0, 0, 0), None);
        let cleared = basic_info(0, false, 0, 0, 0, 0).map(|b| b.attributes);
        assert_eq!(cleared, Some(Some(ATTR_NORMAL)));
        let hidden_dir = basic_info(0x02, true, 0, 0, 0, 0).map(|b| b.attributes);
        assert_eq!(hidden_dir, Some(Some(0x02 | ATTR_DIRECTORY)));
        let touched = basic_info(ATTR_UNCHANGED, false, 0, 0, 42, 0);
        assert_eq!(
            touched.map(|b| (b.attributes, b.last_write)),
            Some((None, 42))
        );
    }

    #[test]
    fn issue_16_mount_points_are_drives_or_folders() {
        assert_eq!(MountAt::of("x:"), MountAt::Drive('X'));
        assert_eq!(MountAt::of("X:\\"), MountAt::Drive('X'));
        assert_eq!(MountAt::of("X:\\").winfsp_name(), "X:");
        let folder = "C:\\Users\\me\\mnt";
        assert_eq!(MountAt::of(folder), MountAt::Folder(folder.into()));
        assert_eq!(MountAt::of(folder).winfsp_name(), folder);
        assert_eq!(MountAt::of(""), MountAt::Folder(String::new()));
        assert_eq!(MountAt::of("\\\\?\\Y:\\"), MountAt::Drive('Y'));
        let verbatim = MountAt::of("\\\\?\\C:\\mnt");
        assert_eq!(verbatim, MountAt::Folder("C:\\mnt".into()));
    }

    #[test]
    fn issue_16_open_files_follow_a_rename() {
        let (from, to) = (p("d"), p("e/f"));
        assert_eq!(renamed(&p("d"), &from, &to), Some(p("e/f")));
        assert_eq!(renamed(&p("d/x/y"), &from, &to), Some(p("e/f/x/y")));
        assert_eq!(renamed(&p("dd"), &from, &to), None);
    }
}
