//! `tandem forget SRC TGT`: removes a pair's state directory after saying what it holds,
//! and the pair's markers from both folders (without them, the next sync is a first sync).
//! The folders' contents (and their `.tandem/trash/`) are not touched.

use std::path::PathBuf;

use anyhow::{bail, Result};
use tandem_state::Pair;

use crate::args::ForgetArgs;
use crate::output::sanitize;
use crate::task::{absolute, canonical_prefix};

pub fn run(a: ForgetArgs) -> Result<u8> {
    // The folders may be gone (a deleted or renamed folder is the usual reason to forget
    // a pair): resolve what exists of each path, as the pair was recorded. A target on
    // another machine is named as a sync names it, and carries no marker to remove.
    let remote = crate::task::remote_target(&a.tgt);
    let pair = Pair {
        src: canonical_prefix(&absolute(&a.src)?)
            .to_string_lossy()
            .into_owned(),
        tgt: match &remote {
            Some(r) => r.to_string(),
            None => canonical_prefix(&absolute(&a.tgt)?)
                .to_string_lossy()
                .into_owned(),
        },
    };
    let dir: PathBuf = match &a.state_dir {
        Some(d) => absolute(d)?,
        None => tandem_state::default_state_dir(&pair),
    };
    let mut roots = vec![PathBuf::from(&pair.src)];
    if remote.is_none() {
        roots.push(PathBuf::from(&pair.tgt));
    }
    if !dir.join(tandem_state::DB_FILE).exists() {
        // The state is gone already (the reason a sync of the pair is refused): what is
        // left of the pair is its markers.
        if forget_markers(&pair, &roots)? {
            outln!("tandem: the next sync of this pair is a first sync; the folders' contents were not touched");
            return Ok(crate::EXIT_OK);
        }
        bail!(
            "tandem has no state for {} <-> {} (looked in {}); `tandem status` lists the pairs it knows",
            sanitize(&pair.src),
            sanitize(&pair.tgt),
            sanitize(&dir.to_string_lossy())
        );
    }
    match tandem_state::read_pair(&dir) {
        Ok(k) => {
            if k.pair != pair {
                bail!(
                    "{} holds the state of another pair ({} <-> {}); nothing was removed",
                    sanitize(&dir.to_string_lossy()),
                    sanitize(&k.pair.src),
                    sanitize(&k.pair.tgt)
                );
            }
            outln!(
                "tandem: forgetting {} <-> {}: {} synced entries, {} open conflicts, state in {}",
                sanitize(&pair.src),
                sanitize(&pair.tgt),
                k.synced_entries,
                k.open_conflicts,
                sanitize(&dir.to_string_lossy())
            );
        }
        Err(_) => outln!(
            "tandem: forgetting the state in {} (its database cannot be read)",
            sanitize(&dir.to_string_lossy())
        ),
    }
    let done = tandem_state::forget(&dir)?;
    for p in &done.removed {
        outln!("removed   {}", sanitize(&p.to_string_lossy()));
    }
    for p in &done.left {
        outln!(
            "left      {} (not tandem's)",
            sanitize(&p.to_string_lossy())
        );
    }
    forget_markers(&pair, &roots)?;
    outln!("tandem: the next sync of this pair is a first sync; the folders' contents were not touched");
    Ok(crate::EXIT_OK)
}

/// Removes the pair's markers from each folder still there; whether there were any.
fn forget_markers(pair: &Pair, roots: &[PathBuf]) -> Result<bool> {
    let ids = [tandem_engine::marker::pair_marker_id(pair)];
    let mut any = false;
    for root in roots {
        if let Some(file) = tandem_engine::marker::remove_markers(root, &ids)? {
            outln!(
                "removed   this pair's marker in {}",
                sanitize(&file.to_string_lossy())
            );
            any = true;
        }
    }
    Ok(any)
}
