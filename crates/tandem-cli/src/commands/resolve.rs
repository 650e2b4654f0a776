//! `tandem resolve`: settles one recorded conflict.
//!
//! A flagged conflict is settled by syncing just that path with the chosen side's policy:
//! the same decision path as every sync. A kept-both conflict already has both versions on
//! both sides; keeping one removes the other (to the trash) on both sides.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use tandem_core::{unescape_bytes, Direction, Flavor, Options, Policy, RelPath, Side};
use tandem_engine::{SideRoot, Step};
use tandem_fs::{Root, Trash};
use tandem_remote::{Connect, RemoteSide};
use tandem_state::{ConflictRow, Lock, Store};

use crate::args::{KeepArg, ResolveArgs};
use crate::task::Task;

pub fn run(a: ResolveArgs) -> Result<u8> {
    let task = Task::from_args(&a.pair)?;
    let names = candidates(&a.path, &task.src, &task.tgt)?;
    // While a mount serves the pair, it holds the lock: it pauses the pair for us instead.
    let granted = tandem_daemon::mounted::hold::ask(&task.src, &task.tgt, &task.state_dir)?;
    let locked = granted.is_none();
    let (rel, row) = {
        let _lock = lock(&task, locked)?;
        let store = Store::open_existing(&task.state_dir, &task.pair)?.ok_or_else(|| {
            anyhow!("no sync has been recorded for this pair; nothing to resolve")
        })?;
        open_conflict(&store, &names)?
    };
    // A mount killed since it paused the pair no longer holds it: from here on, take the
    // pair's lock as without a mount (refused if a new mount has it already).
    let locked = locked || !granted.as_ref().is_some_and(|g| g.still_held());
    let how = format!("kept {} (tandem resolve)", keep_word(a.keep));
    // A target on another machine: reached as `tandem sync` reaches it.
    let remote = crate::task::remote_target(&a.pair.tgt)
        .map(|t| crate::commands::sync::connect_of(t, &a.remote));
    let pair = Pair {
        task: &task,
        remote: remote.as_ref(),
    };
    match (row.resolution.as_str(), &row.copy, row.loser) {
        ("kept-both", Some(copy), Some(loser)) => {
            settle_kept_both(&pair, &row, copy, loser, a.keep, &how, locked)?
        }
        _ => settle_flagged(&pair, &rel, a.keep, &how, locked)?,
    }
    if a.json {
        outln!(
            "{}",
            serde_json::json!({"resolved": rel.to_string(), "how": how})
        );
    } else {
        outln!("resolved {rel}: {how}");
    }
    Ok(crate::EXIT_OK)
}

fn keep_word(k: KeepArg) -> &'static str {
    match k {
        KeepArg::Source => "the source's version",
        KeepArg::Target => "the target's version",
        KeepArg::Both => "both versions",
    }
}

/// The names `PATH` may stand for: as typed first, then, when it reads as tandem prints
/// names (escaped, `tandem_core::escape_bytes`), the name it was printed for.
fn candidates(p: &Path, src: &Path, tgt: &Path) -> Result<Vec<RelPath>> {
    let typed = relative(p, src, tgt)?;
    let printed = std::str::from_utf8(typed.as_bytes())
        .ok()
        .and_then(unescape_bytes)
        .and_then(|bytes| RelPath::new(bytes).ok())
        .filter(|r| *r != typed);
    Ok(std::iter::once(typed).chain(printed).collect())
}

/// The first of `names` with an open conflict, and that conflict.
fn open_conflict(store: &Store, names: &[RelPath]) -> Result<(RelPath, ConflictRow)> {
    for name in names {
        if let Some(row) = store.unresolved_conflict(name)? {
            return Ok((name.clone(), row));
        }
    }
    bail!("no open conflict at {} (see `tandem conflicts`)", names[0])
}

/// A path as given on the command line: relative to the folders, or absolute inside one.
fn relative(p: &Path, src: &Path, tgt: &Path) -> Result<RelPath> {
    let stripped = if p.is_absolute() {
        p.strip_prefix(src)
            .or_else(|_| p.strip_prefix(tgt))
            .map_err(|_| anyhow!("{} is not inside the source or the target", p.display()))?
    } else {
        p
    };
    let mut bytes: Vec<u8> = Vec::new();
    for c in stripped.components() {
        match c {
            std::path::Component::Normal(n) => {
                if !bytes.is_empty() {
                    bytes.push(b'/');
                }
                bytes.extend_from_slice(&tandem_core::path_bytes(Path::new(n)));
            }
            std::path::Component::CurDir => {}
            _ => bail!("{} is not a plain relative path", p.display()),
        }
    }
    Ok(RelPath::new(bytes)?)
}

/// The pair's lock, unless a mount holds it and paused the pair for us.
fn lock(task: &Task, locked: bool) -> Result<Option<Lock>> {
    Ok(if locked {
        Some(Lock::acquire(&task.state_dir)?)
    } else {
        None
    })
}

/// The pair being resolved, and how to reach its target when it is on another machine.
struct Pair<'a> {
    task: &'a Task,
    remote: Option<&'a Connect>,
}

