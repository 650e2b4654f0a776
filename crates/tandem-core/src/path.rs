//! `RelPath`: a path relative to a sync root, as raw bytes.
//!
//! Names on Unix are any bytes but `/` and NUL, so paths are kept as bytes end to end
//! (scan, baseline, plan, apply) and only turned into text, escaped, for people.

use std::fmt;
use std::path::Path;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid relative path {path}: {why}")]
pub struct InvalidPath {
    pub path: String,
    pub why: &'static str,
}

/// A normalized path below a sync root: components joined by `/`, no empty, `.` or `..`
/// component, no NUL. The root itself is the empty path.
///
/// Ordering is bytewise, so a directory sorts before everything below it and a whole
/// subtree is the contiguous range `[dir/, dir0)` (see [`RelPath::subtree_range`]).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RelPath(Vec<u8>);

impl RelPath {
    pub fn root() -> Self {
        RelPath(Vec::new())
    }

    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, InvalidPath> {
        let bytes = bytes.into();
        let why = if bytes.contains(&0) {
            Some("contains NUL")
        } else if bytes.is_empty() {
            None
        } else if bytes
            .split(|&b| b == b'/')
            .any(|c| c.is_empty() || c == b"." || c == b"..")
        {
            Some("empty, '.' or '..' component")
        } else {
            None
        };
        match why {
            Some(why) => Err(InvalidPath {
                path: escape_bytes(&bytes),
                why,
            }),
            None => Ok(RelPath(bytes)),
        }
    }

    /// Builds a path from a string known to be valid (tests, constants).
    ///
    /// # Panics
    /// When `s` is not a valid relative path.
    #[allow(clippy::unwrap_used)]
    pub fn from_str_lossless(s: &str) -> Self {
        RelPath::new(s.as_bytes().to_vec()).unwrap()
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The path as a `Path` relative to the root (the root is `.`).
    pub fn as_path(&self) -> &Path {
        if self.0.is_empty() {
            Path::new(".")
        } else {
            bytes_as_path(&self.0)
        }
    }

    /// `self/name`. `name` must be one valid component.
    pub fn join(&self, name: &[u8]) -> RelPath {
        debug_assert!(!name.is_empty() && !name.contains(&b'/') && !name.contains(&0));
        let mut v = Vec::with_capacity(self.0.len() + 1 + name.len());
        v.extend_from_slice(&self.0);
        if !v.is_empty() {
            v.push(b'/');
        }
        v.extend_from_slice(name);
        RelPath(v)
    }

    pub fn parent(&self) -> Option<RelPath> {
        if self.0.is_empty() {
            return None;
        }
        Some(match self.0.iter().rposition(|&b| b == b'/') {
            Some(i) => RelPath(self.0[..i].to_vec()),
            None => RelPath::root(),
        })
    }

    /// The last component (empty for the root).
    pub fn file_name(&self) -> &[u8] {
        match self.0.iter().rposition(|&b| b == b'/') {
            Some(i) => &self.0[i + 1..],
            None => &self.0,
        }
    }

    pub fn components(&self) -> impl Iterator<Item = &[u8]> {
        self.0.split(|&b| b == b'/').filter(|c| !c.is_empty())
    }

    pub fn depth(&self) -> usize {
        if self.0.is_empty() {
            0
        } else {
            1 + self.0.iter().filter(|&&b| b == b'/').count()
        }
    }

    /// True when `self` is `ancestor` or lies below it.
    pub fn starts_with(&self, ancestor: &RelPath) -> bool {
        if ancestor.is_root() {
            return true;
        }
        self.0.starts_with(&ancestor.0)
            && (self.0.len() == ancestor.0.len() || self.0[ancestor.0.len()] == b'/')
    }

    /// True when `self` lies strictly below `ancestor`.
    pub fn is_below(&self, ancestor: &RelPath) -> bool {
        self != ancestor && self.starts_with(ancestor)
    }

    /// Moves `self` from below `from` to below `to`: `from/x` becomes `to/x`.
    pub fn rebase(&self, from: &RelPath, to: &RelPath) -> Option<RelPath> {
        if !self.starts_with(from) {
            return None;
        }
        let rest = &self.0[from.0.len()..];
        let mut v = to.0.clone();
        if to.is_root() {
            v.extend_from_slice(rest.strip_prefix(b"/").unwrap_or(rest));
        } else {
            v.extend_from_slice(rest);
        }
        Some(RelPath(v))
    }

    /// The half-open byte range `[self/, self0)` holding exactly the paths strictly below
    /// `self` (for the root: everything but the root).
    pub fn subtree_range(&self) -> (RelPath, RelPath) {
        if self.is_root() {
            return (RelPath(vec![0x01]), RelPath(vec![0xff; 4097]));
        }
        let mut lo = self.0.clone();
        lo.push(b'/');
        let mut hi = self.0.clone();
        hi.push(b'/' + 1);
        (RelPath(lo), RelPath(hi))
    }

    /// Printable form: see [`escape_bytes`].
    pub fn escaped(&self) -> String {
        escape_bytes(&self.0)
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str(".")
        } else {
            f.write_str(&escape_bytes(&self.0))
        }
    }
}

