//! Opaque handles: each C object type is a zero-sized Rust struct that C only ever
//! sees behind a pointer, and [`Opaque`] names the Rust value the pointer really
//! points to. Handles are created with [`into_raw`], borrowed with [`get`] (which
//! refuses NULL) and freed with [`free`]. The zero-sized types keep the library's
//! debug information, and so the ABI baseline, free of internal layouts.

use crate::error::{Failure, FfiResult};

/// A C handle type and the Rust value behind it.
pub trait Opaque {
    /// What the handle points to.
    type Inner;
}

/// Moves `inner` to the heap and hands it out as a `T` handle.
pub(crate) fn into_raw<T: Opaque>(inner: T::Inner) -> *mut T {
    Box::into_raw(Box::new(inner)).cast()
}

/// Borrows the value behind `handle`; `what` names the argument in the error when it
/// is NULL.
pub(crate) fn get<'a, T: Opaque>(handle: *const T, what: &str) -> FfiResult<&'a T::Inner> {
    if handle.is_null() {
        return Err(Failure::invalid(format!("{what} must not be NULL")));
    }
    // SAFETY: a non-NULL handle was created by `into_raw` for this `T` and not yet
    // freed (the C contract in the header); every `Inner` is only used through shared
    // references (mutation goes through the mutexes inside).
    Ok(unsafe { &*handle.cast::<T::Inner>() })
}

/// Frees the value behind `handle`; NULL is ignored.
///
/// # Safety
///
/// `handle` is NULL or came from [`into_raw`] for this `T` and is not used again.
pub(crate) unsafe fn free<T: Opaque>(handle: *mut T) {
    if !handle.is_null() {
        // SAFETY: by this function's contract.
        drop(unsafe { Box::from_raw(handle.cast::<T::Inner>()) });
    }
}
