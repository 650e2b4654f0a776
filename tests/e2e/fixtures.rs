//! Shared fixtures: a `Pair` of temporary roots with its own state directory, helpers to
//! write and inspect both sides, and a runner for the real binary.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The tandem binary under test: `TANDEM_TEST_BIN` when set (`.ci/run` copies the
/// binaries where an ordinary user can run them, for its second pass as `nobody`), else
/// cargo's.
pub fn bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("TANDEM_TEST_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_tandem").to_string())
    })
}

/// The FUSE transport the mount tests ask for, from `TANDEM_TRANSPORT` (`dev` or
/// `uring`): one run of them over FUSE over io_uring is
/// `TANDEM_TRANSPORT=uring cargo test -p tandem-cli --test e2e mount::`. Unset: the
/// mount's default.
pub fn transport_args() -> Vec<&'static str> {
    match std::env::var("TANDEM_TRANSPORT").as_deref() {
        Ok("uring") => vec!["--transport", "uring"],
        Ok("dev") => vec!["--transport", "dev"],
        Ok(other) => panic!("TANDEM_TRANSPORT={other}: dev or uring"),
        Err(_) => Vec::new(),
    }
}

/// The binary at a path every user can run: the checkout may sit in a folder closed to
/// others (a home directory of mode 0700), so a copy in a temporary folder open to all,
/// made once per test process.
pub fn bin_for_anyone() -> &'static str {
    static COPY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        use std::hash::{Hash, Hasher};
        // Named after the build, so that test processes share one copy per binary.
        let meta = std::fs::metadata(bin()).unwrap();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (bin(), meta.len(), meta.modified().ok()).hash(&mut h);
        let dir = std::env::temp_dir().join(format!("tandem-test-bin-{:016x}", h.finish()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let to = dir.join("tandem");
        let tmp = dir.join("tandem.tmp");
        std::fs::copy(bin(), &tmp).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::rename(&tmp, &to).unwrap();
        to.to_string_lossy().into_owned()
    })
}

#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// The message a refusal or a warning must carry, with the whole of stderr on failure.
    #[track_caller]
    pub fn assert_stderr_has(&self, needle: &str) {
        assert!(
            self.stderr.contains(needle),
            "{needle:?} not in: {}",
            self.stderr
        );
    }
}

pub fn run_tandem<I, S>(args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_tandem_with_env(args, &[])
}

/// `run_tandem` with more environment variables.
pub fn run_tandem_with_env<I, S>(args: I, env: &[(&str, &Path)]) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::new(bin())
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .output()
        .expect("run tandem");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum S {
    Src,
    Tgt,
}

/// What a path holds, for comparing trees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    File(Vec<u8>, u32),
    Dir(u32),
    Link(Vec<u8>),
    Other,
}

pub struct Pair {
    pub tmp: tempfile::TempDir,
    pub src: PathBuf,
    pub tgt: PathBuf,
    pub state: PathBuf,
    /// The target reached over ssh (`remote::over_ssh`): the same folder, named
    /// `ssh://...` to tandem, so that a local pair's test runs against a remote target.
    pub remote: Option<Remote>,
}

/// How a pair's target is reached over ssh, and the sshd that serves it (kept running as
/// long as the pair).
pub struct Remote {
    pub url: String,
    pub ssh: String,
    pub _server: std::sync::Mutex<Box<dyn std::any::Any + Send>>,
}

impl Pair {
    pub fn new() -> Pair {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let tgt = tmp.path().join("tgt");
        std::fs::create_dir(&src).unwrap();
        std::fs::create_dir(&tgt).unwrap();
        let state = tmp.path().join("state");
        Pair {
            tmp,
            src,
            tgt,
            state,
            remote: None,
        }
    }

    pub fn root(&self, s: S) -> &Path {
        match s {
            S::Src => &self.src,
            S::Tgt => &self.tgt,
        }
    }

    pub fn path(&self, s: S, rel: &str) -> PathBuf {
        self.root(s).join(rel)
    }

    /// `tandem sync SRC TGT --state-dir STATE ARGS...`
    pub fn sync(&self, args: &[&str]) -> Out {
        self.cmd("sync", args)
    }

    /// Syncs and insists on exit code `code`.
    pub fn sync_ok(&self, args: &[&str], code: i32) -> Out {
        let out = self.sync(args);
        assert_eq!(out.code, code, "tandem sync {args:?}:\n{}", out.all());
        out
    }

    /// `tandem CMD SRC TGT --state-dir STATE ARGS...`; TGT is `ssh://...` for a remote
    /// target, with `--ssh` and `--remote-tandem` where CMD connects.
    pub fn cmd(&self, cmd: &str, args: &[&str]) -> Out {
        let tgt = match &self.remote {
            Some(r) => OsStr::new(&r.url),
            None => self.tgt.as_os_str(),
        };
        let mut v: Vec<&OsStr> = vec![OsStr::new(cmd), self.src.as_os_str(), tgt];
        v.push(OsStr::new("--state-dir"));
        v.push(self.state.as_os_str());
        if let Some(r) = self
            .remote
            .as_ref()
            .filter(|_| cmd == "sync" || cmd == "resolve")
        {
            v.extend([OsStr::new("--ssh"), OsStr::new(&r.ssh)]);
            v.extend([OsStr::new("--remote-tandem"), OsStr::new(bin())]);
        }
        v.extend(args.iter().map(OsStr::new));
        run_tandem(v)
    }

    pub fn write(&self, s: S, rel: &str, content: &str) {
        write_file(&self.path(s, rel), content.as_bytes());
    }

