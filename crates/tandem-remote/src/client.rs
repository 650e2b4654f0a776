//! The client: a `tandem_engine::SideRoot` whose root is on another machine, reached by
//! running `tandem serve` there over the user's own ssh.
//!
//! Any number of requests are in flight at once: each carries an id, one thread reads the
//! answers and hands each to the caller waiting for it. A scan's entries come back in
//! batches and a file's content in chunks; nothing waits for a round trip per file but the
//! caller that needs that file's answer.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{unbounded, Receiver, Sender};
use tandem_core::{Entry, Filter, Hash, Kind, RelPath, Retention, Tree};
use tandem_engine::watch::{Echoes, TargetHint};
use tandem_engine::{Later, SideRoot, Source, Step, Watch, DELTA_MISMATCH};
use tandem_fs::{
    AttrsFrom, Durability, FsError, Incoming, Pruned, Refusal, Root, Scan, Trash, TrashUsage,
    Xattrs,
};

use crate::agent::{encode_to, read_full, Chunks, OldCopy};
use crate::compress::{pack, Compress};
use crate::delta::{self, Sig};
use crate::ids::Ids;
use crate::keepalive::{self, Heard};
use crate::known::{Known, Lookup};
use crate::listing::{self, Listing};
use crate::pace::Pace;
use crate::target::RemoteTarget;
use crate::wire::{
    chunk_buf, grow_chunk_buf, path_of, read_msg, write_frame, write_msg, Msg, Turns, WireEntry,
    WireError, WireFsError, WireHint, WireKeep, WireMeta, WireStep, FEATURES, FLUSH_AFTER, LISTING,
    PREAMBLE, PROTOCOL,
};

/// What crossed the wire, for the run's summary (and the tests: a sync with nothing to do
/// sends no file data).
#[derive(Debug, Default)]
pub struct Stats {
    /// File content sent to the remote side and received from it (before compression).
    pub data_sent: AtomicU64,
    pub data_received: AtomicU64,
    /// Everything, frames included.
    pub wire_sent: AtomicU64,
    pub wire_received: AtomicU64,
    /// The most requests that were waiting for their answers at once: how well the run
    /// kept the link busy (1: one round trip after another).
    pub most_in_flight: AtomicU64,
    /// Requests sent after the run took an answer (the first request too): each may
    /// depend on that answer, and starts a round trip the run waits out; the requests sent
    /// before the next answer is taken go in it (logged at debug level, with the request
    /// that started it). Where an answer comes back before the next request leaves
    /// (loopback), this counts what a slow link would wait out, not what happened to.
    pub round_trips: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("cannot reach {host} over ssh (exit {code}): {stderr}")]
    Ssh {
        host: String,
        code: String,
        stderr: String,
    },
    #[error("tandem was not found on {host} ({remote_tandem}: {stderr}); install tandem {version} there (the same `cargo install`, or copy this binary) or name it with --remote-tandem PATH")]
    Missing {
        host: String,
        remote_tandem: String,
        stderr: String,
        version: &'static str,
    },
    #[error("{remote_tandem} on {host} is not a tandem that serves this protocol: it answered {found:?}{stderr}; this tandem ({version}) needs `tandem serve` speaking protocol {PROTOCOL} there: install tandem {version} there or name it with --remote-tandem PATH")]
    NotTandem {
        host: String,
        remote_tandem: String,
        found: String,
        stderr: String,
        version: &'static str,
    },
    #[error("the tandem on {host} speaks protocol {found} (tandem {found_version}); this tandem ({version}) needs protocol {PROTOCOL}: install tandem {version} there or name it with --remote-tandem PATH")]
    Version {
        host: String,
        found: u32,
        found_version: String,
        version: &'static str,
    },
    #[error("{host} refused: {why}")]
    Refused { host: String, why: String },
    #[error("{option} is not available with this remote target: the tandem on {host} ({found_version}) is older and cannot keep it; install tandem {version} there or name it with --remote-tandem PATH")]
    Lacks {
        host: String,
        option: &'static str,
        found_version: String,
        version: &'static str,
    },
    #[error("{0}")]
    Wire(#[from] WireError),
}

/// How to reach the far side.
#[derive(Clone, Debug)]
pub struct Connect {
    pub target: RemoteTarget,
    /// The ssh command and its options (`--ssh`, `TANDEM_SSH`), as words.
    pub ssh: Vec<String>,
    /// The tandem to run there (`--remote-tandem`).
    pub remote_tandem: String,
    /// Create the remote folder if it is missing (a first sync).
    pub create: bool,
    /// Whether file data is compressed, both ways.
    pub compress: Compress,
    /// `--bwlimit`: at most this many bytes a second, each way.
    pub bwlimit: Option<u64>,
    /// What the run keeps beyond content (`--owner`, `--xattrs`, `--acls`): the agent is
    /// told, and refused at connection if it cannot.
    pub keep: WireKeep,
    /// Where this pair keeps its copy of the remote listing (`crate::listing`; `None`:
    /// every whole-tree scan lists it all), and whether the first scan lists it all
    /// anyway (`--rescan`).
    pub listing: Option<(std::path::PathBuf, bool)>,
}

/// Files this large have their signature asked for ahead (`expect_replacement`): below,
/// cutting the old copy takes less than a round trip's worth of waiting.
const EARLY_SIG_MIN: u64 = 16 << 20;
/// The most signatures asked for ahead and not yet used (each up to `delta::MAX_CHUNKS`
/// chunks of 36 bytes).
const EARLY_SIGS: usize = 16;

/// Whether `a` and `b` are the same version of a file, as stat tells.
fn same_version(a: &Entry, b: &Entry) -> bool {
    (&a.kind, a.ino, a.size, a.mtime) == (&b.kind, b.ino, b.size, b.mtime)
}

/// Answers routed to their callers, and why the connection ended when it did.
#[derive(Default)]
struct Shared {
    pending: Mutex<HashMap<u64, Sender<Msg>>>,
    lost: Mutex<Option<String>>,
    stats: Arc<Stats>,
    /// Where the agent's hints go (`SideRoot::watch`), and the id they carry.
    watch: Mutex<Option<(u64, Sender<TargetHint>)>>,
    /// The files whose delta did not rebuild them: sent whole from now on.
    whole: Mutex<HashSet<RelPath>>,
    /// When the connection was last heard from (`crate::keepalive`).
    heard: Heard,
    /// The connection ended (`end`).
    ended: AtomicBool,
    /// The threads writing requests, taking turns to flush them.
    turns: Turns,
    /// What is known of the agent's tree without asking (`crate::known`).
    known: Mutex<Known>,
    /// No answer was taken since the last round trip counted (`Stats::round_trips`).
    quiet: AtomicBool,
}

impl Shared {
    /// An answer was taken: the next request starts a round trip.
    fn took_answer(&self) {
        self.quiet.store(false, Ordering::Relaxed);
    }

