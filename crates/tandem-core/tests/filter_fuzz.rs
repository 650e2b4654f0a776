//! Fuzzing the include/exclude filter (issue 20): any `.tandemignore` contents and any
//! `--exclude`/`--include` pattern either compile or give a `FilterError` naming the
//! pattern and where it came from, never a panic; matching any path never panics, and
//! tandem's own names stay excluded whatever the rules say.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use tandem_core::{Filter, RelPath};

/// Characters that mean something to gitignore, mixed with plain ones.
const PATTERN: &str = "[ab.*?!/\\\\\\[\\]{}, #-^]{0,16}";

/// A pattern: mostly gitignore-like, sometimes any text at all.
fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![3 => PATTERN, 1 => any::<String>()]
}

/// A `.tandemignore` as it comes off the disk (any bytes, read lossily as the engine does),
/// or as lines of patterns with either line ending.
fn ignore_file() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        (prop::collection::vec(pattern(), 0..8), any::<bool>())
            .prop_map(|(lines, crlf)| lines.join(if crlf { "\r\n" } else { "\n" })),
    ]
}

/// A valid relative path of any bytes a Unix name may hold, up to 6 components deep.
fn rel_path() -> impl Strategy<Value = RelPath> {
    let byte = prop_oneof![
        4 => prop::sample::select(b"ab.*?!\\[]{} #-".to_vec()),
        1 => (1u8..=255).prop_filter("a separator", |b| *b != b'/'),
    ];
    let name = prop::collection::vec(byte, 1..10)
        .prop_filter("a . or .. component", |n| n != b"." && n != b"..");
    prop::collection::vec(name, 0..6).prop_map(|names| RelPath::new(names.join(&b'/')).unwrap())
}

fn internal_names() -> Vec<(RelPath, bool)> {
    let p = |s: &str| RelPath::from_str_lossless(s);
    vec![
        (p(".tandem"), true),
        (p(".tandem-tmp.x.1"), false),
        (p("a/b/.tandem-tmp.y"), false),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn any_rules_compile_or_fail_cleanly_and_any_path_matches_without_panic(
        file in prop::option::of(ignore_file()),
        excludes in prop::collection::vec(pattern(), 0..4),
        includes in prop::collection::vec(pattern(), 0..3),
        paths in prop::collection::vec((rel_path(), any::<bool>()), 1..16),
    ) {
        let f = match Filter::new(file.as_deref(), &excludes, &includes) {
            Ok(f) => f,
            Err(e) => {
                // The message says which rule is wrong and where it was written.
                let said = e.to_string();
                prop_assert!(said.contains(&e.origin), "{said}");
                prop_assert!(
                    e.pattern.is_empty()
                        || file.as_deref().is_some_and(|t| t.contains(&e.pattern))
                        || excludes.contains(&e.pattern)
                        || includes.iter().any(|i| e.pattern.ends_with(i.trim_start_matches('!'))),
                    "{said} names no rule given"
                );
                return Ok(());
            }
        };
        prop_assert!(!f.excludes(&RelPath::root(), true));
        for (path, is_dir) in &paths {
            let own = f.excludes(path, *is_dir);
            let any = f.excludes_any(path, *is_dir);
            prop_assert!(any || !own, "{path} excluded, but not by excludes_any");
        }
        // tandem's trash and temporary files are never synced, whatever the rules.
        for (path, is_dir) in internal_names() {
            prop_assert!(f.excludes(&path, is_dir), "{path} not excluded");
        }
    }
}

/// Patterns that gitignore treats specially, each alone as an exclude and as an include.
#[test]
fn edge_patterns_never_panic() {
    let edges = [
        "", "!", "\\", "\\\\", "/", "//", "**", "***", "**/", "/**", "a/**/b", "[", "]", "[]",
        "[!]", "[z-a]", "{", "{a,", "a{b,c}", "#", "\\#", " ", "\\ ", "\r", "!!a", "\u{0}",
        "\u{FFFD}", "a\\", "[\\]",
    ];
    for e in edges {
        for (ex, inc) in [(vec![e.to_string()], vec![]), (vec![], vec![e.to_string()])] {
            if let Ok(f) = Filter::new(Some(e), &ex, &inc) {
                f.excludes_any(&RelPath::from_str_lossless("a/b"), false);
            }
        }
    }
}
