//! A property test of one-shot sync against a reference model: a random tree, synced into
//! an empty target, then rounds of random operations made directly on either side (behind
//! the engine's back), each followed by a sync. Real directories, the real engine, real
//! SQLite; nothing is mocked.
//!
//! After every sync:
//! - invariant 1 (no lost versions): every file content and symlink target present on a
//!   side right before the sync still exists afterwards, at some path on either side
//!   (conflict copies included) or in that side's `.tandem/trash`;
//! - invariant 5 (convergence): both trees (without `.tandem`) hold the same paths, kinds,
//!   contents, link targets, modes and file mtimes, and a second sync does nothing;
//! - the report lists no failure, skip, halt or stop.
//!
//! Shrunk failures are kept below as named regression tests.

#![allow(clippy::unwrap_used)]
// Unix file modes, symlinks and names as bytes.
#![cfg(unix)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;
use tandem_engine::{sync, Report, SyncSpec};

/// Entry names; `.txt` ones exercise the conflict copy name's extension handling.
const NAMES: [&str; 5] = ["a", "b", "c.txt", "d.txt", "e"];
/// File modes; all keep the owner's read and write bits, so edits stay possible.
const MODES: [u32; 4] = [0o644, 0o600, 0o755, 0o640];
/// Directory modes; all keep the owner's full access.
const DIR_MODES: [u32; 3] = [0o755, 0o700, 0o750];
/// Symlink targets: relative, upward, absolute, dangling; never followed by the engine.
const LINKS: [&str; 4] = ["a", "../b", "/nonexistent", "d/c.txt"];
/// Shared contents, so that different paths hold equal bytes (ambiguous rename hashes).
const POOL: [&[u8]; 3] = [b"", b"same", b"other"];
/// Directories at this depth or deeper receive no new children (root is depth 0).
const MAX_PARENT_DEPTH: usize = 2;

#[derive(Clone, Copy, Debug)]
enum On {
    Src,
    Tgt,
    /// The same operation on both sides, with the same content and mtime.
    Both,
}

#[derive(Clone, Copy, Debug)]
enum Content {
    /// Bytes no other write produced (`v<n>\n`).
    Unique,
    /// `POOL[i]`.
    Pool(u8),
}

/// One change made directly on disk. Numbers pick among what is there when the operation
/// runs (modulo the count), so any sequence applies and shrinks well; an operation with
/// nothing to act on does nothing.
#[derive(Clone, Copy, Debug)]
enum Op {
    CreateFile {
        dir: u8,
        name: u8,
        content: Content,
        mode: u8,
    },
    /// New content: rewritten in place (same inode), or written aside and renamed over.
    EditFile {
        file: u8,
        content: Content,
        atomic: bool,
    },
    /// A new mtime, same content.
    Touch {
        file: u8,
    },
    /// Removes a file or symlink.
    Remove {
        entry: u8,
    },
    /// Moves a file, symlink or directory to `dir/name` (over a file or link there).
    Rename {
        entry: u8,
        dir: u8,
        name: u8,
    },
    Mkdir {
        dir: u8,
        name: u8,
    },
    /// Removes a directory and everything below it.
    Rmdir {
        dir: u8,
    },
    Chmod {
        file: u8,
        mode: u8,
    },
    ChmodDir {
        dir: u8,
        mode: u8,
    },
    Symlink {
        dir: u8,
        name: u8,
        target: u8,
    },
}

#[derive(Clone, Debug)]
struct Scenario {
    /// Applied to the source before the first sync; the target starts empty.
    init: Vec<Op>,
    rounds: Vec<Vec<(On, Op)>>,
}

// ---- strategies ---------------------------------------------------------------------------

fn content() -> impl Strategy<Value = Content> {
    prop_oneof![
        3 => Just(Content::Unique),
        1 => (0..POOL.len() as u8).prop_map(Content::Pool),
    ]
}

fn name() -> impl Strategy<Value = u8> {
    0..NAMES.len() as u8
}

fn create_op() -> impl Strategy<Value = Op> {
    (any::<u8>(), name(), content(), 0..MODES.len() as u8).prop_map(|(dir, name, content, mode)| {
        Op::CreateFile {
            dir,
            name,
            content,
            mode,
        }
    })
}

fn mkdir_op() -> impl Strategy<Value = Op> {
    (any::<u8>(), name()).prop_map(|(dir, name)| Op::Mkdir { dir, name })
}

fn symlink_op() -> impl Strategy<Value = Op> {
    (any::<u8>(), name(), 0..LINKS.len() as u8).prop_map(|(dir, name, target)| Op::Symlink {
        dir,
        name,
        target,
    })
}

