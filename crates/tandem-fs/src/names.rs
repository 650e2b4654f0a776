//! Names Windows cannot hold, decided without I/O so that it is tested on every system.
//!
//! Windows (its Win32 layer, which every program goes through) refuses or silently
//! changes: the characters `<>:"/\|?*` and control characters, a trailing dot or space
//! (stripped), and the device names `CON`, `PRN`, `AUX`, `NUL`, `COM0`-`COM9`,
//! `LPT0`-`LPT9` (also `COM¹²³`, `LPT¹²³`) with or without an extension (`aux.txt` is the
//! device `AUX`). NTFS itself would hold most of them through the native API, but no
//! program could open them again: the Windows side refuses them, and the run reports them
//! per file, as for an exFAT target.

/// Why Windows cannot hold the file name `name` (one component), or `None` if it can.
pub fn windows_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name == "." || name == ".." {
        return Some("not a file name");
    }
    if let Some(c) = name.chars().find(|c| is_forbidden(*c)) {
        return Some(if c.is_control() {
            "holds a control character"
        } else {
            "holds one of < > : \" / \\ | ? *"
        });
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return Some("ends with a dot or a space");
    }
    if is_device(name) {
        return Some("is a device name on Windows");
    }
    None
}

fn is_forbidden(c: char) -> bool {
    matches!(c, '<' | '>' | ':' | '"' | '/' | '\\' | '|' | '?' | '*') || (c as u32) < 32
}

/// `CON`, `aux.txt`, `Com1.tar.gz`, `LPT²`: a device, whatever follows the first dot (and
/// whatever spaces precede it).
fn is_device(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    let upper = stem.to_ascii_uppercase();
    match upper.as_str() {
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$" => true,
        _ => {
            let (head, tail) = upper.split_at(upper.len().min(3));
            matches!(head, "COM" | "LPT")
                && matches!(
                    tail,
                    "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "¹" | "²" | "³"
                )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::windows_problem;

    #[test]
    fn issue_16_names_windows_cannot_hold() {
        for bad in [
            "CON",
            "con",
            "aux.txt",
            "Aux.tar.gz",
            "NUL",
            "nul.",
            "COM1",
            "com9.log",
            "LPT3",
            "COM0",
            "lpt0",
            "lpt²",
            "CONIN$",
            "aux .txt",
            "a:b",
            "what?",
            "x*y",
            "say\"hi\"",
            "<a>",
            "a|b",
            "back\\slash",
            "tab\there",
            "dot.",
            "space ",
            "..",
            ".",
            "",
        ] {
            assert!(windows_problem(bad).is_some(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn issue_16_names_windows_holds() {
        for good in [
            "CONFIG",
            "console.txt",
            "auxiliary",
            "COM",
            "COM10",
            "LPT",
            "nul_file",
            "a.b.c",
            ".hidden",
            ".tandem",
            "épée",
            "日本語",
            "name with spaces",
            "x.con",
            "#tag",
            "a'b",
            "a;b,c=d",
            "[x]",
            "{y}",
        ] {
            assert_eq!(windows_problem(good), None, "{good:?} should be held");
        }
    }
}
