//! The messages and their framing (see the crate's documentation for the conversation).
//!
//! A frame is a 4-byte little-endian length and that many bytes of one [`Msg`] in
//! `postcard`. The decoder trusts nothing: a frame longer than [`MAX_FRAME`] is refused
//! before anything is allocated for it, a payload that is not a whole message is an error,
//! and every path is checked to be relative and below the root (`RelPath::new`: no `..`,
//! no absolute path, no NUL) before any side looks at it.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use tandem_core::{Entry, Hash, Kind, Owner, RelPath};
use tandem_engine::watch::TargetHint;
use tandem_fs::FsError;

/// The protocol this build speaks. A peer with another number is refused at the handshake.
pub const PROTOCOL: u32 = 1;
/// What this build can do beyond the protocol's core (the handshake lists them so that
/// later builds can add some without a new protocol number): `delta`, a modified file sent
/// as what changed (`Signature`, `Sums`, `Copy`, `Whole`, `ReadDelta`); `bwlimit`, the
/// agent paces what it sends (`Limit`); `watch`, the agent answers `Watch` with `Hints`;
/// `dir-times`, folder times read and set (`DirTimes`, `SetDirTimes`); `xattrs` and
/// `owner`, the agent keeps what `Keep` asks (extended attributes and ACLs: `GetAttrs`,
/// `Attrs`; owners, mapped by name) and sends entries with it (`EntriesMeta`, `DoneMeta`).
/// `hard-links`, the agent makes another name of a file (`Link`, `HoldsLinks`); `trash`,
/// the agent prunes its trash to the retention (`Holds`, `TrashPaths`, `Prune`);
/// `removals`, the client reads the hints `Removed` and `Left` (`REMOVALS`); `keepalive`,
/// the agent answers `Ping` with `Pong` at once, whatever else it is doing; `listing`, a
/// whole-tree scan sent as what differs from the listing both ends hold (`LISTING`);
/// `flush-after-installs`, the agent flushes and sets folder times only once the files
/// whose data came before are in (`FLUSH_AFTER`).
pub const FEATURES: &[&str] = &[
    "delta",
    "bwlimit",
    "watch",
    "dir-times",
    "xattrs",
    "owner",
    "hard-links",
    "trash",
    REMOVALS,
    "keepalive",
    LISTING,
    FLUSH_AFTER,
];
/// The feature of an agent that finishes the files it was sent whole (their `End` came)
/// before it flushes or sets folder times: a client may send a file, the folder times
/// and the flush, and wait once for all their answers (a mount's pass).
pub const FLUSH_AFTER: &str = "flush-after-installs";
/// The feature of an agent that sends a whole-tree scan as what differs from the listing
/// the client holds (`ScanSince`, `Differs`, `Listed`, `Confirm`; `crate::listing`).
pub const LISTING: &str = "listing";
/// The feature of a client that decodes `WireHint::Removed` and `WireHint::Left`: an
/// agent sends them only to a client that announced it, and to an older client (whose
/// decoder would refuse the whole batch) the `Changed` hint it knows instead.
pub const REMOVALS: &str = "removals";
/// The first line the agent prints, before any frame: `tandem-serve <protocol> <version>`.
pub const PREAMBLE: &str = "tandem-serve";
/// The largest frame either side accepts.
pub const MAX_FRAME: usize = 16 << 20;
/// File data travels in chunks of this size.
pub const CHUNK: usize = 256 << 10;
/// Entries per scan batch.
pub const SCAN_BATCH: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("the connection failed: {0}")]
    Io(#[from] io::Error),
    #[error("protocol error: a frame of {0} bytes (at most {MAX_FRAME} are accepted)")]
    TooLong(usize),
    #[error("protocol error: a frame that is not a message ({0})")]
    Garbled(#[from] postcard::Error),
    #[error("protocol error: {0}")]
    Unexpected(String),
    #[error("protocol error: an invalid path: {0}")]
    Path(#[from] tandem_core::InvalidPath),
}

/// One entry as it travels.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireEntry {
    /// 0 file, 1 folder, 2 symlink, 3 special, 4 problem (`problem` says why).
    pub kind: u8,
    pub problem: Option<String>,
    pub size: u64,
    pub mtime: i64,
    pub mode: u32,
    pub ino: u64,
    pub hash: Option<[u8; 32]>,
    pub link: Option<Vec<u8>>,
    pub owner: Option<(u32, u32)>,
}

impl From<&Entry> for WireEntry {
    fn from(e: &Entry) -> WireEntry {
        let (kind, problem) = match &e.kind {
            Kind::File => (0, None),
            Kind::Dir => (1, None),
            Kind::Symlink => (2, None),
            Kind::Special => (3, None),
            Kind::Problem(why) => (4, Some(why.clone())),
        };
        WireEntry {
            kind,
            problem,
            size: e.size,
            mtime: e.mtime,
            mode: e.mode,
            ino: e.ino,
            hash: e.hash.map(|h| h.0),
            link: e.link.clone(),
            owner: e.owner.map(|o| (o.uid, o.gid)),
        }
    }
}

impl WireEntry {
    pub fn entry(self) -> Result<Entry, WireError> {
        let kind = match (self.kind, self.problem) {
            (0, _) => Kind::File,
            (1, _) => Kind::Dir,
            (2, _) => Kind::Symlink,
            (3, _) => Kind::Special,
            (4, why) => Kind::Problem(why.unwrap_or_default()),
            (k, _) => return Err(WireError::Unexpected(format!("an entry of kind {k}"))),
        };
        Ok(Entry {
            kind,
            size: self.size,
            mtime: self.mtime,
            mode: self.mode,
            ino: self.ino,
            hash: self.hash.map(Hash),
            link: self.link,
            owner: self.owner.map(|(uid, gid)| Owner { uid, gid }),
            xattrs: None,
        })
    }
}

/// What a run keeps beyond content (`tandem_core::Keep`).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireKeep {
    pub owner: bool,
    pub numeric_ids: bool,
    pub xattrs: bool,
    pub acls: bool,
    /// `--hard-links` (only checked against the agent's features).
    pub hard_links: bool,
    /// What only root may keep, as this side keeps it (`tandem_engine::keep_for_run`): the
    /// agent keeps it too if it runs as root, so that both sides read the same attributes.
    pub setid: bool,
    pub trusted: bool,
}

