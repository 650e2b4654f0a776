//! Noticing a connection that hangs without closing (feature `keepalive`): a remote
//! machine frozen, an agent stopped, a network that drops packets without a reset. ssh
//! itself notices only a dead network, and only as late as its own `ServerAlive*` options
//! say; a stopped agent behind a live sshd is never noticed by ssh at all.
//!
//! The client sends `Ping` every interval ([`interval`]: `TANDEM_KEEPALIVE` seconds,
//! default 10; 0 turns it off), and the agent answers `Pong` from its reading thread at
//! once, whatever it is busy with. The connection is alive while something is heard from
//! it: any frame received, or a write of the client's own (not a ping) that went through,
//! which a connection that stopped reading blocks once the buffers on the way are full.
//! After [`MISSED`] intervals with nothing heard, the connection is given up: treated as
//! dropped, with "no answer from HOST for N s".

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

/// Intervals with nothing heard before the connection is given up.
pub const MISSED: u32 = 3;
/// The interval when `TANDEM_KEEPALIVE` does not say.
pub const DEFAULT: Duration = Duration::from_secs(10);

/// The interval between pings: `TANDEM_KEEPALIVE` seconds (a fraction allowed), `None` for
/// `0`; the default for anything else.
pub fn interval() -> Option<Duration> {
    interval_of(std::env::var("TANDEM_KEEPALIVE").ok().as_deref())
}

fn interval_of(text: Option<&str>) -> Option<Duration> {
    let Some(text) = text else {
        return Some(DEFAULT);
    };
    match text.trim().parse::<f64>() {
        Ok(0.0) => None,
        Ok(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
        _ => {
            tracing::warn!("TANDEM_KEEPALIVE={text:?} is not a number of seconds: {DEFAULT:?}");
            Some(DEFAULT)
        }
    }
}

/// When the connection was last heard from.
#[derive(Debug, Default)]
pub struct Heard {
    /// Milliseconds since [`epoch`].
    at: AtomicU64,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

impl Heard {
    pub fn now(&self) {
        self.at.fetch_max(now_ms(), Ordering::Relaxed);
    }

    pub fn quiet_for(&self) -> Duration {
        Duration::from_millis(now_ms().saturating_sub(self.at.load(Ordering::Relaxed)))
    }
}

/// "3 s", "1.5 s".
pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// What the keepalive thread does to the connection.
pub trait Line: Send + 'static {
    /// Sends `Ping { id }` if the connection is free to write now (a write blocked on a
    /// full pipe is itself watched through [`Heard`]); false once it is closed.
    fn ping(&self, id: u64) -> bool;
    /// The connection ended by itself: nothing more to watch.
    fn ended(&self) -> bool;
    fn heard(&self) -> &Heard;
    /// Gives the connection up: `why` is what every caller is told.
    fn give_up(&self, why: String);
}

/// Pings every `interval` until `stop` is dropped or the connection ends, and gives the
/// connection up after [`MISSED`] intervals with nothing heard. `host` names it in the
/// message.
pub fn watch(line: impl Line, interval: Duration, host: String, stop: Receiver<()>) {
    line.heard().now();
    let limit = interval * MISSED;
    let mut id = 0;
    loop {
        match stop.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        if line.ended() {
            return;
        }
        if line.heard().quiet_for() >= limit {
            let why = format!("no answer from {host} for {}", secs(limit));
            tracing::warn!("{why}: giving the connection up");
            line.give_up(why);
            return;
        }
        id += 1;
        line.ping(id);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn issue_17_the_keepalive_interval_from_the_environment() {
        assert_eq!(interval_of(None), Some(DEFAULT));
        assert_eq!(interval_of(Some("0")), None);
        assert_eq!(interval_of(Some("0.5")), Some(Duration::from_millis(500)));
        assert_eq!(interval_of(Some("soon")), Some(DEFAULT));
        assert_eq!(interval_of(Some("-1")), Some(DEFAULT));
        assert_eq!(secs(Duration::from_secs(30)), "30 s");
        assert_eq!(secs(Duration::from_millis(1500)), "1.5 s");
    }
}
