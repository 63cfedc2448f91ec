//! The one place a gzip stream is opened. Multi-member streams are read to the end, and the
//! decompressed size is capped so a decompression bomb costs at most `cap` bytes of memory.
//! `clippy.toml` bans the raw decoders everywhere else.
//!
//! Two decoders, one verdict. The hot path inflates the whole object at once with libdeflate
//! (about twice as fast as zlib-rs, which streams), member by member into a buffer sized from the
//! gzip trailer. Anything it does not accept (a truncated or corrupt stream, output past the cap,
//! a header CRC it does not check) is decoded again by flate2's streaming `MultiGzDecoder`,
//! which names the failure: so every outcome, good or bad, is the streaming decoder's.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use flate2::read::MultiGzDecoder;
use std::cell::RefCell;
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
    let mut out = Vec::new();
    let len = gunzip_capped_into(bytes, cap, &mut out)?.len();
    out.truncate(len);
    Ok(out)
}

/// `gunzip_capped` into a buffer the caller keeps between objects (no allocation, no page
/// faults and no zeroing once it is large enough): the decompressed bytes are the slice
/// returned, and the buffer may hold stale bytes after it.
pub fn gunzip_capped_into<'b>(
    bytes: &[u8],
    cap: u64,
    buffer: &'b mut Vec<u8>,
) -> Result<&'b [u8], GzipError> {
    match gunzip_whole(bytes, cap, buffer) {
        Whole::Done(written) => Ok(&buffer[..written]),
        // libdeflate ran out of room at the cap (a bomb, or a truncated stream it read past):
        // the streaming decoder names which, and the cap-sized buffer is let go first, so a
        // bomb costs the cap once, not twice, and no thread keeps a cap-sized buffer after it.
        Whole::OverCap => {
            *buffer = Vec::new();
            *buffer = gunzip_streaming(bytes, cap)?;
            Ok(&buffer[..])
        }
        Whole::Other => {
            *buffer = gunzip_streaming(bytes, cap)?;
            Ok(&buffer[..])
        }
    }
}

/// What the fast path made of a stream.
enum Whole {
    /// Every member inflated: the bytes written.
    Done(usize),
    /// A member did not fit in the room left below `cap`.
    OverCap,
    /// Not plainly valid (or a header CRC to check): the streaming decoder decides.
    Other,
}

/// The streaming decoder: the reference behaviour, and the one that names failures. Its buffer
/// grows by doubling but never past `cap + 1` bytes, so a bomb costs at most the cap.
fn gunzip_streaming(bytes: &[u8], cap: u64) -> Result<Vec<u8>, GzipError> {
    let limit = usize::try_from(cap.saturating_add(1)).unwrap_or(usize::MAX);
    let hint = size_hint(bytes, cap).min(64 << 20);
    let mut out = Vec::with_capacity(hint);
    let mut decoder = MultiGzDecoder::new(bytes).take(cap.saturating_add(1));
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        match decoder.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                if out.len() + n > out.capacity() {
                    let grown = out.capacity().saturating_mul(2).clamp(out.len() + n, limit);
                    out.reserve_exact(grown - out.len());
                }
                out.extend_from_slice(&chunk[..n]);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Err(GzipError::Truncated),
            Err(e) => return Err(GzipError::Corrupt(e.to_string())),
        }
    }
    if out.len() as u64 > cap {
        return Err(GzipError::TooLarge { cap });
    }
    Ok(out)
}

thread_local! {
    /// libdeflate's decompressor holds ~32 KiB of tables: one per thread, reused.
    static DECOMPRESSOR: RefCell<Option<libdeflate::Decompressor>> =
        RefCell::new(libdeflate::Decompressor::new());
}

