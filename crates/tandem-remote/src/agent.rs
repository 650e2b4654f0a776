//! The agent: `tandem serve ROOT`, what ssh runs on the far machine. It is a local side
//! there (`tandem_fs::Root` behind `tandem_engine::SideRoot`): it scans and hashes its root
//! itself, and applies each step with the same re-check, temporary file and rename,
//! confinement and trash as a local side. It decides nothing: the client's engine does.
//!
//! One thread reads the requests in order; a file being received or sent has a worker of
//! its own while it travels ([`crate::workers`]), so that many transfers overlap on the
//! wire.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crossbeam_channel::{unbounded, Receiver, Sender};
use tandem_core::{Entry, Filter, Keep, Kind, RelPath};
use tandem_engine::watch::{Echoes, TargetHint, TargetWatcher};
use tandem_engine::{SideRoot, Step};
use tandem_fs::{AttrsFrom, Durability, FsError, Incoming, Root, Trash, Xattrs};

use crate::compress::{pack, unpack, Compress};
use crate::delta::{encode, signature, Op, Sig};
use crate::ids::Ids;
use crate::listing::{self, Listing};
use crate::pace::Pace;
use crate::wire::{
    chunk_buf, grow_chunk_buf, path_of, read_msg, write_frame, Msg, Res, Turns, WireEntry,
    WireError, WireFsError, WireHint, WireKeep, WireMeta, WireStep, CHUNK, FEATURES, PREAMBLE,
    PROTOCOL, REMOVALS, SCAN_BATCH,
};
use crate::workers::Workers;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// The answers, written whole by whichever thread has one, taking turns ([`Turns`]).
#[derive(Clone)]
struct Out(Arc<Mutex<Writer>>, Arc<Turns>);

struct Writer {
    w: Box<dyn Write + Send>,
    /// `--bwlimit`, as the client's `Limit` said.
    pace: Option<Pace>,
}

impl Out {
    fn send(&self, msg: &Msg) -> Result<(), WireError> {
        self.1.queue();
        let mut w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        self.1.enter();
        let n = write_frame(&mut w.w, msg, self.1.last())?;
        if let Some(pace) = w.pace.as_mut() {
            pace.sent(n);
        }
        Ok(())
    }
}

/// Serves the protocol for `root` on `input`/`output` until the client says bye or goes.
/// With `create`, a missing root (its parent existing) is created: a first sync.
pub fn serve(
    root: &Path,
    create: bool,
    mut input: impl Read + Send + 'static,
    output: impl Write + Send + 'static,
) -> Result<(), ServeError> {
    let out = Out(
        Arc::new(Mutex::new(Writer {
            w: Box::new(output),
            pace: None,
        })),
        Arc::default(),
    );
    {
        let w = &mut out.0.lock().unwrap_or_else(|p| p.into_inner()).w;
        writeln!(w, "{PREAMBLE} {PROTOCOL} {}", env!("CARGO_PKG_VERSION"))
            .map_err(WireError::from)?;
        w.flush().map_err(WireError::from)?;
    }
    let (compress, removals) = match read_msg(&mut input)? {
        Some((
            Msg::Hello {
                protocol,
                compress,
                features,
            },
            _,
        )) if protocol == PROTOCOL => (compress, features.iter().any(|f| f == REMOVALS)),
        Some((Msg::Hello { protocol, .. }, _)) => {
            let why = format!("this agent speaks protocol {PROTOCOL}, the client {protocol}");
            out.send(&Msg::Refused { why: why.clone() })?;
            return Err(WireError::Unexpected(why).into());
        }
        other => {
            return Err(WireError::Unexpected(format!("expected a hello, got {other:?}")).into())
        }
    };
    let (root, created) = match open_root(root, create) {
        Ok(r) => r,
        Err(why) => {
            out.send(&Msg::Refused { why })?;
            return Ok(());
        }
    };
    out.send(&Msg::Welcome {
        features: announced(),
        created,
    })?;
    Agent {
        root: Arc::new(root),
        out,
        incoming: HashMap::new(),
        compress,
        removals,
        workers: Workers::default(),
        echoes: Arc::default(),
        watch: None,
        meta: Meta::default(),
        with: HashMap::new(),
        listings: HashMap::new(),
        recorded: HashMap::new(),
        record: None,
        sent: HashMap::new(),
        written: HashMap::new(),
        installing: HashMap::new(),
        finishing: Vec::new(),
    }
    .run(input)
}

/// Requests read ahead of the one being answered, at most (then the reader waits, and the
/// client's writes with it).
const INBOX: usize = 64;

/// The reader thread: answers `Ping` at once, whatever the agent is busy with (a long scan
/// or hash must not look like a hung connection), and hands every other message to the
/// agent in order. Ends at the end of the input (the channel closed) or after an error.
fn read_requests(mut input: impl Read, out: &Out, tx: &Sender<Result<Msg, WireError>>) {
    loop {
        match read_msg(&mut input) {
            Ok(Some((Msg::Ping { id }, _))) => {
                if out.send(&Msg::Pong { id }).is_err() {
                    return;
                }
            }
            Ok(Some((msg, _))) => {
                if tx.send(Ok(msg)).is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        }
    }
}

/// The features this agent announces: all it has, or only those `TANDEM_SERVE_FEATURES`
/// names (comma-separated), as an older agent would (how the tests meet one).
fn announced() -> Vec<String> {
    let all = FEATURES.iter().map(|f| f.to_string());
    match std::env::var("TANDEM_SERVE_FEATURES") {
        Ok(only) => all.filter(|f| only.split(',').any(|o| o == f)).collect(),
        Err(_) => all.collect(),
    }
}

fn open_root(path: &Path, create: bool) -> Result<(Root, bool), String> {
    let mut created = false;
    if create && std::fs::symlink_metadata(path).is_err() {
        tandem_fs::create_root(path)
            .map_err(|e| format!("cannot create the folder {}: {e}", path.display()))?;
        created = true;
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format!("{} is not a folder", path.display())),
        Err(e) => return Err(format!("the folder {} cannot be used: {e}", path.display())),
    }
    let root =
        Root::open(path).map_err(|e| format!("cannot open the folder {}: {e}", path.display()))?;
    Ok((root, created))
}

struct Agent {
    root: Arc<Root>,
    out: Out,
    /// The files being received: where their next chunk goes.
    incoming: HashMap<u64, Sender<Msg>>,
    /// How the file data this agent sends is compressed.
    compress: Compress,
    /// The client reads the hints `Removed` and `Left` (`wire::REMOVALS`).
    removals: bool,
    /// The workers receiving, sending and summing files.
    workers: Workers,
    /// The folders and renames this agent is about to make, for its watcher to recognise.
    echoes: Arc<Echoes>,
    /// The root's watch, once the client asked for it.
    watch: Option<TargetWatcher>,
    /// How entries travel once the client said what the run keeps (`Msg::Keep`).
    meta: Meta,
    /// What came with the entry of an `Install` or `Apply` still to come (`Msg::With`).
    with: HashMap<u64, With>,
    /// Per client state (`Msg::ScanSince`'s key): the listing last sent, and the token of
    /// the record kept of it, once read or written.
    listings: HashMap<String, Listing>,
    recorded: HashMap<String, [u8; 32]>,
    /// The record read while the last `ScanSince` scanned, for `base_for`.
    record: Option<(String, Listing)>,
    /// Per key: what the listing last sent differs from (a token, and the differs sent), and
    /// what is written of the record (its deltas appended to while they stay small).
    sent: HashMap<String, ([u8; 32], Vec<listing::Differ>)>,
    written: HashMap<String, listing::Written>,
    /// The files being received, each ended when its worker is done (`wire::FLUSH_AFTER`).
    installing: HashMap<u64, Receiver<()>>,
    /// The files whose data all came (their `End`) and whose worker may still be at them:
    /// a flush, or folder times set, waits for them.
    finishing: Vec<Receiver<()>>,
}

