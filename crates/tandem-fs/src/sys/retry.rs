//! Trying a call again while another program holds the file (issue 16). On Windows a file
//! opened without `FILE_SHARE_DELETE` (by an editor, an antivirus scanner, a search
//! indexer) cannot be renamed, replaced or deleted until it is closed: the call fails with a
//! sharing violation (`EBUSY` here), and most such holds are short. Plain logic over a
//! closure, built everywhere so that it is tested on Linux; only the Windows module waits.
#![cfg_attr(not(windows), allow(dead_code))]

use std::time::Duration;

use crate::os::io::Errno;

/// The waits between tries on Windows: 5 more tries over 1.5 s.
pub(crate) const WINDOWS_WAITS: [Duration; 5] = [
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(300),
    Duration::from_millis(400),
    Duration::from_millis(500),
];

/// `op`, tried again after each of `waits` while it fails with `EBUSY`; its last result.
pub(crate) fn while_busy<T>(
    waits: &[Duration],
    mut op: impl FnMut() -> Result<T, Errno>,
) -> Result<T, Errno> {
    let mut waits = waits.iter();
    loop {
        match op() {
            Err(Errno::BUSY) => match waits.next() {
                Some(w) => {
                    std::thread::sleep(*w);
                }
                None => return Err(Errno::BUSY),
            },
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waits() -> [Duration; 5] {
        [Duration::from_millis(1); 5]
    }

    #[test]
    fn issue_16_a_short_hold_is_waited_out() {
        let mut calls = 0;
        let r = while_busy(&waits(), || {
            calls += 1;
            if calls < 4 {
                Err(Errno::BUSY)
            } else {
                Ok(calls)
            }
        });
        assert_eq!(r, Ok(4));
    }

    #[test]
    fn issue_16_a_long_hold_fails_after_the_last_try() {
        let mut calls = 0;
        let r: Result<(), Errno> = while_busy(&waits(), || {
            calls += 1;
            Err(Errno::BUSY)
        });
        assert_eq!(r, Err(Errno::BUSY));
        assert_eq!(calls, 6, "one try and five more");
    }

    #[test]
    fn issue_16_other_errors_are_not_tried_again() {
        let mut calls = 0;
        let r: Result<(), Errno> = while_busy(&waits(), || {
            calls += 1;
            Err(Errno::ACCESS)
        });
        assert_eq!((r, calls), (Err(Errno::ACCESS), 1));
    }

    #[test]
    fn issue_16_the_windows_waits_add_up_to_about_two_seconds() {
        let total: Duration = WINDOWS_WAITS.iter().sum();
        assert!(total >= Duration::from_secs(1) && total <= Duration::from_secs(2));
    }
}
