//! The name of the program behind a change (Linux: `/proc/PID/comm`; macOS: `proc_name`;
//! Windows: the file name of its image), read when the change is
//! handed to the journal: the program may be gone by the time the record is written.
//!
//! Read on the mount's request threads, so a name is remembered per pid for a short while
//! (`FRESH`): an untar of 35,000 files reads it a few times, not 100,000 times. A pid is
//! only reused after the kernel has gone through every other one, far longer than `FRESH`;
//! what the cache can get wrong is a program that exec()s another under the same pid within
//! `FRESH` (a shell running its last command), named after the program it was a moment
//! earlier.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a name read for a pid is trusted.
const FRESH: Duration = Duration::from_millis(250);
/// Pids remembered at most; past it the cache starts over (a burst of short-lived
/// processes, each its own pid).
const MAX_PIDS: usize = 4096;

/// Per pid: its name (`None`: it was gone) and when that was read.
type Names = HashMap<u32, (Option<Arc<str>>, Instant)>;

#[derive(Default)]
pub(crate) struct Programs {
    names: Mutex<Names>,
}

impl Programs {
    /// The name of the process `pid` now (`None` once it is gone, or for pid 0: a request
    /// no process made).
    pub(crate) fn name(&self, pid: u32) -> Option<Arc<str>> {
        if pid == 0 {
            return None;
        }
        let now = Instant::now();
        if let Some((name, at)) = self.lock().get(&pid) {
            if now.duration_since(*at) < FRESH {
                return name.clone();
            }
        }
        // Read without the lock: other programs' requests do not wait for it.
        let name = read_comm(pid);
        let mut names = self.lock();
        if names.len() >= MAX_PIDS {
            names.clear();
        }
        names.insert(pid, (name.clone(), now));
        name
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Names> {
        self.names.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The process's name: its `comm` (Linux).
#[cfg(target_os = "linux")]
fn read_comm(pid: u32) -> Option<Arc<str>> {
    let bytes = std::fs::read(format!("/proc/{pid}/comm")).ok()?;
    let name = String::from_utf8_lossy(&bytes);
    let name = name.trim_end_matches('\n');
    (!name.is_empty()).then(|| Arc::from(name))
}

/// The process's name, as `ps -c` shows it (macOS: `proc_name`; no `/proc` there).
#[cfg(target_os = "macos")]
fn read_comm(pid: u32) -> Option<Arc<str>> {
    let mut buf = [0u8; 256];
    let pid = libc::c_int::try_from(pid).ok()?;
    // SAFETY: `buf` holds the byte count given; the call writes at most that.
    let n = unsafe { libc::proc_name(pid, buf.as_mut_ptr().cast(), buf.len() as u32) };
    let n = usize::try_from(n).ok().filter(|&n| n > 0)?;
    Some(Arc::from(
        String::from_utf8_lossy(&buf[..n.min(buf.len())]).as_ref(),
    ))
}

/// The process's name: the file name of its image, as Task Manager shows it (Windows).
#[cfg(windows)]
fn read_comm(pid: u32) -> Option<Arc<str>> {
    use windows_sys::Win32::Foundation::CloseHandle;
    use windows_sys::Win32::System::Threading::{
        OpenProcess, QueryFullProcessImageNameW, PROCESS_QUERY_LIMITED_INFORMATION,
    };
    let mut buf = [0u16; 1024];
    let mut len = buf.len() as u32;
    // SAFETY: plain calls; `buf` holds `len` UTF-16 units; the handle is closed below.
    let ok = unsafe {
        let h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
        if h.is_null() {
            return None;
        }
        let ok = QueryFullProcessImageNameW(h, 0, buf.as_mut_ptr(), &mut len);
        CloseHandle(h);
        ok
    };
    if ok == 0 {
        return None;
    }
    image_name(&buf[..(len as usize).min(buf.len())])
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
fn read_comm(_pid: u32) -> Option<Arc<str>> {
    None
}

/// The program's name in a Windows image path (`C:\Windows\notepad.exe`: `notepad.exe`).
#[cfg_attr(not(windows), allow(dead_code))]
fn image_name(path: &[u16]) -> Option<Arc<str>> {
    let path = String::from_utf16_lossy(path);
    let name = path.rsplit(['\\', '/']).next().unwrap_or("");
    (!name.is_empty()).then(|| Arc::from(name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_this_process_and_nothing_for_a_gone_one() {
        let p = Programs::default();
        let me = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert_eq!(p.name(std::process::id()).as_deref(), Some(me.trim_end()));
        assert_eq!(p.name(0), None);
        // Above the largest pid the kernel hands out (2^22).
        assert_eq!(p.name(u32::MAX - 1), None);
    }

    #[test]
    fn issue_16_a_windows_program_is_named_by_its_image_file() {
        let w = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
        let name = image_name(&w("C:\\Program Files\\Tool\\tool.exe"));
        assert_eq!(name.as_deref(), Some("tool.exe"));
        assert_eq!(
            image_name(&w("\\\\?\\Z:\\x\\a.exe")).as_deref(),
            Some("a.exe")
        );
        assert_eq!(image_name(&w("C:\\dir\\")), None);
    }
}
