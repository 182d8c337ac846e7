//! Cache hit cost against its peer: a raw `moka::sync::Cache<String, Bytes>`
//! get plus a serde_json decode of the same value.
//!
//! ```text
//! cargo bench --bench cache -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Each rampart case reads through `Cache::get` / `Cache::get_or_set` (key
//! building, store read, envelope and freshness check, decode, counters).
//! In-process stores finish a read in one poll, so the future is polled
//! once (`now_or_never`) and no executor cost is measured on either side.
//!
//! After criterion's runs the bench prints the ratio of each case to the
//! peer (the target is within 1.3x), measured **interleaved**: 301 short
//! alternating rounds (2 000 reads, about a millisecond) of every case,
//! median per case, so load from other processes on a shared machine hits
//! all cases alike and rounds rarely straddle a scheduler slice.
//!
//! The interleaved medians are also printed as `BENCH_JSON {...}` lines,
//! which `scripts/bench` reads to write `BENCHMARKS.md`.
//!
//! Every store runs the same `Case::cache`: benchmarking another in-process
//! store (such as `rampart_moka::MokaStore`) is one more entry in `cases`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use futures_util::FutureExt;
use rampart::cache::{Cache, EntryOptions};
use rampart::{Codec, Json, MemoryStore, MsgPack, Store};
use serde::{Deserialize, Serialize};

const KEY: &str = "user:42";

/// A typical cached row: about 230 bytes of JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    id: u64,
    name: String,
    email: String,
    roles: Vec<String>,
    created_at: u64,
    active: bool,
    bio: String,
}

fn profile() -> Profile {
    Profile {
        id: 42,
        name: "Ada Lovelace".into(),
        email: "ada@example.com".into(),
        roles: vec!["admin".into(), "editor".into()],
        created_at: 1_700_000_000,
        active: true,
        bio: "Wrote the first program for the Analytical Engine; poet of science.".into(),
    }
}

/// One benchmarked read: its name and one run of it.
struct Case {
    name: String,
    run: Box<dyn Fn() -> Profile>,
}

impl Case {
    /// The peer: moka's get, then serde_json.
    fn raw_moka() -> Case {
        let moka: moka::sync::Cache<String, Bytes> = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(Duration::from_secs(600))
            .build();
        moka.insert(
            KEY.to_string(),
            Bytes::from(serde_json::to_vec(&profile()).unwrap()),
        );
        Case {
            name: "raw_moka_get_plus_json_decode".into(),
            run: Box::new(move || {
                let bytes = moka.get(black_box(KEY)).unwrap();
                serde_json::from_slice(&bytes).unwrap()
            }),
        }
    }

    /// `Cache::get` and `Cache::get_or_set` hits over `store` with `codec`.
    fn cache<S: Store + 'static, C: Codec + 'static>(name: &str, store: S, codec: C) -> [Case; 2] {
        let cache = Cache::builder(store)
            .codec(codec)
            .default_ttl(Duration::from_secs(600))
            .build()
            .unwrap();
        cache
            .set(KEY, &profile(), EntryOptions::new())
            .now_or_never()
            .expect("in-process stores answer at once")
            .unwrap();
        let again = cache.clone();
        [
            Case {
                name: format!("{name}_get"),
                run: Box::new(move || {
                    let hit = cache.get(black_box(KEY)).now_or_never().unwrap();
                    hit.unwrap().expect("a hit")
                }),
            },
            Case {
                name: format!("{name}_get_or_set"),
                run: Box::new(move || {
                    let hit = again
                        .get_or_set(black_box(KEY), EntryOptions::new(), || async {
                            panic!("a hit never loads")
                        })
                        .now_or_never()
                        .unwrap();
                    hit.unwrap()
                }),
            },
        ]
    }
}

fn cases() -> Vec<Case> {
    let mut cases = vec![Case::raw_moka()];
    cases.extend(Case::cache("memory_store", MemoryStore::new(), Json));
    cases.extend(Case::cache(
        "moka_store",
        rampart_moka::MokaStore::new(),
        Json,
    ));
    cases.extend(Case::cache(
        "memory_store_msgpack",
        MemoryStore::new(),
        MsgPack,
    ));
    cases
}

fn criterion_runs(c: &mut Criterion) {
    let mut group = c.benchmark_group("cache_hit");
    for case in cases() {
        assert_eq!((case.run)(), profile());
        group.bench_function(&case.name, |b| b.iter(|| black_box((case.run)())));
    }
    group.finish();
}

/// Interleaved medians and ratios to the peer.
fn interleaved(_: &mut Criterion) {
    const ROUNDS: usize = 301;
    const PER_ROUND: u32 = 2_000;
    let cases = cases();
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); cases.len()];
    for _ in 0..ROUNDS {
        for (case, t) in cases.iter().zip(&mut times) {
            let start = Instant::now();
            for _ in 0..PER_ROUND {
                black_box((case.run)());
            }
            t.push(start.elapsed().as_nanos() as f64 / f64::from(PER_ROUND));
        }
    }
    let medians: Vec<f64> = times
        .iter_mut()
        .map(|t| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        })
        .collect();
    let peer = medians[0];
    println!(
        "\ninterleaved medians ({ROUNDS} rounds of {PER_ROUND}), ratio to {}:",
        cases[0].name
    );
    for (case, m) in cases.iter().zip(&medians) {
        let verdict = if *m <= 1.3 * peer {
            ""
        } else {
            "  (over 1.3x)"
        };
        println!("  {:<40} {m:>7.1} ns  {:.2}x{verdict}", case.name, m / peer);
    }
    // Machine-readable, for scripts/bench (BENCHMARKS.md).
    for (case, m) in cases.iter().zip(&medians).skip(1) {
        println!(
            "BENCH_JSON {{\"bench\":\"cache_interleaved\",\"case\":\"{}\",\"ns\":{m:.1},\"peer\":\"{}\",\"peer_ns\":{peer:.1}}}",
            case.name, cases[0].name
        );
    }
}

criterion_group!(cache, criterion_runs, interleaved);
criterion_main!(cache);
