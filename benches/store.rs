//! In-process store operations against raw moka, measured in the same run.
//!
//! `get`, `set` and `update` on [`MemoryStore`] and [`MokaStore`], on one
//! hot key and spread over 10,000 keys, beside a raw
//! `moka::sync::Cache<String, Bytes>` `get` and `insert` of the same value.
//! After the run it prints the ratios store / raw moka from criterion's
//! medians.
//!
//! ```text
//! cargo bench --bench store -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! The stores never wait, so each async call is driven by polling it once
//! with a no-op waker: no runtime in the measurement. Every call through
//! the `Store` trait pays async-trait's boxed future; `overhead/boxed_future`
//! measures that alone.

use std::future::Future;
use std::hint::black_box;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion};
use rampart::{Change, Key, MemoryStore, Store};
use rampart_moka::MokaStore;

const KEYS: usize = 10_000;

type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// Polls `f` once: every call measured here completes without waiting.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("in-process stores never wait"),
    }
}

fn value() -> Bytes {
    Bytes::from(vec![b'v'; 64])
}

struct Fixture {
    hot: Key,
    keys: Vec<Key>,
    raw_hot: String,
    raw_keys: Vec<String>,
}

impl Fixture {
    fn new() -> Self {
        let keys: Vec<Key> = (0..KEYS)
            .map(|i| Key::new(format!("bench:key:{i:05}")).unwrap())
            .collect();
        Fixture {
            hot: Key::new("bench:hot").unwrap(),
            raw_keys: keys.iter().map(|k| k.to_string()).collect(),
            raw_hot: "bench:hot".to_string(),
            keys,
        }
    }

    fn fill<S: Store>(&self, store: &S) {
        for k in std::iter::once(&self.hot).chain(&self.keys) {
            block_on(store.set(k, value(), None)).unwrap();
        }
    }
}

fn raw_moka(f: &Fixture) -> moka::sync::Cache<String, Bytes> {
    let cache = moka::sync::Cache::new(100_000);
    for k in std::iter::once(&f.raw_hot).chain(&f.raw_keys) {
        cache.insert(k.clone(), value());
    }
    cache
}

fn moka_store(f: &Fixture) -> MokaStore {
    let store = MokaStore::new();
    f.fill(&store);
    store
}

fn memory_store(f: &Fixture) -> MemoryStore {
    let store = MemoryStore::new();
    f.fill(&store);
    store
}

fn bench_get(c: &mut Criterion, f: &Fixture) {
    let mut g = c.benchmark_group("get");
    let raw = raw_moka(f);
    g.bench_function(BenchmarkId::new("raw_moka", "hot"), |b| {
        b.iter(|| black_box(raw.get(black_box(f.raw_hot.as_str()))))
    });
    g.bench_function(BenchmarkId::new("raw_moka", "10k"), |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(raw.get(f.raw_keys[i].as_str()))
        })
    });
    store_get(&mut g, "moka_store", &moka_store(f), f);
    store_get(&mut g, "memory_store", &memory_store(f), f);
    g.finish();
}

fn store_get<S: Store>(g: &mut Group<'_>, name: &str, store: &S, f: &Fixture) {
    g.bench_function(BenchmarkId::new(name, "hot"), |b| {
        b.iter(|| black_box(block_on(store.get(black_box(&f.hot))).unwrap()))
    });
    g.bench_function(BenchmarkId::new(name, "10k"), |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(block_on(store.get(&f.keys[i])).unwrap())
        })
    });
}

fn bench_set(c: &mut Criterion, f: &Fixture) {
    let mut g = c.benchmark_group("set");
    let raw = raw_moka(f);
    let v = value();
    g.bench_function(BenchmarkId::new("raw_moka_insert", "hot"), |b| {
        b.iter(|| raw.insert(f.raw_hot.clone(), v.clone()))
    });
    g.bench_function(BenchmarkId::new("raw_moka_insert", "10k"), |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % KEYS;
            raw.insert(f.raw_keys[i].clone(), v.clone())
        })
    });
    store_set(&mut g, "moka_store", &moka_store(f), f);
    store_set(&mut g, "memory_store", &memory_store(f), f);
    g.finish();
}

fn store_set<S: Store>(g: &mut Group<'_>, name: &str, store: &S, f: &Fixture) {
    let v = value();
    g.bench_function(BenchmarkId::new(name, "hot"), |b| {
        b.iter(|| block_on(store.set(&f.hot, v.clone(), None)).unwrap())
    });
    g.bench_function(BenchmarkId::new(name, "10k"), |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % KEYS;
            block_on(store.set(&f.keys[i], v.clone(), None)).unwrap()
        })
    });
}

fn bench_update(c: &mut Criterion, f: &Fixture) {
    let mut g = c.benchmark_group("update");
    store_update(&mut g, "moka_store", &moka_store(f), f);
    store_update(&mut g, "memory_store", &memory_store(f), f);
    g.finish();
}

fn store_update<S: Store>(g: &mut Group<'_>, name: &str, store: &S, f: &Fixture) {
    let v = value();
    // The closure replaces the value: the read-modify-write twin of `set`.
    g.bench_function(BenchmarkId::new(name, "hot"), |b| {
        b.iter(|| {
            block_on(store.update(&f.hot, &mut |cur| {
                black_box(cur);
                Change::Set {
                    value: v.clone(),
                    ttl: None,
                }
            }))
            .unwrap()
        })
    });
    g.bench_function(BenchmarkId::new(name, "10k"), |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % KEYS;
            block_on(store.update(&f.keys[i], &mut |cur| {
                black_box(cur);
                Change::Set {
                    value: v.clone(),
                    ttl: None,
                }
            }))
            .unwrap()
        })
    });
    // A counter with a TTL, as a rate limiter uses one: clock reads included.
    let counter = Key::new("bench:counter").unwrap();
    let window = Some(std::time::Duration::from_secs(60));
    g.bench_function(BenchmarkId::new(name, "increment_hot"), |b| {
        b.iter(|| block_on(store.increment(&counter, 1, window)).unwrap())
    });
}

