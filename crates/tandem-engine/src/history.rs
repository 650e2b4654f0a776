//! Undo for the source (issue 18): the versions of a path, wherever tandem kept them, and
//! bringing one back.
//!
//! Two places hold past versions: the source's history (`.tandem/history/`, what a mount
//! kept before a request through it destroyed it, recorded in the state store with who made
//! the request) and each side's trash (what tandem itself set aside: versions overwritten
//! or deleted by a change from the other side, conflict losers). `versions` lists both, in
//! time order, so that one command answers "where did my file go?". `restore` copies one
//! back atomically; what the path holds then is kept first, so restoring never loses the
//! present. `prune` applies the pair's retention to the history, as to the trashes.

use std::collections::HashSet;

use tandem_core::{NotKept, RelPath, Retention, Side, Version};
use tandem_fs::{FsError, Root};
use tandem_state::{StateError, Store};

use crate::time::now_ns;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("{path}: no version kept (tandem history lists what there is)")]
    NoVersions { path: RelPath },
    #[error("{path}: there is no version {n} (versions 1 to {count}; see tandem history)")]
    NoSuchVersion {
        path: RelPath,
        n: usize,
        count: usize,
    },
    #[error("{path}: version {n} was not kept ({why}); nothing to bring back")]
    NotKept {
        path: RelPath,
        n: usize,
        why: &'static str,
    },
    #[error("{path}: unchanged since then; what it holds now is that version")]
    NothingSince { path: RelPath },
    #[error("{path}: is a folder; name one of its files, or a version (--version N) of the list tandem history gives")]
    Folder { path: RelPath },
    #[error("{path} exists: restore it elsewhere, or over it with --force (what it holds is kept first)")]
    Exists { path: RelPath },
}

pub type Result<T> = std::result::Result<T, HistoryError>;

/// Where a past version is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeptAt {
    /// In the source's history, under this name.
    History(String),
    /// In a side's trash, at this path of its root (`.tandem/trash/...`); `target` is the
    /// index of the target among those given (for the target's trash).
    Trash { at: RelPath, target: Option<usize> },
    /// Not kept, and why.
    Not(NotKept),
}

/// Who made the request that destroyed a version (recorded by the mount).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Who {
    pub pid: u32,
    pub uid: u32,
    pub program: Option<String>,
    /// The request: `write`, `unlink`, `rename`, `setattr` (truncate), `open-write`
    /// (truncated on open), `restore`.
    pub op: String,
}

/// One past version of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PastVersion {
    /// Its number in the list `versions` gives (1: the oldest).
    pub n: usize,
    pub path: RelPath,
    /// When it was kept: it is what the path held until then.
    pub time_ns: i64,
    pub size: u64,
    pub side: Side,
    pub kept: KeptAt,
    /// Who destroyed it (versions the mount kept); `None` for tandem's own trash.
    pub who: Option<Who>,
}

/// The versions of `path` (a file, or everything below a folder) that the source's
/// history (`store`) and the trashes of `src` and `targets` hold, oldest first, numbered.
pub fn versions(
    src: &Root,
    targets: &[Root],
    stores: &[Store],
    path: &RelPath,
) -> Result<Vec<PastVersion>> {
    let mut out = Vec::new();
    for store in stores {
        for v in store.versions_of(path)? {
            out.push(PastVersion {
                n: 0,
                path: v.path,
                time_ns: v.time_ns,
                size: v.size,
                side: Side::Source,
                kept: match v.kept {
                    Ok(name) => KeptAt::History(name),
                    Err(why) => KeptAt::Not(why),
                },
                who: Some(Who {
                    pid: v.pid,
                    uid: v.uid,
                    program: v.program,
                    op: v.op,
                }),
            });
        }
    }
    let sides =
        std::iter::once((None, src)).chain(targets.iter().enumerate().map(|(i, t)| (Some(i), t)));
    for (target, root) in sides {
        for t in tandem_fs::trash_versions(root)? {
            if !within(&t.path, path) {
                continue;
            }
            out.push(PastVersion {
                n: 0,
                path: t.path,
                time_ns: t.time_ns,
                size: t.bytes,
                side: if target.is_some() {
                    Side::Target
                } else {
                    Side::Source
                },
                kept: KeptAt::Trash { at: t.at, target },
                who: None,
            });
        }
    }
    out.sort_by(|a, b| (a.time_ns, &a.path).cmp(&(b.time_ns, &b.path)));
    for (i, v) in out.iter_mut().enumerate() {
        v.n = i + 1;
    }
    Ok(out)
}

