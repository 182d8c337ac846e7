//! `with_lock`: the watchdog keeps a lock through a task much longer than
//! its TTL, a lost lock is signalled to the task, the lock is released
//! whatever the task returns, and a cancelled task leaves the lock to
//! expire.
//!
//! The first two tests run on real time with short TTLs (the watchdog's
//! timer is real); the others use a manual clock for the lock and make no
//! assumption about how long anything takes.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rampart::lock::{LockConfig, Locks};
use rampart::{Error, ErrorKind, ManualClock, MemoryStore, SharedClock, SystemClock, Timestamp};
use rampart_mock::FaultyStore;

const MS: Duration = Duration::from_millis(1);

/// A store that went down: every call fails while it is broken.
fn breakable(clock: SharedClock) -> FaultyStore<MemoryStore> {
    FaultyStore::new(MemoryStore::builder().clock(clock).build())
}

/// What a task saw while it ran under the lock.
#[derive(Debug, Default, PartialEq, Eq)]
struct Observed {
    /// Times a competitor got the lock while the task held it.
    competitor_got_it: u32,
    /// Times the handle said the lock was lost.
    lost: u32,
}

/// Runs a task of `steps` × `step` under a lock of `ttl` on real time;
/// after each step a competitor tries to take the lock.
async fn hold_through(config: LockConfig, ttl: Duration, step: Duration, steps: u32) {
    let store = Arc::new(MemoryStore::new());
    let locks = Locks::builder(Arc::clone(&store))
        .clock(SystemClock::shared())
        .config(config)
        .build()
        .unwrap();
    let competitor = Locks::new(Arc::clone(&store));
    // Spawned: the whole `with_lock` future is `Send`.
    let observed = tokio::spawn({
        let locks = locks.clone();
        async move {
            locks
                .with_lock("report", ttl, |lock| async move {
                    let mut seen = Observed::default();
                    for _ in 0..steps {
                        tokio::time::sleep(step).await;
                        if let Some(stolen) = competitor.try_acquire("report", ttl).await? {
                            seen.competitor_got_it += 1;
                            let _ = stolen.release().await?;
                        }
                        seen.lost += u32::from(lock.is_lost());
                    }
                    Ok::<_, Error>(seen)
                })
                .await
        }
    })
    .await
    .unwrap()
    .expect("the lock was held throughout");
    assert_eq!(observed, Observed::default());
    assert!(!locks.is_locked("report").await.unwrap(), "released");
}

/// A task running 5× the TTL keeps the lock all along.
#[tokio::test]
async fn watchdog_keeps_the_lock_through_a_task_5x_its_ttl() {
    let ttl = 500 * MS;
    hold_through(LockConfig::default(), ttl, 100 * MS, 25).await;
}

/// A configured watchdog interval longer than the TTL is cut to TTL/3.
#[tokio::test]
async fn ttl_shorter_than_the_watchdog_interval_still_works() {
    let mut config = LockConfig::default();
    config.watchdog_interval = Some(Duration::from_secs(10));
    let ttl = 300 * MS;
    hold_through(config, ttl, 50 * MS, 30).await;
}

fn manual() -> ManualClock {
    ManualClock::new(Timestamp::from_secs(1_700_000_000))
}

/// When the lock expires and someone else takes it, the task is told,
/// the new holder keeps its lock, and `with_lock` reports the loss.
#[tokio::test]
async fn a_lost_lock_is_signalled_and_reported() {
    let clock = manual();
    let store = Arc::new(MemoryStore::builder().clock(clock.shared()).build());
    let locks = Locks::builder(Arc::clone(&store))
        .clock(clock.shared())
        .build()
        .unwrap();
    let ttl = 300 * MS;
    let other_task_saw_it = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&other_task_saw_it);
    let thief = locks.clone();
    let stolen = Arc::new(std::sync::Mutex::new(None));
    let stolen_slot = Arc::clone(&stolen);
    let result = locks
        .with_lock("export", ttl, |lock| async move {
            // A clone of the handle in another task is woken too.
            let watcher = tokio::spawn({
                let lock = lock.clone();
                async move {
                    lock.lost().await;
                    flag.store(true, Ordering::SeqCst);
                }
            });
            assert!(!lock.is_lost());
            // Time jumps past the TTL before the watchdog's next extension,
            // and someone else takes the lock.
            clock.advance(ttl);
            let newcomer = thief.try_acquire("export", ttl).await?.expect("expired");
            assert!(newcomer.fence() > lock.fence());
            *stolen_slot.lock().unwrap() = Some(newcomer);
            tokio::time::timeout(Duration::from_secs(30), lock.lost())
                .await
                .expect("the watchdog noticed");
            assert!(lock.is_lost());
            watcher.await.unwrap();
            Ok::<_, Error>("done anyway")
        })
        .await;
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(err.operation(), Some("lock.with_lock"));
    assert!(other_task_saw_it.load(Ordering::SeqCst));
    // The new holder's lock was not touched by the release.
    let newcomer = stolen.lock().unwrap().take().unwrap();
    assert_eq!(locks.ttl("export").await.unwrap(), Some(ttl));
    assert!(newcomer.release().await.unwrap().is_released());
}

