//! The store's background threads: the flusher, which moves partitions' recovery
//! points (a sync of what is there plus the checkpoint file) off the appending
//! threads, and the pre-faulter, which maps pages in ahead of the writer so the
//! append path never takes a first-touch page fault. (`synced` appends sync in the
//! appending thread: see `PartitionLog::sync_to`.)

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use super::partition::PartitionLog;
use super::segment::MappedSegment;
use crate::config::StoreOptions;
use crate::error::{Error, ErrorKind, Result};
use crate::shm::control::Tail;

/// Sync what is there and move the recovery point of `log`.
struct CheckpointJob {
    log: Arc<PartitionLog>,
    /// After a roll: the writable mapping of the segment just sealed and the next
    /// segment's base. Only the segments below that base are synced, the sealed
    /// one's pages released first (see [`MappedSegment::release_pages`]), and the
    /// active segment is left to the writer.
    sealed: Option<(Arc<MappedSegment>, i64)>,
}

struct PrefaultJob {
    seg: Arc<MappedSegment>,
    from: usize,
    len: usize,
}

/// Senders to the background threads of one store.
pub struct Background {
    sync_tx: Mutex<Option<Sender<CheckpointJob>>>,
    prefault_tx: Mutex<Option<Sender<PrefaultJob>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    fork_gen: u64,
}

impl Background {
    /// Starts the threads.
    pub fn start() -> Result<Arc<Background>> {
        let (sync_tx, sync_rx) = unbounded();
        let (prefault_tx, prefault_rx) = bounded(64);
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| Error::new(ErrorKind::Io, format!("start {name} thread: {e}")))
        };
        let flusher = spawn("oncelog-flusher", Box::new(move || run_flusher(sync_rx)))?;
        let prefaulter = spawn(
            "oncelog-prefault",
            Box::new(move || run_prefaulter(prefault_rx)),
        )?;
        Ok(Arc::new(Background {
            sync_tx: Mutex::new(Some(sync_tx)),
            prefault_tx: Mutex::new(Some(prefault_tx)),
            threads: Mutex::new(vec![flusher, prefaulter]),
            fork_gen: crate::fork::generation(),
        }))
    }

    /// Asks the flusher to sync `log` and write its recovery point, without waiting.
    pub fn sync_async(&self, log: &PartitionLog) {
        self.send_checkpoint(log, None);
    }

    /// Asks the flusher to sync the segments below `next_base` of `log`, which a
    /// roll just sealed (`sealed` is the writable mapping of the last of them), and
    /// move the recovery point to `next_base`, without waiting.
    pub fn sync_sealed_async(
        &self,
        log: &PartitionLog,
        sealed: Arc<MappedSegment>,
        next_base: i64,
    ) {
        self.send_checkpoint(log, Some((sealed, next_base)));
    }

    fn send_checkpoint(&self, log: &PartitionLog, sealed: Option<(Arc<MappedSegment>, i64)>) {
        if let (Some(log), Some(tx)) = (
            log.me(),
            self.sync_tx
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref(),
        ) {
            let _ = tx.send(CheckpointJob { log, sealed });
        }
    }

    /// Called after an append that ended at `end` in `seg`: asks the pre-faulter to
    /// fault in the next pages when the writer crossed into a new window.
    pub fn prefault_after(
        &self,
        seg: &Arc<MappedSegment>,
        start: u64,
        end: u64,
        options: &StoreOptions,
        tail: &Tail,
    ) {
        const WINDOW: u64 = 1 << 20;
        if start / WINDOW == end / WINDOW && start != 0 {
            return;
        }
        let reserved = tail.reserved_len.load(Ordering::Relaxed);
        let to = (end + options.prefault_bytes).min(reserved);
        if to <= end {
            return;
        }
        if let Some(tx) = self
            .prefault_tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            let _ = tx.try_send(PrefaultJob {
                seg: seg.clone(),
                from: end as usize,
                len: (to - end) as usize,
            });
        }
    }

    /// Stops the threads after they finish queued work.
    pub fn stop(&self) {
        if crate::fork::check(self.fork_gen).is_err() {
            // In a forked child the threads do not exist (fork copies only the
            // calling thread) and a lock may have been held by one of them: touch
            // nothing; joining would wait forever.
            return;
        }
        self.sync_tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        self.prefault_tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if crate::fork::check(self.fork_gen).is_err() {
            // A forked child: the channels' and threads' state belongs to threads
            // that do not exist here; leak it rather than touch it.
            std::mem::forget(self.sync_tx.get_mut().map(Option::take));
            std::mem::forget(self.prefault_tx.get_mut().map(Option::take));
            std::mem::forget(self.threads.get_mut().map(std::mem::take));
            return;
        }
        self.stop();
    }
}

fn run_flusher(rx: Receiver<CheckpointJob>) {
    while let Ok(first) = rx.recv() {
        // Take everything queued: one checkpoint per partition answers all of it.
        let mut jobs = vec![first];
        jobs.extend(rx.try_iter());
        let mut done: Vec<*const PartitionLog> = Vec::new();
        for job in &jobs {
            if let Some((seg, next_base)) = &job.sealed {
                seg.release_pages();
                // A failure poisons the partition; its next append reports it.
                let _ = job.log.checkpoint_sealed(*next_base);
                continue;
            }
            let key = Arc::as_ptr(&job.log);
            if done.contains(&key) {
                continue;
            }
            done.push(key);
            // A failure poisons the partition; its next append reports it.
            let _ = job.log.sync_now(true);
        }
    }
}

fn run_prefaulter(rx: Receiver<PrefaultJob>) {
    while let Ok(job) = rx.recv() {
        job.seg.prefault(job.from, job.len);
    }
}
