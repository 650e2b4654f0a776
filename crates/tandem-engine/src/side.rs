//! The seam between a session and one root of its pair (DESIGN.md, "Side trait"): what a
//! sync needs of a side. `tandem_fs::Root` is the local implementation; `tandem-remote`'s
//! client is a root on another machine, reached over SSH, whose agent (`tandem serve`) is a
//! local side there. Whatever the side, every write takes the state the plan saw and is
//! re-checked against the disk right before it is made (invariant 2), on the machine that
//! holds the root.

use std::io::Read;
use std::sync::Arc;

use crossbeam_channel::Sender;
use tandem_core::{Entry, Filter, Hash, RelPath, Retention};
use tandem_fs::{
    AttrsFrom, Durability, FsError, Incoming, Pruned, Refusal, Root, Scan, Trash, Xattrs,
};

use crate::watch::{Echoes, TargetHint, TargetWatcher};

/// An answer asked for now and taken later (`SideRoot::dir_mtimes_later`).
pub type Later<T> = Box<dyn FnOnce() -> T + Send>;

/// A side's watch on its root: the changes made there arrive as hints for as long as it
/// lives.
pub type Watch = Box<dyn Send>;

/// One change to a side other than new content (that is [`SideRoot::install`]), with the
/// state the plan expects to find.
#[derive(Clone, Copy)]
pub enum Step<'a> {
    Rename {
        from: &'a RelPath,
        to: &'a RelPath,
        expect: &'a Entry,
    },
    /// `src` is the folder on the other side; `from`, where its extended attributes are
    /// read: that side's root when it is local, else the list read there (`None`: none to
    /// give).
    Mkdir {
        path: &'a RelPath,
        src: &'a Entry,
        from: Option<AttrsFrom<'a>>,
    },
    SetMeta {
        path: &'a RelPath,
        src: &'a Entry,
        expect: &'a Entry,
        from: Option<AttrsFrom<'a>>,
    },
    Delete {
        path: &'a RelPath,
        expect: &'a Entry,
    },
    /// A temporary file of a tandem that crashed mid-copy, to the trash.
    RemoveStaleTemp { path: &'a RelPath },
}

/// A file's content being read on its side, to be installed on the other.
pub trait Source: Read + Send {
    /// A symlink's target; `None` for a file.
    fn link(&self) -> Option<&[u8]>;
    /// Once all was read: the source did not change meanwhile (else raced, nothing kept).
    fn finish(&mut self) -> tandem_fs::Result<()>;
}

impl Source for tandem_fs::Content {
    fn link(&self) -> Option<&[u8]> {
        tandem_fs::Content::link(self)
    }

    fn finish(&mut self) -> tandem_fs::Result<()> {
        tandem_fs::Content::finish(self)
    }
}

/// Why a copy sent as a delta was not kept: what the receiver rebuilt from its old copy did
/// not hash to the new content. The copy is made again, whole.
pub const DELTA_MISMATCH: &str = "rebuilt from a delta, did not hash to the content sent";

