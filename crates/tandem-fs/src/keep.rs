//! What a side is given beyond content and times: permission bits without the setuid and
//! setgid bits unless they may travel, and (`--owner`) the other side's owner.
//!
//! Owners are set before permission bits: a `chown` clears the setuid and setgid bits.

use crate::os::AsFd;

use crate::os::io::Errno;
use tandem_core::{Owner, RelPath};

use crate::error::{FsError, Result};
use crate::root::Root;
use crate::xattrs::{At, AttrsFrom, Xattrs};

/// Gives the object behind `fd` (any fd, `O_PATH` ones included, symlinks too) the owner
/// `owner`, read on the other side, when `root` keeps owners. A refusal (EPERM: not running
/// as root, or a file system without owners; EINVAL: an id this system cannot hold) is not
/// an error: the entry read back afterwards shows what was kept, and the engine reports
/// the files whose owner was not kept once per run.
pub(crate) fn give_owner(
    root: &Root,
    fd: &impl AsFd,
    owner: Option<Owner>,
    rel: &RelPath,
) -> Result<()> {
    let keep = root.keep();
    let Some(owner) = owner.filter(|_| keep.owner) else {
        return Ok(());
    };
    let o = keep.ids().to_receiver(owner);
    match crate::sys::chown_object(fd.as_fd(), o.uid, o.gid) {
        Ok(()) | Err(Errno::PERM | Errno::INVAL) => Ok(()),
        Err(e) => Err(FsError::io(rel, "chown", e)),
    }
}

/// Gives the file or folder behind `fd` (an `O_PATH` fd too) the permission bits `mode`,
/// read on the other side, less the setuid and setgid bits unless `root` lets them travel
/// (`Keep::setid`: `--owner` as root).
pub(crate) fn give_mode(root: &Root, fd: &impl AsFd, mode: u32, rel: &RelPath) -> Result<()> {
    let mode = root.keep().travelling_mode(mode);
    crate::sys::chmod_object(fd.as_fd(), mode).map_err(|e| FsError::io(rel, "chmod", e))
}

/// Gives `to_at` (on `root`) the extended attributes `root` keeps that `from_at` (on the
/// other side) has, and removes the kept ones it lacks. A source gone meanwhile gives
/// nothing: the step is re-planned by its own re-checks. Returns what `to_at` holds when
/// nothing had to change there (see [`At::write`]), for [`Root::with_known_xattrs`].
pub(crate) fn give_xattrs(
    root: &Root,
    from_at: &At,
    to_at: &At,
    src_rel: &RelPath,
    dst_rel: &RelPath,
) -> Result<Option<Xattrs>> {
    let keep = root.keep();
    if !keep.reads_xattrs() {
        return Ok(None);
    }
    let want = from_at
        .read(&keep)
        .map_err(|e| FsError::io(src_rel, "read extended attributes", e))?;
    to_at.write(root, &want, dst_rel)
}

/// [`give_xattrs`] for the entry at `rel`, from the other side's root or from the list read
/// on the other machine.
pub(crate) fn give_xattrs_from(
    root: &Root,
    from: AttrsFrom<'_>,
    to_at: &At,
    rel: &RelPath,
) -> Result<Option<Xattrs>> {
    match from {
        AttrsFrom::Root(other) => {
            let (sdir, sname) = other.parent(rel)?;
            give_xattrs(root, &At::child(&sdir, &sname), to_at, rel, rel)
        }
        AttrsFrom::Given(want) if root.keep().reads_xattrs() => to_at.write(root, want, rel),
        AttrsFrom::Given(_) => Ok(None),
    }
}
