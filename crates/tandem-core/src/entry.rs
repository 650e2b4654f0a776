//! What a side holds at a path (`Entry`) and what both sides last agreed on (`BaseEntry`).

use std::fmt;

/// Which root of the pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    Source,
    Target,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Source => Side::Target,
            Side::Target => Side::Source,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target => "target",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A blake3 content hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A numeric owner and group, as a side's file system holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// What is at a path on one side, as a scan saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// A FIFO, socket or device: never opened, never synced, reported.
    Special,
    /// The path could not be read (the reason). For a directory the whole subtree is
    /// unknown; reconcile never deletes or overwrites across a problem.
    Problem(String),
}

impl Kind {
    pub fn is_tracked(&self) -> bool {
        matches!(self, Kind::File | Kind::Dir | Kind::Symlink)
    }

    pub fn word(&self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "directory",
            Kind::Symlink => "symlink",
            Kind::Special => "special file",
            Kind::Problem(_) => "unreadable entry",
        }
    }
}

/// `Entry::mode` on a side with Windows' file attributes (a Windows side, on every entry
/// it shows): the attributes below are kept above the permission bits. A side without it
/// (Linux, macOS) has nothing to map them to: it neither gives nor takes them, and a Windows
/// side keeps its own when such a side sends a mode ([`carry_attrs`]).
pub const MODE_ATTRS: u32 = 1 << 20;
/// With [`MODE_ATTRS`]: the hidden attribute (`FILE_ATTRIBUTE_HIDDEN`).
pub const MODE_HIDDEN: u32 = 1 << 21;
/// Every attribute bit of `Entry::mode`.
pub const MODE_ATTR_BITS: u32 = MODE_ATTRS | MODE_HIDDEN;

/// The mode to give a side that now shows `there`, for an incoming `mode`: as it is, unless
/// it comes from a side without attributes ([`MODE_ATTRS`]) while `there` has some, which
/// are then kept (a Linux side's edit does not unhide a file on Windows).
pub fn carry_attrs(mode: u32, there: u32) -> u32 {
    if mode & MODE_ATTRS == 0 && there & MODE_ATTRS != 0 {
        mode | (there & MODE_ATTR_BITS)
    } else {
        mode
    }
}

/// Whether two sides' modes agree as far as both can hold them: the attributes count only
/// between two sides that have them.
pub fn modes_agree(a: u32, b: u32) -> bool {
    if (a ^ b) & MODE_ATTRS != 0 {
        a & !MODE_ATTR_BITS == b & !MODE_ATTR_BITS
    } else {
        a == b
    }
}

/// `mode` in words: its permission bits in octal, and `hidden` where it is.
pub fn mode_words(mode: u32) -> String {
    let hidden = if mode & MODE_HIDDEN != 0 {
        ", hidden"
    } else {
        ""
    };
    format!("{:o}{hidden}", mode & 0o7777)
}

/// One side's entry at a path. `mode` holds permission bits (`0o7777`), and on a side
/// with Windows' attributes those it keeps ([`MODE_ATTRS`]); `mtime` is
/// nanoseconds since the epoch; `hash` is filled in only where a decision needs it;
/// `owner` comes with the stat (compared only when the run keeps owners, `--owner`);
/// `xattrs` is a digest of the extended attributes the run keeps (`--xattrs`, `--acls`),
/// `None` where there are none or they were not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub size: u64,
    pub mtime: i64,
    pub mode: u32,
    pub ino: u64,
    pub hash: Option<Hash>,
    pub link: Option<Vec<u8>>,
    pub owner: Option<Owner>,
    pub xattrs: Option<Hash>,
}

impl Entry {
    pub fn file(size: u64, mtime: i64, mode: u32, ino: u64) -> Entry {
        Entry {
            kind: Kind::File,
            size,
            mtime,
            mode,
            ino,
            hash: None,
            link: None,
            owner: None,
            xattrs: None,
        }
    }

