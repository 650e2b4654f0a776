//! Continuous two-way while mounted: changes made directly in the target come back into
//! the source through the hidden fd and are visible through the mount at once (the kernel's
//! cache is invalidated), without echoing back; conflicts while mounted follow the policy.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use crate::fixtures::*;
use crate::mount::{fuse_available, wait_for, Mounted};

const T: Duration = Duration::from_secs(15);

fn content(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

fn journal_rows(state: &Path) -> i64 {
    let conn = rusqlite::Connection::open(state.join("state.db")).unwrap();
    conn.query_row("SELECT count(*) FROM journal", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn target_changes_appear_through_the_mount_even_when_cached() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    p.write(S::Src, "a.txt", "one");
    p.write(S::Src, "old.txt", "old");
    p.write(S::Src, "d/x", "x");
    let m = Mounted::start(&p);
    let src = |rel: &str| p.path(S::Src, rel);
    let tgt = |rel: &str| p.path(S::Tgt, rel);
    wait_for("the startup sync", T, || content(&tgt("d/x")).is_some());

    // Read through the mount: its pages, attributes and entry are now in the kernel's
    // cache (entries and attributes are cached for a day).
    assert_eq!(content(&src("a.txt")).as_deref(), Some("one"));
    std::fs::write(tgt("a.txt"), "two, and longer").unwrap();
    wait_for("an edit in the target, read through the mount", T, || {
        content(&src("a.txt")).as_deref() == Some("two, and longer")
    });

    // A listing read through the mount is cached by the kernel too.
    let names = |dir: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert!(!names(&p.src).contains(&"new.txt".to_string()));
    std::fs::write(tgt("new.txt"), "new").unwrap();
    wait_for("a file created in the target", T, || {
        content(&src("new.txt")).as_deref() == Some("new")
    });
    wait_for("the new file in a listing through the mount", T, || {
        names(&p.src).contains(&"new.txt".to_string())
    });

    assert!(src("old.txt").exists());
    std::fs::remove_file(tgt("old.txt")).unwrap();
    wait_for("a file deleted in the target", T, || {
        !src("old.txt").exists()
    });

    std::fs::rename(tgt("a.txt"), tgt("b.txt")).unwrap();
    wait_for("a file renamed in the target", T, || {
        !src("a.txt").exists() && content(&src("b.txt")).as_deref() == Some("two, and longer")
    });

    assert_eq!(content(&src("d/x")).as_deref(), Some("x"));
    std::fs::rename(tgt("d"), tgt("e")).unwrap();
    wait_for("a folder renamed in the target", T, || {
        !src("d").exists() && content(&src("e/x")).as_deref() == Some("x")
    });

    std::fs::set_permissions(tgt("e/x"), std::fs::Permissions::from_mode(0o600)).unwrap();
    wait_for("a chmod in the target", T, || {
        std::fs::metadata(src("e/x")).is_ok_and(|m| m.mode() & 0o777 == 0o600)
    });

    std::os::unix::fs::symlink("e/x", tgt("link")).unwrap();
    wait_for("a symlink created in the target", T, || {
        std::fs::read_link(src("link")).is_ok_and(|l| l == Path::new("e/x"))
    });

    // A folder with content made at once: files created before its watch existed too.
    std::fs::create_dir_all(tgt("f/g")).unwrap();
    for i in 0..20 {
        std::fs::write(tgt(&format!("f/g/{i}")), format!("{i}")).unwrap();
    }
    wait_for("a new folder tree in the target", T, || {
        (0..20).all(|i| content(&src(&format!("f/g/{i}"))) == Some(format!("{i}")))
    });

    // A program writing the target file in place, holding it open: copied once it closes.
    {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(tgt("new.txt"))
            .unwrap();
        f.write_all(b" and more").unwrap();
    }
    wait_for("an append in the target", T, || {
        content(&src("new.txt")).as_deref() == Some("new and more")
    });

    let st = m.stop();
    assert!(st.success(), "{st}");
    p.assert_same();
}

#[test]
fn a_merged_target_change_is_not_echoed_back() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    p.write(S::Src, "a.txt", "one");
    let m = Mounted::start(&p);
    let tgt = p.path(S::Tgt, "a.txt");
    wait_for("the startup sync", T, || content(&tgt).is_some());
    let rows_before = journal_rows(&p.state);

    std::fs::write(&tgt, "from the target").unwrap();
    let seen = std::fs::symlink_metadata(&tgt).unwrap();
    wait_for("the merge into the source", T, || {
        content(&p.path(S::Src, "a.txt")).as_deref() == Some("from the target")
    });
    // Give an echo every chance to happen.
    std::thread::sleep(Duration::from_millis(1500));
    let now = std::fs::symlink_metadata(&tgt).unwrap();
    assert_eq!(
        (now.ino(), now.mtime_nsec(), now.ctime(), now.ctime_nsec()),
        (
            seen.ino(),
            seen.mtime_nsec(),
            seen.ctime(),
            seen.ctime_nsec()
        ),
        "the target file was written again after its own change was merged:\n{}",
        m.log()
    );
    assert_eq!(
        journal_rows(&p.state),
        rows_before,
        "the merge went through the mount (journaled) instead of the hidden fd"
    );
    assert!(
        p.trash_contents(S::Tgt).is_empty(),
        "nothing trashed in the target"
    );
    let st = m.stop();
    assert!(st.success());
    p.assert_same();
}

/// Both sides change doc.txt while the source's writer holds it open (the replicator
/// waits for it), so that both changes meet in one pass.
fn make_conflict(p: &Pair) {
    wait_for("the startup sync", T, || {
        content(&p.path(S::Tgt, "doc.txt")).is_some()
    });
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(p.path(S::Src, "doc.txt"))
        .unwrap();
    f.write_all(b"source version").unwrap();
    f.flush().unwrap();
    std::fs::write(p.path(S::Tgt, "doc.txt"), "target version").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(f);
    // Let both changes meet and settle.
    std::thread::sleep(Duration::from_millis(2500));
}

fn concurrent_edit(policy: &str) -> (Pair, String) {
    let p = Pair::new();
    p.write(S::Src, "doc.txt", "base");
    let log;
    {
        let m = Mounted::start_with(&p, &[], &["--conflict", policy]);
        make_conflict(&p);
        log = m.log();
        let st = m.stop();
        assert!(st.success(), "{st}\n{log}");
    }
    (p, log)
}

#[test]
fn a_conflict_is_resolved_while_mounted() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    p.write(S::Src, "doc.txt", "base");
    let m = Mounted::start_with(&p, &[], &["--conflict", "flag"]);
    make_conflict(&p);
    let out = p.cmd("conflicts", &[]);
    assert!(out.stdout.contains("doc.txt"), "{}\n{}", out.all(), m.log());
    assert_eq!(p.read(S::Src, "doc.txt"), "source version");
    let out = tandem_with_state_home(
        &p,
        &[
            "resolve",
            p.src.to_str().unwrap(),
            p.tgt.to_str().unwrap(),
            "doc.txt",
            "--keep",
            "target",
            "--state-dir",
            p.state.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.all(), m.log());
    assert_eq!(
        p.read(S::Src, "doc.txt"),
        "target version",
        "read through the mount"
    );
    assert_eq!(p.cmd("conflicts", &[]).code, 0, "no open conflict left");
    // The mount goes on: a later edit still flows.
    p.write(S::Src, "doc.txt", "after");
    wait_for("an edit after resolving", T, || {
        content(&p.path(S::Tgt, "doc.txt")).as_deref() == Some("after")
    });
    assert!(m.stop().success());
    p.assert_same();
}

#[test]
fn concurrent_edits_while_mounted_keep_both_versions() {
    if !fuse_available() {
        return;
    }
    let (p, log) = concurrent_edit("keep-both");
    p.assert_same();
    let mut versions: Vec<String> = p
        .names_with(S::Src, "doc")
        .iter()
        .map(|n| p.read(S::Src, n))
        .collect();
    versions.sort();
    assert_eq!(
        versions,
        vec!["source version".to_string(), "target version".to_string()],
        "{log}"
    );
    let out = p.cmd("conflicts", &[]);
    assert!(out.stdout.contains("doc.txt"), "{}", out.all());
}

#[test]
fn concurrent_edits_while_mounted_with_flag_leave_both_and_list_it() {
    if !fuse_available() {
        return;
    }
    let (p, log) = concurrent_edit("flag");
    assert_eq!(p.read(S::Src, "doc.txt"), "source version", "{log}");
    assert_eq!(p.read(S::Tgt, "doc.txt"), "target version", "{log}");
    let out = p.cmd("conflicts", &[]);
    assert!(out.stdout.contains("doc.txt"), "{}", out.all());
}

/// `tandem ARGS` with the mount's state home (where pairs without --state-dir keep state).
fn tandem_with_state_home(p: &Pair, args: &[&str]) -> Out {
    run_tandem_with_env(args, &[("XDG_STATE_HOME", &p.tmp.path().join("xdg"))])
}

/// The live status a running mount publishes (in the first pair's state directory).
fn mount_status(p: &Pair) -> serde_json::Value {
    let base = p.tmp.path().join("xdg/tandem");
    for e in std::fs::read_dir(&base).unwrap() {
        let f = e.unwrap().path().join("mount-status.json");
        if let Ok(text) = std::fs::read_to_string(&f) {
            return serde_json::from_str(&text).unwrap();
        }
    }
    serde_json::Value::Null
}

fn target_status<'a>(status: &'a serde_json::Value, tgt: &Path) -> &'a serde_json::Value {
    status["targets"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|t| t["target"].as_str() == Some(tgt.to_str().unwrap()))
        })
        .unwrap_or(&serde_json::Value::Null)
}

