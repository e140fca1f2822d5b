//! A process-shared, robust pthread mutex living in a shared mapping.
//!
//! The uncontended lock and unlock are a compare-and-swap in user space (glibc's
//! robust mutex registers itself on the thread's robust list without a syscall).
//! When a holder dies, the kernel marks the futex word and the next acquirer gets
//! [`Acquired::OwnerDied`]: it must repair the state the mutex protects and then call
//! [`RobustMutex::mark_consistent`].

use std::cell::UnsafeCell;
use std::io;
use std::time::{Duration, Instant};

/// The storage of a robust mutex inside a `#[repr(C)]` shared structure.
#[repr(C)]
pub struct RobustMutex {
    raw: UnsafeCell<libc::pthread_mutex_t>,
}

/// How a lock was acquired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquired {
    /// The previous holder released it normally.
    Clean,
    /// The previous holder died while holding it: the protected state may be half
    /// updated and must be repaired before [`RobustMutex::mark_consistent`].
    OwnerDied,
}

/// Why a lock was not acquired.
#[derive(Debug)]
pub enum LockError {
    /// The timeout passed while another holder kept the lock.
    TimedOut,
    /// Any other failure of the pthread call.
    Os(io::Error),
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

impl RobustMutex {
    /// Initialises the mutex in place as process-shared, robust and error-checking.
    ///
    /// # Safety
    /// No other thread or process may use the mutex during initialisation, and the
    /// memory must stay mapped at a stable address while it is in use.
    pub unsafe fn init(&self) -> io::Result<()> {
        let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        check(libc::pthread_mutexattr_init(attr.as_mut_ptr()))?;
        let attr_ptr = attr.as_mut_ptr();
        let result = (|| {
            check(libc::pthread_mutexattr_setpshared(
                attr_ptr,
                libc::PTHREAD_PROCESS_SHARED,
            ))?;
            check(libc::pthread_mutexattr_setrobust(
                attr_ptr,
                libc::PTHREAD_MUTEX_ROBUST,
            ))?;
            check(libc::pthread_mutexattr_settype(
                attr_ptr,
                libc::PTHREAD_MUTEX_ERRORCHECK,
            ))?;
            check(libc::pthread_mutex_init(self.raw.get(), attr_ptr))
        })();
        libc::pthread_mutexattr_destroy(attr_ptr);
        result
    }

    /// Acquires the lock without waiting; `Ok(None)` when another holder has it.
    pub fn try_lock(&self) -> Result<Option<Acquired>, LockError> {
        // SAFETY: the mutex was initialised by `init` in a live shared mapping.
        let rc = unsafe { libc::pthread_mutex_trylock(self.raw.get()) };
        match rc {
            0 => Ok(Some(Acquired::Clean)),
            libc::EOWNERDEAD => Ok(Some(Acquired::OwnerDied)),
            libc::EBUSY => Ok(None),
            other => Err(LockError::Os(io::Error::from_raw_os_error(other))),
        }
    }

    /// `try_lock` up to `spins` times, with a pause between tries: a holder that is
    /// running usually lets go within a few microseconds (append and coordinator
    /// critical sections are that short), much sooner than a sleeping waiter could be
    /// woken.
    pub fn try_lock_spinning(&self, spins: u32) -> Result<Option<Acquired>, LockError> {
        for _ in 0..spins {
            if let Some(a) = self.try_lock()? {
                return Ok(Some(a));
            }
            for _ in 0..16 {
                std::hint::spin_loop();
            }
        }
        self.try_lock()
    }

    /// `try_lock` after each `sched_yield`, until `until`: a holder that was
    /// preempted (more runnable threads than CPUs) gets the CPU back at once, where
    /// a sleeping waiter would be woken only 30-60 µs after the unlock on a virtual
    /// machine whose idle CPUs halt.
    pub fn try_lock_yielding(&self, until: Instant) -> Result<Option<Acquired>, LockError> {
        while Instant::now() < until {
            std::thread::yield_now();
            if let Some(a) = self.try_lock()? {
                return Ok(Some(a));
            }
        }
        Ok(None)
    }

    /// Acquires the lock, waiting at most `timeout`. Try [`try_lock`](Self::try_lock)
    /// first: this call always computes a deadline.
    pub fn lock(&self, timeout: Duration) -> Result<Acquired, LockError> {
        let deadline = realtime_after(timeout);
        // SAFETY: as above; `deadline` is a valid CLOCK_REALTIME timespec.
        let rc = unsafe { libc::pthread_mutex_timedlock(self.raw.get(), &deadline) };
        match rc {
            0 => Ok(Acquired::Clean),
            libc::EOWNERDEAD => Ok(Acquired::OwnerDied),
            libc::ETIMEDOUT => Err(LockError::TimedOut),
            other => Err(LockError::Os(io::Error::from_raw_os_error(other))),
        }
    }

    /// Declares the state repaired after [`Acquired::OwnerDied`]. Must be called by
    /// the holder before unlocking, or the mutex becomes unusable for everyone.
    pub fn mark_consistent(&self) -> io::Result<()> {
        // SAFETY: called by the current holder of an initialised robust mutex.
        check(unsafe { libc::pthread_mutex_consistent(self.raw.get()) })
    }

    /// Releases the lock held by the calling thread.
    pub fn unlock(&self) {
        // SAFETY: called by the current holder (ensured by the guard types above us).
        let rc = unsafe { libc::pthread_mutex_unlock(self.raw.get()) };
        debug_assert_eq!(rc, 0, "unlock of a robust mutex not held");
    }
}

fn realtime_after(timeout: Duration) -> libc::timespec {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
    let total_ns = now.tv_nsec as u64 + u64::from(timeout.subsec_nanos());
    let secs = (now.tv_sec as u64)
        .saturating_add(timeout.as_secs())
        .saturating_add(total_ns / 1_000_000_000);
    libc::timespec {
        tv_sec: secs.min(i64::MAX as u64) as libc::time_t,
        tv_nsec: (total_ns % 1_000_000_000) as libc::c_long,
    }
}
