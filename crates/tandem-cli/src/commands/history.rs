//! `tandem history PATH` and `tandem restore PATH`: the versions tandem kept of a source
//! path (the mount's history, either side's trash), and bringing one back.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::json;
use tandem_core::{NotKept, RelPath, Side};
use tandem_daemon::mounted::registry as mounts;
use tandem_engine::history::{self, KeptAt, PastVersion, Pick, RestoreRoots};
use tandem_fs::Root;
use tandem_state::Store;

use crate::args::{HistoryArgs, PairArgs, RestoreArgs};
use crate::output::{human_bytes, sanitize};
use crate::task::Task;

/// A path in a source folder, and what tandem knows of that folder.
struct Located {
    tasks: Vec<Task>,
    /// The path, relative to the source.
    rel: RelPath,
    /// Where the source is served: its mount point when mounted (else the source).
    served_at: PathBuf,
    mounted: bool,
}

impl Located {
    fn src(&self) -> &Path {
        &self.tasks[0].src
    }

    fn stores(&self) -> Result<Vec<Store>> {
        let mut out = Vec::new();
        for t in &self.tasks {
            if let Some(s) = Store::open_existing(&t.state_dir, &t.pair)? {
                out.push(s);
            }
        }
        Ok(out)
    }

    fn roots(&self) -> Result<(Root, Vec<Root>)> {
        let open = |p: &Path| Root::open(p).with_context(|| format!("opening {}", p.display()));
        let src = open(self.src())?;
        let tgts = self
            .tasks
            .iter()
            .map(|t| open(&t.tgt))
            .collect::<Result<_>>()?;
        Ok((src, tgts))
    }

    /// `p` (as typed) relative to the source (or to where it is served).
    fn rel_of(&self, p: &Path) -> Result<RelPath> {
        let abs = crate::task::canonical_prefix(&crate::task::absolute(p)?);
        for base in [&self.served_at, &self.tasks[0].src] {
            if let Ok(rest) = abs.strip_prefix(base) {
                return Ok(RelPath::new(tandem_core::path_bytes(rest).into_owned())?);
            }
        }
        bail!(
            "{} is not in the source folder {}",
            p.display(),
            self.src().display()
        )
    }
}

/// Finds the source folder `path` lies in: the pair of `--state-dir`, else a running
/// mount serving a folder above it, else the pairs known whose source is above it.
fn locate(path: &Path, state_dir: Option<&Path>) -> Result<Located> {
    let abs = crate::task::canonical_prefix(&crate::task::absolute(path)?);
    let mut found: Option<(Vec<Task>, PathBuf)> = None;
    if let Some(dir) = state_dir {
        let known = tandem_state::read_pair(dir)?;
        let task = Task::from_args(&PairArgs {
            src: PathBuf::from(&known.pair.src),
            tgt: PathBuf::from(&known.pair.tgt),
            state_dir: Some(dir.to_path_buf()),
        })?;
        let at = PathBuf::from(&known.pair.src);
        found = Some((vec![task], at));
    }
    for anc in abs.ancestors() {
        if found.is_some() {
            break;
        }
        if let Some(rec) = mounts::lookup(anc)?.filter(|m| mounts::alive(m.pid)) {
            let tasks = rec
                .targets
                .iter()
                .map(|t| {
                    let dir = (rec.targets.len() == 1).then(|| rec.state_dir.clone());
                    Task::from_args(&PairArgs {
                        src: rec.src.clone(),
                        tgt: t.clone(),
                        state_dir: dir,
                    })
                })
                .collect::<Result<_>>()?;
            found = Some((tasks, anc.to_path_buf()));
            continue;
        }
        let src = anc.to_string_lossy();
        let tasks: Vec<Task> = tandem_state::known_pairs(&tandem_state::state_home())
            .into_iter()
            .filter_map(|(dir, k)| k.ok().map(|k| (dir, k)))
            .filter(|(_, k)| k.pair.src == src)
            .map(|(dir, k)| {
                Task::from_args(&PairArgs {
                    src: PathBuf::from(&k.pair.src),
                    tgt: PathBuf::from(&k.pair.tgt),
                    state_dir: Some(dir),
                })
            })
            .collect::<Result<_>>()?;
        if !tasks.is_empty() {
            found = Some((tasks, anc.to_path_buf()));
        }
    }
    let Some((tasks, served_at)) = found else {
        bail!(
            "{} is not in a folder tandem syncs (give --state-dir of its pair)",
            path.display()
        );
    };
    let mounted = mounts::is_fuse(&served_at) || mounts::is_fuse(&tasks[0].src);
    let mut l = Located {
        tasks,
        rel: RelPath::root(),
        served_at,
        mounted,
    };
    l.rel = l.rel_of(path)?;
    Ok(l)
}

pub fn list(a: HistoryArgs) -> Result<u8> {
    let l = locate(&a.path, a.state_dir.as_deref())?;
    let (src, tgts) = l.roots()?;
    let list = history::versions(&src, &tgts, &l.stores()?, &l.rel)?;
    let tz = TimeZone::system();
    if a.json {
        let items: Vec<_> = list.iter().map(|v| to_json(v, &l, &tz)).collect();
        outln!(
            "{}",
            json!({ "path": l.rel.to_string(), "versions": items })
        );
    } else if list.is_empty() {
        outln!("no versions of {} kept", sanitize(&l.rel.to_string()));
    } else {
        for v in &list {
            outln!("{}", line(v, &l, &tz));
        }
    }
    Ok(crate::EXIT_OK)
}

