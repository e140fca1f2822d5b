//! Kafka's protocol primitives for the records of the internal logs: big-endian
//! integers and strings as an int16 length followed by UTF-8 bytes.

use crate::error::{bail, Result};

/// The longest Kafka string: its length is an int16.
pub const MAX_STR_LEN: usize = i16::MAX as usize;

/// Refuses a string that does not fit a Kafka string (`what` names it). The callers
/// that take strings for records check with it: [`put_str`] would cut the string,
/// and a cut string reads back as another one, or not at all if the cut splits a
/// UTF-8 character.
pub fn check_str(what: &str, s: &str) -> Result<()> {
    if s.len() > MAX_STR_LEN {
        bail!(
            InvalidArgument,
            "{what} is {} bytes long; at most {MAX_STR_LEN} fit in the log",
            s.len()
        );
    }
    Ok(())
}

/// Appends `s` as a Kafka string (int16 length, then the bytes; cut at 32767 bytes,
/// so callers check lengths with [`check_str`]).
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..len as usize]);
}

/// Reads Kafka-encoded fields from a byte slice; every read is checked.
pub struct Cursor<'a>(pub &'a [u8]);

impl<'a> Cursor<'a> {
    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    /// An int8.
    pub fn i8(&mut self) -> Option<i8> {
        Some(i8::from_be_bytes(self.take(1)?.try_into().ok()?))
    }

    /// An int16.
    pub fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    /// An int32.
    pub fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    /// An int64.
    pub fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    /// A Kafka string.
    pub fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }

    /// True when every byte was read.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
