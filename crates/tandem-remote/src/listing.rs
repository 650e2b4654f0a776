//! Feature `listing`: a whole-tree scan sent as what differs from the listing both ends
//! already hold, so that a sync with nothing changed on the far side receives an empty
//! change set, not its whole tree.
//!
//! Each end keeps, per pair, the listing the agent last sent and the client committed (the
//! client in its pair's state folder, the agent under its root's `.tandem/listings`, named
//! by a key the client made). The client sends the token (the blake3 of the listing, in
//! path order) of the copy it holds; an agent whose record has that token sends only the
//! entries that changed, were added or went, and the token of the listing they make. The
//! client applies them to its copy and keeps the result only if it hashes to that token;
//! anything else (a record lost, stale or corrupt on either end; a client state made
//! afresh) is a whole listing, asked again. The agent still scans, stats and filters its
//! whole tree every time: only what crosses the wire shrinks.
//!
//! A listing becomes the next base only once the client's run committed its outcome
//! (`SideRoot::committed`): the client writes its copy, then tells the agent (`Confirm`),
//! which writes its record. A crash in between leaves the two tokens different: the next
//! scan is a whole listing. Both files are written to a temporary name and renamed, never
//! flushed: a torn one does not hash to its token and counts as missing.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tandem_core::RelPath;
use tandem_fs::os::fs::{mkdirat, openat, renameat, unlinkat, AtFlags, Mode, OFlags};
use tandem_fs::os::io::Errno;
use tandem_fs::Root;

use crate::wire::{WireEntry, WireMeta};

/// The format of a kept listing (either end's file); another number is not read.
const VERSION: u32 = 1;
/// Where an agent keeps its records, below its root (`.tandem` is never synced).
pub const RECORDS: &str = ".tandem/listings";
/// The records an agent keeps at most (one per client state that synced with it; those of
/// states lost or forgotten are removed, oldest first).
const MOST_RECORDS: usize = 8;

/// One entry of a listing, as it travels.
pub type Item = (WireEntry, WireMeta);
/// What differs from a base: a path's entry now, or `None`, gone.
pub type Differ = (Vec<u8>, Option<Item>);

/// A listing in path (byte) order, and its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    pub entries: BTreeMap<Vec<u8>, Item>,
    pub token: [u8; 32],
}

/// The empty listing, with its token (that of no entries: what an empty tree's agent sends).
impl Default for Listing {
    fn default() -> Listing {
        Listing::new(BTreeMap::new())
    }
}

impl Listing {
    pub fn new(entries: BTreeMap<Vec<u8>, Item>) -> Listing {
        let token = token_of(&entries);
        Listing { entries, token }
    }

    /// `entries` as a listing, and what differs in them from `base` (`None`: nothing):
    /// the token is `base`'s when nothing differs, not hashed again (a no-change scan's
    /// whole cost on the far side beyond its stat walk).
    pub fn against(
        base: Option<&Listing>,
        entries: BTreeMap<Vec<u8>, Item>,
    ) -> (Listing, Vec<Differ>) {
        let empty = BTreeMap::new();
        let differs = differs_of(base.map_or(&empty, |b| &b.entries), &entries);
        let token = match base {
            Some(b) if differs.is_empty() => b.token,
            _ => token_of(&entries),
        };
        (Listing { entries, token }, differs)
    }

    /// What differs between `self` (the base) and `now`, in path order.
    pub fn differs(&self, now: &Listing) -> Vec<Differ> {
        differs_of(&self.entries, &now.entries)
    }

    /// `self` with `differs` applied; its token computed again (kept when nothing
    /// differs: `self`'s was computed or checked when it was made).
    pub fn apply(mut self, differs: Vec<Differ>) -> Listing {
        if differs.is_empty() {
            return self;
        }
        for (path, item) in differs {
            match item {
                Some(item) => self.entries.insert(path, item),
                None => self.entries.remove(&path),
            };
        }
        Listing::new(self.entries)
    }
}