/// What travels with an entry once `Keep` asked for more than content: the digest of its
/// kept extended attributes, and its owner's user and group names (mapped on the
/// receiving side unless `numeric_ids`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireMeta {
    pub xattrs: Option<[u8; 32]>,
    pub user: Option<String>,
    pub group: Option<String>,
}

/// Extended attributes as they travel: (name, value), sorted by name.
pub type WireXattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// A side's error as it travels: enough to act on it as if it were local (planned again,
/// copied instead, or stopping the run for a full disk).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireFsError {
    /// 0 I/O, 1 raced, 2 vanished, 3 cannot link.
    pub kind: u8,
    pub path: String,
    pub message: String,
    pub errno: Option<i32>,
}

impl From<&FsError> for WireFsError {
    fn from(e: &FsError) -> WireFsError {
        let (kind, path, message) = match e {
            FsError::Io { path, op, source } => (0, path, format!("{op}: {source}")),
            FsError::Raced { path, what } => (1, path, what.clone()),
            FsError::Vanished { path } => (2, path, String::new()),
            FsError::CannotLink { path, source } => (3, path, source.to_string()),
        };
        WireFsError {
            kind,
            path: path.clone(),
            message,
            errno: e.errno(),
        }
    }
}

impl WireFsError {
    pub fn error(self) -> FsError {
        let source = match self.errno {
            Some(n) => io::Error::from_raw_os_error(n),
            None => io::Error::other(self.message.clone()),
        };
        match self.kind {
            1 => FsError::Raced {
                path: self.path,
                what: self.message,
            },
            2 => FsError::Vanished { path: self.path },
            3 => FsError::CannotLink {
                path: self.path,
                source,
            },
            _ => FsError::Io {
                path: self.path,
                op: "on the remote side",
                source: if self.errno.is_some() {
                    source
                } else {
                    io::Error::other(self.message)
                },
            },
        }
    }
}

pub type Res<T> = Result<T, WireFsError>;

/// A change other than new content (`tandem_engine::Step`), as it travels.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum WireStep {
    Rename {
        from: Vec<u8>,
        to: Vec<u8>,
        expect: WireEntry,
    },
    Mkdir {
        path: Vec<u8>,
        src: WireEntry,
    },
    SetMeta {
        path: Vec<u8>,
        src: WireEntry,
        expect: WireEntry,
    },
    Delete {
        path: Vec<u8>,
        expect: WireEntry,
    },
    RemoveStaleTemp {
        path: Vec<u8>,
    },
}