/// What came with an entry the client sends (`Msg::With`).
#[derive(Default)]
struct With {
    xattrs: Option<Xattrs>,
    user: Option<String>,
    group: Option<String>,
}

impl With {
    /// The client's entry in this machine's terms: its owner mapped by name, the digest of
    /// the attributes given.
    fn apply_to(&self, meta: &Meta, mut e: Entry) -> Entry {
        if let Some(x) = &self.xattrs {
            e.xattrs = x.digest();
        }
        if meta.keep.owner {
            let (user, group) = (self.user.as_deref(), self.group.as_deref());
            e.owner = meta.ids.here(e.owner, user, group);
        }
        e
    }
}

/// How entries travel: bare, or (once the client said what the run keeps) with the digest
/// of their kept attributes and their owner's names.
#[derive(Clone, Default)]
struct Meta {
    keep: WireKeep,
    on: bool,
    ids: Arc<Ids>,
}

impl Meta {
    fn of(&self, e: &Entry) -> WireMeta {
        let (user, group) = match self.keep.owner {
            true => self.ids.names(e.owner),
            false => (None, None),
        };
        WireMeta {
            xattrs: e.xattrs.map(|h| h.0),
            user,
            group,
        }
    }

    /// The answer carrying `r` (`Done`, or `DoneMeta`).
    fn done(&self, id: u64, r: tandem_fs::Result<Option<Entry>>) -> Msg {
        if !self.on {
            return Msg::Done {
                id,
                result: wire(r),
            };
        }
        let result = r
            .map(|e| e.as_ref().map(|e| (WireEntry::from(e), self.of(e))))
            .map_err(|e| WireFsError::from(&e));
        Msg::DoneMeta { id, result }
    }
}

impl Agent {
    fn run(mut self, input: impl Read + Send + 'static) -> Result<(), ServeError> {
        let (tx, rx) = crossbeam_channel::bounded(INBOX);
        let out = self.out.clone();
        // Left blocked in its read if the agent stops first: the process ends then.
        std::thread::spawn(move || read_requests(input, &out, &tx));
        let ran = self.serve(&rx);
        self.finish();
        ran
    }

    fn serve(&mut self, requests: &Receiver<Result<Msg, WireError>>) -> Result<(), ServeError> {
        while let Ok(msg) = requests.recv() {
            let msg = msg?;
            match msg {
                Msg::Bye => break,
                Msg::Data { id, .. }
                | Msg::Copy { id, .. }
                | Msg::Whole { id, .. }
                | Msg::End { id, .. } => {
                    let done = matches!(msg, Msg::End { .. });
                    if let Some(tx) = self.incoming.get(&id) {
                        let _ = tx.send(msg);
                    }
                    if done {
                        self.incoming.remove(&id);
                        if let Some(worker) = self.installing.remove(&id) {
                            self.finishing.retain(|w| !ended(w));
                            self.finishing.push(worker);
                        }
                    }
                }
                Msg::Install { id, .. } => {
                    let (tx, rx) = unbounded();
                    self.incoming.insert(id, tx);
                    // Dropped when the worker is done with the file.
                    let (working, worker) = crossbeam_channel::bounded::<()>(0);
                    self.installing.insert(id, worker);
                    let (root, out) = (Arc::clone(&self.root), self.out.clone());
                    let echoes = self.watch.as_ref().map(|_| Arc::clone(&self.echoes));
                    let with = self.with.remove(&id).unwrap_or_default();
                    let meta = self.meta.clone();
                    self.spawn(move || {
                        let _working = working;
                        let with = (with, meta);
                        receive(&root, &out, msg, rx, echoes.as_deref(), &with)
                    });
                }
                Msg::Keep { keep } => self.keep(keep)?,
                Msg::With {
                    id,
                    xattrs,
                    user,
                    group,
                } => {
                    let xattrs = xattrs.map(Xattrs::from_list);
                    let with = With {
                        xattrs,
                        user,
                        group,
                    };
                    self.with.insert(id, with);
                }
                Msg::Read { id, path, src } => self.send_file(id, path, src, None),
                Msg::ReadDelta { id, path, src, sig } => self.send_file(id, path, src, Some(sig)),
                Msg::Limit { rate } => {
                    let mut w = self.out.0.lock().unwrap_or_else(|p| p.into_inner());
                    w.pace = Some(Pace::new(rate));
                }
                Msg::Signature { id, path, expect } => {
                    let (root, out) = (Arc::clone(&self.root), self.out.clone());
                    self.spawn(move || sums(&root, &out, id, path, expect));
                }
                Msg::Watch { id } => self.watch(id),
                other => self.answer(other)?,
            }
        }
        Ok(())
    }

    /// What the run keeps (`Msg::Keep`), before any other request: this root keeps it
    /// from now on, as far as this machine lets it (what only root may keep, only if both
    /// the client and this agent run as root).
    fn keep(&mut self, keep: WireKeep) -> Result<(), ServeError> {
        let Some(root) = Arc::get_mut(&mut self.root) else {
            return Err(WireError::Unexpected("what to keep, after the work began".into()).into());
        };
        let here = tandem_engine::keep_for_run(Keep {
            owner: keep.owner,
            numeric_ids: keep.numeric_ids,
            xattrs: keep.xattrs,
            acls: keep.acls,
            ..Keep::default()
        });
        root.set_keep(Keep {
            setid: here.setid && keep.setid,
            trusted: here.trusted && keep.trusted,
            ..here
        });
        self.meta = Meta {
            keep,
            on: true,
            ids: Arc::new(Ids::new(keep.numeric_ids)),
        };
        Ok(())
    }

