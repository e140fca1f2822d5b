//! # oncelog-testkit
//!
//! Multi-process tests of oncelog. The `oncelog-testkit` binary plays one role per
//! process (an appender, a follower, a blocked waiter, a writer under a file-size
//! limit, a probe that appends and reads back after a crash); the integration tests
//! in `tests/` start those processes, kill them, and check what every process saw
//! against what the log holds.
//!
//! * [`roles`]: what each subcommand of the binary does.
//! * [`payload`]: self-checking record contents, so a torn or mixed-up record is
//!   detected by whoever reads it.
//! * [`torture`], [`torture_check`]: the crash torture run's process role (producers,
//!   exactly-once members and read_committed readers writing histories) and the
//!   checker that counts anomalies in the histories and the final log.
//! * [`hostile`]: the roles of the hostile-use tests (files changed under a running
//!   store, retention under a consumer, a jumped clock, too few descriptors).
//! * [`power_loss`]: simulated power loss: a shim that journals what each sync made
//!   durable, and crash images built from that journal (checked with
//!   [`torture_check::Promise::PowerLoss`]).
//! * [`harness`]: the parent's side: child processes that are killed when a test
//!   fails, their output lines, and checks of a partition against acknowledgements.
//! * [`args`], [`rng`]: hand-rolled argument parsing and a seeded xorshift PRNG
//!   (no dependencies beyond `oncelog` and `libc`).
//!
//! Not a public API: it exists for this repository's tests.

pub mod args;
pub mod harness;
pub mod hostile;
pub mod payload;
pub mod power_loss;
pub mod rng;
pub mod roles;
pub mod torture;
pub mod torture_check;
