//! `daemon.json` under the state home: what the daemon is doing, for `tandem status` and
//! for `tandem daemon` to know its background process is up. Written whole and renamed
//! over the old one, only when it changed.

use std::path::{Path, PathBuf};

use serde_json::Value;

pub fn status_path() -> PathBuf {
    tandem_state::state_home().join("daemon.json")
}

/// The pid in the status file, if there is one.
pub fn status_pid(path: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v.get("pid")?.as_u64().map(|p| p as u32)
}

/// Writes `value` when it differs from `last`.
pub fn write(path: &Path, value: &Value, last: &mut String) {
    let text = format!("{value:#}\n");
    if text == *last {
        return;
    }
    let tmp = path.with_extension("json.tmp");
    let done = std::fs::write(&tmp, &text).and_then(|()| std::fs::rename(&tmp, path));
    match done {
        Ok(()) => *last = text,
        Err(e) => tracing::warn!("could not write {}: {e}", path.display()),
    }
}