fn init_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => create_op(),
        2 => mkdir_op(),
        1 => symlink_op(),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => create_op(),
        3 => (any::<u8>(), content(), any::<bool>())
            .prop_map(|(file, content, atomic)| Op::EditFile { file, content, atomic }),
        1 => any::<u8>().prop_map(|file| Op::Touch { file }),
        2 => any::<u8>().prop_map(|entry| Op::Remove { entry }),
        2 => (any::<u8>(), any::<u8>(), name())
            .prop_map(|(entry, dir, name)| Op::Rename { entry, dir, name }),
        1 => mkdir_op(),
        1 => any::<u8>().prop_map(|dir| Op::Rmdir { dir }),
        1 => (any::<u8>(), 0..MODES.len() as u8).prop_map(|(file, mode)| Op::Chmod { file, mode }),
        1 => (any::<u8>(), 0..DIR_MODES.len() as u8).prop_map(|(dir, mode)| Op::ChmodDir { dir, mode }),
        1 => symlink_op(),
    ]
}

fn on() -> impl Strategy<Value = On> {
    prop_oneof![4 => Just(On::Src), 4 => Just(On::Tgt), 1 => Just(On::Both)]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(init_op(), 0..12),
        prop::collection::vec(prop::collection::vec((on(), op()), 1..6), 1..5),
    )
        .prop_map(|(init, rounds)| Scenario { init, rounds })
}

// ---- applying operations to a real directory ---------------------------------------------

/// Hands out strictly increasing mtimes and fresh contents: two writes in the same clock
/// tick could otherwise share an mtime and look unchanged to a stat.
struct World {
    clock_ns: u64,
    unique: u64,
}