    /// Starts watching the root; what its watcher says goes to the client in batches. A
    /// root that cannot be watched says so in one `Rescan` hint (the client then relies
    /// on its periodic rescans).
    fn watch(&mut self, id: u64) {
        let (tx, rx) = unbounded();
        match TargetWatcher::start(self.root.path(), tx.clone(), Arc::clone(&self.echoes)) {
            Ok(w) => self.watch = Some(w),
            Err(e) => {
                let _ = tx.send(TargetHint::Rescan(format!(
                    "the remote side cannot watch its folder: {e}"
                )));
            }
        }
        let (out, removals) = (self.out.clone(), self.removals);
        let wire = move |h: &TargetHint| WireHint::for_client(h, removals);
        std::thread::spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut hints = vec![wire(&first)];
                hints.extend(rx.try_iter().take(SCAN_BATCH).map(|h| wire(&h)));
                if out.send(&Msg::Hints { id, hints }).is_err() {
                    break;
                }
            }
        });
    }

    fn spawn(&mut self, work: impl FnOnce() + Send + 'static) {
        self.workers.run(work);
    }

    fn send_file(&mut self, id: u64, path: Vec<u8>, src: WireEntry, sig: Option<Sig>) {
        let (root, out, compress) = (Arc::clone(&self.root), self.out.clone(), self.compress);
        self.spawn(move || send_file(&root, &out, compress, (id, path, src), sig.as_ref()));
    }

    /// The client is gone or done: the files still being received learn that their data
    /// stops here and remove their temporary files before the agent exits (an exit would
    /// leave them behind).
    fn finish(&mut self) {
        self.incoming.clear();
        self.workers.finish();
    }

    /// Waits for the files whose data all came before this request to be installed
    /// (`wire::FLUSH_AFTER`): a client that sent a file, then the flush, without waiting
    /// for the file's answer, gets a flush that covers it. A file whose data is still to
    /// come is not waited for (its data is behind this request).
    fn finish_installs(&mut self) {
        for worker in self.finishing.drain(..) {
            let _ = worker.recv();
        }
    }

    /// The requests answered in order, on this thread.
    fn answer(&mut self, msg: Msg) -> Result<(), ServeError> {
        if matches!(msg, Msg::Flush { .. } | Msg::SetDirTimes { .. }) {
            self.finish_installs();
        }
        let root = &*self.root;
        match msg {
            Msg::Scan {
                id,
                ignore_file,
                excludes,
                includes,
                threads,
                hints,
            } => scan(
                root,
                (&self.out, &self.meta),
                id,
                (ignore_file, excludes, includes),
                threads,
                hints,
            )?,
            Msg::ScanSince {
                id,
                ignore_file,
                excludes,
                includes,
                threads,
                key,
                base,
            } => {
                let filter = (ignore_file, excludes, includes);
                self.scan_since(id, filter, threads, key, base)?;
            }
            Msg::Confirm { id, key, token } => {
                let result = self.confirm(&key, token);
                self.out.send(&Msg::Checked { id, result })?;
            }
            Msg::Hash { id, want, threads } => {
                let want = want
                    .into_iter()
                    .map(|(p, e)| Ok((path_of(p)?, e.entry()?)))
                    .collect::<Result<Vec<_>, WireError>>()?;
                let results = root
                    .hash(&want, threads as usize)
                    .into_iter()
                    .map(|r| r.map(|h| h.0).map_err(|e| WireFsError::from(&e)))
                    .collect();
                self.out.send(&Msg::Hashes { id, results })?;
            }
            Msg::Stat { id, path } => {
                let stat = SideRoot::stat(root, &path_of(path)?);
                self.out.send(&self.meta.done(id, stat))?;
            }
            Msg::Apply { id, step, trash } => {
                let echoes = self.watch.as_ref().map(|_| &*self.echoes);
                let with = (self.with.remove(&id).unwrap_or_default(), self.meta.clone());
                let applied = apply(root, step, &Trash::new(trash), echoes, &with)?;
                self.out.send(&self.meta.done(id, applied))?;
            }
            Msg::Flush { id, each_file } => {
                let d = durability(each_file);
                let result = SideRoot::flush(root, d).map_err(|e| WireFsError::from(&e));
                self.out.send(&Msg::Checked { id, result })?;
            }
            Msg::Present { id } => {
                let result = if SideRoot::still_present(root) {
                    Ok(())
                } else {
                    Err(WireFsError::from(&FsError::vanished(&RelPath::root())))
                };
                self.out.send(&Msg::Checked { id, result })?;
            }
            other => return self.answer_features(other),
        }
        Ok(())
    }

    /// The requests of the features past the protocol's core (`wire::FEATURES`), answered
    /// in order, on this thread.
    fn answer_features(&self, msg: Msg) -> Result<(), ServeError> {
        let root = &*self.root;
        match msg {
            Msg::Link {
                id,
                anchor,
                anchor_expect,
                path,
                expect,
                trash,
            } => {
                let (anchor, anchor_expect) = (path_of(anchor)?, anchor_expect.entry()?);
                let (path, expect) = (path_of(path)?, expect.map(WireEntry::entry).transpose()?);
                let echoes = self.watch.as_ref().map(|_| &*self.echoes);
                if let Some(e) = echoes {
                    e.create(&path);
                }
                let trash = Trash::new(trash);
                let linked = root.link(&anchor, &anchor_expect, &path, expect.as_ref(), &trash);
                let linked = forget_failed(linked, echoes, &path);
                self.out.send(&self.meta.done(id, linked.map(Some)))?;
            }
            Msg::HoldsLinks { id, dry_run } => {
                let result = match root.holds_hard_links(dry_run) {
                    true => Ok(()),
                    false => Err(protocol_error(&WireError::Unexpected(
                        "no hard links here".into(),
                    ))),
                };
                self.out.send(&Msg::Checked { id, result })?;
            }
            Msg::Holds { id, paths } => {
                let paths = paths
                    .into_iter()
                    .map(path_of)
                    .collect::<Result<Vec<_>, _>>()?;
                let held = root.holds(&paths);
                self.out.send(&Msg::Held { id, held })?;
            }
            Msg::TrashPaths { id } => {
                let result = match tandem_fs::trash_paths(root) {
                    Ok(paths) => Ok(paths.into_iter().map(RelPath::into_bytes).collect()),
                    Err(e) => Err(WireFsError::from(&e)),
                };
                self.out.send(&Msg::Paths { id, result })?;
            }
            Msg::Prune {
                id,
                keep_secs,
                max_bytes,
                versions,
                now,
                held,
            } => {
                let held = held
                    .into_iter()
                    .map(path_of)
                    .collect::<Result<std::collections::HashSet<_>, _>>()?;
                let keep = tandem_core::Retention {
                    keep: std::time::Duration::from_secs(keep_secs),
                    max_bytes,
                    versions: usize::try_from(versions).unwrap_or(usize::MAX),
                };
                let pruned = tandem_fs::prune_trash_where(root, &|p| held.contains(p), &keep, now);
                let result = pruned
                    .map(|p| [p.removed, p.freed, p.left.versions, p.left.bytes])
                    .map_err(|e| WireFsError::from(&e));
                self.out.send(&Msg::Pruned { id, result })?;
            }
            Msg::GetAttrs { id, path } => {
                let result = match tandem_fs::read_xattrs(root, &path_of(path)?) {
                    Ok(x) => Ok(x.map(Xattrs::into_list).unwrap_or_default()),
                    Err(e) => Err(WireFsError::from(&e)),
                };
                self.out.send(&Msg::Attrs { id, result })?;
            }
            Msg::DirTimes { id, paths } => {
                let paths = paths
                    .into_iter()
                    .map(path_of)
                    .collect::<Result<Vec<_>, _>>()?;
                let times = root.dir_mtimes(&paths);
                self.out.send(&Msg::Times { id, times })?;
            }
            Msg::SetDirTimes { id, times } => {
                let times = times
                    .into_iter()
                    .map(|(p, t)| Ok((path_of(p)?, t)))
                    .collect::<Result<Vec<_>, WireError>>()?;
                // Told to this folder's watcher first, as a local target's are: the
                // events of times tandem set are dropped, not hints to re-check.
                let echoes = self.watch.as_ref().map(|_| &*self.echoes);
                if let Some(e) = echoes {
                    times.iter().for_each(|(p, _)| e.times(p));
                }
                let set = root.set_dir_mtimes(&times);
                if let Some(e) = echoes {
                    for ((p, _), r) in times.iter().zip(&set) {
                        if !matches!(r, Ok(true)) {
                            e.forget_times(p);
                        }
                    }
                }
                let results = set
                    .into_iter()
                    .map(|r| r.map_err(|e| WireFsError::from(&e)))
                    .collect();
                self.out.send(&Msg::TimesSet { id, results })?;
            }
            other => return Err(WireError::Unexpected(format!("a stray {other:?}")).into()),
        }
        Ok(())
    }
}

