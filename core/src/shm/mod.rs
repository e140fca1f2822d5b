//! Shared memory between processes: the control block, its robust mutex and the
//! futex used to wait for new data.

pub mod control;
pub mod futex;
pub mod mutex;
