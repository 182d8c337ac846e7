//! Locks on a real redis-server: the pure face and the Lua twin of every
//! lock operation agree (decisions and stored bytes) over random sequences;
//! mutual exclusion and fencing under contention; the watchdog over Redis.

mod common;

use rampart::lock::*;
use rampart::{run, Key, ManualClock, MemoryStore, ScriptTime, Store, Timestamp};
use std::time::Duration;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Runs `op` through the pure face (MemoryStore) and the Lua twin (Redis),
/// demands the same outcome, and returns it.
async fn both<O>(
    mem: &MemoryStore,
    redis: &rampart_redis::RedisStore,
    key: &Key,
    op: &O,
    clock: &ManualClock,
) -> Result<O::Output, rampart::ErrorKind>
where
    O: rampart::AtomicOp + Sync,
    O::Output: std::fmt::Debug + Send,
{
    let a = run(mem, key, op, clock, ScriptTime::Caller)
        .await
        .map_err(|e| e.kind());
    let b = run(redis, key, op, clock, ScriptTime::Caller)
        .await
        .map_err(|e| e.kind());
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    a
}

#[tokio::test]
async fn differential() {
    let server = common::Server::start();
    let redis = server.store();
    assert!(redis.capabilities().scripting);
    let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
    let mem = MemoryStore::builder().clock(clock.shared()).build();
    let tokens: Vec<LockToken> = (0..3).map(|_| LockToken::random().unwrap()).collect();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut counts = [0u32; 8];
    for round in 0..40 {
        let key = Key::new(format!("scratch:diff:{}:{round}", std::process::id())).unwrap();
        let retention = if round % 3 == 0 {
            None
        } else {
            Some(Duration::from_secs(3600))
        };
        for _ in 0..200 {
            clock.advance(Duration::from_micros(rng.next() % 3_000_000));
            let tok = tokens[(rng.next() % 3) as usize].clone();
            let ttl = Duration::from_micros(1 + rng.next() % 5_000_000);
            // Each outcome counted under (hit, miss) for the operation.
            let hit = match rng.next() % 4 {
                0 => {
                    let op = AcquireOp::new(tok, ttl, retention).unwrap();
                    let a = both(&mem, &redis, &key, &op, &clock).await;
                    (0, matches!(a, Ok(Acquire::Acquired { .. })))
                }
                1 => {
                    let op = ReleaseOp::new(tok, retention).unwrap();
                    let a = both(&mem, &redis, &key, &op, &clock).await;
                    (2, matches!(a, Ok(Release::Released)))
                }
                2 => {
                    let op = ExtendOp::new(tok, ttl, retention).unwrap();
                    let a = both(&mem, &redis, &key, &op, &clock).await;
                    (4, matches!(a, Ok(Extend::Extended { .. })))
                }
                _ => {
                    let a = both(&mem, &redis, &key, &InspectOp, &clock).await;
                    (
                        6,
                        matches!(
                            a,
                            Ok(LockInfo {
                                remaining: Some(_),
                                ..
                            })
                        ),
                    )
                }
            };
            counts[hit.0 + usize::from(!hit.1)] += 1;
            assert_eq!(mem.get(&key).await.unwrap(), redis.get(&key).await.unwrap());
            let (mt, rt) = (mem.ttl(&key).await.unwrap(), redis.ttl(&key).await.unwrap());
            assert_eq!(
                matches!(mt, rampart::KeyTtl::Persistent),
                matches!(rt, rampart::KeyTtl::Persistent),
                "{mt:?} {rt:?}"
            );
        }
        redis.delete(&key).await.unwrap();
    }
    // corrupt values
    for bad in [
        "garbage",
        "1|9007199254740992|0|",
        "1|1|0|ABC",
        "2|1|0|",
        "1|1|0",
    ] {
        let key = Key::new(format!("scratch:bad:{}", std::process::id())).unwrap();
        mem.set(&key, bad.into(), None).await.unwrap();
        redis.set(&key, bad.into(), None).await.unwrap();
        let op = AcquireOp::new(tokens[0].clone(), Duration::from_secs(1), None).unwrap();
        let a = both(&mem, &redis, &key, &op, &clock).await;
        assert!(
            matches!(a, Err(rampart::ErrorKind::CorruptData)),
            "{bad}: {a:?}"
        );
        let a = both(&mem, &redis, &key, &InspectOp, &clock).await;
        assert!(
            matches!(a, Err(rampart::ErrorKind::CorruptData)),
            "{bad}: {a:?}"
        );
        redis.delete(&key).await.unwrap();
    }
    // Every outcome of every operation was exercised.
    assert!(counts.iter().all(|&n| n > 0), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn locks_on_redis() {
    let server = common::Server::start();
    let redis = server.store();
    let locks = Locks::builder(redis)
        .config({
            let mut c = LockConfig::default();
            c.prefix = format!("scratch:lk{}", std::process::id());
            c.retry_delay = Duration::from_millis(2);
            c.retry_jitter = Duration::from_millis(2);
            c
        })
        .build()
        .unwrap();
    let g = locks
        .try_acquire("r", Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert!(locks
        .try_acquire("r", Duration::from_secs(5))
        .await
        .unwrap()
        .is_none());
    assert!(locks.is_locked("r").await.unwrap());
    println!(
        "ttl {:?} fence {}",
        locks.ttl("r").await.unwrap(),
        g.fence()
    );
    assert_eq!(
        locks
            .release("r", &LockToken::random().unwrap())
            .await
            .unwrap(),
        Release::NotHeld
    );
    assert_eq!(g.release().await.unwrap(), Release::Released);
    // contention
    let busy: std::sync::Arc<Vec<std::sync::atomic::AtomicBool>> =
        std::sync::Arc::new((0..4).map(|_| Default::default()).collect());
    let last: std::sync::Arc<Vec<std::sync::atomic::AtomicU64>> =
        std::sync::Arc::new((0..4).map(|_| Default::default()).collect());
    let t0 = std::time::Instant::now();
    let mut tasks = vec![];
    for w in 0..16 {
        let locks = locks.clone();
        let busy = busy.clone();
        let last = last.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..200 {
                let r = (w + i) % 4;
                let g = locks
                    .acquire(
                        &format!("c{r}"),
                        Duration::from_secs(10),
                        Duration::from_secs(60),
                    )
                    .await
                    .unwrap()
                    .unwrap();
                assert!(!busy[r].swap(true, std::sync::atomic::Ordering::SeqCst));
                let prev = last[r].swap(g.fence(), std::sync::atomic::Ordering::SeqCst);
                assert!(prev < g.fence());
                tokio::task::yield_now().await;
                assert!(busy[r].swap(false, std::sync::atomic::Ordering::SeqCst));
                assert_eq!(g.release().await.unwrap(), Release::Released);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!("3200 cycles on redis in {:?}", t0.elapsed());
    let out: Result<u32, rampart::Error> = locks
        .with_lock("wd", Duration::from_millis(300), |h| async move {
            for _ in 0..15 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                assert!(!h.is_lost());
            }
            Ok(7)
        })
        .await;
    assert_eq!(out.unwrap(), 7);
}
