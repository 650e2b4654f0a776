//! Symbolic links sent to a side that cannot make them (a local root on Windows, where
//! making one needs a privilege most users lack: `tandem_fs::HOLDS_SYMLINKS`). Each such
//! step is left out and reported per file, as Syncthing does on Windows; the link stays on
//! its own side and nothing on the receiving side is deleted or overwritten for it.

use tandem_core::{Action, Kind, Side};

/// `actions` with each step that would make a symbolic link on `side` turned into a skip.
pub(crate) fn fit_links(actions: Vec<Action>, side: Side) -> Vec<Action> {
    actions
        .into_iter()
        .map(|a| match &a {
            Action::Copy {
                path, from, src, ..
            } if *from != side && src.kind == Kind::Symlink => Action::Skip {
                path: path.clone(),
                side: None,
                reason: format!(
                    "the {side} cannot hold symbolic links (Windows: not made yet); \
                         kept on the {from} only"
                ),
            },
            _ => a,
        })
        .collect()
}

/// [`fit_links`] for each side that cannot hold links (`lacks`: source, target).
pub(crate) fn fit_both(mut actions: Vec<Action>, lacks: [bool; 2]) -> Vec<Action> {
    for (side, lacks) in [Side::Source, Side::Target].into_iter().zip(lacks) {
        if lacks {
            actions = fit_links(actions, side);
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_core::{Entry, RelPath};

    fn copy(path: &str, from: Side, src: Entry) -> Action {
        Action::Copy {
            path: RelPath::from_str_lossless(path),
            from,
            src,
            expect: None,
            mode: 0o644,
        }
    }

    #[test]
    fn issue_16_a_link_for_a_side_without_links_is_reported_not_made() {
        let link = copy("l", Side::Source, Entry::symlink(b"x".to_vec(), 1));
        let file = copy("f", Side::Source, Entry::file(1, 0, 0o644, 2));
        let back = copy("m", Side::Target, Entry::symlink(b"y".to_vec(), 3));
        let out = fit_both(vec![link, file.clone(), back.clone()], [false, true]);
        assert_eq!(out[1], file);
        assert_eq!(
            out[2], back,
            "a link the target sends is for the source to make"
        );
        match &out[0] {
            Action::Skip { path, reason, .. } => {
                assert_eq!(path.as_bytes(), b"l");
                assert!(reason.contains("cannot hold symbolic links"), "{reason}");
            }
            a => panic!("not a skip: {a:?}"),
        }
    }

    #[test]
    fn issue_16_sides_with_links_are_left_as_planned() {
        let link = copy("l", Side::Source, Entry::symlink(b"x".to_vec(), 1));
        assert_eq!(fit_both(vec![link.clone()], [false, false]), vec![link]);
    }
}
