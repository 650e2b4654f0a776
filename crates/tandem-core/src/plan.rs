//! What reconcile decides: options in, a `Plan` of `Action`s out.

use std::collections::BTreeSet;

use crate::entry::{Entry, Side};
use crate::path::RelPath;

/// Which way changes may flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Both,
    /// Source to target only.
    Push,
    /// Target to source only.
    Pull,
}

impl Direction {
    /// May this run write to `side`?
    pub fn writes(self, side: Side) -> bool {
        match self {
            Direction::Both => true,
            Direction::Push => side == Side::Target,
            Direction::Pull => side == Side::Source,
        }
    }
}

/// How a one-way direction treats the receiving side's own changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// The receiving side's own changes are left in place and reported.
    Safe,
    /// The receiving side is made an exact copy; its own changes go to its trash.
    Replica,
}

/// What to do when both sides changed a path differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// The newer version keeps the name; the other is kept beside it on both sides as
    /// `NAME.conflict-YYYYMMDD-HHMMSS-SIDE.EXT`.
    KeepBoth,
    /// The newer version wins; the other goes to its side's trash.
    Newest,
    /// The source's version wins; the target's goes to the target's trash.
    Source,
    /// The target's version wins; the source's goes to the source's trash.
    Target,
    /// Both sides are left as they are and the conflict is listed.
    Flag,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub direction: Direction,
    pub flavor: Flavor,
    pub policy: Policy,
    /// Two mtimes closer than this (nanoseconds) count as equal: for coarse file systems.
    pub modify_window: i64,
    /// `YYYYMMDD-HHMMSS` of this run, used in conflict copy names (reconcile reads no clock).
    pub stamp: String,
    /// Trust no stat match where hashes can speak (`--rescan`).
    pub rescan: bool,
    /// What the trees were read from: `None` for everything; else these paths and their
    /// parents, and below a path only where its flag says so (a scoped sync's hints). Below
    /// a directory read without its content, a side holds what the baseline says.
    pub scope: Option<Vec<(RelPath, bool)>>,
    /// Paths to leave alone on both sides and in the baseline (files still being written
    /// through a mount): the caller leaves them out of the trees, and reconcile leaves out
    /// whatever a replayed rename brings to these names.
    pub held: BTreeSet<RelPath>,
    /// `--update` (one-way directions only): a file on the receiving side is replaced only
    /// by a copy newer than its own; a newer one is left and reported, its baseline entry
    /// untouched, so a later run without the option sees the same difference. Ignored
    /// with `Direction::Both` (the CLI and task config refuse that combination).
    pub update: bool,
    /// `--hard-links`: names that share a file on one side share one on the other. The
    /// engine turns copies into links after reconcile (`crate::links`); reconcile itself
    /// does not look at it.
    pub hard_links: bool,
    /// What beyond content, mode and mtime is kept (`--owner`, ...).
    pub keep: Keep,
}

/// What a run keeps beyond content, permission bits and times. Everything is off by
/// default: reading owners costs nothing, but applying them needs root.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Keep {
    /// `--owner`: owner and group, both ways.
    pub owner: bool,
    /// `--numeric-ids`: owners travel as numbers, never mapped by name (see [`IdMap`]).
    pub numeric_ids: bool,
    /// The setuid and setgid bits may travel: only with `owner` on and tandem running as
    /// root (the engine decides; reconcile reads no process state). Otherwise a side's
    /// setuid file arrives without them, so that nobody gets a setuid program owned by
    /// someone else (the class of rclone GHSA-945v-v9p3-v5xw).
    pub setid: bool,
    /// `--xattrs`: `user.*` extended attributes, and `security.*`/`trusted.*` where
    /// `trusted` says so.
    pub xattrs: bool,
    /// `--acls`: POSIX ACLs (`system.posix_acl_access`, `system.posix_acl_default`).
    pub acls: bool,
    /// With `xattrs`: `security.*` and `trusted.*` too (tandem runs as root; the engine
    /// decides).
    pub trusted: bool,
}

/// The setuid and setgid bits.
pub const SETID_BITS: u32 = 0o6000;

impl Keep {
    /// The permission bits of `mode` that may be given to the other side.
    pub fn travelling_mode(&self, mode: u32) -> u32 {
        if self.setid {
            mode
        } else {
            mode & !SETID_BITS
        }
    }

    /// Whether the run reads extended attributes at all (a `listxattr` per entry).
    pub fn reads_xattrs(&self) -> bool {
        self.xattrs || self.acls
    }

    /// Whether the extended attribute `name` is kept by this run.
    pub fn keeps_xattr(&self, name: &[u8]) -> bool {
        let ns = |p: &[u8]| name.starts_with(p);
        if name == b"system.posix_acl_access" || name == b"system.posix_acl_default" {
            return self.acls;
        }
        // File capabilities grant privileges as the setuid bit does: the same rule.
        if name == b"security.capability" {
            return self.xattrs && self.trusted && self.setid;
        }
        (self.xattrs && ns(b"user."))
            || (self.xattrs && self.trusted && (ns(b"security.") || ns(b"trusted.")))
    }

