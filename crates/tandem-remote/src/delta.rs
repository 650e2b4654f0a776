//! A modified file sent as what changed (feature `delta`): content-defined chunks (FastCDC)
//! hashed with blake3. The receiving side cuts its own old copy into chunks and sends their
//! lengths and hashes ([`Sig`]); the sending side cuts the new content with the same
//! parameters, sends each chunk the receiver already has as a `Copy` of the old copy's
//! bytes and the others as `Data`, then the blake3 of the whole new content (`Whole`). The
//! receiver rebuilds the file into its temporary file as usual, hashing what it writes, and
//! keeps nothing that does not hash to `Whole` ([`tandem_engine::DELTA_MISMATCH`]: the copy
//! is then made again, whole). An insertion or deletion moves chunk boundaries only around
//! itself, so a change in the middle of a large file costs a chunk or two.

use std::collections::HashMap;
use std::io::{self, Read};

use fastcdc::v2020::StreamCDC;
use serde::{Deserialize, Serialize};

/// Files smaller than this (either version) are sent whole: a round trip costs more.
pub const DELTA_MIN: u64 = 64 << 10;
/// Files larger than this are sent whole (their chunk list would not fit a frame).
pub const DELTA_MAX: u64 = 256 << 30;
/// The most chunks a signature lists.
const MAX_CHUNKS: usize = 300_000;

/// The chunks of a receiver's old copy: the cut parameters, and each chunk's length and
/// blake3, in file order.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sig {
    pub min: u32,
    pub avg: u32,
    pub max: u32,
    pub chunks: Vec<(u32, [u8; 32])>,
}

/// One piece of the new content.
#[derive(Debug, PartialEq, Eq)]
pub enum Op<'a> {
    /// `len` bytes at `offset` of the receiver's old copy.
    Copy { offset: u64, len: u64 },
    /// Bytes the receiver does not have.
    Literal(&'a [u8]),
}

/// Whether a file of `old` bytes there and `new` bytes here is worth a delta.
pub fn worth_it(old: u64, new: u64) -> bool {
    (DELTA_MIN..=DELTA_MAX).contains(&old) && (DELTA_MIN..=DELTA_MAX).contains(&new)
}

/// The cut parameters for a file of `size` bytes: chunks of 8 KiB on average for files up
/// to 128 MiB, growing with the file beyond (about 16k chunks), up to 1 MiB.
fn cut(size: u64) -> (u32, u32, u32) {
    let avg = (size / 16384).next_power_of_two().clamp(8 << 10, 1 << 20) as u32;
    (avg / 4, avg, avg * 4)
}

fn bad(why: String) -> io::Error {
    io::Error::other(format!("protocol error: {why}"))
}

/// Parameters a peer sent: within what FastCDC accepts, before any chunking is done.
fn check(sig: &Sig) -> io::Result<(usize, usize, usize)> {
    let (min, avg, max) = (sig.min as usize, sig.avg as usize, sig.max as usize);
    let fine = (fastcdc::v2020::MINIMUM_MIN..=fastcdc::v2020::MINIMUM_MAX).contains(&min)
        && (fastcdc::v2020::AVERAGE_MIN..=fastcdc::v2020::AVERAGE_MAX).contains(&avg)
        && (fastcdc::v2020::MAXIMUM_MIN..=fastcdc::v2020::MAXIMUM_MAX).contains(&max)
        && min <= avg
        && avg <= max
        && [min, avg, max].iter().all(|n| n % 2 == 0);
    if fine {
        Ok((min, avg, max))
    } else {
        Err(bad(format!("chunk sizes {min}/{avg}/{max}")))
    }
}

/// The chunks of `old` (`size` bytes, as its entry says).
pub fn signature(old: &mut dyn Read, size: u64) -> io::Result<Sig> {
    let (min, avg, max) = cut(size);
    let mut chunks = Vec::new();
    for chunk in StreamCDC::new(old, min as usize, avg as usize, max as usize) {
        let chunk = chunk?;
        if chunks.len() == MAX_CHUNKS {
            return Err(io::Error::other("too many chunks for a delta"));
        }
        chunks.push((chunk.length as u32, *blake3::hash(&chunk.data).as_bytes()));
    }
    Ok(Sig {
        min,
        avg,
        max,
        chunks,
    })
}