impl Agent {
    /// Answers `ScanSince`: scans the whole tree as `Scan` does, and sends what differs
    /// from the listing the client holds (`base`), if this agent sent it last or keeps a
    /// record of it; else the whole listing, as differences from nothing.
    fn scan_since(
        &mut self,
        id: u64,
        (ignore_file, excludes, includes): (Option<String>, Vec<String>, Vec<String>),
        threads: u32,
        key: String,
        base: Option<[u8; 32]>,
    ) -> Result<(), ServeError> {
        if !listing::valid_key(&key) {
            return Err(WireError::Unexpected(format!("a listing key {key:?}")).into());
        }
        let filter = Filter::new(ignore_file.as_deref(), &excludes, &includes)
            .map_err(|e| WireError::Unexpected(format!("a filter this agent cannot build: {e}")))?;
        let root = &*self.root;
        // The record the client's base may be is read while the tree is scanned (a new
        // agent holds no listing in memory: every run's first scan reads it).
        let read = base.filter(|b| self.listings.get(&key).is_none_or(|l| l.token != *b));
        let (scanned, record) = std::thread::scope(|sc| {
            let record = read.map(|_| sc.spawn(|| listing::load_record(root, &key)));
            let scanned = SideRoot::scan(root, &filter, threads.max(1) as usize, None);
            (scanned, record.and_then(|r| r.join().ok()))
        });
        if let Some(record) = record {
            if let Some((r, written)) = &record {
                self.recorded.insert(key.clone(), r.token);
                self.written.insert(key.clone(), *written);
            }
            self.record = record.map(|(r, _)| (key.clone(), r));
        }
        let scan = match scanned {
            Ok(scan) => scan,
            Err(e) => {
                let result = Err(WireFsError::from(&e));
                let (since, token) = (None, [0; 32]);
                let listed = Msg::Listed {
                    id,
                    result,
                    since,
                    token,
                };
                return Ok(self.out.send(&listed)?);
            }
        };
        let entries = scan
            .tree
            .iter()
            .map(|(p, e)| (p.as_bytes().to_vec(), (WireEntry::from(e), self.meta.of(e))))
            .collect();
        let known = base.and_then(|b| self.base_for(&key, b));
        let (now, differs) = Listing::against(known.as_ref(), entries);
        for batch in differs.chunks(SCAN_BATCH) {
            let batch = batch.to_vec();
            self.out.send(&Msg::Differs { id, batch })?;
        }
        let stale = scan.stale_temps.into_iter().map(RelPath::into_bytes);
        let since = known.map(|l| l.token);
        self.out.send(&Msg::Listed {
            id,
            result: Ok(stale.collect()),
            since,
            token: now.token,
        })?;
        match since {
            Some(since) => self.sent.insert(key.clone(), (since, differs)),
            None => self.sent.remove(&key),
        };
        self.listings.insert(key, now);
        Ok(())
    }

    /// The listing with token `base` for `key`: the one last sent, or the record kept.
    fn base_for(&mut self, key: &str, base: [u8; 32]) -> Option<Listing> {
        if let Some(l) = self.listings.get(key).filter(|l| l.token == base) {
            return Some(l.clone());
        }
        let (of, record) = self.record.take()?;
        (of == key && record.token == base).then_some(record)
    }

    /// Answers `Confirm`: the listing `token` last sent for `key` becomes its record
    /// (written only if the record is another). A token that is not the last sent is
    /// an error: the client's next scan sends it all.
    fn confirm(&mut self, key: &str, token: [u8; 32]) -> Res<()> {
        let refused = |why: &str| {
            Err(protocol_error(&WireError::Unexpected(format!(
                "listing {key}: {why}"
            ))))
        };
        let Some(l) = self.listings.get(key).filter(|l| l.token == token) else {
            return refused("not the one last sent");
        };
        if self.recorded.get(key) == Some(&token) {
            return Ok(());
        }
        let started = std::time::Instant::now();
        // What differs from the record written, when the listing was sent against it.
        let since = match (self.sent.get(key), self.written.get(key)) {
            (Some((from, differs)), Some(w)) if self.recorded.get(key) == Some(from) => {
                Some((*w, *from, differs.as_slice()))
            }
            _ => None,
        };
        match listing::save_record(&self.root, key, l, since) {
            Ok(written) => {
                self.written.insert(key.to_string(), written);
                tracing::debug!(
                    "listing {key}: {} entries recorded in {:.1} ms",
                    l.entries.len(),
                    started.elapsed().as_secs_f64() * 1e3
                );
                self.recorded.insert(key.to_string(), token);
                Ok(())
            }
            Err(e) => {
                tracing::warn!("cannot keep the listing {key}: {e}");
                refused(&e.to_string())
            }
        }
    }
}

fn durability(each_file: bool) -> Durability {
    if each_file {
        Durability::EachFile
    } else {
        Durability::Batched
    }
}

fn wire(r: tandem_fs::Result<Option<Entry>>) -> Res<Option<WireEntry>> {
    r.map(|e| e.as_ref().map(WireEntry::from))
        .map_err(|e| WireFsError::from(&e))
}

fn scan(
    root: &Root,
    (out, meta): (&Out, &Meta),
    id: u64,
    (ignore_file, excludes, includes): (Option<String>, Vec<String>, Vec<String>),
    threads: u32,
    hints: Option<Vec<(Vec<u8>, bool)>>,
) -> Result<(), ServeError> {
    let filter = Filter::new(ignore_file.as_deref(), &excludes, &includes)
        .map_err(|e| WireError::Unexpected(format!("a filter this agent cannot build: {e}")))?;
    let hints = hints
        .map(|h| {
            h.into_iter()
                .map(|(p, below)| Ok((path_of(p)?, below)))
                .collect::<Result<Vec<_>, WireError>>()
        })
        .transpose()?;
    let scanned = SideRoot::scan(root, &filter, threads.max(1) as usize, hints.as_deref());
    let result = match scanned {
        Ok(scan) => {
            let mut batch = Vec::with_capacity(SCAN_BATCH);
            let send = |batch: Vec<(Vec<u8>, WireEntry, WireMeta)>| match meta.on {
                true => out.send(&Msg::EntriesMeta { id, batch }),
                false => {
                    let batch = batch.into_iter().map(|(p, e, _)| (p, e)).collect();
                    out.send(&Msg::Entries { id, batch })
                }
            };
            for (p, e) in &scan.tree {
                let m = if meta.on {
                    meta.of(e)
                } else {
                    WireMeta::default()
                };
                batch.push((p.as_bytes().to_vec(), WireEntry::from(e), m));
                if batch.len() == SCAN_BATCH {
                    send(std::mem::take(&mut batch))?;
                }
            }
            if !batch.is_empty() {
                send(batch)?;
            }
            Ok(scan
                .stale_temps
                .into_iter()
                .map(RelPath::into_bytes)
                .collect())
        }
        Err(e) => Err(WireFsError::from(&e)),
    };
    out.send(&Msg::Scanned { id, result })?;
    Ok(())
}

