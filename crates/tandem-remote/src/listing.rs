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

/// The client's copy: its key and listing, if the file holds one.
pub fn load_copy(file: &Path) -> Option<(String, Listing)> {
    let bytes = std::fs::read(file).ok()?;
    decode(&bytes, None).filter(|(k, _)| valid_key(k))
}

/// Writes the client's copy beside its file and renames it over.
pub fn save_copy(file: &Path, key: &str, l: &Listing) -> std::io::Result<()> {
    let bytes = encode(key, l).ok_or_else(|| std::io::Error::other("cannot encode a listing"))?;
    let tmp: PathBuf = file.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, file)
}

/// The agent's record for `key`, read through its root's fd; `None` when missing or no
/// good.
pub fn load_record(root: &Root, key: &str) -> Option<Listing> {
    let rel = RelPath::new(format!("{RECORDS}/{key}").into_bytes()).ok()?;
    let fd = root
        .open_beneath(&rel, OFlags::RDONLY, Mode::empty())
        .ok()?;
    let mut bytes = Vec::new();
    std::fs::File::from(fd).read_to_end(&mut bytes).ok()?;
    decode(&bytes, Some(key)).map(|(_, l)| l)
}

/// Writes the agent's record for `key` (never through a symlink, never outside the root),
/// then removes the oldest records beyond [`MOST_RECORDS`].
pub fn save_record(root: &Root, key: &str, l: &Listing) -> std::io::Result<()> {
    let bytes = encode(key, l).ok_or_else(|| std::io::Error::other("cannot encode a listing"))?;
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
    let dir = root.open_beneath(&rel, dir_flags, Mode::empty())?;
    let tmp = format!("{key}.tmp");
    let flags =
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = openat(&dir, tmp.as_str(), flags, Mode::from_raw_mode(0o600))?;
    std::fs::File::from(fd).write_all(&bytes)?;
    renameat(&dir, tmp.as_str(), &dir, key)?;
    prune_records(root, &dir, key);
    Ok(())
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
        save_record(&root, "k1", &l).unwrap();
        assert_eq!(load_record(&root, "k1"), Some(l.clone()));
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
        save_copy(&copy, "k9", &l).unwrap();
        assert_eq!(load_copy(&copy), Some(("k9".to_string(), l)));
        std::fs::write(&copy, b"junk").unwrap();
        assert_eq!(load_copy(&copy), None);
    }

    #[test]
    fn issue_17_an_agent_keeps_a_bounded_number_of_records() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let l = listing(&[("a", 1)]);
        for i in 0..MOST_RECORDS + 4 {
            save_record(&root, &format!("k{i}"), &l).unwrap();
        }
        let n = std::fs::read_dir(dir.path().join(RECORDS)).unwrap().count();
        assert_eq!(n, MOST_RECORDS);
        assert!(load_record(&root, &format!("k{}", MOST_RECORDS + 3)).is_some());
        assert!(!valid_key("../x") && !valid_key("a/b") && !valid_key(""));
    }
}