/// Cuts `new` as `sig` says and hands each piece to `emit` (adjacent copies merged);
/// returns the blake3 of all of `new`: `known`, when the sending side hashed that content
/// already (its scan did), without hashing it again. Content that changed since is caught
/// by the receiver, which keeps nothing that does not hash to it.
pub fn encode(
    sig: &Sig,
    new: &mut dyn Read,
    known: Option<[u8; 32]>,
    emit: &mut dyn FnMut(Op<'_>) -> io::Result<()>,
) -> io::Result<[u8; 32]> {
    let (min, avg, max) = check(sig)?;
    let mut at = HashMap::with_capacity(sig.chunks.len());
    let mut offset = 0u64;
    for (len, hash) in &sig.chunks {
        at.entry(*hash).or_insert((offset, u64::from(*len)));
        offset += u64::from(*len);
    }
    let mut whole = blake3::Hasher::new();
    let mut pending: Option<(u64, u64)> = None;
    for chunk in StreamCDC::new(new, min, avg, max) {
        let chunk = chunk?;
        if known.is_none() {
            whole.update(&chunk.data);
        }
        match at.get(blake3::hash(&chunk.data).as_bytes()) {
            Some(&(off, len)) if len == chunk.length as u64 => {
                pending = match pending {
                    Some((o, l)) if o + l == off => Some((o, l + len)),
                    Some((o, l)) => {
                        emit(Op::Copy { offset: o, len: l })?;
                        Some((off, len))
                    }
                    None => Some((off, len)),
                };
            }
            _ => {
                if let Some((offset, len)) = pending.take() {
                    emit(Op::Copy { offset, len })?;
                }
                emit(Op::Literal(&chunk.data))?;
            }
        }
    }
    if let Some((offset, len)) = pending {
        emit(Op::Copy { offset, len })?;
    }
    Ok(known.unwrap_or_else(|| *whole.finalize().as_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn noise(n: usize, mut x: u64) -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// Rebuilds the new content from `old` and the pieces, as a receiver does.
    fn rebuild(old: &[u8], new: &[u8]) -> (Vec<u8>, usize) {
        let sig = signature(&mut &old[..], old.len() as u64).unwrap();
        let (mut out, mut literal) = (Vec::new(), 0);
        let hash = encode(&sig, &mut &new[..], None, &mut |op| {
            match op {
                Op::Copy { offset, len } => {
                    out.extend_from_slice(&old[offset as usize..(offset + len) as usize])
                }
                Op::Literal(b) => {
                    literal += b.len();
                    out.extend_from_slice(b)
                }
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(&hash, blake3::hash(new).as_bytes());
        (out, literal)
    }

    #[test]
    fn issue_17_a_change_in_the_middle_costs_a_chunk_or_two() {
        let old = noise(4 << 20, 7);
        let mut new = old.clone();
        new[2 << 20] ^= 1;
        let (out, literal) = rebuild(&old, &new);
        assert_eq!(out, new);
        assert!(literal < 128 << 10, "{literal}");
        // Bytes inserted and removed shift what follows: still found.
        let mut shifted = old.clone();
        shifted.splice(1000..1000, b"inserted".iter().copied());
        shifted.drain(3_000_000..3_000_100);
        let (out, literal) = rebuild(&old, &shifted);
        assert_eq!(out, shifted);
        assert!(literal < 256 << 10, "{literal}");
        // Nothing in common: all literal, still right.
        let other = noise(1 << 20, 99);
        let (out, literal) = rebuild(&old, &other);
        assert_eq!((out.len(), literal), (other.len(), other.len()));
    }

    #[test]
    fn issue_17_a_peers_chunk_sizes_are_checked() {
        for (min, avg, max) in [
            (0, 0, 0),
            (64, 32, 1024),
            (65, 256, 1024),
            (64, 256, 1 << 30),
        ] {
            let sig = Sig {
                min,
                avg,
                max,
                chunks: Vec::new(),
            };
            assert!(encode(&sig, &mut &b"data"[..], None, &mut |_| Ok(())).is_err());
        }
    }
}
