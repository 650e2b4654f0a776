//! Owners across machines (`--owner`): a user or group travels with its name, and the
//! receiving side takes the id that name has there, as rsync does. The number as it came
//! is kept where the name is unknown there, and always with `--numeric-ids`. Both sides of
//! a local pair share one user database; two machines need not.

use std::collections::HashMap;
use std::sync::Mutex;

use tandem_core::Owner;

/// Names and ids looked up on this machine, each once.
#[derive(Default)]
pub(crate) struct Ids {
    numeric: bool,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    user_names: HashMap<u32, Option<String>>,
    group_names: HashMap<u32, Option<String>>,
    uids: HashMap<String, Option<u32>>,
    gids: HashMap<String, Option<u32>>,
}

impl Ids {
    pub(crate) fn new(numeric: bool) -> Ids {
        Ids {
            numeric,
            cache: Mutex::default(),
        }
    }

    /// The names of `owner` on this machine, to travel with it (none with
    /// `--numeric-ids`).
    pub(crate) fn names(&self, owner: Option<Owner>) -> (Option<String>, Option<String>) {
        let Some(o) = owner.filter(|_| !self.numeric) else {
            return (None, None);
        };
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let user = c
            .user_names
            .entry(o.uid)
            .or_insert_with(|| user_name(o.uid))
            .clone();
        let group = c
            .group_names
            .entry(o.gid)
            .or_insert_with(|| group_name(o.gid))
            .clone();
        (user, group)
    }

    /// `owner` as the other machine sent it, with its names: the ids those names have on
    /// this machine, each number kept where its name is unknown here.
    pub(crate) fn here(
        &self,
        owner: Option<Owner>,
        user: Option<&str>,
        group: Option<&str>,
    ) -> Option<Owner> {
        let o = owner?;
        if self.numeric {
            return Some(o);
        }
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let uid = user
            .and_then(|n| *c.uids.entry(n.to_string()).or_insert_with(|| uid_of(n)))
            .unwrap_or(o.uid);
        let gid = group
            .and_then(|n| *c.gids.entry(n.to_string()).or_insert_with(|| gid_of(n)))
            .unwrap_or(o.gid);
        Some(Owner { uid, gid })
    }
}

#[cfg(unix)]
fn user_name(uid: u32) -> Option<String> {
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid));
    user.ok().flatten().map(|u| u.name)
}

#[cfg(unix)]
fn group_name(gid: u32) -> Option<String> {
    let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid));
    group.ok().flatten().map(|g| g.name)
}

#[cfg(unix)]
fn uid_of(name: &str) -> Option<u32> {
    let user = nix::unistd::User::from_name(name);
    user.ok().flatten().map(|u| u.uid.as_raw())
}

#[cfg(unix)]
fn gid_of(name: &str) -> Option<u32> {
    let group = nix::unistd::Group::from_name(name);
    group.ok().flatten().map(|g| g.gid.as_raw())
}

/// No user database to ask: owners travel as numbers.
#[cfg(not(unix))]
fn user_name(_: u32) -> Option<String> {
    None
}

#[cfg(not(unix))]
fn group_name(_: u32) -> Option<String> {
    None
}

#[cfg(not(unix))]
fn uid_of(_: &str) -> Option<u32> {
    None
}

#[cfg(not(unix))]
fn gid_of(_: &str) -> Option<u32> {
    None
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn issue_17_owners_map_by_name_and_keep_unknown_numbers() {
        let ids = Ids::new(false);
        let root = Some(Owner { uid: 0, gid: 0 });
        assert_eq!(ids.names(root), (Some("root".into()), Some("root".into())));
        // A name known here gives this machine's id, whatever number came with it.
        let far = Some(Owner {
            uid: 4242,
            gid: 4343,
        });
        assert_eq!(ids.here(far, Some("root"), Some("root")), root);
        // Unknown here: the number as it came.
        let unknown = "tandem-no-such-user-here";
        assert_eq!(ids.here(far, Some(unknown), Some(unknown)), far);
        assert_eq!(ids.here(far, None, None), far);
        // --numeric-ids: numbers only, no names sent.
        let numeric = Ids::new(true);
        assert_eq!(numeric.names(root), (None, None));
        assert_eq!(numeric.here(far, Some("root"), Some("root")), far);
    }
}
