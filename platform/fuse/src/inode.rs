//! The inode table: which underlying file each FUSE node id stands for, and the names
//! (parent id + name) it is known under, so that every operation can be reported with its
//! path relative to the root.
//!
//! Invariants:
//! - A node is keyed by the underlying (device, inode number), as libfuse's passthrough_hp
//!   and virtiofsd do: two names of one file (hard links) are one node, and a node stays the
//!   same file across renames.
//! - The node id is the underlying inode number when it is free and the file lives on the
//!   root's device, so `st_ino` inside the mount matches the plain folder and stays stable
//!   across the kernel forgetting and looking up a file again. Otherwise (another device
//!   mounted below the root, a clash) it is a synthetic id from `SYNTHETIC_BASE` up.
//! - A node lives while the kernel holds lookups on it (`nlookup > 0`) or while it is the
//!   parent of a known name (so a path can always be built up to the root).
//! - `names[0]` is the name most recently used to reach the node: operations addressed by
//!   inode only (open, setattr, write...) are reported under it.
//!
//! No file descriptors live here (see `fdcache`), so the table costs a few dozen bytes per
//! node and can follow a million files.

use std::collections::HashMap;
use std::sync::Arc;

use fuser::FileType;
use tandem_core::RelPath;

use crate::sys::FileHandle;

/// The FUSE root node id.
pub(crate) const ROOT: u64 = 1;

/// Synthetic node ids start here, far above any real inode number.
const SYNTHETIC_BASE: u64 = 1 << 63;

/// A path deeper than this is taken as a corrupted table rather than followed.
const MAX_DEPTH: usize = 4096;

/// Underlying (device, inode number).
pub(crate) type Key = (u64, u64);

#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) key: Key,
    pub(crate) kind: FileType,
    /// Lookups the kernel holds (every entry reply adds one, FORGET takes them away).
    pub(crate) nlookup: u64,
    /// Bumped when the (device, inode) key turns out to name a new file.
    pub(crate) generation: u64,
    /// Unique per incarnation of the node: an fd cached for an older incarnation (same id,
    /// since replaced or removed) is never handed out for this one.
    pub(crate) epoch: u64,
    pub(crate) handle: Option<Arc<FileHandle>>,
    /// Known names, most recently used first. A directory has at most one.
    pub(crate) names: Vec<(u64, Box<[u8]>)>,
}

/// What `enter` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entered {
    pub(crate) id: u64,
    pub(crate) generation: u64,
    pub(crate) epoch: u64,
}

#[derive(Debug)]
pub(crate) struct InodeTable {
    nodes: HashMap<u64, Node>,
    by_key: HashMap<Key, u64>,
    /// parent id -> name -> child id.
    dentries: HashMap<u64, HashMap<Box<[u8]>, u64>>,
    root_dev: u64,
    next_synthetic: u64,
    next_epoch: u64,
    /// Nodes dropped since the last `take_removed` (their cached fds must go).
    removed: Vec<u64>,
}

impl InodeTable {
    pub(crate) fn new(root_key: Key, root_handle: Option<Arc<FileHandle>>) -> InodeTable {
        let mut nodes = HashMap::new();
        nodes.insert(
            ROOT,
            Node {
                key: root_key,
                kind: FileType::Directory,
                nlookup: 1,
                generation: 0,
                epoch: 0,
                handle: root_handle,
                names: Vec::new(),
            },
        );
        InodeTable {
            nodes,
            by_key: HashMap::from([(root_key, ROOT)]),
            dentries: HashMap::new(),
            root_dev: root_key.0,
            next_synthetic: SYNTHETIC_BASE,
            next_epoch: 1,
            removed: Vec::new(),
        }
    }