impl fmt::Debug for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.escaped())
    }
}

/// Renders bytes as text that is safe to print on a terminal: valid UTF-8 stays as it is,
/// except control characters and backslashes, which are escaped (`\n`, `\x1b`, `\\`);
/// bytes that are not UTF-8 become `\xNN`. Never emits a raw control character
/// (the class of Mutagen's CVE-2023-30844).
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                // Bidirectional overrides can disguise a name on screen.
                '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
                    out.push_str(&format!("\\u{{{:04x}}}", c as u32))
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The inverse of [`escape_bytes`]: the bytes that a printed name stands for, so that a
/// name can be typed back as tandem printed it. `unescape_bytes(&escape_bytes(b)) == b`
/// for any bytes `b`: every backslash `escape_bytes` prints starts an escape, since it
/// prints a backslash itself as `\\`. Understood: `\\`, `\n`, `\t`, `\r`, `\xNN`
/// (one byte, either case), `\u{N..}` (one character). `None` when a backslash starts
/// anything else: the text is then not something tandem printed.
pub fn unescape_bytes(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.extend_from_slice(&rest.as_bytes()[..i]);
        let after = &rest[i + 1..];
        let (bytes, used) = unescape_one(after)?;
        out.extend_from_slice(&bytes);
        rest = &after[used..];
    }
    out.extend_from_slice(rest.as_bytes());
    Some(out)
}

/// One escape, `s` being what follows its backslash: the bytes it stands for and how many
/// bytes of `s` it took.
fn unescape_one(s: &str) -> Option<(Vec<u8>, usize)> {
    let simple = |b: u8| Some((vec![b], 1));
    match s.as_bytes().first()? {
        b'\\' => simple(b'\\'),
        b'n' => simple(b'\n'),
        b't' => simple(b'\t'),
        b'r' => simple(b'\r'),
        b'x' => {
            let hex = s
                .get(1..3)
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))?;
            Some((vec![u8::from_str_radix(hex, 16).ok()?], 3))
        }
        b'u' => {
            let body = s.strip_prefix("u{")?;
            let end = body.find('}')?;
            let hex = &body[..end];
            if hex.is_empty() || hex.len() > 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
            Some((c.to_string().into_bytes(), 2 + end + 1))
        }
        _ => None,
    }
}

/// A name's bytes as a path: the bytes themselves on Unix.
#[cfg(unix)]
fn bytes_as_path(b: &[u8]) -> &Path {
    use std::os::unix::ffi::OsStrExt;
    Path::new(std::ffi::OsStr::from_bytes(b))
}

/// Elsewhere (Windows) names are UTF-8. Bytes that are not can only have come from another
/// system: they become a name that Windows refuses (`<` and `>`), so using it fails
/// instead of reaching some other file.
#[cfg(not(unix))]
fn bytes_as_path(b: &[u8]) -> &Path {
    Path::new(std::str::from_utf8(b).unwrap_or("<not UTF-8>"))
}

