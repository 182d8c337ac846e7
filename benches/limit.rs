//! Token-bucket `consume` on the in-process stores, next to governor's
//! keyed limiter measured in the same run: one hot key, and 10 000 keys
//! visited in turn. Every request is admitted (the bucket holds a billion
//! tokens) and every key's state stays alive (one token per second, so its
//! TTL only grows), as with real rules whose windows last seconds to hours:
//! each iteration is a full decision and an in-place state write.
//!
//! The `parts/*` benchmarks split a decision into its costs: the pure
//! algorithm alone (text form, as the Lua face stores it), a store's
//! `update` and in-place `update_local` that change nothing, the clock,
//! and moka's own lookup (the floor under `MokaStore`). `consume/*` runs
//! the other algorithms (and a two-tier bucket) on MemoryStore.
//!
//! `cargo bench --bench limit -- --warm-up-time 1 --measurement-time 3`

use std::future::Future;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use criterion::{criterion_group, criterion_main, Criterion};
use governor::{Quota as GovQuota, RateLimiter};
use std::time::Duration;

use rampart::limit::{LimitOp, Limiter, Operation, Quota, Rule};
use rampart::{AtomicOp, Change, Clock, Key, LocalChange, MemoryStore, Store, SystemClock};
use rampart_moka::MokaStore;

const KEYS: usize = 10_000;
/// Large enough that nothing is ever denied during a run.
const BURST: u32 = 1_000_000_000;

/// Runs an in-process store's future: they finish without waiting, so this
/// polls without a runtime (no scheduler cost in the figures).
fn run_now<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn keys() -> Vec<Key> {
    (0..KEYS)
        .map(|i| Key::new(format!("user:{i}")).unwrap())
        .collect()
}

fn rule() -> Rule {
    Rule::token_bucket(Quota::per_second(1).with_burst(u64::from(BURST))).unwrap()
}

fn bench_store<S: Store>(c: &mut Criterion, name: &str, store: S) {
    let limiter = Limiter::new(store, rule());
    let keys = keys();
    let hot = keys[0].clone();
    c.bench_function(&format!("token_bucket_consume/hot_key/{name}"), |b| {
        b.iter(|| {
            let d = run_now(limiter.consume(black_box(&hot), 1)).unwrap();
            debug_assert!(d.allowed);
            black_box(d.allowed)
        })
    });
    let mut i = 0;
    c.bench_function(&format!("token_bucket_consume/10k_keys/{name}"), |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            let d = run_now(limiter.consume(black_box(&keys[i]), 1)).unwrap();
            black_box(d.allowed)
        })
    });
}

fn governor(c: &mut Criterion) {
    let quota = GovQuota::per_second(NonZeroU32::new(1).unwrap())
        .allow_burst(NonZeroU32::new(BURST).unwrap());
    let limiter = RateLimiter::keyed(quota);
    let keys: Vec<String> = (0..KEYS).map(|i| format!("user:{i}")).collect();
    let hot = keys[0].clone();
    c.bench_function("token_bucket_consume/hot_key/governor", |b| {
        b.iter(|| black_box(limiter.check_key(black_box(&hot)).is_ok()))
    });
    let mut i = 0;
    c.bench_function("token_bucket_consume/10k_keys/governor", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(limiter.check_key(black_box(&keys[i])).is_ok())
        })
    });
}

fn parts(c: &mut Criterion) {
    let rule = rule();
    let op = LimitOp::new(&rule, Operation::Consume, 1).unwrap();
    let now = SystemClock.now();
    let (change, _) = op.apply(None, now).unwrap();
    let state = match change {
        Change::Set { value, .. } => value,
        _ => unreachable!("a consume writes"),
    };
    c.bench_function("parts/apply_token_bucket", |b| {
        b.iter(|| black_box(op.apply(black_box(Some(&state[..])), now).unwrap()))
    });
    c.bench_function("parts/clock_now/system", |b| {
        b.iter(|| black_box(SystemClock.now()))
    });
    let key = Key::new("user:0").unwrap();
    let memory = MemoryStore::new();
    let moka = MokaStore::new();
    for (name, store) in [
        ("rampart_memory", &memory as &dyn Store),
        ("rampart_moka", &moka),
    ] {
        run_now(store.set(&key, state.clone(), Some(Duration::from_secs(3600)))).unwrap();
        c.bench_function(&format!("parts/update_keep/{name}"), |b| {
            b.iter(|| run_now(store.update(black_box(&key), &mut |_| Change::Keep)).unwrap())
        });
        c.bench_function(&format!("parts/update_local_keep/{name}"), |b| {
            b.iter(|| {
                store
                    .update_local(black_box(&key), &mut |_, _| LocalChange::Keep)
                    .map(Result::unwrap)
            })
        });
    }
    // The floor under MokaStore: moka's own lookup of a hot key.
    let raw: moka::sync::Cache<Key, u64> = moka::sync::Cache::new(100_000);
    raw.insert(key.clone(), 1);
    c.bench_function("parts/raw_moka_get", |b| {
        b.iter(|| black_box(raw.get(black_box(&key))))
    });
}

fn rampart_memory(c: &mut Criterion) {
    bench_store(c, "rampart_memory", MemoryStore::new());
}

/// The other algorithms' `consume` on MemoryStore, hot key: they take the
/// generic in-process path (no peer in governor).
fn other_algorithms(c: &mut Criterion) {
    let quota = Quota::per_hour(u64::from(BURST));
    let rules = [
        ("fixed_window", Rule::fixed_window(quota).unwrap()),
        ("sliding_window", Rule::sliding_window(quota).unwrap()),
        (
            "token_bucket_two_tiers",
            Rule::builder(rampart::limit::Algorithm::TokenBucket)
                .quota(Quota::per_second(1).with_burst(u64::from(BURST)))
                .quota(Quota::per_hour(u64::from(BURST)))
                .build()
                .unwrap(),
        ),
    ];
    for (name, rule) in rules {
        let limiter = Limiter::new(MemoryStore::new(), rule);
        let key = Key::new("user:0").unwrap();
        c.bench_function(&format!("consume/hot_key/{name}/rampart_memory"), |b| {
            b.iter(|| {
                black_box(
                    run_now(limiter.consume(black_box(&key), 1))
                        .unwrap()
                        .allowed,
                )
            })
        });
    }
    // A key over its limit (no block): every request denied.
    let limiter = Limiter::new(
        MemoryStore::new(),
        Rule::token_bucket(Quota::per_hour(1)).unwrap(),
    );
    let key = Key::new("user:0").unwrap();
    c.bench_function("consume/denied/token_bucket/rampart_memory", |b| {
        b.iter(|| {
            black_box(
                run_now(limiter.consume(black_box(&key), 1))
                    .unwrap()
                    .allowed,
            )
        })
    });
}

fn rampart_moka(c: &mut Criterion) {
    bench_store(c, "rampart_moka", MokaStore::new());
}

criterion_group!(
    benches,
    governor,
    rampart_moka,
    rampart_memory,
    other_algorithms,
    parts
);
criterion_main!(benches);
