//! Where tandem keeps its state and its config by default, per system, in one place.
//!
//! - Linux and macOS: `$XDG_STATE_HOME/tandem` (else `~/.local/state/tandem`) and
//!   `$XDG_CONFIG_HOME/tandem` (else `~/.config/tandem`).
//! - Windows: `%LOCALAPPDATA%\tandem` (state stays on this machine, never roams) and
//!   `%APPDATA%\tandem` (the config roams with the user); where one is not set (a service
//!   account, Wine without a prefix), the Unix rule above.

use std::path::PathBuf;

/// The folder of tandem's state: `$XDG_STATE_HOME/tandem`, `%LOCALAPPDATA%\tandem` on
/// Windows.
pub fn state_home() -> PathBuf {
    windows_dir("LOCALAPPDATA")
        .or_else(|| {
            std::env::var_os("XDG_STATE_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("/tmp"))
        .join("tandem")
}

/// The folder of tandem's config file: `$XDG_CONFIG_HOME/tandem`, `%APPDATA%\tandem` on
/// Windows.
pub fn config_home() -> PathBuf {
    windows_dir("APPDATA")
        .or_else(|| {
            std::env::var_os("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        })
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("tandem")
}

/// On Windows, the absolute folder the variable `var` names; elsewhere `None`.
fn windows_dir(var: &str) -> Option<PathBuf> {
    if !cfg!(windows) {
        return None;
    }
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}