/// What differs between `base` and `now`, in path order.
fn differs_of(base: &BTreeMap<Vec<u8>, Item>, now: &BTreeMap<Vec<u8>, Item>) -> Vec<Differ> {
    let mut out = Vec::new();
    let (mut a, mut b) = (base.iter().peekable(), now.iter().peekable());
    loop {
        match (a.peek(), b.peek()) {
            (None, None) => return out,
            (Some((pa, _)), Some((pb, ib))) if pa == pb => {
                if a.next().map(|(_, ia)| ia) != Some(*ib) {
                    out.push(((*pb).clone(), Some((*ib).clone())));
                }
                b.next();
            }
            (Some((pa, _)), Some((pb, _))) if pa < pb => {
                out.push(((*pa).clone(), None));
                a.next();
            }
            (Some((pa, _)), None) => {
                out.push(((*pa).clone(), None));
                a.next();
            }
            (_, Some((pb, ib))) => {
                out.push(((*pb).clone(), Some((*ib).clone())));
                b.next();
            }
        }
    }
}

/// The blake3 of `entries` in path order, each path, entry and meta length-prefixed.
pub fn token_of(entries: &BTreeMap<Vec<u8>, Item>) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    let mut buf = Vec::new();
    for (path, (entry, meta)) in entries {
        buf.clear();
        // A `Vec` cannot fail to serialize these.
        let _ = postcard::to_io(&(path, entry, meta), &mut buf);
        h.update(&(buf.len() as u64).to_le_bytes());
        h.update(&buf);
    }
    *h.finalize().as_bytes()
}

/// A listing as either end keeps it.
#[derive(Serialize, Deserialize)]
struct Stored {
    version: u32,
    key: String,
    token: [u8; 32],
    entries: Vec<(Vec<u8>, Item)>,
}

fn encode(key: &str, l: &Listing) -> Option<Vec<u8>> {
    let stored = Stored {
        version: VERSION,
        key: key.to_string(),
        token: l.token,
        entries: l
            .entries
            .iter()
            .map(|(p, i)| (p.clone(), i.clone()))
            .collect(),
    };
    postcard::to_stdvec(&stored).ok()
}

/// The listing in `bytes`, if it is one of this format, for `key`, and hashes to its
/// token (a torn or stale file is no listing).
fn decode(bytes: &[u8], key: Option<&str>) -> Option<(String, Listing)> {
    let s: Stored = postcard::from_bytes(bytes).ok()?;
    if s.version != VERSION || key.is_some_and(|k| k != s.key) {
        return None;
    }
    let listing = Listing::new(s.entries.into_iter().collect());
    (listing.token == s.token).then_some((s.key, listing))
}

/// What one end wrote of a listing: the whole file's length and its deltas' (a file beside
/// it, `DELTAS`, of the differs of each run since, appended; compacted into a whole file
/// once they pass a quarter of it). A run that changed 10 entries of 30k writes those 10,
/// not the 30k again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub whole: u64,
    pub deltas: u64,
}

/// The suffix of the deltas file beside a listing.
const DELTAS: &str = "delta";

/// One run's differs, as a frame of the deltas file: its length, the frame, and the blake3
/// of the frame (a torn or damaged frame makes the whole listing no listing).
#[derive(Serialize, Deserialize)]
struct Delta {
    version: u32,
    key: String,
    since: [u8; 32],
    token: [u8; 32],
    differs: Vec<Differ>,
}

/// The frame appending `differs` (from `since` to `l`), if a delta is worth it after
/// `written` (else the listing is written whole).
fn delta_frame(
    key: &str,
    l: &Listing,
    w: Written,
    since: [u8; 32],
    differs: &[Differ],
) -> Option<Vec<u8>> {
    let delta = Delta {
        version: VERSION,
        key: key.to_string(),
        since,
        token: l.token,
        differs: differs.to_vec(),
    };
    let body = postcard::to_stdvec(&delta).ok()?;
    let mut frame = Vec::with_capacity(body.len() + 40);
    frame.extend_from_slice(&(body.len() as u64).to_le_bytes());
    frame.extend_from_slice(&body);
    frame.extend_from_slice(blake3::hash(&body).as_bytes());
    (w.whole > 0 && w.deltas + frame.len() as u64 <= w.whole / 4).then_some(frame)
}