/// A store that stops answering: once the hold has run out without a
/// confirmed extension the task is told, and the release error surfaces.
#[tokio::test]
async fn a_failing_store_is_signalled_once_the_hold_runs_out() {
    let clock = manual();
    let store = Arc::new(breakable(clock.shared()));
    let locks = Locks::builder(Arc::clone(&store))
        .clock(clock.shared())
        .build()
        .unwrap();
    let ttl = 300 * MS;
    let broken = Arc::clone(&store);
    let lost_early = Arc::new(AtomicBool::new(true));
    let early = Arc::clone(&lost_early);
    let result = locks
        .with_lock("sync", ttl, |lock| async move {
            broken.break_now();
            // Failed extensions alone do not mean the lock is gone (the
            // manual clock says the hold still lasts)...
            tokio::time::sleep(ttl).await;
            early.store(lock.is_lost(), Ordering::SeqCst);
            // ...but once the hold has run out, it is.
            clock.advance(ttl);
            tokio::time::timeout(Duration::from_secs(30), lock.lost())
                .await
                .expect("the watchdog gave up");
            Ok::<_, Error>(())
        })
        .await;
    assert!(!lost_early.load(Ordering::SeqCst));
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "the release failed");
    store.heal();
    assert!(!locks.is_locked("sync").await.unwrap(), "expired");
}

#[derive(Debug, PartialEq)]
enum JobError {
    Failed(&'static str),
    Lock(ErrorKind),
}

impl From<Error> for JobError {
    fn from(e: Error) -> Self {
        JobError::Lock(e.kind())
    }
}

/// The task's own error comes back as it was, and the lock is released.
#[tokio::test]
async fn the_lock_is_released_when_the_task_fails() {
    let clock = manual();
    let locks = Locks::builder(MemoryStore::builder().clock(clock.shared()).build())
        .clock(clock.shared())
        .build()
        .unwrap();
    let result: std::result::Result<(), JobError> = locks
        .with_lock("import", Duration::from_secs(30), |_lock| async {
            Err(JobError::Failed("bad row"))
        })
        .await;
    assert_eq!(result, Err(JobError::Failed("bad row")));
    assert!(!locks.is_locked("import").await.unwrap());
    // And on success, the value comes back and the lock is free again.
    let value = locks
        .with_lock("import", Duration::from_secs(30), |lock| async move {
            Ok::<_, JobError>(lock.fence())
        })
        .await
        .unwrap();
    assert!(value > 0);
    assert!(!locks.is_locked("import").await.unwrap());
}

/// A held lock: `with_lock` retries the configured number of times, then
/// gives up with a Conflict without running the task.
#[tokio::test]
async fn a_held_lock_is_a_conflict_and_the_task_never_runs() {
    let clock = manual();
    let mut config = LockConfig::default();
    config.retry_count = 3;
    config.retry_delay = MS;
    let locks = Locks::builder(MemoryStore::builder().clock(clock.shared()).build())
        .clock(clock.shared())
        .config(config)
        .build()
        .unwrap();
    let holder = locks
        .try_acquire("deploy", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    let ran = AtomicU32::new(0);
    let result: std::result::Result<(), JobError> = locks
        .with_lock("deploy", Duration::from_secs(30), |_| async {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .await;
    assert_eq!(result, Err(JobError::Lock(ErrorKind::Conflict)));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert!(holder.release().await.unwrap().is_released());
}

/// Cancelling `with_lock` (dropping its future) stops the watchdog: the
/// lock is no longer extended and expires after its TTL.
#[tokio::test]
async fn a_cancelled_task_leaves_the_lock_to_expire() {
    let clock = manual();
    let locks = Locks::builder(MemoryStore::builder().clock(clock.shared()).build())
        .clock(clock.shared())
        .build()
        .unwrap();
    let ttl = 30 * MS;
    let started = Arc::new(tokio::sync::Notify::new());
    let run = locks.with_lock("stuck", ttl, |_lock| {
        let started = Arc::clone(&started);
        async move {
            started.notify_one();
            std::future::pending::<()>().await;
            Ok::<_, Error>(())
        }
    });
    tokio::select! {
        _ = run => unreachable!("the task never finishes"),
        _ = started.notified() => {}
    }
    // `run` is dropped: the lock stays until its TTL runs out, and nothing
    // extends it any more.
    assert!(locks.is_locked("stuck").await.unwrap());
    clock.advance(ttl / 2);
    tokio::time::sleep(ttl).await; // several watchdog intervals
    assert_eq!(locks.ttl("stuck").await.unwrap(), Some(ttl / 2));
    clock.advance(ttl / 2);
    assert!(!locks.is_locked("stuck").await.unwrap());
}
