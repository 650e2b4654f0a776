//! Each side is compared with what it showed itself at the last agreement: a target that
//! cannot store permission bits (FAT, exFAT: always 0777) never looks like it changed them,
//! and never imposes them on the source.
#![allow(clippy::unwrap_used)]

use tandem_core::{
    reconcile, Action, BaseEntry, BaseTree, Entry, Hash, Options, RelPath, Seen, Side, Tree,
};

fn p() -> RelPath {
    RelPath::from_str_lossless("doc.txt")
}

fn file(content: u8, mtime: i64, mode: u32, ino: u64) -> Entry {
    Entry::file(10, mtime, mode, ino).with_hash(Hash([content; 32]))
}

/// Agreed on content 1: the source showed mode 0644, the mode-less target 0777.
fn base() -> BaseTree {
    let mut b = BaseTree::new();
    b.insert(
        p(),
        BaseEntry {
            kind: tandem_core::Kind::File,
            size: 10,
            hash: Some(Hash([1; 32])),
            link: None,
            src: Seen {
                ino: 11,
                mtime: 1000,
                mode: 0o644,
                owner: None,
                xattrs: None,
            },
            tgt: Seen {
                ino: 22,
                mtime: 1000,
                mode: 0o777,
                owner: None,
                xattrs: None,
            },
        },
    );
    b
}

fn one(e: Entry) -> Tree {
    let mut t = Tree::new();
    t.insert(p(), e);
    t
}

#[test]
fn differing_modes_seen_at_the_last_agreement_are_not_a_change() {
    let plan = reconcile(
        base(),
        one(file(1, 1000, 0o644, 11)),
        one(file(1, 1000, 0o777, 22)),
        &Options::default(),
    );
    assert!(plan.writes().next().is_none(), "{plan:?}");
}

#[test]
fn new_content_from_a_modeless_target_keeps_the_source_mode() {
    let tgt = file(2, 2000, 0o777, 23);
    let plan = reconcile(
        base(),
        one(file(1, 1000, 0o644, 11)),
        one(tgt.clone()),
        &Options::default(),
    );
    assert_eq!(
        plan.actions,
        vec![Action::Copy {
            path: p(),
            from: Side::Target,
            src: tgt,
            expect: Some(file(1, 1000, 0o644, 11)),
            mode: 0o644
        }]
    );
}

#[test]
fn a_mode_changed_on_the_source_goes_along_with_its_content() {
    let src = file(2, 2000, 0o600, 11);
    let plan = reconcile(
        base(),
        one(src.clone()),
        one(file(1, 1000, 0o777, 22)),
        &Options::default(),
    );
    assert_eq!(
        plan.actions,
        vec![Action::Copy {
            path: p(),
            from: Side::Source,
            src,
            expect: Some(file(1, 1000, 0o777, 22)),
            mode: 0o600
        }]
    );
}

// ---- Windows attributes (issue 16) ----------------------------------------------------------

/// The target is a Windows side (`MODE_ATTRS` on every entry); the source a Linux one.
const WIN: u32 = tandem_core::MODE_ATTRS;
const HIDDEN: u32 = tandem_core::MODE_ATTRS | tandem_core::MODE_HIDDEN;

fn base_windows_target(tgt_mode: u32) -> BaseTree {
    let mut b = base();
    b.get_mut(&p()).unwrap().tgt.mode = tgt_mode;
    b
}

#[test]
fn issue_16_hidden_kept_on_windows_when_linux_changes_content_and_mode() {
    let src = file(2, 2000, 0o600, 11);
    let tgt = file(1, 1000, 0o644 | HIDDEN, 22);
    let plan = reconcile(
        base_windows_target(0o644 | HIDDEN),
        one(src.clone()),
        one(tgt.clone()),
        &Options::default(),
    );
    assert_eq!(
        plan.actions,
        vec![Action::Copy {
            path: p(),
            from: Side::Source,
            src,
            expect: Some(tgt),
            mode: 0o600 | HIDDEN
        }]
    );
}

#[test]
fn issue_16_hidden_travels_from_windows_with_its_content() {
    // Both sides Windows: the source made the file hidden and changed it.
    let mut b = base_windows_target(0o644 | WIN);
    b.get_mut(&p()).unwrap().src.mode = 0o644 | WIN;
    let src = file(2, 2000, 0o644 | HIDDEN, 11);
    let tgt = file(1, 1000, 0o644 | WIN, 22);
    let plan = reconcile(b, one(src.clone()), one(tgt.clone()), &Options::default());
    assert_eq!(
        plan.actions,
        vec![Action::Copy {
            path: p(),
            from: Side::Source,
            src,
            expect: Some(tgt),
            mode: 0o644 | HIDDEN
        }]
    );
}

#[test]
fn issue_16_hidden_set_on_windows_is_a_metadata_change() {
    let mut b = base_windows_target(0o644 | WIN);
    b.get_mut(&p()).unwrap().src.mode = 0o644 | WIN;
    let src = file(1, 1000, 0o644 | HIDDEN, 11);
    let tgt = file(1, 1000, 0o644 | WIN, 22);
    let plan = reconcile(b, one(src.clone()), one(tgt.clone()), &Options::default());
    assert_eq!(
        plan.actions,
        vec![Action::SetMeta {
            path: p(),
            side: Side::Target,
            src,
            expect: tgt,
        }]
    );
}

#[test]
fn issue_16_carry_attrs_only_from_a_side_without_them() {
    use tandem_core::carry_attrs;
    assert_eq!(carry_attrs(0o600, 0o644 | HIDDEN), 0o600 | HIDDEN);
    assert_eq!(carry_attrs(0o600 | WIN, 0o644 | HIDDEN), 0o600 | WIN);
    assert_eq!(carry_attrs(0o600, 0o644), 0o600);
    assert_eq!(tandem_core::mode_words(0o644 | HIDDEN), "644, hidden");
    assert_eq!(tandem_core::mode_words(0o755), "755");
}

#[test]
fn issue_16_a_hidden_windows_file_and_the_same_linux_file_agree() {
    // No baseline yet: the same content on both sides, the Windows copy hidden.
    let src = file(1, 1000, 0o644, 11);
    let tgt = file(1, 1000, 0o644 | HIDDEN, 22);
    let plan = reconcile(BaseTree::new(), one(src), one(tgt), &Options::default());
    assert!(plan.writes().next().is_none(), "{plan:?}");
}
