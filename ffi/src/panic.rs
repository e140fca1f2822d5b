//! The boundary: every exported function runs its body through [`call`] or
//! [`infallible`], so no Rust panic ever unwinds into C. A caught panic becomes
//! `ONCELOG_ERR_PANIC` (with the panic's message in the error object) or the
//! function's documented default.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{
    oncelog_err_t, oncelog_error_t, ErrorObject, Failure, FfiResult, ONCELOG_ERR_OK,
    ONCELOG_ERR_PANIC,
};
use crate::handle;

/// Runs `body` for a fallible export: `ONCELOG_ERR_OK` on success; on failure (or a
/// panic) the code, and, when `err_out` is not NULL, a new error object stored in
/// `*err_out` for the caller to free. `*err_out` is not touched on success.
pub(crate) fn call(
    err_out: *mut *mut oncelog_error_t,
    body: impl FnOnce() -> FfiResult<()>,
) -> oncelog_err_t {
    // Unwind safety: a panic means a bug; the error says the handle should not be
    // used any more (fatal), and the mutexes it may have poisoned are handled by the
    // code that locks them.
    let result = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|p| Err(panicked(p)));
    match result {
        Ok(()) => ONCELOG_ERR_OK,
        Err(failure) => {
            let code = failure.code;
            if !err_out.is_null() {
                let object = handle::into_raw(ErrorObject::new(failure));
                // SAFETY: a non-NULL `err_out` points to a writable pointer (the C
                // contract in the header).
                unsafe { err_out.write(object) };
            }
            code
        }
    }
}

/// Runs `body` for an export that cannot fail (accessors, destructors): a panic
/// returns `default`.
pub(crate) fn infallible<T>(default: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(default)
}

/// The failure a caught panic becomes.
fn panicked(payload: Box<dyn Any + Send>) -> Failure {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string());
    let mut failure = Failure::new(
        ONCELOG_ERR_PANIC,
        format!("internal error (a Rust panic caught at the C boundary): {what}"),
    );
    failure.fatal = true;
    failure
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{oncelog_error_code, oncelog_error_destroy, oncelog_error_is_fatal};

    #[test]
    fn a_panic_becomes_a_fatal_panic_error_and_never_unwinds() {
        let mut err: *mut oncelog_error_t = std::ptr::null_mut();
        let code = call(&mut err, || panic!("boom {}", 7));
        assert_eq!(code, ONCELOG_ERR_PANIC);
        assert!(!err.is_null());
        assert_eq!(oncelog_error_code(err), ONCELOG_ERR_PANIC);
        assert!(oncelog_error_is_fatal(err));
        let msg = unsafe { std::ffi::CStr::from_ptr(crate::error::oncelog_error_message(err)) };
        assert!(msg.to_str().unwrap().contains("boom 7"), "{msg:?}");
        oncelog_error_destroy(err);
        assert_eq!(infallible(5, || panic!("x")), 5);
    }

    #[test]
    fn success_leaves_err_out_alone_and_a_null_err_out_is_fine() {
        let sentinel = 0x10 as *mut oncelog_error_t;
        let mut err = sentinel;
        assert_eq!(call(&mut err, || Ok(())), ONCELOG_ERR_OK);
        assert_eq!(err, sentinel);
        let code = call(std::ptr::null_mut(), || Err(Failure::invalid("no")));
        assert_eq!(code, crate::error::ONCELOG_ERR_INVALID_ARGUMENT);
    }
}