#[test]
fn two_targets_a_full_one_pauses_the_other_keeps_up_and_it_catches_up_later() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    let small = p.tmp.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let Some(fs) = Tmpfs::mount_or_skip(&small, "1m", "the two-target disk-full test") else {
        return;
    };
    p.write(S::Src, "seed.txt", "seed");
    let m = Mounted::start_with(&p, &[&small], &[]);
    wait_for("the startup sync of both targets", T, || {
        content(&small.join("seed.txt")).is_some() && content(&p.path(S::Tgt, "seed.txt")).is_some()
    });

    // 1.5 MiB does not fit in the small target.
    let big: Vec<u8> = (0..1536 * 1024u32).map(|i| (i % 251) as u8).collect();
    write_file(&p.path(S::Src, "big.bin"), &big);
    p.write(S::Src, "after.txt", "after");
    wait_for("the roomy target keeps up", T, || {
        std::fs::read(p.path(S::Tgt, "big.bin")).is_ok_and(|c| c == big)
            && content(&p.path(S::Tgt, "after.txt")).as_deref() == Some("after")
    });
    wait_for("the full target is reported paused", T, || {
        target_status(&mount_status(&p), &small)["paused"].is_string()
    });
    let st = mount_status(&p);
    assert!(
        target_status(&st, &p.tgt)["paused"].is_null(),
        "the roomy target is not paused: {st}"
    );
    // `tandem status SRC` lists every target of the mount, the paused one as such.
    let out = tandem_with_state_home(&p, &["status", p.src.to_str().unwrap()]);
    assert_eq!(out.code, 1, "a paused target is an issue: {}", out.all());
    assert!(
        out.stdout.contains(small.to_str().unwrap())
            && out.stdout.contains(p.tgt.to_str().unwrap())
            && out.stdout.matches("paused:").count() == 1,
        "{}",
        out.all()
    );
    let out = tandem_with_state_home(&p, &["conflicts", p.src.to_str().unwrap()]);
    assert_eq!(
        out.stdout.matches("no conflicts").count(),
        2,
        "{}",
        out.all()
    );
    // A change made in the roomy target reaches the source and, through the journal, the
    // other target once it has room.
    std::fs::write(p.path(S::Tgt, "from-target.txt"), "t1").unwrap();
    wait_for("the roomy target's change in the source", T, || {
        content(&p.path(S::Src, "from-target.txt")).as_deref() == Some("t1")
    });

    fs.resize("8m");
    let caught_up = || {
        std::fs::read(small.join("big.bin")).is_ok_and(|c| c == big)
            && content(&small.join("after.txt")).as_deref() == Some("after")
            && content(&small.join("from-target.txt")).as_deref() == Some("t1")
    };
    let start = std::time::Instant::now();
    while !caught_up() {
        // Once seen failing under load in CI (stop 5): the mount's log says why.
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the full target did not catch up within 60 s of having room; status {}\nmount log:\n{}",
            mount_status(&p),
            m.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_for("the status shows it resumed", T, || {
        target_status(&mount_status(&p), &small)["paused"].is_null()
    });
    let st = m.stop();
    assert!(st.success(), "{st}");
    p.assert_same();
    assert_eq!(
        tree_of(&small),
        p.tree(S::Src),
        "the small target equals the source"
    );
    drop(fs);
}

