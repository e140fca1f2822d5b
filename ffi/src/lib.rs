//! # oncelog-ffi
//!
//! The C ABI of oncelog: `liboncelog.so` (SONAME `liboncelog.so.<major>`) and
//! `liboncelog.a`, described by `include/oncelog.h`, which cbindgen generates from
//! this crate (`make header`; a test fails when the committed header is stale).
//!
//! **What it is**: a thin translation layer. Opaque handles around the core's
//! [`oncelog::Store`], [`oncelog::Producer`] and [`oncelog::Consumer`],
//! configuration as Kafka's string keys, errors as stable integer codes plus an
//! owned error object. Every rule of the log lives in the core; nothing here decides
//! semantics.
//!
//! **What it is not**: a second implementation. A C consumer hands out one message
//! at a time from the records one core `poll` returned, and rewinds the core's
//! positions to the first message not handed out before anything that reads or
//! commits them (`commit`, `close`, `subscribe`, `seek`), so buffering never commits
//! a record the application has not seen.
//!
//! **The boundary**: every exported function runs its body inside one helper that
//! catches a panic and turns it into `ONCELOG_ERR_PANIC` or a documented default;
//! every pointer argument is checked for NULL, every length for range and every
//! string for UTF-8 before use.
//!
//! Module map: one file per C object family ([`conf`], [`store`], [`producer`],
//! [`consumer`], [`message`], [`error`]), the plain structs and constants
//! ([`types`], [`version`]), and the private plumbing: `panic` (the boundary),
//! `handle` (opaque handle casts) and `args` (checked argument views).

// Exported functions take raw pointers from C callers, who cannot be made to write
// `unsafe`: each one checks its pointers for NULL before any use (`args`,
// `handle`), and what cannot be checked (a dangling pointer, a short buffer) is the
// C contract documented in the header.
#![allow(clippy::not_unsafe_ptr_arg_deref)]
// The C names (`oncelog_store_t`, ...) are the Rust names too, so the header, the
// code and the debug information (the ABI baseline) all say the same thing.
#![allow(non_camel_case_types)]

// In reading order: cbindgen writes the header in this order.
pub mod conf;
pub mod consumer;
pub mod error;
pub mod message;
pub mod producer;
pub mod store;
pub mod types;
pub mod version;

mod args;
mod handle;
mod panic;
