//! Sparse files keep their holes (issue 19): a large file with little data takes about
//! its data's room on the other side, and its bytes are the same.

use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;

use crate::fixtures::Pair;

/// A file of `len` bytes with `data` random-ish bytes at `at`: the rest is a hole.
fn sparse_file(path: &std::path::Path, len: u64, at: u64, data: usize) {
    let mut f = std::fs::File::create(path).unwrap();
    f.set_len(len).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    let bytes: Vec<u8> = (0..data).map(|i| (i * 31 % 251) as u8 + 1).collect();
    f.write_all(&bytes).unwrap();
    f.sync_all().unwrap();
}

fn allocated(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).unwrap().blocks() * 512
}

#[test]
fn issue_19_a_sparse_file_keeps_its_holes_both_ways() {
    const LEN: u64 = 256 << 20;
    const DATA: usize = 2 << 20;
    let p = Pair::new();
    let img = p.src.join("disk.img");
    sparse_file(&img, LEN, 100 << 20, DATA);
    if allocated(&img) > 16 << 20 {
        eprintln!("SKIPPED: this file system does not keep holes");
        return;
    }
    p.sync_ok(&["--quiet"], 0);
    let copy = p.tgt.join("disk.img");
    assert_eq!(std::fs::metadata(&copy).unwrap().len(), LEN);
    assert!(
        allocated(&copy) <= 16 << 20,
        "the copy takes {} bytes on disk for {DATA} bytes of data",
        allocated(&copy)
    );
    assert!(std::fs::read(&img).unwrap() == std::fs::read(&copy).unwrap());

    // The other way, with a hole at the end.
    let back = p.tgt.join("tail-hole.img");
    sparse_file(&back, LEN, 0, DATA);
    p.sync_ok(&["--quiet"], 0);
    let there = p.src.join("tail-hole.img");
    assert_eq!(std::fs::metadata(&there).unwrap().len(), LEN);
    assert!(allocated(&there) <= 16 << 20, "{}", allocated(&there));
    assert!(std::fs::read(&back).unwrap() == std::fs::read(&there).unwrap());
    // And a second sync plans nothing.
    let out = p.sync_ok(&["--dry-run", "--json"], 0);
    assert!(out.stdout.contains("\"plan\":[]"), "{}", out.stdout);
}