impl World {
    fn new() -> World {
        World {
            clock_ns: 1_600_000_000_000_000_000,
            unique: 0,
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock_ns += 1_000_000_007;
        self.clock_ns
    }

    fn bytes(&mut self, c: Content) -> Vec<u8> {
        match c {
            Content::Unique => {
                self.unique += 1;
                format!("v{}\n", self.unique).into_bytes()
            }
            Content::Pool(i) => POOL[usize::from(i) % POOL.len()].to_vec(),
        }
    }

    fn apply(&mut self, on: On, op: Op, src: &Path, tgt: &Path) {
        let content = match op {
            Op::CreateFile { content, .. } | Op::EditFile { content, .. } => self.bytes(content),
            _ => Vec::new(),
        };
        let mtime = self.tick();
        let roots: &[&Path] = match on {
            On::Src => &[src],
            On::Tgt => &[tgt],
            On::Both => &[src, tgt],
        };
        for root in roots {
            apply_op(root, op, &content, mtime);
        }
    }
}

/// What one side holds, by kind, as relative paths (`""` is the root), sorted.
struct Listing {
    dirs: Vec<String>,
    files: Vec<String>,
    links: Vec<String>,
}

fn listing(root: &Path) -> Listing {
    let mut l = Listing {
        dirs: vec![String::new()],
        files: Vec::new(),
        links: Vec::new(),
    };
    for (path, node) in walk(root) {
        match node {
            Node::Dir { .. } => l.dirs.push(path),
            Node::File { .. } => l.files.push(path),
            Node::Link(_) => l.links.push(path),
        }
    }
    l
}

fn depth(rel: &str) -> usize {
    if rel.is_empty() {
        0
    } else {
        rel.split('/').count()
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

fn pick<T>(items: &[T], i: u8) -> Option<&T> {
    if items.is_empty() {
        None
    } else {
        Some(&items[usize::from(i) % items.len()])
    }
}

fn set_mtime(path: &Path, mtime_ns: u64) {
    let f = fs::File::options().write(true).open(path).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::from_nanos(mtime_ns))
        .unwrap();
}

fn write_file(path: &Path, content: &[u8], mode: u32, mtime_ns: u64) {
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    set_mtime(path, mtime_ns);
}

fn apply_op(root: &Path, op: Op, content: &[u8], mtime_ns: u64) {
    let l = listing(root);
    let parents: Vec<String> = l
        .dirs
        .iter()
        .filter(|d| depth(d) < MAX_PARENT_DEPTH)
        .cloned()
        .collect();
    let free = |rel: &str| fs::symlink_metadata(root.join(rel)).is_err();
    match op {
        Op::CreateFile {
            dir, name, mode, ..
        } => {
            let Some(parent) = pick(&parents, dir) else {
                return;
            };
            let rel = join(parent, NAMES[usize::from(name) % NAMES.len()]);
            if free(&rel) {
                write_file(
                    &root.join(&rel),
                    content,
                    MODES[usize::from(mode) % MODES.len()],
                    mtime_ns,
                );
            }
        }
        Op::EditFile { file, atomic, .. } => {
            let Some(rel) = pick(&l.files, file) else {
                return;
            };
            let path = root.join(rel);
            if atomic {
                let mode = fs::metadata(&path).unwrap().mode() & 0o7777;
                let aside = path.with_file_name(".edit-aside");
                write_file(&aside, content, mode, mtime_ns);
                fs::rename(&aside, &path).unwrap();
            } else {
                let mode = fs::metadata(&path).unwrap().mode() & 0o7777;
                write_file(&path, content, mode, mtime_ns);
            }
        }
        Op::Touch { file } => {
            if let Some(rel) = pick(&l.files, file) {
                set_mtime(&root.join(rel), mtime_ns);
            }
        }
        Op::Remove { entry } => {
            let entries: Vec<&String> = l.files.iter().chain(&l.links).collect();
            if let Some(rel) = pick(&entries, entry) {
                fs::remove_file(root.join(rel)).unwrap();
            }
        }
        Op::Rename { entry, dir, name } => {
            let entries: Vec<&String> = l
                .files
                .iter()
                .chain(&l.links)
                .chain(l.dirs.iter().skip(1))
                .collect();
            let Some(from) = pick(&entries, entry) else {
                return;
            };
            let from_is_dir = l.dirs.contains(from);
            let below_from = format!("{from}/");
            let parents: Vec<&String> = parents
                .iter()
                .filter(|p| !from_is_dir || (*p != *from && !p.starts_with(&below_from)))
                .collect();
            let Some(parent) = pick(&parents, dir) else {
                return;
            };
            let to = join(parent, NAMES[usize::from(name) % NAMES.len()]);
            if to == **from {
                return;
            }
            let over = fs::symlink_metadata(root.join(&to)).ok();
            match over {
                None => {}
                Some(m) if !m.is_dir() && !from_is_dir => {}
                Some(_) => return,
            }
            fs::rename(root.join(from), root.join(&to)).unwrap();
        }
        Op::Mkdir { dir, name } => {
            let Some(parent) = pick(&parents, dir) else {
                return;
            };
            let rel = join(parent, NAMES[usize::from(name) % NAMES.len()]);
            if free(&rel) {
                fs::create_dir(root.join(rel)).unwrap();
            }
        }
        Op::Rmdir { dir } => {
            if let Some(rel) = pick(&l.dirs[1..], dir) {
                fs::remove_dir_all(root.join(rel)).unwrap();
            }
        }
        Op::Chmod { file, mode } => {
            if let Some(rel) = pick(&l.files, file) {
                fs::set_permissions(
                    root.join(rel),
                    fs::Permissions::from_mode(MODES[usize::from(mode) % MODES.len()]),
                )
                .unwrap();
            }
        }
        Op::ChmodDir { dir, mode } => {
            if let Some(rel) = pick(&l.dirs[1..], dir) {
                fs::set_permissions(
                    root.join(rel),
                    fs::Permissions::from_mode(DIR_MODES[usize::from(mode) % DIR_MODES.len()]),
                )
                .unwrap();
            }
        }
        Op::Symlink { dir, name, target } => {
            let Some(parent) = pick(&parents, dir) else {
                return;
            };
            let rel = join(parent, NAMES[usize::from(name) % NAMES.len()]);
            if free(&rel) {
                symlink(LINKS[usize::from(target) % LINKS.len()], root.join(rel)).unwrap();
            }
        }
    }
}

// ---- observing a tree ----------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Dir {
        mode: u32,
    },
    File {
        content: Vec<u8>,
        mode: u32,
        mtime_ns: i128,
    },
    Link(Vec<u8>),
}

/// Everything below `root` by relative path, but tandem's own `.tandem` folder.
fn walk(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    walk_into(root, "", &mut out);
    out
}

/// Everything in the root's `.tandem` folder (its trash).
fn walk_trash(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let dir = root.join(".tandem");
    if dir.exists() {
        walk_into(&dir, ".tandem", &mut out);
    }
    out
}

