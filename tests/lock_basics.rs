//! Lock semantics on every in-process store, on a manual clock: tokens,
//! expiry, extension, fencing across expiry and state loss, validation,
//! corrupt state; and, through a recording scripting store, one round
//! trip per operation where the store runs Lua.

use std::sync::Arc;
use std::time::Duration;

use rampart::layers::Prefixed;
use rampart::lock::{Extend, LockConfig, LockInfo, LockToken, Locks, Release};
use rampart::{
    Capabilities, ErrorKind, Key, KeyTtl, ManualClock, MemoryStore, Store, Timestamp, Value,
    MAX_TTL,
};
use rampart_moka::MokaStore;

const SEC: Duration = Duration::from_secs(1);
const T0: Timestamp = Timestamp::from_secs(1_700_000_000);

/// A fresh store of one kind and the manual clock it follows.
trait Make: Store + Sized + 'static {
    fn make(clock: &ManualClock) -> Self;
}

impl Make for MemoryStore {
    fn make(clock: &ManualClock) -> Self {
        MemoryStore::builder().clock(clock.shared()).build()
    }
}

impl Make for MokaStore {
    fn make(clock: &ManualClock) -> Self {
        MokaStore::builder().clock(clock.shared()).build()
    }
}

use rampart::testkit::CasOnly;

impl Make for CasOnly<MemoryStore> {
    fn make(clock: &ManualClock) -> Self {
        CasOnly(MemoryStore::make(clock))
    }
}

impl Make for Prefixed<MemoryStore> {
    fn make(clock: &ManualClock) -> Self {
        Prefixed::new(MemoryStore::make(clock), "app").expect("valid prefix")
    }
}

impl Make for Arc<dyn Store> {
    fn make(clock: &ManualClock) -> Self {
        Arc::new(MokaStore::make(clock))
    }
}

fn setup<S: Make>() -> (Locks<S>, ManualClock) {
    setup_with(LockConfig::default())
}

fn setup_with<S: Make>(config: LockConfig) -> (Locks<S>, ManualClock) {
    let clock = ManualClock::new(T0);
    let locks = Locks::builder(S::make(&clock))
        .clock(clock.shared())
        .config(config)
        .build()
        .expect("valid config");
    (locks, clock)
}

/// Take, refuse, inspect, release.
async fn acquire_and_release<S: Make>() {
    let (locks, clock) = setup::<S>();
    let lock = locks
        .try_acquire("orders", 10 * SEC)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lock.resource(), "orders");
    assert_eq!(lock.key().as_str(), "lock:orders");
    assert_eq!(lock.expires_at(), T0.saturating_add(10 * SEC));
    assert!(locks
        .try_acquire("orders", 10 * SEC)
        .await
        .unwrap()
        .is_none());
    // Another resource is independent.
    let other = locks.try_acquire("invoices", SEC).await.unwrap().unwrap();
    assert!(locks.is_locked("orders").await.unwrap());
    clock.advance(SEC);
    assert_eq!(locks.ttl("orders").await.unwrap(), Some(9 * SEC));
    assert_eq!(
        locks.info("orders").await.unwrap(),
        LockInfo {
            fence: lock.fence(),
            remaining: Some(9 * SEC)
        }
    );
    let fence = lock.fence();
    assert_eq!(lock.release().await.unwrap(), Release::Released);
    assert!(!locks.is_locked("orders").await.unwrap());
    assert_eq!(locks.ttl("orders").await.unwrap(), None);
    // The fencing sequence survives the release.
    assert_eq!(locks.info("orders").await.unwrap().fence, fence);
    assert_eq!(other.release().await.unwrap(), Release::NotHeld, "expired");
    // A resource never locked.
    assert_eq!(
        locks.info("never").await.unwrap(),
        LockInfo {
            fence: 0,
            remaining: None
        }
    );
}

