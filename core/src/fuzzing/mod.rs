//! The bodies of the fuzz targets in `fuzz/`, behind the `fuzzing` feature.
//!
//! Each function takes the fuzzer's input bytes and panics only on a bug: a decoder
//! or a store that panics, allocates without bound, or breaks a promise the target
//! checks. The libFuzzer targets in `fuzz/fuzz_targets/` call them, and so does the
//! test that replays the committed corpus (`testkit/tests/fuzz_corpus.rs`), so a
//! crash found by the fuzzer is a failing `cargo test` once its input is committed.
//!
//! * [`batch_decode`]: every decoder of bytes read from disk.
//! * [`open_store`]: a small valid store whose files the input damages, then opened,
//!   read, appended to and reopened.
//! * [`api_sequence`]: a sequence of API calls checked against a model.

mod api;
mod decode;
mod scratch;
mod store_damage;
mod template;

pub use api::api_sequence;
pub use decode::batch_decode;
pub use store_damage::open_store;