/// The hot path: every member inflated by libdeflate into `out` (grown as needed, never
/// shrunk), giving the bytes written; `OverCap` when a member does not fit in `cap`, `Other`
/// when the stream is not plainly valid (the streaming decoder then says why).
fn gunzip_whole(bytes: &[u8], cap: u64, out: &mut Vec<u8>) -> Whole {
    let cap = usize::try_from(cap).unwrap_or(usize::MAX);
    DECOMPRESSOR.with_borrow_mut(|decompressor| {
        let Some(decompressor) = decompressor.as_mut() else {
            return Whole::Other;
        };
        let hint = size_hint(bytes, cap as u64);
        if out.len() < hint {
            out.resize(hint, 0);
        }
        let (mut rest, mut written) = (bytes, 0);
        while !rest.is_empty() {
            if has_header_crc(rest) {
                return Whole::Other;
            }
            let room = out.len().min(cap);
            match decompressor.member(rest, &mut out[written..room]) {
                libdeflate::Member::Done { read, wrote } => {
                    rest = &rest[read..];
                    written += wrote;
                }
                libdeflate::Member::NoRoom if out.len() < cap => {
                    let more = (out.len().saturating_mul(2))
                        .max(out.len() + (64 << 10))
                        .max(written + size_hint(rest, cap as u64));
                    out.resize(more.min(cap), 0);
                }
                libdeflate::Member::NoRoom => return Whole::OverCap,
                libdeflate::Member::Bad => return Whole::Other,
            }
        }
        Whole::Done(written)
    })
}

/// The gzip member of stored (uncompressed) deflate blocks at the start of `bytes`, as
/// `gzip_stored_onto` writes it (a header with no optional fields), walked without copying or
/// checking its CRC: how many bytes it takes, and the first `prefix` bytes it holds (fewer if
/// it holds fewer). `None` if `bytes` do not start with such a member.
pub fn stored_member(bytes: &[u8], prefix: usize) -> Option<(usize, Vec<u8>)> {
    const HEADER: usize = 10;
    const TRAILER: usize = 8;
    let header = bytes.get(..HEADER)?;
    // ID1 ID2, deflate, no flags (no name, comment, extra field or header CRC).
    if header[..4] != [0x1f, 0x8b, 8, 0] {
        return None;
    }
    let (mut at, mut held) = (HEADER, Vec::with_capacity(prefix));
    loop {
        // A stored block: BFINAL in bit 0 and BTYPE 00 in bits 1-2 of a byte whose other bits
        // pad to the byte's end, then LEN and its complement NLEN, then LEN bytes.
        let block = bytes.get(at..at + 5)?;
        if block[0] & 0b110 != 0 {
            return None;
        }
        let len = u16::from_le_bytes([block[1], block[2]]);
        if u16::from_le_bytes([block[3], block[4]]) != !len {
            return None;
        }
        let data = bytes.get(at + 5..at + 5 + usize::from(len))?;
        let wanted = prefix - held.len();
        held.extend_from_slice(&data[..data.len().min(wanted)]);
        at += 5 + usize::from(len);
        if block[0] & 1 == 1 {
            break;
        }
    }
    bytes.get(at..at + TRAILER)?;
    Some((at + TRAILER, held))
}

/// Whether `bytes` are exactly one whole gzip member whose data inflates to at most `cap`
/// bytes (its CRC and size checked), inflated a buffer at a time and dropped.
pub fn is_one_member(bytes: &[u8], cap: u64) -> bool {
    let mut decoder = flate2::bufread::GzDecoder::new(bytes).take(cap.saturating_add(1));
    let inflated = std::io::copy(&mut decoder, &mut std::io::sink());
    inflated.is_ok_and(|n| n <= cap) && decoder.into_inner().into_inner().is_empty()
}

/// A member whose header carries its own CRC16 (FHCRC): rare, and libdeflate skips it unchecked.
fn has_header_crc(member: &[u8]) -> bool {
    const FHCRC: u8 = 0x02;
    member.get(3).is_some_and(|flags| flags & FHCRC != 0)
}

/// The output size to expect: the gzip trailer's ISIZE (the size mod 2^32 of the last member)
/// when it is a possible expansion of the input (deflate expands at most ~1032x), else four
/// times the input; never more than `cap`.
fn size_hint(bytes: &[u8], cap: u64) -> usize {
    const MAX_DEFLATE_RATIO: u64 = 1032;
    let len = bytes.len() as u64;
    let isize = bytes
        .len()
        .checked_sub(4)
        .and_then(|at| bytes.get(at..))
        .map(|tail| u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as u64)
        .filter(|&isize| isize <= len.saturating_mul(MAX_DEFLATE_RATIO))
        .unwrap_or(len.saturating_mul(4));
    usize::try_from(isize.min(cap)).unwrap_or(usize::MAX)
}

/// The few lines of FFI to libdeflate's multi-member-aware gzip call (`libdeflater`, the safe
/// wrapper, does not say where a member ends).
mod libdeflate {
    use libdeflate_sys as sys;
    use std::ptr::NonNull;

