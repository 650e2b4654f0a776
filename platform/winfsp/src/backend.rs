//! `WinFspBackend`: this crate behind the `tandem_core::MountBackend` seam. WinFsp's DLL
//! is delay-loaded (vendor/README.md): `check` loads it, from the folder WinFsp's
//! installer recorded in the registry, and says so when it cannot.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tandem_core::change::{ChangeSink, Mount, MountBackend, MountConfig, MountSetupError, Mounted};
use tandem_core::path::RelPath;
use windows_sys::Win32::System::LibraryLoader::LoadLibraryW;
use windows_sys::Win32::System::Registry::{RegGetValueW, HKEY_LOCAL_MACHINE, RRF_RT_REG_SZ};
use winfsp::host::{FileSystemHost, VolumeParams};

use crate::fs::{OpenFiles, PassthroughFs};
use crate::names::MountAt;

/// Said when WinFsp cannot be loaded: what a machine without it (or Wine) sees.
const NOT_INSTALLED: &str = "tandem mount needs WinFsp on Windows, and it is not installed \
     (winfsp-x64.dll could not be loaded): install it from https://winfsp.dev/rel/ and try \
     again (`tandem sync` works without it)";

/// The WinFsp backend (Windows): serves the source at a drive letter or an empty folder.
#[derive(Clone, Copy, Debug, Default)]
pub struct WinFspBackend;

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(Some(0)).collect()
}

/// WinFsp's install folder, as its installer records it (32-bit registry view).
fn install_dir() -> Option<String> {
    let mut buf = [0u16; 520];
    let mut size = (buf.len() * 2) as u32;
    let key = wide("SOFTWARE\\WOW6432Node\\WinFsp");
    let value = wide("InstallDir");
    // SAFETY: `buf` holds `size` bytes; the strings are NUL-terminated.
    let status = unsafe {
        RegGetValueW(
            HKEY_LOCAL_MACHINE,
            key.as_ptr(),
            value.as_ptr(),
            RRF_RT_REG_SZ,
            std::ptr::null_mut(),
            buf.as_mut_ptr().cast(),
            &mut size,
        )
    };
    if status != 0 {
        return None;
    }
    let len = (size as usize / 2).saturating_sub(1);
    Some(String::from_utf16_lossy(&buf[..len]))
}

/// Loads WinFsp's DLL: from its install folder first (WinFsp does not put itself on
/// PATH), then wherever Windows finds it. The delay-load of every later call then finds
/// the module already loaded.
fn load_winfsp() -> Result<winfsp::FspInit, &'static str> {
    if let Some(dir) = install_dir() {
        let dll = wide(&format!(
            "{}\\bin\\winfsp-x64.dll",
            dir.trim_end_matches('\\')
        ));
        // SAFETY: a NUL-terminated path; the module stays loaded for the process.
        if unsafe { LoadLibraryW(dll.as_ptr()) }.is_null() {
            tracing::debug!("WinFsp's folder {dir} has no loadable winfsp-x64.dll");
        }
    }
    winfsp::winfsp_init().map_err(|_| NOT_INSTALLED)
}

fn to_io<E: std::fmt::Debug>(what: &str) -> impl Fn(E) -> io::Error + '_ {
    move |e| io::Error::other(format!("{what}: WinFsp said {e:?}"))
}

fn volume_params() -> VolumeParams {
    let mut p = VolumeParams::new();
    p.filesystem_name("tandem")
        .sector_size(4096)
        .sectors_per_allocation_unit(1)
        .max_component_length(255)
        .case_sensitive_search(false)
        .case_preserved_names(true)
        .unicode_on_disk(true)
        .persistent_acls(true)
        // Nothing cached in the kernel: a reverse merge changes the source underneath
        // the mount, so every request reads the source afresh (`Mount::invalidate`).
        .file_info_timeout(0)
        .dir_info_timeout(0)
        // Writes reach the source before cleanup, whose CloseWrite says the content is
        // settled.
        .flush_and_purge_on_cleanup(true);
    p
}