#[test]
fn a_target_that_vanishes_pauses_and_gets_its_backlog_when_it_returns() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    // The second target is a bind mount of a folder: unmounting it leaves an empty mount
    // point, as an unplugged disk does.
    let Some(b) = BindMount::new(&p, "usb") else {
        return;
    };
    let (disk, at) = (b.disk.clone(), b.at.clone());
    let bind = |on: bool| if on { b.mount(&[]) } else { b.unmount() };
    p.write(S::Src, "a.txt", "a");
    for i in 0..20 {
        p.write(S::Src, &format!("keep/{i}"), "kept");
    }
    let m = Mounted::start_with(&p, &[&at], &[]);
    wait_for("the startup sync", T, || {
        content(&at.join("a.txt")).is_some()
    });

    assert!(bind(false), "unmount the second target");
    p.write(S::Src, "while-away.txt", "backlog");
    std::fs::remove_file(p.path(S::Src, "a.txt")).unwrap();
    wait_for("the first target keeps up", T, || {
        content(&p.path(S::Tgt, "while-away.txt")).is_some() && !p.exists(S::Tgt, "a.txt")
    });
    wait_for("the vanished target is reported paused", T, || {
        target_status(&mount_status(&p), &at)["paused"].is_string()
    });
    assert!(
        std::fs::read_dir(&at).unwrap().next().is_none(),
        "nothing was written into the empty mount point"
    );
    assert!(
        content(&disk.join("a.txt")).is_some() && disk.join("keep/3").exists(),
        "nothing was deleted from the unplugged disk"
    );

    assert!(bind(true), "mount the second target again");
    wait_for(
        "the returned target gets its backlog",
        Duration::from_secs(60),
        || {
            content(&at.join("while-away.txt")).as_deref() == Some("backlog")
                && !at.join("a.txt").exists()
        },
    );
    let st = m.stop();
    assert!(st.success(), "{st}\n");
    assert_eq!(tree_of(&at), p.tree(S::Src));
}