/// A holder that never releases blocks others only until its TTL ends.
async fn expiry_frees_an_abandoned_lock<S: Make>() {
    let (locks, clock) = setup::<S>();
    let abandoned = locks.try_acquire("job", 10 * SEC).await.unwrap().unwrap();
    clock.advance(10 * SEC - Duration::from_micros(1));
    assert!(locks.try_acquire("job", SEC).await.unwrap().is_none());
    assert!(locks.is_locked("job").await.unwrap());
    clock.advance(Duration::from_micros(1));
    assert!(!locks.is_locked("job").await.unwrap());
    let mut next = locks.try_acquire("job", 10 * SEC).await.unwrap().unwrap();
    assert!(next.fence() > abandoned.fence());
    // The old holder can no longer touch the lock...
    assert_eq!(
        locks
            .extend("job", abandoned.token(), 60 * SEC)
            .await
            .unwrap(),
        Extend::NotHeld
    );
    assert_eq!(abandoned.release().await.unwrap(), Release::NotHeld);
    // ...and the new holder's is intact.
    assert_eq!(locks.ttl("job").await.unwrap(), Some(10 * SEC));
    assert!(next.extend(10 * SEC).await.unwrap().is_extended());
    assert_eq!(next.release().await.unwrap(), Release::Released);
}

/// A stranger's token neither releases nor extends, nor changes anything.
async fn strangers_cannot_release_or_extend<S: Make>() {
    let (locks, clock) = setup::<S>();
    let holder = locks
        .try_acquire("account:7", 10 * SEC)
        .await
        .unwrap()
        .unwrap();
    let key = holder.key().clone();
    let before = locks.store().get(&key).await.unwrap();
    let stranger = LockToken::random().unwrap();
    clock.advance(SEC);
    assert_eq!(
        locks.release("account:7", &stranger).await.unwrap(),
        Release::NotHeld
    );
    assert_eq!(
        locks
            .extend("account:7", &stranger, 60 * SEC)
            .await
            .unwrap(),
        Extend::NotHeld
    );
    // A holder of another resource is a stranger here too.
    let elsewhere = locks
        .try_acquire("account:8", 10 * SEC)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        locks.release("account:7", elsewhere.token()).await.unwrap(),
        Release::NotHeld
    );
    assert_eq!(locks.store().get(&key).await.unwrap(), before);
    assert_eq!(locks.ttl("account:7").await.unwrap(), Some(9 * SEC));
    // The real token, carried as text, works.
    let carried = LockToken::from_hex(holder.token().as_hex()).unwrap();
    assert_eq!(
        locks.release("account:7", &carried).await.unwrap(),
        Release::Released
    );
    assert_eq!(elsewhere.release().await.unwrap(), Release::Released);
}

/// Extending sets the end of the hold to `ttl` from now.
async fn extend_moves_the_end_of_the_hold<S: Make>() {
    let (locks, clock) = setup::<S>();
    let mut lock = locks.try_acquire("batch", 10 * SEC).await.unwrap().unwrap();
    let fence = lock.fence();
    clock.advance(8 * SEC);
    let extended = lock.extend(10 * SEC).await.unwrap();
    let expected = T0.saturating_add(18 * SEC);
    assert_eq!(
        extended,
        Extend::Extended {
            expires_at: expected
        }
    );
    assert_eq!(lock.expires_at(), expected);
    assert_eq!(lock.fence(), fence, "extending keeps the fencing token");
    clock.advance(8 * SEC);
    assert_eq!(locks.ttl("batch").await.unwrap(), Some(2 * SEC));
    // Shorter works too.
    assert!(lock.extend(SEC).await.unwrap().is_extended());
    assert_eq!(locks.ttl("batch").await.unwrap(), Some(SEC));
    clock.advance(SEC);
    // An expired hold cannot be revived.
    assert_eq!(lock.extend(10 * SEC).await.unwrap(), Extend::NotHeld);
    assert!(!locks.is_locked("batch").await.unwrap());
    assert_eq!(lock.release().await.unwrap(), Release::NotHeld);
}