    pub fn ids(&self) -> IdMap {
        IdMap {
            numeric_ids: self.numeric_ids,
        }
    }
}

/// How an owner read on one side is named on the other. Both sides of a local pair share
/// one user database, so the mapping is the identity, with or without `--numeric-ids`. A
/// remote side (`user@host:`) will map by user and group name here, keeping the number
/// where the name does not exist on the receiving side (with a warning) or where
/// `numeric_ids` asks for numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdMap {
    pub numeric_ids: bool,
}

impl IdMap {
    pub fn to_receiver(&self, owner: crate::entry::Owner) -> crate::entry::Owner {
        owner
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            direction: Direction::Both,
            flavor: Flavor::Safe,
            policy: Policy::KeepBoth,
            modify_window: 0,
            stamp: "19700101-000000".to_string(),
            rescan: false,
            scope: None,
            held: BTreeSet::new(),
            update: false,
            keep: Keep::default(),
            hard_links: false,
        }
    }
}

/// Why a rename is planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenameWhy {
    /// The other side renamed this path; replay it.
    Replay,
    /// Keep-both: this side's version of a conflicting path is set aside under the
    /// conflict copy name.
    ConflictCopy,
}

/// One step of a plan. Every step that writes carries `expect`: the state of the path it
/// writes as the plan saw it. Apply re-checks it right before writing (invariant 2) and
/// refuses the step when the disk moved on.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Rename {
        side: Side,
        from: RelPath,
        to: RelPath,
        expect: Entry,
        why: RenameWhy,
    },
    /// Make `path` on `from.other()` hold `from`'s file or symlink `src`, with permission
    /// bits `mode` (`src.mode`, or the receiving side's own where only it changed them).
    Copy {
        path: RelPath,
        from: Side,
        src: Entry,
        expect: Option<Entry>,
        mode: u32,
    },
    /// `--hard-links`: the `Copy` of `path` from `from` whose file there is another name
    /// of the file at `anchor`: made on the receiving side as a hard link to `anchor`
    /// there, no data sent. `anchor_expect` is the receiving side's file at `anchor` as the
    /// plan saw it, or `None` where this plan copies `anchor` too (the link follows that
    /// copy, and checks against what it wrote). Re-checked like a copy (invariant 2); where
    /// the receiving side cannot hold hard links, carried out as the copy it stands for.
    /// `in_step`: the receiving side already holds this content at `path`, only not as
    /// another name of `anchor`'s file (a pair synced before `--hard-links`): where the
    /// link cannot be made, it is left as it is.
    /// Two of its entries are boxed, and so is a `Conflict`, to keep every step small: a
    /// plan holds one per changed path (536 bytes a step before, issue 21).
    Link {
        path: RelPath,
        from: Side,
        src: Box<Entry>,
        expect: Option<Entry>,
        mode: u32,
        anchor: RelPath,
        anchor_expect: Option<Box<Entry>>,
        in_step: bool,
    },
    /// Create the directory `path` on `side`, like `src` (the other side's directory).
    Mkdir {
        path: RelPath,
        side: Side,
        src: Entry,
    },
    /// Give `path` on `side` the mode (and, for files, mtime) of `src`, the other side's.
    SetMeta {
        path: RelPath,
        side: Side,
        src: Entry,
        expect: Entry,
    },
    /// Move `path` on `side` to that side's trash (a directory once it is empty).
    Delete {
        path: RelPath,
        side: Side,
        expect: Entry,
    },
    /// Both sides hold the same thing: update the baseline only.
    Record {
        path: RelPath,
        src: Entry,
        tgt: Entry,
    },
    /// Gone from both sides: drop the baseline entry.
    Forget { path: RelPath },
    /// A conflict, for the list; the steps that handle it are separate actions.
    Conflict(Box<Conflict>),
    /// Left alone, with the reason (special files, unreadable paths, the receiving side's
    /// own changes in safe one-way mode).
    Skip {
        path: RelPath,
        side: Option<Side>,
        reason: String,
    },
    /// `--update`: `side`, the receiving side, holds a newer file than the one that would
    /// replace it. Left as it is and reported; the baseline keeps what it had for `path`.
    KeptNewer { path: RelPath, side: Side },
}

impl Action {
    pub fn path(&self) -> &RelPath {
        match self {
            Action::Rename { from, .. } => from,
            Action::Copy { path, .. }
            | Action::Link { path, .. }
            | Action::Mkdir { path, .. }
            | Action::SetMeta { path, .. }
            | Action::Delete { path, .. }
            | Action::Record { path, .. }
            | Action::Forget { path }
            | Action::Skip { path, .. }
            | Action::KeptNewer { path, .. } => path,
            Action::Conflict(c) => &c.path,
        }
    }

    /// The side this action writes to, if it writes.
    pub fn writes_to(&self) -> Option<Side> {
        match self {
            Action::Rename { side, .. }
            | Action::Mkdir { side, .. }
            | Action::SetMeta { side, .. }
            | Action::Delete { side, .. } => Some(*side),
            Action::Copy { from, .. } | Action::Link { from, .. } => Some(from.other()),
            _ => None,
        }
    }

