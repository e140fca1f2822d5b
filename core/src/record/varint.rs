//! Zigzag variable-length integers, as Kafka's Record v2 uses them.
//!
//! A value is first zigzag-mapped to an unsigned integer (`0, -1, 1, -2, 2, ...` become
//! `0, 1, 2, 3, 4, ...`, Protocol Buffers' `sint32`/`sint64`), then written 7 bits at a
//! time, least significant group first; every byte but the last has its high bit set.
//! An `i32` ("varint") takes 1 to 5 bytes, an `i64` ("varlong") 1 to 10.
//!
//! Readers take untrusted bytes: they return `None` for truncated input, for encodings
//! longer than 5 (`i32`) or 10 (`i64`) bytes, and for a last byte that carries bits beyond
//! the type's width. Redundant but in-range encodings (such as `0x80 0x00` for 0) are
//! accepted, as Kafka's own reader accepts them; writers always emit the shortest form.

/// Longest encoding of an `i32`.
const MAX_LEN_I32: usize = 5;
/// Longest encoding of an `i64`.
const MAX_LEN_I64: usize = 10;

#[inline(always)]
fn zigzag_i32(v: i32) -> u32 {
    // Arithmetic shift spreads the sign bit; the casts reinterpret bits (no truncation).
    ((v << 1) ^ (v >> 31)) as u32
}

#[inline(always)]
fn zigzag_i64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline(always)]
fn unzigzag_i32(u: u32) -> i32 {
    ((u >> 1) as i32) ^ -((u & 1) as i32)
}

