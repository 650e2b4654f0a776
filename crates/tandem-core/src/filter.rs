//! Include/exclude filters in gitignore syntax.
//!
//! Rules come from the source root's `.tandemignore`, then `--exclude PATTERN`, then
//! `--include PATTERN` (a whitelist that wins over earlier excludes, like `!PATTERN` in a
//! gitignore file). An excluded directory is not descended into; excluded paths are never
//! touched on either side.

use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::path::RelPath;

#[derive(Debug, thiserror::Error)]
#[error("invalid filter pattern {pattern:?} ({origin}): {message}")]
pub struct FilterError {
    pub pattern: String,
    pub origin: String,
    pub message: String,
}

/// The name of the per-root ignore file.
pub const IGNORE_FILE: &str = ".tandemignore";

/// Names that are never synced: tandem's own trash and temporary files.
pub fn is_internal(name: &[u8]) -> bool {
    name == b".tandem" || name.starts_with(b".tandem-tmp.")
}

#[derive(Clone, Debug)]
pub struct Filter {
    rules: Option<Gitignore>,
    inputs: FilterInputs,
}

/// What a filter was built from: the same filter can be built again elsewhere (a remote
/// side's agent, which must not enter the folders this side excludes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterInputs {
    /// The text of the source's `.tandemignore`.
    pub ignore_file: Option<String>,
    pub excludes: Vec<String>,
    pub includes: Vec<String>,
}

impl Filter {
    /// Accepts everything (but tandem's own files).
    pub fn none() -> Filter {
        Filter {
            rules: None,
            inputs: FilterInputs::default(),
        }
    }

    /// `ignore_file` is the text of a `.tandemignore` (if any).
    pub fn new(
        ignore_file: Option<&str>,
        excludes: &[String],
        includes: &[String],
    ) -> Result<Filter, FilterError> {
        if ignore_file.is_none() && excludes.is_empty() && includes.is_empty() {
            return Ok(Filter::none());
        }
        // The root is virtual: patterns are matched against relative paths.
        let mut b = GitignoreBuilder::new("/");
        let mut add = |line: &str, origin: &str| -> Result<(), FilterError> {
            b.add_line(None, line).map(|_| ()).map_err(|e| FilterError {
                pattern: line.to_string(),
                origin: origin.to_string(),
                message: e.to_string(),
            })
        };
        if let Some(text) = ignore_file {
            for line in text.lines() {
                add(line, IGNORE_FILE)?;
            }
        }
        for p in excludes {
            add(p, "--exclude")?;
        }
        for p in includes {
            let line = format!("!{}", p.strip_prefix('!').unwrap_or(p));
            add(&line, "--include")?;
        }
        let rules = b.build().map_err(|e| FilterError {
            pattern: String::new(),
            origin: "filters".into(),
            message: e.to_string(),
        })?;
        Ok(Filter {
            rules: Some(rules),
            inputs: FilterInputs {
                ignore_file: ignore_file.map(str::to_string),
                excludes: excludes.to_vec(),
                includes: includes.to_vec(),
            },
        })
    }

    /// What this filter was built from.
    pub fn inputs(&self) -> &FilterInputs {
        &self.inputs
    }

    /// Is `path` (a directory when `is_dir`) excluded? Parents are not consulted: the scan
    /// never descends into an excluded directory, and `excludes_any` covers stored paths.
    pub fn excludes(&self, path: &RelPath, is_dir: bool) -> bool {
        if path.is_root() {
            return false;
        }
        if is_internal(path.file_name()) && path.depth() == 1
            || path.file_name().starts_with(b".tandem-tmp.")
        {
            return true;
        }
        match &self.rules {
            None => false,
            Some(g) => g
                .matched(Path::new("/").join(path.as_path()), is_dir)
                .is_ignore(),
        }
    }

    /// Is `path` or any of its parents excluded? (For baseline entries, whose parents the
    /// scan did not visit.)
    pub fn excludes_any(&self, path: &RelPath, is_dir: bool) -> bool {
        let mut anc = path.parent();
        while let Some(a) = anc {
            if self.excludes(&a, true) {
                return true;
            }
            anc = a.parent();
        }
        self.excludes(path, is_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RelPath {
        RelPath::from_str_lossless(s)
    }

    #[test]
    fn gitignore_syntax_with_includes_winning() {
        let f = Filter::new(
            Some("*.log\nbuild/\n"),
            &["*.tmp".into()],
            &["keep.log".into()],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(f.excludes(&p("a/b.log"), false));
        assert!(!f.excludes(&p("a/keep.log"), false));
        assert!(f.excludes(&p("x.tmp"), false));
        assert!(f.excludes(&p("src/build"), true));
        assert!(!f.excludes(&p("src/build"), false));
        assert!(f.excludes_any(&p("src/build/out.o"), false));
        assert!(!f.excludes(&p("src/main.rs"), false));
    }

    #[test]
    fn internal_names_always_excluded() {
        let f = Filter::none();
        assert!(f.excludes(&p(".tandem"), true));
        assert!(!f.excludes(&p("a/.tandem"), true));
        assert!(f.excludes(&p("a/.tandem-tmp.x.123"), false));
    }

    #[test]
    fn bad_pattern_is_an_error() {
        assert!(Filter::new(None, &["[z-a]".into()], &[]).is_err());
    }
}
