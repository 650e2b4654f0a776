//! What differs between systems for the store: the lock file's lock, the OS error a full
//! disk gives, and making a folder's new names durable.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;
