//! The wall clock, read in one place: record timestamps, retention by time and
//! transaction start times come from here. Timeouts (transactions, group sessions,
//! waits) use the monotonic clock instead, so that a jump of the wall clock neither
//! expires nor prolongs them.
//!
//! With the `failpoints` feature, tests jump this process's wall clock: when
//! `ONCELOG_CLOCK_SKEW_FILE` names a file, the signed number of milliseconds in it
//! (read at every call) is added to the system time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The wall clock's time.
pub fn wall_now() -> SystemTime {
    let now = SystemTime::now();
    match skew_ms() {
        0 => now,
        ms if ms > 0 => now + Duration::from_millis(ms.unsigned_abs()),
        ms => now - Duration::from_millis(ms.unsigned_abs()),
    }
}

/// Milliseconds since the Unix epoch by [`wall_now`].
pub fn now_ms() -> i64 {
    wall_now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(feature = "failpoints")]
fn skew_ms() -> i64 {
    use std::sync::OnceLock;
    static FILE: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    FILE.get_or_init(|| std::env::var_os("ONCELOG_CLOCK_SKEW_FILE").map(Into::into))
        .as_ref()
        .and_then(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
fn skew_ms() -> i64 {
    0
}
