//! Windows' file attributes as `Entry::mode` keeps them (issue 16): the read-only attribute
//! is the owner's write bit, the hidden one [`MODE_HIDDEN`], and every entry of a Windows
//! side carries [`MODE_ATTRS`]. Plain arithmetic on attribute words, built everywhere so
//! that it is tested on Linux; only the Windows module calls it.
#![cfg_attr(not(windows), allow(dead_code))]

use tandem_core::{MODE_ATTRS, MODE_HIDDEN};

pub(crate) const READONLY: u32 = 0x1;
pub(crate) const HIDDEN: u32 = 0x2;
pub(crate) const DIRECTORY: u32 = 0x10;
/// "No other attribute": valid only alone.
pub(crate) const NORMAL: u32 = 0x80;

/// The attribute bits of `Entry::mode` for an object with attributes `attrs`.
pub(crate) fn mode_bits(attrs: u32) -> u32 {
    if attrs & HIDDEN != 0 {
        MODE_ATTRS | MODE_HIDDEN
    } else {
        MODE_ATTRS
    }
}

/// The attributes an object that has `attrs` gets for `mode`: the read-only attribute from
/// the owner's write bit (on files only: on a folder Explorer reads it as "customized"),
/// and the hidden one from [`MODE_HIDDEN`] when `mode` comes from a side with attributes;
/// from one without ([`MODE_ATTRS`] clear: Linux, macOS) the object keeps its own. The
/// result is ready for `FILE_BASIC_INFO` (never 0, which means "leave as they are").
pub(crate) fn for_mode(attrs: u32, mode: u32) -> u32 {
    let mut a = attrs & !NORMAL;
    if attrs & DIRECTORY == 0 {
        a = if mode & 0o200 == 0 {
            a | READONLY
        } else {
            a & !READONLY
        };
    }
    if mode & MODE_ATTRS != 0 {
        a = if mode & MODE_HIDDEN != 0 {
            a | HIDDEN
        } else {
            a & !HIDDEN
        };
    }
    if a == 0 {
        NORMAL
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_16_hidden_comes_from_a_windows_mode_only() {
        let windows_hidden = 0o644 | MODE_ATTRS | MODE_HIDDEN;
        assert_eq!(for_mode(NORMAL, windows_hidden), HIDDEN);
        assert_eq!(for_mode(HIDDEN, 0o644 | MODE_ATTRS), NORMAL);
        // A Linux side's mode leaves the hidden attribute as it is.
        assert_eq!(for_mode(HIDDEN, 0o644), HIDDEN);
        assert_eq!(for_mode(NORMAL, 0o644), NORMAL);
    }

    #[test]
    fn issue_16_read_only_from_the_write_bit_on_files_only() {
        assert_eq!(for_mode(HIDDEN, 0o444), HIDDEN | READONLY);
        assert_eq!(for_mode(READONLY | 0x20, 0o644), 0x20);
        assert_eq!(
            for_mode(DIRECTORY, 0o555 | MODE_ATTRS | MODE_HIDDEN),
            DIRECTORY | HIDDEN
        );
    }

    #[test]
    fn issue_16_mode_bits_say_the_side_has_attributes() {
        assert_eq!(mode_bits(NORMAL), MODE_ATTRS);
        assert_eq!(mode_bits(HIDDEN | READONLY), MODE_ATTRS | MODE_HIDDEN);
    }
}
