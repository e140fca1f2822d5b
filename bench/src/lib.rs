//! The benchmark code of oncelog, a library so that more than one program can run
//! it: the `oncelog-bench` binary of this crate (`make bench`) measures oncelog's
//! append, read, transaction and wake-up figures next to the physical limits of the
//! same machine (memcpy, `write()`, futex wake-up), in the same run.
//!
//! `docs/PERFORMANCE.md` describes every workload and figure. This is measurement
//! code, not a library for users: its API serves the programs that run it and may
//! change with them. The engine never depends on it.

pub mod child;
pub mod json;
pub mod limits;
pub mod machine;
pub mod util;
pub mod wakeup;
pub mod workloads;