/// `l` with the deltas in `bytes` applied in order, each from the token the one before made;
/// `None` if any is damaged, for another key, out of order, or the result does not hash to
/// the last one's token.
fn with_deltas(key: &str, mut l: Listing, mut bytes: &[u8]) -> Option<Listing> {
    if bytes.is_empty() {
        return Some(l);
    }
    while !bytes.is_empty() {
        let len = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
        let end = len.checked_add(8)?;
        let body = bytes.get(8..end)?;
        if bytes.get(end..end.checked_add(32)?)? != blake3::hash(body).as_bytes() {
            return None;
        }
        let d: Delta = postcard::from_bytes(body).ok()?;
        if d.version != VERSION || d.key != key || d.since != l.token {
            return None;
        }
        for (path, item) in d.differs {
            match item {
                Some(item) => l.entries.insert(path, item),
                None => l.entries.remove(&path),
            };
        }
        l.token = d.token;
        bytes = &bytes[end + 32..];
    }
    (token_of(&l.entries) == l.token).then_some(l)
}

/// A key names one client state's records: letters, digits and `-`, at most 64, so that
/// it is a file name and nothing else.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A new key for a client state that has none.
pub fn new_key(file: &Path) -> String {
    let mut h = blake3::Hasher::new();
    h.update(file.as_os_str().as_encoded_bytes());
    h.update(&std::process::id().to_le_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.update(&now.as_nanos().to_le_bytes());
    h.finalize().to_hex()[..32].to_string()
}

/// The client's copy: its key, listing and what is written of it, if the files hold one.
pub fn load_copy(file: &Path) -> Option<(String, Listing, Written)> {
    let bytes = std::fs::read(file).ok()?;
    let (key, l) = decode(&bytes, None).filter(|(k, _)| valid_key(k))?;
    let deltas = match std::fs::read(file.with_extension(DELTAS)) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(_) => return None,
    };
    let l = with_deltas(&key, l, &deltas)?;
    let written = Written {
        whole: bytes.len() as u64,
        deltas: deltas.len() as u64,
    };
    Some((key, l, written))
}

/// What differs from the listing last written (its token, and what it is on disk): the
/// run's differs, appended to the deltas when worth it.
pub type Since<'a> = Option<(Written, [u8; 32], &'a [Differ])>;

/// Writes the client's copy: the run's differs appended to the deltas beside it, or the
/// whole listing to a temporary name renamed over it (the deltas then removed).
pub fn save_copy(file: &Path, key: &str, l: &Listing, since: Since) -> std::io::Result<Written> {
    let deltas = file.with_extension(DELTAS);
    if let Some((w, frame)) =
        since.and_then(|(w, from, d)| Some((w, delta_frame(key, l, w, from, d)?)))
    {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&deltas)?;
        f.write_all(&frame)?;
        return Ok(Written {
            whole: w.whole,
            deltas: w.deltas + frame.len() as u64,
        });
    }
    let bytes = encode(key, l).ok_or_else(|| std::io::Error::other("cannot encode a listing"))?;
    let tmp: PathBuf = file.with_extension("tmp");
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, file)?;
    // Deltas left (a crash right here) are from another token: no listing, not a wrong one.
    match std::fs::remove_file(&deltas) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(Written {
        whole: bytes.len() as u64,
        deltas: 0,
    })
}