fn bench_overhead(c: &mut Criterion) {
    let mut g = c.benchmark_group("overhead");
    // What async-trait adds to every store call: one boxed future.
    g.bench_function("boxed_future", |b| {
        b.iter(|| {
            let fut: Pin<Box<dyn Future<Output = u64> + Send>> =
                Box::pin(async { black_box(1u64) });
            block_on(fut)
        })
    });
    g.finish();
}

/// Where criterion wrote its results (as criterion itself decides).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    // The bench runs as <target>/<profile>/deps/store-<hash>.
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(|t| t.join("criterion")))
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// The median of one benchmark (ns), if it ran in this invocation.
fn median(dir: &std::path::Path, id: &str) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join(id).join("new/estimates.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn print_ratios() {
    let dir = criterion_dir();
    let pairs = [
        ("get/moka_store/hot", "get/raw_moka/hot"),
        ("get/moka_store/10k", "get/raw_moka/10k"),
        ("get/memory_store/hot", "get/raw_moka/hot"),
        ("get/memory_store/10k", "get/raw_moka/10k"),
        ("set/moka_store/hot", "set/raw_moka_insert/hot"),
        ("set/moka_store/10k", "set/raw_moka_insert/10k"),
        ("set/memory_store/hot", "set/raw_moka_insert/hot"),
        ("set/memory_store/10k", "set/raw_moka_insert/10k"),
        ("update/moka_store/hot", "set/raw_moka_insert/hot"),
        ("update/moka_store/10k", "set/raw_moka_insert/10k"),
        ("update/moka_store/increment_hot", "set/raw_moka_insert/hot"),
        ("update/memory_store/hot", "set/raw_moka_insert/hot"),
        ("update/memory_store/10k", "set/raw_moka_insert/10k"),
    ];
    println!(
        "\nmedians and ratios (store / raw moka), from {}:",
        dir.display()
    );
    for (ours, peer) in pairs {
        if let (Some(a), Some(b)) = (median(&dir, ours), median(&dir, peer)) {
            println!(
                "  {ours:<34} {a:>9.1} ns  / {peer:<24} {b:>9.1} ns  = {:.2}",
                a / b
            );
        }
    }
}

/// Times `a` and `b` in alternating batches and returns the medians
/// (ns per call) and the median of the per-round ratios a / b: on a busy
/// machine, load shifts hit both sides of a round alike.
fn interleaved(mut a: impl FnMut(usize), mut b: impl FnMut(usize)) -> (f64, f64, f64) {
    const ROUNDS: usize = 150;
    const BATCH: usize = 2_000;
    // Each call gets a fresh index, so spread keys cycle through all 10k.
    let time = |f: &mut dyn FnMut(usize), round: usize| {
        let start = Instant::now();
        for i in round * BATCH..(round + 1) * BATCH {
            f(i);
        }
        start.elapsed().as_nanos() as f64 / BATCH as f64
    };
    let (mut ta, mut tb, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let x = time(&mut a, round);
        let y = time(&mut b, round);
        ta.push(x);
        tb.push(y);
        ratios.push(x / y);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(&mut ta), median(&mut tb), median(&mut ratios))
}

fn print_interleaved(f: &Fixture) {
    let raw = raw_moka(f);
    let moka = moka_store(f);
    let v = value();
    let set_fn = |value: &Bytes| Change::Set {
        value: value.clone(),
        ttl: None,
    };
    println!("\ninterleaved A/B (median per-round ratio; robust to background load):");
    let show = |name: &str, (a, b, r): (f64, f64, f64)| {
        println!("  {name:<44} {a:>8.1} ns / {b:>8.1} ns = {r:.2}");
    };
    for (label, spread) in [("hot", false), ("10k", true)] {
        let key = |i: usize| if spread { &f.keys[i % KEYS] } else { &f.hot };
        let raw_key = |i: usize| {
            if spread {
                f.raw_keys[i % KEYS].as_str()
            } else {
                f.raw_hot.as_str()
            }
        };
        show(
            &format!("MokaStore get / raw moka get ({label})"),
            interleaved(
                |i| {
                    black_box(block_on(moka.get(key(i))).unwrap());
                },
                |i| {
                    black_box(raw.get(raw_key(i)));
                },
            ),
        );
        show(
            &format!("MokaStore set / raw moka insert ({label})"),
            interleaved(
                |i| block_on(moka.set(key(i), v.clone(), None)).unwrap(),
                |i| raw.insert(raw_key(i).to_string(), v.clone()),
            ),
        );
        show(
            &format!("MokaStore update / raw moka insert ({label})"),
            interleaved(
                |i| {
                    black_box(block_on(moka.update(key(i), &mut |_| set_fn(&v))).unwrap());
                },
                |i| raw.insert(raw_key(i).to_string(), v.clone()),
            ),
        );
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test" || a == "--list");
    let mut c = Criterion::default().configure_from_args();
    let fixture = Fixture::new();
    bench_get(&mut c, &fixture);
    bench_set(&mut c, &fixture);
    bench_update(&mut c, &fixture);
    bench_overhead(&mut c);
    c.final_summary();
    if !quick {
        print_ratios();
        print_interleaved(&fixture);
    }
}
