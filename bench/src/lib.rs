//! The benchmark code of oncelog, shared by two programs:
//!
//! * `oncelog-bench` (this crate's binary, `make bench`): oncelog's append, read,
//!   transaction and wake-up figures next to the physical limits of the same
//!   machine (memcpy, `write()`, futex wake-up), measured in the same run;
//! * `oncelog bench` (crate `oncelog-cli`), with the `peers` feature: the same
//!   oncelog workloads next to SQLite (WAL) and LMDB doing the same work on the
//!   same data, in alternating repetitions ([`compare`]).
//!
//! `docs/PERFORMANCE.md` describes every workload and figure. This is measurement
//! code, not a library for users: its API serves those two programs and may change
//! with them. The engine never depends on it, and SQLite and LMDB are compiled only
//! with the `peers` feature.

pub mod child;
pub mod json;
pub mod limits;
pub mod machine;
pub mod util;
pub mod wakeup;
pub mod workloads;

#[cfg(feature = "peers")]
pub mod compare;
#[cfg(feature = "peers")]
pub mod peers;