/// Fencing tokens strictly increase across releases, expiries, the state's
/// retention running out, and the state being lost.
async fn fences_strictly_increase<S: Make>() {
    let (locks, clock) = setup::<S>();
    let key = locks.key("ledger").unwrap();
    let mut fences = Vec::new();
    for round in 0..5 {
        let lock = locks
            .try_acquire("ledger", 10 * SEC)
            .await
            .unwrap()
            .unwrap();
        fences.push(lock.fence());
        match round % 3 {
            0 => assert_eq!(lock.release().await.unwrap(), Release::Released),
            1 => {
                drop(lock);
                clock.advance(10 * SEC); // expires
            }
            _ => {
                assert_eq!(lock.release().await.unwrap(), Release::Released);
                // The state outlives the release by the retention.
                assert_eq!(
                    locks.store().ttl(&key).await.unwrap(),
                    KeyTtl::Expires(Duration::from_secs(600))
                );
                clock.advance(Duration::from_secs(600));
                assert_eq!(locks.store().get(&key).await.unwrap(), None);
            }
        }
    }
    // Lost state (e.g. a restarted server): the clock seeds the sequence.
    let lock = locks
        .try_acquire("ledger", 10 * SEC)
        .await
        .unwrap()
        .unwrap();
    fences.push(lock.fence());
    assert!(locks.store().delete(&key).await.unwrap());
    clock.advance(Duration::from_millis(1));
    let lock = locks
        .try_acquire("ledger", 10 * SEC)
        .await
        .unwrap()
        .unwrap();
    fences.push(lock.fence());
    assert!(
        fences.windows(2).all(|w| w[0] < w[1]),
        "fences must strictly increase: {fences:?}"
    );
    // Back to back on a clock that stands still: +1 each time.
    let a = lock.fence();
    assert_eq!(lock.release().await.unwrap(), Release::Released);
    let b = locks.try_acquire("ledger", SEC).await.unwrap().unwrap();
    assert_eq!(b.fence(), a + 1);
    assert_eq!(b.release().await.unwrap(), Release::Released);
}

/// Without a retention, a lock's state is kept forever.
async fn state_kept_forever_without_retention<S: Make>() {
    let mut config = LockConfig::default();
    config.fence_retention = None;
    let (locks, clock) = setup_with::<S>(config);
    let lock = locks.try_acquire("cfg", SEC).await.unwrap().unwrap();
    let key = lock.key().clone();
    assert_eq!(locks.store().ttl(&key).await.unwrap(), KeyTtl::Persistent);
    let fence = lock.fence();
    assert_eq!(lock.release().await.unwrap(), Release::Released);
    clock.advance(Duration::from_secs(86_400 * 365));
    assert_eq!(locks.store().ttl(&key).await.unwrap(), KeyTtl::Persistent);
    assert_eq!(locks.info("cfg").await.unwrap().fence, fence);
}

/// Bad input is a typed error, never a panic, and writes nothing.
async fn bad_input_is_rejected<S: Make>() {
    let (locks, _clock) = setup::<S>();
    let kind = |r: rampart::Result<_>| r.map(|_: Option<_>| ()).unwrap_err().kind();
    assert_eq!(
        kind(locks.try_acquire("r", Duration::ZERO).await),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(locks.try_acquire("r", MAX_TTL + SEC).await),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(locks.try_acquire("", SEC).await),
        ErrorKind::InvalidKey
    );
    assert_eq!(
        kind(locks.try_acquire(&"r".repeat(5_000), SEC).await),
        ErrorKind::InvalidKey
    );
    assert_eq!(
        kind(locks.acquire("", SEC, SEC).await),
        ErrorKind::InvalidKey
    );
    assert_eq!(kind(locks.lock("").await), ErrorKind::InvalidKey);
    let token = LockToken::random().unwrap();
    assert_eq!(
        locks.release("", &token).await.unwrap_err().kind(),
        ErrorKind::InvalidKey
    );
    assert_eq!(
        locks.extend("", &token, SEC).await.unwrap_err().kind(),
        ErrorKind::InvalidKey
    );
    assert_eq!(
        locks
            .extend("r", &token, Duration::ZERO)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        locks.is_locked("").await.unwrap_err().kind(),
        ErrorKind::InvalidKey
    );
    let err = locks
        .with_lock("", SEC, |_| async { Ok::<_, rampart::Error>(()) })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidKey);
    assert_eq!(err.operation(), Some("lock.with_lock"));
    let err = locks
        .with_lock("r", Duration::ZERO, |_| async {
            Ok::<_, rampart::Error>(())
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(!locks.is_locked("r").await.unwrap());
}

/// A key holding something other than a lock state is CorruptData for
/// every operation, and is left as it was.
async fn corrupt_state_is_a_typed_error<S: Make>() {
    let (locks, _clock) = setup::<S>();
    let key = locks.key("weird").unwrap();
    for junk in [
        &b"garbage"[..],
        b"",
        b"1|2|3",
        b"2|1|0|",
        b"1|-5|0|",
        b"\xff\xfe|1|0|",
    ] {
        locks.store().set(&key, junk.into(), None).await.unwrap();
        let err = locks.try_acquire("weird", SEC).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CorruptData, "{junk:?}");
        assert_eq!(err.operation(), Some("lock.try_acquire"));
        assert_eq!(err.key(), Some("lock:weird"));
        let token = LockToken::random().unwrap();
        let kind = locks.release("weird", &token).await.unwrap_err().kind();
        assert_eq!(kind, ErrorKind::CorruptData);
        let kind = locks.extend("weird", &token, SEC).await.unwrap_err().kind();
        assert_eq!(kind, ErrorKind::CorruptData);
        let kind = locks.is_locked("weird").await.unwrap_err().kind();
        assert_eq!(kind, ErrorKind::CorruptData);
        assert_eq!(
            locks.store().get(&key).await.unwrap().as_deref(),
            Some(junk)
        );
    }
}

