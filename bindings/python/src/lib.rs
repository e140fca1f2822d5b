//! # oncelog-python
//!
//! The native module `oncelog._oncelog` of the Python package `oncelog`: the core's
//! `Store`, `Producer` and `Consumer` with confluent-kafka's method names, as a
//! PyO3 extension built for the stable ABI (abi3, CPython 3.9 and later).
//!
//! **What it is**: a translation layer. Every rule of the log (partitioning,
//! idempotence, transactions, commit modes, group membership) is the core's; this
//! crate converts Python values to core arguments and core errors to Python
//! exceptions, releases the GIL around every wait and bulk copy, and keeps Python's
//! objects safe to share between threads where the core's are (stores and
//! producers; a consumer is guarded for one thread at a time).
//!
//! **What it is not**: the public API. `python/oncelog/__init__.py` curates it, and
//! `python/oncelog/_oncelog.pyi` types it. No Rust tests live here (a test binary
//! would have to embed libpython); `tests/python` tests the built package.

mod consumer;
mod convert;
mod errors;
mod producer;
mod store;
mod types;

use pyo3::prelude::*;

/// The native part of the `oncelog` package; import `oncelog` instead.
#[pymodule]
fn _oncelog(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("OFFSET_BEGINNING", types::OFFSET_BEGINNING)?;
    m.add("OFFSET_END", types::OFFSET_END)?;
    m.add("OFFSET_STORED", types::OFFSET_STORED)?;
    m.add("OFFSET_INVALID", types::OFFSET_INVALID)?;
    m.add_class::<store::Store>()?;
    m.add_class::<producer::Producer>()?;
    m.add_class::<producer::Transaction>()?;
    m.add_class::<consumer::Consumer>()?;
    m.add_class::<types::Message>()?;
    m.add_class::<types::TopicPartition>()?;
    m.add_class::<types::GroupMetadata>()?;
    m.add_class::<types::TopicMetadata>()?;
    Ok(())
}
