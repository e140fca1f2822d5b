//! Fork detection without a syscall on the hot path: a `pthread_atfork` child hook
//! bumps a counter, and every handle remembers the value it was opened with.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use crate::error::{Error, ErrorKind, Result};

static FORKS: AtomicU64 = AtomicU64::new(0);
static REGISTER: Once = Once::new();

extern "C" fn in_child_after_fork() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// The process's fork generation; a handle stores it when opened.
pub fn generation() -> u64 {
    REGISTER.call_once(|| {
        // SAFETY: registers a handler that only touches an atomic (async-signal-safe).
        unsafe { libc::pthread_atfork(None, None, Some(in_child_after_fork)) };
    });
    FORKS.load(Ordering::Relaxed)
}

/// Fails with [`ErrorKind::Forked`] when called in a child forked after the handle
/// opened at generation `opened_at`.
#[inline]
pub fn check(opened_at: u64) -> Result<()> {
    if FORKS.load(Ordering::Relaxed) == opened_at {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Forked,
            "this handle was opened before fork(); open the store again in the child process",
        ))
    }
}
