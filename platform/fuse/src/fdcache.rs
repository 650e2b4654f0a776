//! A bounded cache of the fds behind inodes (`sys::NodeFd`: `O_PATH` fds on Linux).
//!
//! One fd per inode the kernel knows does not scale: the open-file limit here is 20000 and
//! cannot be raised, and libfuse's passthrough examples hit EMFILE untarring a 35k-entry
//! tree. So fds are cached, at most `capacity` of them, and an evicted inode is opened
//! again by file handle or by path (see `PassthroughFs::inode_fd`).
//!
//! Replacement is CLOCK (second chance): O(1) per operation, one lock, and hot inodes
//! (directories walked through again and again) stay. Fds are shared as `Arc`s so that an
//! eviction never closes an fd a request is still using.
//!
//! Each entry carries the node's epoch: an fd cached for an earlier incarnation of a node
//! id is never returned for a later one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::lock;
use crate::sys::NodeFd;

struct Slot {
    id: u64,
    epoch: u64,
    fd: Arc<NodeFd>,
    referenced: bool,
}

struct Clock {
    index: HashMap<u64, usize>,
    slots: Vec<Slot>,
    hand: usize,
}

pub(crate) struct FdCache {
    capacity: usize,
    inner: Mutex<Clock>,
}

impl FdCache {
    pub(crate) fn new(capacity: usize) -> FdCache {
        let capacity = capacity.max(1);
        FdCache {
            capacity,
            inner: Mutex::new(Clock {
                index: HashMap::with_capacity(capacity),
                slots: Vec::with_capacity(capacity),
                hand: 0,
            }),
        }
    }

    pub(crate) fn get(&self, id: u64, epoch: u64) -> Option<Arc<NodeFd>> {
        let mut c = lock(&self.inner);
        let i = *c.index.get(&id)?;
        let slot = c.slots.get_mut(i)?;
        if slot.epoch != epoch {
            return None;
        }
        slot.referenced = true;
        Some(Arc::clone(&slot.fd))
    }

    pub(crate) fn insert(&self, id: u64, epoch: u64, fd: Arc<NodeFd>) {
        let mut c = lock(&self.inner);
        let slot = Slot {
            id,
            epoch,
            fd,
            referenced: false,
        };
        if let Some(existing) = c.index.get(&id).copied().and_then(|i| c.slots.get_mut(i)) {
            *existing = slot;
            return;
        }
        if c.slots.len() < self.capacity {
            let i = c.slots.len();
            c.slots.push(slot);
            c.index.insert(id, i);
            return;
        }
        // Evict: the first slot not referenced since the hand last passed it. Every pass
        // clears what it skips, so this ends within two turns.
        let len = c.slots.len();
        loop {
            let hand = c.hand % len;
            c.hand = (hand + 1) % len;
            let Some(victim) = c.slots.get_mut(hand) else {
                return;
            };
            if victim.referenced {
                victim.referenced = false;
                continue;
            }
            let old = std::mem::replace(victim, slot).id;
            c.index.remove(&old);
            c.index.insert(id, hand);
            return;
        }
    }

    pub(crate) fn remove(&self, id: u64) {
        let mut c = lock(&self.inner);
        let Some(i) = c.index.remove(&id) else {
            return;
        };
        c.slots.swap_remove(i);
        if let Some(moved) = c.slots.get(i).map(|s| s.id) {
            c.index.insert(moved, i);
        }
        if c.hand >= c.slots.len() {
            c.hand = 0;
        }
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.inner).slots.len()
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::fd::OwnedFd;

    use super::*;

    fn fd() -> Arc<OwnedFd> {
        #[allow(clippy::unwrap_used)]
        Arc::new(
            rustix::fs::open("/", rustix::fs::OFlags::PATH, rustix::fs::Mode::empty()).unwrap(),
        )
    }

    #[test]
    fn stays_within_capacity_and_keeps_hot_entries() {
        let c = FdCache::new(3);
        for id in 1..=3 {
            c.insert(id, 0, fd());
        }
        assert!(c.get(1, 0).is_some());
        c.insert(4, 0, fd());
        assert_eq!(c.len(), 3);
        assert!(c.get(1, 0).is_some(), "recently used entry evicted");
        assert!(c.get(4, 0).is_some());
        for id in 5..50 {
            c.insert(id, 0, fd());
            assert!(c.len() <= 3);
        }
    }

    #[test]
    fn epochs_and_removal() {
        let c = FdCache::new(2);
        c.insert(1, 5, fd());
        assert!(c.get(1, 4).is_none());
        assert!(c.get(1, 5).is_some());
        c.insert(2, 0, fd());
        c.remove(1);
        assert!(c.get(1, 5).is_none());
        assert!(c.get(2, 0).is_some());
        c.remove(2);
        assert_eq!(c.len(), 0);
        c.insert(3, 0, fd());
        assert!(c.get(3, 0).is_some());
    }
}