    /// The nodes dropped since the last call.
    pub(crate) fn take_removed(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.removed)
    }

    pub(crate) fn get(&self, id: u64) -> Option<&Node> {
        self.nodes.get(&id)
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The child known under `parent`/`name`, if any.
    pub(crate) fn child(&self, parent: u64, name: &[u8]) -> Option<u64> {
        self.dentries.get(&parent)?.get(name).copied()
    }

    /// The id a directory entry's `d_ino` is shown as: the node's id when the file is
    /// known, else the inode number itself (which is what its id will be).
    pub(crate) fn dirent_ino(&self, d_ino: u64) -> u64 {
        self.by_key
            .get(&(self.root_dev, d_ino))
            .copied()
            .unwrap_or(d_ino)
    }

    /// A lookup of `parent`/`name` found `key`: when that node is known and still the same
    /// kind of file, counts the lookup and records the name. Returns None when the caller
    /// must open the file and `enter` it.
    pub(crate) fn reference(
        &mut self,
        parent: u64,
        name: &[u8],
        key: Key,
        kind: FileType,
    ) -> Option<Entered> {
        let id = *self.by_key.get(&key)?;
        let node = self.nodes.get_mut(&id)?;
        if node.kind != kind {
            return None;
        }
        node.nlookup += 1;
        let entered = Entered {
            id,
            generation: node.generation,
            epoch: node.epoch,
        };
        if id != ROOT {
            self.add_name(id, parent, name);
        }
        Some(entered)
    }

    /// Enters (or re-enters) the file found at `parent`/`name` and counts one lookup.
    pub(crate) fn enter(
        &mut self,
        parent: u64,
        name: &[u8],
        key: Key,
        kind: FileType,
        handle: Option<Arc<FileHandle>>,
    ) -> Entered {
        let epoch = self.next_epoch;
        let existing = self.by_key.get(&key).copied();
        let id = match existing.and_then(|id| self.nodes.get_mut(&id).map(|n| (id, n))) {
            Some((id, node)) => {
                if node.kind != kind || (handle.is_some() && node.handle != handle) {
                    // The inode number was reused by a new file: a new incarnation.
                    node.kind = kind;
                    node.generation += 1;
                    node.epoch = epoch;
                    node.handle = handle;
                    self.next_epoch += 1;
                } else if node.handle.is_none() {
                    node.handle = handle;
                }
                node.nlookup += 1;
                id
            }
            None => {
                let id = self.pick_id(key);
                self.nodes.insert(
                    id,
                    Node {
                        key,
                        kind,
                        nlookup: 1,
                        generation: 0,
                        epoch,
                        handle,
                        names: Vec::new(),
                    },
                );
                self.by_key.insert(key, id);
                self.next_epoch += 1;
                id
            }
        };
        if id != ROOT {
            self.add_name(id, parent, name);
        }
        let (generation, epoch) = self
            .nodes
            .get(&id)
            .map_or((0, epoch), |n| (n.generation, n.epoch));
        Entered {
            id,
            generation,
            epoch,
        }
    }

    fn pick_id(&mut self, key: Key) -> u64 {
        let (dev, ino) = key;
        if dev == self.root_dev
            && ino > ROOT
            && ino < SYNTHETIC_BASE
            && !self.nodes.contains_key(&ino)
        {
            return ino;
        }
        loop {
            self.next_synthetic += 1;
            if !self.nodes.contains_key(&self.next_synthetic) {
                return self.next_synthetic;
            }
        }
    }

    /// Records that `id` is reachable as `parent`/`name` (moving the name to the front).
    /// A different node previously known under that name loses it.
    fn add_name(&mut self, id: u64, parent: u64, name: &[u8]) {
        let slot = self.dentries.entry(parent).or_default();
        let previous = slot.insert(name.into(), id);
        if let Some(old) = previous.filter(|&old| old != id) {
            if let Some(node) = self.nodes.get_mut(&old) {
                node.names.retain(|(p, n)| !(*p == parent && &**n == name));
            }
            self.collect(old);
        }
        if let Some(node) = self.nodes.get_mut(&id) {
            if let Some(i) = node
                .names
                .iter()
                .position(|(p, n)| *p == parent && &**n == name)
            {
                let entry = node.names.remove(i);
                node.names.insert(0, entry);
            } else {
                node.names.insert(0, (parent, name.into()));
            }
        }
    }

    /// `parent`/`name` is gone (unlink, rmdir, or invalidated from outside). Returns the
    /// nodes that were dropped as a consequence.
    pub(crate) fn remove_name(&mut self, parent: u64, name: &[u8]) {
        let Some(id) = self.dentries.get_mut(&parent).and_then(|m| m.remove(name)) else {
            return;
        };
        if let Some(node) = self.nodes.get_mut(&id) {
            node.names.retain(|(p, n)| !(*p == parent && &**n == name));
        }
        self.collect(id);
        self.collect(parent);
    }

    /// Applies a successful rename (or exchange) to the known names.
    pub(crate) fn rename(
        &mut self,
        parent: u64,
        name: &[u8],
        new_parent: u64,
        new_name: &[u8],
        exchange: bool,
    ) {
        let src = self.child(parent, name);
        let dst = self.child(new_parent, new_name);
        if exchange {
            if let Some(m) = self.dentries.get_mut(&parent) {
                m.remove(name);
            }
            if let Some(m) = self.dentries.get_mut(&new_parent) {
                m.remove(new_name);
            }
            for (id, from, to) in [
                (src, (parent, name), (new_parent, new_name)),
                (dst, (new_parent, new_name), (parent, name)),
            ] {
                if let Some(id) = id {
                    self.rename_in_node(id, from, to);
                    self.dentries
                        .entry(to.0)
                        .or_default()
                        .insert(to.1.into(), id);
                }
            }
        } else {
            if dst.is_some() && dst != src {
                self.remove_name(new_parent, new_name);
            }
            if let Some(id) = src {
                if let Some(m) = self.dentries.get_mut(&parent) {
                    m.remove(name);
                }
                self.rename_in_node(id, (parent, name), (new_parent, new_name));
                self.dentries
                    .entry(new_parent)
                    .or_default()
                    .insert(new_name.into(), id);
                self.collect(parent);
            }
        }
    }

    fn rename_in_node(&mut self, id: u64, from: (u64, &[u8]), to: (u64, &[u8])) {
        if let Some(node) = self.nodes.get_mut(&id) {
            node.names
                .retain(|(p, n)| !(*p == from.0 && &**n == from.1));
            node.names.retain(|(p, n)| !(*p == to.0 && &**n == to.1));
            node.names.insert(0, (to.0, to.1.into()));
        }
    }

    /// The kernel dropped `n` lookups of `id`.
    pub(crate) fn forget(&mut self, id: u64, n: u64) {
        if id == ROOT {
            return;
        }
        if let Some(node) = self.nodes.get_mut(&id) {
            node.nlookup = node.nlookup.saturating_sub(n);
            self.collect(id);
        }
    }

    /// Removes `id` if nothing holds it any more, then its parents likewise.
    fn collect(&mut self, id: u64) {
        let mut work = vec![id];
        while let Some(id) = work.pop() {
            if id == ROOT {
                continue;
            }
            let held = match self.nodes.get(&id) {
                Some(node) => {
                    node.nlookup > 0 || self.dentries.get(&id).is_some_and(|m| !m.is_empty())
                }
                None => continue,
            };
            if held {
                continue;
            }
            let Some(node) = self.nodes.remove(&id) else {
                continue;
            };
            self.dentries.remove(&id);
            if self.by_key.get(&node.key) == Some(&id) {
                self.by_key.remove(&node.key);
            }
            for (parent, name) in node.names {
                if let Some(m) = self.dentries.get_mut(&parent) {
                    if m.get(&name) == Some(&id) {
                        m.remove(&name);
                    }
                    if m.is_empty() {
                        self.dentries.remove(&parent);
                    }
                }
                work.push(parent);
            }
            self.removed.push(id);
        }
    }

    /// Every known path of `id`: one per name of the node itself (hard links), each through
    /// its parent directory's path. Empty for a node with no name left.
    pub(crate) fn paths(&self, id: u64) -> Vec<RelPath> {
        let Some(node) = self.nodes.get(&id) else {
            return Vec::new();
        };
        node.names
            .iter()
            .filter_map(|(parent, name)| {
                let dir = if *parent == ROOT {
                    Some(RelPath::root())
                } else {
                    self.path(*parent)
                }?;
                RelPath::new(name.to_vec()).ok()?;
                Some(dir.join(name))
            })
            .collect()
    }

    /// The path of `id` relative to the root, through each node's most recent name. None
    /// for a node that has no name left (unlinked) or is cut off from the root.
    pub(crate) fn path(&self, id: u64) -> Option<RelPath> {
        let mut parts: Vec<&[u8]> = Vec::new();
        let mut cur = id;
        while cur != ROOT {
            let (parent, name) = self.nodes.get(&cur)?.names.first()?;
            parts.push(name);
            cur = *parent;
            if parts.len() > MAX_DEPTH {
                return None;
            }
        }
        let mut bytes = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
        for (i, part) in parts.iter().rev().enumerate() {
            if i > 0 {
                bytes.push(b'/');
            }
            bytes.extend_from_slice(part);
        }
        RelPath::new(bytes).ok()
    }

    /// The path of `parent`/`name`.
    pub(crate) fn child_path(&self, parent: u64, name: &[u8]) -> Option<RelPath> {
        let dir = self.path(parent)?;
        let mut bytes = dir.into_bytes();
        if !bytes.is_empty() {
            bytes.push(b'/');
        }
        bytes.extend_from_slice(name);
        RelPath::new(bytes).ok()
    }

    /// Follows `path` through known names: the parent id (when the parent is known) and
    /// the child id (when the child is known too).
    pub(crate) fn resolve(&self, path: &RelPath) -> (Option<u64>, Option<u64>) {
        let mut cur = ROOT;
        let mut parts = path.components().peekable();
        while let Some(part) = parts.next() {
            let next = self.child(cur, part);
            if parts.peek().is_none() {
                return (Some(cur), next);
            }
            match next {
                Some(id) => cur = id,
                None => return (None, None),
            }
        }
        (None, Some(ROOT))
    }

    /// Where `path` leaves the known names before its last part: the deepest known folder
    /// on it and the name under that folder that is not known (None when the path's
    /// parent is known). The kernel may still hold that name as missing (a negative
    /// entry) when the path was made underneath the mount.
    pub(crate) fn first_unknown<'p>(&self, path: &'p RelPath) -> Option<(u64, &'p [u8])> {
        let mut cur = ROOT;
        let mut parts = path.components().peekable();
        while let Some(part) = parts.next() {
            parts.peek()?;
            match self.child(cur, part) {
                Some(id) => cur = id,
                None => return Some((cur, part)),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEV: u64 = 7;

    fn p(s: &str) -> Option<RelPath> {
        Some(RelPath::from_str_lossless(s))
    }

    fn table() -> InodeTable {
        InodeTable::new((DEV, 2), None)
    }

    #[test]
    fn ids_follow_inode_numbers_on_the_root_device() {
        let mut t = table();
        let a = t.enter(ROOT, b"a", (DEV, 100), FileType::Directory, None);
        assert_eq!(a.id, 100);
        let other_dev = t.enter(ROOT, b"b", (DEV + 1, 101), FileType::RegularFile, None);
        assert!(other_dev.id >= SYNTHETIC_BASE);
        // Same inode number on another device: no clash with node 100.
        let clash = t.enter(ROOT, b"c", (DEV + 1, 100), FileType::RegularFile, None);
        assert_ne!(clash.id, 100);
        assert_eq!(t.dirent_ino(100), 100);
        assert_eq!(t.dirent_ino(555), 555);
    }

    #[test]
    fn the_first_unknown_folder_on_a_path_is_found() {
        let mut t = table();
        let d = t.enter(ROOT, b"d", (DEV, 10), FileType::Directory, None).id;
        let at = |s: &str| RelPath::from_str_lossless(s);
        assert_eq!(t.first_unknown(&at("x/y/z")), Some((ROOT, &b"x"[..])));
        assert_eq!(t.first_unknown(&at("d/y/z")), Some((d, &b"y"[..])));
        // The parent is known: nothing on the way is unknown.
        assert_eq!(t.first_unknown(&at("d/z")), None);
        assert_eq!(t.first_unknown(&at("z")), None);
    }

    #[test]
    fn paths_follow_renames_of_directories() {
        let mut t = table();
        let d = t.enter(ROOT, b"d", (DEV, 10), FileType::Directory, None).id;
        let e = t.enter(d, b"e", (DEV, 11), FileType::Directory, None).id;
        let f = t.enter(e, b"f", (DEV, 12), FileType::RegularFile, None).id;
        assert_eq!(t.path(f), p("d/e/f"));
        t.rename(ROOT, b"d", ROOT, b"x", false);
        assert_eq!(t.path(f), p("x/e/f"));
        assert_eq!(t.child(ROOT, b"d"), None);
        assert_eq!(
            t.resolve(&RelPath::from_str_lossless("x/e/f")),
            (Some(e), Some(f))
        );
        assert_eq!(
            t.resolve(&RelPath::from_str_lossless("x/e/g")),
            (Some(e), None)
        );
        assert_eq!(
            t.resolve(&RelPath::from_str_lossless("y/e/g")),
            (None, None)
        );
    }

    #[test]
    fn hard_links_keep_every_name_and_report_the_latest() {
        let mut t = table();
        let a = t
            .enter(ROOT, b"a", (DEV, 20), FileType::RegularFile, None)
            .id;
        let b = t.reference(ROOT, b"b", (DEV, 20), FileType::RegularFile);
        assert_eq!(b.map(|e| e.id), Some(a));
        assert_eq!(t.path(a), p("b"));
        t.reference(ROOT, b"a", (DEV, 20), FileType::RegularFile);
        assert_eq!(t.path(a), p("a"));
        t.remove_name(ROOT, b"a");
        assert_eq!(t.path(a), p("b"));
        t.remove_name(ROOT, b"b");
        assert_eq!(t.path(a), None);
        // Still looked up (three times) by the kernel, as an open unlinked file: kept.
        assert!(t.get(a).is_some());
        t.forget(a, 2);
        assert!(t.take_removed().is_empty());
        t.forget(a, 1);
        assert_eq!(t.take_removed(), vec![a]);
        assert!(t.get(a).is_none());
    }

    #[test]
    fn rename_over_a_known_file_drops_the_victims_name() {
        let mut t = table();
        let a = t
            .enter(ROOT, b"a", (DEV, 30), FileType::RegularFile, None)
            .id;
        let b = t
            .enter(ROOT, b"b", (DEV, 31), FileType::RegularFile, None)
            .id;
        t.rename(ROOT, b"a", ROOT, b"b", false);
        assert_eq!(t.path(a), p("b"));
        assert_eq!(t.path(b), None);
        assert_eq!(t.child(ROOT, b"b"), Some(a));
        t.forget(b, 1);
        assert_eq!(t.take_removed(), vec![b]);
    }

    #[test]
    fn exchange_swaps_names() {
        let mut t = table();
        let a = t
            .enter(ROOT, b"a", (DEV, 40), FileType::RegularFile, None)
            .id;
        let d = t.enter(ROOT, b"d", (DEV, 41), FileType::Directory, None).id;
        let f = t.enter(d, b"f", (DEV, 42), FileType::RegularFile, None).id;
        t.rename(ROOT, b"a", ROOT, b"d", true);
        assert_eq!(t.path(a), p("d"));
        assert_eq!(t.path(d), p("a"));
        assert_eq!(t.path(f), p("a/f"));
    }

    #[test]
    fn parents_outlive_forget_while_children_are_known() {
        let mut t = table();
        let d = t.enter(ROOT, b"d", (DEV, 50), FileType::Directory, None).id;
        let f = t.enter(d, b"f", (DEV, 51), FileType::RegularFile, None).id;
        t.forget(d, 1);
        assert!(t.take_removed().is_empty());
        assert_eq!(t.path(f), p("d/f"));
        t.forget(f, 1);
        assert_eq!(t.take_removed(), vec![f, d]);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_reused_inode_number_is_a_new_incarnation() {
        let mut t = table();
        let a = t.enter(ROOT, b"a", (DEV, 60), FileType::RegularFile, None);
        assert!(t
            .reference(ROOT, b"a", (DEV, 60), FileType::Directory)
            .is_none());
        let again = t.enter(ROOT, b"a", (DEV, 60), FileType::Directory, None);
        assert_eq!(again.id, a.id);
        assert_eq!(again.generation, a.generation + 1);
        assert_ne!(again.epoch, a.epoch);
    }

    #[test]
    fn a_name_pointing_elsewhere_moves_to_the_new_node() {
        let mut t = table();
        let a = t
            .enter(ROOT, b"x", (DEV, 70), FileType::RegularFile, None)
            .id;
        // Replaced behind the mount's back, then looked up again.
        let b = t
            .enter(ROOT, b"x", (DEV, 71), FileType::RegularFile, None)
            .id;
        assert_eq!(t.child(ROOT, b"x"), Some(b));
        assert_eq!(t.path(a), None);
        assert_eq!(t.path(b), p("x"));
    }
}
