//! The reconcile table: (case × mode).
//!
//! Each case is a sentence, three small trees built from fixtures (the baseline, the
//! source, the target) and the exact plan expected in every mode it applies to. A mode is
//! a direction, a flavor and a policy; `expect(selector, plan)` lines are applied in
//! order and a later line overrides an earlier one for the modes both select. Cases marked
//! `mirrored()` also run with the two sides swapped (names, trees, modes and expected
//! actions alike), under the mirrored name.
//!
//! Every run is also checked against what a plan is for, by applying it to an in-memory
//! model of the two sides:
//! - it applies in order: every `expect` matches what is on the side at that point, every
//!   parent exists, a directory is empty when deleted, a copy's source is still there;
//! - no changed version (content or link target) disappears from both sides, unless a
//!   conflict was won or a replica reverted the receiving side (invariant 1);
//! - outside skipped and flagged paths the two sides end up equal (invariant 5);
//! - a second reconcile, against the baseline that the applied plan leads to, plans no
//!   writes.
//!
//! Run one case (or all cases whose name contains a word) with
//! `RECONCILE_CASE='renamed a directory' cargo test -p tandem-core --test reconcile_table`.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use tandem_core::reconcile::{BaseTree, Tree};
use tandem_core::{
    move_subtree, reconcile, Action, BaseEntry, ConflictKind, Direction, Entry, Flavor, Hash, Keep,
    Kind, Options, Owner, Plan, Policy, RelPath, RenameWhy, Resolution, Seen, Side,
};

const STAMP: &str = "20240102-030405";
const SEC: i64 = 1_000_000_000;
/// Inode numbers handed out by the apply model for entries it creates.
const FRESH: u64 = 1 << 48;
const NOTHING: [&str; 0] = [];

// ---- fixtures -------------------------------------------------------------------------------

/// Which inode an entry has on its side.
#[derive(Clone, Debug)]
enum Ino {
    /// The path's own inode on that side (stable across the three trees).
    Own,
    /// The inode `path` has on that side: the same object, moved here.
    Of(&'static str),
    /// A given number: a new object (atomic save, copy).
    Fixed(u64),
}

/// A fixture entry, turned into an `Entry` (per side) or a `BaseEntry` where it is placed.
#[derive(Clone, Debug)]
struct Fx {
    kind: Kind,
    size: u64,
    mtime: i64,
    mode: u32,
    hash: Option<Hash>,
    link: Option<Vec<u8>>,
    ino: Ino,
    owner: Option<Owner>,
    /// The digest of the kept extended attributes (`--xattrs`, `--acls`).
    xattrs: Option<Hash>,
}

/// A regular file: content `tag` (hashed as `Hash([tag; 32])`, 100 bytes), mtime in seconds.
fn file(tag: u8, secs: i64) -> Fx {
    Fx {
        kind: Kind::File,
        size: 100,
        mtime: secs * SEC,
        mode: 0o644,
        hash: Some(Hash([tag; 32])),
        link: None,
        ino: Ino::Own,
        owner: None,
        xattrs: None,
    }
}

fn dir() -> Fx {
    Fx {
        kind: Kind::Dir,
        size: 0,
        mtime: 0,
        mode: 0o755,
        hash: None,
        link: None,
        ino: Ino::Own,
        owner: None,
        xattrs: None,
    }
}

fn link(target: &str) -> Fx {
    Fx {
        kind: Kind::Symlink,
        size: 0,
        mtime: 0,
        mode: 0o777,
        hash: None,
        link: Some(target.as_bytes().to_vec()),
        ino: Ino::Own,
        owner: None,
        xattrs: None,
    }
}

fn special() -> Fx {
    Fx {
        kind: Kind::Special,
        size: 0,
        mtime: 0,
        mode: 0,
        hash: None,
        link: None,
        ino: Ino::Own,
        owner: None,
        xattrs: None,
    }
}

fn problem(why: &str) -> Fx {
    Fx {
        kind: Kind::Problem(why.to_string()),
        size: 0,
        mtime: 0,
        mode: 0,
        hash: None,
        link: None,
        ino: Ino::Fixed(0),
        owner: None,
        xattrs: None,
    }
}

impl Fx {
    fn mode(mut self, mode: u32) -> Fx {
        self.mode = mode;
        self
    }

    /// Extended attributes whose digest is `Hash([tag; 32])`.
    fn xattrs(mut self, tag: u8) -> Fx {
        self.xattrs = Some(Hash([tag; 32]));
        self
    }

    fn owner(mut self, uid: u32) -> Fx {
        self.owner = Some(Owner { uid, gid: uid });
        self
    }

    fn size(mut self, size: u64) -> Fx {
        self.size = size;
        self
    }

    /// A scan that did not hash (a stat match was enough, or nobody asked).
    fn nohash(mut self) -> Fx {
        self.hash = None;
        self
    }

    /// The same object (inode) that `path` is on this side: a rename.
    fn was(mut self, path: &'static str) -> Fx {
        self.ino = Ino::Of(path);
        self
    }

    fn ino(mut self, ino: u64) -> Fx {
        self.ino = Ino::Fixed(ino);
        self
    }

    fn ino_on(&self, path: &str, side: Side) -> u64 {
        match &self.ino {
            Ino::Own => ino_of(path, side),
            Ino::Of(p) => ino_of(p, side),
            Ino::Fixed(n) => *n,
        }
    }

    fn entry(&self, path: &str, side: Side) -> Entry {
        Entry {
            kind: self.kind.clone(),
            size: self.size,
            mtime: self.mtime,
            mode: self.mode,
            ino: self.ino_on(path, side),
            hash: self.hash,
            link: self.link.clone(),
            owner: self.owner,
            xattrs: self.xattrs,
        }
    }

    fn base(&self, path: &str) -> BaseEntry {
        let seen = |side| Seen {
            ino: self.ino_on(path, side),
            mtime: self.mtime,
            mode: self.mode,
            owner: self.owner,
            xattrs: self.xattrs,
        };
        BaseEntry {
            kind: self.kind.clone(),
            size: self.size,
            hash: self.hash,
            link: self.link.clone(),
            src: seen(Side::Source),
            tgt: seen(Side::Target),
        }
    }
}

/// A deterministic inode number per (path, side): FNV-1a of the path, two per path.
fn ino_of(path: &str, side: Side) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % (1 << 40)) * 2 + 2 + u64::from(side == Side::Target)
}

fn rel(p: &str) -> RelPath {
    RelPath::from_str_lossless(p)
}

// ---- modes ----------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mode {
    direction: Direction,
    flavor: Flavor,
    policy: Policy,
}

const POLICIES: [Policy; 5] = [
    Policy::KeepBoth,
    Policy::Newest,
    Policy::Source,
    Policy::Target,
    Policy::Flag,
];

/// Every mode: `both` (its flavor means nothing) and each one-way direction in both
/// flavors, each under every policy.
fn all_modes() -> Vec<Mode> {
    let mut v = Vec::new();
    let dirs = [
        (Direction::Both, Flavor::Safe),
        (Direction::Push, Flavor::Safe),
        (Direction::Push, Flavor::Replica),
        (Direction::Pull, Flavor::Safe),
        (Direction::Pull, Flavor::Replica),
    ];
    for (direction, flavor) in dirs {
        for policy in POLICIES {
            v.push(Mode {
                direction,
                flavor,
                policy,
            });
        }
    }
    v
}

fn direction_name(m: Mode) -> &'static str {
    match (m.direction, m.flavor) {
        (Direction::Both, _) => "both",
        (Direction::Push, Flavor::Safe) => "push-safe",
        (Direction::Push, Flavor::Replica) => "push-replica",
        (Direction::Pull, Flavor::Safe) => "pull-safe",
        (Direction::Pull, Flavor::Replica) => "pull-replica",
    }
}

fn policy_name(p: Policy) -> &'static str {
    match p {
        Policy::KeepBoth => "keep-both",
        Policy::Newest => "newest",
        Policy::Source => "source",
        Policy::Target => "target",
        Policy::Flag => "flag",
    }
}

fn mode_name(m: Mode) -> String {
    format!("{}/{}", direction_name(m), policy_name(m.policy))
}

/// Modes named by a selector: space-separated `DIRECTION[/POLICY]` words. DIRECTION is
/// `*`, `both`, `one-way`, `push`, `pull`, `push-safe`, `push-replica`, `pull-safe` or
/// `pull-replica`; POLICY is `*` (the default), a policy name, or `!name` for all but one.
fn select(sel: &str) -> Vec<Mode> {
    let mut out = Vec::new();
    for word in sel.split_whitespace() {
        let (d, p) = word.split_once('/').unwrap_or((word, "*"));
        let found: Vec<Mode> = all_modes()
            .into_iter()
            .filter(|m| {
                let dn = direction_name(*m);
                let dir_ok = match d {
                    "*" => true,
                    "one-way" => m.direction != Direction::Both,
                    "push" => m.direction == Direction::Push,
                    "pull" => m.direction == Direction::Pull,
                    _ => dn == d,
                };
                let pn = policy_name(m.policy);
                let pol_ok = match p {
                    "*" => true,
                    _ => match p.strip_prefix('!') {
                        Some(not) => pn != not,
                        None => pn == p,
                    },
                };
                dir_ok && pol_ok
            })
            .collect();
        assert!(!found.is_empty(), "selector word {word:?} selects no mode");
        out.extend(found);
    }
    out
}

// ---- cases ----------------------------------------------------------------------------------

#[derive(Clone)]
struct Case {
    name: String,
    base: BTreeMap<String, Fx>,
    src: BTreeMap<String, Fx>,
    tgt: BTreeMap<String, Fx>,
    window: i64,
    /// `--update`: a newer file on the receiving side is kept.
    update: bool,
    /// `--owner`, `--xattrs`, ...
    keep: Keep,
    expects: Vec<(String, Vec<String>)>,
    mirror: bool,
}

fn case(name: &str) -> Case {
    Case {
        name: name.to_string(),
        base: BTreeMap::new(),
        src: BTreeMap::new(),
        tgt: BTreeMap::new(),
        window: 0,
        update: false,
        keep: Keep::default(),
        expects: Vec::new(),
        mirror: false,
    }
}

fn remove_subtree(m: &mut BTreeMap<String, Fx>, p: &str) {
    let below = format!("{p}/");
    m.retain(|k, _| k != p && !k.starts_with(&below));
}

impl Case {
    /// In the baseline and unchanged on both sides.
    fn same(mut self, p: &str, fx: Fx) -> Case {
        self.base.insert(p.to_string(), fx.clone());
        self.src.insert(p.to_string(), fx.clone());
        self.tgt.insert(p.to_string(), fx);
        self
    }

    /// On both sides but not in the baseline (a first sync, or both created it).
    fn both(mut self, p: &str, fx: Fx) -> Case {
        self.src.insert(p.to_string(), fx.clone());
        self.tgt.insert(p.to_string(), fx);
        self
    }

    fn base(mut self, p: &str, fx: Fx) -> Case {
        self.base.insert(p.to_string(), fx);
        self
    }

    fn src(mut self, p: &str, fx: Fx) -> Case {
        self.src.insert(p.to_string(), fx);
        self
    }

    fn tgt(mut self, p: &str, fx: Fx) -> Case {
        self.tgt.insert(p.to_string(), fx);
        self
    }

    /// Gone from the source, with everything below it.
    fn src_del(mut self, p: &str) -> Case {
        remove_subtree(&mut self.src, p);
        self
    }

    fn tgt_del(mut self, p: &str) -> Case {
        remove_subtree(&mut self.tgt, p);
        self
    }

    fn window(mut self, ns: i64) -> Case {
        self.window = ns;
        self
    }

    fn keeping(mut self, keep: Keep) -> Case {
        self.keep = keep;
        self
    }

    fn update(mut self) -> Case {
        self.update = true;
        self
    }

    /// The plan expected in the selected modes (see [`select`]), one string per action.
    fn expect<S: Into<String>>(mut self, sel: &str, plan: impl IntoIterator<Item = S>) -> Case {
        self.expects
            .push((sel.to_string(), plan.into_iter().map(Into::into).collect()));
        self
    }

