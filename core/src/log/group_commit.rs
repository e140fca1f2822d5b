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
///
/// As within a process, when several processes took part in the previous sync,
/// the holder first gives them a moment to join (see [`gather`]), if waits may
/// yield.
pub(super) fn sync_for_all(
    state: &SyncState,
    ctl_path: &Path,
    need: i64,
    spin_until: Option<Instant>,
    mut sync: impl FnMut() -> Result<()>,
) -> Result<bool> {
    let mut contended = false;
    let mut spin_until = spin_until;
    // The `done` value this thread counted itself in `joined` for.
    let mut joined_for = None;
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
                if let Some(until) = spin_until {
                    contended |= gather(state, until);
                }
                crate::failpoint::hit("sync.leading");
                let start = Instant::now();
                let result = sync();
                let took = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                // Those who waited for this sync, before and while it ran: the
                // processes syncing now, which the next holder lets join.
                let waited = state.joined.swap(0, Ordering::AcqRel);
                state.last_sync_ns.store(took, Ordering::Relaxed);
                state
                    .last_served
                    .store(waited.saturating_add(1), Ordering::Relaxed);
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
        if joined_for != Some(seen) {
            joined_for = Some(seen);
            state.joined.fetch_add(1, Ordering::AcqRel);
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

/// Lets the threads of other processes that took part in the previous sync for all
/// join the holder of `lead` before it syncs: yields until as many have started
/// waiting, for at most 1/[`GATHER_FRACTION`] of that sync's duration (and not past
/// `until`). Returns whether a yield met other work.
///
/// A waiter killed meanwhile is still counted until this sync ends; the next
/// holder then waits its whole moment once, no more.
fn gather(state: &SyncState, until: Instant) -> bool {
    let expected = state.last_served.load(Ordering::Relaxed);
    if expected <= 1 {
        return false;
    }
    let last = Duration::from_nanos(state.last_sync_ns.load(Ordering::Relaxed));
    let deadline = (Instant::now() + last / GATHER_FRACTION).min(until);
    let missing = || state.joined.load(Ordering::Acquire).saturating_add(1) < expected;
    let contended = yield_while(missing, deadline);
    if contended {
        // Other work wants the CPUs: wait out the moment in naps instead.
        while missing() && Instant::now() < deadline {
            std::thread::sleep(GATHER_NAP);
        }
    }
    contended
}

/// How long a gathering holder sleeps between looks once yields met other work.
const GATHER_NAP: Duration = Duration::from_micros(50);

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// A sync state in this process's memory, shared by threads as the control
    /// block is by processes.
    struct Shared(Box<SyncState>);

    // SAFETY: the robust mutex is process-shared, so sharing it between threads
    // is what it is made for; the rest are atomics.
    unsafe impl Sync for Shared {}

    impl Shared {
        fn get(&self) -> &SyncState {
            &self.0
        }
    }

    fn shared(last_served: u32, last_sync: Duration) -> Shared {
        // SAFETY: all-zero bytes are a valid SyncState before `init`, which runs
        // before any other use, on memory that stays in its box.
        let state = Shared(Box::new(unsafe { std::mem::zeroed() }));
        // SAFETY: no other thread has the state yet; the box keeps it in place.
        unsafe { state.0.lead.init() }.unwrap();
        state.0.last_served.store(last_served, Ordering::Relaxed);
        state
            .0
            .last_sync_ns
            .store(last_sync.as_nanos() as u64, Ordering::Relaxed);
        state
    }

    /// A holder takes the lead, then `joiners` threads wait for its sync, `after`
    /// it started. Returns when the holder's sync began, from its start.
    fn lead_with_joiners(state: &Shared, joiners: usize, after: Duration) -> Duration {
        let path = Path::new("test.ctl");
        let spin = || Some(Instant::now() + Duration::from_secs(5));
        let waiter_led = AtomicBool::new(false);
        let began = std::thread::scope(|s| {
            let holder = s.spawn(|| {
                let start = Instant::now();
                let mut began = None;
                sync_for_all(state.get(), path, 1, spin(), || {
                    began = Some(start.elapsed());
                    state.get().synced_offset.store(1, Ordering::Release);
                    Ok(())
                })
                .unwrap();
                began.unwrap()
            });
            std::thread::sleep(after);
            for _ in 0..joiners {
                s.spawn(|| {
                    sync_for_all(state.get(), path, 1, spin(), || {
                        waiter_led.store(true, Ordering::Relaxed);
                        state.get().synced_offset.store(1, Ordering::Release);
                        Ok(())
                    })
                    .unwrap()
                });
            }
            holder.join().unwrap()
        });
        assert!(!waiter_led.load(Ordering::Relaxed), "a joiner led the sync");
        began
    }

    #[test]
    fn a_holder_waits_for_the_processes_of_its_last_sync_to_join() {
        // The gathering may last up to a quarter of 8 s; two joiners come at 0.1 s.
        let state = shared(3, Duration::from_secs(8));
        let began = lead_with_joiners(&state, 2, Duration::from_millis(100));
        assert!(
            began >= Duration::from_millis(100) && began < Duration::from_secs(1),
            "the sync began {began:?} after the holder took the lead"
        );
        // The next holder gathers the three again.
        assert_eq!(state.0.last_served.load(Ordering::Relaxed), 3);
        assert_eq!(state.0.joined.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_holder_whose_last_sync_was_its_own_syncs_at_once() {
        let state = shared(1, Duration::from_secs(8));
        let began = lead_with_joiners(&state, 0, Duration::ZERO);
        assert!(began < Duration::from_secs(1), "began after {began:?}");
        assert_eq!(state.0.last_served.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_holder_gathers_no_longer_than_a_quarter_of_the_last_sync() {
        // Two were expected; nobody comes.
        let state = shared(3, Duration::from_millis(800));
        let began = lead_with_joiners(&state, 0, Duration::ZERO);
        assert!(
            began >= Duration::from_millis(200) && began < Duration::from_secs(2),
            "began after {began:?}"
        );
    }
}
