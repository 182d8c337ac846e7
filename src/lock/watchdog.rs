//! [`Locks::with_lock`]: run a task under a lock that a watchdog keeps
//! extending, and tell the task if the lock is lost.
//!
//! Nothing is spawned: the task and the watchdog are two futures polled by
//! the caller's own task, so this works on every runtime and on wasm, and
//! the watchdog stops the moment the task is dropped or panics (the lock
//! then expires after its TTL).

use std::fmt;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::future::{select, Either};

use crate::lock::{Extend, LockGuard, Locks, Release};
use crate::{Error, ErrorKind, Result, Store};

/// The shortest watchdog interval (finer than any store or timer can act).
const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// Waits `d`; a zero pause yields to other tasks once.
pub(crate) async fn pause(d: Duration) {
    if d.is_zero() {
        YieldNow(false).await;
    } else {
        crate::rt::sleep(d).await;
    }
}

/// Returns `Pending` once (waking itself at once), then `Ready`.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// The "lock lost" flag shared by a [`LockHandle`] and its watchdog.
#[derive(Default)]
struct Signal {
    lost: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Signal {
    fn wakers(&self) -> std::sync::MutexGuard<'_, Vec<Waker>> {
        // Nothing panics while the list is locked; a poisoned list is whole.
        self.wakers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self) {
        self.lost.store(true, Ordering::SeqCst);
        let wakers = std::mem::take(&mut *self.wakers());
        for waker in wakers {
            waker.wake();
        }
    }

    fn is_set(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

/// What the task of [`Locks::with_lock`] gets: the fencing token and the
/// signal that the lock was lost.
///
/// Clones share the signal; the handle may move into other tasks.
#[derive(Clone)]
pub struct LockHandle {
    signal: Arc<Signal>,
    fence: u64,
    resource: Arc<str>,
}

impl fmt::Debug for LockHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockHandle")
            .field("resource", &self.resource)
            .field("fence", &self.fence)
            .field("lost", &self.is_lost())
            .finish()
    }
}

impl LockHandle {
    /// The fencing token of the hold (see [`LockGuard::fence`]).
    pub fn fence(&self) -> u64 {
        self.fence
    }

    /// The resource locked.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// Whether the watchdog has found the lock lost: an extension said it
    /// is no longer ours, or none succeeded before the hold ran out. Stop
    /// writing to the protected resource when it is.
    pub fn is_lost(&self) -> bool {
        self.signal.is_set()
    }

    /// A future that completes when the lock is lost (see
    /// [`is_lost`](LockHandle::is_lost)); race it against the work, e.g.
    /// with `tokio::select!`, to abandon the work at once.
    pub fn lost(&self) -> Lost {
        Lost {
            signal: Arc::clone(&self.signal),
        }
    }
}

/// Completes when the lock is lost; from [`LockHandle::lost`].
#[must_use = "futures do nothing unless awaited"]
pub struct Lost {
    signal: Arc<Signal>,
}

impl fmt::Debug for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lost")
            .field("lost", &self.signal.is_set())
            .finish()
    }
}