    pub struct Decompressor(NonNull<sys::libdeflate_decompressor>);

    pub enum Member {
        /// One whole member, its CRC32 and size checked: input bytes read, output bytes written.
        Done { read: usize, wrote: usize },
        /// The output buffer is too small for this member.
        NoRoom,
        /// Not a valid gzip member (or a truncated one).
        Bad,
    }

    impl Decompressor {
        pub fn new() -> Option<Decompressor> {
            // SAFETY: a plain allocation; NULL (out of memory) is turned into `None`.
            NonNull::new(unsafe { sys::libdeflate_alloc_decompressor() }).map(Decompressor)
        }

        /// Inflate the gzip member at the start of `input` into the start of `out`.
        pub fn member(&mut self, input: &[u8], out: &mut [u8]) -> Member {
            let (mut read, mut wrote) = (0usize, 0usize);
            // SAFETY: the decompressor is live and used by this thread only (`&mut self`); the
            // pointers and lengths come from live slices, and libdeflate reads at most
            // `input.len()` bytes and writes at most `out.len()` bytes.
            let result = unsafe {
                sys::libdeflate_gzip_decompress_ex(
                    self.0.as_ptr(),
                    input.as_ptr().cast(),
                    input.len(),
                    out.as_mut_ptr().cast(),
                    out.len(),
                    &mut read,
                    &mut wrote,
                )
            };
            match result {
                sys::libdeflate_result_LIBDEFLATE_SUCCESS if read > 0 && read <= input.len() => {
                    Member::Done { read, wrote }
                }
                sys::libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE => Member::NoRoom,
                _ => Member::Bad,
            }
        }
    }

    impl Drop for Decompressor {
        fn drop(&mut self) {
            // SAFETY: allocated by `libdeflate_alloc_decompressor`, freed once.
            unsafe { sys::libdeflate_free_decompressor(self.0.as_ptr()) }
        }
    }

    pub struct Compressor(NonNull<sys::libdeflate_compressor>);

    impl Compressor {
        /// A compressor at `level` (0 stores, 1 is the fastest, 12 the smallest), or `None`
        /// for a level out of that range or out of memory.
        pub fn new(level: i32) -> Option<Compressor> {
            // SAFETY: a plain allocation; NULL (a bad level, out of memory) becomes `None`.
            NonNull::new(unsafe { sys::libdeflate_alloc_compressor(level) }).map(Compressor)
        }

        /// `input` as one gzip member (no name, no time in its header), appended to `out`.
        /// `room` is tried first (the member's expected size); the worst case's room if that
        /// is too little.
        pub fn gzip_onto(&mut self, input: &[u8], room: usize, out: &mut Vec<u8>) {
            // SAFETY: the compressor is live and used by this thread only (`&mut self`).
            let bound =
                unsafe { sys::libdeflate_gzip_compress_bound(self.0.as_ptr(), input.len()) };
            if room < bound && self.try_gzip_onto(input, room, out) {
                return;
            }
            // The bound is room enough for any input.
            assert!(
                self.try_gzip_onto(input, bound, out),
                "libdeflate's gzip bound was too small"
            );
        }

        /// `gzip_onto` with `room` bytes reserved: false (`out` unchanged) if they are too few.
        fn try_gzip_onto(&mut self, input: &[u8], room: usize, out: &mut Vec<u8>) -> bool {
            out.reserve_exact(room);
            let spare = &mut out.spare_capacity_mut()[..room];
            // SAFETY: the compressor is live and used by this thread only (`&mut self`); the
            // pointers and lengths come from a live slice and the room `out` reserved, and
            // libdeflate reads at most `input.len()` bytes and writes at most `spare.len()`.
            let written = unsafe {
                sys::libdeflate_gzip_compress(
                    self.0.as_ptr(),
                    input.as_ptr().cast(),
                    input.len(),
                    spare.as_mut_ptr().cast(),
                    spare.len(),
                )
            };
            // SAFETY: libdeflate wrote `written` bytes (0: it did not fit) after `out`'s own.
            unsafe { out.set_len(out.len() + written) };
            written > 0
        }
    }

    impl Drop for Compressor {
        fn drop(&mut self) {
            // SAFETY: allocated by `libdeflate_alloc_compressor`, freed once.
            unsafe { sys::libdeflate_free_compressor(self.0.as_ptr()) }
        }
    }
}