/// What a session needs of a root.
pub trait SideRoot: Send + Sync {
    /// The root as the user named it (a path, or `host:/path`).
    fn name(&self) -> String;
    /// The local root, when this side is on this machine: a copy between two local roots
    /// is made in the kernel, and what needs both roots at hand (hard links, markers, trash
    /// retention) uses it.
    fn local(&self) -> Option<&Root>;
    /// The whole tree (`hints: None`), or the hinted paths with their parents and, where
    /// the flag says so, what is below them.
    fn scan(
        &self,
        filter: &Filter,
        threads: usize,
        hints: Option<&[(RelPath, bool)]>,
    ) -> tandem_fs::Result<Scan>;
    /// The content hashes of `want` (each checked to be still that entry), in its order.
    fn hash(&self, want: &[(RelPath, Entry)], threads: usize) -> Vec<tandem_fs::Result<Hash>>;
    fn stat(&self, rel: &RelPath) -> tandem_fs::Result<Option<Entry>>;
    /// Opens `rel`, still `src`, to send its content to the other side.
    fn read(&self, rel: &RelPath, src: &Entry) -> tandem_fs::Result<Box<dyn Source + '_>>;
    /// [`SideRoot::read`], for a receiving side that is local and holds `old` (the entry
    /// the plan saw there) at `rel`: a remote side then sends only what changed.
    fn read_onto(
        &self,
        rel: &RelPath,
        src: &Entry,
        _old: Option<(&Root, &Entry)>,
    ) -> tandem_fs::Result<Box<dyn Source + '_>> {
        self.read(rel, src)
    }
    /// Makes `rel` hold `incoming` if it is still `expect`; returns the new entry.
    fn install(
        &self,
        rel: &RelPath,
        expect: Option<&Entry>,
        incoming: Incoming<'_>,
        trash: &Trash,
        durability: Durability,
    ) -> tandem_fs::Result<Entry>;
    /// [`SideRoot::install`], its answer taken later: a remote side sends the file and goes
    /// on, so that what follows it (the folder times, the flush) goes in the same round
    /// trip; its agent finishes the file before it flushes. A local side installs at once.
    fn install_later(
        &self,
        rel: &RelPath,
        expect: Option<&Entry>,
        incoming: Incoming<'_>,
        trash: &Trash,
        durability: Durability,
    ) -> Later<tandem_fs::Result<Entry>> {
        let installed = self.install(rel, expect, incoming, trash, durability);
        Box::new(move || installed)
    }
    /// Applies `step`; returns the entry it left (none for a deletion).
    fn apply(&self, step: Step<'_>, trash: &Trash) -> tandem_fs::Result<Option<Entry>>;
    /// Makes what was written durable (invariant 4: before the baseline records it).
    fn flush(&self, durability: Durability) -> tandem_fs::Result<()>;
    /// The root is still the folder that was opened (not unmounted, moved or removed).
    fn still_present(&self) -> bool;
    /// The ownership and attribute changes this side refused since last asked.
    fn take_refusals(&self) -> Vec<Refusal>;
    /// A `syncfs` of the root makes its files durable (not a FUSE root).
    fn syncfs_is_durable(&self) -> bool;
    /// Track the folders whose entries change, for [`SideRoot::flush`] of `EachFile`.
    fn track_dirs(&self, on: bool);
    /// Watches the root: what programs change there comes to `tx` as hints (a mount's
    /// continuous two-way). `echoes`: the folders and renames this machine's engine is
    /// about to make there. `Err`: why it cannot be watched.
    fn watch(&self, tx: Sender<TargetHint>, echoes: Arc<Echoes>) -> Result<Watch, String>;
    /// `--hard-links`: makes `path` another name of the file at `anchor` (still
    /// `anchor_expect`), if `path` is still `expect`; returns the new entry.
    fn link(
        &self,
        anchor: &RelPath,
        anchor_expect: &Entry,
        path: &RelPath,
        expect: Option<&Entry>,
        trash: &Trash,
    ) -> tandem_fs::Result<Entry>;
    /// Whether this side's file system holds hard links (`dry_run`: probed without writing
    /// where it can).
    fn holds_hard_links(&self, dry_run: bool) -> bool;
    /// The extended attributes this run keeps of `rel` (`None`: the run keeps none), to be
    /// given to the other side.
    fn xattrs(&self, rel: &RelPath) -> tandem_fs::Result<Option<Xattrs>>;
    /// Which of `paths` this side holds (anything there; unknown counts as held), in their
    /// order: a version in the other side's trash or history of a path held here is not
    /// its last copy.
    fn holds(&self, paths: &[RelPath]) -> Vec<bool>;
    /// Prunes this side's trash to `keep` at `now` (ns); `other` says which paths the
    /// other side holds.
    fn prune_trash(
        &self,
        keep: &Retention,
        now: i64,
        other: &dyn SideRoot,
    ) -> tandem_fs::Result<Pruned>;
    /// The modification times of the folders `dirs`, in their order (`None`: no folder
    /// there, or its time cannot be read or kept on this side).
    fn dir_mtimes(&self, dirs: &[RelPath]) -> Vec<Option<i64>>;
    /// [`SideRoot::dir_mtimes`], asked now and read when the answer is taken: a remote
    /// side sends the request and goes on, so that the steps sent after it (which its agent
    /// handles after it) need not wait a round trip for it.
    fn dir_mtimes_later(&self, dirs: &[RelPath]) -> Later<Vec<Option<i64>>> {
        let times = self.dir_mtimes(dirs);
        Box::new(move || times)
    }
    /// Gives each folder its time, in order (deepest first): per folder, whether it was set
    /// (`false`: no longer a folder there, left alone) or why not.
    fn set_dir_mtimes(&self, times: &[(RelPath, i64)]) -> Vec<tandem_fs::Result<bool>>;
    /// [`SideRoot::set_dir_mtimes`], the answers taken later: a remote side sends the
    /// request and goes on, so that the flush sent after it goes in the same round trip.
    fn set_dir_mtimes_later(
        &self,
        times: &[(RelPath, i64)],
    ) -> Later<Vec<tandem_fs::Result<bool>>> {
        let results = self.set_dir_mtimes(times);
        Box::new(move || results)
    }
    /// Why this side cannot be reached any more (a remote side's connection dropped), if
    /// so: only a new one (`Session::reopen_target`) can go on.
    fn lost(&self) -> Option<String> {
        None
    }
    /// The run's outcome is committed (the baseline written): what this side's last
    /// whole-tree scan returned may serve as the base of its next one (a remote side sends
    /// only what differs from it). Called after a run that was not a dry run nor halted.
    fn committed(&self) {}
    /// A hint, before the run hashes what it must: `rel`, `old` on this side as the
    /// baseline last saw it, is likely to be replaced by `new` from the other side. A side
    /// that receives large files as deltas may start cutting `old` into chunks now, while
    /// the other side hashes `new`; the install checks `old` again as always.
    fn expect_replacement(&self, _rel: &RelPath, _old: &Entry, _new: &Entry) {}
}