    /// Waits for the answer `rx` brings, and takes it.
    fn take(&self, rx: &Receiver<Msg>) -> Result<Msg, crossbeam_channel::RecvError> {
        let answer = rx.recv();
        self.took_answer();
        answer
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Why the connection is gone, the first reason kept (what comes after is its echo:
    /// a write to an ssh already ended, for example).
    fn set_lost(&self, why: String) {
        let mut lost = self.lost.lock().unwrap_or_else(|p| p.into_inner());
        lost.get_or_insert(why);
    }

    /// The connection is gone (`why`, unless a reason was given before): every caller
    /// still waiting learns it, and so does a watching replicator, idle as it may be: it
    /// reconciles, finds the side unreachable, and connects again with backoff. Once.
    fn end(&self, why: String) {
        self.set_lost(why);
        {
            // Under the lock `request` registers callers with: none comes after the
            // clearing, to wait for an answer that nothing would ever route.
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            if self.ended.swap(true, Ordering::SeqCst) {
                return;
            }
            pending.clear();
        }
        let why = self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let why = why.unwrap_or_default();
        if let Some((_, tx)) = &*self.watch.lock().unwrap_or_else(|p| p.into_inner()) {
            let _ = tx.send(TargetHint::Rescan(format!(
                "the connection was lost: {why}"
            )));
        }
    }

    fn send_whole(&self, rel: &RelPath) {
        tracing::info!("{rel}: the delta did not rebuild the file; sending it whole");
        let mut w = self.whole.lock().unwrap_or_else(|p| p.into_inner());
        w.insert(rel.clone());
    }
}

/// A root on another machine.
pub struct RemoteSide {
    name: String,
    shared: Arc<Shared>,
    writer: Arc<Mutex<Option<Writer>>>,
    /// `--bwlimit` for what this side sends (taken with `writer`).
    pace: Mutex<Option<Pace>>,
    child: Arc<Mutex<Child>>,
    /// Dropped to stop the keepalive thread (`None`: the agent has no `keepalive`).
    keepalive: Option<Sender<()>>,
    next: AtomicU64,
    /// The connection's loss was logged.
    told: AtomicBool,
    compress: Compress,
    /// What the agent can do beyond the protocol's core (`wire::FEATURES`).
    features: Vec<String>,
    /// What the run keeps beyond content, as the agent was told.
    keep: WireKeep,
    /// Owners as the agent names them, mapped to this machine's ids and back.
    ids: Arc<Ids>,
    /// An agent that keeps no folder times was logged.
    told_times: AtomicBool,
    /// The folder did not exist and the agent created it.
    pub created: bool,
    /// The listing this client and the agent hold (`crate::listing`), when the agent
    /// announced `listing` and the pair keeps one.
    listing: Option<Mutex<Kept>>,
    /// A `Present` sent right after the request that comes before the root's check (a
    /// scan, a flush, folder times set), with its id: the answer of the next
    /// `still_present` if no other request was sent since (the agent answers it after
    /// everything sent before it, as it would a `Present` sent after the wait).
    present_ahead: Mutex<Option<(u64, Receiver<Msg>)>>,
    /// The id of the last `Present` the agent answered with its root there.
    confirmed: Mutex<Option<u64>>,
    /// Signatures asked for ahead of their install (`SideRoot::expect_replacement`): the
    /// entry each was asked for, and where its answer comes.
    early_sigs: Mutex<HashMap<RelPath, (Entry, Receiver<Msg>)>>,
}

/// The client's side of `crate::listing`.
struct Kept {
    file: std::path::PathBuf,
    key: String,
    /// The copy, as kept in `file` or as last received.
    copy: Option<Listing>,
    /// The next scan lists it all (`--rescan`, or a copy that did not rebuild).
    whole: bool,
    /// The copy was received and not yet confirmed (`SideRoot::committed`).
    fresh: bool,
    /// The token of the copy in `file`, as loaded or last written there.
    saved: Option<[u8; 32]>,
    /// What is written in `file` and its deltas (`listing::Written`).
    written: Option<listing::Written>,
    /// What `copy` differs in from the one saved, when known (appended as a delta).
    pending: Option<Vec<listing::Differ>>,
}

impl Kept {
    fn open(file: std::path::PathBuf, whole: bool) -> Kept {
        let Some((key, copy, written)) = listing::load_copy(&file) else {
            return Kept {
                whole,
                ..Kept::none(file)
            };
        };
        let copy = Some(copy);
        let saved = copy.as_ref().map(|c| c.token);
        Kept {
            file,
            key,
            copy,
            whole,
            fresh: false,
            saved,
            written: Some(written),
            pending: None,
        }
    }

    /// No copy held here: a new key, and the next scan lists it all.
    fn none(file: std::path::PathBuf) -> Kept {
        Kept {
            key: listing::new_key(&file),
            file,
            copy: None,
            whole: true,
            fresh: false,
            saved: None,
            written: None,
            pending: None,
        }
    }
}

type Writer = std::io::BufWriter<ChildStdin>;

/// The last lines ssh and the agent wrote on stderr (also logged as they come).
type Tail = Arc<Mutex<VecDeque<String>>>;

fn tail_text(tail: &Tail) -> String {
    let t = tail.lock().unwrap_or_else(|p| p.into_inner());
    t.iter().cloned().collect::<Vec<_>>().join("; ")
}

impl RemoteSide {
    /// Starts the agent over ssh and shakes hands with it.
    pub fn connect(c: &Connect) -> Result<RemoteSide, ConnectError> {
        // The pair's copy of the listing is read and checked while ssh connects: it is
        // needed only once the agent answered (off the path of every run).
        let kept = c
            .listing
            .clone()
            .map(|(file, whole)| std::thread::spawn(move || Kept::open(file, whole)));
        let mut cmd = c.command();
        tracing::debug!("remote: {cmd:?}");
        let mut child = cmd.spawn().map_err(|source| ConnectError::Spawn {
            program: cmd.get_program().to_string_lossy().into_owned(),
            source,
        })?;
        let tail: Tail = Arc::default();
        if let Some(err) = child.stderr.take() {
            let (tail, host) = (Arc::clone(&tail), c.target.host.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    tracing::warn!("{host}: {line}");
                    let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                    t.push_back(line);
                    if t.len() > 8 {
                        t.pop_front();
                    }
                }
            });
        }
        let (mut stdin, mut stdout) = match (child.stdin.take(), child.stdout.take()) {
            (Some(i), Some(o)) => (std::io::BufWriter::new(i), BufReader::new(o)),
            _ => return Err(WireError::Unexpected("no pipes to ssh".into()).into()),
        };
        let preamble = read_preamble(&mut stdout);
        let found_version = check_preamble(c, &preamble, &mut child, &tail)?;
        write_msg(
            &mut stdin,
            &Msg::Hello {
                protocol: PROTOCOL,
                features: FEATURES.iter().map(|f| f.to_string()).collect(),
                compress: c.compress,
            },
        )?;
        let (created, features) = read_welcome(c, &mut stdout, &mut child)?;
        let pace = limit(c, &features, &mut stdin)?;
        keep(c, &features, &found_version, &mut stdin)?;
        let shared = Arc::new(Shared::default());
        let reader = Arc::clone(&shared);
        std::thread::spawn(move || route_answers(&mut stdout, &reader));
        let line = Line {
            shared: Arc::clone(&shared),
            writer: Arc::new(Mutex::new(Some(stdin))),
            child: Arc::new(Mutex::new(child)),
        };
        let (writer, child) = (Arc::clone(&line.writer), Arc::clone(&line.child));
        let keepalive = line.keep_alive(&c.target.host, &features);
        let listing = kept
            .filter(|_| features.iter().any(|f| f == LISTING))
            .map(|opening| match opening.join() {
                Ok(kept) => kept,
                // A panic reading it: no copy, a whole listing.
                Err(_) => {
                    let (file, _) = c.listing.clone().unwrap_or_default();
                    Kept::none(file)
                }
            })
            .map(Mutex::new);
        Ok(RemoteSide {
            name: c.target.to_string(),
            shared,
            writer,
            pace: Mutex::new(pace),
            compress: c.compress,
            features,
            keep: c.keep,
            ids: Arc::new(Ids::new(c.keep.numeric_ids)),
            told_times: AtomicBool::new(false),
            child,
            keepalive,
            next: AtomicU64::new(1),
            told: AtomicBool::new(false),
            created,
            listing,
            present_ahead: Mutex::new(None),
            confirmed: Mutex::new(None),
            early_sigs: Mutex::default(),
        })
    }

    /// What crossed the wire so far.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.shared.stats)
    }

    /// The error every request gets once the connection is gone: EIO, which stops the run,
    /// saying why (and how ssh ended, when it did), told once in the log.
    fn lost(&self) -> FsError {
        let why = self
            .shared
            .lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut why = why.unwrap_or_else(|| "the connection was closed".into());
        if let Ok(Some(status)) = self
            .child
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .try_wait()
        {
            why = format!("{why}; ssh ended with {status}");
        }
        if !self.told.swap(true, Ordering::Relaxed) {
            tracing::warn!("{}: the connection was lost: {why}", self.name);
        }
        FsError::Io {
            path: format!("{} ({why})", self.name),
            op: "the connection was lost",
            source: std::io::Error::from_raw_os_error(EIO),
        }
    }

    fn send(&self, msg: &Msg) -> tandem_fs::Result<()> {
        let turns = &self.shared.turns;
        turns.queue();
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        turns.enter();
        let Some(w) = w.as_mut() else {
            return Err(self.lost());
        };
        let flush = turns.last();
        match write_frame(w, msg, flush) {
            Ok(n) => {
                // Written through: the far end is reading (`crate::keepalive`).
                if flush {
                    self.shared.heard.now();
                }
                let mut pace = self.pace.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(pace) = pace.as_mut() {
                    pace.sent(n);
                }
                self.shared
                    .stats
                    .wire_sent
                    .fetch_add(n as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.shared.set_lost(e.to_string());
                Err(self.lost())
            }
        }
    }

    /// Sends the request `make(id)` and returns where its answers will come.
    fn request(&self, make: impl FnOnce(u64) -> Msg) -> tandem_fs::Result<(u64, Receiver<Msg>)> {
        self.request_with(|_| None, make)
    }

    fn wait(&self, rx: &Receiver<Msg>) -> tandem_fs::Result<Msg> {
        self.shared.take(rx).map_err(|_| self.lost())
    }

    /// Waits for the entry a `Done` (or `DoneMeta`) carries.
    fn done(&self, rx: &Receiver<Msg>) -> tandem_fs::Result<Option<Entry>> {
        let msg = self.wait(rx)?;
        done_of(msg, &self.ids, self.keep).unwrap_or_else(|e| Err(self.garbled(e)))
    }

    /// An entry as the agent sent it, in this machine's terms: its owner mapped by name
    /// (`--owner`), the digest of its kept attributes.
    fn entry_here(&self, e: WireEntry, meta: Option<WireMeta>) -> Result<Entry, WireError> {
        entry_of(&self.ids, self.keep, e, meta)
    }

    /// What goes with an entry sent to the agent (`Msg::With`): the attributes given, its
    /// owner's names. `None` when the run keeps nothing beyond content.
    fn with(&self, id: u64, src: &Entry, xattrs: Option<&Xattrs>) -> Option<Msg> {
        if self.keep == WireKeep::default() {
            return None;
        }
        let (user, group) = match self.keep.owner {
            true => self.ids.names(src.owner),
            false => (None, None),
        };
        Some(Msg::With {
            id,
            xattrs: xattrs.map(|x| x.list().to_vec()),
            user,
            group,
        })
    }

    /// [`RemoteSide::request`], with `before(id)` sent first (`Msg::With`).
    fn request_with(
        &self,
        before: impl FnOnce(u64) -> Option<Msg>,
        make: impl FnOnce(u64) -> Msg,
    ) -> tandem_fs::Result<(u64, Receiver<Msg>)> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let msg = make(id);
        let (tx, rx) = unbounded();
        {
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            // Ended (`Shared::end`): the write below may still go through (ssh not yet
            // gone), but no answer would ever be routed.
            if self.shared.ended.load(Ordering::SeqCst) {
                return Err(self.lost());
            }
            if !self.shared.quiet.swap(true, Ordering::Relaxed) {
                let n = self
                    .shared
                    .stats
                    .round_trips
                    .fetch_add(1, Ordering::Relaxed)
                    + 1;
                tracing::debug!("{}: round trip {n}: {}", self.name, msg_name(&msg));
            }
            tracing::trace!("{}: request {id}: {}", self.name, msg_name(&msg));
            pending.insert(id, tx);
            let waiting = pending.len() as u64;
            self.shared
                .stats
                .most_in_flight
                .fetch_max(waiting, Ordering::Relaxed);
        }
        if let Some(first) = before(id) {
            self.send(&first)?;
        }
        self.send(&msg)?;
        Ok((id, rx))
    }

    fn garbled(&self, e: WireError) -> FsError {
        self.shared.set_lost(e.to_string());
        self.lost()
    }
}