/// A program changing one side at random: files written in place or saved atomically,
/// deleted, renamed, in a small namespace so both sides keep touching the same paths.
///
/// It keeps an exact account of the versions it destroyed itself (whichever writer wrote
/// them, wherever tandem had moved them): every destructive step hands over what it
/// destroys atomically (in place through the open file; a save, a rename over an existing
/// name or a delete by exchanging or renaming the old file to a private name, read before
/// it is removed). Every other version either writer wrote must still exist somewhere.
/// Guessing from paths instead ("the last version I left at this name") is wrong as soon
/// as the other side renames that version away and someone overwrites it there.
struct RandomWriter {
    root: std::path::PathBuf,
    tag: &'static str,
    rng: u64,
    n: usize,
    /// Every version this writer saw land on disk.
    written: std::collections::BTreeSet<String>,
    /// Versions (of either writer) this writer overwrote or deleted itself.
    destroyed: std::collections::BTreeSet<String>,
}

impl RandomWriter {
    fn new(root: &Path, tag: &'static str, seed: u64) -> RandomWriter {
        RandomWriter {
            root: root.to_path_buf(),
            tag,
            rng: seed | 1,
            n: 0,
            written: std::collections::BTreeSet::new(),
            destroyed: std::collections::BTreeSet::new(),
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*: reproducible from the seed printed on failure.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn name(&mut self) -> String {
        let dir = ["", "d1/", "d2/"][(self.next() % 3) as usize];
        let file = ["a", "b", "c", "d"][(self.next() % 4) as usize];
        format!("{dir}{file}")
    }

    /// Notes what a file about to be removed holds (read from the file itself, under a
    /// name only this writer uses), then removes it.
    fn discard(&mut self, private: &Path) {
        if let Ok(old) = std::fs::read(private) {
            if !old.is_empty() {
                self.destroyed
                    .insert(String::from_utf8_lossy(&old).into_owned());
            }
        }
        let _ = std::fs::remove_file(private);
    }

    /// Moves `from` to `to`; what stood at `to` comes out under `from` (an exchange) and is
    /// discarded. False when nothing moved.
    fn rename_over(&mut self, from: &Path, to: &Path, private: &Path) -> bool {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        match renameat_with(CWD, from, CWD, to, RenameFlags::EXCHANGE) {
            Ok(()) => {
                // `from` is a shared name again only for an instant: take what came out
                // to a private name before reading it.
                if std::fs::rename(from, private).is_ok() {
                    self.discard(private);
                }
                true
            }
            Err(rustix::io::Errno::NOENT) => {
                renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE).is_ok()
            }
            Err(_) => false,
        }
    }

    /// One operation; failures (a path gone meanwhile, the mount gone) change nothing.
    fn step(&mut self) {
        self.n += 1;
        let rel = self.name();
        let path = self.root.join(&rel);
        let version = format!("{}-{}", self.tag, self.n);
        let private = path.with_file_name(format!(".gone-{version}"));
        let _ = std::fs::create_dir_all(path.parent().unwrap());
        match self.next() % 10 {
            0..=3 => {
                // In place: what the file held is read through the very handle that
                // overwrites it.
                use std::io::{Read, Seek};
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .or_else(|_| {
                        std::fs::OpenOptions::new()
                            .read(true)
                            .write(true)
                            .create_new(true)
                            .open(&path)
                    });
                let Ok(mut f) = file else { return };
                let mut old = Vec::new();
                if f.read_to_end(&mut old).is_err() {
                    return;
                }
                if !old.is_empty() {
                    self.destroyed
                        .insert(String::from_utf8_lossy(&old).into_owned());
                }
                let ok = f
                    .set_len(0)
                    .and_then(|_| f.rewind())
                    .and_then(|_| f.write_all(version.as_bytes()));
                if ok.is_ok() {
                    self.written.insert(version);
                }
            }
            4..=5 => {
                // Atomic save, as editors do.
                let tmp = path.with_file_name(format!(".save-{version}"));
                if std::fs::write(&tmp, &version).is_err() {
                    return;
                }
                // On disk, so tandem may have seen it already.
                self.written.insert(version);
                if !self.rename_over(&tmp, &path, &private) {
                    self.discard(&tmp);
                }
            }
            6..=7 => {
                if std::fs::rename(&path, &private).is_ok() {
                    self.discard(&private);
                }
            }
            _ => {
                let to_rel = self.name();
                if to_rel != rel {
                    let to = self.root.join(&to_rel);
                    let _ = std::fs::create_dir_all(to.parent().unwrap());
                    self.rename_over(&path, &to, &private);
                }
            }
        }
    }
}

/// Every file content found in either tree or either trash.
fn every_version(p: &Pair) -> std::collections::BTreeSet<String> {
    let mut all = std::collections::BTreeSet::new();
    for s in [S::Src, S::Tgt] {
        for n in p.tree(s).values() {
            if let Node::File(c, _) = n {
                all.insert(String::from_utf8_lossy(c).into_owned());
            }
        }
        all.extend(p.trash_contents(s));
    }
    all
}

/// Both sides changed at random at once for a while, with the mount killed -9 part way when
/// `crash` says so; after both writers stop and tandem settles, the trees are equal and every
/// version either writer wrote and neither destroyed itself is kept (in a tree, as a conflict
/// copy, or in a trash).
fn random_two_sided(seed: u64, crash: bool) {
    let p = Pair::new();
    p.write(S::Src, "a", "initial");
    let mut m = Some(Mounted::start(&p));
    wait_for("the startup sync", T, || p.exists(S::Tgt, "a"));
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (src_w, tgt_w) = std::thread::scope(|s| {
        let run = |mut w: RandomWriter| {
            let stop = &stop;
            move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    w.step();
                    std::thread::sleep(Duration::from_millis(w.next() % 4));
                }
                w
            }
        };
        let a = s.spawn(run(RandomWriter::new(&p.src, "S", seed)));
        let b = s.spawn(run(RandomWriter::new(&p.tgt, "T", seed ^ 0x9e37_79b9)));
        std::thread::sleep(Duration::from_millis(1500));
        if crash {
            m.as_mut().unwrap().kill9();
        }
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if crash {
            // The writer through the dead mount sees errors from the kill on (or waits in
            // a request the dead process never answered, until the restart aborts it):
            // what it saw succeed is on disk. The startup reconcile catches up.
            m = m.take().map(Mounted::restart);
        }
        (a.join().unwrap(), b.join().unwrap())
    });
    let m = m.unwrap();
    // Walking a tree tandem is still changing can meet a name that just went away: that
    // walk does not count.
    let equal = || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            p.tree(S::Src) == p.tree(S::Tgt)
        }))
        .unwrap_or(false)
    };
    let settle = std::time::Instant::now();
    while !equal() && settle.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = m.log();
    assert!(m.stop().success(), "{log}");
    let ctx = format!(
        "seed {seed:#x}, crash {crash}, {} + {} operations\n{log}",
        src_w.n, tgt_w.n
    );
    if p.tree(S::Src) != p.tree(S::Tgt) {
        // Settled with the mount stopped: a one-shot sync must find nothing to do but
        // what is listed.
        panic!(
            "trees differ after settling ({ctx}):\n{}",
            p.sync(&["--dry-run"]).all()
        );
    }
    let all = every_version(&p);
    for w in [&src_w, &tgt_w] {
        for v in &w.written {
            let destroyed_by = [&src_w, &tgt_w]
                .into_iter()
                .find(|d| d.destroyed.contains(v));
            assert!(
                all.contains(v) || destroyed_by.is_some(),
                "{v} (written by {}) is lost: neither writer destroyed it ({ctx})",
                w.tag
            );
        }
    }
}