/// Applies one step; a folder made, a rename and a deletion are announced to `echoes` (a
/// watched root) first, as a local engine does.
fn apply(
    root: &Root,
    step: WireStep,
    trash: &Trash,
    echoes: Option<&Echoes>,
    (with, meta): &(With, Meta),
) -> Result<tandem_fs::Result<Option<Entry>>, WireError> {
    let from = with.xattrs.as_ref().map(AttrsFrom::Given);
    let r = match step {
        WireStep::Rename { from, to, expect } => {
            let (from, to, expect) = (path_of(from)?, path_of(to)?, expect.entry()?);
            if let Some(e) = echoes {
                e.rename(&from, &to);
            }
            let step = Step::Rename {
                from: &from,
                to: &to,
                expect: &expect,
            };
            forget_failed(root.apply(step, trash), echoes, &from)
        }
        WireStep::Mkdir { path, src } => {
            let (path, src) = (path_of(path)?, with.apply_to(meta, src.entry()?));
            // A folder already there makes no event of tandem's.
            if let (Some(e), Ok(None)) = (echoes, root.stat(&path)) {
                e.mkdir(&path);
            }
            let step = Step::Mkdir {
                path: &path,
                src: &src,
                from,
            };
            forget_failed(root.apply(step, trash), echoes, &path)
        }
        WireStep::SetMeta { path, src, expect } => {
            let src = with.apply_to(meta, src.entry()?);
            let (path, expect) = (path_of(path)?, expect.entry()?);
            let step = Step::SetMeta {
                path: &path,
                src: &src,
                expect: &expect,
                from,
            };
            root.apply(step, trash)
        }
        WireStep::Delete { path, expect } => {
            let (path, expect) = (path_of(path)?, expect.entry()?);
            // Not a program's deletion (the brake), nor a move out of the root.
            if let Some(e) = echoes {
                e.remove(&path);
            }
            let step = Step::Delete {
                path: &path,
                expect: &expect,
            };
            forget_failed(root.apply(step, trash), echoes, &path)
        }
        WireStep::RemoveStaleTemp { path } => {
            let path = path_of(path)?;
            root.apply(Step::RemoveStaleTemp { path: &path }, trash)
        }
    };
    Ok(r)
}

/// A change announced that failed makes no event: its announcement goes.
fn forget_failed<T>(
    r: tandem_fs::Result<T>,
    echoes: Option<&Echoes>,
    path: &RelPath,
) -> tandem_fs::Result<T> {
    if let (Err(_), Some(e)) = (&r, echoes) {
        e.forget(path);
    }
    r
}

/// The worker of a file received is done with it.
fn ended(worker: &Receiver<()>) -> bool {
    matches!(
        worker.try_recv(),
        Err(crossbeam_channel::TryRecvError::Disconnected)
    )
}

/// Receives one file (`Msg::Install`) from the chunks routed to `rx`, and answers `Done`.
/// A new file is announced to `echoes` (a watched root) first, as a local engine does.
fn receive(
    root: &Root,
    out: &Out,
    install: Msg,
    rx: Receiver<Msg>,
    echoes: Option<&Echoes>,
    (with, meta): &(With, Meta),
) {
    let Msg::Install {
        id,
        path,
        src,
        expect,
        mode,
        trash,
        each_file,
    } = install
    else {
        return;
    };
    let result = (|| -> Result<tandem_fs::Result<Entry>, WireError> {
        let (path, src) = (path_of(path)?, with.apply_to(meta, src.entry()?));
        let expect = expect.map(WireEntry::entry).transpose()?;
        let mut data = Chunks::new(rx, &path)
            .with_old(old_copy(root, &path, &src, expect.as_ref()))
            .whole_checked_by_writer();
        let (ended, claimed) = (data.ended.clone(), data.claimed.clone());
        let mut verify = |written: Option<&tandem_core::Hash>| {
            ended
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or_else(|| {
                    Err(FsError::io(
                        &path,
                        "receive data",
                        std::io::Error::other("the stream ended early"),
                    ))
                })?;
            // What the writer hashed as it wrote, against the sender's `Whole`.
            let claimed = claimed.lock().unwrap_or_else(|p| p.into_inner()).take();
            match (claimed, written) {
                (Some(c), Some(w)) if c != w.0 => {
                    Err(FsError::raced(&path, tandem_engine::DELTA_MISMATCH))
                }
                (Some(_), None) => Err(FsError::raced(&path, tandem_engine::DELTA_MISMATCH)),
                _ => Ok(()),
            }
        };
        let incoming = Incoming {
            src: &src,
            mode,
            data: &mut data,
            verify: &mut verify,
            xattrs: with.xattrs.as_ref(),
        };
        if let Some(e) = echoes {
            e.create(&path);
        }
        let installed = root.install(
            &path,
            expect.as_ref(),
            incoming,
            &Trash::new(trash),
            durability(each_file),
        );
        Ok(forget_failed(installed, echoes, &path))
    })();
    let answer = match result {
        Ok(r) => meta.done(id, r.map(Some)),
        Err(e) => Msg::Done {
            id,
            result: Err(protocol_error(&e)),
        },
    };
    let _ = out.send(&answer);
}

/// The old copy at `path`, still `expect`, when a delta could be sent against it.
pub(crate) fn old_copy(
    root: &Root,
    path: &RelPath,
    src: &Entry,
    expect: Option<&Entry>,
) -> Option<Box<dyn OldCopy>> {
    let old = expect.filter(|e| e.kind == Kind::File && src.kind == Kind::File)?;
    if !crate::delta::worth_it(old.size, src.size) {
        return None;
    }
    let content = tandem_fs::open_content(root, path, old).ok()?;
    Some(Box::new(content))
}

/// A receiver's own old copy, read at the offsets a delta's `Copy` names.
pub(crate) trait OldCopy: Read + Seek + Send {}
impl<T: Read + Seek + Send> OldCopy for T {}

/// A file's content as the chunks of one transfer arrive; `ended` holds the sender's
/// verdict once its `End` came. With an old copy at hand, the content may come as a delta:
/// `Copy` takes bytes from the old copy, and what was rebuilt must hash to `Whole`.
pub(crate) struct Chunks {
    rx: Receiver<Msg>,
    buf: Vec<u8>,
    at: usize,
    pub(crate) ended: Arc<Mutex<Option<tandem_fs::Result<()>>>>,
    path: RelPath,
    old: Option<Box<dyn OldCopy>>,
    /// Bytes still to take from the old copy.
    copy_left: u64,
    /// The hash of all that was read, while an old copy is at hand.
    whole: Option<blake3::Hasher>,
    /// Some `Copy` came; `Whole` came and matched.
    copied: bool,
    matched: bool,
    /// The `Whole` that came, left for the writer to check against the hash of what it
    /// wrote (`whole_checked_by_writer`), instead of hashing it here too.
    pub(crate) claimed: Arc<Mutex<Option<[u8; 32]>>>,
    defer: bool,
    /// The file data that came as `Data` (not taken from the old copy), unpacked.
    pub(crate) literal: u64,
}