/// `bytes` compressed whole as one gzip member by libdeflate at its fastest level (about a
/// sixth smaller than zlib's fastest, and quicker), with no name and no time in the header: the
/// same bytes always give the same stream. For what trailsight writes itself (the state).
pub fn gzip_fast(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    gzip_fast_onto(bytes, &mut out);
    out
}

/// `gzip_fast`, appended to `out`: the member is written into `out`'s own room, where
/// returning it would hold the compressor's worst-case room beside `out` (a state segment's
/// cells: megabytes) and then copy it. Half the input's size is tried first (what trailsight
/// writes shrinks about threefold), then the worst case's room.
pub fn gzip_fast_onto(bytes: &[u8], out: &mut Vec<u8>) {
    gzip_onto(1, bytes, bytes.len() / 2 + 1024, out);
}

/// `bytes` as one gzip member of stored (uncompressed) deflate blocks, by libdeflate, appended
/// to `out`: for what trailsight writes itself that deflate would barely shrink (a state's
/// event ID hashes), framed and checksummed as any gzip member, at the cost of a copy.
pub fn gzip_stored_onto(bytes: &[u8], out: &mut Vec<u8>) {
    gzip_onto(0, bytes, usize::MAX, out);
}

/// `bytes` as one gzip member by libdeflate at `level` (0 to 12), appended to `out`, in
/// `room` bytes if they are enough.
fn gzip_onto(level: i32, bytes: &[u8], room: usize, out: &mut Vec<u8>) {
    libdeflate::Compressor::new(level)
        .expect("allocating libdeflate's compressor (out of memory)")
        .gzip_onto(bytes, room, out);
}