fn within(p: &RelPath, of: &RelPath) -> bool {
    let (p, of) = (p.as_bytes(), of.as_bytes());
    of.is_empty() || p == of || (p.starts_with(of) && p.get(of.len()) == Some(&b'/'))
}

/// Which version a restore brings back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// The newest kept.
    Newest,
    /// Number N of `versions`.
    Number(usize),
    /// What the path held at this time (nanoseconds since the epoch): the first version
    /// kept after it.
    At(i64),
}

/// Picks from `list` (the versions of `path`) the one `pick` names.
pub fn pick<'a>(list: &'a [PastVersion], path: &RelPath, pick: Pick) -> Result<&'a PastVersion> {
    let own = |v: &&PastVersion| v.path == *path;
    let chosen = match pick {
        Pick::Number(n) => {
            return match list.get(n.wrapping_sub(1)) {
                Some(v) => usable(v),
                None if list.is_empty() => Err(HistoryError::NoVersions { path: path.clone() }),
                None => Err(HistoryError::NoSuchVersion {
                    path: path.clone(),
                    n,
                    count: list.len(),
                }),
            }
        }
        Pick::Newest => {
            if !list.is_empty() && !list.iter().any(|v| v.path == *path) {
                return Err(HistoryError::Folder { path: path.clone() });
            }
            list.iter()
                .filter(own)
                .rev()
                .find(|v| !matches!(v.kept, KeptAt::Not(_)))
        }
        Pick::At(t) => {
            let first = list.iter().filter(own).find(|v| v.time_ns >= t);
            if first.is_none() && list.iter().any(|v| v.path == *path) {
                return Err(HistoryError::NothingSince { path: path.clone() });
            }
            first
        }
    };
    match chosen {
        Some(v) => usable(v),
        None => Err(HistoryError::NoVersions { path: path.clone() }),
    }
}

fn usable(v: &PastVersion) -> Result<&PastVersion> {
    match v.kept {
        KeptAt::Not(why) => Err(HistoryError::NotKept {
            path: v.path.clone(),
            n: v.n,
            why: why.name(),
        }),
        _ => Ok(v),
    }
}

/// Where a restore reads and writes.
pub struct RestoreRoots<'a> {
    /// The source, where the history and the source's trash are read.
    pub src: &'a Root,
    pub targets: &'a [Root],
    /// Where the version is written: the mount (so that it is journaled and replicated,
    /// and what it replaces is kept by the mount), or the source itself when nothing is
    /// mounted.
    pub write: &'a Root,
    /// Nothing is mounted: what `to` holds is kept here first, recorded in this store.
    pub unmounted: Option<&'a Store>,
}

/// Brings version `v` back at `to` (atomically: a temporary name, fsync, rename). What
/// `to` held is kept first (by the mount, or here when nothing is mounted). `replace`:
/// `to` may exist. Returns the size written.
pub fn restore(
    roots: &RestoreRoots<'_>,
    v: &PastVersion,
    to: &RelPath,
    replace: bool,
) -> Result<u64> {
    let (from, from_rel) = match &v.kept {
        KeptAt::History(name) => (roots.src, tandem_fs::history::version_path(name)),
        KeptAt::Trash { at, target: None } => (roots.src, at.clone()),
        KeptAt::Trash {
            at,
            target: Some(i),
        } => (&roots.targets[*i], at.clone()),
        KeptAt::Not(why) => {
            return Err(HistoryError::NotKept {
                path: v.path.clone(),
                n: v.n,
                why: why.name(),
            })
        }
    };
    let present = tandem_fs::history::file_mode(roots.write, to);
    if !replace && roots.write.stat(to)?.is_some() {
        return Err(HistoryError::Exists { path: to.clone() });
    }
    if let (Some(store), Some(_)) = (roots.unmounted, present) {
        keep_present(roots.write, store, to)?;
    }
    let mode = tandem_fs::history::file_mode(from, &from_rel).map_or(0o644, |(_, m)| m);
    Ok(tandem_fs::history::restore_copy(
        from,
        &from_rel,
        roots.write,
        to,
        mode,
    )?)
}

/// Keeps what `to` holds in the source's history before a restore replaces it (no mount
/// to do it), recorded as destroyed by `restore`.
fn keep_present(src: &Root, store: &Store, to: &RelPath) -> Result<()> {
    let now = now_ns();
    let name = tandem_core::version_name(now, "restore", to);
    if let Some(size) = tandem_fs::history::keep_version(src, to, &name)? {
        let v = Version {
            path: to.clone(),
            size,
            kept: Ok(name),
            op: tandem_core::ChangeOp::Merged,
            pid: std::process::id(),
            uid: tandem_fs::os::uid(),
        };
        store.add_version(now, &v, "restore", Some("tandem"))?;
    }
    Ok(())
}

