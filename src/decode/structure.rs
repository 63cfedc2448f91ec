//! Skipping a JSON object or array the job does not read, 64 bytes at a time.
//!
//! Most of a CloudTrail record's bytes are nested values nobody counts (`requestParameters`,
//! `responseElements`, `userIdentity.sessionContext`, `tlsDetails`). Walking them token by token
//! costs as much as reading the fields that matter. Here each 64-byte block is classified into
//! three bit masks (quotes; brackets; backslashes and control bytes together, told apart only
//! in a block that has any: CloudTrail's skipped values rarely do), the strings'
//! interiors are found by bit arithmetic (escaped quotes removed, then a prefix XOR of the
//! quotes), and only the brackets outside strings are counted: a block whose closing brackets
//! cannot reach the value's end costs a handful of instructions. Which control bytes are JSON
//! whitespace (`\t`, `\n`, `\r`, allowed outside strings) is looked at only in a block that has
//! control bytes: compact JSON has none.
//!
//! What is checked inside a skipped value: every string is closed, holds no control byte, and
//! has only valid escapes (`\uXXXX` with four hex digits); no backslash or control byte other
//! than JSON whitespace stands outside a string; the brackets balance, each closing the kind
//! that opened it. What is not: the order of the tokens between them (commas, colons, numbers,
//! literals), which a byte walker would check token by token. A value whose tokens are out of
//! order but whose strings and brackets are sound is skipped like a valid one: nothing the job
//! reads depends on it, and the record around it is still read and checked in full.
//!
//! The masks come from SSE2 (every x86-64 CPU), AVX2 when the CPU has it (chosen at run time),
//! or portable code elsewhere; each level gives the same answer (tested, and fuzzed).

/// How the blocks are classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Sse2,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Level {
    /// The fastest level this CPU runs.
    pub fn best() -> Level {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") {
                return Level::Avx2;
            }
            Level::Sse2
        }
        #[cfg(not(target_arch = "x86_64"))]
        Level::Portable
    }

    /// Every level this CPU runs, slowest first (for tests).
    pub fn available() -> Vec<Level> {
        let mut levels = vec![Level::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            levels.push(Level::Sse2);
            if std::is_x86_feature_detected!("avx2") {
                levels.push(Level::Avx2);
            }
        }
        levels
    }
}

/// `b[open]` is `{` or `[`: the index just after the bracket that closes it, or `None` when the
/// value is unsound (see the module comment) or not closed before the end of `b`.
#[inline]
pub fn skip_container(b: &[u8], open: usize) -> Option<usize> {
    skip_container_with(Level::best(), b, open)
}