impl Future for Lost {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.signal.is_set() {
            return Poll::Ready(());
        }
        let mut wakers = self.signal.wakers();
        // Checked again under the lock: `set` stores the flag before it
        // takes the list, so either we see the flag or it sees our waker.
        if self.signal.is_set() {
            return Poll::Ready(());
        }
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl<S: Store> Locks<S> {
    /// Runs `f` while holding the lock on `resource`, then releases it.
    ///
    /// Acquires like [`lock`](Locks::lock) (up to
    /// [`retry_count`](crate::lock::LockConfig::retry_count) retries) but
    /// for `ttl`; a watchdog extends the hold by `ttl` every
    /// [`watchdog_interval`](crate::lock::LockConfig::watchdog_interval)
    /// (TTL/3 by default, never longer) while `f` runs, so `f` may take far
    /// longer than `ttl`, and a crashed process still frees the lock within
    /// `ttl`. If an extension finds the lock gone, or none succeeds before
    /// the hold runs out, `f`'s [`LockHandle`] says so; `f` should stop.
    ///
    /// # Returns
    /// * `f`'s error if it failed (the lock is released all the same);
    /// * otherwise `f`'s value if the lock was held throughout;
    /// * [`ErrorKind::Conflict`] if the lock was held by another owner after
    ///   all retries, or was lost before `f` finished (its value is then
    ///   dropped: `f` did not run under the lock);
    /// * the store's error if acquiring or releasing failed.
    ///
    /// `E` only needs `From<rampart::Error>` (`rampart::Error` itself,
    /// `anyhow::Error`, your own error type).
    ///
    /// ```
    /// use rampart::lock::Locks;
    /// use rampart::MemoryStore;
    /// use std::time::Duration;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let locks = Locks::new(MemoryStore::new());
    /// let total = locks
    ///     .with_lock("billing:run", Duration::from_secs(30), |lock| async move {
    ///         // ... long work, checking `lock.is_lost()` between steps,
    ///         // and sending `lock.fence()` with every write ...
    ///         assert!(!lock.is_lost());
    ///         Ok::<_, rampart::Error>(42)
    ///     })
    ///     .await?;
    /// assert_eq!(total, 42);
    /// assert!(!locks.is_locked("billing:run").await?);
    /// # Ok::<(), rampart::Error>(()) }).unwrap();
    /// ```
    pub async fn with_lock<F, Fut, T, E>(&self, resource: &str, ttl: Duration, f: F) -> Result<T, E>
    where
        F: FnOnce(LockHandle) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        const OP: &str = "lock.with_lock";
        let retries = super::Limit::Retries(self.config().retry_count);
        let Some(guard) = self.acquire_with(resource, ttl, retries, OP).await? else {
            let key = self.key(resource)?;
            return Err(
                Error::new(ErrorKind::Conflict, "the lock is held by another owner")
                    .with_operation(OP)
                    .with_key(key)
                    .into(),
            );
        };
        let signal = Arc::new(Signal::default());
        let handle = LockHandle {
            signal: Arc::clone(&signal),
            fence: guard.fence,
            resource: Arc::from(resource),
        };
        let interval = self.watchdog_interval(ttl);
        let outcome = {
            let work = pin!(f(handle));
            let dog = pin!(self.watchdog(&guard, ttl, interval, &signal));
            // The watchdog is polled first: after a stall, a due extension
            // goes out before the task takes its next step.
            match select(dog, work).await {
                Either::Right((out, _dog)) => out,
                // The lock is lost and `f` was told; let it finish.
                Either::Left(((), work)) => work.await,
            }
        };
        let key = guard.key.clone();
        let released = guard.release().await;
        match (outcome, released) {
            (Err(e), _) => Err(e),
            (Ok(value), Ok(Release::Released)) => Ok(value),
            (Ok(_), Ok(Release::NotHeld)) => Err(Error::new(
                ErrorKind::Conflict,
                "the lock expired or passed to another owner before the task finished",
            )
            .with_operation(OP)
            .with_key(key)
            .into()),
            (Ok(_), Err(e)) => Err(e.into()),
        }
    }

    /// The watchdog's interval for a hold of `ttl`.
    fn watchdog_interval(&self, ttl: Duration) -> Duration {
        let third = ttl / 3;
        let interval = match self.config().watchdog_interval {
            Some(configured) => configured.min(third),
            None => third,
        };
        interval.max(MIN_INTERVAL)
    }

    /// Extends the hold every `interval` until it is lost, then sets the
    /// signal and returns. Never returns while the lock is held.
    async fn watchdog(
        &self,
        guard: &LockGuard<S>,
        ttl: Duration,
        interval: Duration,
        signal: &Signal,
    ) {
        let clock = self.clock();
        let mut valid_until = guard.valid_until;
        loop {
            pause(interval).await;
            let started = clock.now();
            match self.extend_key(&guard.key, &guard.token, ttl).await {
                Ok(Extend::Extended { .. }) => valid_until = started.saturating_add(ttl),
                Ok(Extend::NotHeld) => break,
                // A failed extension (store down, timeout) may not mean the
                // lock is gone: try again next tick while the hold lasts.
                Err(_) if clock.now() < valid_until => {}
                Err(_) => break,
            }
        }
        signal.set();
    }
}