    pub fn read(&self, s: S, rel: &str) -> String {
        String::from_utf8(
            std::fs::read(self.path(s, rel)).unwrap_or_else(|e| panic!("read {rel} on {s:?}: {e}")),
        )
        .unwrap()
    }

    pub fn exists(&self, s: S, rel: &str) -> bool {
        std::fs::symlink_metadata(self.path(s, rel)).is_ok()
    }

    pub fn ino(&self, s: S, rel: &str) -> u64 {
        std::fs::symlink_metadata(self.path(s, rel)).unwrap().ino()
    }

    pub fn tree(&self, s: S) -> BTreeMap<Vec<u8>, Node> {
        tree_of(self.root(s))
    }

    /// Both trees hold the same paths, kinds, contents, link targets and permissions.
    pub fn assert_same(&self) {
        let a = self.tree(S::Src);
        let b = self.tree(S::Tgt);
        if a != b {
            panic!(
                "trees differ:\nsource: {:#?}\ntarget: {:#?}",
                printable(&a),
                printable(&b)
            );
        }
    }

    /// Every file below `.tandem/trash` on side `s`, as contents.
    pub fn trash_contents(&self, s: S) -> Vec<String> {
        let t = self.root(s).join(".tandem/trash");
        let mut out = Vec::new();
        if t.exists() {
            for (_, n) in tree_of(&t) {
                if let Node::File(c, _) = n {
                    out.push(String::from_utf8_lossy(&c).into_owned());
                }
            }
        }
        out.sort();
        out
    }

    /// Names (relative paths) on side `s` that contain `needle`.
    pub fn names_with(&self, s: S, needle: &str) -> Vec<String> {
        self.tree(s)
            .keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .filter(|k| k.contains(needle))
            .collect()
    }
}

pub fn write_file(p: &Path, content: &[u8]) {
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(p, content).unwrap();
}

pub fn tree_of(root: &Path) -> BTreeMap<Vec<u8>, Node> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// An entry below `root` that went between its listing and its reading (a temporary file
/// renamed, in a tree a test polls while tandem works in it) is left out, as if listed a
/// moment later. Any other error, or `root` missing, fails the test.
fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<Vec<u8>, Node>) {
    // The root itself must be there.
    let listed = std::fs::read_dir(dir);
    let Some(listed) = (if dir == root {
        Some(listed.unwrap())
    } else {
        unless_gone(listed)
    }) else {
        return;
    };
    let mut entries: Vec<_> = listed.map(|e| e.unwrap()).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let rel = p
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        if rel == b".tandem" {
            continue;
        }
        let Some(m) = unless_gone(std::fs::symlink_metadata(&p)) else {
            continue;
        };
        let mode = m.permissions().mode() & 0o7777;
        let node = if m.file_type().is_symlink() {
            let Some(to) = unless_gone(std::fs::read_link(&p)) else {
                continue;
            };
            Node::Link(to.as_os_str().as_bytes().to_vec())
        } else if m.is_dir() {
            walk(root, &p, out);
            Node::Dir(mode)
        } else if m.is_file() {
            let Some(content) = unless_gone(std::fs::read(&p)) else {
                continue;
            };
            Node::File(content, mode)
        } else {
            Node::Other
        };
        out.insert(rel, node);
    }
}

/// `None` for an entry that is not there (any more); other errors panic.
fn unless_gone<T>(r: std::io::Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("{e}"),
    }
}

fn printable(t: &BTreeMap<Vec<u8>, Node>) -> Vec<String> {
    t.iter()
        .map(|(k, v)| {
            let v = match v {
                Node::File(c, m) => format!("file {:o} {:?}", m, String::from_utf8_lossy(c)),
                Node::Dir(m) => format!("dir {m:o}"),
                Node::Link(t) => format!("link -> {}", String::from_utf8_lossy(t)),
                Node::Other => "other".into(),
            };
            format!("{}: {v}", String::from_utf8_lossy(k))
        })
        .collect()
}

/// Sets a file's mtime (seconds and nanoseconds since the epoch), without following links.
pub fn set_mtime(p: &Path, secs: i64, nanos: u32) {
    let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
    let t = std::time::UNIX_EPOCH + std::time::Duration::new(secs as u64, nanos);
    f.set_modified(t).unwrap();
}

pub fn mtime_ns(p: &Path) -> i64 {
    let m = std::fs::symlink_metadata(p).unwrap();
    m.mtime() * 1_000_000_000 + m.mtime_nsec()
}

/// A tmpfs mounted at a path, unmounted when dropped.
pub struct Tmpfs {
    pub at: PathBuf,
}

impl Tmpfs {
    pub fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(Tmpfs {
            at: at.to_path_buf(),
        })
    }

    /// A tmpfs at `at`, or `None` with a loud message where none can be mounted (a failure
    /// under CI=true).
    pub fn mount_or_skip(at: &Path, size: &str, test: &str) -> Option<Tmpfs> {
        match Tmpfs::mount(at, size) {
            Ok(fs) => Some(fs),
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("CI=true, but a tmpfs cannot be mounted for {test}: {e}")
            }
            Err(e) => {
                eprintln!("SKIPPED {test}: cannot mount a tmpfs ({e}); set CI=true to make this a failure");
                None
            }
        }
    }

    pub fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.at)
            .status()
            .unwrap();
        assert!(
            st.success(),
            "remount {} with size {size}",
            self.at.display()
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        unmount_or_detach(&self.at);
    }
}

/// `umount`, or `umount -l` when the mount is busy: test guards never leave a mount behind.
pub fn unmount_or_detach(at: &Path) {
    let ok = Command::new("umount")
        .arg(at)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let _ = Command::new("umount").arg("-l").arg(at).status();
    }
}