/// What a prune of the history removed and left.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryPruned {
    pub removed: u64,
    pub freed: u64,
    /// Versions recorded whose file was gone (the history folder deleted by hand, a
    /// crash), listed as lost from now on.
    pub lost: u64,
    /// The files removed, for a mount to drop from the kernel's cache.
    pub removed_paths: Vec<RelPath>,
}

/// What `adopt_orphans` found in the history folder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Adopted {
    /// Versions kept with no record (a crash between keeping and recording): recorded
    /// now, as recovered, so that they are listed and pruned like the others.
    pub versions: u64,
    pub bytes: u64,
    /// Temporary copies a crash left half made, removed.
    pub torn: u64,
}

/// The `op` of a version adopted after a crash: who destroyed it is not known.
pub const RECOVERED: &str = "recovered";

/// Records in `store` every version in `src`'s history that no row names: a mount that
/// died between keeping a version and recording it leaves one, which nothing would list
/// or prune. Its time and path come from its name (`tandem_core::parse_version_name`),
/// its size from the file; who destroyed it is not known (`RECOVERED`). `serving`: a mount
/// keeps versions now; one younger than a minute may still be on its way to the store,
/// and temporary copies may be in progress: both are left alone. Else (before the mount
/// serves) a temporary copy is a torn one, and goes.
///
/// Only for the store the mount records versions in (its first pair's): another pair's
/// store would take in versions that are not orphans.
///
/// `others`: the versions the stores of this source's other pairs record (a mount whose
/// first target was another one recorded them there): not orphans either.
pub fn adopt_orphans(
    src: &Root,
    store: &Store,
    others: &HashSet<String>,
    serving: bool,
    now: i64,
) -> Result<Adopted> {
    const GRACE_NS: i64 = 60_000_000_000;
    let files = tandem_fs::history::history_files(src)?;
    if files.is_empty() {
        return Ok(Adopted::default());
    }
    let recorded: HashSet<String> = store
        .all_versions()?
        .into_iter()
        .filter_map(|r| r.kept.ok())
        .collect();
    let mut out = Adopted::default();
    for name in files
        .iter()
        .filter(|n| !recorded.contains(*n) && !others.contains(*n))
    {
        if name.starts_with(".tmp-") {
            if !serving {
                tandem_fs::history::remove_version(src, name)?;
                out.torn += 1;
            }
            continue;
        }
        let Some((time_ns, path)) = tandem_core::parse_version_name(name) else {
            continue;
        };
        if serving && now.saturating_sub(time_ns) < GRACE_NS {
            continue;
        }
        let Some(size) = tandem_fs::history::version_size(src, name)? else {
            continue;
        };
        let v = Version {
            path,
            size,
            kept: Ok(name.clone()),
            op: tandem_core::ChangeOp::Merged,
            pid: 0,
            uid: 0,
        };
        store.add_version(time_ns, &v, RECOVERED, None)?;
        out.versions += 1;
        out.bytes += size;
    }
    Ok(out)
}

/// The history files the stores of `spec`'s source's other pairs under the state home
/// record. One that cannot be read is passed over (logged): its versions may then be
/// adopted twice, listed twice, never lost.
pub fn recorded_by_other_pairs(spec: &crate::SyncSpec) -> HashSet<String> {
    let src = spec.src.to_string_lossy();
    let mut names = HashSet::new();
    for (dir, known) in tandem_state::known_pairs(&tandem_state::state_home()) {
        let Ok(k) = known else { continue };
        let this = dir == spec.state_dir
            || k.pair.tgt == spec.tgt.to_string_lossy()
            || std::fs::canonicalize(&dir).ok() == std::fs::canonicalize(&spec.state_dir).ok();
        if k.pair.src != src || this {
            continue;
        }
        let rows = Store::open_to_list(&dir, &k.pair).and_then(|s| match s {
            Some(s) => s.all_versions(),
            None => Ok(Vec::new()),
        });
        match rows {
            Ok(rows) => names.extend(rows.into_iter().filter_map(|r| r.kept.ok())),
            Err(e) => tracing::warn!(
                "{}: cannot read the versions it records: {e}",
                dir.display()
            ),
        }
    }
    names
}

