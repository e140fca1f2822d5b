//! Self-checking record contents.
//!
//! A test record has the key `w<writer>-s<seq>` and a value laid out as
//!
//! ```text
//! "OLTK" | writer u32 | seq u64 | len u32 | filler (xorshift of writer, seq) | fnv64
//! ```
//!
//! (integers big-endian; `len` is the whole value's length; the trailing FNV-1a
//! covers everything before it). A reader can tell from the record alone whether it
//! is whole and whose it is: a torn write, bytes of another record, or a record
//! shifted to the wrong place all fail [`classify`].
//!
//! The one other record kind is the stop sentinel (key and value `stop`), which
//! tells followers that the test is over.

use crate::rng::XorShift;

const MAGIC: &[u8; 4] = b"OLTK";
const HEAD: usize = 4 + 4 + 8 + 4;
const TAIL: usize = 8;
/// The smallest value [`value`] produces.
pub const MIN_VALUE_LEN: usize = HEAD + TAIL;
/// Key and value of the stop sentinel.
pub const STOP: &[u8] = b"stop";

/// What a record is, once checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Record `seq` of writer `writer`.
    Data {
        /// The writer id.
        writer: u32,
        /// The writer's sequence number (0, 1, 2, ... per writer).
        seq: u64,
    },
    /// The stop sentinel.
    Stop,
}

/// The key of record `seq` of `writer`.
pub fn key(writer: u32, seq: u64) -> Vec<u8> {
    format!("w{writer}-s{seq}").into_bytes()
}

/// The value of record `seq` of `writer`, `len` bytes long (at least
/// [`MIN_VALUE_LEN`]).
pub fn value(writer: u32, seq: u64, len: usize) -> Vec<u8> {
    let len = len.max(MIN_VALUE_LEN);
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(MAGIC);
    v.extend_from_slice(&writer.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&(len as u32).to_be_bytes());
    let mut rng = filler_rng(writer, seq);
    while v.len() < len - TAIL {
        v.push(rng.next_u64() as u8);
    }
    let sum = fnv64(FNV_OFFSET, &v);
    v.extend_from_slice(&sum.to_be_bytes());
    v
}

fn filler_rng(writer: u32, seq: u64) -> XorShift {
    XorShift::new((u64::from(writer) << 40) ^ seq)
}

/// Checks a record read from the log and says what it is.
pub fn classify(k: Option<&[u8]>, v: Option<&[u8]>) -> Result<Kind, String> {
    if k == Some(STOP) && v == Some(STOP) {
        return Ok(Kind::Stop);
    }
    let v = v.ok_or("null value")?;
    if v.len() < MIN_VALUE_LEN {
        return Err(format!("value of {} bytes is too short", v.len()));
    }
    if &v[..4] != MAGIC {
        return Err(format!("bad magic {:02x?}", &v[..4]));
    }
    let (body, sum) = v.split_at(v.len() - TAIL);
    let want = fnv64(FNV_OFFSET, body);
    if sum != want.to_be_bytes() {
        return Err(format!("checksum mismatch over {} bytes", v.len()));
    }
    let writer = u32::from_be_bytes(v[4..8].try_into().expect("4 bytes"));
    let seq = u64::from_be_bytes(v[8..16].try_into().expect("8 bytes"));
    let len = u32::from_be_bytes(v[16..20].try_into().expect("4 bytes")) as usize;
    if len != v.len() {
        return Err(format!("value says {len} bytes, has {}", v.len()));
    }
    let mut rng = filler_rng(writer, seq);
    if body[HEAD..].iter().any(|b| *b != rng.next_u64() as u8) {
        return Err(format!("filler of w{writer}-s{seq} is wrong"));
    }
    let k = k.ok_or("null key")?;
    if k != key(writer, seq).as_slice() {
        return Err(format!(
            "key {:?} does not belong to value of w{writer}-s{seq}",
            String::from_utf8_lossy(k)
        ));
    }
    Ok(Kind::Data { writer, seq })
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a (64-bit) of `bytes`, starting from `state`.
pub fn fnv64(state: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(state, |h, b| (h ^ u64::from(*b)).wrapping_mul(FNV_PRIME))
}

/// A 128-bit digest of a record's key and value (two FNV-1a lanes over the
/// length-prefixed fields), as 32 hex digits: what two readers compare.
pub fn digest(key: Option<&[u8]>, value: Option<&[u8]>) -> String {
    let mut lanes = [FNV_OFFSET, FNV_OFFSET ^ 0x5bd1_e995_0000_0001];
    for field in [key, value] {
        let len = field.map_or(-1i64, |f| f.len() as i64);
        for lane in &mut lanes {
            *lane = fnv64(*lane, &len.to_be_bytes());
            *lane = fnv64(*lane, field.unwrap_or_default());
        }
        // Decorrelate the lanes.
        lanes[1] = lanes[1].rotate_left(17);
    }
    format!("{:016x}{:016x}", lanes[0], lanes[1])
}

/// Folds one record's `(offset, digest)` into a running digest of a sequence.
pub fn fold(state: u64, offset: i64, digest: &str) -> u64 {
    fnv64(fnv64(state, &offset.to_be_bytes()), digest.as_bytes())
}

/// The starting state of [`fold`].
pub const FOLD_START: u64 = FNV_OFFSET;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_corruption_is_caught() {
        let k = key(3, 17);
        let v = value(3, 17, 100);
        assert_eq!(v.len(), 100);
        assert_eq!(
            classify(Some(&k), Some(&v)),
            Ok(Kind::Data { writer: 3, seq: 17 })
        );
        for i in 0..v.len() {
            let mut bad = v.clone();
            bad[i] ^= 0x40;
            assert!(classify(Some(&k), Some(&bad)).is_err(), "flip at byte {i}");
        }
        assert!(classify(Some(&k), Some(&v[..99])).is_err());
        assert!(classify(Some(&key(3, 18)), Some(&v)).is_err());
        assert!(classify(None, Some(&v)).is_err());
        assert!(classify(Some(&k), None).is_err());
        assert_eq!(classify(Some(STOP), Some(STOP)), Ok(Kind::Stop));
        assert_eq!(value(1, 1, 0).len(), MIN_VALUE_LEN);
        assert_ne!(digest(Some(&k), Some(&v)), digest(Some(&v), Some(&k)));
        assert_ne!(digest(None, Some(b"")), digest(Some(b""), None));
    }
}
