//! A scan given out in path order as it goes, without holding the tree (issue 21).
//!
//! `list` reads the whole tree and sorts it; a walk gives the same entries in the same
//! order, one directory at a time: it holds the directories on the way down from the root
//! and the ones read ahead, so a caller that merges as it reads (`tandem_core::Merge`)
//! keeps memory in step with the tree's depth and width, not its size.
//!
//! Bytewise order puts a directory's subtree after the siblings that extend its name
//! (`d`, `d-x`, `d.txt`, then `d/...`, then `d0`): each directory given out leaves a
//! marker at `d/` in its parent's frame, and its entries follow when the walk reaches it.
//! Workers read directories ahead (a bounded number at a time), as `list` does with the
//! same `threads`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::{Condvar, Mutex};

use tandem_core::{Entry, Filter, RelPath};

use crate::error::Result;
use crate::root::Root;
use crate::scan::{error_reason, read_dir};

/// Directories read ahead and not yet reached, at most: enough to keep the workers busy,
/// few enough that what waits stays small.
const AHEAD: usize = 256;

/// One directory's content: entries sorted last first (taken from the end), each with
/// whether the walk goes into it; and the stale temporary files it held.
struct Read {
    entries: Vec<(RelPath, Entry, bool)>,
    stale: Vec<RelPath>,
}

/// A directory's read, or why it failed (a `Problem` entry for it).
type Outcome = std::result::Result<Read, String>;

/// Reads one directory: sorted, each entry marked with whether to go into it.
fn read_one(root: &Root, dir: &RelPath, filter: &Filter) -> Result<Read> {
    let mut out = Vec::new();
    let mut stale = Vec::new();
    let subdirs: HashSet<RelPath> = read_dir(root, dir, filter, &mut out, &mut stale)?
        .into_iter()
        .collect();
    let mut entries: Vec<(RelPath, Entry, bool)> = out
        .into_iter()
        .map(|(p, e)| {
            let into = subdirs.contains(&p);
            (p, e, into)
        })
        .collect();
    entries.sort_unstable_by(|a, b| b.0.cmp(&a.0));
    Ok(Read { entries, stale })
}

/// The reads handed to workers and what came back.
#[derive(Default)]
struct Ahead {
    /// Asked for and not yet taken by the walk.
    asked: HashSet<RelPath>,
    done: HashMap<RelPath, Outcome>,
}

struct Shared {
    ahead: Mutex<Ahead>,
    ready: Condvar,
}

/// One directory being given out: its entries left, and the subdirectories already given
/// out whose content comes next once the names between have come out (keyed `dir/`).
struct Frame {
    entries: Vec<(RelPath, Entry, bool)>,
    below: BTreeMap<Vec<u8>, Read>,
    /// `entries[unasked..]` were looked at for reading ahead.
    unasked: usize,
}

/// The walk in progress: an iterator over `(path, entry)` in path order.
pub struct Walk<'a> {
    root: &'a Root,
    filter: &'a Filter,
    shared: &'a Shared,
    tx: crossbeam_channel::Sender<RelPath>,
    stack: Vec<Frame>,
    stale: Vec<RelPath>,
}