fn walk_into(dir: &Path, rel: &str, out: &mut BTreeMap<String, Node>) {
    for item in fs::read_dir(dir).unwrap() {
        let item = item.unwrap();
        let name = item.file_name().into_string().unwrap();
        if rel.is_empty() && name == ".tandem" {
            continue;
        }
        let path = item.path();
        let child = join(rel, &name);
        let m = fs::symlink_metadata(&path).unwrap();
        let node = if m.is_dir() {
            walk_into(&path, &child, out);
            Node::Dir {
                mode: m.mode() & 0o7777,
            }
        } else if m.file_type().is_symlink() {
            use std::os::unix::ffi::OsStrExt;
            Node::Link(
                fs::read_link(&path)
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
            )
        } else {
            Node::File {
                content: fs::read(&path).unwrap(),
                mode: m.mode() & 0o7777,
                mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            }
        };
        out.insert(child, node);
    }
}

/// A version of a path's content, as invariant 1 counts them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Version {
    File(Vec<u8>),
    Link(Vec<u8>),
}

fn versions<'a>(trees: impl IntoIterator<Item = &'a BTreeMap<String, Node>>) -> BTreeSet<Version> {
    trees
        .into_iter()
        .flat_map(|t| t.values())
        .filter_map(|n| match n {
            Node::Dir { .. } => None,
            Node::File { content, .. } => Some(Version::File(content.clone())),
            Node::Link(t) => Some(Version::Link(t.clone())),
        })
        .collect()
}

fn diff(s: &BTreeMap<String, Node>, t: &BTreeMap<String, Node>) -> String {
    let mut out = String::new();
    let paths: BTreeSet<&String> = s.keys().chain(t.keys()).collect();
    for p in paths {
        let (a, b) = (s.get(p), t.get(p));
        if a != b {
            out.push_str(&format!("  {p}:\n    source {a:?}\n    target {b:?}\n"));
        }
    }
    out
}

// ---- the property ----------------------------------------------------------------------------

struct Pair {
    _dirs: [tempfile::TempDir; 3],
    spec: SyncSpec,
}

impl Pair {
    fn new() -> Pair {
        let dirs = [
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        ];
        let spec = SyncSpec {
            max_delete_percent: 100,
            threads: 2,
            ..SyncSpec::new(
                fs::canonicalize(dirs[0].path()).unwrap(),
                fs::canonicalize(dirs[1].path()).unwrap(),
                dirs[2].path().to_path_buf(),
            )
        };
        Pair { _dirs: dirs, spec }
    }

    fn src(&self) -> &PathBuf {
        &self.spec.src
    }

    fn tgt(&self) -> &PathBuf {
        &self.spec.tgt
    }

    fn sync(&self, what: &str) -> Result<Report, String> {
        let r = sync(&self.spec, &|_| {}).map_err(|e| format!("{what}: sync failed: {e}"))?;
        let trouble = !r.failed.is_empty()
            || !r.skipped.is_empty()
            || r.halted.is_some()
            || r.stopped.is_some();
        if trouble {
            return Err(format!("{what}: the report lists trouble: {r:#?}"));
        }
        Ok(r)
    }

    /// One sync, checked against invariants 1 and 5.
    fn checked_sync(&self, what: &str) -> Result<(), String> {
        let before = [walk(self.src()), walk(self.tgt())];
        let r = self.sync(what)?;
        let (s, t) = (walk(self.src()), walk(self.tgt()));
        let live = versions([&s, &t]);
        for (side, root, tree) in [
            ("source", self.src(), &before[0]),
            ("target", self.tgt(), &before[1]),
        ] {
            let trash = versions([&walk_trash(root)]);
            let lost: Vec<Version> = versions([tree])
                .into_iter()
                .filter(|v| !live.contains(v) && !trash.contains(v))
                .collect();
            if !lost.is_empty() {
                return Err(format!(
                    "{what}: invariant 1: versions on the {side} lost: {lost:?}\nbefore, source: {:#?}\nbefore, target: {:#?}\nreport: {r:#?}",
                    before[0], before[1]
                ));
            }
        }
        if s != t {
            return Err(format!(
                "{what}: invariant 5: the trees differ after the sync:\n{}before, source: {:#?}\nbefore, target: {:#?}\nreport: {r:#?}",
                diff(&s, &t),
                before[0],
                before[1]
            ));
        }
        let again = self.sync(&format!("{what}, second sync"))?;
        let idle = again.copied == 0
            && again.deleted == 0
            && again.renamed == 0
            && again.dirs_created == 0
            && again.metadata == 0
            && again.conflicts.is_empty();
        if !idle {
            return Err(format!(
                "{what}: invariant 5: the second sync did something: {again:#?}\ntree: {s:#?}\nfirst report: {r:#?}"
            ));
        }
        if walk(self.src()) != s || walk(self.tgt()) != t {
            return Err(format!("{what}: the second sync changed a tree"));
        }
        Ok(())
    }
}