#[inline(always)]
fn unzigzag_i64(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Number of bytes [`write_i32`] uses for `v` (1 to 5).
#[inline(always)]
pub fn encoded_len_i32(v: i32) -> usize {
    let u = zigzag_i32(v);
    // Significant bits, at least 1; 7 bits per byte, rounded up.
    let bits = 32 - (u | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

/// Number of bytes [`write_i64`] uses for `v` (1 to 10).
#[inline(always)]
pub fn encoded_len_i64(v: i64) -> usize {
    let u = zigzag_i64(v);
    let bits = 64 - (u | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

/// Writes `v` as a zigzag varint at the start of `buf` and returns the number of bytes
/// written (equal to [`encoded_len_i32`]`(v)`).
///
/// # Panics
///
/// If `buf` is shorter than the encoding.
#[inline(always)]
pub fn write_i32(buf: &mut [u8], v: i32) -> usize {
    let u = zigzag_i32(v);
    if u < 0x80 {
        buf[0] = u as u8;
        return 1;
    }
    write_u64_slow(buf, u64::from(u))
}

/// Writes `v` as a zigzag varlong at the start of `buf` and returns the number of bytes
/// written (equal to [`encoded_len_i64`]`(v)`).
///
/// # Panics
///
/// If `buf` is shorter than the encoding.
#[inline(always)]
pub fn write_i64(buf: &mut [u8], v: i64) -> usize {
    let u = zigzag_i64(v);
    if u < 0x80 {
        buf[0] = u as u8;
        return 1;
    }
    write_u64_slow(buf, u)
}

/// The multi-byte case of the writers: 7 bits per byte, high bit = "more follows".
#[inline]
fn write_u64_slow(buf: &mut [u8], mut u: u64) -> usize {
    if u < 0x4000 {
        // Two bytes: lengths of 64..8191 bytes and offset deltas of 64..8191 land here.
        let b = &mut buf[..2];
        b[0] = (u as u8) | 0x80;
        b[1] = (u >> 7) as u8;
        return 2;
    }
    let mut i = 0;
    while u >= 0x80 {
        buf[i] = (u as u8) | 0x80;
        u >>= 7;
        i += 1;
    }
    buf[i] = u as u8;
    i + 1
}

/// Reads a zigzag varint from the start of `buf`: the value and the number of bytes it
/// took, or `None` if `buf` ends inside the encoding, the encoding is longer than 5 bytes,
/// or the value does not fit in an `i32`.
#[inline(always)]
pub fn read_i32(buf: &[u8]) -> Option<(i32, usize)> {
    match buf.first() {
        Some(&b) if b < 0x80 => Some((unzigzag_i32(u32::from(b)), 1)),
        _ => {
            let (u, n) = read_u64_slow(buf, MAX_LEN_I32)?;
            let u = u32::try_from(u).ok()?;
            Some((unzigzag_i32(u), n))
        }
    }
}

/// Reads a zigzag varlong from the start of `buf`: the value and the number of bytes it
/// took, or `None` if `buf` ends inside the encoding, the encoding is longer than 10
/// bytes, or the value does not fit in an `i64`.
#[inline(always)]
pub fn read_i64(buf: &[u8]) -> Option<(i64, usize)> {
    match buf.first() {
        Some(&b) if b < 0x80 => Some((unzigzag_i64(u64::from(b)), 1)),
        _ => {
            let (u, n) = read_u64_slow(buf, MAX_LEN_I64)?;
            Some((unzigzag_i64(u), n))
        }
    }
}

/// Reads an unsigned base-128 integer of at most `max_len` bytes (5 or 10). Returns
/// `None` on truncation, on a continuation bit in byte `max_len`, and on bits beyond 64.
/// (Bits beyond 32 for a 5-byte varint are rejected by the caller's `u32` conversion.)
#[inline]
fn read_u64_slow(buf: &[u8], max_len: usize) -> Option<(u64, usize)> {
    let mut u: u64 = 0;
    for (i, &b) in buf.iter().take(max_len).enumerate() {
        let group = u64::from(b & 0x7f);
        let shift = 7 * i as u32;
        // The 10th byte of a u64 holds only bit 63.
        if shift == 63 && group > 1 {
            return None;
        }
        u |= group << shift;
        if b < 0x80 {
            return Some((u, i + 1));
        }
    }
    // Ran out of input, or the last allowed byte still said "more follows".
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc32(v: i32) -> Vec<u8> {
        let mut b = [0u8; MAX_LEN_I32];
        let n = write_i32(&mut b, v);
        b[..n].to_vec()
    }

    fn enc64(v: i64) -> Vec<u8> {
        let mut b = [0u8; MAX_LEN_I64];
        let n = write_i64(&mut b, v);
        b[..n].to_vec()
    }

    #[test]
    fn known_encodings() {
        // Protocol Buffers sint32/sint64 reference values.
        assert_eq!(enc32(0), [0x00]);
        assert_eq!(enc32(-1), [0x01]);
        assert_eq!(enc32(1), [0x02]);
        assert_eq!(enc32(-64), [0x7f]);
        assert_eq!(enc32(64), [0x80, 0x01]);
        assert_eq!(enc32(300), [0xd8, 0x04]);
        assert_eq!(enc32(i32::MAX), [0xfe, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(enc32(i32::MIN), [0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(enc64(0), [0x00]);
        assert_eq!(enc64(-1), [0x01]);
        assert_eq!(
            enc64(i64::MAX),
            [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        assert_eq!(
            enc64(i64::MIN),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
    }

    #[test]
    fn edge_values_round_trip() {
        let v32 = [
            0,
            1,
            -1,
            63,
            -64,
            64,
            -65,
            8191,
            8192,
            -8193,
            i32::MAX,
            i32::MIN,
            i32::MAX - 1,
            i32::MIN + 1,
        ];
        for v in v32 {
            let e = enc32(v);
            assert_eq!(e.len(), encoded_len_i32(v), "len of {v}");
            assert_eq!(read_i32(&e), Some((v, e.len())), "{v}");
            // Trailing bytes are left alone.
            let mut longer = e.clone();
            longer.extend_from_slice(&[0xff, 0x00]);
            assert_eq!(read_i32(&longer), Some((v, e.len())), "{v} + tail");
        }
        let v64 = [
            0,
            1,
            -1,
            -64,
            64,
            i64::from(i32::MAX),
            i64::from(i32::MIN),
            i64::from(i32::MAX) + 1,
            i64::MAX,
            i64::MIN,
            i64::MAX - 1,
            i64::MIN + 1,
        ];
        for v in v64 {
            let e = enc64(v);
            assert_eq!(e.len(), encoded_len_i64(v), "len of {v}");
            assert_eq!(read_i64(&e), Some((v, e.len())), "{v}");
        }
        // A varint is a valid varlong of the same value.
        for v in v32 {
            assert_eq!(read_i64(&enc32(v)), Some((i64::from(v), enc32(v).len())));
        }
    }

    #[test]
    fn every_length_boundary() {
        for bits in 0..63u32 {
            for v in [(1i64 << bits) - 1, 1i64 << bits, -(1i64 << bits)] {
                let e = enc64(v);
                assert_eq!(e.len(), encoded_len_i64(v));
                assert_eq!(read_i64(&e), Some((v, e.len())));
                if let Ok(v) = i32::try_from(v) {
                    let e = enc32(v);
                    assert_eq!(e.len(), encoded_len_i32(v));
                    assert_eq!(read_i32(&e), Some((v, e.len())));
                }
            }
        }
    }

    #[test]
    fn truncated_input_is_rejected() {
        assert_eq!(read_i32(&[]), None);
        assert_eq!(read_i64(&[]), None);
        for v in [64, 300, i32::MAX, i32::MIN] {
            let e = enc32(v);
            for cut in 0..e.len() {
                assert_eq!(read_i32(&e[..cut]), None, "{v} cut at {cut}");
            }
        }
        for v in [i64::MAX, i64::MIN, 1 << 40] {
            let e = enc64(v);
            for cut in 0..e.len() {
                assert_eq!(read_i64(&e[..cut]), None, "{v} cut at {cut}");
            }
        }
    }

    #[test]
    fn over_long_encodings_are_rejected() {
        // Six bytes for an i32, eleven for an i64.
        assert_eq!(read_i32(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]), None);
        assert_eq!(read_i32(&[0xff; 16]), None);
        let mut eleven = [0x80u8; 11];
        eleven[10] = 0x00;
        assert_eq!(read_i64(&eleven), None);
        assert_eq!(read_i64(&[0xff; 16]), None);
        // Five bytes, but the value has more than 32 bits.
        assert_eq!(read_i32(&[0xff, 0xff, 0xff, 0xff, 0x1f]), None);
        assert_eq!(read_i32(&[0x80, 0x80, 0x80, 0x80, 0x10]), None);
        // Ten bytes, but the value has more than 64 bits.
        let mut big = [0xffu8; 10];
        big[9] = 0x02;
        assert_eq!(read_i64(&big), None);
        // Redundant but in-range encodings are accepted (as Kafka does).
        assert_eq!(read_i32(&[0x80, 0x00]), Some((0, 2)));
        assert_eq!(read_i32(&[0x81, 0x80, 0x80, 0x80, 0x00]), Some((-1, 5)));
        assert_eq!(read_i64(&[0x82, 0x80, 0x00]), Some((1, 3)));
    }

    #[test]
    fn exhaustive_small_and_sampled_large() {
        for v in -70_000..70_000 {
            let e = enc32(v);
            assert_eq!(read_i32(&e), Some((v, e.len())));
            assert_eq!(e.len(), encoded_len_i32(v));
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..100_000 {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = x as i64 >> (x % 64);
            let e = enc64(v);
            assert_eq!(read_i64(&e), Some((v, e.len())));
            assert_eq!(e.len(), encoded_len_i64(v));
        }
    }
}