/// Every message, both ways. Requests carry an `id` that their answers repeat, so that
/// many can be in flight at once.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Msg {
    /// Client → agent, first: the protocol and features it speaks.
    Hello {
        protocol: u32,
        features: Vec<String>,
        /// How the agent compresses the file data it sends.
        compress: crate::compress::Compress,
    },
    /// The agent's answer: its root is open (`created`: it made the folder).
    Welcome {
        features: Vec<String>,
        created: bool,
    },
    /// The agent's answer: it cannot serve (its root missing, not a folder...).
    Refused {
        why: String,
    },
    Scan {
        id: u64,
        ignore_file: Option<String>,
        excludes: Vec<String>,
        includes: Vec<String>,
        threads: u32,
        hints: Option<Vec<(Vec<u8>, bool)>>,
    },
    /// Answers a scan, in batches...
    Entries {
        id: u64,
        batch: Vec<(Vec<u8>, WireEntry)>,
    },
    /// ...then its end: the stale temporary files it found, or why it failed.
    Scanned {
        id: u64,
        result: Res<Vec<Vec<u8>>>,
    },
    Hash {
        id: u64,
        want: Vec<(Vec<u8>, WireEntry)>,
        threads: u32,
    },
    Hashes {
        id: u64,
        results: Vec<Res<[u8; 32]>>,
    },
    Stat {
        id: u64,
        path: Vec<u8>,
    },
    /// Send the content of `path`, if it is still `src`: answered by `Opened`, then (when
    /// opened) its `Data` and an `End`.
    Read {
        id: u64,
        path: Vec<u8>,
        src: WireEntry,
    },
    /// `link`: a symlink's target.
    Opened {
        id: u64,
        result: Res<Option<Vec<u8>>>,
    },
    /// Write `path` from the `Data` and `End` that follow, if it is still `expect`: answered
    /// by `Done`.
    Install {
        id: u64,
        path: Vec<u8>,
        src: WireEntry,
        expect: Option<WireEntry>,
        mode: u32,
        trash: String,
        each_file: bool,
    },
    /// A chunk of a file's content, either way (`zstd`: compressed).
    Data {
        id: u64,
        bytes: Vec<u8>,
        zstd: bool,
    },
    /// The end of a file's content: an error says the source changed while it was read,
    /// and nothing may be kept.
    End {
        id: u64,
        result: Res<()>,
    },
    Apply {
        id: u64,
        step: WireStep,
        trash: String,
    },
    Flush {
        id: u64,
        each_file: bool,
    },
    Present {
        id: u64,
    },
    /// Answers `Stat`, `Install` and `Apply`.
    Done {
        id: u64,
        result: Res<Option<WireEntry>>,
    },
    /// Answers `Flush` (an empty `Ok`) and `Present` (`Err`: not present).
    Checked {
        id: u64,
        result: Res<()>,
    },
    /// Client → agent, last: nothing more will come.
    Bye,
    // Feature `delta` (`crate::delta`).
    /// The chunks of `path`'s content, if it is still `expect`: answered by `Sums`.
    Signature {
        id: u64,
        path: Vec<u8>,
        expect: WireEntry,
    },
    Sums {
        id: u64,
        result: Res<crate::delta::Sig>,
    },
    /// In a file's content, either way, in place of `Data`: `len` bytes at `offset` of the
    /// receiver's own old copy.
    Copy {
        id: u64,
        offset: u64,
        len: u64,
    },
    /// Before the `End` of content sent with `Copy`: the blake3 of the whole content.
    Whole {
        id: u64,
        hash: [u8; 32],
    },
    /// `Read`, sent as a delta against the chunks of the client's old copy.
    ReadDelta {
        id: u64,
        path: Vec<u8>,
        src: WireEntry,
        sig: crate::delta::Sig,
    },
    // Feature `bwlimit`.
    /// Client → agent: send at most this many bytes a second.
    Limit {
        rate: u64,
    },
    // Feature `watch`.
    /// Client → agent (feature `watch`): watch the root and send what changes there as
    /// `Hints` carrying this id, for as long as the connection lives.
    Watch {
        id: u64,
    },
    /// Agent → client: changes seen in its root since the last batch.
    Hints {
        id: u64,
        hints: Vec<WireHint>,
    },
    // Feature `dir-times`.
    /// The modification times of these folders: answered by `Times`.
    DirTimes {
        id: u64,
        paths: Vec<Vec<u8>>,
    },
    Times {
        id: u64,
        times: Vec<Option<i64>>,
    },
    /// Gives each folder its time, in order: answered by `TimesSet`.
    SetDirTimes {
        id: u64,
        times: Vec<(Vec<u8>, i64)>,
    },
    TimesSet {
        id: u64,
        results: Vec<Res<bool>>,
    },
    // Features `xattrs` and `owner`.
    /// Client → agent, right after `Welcome` (and `Limit`): what the run keeps. From then
    /// on the agent answers `Scan` with `EntriesMeta` and `Stat`, `Install`, `Apply` with
    /// `DoneMeta`.
    Keep {
        keep: WireKeep,
    },
    EntriesMeta {
        id: u64,
        batch: Vec<(Vec<u8>, WireEntry, WireMeta)>,
    },
    DoneMeta {
        id: u64,
        result: Res<Option<(WireEntry, WireMeta)>>,
    },
    /// The kept extended attributes of `path`: answered by `Attrs`.
    GetAttrs {
        id: u64,
        path: Vec<u8>,
    },
    Attrs {
        id: u64,
        result: Res<WireXattrs>,
    },
    // Feature `hard-links`.
    /// Makes `path` (still `expect`) another name of `anchor` (still `anchor_expect`):
    /// answered by `Done` (or `DoneMeta`).
    Link {
        id: u64,
        anchor: Vec<u8>,
        anchor_expect: WireEntry,
        path: Vec<u8>,
        expect: Option<WireEntry>,
        trash: String,
    },
    /// Whether the agent's file system holds hard links: answered by `Checked` (`Ok`: it
    /// does).
    HoldsLinks {
        id: u64,
        dry_run: bool,
    },
    // Feature `trash`.
    /// Which of these paths the agent's root holds: answered by `Held`.
    Holds {
        id: u64,
        paths: Vec<Vec<u8>>,
    },
    Held {
        id: u64,
        held: Vec<bool>,
    },
    /// The paths the versions in the agent's trash are of: answered by `Paths`.
    TrashPaths {
        id: u64,
    },
    Paths {
        id: u64,
        result: Res<Vec<Vec<u8>>>,
    },
    /// Prunes the agent's trash to the retention at `now` (ns); `held`, the paths the
    /// other side holds: answered by `Pruned`.
    Prune {
        id: u64,
        keep_secs: u64,
        max_bytes: u64,
        versions: u64,
        now: i64,
        held: Vec<Vec<u8>>,
    },
    /// Versions removed, bytes freed; versions and bytes left.
    Pruned {
        id: u64,
        result: Res<[u64; 4]>,
    },
    /// Client → agent, right before an `Install` or `Apply` of the same id: what the entry
    /// it sends carries beyond `WireEntry` (its extended attributes, when given; its
    /// owner's names).
    With {
        id: u64,
        xattrs: Option<WireXattrs>,
        user: Option<String>,
        group: Option<String>,
    },
    // Feature `keepalive`.
    /// Client → agent: are you there? Answered by `Pong` with the same id, ahead of any
    /// request still being worked on.
    Ping {
        id: u64,
    },
    Pong {
        id: u64,
    },
    // Feature `listing` (`crate::listing`).
    /// A whole-tree `Scan` for the client state `key`, sent as what differs from the
    /// listing whose token is `base` (the copy the client holds; `None`: send it all):
    /// answered by `Differs` batches, then `Listed`.
    ScanSince {
        id: u64,
        ignore_file: Option<String>,
        excludes: Vec<String>,
        includes: Vec<String>,
        threads: u32,
        key: String,
        base: Option<[u8; 32]>,
    },
    /// Entries changed or new (`Some`), or gone (`None`), in path order.
    Differs {
        id: u64,
        batch: Vec<crate::listing::Differ>,
    },
    /// The end of a `ScanSince`: the stale temporary files passed (as `Scanned`), the base
    /// the batches are against (`None`: against nothing, the whole listing) and the token
    /// of the listing they make.
    Listed {
        id: u64,
        result: Res<Vec<Vec<u8>>>,
        since: Option<[u8; 32]>,
        token: [u8; 32],
    },
    /// Client → agent, once its run committed: keep the listing `token`, the last sent for
    /// `key`, as the base of the next `ScanSince`: answered by `Checked`.
    Confirm {
        id: u64,
        key: String,
        token: [u8; 32],
    },
}

