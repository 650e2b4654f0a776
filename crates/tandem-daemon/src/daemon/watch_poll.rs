//! What the daemon waits on besides its children and the clock, where inotify and the
//! mount table's poll do not exist (macOS): the config file and the `on-appear` paths,
//! looked at every [`PERIOD`]. Same interface as the Linux `watch.rs`; it only says that
//! something may have changed, and the daemon looks at the paths itself. Built and
//! type-checked, not yet tested on the platform (issue 16).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crossbeam_channel::Sender;

use super::Event;

/// How often the config file and the `on-appear` paths are looked at.
const PERIOD: Duration = Duration::from_secs(2);

/// The daemon's handle on the watching thread.
pub(super) struct Watch {
    paths: Arc<Mutex<Vec<PathBuf>>>,
}

/// What a path looks like, as far as noticing a change goes.
fn look(p: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn identity(p: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

impl Watch {
    /// Starts watching `config` (its folder is made if missing, as on Linux).
    pub fn start(config: &Path, events: Sender<Event>) -> std::io::Result<Watch> {
        if let Some(dir) = config.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let config = config.to_path_buf();
        let paths = Arc::new(Mutex::new(Vec::<PathBuf>::new()));
        let watched = Arc::clone(&paths);
        std::thread::Builder::new()
            .name("watch".into())
            .spawn(move || {
                let mut last_config = look(&config);
                let mut last_paths: Vec<Option<(u64, u64)>> = Vec::new();
                loop {
                    std::thread::sleep(PERIOD);
                    let now = look(&config);
                    if now != last_config {
                        last_config = now;
                        if events.send(Event::Config).is_err() {
                            return;
                        }
                    }
                    // Identity, not mere presence: a disk mounted on a folder that was
                    // already there changes its device.
                    let present: Vec<Option<(u64, u64)>> = {
                        let list = watched.lock().unwrap_or_else(|p| p.into_inner());
                        list.iter().map(|p| identity(p)).collect()
                    };
                    if present != last_paths {
                        last_paths = present;
                        if events.send(Event::Paths).is_err() {
                            return;
                        }
                    }
                }
            })?;
        Ok(Watch { paths })
    }

    /// The `on-appear` paths to watch from now on.
    pub fn set_paths(&self, paths: Vec<PathBuf>) {
        *self.paths.lock().unwrap_or_else(|p| p.into_inner()) = paths;
    }
}