impl MountBackend for WinFspBackend {
    fn check(&self, _allow_other: bool) -> Result<(), MountSetupError> {
        load_winfsp().map(|_| ()).map_err(Into::into)
    }

    fn mount(
        &self,
        src: tandem_core::change::SourceDir,
        mountpoint: &Path,
        sink: Arc<dyn ChangeSink>,
        config: &MountConfig,
    ) -> io::Result<Box<dyn Mounted>> {
        load_winfsp().map_err(|why| io::Error::new(io::ErrorKind::Unsupported, why))?;
        let open = Arc::new(OpenFiles::default());
        let fs = PassthroughFs::new(src, sink, open.clone(), config.history_max_file);
        let mut host: FileSystemHost<PassthroughFs> =
            FileSystemHost::new(volume_params(), fs).map_err(to_io("creating the file system"))?;
        let at = MountAt::of(&mountpoint.to_string_lossy());
        let emptied = match &at {
            MountAt::Folder(f) => make_room(Path::new(f))?,
            MountAt::Drive(_) => None,
        };
        let name = at.winfsp_name();
        if let Err(e) = host.mount(name.as_str()) {
            if let Some(folder) = &emptied {
                // Put back as it was.
                let _ = std::fs::create_dir(folder);
            }
            return Err(to_io(&format!("mounting at {name}"))(e));
        }
        let threads = u32::try_from(config.threads).unwrap_or(0);
        host.start_with_threads(threads)
            .map_err(to_io("starting"))?;
        let invalidator = Arc::new(Names(open));
        Ok(Box::new(WinFspMount {
            host: Mutex::new(Some(host)),
            names: invalidator,
            emptied,
        }))
    }

    /// A WinFsp mount ends with the process serving it: none outlives it to detach.
    fn detach(&self, _mountpoint: &Path) -> io::Result<()> {
        Ok(())
    }

    fn privileged(&self) -> bool {
        false
    }

    fn mounts_over_source(&self) -> bool {
        false
    }
}

/// WinFsp mounts on a folder that does not exist (it makes the mount point itself): an
/// empty folder given with `--at` is removed, and made again at unmount (returned).
fn make_room(folder: &Path) -> io::Result<Option<PathBuf>> {
    match std::fs::read_dir(folder) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::DirectoryNotEmpty,
                    format!(
                        "{} is not empty: mount at an empty folder",
                        folder.display()
                    ),
                ));
            }
            std::fs::remove_dir(folder)?;
            Ok(Some(folder.to_path_buf()))
        }
    }
}

/// The engine's handle on a running mount: nothing is cached in the kernel (timeouts 0),
/// so invalidating is nothing; a rename underneath moves open files' paths.
struct Names(Arc<OpenFiles>);

impl Mount for Names {
    fn invalidate(&self, _paths: &[RelPath]) {}

    fn renamed(&self, from: &RelPath, to: &RelPath) {
        self.0.renamed(from, to);
    }
}

struct WinFspMount {
    host: Mutex<Option<FileSystemHost<PassthroughFs>>>,
    names: Arc<Names>,
    /// The empty folder the mount point replaced, made again at unmount.
    emptied: Option<PathBuf>,
}

impl WinFspMount {
    fn stop(&self) {
        let host = self
            .host
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(mut host) = host {
            host.stop();
            host.unmount();
            if let Some(folder) = &self.emptied {
                if let Err(e) = std::fs::create_dir(folder) {
                    tracing::warn!("making the folder {} again: {e}", folder.display());
                }
            }
        }
    }
}

impl Drop for WinFspMount {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Mount for WinFspMount {
    fn invalidate(&self, paths: &[RelPath]) {
        self.names.invalidate(paths);
    }

    fn renamed(&self, from: &RelPath, to: &RelPath) {
        self.names.renamed(from, to);
    }
}

impl Mounted for WinFspMount {
    fn unmount(self: Box<Self>) -> io::Result<()> {
        self.stop();
        Ok(())
    }

    fn invalidator(&self) -> Arc<dyn Mount> {
        self.names.clone()
    }

    fn passthrough_active(&self) -> bool {
        false
    }
}