/// A relative path's bytes, as `RelPath` holds them: the bytes themselves on Unix.
#[cfg(unix)]
pub fn path_bytes(p: &Path) -> std::borrow::Cow<'_, [u8]> {
    use std::os::unix::ffi::OsStrExt;
    std::borrow::Cow::Borrowed(p.as_os_str().as_bytes())
}

/// Elsewhere (Windows) UTF-8 (a name that is not becomes U+FFFD, which no file there is
/// called), with `/` between components.
#[cfg(not(unix))]
pub fn path_bytes(p: &Path) -> std::borrow::Cow<'_, [u8]> {
    let s = p.to_string_lossy().replace('\\', "/");
    std::borrow::Cow::Owned(s.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_dot_components_and_nul() {
        assert!(RelPath::new(b"a/../b".to_vec()).is_err());
        assert!(RelPath::new(b"a//b".to_vec()).is_err());
        assert!(RelPath::new(b"/a".to_vec()).is_err());
        assert!(RelPath::new(b"a\0b".to_vec()).is_err());
        assert!(RelPath::new(b"a/.hidden/b".to_vec()).is_ok());
    }

    #[test]
    fn subtree_is_contiguous_range() {
        let mut v: Vec<RelPath> = ["a", "a-b", "a/b", "a/b/c", "a0", "a/z", "b"]
            .iter()
            .map(|s| RelPath::from_str_lossless(s))
            .collect();
        v.sort();
        let (lo, hi) = RelPath::from_str_lossless("a").subtree_range();
        let inside: Vec<_> = v.iter().filter(|p| **p >= lo && **p < hi).collect();
        assert_eq!(inside.len(), 3);
        assert!(inside
            .iter()
            .all(|p| p.is_below(&RelPath::from_str_lossless("a"))));
    }

    #[test]
    fn rebase_moves_subtree() {
        let p = RelPath::from_str_lossless("a/b/c");
        let r = p.rebase(
            &RelPath::from_str_lossless("a/b"),
            &RelPath::from_str_lossless("x"),
        );
        assert_eq!(r, Some(RelPath::from_str_lossless("x/c")));
        assert_eq!(
            p.rebase(&RelPath::from_str_lossless("a/bb"), &RelPath::root()),
            None
        );
    }

    #[test]
    fn escapes_control_and_invalid_utf8() {
        assert_eq!(escape_bytes(b"a\nb"), "a\\nb");
        assert_eq!(escape_bytes(b"\x1b[31mred"), "\\x1b[31mred");
        assert_eq!(escape_bytes(b"\xff\xfe.txt"), "\\xff\\xfe.txt");
        assert_eq!(escape_bytes("caf\u{e9}".as_bytes()), "caf\u{e9}");
        assert_eq!(escape_bytes("x\u{202e}txt".as_bytes()), "x\\u{202e}txt");
        assert_eq!(escape_bytes(b"back\\slash"), "back\\\\slash");
    }

    #[test]
    fn unescape_reads_back_what_escape_prints() {
        let cases: &[(&str, &[u8])] = &[
            ("plain.txt", b"plain.txt"),
            ("a\\nb", b"a\nb"),
            ("\\x1b]0;evil\\x07", b"\x1b]0;evil\x07"),
            ("\\xff\\xFE.txt", b"\xff\xfe.txt"),
            ("tab\\tand\\rcr", b"tab\tand\rcr"),
            ("back\\\\slash", b"back\\slash"),
            ("\\\\n", b"\\n"),
            ("x\\u{202e}txt", "x\u{202e}txt".as_bytes()),
            ("caf\u{e9}", "caf\u{e9}".as_bytes()),
        ];
        for (printed, bytes) in cases {
            assert_eq!(
                unescape_bytes(printed).as_deref(),
                Some(*bytes),
                "{printed}"
            );
        }
        // Not something tandem prints: a lone or unknown escape.
        for bad in [
            "a\\",
            "\\q",
            "\\x4",
            "\\xzz",
            "\\u{}",
            "\\u{110000}",
            "\\u{d800}",
            "\\u1234",
        ] {
            assert_eq!(unescape_bytes(bad), None, "{bad}");
        }
    }
}