fn settle_flagged(
    pair: &Pair<'_>,
    rel: &RelPath,
    keep: KeepArg,
    how: &str,
    locked: bool,
) -> Result<()> {
    let task = pair.task;
    let policy = Policy::keeping(keep.side());
    // "Keep the side that deleted it": a sync never lets a delete win, so do it here.
    if let Some(kept) = keep.side() {
        let roots = open_roots(pair)?;
        let here = roots.get(kept).stat(rel)?;
        if here.is_none() {
            let other = roots.get(kept.other());
            if let Some(e) = other.stat(rel)? {
                let trash = Trash::new(tandem_engine::time::stamp(tandem_engine::time::now_ns()));
                let path = rel;
                other
                    .apply(Step::Delete { path, expect: &e }, &trash)
                    .with_context(|| format!("removing the {}'s version", kept.other()))?;
            }
        }
    }
    let spec = tandem_engine::SyncSpec {
        src: task.src.clone(),
        tgt: task.tgt.clone(),
        state_dir: task.state_dir.clone(),
        options: Options {
            direction: Direction::Both,
            flavor: Flavor::Safe,
            policy,
            modify_window: 0,
            stamp: String::new(),
            rescan: false,
            scope: None,
            held: Default::default(),
            update: false,
            keep: Default::default(),
            hard_links: false,
        },
        excludes: Vec::new(),
        includes: Vec::new(),
        dry_run: false,
        rescan: false,
        max_delete_percent: 100,
        max_delete_count: None,
        threads: crate::commands::sync::default_threads(),
        fsync_each: false,
        lock_granted: !locked,
        retention: Default::default(),
    };
    let scope = tandem_engine::Scope::Paths(vec![rel.clone()]);
    let report = match pair.remote {
        Some(connect) => {
            let stop = std::sync::Arc::default();
            tandem_remote::sync_scoped(&spec, connect, &stop, &scope, &|_| {})?.0
        }
        None => tandem_engine::sync_scoped(&spec, &scope, &|_| {})?,
    };
    if let Some(f) = report.failed.first() {
        bail!("could not settle {}: {}", f.path, f.reason);
    }
    mark_resolved(task, rel, how, locked)
}

fn settle_kept_both(
    pair: &Pair<'_>,
    row: &ConflictRow,
    copy: &RelPath,
    loser: Side,
    keep: KeepArg,
    how: &str,
    locked: bool,
) -> Result<()> {
    let task = pair.task;
    let _lock = lock(task, locked)?;
    if let Some(kept) = keep.side() {
        let roots = open_roots(pair)?;
        let trash = Trash::new(tandem_engine::time::stamp(tandem_engine::time::now_ns()));
        for side in [Side::Source, Side::Target] {
            let root = roots.get(side);
            if kept == loser {
                // The loser's version (now at `copy`) takes the name back.
                let Some(c) = root.stat(copy)? else { continue };
                if let Some(p) = root.stat(&row.path)? {
                    let path = &row.path;
                    root.apply(Step::Delete { path, expect: &p }, &trash)?;
                }
                let (from, to) = (copy, &row.path);
                root.apply(
                    Step::Rename {
                        from,
                        to,
                        expect: &c,
                    },
                    &trash,
                )?;
            } else if let Some(c) = root.stat(copy)? {
                root.apply(
                    Step::Delete {
                        path: copy,
                        expect: &c,
                    },
                    &trash,
                )?;
            }
        }
        let mut store = Store::open(&task.state_dir, &task.pair)?;
        let batch = store.batch()?;
        if kept == loser {
            batch.remove_tree(&row.path)?;
            batch.move_tree(copy, &row.path)?;
        } else {
            batch.remove_tree(copy)?;
        }
        batch.commit()?;
    }
    let mut store = Store::open(&task.state_dir, &task.pair)?;
    let batch = store.batch()?;
    batch.resolve_conflict(row.id, tandem_engine::time::now_ns() / 1_000_000_000, how)?;
    batch.commit()?;
    Ok(())
}

fn mark_resolved(task: &Task, rel: &RelPath, how: &str, locked: bool) -> Result<()> {
    let _lock = lock(task, locked)?;
    let mut store = Store::open(&task.state_dir, &task.pair)?;
    let open: Vec<i64> = store
        .conflicts(false)?
        .into_iter()
        .filter(|c| &c.path == rel)
        .map(|c| c.id)
        .collect();
    let batch = store.batch()?;
    for id in open {
        batch.resolve_conflict(id, tandem_engine::time::now_ns() / 1_000_000_000, how)?;
    }
    batch.commit()?;
    Ok(())
}

struct Roots {
    src: Root,
    tgt: Box<dyn SideRoot>,
}

impl Roots {
    fn get(&self, side: Side) -> &dyn SideRoot {
        match side {
            Side::Source => &self.src,
            Side::Target => &*self.tgt,
        }
    }
}

fn open_roots(pair: &Pair<'_>) -> Result<Roots> {
    let task = pair.task;
    let tgt: Box<dyn SideRoot> = match pair.remote {
        Some(connect) => Box::new(RemoteSide::connect(connect)?),
        None => Box::new(
            Root::open(&task.tgt).with_context(|| format!("opening {}", task.tgt.display()))?,
        ),
    };
    Ok(Roots {
        src: Root::open(&task.src).with_context(|| format!("opening {}", task.src.display()))?,
        tgt,
    })
}