fn seed() -> u64 {
    std::env::var("TANDEM_TEST_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

/// How many seeds each randomized mount test runs: `TANDEM_SOAK_MOUNT_CASES`, else 1 (a case
/// mounts, writes on both sides for two seconds and settles). Case `i` uses `seed() + i`.
fn mount_cases() -> u64 {
    std::env::var("TANDEM_SOAK_MOUNT_CASES")
        .ok()
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("TANDEM_SOAK_MOUNT_CASES={v:?} is not a number"))
        })
        .unwrap_or(1)
}

#[test]
fn random_changes_on_both_sides_at_once_converge_without_losing_a_version() {
    if !fuse_available() {
        return;
    }
    let seed = seed();
    for i in 0..mount_cases() {
        random_two_sided(seed.wrapping_add(i), false);
    }
}

#[test]
fn kill_9_during_two_sided_activity_then_restart_converges_without_loss() {
    if !fuse_available() {
        return;
    }
    let seed = seed();
    for i in 0..mount_cases() {
        random_two_sided(seed.wrapping_add(i), true);
    }
}

#[test]
fn a_mount_that_would_loop_is_refused() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    let m = Mounted::start(&p);
    let other = p.tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let tgt = p.tgt.to_str().unwrap();
    let src = p.src.to_str().unwrap();
    let o = other.to_str().unwrap();
    // The target of the running mount as a new mount's source, and its source as a new
    // mount's target.
    for args in [
        ["mount", tgt, o, "--foreground"],
        ["mount", o, src, "--foreground"],
    ] {
        let out = tandem_with_state_home(&p, &args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.all());
        assert!(out.stderr.contains("loop"), "{args:?}: {}", out.all());
    }
    assert!(m.stop().success());
}

