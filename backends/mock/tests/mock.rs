//! `MockStore`: expectations on plain and provided methods.

use std::time::Duration;

use rampart::{
    Arg, Atomic, AtomicOp, Bytes, Capabilities, Change, Error, ErrorKind, Key, ManualClock, Result,
    Script, ScriptTime, Store, Timestamp, Updated, Value,
};
use rampart_mock::mockall::Sequence;
use rampart_mock::MockStore;

fn key(name: &str) -> Key {
    Key::new(name).unwrap()
}

/// Code under test: a read-through cache of a computed value.
async fn cached(store: &dyn Store, name: &str, compute: impl FnOnce() -> String) -> Result<String> {
    let k = Key::from_parts(["cache", name])?;
    if let Some(hit) = store.get(&k).await? {
        return Ok(String::from_utf8_lossy(&hit).into_owned());
    }
    let value = compute();
    store
        .set(
            &k,
            Bytes::from(value.clone()),
            Some(Duration::from_secs(60)),
        )
        .await?;
    Ok(value)
}

#[tokio::test]
async fn get_hit_skips_the_set() {
    let mut store = MockStore::new();
    store
        .expect_get()
        .withf(|k| k.as_str() == "cache:greeting")
        .times(1)
        .returning(|_| Ok(Some(Bytes::from_static(b"hello"))));
    store.expect_set().never();
    let out = cached(&store, "greeting", || {
        unreachable!("a hit computes nothing")
    })
    .await;
    assert_eq!(out.unwrap(), "hello");
}

#[tokio::test]
async fn get_miss_then_set_in_order() {
    let mut store = MockStore::new();
    let mut seq = Sequence::new();
    store
        .expect_get()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(None));
    store
        .expect_set()
        .withf(|k, value, ttl| {
            k.as_str() == "cache:greeting"
                && value.as_ref() == b"computed"
                && *ttl == Some(Duration::from_secs(60))
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    let out = cached(&store, "greeting", || "computed".to_owned()).await;
    assert_eq!(out.unwrap(), "computed");
}

#[tokio::test]
async fn an_injected_error_reaches_the_caller() {
    let mut store = MockStore::new();
    store
        .expect_get()
        .returning(|_| Err(Error::unavailable("connection refused")));
    store.expect_set().never();
    let err = cached(&store, "x", || unreachable!()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_temporary());
}

#[tokio::test]
async fn set_error_is_reported() {
    let mut store = MockStore::new();
    store.expect_get().returning(|_| Ok(None));
    store
        .expect_set()
        .returning(|_, _, _| Err(Error::timeout("no answer in 50ms")));
    let err = cached(&store, "x", || "v".to_owned()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
}

#[tokio::test]
async fn update_runs_the_callers_closure() {
    let mut store = MockStore::new();
    store
        .expect_update()
        .withf(|k, _| k.as_str() == "visits")
        .times(1)
        .returning(|_, f| {
            // Show the closure a stored "41" and report what it decided.
            match f(Some(b"41")) {
                Change::Set { value, ttl } => {
                    assert_eq!(ttl, None);
                    Ok(Updated::new(Some(value), true, 1))
                }
                other => panic!("unexpected change {other:?}"),
            }
        });
    let mut seen = None;
    let updated = store
        .update(&key("visits"), &mut |current| {
            seen = current.map(<[u8]>::to_vec);
            let n: i64 = std::str::from_utf8(current.unwrap())
                .unwrap()
                .parse()
                .unwrap();
            Change::Set {
                value: Bytes::from((n + 1).to_string()),
                ttl: None,
            }
        })
        .await
        .unwrap();
    assert_eq!(seen.as_deref(), Some(&b"41"[..]));
    assert_eq!(updated.value.as_deref(), Some(&b"42"[..]));
    assert!(updated.changed);
}

#[tokio::test]
async fn compare_and_swap_matched_on_expected() {
    let mut store = MockStore::new();
    store
        .expect_compare_and_swap()
        .withf(|_, expected, new, _| *expected == Some(&b"old"[..]) && new.is_some())
        .returning(|_, _, _, _| Ok(rampart::Swap::Swapped));
    store
        .expect_compare_and_swap()
        .returning(|_, _, _, _| Ok(rampart::Swap::Conflict(Some(Bytes::from_static(b"other")))));
    let k = key("k");
    let hit = store
        .compare_and_swap(&k, Some(b"old"), Some("new".into()), None)
        .await;
    assert_eq!(hit.unwrap(), rampart::Swap::Swapped);
    let miss = store
        .compare_and_swap(&k, None, Some("new".into()), None)
        .await;
    assert_eq!(
        miss.unwrap(),
        rampart::Swap::Conflict(Some(Bytes::from_static(b"other")))
    );
}

static INCR: Script = Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])");