/// The agent's record for `key`, read through its root's fd; `None` when missing or no
/// good.
pub fn load_record(root: &Root, key: &str) -> Option<(Listing, Written)> {
    let read = |name: String| -> std::io::Result<Vec<u8>> {
        let rel = RelPath::new(format!("{RECORDS}/{name}").into_bytes())
            .map_err(|_| std::io::Error::other("not a record's name"))?;
        let fd = root.open_beneath(&rel, OFlags::RDONLY | OFlags::NOFOLLOW, Mode::empty())?;
        let mut bytes = Vec::new();
        std::fs::File::from(fd).read_to_end(&mut bytes)?;
        Ok(bytes)
    };
    let bytes = read(key.to_string()).ok()?;
    let (_, l) = decode(&bytes, Some(key))?;
    let deltas = match read(format!("{key}.{DELTAS}")) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(_) => return None,
    };
    let l = with_deltas(key, l, &deltas)?;
    let written = Written {
        whole: bytes.len() as u64,
        deltas: deltas.len() as u64,
    };
    Some((l, written))
}

/// Writes the agent's record for `key` (never through a symlink, never outside the root):
/// the run's differs appended to its deltas, or the whole listing to a temporary name
/// renamed over it (its deltas then removed, and the oldest records beyond
/// [`MOST_RECORDS`]).
pub fn save_record(root: &Root, key: &str, l: &Listing, since: Since) -> std::io::Result<Written> {
    let dir = records_dir(root)?;
    let deltas = format!("{key}.{DELTAS}");
    if let Some((w, frame)) =
        since.and_then(|(w, from, d)| Some((w, delta_frame(key, l, w, from, d)?)))
    {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::APPEND | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = openat(&dir, deltas.as_str(), flags, Mode::from_raw_mode(0o600))?;
        std::fs::File::from(fd).write_all(&frame)?;
        return Ok(Written {
            whole: w.whole,
            deltas: w.deltas + frame.len() as u64,
        });
    }
    let bytes = encode(key, l).ok_or_else(|| std::io::Error::other("cannot encode a listing"))?;
    let tmp = format!("{key}.tmp");
    let flags =
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = openat(&dir, tmp.as_str(), flags, Mode::from_raw_mode(0o600))?;
    std::fs::File::from(fd).write_all(&bytes)?;
    renameat(&dir, tmp.as_str(), &dir, key)?;
    // Deltas left (a crash right here) are from another token: no record, not a wrong one.
    match unlinkat(&dir, deltas.as_str(), AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => return Err(e.into()),
    }
    prune_records(root, &dir, key);
    Ok(Written {
        whole: bytes.len() as u64,
        deltas: 0,
    })
}