#[test]
fn the_periodic_rescan_finds_a_target_change_the_watcher_cannot_see() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    p.write(S::Src, "f.txt", "one");
    let m = Mounted::start_with(&p, &[], &["--rescan-every", "2"]);
    wait_for("the startup sync", T, || p.exists(S::Tgt, "f.txt"));
    // Written through a hard link outside the target: inotify reports changes under the
    // directory the file was reached through, so the target's watcher sees nothing.
    let outside = p.tmp.path().join("outside.txt");
    std::fs::hard_link(p.path(S::Tgt, "f.txt"), &outside).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&outside)
        .unwrap()
        .write_all(b"changed unseen")
        .unwrap();
    wait_for("the rescan brings the change into the source", T, || {
        content(&p.path(S::Src, "f.txt")).as_deref() == Some("changed unseen")
    });
    assert!(m.stop().success());
}

#[test]
fn concurrent_edits_while_mounted_under_the_winner_policies_lose_no_version() {
    if !fuse_available() {
        return;
    }
    // "newest" compares the two files' modification times, which a writer holding the
    // source file open does not set in an order this test controls: only "no version
    // lost" is asserted for it.
    for (policy, winner) in [
        ("source", Some("source version")),
        ("target", Some("target version")),
        ("newest", None),
    ] {
        let (p, log) = concurrent_edit(policy);
        p.assert_same();
        if let Some(w) = winner {
            assert_eq!(p.read(S::Src, "doc.txt"), w, "{policy}\n{log}");
        }
        let all = every_version(&p);
        for v in ["source version", "target version"] {
            assert!(all.contains(v), "{policy}: {v} lost\n{log}");
        }
    }
}