/// `skip_container` with the masks of a given level.
#[inline(always)]
pub fn skip_container_with(level: Level, b: &[u8], open: usize) -> Option<usize> {
    match level {
        Level::Portable => scan(b, open, portable::classify),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: SSE2 is part of the x86-64 baseline.
        Level::Sse2 => unsafe { x86::scan_sse2(b, open) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Level::Avx2` is only chosen (or offered) when the CPU has AVX2; a caller who
        // names it on a CPU without AVX2 is a test on the wrong machine.
        Level::Avx2 => {
            if std::is_x86_feature_detected!("avx2") {
                unsafe { x86::scan_avx2(b, open) }
            } else {
                scan(b, open, portable::classify)
            }
        }
    }
}

/// One block's bytes, by kind: bit `i` stands for byte `i` of the block. Three masks (three
/// movemasks a vector): which bracket is open or closing, and which special byte is a backslash
/// or a control byte, are read from the few bytes concerned (`split_special`, `Brackets::apply`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Masks {
    pub quote: u64,
    /// Backslashes and bytes below 0x20 (none in most blocks: compact JSON without escapes).
    pub special: u64,
    /// `{`, `[`, `}` and `]`.
    pub bracket: u64,
}

impl Masks {
    /// A part of the block's bits (quote, special, bracket: each a movemask of the part's
    /// bytes), placed at bit `shift`.
    #[inline(always)]
    fn add_part(&mut self, shift: usize, [quote, special, bracket]: [u64; 3]) {
        self.quote |= quote << shift;
        self.special |= special << shift;
        self.bracket |= bracket << shift;
    }
}

/// Of the block's special bytes (`special`, not empty), the backslashes and the control bytes.
/// Out of line: CloudTrail's skipped values rarely hold either.
#[cold]
#[inline(never)]
fn split_special(block: &[u8; 64], mut special: u64) -> (u64, u64) {
    let (mut backslash, mut control) = (0, 0);
    while special != 0 {
        let i = special.trailing_zeros();
        special &= special - 1;
        if block[i as usize] == b'\\' {
            backslash |= 1 << i;
        } else {
            control |= 1 << i;
        }
    }
    (backslash, control)
}

/// Of the block's control bytes (`control`, not empty), the JSON whitespace ones: `\t`, `\n`
/// and `\r`, the control bytes allowed outside strings. Out of line: compact JSON has none.
#[cold]
fn whitespace_among(block: &[u8; 64], mut control: u64) -> u64 {
    let mut whitespace = 0;
    while control != 0 {
        let i = control.trailing_zeros();
        control &= control - 1;
        if matches!(block[i as usize], b'\t' | b'\n' | b'\r') {
            whitespace |= 1 << i;
        }
    }
    whitespace
}

/// The scan itself, generic over how a block is classified (inlined into each level's
/// `target_feature` function, so the classifier inlines too).
#[inline(always)]
fn scan(b: &[u8], open: usize, classify: impl Fn(&[u8; 64]) -> Masks) -> Option<usize> {
    let mut stack = Brackets::new(b[open]);
    let mut at = open + 1;
    // Carried from block to block: inside a string (all ones) or not, and whether the block
    // starts with a byte escaped by the previous one's last backslash.
    let mut in_string_carry = 0u64;
    let mut escape_carry = 0u64;
    let mut tail;
    loop {
        let block: &[u8; 64] = match b.get(at..).and_then(|rest| rest.first_chunk::<64>()) {
            Some(block) => block,
            None => {
                let rest = b.get(at..).filter(|rest| !rest.is_empty())?;
                tail = [b' '; 64];
                tail[..rest.len()].copy_from_slice(rest);
                &tail
            }
        };
        let m = classify(block);
        let (backslash, control) = match m.special {
            0 => (0, 0),
            special => split_special(block, special),
        };
        let escaped = escaped_bytes(backslash, &mut escape_carry);
        let quotes = m.quote & !escaped;
        // Bit i set: byte i is inside a string (its opening quote included, its closing not).
        let in_string = prefix_xor(quotes) ^ in_string_carry;
        in_string_carry = ((in_string as i64) >> 63) as u64;
        let outside = !in_string & !quotes;
        let unsound_control = match control {
            0 => 0,
            control => control & (in_string | !whitespace_among(block, control)),
        };
        let unsound = unsound_control | (backslash & outside & !escaped);
        if unsound != 0 {
            return None;
        }
        if escaped != 0 && !escapes_are_valid(b, at, escaped) {
            return None;
        }
        let brackets = m.bracket & outside;
        if brackets != 0
            && let Some(end) = stack.apply(block, brackets).ok()?
        {
            return Some(at + end + 1);
        }
        at += 64;
    }
}

/// The open brackets of the value being skipped, innermost last, as bits (1 = `{`), so a
/// closing bracket can be checked against the one it closes.
struct Brackets {
    /// Bit i: the kind of the bracket at depth i + 1 (up to 64 deep; deeper kinds in `deep`).
    kinds: u64,
    depth: usize,
    deep: Vec<bool>,
}

impl Brackets {
    fn new(first: u8) -> Brackets {
        Brackets {
            kinds: u64::from(first == b'{'),
            depth: 1,
            deep: Vec::new(),
        }
    }

    /// Count this block's brackets (outside strings), each checked against the one it closes: `Err` when one
    /// closes the wrong kind, else the index in the block of the one that closes the value.
    /// (Brackets are few beside the other bytes: a block without any costs one test.)
    #[inline(always)]
    fn apply(&mut self, block: &[u8; 64], mut brackets: u64) -> Result<Option<usize>, ()> {
        while brackets != 0 {
            let i = brackets.trailing_zeros() as usize;
            brackets &= brackets - 1;
            // `{` `}` are 0x7b 0x7d, `[` `]` 0x5b 0x5d: bit 0x20 tells the kind, bit 0x02 an
            // opening bracket from a closing one.
            let is_object = block[i] & 0x20 != 0;
            if block[i] & 0x02 != 0 {
                self.push(is_object);
            } else {
                if self.pop() != is_object {
                    return Err(());
                }
                if self.depth == 0 {
                    return Ok(Some(i));
                }
            }
        }
        Ok(None)
    }

    fn push(&mut self, is_object: bool) {
        if self.depth < 64 {
            self.kinds = (self.kinds & !(1 << self.depth)) | (u64::from(is_object) << self.depth);
        } else {
            self.deep.push(is_object);
        }
        self.depth += 1;
    }

    /// The kind of the innermost open bracket, closed (depth is at least 1 here: the scan
    /// stops when it reaches 0).
    fn pop(&mut self) -> bool {
        self.depth -= 1;
        if self.depth < 64 {
            self.kinds >> self.depth & 1 == 1
        } else {
            self.deep.pop().unwrap_or(false)
        }
    }
}

/// The bytes escaped by a backslash (simdjson's branchless odd-run rule): a run of backslashes
/// escapes the byte after it when the run's length is odd. `carry` says whether the first byte
/// of this block is escaped by the previous block's last backslash, and is updated for the next.
#[inline(always)]
fn escaped_bytes(backslash: u64, carry: &mut u64) -> u64 {
    if backslash == 0 {
        let escaped = *carry;
        *carry = 0;
        return escaped;
    }
    const EVEN: u64 = 0x5555_5555_5555_5555;
    let backslash = backslash & !*carry;
    let follows_escape = (backslash << 1) | *carry;
    let odd_starts = backslash & !EVEN & !follows_escape;
    let (even_runs, overflow) = odd_starts.overflowing_add(backslash);
    *carry = u64::from(overflow);
    let invert = even_runs << 1;
    (EVEN ^ invert) & follows_escape
}

/// Bit i: the XOR of bits 0..=i (an odd number of quotes at or before byte i: inside a string).
#[inline(always)]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// Each escaped byte is one JSON allows after a backslash; `\u` takes four hex digits (read from
/// `b`, so they may run into the next block).
#[cold]
fn escapes_are_valid(b: &[u8], at: usize, mut escaped: u64) -> bool {
    while escaped != 0 {
        let i = at + escaped.trailing_zeros() as usize;
        escaped &= escaped - 1;
        match b.get(i) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
            Some(b'u') => match b.get(i + 1..i + 5) {
                Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => {}
                _ => return false,
            },
            // Past the end: the tail's padding, never escaped by a real backslash but the last.
            _ => return false,
        }
    }
    true
}

mod portable {
    use super::Masks;

    pub fn classify(block: &[u8; 64]) -> Masks {
        let mut m = Masks::default();
        for (i, &c) in block.iter().enumerate() {
            let bit = 1u64 << i;
            match c {
                b'"' => m.quote |= bit,
                b'\\' | 0..=0x1f => m.special |= bit,
                b'{' | b'[' | b'}' | b']' => m.bracket |= bit,
                _ => {}
            }
        }
        m
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Masks, scan};
    use std::arch::x86_64::*;

    /// # Safety
    /// SSE2 only: always available on x86-64.
    #[target_feature(enable = "sse2")]
    pub unsafe fn scan_sse2(b: &[u8], open: usize) -> Option<usize> {
        scan(b, open, |block| {
            // SAFETY: SSE2 is enabled for this function.
            unsafe { classify_sse2(block) }
        })
    }

    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn scan_avx2(b: &[u8], open: usize) -> Option<usize> {
        scan(b, open, |block| {
            // SAFETY: AVX2 is enabled for this function (its caller checked the CPU).
            unsafe { classify_avx2(block) }
        })
    }

    #[target_feature(enable = "sse2")]
    #[inline]
    unsafe fn classify_sse2(block: &[u8; 64]) -> Masks {
        let mut m = Masks::default();
        for part in 0..4 {
            // SAFETY: bytes 16*part..16*part+16 are within the block; unaligned load.
            let v = unsafe { _mm_loadu_si128(block.as_ptr().add(16 * part).cast::<__m128i>()) };
            let is = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
            // `{` 0x7b / `[` 0x5b and `}` 0x7d / `]` 0x5d differ only in bit 0x20.
            let folded = _mm_andnot_si128(_mm_set1_epi8(0x20), v);
            let is_folded = |c: u8| _mm_cmpeq_epi8(folded, _mm_set1_epi8(c as i8));
            let limit = _mm_set1_epi8(0x1f);
            let control = _mm_cmpeq_epi8(_mm_max_epu8(v, limit), limit);
            let bits = |x: __m128i| _mm_movemask_epi8(x) as u16 as u64;
            m.add_part(
                16 * part,
                [
                    bits(is(b'"')),
                    bits(_mm_or_si128(is(b'\\'), control)),
                    bits(_mm_or_si128(is_folded(b'['), is_folded(b']'))),
                ],
            );
        }
        m
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn classify_avx2(block: &[u8; 64]) -> Masks {
        let mut m = Masks::default();
        for part in 0..2 {
            // SAFETY: bytes 32*part..32*part+32 are within the block; unaligned load.
            let v = unsafe { _mm256_loadu_si256(block.as_ptr().add(32 * part).cast::<__m256i>()) };
            let is = |c: u8| _mm256_cmpeq_epi8(v, _mm256_set1_epi8(c as i8));
            let folded = _mm256_andnot_si256(_mm256_set1_epi8(0x20), v);
            let is_folded = |c: u8| _mm256_cmpeq_epi8(folded, _mm256_set1_epi8(c as i8));
            let limit = _mm256_set1_epi8(0x1f);
            let control = _mm256_cmpeq_epi8(_mm256_max_epu8(v, limit), limit);
            let bits = |x: __m256i| _mm256_movemask_epi8(x) as u32 as u64;
            m.add_part(
                32 * part,
                [
                    bits(is(b'"')),
                    bits(_mm256_or_si256(is(b'\\'), control)),
                    bits(_mm256_or_si256(is_folded(b'['), is_folded(b']'))),
                ],
            );
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// A random valid JSON string: escapes of every kind, brackets and quotes inside, runs of
    /// backslashes, non-ASCII text.
    fn string(rng: &mut Rng, out: &mut String) {
        out.push('"');
        for _ in 0..rng.below(24) {
            let piece = match rng.below(12) {
                0 => "\\\"",
                1 => "\\\\",
                2 => "\\\\\\\"",
                3 => "\\u00e9",
                4 => "{[",
                5 => "]}",
                6 => "é日",
                7 => "\\n\\t\\/",
                8 => ",:",
                _ => "abcdefgh",
            };
            out.push_str(piece);
        }
        out.push('"');
    }

    /// A random valid JSON value, containers `depth` deep at most.
    fn value(rng: &mut Rng, depth: u32, out: &mut String) {
        let kind = if depth == 0 {
            rng.below(4)
        } else {
            rng.below(7)
        };
        match kind {
            0 => string(rng, out),
            1 => out.push_str(["true", "false", "null"][rng.below(3) as usize]),
            2 => out.push_str(["0", "-12.5e3", "123456789", "1E+2"][rng.below(4) as usize]),
            3 => out.push_str(["{}", "[]", "[ ]", "{ }"][rng.below(4) as usize]),
            4 | 5 => {
                out.push('{');
                for n in 0..rng.below(5) {
                    if n > 0 {
                        out.push_str([",", ", ", ",\n\t"][rng.below(3) as usize]);
                    }
                    string(rng, out);
                    out.push_str([":", ": "][rng.below(2) as usize]);
                    value(rng, depth - 1, out);
                }
                out.push('}');
            }
            _ => {
                out.push('[');
                for n in 0..rng.below(5) {
                    if n > 0 {
                        out.push(',');
                    }
                    value(rng, depth - 1, out);
                }
                out.push(']');
            }
        }
    }

    /// What each level answers for the value at `open`; all must agree.
    fn answer(b: &[u8], open: usize) -> Option<usize> {
        let levels = Level::available();
        let first = skip_container_with(levels[0], b, open);
        for &level in &levels[1..] {
            assert_eq!(
                skip_container_with(level, b, open),
                first,
                "{level:?} at {open}: {}",
                String::from_utf8_lossy(b)
            );
        }
        first
    }

    #[test]
    fn every_level_finds_the_end_of_valid_values() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut found = 0;
        for _ in 0..3000 {
            let mut text = " ".repeat(rng.below(70) as usize);
            let open = text.len();
            let before = text.len();
            value(&mut rng, 4, &mut text);
            let first = text.as_bytes()[open];
            if first != b'{' && first != b'[' {
                continue;
            }
            let end = text.len();
            assert!(serde_json::from_str::<serde::de::IgnoredAny>(&text[before..]).is_ok());
            text.push_str(&",\"after\":1}".repeat(rng.below(3) as usize));
            assert_eq!(answer(text.as_bytes(), open), Some(end), "{text}");
            found += 1;
        }
        assert!(found > 1000, "{found} containers");
    }

    #[test]
    fn every_level_refuses_unsound_values() {
        for unsound in [
            r#"{"a":"unterminated}"#,
            "{\"a\":\"control \u{1} byte\"}",
            "{\"a\":\"tab\tin a string\"}",
            "[1,\u{0}2]",
            r#"{"a":"\q"}"#,
            r#"{"a":"\u12G4"}"#,
            r#"{"a":"\u12"}"#,
            r#"{"a":[1,2}}"#,
            r#"[{"a":1]]"#,
            r#"[1, \ 2]"#,
            r#"{"a":{"b":1}"#,
            "[",
            r#"["\"#,
        ] {
            assert_eq!(answer(unsound.as_bytes(), 0), None, "{unsound}");
        }
        // Whitespace control bytes outside strings are JSON whitespace.
        assert_eq!(answer(b"[\t1,\r\n2 ]", 0), Some(9));
    }

    #[test]
    fn deep_values_are_matched_past_the_bit_stack() {
        for depth in [1, 63, 64, 65, 200] {
            let sound = format!("{}{}", "[{\"k\":".repeat(depth), "}]".repeat(depth));
            // `[{"k":}]` is out of order but sound: brackets and strings only are checked.
            assert_eq!(answer(sound.as_bytes(), 0), Some(sound.len()), "{depth}");
            let mut crossed = sound.clone().into_bytes();
            let last = crossed.len() - 1;
            crossed[last] = b'}';
            assert_eq!(answer(&crossed, 0), None, "{depth}");
            let inner = 2 * depth - 1;
            crossed = sound.clone().into_bytes();
            let close = sound.len() - inner - 1;
            crossed[close] = if crossed[close] == b'}' { b']' } else { b'}' };
            assert_eq!(answer(&crossed, 0), None, "{depth}");
        }
    }

    #[test]
    fn escapes_across_block_boundaries() {
        // A run of n backslashes ending at every offset around the 64-byte boundaries: an odd
        // run escapes the quote after it, an even run does not.
        for pad in 0..140 {
            for run in 1..6 {
                let text = format!("[\"{}{}\"]", "x".repeat(pad), "\\".repeat(run));
                let got = answer(text.as_bytes(), 0);
                let valid = serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok();
                assert_eq!(got.is_some(), valid, "{text}");
                if valid {
                    assert_eq!(got, Some(text.len()));
                }
            }
        }
    }

    #[test]
    fn levels_agree_on_every_mutation_and_accept_what_serde_accepts() {
        let realistic =
            r#"{"instancesSet":{"items":[{"imageId":"ami-1","minCount":1}]},"ratio":1.5e-3,
            "policy":"{\"Version\":\"2012-10-17\",\"Statement\":[]}\n\t\\ \/ \b\f\r\u00e9",
            "empty":[],"none":null,"name":"日本 é","tags":[["a","b"],{"c":[true,false]}]}"#
                .as_bytes();
        for at in 0..realistic.len() {
            for c in [
                b'"', b'\\', b',', b':', b'{', b'}', b'[', b']', b'0', b'u', b' ', b'\n', 0x01,
                0xff,
            ] {
                let mut mutated = realistic.to_vec();
                mutated[at] = c;
                let got = answer(&mutated, 0);
                if mutated[0] == b'{'
                    && serde_json::from_slice::<serde::de::IgnoredAny>(&mutated).is_ok()
                {
                    assert_eq!(
                        got,
                        Some(mutated.len()),
                        "{}",
                        String::from_utf8_lossy(&mutated)
                    );
                }
            }
        }
    }
}