/// `acquire` waits for a release; `lock` uses the configured TTL and gives
/// up after the configured retries; a stopped clock still ends a wait.
async fn waiting<S: Make>() {
    let mut config = LockConfig::default();
    config.ttl = 5 * SEC;
    config.retry_count = 3;
    config.retry_delay = Duration::from_millis(2);
    config.retry_jitter = Duration::from_millis(2);
    let (locks, _clock) = setup_with::<S>(config);
    let held = locks.lock("queue").await.unwrap().unwrap();
    assert_eq!(held.expires_at(), T0.saturating_add(5 * SEC));
    assert!(locks.lock("queue").await.unwrap().is_none());
    assert!(locks
        .acquire("queue", SEC, Duration::from_millis(20))
        .await
        .unwrap()
        .is_none());
    // Released while someone waits: the waiter gets it.
    let waiter = {
        let locks = locks.clone();
        tokio::spawn(async move { locks.acquire("queue", SEC, 60 * SEC).await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(held.release().await.unwrap(), Release::Released);
    let got = waiter
        .await
        .unwrap()
        .unwrap()
        .expect("acquired after release");
    assert!(got.fence() > 0);
    assert_eq!(got.release().await.unwrap(), Release::Released);
}

/// A waiter retries when the holder's TTL runs out.
async fn waiting_for_expiry<S: Make>() {
    let mut config = LockConfig::default();
    config.retry_delay = Duration::from_millis(2);
    config.retry_jitter = Duration::ZERO;
    let (locks, clock) = setup_with::<S>(config);
    let abandoned = locks.try_acquire("cron", 10 * SEC).await.unwrap().unwrap();
    let waiter = {
        let locks = locks.clone();
        tokio::spawn(async move { locks.acquire("cron", SEC, 3_600 * SEC).await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    clock.advance(10 * SEC);
    let got = waiter
        .await
        .unwrap()
        .unwrap()
        .expect("acquired after expiry");
    assert!(got.fence() > abandoned.fence());
    assert_eq!(abandoned.release().await.unwrap(), Release::NotHeld);
    assert_eq!(got.release().await.unwrap(), Release::Released);
}

/// Tokens never show in `Debug` output or errors.
async fn tokens_stay_secret<S: Make>() {
    let (locks, _clock) = setup::<S>();
    let lock = locks.try_acquire("secret", SEC).await.unwrap().unwrap();
    let hex = lock.token().as_hex().to_owned();
    assert_eq!(hex.len(), 32, "128 bits");
    for text in [
        format!("{lock:?}"),
        format!("{:?}", lock.token()),
        format!("{locks:?}"),
        format!("{:?}", locks.try_acquire("secret", SEC).await),
    ] {
        assert!(!text.contains(&hex), "{text}");
    }
    let err = LockToken::from_hex(&format!("{}zz", &hex[2..])).unwrap_err();
    assert!(!err.to_string().contains(&hex[2..]));
    assert_ne!(
        locks
            .try_acquire("other", SEC)
            .await
            .unwrap()
            .unwrap()
            .token(),
        lock.token()
    );
}

macro_rules! for_stores {
    ($($test:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $( #[tokio::test] async fn $test() { super::$test::<MemoryStore>().await } )*
        }
        mod moka {
            use super::*;
            $( #[tokio::test] async fn $test() { super::$test::<MokaStore>().await } )*
        }
        mod cas_only {
            use super::*;
            $( #[tokio::test] async fn $test() { super::$test::<CasOnly<MemoryStore>>().await } )*
        }
        mod prefixed {
            use super::*;
            $( #[tokio::test] async fn $test() { super::$test::<Prefixed<MemoryStore>>().await } )*
        }
        mod dyn_store {
            use super::*;
            $( #[tokio::test] async fn $test() { super::$test::<Arc<dyn Store>>().await } )*
        }
    };
}

for_stores!(
    acquire_and_release,
    expiry_frees_an_abandoned_lock,
    strangers_cannot_release_or_extend,
    extend_moves_the_end_of_the_hold,
    fences_strictly_increase,
    state_kept_forever_without_retention,
    bad_input_is_rejected,
    corrupt_state_is_a_typed_error,
    waiting,
    waiting_for_expiry,
    tokens_stay_secret,
);

#[test]
fn invalid_config_is_a_config_error() {
    let mut config = LockConfig::default();
    config.ttl = Duration::ZERO;
    let err = Locks::builder(MemoryStore::new())
        .config(config)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

/// A scripting store that records every script call and answers with
/// canned replies: what a Redis store sees, without a server.
/// One script call: the script's SHA1, `KEYS` and `ARGV`.
type Call = (String, Vec<String>, Vec<rampart::Arg>);

#[derive(Default)]
struct Scripted {
    calls: std::sync::Mutex<Vec<Call>>,
    replies: std::sync::Mutex<std::collections::VecDeque<Value>>,
}

impl Scripted {
    fn answering(replies: impl IntoIterator<Item = Value>) -> Self {
        Self {
            replies: std::sync::Mutex::new(replies.into_iter().collect()),
            ..Self::default()
        }
    }
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

fn no_plain_calls<T>() -> rampart::Result<T> {
    Err(rampart::Error::backend(
        "a scripting store must get script calls only",
    ))
}

#[async_trait::async_trait]
impl Store for Scripted {
    fn capabilities(&self) -> Capabilities {
        Capabilities::REDIS
    }
    async fn get(&self, _: &Key) -> rampart::Result<Option<rampart::Bytes>> {
        no_plain_calls()
    }
    async fn set(&self, _: &Key, _: rampart::Bytes, _: Option<Duration>) -> rampart::Result<()> {
        no_plain_calls()
    }
    async fn delete(&self, _: &Key) -> rampart::Result<bool> {
        no_plain_calls()
    }
    async fn ttl(&self, _: &Key) -> rampart::Result<KeyTtl> {
        no_plain_calls()
    }
    async fn compare_and_swap(
        &self,
        _: &Key,
        _: Option<&[u8]>,
        _: Option<rampart::Bytes>,
        _: Option<Duration>,
    ) -> rampart::Result<rampart::Swap> {
        no_plain_calls()
    }
    async fn scan(&self, _: &str, _: &rampart::Cursor, _: usize) -> rampart::Result<rampart::Page> {
        no_plain_calls()
    }
    async fn update(
        &self,
        _: &Key,
        _: &mut rampart::UpdateFn<'_>,
    ) -> rampart::Result<rampart::Updated> {
        no_plain_calls()
    }
    async fn eval(
        &self,
        script: &rampart::Script,
        keys: &[&Key],
        args: &[rampart::Arg],
    ) -> rampart::Result<Value> {
        let keys = keys.iter().map(|k| k.as_str().to_owned()).collect();
        self.calls
            .lock()
            .unwrap()
            .push((script.sha1().to_owned(), keys, args.to_vec()));
        let reply = self.replies.lock().unwrap().pop_front();
        reply.ok_or_else(|| rampart::Error::backend("no canned reply left"))
    }
}

/// On a scripting store each operation is exactly one script call (one
/// round trip), with the token, the TTL in µs and the state's TTL in ms as
/// arguments and the server's clock (no `now` argument); the reply decides.
#[tokio::test]
async fn one_script_call_per_operation_on_a_scripting_store() {
    use rampart::lock::{AcquireOp, ExtendOp, InspectOp, ReleaseOp};
    use rampart::{Arg, AtomicOp};

    let token = LockToken::random().unwrap();
    let sha = |op: &dyn Fn() -> &'static rampart::Script| op().sha1().to_owned();
    let acquire = AcquireOp::new(token.clone(), SEC, None).unwrap();
    let extend = ExtendOp::new(token.clone(), SEC, None).unwrap();
    let release = ReleaseOp::new(token, None).unwrap();
    let shas = [
        sha(&|| acquire.script()),
        sha(&|| extend.script()),
        sha(&|| release.script()),
        sha(&|| InspectOp.script()),
    ];
    let store = Scripted::answering([
        Value::Array(vec![
            Value::Int(1),
            Value::Int(77),
            Value::Int(1_700_000_002_500_000),
        ]),
        Value::Array(vec![Value::Int(1), Value::Int(1_700_000_009_000_000)]),
        Value::Array(vec![Value::Int(1), Value::Int(77), Value::Int(4_000_000)]),
        Value::Int(0),
        Value::Array(vec![Value::Int(0), Value::Int(3_000)]),
    ]);
    let locks = Locks::new(store);
    let mut lock = locks
        .try_acquire("payments", Duration::from_millis(2_500))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lock.fence(), 77);
    assert_eq!(
        lock.expires_at(),
        Timestamp::from_micros(1_700_000_002_500_000)
    );
    assert_eq!(
        lock.extend(9 * SEC).await.unwrap(),
        Extend::Extended {
            expires_at: Timestamp::from_micros(1_700_000_009_000_000)
        }
    );
    assert_eq!(
        locks.info("payments").await.unwrap(),
        LockInfo {
            fence: 77,
            remaining: Some(4 * SEC)
        }
    );
    let hex = lock.token().as_hex().to_owned();
    assert_eq!(lock.release().await.unwrap(), Release::NotHeld);
    assert_eq!(
        locks.ttl("payments").await.unwrap(),
        None,
        "a free lock has no remaining time"
    );
    let calls = locks.store().calls();
    let key = vec!["lock:payments".to_owned()];
    let token = Arg::Str(hex);
    assert_eq!(
        calls,
        vec![
            (
                shas[0].clone(),
                key.clone(),
                vec![token.clone(), Arg::Int(2_500_000), Arg::Int(602_500)]
            ),
            (
                shas[1].clone(),
                key.clone(),
                vec![token.clone(), Arg::Int(9_000_000), Arg::Int(609_000)]
            ),
            (shas[3].clone(), key.clone(), vec![]),
            (shas[2].clone(), key.clone(), vec![token, Arg::Int(600_000)]),
            (shas[3].clone(), key, vec![]),
        ]
    );
}

/// With `ScriptTime::Caller` the scripts get the caller's clock as their
/// last argument.
#[tokio::test]
async fn scripts_take_the_callers_clock_when_asked() {
    let clock = ManualClock::new(T0);
    let store = Scripted::answering([Value::Array(vec![Value::Int(0), Value::Int(5)])]);
    let locks = Locks::builder(store)
        .clock(clock.shared())
        .script_time(rampart::ScriptTime::Caller)
        .build()
        .unwrap();
    assert!(locks.try_acquire("r", SEC).await.unwrap().is_none());
    let calls = locks.store().calls();
    assert_eq!(
        calls[0].2.last(),
        Some(&rampart::Arg::Int(T0.as_micros() as i64))
    );
}

/// Script replies meaning "corrupt state" or nonsense are typed errors.
#[tokio::test]
async fn script_replies_are_checked() {
    let store = Scripted::answering([
        Value::Array(vec![Value::Int(-1)]),
        Value::Array(vec![Value::Int(-2)]),
        Value::Array(vec![Value::Int(1)]),
        Value::Status("OK".into()),
        Value::Array(vec![]),
    ]);
    let locks = Locks::new(store);
    let kinds = [
        ErrorKind::CorruptData,
        ErrorKind::InvalidInput,
        ErrorKind::Backend,
        ErrorKind::Backend,
        ErrorKind::Backend,
    ];
    for kind in kinds {
        let err = locks.try_acquire("x", SEC).await.unwrap_err();
        assert_eq!(err.kind(), kind);
        assert_eq!(err.key(), Some("lock:x"));
        assert_eq!(err.operation(), Some("lock.try_acquire"));
    }
}

/// Waiting for a held lock outside a tokio runtime: a typed error (the
/// retry would sleep), not tokio's panic; a free lock needs no runtime.
#[test]
fn waiting_outside_a_runtime_is_a_typed_error() {
    fn poll_without_runtime<F: std::future::Future>(f: F) -> F::Output {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut f = std::pin::pin!(f);
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }
    let (locks, _clock) = setup::<MemoryStore>();
    let held = poll_without_runtime(locks.acquire("report", SEC, SEC))
        .unwrap()
        .expect("free: taken at the first attempt");
    let err = poll_without_runtime(locks.acquire("report", SEC, SEC)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(err.operation(), Some("lock.acquire"));
    assert_eq!(
        poll_without_runtime(held.release()).unwrap(),
        Release::Released
    );
}