/// An entry as the agent sent it, in this machine's terms: its owner mapped by name
/// (`--owner`), the digest of its kept attributes.
fn entry_of(
    ids: &Ids,
    keep: WireKeep,
    e: WireEntry,
    meta: Option<WireMeta>,
) -> Result<Entry, WireError> {
    let mut e = e.entry()?;
    if let Some(m) = meta {
        e.xattrs = m.xattrs.map(Hash);
        if keep.owner {
            e.owner = ids.here(e.owner, m.user.as_deref(), m.group.as_deref());
        }
    }
    Ok(e)
}

/// The entry a `Done` (or `DoneMeta`) carries; `Err`: not such an answer.
fn done_of(
    msg: Msg,
    ids: &Ids,
    keep: WireKeep,
) -> Result<tandem_fs::Result<Option<Entry>>, WireError> {
    let result = match msg {
        Msg::Done { result, .. } => result.map(|e| e.map(|e| (e, None))),
        Msg::DoneMeta { result, .. } => result.map(|e| e.map(|(e, m)| (e, Some(m)))),
        other => return Err(WireError::Unexpected(format!("{other:?}"))),
    };
    match result {
        Err(e) => Ok(Err(e.error())),
        Ok(None) => Ok(Ok(None)),
        Ok(Some((e, m))) => entry_of(ids, keep, e, m).map(|e| Ok(Some(e))),
    }
}

/// The error a request gets once the connection is gone (`RemoteSide::lost`, without
/// how ssh ended).
fn gone(name: &str, shared: &Shared) -> FsError {
    let why = shared
        .lost
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let why = why.unwrap_or_else(|| "the connection was closed".into());
    FsError::Io {
        path: format!("{name} ({why})"),
        op: "the connection was lost",
        source: std::io::Error::from_raw_os_error(EIO),
    }
}

/// The agent's answer to `Hello`: whether it created its folder, and its features.
fn read_welcome(
    c: &Connect,
    stdout: &mut impl Read,
    child: &mut Child,
) -> Result<(bool, Vec<String>), ConnectError> {
    match read_msg(stdout)? {
        Some((Msg::Welcome { created, features }, _)) => Ok((created, features)),
        Some((Msg::Refused { why }, _)) => {
            let _ = child.wait();
            Err(ConnectError::Refused {
                host: c.target.host.clone(),
                why,
            })
        }
        other => Err(WireError::Unexpected(format!("expected a welcome, got {other:?}")).into()),
    }
}

/// `--bwlimit`: the agent told the rate for what it sends; the pace for what this side
/// sends.
fn limit(
    c: &Connect,
    features: &[String],
    stdin: &mut impl std::io::Write,
) -> Result<Option<Pace>, ConnectError> {
    let Some(rate) = c.bwlimit else {
        return Ok(None);
    };
    if features.iter().any(|f| f == "bwlimit") {
        write_msg(stdin, &Msg::Limit { rate })?;
    } else {
        tracing::warn!(
            "the tandem on {} is older and cannot limit what it sends: --bwlimit holds only for what this side sends",
            c.target.host
        );
    }
    Ok(Some(Pace::new(rate)))
}

/// `--owner`, `--xattrs`, `--acls`, `--hard-links`: the agent told what the run keeps, once it was seen
/// to be able to (an older one is refused here, before anything is changed).
fn keep(
    c: &Connect,
    features: &[String],
    found_version: &str,
    stdin: &mut impl std::io::Write,
) -> Result<(), ConnectError> {
    if c.keep == WireKeep::default() {
        return Ok(());
    }
    let asked = [
        (c.keep.owner, "--owner", "owner"),
        (c.keep.xattrs, "--xattrs", "xattrs"),
        (c.keep.acls, "--acls", "xattrs"),
        (c.keep.hard_links, "--hard-links", "hard-links"),
    ];
    for (on, option, feature) in asked {
        if on && !features.iter().any(|f| f == feature) {
            return Err(ConnectError::Lacks {
                host: c.target.host.clone(),
                option,
                found_version: format!("tandem {found_version}"),
                version: env!("CARGO_PKG_VERSION"),
            });
        }
    }
    write_msg(stdin, &Msg::Keep { keep: c.keep })?;
    Ok(())
}