fn check(sc: &Scenario) -> Result<(), String> {
    let pair = Pair::new();
    let mut world = World::new();
    for op in &sc.init {
        world.apply(On::Src, *op, pair.src(), pair.tgt());
    }
    pair.checked_sync("initial sync")?;
    for (i, round) in sc.rounds.iter().enumerate() {
        for (on, op) in round {
            world.apply(*on, *op, pair.src(), pair.tgt());
        }
        pair.checked_sync(&format!("round {}", i + 1))?;
    }
    Ok(())
}

fn run(sc: Scenario) {
    if let Err(e) = check(&sc) {
        panic!("{e}");
    }
}

/// How many scenarios a run tries: `TANDEM_SOAK_CASES` (`scripts/soak-model` sets 10,000),
/// else 200.
fn cases() -> u32 {
    std::env::var("TANDEM_SOAK_CASES")
        .ok()
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("TANDEM_SOAK_CASES={v:?} is not a number"))
        })
        .unwrap_or(200)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_edits_on_both_sides_converge_without_loss(sc in scenario()) {
        check(&sc).map_err(TestCaseError::fail)?;
    }
}

/// The soak (`scripts/soak-model`): `TANDEM_SOAK_CASES` scenarios drawn from the seed
/// `TANDEM_SOAK_SEED` (hex; printed, random when unset), every one run even after a
/// failure, each failure printed with its scenario (paste it into a regression test below),
/// then the counts. The property above stops at its first failure to shrink it; this one
/// counts.
/// In `cargo test` it runs a few cases (the property above runs the 200), so that the soak's
/// own machinery is checked too; `scripts/soak-model` sets the count.
#[test]
fn soak_random_edits_on_both_sides() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    let cases = if std::env::var_os("TANDEM_SOAK_CASES").is_some() {
        cases()
    } else {
        10
    };
    let seed = std::env::var("TANDEM_SOAK_SEED")
        .ok()
        .map(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap())
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now().duration_since(UNIX_EPOCH);
            now.unwrap().as_nanos() as u64
        });
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &key);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let strategy = scenario();
    let started = std::time::Instant::now();
    let mut failures = 0u32;
    for i in 1..=cases {
        let sc = strategy.new_tree(&mut runner).unwrap().current();
        // A panic in the harness counts as a failure of its case, not the end of the soak.
        let outcome = std::panic::catch_unwind(|| check(&sc))
            .unwrap_or_else(|_| Err("the case panicked (message above)".into()));
        if let Err(e) = outcome {
            failures += 1;
            eprintln!("soak: case {i} of seed {seed:#x} failed:\n{sc:?}\n{e}\n");
        }
        if i % 500 == 0 || i == cases {
            eprintln!(
                "soak: {i} cases, {failures} failures, seed {seed:#x}, {:.0?}",
                started.elapsed()
            );
        }
    }
    assert_eq!(failures, 0, "{failures} of {cases} cases failed");
}

// ---- regression tests: shrunk failures of the property above ---------------------------------

/// Waits for the wall clock to enter a new second: the syncs that follow then share one
/// trash stamp (`YYYYMMDD-HHMMSS`), as quick successive syncs do.
fn at_start_of_a_second() {
    let ns = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    std::thread::sleep(Duration::from_nanos(u64::from(1_000_000_000 - ns)));
}

/// A file `d.txt` is deleted (to the trash as `d.txt`), then a directory `d.txt` holding
/// `e` is created, and `e` is overwritten in the same second: its trash slot lies below
/// the trashed file `d.txt`.
#[test]
fn overwrite_below_a_name_trashed_as_a_file_in_the_same_second() {
    at_start_of_a_second();
    run(Scenario {
        init: vec![Op::CreateFile {
            dir: 0,
            name: 3,
            content: Content::Unique,
            mode: 0,
        }],
        rounds: vec![
            vec![(On::Src, Op::Remove { entry: 0 })],
            vec![
                (On::Src, Op::Mkdir { dir: 0, name: 3 }),
                (
                    On::Src,
                    Op::CreateFile {
                        dir: 1,
                        name: 4,
                        content: Content::Unique,
                        mode: 0,
                    },
                ),
            ],
            vec![(
                On::Src,
                Op::EditFile {
                    file: 0,
                    content: Content::Unique,
                    atomic: false,
                },
            )],
        ],
    });
}