impl SideRoot for Root {
    fn name(&self) -> String {
        self.path().display().to_string()
    }

    fn local(&self) -> Option<&Root> {
        Some(self)
    }

    fn scan(
        &self,
        filter: &Filter,
        threads: usize,
        hints: Option<&[(RelPath, bool)]>,
    ) -> tandem_fs::Result<Scan> {
        match hints {
            None => tandem_fs::scan(self, filter, threads),
            Some(hints) => tandem_fs::scan_paths(self, filter, threads, hints),
        }
    }

    fn hash(&self, want: &[(RelPath, Entry)], threads: usize) -> Vec<tandem_fs::Result<Hash>> {
        hash_all(self, want, threads)
    }

    fn stat(&self, rel: &RelPath) -> tandem_fs::Result<Option<Entry>> {
        Root::stat(self, rel)
    }

    fn read(&self, rel: &RelPath, src: &Entry) -> tandem_fs::Result<Box<dyn Source + '_>> {
        Ok(Box::new(tandem_fs::open_content(self, rel, src)?))
    }

    fn install(
        &self,
        rel: &RelPath,
        expect: Option<&Entry>,
        incoming: Incoming<'_>,
        trash: &Trash,
        durability: Durability,
    ) -> tandem_fs::Result<Entry> {
        tandem_fs::install(self, rel, expect, incoming, trash, durability)
    }

    fn apply(&self, step: Step<'_>, trash: &Trash) -> tandem_fs::Result<Option<Entry>> {
        Ok(match step {
            Step::Rename { from, to, expect } => Some(tandem_fs::rename(self, from, to, expect)?),
            Step::Mkdir { path, src, from } => {
                let from = from.unwrap_or(AttrsFrom::Root(self));
                Some(tandem_fs::mkdir(from, self, path, src)?)
            }
            Step::SetMeta {
                path,
                src,
                expect,
                from,
            } => Some(tandem_fs::set_meta(
                from.unwrap_or(AttrsFrom::Root(self)),
                self,
                path,
                src,
                expect,
            )?),
            Step::Delete { path, expect } => {
                tandem_fs::delete(self, path, expect, trash)?;
                None
            }
            Step::RemoveStaleTemp { path } => {
                tandem_fs::remove_stale_temp(self, path, trash)?;
                None
            }
        })
    }

    fn flush(&self, durability: Durability) -> tandem_fs::Result<()> {
        match durability {
            Durability::EachFile => self.sync_dirs(),
            Durability::Batched => tandem_fs::sync_root(self),
        }
    }

    fn still_present(&self) -> bool {
        Root::still_present(self)
    }

    fn take_refusals(&self) -> Vec<Refusal> {
        Root::take_refusals(self)
    }

    fn syncfs_is_durable(&self) -> bool {
        Root::syncfs_is_durable(self)
    }

    fn track_dirs(&self, on: bool) {
        Root::track_dirs(self, on)
    }

    fn link(
        &self,
        anchor: &RelPath,
        anchor_expect: &Entry,
        path: &RelPath,
        expect: Option<&Entry>,
        trash: &Trash,
    ) -> tandem_fs::Result<Entry> {
        tandem_fs::link(self, anchor, anchor_expect, path, expect, trash)
    }

    fn holds_hard_links(&self, dry_run: bool) -> bool {
        match dry_run {
            true => tandem_fs::holds_hard_links_dry(self),
            false => tandem_fs::holds_hard_links(self),
        }
    }

    fn xattrs(&self, rel: &RelPath) -> tandem_fs::Result<Option<Xattrs>> {
        tandem_fs::read_xattrs(self, rel)
    }

    fn holds(&self, paths: &[RelPath]) -> Vec<bool> {
        paths.iter().map(|p| tandem_fs::present(self, p)).collect()
    }

    fn prune_trash(
        &self,
        keep: &Retention,
        now: i64,
        other: &dyn SideRoot,
    ) -> tandem_fs::Result<Pruned> {
        let paths = tandem_fs::trash_paths(self)?;
        if paths.is_empty() {
            return Ok(Pruned::default());
        }
        let held: std::collections::HashSet<&RelPath> = paths
            .iter()
            .zip(other.holds(&paths))
            .filter_map(|(p, held)| held.then_some(p))
            .collect();
        tandem_fs::prune_trash_where(self, &|p| held.contains(p), keep, now)
    }

    fn dir_mtimes(&self, dirs: &[RelPath]) -> Vec<Option<i64>> {
        dirs.iter()
            .map(|d| self.dir_mtime(d).ok().flatten())
            .collect()
    }

    fn set_dir_mtimes(&self, times: &[(RelPath, i64)]) -> Vec<tandem_fs::Result<bool>> {
        times
            .iter()
            .map(|(d, t)| tandem_fs::set_dir_mtime(self, d, *t))
            .collect()
    }

    fn watch(&self, tx: Sender<TargetHint>, echoes: Arc<Echoes>) -> Result<Watch, String> {
        match TargetWatcher::start(self.path(), tx, echoes) {
            Ok(w) => Ok(Box::new(w)),
            Err(e) => Err(format!("cannot watch {}: {e}", self.path().display())),
        }
    }
}

