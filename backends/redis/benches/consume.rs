//! Token-bucket decisions per second over Redis at concurrency 1, 16 and 64,
//! beside `redis-benchmark` running the same script (`EVALSHA`, same key,
//! same arguments) at the same concurrency against the same fresh server.
//!
//! Run: `cargo bench -p rampart-redis --bench consume` (or `scripts/bench`).
//! Set `RAMPART_BENCH_SECS` to change the time per measurement (default 3).

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart::limit::{LimitOp, Limiter, Operation, Quota, Rule};
use rampart::{Arg, AtomicOp};

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
            let done = Arc::new(AtomicU64::new(0));
            let until = Instant::now() + Duration::from_secs(secs);
            let start = Instant::now();
            let tasks: Vec<_> = (0..concurrency)
                .map(|_| {
                    let (limiter, key, done) = (limiter.clone(), key.clone(), done.clone());
                    tokio::spawn(async move {
                        while Instant::now() < until {
                            let d = limiter.consume(&key, 1).await.unwrap();
                            assert!(d.allowed);
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
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
    }
}