/// A watcher's hint (`tandem_engine::watch::TargetHint`) as it travels.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum WireHint {
    Changed { path: Vec<u8>, deep: bool },
    Writing(Vec<u8>),
    Closed(Vec<u8>),
    Again(Vec<u8>),
    Rescan(String),
    Removed { path: Vec<u8>, dir: bool },
    Left(Vec<u8>),
}

impl From<&TargetHint> for WireHint {
    fn from(h: &TargetHint) -> WireHint {
        let b = |p: &RelPath| p.as_bytes().to_vec();
        match h {
            TargetHint::Changed { path, deep } => WireHint::Changed {
                path: b(path),
                deep: *deep,
            },
            TargetHint::Writing(p) => WireHint::Writing(b(p)),
            TargetHint::Closed(p) => WireHint::Closed(b(p)),
            TargetHint::Again(p) => WireHint::Again(b(p)),
            TargetHint::Rescan(why) => WireHint::Rescan(why.clone()),
            TargetHint::Removed { path, dir } => WireHint::Removed {
                path: b(path),
                dir: *dir,
            },
            TargetHint::Left(p) => WireHint::Left(b(p)),
        }
    }
}

impl WireHint {
    /// `h` as a client that knows the hints `Removed` and `Left` (`removals`, from its
    /// `Hello`) or one that does not can read it. An older client is told to look at the
    /// path again (below it too, for a folder): it finds the deletion as it always did, not
    /// weighed by the delete brake as the watcher's own removal would be.
    pub fn for_client(h: &TargetHint, removals: bool) -> WireHint {
        match h {
            TargetHint::Removed { path, dir } if !removals => WireHint::Changed {
                path: path.as_bytes().to_vec(),
                deep: *dir,
            },
            TargetHint::Left(path) if !removals => WireHint::Changed {
                path: path.as_bytes().to_vec(),
                deep: true,
            },
            h => WireHint::from(h),
        }
    }