impl Chunks {
    pub(crate) fn new(rx: Receiver<Msg>, path: &RelPath) -> Chunks {
        Chunks {
            rx,
            buf: Vec::new(),
            at: 0,
            ended: Arc::new(Mutex::new(None)),
            path: path.clone(),
            old: None,
            copy_left: 0,
            whole: None,
            copied: false,
            matched: false,
            claimed: Arc::default(),
            defer: false,
            literal: 0,
        }
    }

    /// The content's `Whole` is checked by the writer, which hashes what it writes
    /// (`Incoming::verify`), not hashed here a second time: `claimed` holds it.
    pub(crate) fn whole_checked_by_writer(mut self) -> Chunks {
        if self.whole.take().is_some() {
            self.defer = true;
        }
        self
    }

    /// The receiver's old copy, for a content that may come as a delta.
    pub(crate) fn with_old(mut self, old: Option<Box<dyn OldCopy>>) -> Chunks {
        self.whole = old.as_ref().map(|_| blake3::Hasher::new());
        self.old = old;
        self
    }

    /// Takes the next message of the transfer.
    fn next_message(&mut self) -> std::io::Result<()> {
        match self.rx.recv() {
            Ok(Msg::Data { bytes, zstd, .. }) => {
                (self.buf, self.at) = (unpack(bytes, zstd)?, 0);
                self.literal += self.buf.len() as u64;
            }
            Ok(Msg::Copy { offset, len, .. }) => {
                let Some(old) = self.old.as_mut() else {
                    return Err(std::io::Error::other(
                        "protocol error: a copy with no old copy",
                    ));
                };
                old.seek(SeekFrom::Start(offset))?;
                (self.copy_left, self.copied) = (len, true);
            }
            Ok(Msg::Whole { hash, .. }) => {
                self.matched = match self.whole.take() {
                    Some(h) => h.finalize().as_bytes() == &hash,
                    None if self.defer => {
                        *self.claimed.lock().unwrap_or_else(|p| p.into_inner()) = Some(hash);
                        true
                    }
                    None => false,
                };
            }
            Ok(Msg::End { result, .. }) => {
                let mut verdict = result.map_err(WireFsError::error);
                if verdict.is_ok() && self.copied && !self.matched {
                    verdict = Err(FsError::raced(&self.path, tandem_engine::DELTA_MISMATCH));
                }
                *self.ended.lock().unwrap_or_else(|p| p.into_inner()) = Some(verdict);
            }
            Ok(_) => return Err(std::io::Error::other("protocol error: a stray message")),
            Err(_) => {
                let why = format!("{}: the connection was lost mid-file", self.path);
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    why,
                ));
            }
        }
        Ok(())
    }
}

impl Read for Chunks {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = if self.at < self.buf.len() {
                let n = out.len().min(self.buf.len() - self.at);
                out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
                self.at += n;
                n
            } else if let (true, Some(old)) = (self.copy_left > 0, self.old.as_mut()) {
                let k = out
                    .len()
                    .min(usize::try_from(self.copy_left).unwrap_or(usize::MAX));
                let n = old.read(&mut out[..k])?;
                if n == 0 {
                    let why = format!("{}: the old copy is shorter than the delta says", self.path);
                    return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, why));
                }
                self.copy_left -= n as u64;
                n
            } else if self
                .ended
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some()
            {
                return Ok(0);
            } else {
                self.next_message()?;
                continue;
            };
            if let Some(h) = self.whole.as_mut() {
                h.update(&out[..n]);
            }
            return Ok(n);
        }
    }
}

/// Sends one file (`Msg::Read`, or `Msg::ReadDelta` with the client's `sig`): `Opened`,
/// its content, and `End` with the check that it did not change while it was read.
fn send_file(
    root: &Root,
    out: &Out,
    compress: Compress,
    (id, path, src): (u64, Vec<u8>, WireEntry),
    sig: Option<&Sig>,
) {
    let (size, known) = (src.size, src.hash);
    let opened =
        (|| -> Result<tandem_fs::Result<Box<dyn tandem_engine::Source + '_>>, WireError> {
            let (path, src) = (path_of(path)?, src.entry()?);
            Ok(root.read(&path, &src))
        })();
    let mut source = match opened {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let result = Err(WireFsError::from(&e));
            let _ = out.send(&Msg::Opened { id, result });
            return;
        }
        Err(e) => {
            let _ = out.send(&Msg::Opened {
                id,
                result: Err(protocol_error(&e)),
            });
            return;
        }
    };
    let link = source.link().map(<[u8]>::to_vec);
    if out
        .send(&Msg::Opened {
            id,
            result: Ok(link),
        })
        .is_err()
    {
        return;
    }
    let sent = match sig {
        Some(sig) if source.link().is_none() => {
            send_delta(out, compress, id, sig, (&mut *source, known))
        }
        _ => send_whole(out, compress, id, &mut *source, size),
    };
    let result = match sent {
        Ok(()) => source.finish().map_err(|e| WireFsError::from(&e)),
        Err(Sent::Gone) => return,
        Err(Sent::Failed(e)) => Err(WireFsError::from(&FsError::io(&RelPath::root(), "read", e))),
    };
    let _ = out.send(&Msg::End { id, result });
}

fn protocol_error(e: &WireError) -> WireFsError {
    WireFsError {
        kind: 0,
        path: String::new(),
        message: e.to_string(),
        errno: None,
    }
}

/// Why a file's content was not all sent: the connection is gone, or reading failed.
pub(crate) enum Sent {
    Gone,
    Failed(std::io::Error),
}

/// Sends `source`, of `size` bytes when it was scanned, in `Data` chunks.
fn send_whole(
    out: &Out,
    compress: Compress,
    id: u64,
    source: &mut dyn Read,
    size: u64,
) -> Result<(), Sent> {
    let mut buf = chunk_buf(size);
    loop {
        match read_full(source, &mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                let (bytes, zstd) = pack(compress, &buf[..n]);
                grow_chunk_buf(&mut buf, n);
                out.send(&Msg::Data { id, bytes, zstd })
                    .map_err(|_| Sent::Gone)?;
            }
            Err(e) => return Err(Sent::Failed(e)),
        }
    }
}

/// Sends `source` as a delta against `sig`: `Copy`, `Data`, then `Whole`.
fn send_delta(
    out: &Out,
    compress: Compress,
    id: u64,
    sig: &Sig,
    (source, known): (&mut dyn Read, Option<[u8; 32]>),
) -> Result<(), Sent> {
    let mut gone = false;
    let hash = encode_to(sig, (source, known), compress, id, &mut |msg, _| {
        out.send(&msg).map_err(|e| {
            gone = true;
            std::io::Error::other(e.to_string())
        })
    });
    match hash {
        Ok(hash) => out.send(&Msg::Whole { id, hash }).map_err(|_| Sent::Gone),
        Err(_) if gone => Err(Sent::Gone),
        Err(e) => Err(Sent::Failed(e)),
    }
}