#[tokio::test]
async fn eval_matched_on_script_keys_and_args() {
    let mut store = MockStore::new();
    store
        .expect_eval()
        .withf(|script, keys, args| {
            script.sha1() == INCR.sha1()
                && keys.len() == 1
                && keys[0].as_str() == "counter"
                && args == [Arg::Int(5)]
        })
        .times(1)
        .returning(|_, _, _| Ok(Value::Int(5)));
    let reply = store.eval(&INCR, &[&key("counter")], &[Arg::Int(5)]).await;
    assert_eq!(reply.unwrap(), Value::Int(5));
}

#[tokio::test]
async fn eval_unsupported_like_a_plain_store() {
    let mut store = MockStore::new();
    store
        .expect_eval()
        .returning(|_, _, _| Err(Error::unsupported("eval")));
    let err = store.eval(&INCR, &[], &[]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}

/// A tiny atomic counter, to drive `rampart::run` through the mock.
struct AddOne;

impl AtomicOp for AddOne {
    type Output = i64;
    fn script(&self) -> &'static Script {
        &INCR
    }
    fn apply(&self, state: Option<&[u8]>, _now: Timestamp) -> Result<(Change, i64)> {
        let n = match state {
            None => 0,
            Some(b) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| Error::corrupt("not a counter"))?,
        } + 1;
        Ok((Change::SetKeepTtl(Bytes::from(n.to_string())), n))
    }
    fn script_args(&self, _now: Option<Timestamp>) -> Vec<Arg> {
        vec![Arg::Int(1)]
    }
    fn decode_reply(&self, reply: Value) -> Result<i64> {
        match reply {
            Value::Int(n) => Ok(n),
            other => Err(Error::backend(format!("unexpected reply {other:?}"))),
        }
    }
}

#[tokio::test]
async fn run_takes_the_script_face_on_a_scripting_store() {
    let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
    let mut store = MockStore::new();
    store
        .expect_capabilities()
        .return_const(Capabilities::REDIS);
    store.expect_update().never();
    store
        .expect_run_atomic()
        .withf(|k, script, args, _| {
            k.as_str() == "n" && script.sha1() == INCR.sha1() && args == [Arg::Int(1)]
        })
        .times(1)
        .returning(|_, _, _, _| Ok(Atomic::Scripted(Value::Int(7))));
    let out = rampart::run(&store, &key("n"), &AddOne, &clock, ScriptTime::Server).await;
    assert_eq!(out.unwrap(), 7);
}

#[tokio::test]
async fn run_takes_the_update_face_without_scripting() {
    let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
    let mut store = MockStore::new();
    store.expect_capabilities().return_const(Capabilities::NONE);
    store.expect_run_atomic().never();
    store
        .expect_update()
        .times(1)
        .returning(|_, f| match f(Some(b"9")) {
            Change::SetKeepTtl(value) => Ok(Updated::new(Some(value), true, 1)),
            other => panic!("unexpected change {other:?}"),
        });
    let out = rampart::run(&store, &key("n"), &AddOne, &clock, ScriptTime::Server).await;
    assert_eq!(out.unwrap(), 10);
}

#[tokio::test]
async fn works_behind_arc_dyn_store() {
    let mut store = MockStore::new();
    store
        .expect_increment()
        .withf(|k, delta, ttl| k.as_str() == "hits" && *delta == 2 && ttl.is_none())
        .times(1)
        .returning(|_, delta, _| Ok(delta));
    let shared: std::sync::Arc<dyn Store> = std::sync::Arc::new(store);
    assert_eq!(shared.increment(&key("hits"), 2, None).await.unwrap(), 2);
}

#[tokio::test]
async fn a_limiter_asks_for_the_in_place_path_once_per_decision() {
    use rampart::limit::{Limiter, Quota, Rule};
    let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
    let mut store = MockStore::new();
    store.expect_capabilities().return_const(Capabilities::NONE);
    // No local path: asked once per decision, then the store call.
    store.expect_update_local().times(3).returning(|_, _| None);
    store
        .expect_update()
        .times(3)
        .returning(|_, f| match f(None) {
            Change::Set { value, .. } => Ok(Updated::new(Some(value), true, 1)),
            Change::Keep => Ok(Updated::new(None, false, 1)),
            other => panic!("unexpected change {other:?}"),
        });
    let limiter = Limiter::builder(store, Rule::token_bucket(Quota::per_second(5)).unwrap())
        .clock(clock.shared())
        .build()
        .unwrap();
    let k = key("rl:alice");
    assert!(limiter.consume(&k, 1).await.unwrap().allowed);
    assert!(limiter.consume(&k, 5).await.unwrap().allowed);
    assert!(limiter.check(&k, 1).await.unwrap().allowed);
}
