//! Which folders a pair may use, decided before anything is opened for writing.
//!
//! Each root must be an existing folder, except a target that a first sync creates (its
//! parent existing, as rsync does); the source, the target and the state directory must
//! be apart. Sameness and nesting are decided on file identity (DESIGN.md invariant 10,
//! `tandem_fs::identity`), never on path strings: a symlink or a bind mount gives a
//! folder a second name, and a target that is the source under another name would nest
//! the source into itself.

use std::io;
use std::path::{Path, PathBuf};

use tandem_fs::{Lineage, Placement};

#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("the {side} folder {} cannot be used: {source}", path.display())]
    Unusable {
        side: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("the {side} {} is not a folder", path.display())]
    NotAFolder { side: &'static str, path: PathBuf },
    #[error("the source and the target are the same folder ({}{})", src.display(), other_name(src, tgt))]
    Same { src: PathBuf, tgt: PathBuf },
    #[error("the {inner_side} {} is inside the {outer_side} {}{}; choose folders that do not contain each other", inner.display(), outer.display(), through(inner, outer))]
    Nested {
        inner_side: &'static str,
        inner: PathBuf,
        outer_side: &'static str,
        outer: PathBuf,
    },
    #[error("the state directory {} is inside the {side} folder {}; put it elsewhere (--state-dir)", state.display(), root.display())]
    StateInside {
        state: PathBuf,
        side: &'static str,
        root: PathBuf,
    },
    #[error("the target {} is given twice{}", a.display(), other_name(a, b))]
    TargetTwice { a: PathBuf, b: PathBuf },
    #[error("the targets {} and {} contain one another; choose folders apart", a.display(), b.display())]
    TargetsNested { a: PathBuf, b: PathBuf },
    #[error("the target folder {} does not exist, but this pair was synced before (an unmounted disk?); nothing was changed. Mount it again, or create the folder yourself if it is to be filled again", path.display())]
    TargetGone { path: PathBuf },
    #[error("the target folder {} does not exist; a sync without --dry-run creates it and copies everything into it", path.display())]
    TargetToCreate { path: PathBuf },
    #[error("cannot create the target folder {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
}

fn other_name(a: &Path, b: &Path) -> String {
    if a == b {
        String::new()
    } else {
        format!(", also reached as {}", b.display())
    }
}

fn through(inner: &Path, outer: &Path) -> &'static str {
    if inner.starts_with(outer) {
        ""
    } else {
        " (reached through a link or a bind mount)"
    }
}

/// The two roots of a pair, as canonical paths.
#[derive(Clone, Debug)]
pub struct PairRoots {
    pub src: PathBuf,
    pub tgt: PathBuf,
    /// The target does not exist yet; its parent does. A first sync creates it.
    pub tgt_missing: bool,
}

/// Checks and resolves the roots of a pair. With `may_create_target`, a missing target
/// whose parent folder exists is accepted (`PairRoots::tgt_missing`); the engine creates it
/// on a first sync and refuses it otherwise.
pub fn check_pair(src: &Path, tgt: &Path, may_create_target: bool) -> Result<PairRoots, RootError> {
    let src = canonical_dir(src, "source")?;
    let (tgt, tgt_missing) = match canonical_dir(tgt, "target") {
        Ok(t) => (t, false),
        Err(e) => match missing_with_parent(tgt).filter(|_| may_create_target) {
            Some(t) => (t, true),
            None => return Err(e),
        },
    };
    // A target still to be made is placed by its parent: the same as the source or below
    // it, the target would be below the source.
    let probe = if tgt_missing {
        tgt.parent().unwrap_or(&tgt)
    } else {
        &tgt
    };
    let placed = tandem_fs::placement(probe, &src).map_err(|source| RootError::Unusable {
        side: "target",
        path: tgt.clone(),
        source,
    })?;
    match (placed, tgt_missing) {
        (Placement::Same, false) => Err(RootError::Same { src, tgt }),
        (Placement::Same | Placement::Inside, _) => Err(RootError::Nested {
            inner_side: "target",
            inner: tgt,
            outer_side: "source",
            outer: src,
        }),
        (Placement::Contains, false) => Err(RootError::Nested {
            inner_side: "source",
            inner: src,
            outer_side: "target",
            outer: tgt,
        }),
        _ => Ok(PairRoots {
            src,
            tgt,
            tgt_missing,
        }),
    }
}

