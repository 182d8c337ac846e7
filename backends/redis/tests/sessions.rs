//! Sessions, refresh tokens and the denylist over a real redis-server
//! (the Lua twins), and a differential test that runs random operation
//! sequences through both faces of every session operation — the Lua twin
//! on Redis, the pure function on the in-process store — and demands the
//! same replies and the same stored bytes.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use rampart::session::ops::{
    FamilyAction, FamilyOp, IndexAction, IndexEntry, IndexOp, TakeRecord, TouchRecord,
};
use rampart::testkit::{Harness, TimeControl};
use rampart::{
    run, AtomicOp, Bytes, Clock, Key, ManualClock, MaybeSend, MaybeSync, MemoryStore, ScriptTime,
    Store, SystemClock, Timestamp,
};

/// One server for the whole file: tests keep to their own namespaces.
fn server() -> &'static common::Server {
    static SERVER: OnceLock<common::Server> = OnceLock::new();
    SERVER.get_or_init(common::Server::start)
}

/// A Redis store whose logical time is a manual clock starting now; the
/// Lua twins read it too (`ScriptTime::Caller`).
fn harness() -> Harness<rampart_redis::RedisStore> {
    let clock = ManualClock::new(SystemClock.now());
    Harness::new(server().store(), TimeControl::Manual(clock))
}

mod standalone {
    use super::*;
    rampart::session_suite!(harness());
}

/// A tiny deterministic generator (xorshift64*), so a failure names its case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

struct Faces {
    memory: MemoryStore,
    redis: rampart_redis::RedisStore,
    clock: ManualClock,
}

impl Faces {
    fn new() -> Self {
        let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
        Self {
            memory: MemoryStore::builder().clock(clock.shared()).build(),
            redis: server().store(),
            clock,
        }
    }

    async fn put(&self, key: &Key, value: &[u8]) {
        let value = Bytes::copy_from_slice(value);
        self.memory.set(key, value.clone(), None).await.unwrap();
        self.redis.set(key, value, None).await.unwrap();
    }

    /// Runs `op` through both faces; the replies must agree (errors by kind).
    async fn run<O>(&self, key: &Key, op: &O, case: &str) -> Option<O::Output>
    where
        O: AtomicOp + MaybeSync + std::fmt::Debug,
        O::Output: MaybeSend + PartialEq + std::fmt::Debug,
    {
        assert!(!self.memory.capabilities().scripting);
        assert!(self.redis.capabilities().scripting);
        let pure = run(&self.memory, key, op, &self.clock, ScriptTime::Caller).await;
        let lua = run(&self.redis, key, op, &self.clock, ScriptTime::Caller).await;
        match (pure, lua) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b, "{case}: {op:?}");
                Some(a)
            }
            (Err(a), Err(b)) => {
                assert_eq!(a.kind(), b.kind(), "{case}: {op:?}: {a} / {b}");
                None
            }
            (a, b) => panic!("{case}: {op:?}: the faces disagree: {a:?} / {b:?}"),
        }
    }

    /// [`TakeRecord`] through both faces: the values taken must agree once
    /// a record past its own expiry (which Redis may still hold on its
    /// real-time TTL) is read as absent.
    async fn take(&self, key: &Key, case: &str) {
        let pure = run(
            &self.memory,
            key,
            &TakeRecord,
            &self.clock,
            ScriptTime::Caller,
        )
        .await;
        let lua = run(
            &self.redis,
            key,
            &TakeRecord,
            &self.clock,
            ScriptTime::Caller,
        )
        .await;
        let now = self.clock.now().as_micros();
        let logical = |v: Option<Bytes>| v.filter(|v| !expired(v, Some(3), now));
        assert_eq!(
            logical(pure.unwrap()),
            logical(lua.unwrap()),
            "{case}: TakeRecord"
        );
    }

    /// The stored values must agree too, once values whose own expiry
    /// (field `expires_field`, counted from 0) has passed are read as
    /// absent: the in-process store drops them on the manual clock, Redis on
    /// its own.
    async fn same_state(&self, key: &Key, expires_field: Option<usize>, case: &str) {
        let now = self.clock.now().as_micros();
        let logical = |v: Option<Bytes>| v.filter(|v| !expired(v, expires_field, now));
        let a = logical(self.memory.get(key).await.unwrap());
        let b = logical(self.redis.get(key).await.unwrap());
        assert_eq!(a, b, "{case}: stored values differ");
    }
}