    /// The hint, its path checked like every path that arrives.
    pub fn hint(self) -> Result<TargetHint, WireError> {
        Ok(match self {
            WireHint::Changed { path, deep } => TargetHint::Changed {
                path: path_of(path)?,
                deep,
            },
            WireHint::Writing(p) => TargetHint::Writing(path_of(p)?),
            WireHint::Closed(p) => TargetHint::Closed(path_of(p)?),
            WireHint::Again(p) => TargetHint::Again(path_of(p)?),
            WireHint::Rescan(why) => TargetHint::Rescan(why),
            WireHint::Removed { path, dir } => TargetHint::Removed {
                path: path_of(path)?,
                dir,
            },
            WireHint::Left(p) => TargetHint::Left(path_of(p)?),
        })
    }
}

/// Writes `msg` as one frame.
pub fn write_msg(w: &mut impl Write, msg: &Msg) -> Result<usize, WireError> {
    write_frame(w, msg, true)
}

/// [`write_msg`], flushed only if `flush`: a writer whose frame another one will flush
/// ([`Turns`]).
pub fn write_frame(w: &mut impl Write, msg: &Msg, flush: bool) -> Result<usize, WireError> {
    let bytes = postcard::to_stdvec(msg)?;
    if bytes.len() > MAX_FRAME {
        return Err(WireError::TooLong(bytes.len()));
    }
    w.write_all(&(bytes.len() as u32).to_le_bytes())?;
    w.write_all(&bytes)?;
    if flush {
        w.flush()?;
    }
    Ok(bytes.len() + 4)
}

/// The threads writing frames to one buffered stream, taking turns: a frame is flushed
/// only by the last writer in line, so that the frames many threads write at once (small
/// answers, pipelined requests) leave in a few writes, each one system call and one ssh
/// packet, rather than one each; and the last one is never left in the buffer.
#[derive(Debug, Default)]
pub struct Turns(std::sync::atomic::AtomicUsize);