/// Cuts `source` against `sig` into the messages that carry it (`Copy`, and `Data` of at
/// most a [`CHUNK`] each), handed to `send` with the file data each carries (before
/// compression); returns the hash of the whole.
pub(crate) fn encode_to(
    sig: &Sig,
    (source, known): (&mut dyn Read, Option<[u8; 32]>),
    compress: Compress,
    id: u64,
    send: &mut dyn FnMut(Msg, usize) -> std::io::Result<()>,
) -> std::io::Result<[u8; 32]> {
    encode(sig, source, known, &mut |op| match op {
        Op::Copy { offset, len } => send(Msg::Copy { id, offset, len }, 0),
        Op::Literal(bytes) => bytes.chunks(CHUNK).try_for_each(|piece| {
            let (bytes, zstd) = pack(compress, piece);
            send(Msg::Data { id, bytes, zstd }, piece.len())
        }),
    })
}

/// Answers `Signature`: the chunks of `path`, if it is still `expect`.
fn sums(root: &Root, out: &Out, id: u64, path: Vec<u8>, expect: WireEntry) {
    let result = (|| -> Result<tandem_fs::Result<Sig>, WireError> {
        let (path, expect) = (path_of(path)?, expect.entry()?);
        Ok((|| {
            let mut old = tandem_fs::open_content(root, &path, &expect)?;
            let sig =
                signature(&mut old, expect.size).map_err(|e| FsError::io(&path, "read", e))?;
            old.finish()?;
            Ok(sig)
        })())
    })();
    let result = match result {
        Ok(r) => r.map_err(|e| WireFsError::from(&e)),
        Err(e) => Err(protocol_error(&e)),
    };
    let _ = out.send(&Msg::Sums { id, result });
}

