//! Group commit: the threads and processes that need one partition synced share
//! its `fdatasync`s. Within a process, [`SyncGroup`] (driven by
//! `PartitionLog::sync_to`) elects one leader among the threads; across processes,
//! [`sync_for_all`] elects one among those leaders with the control block's robust
//! `lead` lock. Waiting threads yield in a loop while the CPUs are otherwise free,
//! and sleep once other work wants them.

use std::path::Path;
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::shm::control::SyncState;
use crate::shm::futex;
use crate::shm::mutex::{Acquired, LockError};

/// Makes every offset below `need` durable, leading a sync for every process or
/// waiting for the one that leads (`state` is the control block at `ctl_path`).
/// `sync` syncs what is there and raises the shared synced offset to the end it saw
/// before syncing. Waits yield until `spin_until`, then sleep; returns whether a
/// yield met other work (see [`yield_while`]).
///
/// The holder of the `lead` lock syncs; the others wait for the `done` word to
/// move, then look again: the sync they waited for usually covered them, and one
/// of those it did not cover leads the next. A holder that died leaves the robust
/// lock to the next try (the sleep is bounded by [`LEAD_CHECK`] for that).
pub(super) fn sync_for_all(
    state: &SyncState,
    ctl_path: &Path,
    need: i64,
    spin_until: Option<Instant>,
    mut sync: impl FnMut() -> Result<()>,
) -> Result<bool> {
    let mut contended = false;
    let mut spin_until = spin_until;
    loop {
        if state.synced_offset.load(Ordering::Acquire) >= need {
            return Ok(contended);
        }
        let seen = state.done.load(Ordering::SeqCst);
        match state.lead.try_lock() {
            Ok(Some(acquired)) => {
                if acquired == Acquired::OwnerDied {
                    // Nothing to repair: the synced offset only ever moves after a
                    // sync, and this one syncs again.
                    state
                        .lead
                        .mark_consistent()
                        .map_err(|e| Error::io("recover the sync lock in", ctl_path, e))?;
                }
                crate::failpoint::hit("sync.leading");
                let result = sync();
                state.lead.unlock();
                state.done.fetch_add(1, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                if state.has_waiters.load(Ordering::SeqCst) != 0
                    && state.has_waiters.swap(0, Ordering::SeqCst) != 0
                {
                    futex::wake_all(&state.done);
                }
                return result.map(|()| contended);
            }
            Ok(None) => {}
            Err(LockError::Os(e)) => return Err(Error::io("take the sync lock in", ctl_path, e)),
            Err(LockError::TimedOut) => unreachable!("try_lock does not time out"),
        }
        let waiting = || {
            state.done.load(Ordering::SeqCst) == seen
                && state.synced_offset.load(Ordering::Acquire) < need
        };
        if let Some(until) = spin_until.take() {
            contended |= yield_while(waiting, until);
            continue;
        }
        // Announce the sleep, then look again: a holder that finishes after this
        // look sees the flag and wakes us.
        state.has_waiters.store(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if waiting() {
            futex::wait(&state.done, seen, Some(LEAD_CHECK));
        }
    }
}

/// How long a thread waiting for another process's sync sleeps before it tries the
/// `lead` lock again: a holder killed in its sync never bumps `done`, and its
/// robust lock passes to the next try.
const LEAD_CHECK: Duration = Duration::from_millis(10);

/// The state of a partition's group commit in this process.
#[derive(Default)]
pub(super) struct SyncGroup {
    /// A leader is gathering its group or syncing.
    pub(super) syncing: bool,
    /// Threads that joined the current leader.
    pub(super) joined: usize,
    /// The gathering leader sleeps on `sync_joined` (rather than yielding).
    pub(super) leader_asleep: bool,
    /// Threads the previous leader's sync served (itself included).
    pub(super) last_size: usize,
    /// How long the previous leader's sync took.
    pub(super) last_took: Duration,
    /// Syncs ended so far.
    pub(super) epoch: u64,
    /// Until when waiting threads sleep rather than yield: set when yields showed
    /// other work wanting the CPUs too often.
    no_spin_until: Option<Instant>,
    /// Slow yields (see [`CONTENDED_YIELD`]) since `slow_since`.
    slow_yields: u32,
    /// When the count of slow yields started.
    slow_since: Option<Instant>,
}

impl SyncGroup {
    /// Whether a waiting thread may yield in a loop instead of sleeping.
    pub(super) fn may_spin(&self) -> bool {
        self.no_spin_until.map_or(true, |t| Instant::now() >= t)
    }

    /// Records whether a yield loop met other work. A few times a second is this
    /// process's own work (an append reserving ahead, the flusher); more often, the
    /// CPUs are busy with other work, each slow yield gave a whole time slice away,
    /// and waits sleep for [`SPIN_BACKOFF`].
    pub(super) fn note_spin(&mut self, contended: bool) {
        if !contended {
            return;
        }
        let now = Instant::now();
        if self.slow_since.map_or(true, |t| now - t > SPIN_BACKOFF) {
            self.slow_since = Some(now);
            self.slow_yields = 0;
        }
        self.slow_yields += 1;
        if self.slow_yields > SLOW_YIELDS_TOLERATED {
            self.no_spin_until = Some(now + SPIN_BACKOFF);
        }
    }
}

/// How long a leader waits at most for the group of its previous sync to join, as
/// a fraction of that sync's duration: the wait may add at most a quarter to a
/// commit's latency.
pub(super) const GATHER_FRACTION: u32 = 4;

/// The longest a thread waiting for a sync yields in a loop before it sleeps.
pub(super) const MAX_SPIN: Duration = Duration::from_millis(2);

/// A yield that returns later than this ran another task for a time slice: the
/// CPUs are wanted, and a yield loop would give this thread's turn away to that
/// task. (Shorter slow yields are this process's own work: an append writing its
/// zeros ahead took 100-750 µs here with 4 committers on 2 CPUs; next to CPU hogs
/// yields took 0.3-11 ms. With 100 µs, 4 committers gave up yielding during most
/// idle runs and committed 11-12 k/s instead of 14-17 k/s.)
const CONTENDED_YIELD: Duration = Duration::from_millis(1);

/// How long waits sleep once yields met other work too often, and the window over
/// which slow yields are counted.
const SPIN_BACKOFF: Duration = Duration::from_secs(1);

/// Slow yields tolerated per [`SPIN_BACKOFF`] before waits sleep.
const SLOW_YIELDS_TOLERATED: u32 = 20;

/// Yields the CPU while `busy()` holds, until `until`. Returns whether a yield took
/// longer than [`CONTENDED_YIELD`] (and the loop stopped there).
///
/// Waiting for a sync this way instead of sleeping keeps the CPUs from going idle:
/// on a virtual machine a sleeping thread takes 30-60 µs to run again once woken,
/// a third of a sync, while a yielding one sees the sync end at once.
pub(super) fn yield_while(mut busy: impl FnMut() -> bool, until: Instant) -> bool {
    while busy() {
        let before = Instant::now();
        if before >= until {
            return false;
        }
        std::thread::yield_now();
        if before.elapsed() > CONTENDED_YIELD {
            return true;
        }
    }
    false
}