    pub fn dir(mode: u32, ino: u64) -> Entry {
        Entry {
            kind: Kind::Dir,
            size: 0,
            mtime: 0,
            mode,
            ino,
            hash: None,
            link: None,
            owner: None,
            xattrs: None,
        }
    }

    pub fn symlink(target: Vec<u8>, ino: u64) -> Entry {
        Entry {
            kind: Kind::Symlink,
            size: 0,
            mtime: 0,
            mode: 0o777,
            ino,
            hash: None,
            link: Some(target),
            owner: None,
            xattrs: None,
        }
    }

    pub fn special(ino: u64) -> Entry {
        Entry {
            kind: Kind::Special,
            size: 0,
            mtime: 0,
            mode: 0,
            ino,
            hash: None,
            link: None,
            owner: None,
            xattrs: None,
        }
    }

    pub fn problem(reason: impl Into<String>) -> Entry {
        Entry {
            kind: Kind::Problem(reason.into()),
            size: 0,
            mtime: 0,
            mode: 0,
            ino: 0,
            hash: None,
            link: None,
            owner: None,
            xattrs: None,
        }
    }

    pub fn with_hash(mut self, hash: Hash) -> Entry {
        self.hash = Some(hash);
        self
    }

    pub fn is_dir(&self) -> bool {
        self.kind == Kind::Dir
    }
}

/// What one side showed for a path when both sides last agreed: its own inode, mtime and
/// mode. Kept per side because sides differ in what they can store (a FAT or exFAT target
/// has no permission bits and coarse times): each side is compared with what it showed
/// itself, so a target that cannot keep a mode never looks like it changed one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Seen {
    pub ino: u64,
    pub mtime: i64,
    pub mode: u32,
    /// `None` where the run that agreed did not read owners.
    pub owner: Option<Owner>,
    /// The digest of the kept extended attributes (see `Entry::xattrs`).
    pub xattrs: Option<Hash>,
}

impl Seen {
    pub fn of(e: &Entry) -> Seen {
        Seen {
            ino: e.ino,
            mtime: e.mtime,
            mode: e.mode,
            owner: e.owner,
            xattrs: e.xattrs,
        }
    }
}

/// The last state both sides agreed on at a path: the content (kind, size, hash, link
/// target) once, and what each side showed of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseEntry {
    pub kind: Kind,
    pub size: u64,
    pub hash: Option<Hash>,
    pub link: Option<Vec<u8>>,
    pub src: Seen,
    pub tgt: Seen,
}

impl BaseEntry {
    /// The agreed state once `src` and `tgt` hold the same content.
    pub fn agreed(src: &Entry, tgt: &Entry) -> BaseEntry {
        BaseEntry {
            kind: src.kind.clone(),
            size: src.size,
            hash: src.hash.or(tgt.hash),
            link: src.link.clone(),
            src: Seen::of(src),
            tgt: Seen::of(tgt),
        }
    }

    /// Orders the two sides' entries as (source, target).
    pub fn agreed_from(side: Side, this: &Entry, other: &Entry) -> BaseEntry {
        match side {
            Side::Source => BaseEntry::agreed(this, other),
            Side::Target => BaseEntry::agreed(other, this),
        }
    }

    pub fn seen(&self, side: Side) -> &Seen {
        match side {
            Side::Source => &self.src,
            Side::Target => &self.tgt,
        }
    }

    pub fn ino(&self, side: Side) -> u64 {
        self.seen(side).ino
    }

    /// The entry `side` showed when both sides agreed.
    pub fn entry_on(&self, side: Side) -> Entry {
        let seen = self.seen(side);
        Entry {
            kind: self.kind.clone(),
            size: self.size,
            mtime: seen.mtime,
            mode: seen.mode,
            ino: seen.ino,
            hash: self.hash,
            link: self.link.clone(),
            owner: seen.owner,
            xattrs: seen.xattrs,
        }
    }
}
