//! Names are bytes: newlines, escape sequences, invalid UTF-8 and 255-byte components sync,
//! and are printed escaped, never raw.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use crate::fixtures::*;

fn hostile_names() -> Vec<Vec<u8>> {
    vec![
        b"line\nbreak.txt".to_vec(),
        b"\x1b[31mred\x1b[0m.txt".to_vec(),
        b"bad-utf8-\xff\xfe.bin".to_vec(),
        b"tab\tand\rcr".to_vec(),
        "caf\u{e9} \u{1f600}.txt".as_bytes().to_vec(),
        vec![b'n'; 255],
        b"back\\slash".to_vec(),
    ]
}

#[test]
fn hostile_names_sync_exactly_and_print_escaped() {
    let p = Pair::new();
    for (i, name) in hostile_names().iter().enumerate() {
        write_file(
            &p.src.join(OsStr::from_bytes(name)),
            format!("content {i}").as_bytes(),
        );
    }
    std::fs::create_dir(p.tgt.join(OsStr::from_bytes(b"dir\nwith newline"))).unwrap();
    write_file(
        &p.tgt.join(OsStr::from_bytes(b"dir\nwith newline/\x07bell")),
        b"bell",
    );
    let out = p.sync(&["--verbose"]);
    assert_eq!(out.code, 0, "{}", out.all());
    p.assert_same();
    for (i, name) in hostile_names().iter().enumerate() {
        let got = std::fs::read(p.tgt.join(OsStr::from_bytes(name))).unwrap();
        assert_eq!(got, format!("content {i}").as_bytes());
    }
    let printed = out.all();
    assert!(!printed.contains('\x1b'), "raw escape printed: {printed:?}");
    assert!(!printed.contains('\x07'), "raw bell printed: {printed:?}");
    assert!(!printed.contains('\r'), "raw CR printed: {printed:?}");
    assert!(printed.contains("\\x1b[31mred"), "{printed}");
    assert!(printed.contains("line\\nbreak.txt"), "{printed}");
    assert!(printed.contains("bad-utf8-\\xff\\xfe.bin"), "{printed}");
    // Every printed line is one record: a name's newline never splits it.
    assert!(
        out.stdout.lines().all(|l| !l.trim().is_empty()),
        "{printed}"
    );
    let json = p.sync(&["--json"]);
    assert!(!json.stdout.contains('\x1b'));
}

#[test]
fn conflict_copy_of_a_255_byte_name_stays_within_the_limit() {
    let p = Pair::new();
    let long = format!("{}.txt", "x".repeat(251));
    p.write(S::Src, &long, "source");
    p.write(S::Tgt, &long, "target");
    p.sync_ok(&[], 1);
    p.assert_same();
    let copies = p.names_with(S::Src, ".conflict-");
    assert_eq!(copies.len(), 1);
    assert!(
        copies[0].len() <= 255 && copies[0].ends_with(".txt"),
        "{}",
        copies[0]
    );
}
