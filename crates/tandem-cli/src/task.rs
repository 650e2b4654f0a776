//! From command-line arguments to a validated task: canonical, existing, distinct,
//! non-nested roots and the state directory they use. Bad input fails here, before
//! anything is opened for writing. The decisions themselves are `tandem_engine::roots`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tandem_engine::roots;
use tandem_remote::RemoteTarget;
use tandem_state::Pair;

use crate::args::{PairArgs, SourceArgs};
use tandem_daemon::mounted::registry as mounts;
use tandem_daemon::mounted::MountRecord;

pub struct Task {
    pub src: PathBuf,
    pub tgt: PathBuf,
    pub state_dir: PathBuf,
    pub pair: Pair,
}

impl Task {
    /// A task on two existing folders (`status`, `conflicts`, `resolve`).
    pub fn from_args(a: &PairArgs) -> Result<Task> {
        Task::checked(a, false)
    }

    /// A task to sync: the target may be missing (a first sync creates it, the engine
    /// decides).
    pub fn to_sync(a: &PairArgs) -> Result<Task> {
        Task::checked(a, true)
    }

    fn checked(a: &PairArgs, may_create_target: bool) -> Result<Task> {
        if let Some(remote) = remote_target(&a.tgt) {
            return Task::remote(a, &remote);
        }
        let roots = roots::check_pair(&a.src, &a.tgt, may_create_target)?;
        let pair = Pair {
            src: roots.src.to_string_lossy().into_owned(),
            tgt: roots.tgt.to_string_lossy().into_owned(),
        };
        let state_dir = match &a.state_dir {
            Some(d) => absolute(d)?,
            None => tandem_state::default_state_dir(&pair),
        };
        roots::check_state_dir(&state_dir, &roots)?;
        Ok(Task {
            src: roots.src,
            tgt: roots.tgt,
            state_dir,
            pair,
        })
    }
}

impl Task {
    /// A pair whose target is on another machine: named as the user gave it (normalised),
    /// checked there by the agent, which also creates it on a first sync.
    fn remote(a: &PairArgs, remote: &RemoteTarget) -> Result<Task> {
        let src = canonical_dir(&a.src, "source")?;
        let tgt = PathBuf::from(remote.to_string());
        let pair = Pair {
            src: src.to_string_lossy().into_owned(),
            tgt: remote.to_string(),
        };
        let state_dir = match &a.state_dir {
            Some(d) => absolute(d)?,
            None => tandem_state::default_state_dir(&pair),
        };
        let roots = roots::PairRoots {
            src: src.clone(),
            tgt: tgt.clone(),
            tgt_missing: true,
        };
        roots::check_state_dir(&state_dir, &roots)?;
        Ok(Task {
            src,
            tgt,
            state_dir,
            pair,
        })
    }
}

/// The target as a folder on another machine, if it names one (`host:/path`, `ssh://...`).
pub fn remote_target(tgt: &Path) -> Option<RemoteTarget> {
    tgt.to_str().and_then(RemoteTarget::parse)
}

fn canonical_dir(p: &Path, side: &'static str) -> Result<PathBuf> {
    Ok(roots::canonical_dir(p, side)?)
}

pub(crate) fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir()
            .context("current directory")?
            .join(p))
    }
}

/// The path with its longest existing prefix resolved (the rest may not exist yet).
pub(crate) fn canonical_prefix(p: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut cur = p.to_path_buf();
    loop {
        if let Ok(c) = std::fs::canonicalize(&cur) {
            let mut out = c;
            for r in rest.iter().rev() {
                out.push(r);
            }
            return out;
        }
        match (cur.file_name().map(|n| n.to_os_string()), cur.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                cur = parent.to_path_buf();
            }
            _ => return p.to_path_buf(),
        }
    }
}

/// The pairs a `status` or `conflicts` command is about: the one named, or every target of
/// the running mount of the source; with the mount's record when one serves the source.
pub fn pairs_of(a: &SourceArgs) -> Result<(Vec<Task>, Option<MountRecord>)> {
    let src = canonical_dir(&a.src, "source")?;
    let mount = mounts::lookup(&src)?.filter(|m| mounts::alive(m.pid));
    let targets: Vec<(PathBuf, Option<PathBuf>)> = match (&a.tgt, &mount) {
        (Some(t), _) => vec![(t.clone(), a.state_dir.clone())],
        (None, Some(m)) => m
            .targets
            .iter()
            .map(|t| {
                let dir = (m.targets.len() == 1).then(|| m.state_dir.clone());
                (t.clone(), dir)
            })
            .collect(),
        (None, None) => vec![(only_target(&src, &a.src)?, a.state_dir.clone())],
    };
    let tasks = targets
        .into_iter()
        .map(|(tgt, state_dir)| {
            Task::from_args(&PairArgs {
                src: a.src.clone(),
                tgt,
                state_dir,
            })
        })
        .collect::<Result<_>>()?;
    Ok((tasks, mount))
}

/// The one target the source `src` (canonical; `given` as typed) is known to be synced
/// with, from the pairs under the state home. None or several: an error that lists them.
fn only_target(src: &Path, given: &Path) -> Result<PathBuf> {
    let src = src.to_string_lossy();
    let targets: Vec<String> = tandem_state::known_pairs(&tandem_state::state_home())
        .into_iter()
        .filter_map(|(_, k)| k.ok())
        .filter(|k| k.pair.src == src)
        .map(|k| k.pair.tgt)
        .collect();
    match targets.as_slice() {
        [one] => Ok(PathBuf::from(one)),
        [] => bail!(
            "{} is not mounted by tandem and has no known pair; name the target too (SRC TGT)",
            given.display()
        ),
        several => bail!(
            "{} is synced with several targets; name one (SRC TGT):\n  {}",
            given.display(),
            several.join("\n  ")
        ),
    }
}
