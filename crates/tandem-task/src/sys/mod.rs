//! What differs between systems for running a task: the I/O priority (`linux`, `other`),
//! and processes (`unix`, `windows`): a hook's process group and how it is killed, how it
//! ended, what is executable, the nice value, whether a pid runs.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(not(target_os = "linux"))]
mod other;
#[cfg(not(target_os = "linux"))]
pub(crate) use other::*;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;