/// The state directory (which may not exist yet) must not be inside either root: a sync
/// would copy its own database.
pub fn check_state_dir(state: &Path, roots: &PairRoots) -> Result<(), RootError> {
    let Some(existing) = state.ancestors().find(|p| p.exists()) else {
        return Ok(());
    };
    let unusable = |source| RootError::Unusable {
        side: "state",
        path: state.to_path_buf(),
        source,
    };
    let lineage = Lineage::of(existing).map_err(unusable)?;
    for (side, root) in [("source", &roots.src), ("target", &roots.tgt)] {
        let Ok(place) = tandem_fs::Place::of_path(root) else {
            continue; // a target still to be created holds nothing yet
        };
        if lineage.is_at_or_below(place.id) {
            return Err(RootError::StateInside {
                state: state.to_path_buf(),
                side,
                root: root.clone(),
            });
        }
    }
    Ok(())
}

/// Several targets of one source (a mount) must be apart from each other. A target still
/// to be created (not there yet) is placed by its parent.
pub fn check_targets_apart(tgts: &[&Path]) -> Result<(), RootError> {
    let probe = |p: &Path| -> (PathBuf, bool) {
        match p.parent().filter(|_| std::fs::symlink_metadata(p).is_err()) {
            Some(parent) => (parent.to_path_buf(), true),
            None => (p.to_path_buf(), false),
        }
    };
    for (i, a) in tgts.iter().enumerate() {
        for b in &tgts[i + 1..] {
            let ((pa, a_missing), (pb, b_missing)) = (probe(a), probe(b));
            let (a, b) = (a.to_path_buf(), b.to_path_buf());
            let placed = tandem_fs::placement(&pa, &pb).map_err(|source| RootError::Unusable {
                side: "target",
                path: a.clone(),
                source,
            })?;
            match (placed, a_missing, b_missing) {
                (Placement::Same, false, false) => return Err(RootError::TargetTwice { a, b }),
                (Placement::Same, true, true) if a == b => {
                    return Err(RootError::TargetTwice { a, b })
                }
                // Siblings still to be created, or one to be created next to another.
                (Placement::Same, _, _) if a_missing != b_missing => {
                    return Err(RootError::TargetsNested { a, b })
                }
                (Placement::Same, _, _) => {}
                (Placement::Inside, _, false) | (Placement::Contains, false, _) => {
                    return Err(RootError::TargetsNested { a, b })
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Creates the missing target of a first sync (only the last component: its parent was
/// checked to exist).
pub fn create_target(path: &Path) -> Result<(), RootError> {
    tandem_fs::create_root(path).map_err(|source| RootError::Create {
        path: path.to_path_buf(),
        source,
    })
}

/// The canonical path of the existing folder `p`.
pub fn canonical_dir(p: &Path, side: &'static str) -> Result<PathBuf, RootError> {
    let unusable = |source| RootError::Unusable {
        side,
        path: p.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(p).map_err(unusable)?;
    if !meta.is_dir() {
        return Err(RootError::NotAFolder {
            side,
            path: p.to_path_buf(),
        });
    }
    std::fs::canonicalize(p).map_err(unusable)
}

/// `p` as a canonical path when nothing is at `p` (not even a dangling symlink) but its
/// parent is an existing folder.
fn missing_with_parent(p: &Path) -> Option<PathBuf> {
    if std::fs::symlink_metadata(p).is_ok() {
        return None;
    }
    let name = p.file_name()?;
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !std::fs::metadata(parent).ok()?.is_dir() {
        return None;
    }
    Some(std::fs::canonicalize(parent).ok()?.join(name))
}