/// Hashes `want` on `threads` threads, each file checked to be still its entry.
fn hash_all(
    root: &Root,
    want: &[(RelPath, Entry)],
    threads: usize,
) -> Vec<tandem_fs::Result<Hash>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<tandem_fs::Result<Hash>>>> =
        (0..want.len()).map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads.max(1).min(want.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((path, entry)) = want.get(i) else {
                    break;
                };
                let r = tandem_fs::hash_file(root, path, entry);
                *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            });
        }
    });
    slots
        .into_iter()
        .map(|s| {
            s.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or_else(|| Err(FsError::raced(&RelPath::root(), "not hashed")))
        })
        .collect()
}

/// Copies `path` from `from` to `to`: in the kernel when both are on this machine
/// (`tandem_fs::copy`), else read on one side and installed on the other.
#[allow(clippy::too_many_arguments)]
pub(crate) fn copy_between(
    from: &dyn SideRoot,
    to: &dyn SideRoot,
    path: &RelPath,
    src: &Entry,
    expect: Option<&Entry>,
    mode: u32,
    trash: &Trash,
    durability: Durability,
    announce: &dyn Fn(),
) -> tandem_fs::Result<Entry> {
    if let (Some(f), Some(t)) = (from.local(), to.local()) {
        return tandem_fs::copy(f, t, path, src, expect, mode, trash, durability, announce);
    }
    let announced = std::cell::Cell::new(false);
    // The attributes the copy gets, read where the source is (none kept: not read).
    let xattrs = match src.kind {
        tandem_core::Kind::File => from.xattrs(path)?,
        _ => None,
    };
    let attempt = || {
        with_incoming(
            from,
            to,
            path,
            src,
            expect,
            mode,
            xattrs.as_ref(),
            |incoming| {
                if !announced.replace(true) {
                    announce();
                }
                to.install(path, expect, incoming, trash, durability)
            },
        )
    };
    match attempt() {
        // A delta that did not rebuild the file: the remote side sends it whole this time.
        Err(FsError::Raced { what, .. }) if what == DELTA_MISMATCH => attempt(),
        done => done,
    }
}