/// Where a version is, as a path the user can open (`None`: not kept).
fn place(v: &PastVersion, l: &Located) -> Option<PathBuf> {
    match &v.kept {
        KeptAt::History(name) => Some(l.src().join(tandem_core::HISTORY_DIR).join(name)),
        KeptAt::Trash { at, target } => {
            let root = match target {
                Some(i) => &l.tasks[*i].tgt,
                None => l.src(),
            };
            Some(root.join(at.to_string()))
        }
        KeptAt::Not(_) => None,
    }
}

fn when(ns: i64, tz: &TimeZone) -> String {
    Timestamp::from_nanosecond(i128::from(ns)).map_or_else(
        |_| "?".to_string(),
        |t| {
            t.to_zoned_datetime(tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string()
        },
    )
}

fn who(v: &PastVersion) -> String {
    match &v.who {
        Some(w) if w.op == history::RECOVERED => "recovered after a crash (who is unknown)".into(),
        Some(w) => format!(
            "{} by {} (pid {}, uid {})",
            w.op,
            w.program.as_deref().unwrap_or("?"),
            w.pid,
            w.uid
        ),
        None => "set aside by tandem".to_string(),
    }
}

fn line(v: &PastVersion, l: &Located, tz: &TimeZone) -> String {
    let kept = match (&v.kept, place(v, l)) {
        (KeptAt::Not(NotKept::Lost), _) => "lost: its file is gone from the history".into(),
        (KeptAt::Not(why), _) => format!("not kept: {}", why.name()),
        (KeptAt::History(_), Some(p)) => format!("in history {}", p.display()),
        (_, Some(p)) => format!("in the {} trash {}", side_name(v.side), p.display()),
        (_, None) => String::new(),
    };
    sanitize(&format!(
        "{:>3}  {}  {}  {}  {}  {}  {}",
        v.n,
        when(v.time_ns, tz),
        v.path,
        human_bytes(v.size),
        side_name(v.side),
        who(v),
        kept
    ))
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Source => "source",
        Side::Target => "target",
    }
}

fn to_json(v: &PastVersion, l: &Located, tz: &TimeZone) -> serde_json::Value {
    let time = Timestamp::from_nanosecond(i128::from(v.time_ns))
        .ok()
        .map(|t| tandem_task::rfc3339(t, tz));
    let (kept, not_kept) = match &v.kept {
        KeptAt::History(_) => (Some("history"), None),
        KeptAt::Trash { .. } => (Some("trash"), None),
        KeptAt::Not(why) => (None, Some(why.name())),
    };
    let known = v.who.as_ref().filter(|w| w.op != history::RECOVERED);
    json!({
        "version": v.n,
        "path": v.path.to_string(),
        "time": time,
        "size": v.size,
        "side": side_name(v.side),
        "kept": kept,
        "not_kept": not_kept,
        "where": place(v, l).map(|p| p.display().to_string()),
        "op": v.who.as_ref().map(|w| w.op.clone()),
        // Not known for a version recovered after a crash.
        "pid": known.map(|w| w.pid),
        "uid": known.map(|w| w.uid),
        "program": v.who.as_ref().and_then(|w| w.program.clone()),
    })
}

/// `tandem restore PATH [--version N | --at TIME] [--to NEWPATH] [--force]`.
pub fn restore(a: &RestoreArgs) -> Result<u8> {
    let l = locate(&a.path, a.state_dir.as_deref())?;
    let (src, tgts) = l.roots()?;
    let stores = l.stores()?;
    let list = history::versions(&src, &tgts, &stores, &l.rel)?;
    let how = match (a.version, &a.at) {
        (Some(n), _) => Pick::Number(n),
        (None, Some(t)) => Pick::At(super::changes::since_ns(
            t,
            Timestamp::now(),
            &TimeZone::system(),
        )?),
        (None, None) => Pick::Newest,
    };
    let v = history::pick(&list, &l.rel, how)?;
    let to = match &a.to {
        Some(p) => l.rel_of(p)?,
        None => v.path.clone(),
    };
    let write = if l.mounted {
        Root::open(&l.served_at).with_context(|| format!("opening {}", l.served_at.display()))?
    } else {
        Root::open(l.src()).with_context(|| format!("opening {}", l.src().display()))?
    };
    let roots = RestoreRoots {
        src: &src,
        targets: &tgts,
        write: &write,
        unmounted: (!l.mounted).then(|| stores.first()).flatten(),
    };
    // Back over its own path, a version replaces what is there (kept first); over another
    // path only with --force.
    let replace = a.force || a.to.is_none();
    let size = history::restore(&roots, v, &to, replace)?;
    outln!(
        "restored version {} of {} ({}) to {}{}",
        v.n,
        sanitize(&v.path.to_string()),
        human_bytes(size),
        sanitize(&to.to_string()),
        if l.mounted { " through the mount" } else { "" }
    );
    Ok(crate::EXIT_OK)
}