#[test]
fn a_target_turned_read_only_pauses_and_catches_up_when_writable_again() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    // The target is a bind mount of a folder, so it can be remounted read-only.
    let Some(b) = BindMount::new(&p, "ro") else {
        return;
    };
    let at = b.at.clone();
    p.write(S::Src, "a.txt", "a");
    let m = Mounted::start_with(&p, &[&at], &[]);
    wait_for("the startup sync", T, || {
        content(&at.join("a.txt")).is_some()
    });

    assert!(b.mount(&["-o", "remount,bind,ro"]), "remount read-only");
    p.write(S::Src, "while-ro.txt", "backlog");
    wait_for("the writable target keeps up", T, || {
        content(&p.path(S::Tgt, "while-ro.txt")).is_some()
    });
    wait_for("the read-only target is reported paused", T, || {
        target_status(&mount_status(&p), &at)["paused"].is_string()
    });
    assert!(b.mount(&["-o", "remount,bind,rw"]), "remount read-write");
    wait_for("the target catches up", Duration::from_secs(60), || {
        content(&at.join("while-ro.txt")).as_deref() == Some("backlog")
    });
    let st = m.stop();
    assert!(st.success(), "{st}");
    assert_eq!(tree_of(&at), p.tree(S::Src));
}

/// The target `tgt` in `tandem status SRC --json` (every target of the mount).
fn status_of(p: &Pair, tgt: &Path) -> serde_json::Value {
    let out = tandem_with_state_home(p, &["status", p.src.to_str().unwrap(), "--json"]);
    let all: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json: {e}\n{}", out.all()));
    all["targets"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|t| t["target"].as_str() == Some(tgt.to_str().unwrap()))
        })
        .cloned()
        .unwrap_or_else(|| panic!("{} not in the status: {}", tgt.display(), out.all()))
}

#[test]
fn issue_20_a_file_only_in_a_later_target_reaches_the_earlier_targets() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    let c = p.tmp.path().join("c");
    std::fs::create_dir(&c).unwrap();
    p.write(S::Src, "a.txt", "from the source");
    p.write(S::Tgt, "b.txt", "from the first target");
    write_file(&c.join("c.txt"), b"from the last target");
    write_file(&c.join("sub/deep.txt"), b"deep in the last target");
    let m = Mounted::start_with(&p, &[&c], &[]);
    let everywhere = |rel: &str| {
        [p.src.as_path(), p.tgt.as_path(), c.as_path()]
            .iter()
            .all(|root| root.join(rel).exists())
    };
    wait_for(
        "every file in every target",
        Duration::from_secs(30),
        || {
            ["a.txt", "b.txt", "c.txt", "sub/deep.txt"]
                .iter()
                .all(|r| everywhere(r))
        },
    );
    // Once there, nothing is left pending for any target.
    wait_for("a status with nothing pending", T, || {
        [p.tgt.as_path(), c.as_path()].iter().all(|t| {
            let st = status_of(&p, t);
            st["journal_backlog"] == 0 && st["mounted"]["pending_paths"] == 0
        })
    });
    let st = m.stop();
    assert!(st.success(), "{st}");
    p.assert_same();
    assert_eq!(
        tree_of(&c),
        p.tree(S::Src),
        "the last target equals the source"
    );
}

#[test]
fn issue_20_status_counts_a_startup_merge_as_pending_until_it_reaches_a_target() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    // The middle target is read-only: what the last one brings in cannot reach it yet.
    let Some(b) = BindMount::new(&p, "ro") else {
        return;
    };
    let ro = b.at.clone();
    assert!(b.mount(&["-o", "remount,bind,ro"]), "remount read-only");
    let c = p.tmp.path().join("c");
    std::fs::create_dir(&c).unwrap();
    write_file(&c.join("c.txt"), b"from the last target");
    let m = Mounted::start_with(&p, &[&ro, &c], &[]);
    wait_for("the file in the writable targets", T, || {
        content(&p.path(S::Tgt, "c.txt")).is_some() && content(&p.path(S::Src, "c.txt")).is_some()
    });
    wait_for(
        "the read-only target paused, its backlog counted",
        T,
        || {
            let st = status_of(&p, &ro);
            st["mounted"]["paused"].is_string() && st["journal_backlog"].as_i64() >= Some(1)
        },
    );
    assert!(!ro.join("c.txt").exists());

    assert!(b.mount(&["-o", "remount,bind,rw"]), "remount read-write");
    wait_for("the target catches up", Duration::from_secs(60), || {
        content(&ro.join("c.txt")).as_deref() == Some("from the last target")
    });
    wait_for("nothing pending any more", T, || {
        let st = status_of(&p, &ro);
        st["journal_backlog"] == 0 && st["mounted"]["paused"].is_null()
    });
    let st = m.stop();
    assert!(st.success(), "{st}");
    assert_eq!(tree_of(&ro), p.tree(S::Src));
    assert_eq!(tree_of(&c), p.tree(S::Src));
}