/// A reader that fails once more than `left` bytes come out of `inner` (a gzip bomb, or a
/// state over `MAX_STATE_BYTES`), instead of handing them on.
pub struct Capped<R> {
    inner: R,
    left: u64,
    cap: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // One byte past the cap is asked for, so a stream going over it is seen.
        let room = buf
            .len()
            .min(usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..room])?;
        if n as u64 > self.left {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("it inflates to more than {} bytes", self.cap),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A streaming gzip decoder of `bytes` that fails past `cap` decompressed bytes: the streaming
/// counterpart of `gunzip_capped`, for the saved state (read straight into its aggregator).
pub fn gunzip_capped_reader(bytes: &[u8], cap: u64) -> Capped<flate2::read::GzDecoder<&[u8]>> {
    Capped {
        inner: flate2::read::GzDecoder::new(bytes),
        left: cap,
        cap,
    }
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

    /// A stored member is walked to its end whatever its number of blocks, giving the start
    /// of what it holds; anything else, or a cut one, is not taken for one. A member is one
    /// member only when nothing follows it and it is whole and within the cap.
    #[test]
    fn stored_members_are_walked_and_single_members_checked() {
        for len in [0, 1, 40, 65_535, 65_536, 200_000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let mut bytes = Vec::new();
            gzip_stored_onto(&data, &mut bytes);
            let member = bytes.len();
            gzip_fast_onto(&data, &mut bytes);
            let (end, start) = stored_member(&bytes, 30).unwrap();
            assert_eq!((end, &start[..]), (member, &data[..len.min(30)]), "{len}");
            assert!(is_one_member(&bytes[member..], len as u64));
            if len > 0 {
                assert!(
                    !is_one_member(&bytes[member..], len as u64 - 1),
                    "over the cap"
                );
            }
            assert!(!is_one_member(&bytes, u64::MAX), "two members");
            assert!(!is_one_member(&bytes[member..bytes.len() - 1], u64::MAX));
            if len >= 1000 {
                assert_eq!(stored_member(&bytes[member..], 30), None, "compressed");
            }
            for cut in [5, 12, member - 9, member - 1] {
                assert_eq!(stored_member(&bytes[..cut], 30), None, "{len} cut at {cut}");
            }
        }
        let mut flagged = Vec::new();
        gzip_stored_onto(b"x", &mut flagged);
        flagged[3] = 0x08;
        assert_eq!(stored_member(&flagged, 1), None, "a name in the header");
    }

    /// What `gzip_fast` writes is a plain gzip stream: read back whole by both decoders (and
    /// by flate2's single-member one, which older state readers used), the same bytes each
    /// time, with no time in the header.
    #[test]
    fn gzip_fast_round_trips_through_every_decoder() {
        let text: Vec<u8> = (0..100_000u32)
            .flat_map(|i| format!("{{\"n\":{i}}}").into_bytes())
            .collect();
        for bytes in [&b""[..], b"x", &text] {
            let packed = gzip_fast(bytes);
            assert_eq!(packed, gzip_fast(bytes));
            assert_eq!(&packed[4..8], &[0, 0, 0, 0], "no time in the header");
            assert_eq!(gunzip_capped(&packed, u64::MAX).unwrap(), bytes);
            assert_eq!(gunzip_streaming(&packed, u64::MAX).unwrap(), bytes);
            let mut single = Vec::new();
            gunzip_capped_reader(&packed, u64::MAX)
                .read_to_end(&mut single)
                .unwrap();
            assert_eq!(single, bytes);
        }
    }

    /// Members appended after bytes already held: those kept, each member read back, and
    /// input that does not shrink (the first room tried too small) written all the same.
    #[test]
    fn members_appended_in_place_keep_what_was_there() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..100_000)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as u8
            })
            .collect();
        let text = b"{\"n\":1}".repeat(10_000);
        for bytes in [&noise[..], &text, b""] {
            let mut out = b"kept".to_vec();
            gzip_stored_onto(bytes, &mut out);
            let stored = out.len() - 4;
            gzip_fast_onto(bytes, &mut out);
            assert_eq!(&out[..4], b"kept");
            assert_eq!(gunzip_capped(&out[4..4 + stored], u64::MAX).unwrap(), bytes);
            assert_eq!(&out[4 + stored..], gzip_fast(bytes));
            assert_eq!(gunzip_capped(&out[4 + stored..], u64::MAX).unwrap(), bytes);
        }
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

    /// The fast path must agree with the streaming decoder on every input: whole streams,
    /// members whose trailer understates the total, empty members, truncations, flipped bytes,
    /// trailing garbage, header CRCs, and caps met exactly or exceeded in a later member.
    #[test]
    fn the_fast_path_agrees_with_the_streaming_decoder() {
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("{{\"n\":{i},\"s\":\"x{}\"}},", i % 97).into_bytes())
            .collect();
        let big = gzip(&text);
        let mut members = gzip(&text[..150_000]);
        members.extend(gzip(b""));
        members.extend(gzip(&text[..10]));
        let mut garbage = big.clone();
        garbage.extend(b"garbage");
        let mut zeros = gzip(b"{}");
        zeros.extend([0u8; 16]);
        let mut header_crc = gzip(b"{\"Records\":[]}");
        header_crc[3] |= 0x02;
        header_crc.splice(10..10, [0u8, 0]);
        let mut cases = vec![big.clone(), members.clone(), garbage, zeros, header_crc];
        for cut in [
            1,
            2,
            10,
            11,
            17,
            18,
            big.len() / 3,
            big.len() - 8,
            big.len() - 1,
        ] {
            cases.push(big[..cut].to_vec());
        }
        for at in (0..members.len()).step_by(members.len() / 40) {
            let mut flipped = members.clone();
            flipped[at] ^= 0x55;
            cases.push(flipped);
        }
        let total = 150_000 + 10;
        for bytes in &cases {
            for cap in [u64::MAX, text.len() as u64, total, total - 1, 1000, 0] {
                assert_eq!(
                    gunzip_capped(bytes, cap),
                    gunzip_streaming(bytes, cap),
                    "{} bytes starting {:02x?}, cap {cap}",
                    bytes.len(),
                    &bytes[..bytes.len().min(12)]
                );
                // A reused buffer, larger than the cap and full of an earlier object's bytes.
                let mut used = vec![0xaa; 1 << 20];
                assert_eq!(
                    gunzip_capped_into(bytes, cap, &mut used).map(<[u8]>::to_vec),
                    gunzip_streaming(bytes, cap),
                    "reused buffer: {} bytes, cap {cap}",
                    bytes.len()
                );
            }
        }
        assert_eq!(gunzip_capped(&members, total).unwrap().len() as u64, total);
        assert!(
            matches!(
                gunzip_whole(&members, u64::MAX, &mut Vec::new()),
                Whole::Done(_)
            ),
            "the fast path reads members"
        );
    }
}