    fn mirrored(mut self) -> Case {
        self.mirror = true;
        self
    }

    /// The same case with the two sides swapped.
    fn mirror_image(&self) -> Case {
        Case {
            name: swap_sides(&self.name),
            base: self.base.clone(),
            src: self.tgt.clone(),
            tgt: self.src.clone(),
            window: self.window,
            update: self.update,
            keep: self.keep,
            expects: self
                .expects
                .iter()
                .map(|(sel, plan)| {
                    (
                        swap_sides(sel),
                        plan.iter().map(|a| swap_sides(a)).collect(),
                    )
                })
                .collect(),
            mirror: false,
        }
    }

    /// The expected plan per mode, later `expect` lines winning.
    fn resolved(&self) -> Vec<(Mode, Vec<String>)> {
        let mut out: Vec<(Mode, Vec<String>)> = Vec::new();
        for (sel, plan) in &self.expects {
            for m in select(sel) {
                match out.iter_mut().find(|(k, _)| *k == m) {
                    Some(slot) => slot.1 = plan.clone(),
                    None => out.push((m, plan.clone())),
                }
            }
        }
        let order = all_modes();
        out.sort_by_key(|(m, _)| order.iter().position(|o| o == m));
        out
    }

    fn trees(&self) -> (BaseTree, Tree, Tree) {
        let base = self.base.iter().map(|(p, f)| (rel(p), f.base(p))).collect();
        let src = self
            .src
            .iter()
            .map(|(p, f)| (rel(p), f.entry(p, Side::Source)))
            .collect();
        let tgt = self
            .tgt
            .iter()
            .map(|(p, f)| (rel(p), f.entry(p, Side::Target)))
            .collect();
        (base, src, tgt)
    }
}

/// Swaps every mention of one side for the other: `S->T`, ` on S`, `source`, `push`...
fn swap_sides(s: &str) -> String {
    const PAIRS: [(&str, &str); 8] = [
        ("S->T", "T->S"),
        ("T->S", "S->T"),
        (" on S", " on T"),
        (" on T", " on S"),
        ("source", "target"),
        ("target", "source"),
        ("push", "pull"),
        ("pull", "push"),
    ];
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    'outer: while !rest.is_empty() {
        for (from, to) in PAIRS {
            if let Some(r) = rest.strip_prefix(from) {
                out.push_str(to);
                rest = r;
                continue 'outer;
            }
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

// ---- rendering ------------------------------------------------------------------------------

fn letter(side: Side) -> &'static str {
    match side {
        Side::Source => "S",
        Side::Target => "T",
    }
}

fn render(a: &Action) -> String {
    match a {
        Action::Rename {
            side,
            from,
            to,
            why,
            ..
        } => {
            let verb = match why {
                RenameWhy::Replay => "rename",
                RenameWhy::ConflictCopy => "set-aside",
            };
            format!("{verb} {from}->{to} on {}", letter(*side))
        }
        Action::Copy {
            path, from, expect, ..
        } => {
            let verb = if expect.is_some() { "update" } else { "copy" };
            format!("{verb} {path} {}->{}", letter(*from), letter(from.other()))
        }
        Action::Link {
            path, from, anchor, ..
        } => format!("link {path} to {anchor} on {}", letter(from.other())),
        Action::Mkdir { path, side, .. } => format!("mkdir {path} on {}", letter(*side)),
        Action::SetMeta { path, side, .. } => format!("meta {path} on {}", letter(*side)),
        Action::Delete { path, side, .. } => format!("delete {path} on {}", letter(*side)),
        Action::Record { path, .. } => format!("record {path}"),
        Action::Forget { path } => format!("forget {path}"),
        Action::Conflict(c) => {
            let kind = match c.kind {
                ConflictKind::Content => "content",
                ConflictKind::Type => "type",
                ConflictKind::DeleteModify => "delete-modify",
            };
            let how = match &c.resolution {
                Resolution::KeptBoth { loser, .. } => format!("kept-both loser={loser}"),
                Resolution::Won { winner } => format!("won={winner}"),
                Resolution::Flagged => "flagged".to_string(),
            };
            format!("conflict {} {kind} {how}", c.path)
        }
        Action::Skip {
            path,
            side: Some(side),
            ..
        } => format!("skip {path} on {}", letter(*side)),
        Action::Skip {
            path, side: None, ..
        } => format!("skip {path}"),
        Action::KeptNewer { path, side } => format!("keep-newer {path} on {}", letter(*side)),
    }
}

// ---- the apply model ------------------------------------------------------------------------

/// Both sides as plain maps; applying an action checks what the engine re-checks on disk.
struct Model {
    src: Tree,
    tgt: Tree,
    next_ino: u64,
}

/// Is `cur` (on disk now) the entry the plan saw (`want`)? Entries this model created
/// have inode numbers the plan could not know.
fn is_as_seen(cur: &Entry, want: &Entry) -> bool {
    cur.kind == want.kind
        && cur.size == want.size
        && cur.mtime == want.mtime
        && cur.mode == want.mode
        && cur.hash == want.hash
        && cur.link == want.link
        && (cur.ino == want.ino || cur.ino >= FRESH)
}

fn parent_is_dir(tree: &Tree, p: &RelPath) -> bool {
    match p.parent() {
        None => true,
        Some(q) if q.is_root() => true,
        Some(q) => tree.get(&q).is_some_and(Entry::is_dir),
    }
}

impl Model {
    fn tree(&mut self, side: Side) -> &mut Tree {
        match side {
            Side::Source => &mut self.src,
            Side::Target => &mut self.tgt,
        }
    }

    fn fresh(&mut self, e: &Entry) -> Entry {
        self.next_ino += 1;
        Entry {
            ino: self.next_ino,
            ..e.clone()
        }
    }

    fn check_as_seen(&mut self, side: Side, p: &RelPath, want: &Entry) -> Result<(), String> {
        match self.tree(side).get(p) {
            Some(cur) if is_as_seen(cur, want) => Ok(()),
            cur => Err(format!(
                "{p} on {side} is {cur:?}, the plan expected {want:?}"
            )),
        }
    }

    fn check_parent(&mut self, side: Side, p: &RelPath) -> Result<(), String> {
        if parent_is_dir(self.tree(side), p) {
            Ok(())
        } else {
            Err(format!("{p} on {side}: its parent is not a directory"))
        }
    }

    fn check_absent(&mut self, side: Side, p: &RelPath) -> Result<(), String> {
        match self.tree(side).get(p) {
            None => Ok(()),
            Some(e) => Err(format!("{p} on {side} is taken by {e:?}")),
        }
    }

    fn apply(&mut self, a: &Action) -> Result<(), String> {
        match a {
            // Links come from `link_copies`, after reconcile (crates/tandem-core/src/links.rs).
            Action::Link { path, .. } => return Err(format!("reconcile planned a link at {path}")),
            Action::Rename {
                side,
                from,
                to,
                expect,
                ..
            } => {
                self.check_as_seen(*side, from, expect)?;
                self.check_absent(*side, to)?;
                self.check_parent(*side, to)?;
                move_subtree(self.tree(*side), from, to);
            }
            Action::Delete { path, side, expect } => {
                self.check_as_seen(*side, path, expect)?;
                let (lo, hi) = path.subtree_range();
                if let Some((child, _)) = self.tree(*side).range(lo..hi).next() {
                    return Err(format!(
                        "deleting {path} on {side}: {child} is still inside"
                    ));
                }
                self.tree(*side).remove(path);
            }
            Action::Mkdir { path, side, src } => {
                if !src.is_dir() {
                    return Err(format!("mkdir {path} from a {}", src.kind.word()));
                }
                self.check_absent(*side, path)?;
                self.check_parent(*side, path)?;
                let e = self.fresh(src);
                self.tree(*side).insert(path.clone(), e);
            }
            Action::Copy {
                path,
                from,
                src,
                expect,
                mode,
            } => {
                if !matches!(src.kind, Kind::File | Kind::Symlink) {
                    return Err(format!("copy of a {} at {path}", src.kind.word()));
                }
                self.check_as_seen(*from, path, src)?;
                let to = from.other();
                match expect {
                    Some(e) => self.check_as_seen(to, path, e)?,
                    None => self.check_absent(to, path)?,
                }
                self.check_parent(to, path)?;
                let mut e = self.fresh(src);
                e.mode = *mode;
                self.tree(to).insert(path.clone(), e);
            }
            Action::SetMeta {
                path,
                side,
                src,
                expect,
            } => {
                self.check_as_seen(*side, path, expect)?;
                let e = self.tree(*side).get_mut(path).unwrap();
                if e.kind != src.kind {
                    return Err(format!(
                        "metadata of a {} onto a {}",
                        src.kind.word(),
                        e.kind.word()
                    ));
                }
                e.mode = src.mode;
                e.owner = src.owner;
                e.xattrs = src.xattrs;
                if e.kind == Kind::File {
                    e.mtime = src.mtime;
                }
            }
            Action::Record { .. }
            | Action::Forget { .. }
            | Action::Conflict(_)
            | Action::Skip { .. }
            | Action::KeptNewer { .. } => {}
        }
        Ok(())
    }
}

// ---- checks ---------------------------------------------------------------------------------

/// What a user would call a version of a file or link.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Version {
    File(Hash),
    Link(Vec<u8>),
}

fn version_of(kind: &Kind, hash: Option<Hash>, link: &Option<Vec<u8>>) -> Option<Version> {
    match kind {
        Kind::File => hash.map(Version::File),
        Kind::Symlink => link.clone().map(Version::Link),
        _ => None,
    }
}

/// The two sides hold the same thing, as far as the run keeps it: owners and extended
/// attributes only where kept, setuid and setgid bits only where they may travel.
fn equivalent(s: &Entry, t: &Entry, opts: &Options) -> bool {
    if s.kind != t.kind {
        return false;
    }
    let keep = &opts.keep;
    let same_meta = keep.travelling_mode(s.mode) == keep.travelling_mode(t.mode)
        && (!keep.owner || s.owner == t.owner)
        && (!keep.reads_xattrs() || s.xattrs == t.xattrs);
    match s.kind {
        Kind::File => {
            s.size == t.size
                && (s.hash.is_none() || t.hash.is_none() || s.hash == t.hash)
                && same_meta
                && s.mtime.abs_diff(t.mtime) <= opts.modify_window.unsigned_abs()
        }
        Kind::Dir => same_meta,
        Kind::Symlink => s.link == t.link && (!keep.owner || s.owner == t.owner),
        _ => false,
    }
}

fn options(m: Mode, c: &Case) -> Options {
    Options {
        direction: m.direction,
        flavor: m.flavor,
        policy: m.policy,
        modify_window: c.window,
        update: c.update,
        keep: c.keep,
        stamp: STAMP.to_string(),
        ..Options::default()
    }
}

fn run(c: &Case, m: Mode, want: &[String]) -> Result<(), String> {
    let opts = options(m, c);
    let (base, src, tgt) = c.trees();
    let plan = reconcile(base.clone(), src.clone(), tgt.clone(), &opts);
    let got: Vec<String> = plan.actions.iter().map(render).collect();
    if got != want {
        // Say also whether the plan as made keeps the invariants: it tells a wrong
        // expectation from a wrong plan.
        let verdict = match check_plan(&plan, &base, &src, &tgt, &opts) {
            Ok(()) => "the plan as made passes the checks".to_string(),
            Err(e) => format!("the plan as made fails the checks: {e}"),
        };
        return Err(format!(
            "plan differs\n    want: {}\n    got:  {}\n    {verdict}",
            want.join("\n          "),
            got.join("\n          ")
        ));
    }
    check_plan(&plan, &base, &src, &tgt, &opts)
        .map_err(|e| format!("{e}\n    plan: {}", got.join("\n          ")))
}

