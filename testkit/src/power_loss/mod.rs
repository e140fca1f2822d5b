//! Simulated power loss: what a machine that lost power could have left on disk.
//!
//! * [`shim`]: builds `sync_journal.c`, an `LD_PRELOAD` library that, in the
//!   processes of a workload, copies each file's content (and each directory's
//!   entries) into a journal just before every `fsync`/`fdatasync` of it.
//! * [`journal`]: reads that journal: the last synced content of each file and the
//!   last synced entries of each directory, keyed by file identity.
//! * [`image`]: builds a crash image from the journal and the files as the
//!   workload left them: synced bytes stay; of each unsynced part, some sectors
//!   reach the disk and some do not; entries not made durable by a directory sync
//!   appear or vanish at random.
//!
//! The model, and what it leaves out, is described in `docs/RELIABILITY.md`
//! ("Simulated power loss").

pub mod image;
pub mod journal;
pub mod shim;
