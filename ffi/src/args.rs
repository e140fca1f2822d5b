//! Checked views of C arguments: strings (NUL-terminated, UTF-8), byte buffers
//! (pointer and length), arrays, partition numbers and out-parameters. Every check
//! happens before the first byte is read, and each error names the argument.

use std::ffi::{c_char, c_void, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{Failure, FfiResult, ONCELOG_ERR_RECORD_TOO_LARGE};

/// The largest key, value or header value: Kafka encodes lengths as 32-bit signed
/// integers, so nothing longer can be a record. Checked before a buffer is touched,
/// so a wrong length cannot make the library read far past a small buffer.
pub(crate) const MAX_FIELD_BYTES: usize = i32::MAX as usize;

/// A NUL-terminated UTF-8 string argument.
pub(crate) fn str_arg<'a>(p: *const c_char, what: &str) -> FfiResult<&'a str> {
    let bytes = cstr_arg(p, what)?.to_bytes();
    std::str::from_utf8(bytes)
        .map_err(|e| Failure::invalid(format!("{what} is not valid UTF-8: {e}")))
}

/// A NUL-terminated path argument (any bytes but NUL, as Linux allows).
pub(crate) fn path_arg<'a>(p: *const c_char, what: &str) -> FfiResult<&'a Path> {
    let bytes = cstr_arg(p, what)?.to_bytes();
    if bytes.is_empty() {
        return Err(Failure::invalid(format!("{what} must not be empty")));
    }
    Ok(Path::new(OsStr::from_bytes(bytes)))
}

fn cstr_arg<'a>(p: *const c_char, what: &str) -> FfiResult<&'a CStr> {
    if p.is_null() {
        return Err(Failure::invalid(format!("{what} must not be NULL")));
    }
    // SAFETY: a non-NULL string argument is NUL-terminated and readable (the C
    // contract in the header).
    Ok(unsafe { CStr::from_ptr(p) })
}

/// An optional byte buffer: NULL with length 0 is "absent" (a null key, a tombstone
/// value, a null header value); NULL with a length is an error; a non-NULL pointer
/// with length 0 is an empty buffer.
pub(crate) fn bytes_arg<'a>(
    p: *const c_void,
    len: usize,
    what: &str,
) -> FfiResult<Option<&'a [u8]>> {
    if p.is_null() {
        if len != 0 {
            return Err(Failure::invalid(format!(
                "{what} is NULL but its length is {len}"
            )));
        }
        return Ok(None);
    }
    if len > MAX_FIELD_BYTES {
        return Err(Failure::new(
            ONCELOG_ERR_RECORD_TOO_LARGE,
            format!("{what} is {len} bytes; no record field can exceed {MAX_FIELD_BYTES}"),
        ));
    }
    // SAFETY: `p` points to `len` readable bytes (the C contract), and `len` is below
    // isize::MAX.
    Ok(Some(unsafe {
        std::slice::from_raw_parts(p.cast::<u8>(), len)
    }))
}

/// An array of `count` elements; NULL is accepted only with `count` 0.
pub(crate) fn array_arg<'a, T>(p: *const T, count: usize, what: &str) -> FfiResult<&'a [T]> {
    if count == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Failure::invalid(format!(
            "{what} is NULL but its count is {count}"
        )));
    }
    let fits = count
        .checked_mul(std::mem::size_of::<T>())
        .is_some_and(|bytes| bytes <= isize::MAX as usize);
    if !fits {
        return Err(Failure::invalid(format!(
            "{what} count {count} is too large"
        )));
    }
    // SAFETY: `p` points to `count` initialised elements (the C contract), and their
    // total size fits in isize.
    Ok(unsafe { std::slice::from_raw_parts(p, count) })
}

/// A partition number: 0 or more.
pub(crate) fn partition_arg(partition: i32) -> FfiResult<u32> {
    u32::try_from(partition)
        .map_err(|_| Failure::invalid(format!("partition must be 0 or more, not {partition}")))
}

/// Checks that a required out-parameter is not NULL.
pub(crate) fn out_arg<T>(p: *mut T, what: &str) -> FfiResult<()> {
    if p.is_null() {
        return Err(Failure::invalid(format!("{what} must not be NULL")));
    }
    Ok(())
}

/// Writes `value` through an optional out-parameter (NULL: not wanted).
pub(crate) fn write_opt<T>(p: *mut T, value: T) {
    if !p.is_null() {
        // SAFETY: a non-NULL out-parameter points to writable memory (the C contract).
        unsafe { p.write(value) }
    }
}

/// Writes `value` through a required out-parameter already checked by [`out_arg`].
pub(crate) fn write_out<T>(p: *mut T, value: T) {
    debug_assert!(!p.is_null());
    write_opt(p, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_checked_before_they_are_read() {
        assert_eq!(bytes_arg(std::ptr::null(), 0, "key").unwrap(), None);
        assert!(bytes_arg(std::ptr::null(), 3, "key").is_err());
        let buf = [1u8, 2];
        // A length far past the buffer is refused without reading it.
        let err = bytes_arg(buf.as_ptr().cast(), usize::MAX, "value").unwrap_err();
        assert_eq!(err.code, ONCELOG_ERR_RECORD_TOO_LARGE);
        assert_eq!(
            bytes_arg(buf.as_ptr().cast(), 0, "value").unwrap(),
            Some(&[][..])
        );
        let huge = array_arg(8usize as *const u64, usize::MAX / 4, "records").unwrap_err();
        assert!(huge.message.contains("too large"), "{huge:?}");
    }

    #[test]
    fn strings_must_be_utf8_and_partitions_not_negative() {
        let bad = [0xffu8 as c_char, 0];
        assert!(str_arg(bad.as_ptr(), "topic")
            .unwrap_err()
            .message
            .contains("UTF-8"));
        assert!(str_arg(std::ptr::null(), "topic").is_err());
        assert_eq!(partition_arg(3).unwrap(), 3);
        assert!(partition_arg(-2).is_err());
    }
}