    /// A short verb for listings.
    pub fn verb(&self) -> &'static str {
        match self {
            Action::Rename {
                why: RenameWhy::Replay,
                ..
            } => "rename",
            Action::Rename {
                why: RenameWhy::ConflictCopy,
                ..
            } => "set-aside",
            Action::Copy { expect: None, .. } => "create",
            Action::Copy {
                expect: Some(_), ..
            } => "update",
            Action::Link { .. } => "link",
            Action::Mkdir { .. } => "mkdir",
            Action::SetMeta { .. } => "metadata",
            Action::Delete { .. } => "delete",
            Action::Record { .. } => "record",
            Action::Forget { .. } => "forget",
            Action::Conflict(_) => "conflict",
            Action::Skip { .. } | Action::KeptNewer { .. } => "skip",
        }
    }

    /// The copy a `Link` stands for (what is done where the link cannot be made).
    pub fn as_copy(&self) -> Option<Action> {
        match self {
            Action::Link {
                path,
                from,
                src,
                expect,
                mode,
                ..
            } => Some(Action::Copy {
                path: path.clone(),
                from: *from,
                src: Entry::clone(src),
                expect: expect.clone(),
                mode: *mode,
            }),
            _ => None,
        }
    }

    /// Why a path is left out of step, for the skips (`Skip`, `KeptNewer`).
    pub fn skip_reason(&self) -> Option<String> {
        match self {
            Action::Skip { reason, .. } => Some(reason.clone()),
            Action::KeptNewer { side, .. } => Some(format!("the {side}'s copy is newer")),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictKind {
    /// Both sides changed the content differently.
    Content,
    /// A directory on one side, something else on the other.
    Type,
    /// One side deleted what the other changed.
    DeleteModify,
}

impl ConflictKind {
    pub fn word(self) -> &'static str {
        match self {
            ConflictKind::Content => "both modified",
            ConflictKind::Type => "file vs directory",
            ConflictKind::DeleteModify => "deleted vs modified",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Both versions kept: `loser`'s version now lives at `copy`.
    KeptBoth { loser: Side, copy: RelPath },
    /// `winner`'s version kept at the path; the other went to its side's trash.
    Won { winner: Side },
    /// Left as is, to be resolved by `tandem resolve`.
    Flagged,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Conflict {
    pub path: RelPath,
    pub kind: ConflictKind,
    pub src: Option<Entry>,
    pub tgt: Option<Entry>,
    pub resolution: Resolution,
}

/// An ordered list of actions. Order matters: renames, then deletes (deepest first), then
/// directory creation (shallowest first), then copies (independent of each other), then
/// metadata (directories deepest first); links (`--hard-links`) are applied after all of
/// them, once the copies they may follow are done.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
}

impl Plan {
    /// Actions that touch a disk (everything but records, forgets, conflicts and skips).
    pub fn writes(&self) -> impl Iterator<Item = &Action> {
        self.actions.iter().filter(|a| a.writes_to().is_some())
    }

    pub fn is_noop(&self) -> bool {
        self.actions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan holds one step per changed path: a step is no bigger than a copy's, the most
    /// common one (a `Link` or a `Conflict` made every step 536 bytes, issue 21).
    #[test]
    fn issue_21_a_step_is_no_bigger_than_a_copy() {
        let copy = std::mem::size_of::<RelPath>()
            + std::mem::size_of::<Entry>()
            + std::mem::size_of::<Option<Entry>>()
            + std::mem::size_of::<u32>()
            + std::mem::size_of::<Side>();
        let step = std::mem::size_of::<Action>();
        eprintln!("a step: {step} bytes, a copy's fields {copy}");
        assert!(
            step <= copy.next_multiple_of(8) + 8,
            "a step takes {step} bytes, a copy's fields {copy}"
        );
        assert!(step < 400, "a step takes {step} bytes");
    }

    #[test]
    fn kept_xattr_names_by_option_and_privilege() {
        let user = Keep {
            xattrs: true,
            ..Keep::default()
        };
        assert!(user.keeps_xattr(b"user.a"));
        assert!(!user.keeps_xattr(b"trusted.a"));
        assert!(!user.keeps_xattr(b"security.selinux"));
        assert!(!user.keeps_xattr(b"system.posix_acl_access"));
        let root = Keep {
            trusted: true,
            ..user
        };
        assert!(root.keeps_xattr(b"trusted.a") && root.keeps_xattr(b"security.selinux"));
        assert!(
            !root.keeps_xattr(b"security.capability"),
            "only with --owner as root"
        );
        let owner_root = Keep {
            owner: true,
            setid: true,
            ..root
        };
        assert!(owner_root.keeps_xattr(b"security.capability"));
        let acls = Keep {
            acls: true,
            ..Keep::default()
        };
        assert!(acls.keeps_xattr(b"system.posix_acl_default"));
        assert!(!acls.keeps_xattr(b"user.a"));
        assert_eq!(Keep::default().travelling_mode(0o4755), 0o755);
        assert_eq!(owner_root.travelling_mode(0o6755), 0o6755);
    }
}