/// Whether field `field` of a `|`-separated value is a time at or before `now`.
fn expired(value: &[u8], field: Option<usize>, now: u64) -> bool {
    let Some(i) = field else { return false };
    String::from_utf8_lossy(value)
        .split('|')
        .nth(i)
        .and_then(|f| f.parse::<u64>().ok())
        .is_some_and(|e| e <= now)
}

const HANDLES: &[&str] = &["h0", "h1", "h2", "h-3", "h_4"];

const CORRUPT_INDEXES: &[&str] = &[
    "2|0|",
    "1|x|",
    "1|0|h0,1,2",
    "1|0|h0,1;",
    "1|0|h 0,1,2;",
    "1|0|h0,99999999999999999,2;",
    "1|0|h0,1,9007199254740992;",
    "1|0|,1,2;",
    "garbage",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_faces_agree() {
    let faces = Faces::new();
    let mut rng = Rng(0x5e55_1011_dead_beef);
    let retention = Duration::from_secs(3_600);
    for case in 0..150 {
        let key = Key::new(format!("diff:index:{case}:{}", std::process::id())).unwrap();
        if rng.below(10) == 0 {
            faces.put(&key, rng.pick(CORRUPT_INDEXES).as_bytes()).await;
        }
        for step in 0..25 {
            let now = faces.clock.now();
            let later = |rng: &mut Rng| now.saturating_add(Duration::from_secs(rng.below(600)));
            let handle = |rng: &mut Rng| rng.pick(HANDLES).to_string();
            let action = match rng.below(7) {
                0 | 1 => IndexAction::Add {
                    entry: IndexEntry {
                        handle: handle(&mut rng),
                        created: Timestamp::from_micros(now.as_micros() - rng.below(100)),
                        expires: later(&mut rng),
                    },
                    max: 1 + rng.below(4) as usize,
                    expect_generation: match rng.below(3) {
                        0 => Some(rng.below(3)),
                        _ => None,
                    },
                },
                2 => IndexAction::Touch {
                    handle: handle(&mut rng),
                    expires: (rng.below(2) == 0).then(|| later(&mut rng)),
                },
                3 => IndexAction::Replace {
                    old: handle(&mut rng),
                    new: handle(&mut rng),
                    expires: later(&mut rng),
                },
                4 => IndexAction::Remove {
                    handle: handle(&mut rng),
                },
                5 => IndexAction::Clear {
                    keep: (rng.below(2) == 0).then(|| handle(&mut rng)),
                },
                _ => IndexAction::List,
            };
            let op = IndexOp::new(action, retention).unwrap();
            let case = format!("index case {case} step {step}");
            faces.run(&key, &op, &case).await;
            faces.same_state(&key, None, &case).await;
            faces
                .clock
                .advance(Duration::from_micros(rng.below(90_000_000)));
        }
    }
}

fn record(rng: &mut Rng, now: u64) -> String {
    let created = now - rng.below(1_000_000);
    let last = created + rng.below(1_000_000);
    let expires = now - 500_000 + rng.below(3_000_000);
    let absolute = expires + rng.below(5_000_000);
    format!(r#"1|{created}|{last}|{expires}|{absolute}|{{"u":"x","d":[1,2]}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_faces_agree() {
    let faces = Faces::new();
    let mut rng = Rng(0x0dd_ba11_cafe_f00d);
    for case in 0..150 {
        let key = Key::new(format!("diff:record:{case}:{}", std::process::id())).unwrap();
        let now = faces.clock.now().as_micros();
        let initial = match rng.below(8) {
            0 => "1|1|2|x|4|{}".to_string(),
            1 => "1|1|2|99999999999999999|4|{}".to_string(),
            _ => record(&mut rng, now),
        };
        faces.put(&key, initial.as_bytes()).await;
        for step in 0..12 {
            let case = format!("record case {case} step {step}");
            if rng.below(6) == 0 {
                faces.take(&key, &case).await;
                faces
                    .put(
                        &key,
                        record(&mut rng, faces.clock.now().as_micros()).as_bytes(),
                    )
                    .await;
            } else {
                let idle = Duration::from_micros(1 + rng.below(2_000_000));
                let touch = Duration::from_micros(rng.below(400_000));
                faces.run(&key, &TouchRecord::new(idle, touch), &case).await;
            }
            faces.same_state(&key, Some(3), &case).await;
            faces
                .clock
                .advance(Duration::from_micros(rng.below(400_000)));
        }
    }
}

fn hash(c: char) -> String {
    std::iter::repeat_n(c, 64).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn family_faces_agree() {
    let faces = Faces::new();
    let mut rng = Rng(0xfa11_1e5f_0123_4567);
    let hashes = ['a', 'b', 'c'];
    for case in 0..150 {
        let key = Key::new(format!("diff:family:{case}:{}", std::process::id())).unwrap();
        let now = faces.clock.now().as_micros();
        let expires = now + rng.below(2_000_000);
        let absolute = expires + rng.below(3_000_000);
        let state = if rng.below(4) == 0 { 'r' } else { 'a' };
        let initial = match rng.below(10) {
            0 => format!("1|0|1|{expires}|{absolute}|a|{}|{{}}", "A".repeat(64)),
            1 => format!("1|0|1|{expires}|{absolute}|x|{}|{{}}", hash('a')),
            _ => format!(
                r#"1|{}|{}|{expires}|{absolute}|{state}|{}|{{"u":"x"}}"#,
                rng.below(5),
                now - 10,
                hash(*rng.pick(&hashes))
            ),
        };
        faces.put(&key, initial.as_bytes()).await;
        for step in 0..10 {
            let case = format!("family case {case} step {step}");
            let action = if rng.below(5) == 0 {
                FamilyAction::Revoke
            } else {
                FamilyAction::Rotate {
                    presented: hash(*rng.pick(&hashes)),
                    next: hash(*rng.pick(&hashes)),
                    idle: Duration::from_micros(1 + rng.below(1_500_000)),
                }
            };
            faces
                .run(&key, &FamilyOp::new(action).unwrap(), &case)
                .await;
            faces.same_state(&key, Some(3), &case).await;
            faces
                .clock
                .advance(Duration::from_micros(rng.below(300_000)));
        }
    }
}

/// With the server's clock (the default), sessions work end to end: the
/// twins read Redis `TIME`.
#[tokio::test]
async fn server_time_end_to_end() {
    use rampart::session::{
        Refresh, RefreshConfig, RefreshTokens, SessionConfig, SessionMeta, Sessions,
    };
    let prefix = format!("e2e:{}", std::process::id());
    let sessions = Sessions::new(
        server().store(),
        SessionConfig::default().with_namespace(format!("{prefix}:s")),
    )
    .unwrap();
    let new = sessions
        .create("zoe", &"data", SessionMeta::new().with_ip("127.0.0.1"))
        .await
        .unwrap();
    let got = sessions.get::<String>(&new.id).await.unwrap().unwrap();
    assert_eq!(got.data, "data");
    let rotated = sessions.rotate(&new.id).await.unwrap().unwrap();
    assert!(sessions.get::<String>(&new.id).await.unwrap().is_none());
    assert_eq!(sessions.list("zoe").await.unwrap().len(), 1);
    assert_eq!(sessions.destroy_all("zoe").await.unwrap(), 1);
    assert!(sessions.get::<String>(&rotated).await.unwrap().is_none());
    let tokens = RefreshTokens::new(
        server().store(),
        RefreshConfig::default().with_namespace(format!("{prefix}:r")),
    )
    .unwrap();
    let issued = tokens.issue("zoe").await.unwrap();
    assert!(matches!(
        tokens.rotate(&issued.token).await.unwrap(),
        Refresh::Rotated(_)
    ));
    assert!(matches!(
        tokens.rotate(&issued.token).await.unwrap(),
        Refresh::ReuseDetected { .. }
    ));
}

fn cluster() -> &'static common::Cluster {
    static CLUSTER: OnceLock<common::Cluster> = OnceLock::new();
    CLUSTER.get_or_init(common::Cluster::start)
}

/// Every session operation touches one key, so the suite runs unchanged
/// on a 3-master Cluster (`list` reads records across slots).
mod cluster {
    use super::*;
    rampart::session_suite!(Harness::new(
        cluster().store(),
        TimeControl::Manual(ManualClock::new(SystemClock.now()))
    ));
}