/// Fills `buf` as far as the source goes (a chunk per frame, not per `read`).
pub(crate) fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::wire::write_msg;
    use std::io::BufRead;

    /// An agent serving `root` on a thread, past its hello: what is written to it, what it
    /// answers, the features it welcomed `features` with, and the thread.
    struct Started {
        to_agent: std::io::PipeWriter,
        from_agent: std::io::BufReader<std::io::PipeReader>,
        features: Vec<String>,
        agent: std::thread::JoinHandle<Result<(), ServeError>>,
    }

    fn start(root: &Path, features: &[&str]) -> Started {
        let (mut to_agent, input) = std::io::pipe().map(|(r, w)| (w, r)).unwrap();
        let (output, agent_out) = std::io::pipe().map(|(r, w)| (w, r)).unwrap();
        let root = root.to_path_buf();
        let agent = std::thread::spawn(move || serve(&root, false, input, output));
        let mut from_agent = std::io::BufReader::new(agent_out);
        let mut preamble = String::new();
        from_agent.read_line(&mut preamble).unwrap();
        let hello = Msg::Hello {
            protocol: PROTOCOL,
            features: features.iter().map(|f| f.to_string()).collect(),
            compress: Compress::default(),
        };
        write_msg(&mut to_agent, &hello).unwrap();
        let Some((Msg::Welcome { features, .. }, _)) = read_msg(&mut from_agent).unwrap() else {
            panic!("no welcome");
        };
        Started {
            to_agent,
            from_agent,
            features,
            agent,
        }
    }

    /// What an agent watching a folder tells a client that says `features` in its hello
    /// when a file there is removed: the first hint naming it.
    fn hint_for_a_removal(features: &[&str]) -> WireHint {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "x").unwrap();
        let Started {
            mut to_agent,
            mut from_agent,
            agent,
            ..
        } = start(dir.path(), features);
        write_msg(&mut to_agent, &Msg::Watch { id: 9 }).unwrap();
        // The watch is set up before the agent reads on: a stat answered is after it.
        let stat = Msg::Stat {
            id: 1,
            path: b"f".to_vec(),
        };
        write_msg(&mut to_agent, &stat).unwrap();
        while !matches!(
            read_msg(&mut from_agent).unwrap(),
            Some((Msg::Done { id: 1, .. }, _))
        ) {}
        std::fs::remove_file(dir.path().join("f")).unwrap();
        let hint = loop {
            match read_msg(&mut from_agent).unwrap() {
                Some((Msg::Hints { hints, .. }, _)) => {
                    if let Some(h) = hints.into_iter().find(|h| {
                        matches!(h, WireHint::Removed { path, .. } | WireHint::Changed { path, .. }
                            if path == b"f")
                    }) {
                        break h;
                    }
                }
                Some(_) => {}
                None => panic!("the agent hung up"),
            }
        };
        write_msg(&mut to_agent, &Msg::Bye).unwrap();
        drop(to_agent);
        agent.join().unwrap().unwrap();
        hint
    }

    /// Sends `big`, 64 MiB of data that packs small (id 1), then a flush (id 2), waiting
    /// for nothing: the agent has most of the file still to unpack, hash and write when
    /// the flush comes. Returns the file's size.
    fn big_file_then_flush(to_agent: &mut std::io::PipeWriter) -> u64 {
        let size = 64u64 << 20;
        let src = Entry::file(size, 1_700_000_000_000_000_000, 0o644, 0);
        let (packed, zstd) = crate::compress::pack(Compress::On, &vec![7u8; crate::wire::CHUNK]);
        assert!(zstd);
        let install = Msg::Install {
            id: 1,
            path: b"big".to_vec(),
            src: WireEntry::from(&src),
            expect: None,
            mode: 0o644,
            trash: "t".into(),
            each_file: false,
        };
        write_msg(to_agent, &install).unwrap();
        for _ in 0..size / crate::wire::CHUNK as u64 {
            let bytes = packed.clone();
            write_msg(to_agent, &Msg::Data { id: 1, bytes, zstd }).unwrap();
        }
        let end = Msg::End {
            id: 1,
            result: Ok(()),
        };
        write_msg(to_agent, &end).unwrap();
        let flush = Msg::Flush {
            id: 2,
            each_file: false,
        };
        write_msg(to_agent, &flush).unwrap();
        size
    }

    /// The ids of the next `n` answers (`Done`, `Checked`), in the order they came, each
    /// a success.
    fn answered(from_agent: &mut impl std::io::BufRead, n: usize) -> Vec<u64> {
        let mut order = Vec::new();
        while order.len() < n {
            match read_msg(from_agent).unwrap() {
                Some((Msg::Done { id, result }, _)) => {
                    assert!(result.is_ok(), "{result:?}");
                    order.push(id);
                }
                Some((Msg::Checked { id, result }, _)) => {
                    assert!(result.is_ok(), "{result:?}");
                    order.push(id);
                }
                Some(_) => {}
                None => panic!("the agent hung up"),
            }
        }
        order
    }

    /// A file sent whole and the flush behind it, nothing waited for in between (a mount's
    /// pass, `wire::FLUSH_AFTER`): the flush is answered after the file is installed, so
    /// that it covers it (the client records the file once the flush is answered).
    #[test]
    fn issue_17_a_flush_sent_behind_a_file_is_answered_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let Started {
            mut to_agent,
            mut from_agent,
            features,
            agent,
        } = start(dir.path(), &[]);
        assert!(features.iter().any(|f| f == crate::wire::FLUSH_AFTER));
        // Data that packs small: the agent reads it all at once, and its worker has most of
        // the file still to unpack, hash and write when the flush comes.
        let size = big_file_then_flush(&mut to_agent);
        let order = answered(&mut from_agent, 2);
        assert_eq!(
            order,
            vec![1, 2],
            "the flush was answered before the file was in"
        );
        assert_eq!(
            std::fs::metadata(dir.path().join("big")).unwrap().len(),
            size
        );
        write_msg(&mut to_agent, &Msg::Bye).unwrap();
        drop(to_agent);
        agent.join().unwrap().unwrap();
    }

    /// The flush is done on a worker (the agent goes on handing out what comes behind
    /// it), but a `Present` sent behind it is answered only once the flush is: the root
    /// is confirmed with everything before the flush in it.
    #[test]
    fn issue_17_a_present_behind_a_flush_is_answered_after_the_flush() {
        let dir = tempfile::tempdir().unwrap();
        let Started {
            mut to_agent,
            mut from_agent,
            agent,
            ..
        } = start(dir.path(), &[]);
        // A file whose worker is still at it when the flush and the Present come.
        big_file_then_flush(&mut to_agent);
        write_msg(&mut to_agent, &Msg::Present { id: 3 }).unwrap();
        let order = answered(&mut from_agent, 3);
        assert_eq!(order, vec![1, 2, 3], "answered out of order");
        write_msg(&mut to_agent, &Msg::Bye).unwrap();
        drop(to_agent);
        agent.join().unwrap().unwrap();
    }

    #[test]
    fn issue_18_an_agent_tells_removals_only_to_a_client_that_reads_them() {
        assert_eq!(
            hint_for_a_removal(FEATURES),
            WireHint::Removed {
                path: b"f".to_vec(),
                dir: false
            }
        );
        // A client of before `removals` (issue 17's features) is told what it can decode.
        assert_eq!(
            hint_for_a_removal(&["delta", "bwlimit", "watch"]),
            WireHint::Changed {
                path: b"f".to_vec(),
                deep: false
            }
        );
    }

    /// What a receiver makes of `msgs` with `old` as its old copy: the bytes, and the
    /// verdict before the copy may take its name.
    fn receive_with(old: &[u8], msgs: Vec<Msg>) -> (Vec<u8>, tandem_fs::Result<()>) {
        let (tx, rx) = unbounded();
        for m in msgs {
            tx.send(m).unwrap();
        }
        let old: Box<dyn OldCopy> = Box::new(std::io::Cursor::new(old.to_vec()));
        let mut chunks = Chunks::new(rx, &RelPath::new(b"f".to_vec()).unwrap()).with_old(Some(old));
        let mut got = Vec::new();
        chunks.read_to_end(&mut got).unwrap();
        let verdict = chunks.ended.lock().unwrap().take().unwrap();
        (got, verdict)
    }

    #[test]
    fn issue_17_a_delta_that_does_not_rebuild_the_file_is_not_kept() {
        let new = b"old middle, new end".to_vec();
        let msgs = |hash: [u8; 32]| {
            vec![
                Msg::Copy {
                    id: 1,
                    offset: 0,
                    len: 10,
                },
                Msg::Data {
                    id: 1,
                    bytes: b", new end".to_vec(),
                    zstd: false,
                },
                Msg::Whole { id: 1, hash },
                Msg::End {
                    id: 1,
                    result: Ok(()),
                },
            ]
        };
        let right = *blake3::hash(&new).as_bytes();
        let (got, verdict) = receive_with(b"old middle, old end", msgs(right));
        assert_eq!(got, new);
        assert!(verdict.is_ok());
        // The old copy is not what the sender's chunks said: caught by the whole's hash.
        let (_, verdict) = receive_with(b"OLD MIDDLE, old end", msgs(right));
        match verdict {
            Err(FsError::Raced { what, .. }) => assert_eq!(what, tandem_engine::DELTA_MISMATCH),
            other => panic!("{other:?}"),
        }
        // A copy past the old copy's end fails the read.
        let (tx, rx) = unbounded();
        tx.send(Msg::Copy {
            id: 1,
            offset: 5,
            len: 100,
        })
        .unwrap();
        let old: Box<dyn OldCopy> = Box::new(std::io::Cursor::new(b"short".to_vec()));
        let mut chunks = Chunks::new(rx, &RelPath::new(b"f".to_vec()).unwrap()).with_old(Some(old));
        assert!(chunks.read_to_end(&mut Vec::new()).is_err());
    }

    /// A shared buffer the agent's answers go to.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// An agent receiving `new` as a delta against its copy of `old`, with `whole` as the
    /// sender's `Whole`: its answer, and what the file holds then.
    fn install_delta(old: &[u8], new: &[u8], whole: [u8; 32]) -> (Res<Option<WireEntry>>, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), old).unwrap();
        let root = Root::open(dir.path()).unwrap();
        let rel = RelPath::new(b"f".to_vec()).unwrap();
        let expect = SideRoot::stat(&root, &rel).unwrap().unwrap();
        let mut src = WireEntry::from(&expect);
        src.size = new.len() as u64;
        let sink = Sink::default();
        let writer = Writer {
            w: Box::new(sink.clone()),
            pace: None,
        };
        let out = Out(Arc::new(Mutex::new(writer)), Arc::default());
        let (tx, rx) = unbounded();
        let same = old.len() / 2;
        assert_eq!(old[..same], new[..same]);
        for m in [
            Msg::Copy {
                id: 1,
                offset: 0,
                len: same as u64,
            },
            Msg::Data {
                id: 1,
                bytes: new[same..].to_vec(),
                zstd: false,
            },
            Msg::Whole { id: 1, hash: whole },
            Msg::End {
                id: 1,
                result: Ok(()),
            },
        ] {
            tx.send(m).unwrap();
        }
        let install = Msg::Install {
            id: 1,
            path: b"f".to_vec(),
            src,
            expect: Some(WireEntry::from(&expect)),
            mode: 0o644,
            trash: "t".into(),
            each_file: false,
        };
        let with = (With::default(), Meta::default());
        receive(&root, &out, install, rx, None, &with);
        let bytes = sink.0.lock().unwrap().clone();
        let Some((Msg::Done { result, .. }, _)) = read_msg(&mut bytes.as_slice()).unwrap() else {
            panic!("no answer");
        };
        (result, std::fs::read(dir.path().join("f")).unwrap())
    }

    /// The receiver hashes what it writes once, and that hash checks the sender's `Whole`:
    /// a rebuilt file that does not match is not put in place.
    #[test]
    fn issue_17_a_delta_is_checked_against_the_hash_of_what_was_written() {
        let old: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut new = old.clone();
        new[150_000..].iter_mut().for_each(|b| *b = 7);
        let (done, held) = install_delta(&old, &new, *blake3::hash(&new).as_bytes());
        assert_eq!(
            done.unwrap().unwrap().hash,
            Some(*blake3::hash(&new).as_bytes())
        );
        assert!(held == new);
        let (done, held) = install_delta(&old, &new, *blake3::hash(&old).as_bytes());
        let err = done.unwrap_err().error();
        assert!(
            matches!(&err, FsError::Raced { what, .. } if what == tandem_engine::DELTA_MISMATCH),
            "{err:?}"
        );
        assert!(held == old, "the old copy stays");
    }
}
