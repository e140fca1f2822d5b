//! Process-shared futex wait and wake on a word in a shared mapping.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps while `*word == expected`, at most `timeout` (forever with `None`).
/// Returns when woken, when the word differs, on a signal, or on timeout; callers
/// re-check their condition in a loop.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned u32; FUTEX_WAIT without FUTEX_PRIVATE_FLAG
    // keys the wait on the physical page, so waiters in other processes sharing the
    // mapping are found by `wake_all`.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wakes every process and thread sleeping in [`wait`] on `word`.
pub fn wake_all(word: &AtomicU32) {
    // SAFETY: as in `wait`; FUTEX_WAKE only reads the address.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// One word of a [`wait_any`] call, laid out as the kernel's `struct futex_waitv`.
#[repr(C)]
struct FutexWaitv {
    val: u64,
    uaddr: u64,
    flags: u32,
    reserved: u32,
}

/// `futex_waitv(2)` syscall number (the same on every architecture).
const SYS_FUTEX_WAITV: libc::c_long = 449;
/// 32-bit futex words, process-shared (no FUTEX2_PRIVATE).
const FUTEX2_SIZE_U32: u32 = 0x02;

/// Sleeps until any of `words` is woken or differs from its expected value, or
/// `timeout` passes. Returns false if the kernel has no `futex_waitv` (before 5.16),
/// in which case the caller must fall back to waiting on one word at a time.
pub fn wait_any(words: &[(&AtomicU32, u32)], timeout: Duration) -> bool {
    let waits: Vec<FutexWaitv> = words
        .iter()
        .map(|(w, expected)| FutexWaitv {
            val: u64::from(*expected),
            uaddr: w.as_ptr() as u64,
            flags: FUTEX2_SIZE_U32,
            reserved: 0,
        })
        .collect();
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let total = now.tv_nsec as u64 + u64::from(timeout.subsec_nanos());
    let deadline = libc::timespec {
        tv_sec: (now.tv_sec as u64)
            .saturating_add(timeout.as_secs())
            .saturating_add(total / 1_000_000_000)
            .min(i64::MAX as u64) as libc::time_t,
        tv_nsec: (total % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: `waits` holds valid futex_waitv entries for live, aligned u32 words;
    // the deadline is an absolute CLOCK_MONOTONIC time.
    let rc = unsafe {
        libc::syscall(
            SYS_FUTEX_WAITV,
            waits.as_ptr(),
            waits.len() as libc::c_uint,
            0u32,
            &deadline as *const libc::timespec,
            libc::CLOCK_MONOTONIC,
        )
    };
    !(rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS))
}