impl Turns {
    /// Before taking the stream's lock.
    pub fn queue(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Once the lock is held.
    pub fn enter(&self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// After writing, the lock still held: whether to flush (no other writer waits to
    /// write, and flush, after this one).
    pub fn last(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst) == 0
    }
}

/// A buffer to read a file of `size` bytes into, chunk by chunk: no bigger than the file
/// and one byte (most files are small, and zeroing a whole chunk for each cost more than
/// sending it), grown by [`grow_chunk_buf`] if the file turns out longer.
pub fn chunk_buf(size: u64) -> Vec<u8> {
    vec![0u8; size.saturating_add(1).min(CHUNK as u64) as usize]
}

/// After a read that filled `buf`: twice as big, up to a chunk.
pub fn grow_chunk_buf(buf: &mut Vec<u8>, filled: usize) {
    if filled == buf.len() && buf.len() < CHUNK {
        buf.resize((buf.len() * 2).min(CHUNK), 0);
    }
}

/// Reads one frame; `None` at a clean end of the stream (between frames).
pub fn read_msg(r: &mut impl Read) -> Result<Option<(Msg, usize)>, WireError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(WireError::TooLong(len));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    Ok(Some((postcard::from_bytes(&buf)?, len + 4)))
}

pub fn path_of(bytes: Vec<u8>) -> Result<RelPath, WireError> {
    Ok(RelPath::new(bytes)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_message_comes_back_as_it_went() {
        let msg = Msg::Stat {
            id: 7,
            path: b"a/b".to_vec(),
        };
        let mut buf = Vec::new();
        write_msg(&mut buf, &msg).unwrap();
        let (back, n) = read_msg(&mut buf.as_slice()).unwrap().unwrap();
        assert_eq!((back, n), (msg, buf.len()));
    }

    /// What reaches the pipe: each write the buffer lets through.
    #[derive(Clone, Default)]
    struct Pipe(std::sync::Arc<std::sync::Mutex<Vec<usize>>>);

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().push(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Writes `msg` as a thread of a connection does: in line, then under the lock.
    fn send(w: &std::sync::Mutex<io::BufWriter<Pipe>>, turns: &Turns, msg: &Msg) {
        turns.queue();
        let mut w = w.lock().unwrap();
        turns.enter();
        write_frame(&mut *w, msg, turns.last()).unwrap();
    }

    #[test]
    fn issue_17_frames_written_while_others_wait_leave_together_and_the_last_is_flushed() {
        let pipe = Pipe::default();
        let w = std::sync::Mutex::new(io::BufWriter::new(pipe.clone()));
        let turns = Turns::default();
        let msg = |id| Msg::Stat {
            id,
            path: b"a".to_vec(),
        };
        // Two more writers in line behind the first: only the third flushes.
        turns.queue();
        turns.queue();
        send(&w, &turns, &msg(1));
        assert!(pipe.0.lock().unwrap().is_empty(), "the first frame waits");
        turns.enter();
        write_frame(&mut *w.lock().unwrap(), &msg(2), turns.last()).unwrap();
        assert!(pipe.0.lock().unwrap().is_empty(), "so does the second");
        turns.enter();
        write_frame(&mut *w.lock().unwrap(), &msg(3), turns.last()).unwrap();
        assert_eq!(pipe.0.lock().unwrap().len(), 1, "three frames, one write");
        // Many threads at once: whatever the interleaving, nothing stays in the buffer.
        std::thread::scope(|s| {
            for t in 0..8 {
                let (w, turns) = (&w, &turns);
                s.spawn(move || (0..500).for_each(|i| send(w, turns, &msg(t * 1000 + i))));
            }
        });
        assert!(w.lock().unwrap().buffer().is_empty());
        let written: usize = pipe.0.lock().unwrap().iter().sum();
        let mut one = Vec::new();
        let frame = write_msg(&mut one, &msg(1)).unwrap();
        assert!(written >= 3 * frame + 4000 * (frame - 1), "{written} bytes");
    }

    #[test]
    fn issue_17_a_small_file_gets_a_small_buffer_and_one_that_grew_is_still_read_whole() {
        assert_eq!(chunk_buf(20).len(), 21);
        assert_eq!(chunk_buf(u64::MAX).len(), CHUNK);
        // Scanned at 10 bytes, 1,000,000 when read: every byte comes, in growing chunks.
        let file: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let (mut r, mut buf, mut got, mut sizes) =
            (file.as_slice(), chunk_buf(10), Vec::new(), Vec::new());
        loop {
            let n = crate::agent::read_full(&mut r, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            sizes.push(n);
            grow_chunk_buf(&mut buf, n);
        }
        assert!(got == file);
        assert_eq!(sizes[..3], [11, 22, 44]);
        assert!(sizes.iter().all(|&n| n <= CHUNK) && sizes.contains(&CHUNK));
    }

    #[test]
    fn issue_17_an_oversized_frame_is_refused_before_it_is_read() {
        let mut buf = (u32::MAX).to_le_bytes().to_vec();
        buf.extend_from_slice(&[0; 16]);
        assert!(matches!(
            read_msg(&mut buf.as_slice()),
            Err(WireError::TooLong(_))
        ));
    }

    #[test]
    fn issue_17_paths_out_of_the_root_are_refused() {
        for bad in [&b"../x"[..], b"/etc/passwd", b"a/../../b", b"a\0b", b"a//b"] {
            assert!(path_of(bad.to_vec()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn issue_17_hints_come_back_as_they_went_and_paths_out_of_the_root_are_refused() {
        let hint = TargetHint::Changed {
            path: RelPath::new(b"a/b".to_vec()).unwrap(),
            deep: true,
        };
        let msg = Msg::Hints {
            id: 3,
            hints: vec![WireHint::from(&hint)],
        };
        let mut buf = Vec::new();
        write_msg(&mut buf, &msg).unwrap();
        let Some((Msg::Hints { hints, .. }, _)) = read_msg(&mut buf.as_slice()).unwrap() else {
            panic!("not hints");
        };
        assert_eq!(hints[0].clone().hint().unwrap(), hint);
        for bad in [&b"../x"[..], b"/etc", b"a\0b"] {
            assert!(WireHint::Closed(bad.to_vec()).hint().is_err(), "{bad:?}");
        }
    }

    /// The hints of the first agents that watched (issue 17), as an older client decodes
    /// them: `Removed` and `Left` are not among them.
    #[derive(Debug, Deserialize, PartialEq, Eq)]
    enum OlderWireHint {
        Changed { path: Vec<u8>, deep: bool },
        Writing(Vec<u8>),
        Closed(Vec<u8>),
        Again(Vec<u8>),
        Rescan(String),
    }

    fn removals() -> Vec<TargetHint> {
        let p = |s: &str| RelPath::new(s.as_bytes().to_vec()).unwrap();
        vec![
            TargetHint::Removed {
                path: p("a/f"),
                dir: false,
            },
            TargetHint::Removed {
                path: p("a/d"),
                dir: true,
            },
            TargetHint::Left(p("moved")),
        ]
    }

    #[test]
    fn issue_18_a_client_that_knows_removals_gets_them_as_they_are() {
        let sent: Vec<WireHint> = removals()
            .iter()
            .map(|h| WireHint::for_client(h, true))
            .collect();
        let bytes = postcard::to_stdvec(&sent).unwrap();
        let back: Vec<WireHint> = postcard::from_bytes(&bytes).unwrap();
        let hints: Vec<TargetHint> = back.into_iter().map(|h| h.hint().unwrap()).collect();
        assert_eq!(hints, removals());
        // What an older client could not have read: why the feature is needed.
        assert!(postcard::from_bytes::<Vec<OlderWireHint>>(&bytes).is_err());
    }

    #[test]
    fn issue_18_an_older_client_gets_removals_as_changes_it_can_decode() {
        let sent: Vec<WireHint> = removals()
            .iter()
            .map(|h| WireHint::for_client(h, false))
            .collect();
        let bytes = postcard::to_stdvec(&sent).unwrap();
        let older: Vec<OlderWireHint> = postcard::from_bytes(&bytes).unwrap();
        let changed = |p: &str, deep| OlderWireHint::Changed {
            path: p.as_bytes().to_vec(),
            deep,
        };
        assert_eq!(
            older,
            vec![
                changed("a/f", false),
                changed("a/d", true),
                changed("moved", true)
            ]
        );
        // The other hints are the same either way.
        let p = RelPath::new(b"x".to_vec()).unwrap();
        for h in [TargetHint::Closed(p.clone()), TargetHint::Writing(p)] {
            assert_eq!(WireHint::for_client(&h, false), WireHint::from(&h));
        }
    }

    proptest! {
        /// Random and mutated frames: an error or a message, never a panic, and never
        /// more allocated than the frame limit.
        #[test]
        fn issue_17_the_decoder_survives_garbage(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            flip in any::<usize>(),
        ) {
            let _ = read_msg(&mut bytes.as_slice());
            let mut framed = Vec::new();
            write_msg(&mut framed, &Msg::Data { id: 1, bytes: bytes.clone(), zstd: flip % 2 == 0 }).unwrap();
            let i = flip % framed.len();
            framed[i] ^= 0x5a;
            let _ = read_msg(&mut framed.as_slice());
        }
    }
}
