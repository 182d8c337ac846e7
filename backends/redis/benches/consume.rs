//! Over one fresh local redis-server, at concurrency 1, 16 and 64:
//!
//! * token-bucket decisions per second beside `redis-benchmark` running the
//!   same script (`EVALSHA`, same key, same arguments) at the same
//!   concurrency;
//! * `RedisStore::get` beside a raw redis-rs `GET` on one multiplexed
//!   connection (the same value, the same key).
//!
//! Run: `cargo bench -p rampart-redis --bench consume` (or `scripts/bench`).
//! Set `RAMPART_BENCH_SECS` to change the time per measurement (default 3).
//! Besides the table, every result is printed as one JSON line starting
//! with `BENCH_JSON ` (read by `scripts/bench` to write `BENCHMARKS.md`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart::limit::{LimitOp, Limiter, Operation, Quota, Rule};
use rampart::{Arg, AtomicOp, Key, Store};

/// Operations per second of `concurrency` tasks each calling `op` in a
/// loop for `secs` seconds.
async fn throughput<F, Fut>(concurrency: usize, secs: u64, op: F) -> f64
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (op, done) = (op.clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    op().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// One result as a JSON line for `scripts/bench`.
fn json_line(bench: &str, concurrency: usize, ours: f64, peer: &str, theirs: f64) {
    println!(
        "BENCH_JSON {{\"bench\":\"{bench}\",\"concurrency\":{concurrency},\"rampart_ops\":{ours:.1},\"peer\":\"{peer}\",\"peer_ops\":{theirs:.1}}}"
    );
}

fn main() {
    let secs: u64 = std::env::var("RAMPART_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let server = common::Server::start();
    // A limit no run can exhaust: every decision admits, on both sides.
    let rule = Rule::token_bucket(Quota::per_second(1_000_000_000)).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let op = LimitOp::new(&rule, Operation::Consume, 1).unwrap();
    let script = op.script();
    let sha = server
        .cli(&["SCRIPT", "LOAD", script.source()])
        .trim()
        .to_string();
    assert_eq!(sha, script.sha1(), "SCRIPT LOAD hash");
    let args: Vec<String> = op
        .script_args(None)
        .into_iter()
        .map(|a| match a {
            Arg::Int(i) => i.to_string(),
            Arg::Str(s) => s,
            Arg::Bytes(b) => String::from_utf8(b.to_vec()).expect("text arguments"),
        })
        .collect();

    println!("token-bucket consume over Redis ({} s per run, one rampart store = one multiplexed connection)", secs);
    println!(
        "{:>11} | {:>14} | {:>22} | {:>6}",
        "concurrency", "rampart ops/s", "redis-benchmark ops/s", "ratio"
    );
    for concurrency in [1usize, 16, 64] {
        let ours = runtime.block_on(async {
            let limiter = Arc::new(Limiter::new(server.store(), rule.clone()));
            let key = limiter.key("bench").unwrap();
            limiter.consume(&key, 1).await.unwrap(); // connect, load the script
            throughput(concurrency, secs, move || {
                let (limiter, key) = (limiter.clone(), key.clone());
                async move {
                    let d = limiter.consume(&key, 1).await.unwrap();
                    assert!(d.allowed);
                }
            })
            .await
        });
        // redis-benchmark: as many requests as we managed in the same time.
        let n = ((ours * secs as f64) as u64).max(10_000);
        let out = Command::new("redis-benchmark")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &server.port.to_string(),
                "-c",
                &concurrency.to_string(),
            ])
            .args(["-n", &n.to_string(), "-q", "EVALSHA", &sha, "1", "bench"])
            .args(&args)
            .output()
            .expect("redis-benchmark runs (Debian package redis-tools)");
        let text = String::from_utf8_lossy(&out.stdout);
        let theirs: f64 = text
            .split(['\r', '\n'])
            .filter_map(|l| {
                l.split(": ")
                    .nth(1)?
                    .split(" requests per second")
                    .next()?
                    .trim()
                    .parse()
                    .ok()
            })
            .next_back()
            .unwrap_or_else(|| panic!("cannot read redis-benchmark output: {text}"));
        println!(
            "{concurrency:>11} | {ours:>14.0} | {theirs:>22.0} | {:>5.0}%",
            100.0 * ours / theirs
        );
        json_line(
            "redis_consume",
            concurrency,
            ours,
            "redis-benchmark EVALSHA",
            theirs,
        );
    }

    // GET of one 100-byte value: the store against raw redis-rs on one
    // multiplexed connection, alternating so load hits both alike.
    println!("\nGET of a 100-byte value over Redis ({secs} s per run)");
    println!(
        "{:>11} | {:>14} | {:>22} | {:>6}",
        "concurrency", "RedisStore ops/s", "raw redis-rs GET ops/s", "ratio"
    );
    let value = vec![b'x'; 100];
    server.cli(&["SET", "bench:get", std::str::from_utf8(&value).unwrap()]);
    for concurrency in [1usize, 16, 64] {
        let ours = runtime.block_on(async {
            let store = Arc::new(server.store());
            let key = Key::new("bench:get").unwrap();
            assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&value[..]));
            throughput(concurrency, secs, move || {
                let (store, key) = (store.clone(), key.clone());
                async move {
                    let v = store.get(&key).await.unwrap();
                    assert_eq!(v.map(|v| v.len()), Some(100));
                }
            })
            .await
        });
        let theirs = runtime.block_on(async {
            let client = redis::Client::open(server.url()).unwrap();
            let conn = client.get_multiplexed_async_connection().await.unwrap();
            throughput(concurrency, secs, move || {
                let mut conn = conn.clone();
                async move {
                    let v: Option<Vec<u8>> = redis::cmd("GET")
                        .arg("bench:get")
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    assert_eq!(v.map(|v| v.len()), Some(100));
                }
            })
            .await
        });
        println!(
            "{concurrency:>11} | {ours:>14.0} | {theirs:>22.0} | {:>5.0}%",
            100.0 * ours / theirs
        );
        json_line("redis_get", concurrency, ours, "raw redis-rs GET", theirs);
    }
}
