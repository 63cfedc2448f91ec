//! The one place a gzip stream is opened. Multi-member streams are read to the end, and the
//! decompressed size is capped so a decompression bomb costs at most `cap` bytes of memory.
//! `clippy.toml` bans the raw decoders everywhere else.

#![allow(clippy::disallowed_types)]

use flate2::read::MultiGzDecoder;
use std::io::{ErrorKind, Read};

/// The gzip magic number.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GzipError {
    #[error("truncated gzip: the data ends inside the compressed stream (an interrupted upload?)")]
    Truncated,
    #[error("corrupt gzip: {0}")]
    Corrupt(String),
    #[error(
        "decompresses to more than {cap} bytes, the per-object limit (--max-object-bytes); \
         raise it if the file is genuine"
    )]
    TooLarge { cap: u64 },
}

pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Decompress every member of a gzip stream, failing once the output would exceed `cap` bytes.
pub fn gunzip_capped(bytes: &[u8], cap: u64) -> Result<Vec<u8>, GzipError> {
    let mut out = Vec::with_capacity(size_hint(bytes, cap));
    let mut decoder = MultiGzDecoder::new(bytes).take(cap.saturating_add(1));
    match decoder.read_to_end(&mut out) {
        Ok(_) if out.len() as u64 > cap => Err(GzipError::TooLarge { cap }),
        Ok(_) => Ok(out),
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => Err(GzipError::Truncated),
        Err(e) => Err(GzipError::Corrupt(e.to_string())),
    }
}

/// The gzip trailer's ISIZE (size mod 2^32 of the last member) as a capacity hint, bounded.
fn size_hint(bytes: &[u8], cap: u64) -> usize {
    const MAX_HINT: u64 = 64 << 20;
    let isize = bytes
        .len()
        .checked_sub(4)
        .and_then(|at| bytes.get(at..))
        .map(|tail| u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as u64)
        .unwrap_or(0);
    isize.max(bytes.len() as u64 * 4).min(cap).min(MAX_HINT) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn reads_every_member() {
        let mut two = gzip(b"{\"Records\":");
        two.extend(gzip(b"[]}"));
        assert_eq!(gunzip_capped(&two, 1 << 20).unwrap(), b"{\"Records\":[]}");
    }

    #[test]
    fn names_truncation_corruption_and_bombs() {
        let whole = gzip(&vec![b'x'; 100_000]);
        assert_eq!(
            gunzip_capped(&whole[..whole.len() / 2], 1 << 20),
            Err(GzipError::Truncated)
        );
        assert_eq!(
            gunzip_capped(&whole, 1000),
            Err(GzipError::TooLarge { cap: 1000 })
        );
        let mut bad = whole.clone();
        bad[12] ^= 0xff;
        assert!(gunzip_capped(&bad, 1 << 20).is_err());
        assert_eq!(gunzip_capped(&whole, 100_000).unwrap().len(), 100_000);
    }
}