/// A folder (`disk`) bind-mounted at `at`, as a removable or remountable target; unmounted
/// when dropped.
struct BindMount {
    disk: std::path::PathBuf,
    at: std::path::PathBuf,
}

impl BindMount {
    /// `None` (with a loud message) where bind mounts cannot be made; a failure with CI=true.
    fn new(p: &Pair, name: &str) -> Option<BindMount> {
        let b = BindMount {
            disk: p.tmp.path().join(format!("{name}-disk")),
            at: p.tmp.path().join(name),
        };
        std::fs::create_dir(&b.disk).unwrap();
        std::fs::create_dir(&b.at).unwrap();
        if b.mount(&[]) {
            return Some(b);
        }
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true, but a bind mount cannot be made"
        );
        eprintln!("SKIPPED: cannot make a bind mount");
        None
    }

    /// `mount --bind DISK AT`, or with `args` (a remount) `mount ARGS AT`.
    fn mount(&self, args: &[&str]) -> bool {
        let mut cmd = std::process::Command::new("mount");
        if args.is_empty() {
            cmd.arg("--bind").arg(&self.disk);
        } else {
            cmd.args(args);
        }
        cmd.arg(&self.at).status().is_ok_and(|s| s.success())
    }

    fn unmount(&self) -> bool {
        std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.at)
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = self.unmount();
    }
}

/// `notify` drops a renamed folder's watches and adds them again under the new name (and
/// adds a new folder's watch only after reporting its creation); a file a program writes
/// there in between has no event at all. Such folders are read again once the watcher has
/// caught up, so these files come into the source long before the periodic rescan (600 s
/// here).
#[test]
fn files_written_right_after_their_folder_was_renamed_or_made_in_the_target_are_merged() {
    if !fuse_available() {
        return;
    }
    let p = Pair::new();
    const ROUNDS: usize = 12;
    const FILES: usize = 40;
    for i in 0..ROUNDS {
        p.write(S::Src, &format!("d{i}/sub/x"), "x");
    }
    let m = Mounted::start(&p);
    wait_for("the startup sync", T, || {
        (0..ROUNDS).all(|i| p.exists(S::Tgt, &format!("d{i}/sub/x")))
    });
    let mut written = Vec::new();
    for i in 0..ROUNDS {
        let tgt = |rel: &str| p.path(S::Tgt, rel);
        std::fs::rename(tgt(&format!("d{i}")), tgt(&format!("e{i}"))).unwrap();
        std::fs::create_dir_all(tgt(&format!("f{i}/sub"))).unwrap();
        // Files written on, a little apart, while the watcher takes the rename and the
        // new folder in.
        for j in 0..FILES {
            for dir in [format!("e{i}"), format!("e{i}/sub"), format!("f{i}/sub")] {
                let rel = format!("{dir}/new{j}");
                std::fs::write(tgt(&rel), &rel).unwrap();
                written.push(rel);
            }
            std::thread::sleep(Duration::from_micros(300));
        }
        std::thread::sleep(Duration::from_millis(20 * (i as u64 % 4)));
    }
    let missing = || -> Vec<&String> {
        written
            .iter()
            .filter(|rel| content(&p.path(S::Src, rel)).as_ref() != Some(*rel))
            .collect()
    };
    let limit = std::time::Instant::now() + T;
    while !missing().is_empty() && std::time::Instant::now() < limit {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = missing();
    assert!(
        left.is_empty(),
        "{} of {} files written in the target never reached the source: {:?}",
        left.len(),
        written.len(),
        &left[..left.len().min(10)]
    );

    // A change with no event, made just after the rename was merged (inotify reports a
    // write under the folder the file was reached through: here one outside the target),
    // stands for a write the watcher missed. Only the second read of the renamed folder
    // finds it (the periodic rescan is 600 s away).
    let outside = p.tmp.path().join("outside");
    std::fs::hard_link(p.path(S::Tgt, "e0/sub/x"), &outside).unwrap();
    std::fs::rename(p.path(S::Tgt, "e0"), p.path(S::Tgt, "g0")).unwrap();
    wait_for("the rename, in the source", T, || {
        p.exists(S::Src, "g0/sub/x")
    });
    std::fs::write(&outside, "unseen").unwrap();
    wait_for("a change the watcher missed in a renamed folder", T, || {
        content(&p.path(S::Src, "g0/sub/x")).as_deref() == Some("unseen")
    });
    assert!(m.stop().success());
    p.assert_same();
}