/// The folder of the agent's records, made if missing (below the root, never through a
/// symlink).
fn records_dir(root: &Root) -> std::io::Result<tandem_fs::os::OwnedFd> {
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY;
    for (at, name) in [(".tandem", ".tandem"), (RECORDS, "listings")] {
        let parent = match at.rsplit_once('/') {
            Some((p, _)) => {
                Some(root.open_beneath(&RelPath::from_str_lossless(p), dir_flags, Mode::empty())?)
            }
            None => None,
        };
        let made = match &parent {
            Some(p) => mkdirat(p, name, Mode::from_raw_mode(0o700)),
            None => mkdirat(root.fd(), name, Mode::from_raw_mode(0o700)),
        };
        match made {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let rel = RelPath::from_str_lossless(RECORDS);
    Ok(root.open_beneath(&rel, dir_flags, Mode::empty())?)
}

/// Removes the oldest records beyond [`MOST_RECORDS`], never `keep`.
fn prune_records(root: &Root, dir: &tandem_fs::os::OwnedFd, keep: &str) {
    let Ok(read) = std::fs::read_dir(root.path().join(RECORDS)) else {
        return;
    };
    let mut records: Vec<(std::time::SystemTime, String)> = read
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let when = e.metadata().ok()?.modified().ok()?;
            (valid_key(&name) && name != keep).then_some((when, name))
        })
        .collect();
    if records.len() < MOST_RECORDS {
        return;
    }
    records.sort();
    for (_, name) in &records[..records.len() + 1 - MOST_RECORDS] {
        let _ = unlinkat(dir, name.as_str(), AtFlags::empty());
        let _ = unlinkat(dir, format!("{name}.{DELTAS}").as_str(), AtFlags::empty());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn item(size: u64) -> Item {
        let e = WireEntry {
            kind: 0,
            problem: None,
            size,
            mtime: 1,
            mode: 0o644,
            ino: size,
            hash: None,
            link: None,
            owner: None,
        };
        (e, WireMeta::default())
    }

    fn listing(items: &[(&str, u64)]) -> Listing {
        Listing::new(
            items
                .iter()
                .map(|(p, s)| (p.as_bytes().to_vec(), item(*s)))
                .collect(),
        )
    }

    #[test]
    fn issue_17_what_differs_rebuilds_the_listing_and_its_token() {
        let base = listing(&[("a", 1), ("b", 2), ("c", 3), ("e", 5)]);
        let now = listing(&[("b", 2), ("c", 30), ("d", 4), ("e", 5), ("f", 6)]);
        let d = base.differs(&now);
        let paths: Vec<_> = d.iter().map(|(p, i)| (p.clone(), i.is_some())).collect();
        assert_eq!(
            paths,
            vec![
                (b"a".to_vec(), false),
                (b"c".to_vec(), true),
                (b"d".to_vec(), true),
                (b"f".to_vec(), true)
            ]
        );
        assert_eq!(base.clone().apply(d), now);
        assert!(now.differs(&now).is_empty());
        assert_ne!(base.token, now.token);
        // Against nothing, the whole listing.
        assert_eq!(
            Listing::default().apply(Listing::default().differs(&now)),
            now
        );
    }

    #[test]
    fn issue_17_a_listing_made_against_its_base_has_the_token_of_its_entries() {
        let base = listing(&[("a", 1), ("b", 2)]);
        let same = listing(&[("a", 1), ("b", 2)]).entries;
        let (now, d) = Listing::against(Some(&base), same);
        assert!(d.is_empty());
        assert_eq!(now, base);
        let other = listing(&[("a", 1), ("b", 3), ("c", 4)]);
        let (now, d) = Listing::against(Some(&base), other.entries.clone());
        assert_eq!((now.token, d.len()), (other.token, 2));
        assert_eq!(base.clone().apply(d), other);
        let (now, d) = Listing::against(None, other.entries.clone());
        assert_eq!((now.token, d.len()), (other.token, 3));
        // Nothing applied: the same listing, its token as it was.
        assert_eq!(other.clone().apply(Vec::new()), other);
        // An empty tree listed whole rebuilds from nothing.
        let (empty, d) = Listing::against(None, BTreeMap::new());
        assert_eq!(Listing::default().apply(d), empty);
    }

    #[test]
    fn issue_17_a_kept_listing_torn_or_for_another_key_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let l = listing(&[("a", 1), ("b", 2)]);
        save_record(&root, "k1", &l, None).unwrap();
        assert_eq!(load_record(&root, "k1").map(|r| r.0), Some(l.clone()));
        assert_eq!(load_record(&root, "k2"), None);
        let file = dir.path().join(RECORDS).join("k1");
        let mut bytes = std::fs::read(&file).unwrap();
        let n = bytes.len();
        bytes[n - 3] ^= 1;
        std::fs::write(&file, &bytes).unwrap();
        assert_eq!(load_record(&root, "k1"), None, "corrupt");
        std::fs::write(&file, &bytes[..n / 2]).unwrap();
        assert_eq!(load_record(&root, "k1"), None, "torn");
        // The client's copy the same way.
        let copy = dir.path().join("copy");
        save_copy(&copy, "k9", &l, None).unwrap();
        assert_eq!(
            load_copy(&copy).map(|c| (c.0, c.1)),
            Some(("k9".to_string(), l))
        );
        std::fs::write(&copy, b"junk").unwrap();
        assert_eq!(load_copy(&copy), None);
    }

    /// Runs of few changes append them to the deltas; once they pass a quarter of the
    /// whole file it is written whole again. A damaged or torn delta is no listing.
    #[test]
    fn issue_17_a_kept_listing_grows_by_deltas_and_a_damaged_delta_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let copy = dir.path().join("copy");
        let sizes: Vec<(String, u64)> = (0..200).map(|i| (format!("f{i:03}"), i)).collect();
        let items = |bump: u64| -> Vec<(&str, u64)> {
            sizes
                .iter()
                .map(|(p, s)| (p.as_str(), if *s < bump { s + 1000 } else { *s }))
                .collect()
        };
        let mut last = listing(&items(0));
        let mut written = save_copy(&copy, "k1", &last, None).unwrap();
        let mut rec = save_record(&root, "k1", &last, None).unwrap();
        assert_eq!(written.deltas, 0);
        let (mut appended, mut compacted) = (0, 0);
        for run in 1..40 {
            let now = listing(&items(run));
            let d = last.differs(&now);
            assert_eq!(d.len(), 1);
            written = save_copy(&copy, "k1", &now, Some((written, last.token, &d))).unwrap();
            rec = save_record(&root, "k1", &now, Some((rec, last.token, &d))).unwrap();
            assert_eq!(written, rec);
            if written.deltas > 0 {
                appended += 1;
            } else {
                compacted += 1;
            }
            assert_eq!(
                load_copy(&copy),
                Some(("k1".to_string(), now.clone(), written))
            );
            assert_eq!(load_record(&root, "k1"), Some((now.clone(), rec)));
            last = now;
        }
        assert!(
            appended > 10 && compacted > 0,
            "{appended} appended, {compacted} compacted"
        );
        // Damaged, then torn, deltas: no listing on either end.
        let now = listing(&items(40));
        let d = last.differs(&now);
        let written = save_copy(&copy, "k1", &last, None).unwrap();
        let rec = save_record(&root, "k1", &last, None).unwrap();
        let written = save_copy(&copy, "k1", &now, Some((written, last.token, &d))).unwrap();
        let rec = save_record(&root, "k1", &now, Some((rec, last.token, &d))).unwrap();
        assert!(written.deltas > 0 && rec.deltas > 0);
        assert_eq!(load_copy(&copy).map(|c| c.1), Some(now.clone()));
        let deltas = [
            copy.with_extension(DELTAS),
            dir.path().join(RECORDS).join("k1.delta"),
        ];
        for f in &deltas {
            let bytes = std::fs::read(f).unwrap();
            assert!(!bytes.is_empty());
            let mut damaged = bytes.clone();
            let n = damaged.len();
            damaged[n - 40] ^= 1;
            std::fs::write(f, &damaged).unwrap();
        }
        assert_eq!(load_copy(&copy), None, "damaged");
        assert_eq!(load_record(&root, "k1"), None, "damaged");
        for f in &deltas {
            let bytes = std::fs::read(f).unwrap();
            std::fs::write(f, &bytes[..bytes.len() - 5]).unwrap();
        }
        assert_eq!(load_copy(&copy), None, "torn");
        assert_eq!(load_record(&root, "k1"), None, "torn");
        // Deltas from another base (left by a crash after a whole write): no listing.
        save_copy(&copy, "k1", &last, None).unwrap();
        let stale = delta_frame(
            "k1",
            &now,
            Written {
                whole: 1 << 20,
                deltas: 0,
            },
            [7; 32],
            &d,
        )
        .unwrap();
        std::fs::write(copy.with_extension(DELTAS), stale).unwrap();
        assert_eq!(load_copy(&copy), None, "stale");
    }

    #[test]
    fn issue_17_an_agent_keeps_a_bounded_number_of_records() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let l = listing(&[("a", 1)]);
        for i in 0..MOST_RECORDS + 4 {
            save_record(&root, &format!("k{i}"), &l, None).unwrap();
        }
        let n = std::fs::read_dir(dir.path().join(RECORDS)).unwrap().count();
        assert_eq!(n, MOST_RECORDS);
        assert!(load_record(&root, &format!("k{}", MOST_RECORDS + 3)).is_some());
        assert!(!valid_key("../x") && !valid_key("a/b") && !valid_key(""));
    }
}
