//! zstd for file data on the wire (`--compress auto|on|off`), chunk by chunk. `auto` first
//! compresses a small sample of each chunk and sends the chunk as it is when the sample
//! does not shrink (already compressed media, archives, encrypted files): no time spent
//! on data that would not get smaller. Decompression is bounded: a chunk never unpacks to
//! more than [`CHUNK`] bytes, whatever its frame claims.

use std::io::Read;

use ruzstd::decoding::StreamingDecoder;
use ruzstd::encoding::{compress_to_vec, CompressionLevel};
use serde::{Deserialize, Serialize};

use crate::wire::CHUNK;

/// When file data is compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Compress {
    /// Each chunk whose sample shrinks.
    #[default]
    Auto,
    On,
    Off,
}

impl Compress {
    /// As `--compress` and a task's `compress` name it.
    pub fn word(self) -> &'static str {
        match self {
            Compress::Auto => "auto",
            Compress::On => "on",
            Compress::Off => "off",
        }
    }

    /// `auto`, `on` or `off`.
    pub fn from_word(word: &str) -> Option<Compress> {
        [Compress::Auto, Compress::On, Compress::Off]
            .into_iter()
            .find(|c| c.word() == word)
    }
}

/// The sample `auto` tries first, and the share of it that must be saved.
const SAMPLE: usize = 16 << 10;
const MIN_SAVING_PERCENT: usize = 10;

/// Below this, `auto` sends a chunk as it is.
const MIN_PACKED: usize = 512;

fn zstd(bytes: &[u8]) -> Vec<u8> {
    compress_to_vec(bytes, CompressionLevel::Fastest)
}

fn shrinks(raw: usize, packed: usize) -> bool {
    packed * 100 <= raw * (100 - MIN_SAVING_PERCENT)
}

/// A chunk as it goes on the wire: its bytes, and whether they are zstd.
pub fn pack(mode: Compress, chunk: &[u8]) -> (Vec<u8>, bool) {
    let packed = match mode {
        Compress::Off => None,
        Compress::On => Some(zstd(chunk)),
        // A few bytes pack to about as many (a zstd frame has its own header): not worth
        // the compressor's setup, which for a small file costs more than sending it.
        Compress::Auto if chunk.len() < MIN_PACKED => None,
        Compress::Auto => {
            let sample = &chunk[..chunk.len().min(SAMPLE)];
            let tried = zstd(sample);
            match (
                shrinks(sample.len(), tried.len()),
                sample.len() == chunk.len(),
            ) {
                (false, _) => None,
                // The sample was the whole chunk (most files are smaller than a sample):
                // packed already. Packed again, each small file cost two compressions,
                // the client's largest cost in a first sync of 30,000 small files.
                (true, true) => Some(tried),
                (true, false) => Some(zstd(chunk)),
            }
        }
    };
    match packed {
        Some(packed) if mode == Compress::On || shrinks(chunk.len(), packed.len()) => {
            (packed, true)
        }
        _ => (chunk.to_vec(), false),
    }
}

/// A chunk as it came off the wire, unpacked.
pub fn unpack(bytes: Vec<u8>, zstd: bool) -> std::io::Result<Vec<u8>> {
    if !zstd {
        return Ok(bytes);
    }
    let bad = |e: String| std::io::Error::other(format!("protocol error: a bad zstd chunk: {e}"));
    let decoder = StreamingDecoder::new_with_max_window_size(bytes.as_slice(), 2 * CHUNK as u64)
        .map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    decoder.take(CHUNK as u64 + 1).read_to_end(&mut out)?;
    if out.len() > CHUNK {
        return Err(bad(format!("it unpacks to more than {CHUNK} bytes")));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn issue_17_auto_sends_a_few_bytes_as_they_are_on_packs_them() {
        let small = b"ab".repeat(100);
        assert_eq!(pack(Compress::Auto, &small), (small.clone(), false));
        let (packed, z) = pack(Compress::On, &small);
        assert!(z);
        assert_eq!(unpack(packed, z).unwrap(), small);
        assert!(
            pack(Compress::Auto, &b"ab".repeat(400)).1,
            "800 bytes that shrink are packed"
        );
    }

    #[test]
    fn auto_packs_what_shrinks_and_leaves_the_rest() {
        let text = b"the same words again and again ".repeat(4000);
        let (packed, z) = pack(Compress::Auto, &text);
        assert!(z && packed.len() < text.len() / 10);
        assert_eq!(unpack(packed, z).unwrap(), text);
        // Incompressible (pseudo-random) bytes go as they are.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..CHUNK)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert_eq!(pack(Compress::Auto, &noise), (noise.clone(), false));
        assert!(!pack(Compress::Off, &text).1);
        assert!(pack(Compress::On, &noise).1);
    }

    #[test]
    fn issue_17_a_bomb_does_not_unpack_past_a_chunk() {
        let big = vec![0u8; 4 * CHUNK];
        let packed = zstd(&big);
        assert!(unpack(packed, true).is_err());
        assert!(unpack(b"not zstd at all".to_vec(), true).is_err());
    }
}