/// The invariants every plan must keep, whatever its exact shape.
fn check_plan(
    plan: &Plan,
    base: &BaseTree,
    src: &Tree,
    tgt: &Tree,
    opts: &Options,
) -> Result<(), String> {
    // A kept-both conflict names the copy that its set-aside step creates.
    for a in &plan.actions {
        if let Action::Conflict(c) = a {
            if let Resolution::KeptBoth { loser, copy } = &c.resolution {
                let set_aside = plan.actions.iter().any(|r| {
                    matches!(r, Action::Rename { side, from, to, why: RenameWhy::ConflictCopy, .. }
                        if side == loser && *from == c.path && to == copy)
                });
                if !set_aside {
                    return Err(format!(
                        "conflict at {} keeps {copy} but never sets it aside",
                        c.path
                    ));
                }
            }
        }
    }
    // Nothing is written to a side the direction forbids (a replica reverts only the
    // receiving side).
    for a in plan.writes() {
        let side = a.writes_to().unwrap();
        if !opts.direction.writes(side) {
            return Err(format!(
                "{} writes to the {side} in {:?} mode",
                render(a),
                opts.direction
            ));
        }
    }

    // Nothing is written at or below a special file or an unreadable entry, on either side.
    let untrackable: Vec<&RelPath> = src
        .iter()
        .chain(tgt)
        .filter(|(_, e)| !e.kind.is_tracked())
        .map(|(p, _)| p)
        .collect();
    for a in plan.writes() {
        let touched = match a {
            Action::Rename { from, to, .. } => vec![from, to],
            _ => vec![a.path()],
        };
        for t in touched {
            if let Some(u) = untrackable.iter().find(|u| t.starts_with(u)) {
                return Err(format!(
                    "`{}` writes across {u}, which cannot be synced",
                    render(a)
                ));
            }
        }
    }

    let mut model = Model {
        src: src.clone(),
        tgt: tgt.clone(),
        next_ino: FRESH,
    };
    for a in &plan.actions {
        model
            .apply(a)
            .map_err(|e| format!("cannot apply `{}`: {e}", render(a)))?;
    }
    let (src2, tgt2) = (model.src, model.tgt);

    // Invariant 1: every changed version survives somewhere, unless a conflict was won
    // (the loser goes to its trash) or a replica reverted the receiving side.
    let won: BTreeSet<&RelPath> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Conflict(c) if matches!(c.resolution, Resolution::Won { .. }) => Some(&c.path),
            _ => None,
        })
        .collect();
    let after: BTreeSet<Version> = src2
        .values()
        .chain(tgt2.values())
        .filter_map(|e| version_of(&e.kind, e.hash, &e.link))
        .collect();
    // A version the baseline holds (at any path: renames move them) is no change.
    let agreed: BTreeSet<Version> = base
        .values()
        .filter_map(|b| version_of(&b.kind, b.hash, &b.link))
        .collect();
    for (side, tree) in [(Side::Source, src), (Side::Target, tgt)] {
        let reverted = opts.flavor == Flavor::Replica
            && opts.direction != Direction::Both
            && opts.direction.writes(side);
        for (p, e) in tree {
            let Some(v) = version_of(&e.kind, e.hash, &e.link) else {
                continue;
            };
            if agreed.contains(&v) || after.contains(&v) || won.contains(p) || reverted {
                continue;
            }
            return Err(format!("the {side}'s version {v:?} of {p} is lost"));
        }
    }

    // Invariant 5: outside what the plan leaves alone, the sides are equal.
    let mut left_alone: Vec<RelPath> = Vec::new();
    for a in &plan.actions {
        match a {
            Action::Skip { path, .. } | Action::KeptNewer { path, .. } => {
                left_alone.push(path.clone())
            }
            Action::Conflict(c) => match &c.resolution {
                Resolution::Flagged => left_alone.push(c.path.clone()),
                Resolution::KeptBoth { copy, .. } if opts.direction != Direction::Both => {
                    left_alone.push(copy.clone());
                }
                _ => {}
            },
            _ => {}
        }
    }
    let paths: BTreeSet<&RelPath> = src2.keys().chain(tgt2.keys()).collect();
    for p in &paths {
        // A path left alone keeps its parents on the side that has it.
        if left_alone
            .iter()
            .any(|l| p.starts_with(l) || l.starts_with(p))
        {
            continue;
        }
        let (s, t) = (src2.get(*p), tgt2.get(*p));
        let same = matches!((s, t), (Some(s), Some(t)) if equivalent(s, t, opts));
        if !same {
            return Err(format!(
                "after the plan the sides differ at {p}:\n    source {s:?}\n    target {t:?}"
            ));
        }
    }

    // The next run, against the baseline this one leads to, writes nothing. Not asked of a
    // one-way run with a conflict: keep-both leaves the conflict copy on the receiving side
    // only, and a replica reverts it (or a flagged type conflict's leftovers) next time.
    let one_way_conflict = opts.direction != Direction::Both
        && plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::Conflict(_)));
    if one_way_conflict {
        return Ok(());
    }
    // A replayed rename moves the baseline entries with it.
    let mut base = base.clone();
    for a in &plan.actions {
        if let Action::Rename {
            from,
            to,
            why: RenameWhy::Replay,
            ..
        } = a
        {
            move_subtree(&mut base, from, to);
        }
    }
    let mut base2 = BaseTree::new();
    let all: BTreeSet<&RelPath> = paths.iter().copied().chain(base.keys()).collect();
    for p in all {
        match (src2.get(p), tgt2.get(p)) {
            (Some(s), Some(t)) if s.kind.is_tracked() && equivalent(s, t, opts) => {
                base2.insert(p.clone(), BaseEntry::agreed(s, t));
            }
            (None, None) => {}
            _ => {
                if let Some(b) = base.get(p) {
                    base2.insert(p.clone(), b.clone());
                }
            }
        }
    }
    let again = reconcile(base2, src2, tgt2, opts);
    if again.writes().next().is_some() {
        let got: Vec<String> = again.actions.iter().map(render).collect();
        return Err(format!(
            "a second run still writes:\n          {}",
            got.join("\n          ")
        ));
    }
    Ok(())
}

// ---- the table --------------------------------------------------------------------------------

