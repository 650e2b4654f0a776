//! Where the libraries' `tracing` events go: standard error (a mount's log file when it
//! runs in the background), warnings and errors by default, more with
//! `TANDEM_LOG=info|debug|trace`.

use tracing::Level;

/// Installs the subscriber once, at start.
pub fn init() {
    let level = match std::env::var("TANDEM_LOG").as_deref() {
        Ok("error") => Level::ERROR,
        Ok("info") => Level::INFO,
        Ok("debug") => Level::DEBUG,
        Ok("trace") => Level::TRACE,
        _ => Level::WARN,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
