//! Named points in the write path where tests can pause or crash a process, to make
//! a SIGKILL land inside the append lock or between the steps of a roll. Compiled
//! only with the `failpoints` feature; without it every call is an empty inline fn.
//!
//! Set `ONCELOG_FAILPOINTS` to a comma-separated list of `name=action`, where the
//! action is `sleep:<microseconds>` or `abort` (the process dies on the spot, as
//! with SIGKILL, without unwinding or unlocking).

#[cfg(feature = "failpoints")]
mod enabled {
    use std::sync::OnceLock;
    use std::time::Duration;

    enum Action {
        Sleep(Duration),
        Abort,
    }

    fn points() -> &'static [(String, Action)] {
        static POINTS: OnceLock<Vec<(String, Action)>> = OnceLock::new();
        POINTS.get_or_init(|| {
            let spec = std::env::var("ONCELOG_FAILPOINTS").unwrap_or_default();
            spec.split(',')
                .filter_map(|item| {
                    let (name, action) = item.trim().split_once('=')?;
                    let action = match action.split_once(':') {
                        Some(("sleep", us)) => {
                            Action::Sleep(Duration::from_micros(us.parse().ok()?))
                        }
                        None if action == "abort" => Action::Abort,
                        _ => return None,
                    };
                    Some((name.to_string(), action))
                })
                .collect()
        })
    }

    /// Runs the action configured for `name`, if any.
    pub fn hit(name: &str) {
        for (n, action) in points() {
            if n == name {
                match action {
                    Action::Sleep(d) => std::thread::sleep(*d),
                    Action::Abort => std::process::abort(),
                }
            }
        }
    }
}

#[cfg(feature = "failpoints")]
pub use enabled::hit;

/// Runs the action configured for `name` (no-op: built without `failpoints`).
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}