#[test]
fn reconcile_table() {
    let only = std::env::var("RECONCILE_CASE").ok();
    let cases = all_cases();
    let mut failures = Vec::new();
    let mut runs = 0;
    for c in &cases {
        if only.as_deref().is_some_and(|w| !c.name.contains(w)) {
            continue;
        }
        let resolved = c.resolved();
        assert!(!resolved.is_empty(), "case {:?} expects nothing", c.name);
        for (m, want) in resolved {
            runs += 1;
            if let Err(e) = run(c, m, &want) {
                failures.push(format!("{} [{}]: {e}", c.name, mode_name(m)));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} runs failed:\n\n{}\n",
        failures.len(),
        failures.join("\n\n")
    );
    eprintln!("reconcile table: {} cases, {runs} runs", cases.len());
}

#[test]
fn table_is_large_and_names_are_unique() {
    let cases = all_cases();
    for (i, c) in cases.iter().enumerate() {
        assert!(
            !cases[..i].iter().any(|d| d.name == c.name),
            "two cases are named {:?}",
            c.name
        );
    }
    assert!(cases.len() >= 110, "only {} cases", cases.len());
}

fn all_cases() -> Vec<Case> {
    let groups = [
        unchanged_and_one_sided(),
        same_change_on_both_sides(),
        content_conflicts(),
        conflict_copy_names(),
        delete_against_modify(),
        directories_deleted_under_changes(),
        type_changes_and_conflicts(),
        symlinks(),
        first_sync(),
        renames(),
        special_files_and_problems(),
        baseline_refresh(),
        one_way(),
        only_if_newer(),
        kept_metadata(),
        ordering(),
    ];
    let mut out = Vec::new();
    for c in groups.into_iter().flatten() {
        if c.mirror {
            let m = c.mirror_image();
            out.push(c);
            out.push(m);
        } else {
            out.push(c);
        }
    }
    out
}

// ---- owners, extended attributes, setuid bits (issue 19) ------------------------------------

const XATTRS: Keep = Keep {
    owner: false,
    numeric_ids: false,
    setid: false,
    xattrs: true,
    acls: false,
    trusted: false,
};

const OWNER: Keep = Keep {
    owner: true,
    numeric_ids: false,
    setid: false,
    xattrs: false,
    acls: false,
    trusted: false,
};

fn kept_metadata() -> Vec<Case> {
    vec![
        case("source changed a file's extended attributes only")
            .keeping(XATTRS)
            .same("a", file(1, 100).xattrs(1))
            .src("a", file(1, 100).xattrs(2))
            .expect("both push", ["meta a on T"])
            .expect("pull-safe", ["skip a on S"])
            .expect("pull-replica", ["meta a on S"])
            .mirrored(),
        case("source changed a directory's extended attributes only")
            .keeping(XATTRS)
            .same("d", dir())
            .src("d", dir().xattrs(2))
            .expect("both push", ["meta d on T"])
            .expect("pull-safe", ["skip d on S"])
            .expect("pull-replica", ["meta d on S"])
            .mirrored(),
        case("source changed extended attributes, not kept by this run")
            .same("a", file(1, 100).xattrs(1))
            .src("a", file(1, 100).xattrs(2))
            .expect("*", NOTHING)
            .mirrored(),
        case("both changed extended attributes the same way")
            .keeping(XATTRS)
            .same("a", file(1, 100))
            .both("a", file(1, 100).xattrs(3))
            .expect("*", ["record a"]),
        case("both changed extended attributes differently at the same mtime")
            .keeping(XATTRS)
            .same("a", file(1, 100))
            .src("a", file(1, 100).xattrs(2))
            .tgt("a", file(1, 100).xattrs(3))
            .expect(
                "both/keep-both both/newest both/source push-safe/keep-both push-safe/newest \
                 push-safe/source push-replica",
                ["meta a on T"],
            )
            .expect("both/target pull-safe/target pull-replica", ["meta a on S"])
            .expect(
                "both/flag push-safe/flag pull-safe/flag push-safe/target pull-safe/keep-both \
                 pull-safe/newest pull-safe/source",
                ["skip a"],
            ),
        // An attribute change is a change: against an edit it is a conflict, as a mode
        // change is.
        case("source edited a file, target changed only its extended attributes")
            .keeping(XATTRS)
            .same("a", file(1, 100))
            .src("a", file(2, 300))
            .tgt("a", file(1, 100).xattrs(2))
            .expect(
                "both/keep-both",
                [
                    "conflict a content kept-both loser=target",
                    "set-aside a->a.conflict-20240102-030405-target on T",
                    "copy a S->T",
                    "copy a.conflict-20240102-030405-target T->S",
                ],
            )
            .expect(
                "both/newest both/source",
                ["conflict a content won=source", "update a S->T"],
            )
            .expect(
                "both/target",
                ["conflict a content won=target", "update a T->S"],
            )
            .expect("both/flag", ["conflict a content flagged"])
            .mirrored(),
        case("source changed a file's owner only")
            .keeping(OWNER)
            .same("a", file(1, 100).owner(1))
            .src("a", file(1, 100).owner(2))
            .expect("both push", ["meta a on T"])
            .expect("pull-safe", ["skip a on S"])
            .expect("pull-replica", ["meta a on S"])
            .mirrored(),
        case("source changed a file's owner, owners not kept by this run")
            .same("a", file(1, 100).owner(1))
            .src("a", file(1, 100).owner(2))
            .expect("*", NOTHING)
            .mirrored(),
        // A link's owner is its own (`chown -h`), kept like a file's.
        case("source changed a symlink's owner only")
            .keeping(OWNER)
            .same("l", link("x").owner(1))
            .src("l", link("x").owner(2))
            .expect("both push", ["meta l on T"])
            .expect("pull-safe", ["skip l on S"])
            .expect("pull-replica", ["meta l on S"])
            .mirrored(),
        case("source changed a symlink's owner, owners not kept by this run")
            .same("l", link("x").owner(1))
            .src("l", link("x").owner(2))
            .expect("*", NOTHING)
            .mirrored(),
        case("both created a symlink, owners differ")
            .keeping(OWNER)
            .src("l", link("x").owner(1))
            .tgt("l", link("x").owner(2))
            .expect(
                "both/keep-both both/newest both/source push-safe/keep-both push-safe/newest \
                 push-safe/source push-replica",
                ["meta l on T"],
            )
            .expect("both/target pull-safe/target pull-replica", ["meta l on S"])
            .expect(
                "both/flag push-safe/flag pull-safe/flag push-safe/target pull-safe/keep-both \
                 pull-safe/newest pull-safe/source",
                ["skip l"],
            ),
        // Setuid bits that may not travel are not a difference between the sides.
        case("both created a file, setuid on one side only")
            .src("a", file(1, 100).mode(0o4755))
            .tgt("a", file(1, 100).mode(0o755))
            .expect("*", ["record a"]),
    ]
}

// ---- nothing, and a change on one side ----------------------------------------------------------

fn unchanged_and_one_sided() -> Vec<Case> {
    vec![
        case("nothing changed anywhere")
            .same("a", file(1, 100))
            .same("d", dir())
            .same("d/b", file(2, 100))
            .same("l", link("a"))
            .expect("*", NOTHING),
        case("source created a file")
            .src("a", file(1, 100))
            .expect("both push", ["copy a S->T"])
            .expect("pull-safe", ["skip a on S"])
            .expect("pull-replica", ["delete a on S"])
            .mirrored(),
        case("source modified a file's content, same size")
            .same("a", file(1, 100))
            .src("a", file(2, 200))
            .expect("both push", ["update a S->T"])
            .expect("pull-safe", ["skip a on S"])
            .expect("pull-replica", ["update a T->S"])
            .mirrored(),
        case("source modified a file in place, no hashes, same size")
            .same("a", file(1, 100).nohash())
            .src("a", file(2, 200).nohash())
            .expect("both push", ["update a S->T"])
            .expect("pull-safe", ["skip a on S"])
            .expect("pull-replica", ["update a T->S"])
            .mirrored(),
        case("source grew a file, no hash needed to see it")
            .same("a", file(1, 100))
            .src("a", file(2, 200).size(150).nohash())
            .expect("both push", ["update a S->T"])
            .expect("pull-safe", ["skip a on S"])
            .expect("pull-replica", ["update a T->S"])
            .mirrored(),
        case("source changed a file's mode only")
            .same("a", file(1, 100))
            .src("a", file(1, 100).mode(0o600))
            .expect("both push", ["meta a on T"])
            .expect("pull-safe", ["skip a on S"])
            .expect("pull-replica", ["meta a on S"])
            .mirrored(),
        case("source touched a file (mtime only)")
            .same("a", file(1, 100))
            .src("a", file(1, 150))
            .expect("both push", ["meta a on T"])
            .expect("pull-safe", ["skip a on S"])
            .expect("pull-replica", ["meta a on S"])
            .mirrored(),
        case("source touched a file within the modify window")
            .window(2 * SEC)
            .same("a", file(1, 100))
            .src("a", file(1, 101))
            .expect("*", NOTHING)
            .mirrored(),
        case("source touched a file beyond the modify window")
            .window(2 * SEC)
            .same("a", file(1, 100))
            .src("a", file(1, 103))
            .expect("both push", ["meta a on T"])
            .expect("pull-safe", ["skip a on S"])
            .expect("pull-replica", ["meta a on S"])
            .mirrored(),
        case("source deleted a file")
            .same("a", file(1, 100))
            .src_del("a")
            .expect("both push", ["delete a on T"])
            .expect("pull-safe", ["skip a on S"])
            .expect("pull-replica", ["copy a T->S"])
            .mirrored(),
        case("source created an empty directory")
            .src("d", dir())
            .expect("both push", ["mkdir d on T"])
            .expect("pull-safe", ["skip d on S"])
            .expect("pull-replica", ["delete d on S"])
            .mirrored(),
        case("source created a directory tree")
            .src("d", dir())
            .src("d/e", dir())
            .src("d/e/f", file(1, 100))
            .src("d/g", file(2, 100))
            .expect(
                "both push",
                [
                    "mkdir d on T",
                    "mkdir d/e on T",
                    "copy d/e/f S->T",
                    "copy d/g S->T",
                ],
            )
            .expect(
                "pull-safe",
                [
                    "skip d on S",
                    "skip d/e on S",
                    "skip d/e/f on S",
                    "skip d/g on S",
                ],
            )
            .expect(
                "pull-replica",
                [
                    "delete d/g on S",
                    "delete d/e/f on S",
                    "delete d/e on S",
                    "delete d on S",
                ],
            )
            .mirrored(),
        case("source changed a directory's mode")
            .same("d", dir())
            .src("d", dir().mode(0o700))
            .expect("both push", ["meta d on T"])
            .expect("pull-safe", ["skip d on S"])
            .expect("pull-replica", ["meta d on S"])
            .mirrored(),
        case("source deleted a directory tree")
            .same("d", dir())
            .same("d/e", dir())
            .same("d/e/f", file(1, 100))
            .same("d/g", file(2, 100))
            .src_del("d")
            .expect(
                "both push",
                [
                    "delete d/g on T",
                    "delete d/e/f on T",
                    "delete d/e on T",
                    "delete d on T",
                ],
            )
            .expect(
                "pull-safe",
                [
                    "skip d on S",
                    "skip d/e on S",
                    "skip d/e/f on S",
                    "skip d/g on S",
                ],
            )
            .expect(
                "pull-replica",
                [
                    "mkdir d on S",
                    "mkdir d/e on S",
                    "copy d/e/f T->S",
                    "copy d/g T->S",
                ],
            )
            .mirrored(),
        case("source created a symlink")
            .src("l", link("x"))
            .expect("both push", ["copy l S->T"])
            .expect("pull-safe", ["skip l on S"])
            .expect("pull-replica", ["delete l on S"])
            .mirrored(),
        case("source retargeted a symlink")
            .same("l", link("x"))
            .src("l", link("y"))
            .expect("both push", ["update l S->T"])
            .expect("pull-safe", ["skip l on S"])
            .expect("pull-replica", ["update l T->S"])
            .mirrored(),
        case("source deleted a symlink")
            .same("l", link("x"))
            .src_del("l")
            .expect("both push", ["delete l on T"])
            .expect("pull-safe", ["skip l on S"])
            .expect("pull-replica", ["copy l T->S"])
            .mirrored(),
    ]
}

// ---- both sides made the same change: a false conflict -------------------------------------------

fn same_change_on_both_sides() -> Vec<Case> {
    vec![
        case("both deleted a file")
            .same("a", file(1, 100))
            .src_del("a")
            .tgt_del("a")
            .expect("*", ["forget a"]),
        case("both created the same file")
            .both("a", file(1, 100))
            .expect("*", ["record a"]),
        case("both made the same edit")
            .same("a", file(1, 100))
            .both("a", file(2, 200))
            .expect("*", ["record a"]),
        case("both made the same edit, mtimes within the modify window")
            .window(2 * SEC)
            .same("a", file(1, 100))
            .src("a", file(2, 200))
            .tgt("a", file(2, 201))
            .expect("*", ["record a"]),
        case("both changed a file's mode the same way")
            .same("a", file(1, 100))
            .both("a", file(1, 100).mode(0o600))
            .expect("*", ["record a"]),
        case("both created the same directory")
            .both("d", dir())
            .expect("*", ["record d"]),
        case("both deleted a directory tree")
            .same("d", dir())
            .same("d/x", file(1, 100))
            .src_del("d")
            .tgt_del("d")
            .expect("*", ["forget d", "forget d/x"]),
        case("both retargeted a symlink the same way")
            .same("l", link("x"))
            .both("l", link("y"))
            .expect("*", ["record l"]),
        case("both made the same edit with different mtimes, target newer")
            .same("a", file(1, 100))
            .src("a", file(2, 200))
            .tgt("a", file(2, 300))
            .expect(
                "both/keep-both both/newest both/target pull-safe/keep-both pull-safe/newest \
                 pull-safe/target pull-replica",
                ["meta a on S"],
            )
            .expect("both/source push-safe/source push-replica", ["meta a on T"])
            .expect(
                "both/flag push-safe/keep-both push-safe/newest push-safe/target push-safe/flag \
                 pull-safe/source pull-safe/flag",
                ["skip a"],
            )
            .mirrored(),
        case("both changed a file's mode differently at the same mtime: the source wins the tie")
            .same("a", file(1, 100))
            .src("a", file(1, 100).mode(0o600))
            .tgt("a", file(1, 100).mode(0o640))
            .expect(
                "both/keep-both both/newest both/source push-safe/keep-both push-safe/newest \
                 push-safe/source push-replica",
                ["meta a on T"],
            )
            .expect("both/target pull-safe/target pull-replica", ["meta a on S"])
            .expect(
                "both/flag push-safe/flag pull-safe/flag push-safe/target pull-safe/keep-both \
                 pull-safe/newest pull-safe/source",
                ["skip a"],
            ),
        case("both changed a directory's mode differently")
            .same("d", dir())
            .src("d", dir().mode(0o700))
            .tgt("d", dir().mode(0o750))
            .expect("both/!flag", ["meta d on T"])
            .expect("both/target", ["meta d on S"])
            .expect("both/flag", ["skip d"]),
    ]
}

// ---- both sides changed a file differently ---------------------------------------------------

fn content_conflicts() -> Vec<Case> {
    vec![
        case("both edited a file differently, source newer")
            .same("a.txt", file(1, 100))
            .src("a.txt", file(2, 300))
            .tgt("a.txt", file(3, 200))
            .expect(
                "both/keep-both",
                [
                    "conflict a.txt content kept-both loser=target",
                    "set-aside a.txt->a.conflict-20240102-030405-target.txt on T",
                    "copy a.txt S->T",
                    "copy a.conflict-20240102-030405-target.txt T->S",
                ],
            )
            .expect(
                "both/newest both/source push-safe/newest push-safe/source",
                ["conflict a.txt content won=source", "update a.txt S->T"],
            )
            .expect(
                "both/target pull-safe/target",
                ["conflict a.txt content won=target", "update a.txt T->S"],
            )
            .expect(
                "both/flag push-safe/target push-safe/flag pull-safe/newest pull-safe/source \
                 pull-safe/flag",
                ["conflict a.txt content flagged"],
            )
            .expect(
                "push-safe/keep-both",
                [
                    "conflict a.txt content kept-both loser=target",
                    "set-aside a.txt->a.conflict-20240102-030405-target.txt on T",
                    "copy a.txt S->T",
                ],
            )
            .expect("push-replica", ["update a.txt S->T"])
            .expect(
                "pull-safe/keep-both",
                [
                    "conflict a.txt content kept-both loser=source",
                    "set-aside a.txt->a.conflict-20240102-030405-source.txt on S",
                    "copy a.txt T->S",
                ],
            )
            .expect("pull-replica", ["update a.txt T->S"])
            .mirrored(),
        case("both edited a file at the same mtime: the source wins the tie")
            .same("a.txt", file(1, 100))
            .src("a.txt", file(2, 200))
            .tgt("a.txt", file(3, 200))
            .expect(
                "both/keep-both",
                [
                    "conflict a.txt content kept-both loser=target",
                    "set-aside a.txt->a.conflict-20240102-030405-target.txt on T",
                    "copy a.txt S->T",
                    "copy a.conflict-20240102-030405-target.txt T->S",
                ],
            )
            .expect(
                "both/newest",
                ["conflict a.txt content won=source", "update a.txt S->T"],
            ),
        case("both edited a file, sizes differ and no hashes")
            .same("a", file(1, 100).nohash())
            .src("a", file(2, 300).size(120).nohash())
            .tgt("a", file(3, 200).size(130).nohash())
            .expect(
                "both/newest",
                ["conflict a content won=source", "update a S->T"],
            )
            .expect("both/flag", ["conflict a content flagged"]),
        // A change of mode or mtime is a change: against an edit it is a conflict.
        case("source edited a file, target changed only its mode")
            .same("a", file(1, 100))
            .src("a", file(2, 300))
            .tgt("a", file(1, 100).mode(0o600))
            .expect(
                "both/keep-both",
                [
                    "conflict a content kept-both loser=target",
                    "set-aside a->a.conflict-20240102-030405-target on T",
                    "copy a S->T",
                    "copy a.conflict-20240102-030405-target T->S",
                ],
            )
            .expect(
                "both/newest both/source",
                ["conflict a content won=source", "update a S->T"],
            )
            .expect(
                "both/target",
                ["conflict a content won=target", "update a T->S"],
            )
            .expect("both/flag", ["conflict a content flagged"])
            .mirrored(),
        case("source edited a file, target touched it later")
            .same("a", file(1, 100))
            .src("a", file(2, 200))
            .tgt("a", file(1, 300))
            .expect(
                "both/keep-both",
                [
                    "conflict a content kept-both loser=source",
                    "set-aside a->a.conflict-20240102-030405-source on S",
                    "copy a T->S",
                    "copy a.conflict-20240102-030405-source S->T",
                ],
            )
            .expect(
                "both/newest both/target",
                ["conflict a content won=target", "update a T->S"],
            )
            .expect(
                "both/source",
                ["conflict a content won=source", "update a S->T"],
            )
            .expect("both/flag", ["conflict a content flagged"]),
        case("both edited a file inside a directory both created")
            .both("d", dir())
            .src("d/a", file(1, 100))
            .tgt("d/a", file(2, 200))
            .expect(
                "both/keep-both",
                [
                    "record d",
                    "conflict d/a content kept-both loser=source",
                    "set-aside d/a->d/a.conflict-20240102-030405-source on S",
                    "copy d/a T->S",
                    "copy d/a.conflict-20240102-030405-source S->T",
                ],
            )
            .expect("both/flag", ["record d", "conflict d/a content flagged"]),
    ]
}

// ---- NAME.conflict-YYYYMMDD-HHMMSS-SIDE.EXT --------------------------------------------------

/// A conflict at `name` (source newer) under keep-both: the target's version is set aside.
fn kept_both(name: &str, copy: &str) -> Vec<String> {
    vec![
        format!("conflict {name} content kept-both loser=target"),
        format!("set-aside {name}->{copy} on T"),
        format!("copy {name} S->T"),
        format!("copy {copy} T->S"),
    ]
}

fn conflict_copy_names() -> Vec<Case> {
    let long = format!("{}.txt", "x".repeat(250));
    let long_copy = format!(
        "{}.conflict-20240102-030405-target.txt",
        "x".repeat(255 - ".conflict-20240102-030405-target.txt".len())
    );
    assert_eq!(long_copy.len(), 255);
    let conflict = |name: &str| {
        case("")
            .same(name, file(1, 100))
            .src(name, file(2, 300))
            .tgt(name, file(3, 200))
    };
    let named = |c: Case, n: &str| Case {
        name: n.to_string(),
        ..c
    };
    vec![
        named(
            conflict("README"),
            "conflict copy of a name without an extension",
        )
        .expect(
            "both/keep-both",
            kept_both("README", "README.conflict-20240102-030405-target"),
        ),
        named(
            conflict(".bashrc"),
            "conflict copy of a dotfile keeps the whole name as the stem",
        )
        .expect(
            "both/keep-both",
            kept_both(".bashrc", ".bashrc.conflict-20240102-030405-target"),
        ),
        named(
            conflict("backup.tar.gz"),
            "conflict copy of a name with several dots splits at the last one",
        )
        .expect(
            "both/keep-both",
            kept_both(
                "backup.tar.gz",
                "backup.tar.conflict-20240102-030405-target.gz",
            ),
        ),
        named(
            conflict("docs/a.txt").same("docs", dir()),
            "conflict copy stays beside the file in its directory",
        )
        .expect(
            "both/keep-both",
            kept_both("docs/a.txt", "docs/a.conflict-20240102-030405-target.txt"),
        ),
        named(
            conflict(&long),
            "conflict copy of a 254-byte name is cut to 255 bytes",
        )
        .expect("both/keep-both", kept_both(&long, &long_copy)),
        named(
            conflict("a.txt").tgt("a.conflict-20240102-030405-target.txt", file(9, 100)),
            "conflict copy name taken on the target gets -2",
        )
        .expect(
            "both/keep-both",
            [
                "conflict a.txt content kept-both loser=target",
                "set-aside a.txt->a.conflict-20240102-030405-target-2.txt on T",
                "copy a.conflict-20240102-030405-target.txt T->S",
                "copy a.txt S->T",
                "copy a.conflict-20240102-030405-target-2.txt T->S",
            ],
        ),
        named(
            conflict("a.txt")
                .same("a.conflict-20240102-030405-target.txt", file(8, 100))
                .src("a.conflict-20240102-030405-target-2.txt", file(9, 100)),
            "conflict copy names taken in the baseline and on the source get -3",
        )
        .expect(
            "both/keep-both",
            [
                "conflict a.txt content kept-both loser=target",
                "set-aside a.txt->a.conflict-20240102-030405-target-3.txt on T",
                "copy a.conflict-20240102-030405-target-2.txt S->T",
                "copy a.txt S->T",
                "copy a.conflict-20240102-030405-target-3.txt T->S",
            ],
        ),
        named(
            conflict("a.txt").tgt("a.conflict-20240102-030405-target.txt", file(9, 100)),
            "conflict copy name taken on the target, one-way push",
        )
        .expect(
            "push-safe/keep-both",
            [
                "skip a.conflict-20240102-030405-target.txt on T",
                "conflict a.txt content kept-both loser=target",
                "set-aside a.txt->a.conflict-20240102-030405-target-2.txt on T",
                "copy a.txt S->T",
            ],
        ),
    ]
}

// ---- one side deleted what the other changed -------------------------------------------------

fn delete_against_modify() -> Vec<Case> {
    vec![
        case("source deleted a file, target modified it")
            .same("a", file(1, 100))
            .src_del("a")
            .tgt("a", file(2, 200))
            .expect("both pull", ["copy a T->S"])
            .expect("both/flag pull/flag", ["conflict a delete-modify flagged"])
            .expect("push-safe", ["skip a on T"])
            .expect("push-replica", ["delete a on T"])
            .mirrored(),
        case("source deleted a file, target changed only its mode")
            .same("a", file(1, 100))
            .src_del("a")
            .tgt("a", file(1, 100).mode(0o600))
            .expect("both pull", ["copy a T->S"])
            .expect("both/flag pull/flag", ["conflict a delete-modify flagged"])
            .expect("push-safe", ["skip a on T"])
            .expect("push-replica", ["delete a on T"])
            .mirrored(),
        case("source deleted a file, target touched it")
            .same("a", file(1, 100))
            .src_del("a")
            .tgt("a", file(1, 200))
            .expect("both", ["copy a T->S"])
            .expect("both/flag", ["conflict a delete-modify flagged"]),
        case("source deleted a symlink, target retargeted it")
            .same("l", link("x"))
            .src_del("l")
            .tgt("l", link("y"))
            .expect("both pull", ["copy l T->S"])
            .expect("both/flag pull/flag", ["conflict l delete-modify flagged"])
            .expect("push-safe", ["skip l on T"])
            .expect("push-replica", ["delete l on T"])
            .mirrored(),
        case("source deleted a directory, target changed its mode")
            .same("d", dir())
            .src_del("d")
            .tgt("d", dir().mode(0o700))
            .expect("both pull", ["mkdir d on S"])
            .expect("both/flag pull/flag", ["conflict d delete-modify flagged"])
            .expect("push-safe", ["skip d on T"])
            .expect("push-replica", ["delete d on T"])
            .mirrored(),
        case("source deleted a file, target deleted its directory")
            .same("d", dir())
            .same("d/f", file(1, 100))
            .src_del("d/f")
            .tgt_del("d")
            .expect("both pull", ["forget d/f", "delete d on S"])
            .expect("push-safe", ["skip d on T", "forget d/f"])
            .expect("push-replica", ["forget d/f", "mkdir d on T"]),
    ]
}

// ---- a directory deleted on one side, changed inside on the other ------------------------------

fn directories_deleted_under_changes() -> Vec<Case> {
    vec![
        case("source deleted a directory, target modified a file inside")
            .same("d", dir())
            .same("d/f", file(1, 100))
            .same("d/g", file(2, 100))
            .src_del("d")
            .tgt("d/f", file(3, 200))
            .expect("both", ["delete d/g on T", "mkdir d on S", "copy d/f T->S"])
            .expect(
                "both/flag",
                [
                    "conflict d/f delete-modify flagged",
                    "delete d/g on T",
                    "mkdir d on S",
                ],
            )
            .expect("push-safe", ["skip d/f on T", "delete d/g on T"])
            .expect(
                "push-replica",
                ["delete d/g on T", "delete d/f on T", "delete d on T"],
            )
            .expect(
                "pull-safe",
                ["skip d/g on S", "mkdir d on S", "copy d/f T->S"],
            )
            .expect(
                "pull-safe/flag",
                [
                    "skip d on S",
                    "conflict d/f delete-modify flagged",
                    "skip d/g on S",
                ],
            )
            .expect(
                "pull-replica",
                ["mkdir d on S", "copy d/f T->S", "copy d/g T->S"],
            )
            .expect(
                "pull-replica/flag",
                [
                    "conflict d/f delete-modify flagged",
                    "mkdir d on S",
                    "copy d/g T->S",
                ],
            )
            .mirrored(),
        case("source deleted a directory, target created a file inside")
            .same("d", dir())
            .same("d/g", file(2, 100))
            .src_del("d")
            .tgt("d/new", file(5, 100))
            .expect(
                "both",
                ["delete d/g on T", "mkdir d on S", "copy d/new T->S"],
            )
            .expect("push-safe", ["skip d/new on T", "delete d/g on T"])
            .expect(
                "push-replica",
                ["delete d/new on T", "delete d/g on T", "delete d on T"],
            )
            .expect(
                "pull-safe",
                ["skip d/g on S", "mkdir d on S", "copy d/new T->S"],
            )
            .expect(
                "pull-replica",
                ["mkdir d on S", "copy d/g T->S", "copy d/new T->S"],
            )
            .mirrored(),
        case("source deleted a directory tree, target modified a file deep inside")
            .same("a", dir())
            .same("a/b", dir())
            .same("a/b/f", file(1, 100))
            .same("a/c", file(2, 100))
            .src_del("a")
            .tgt("a/b/f", file(3, 200))
            .expect(
                "both",
                [
                    "delete a/c on T",
                    "mkdir a on S",
                    "mkdir a/b on S",
                    "copy a/b/f T->S",
                ],
            )
            .expect(
                "both/flag",
                [
                    "conflict a/b/f delete-modify flagged",
                    "delete a/c on T",
                    "mkdir a on S",
                    "mkdir a/b on S",
                ],
            )
            .expect(
                "pull-safe/!flag",
                [
                    "skip a/c on S",
                    "mkdir a on S",
                    "mkdir a/b on S",
                    "copy a/b/f T->S",
                ],
            )
            .mirrored(),
        case("source deleted a directory, target moved a file into it")
            .same("a", file(1, 100))
            .same("d", dir())
            .src_del("d")
            .tgt_del("a")
            .tgt("d/a", file(1, 100).was("a"))
            .expect("both", ["delete a on S", "mkdir d on S", "copy d/a T->S"]),
        case("source moved a file into a directory the target deleted")
            .same("a", file(1, 100))
            .same("d", dir())
            .same("d/z", file(2, 100))
            .src_del("a")
            .src("d/a", file(1, 100).was("a"))
            .tgt_del("d")
            .expect(
                "both",
                [
                    "delete d/z on S",
                    "delete a on T",
                    "mkdir d on T",
                    "copy d/a S->T",
                ],
            ),
    ]
}

// ---- a file, link or directory replaced by another kind ----------------------------------------

fn type_changes_and_conflicts() -> Vec<Case> {
    vec![
        case("source replaced a file with a symlink")
            .same("a", file(1, 100))
            .src("a", link("b"))
            .expect("both push", ["update a S->T"])
            .expect("pull-safe", ["skip a on S"])
            .expect("pull-replica", ["update a T->S"])
            .mirrored(),
        case("source replaced a symlink with a file")
            .same("a", link("b"))
            .src("a", file(1, 100))
            .expect("both push", ["update a S->T"])
            .expect("pull-safe", ["skip a on S"])
            .expect("pull-replica", ["update a T->S"])
            .mirrored(),
        case("source replaced a file with a directory")
            .same("a", file(1, 100))
            .src("a", dir())
            .src("a/x", file(2, 100))
            .expect(
                "both push",
                ["delete a on T", "mkdir a on T", "copy a/x S->T"],
            )
            .expect("pull-safe", ["skip a on S", "skip a/x on S"])
            .expect(
                "pull-replica",
                ["delete a/x on S", "delete a on S", "copy a T->S"],
            )
            .mirrored(),
        case("source replaced a directory with a file")
            .same("d", dir())
            .same("d/x", file(1, 100))
            .src_del("d")
            .src("d", file(2, 100))
            .expect(
                "both push",
                ["delete d/x on T", "delete d on T", "copy d S->T"],
            )
            .expect("pull-safe", ["skip d on S", "skip d/x on S"])
            .expect(
                "pull-replica",
                ["delete d on S", "mkdir d on S", "copy d/x T->S"],
            )
            .mirrored(),
        case("source replaced a symlink with a directory")
            .same("l", link("x"))
            .src("l", dir())
            .expect("both push", ["delete l on T", "mkdir l on T"])
            .expect("pull-safe", ["skip l on S"])
            .expect("pull-replica", ["delete l on S", "copy l T->S"])
            .mirrored(),
        case("source created a file where the target created a directory")
            .src("a", file(1, 100))
            .tgt("a", dir())
            .tgt("a/x", file(2, 100))
            .expect(
                "both",
                [
                    "conflict a type kept-both loser=source",
                    "set-aside a->a.conflict-20240102-030405-source on S",
                    "mkdir a on S",
                    "copy a.conflict-20240102-030405-source S->T",
                    "copy a/x T->S",
                ],
            )
            .expect(
                "pull",
                [
                    "conflict a type kept-both loser=source",
                    "set-aside a->a.conflict-20240102-030405-source on S",
                    "mkdir a on S",
                    "copy a/x T->S",
                ],
            )
            // One-way, the file's side cannot be written: flagged, and the directory's own
            // children are handled as that side's changes.
            .expect("push-safe", ["conflict a type flagged", "skip a/x on T"])
            .expect(
                "push-replica",
                ["conflict a type flagged", "delete a/x on T"],
            )
            // Flag leaves the whole subtree as it is (nothing is copied under the file).
            .expect("*/flag", ["conflict a type flagged"])
            .mirrored(),
        case("source replaced a file with a directory, target modified the file")
            .same("a", file(1, 100))
            .src("a", dir())
            .src("a/x", file(2, 100))
            .tgt("a", file(3, 200))
            .expect(
                "both",
                [
                    "conflict a type kept-both loser=target",
                    "set-aside a->a.conflict-20240102-030405-target on T",
                    "mkdir a on T",
                    "copy a.conflict-20240102-030405-target T->S",
                    "copy a/x S->T",
                ],
            )
            .expect(
                "push",
                [
                    "conflict a type kept-both loser=target",
                    "set-aside a->a.conflict-20240102-030405-target on T",
                    "mkdir a on T",
                    "copy a/x S->T",
                ],
            )
            .expect("pull-safe", ["conflict a type flagged", "skip a/x on S"])
            .expect(
                "pull-replica",
                ["conflict a type flagged", "delete a/x on S"],
            )
            .expect("*/flag", ["conflict a type flagged"])
            .mirrored(),
        case("source replaced a directory with a file, target modified a file inside")
            .same("d", dir())
            .same("d/f", file(1, 100))
            .same("d/g", file(2, 100))
            .src_del("d")
            .src("d", file(4, 300))
            .tgt("d/f", file(3, 200))
            .expect(
                "both",
                [
                    "conflict d type kept-both loser=source",
                    "set-aside d->d.conflict-20240102-030405-source on S",
                    "delete d/g on T",
                    "mkdir d on S",
                    "copy d.conflict-20240102-030405-source S->T",
                    "copy d/f T->S",
                ],
            )
            .expect(
                "pull-safe",
                [
                    "conflict d type kept-both loser=source",
                    "skip d/g on S",
                    "set-aside d->d.conflict-20240102-030405-source on S",
                    "mkdir d on S",
                    "copy d/f T->S",
                ],
            )
            .expect(
                "pull-replica",
                [
                    "conflict d type kept-both loser=source",
                    "set-aside d->d.conflict-20240102-030405-source on S",
                    "mkdir d on S",
                    "copy d/f T->S",
                    "copy d/g T->S",
                ],
            )
            .expect(
                "push-safe",
                [
                    "conflict d type flagged",
                    "skip d/f on T",
                    "delete d/g on T",
                ],
            )
            .expect(
                "push-replica",
                [
                    "conflict d type flagged",
                    "delete d/g on T",
                    "delete d/f on T",
                ],
            )
            .expect("*/flag", ["conflict d type flagged"])
            .mirrored(),
        case("both created a file and a symlink at the same path")
            .src("a", file(1, 100))
            .tgt("a", link("x"))
            .expect(
                "both/keep-both",
                [
                    "conflict a content kept-both loser=target",
                    "set-aside a->a.conflict-20240102-030405-target on T",
                    "copy a S->T",
                    "copy a.conflict-20240102-030405-target T->S",
                ],
            )
            .expect(
                "both/newest both/source",
                ["conflict a content won=source", "update a S->T"],
            )
            .expect(
                "both/target",
                ["conflict a content won=target", "update a T->S"],
            )
            .expect("both/flag", ["conflict a content flagged"]),
    ]
}

// ---- symlinks on both sides ----------------------------------------------------------------------

fn symlinks() -> Vec<Case> {
    vec![
        case("both retargeted a symlink differently")
            .same("l", link("x"))
            .src("l", link("y"))
            .tgt("l", link("z"))
            .expect(
                "both/keep-both",
                [
                    "conflict l content kept-both loser=target",
                    "set-aside l->l.conflict-20240102-030405-target on T",
                    "copy l S->T",
                    "copy l.conflict-20240102-030405-target T->S",
                ],
            )
            .expect(
                "both/newest both/source",
                ["conflict l content won=source", "update l S->T"],
            )
            .expect(
                "both/target",
                ["conflict l content won=target", "update l T->S"],
            )
            .expect("both/flag", ["conflict l content flagged"]),
        case("both created the same symlink")
            .both("l", link("../x"))
            .expect("*", ["record l"]),
        case("a symlink pointing out of the root is synced as a link")
            .src("l", link("/etc/passwd"))
            .expect("both push", ["copy l S->T"]),
    ]
}

// ---- an empty baseline -------------------------------------------------------------------------

fn first_sync() -> Vec<Case> {
    vec![
        case("first sync takes the union: one file only on the source, one only on the target")
            .src("a", file(1, 100))
            .both("d", dir())
            .src("d/x", file(2, 100))
            .tgt("b", file(3, 100))
            .tgt("d/y", file(4, 100))
            .expect(
                "both",
                [
                    "record d",
                    "copy a S->T",
                    "copy b T->S",
                    "copy d/x S->T",
                    "copy d/y T->S",
                ],
            )
            .expect(
                "push-safe",
                [
                    "skip b on T",
                    "record d",
                    "skip d/y on T",
                    "copy a S->T",
                    "copy d/x S->T",
                ],
            )
            .expect(
                "push-replica",
                [
                    "record d",
                    "delete d/y on T",
                    "delete b on T",
                    "copy a S->T",
                    "copy d/x S->T",
                ],
            )
            .expect(
                "pull-safe",
                [
                    "skip a on S",
                    "record d",
                    "skip d/x on S",
                    "copy b T->S",
                    "copy d/y T->S",
                ],
            )
            .expect(
                "pull-replica",
                [
                    "record d",
                    "delete d/x on S",
                    "delete a on S",
                    "copy b T->S",
                    "copy d/y T->S",
                ],
            )
            .mirrored(),
        case("first sync records identical files")
            .both("a", file(1, 100))
            .both("d", dir())
            .both("d/b", file(2, 100))
            .expect("*", ["record a", "record d", "record d/b"]),
        case("first sync with equal content and different mtimes aligns the times")
            .src("a", file(1, 100))
            .tgt("a", file(1, 200))
            .expect("both/keep-both both/newest both/target", ["meta a on S"])
            .expect("both/source", ["meta a on T"])
            .expect("both/flag", ["skip a"]),
        case("first sync with differing files is a conflict")
            .src("a", file(1, 100))
            .tgt("a", file(2, 200))
            .expect(
                "both/keep-both",
                [
                    "conflict a content kept-both loser=source",
                    "set-aside a->a.conflict-20240102-030405-source on S",
                    "copy a T->S",
                    "copy a.conflict-20240102-030405-source S->T",
                ],
            )
            .expect(
                "both/newest both/target",
                ["conflict a content won=target", "update a T->S"],
            )
            .expect(
                "both/source",
                ["conflict a content won=source", "update a S->T"],
            )
            .expect("both/flag", ["conflict a content flagged"]),
        // Reconcile does not hash: without a baseline, equal sizes and times prove nothing, so
        // the scan must hash both files for them to be recognised as equal.
        case("first sync with equal sizes but no hashes is a conflict")
            .both("a", file(1, 100).nohash())
            .expect(
                "both/keep-both",
                [
                    "conflict a content kept-both loser=target",
                    "set-aside a->a.conflict-20240102-030405-target on T",
                    "copy a S->T",
                    "copy a.conflict-20240102-030405-target T->S",
                ],
            )
            .expect("both/flag", ["conflict a content flagged"]),
        case("first sync with a directory of different modes on each side")
            .src("d", dir().mode(0o700))
            .tgt("d", dir().mode(0o750))
            .expect("both/!flag", ["meta d on T"])
            .expect("both/target", ["meta d on S"])
            .expect("both/flag", ["skip d"]),
    ]
}

// ---- renames -----------------------------------------------------------------------------------

fn renamed_dir(c: Case) -> Case {
    c.same("d", dir())
        .same("d/f", file(1, 100))
        .same("d/g", file(2, 100))
        .src_del("d")
        .src("e", dir().was("d"))
        .src("e/f", file(1, 100).was("d/f"))
        .src("e/g", file(2, 100).was("d/g"))
}

fn renames() -> Vec<Case> {
    vec![
        case("source renamed a file")
            .same("a", file(1, 100))
            .src_del("a")
            .src("b", file(1, 100).was("a"))
            .expect("both push", ["rename a->b on T"])
            .expect("pull-safe", ["skip a on S", "skip b on S"])
            .expect("pull-replica", ["delete b on S", "copy a T->S"])
            .mirrored(),
        case("source renamed a file by copying it (found by content hash)")
            .same("a", file(1, 100))
            .src_del("a")
            .src("b", file(1, 100).ino(7001))
            .expect("both push", ["record b", "rename a->b on T"])
            .expect("pull-safe", ["skip a on S", "skip b on S"])
            .expect("pull-replica", ["delete b on S", "copy a T->S"])
            .mirrored(),
        case("source renamed and edited a file")
            .same("a", file(1, 100))
            .src_del("a")
            .src("b", file(2, 200).was("a"))
            .expect("both push", ["rename a->b on T", "update b S->T"])
            .mirrored(),
        case("source renamed a file, target edited it in place")
            .same("a", file(1, 100))
            .src_del("a")
            .src("b", file(1, 100).was("a"))
            .tgt("a", file(2, 200))
            .expect("both", ["rename a->b on T", "update b T->S"])
            .expect("push-safe", ["skip b on T", "rename a->b on T"])
            .expect("push-replica", ["rename a->b on T", "update b S->T"])
            .expect("pull-safe", ["skip b on S", "copy a T->S"])
            .expect(
                "pull-safe/flag",
                ["conflict a delete-modify flagged", "skip b on S"],
            )
            .expect("pull-replica", ["delete b on S", "copy a T->S"])
            .expect(
                "pull-replica/flag",
                ["conflict a delete-modify flagged", "delete b on S"],
            )
            .mirrored(),
        case("source renamed a file, target saved a new version of it (new inode)")
            .same("a", file(1, 100))
            .src_del("a")
            .src("b", file(1, 100).was("a"))
            .tgt("a", file(2, 200).ino(8001))
            .expect("both", ["copy a T->S", "copy b S->T"])
            .expect(
                "both/flag",
                ["conflict a delete-modify flagged", "copy b S->T"],
            ),
        case("source renamed a file, target deleted it")
            .same("a", file(1, 100))
            .src_del("a")
            .src("b", file(1, 100).was("a"))
            .tgt_del("a")
            .expect("both push", ["forget a", "copy b S->T"])
            .expect("pull-safe", ["forget a", "skip b on S"])
            .expect("pull-replica", ["forget a", "delete b on S"]),
        renamed_dir(case("source renamed a directory"))
            .expect("both push", ["rename d->e on T"])
            .expect(
                "pull-safe",
                [
                    "skip d on S",
                    "skip d/f on S",
                    "skip d/g on S",
                    "skip e on S",
                    "skip e/f on S",
                    "skip e/g on S",
                ],
            )
            .expect(
                "pull-replica",
                [
                    "delete e/g on S",
                    "delete e/f on S",
                    "delete e on S",
                    "mkdir d on S",
                    "copy d/f T->S",
                    "copy d/g T->S",
                ],
            )
            .mirrored(),
        renamed_dir(case("source renamed a directory and edited a file inside"))
            .src("e/f", file(3, 200).was("d/f"))
            .expect("both push", ["rename d->e on T", "update e/f S->T"])
            .mirrored(),
        renamed_dir(case(
            "source renamed a directory, target edited a file inside",
        ))
        .tgt("d/f", file(3, 200))
        .expect("both", ["rename d->e on T", "update e/f T->S"])
        .expect("push-safe", ["skip e/f on T", "rename d->e on T"])
        .expect("push-replica", ["rename d->e on T", "update e/f S->T"])
        .mirrored(),
        renamed_dir(case(
            "source renamed a directory, target created a file inside",
        ))
        .tgt("d/new", file(5, 100))
        .expect("both", ["rename d->e on T", "copy e/new T->S"])
        .expect("push-safe", ["skip e/new on T", "rename d->e on T"])
        .expect("push-replica", ["rename d->e on T", "delete e/new on T"])
        .mirrored(),
        renamed_dir(case(
            "source renamed a directory, target deleted a file inside",
        ))
        .tgt_del("d/g")
        .expect("both", ["rename d->e on T", "delete e/g on S"])
        .expect("push-safe", ["skip e/g on T", "rename d->e on T"])
        .expect("push-replica", ["rename d->e on T", "copy e/g S->T"])
        .mirrored(),
        renamed_dir(case(
            "source renamed a directory, target renamed a file inside it",
        ))
        .tgt_del("d/f")
        .tgt("d/h", file(1, 100).was("d/f"))
        .expect("both", ["rename d->e on T", "rename e/f->e/h on S"]),
        // The mirror image of the case above. The source's rename inside `d` is looked at
        // before the target's rename of `d` is replayed, when the target has no `d/f` any
        // more, and it is not looked at again: it ends up as a copy and a delete.
        case("target renamed a directory, source renamed a file inside it")
            .same("d", dir())
            .same("d/f", file(1, 100))
            .same("d/g", file(2, 100))
            .tgt_del("d")
            .tgt("e", dir().was("d"))
            .tgt("e/f", file(1, 100).was("d/f"))
            .tgt("e/g", file(2, 100).was("d/g"))
            .src_del("d/f")
            .src("d/h", file(1, 100).was("d/f"))
            .expect(
                "both",
                ["rename d->e on S", "delete e/f on T", "copy e/h S->T"],
            ),
        case("source moved a file into a new directory")
            .same("a", file(1, 100))
            .src_del("a")
            .src("n", dir())
            .src("n/a", file(1, 100).was("a"))
            .expect("both push", ["mkdir n on T", "rename a->n/a on T"])
            .mirrored(),
        case("source moved a file two new directories deep")
            .same("a", file(1, 100))
            .src_del("a")
            .src("n", dir())
            .src("n/m", dir())
            .src("n/m/b", file(1, 100).was("a"))
            .expect(
                "both push",
                ["mkdir n on T", "mkdir n/m on T", "rename a->n/m/b on T"],
            ),
        case("source moved a file into an existing directory")
            .same("a", file(1, 100))
            .same("d", dir())
            .src_del("a")
            .src("d/a", file(1, 100).was("a"))
            .expect("both push", ["rename a->d/a on T"])
            .mirrored(),
        case("source moved a directory into a new parent")
            .same("d", dir())
            .same("d/f", file(1, 100))
            .src_del("d")
            .src("n", dir())
            .src("n/e", dir().was("d"))
            .src("n/e/f", file(1, 100).was("d/f"))
            .expect("both push", ["mkdir n on T", "rename d->n/e on T"]),
        case("both renamed a file to different names: both names are kept")
            .same("a", file(1, 100))
            .src_del("a")
            .tgt_del("a")
            .src("b", file(1, 100).was("a"))
            .tgt("c", file(1, 100).was("a"))
            .expect("both", ["forget a", "copy b S->T", "copy c T->S"]),
        case("both renamed a file to the same name")
            .same("a", file(1, 100))
            .src_del("a")
            .tgt_del("a")
            .src("b", file(1, 100).was("a"))
            .tgt("b", file(1, 100).was("a"))
            .expect("*", ["forget a", "record b"]),
        case("both renamed a directory to different names: both are kept")
            .same("d", dir())
            .same("d/f", file(1, 100))
            .src_del("d")
            .tgt_del("d")
            .src("e", dir().was("d"))
            .src("e/f", file(1, 100).was("d/f"))
            .tgt("g", dir().was("d"))
            .tgt("g/f", file(1, 100).was("d/f"))
            .expect(
                "both",
                [
                    "forget d",
                    "forget d/f",
                    "mkdir e on T",
                    "mkdir g on S",
                    "copy e/f S->T",
                    "copy g/f T->S",
                ],
            ),
        case("source renamed a file to a name the target created")
            .same("a", file(1, 100))
            .src_del("a")
            .src("b", file(1, 100).was("a"))
            .tgt("b", file(5, 300))
            .expect(
                "both/keep-both",
                [
                    "conflict b content kept-both loser=source",
                    "set-aside b->b.conflict-20240102-030405-source on S",
                    "delete a on T",
                    "copy b T->S",
                    "copy b.conflict-20240102-030405-source S->T",
                ],
            )
            .expect("both/flag", ["conflict b content flagged", "delete a on T"]),
        // a -> b and b -> c on the source: not replayed as renames (b was never gone), but
        // the result is the same and nothing is lost.
        case("source renamed files in a chain (a to b, b to c)")
            .same("a", file(1, 100))
            .same("b", file(2, 100))
            .src_del("a")
            .src("b", file(1, 100).was("a"))
            .src("c", file(2, 100).was("b"))
            .expect(
                "both push",
                ["delete a on T", "update b S->T", "copy c S->T"],
            ),
        case("source renamed a file twice (a to b to c) before the sync")
            .same("a", file(1, 100))
            .src_del("a")
            .src("c", file(1, 100).was("a"))
            .expect("both push", ["rename a->c on T"]),
        case("source swapped two files' names")
            .same("a", file(1, 100))
            .same("b", file(2, 100))
            .src("a", file(2, 100).was("b"))
            .src("b", file(1, 100).was("a"))
            .expect("both push", ["update a S->T", "update b S->T"]),
        case("a rename is not guessed from duplicate content")
            .same("a", file(1, 100))
            .src_del("a")
            .src("b", file(1, 100).ino(9001))
            .src("c", file(1, 100).ino(9002))
            .expect("both push", ["delete a on T", "copy b S->T", "copy c S->T"]),
        case("a rename by content needs the same size")
            .same("a", file(1, 100))
            .src_del("a")
            .src("b", file(1, 100).size(99).ino(9001))
            .expect("both push", ["delete a on T", "copy b S->T"]),
        case("a new file reusing a deleted directory's inode is not a rename")
            .same("d", dir())
            .src_del("d")
            .src("f", file(1, 100).was("d"))
            .expect("both push", ["delete d on T", "copy f S->T"]),
    ]
}

// ---- what cannot be synced -------------------------------------------------------------------

fn special_files_and_problems() -> Vec<Case> {
    vec![
        case("a new special file on the source is skipped")
            .src("p", special())
            .expect("*", ["skip p on S"])
            .mirrored(),
        case("a file replaced by a special file on the source: both sides are left alone")
            .same("a", file(1, 100))
            .src("a", special())
            .tgt("a", file(2, 200))
            .expect("*", ["skip a on S"])
            .mirrored(),
        case("special files at the same path on both sides")
            .src("p", special())
            .tgt("p", special())
            .expect("*", ["skip p on S", "skip p on T"]),
        case("an unreadable source directory: its subtree is left alone on both sides")
            .same("d", dir())
            .same("d/f", file(1, 100))
            .same("d/g", file(2, 100))
            .src_del("d")
            .src("d", problem("permission denied"))
            .tgt("d/f", file(3, 200))
            .tgt_del("d/g")
            .tgt("d/new", file(4, 100))
            .expect("*", ["skip d on S"])
            .mirrored(),
        case("an unreadable source directory is skipped whole, even with a sibling sorting between it and its children")
            .same("d", dir())
            .same("d/f", file(1, 100))
            .same("d.txt", file(2, 100))
            .same("d-x", dir())
            .same("d-x/g", file(3, 100))
            .src_del("d")
            .src("d", problem("permission denied"))
            .expect("*", ["skip d on S"])
            .mirrored(),
        case("an unreadable source directory hides its files from rename detection")
            .same("d", dir())
            .same("d/f", file(1, 100))
            .src_del("d")
            .src("d", problem("permission denied"))
            .src("q", file(1, 100).ino(5501))
            .expect("both push", ["skip d on S", "copy q S->T"])
            .expect("pull-safe", ["skip d on S", "skip q on S"])
            .expect("pull-replica", ["skip d on S", "delete q on S"])
            .mirrored(),
        case("a special file replacing a source directory hides its files from rename detection")
            .same("d", dir())
            .same("d/f", file(1, 100))
            .src_del("d")
            .src("d", special())
            .src("n", dir())
            .src("n/f", file(1, 100).was("d/f"))
            .expect(
                "both push",
                ["skip d on S", "mkdir n on T", "copy n/f S->T"],
            ),
        case("an unreadable file on the target is skipped though the source changed it")
            .same("a", file(1, 100))
            .src("a", file(2, 200))
            .tgt("a", problem("input/output error"))
            .expect("*", ["skip a on T"])
            .mirrored(),
        case("source deleted a directory that holds a special file on the target")
            .same("d", dir())
            .same("d/f", file(1, 100))
            .src_del("d")
            .tgt("d/p", special())
            .expect("both", ["skip d/p on T", "delete d/f on T", "mkdir d on S"])
            .expect("push", ["skip d/p on T", "delete d/f on T"])
            .expect(
                "pull-safe",
                ["skip d on S", "skip d/f on S", "skip d/p on T"],
            )
            .expect(
                "pull-replica",
                ["skip d/p on T", "mkdir d on S", "copy d/f T->S"],
            ),
        case("a file the target moved into a directory unreadable on the source is not replayed")
            .same("a", file(1, 100))
            .same("d", dir())
            .src_del("d")
            .src("d", problem("permission denied"))
            .tgt_del("a")
            .tgt("d/a", file(1, 100).was("a"))
            .expect("both pull", ["skip d on S", "delete a on S"])
            .expect("push-safe", ["skip a on T", "skip d on S"])
            .expect("push-replica", ["skip d on S", "copy a S->T"]),
    ]
}

// ---- the baseline catches up -----------------------------------------------------------------

fn baseline_refresh() -> Vec<Case> {
    vec![
        case("only the source's inode number changed, hashes agree")
            .same("a", file(1, 100))
            .src("a", file(1, 100).ino(4242))
            .expect("*", ["record a"])
            .mirrored(),
        case("inode numbers changed on both sides, hashes agree")
            .same("a", file(1, 100))
            .src("a", file(1, 100).ino(4242))
            .tgt("a", file(1, 100).ino(4343))
            .expect("*", ["record a"]),
        case("a directory's inode number changed")
            .same("d", dir())
            .src("d", dir().ino(4242))
            .expect("*", ["record d"]),
        case("a symlink's inode number changed")
            .same("l", link("x"))
            .tgt("l", link("x").ino(4242))
            .expect("*", ["record l"]),
        case("the scan has a hash the baseline lacks")
            .base("a", file(1, 100).nohash())
            .both("a", file(1, 100))
            .expect("*", ["record a"]),
        case("stat-vouched unchanged files need no hashes")
            .same("a", file(1, 100).nohash())
            .same("d", dir())
            .same("d/b", file(2, 100).nohash())
            .expect("*", NOTHING),
        case("a stat match vouches for a file the source scan did not hash")
            .same("a", file(1, 100))
            .src("a", file(1, 100).nohash())
            .expect("*", NOTHING)
            .mirrored(),
        case("an mtime within the modify window still vouches for an unhashed file")
            .window(2 * SEC)
            .same("a", file(1, 100).nohash())
            .src("a", file(1, 101).nohash())
            .expect("*", NOTHING),
        case("a new inode on the source without a hash cannot be vouched for: the file is sent")
            .same("a", file(1, 100).nohash())
            .src("a", file(1, 100).nohash().ino(4242))
            .expect("both push", ["update a S->T"])
            .expect("pull-safe", ["skip a on S"])
            .expect("pull-replica", ["update a T->S"])
            .mirrored(),
        case("the source's inode changed while the target edited the file")
            .same("a", file(1, 100))
            .src("a", file(1, 100).ino(4242))
            .tgt("a", file(2, 200))
            .expect("both pull", ["update a T->S"])
            .expect("push-safe", ["skip a on T"])
            .expect("push-replica", ["update a S->T"]),
    ]
}

// ---- push and pull ---------------------------------------------------------------------------

/// `--update` (one-way only): the receiving side's file is replaced only by a newer one.
fn only_if_newer() -> Vec<Case> {
    vec![
        case("with --update, source restored an older file: the target's newer copy is kept")
            .update()
            .same("a", file(1, 100))
            .src("a", file(2, 50))
            .expect("both push-safe", ["update a S->T"])
            .expect("push", ["keep-newer a on T"])
            .expect("pull-safe", ["skip a on S"])
            .expect("pull-replica", ["update a T->S"])
            .mirrored(),
        case("with --update, source edited a file: it replaces the target's older copy")
            .update()
            .same("a", file(1, 100))
            .src("a", file(2, 150))
            .expect("both push", ["update a S->T"])
            .mirrored(),
        case("with --update, a source edit within the modify window of the target's time goes")
            .update()
            .window(2 * SEC)
            .same("a", file(1, 100))
            .src("a", file(2, 99).size(200))
            .expect("push", ["update a S->T"])
            .mirrored(),
        case("with --update, both edited a file, the target later: kept, no conflict copy")
            .update()
            .same("a", file(1, 100))
            .src("a", file(2, 150))
            .tgt("a", file(3, 200))
            .expect("push", ["keep-newer a on T"])
            .mirrored(),
        case("with --update, push replica keeps a newer file the target changed itself")
            .update()
            .same("a", file(1, 100))
            .tgt("a", file(3, 200))
            .expect("push-replica", ["keep-newer a on T"])
            .mirrored(),
        case("with --update, source deletions and new files go as without it")
            .update()
            .same("a", file(1, 100))
            .src_del("a")
            .src("b", file(2, 50))
            .expect("push", ["delete a on T", "copy b S->T"])
            .mirrored(),
    ]
}

fn one_way() -> Vec<Case> {
    vec![
        case("push replica reverts every change made on the target")
            .same("a", file(1, 100))
            .same("b", file(2, 100))
            .same("c", file(3, 100))
            .same("d", dir())
            .same("d/x", file(4, 100))
            .tgt("a", file(5, 200))
            .tgt_del("b")
            .tgt("c", file(3, 100).mode(0o600))
            .tgt_del("d/x")
            .tgt("m", dir())
            .tgt("m/y", file(6, 100))
            .tgt("n", file(7, 100))
            .expect(
                "push-replica",
                [
                    "delete n on T",
                    "delete m/y on T",
                    "delete m on T",
                    "update a S->T",
                    "copy b S->T",
                    "copy d/x S->T",
                    "meta c on T",
                ],
            )
            .expect(
                "push-safe",
                [
                    "skip a on T",
                    "skip b on T",
                    "skip c on T",
                    "skip d/x on T",
                    "skip m on T",
                    "skip m/y on T",
                    "skip n on T",
                ],
            )
            .expect(
                "both pull",
                [
                    "delete d/x on S",
                    "delete b on S",
                    "mkdir m on S",
                    "update a T->S",
                    "copy m/y T->S",
                    "copy n T->S",
                    "meta c on S",
                ],
            )
            .mirrored(),
        case("push sends the source's changes; safe leaves the target's own")
            .same("a", file(1, 100))
            .same("b", file(2, 100))
            .src("a", file(3, 200))
            .tgt("b", file(4, 200))
            .expect("both", ["update a S->T", "update b T->S"])
            .expect("push-safe", ["skip b on T", "update a S->T"])
            .expect("push-replica", ["update a S->T", "update b S->T"])
            .expect("pull-safe", ["skip a on S", "update b T->S"])
            .expect("pull-replica", ["update a T->S", "update b T->S"]),
        case("push replica reverts a rename made on the target")
            .same("a", file(1, 100))
            .tgt_del("a")
            .tgt("b", file(1, 100).was("a"))
            .expect("push-safe", ["skip a on T", "skip b on T"])
            .expect("push-replica", ["delete b on T", "copy a S->T"])
            .expect("both pull", ["rename a->b on S"]),
    ]
}

// ---- the order of a plan -------------------------------------------------------------------------

fn ordering() -> Vec<Case> {
    vec![
        case("with changes on the source, a plan runs renames, deletes deepest first, mkdirs shallowest first, copies, then metadata")
            .same("r", file(1, 100))
            .same("x", dir())
            .same("x/y", dir())
            .same("x/y/z", file(2, 100))
            .same("m", file(3, 100))
            .same("md", dir())
            .same("md/sub", dir())
            .src_del("r")
            .src("r2", file(1, 100).was("r"))
            .src_del("x")
            .src("n", dir())
            .src("n/o", dir())
            .src("n/o/p", file(4, 100))
            .src("c", file(5, 100))
            .src("m", file(3, 100).mode(0o600))
            .src("md", dir().mode(0o700))
            .src("md/sub", dir().mode(0o700))
            .expect(
                "both push",
                [
                    "rename r->r2 on T",
                    "delete x/y/z on T",
                    "delete x/y on T",
                    "delete x on T",
                    "mkdir n on T",
                    "mkdir n/o on T",
                    "copy c S->T",
                    "copy n/o/p S->T",
                    "meta m on T",
                    "meta md/sub on T",
                    "meta md on T",
                ],
            )
            .mirrored(),
        case("deletes run children first even when sibling names sort between parent and child")
            .same("d", dir())
            .same("d/f", file(1, 100))
            .same("d.txt", file(2, 100))
            .same("d-x", dir())
            .same("d-x/g", file(3, 100))
            .src_del("d")
            .src_del("d.txt")
            .src_del("d-x")
            .expect(
                "both push",
                [
                    "delete d/f on T",
                    "delete d.txt on T",
                    "delete d-x/g on T",
                    "delete d-x on T",
                    "delete d on T",
                ],
            ),
        case("a read-only directory gets its mode after the files inside")
            .same("d", dir())
            .same("d/f", file(1, 100))
            .src("d", dir().mode(0o555))
            .src("d/f", file(1, 100).mode(0o444))
            .expect("both push", ["meta d/f on T", "meta d on T"]),
        case("a directory moved out of the way before a new one takes its name")
            .same("d", dir())
            .same("d/f", file(1, 100))
            .src_del("d")
            .src("e", dir().was("d"))
            .src("e/f", file(1, 100).was("d/f"))
            .src("d", dir().ino(6001))
            .src("d/g", file(2, 100))
            .expect(
                "both push",
                [
                    "record d",
                    "mkdir e on T",
                    "rename d/f->e/f on T",
                    "copy d/g S->T",
                ],
            ),
    ]
}

// ---- what the actions carry ----------------------------------------------------------------------

fn plan_of(c: &Case, m: &str) -> Plan {
    let mode = select(m)[0];
    let (base, src, tgt) = c.trees();
    reconcile(base, src, tgt, &options(mode, c))
}

#[test]
fn a_kept_both_conflict_carries_both_versions_and_the_copy_name() {
    let c = case("")
        .same("a.txt", file(1, 100))
        .src("a.txt", file(2, 300))
        .tgt("a.txt", file(3, 200));
    let (_, src, tgt) = c.trees();
    let (s, t) = (&src[&rel("a.txt")], &tgt[&rel("a.txt")]);
    let plan = plan_of(&c, "both/keep-both");
    let copy = rel("a.conflict-20240102-030405-target.txt");
    assert_eq!(
        plan.actions[0],
        Action::Conflict(Box::new(tandem_core::Conflict {
            path: rel("a.txt"),
            kind: ConflictKind::Content,
            src: Some(s.clone()),
            tgt: Some(t.clone()),
            resolution: Resolution::KeptBoth {
                loser: Side::Target,
                copy: copy.clone(),
            },
        }))
    );
    assert_eq!(
        plan.actions[1],
        Action::Rename {
            side: Side::Target,
            from: rel("a.txt"),
            to: copy.clone(),
            expect: t.clone(),
            why: RenameWhy::ConflictCopy,
        }
    );
    assert_eq!(
        plan.actions[2],
        Action::Copy {
            path: rel("a.txt"),
            from: Side::Source,
            src: s.clone(),
            expect: None,
            mode: s.mode,
        }
    );
    assert_eq!(
        plan.actions[3],
        Action::Copy {
            path: copy,
            from: Side::Target,
            src: t.clone(),
            expect: None,
            mode: t.mode,
        }
    );
}

#[test]
fn an_update_expects_what_the_receiving_side_holds() {
    let c = case("").same("a", file(1, 100)).src("a", file(2, 200));
    let (_, src, tgt) = c.trees();
    let plan = plan_of(&c, "both/keep-both");
    assert_eq!(
        plan.actions,
        vec![Action::Copy {
            path: rel("a"),
            from: Side::Source,
            src: src[&rel("a")].clone(),
            expect: Some(tgt[&rel("a")].clone()),
            mode: src[&rel("a")].mode,
        }]
    );
}

#[test]
fn a_rename_found_by_hash_records_both_sides_new_state() {
    let c = case("")
        .same("a", file(1, 100))
        .src_del("a")
        .src("b", file(1, 100).ino(7001));
    let (_, src, tgt) = c.trees();
    let plan = plan_of(&c, "both/keep-both");
    let moved = tgt[&rel("a")].clone();
    assert_eq!(
        plan.actions,
        vec![
            Action::Record {
                path: rel("b"),
                src: src[&rel("b")].clone(),
                tgt: moved.clone(),
            },
            Action::Rename {
                side: Side::Target,
                from: rel("a"),
                to: rel("b"),
                expect: moved,
                why: RenameWhy::Replay,
            },
        ]
    );
}

#[test]
fn skips_say_why() {
    let reason = |c: Case, m: &str| -> Vec<String> {
        plan_of(&c, m)
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Skip { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    };
    let fifo = reason(case("").src("p", special()), "both/keep-both");
    assert!(fifo[0].contains("special file"), "{fifo:?}");
    let unreadable = reason(
        case("")
            .same("d", dir())
            .src("d", problem("permission denied")),
        "both/keep-both",
    );
    assert!(
        unreadable[0].contains("permission denied"),
        "{unreadable:?}"
    );
    let own = reason(
        case("").same("a", file(1, 100)).tgt("a", file(2, 200)),
        "push-safe/keep-both",
    );
    assert!(own[0].contains("target's own change"), "{own:?}");
}