/// Prunes the source's history (`src`, versions recorded in `store`) to `keep`, as the
/// trashes are: oldest first, never the newest version of a path found on neither side.
/// Records of versions not kept go once older than `keep.keep`; records whose file is gone
/// are listed as lost (and then go with the others not kept).
pub fn prune(
    src: &Root,
    tgt: &dyn crate::side::SideRoot,
    store: &mut Store,
    keep: &Retention,
    now: i64,
) -> Result<HistoryPruned> {
    let rows = store.all_versions()?;
    if rows.is_empty() {
        return Ok(HistoryPruned::default());
    }
    let files: HashSet<String> = tandem_fs::history::history_files(src)?
        .into_iter()
        .collect();
    let mut out = HistoryPruned::default();
    let mut forget = Vec::new();
    let mut lost = Vec::new();
    let mut kept = Vec::new();
    let mut ids = Vec::new();
    let keep_ns = i64::try_from(keep.keep.as_nanos()).unwrap_or(i64::MAX);
    // What the target holds, asked at once (it may be on another machine).
    let mut paths: Vec<RelPath> = rows.iter().map(|r| r.path.clone()).collect();
    paths.sort();
    paths.dedup();
    let on_target: HashSet<RelPath> = paths
        .iter()
        .zip(tgt.holds(&paths))
        .filter(|&(_, held)| held)
        .map(|(p, _)| p.clone())
        .collect();
    for r in &rows {
        match &r.kept {
            Ok(name) if files.contains(name) => {
                kept.push(tandem_core::Kept {
                    path: r.path.clone(),
                    time_ns: r.time_ns,
                    bytes: r.size,
                    elsewhere: false,
                });
                ids.push((r.id, name.clone(), r.size));
            }
            Ok(_) => {
                out.lost += 1;
                lost.push(r.id);
            }
            Err(_) if now.saturating_sub(r.time_ns) > keep_ns => forget.push(r.id),
            Err(_) => {}
        }
    }
    // Only a path's newest version can be its last copy: the sides are looked up for it
    // alone, not for each of its versions, on every pass while the mount serves.
    for i in Retention::newest_of_each_path(&kept) {
        kept[i].elsewhere = present(src, &kept[i].path) || on_target.contains(&kept[i].path);
    }
    for i in keep.to_drop(&kept, now) {
        let (id, name, size) = &ids[i];
        tandem_fs::history::remove_version(src, name)?;
        out.removed_paths
            .push(tandem_fs::history::version_path(name));
        forget.push(*id);
        out.removed += 1;
        out.freed += size;
    }
    store.mark_versions_lost(&lost)?;
    store.drop_versions(&forget)?;
    Ok(out)
}

fn present(root: &Root, path: &RelPath) -> bool {
    // As for the trash: unknown counts as present (the path is then weighed as one with
    // another copy, its versions as older ones).
    !matches!(root.stat(path), Ok(None))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn v(n: usize, path: &str, t: i64, kept: bool) -> PastVersion {
        PastVersion {
            n,
            path: RelPath::from_str_lossless(path),
            time_ns: t,
            size: 1,
            side: Side::Source,
            kept: if kept {
                KeptAt::History(format!("{t}"))
            } else {
                KeptAt::Not(NotKept::TooLarge)
            },
            who: None,
        }
    }

    #[test]
    fn a_restore_picks_the_newest_kept_a_number_or_what_was_there_at_a_time() {
        let a = RelPath::from_str_lossless("d/a");
        let list = [
            v(1, "d/a", 10, true),
            v(2, "d/b", 15, true),
            v(3, "d/a", 20, true),
            v(4, "d/a", 30, false),
        ];
        // The newest kept of this path: not the one too large, not another path's.
        assert_eq!(pick(&list, &a, Pick::Newest).unwrap().n, 3);
        assert_eq!(pick(&list, &a, Pick::Number(2)).unwrap().n, 2);
        assert!(matches!(
            pick(&list, &a, Pick::Number(9)),
            Err(HistoryError::NoSuchVersion { count: 4, .. })
        ));
        assert!(matches!(
            pick(&list, &a, Pick::Number(4)),
            Err(HistoryError::NotKept { n: 4, .. })
        ));
        // At 12 it held what was kept at 20 (the first version kept after 12).
        assert_eq!(pick(&list, &a, Pick::At(12)).unwrap().n, 3);
        assert_eq!(pick(&list, &a, Pick::At(5)).unwrap().n, 1);
        assert!(matches!(
            pick(&list, &a, Pick::At(31)),
            Err(HistoryError::NothingSince { .. })
        ));
        // A folder has no newest version of its own.
        let d = RelPath::from_str_lossless("d");
        assert!(matches!(
            pick(&list, &d, Pick::Newest),
            Err(HistoryError::Folder { .. })
        ));
        assert!(matches!(
            pick(&[], &a, Pick::Newest),
            Err(HistoryError::NoVersions { .. })
        ));
    }
}