impl Connect {
    /// The ssh command that runs the agent there. ssh is told to notice a dead network by
    /// itself (`ServerAliveInterval`), unless the user's options say otherwise.
    fn command(&self) -> Command {
        let (program, args) = self
            .ssh
            .split_first()
            .map_or(("ssh", &[][..]), |(p, a)| (p.as_str(), a));
        let mut cmd = Command::new(program);
        cmd.args(args);
        let set = |o: &String| o.to_ascii_lowercase().contains("serveraliveinterval");
        if !args.iter().any(set) {
            cmd.args([
                "-o",
                "ServerAliveInterval=15",
                "-o",
                "ServerAliveCountMax=3",
            ]);
        }
        if let Some(port) = self.target.port {
            cmd.arg("-p").arg(port.to_string());
        }
        cmd.arg(self.target.destination())
            .arg(self.remote_command());
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// The command ssh runs there; the path quoted for the remote shell.
    fn remote_command(&self) -> String {
        let create = if self.create { " --create" } else { "" };
        format!(
            "{} serve{create} -- {}",
            self.remote_tandem,
            shell_quote(&self.target.path)
        )
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

const EIO: i32 = tandem_fs::error::libc_errno::EIO;

/// The agent's first line, before any frame (at most 200 bytes; empty at a closed pipe).
fn read_preamble(r: &mut impl Read) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < 200 {
        match r.read(&mut byte) {
            Ok(1) if byte[0] == b'\n' => break,
            Ok(1) => line.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// Checks the agent's first line; returns the version of tandem it names.
fn check_preamble(
    c: &Connect,
    line: &str,
    child: &mut Child,
    tail: &Tail,
) -> Result<String, ConnectError> {
    let host = c.target.host.clone();
    let version = env!("CARGO_PKG_VERSION");
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        [PREAMBLE, proto, found_version, ..] => match proto.parse::<u32>() {
            Ok(PROTOCOL) => Ok(found_version.to_string()),
            Ok(found) => Err(ConnectError::Version {
                host,
                found,
                found_version: found_version.to_string(),
                version,
            }),
            Err(_) => Err(not_tandem(c, line, tail)),
        },
        [] => {
            let status = child.wait().ok();
            // Let the stderr reader catch up with what ssh said last.
            std::thread::sleep(std::time::Duration::from_millis(100));
            let stderr = tail_text(tail);
            let code = status.and_then(|s| s.code());
            match code {
                Some(255) => Err(ConnectError::Ssh {
                    host,
                    code: "255".into(),
                    stderr,
                }),
                Some(126 | 127) => Err(ConnectError::Missing {
                    host,
                    remote_tandem: c.remote_tandem.clone(),
                    stderr,
                    version,
                }),
                _ => Err(not_tandem(c, "", tail)),
            }
        }
        _ => Err(not_tandem(c, line, tail)),
    }
}

fn not_tandem(c: &Connect, found: &str, tail: &Tail) -> ConnectError {
    let stderr = tail_text(tail);
    ConnectError::NotTandem {
        host: c.target.host.clone(),
        remote_tandem: c.remote_tandem.clone(),
        found: found.to_string(),
        stderr: if stderr.is_empty() {
            String::new()
        } else {
            format!(" (stderr: {stderr})")
        },
        version: env!("CARGO_PKG_VERSION"),
    }
}

/// A request's name, as the log shows it (`Install`, `Scan`...).
fn msg_name(msg: &Msg) -> String {
    let shown = format!("{msg:?}");
    let end = shown
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(shown.len());
    shown[..end].to_string()
}

/// The id an answer belongs to, and whether it is the last for that id.
fn answer_of(msg: &Msg) -> Option<(u64, bool)> {
    Some(match msg {
        Msg::Entries { id, .. }
        | Msg::EntriesMeta { id, .. }
        | Msg::Differs { id, .. }
        | Msg::Data { id, .. }
        | Msg::Copy { id, .. }
        | Msg::Whole { id, .. } => (*id, false),
        Msg::Opened { id, result } => (*id, result.is_err()),
        Msg::Scanned { id, .. }
        | Msg::Listed { id, .. }
        | Msg::Hashes { id, .. }
        | Msg::Done { id, .. }
        | Msg::DoneMeta { id, .. }
        | Msg::Times { id, .. }
        | Msg::TimesSet { id, .. }
        | Msg::Attrs { id, .. }
        | Msg::Held { id, .. }
        | Msg::Paths { id, .. }
        | Msg::Pruned { id, .. }
        | Msg::Checked { id, .. }
        | Msg::Sums { id, .. }
        | Msg::End { id, .. } => (*id, true),
        _ => return None,
    })
}

/// The reader thread: hands each answer to its caller until the connection ends.
fn route_answers(r: &mut impl Read, shared: &Shared) {
    let why = loop {
        match read_msg(r) {
            Ok(Some((msg, n))) => {
                shared.heard.now();
                shared
                    .stats
                    .wire_received
                    .fetch_add(n as u64, Ordering::Relaxed);
                if let Msg::Pong { .. } = msg {
                    continue;
                }
                if let Msg::Hints { id, hints } = msg {
                    match pass_hints(shared, id, hints) {
                        Ok(()) => continue,
                        Err(e) => break e.to_string(),
                    }
                }
                let Some((id, last)) = answer_of(&msg) else {
                    break format!("protocol error: an unexpected {msg:?}");
                };
                let mut pending = shared.pending.lock().unwrap_or_else(|p| p.into_inner());
                let tx = if last {
                    pending.remove(&id)
                } else {
                    pending.get(&id).cloned()
                };
                if let Some(tx) = tx {
                    let _ = tx.send(msg);
                }
            }
            Ok(None) => break "the remote side closed the connection".to_string(),
            Err(e) => break e.to_string(),
        }
    };
    shared.end(why);
}

/// The connection as the keepalive thread sees it.
struct Line {
    shared: Arc<Shared>,
    writer: Arc<Mutex<Option<Writer>>>,
    child: Arc<Mutex<Child>>,
}

impl Line {
    /// Starts the keepalive thread (`crate::keepalive`) if the agent answers pings and the
    /// user did not turn it off; what stops it, dropped.
    fn keep_alive(self, host: &str, features: &[String]) -> Option<Sender<()>> {
        let every = keepalive::interval()?;
        if !features.iter().any(|f| f == "keepalive") {
            tracing::info!(
                "the tandem on {host} is older and does not answer pings: a hung connection is noticed only when ssh gives up"
            );
            return None;
        }
        let (stop, stopped) = crossbeam_channel::bounded(0);
        let host = host.to_string();
        std::thread::spawn(move || keepalive::watch(self, every, host, stopped));
        Some(stop)
    }
}

impl keepalive::Line for Line {
    fn ping(&self, id: u64) -> bool {
        // A writer busy (blocked on a full pipe, or paced) is watched through `heard`.
        let Ok(mut w) = self.writer.try_lock() else {
            return true;
        };
        let Some(w) = w.as_mut() else {
            return false;
        };
        match write_msg(w, &Msg::Ping { id }) {
            Ok(n) => {
                let stats = &self.shared.stats;
                stats.wire_sent.fetch_add(n as u64, Ordering::Relaxed);
                true
            }
            Err(_) => false,
        }
    }

    fn ended(&self) -> bool {
        self.shared.ended.load(Ordering::SeqCst)
    }

    fn heard(&self) -> &Heard {
        &self.shared.heard
    }

    /// Every caller learns it at once; ssh is ended, so that a write blocked on it returns
    /// and the far end, stopped or not, is left.
    fn give_up(&self, why: String) {
        self.shared.end(why);
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        let _ = child.kill();
    }
}

/// Hands the agent's hints to the watching replicator, each path checked.
fn pass_hints(shared: &Shared, id: u64, hints: Vec<WireHint>) -> Result<(), WireError> {
    let watch = shared.watch.lock().unwrap_or_else(|p| p.into_inner());
    let Some((_, tx)) = watch.as_ref().filter(|(w, _)| *w == id) else {
        return Err(WireError::Unexpected(format!(
            "hints for an unknown watch {id}"
        )));
    };
    for h in hints {
        let h = h.hint()?;
        tracing::trace!("a hint from the agent: {h:?}");
        shared.known().hinted(&h);
        let _ = tx.send(h);
    }
    Ok(())
}

impl Drop for RemoteSide {
    fn drop(&mut self) {
        let _ = self.send(&Msg::Bye);
        // Closing its input ends the agent.
        drop(self.writer.lock().unwrap_or_else(|p| p.into_inner()).take());
        if self.keepalive.is_none() {
            let _ = self.child.lock().unwrap_or_else(|p| p.into_inner()).wait();
            return;
        }
        // An agent that does not end (hung) is given up by the keepalive thread, which
        // needs the child: waited for without holding it, looked at often (every run of
        // `tandem sync` ends here: a 20 ms step was 10 ms of it on average).
        loop {
            let exited = self
                .child
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .try_wait();
            if !matches!(exited, Ok(None)) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
}

/// A file's content coming from the remote side.
struct RemoteSource {
    chunks: Chunks,
    link: Option<Vec<u8>>,
    shared: Arc<Shared>,
    rel: RelPath,
}

impl Read for RemoteSource {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let before = self.chunks.literal;
        let n = self.chunks.read(buf)?;
        let came = self.chunks.literal - before;
        let stats = &self.shared.stats;
        stats.data_received.fetch_add(came, Ordering::Relaxed);
        Ok(n)
    }
}

impl Source for RemoteSource {
    fn link(&self) -> Option<&[u8]> {
        self.link.as_deref()
    }

    fn finish(&mut self) -> tandem_fs::Result<()> {
        let ended = self
            .chunks
            .ended
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let ended = ended.unwrap_or_else(|| {
            Err(FsError::raced(
                &RelPath::root(),
                "the file's content did not all arrive",
            ))
        });
        if let Err(FsError::Raced { what, .. }) = &ended {
            if what == DELTA_MISMATCH {
                self.shared.send_whole(&self.rel);
            }
        }
        ended
    }
}

fn bytes(p: &RelPath) -> Vec<u8> {
    p.as_bytes().to_vec()
}

impl SideRoot for RemoteSide {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn local(&self) -> Option<&Root> {
        None
    }

    fn scan(
        &self,
        filter: &Filter,
        threads: usize,
        hints: Option<&[(RelPath, bool)]>,
    ) -> tandem_fs::Result<Scan> {
        if let (None, Some(kept)) = (hints, &self.listing) {
            let mut kept = kept.lock().unwrap_or_else(|p| p.into_inner());
            return self.scan_listed(&mut kept, filter, threads);
        }
        if let Some(known) = hints.and_then(|h| self.scan_known(filter, h)) {
            return Ok(known);
        }
        let inputs = filter.inputs().clone();
        let mark = self.shared.known().mark();
        let (_, rx) = self.request(|id| Msg::Scan {
            id,
            ignore_file: inputs.ignore_file,
            excludes: inputs.excludes,
            includes: inputs.includes,
            threads: threads as u32,
            hints: hints.map(|h| h.iter().map(|(p, b)| (bytes(p), *b)).collect()),
        })?;
        self.ask_present_ahead();
        let mut tree = Tree::new();
        loop {
            match self.wait(&rx)? {
                Msg::Entries { batch, .. } => {
                    for (p, e) in batch {
                        let p = path_of(p).map_err(|e| self.garbled(e))?;
                        tree.insert(p, e.entry().map_err(|e| self.garbled(e))?);
                    }
                }
                Msg::EntriesMeta { batch, .. } => {
                    for (p, e, m) in batch {
                        let p = path_of(p).map_err(|e| self.garbled(e))?;
                        let e = self.entry_here(e, Some(m)).map_err(|e| self.garbled(e))?;
                        tree.insert(p, e);
                    }
                }
                Msg::Scanned { result, .. } => {
                    let stale = result.map_err(WireFsError::error)?;
                    if let Some(hints) = hints {
                        self.read_again(mark, hints, &tree);
                    }
                    let stale_temps = stale
                        .into_iter()
                        .map(path_of)
                        .collect::<Result<_, _>>()
                        .map_err(|e| self.garbled(e))?;
                    return Ok(Scan { tree, stale_temps });
                }
                other => return Err(self.garbled(WireError::Unexpected(format!("{other:?}")))),
            }
        }
    }

    fn hash(&self, want: &[(RelPath, Entry)], threads: usize) -> Vec<tandem_fs::Result<Hash>> {
        if want.is_empty() {
            return Vec::new();
        }
        let asked = || -> tandem_fs::Result<Vec<tandem_fs::Result<Hash>>> {
            let list = want
                .iter()
                .map(|(p, e)| (bytes(p), WireEntry::from(e)))
                .collect();
            let (_, rx) = self.request(|id| Msg::Hash {
                id,
                want: list,
                threads: threads as u32,
            })?;
            match self.wait(&rx)? {
                Msg::Hashes { results, .. } if results.len() == want.len() => Ok(results
                    .into_iter()
                    .map(|r| r.map(Hash).map_err(WireFsError::error))
                    .collect()),
                other => Err(self.garbled(WireError::Unexpected(format!("{other:?}")))),
            }
        };
        match asked() {
            Ok(r) => r,
            // EIO, as every other request: the run stops rather than fail file by file.
            Err(e) => want
                .iter()
                .map(|_| {
                    let source = match e.errno() {
                        Some(n) => std::io::Error::from_raw_os_error(n),
                        None => std::io::Error::other(e.to_string()),
                    };
                    Err(FsError::io(&RelPath::root(), "remote side", source))
                })
                .collect(),
        }
    }

    fn stat(&self, rel: &RelPath) -> tandem_fs::Result<Option<Entry>> {
        let (_, rx) = self.request(|id| Msg::Stat {
            id,
            path: bytes(rel),
        })?;
        self.done(&rx)
    }

    fn read(&self, rel: &RelPath, src: &Entry) -> tandem_fs::Result<Box<dyn Source + '_>> {
        self.read_onto(rel, src, None)
    }

    fn read_onto(
        &self,
        rel: &RelPath,
        src: &Entry,
        old: Option<(&Root, &Entry)>,
    ) -> tandem_fs::Result<Box<dyn Source + '_>> {
        let delta = old.and_then(|(root, old)| self.local_sig(root, rel, old, src));
        let wire_src = WireEntry::from(src);
        let (_, rx) = match &delta {
            Some((sig, _)) => self.request(|id| Msg::ReadDelta {
                id,
                path: bytes(rel),
                src: wire_src,
                sig: sig.clone(),
            })?,
            None => self.request(|id| Msg::Read {
                id,
                path: bytes(rel),
                src: wire_src,
            })?,
        };
        let link = match self.wait(&rx)? {
            Msg::Opened { result, .. } => result.map_err(WireFsError::error)?,
            other => return Err(self.garbled(WireError::Unexpected(format!("{other:?}")))),
        };
        Ok(Box::new(RemoteSource {
            chunks: Chunks::new(rx, rel).with_old(delta.map(|(_, old)| old)),
            link,
            shared: Arc::clone(&self.shared),
            rel: rel.clone(),
        }))
    }

    fn install(
        &self,
        rel: &RelPath,
        expect: Option<&Entry>,
        incoming: Incoming<'_>,
        trash: &Trash,
        durability: Durability,
    ) -> tandem_fs::Result<Entry> {
        let sig = expect.and_then(|old| self.remote_sig(rel, old, incoming.src));
        let (id, rx) = self.ask_install(rel, expect, &incoming, trash, durability)?;
        let sent = match &sig {
            Some(sig) => self.send_delta(id, rel, sig, incoming),
            None => self.send_data(id, rel, incoming),
        };
        let result = match &sent {
            Ok(()) => Ok(()),
            Err(e) => Err(WireFsError::from(e)),
        };
        self.send(&Msg::End { id, result })?;
        let done = self.done(&rx);
        match (&done, &sent) {
            (Ok(Some(e)), Ok(())) => self.shared.known().left(rel, Some(e.clone())),
            _ => self.shared.known().forget(rel),
        }
        sent?;
        if let (Err(FsError::Raced { what, .. }), Some(_)) = (&done, &sig) {
            if what == DELTA_MISMATCH {
                self.shared.send_whole(rel);
            }
        }
        done?.ok_or_else(|| FsError::raced(rel, "the remote side answered without an entry"))
    }

    /// Sent whole and not waited for, to an agent that finishes the files it receives
    /// before it flushes (`wire::FLUSH_AFTER`); a delta, whose signature is asked for
    /// first, or an older agent: [`SideRoot::install`].
    fn install_later(
        &self,
        rel: &RelPath,
        expect: Option<&Entry>,
        incoming: Incoming<'_>,
        trash: &Trash,
        durability: Durability,
    ) -> Later<tandem_fs::Result<Entry>> {
        let delta = expect.is_some_and(|old| self.delta_for(rel, old, incoming.src));
        if delta || !self.has(FLUSH_AFTER) {
            let installed = self.install(rel, expect, incoming, trash, durability);
            return Box::new(move || installed);
        }
        let sent = || -> tandem_fs::Result<Receiver<Msg>> {
            let (id, rx) = self.ask_install(rel, expect, &incoming, trash, durability)?;
            let sent = self.send_data(id, rel, incoming);
            let result = sent.as_ref().map(|_| ()).map_err(WireFsError::from);
            self.send(&Msg::End { id, result })?;
            sent.map(|()| rx)
        };
        let rx = match sent() {
            Ok(rx) => rx,
            Err(e) => {
                self.shared.known().forget(rel);
                return Box::new(move || Err(e));
            }
        };
        let (shared, ids, keep) = (Arc::clone(&self.shared), Arc::clone(&self.ids), self.keep);
        let (rel, name) = (rel.clone(), self.name.clone());
        Box::new(move || {
            let done = match shared.take(&rx) {
                Ok(msg) => done_of(msg, &ids, keep).unwrap_or_else(|e| {
                    shared.set_lost(e.to_string());
                    Err(gone(&name, &shared))
                }),
                Err(_) => Err(gone(&name, &shared)),
            };
            match &done {
                Ok(Some(e)) => shared.known().left(&rel, Some(e.clone())),
                _ => shared.known().forget(&rel),
            }
            done?.ok_or_else(|| FsError::raced(&rel, "the remote side answered without an entry"))
        })
    }

    fn apply(&self, step: Step<'_>, trash: &Trash) -> tandem_fs::Result<Option<Entry>> {
        let applied = self.apply_step(step, trash);
        self.note_step(step, &applied);
        applied
    }

    fn link(
        &self,
        anchor: &RelPath,
        anchor_expect: &Entry,
        path: &RelPath,
        expect: Option<&Entry>,
        trash: &Trash,
    ) -> tandem_fs::Result<Entry> {
        if !self.features.iter().any(|f| f == "hard-links") {
            return Err(FsError::CannotLink {
                path: path.to_string(),
                source: std::io::Error::other("the remote tandem makes no hard links"),
            });
        }
        let (_, rx) = self.request(|id| Msg::Link {
            id,
            anchor: bytes(anchor),
            anchor_expect: anchor_expect.into(),
            path: bytes(path),
            expect: expect.map(WireEntry::from),
            trash: trash.stamp().to_string(),
        })?;
        let linked = self.done(&rx).and_then(|e| {
            e.ok_or_else(|| FsError::raced(path, "the remote side answered without an entry"))
        });
        match &linked {
            Ok(e) => self.shared.known().left(path, Some(e.clone())),
            Err(_) => self.shared.known().forget(path),
        }
        linked
    }

    fn holds_hard_links(&self, dry_run: bool) -> bool {
        if !self.features.iter().any(|f| f == "hard-links") {
            return false;
        }
        let asked = || -> tandem_fs::Result<bool> {
            let (_, rx) = self.request(|id| Msg::HoldsLinks { id, dry_run })?;
            Ok(matches!(
                self.wait(&rx)?,
                Msg::Checked { result: Ok(()), .. }
            ))
        };
        asked().unwrap_or(false)
    }

    fn xattrs(&self, rel: &RelPath) -> tandem_fs::Result<Option<Xattrs>> {
        if !self.keep.xattrs && !self.keep.acls {
            return Ok(None);
        }
        let (_, rx) = self.request(|id| Msg::GetAttrs {
            id,
            path: bytes(rel),
        })?;
        match self.wait(&rx)? {
            Msg::Attrs { result, .. } => {
                let list = result.map_err(WireFsError::error)?;
                Ok(Some(Xattrs::from_list(list)))
            }
            other => Err(self.garbled(WireError::Unexpected(format!("{other:?}")))),
        }
    }

    fn holds(&self, paths: &[RelPath]) -> Vec<bool> {
        if paths.is_empty() || !self.has("trash") {
            // Unknown counts as held: a version is never taken for the last copy.
            return vec![true; paths.len()];
        }
        let asked = || -> tandem_fs::Result<Vec<bool>> {
            let list = paths.iter().map(bytes).collect();
            let (_, rx) = self.request(|id| Msg::Holds { id, paths: list })?;
            match self.wait(&rx)? {
                Msg::Held { held, .. } if held.len() == paths.len() => Ok(held),
                other => Err(self.garbled(WireError::Unexpected(format!("{other:?}")))),
            }
        };
        asked().unwrap_or_else(|_| vec![true; paths.len()])
    }

    fn prune_trash(
        &self,
        keep: &Retention,
        now: i64,
        other: &dyn SideRoot,
    ) -> tandem_fs::Result<Pruned> {
        if !self.has("trash") {
            // An error, not an empty prune: nothing is known of what its trash holds.
            return Err(FsError::Io {
                path: self.name.clone(),
                op: "the tandem serving it is older and prunes no trash: its trash only grows",
                source: std::io::ErrorKind::Unsupported.into(),
            });
        }
        let (_, rx) = self.request(|id| Msg::TrashPaths { id })?;
        let paths = match self.wait(&rx)? {
            Msg::Paths { result, .. } => result.map_err(WireFsError::error)?,
            other => return Err(self.garbled(WireError::Unexpected(format!("{other:?}")))),
        };
        if paths.is_empty() {
            return Ok(Pruned::default());
        }
        let paths = paths
            .into_iter()
            .map(path_of)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.garbled(e))?;
        let held = paths
            .iter()
            .zip(other.holds(&paths))
            .filter(|&(_, held)| held)
            .map(|(p, _)| bytes(p))
            .collect();
        let (_, rx) = self.request(|id| Msg::Prune {
            id,
            keep_secs: keep.keep.as_secs(),
            max_bytes: keep.max_bytes,
            versions: keep.versions as u64,
            now,
            held,
        })?;
        match self.wait(&rx)? {
            Msg::Pruned { result, .. } => {
                let [removed, freed, versions, bytes] = result.map_err(WireFsError::error)?;
                Ok(Pruned {
                    removed,
                    freed,
                    left: TrashUsage { versions, bytes },
                })
            }
            other => Err(self.garbled(WireError::Unexpected(format!("{other:?}")))),
        }
    }

    fn dir_mtimes(&self, dirs: &[RelPath]) -> Vec<Option<i64>> {
        self.dir_mtimes_later(dirs)()
    }

    fn dir_mtimes_later(&self, dirs: &[RelPath]) -> Later<Vec<Option<i64>>> {
        let n = dirs.len();
        // A folder whose time is unknown keeps its own: nothing is lost but the time.
        let unknown = move || vec![None; n];
        if dirs.is_empty() || !self.keeps_times() {
            return Box::new(unknown);
        }
        let paths = dirs.iter().map(bytes).collect();
        let Ok((_, rx)) = self.request(|id| Msg::DirTimes { id, paths }) else {
            return Box::new(unknown);
        };
        let shared = Arc::clone(&self.shared);
        Box::new(move || match shared.take(&rx) {
            Ok(Msg::Times { times, .. }) if times.len() == n => times,
            Ok(other) => {
                shared.set_lost(format!("protocol error: an unexpected {other:?}"));
                unknown()
            }
            Err(_) => unknown(),
        })
    }

    fn set_dir_mtimes(&self, times: &[(RelPath, i64)]) -> Vec<tandem_fs::Result<bool>> {
        self.set_dir_mtimes_later(times)()
    }

    fn set_dir_mtimes_later(
        &self,
        times: &[(RelPath, i64)],
    ) -> Later<Vec<tandem_fs::Result<bool>>> {
        let n = times.len();
        if n == 0 || !self.keeps_times() {
            return Box::new(move || (0..n).map(|_| Ok(false)).collect());
        }
        let failed = move |why: String| -> Vec<tandem_fs::Result<bool>> {
            (0..n)
                .map(|_| {
                    Err(FsError::io(
                        &RelPath::root(),
                        "remote side",
                        std::io::Error::other(why.clone()),
                    ))
                })
                .collect()
        };
        let list = times.iter().map(|(p, t)| (bytes(p), *t)).collect();
        let rx = match self.request(|id| Msg::SetDirTimes { id, times: list }) {
            Ok((_, rx)) => rx,
            Err(e) => return Box::new(move || failed(e.to_string())),
        };
        let shared = Arc::clone(&self.shared);
        Box::new(move || match shared.take(&rx) {
            Ok(Msg::TimesSet { results, .. }) if results.len() == n => results
                .into_iter()
                .map(|r| r.map_err(WireFsError::error))
                .collect(),
            Ok(other) => {
                let why = format!("protocol error: an unexpected {other:?}");
                shared.set_lost(why.clone());
                failed(why)
            }
            Err(_) => failed("the connection was lost".into()),
        })
    }

    fn flush(&self, durability: Durability) -> tandem_fs::Result<()> {
        let each_file = durability == Durability::EachFile;
        let (_, rx) = self.request(|id| Msg::Flush { id, each_file })?;
        self.ask_present_ahead();
        match self.wait(&rx)? {
            Msg::Checked { result, .. } => result.map_err(WireFsError::error),
            other => Err(self.garbled(WireError::Unexpected(format!("{other:?}")))),
        }
    }

    fn still_present(&self) -> bool {
        let last = |id: u64| self.next.load(Ordering::SeqCst) == id + 1;
        let confirmed = *self.confirmed.lock().unwrap_or_else(|p| p.into_inner());
        // Nothing was asked of the agent since it last said its root was there: nothing
        // could have been done in a root gone since.
        if confirmed.is_some_and(last) && !self.shared.ended.load(Ordering::SeqCst) {
            return true;
        }
        let asked = || -> tandem_fs::Result<bool> {
            let (id, rx) = match self.take_present_ahead() {
                Some(ahead) => ahead,
                None => self.request(|id| Msg::Present { id })?,
            };
            let present = matches!(self.wait(&rx)?, Msg::Checked { result: Ok(()), .. });
            if present {
                *self.confirmed.lock().unwrap_or_else(|p| p.into_inner()) = Some(id);
            }
            Ok(present)
        };
        // A connection gone: nothing more can be confirmed as done there.
        asked().unwrap_or(false)
    }

    /// The run committed: the listing last received becomes the base of the next scan,
    /// here (written to the pair's state folder) then on the agent (`Confirm`). Either
    /// failing is logged: the next scan lists it all.
    fn committed(&self) {
        // Chunks asked for ahead that the run did not use (a file only touched): a mount's
        // next pass asks again for what it needs.
        self.lock_early_sigs().clear();
        let Some(kept) = &self.listing else {
            return;
        };
        let mut kept = kept.lock().unwrap_or_else(|p| p.into_inner());
        let Some(copy) = kept.copy.as_ref().filter(|_| kept.fresh) else {
            return;
        };
        let (token, entries) = (copy.token, copy.entries.len());
        let started = std::time::Instant::now();
        let since = match (kept.written, kept.saved, &kept.pending) {
            (Some(w), Some(from), Some(d)) => Some((w, from, d.as_slice())),
            _ => None,
        };
        let saved = listing::save_copy(&kept.file, &kept.key, copy, since);
        if let Err(e) = &saved {
            kept.written = None;
            tracing::warn!(
                "cannot keep the listing of {} in {}: {e}",
                self.name,
                kept.file.display()
            );
            return;
        }
        (kept.fresh, kept.saved) = (false, Some(token));
        (kept.written, kept.pending) = (saved.ok(), Some(Vec::new()));
        tracing::debug!(
            "{}: listing of {entries} entries kept here in {:.1} ms",
            self.name,
            started.elapsed().as_secs_f64() * 1e3
        );
        let key = kept.key.clone();
        let confirmed = self
            .request(|id| Msg::Confirm { id, key, token })
            .and_then(|(_, rx)| self.wait(&rx));
        match confirmed {
            Ok(Msg::Checked { result: Ok(()), .. }) => {}
            other => tracing::warn!("{}: the listing was not kept there: {other:?}", self.name),
        }
    }

    /// A large file's signature asked for now, so that the agent cuts its old copy while
    /// this machine hashes the new one; at most [`EARLY_SIGS`] wait at once.
    fn expect_replacement(&self, rel: &RelPath, old: &Entry, new: &Entry) {
        if old.size < EARLY_SIG_MIN || !self.delta_for(rel, old, new) {
            return;
        }
        if self.lock_early_sigs().len() >= EARLY_SIGS {
            return;
        }
        if let Ok(rx) = self.ask_sig(rel, old) {
            tracing::debug!("{rel}: its chunks there asked for ahead");
            self.lock_early_sigs()
                .insert(rel.clone(), (old.clone(), rx));
        }
    }

    fn take_refusals(&self) -> Vec<Refusal> {
        Vec::new()
    }

    fn syncfs_is_durable(&self) -> bool {
        true
    }

    fn track_dirs(&self, _on: bool) {}

    /// The agent watches its root and sends hints back; the echoes of this side's own
    /// changes are recognised there (`echoes` here is not used).
    fn watch(&self, tx: Sender<TargetHint>, _echoes: Arc<Echoes>) -> Result<Watch, String> {
        if !self.features.iter().any(|f| f == "watch") {
            return Err(format!(
                "the tandem serving {} does not watch its folder (an older version): changes made there wait for the periodic rescan",
                self.name
            ));
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        *self.shared.watch.lock().unwrap_or_else(|p| p.into_inner()) = Some((id, tx));
        self.send(&Msg::Watch { id }).map_err(|e| e.to_string())?;
        Ok(Box::new(()))
    }

    fn lost(&self) -> Option<String> {
        self.shared
            .lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl RemoteSide {
    /// [`SideRoot::apply`], sent and its answer waited for.
    fn apply_step(&self, step: Step<'_>, trash: &Trash) -> tandem_fs::Result<Option<Entry>> {
        let listed = self.attrs_for(&step)?;
        let src = match step {
            Step::Mkdir { src, .. } | Step::SetMeta { src, .. } => Some(src),
            _ => None,
        };
        let step = match step {
            Step::Rename { from, to, expect } => WireStep::Rename {
                from: bytes(from),
                to: bytes(to),
                expect: expect.into(),
            },
            Step::Mkdir { path, src, .. } => WireStep::Mkdir {
                path: bytes(path),
                src: src.into(),
            },
            Step::SetMeta {
                path, src, expect, ..
            } => WireStep::SetMeta {
                path: bytes(path),
                src: src.into(),
                expect: expect.into(),
            },
            Step::Delete { path, expect } => WireStep::Delete {
                path: bytes(path),
                expect: expect.into(),
            },
            Step::RemoveStaleTemp { path } => WireStep::RemoveStaleTemp { path: bytes(path) },
        };
        let trash = trash.stamp().to_string();
        let with = |id| src.and_then(|src| self.with(id, src, listed.as_ref()));
        let (_, rx) = self.request_with(with, |id| Msg::Apply { id, step, trash })?;
        self.done(&rx)
    }

    /// What a step left, for what is known of the agent's tree (`crate::known`): a folder
    /// made or set, a file deleted; what a rename moved, a folder deleted and a step that
    /// failed are unknown from now on.
    fn note_step(&self, step: Step<'_>, r: &tandem_fs::Result<Option<Entry>>) {
        let mut known = self.shared.known();
        match (step, r) {
            (Step::Rename { from, to, .. }, _) => {
                known.forget(from);
                known.forget(to);
            }
            (Step::Mkdir { path, .. } | Step::SetMeta { path, .. }, Ok(Some(e))) => {
                known.left(path, Some(e.clone()));
            }
            (Step::Delete { path, expect }, Ok(_)) if !expect.is_dir() => known.left(path, None),
            (
                Step::Mkdir { path, .. }
                | Step::SetMeta { path, .. }
                | Step::Delete { path, .. }
                | Step::RemoveStaleTemp { path },
                _,
            ) => known.forget(path),
        }
    }

    /// A whole-tree scan as what differs from the listing `kept` holds (`ScanSince`); the
    /// whole listing asked again if what came does not rebuild the agent's.
    fn scan_listed(
        &self,
        kept: &mut Kept,
        filter: &Filter,
        threads: usize,
    ) -> tandem_fs::Result<Scan> {
        let base = if kept.whole { None } else { kept.copy.take() };
        let base_token = base.as_ref().map(|b| b.token);
        // What the base differs in from the copy saved (nothing: it is the one saved).
        let prior = match base_token {
            Some(t) if Some(t) == kept.saved => Some(Vec::new()),
            Some(_) => kept.pending.take(),
            None => None,
        };
        let mark = {
            let mut known = self.shared.known();
            known.drop_base();
            known.mark()
        };
        let (listing, stale, differs) = match self.scan_since(kept, filter, threads, base)? {
            Ok(got) => got,
            Err(why) => {
                tracing::warn!("{}: {why}; listing it all", self.name);
                match self.scan_since(kept, filter, threads, None)? {
                    Ok(got) => got,
                    Err(why) => return Err(self.garbled(WireError::Unexpected(why))),
                }
            }
        };
        self.shared.known().rebased(mark, filter.inputs().clone());
        let mut tree = Tree::new();
        for (p, (e, m)) in &listing.entries {
            let p = path_of(p.clone()).map_err(|e| self.garbled(e))?;
            let e = self.entry_here(e.clone(), Some(m.clone()));
            tree.insert(p, e.map_err(|e| self.garbled(e))?);
        }
        // Nothing to keep anew when the agent answered against the copy kept here and
        // nothing differed: both ends hold it already (a write and a round trip saved).
        let on_base = differs.is_some();
        let kept_already = on_base && base_token == kept.saved && kept.saved == Some(listing.token);
        kept.pending = prior.zip(differs).map(|(mut p, d)| {
            p.extend(d);
            p
        });
        (kept.copy, kept.whole, kept.fresh) = (Some(listing), false, !kept_already);
        let stale_temps = stale
            .into_iter()
            .map(path_of)
            .collect::<Result<_, _>>()
            .map_err(|e| self.garbled(e))?;
        Ok(Scan { tree, stale_temps })
    }

    /// One `ScanSince` against `base`: the listing it makes, the stale temporary files
    /// and, when the agent answered against `base`, what differed from it; or (inner
    /// `Err`) why what came does not make the agent's listing.
    #[allow(clippy::type_complexity)]
    fn scan_since(
        &self,
        kept: &Kept,
        filter: &Filter,
        threads: usize,
        base: Option<Listing>,
    ) -> tandem_fs::Result<Result<(Listing, Vec<Vec<u8>>, Option<Vec<listing::Differ>>), String>>
    {
        let inputs = filter.inputs().clone();
        let (_, rx) = self.request(|id| Msg::ScanSince {
            id,
            ignore_file: inputs.ignore_file,
            excludes: inputs.excludes,
            includes: inputs.includes,
            threads: threads as u32,
            key: kept.key.clone(),
            base: base.as_ref().map(|l| l.token),
        })?;
        self.ask_present_ahead();
        let mut differs = Vec::new();
        loop {
            match self.wait(&rx)? {
                Msg::Differs { batch, .. } => differs.extend(batch),
                Msg::Listed {
                    result,
                    since,
                    token,
                    ..
                } => {
                    let stale = result.map_err(WireFsError::error)?;
                    let start = match (since, base) {
                        (None, _) => Listing::default(),
                        (Some(t), Some(b)) if t == b.token => b,
                        _ => return Ok(Err("the agent's listing is against another".into())),
                    };
                    let n = differs.len();
                    let applied = since.is_some().then(|| differs.clone());
                    let listing = start.apply(differs);
                    if listing.token != token {
                        return Ok(Err("the listing did not rebuild the agent's".into()));
                    }
                    tracing::debug!(
                        "{}: {} entries listed, {n} differing from {}",
                        self.name,
                        listing.entries.len(),
                        if since.is_some() {
                            "the last"
                        } else {
                            "nothing"
                        }
                    );
                    return Ok(Ok((listing, stale, applied)));
                }
                other => return Err(self.garbled(WireError::Unexpected(format!("{other:?}")))),
            }
        }
    }

    /// A hinted scan answered from what is known of the agent's tree (`crate::known`):
    /// when every hinted path is known there and none is a folder to read below. The
    /// install that follows still carries the state expected and is re-checked there.
    fn scan_known(&self, filter: &Filter, hints: &[(RelPath, bool)]) -> Option<Scan> {
        let kept = self.listing.as_ref()?;
        let kept = kept.lock().unwrap_or_else(|p| p.into_inner());
        let base = kept.copy.as_ref()?;
        let known = self.shared.known();
        let listed = |p: &RelPath| -> Lookup {
            match base.entries.get(p.as_bytes()) {
                None => Some(None),
                Some((e, m)) => self.entry_here(e.clone(), Some(m.clone())).ok().map(Some),
            }
        };
        let mut tree = Tree::new();
        for (path, deep) in hints {
            if !known.usable(filter.inputs(), path) {
                return None;
            }
            let mut above = path.parent();
            while let Some(a) = above.filter(|a| !a.is_root()) {
                if let Some(e) = known.lookup(&a, listed)? {
                    tree.insert(a.clone(), e);
                }
                above = a.parent();
            }
            match known.lookup(path, listed)? {
                Some(e) if *deep && e.is_dir() => return None,
                Some(e) => {
                    tree.insert(path.clone(), e);
                }
                None => {}
            }
        }
        tracing::debug!(
            "{}: {} hinted paths known here, not scanned again",
            self.name,
            hints.len()
        );
        Some(Scan {
            tree,
            stale_temps: Vec::new(),
        })
    }

    /// A hinted scan asked at `mark` answered `tree`: what it read is known again
    /// (`Known::read_again`): the hinted paths and the folders above them.
    fn read_again(&self, mark: u64, hints: &[(RelPath, bool)], tree: &Tree) {
        let mut read = Vec::new();
        for (path, _) in hints {
            let mut at = Some(path.clone());
            while let Some(p) = at.filter(|p| !p.is_root()) {
                at = p.parent();
                read.push(p);
            }
        }
        read.sort();
        read.dedup();
        let found = |p: &RelPath| tree.get(p).cloned();
        self.shared.known().read_again(mark, &read, found);
    }

    /// Sends a `Present` now, for the next `still_present` (`present_ahead`).
    fn ask_present_ahead(&self) {
        let ahead = self.request(|id| Msg::Present { id }).ok();
        *self.present_ahead.lock().unwrap_or_else(|p| p.into_inner()) = ahead;
    }

    /// The answer to come of the `Present` sent ahead, if it was the last request sent.
    fn take_present_ahead(&self) -> Option<(u64, Receiver<Msg>)> {
        let ahead = self
            .present_ahead
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let (id, rx) = ahead?;
        (self.next.load(Ordering::SeqCst) == id + 1).then_some((id, rx))
    }

    /// Whether the agent announced `feature`.
    fn has(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }

    /// The agent reads and sets folder times (an older one does not: said once).
    fn keeps_times(&self) -> bool {
        let keeps = self.features.iter().any(|f| f == "dir-times");
        if !keeps && !self.told_times.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "the tandem serving {} is older and keeps no folder times: its folders keep the time of their last change",
                self.name
            );
        }
        keeps
    }

    /// The attributes a folder made or changed there gets, read where they are (this
    /// machine's other root, or the list the engine read): only where the step gives
    /// attributes (`tandem_fs::mkdir`, `set_meta`).
    fn attrs_for(&self, step: &Step<'_>) -> tandem_fs::Result<Option<Xattrs>> {
        if !self.keep.xattrs && !self.keep.acls {
            return Ok(None);
        }
        let (path, from, wanted) = match step {
            Step::Mkdir { path, src, from } => (*path, from, src.xattrs.is_some()),
            Step::SetMeta {
                path,
                src,
                expect,
                from,
            } => (*path, from, src.xattrs != expect.xattrs),
            _ => return Ok(None),
        };
        match from.filter(|_| wanted) {
            Some(AttrsFrom::Root(r)) => tandem_fs::read_xattrs(r, path),
            Some(AttrsFrom::Given(x)) => Ok(Some(x.clone())),
            None => Ok(None),
        }
    }

    /// Whether `rel`, `old` on the receiving side and `new` on the sending one, can go as a
    /// delta.
    fn delta_for(&self, rel: &RelPath, old: &Entry, new: &Entry) -> bool {
        let whole = self.shared.whole.lock().unwrap_or_else(|p| p.into_inner());
        old.kind == Kind::File
            && new.kind == Kind::File
            && delta::worth_it(old.size, new.size)
            && self.features.iter().any(|f| f == "delta")
            && !whole.contains(rel)
    }

    /// The chunks of the agent's old copy of `rel` (`old`), for a delta of `new` to it:
    /// asked for now, unless they were asked for ahead for that same `old`.
    fn remote_sig(&self, rel: &RelPath, old: &Entry, new: &Entry) -> Option<Sig> {
        if !self.delta_for(rel, old, new) {
            return None;
        }
        let early = self.lock_early_sigs().remove(rel);
        let rx = match early {
            Some((was, rx)) if same_version(&was, old) => {
                tracing::debug!("{rel}: the chunks asked for ahead are used");
                rx
            }
            _ => self.ask_sig(rel, old).ok()?,
        };
        match self.wait(&rx).ok()? {
            Msg::Sums {
                result: Ok(sig), ..
            } => Some(sig),
            other => {
                tracing::debug!("{rel}: no delta: {other:?}");
                None
            }
        }
    }

    /// Sends the `Install` of `rel` (after its `With`); its content is to follow.
    fn ask_install(
        &self,
        rel: &RelPath,
        expect: Option<&Entry>,
        incoming: &Incoming<'_>,
        trash: &Trash,
        durability: Durability,
    ) -> tandem_fs::Result<(u64, Receiver<Msg>)> {
        let with = |id| self.with(id, incoming.src, incoming.xattrs);
        self.request_with(with, |id| Msg::Install {
            id,
            path: bytes(rel),
            src: WireEntry::from(incoming.src),
            expect: expect.map(WireEntry::from),
            mode: incoming.mode,
            trash: trash.stamp().to_string(),
            each_file: durability == Durability::EachFile,
        })
    }

    fn ask_sig(&self, rel: &RelPath, old: &Entry) -> tandem_fs::Result<Receiver<Msg>> {
        let (_, rx) = self.request(|id| Msg::Signature {
            id,
            path: bytes(rel),
            expect: WireEntry::from(old),
        })?;
        Ok(rx)
    }

    fn lock_early_sigs(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<RelPath, (Entry, Receiver<Msg>)>> {
        self.early_sigs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The chunks of this side's old copy of `rel` (`old`) for the agent to send `new` as a
    /// delta, and that old copy opened for the `Copy`s to come.
    fn local_sig(
        &self,
        root: &Root,
        rel: &RelPath,
        old: &Entry,
        new: &Entry,
    ) -> Option<(Sig, Box<dyn OldCopy>)> {
        if !self.delta_for(rel, old, new) {
            return None;
        }
        let sig = (|| -> tandem_fs::Result<Sig> {
            let mut content = tandem_fs::open_content(root, rel, old)?;
            let sig = delta::signature(&mut content, old.size)
                .map_err(|e| FsError::io(rel, "read", e))?;
            content.finish()?;
            Ok(sig)
        })();
        match (sig, tandem_fs::open_content(root, rel, old)) {
            (Ok(sig), Ok(content)) => Some((sig, Box::new(content))),
            (Err(e), _) | (_, Err(e)) => {
                tracing::debug!("{rel}: no delta: {e}");
                None
            }
        }
    }

    /// Sends `incoming`'s content as a delta against `sig`, then the hash of the whole and
    /// the sender's check that the source did not change meanwhile.
    fn send_delta(
        &self,
        id: u64,
        rel: &RelPath,
        sig: &Sig,
        incoming: Incoming<'_>,
    ) -> tandem_fs::Result<()> {
        let mut failed = None;
        let known = incoming.src.hash.map(|h| h.0);
        let hash = encode_to(
            sig,
            (incoming.data, known),
            self.compress,
            id,
            &mut |msg, n| {
                let stats = &self.shared.stats;
                stats.data_sent.fetch_add(n as u64, Ordering::Relaxed);
                self.send(&msg).map_err(|e| {
                    let why = std::io::Error::other(e.to_string());
                    failed = Some(e);
                    why
                })
            },
        );
        match (hash, failed) {
            (_, Some(e)) => return Err(e),
            (Err(e), None) => return Err(FsError::io(rel, "read", e)),
            (Ok(hash), None) => self.send(&Msg::Whole { id, hash })?,
        }
        (incoming.verify)(None)
    }

    /// Sends `incoming`'s content in chunks; then the sender's check that the source did
    /// not change meanwhile (an error: the agent keeps nothing).
    fn send_data(&self, id: u64, rel: &RelPath, incoming: Incoming<'_>) -> tandem_fs::Result<()> {
        if incoming.src.kind == tandem_core::Kind::File {
            let mut buf = chunk_buf(incoming.src.size);
            loop {
                let n =
                    read_full(incoming.data, &mut buf).map_err(|e| FsError::io(rel, "read", e))?;
                if n == 0 {
                    break;
                }
                let (bytes, zstd) = pack(self.compress, &buf[..n]);
                grow_chunk_buf(&mut buf, n);
                self.send(&Msg::Data { id, bytes, zstd })?;
                self.shared
                    .stats
                    .data_sent
                    .fetch_add(n as u64, Ordering::Relaxed);
            }
        }
        (incoming.verify)(None)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args_of(ssh: &str) -> Vec<String> {
        let c = Connect {
            target: RemoteTarget::parse("me@host:/srv").unwrap(),
            ssh: ssh.split_whitespace().map(str::to_string).collect(),
            remote_tandem: "tandem".into(),
            create: false,
            compress: Compress::Auto,
            bwlimit: None,
            keep: WireKeep::default(),
            listing: None,
        };
        let cmd = c.command();
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// A side whose "ssh" is `cat`: alive, and taking every write.
    fn side_over_cat() -> RemoteSide {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = std::io::BufWriter::new(child.stdin.take().unwrap());
        RemoteSide {
            name: "host:/srv".into(),
            shared: Arc::default(),
            writer: Arc::new(Mutex::new(Some(stdin))),
            pace: Mutex::new(None),
            child: Arc::new(Mutex::new(child)),
            keepalive: None,
            next: AtomicU64::new(1),
            told: AtomicBool::new(false),
            compress: Compress::Off,
            features: Vec::new(),
            keep: WireKeep::default(),
            ids: Arc::new(Ids::new(false)),
            told_times: AtomicBool::new(false),
            created: false,
            listing: None,
            present_ahead: Mutex::new(None),
            confirmed: Mutex::new(None),
            early_sigs: Mutex::default(),
        }
    }

    /// Chunks are asked for ahead only for large files, at most `EARLY_SIGS` waiting, and
    /// forgotten when the run commits (else a mount's stale ones would stop it asking).
    #[test]
    fn issue_17_chunks_asked_for_ahead_are_bounded_and_forgotten_at_commit() {
        let mut side = side_over_cat();
        side.features = vec!["delta".into()];
        let big = |ino| Entry::file(EARLY_SIG_MIN, 1, 0o644, ino);
        let small = Entry::file(EARLY_SIG_MIN - 1, 1, 0o644, 1);
        side.expect_replacement(&RelPath::new(*b"small").unwrap(), &small, &small);
        assert!(
            side.lock_early_sigs().is_empty(),
            "a small file is cut on demand"
        );
        for i in 0..EARLY_SIGS as u64 + 4 {
            let rel = RelPath::new(format!("f{i}")).unwrap();
            side.expect_replacement(&rel, &big(i), &big(i + 100));
        }
        assert_eq!(side.lock_early_sigs().len(), EARLY_SIGS);
        side.committed();
        assert!(side.lock_early_sigs().is_empty());
    }

    /// A `Present` sent ahead answers the next check only while it is the last request
    /// sent: after any other, the check asks again (its answer would say nothing of what
    /// that request did).
    #[test]
    fn issue_17_a_present_sent_ahead_answers_only_if_nothing_was_sent_after_it() {
        let side = side_over_cat();
        side.ask_present_ahead();
        assert!(side.take_present_ahead().is_some());
        assert!(side.take_present_ahead().is_none(), "taken once");
        side.ask_present_ahead();
        let _stat = side
            .request(|id| Msg::Stat {
                id,
                path: b"a".to_vec(),
            })
            .unwrap();
        assert!(side.take_present_ahead().is_none());
    }

    /// The keepalive gives a connection up (`end`) before it ends ssh: a request made in
    /// between still writes through, and was left waiting for an answer for ever.
    #[test]
    fn issue_17_a_request_after_the_connection_was_given_up_fails_at_once() {
        let side = side_over_cat();
        side.shared.end("no answer from host for 3 s".into());
        let (tx, rx) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            let _ = tx.send(side.stat(&RelPath::root()).map_err(|e| e.to_string()));
        });
        let stat = rx.recv_timeout(std::time::Duration::from_secs(10));
        let why = stat.expect("the request still waits").unwrap_err();
        assert!(why.contains("no answer from host for 3 s"), "{why}");
    }

    #[test]
    fn issue_17_ssh_is_told_to_notice_a_dead_network_unless_the_user_said() {
        let args = args_of("ssh -p 2222");
        let at = args.iter().position(|a| a == "ServerAliveInterval=15");
        assert!(at.is_some(), "{args:?}");
        assert!(args.contains(&"ServerAliveCountMax=3".to_string()));
        // Before the destination, where ssh reads options.
        assert!(at < args.iter().position(|a| a == "me@host"), "{args:?}");
        for own in [
            "ssh -o ServerAliveInterval=60",
            "ssh -oserveraliveinterval=5",
        ] {
            let args = args_of(own);
            assert!(!args.iter().any(|a| a.ends_with("=15")), "{own}: {args:?}");
        }
    }
}
