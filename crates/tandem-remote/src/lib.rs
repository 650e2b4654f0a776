//! A remote side: one root of a pair on another machine, reached over OpenSSH.
//!
//! Owns the protocol between a tandem and `tandem serve ROOT` on the far machine (run by
//! the user's own `ssh`, which carries its stdin and stdout), the client side
//! ([`RemoteSide`], a `tandem_engine::SideRoot`) and the agent ([`serve`], a local side
//! there). It decides nothing (the client's engine does) and has no transport of its own.
//! It must never let a peer make either side read or write outside its root: every path
//! that arrives is checked to be relative and below the root, every frame's size bounded.
//!
//! # The protocol (version [`wire::PROTOCOL`])
//! 1. The agent prints one line: `tandem-serve <protocol> <tandem version>`. A client that
//!    reads anything else (a shell's "not found", an old tandem's usage text) says what it
//!    found and what it needs, and stops.
//! 2. Then frames both ways: a 4-byte little-endian length, then one [`wire::Msg`] encoded
//!    with `postcard` (at most [`wire::MAX_FRAME`] bytes). The client sends `Hello`
//!    (protocol, features); the agent answers `Welcome` (features; whether it created its
//!    root, asked with `serve --create` on a first sync) or `Refused` (why).
//! 3. Requests carry an id that their answers repeat, and are pipelined: the client never
//!    waits for one answer to send the next request, and many files are in flight at once.
//!    - `Scan` → `Entries` in batches of [`wire::SCAN_BATCH`], then `Scanned` (the agent
//!      scans and filters its own tree, stat first).
//!    - `Hash` (the files whose stat could not settle a question, as the client's baseline
//!      says: a sync with nothing changed asks for none) → `Hashes`.
//!    - `Read` → `Opened`, the file's `Data` in chunks of [`wire::CHUNK`] (each zstd or
//!      not, as `Hello`'s `compress` asks: [`compress`]), `End` (its
//!      check that the file did not change while it was read).
//!    - `Install` + `Data`... + `End` → `Done` (the new entry). The agent writes a
//!      temporary file, renames it into place only after `End` says the source held
//!      still, and only if the path is still what the plan saw; a connection cut mid-file
//!      leaves no torn file, only the temporary one, removed.
//!    - `Apply` (rename, mkdir, set metadata, delete to the agent's trash) → `Done`;
//!      `Stat` → `Done`; `Flush` and `Present` → `Checked`. The agent answers `Scan`,
//!      `Flush`, `Present` and the folder times in the order they came, so the client
//!      sends the `Present` that checks its root right behind a `Scan` or a `Flush`, and
//!      the folder times a sync sets right before its `Flush`, and waits once for all.
//!      The debug log counts each request sent while none was waiting: the round trips a
//!      run waited out.
//!    - Feature `delta` ([`delta`]): a file that exists on the receiving side in an older
//!      version (both at least [`delta::DELTA_MIN`]) travels as what changed. Sending to
//!      the agent: `Signature` → `Sums` (the chunks of the agent's old copy), then
//!      `Install` whose content is `Copy` (bytes of the agent's old copy) and `Data`, then
//!      `Whole` (the blake3 of the whole content) and `End`. Receiving from it: `ReadDelta`
//!      (a `Read` with the chunks of the client's old copy) → `Opened`, `Copy` and `Data`,
//!      `Whole`, `End`. A receiver keeps nothing that does not hash to `Whole`; the copy is
//!      then made again, whole.
//!    - Feature `bwlimit`: `Limit` (after `Welcome`) caps the bytes a second the agent
//!      sends; the client paces what it sends itself.
//!    - Feature `dir-times`: `DirTimes` → `Times` (the folders' modification times),
//!      `SetDirTimes` → `TimesSet`, each for all the folders of a sync at once.
//!    - Features `xattrs` and `owner`: `Keep` (after `Welcome`, before any request) says
//!      what the run keeps (`--xattrs`, `--acls`, `--owner`, `--numeric-ids`); the agent's
//!      root keeps it, and its entries travel as `EntriesMeta` and `DoneMeta` with the
//!      digest of their kept attributes and their owner's user and group names. `GetAttrs`
//!      → `Attrs` reads an entry's attributes; `With`, sent right before an `Install` or
//!      `Apply` of the same id, gives the attributes and the owner's names of the entry it
//!      sends. Owners are mapped by name on the receiving machine (`ids`).
//!    - Feature `hard-links`: `Link` → `Done` (another name of a file there),
//!      `HoldsLinks` → `Checked`.
//!    - A client that needs a feature the agent did not announce (an older tandem)
//!      refuses the option at connection, before anything changes.
//!    - `Watch` (feature `watch`; a mount's replicator) → `Hints`, unasked, for as long as
//!      the connection lives: the agent watches its root with the same watcher as a local
//!      target (`tandem_engine::watch`), each batch of its hints (a path to look at again,
//!      below it too or not; a file being written; its close; a folder to read again; a
//!      rescan) carrying the `Watch`'s id. The folders, renames and files the agent makes
//!      itself are recognised there and not sent back. A path removed or moved out of the
//!      root (`Removed`, `Left`: deletions the delete brake counts) is told so only to a
//!      client whose `Hello` lists the feature `removals`; an older one, whose decoder
//!      knows neither, is told to look at that path again (`Changed`).
//!    - `Ping` (feature `keepalive`) → `Pong`, answered by the agent's reading thread at
//!      once, whatever it is busy with: a connection that hangs without closing is given
//!      up after a bounded time, as if it had dropped ([`keepalive`]).
//!    - Feature `listing` ([`listing`]): `ScanSince` (a whole-tree `Scan` for the client
//!      state `key`, against the listing whose token the client holds) → `Differs` (what
//!      changed, was added or went), then `Listed` (the token of the listing they make). A
//!      client whose copy does not rebuild it asks for the whole listing. Once its run
//!      committed, `Confirm` → `Checked`: both ends keep that listing as the next base.
//! 4. `Bye`, or the end of the client's input, ends the agent, once the files it was
//!    receiving have removed their temporary files.
//!
//! A dropped connection fails every request still waiting with EIO, which stops the run
//! cleanly: what was confirmed is committed, the rest is done by the next run. A mount's
//! replicator is told at once (a `Rescan` hint), pauses that target with its backlog kept
//! in the journal, and connects again with backoff ([`mounted_session`]).

pub mod agent;
pub mod client;
pub mod compress;
pub mod delta;
mod ids;
pub mod keepalive;
pub(crate) mod known;
pub mod listing;
pub mod pace;
mod run;
pub mod target;
pub mod wire;
mod workers;

pub use agent::{serve, ServeError};
pub use client::{Connect, ConnectError, RemoteSide, Stats};
pub use compress::Compress;
pub use pace::parse_rate;
pub use run::{mounted_session, sync_scoped, sync_until, RemoteSyncError};
pub use target::RemoteTarget;