/// [`copy_between`] to a side on another machine, its answer taken later
/// ([`SideRoot::install_later`]). A delta that did not rebuild the file comes back raced:
/// the next round sends it again, whole.
#[allow(clippy::too_many_arguments)]
pub(crate) fn copy_later(
    from: &dyn SideRoot,
    to: &dyn SideRoot,
    path: &RelPath,
    src: &Entry,
    expect: Option<&Entry>,
    mode: u32,
    trash: &Trash,
    durability: Durability,
    announce: &dyn Fn(),
) -> tandem_fs::Result<Later<tandem_fs::Result<Entry>>> {
    let xattrs = match src.kind {
        tandem_core::Kind::File => from.xattrs(path)?,
        _ => None,
    };
    with_incoming(
        from,
        to,
        path,
        src,
        expect,
        mode,
        xattrs.as_ref(),
        |incoming| {
            announce();
            Ok(to.install_later(path, expect, incoming, trash, durability))
        },
    )
}

/// Opens `path` on `from` and hands its content to `install`, as what `to` receives.
#[allow(clippy::too_many_arguments)]
fn with_incoming<R>(
    from: &dyn SideRoot,
    to: &dyn SideRoot,
    path: &RelPath,
    src: &Entry,
    expect: Option<&Entry>,
    mode: u32,
    xattrs: Option<&Xattrs>,
    install: impl FnOnce(Incoming<'_>) -> tandem_fs::Result<R>,
) -> tandem_fs::Result<R> {
    let source = from.read_onto(path, src, to.local().zip(expect))?;
    let src = Entry {
        link: source
            .link()
            .map(<[u8]>::to_vec)
            .or_else(|| src.link.clone()),
        ..src.clone()
    };
    // The reader and the check take turns on one source: the data first, then, before
    // the copy takes its name, the source's word that it did not change meanwhile.
    let source = std::cell::RefCell::new(source);
    let mut reader = SourceReader(&source);
    let mut verify = |_: Option<&Hash>| source.borrow_mut().finish();
    let incoming = Incoming {
        src: &src,
        mode,
        data: &mut reader,
        verify: &mut verify,
        xattrs,
    };
    install(incoming)
}

struct SourceReader<'a, 's>(&'a std::cell::RefCell<Box<dyn Source + 's>>);

impl Read for SourceReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().read(buf)
    }
}
