//! Fills a pair's journal with N change records through the state crate's own writer, for
//! measuring `tandem changes` over a big journal (scripts/bench/by-hand/changes).
//!
//! `journal_fill STATE_DIR SRC TGT N`: paths `dNNN/sM/fNNNNNNN.txt` (1000 folders), ops
//! mixed (one rename in 50), uids 1000 to 1003, three programs (this one, pids 1 and 2,
//! as /proc names them), the times those of the writing (a few seconds).

#![allow(clippy::print_stdout)]

use std::path::Path;
use std::time::Instant;

use tandem_core::{Change, ChangeOp, ChangeSink, RelPath};
use tandem_state::{JournalWriter, Pair, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, src, tgt, n] = args.as_slice() else {
        return Err("usage: journal_fill STATE_DIR SRC TGT N".into());
    };
    let n: u64 = n.parse()?;
    let dir = Path::new(dir);
    let pair = Pair {
        src: src.clone(),
        tgt: tgt.clone(),
    };
    let _store = Store::open(dir, &pair)?;
    let w = JournalWriter::open(dir)?;
    let pids = [std::process::id(), 1, 2];
    let ops = [
        ChangeOp::Create,
        ChangeOp::Write,
        ChangeOp::OpenWrite,
        ChangeOp::CloseWrite,
        ChangeOp::Unlink,
    ];
    let start = Instant::now();
    for i in 0..n {
        let path = RelPath::from_str_lossless(&format!("d{:03}/s{}/f{i:07}.txt", i % 1000, i % 7));
        let rename = i % 50 == 49;
        w.record(Change {
            op: if rename {
                ChangeOp::Rename
            } else {
                ops[(i % 5) as usize]
            },
            to: rename.then(|| RelPath::from_str_lossless(&format!("moved/f{i:07}.txt"))),
            path,
            pid: pids[(i % 3) as usize],
            uid: 1000 + (i % 4) as u32,
        });
        if i % 100_000 == 99_999 {
            // The writer's queue is unbounded: keep it from holding everything at once.
            w.flush();
        }
    }
    w.close();
    println!("{n} records in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