/// Walks `root` (see the module doc): `f` is given the walk and may stop early. Returns
/// what `f` returned and the stale temporary files met on the way. Only failing to read
/// the root itself is an error, as with `list`.
pub fn walk<R>(
    root: &Root,
    filter: &Filter,
    threads: usize,
    f: impl FnOnce(&mut Walk<'_>) -> R,
) -> Result<(R, Vec<RelPath>)> {
    let first = read_one(root, &RelPath::root(), filter)?;
    let shared = Shared {
        ahead: Mutex::new(Ahead::default()),
        ready: Condvar::new(),
    };
    let (tx, rx) = crossbeam_channel::unbounded::<RelPath>();
    std::thread::scope(|sc| {
        for _ in 0..threads.max(1) {
            let (rx, shared) = (rx.clone(), &shared);
            sc.spawn(move || {
                // Ends when the walk is dropped (the channel closes).
                while let Ok(dir) = rx.recv() {
                    let read = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        read_one(root, &dir, filter).map_err(|e| error_reason(&e))
                    }))
                    .unwrap_or_else(|_| Err("scanner panicked".to_string()));
                    let mut ahead = shared.ahead.lock().unwrap_or_else(|p| p.into_inner());
                    ahead.done.insert(dir, read);
                    shared.ready.notify_all();
                }
            });
        }
        let mut w = Walk {
            root,
            filter,
            shared: &shared,
            tx,
            stack: Vec::new(),
            stale: Vec::new(),
        };
        w.enter(first);
        let r = f(&mut w);
        let stale = std::mem::take(&mut w.stale);
        drop(w);
        Ok((r, stale))
    })
}

impl Walk<'_> {
    fn enter(&mut self, read: Read) {
        self.stale.extend(read.stale);
        self.stack.push(Frame {
            unasked: read.entries.len(),
            entries: read.entries,
            below: BTreeMap::new(),
        });
        self.ask_ahead();
    }

    /// Hands the directories next in the walk to the workers, deepest frame first, while
    /// fewer than `AHEAD` are asked for and not taken.
    fn ask_ahead(&mut self) {
        let mut ahead = self.shared.ahead.lock().unwrap_or_else(|p| p.into_inner());
        for frame in self.stack.iter_mut().rev() {
            frame.unasked = frame.unasked.min(frame.entries.len());
            while frame.unasked > 0 && ahead.asked.len() < AHEAD {
                frame.unasked -= 1;
                let (p, _, into) = &frame.entries[frame.unasked];
                if *into && ahead.asked.insert(p.clone()) && self.tx.send(p.clone()).is_err() {
                    ahead.asked.remove(p);
                }
            }
            if ahead.asked.len() >= AHEAD {
                return;
            }
        }
    }

    /// The directory `dir`'s read: from a worker, or read here if none was asked.
    fn read(&self, dir: &RelPath) -> Outcome {
        let mut ahead = self.shared.ahead.lock().unwrap_or_else(|p| p.into_inner());
        if !ahead.asked.contains(dir) {
            drop(ahead);
            return read_one(self.root, dir, self.filter).map_err(|e| error_reason(&e));
        }
        loop {
            if let Some(read) = ahead.done.remove(dir) {
                ahead.asked.remove(dir);
                return read;
            }
            ahead = self
                .shared
                .ready
                .wait(ahead)
                .unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Iterator for Walk<'_> {
    type Item = (RelPath, Entry);

    fn next(&mut self) -> Option<(RelPath, Entry)> {
        loop {
            let top = self.stack.last_mut()?;
            let entry_key = top.entries.last().map(|(p, _, _)| p.as_bytes());
            let below_key = top.below.keys().next().map(Vec::as_slice);
            let below_first = match (entry_key, below_key) {
                (None, None) => {
                    self.stack.pop();
                    continue;
                }
                (Some(e), Some(b)) => b < e,
                (None, Some(_)) => true,
                (Some(_), None) => false,
            };
            if below_first {
                if let Some((_, read)) = top.below.pop_first() {
                    self.enter(read);
                }
                continue;
            }
            let (p, e, into) = top.entries.pop()?;
            if !into {
                return Some((p, e));
            }
            // A directory that cannot be read is a problem entry, not a directory (as
            // `list` keeps the failed read's entry over its parent's).
            let read = self.read(&p);
            self.ask_ahead();
            return match read {
                Err(why) => Some((p, Entry::problem(why))),
                Ok(read) => {
                    let mut key = p.as_bytes().to_vec();
                    key.push(b'/');
                    if let Some(top) = self.stack.last_mut() {
                        top.below.insert(key, read);
                    }
                    Some((p, e))
                }
            };
        }
    }
}
