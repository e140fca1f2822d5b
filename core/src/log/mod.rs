//! The log of one partition: segments, indexes, the append path, readers, recovery
//! and the background threads that sync and pre-fault.

pub mod background;
pub mod checkpoint;
mod group_commit;
pub mod index;
pub mod partition;
pub mod producer_state;
pub mod reader;
pub mod recovery;
pub mod segment;
mod sync_cpu;
pub mod walk;
