#!/usr/bin/env python3
"""Writes BENCHMARKS.md from one `scripts/bench` run.

Usage: bench-report.py RESULTS_DIR CRITERION_DIR OUTPUT

RESULTS_DIR holds what scripts/bench collected: machine.json (the machine
and the run), and the logs of the Redis and Node benches, whose results are
`BENCH_JSON {...}` lines. CRITERION_DIR is criterion's output
(target/criterion): every `new/benchmark.json` names a benchmark and the
`new/estimates.json` beside it holds its median. A figure that is missing
(a bench that failed or was skipped) is written as "not measured", never
invented.
"""

import json
import os
import sys


def criterion_medians(root):
    """{full_id: median ns} of every benchmark criterion measured."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) != "new" or "benchmark.json" not in files:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            full_id = json.load(f)["full_id"]
        with open(os.path.join(dirpath, "estimates.json")) as f:
            out[full_id] = json.load(f)["median"]["point_estimate"]
    return out


def json_lines(path):
    """Every `BENCH_JSON {...}` object in a log."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path, errors="replace") as f:
        for line in f:
            line = line.strip()
            if line.startswith("BENCH_JSON "):
                out.append(json.loads(line[len("BENCH_JSON "):]))
    return out


def ns(x):
    if x is None:
        return "not measured"
    return f"{x:,.1f} ns" if x < 100 else f"{x:,.0f} ns"


def ops(x):
    return "not measured" if x is None else f"{x:,.0f} ops/s"


def ratio_time(ours, peer):
    """rampart time / peer time (lower is better)."""
    if ours is None or peer is None or peer == 0:
        return None
    return ours / peer


def ratio_rate(ours, peer):
    """rampart rate / peer rate (higher is better)."""
    if ours is None or peer is None or peer == 0:
        return None
    return ours / peer


def verdict(r, target, higher_is_better):
    if r is None or target is None:
        return ""
    ok = r >= target if higher_is_better else r <= target
    return "met" if ok else "**not met**"


def table(rows):
    lines = [
        "| What | rampart | peer (same run) | ratio | target | |",
        "|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else None


def main():
    results, crit_dir, output = sys.argv[1:4]
    with open(os.path.join(results, "machine.json")) as f:
        m = json.load(f)
    crit = criterion_medians(crit_dir)
    redis = json_lines(os.path.join(results, "redis.log"))
    node = json_lines(os.path.join(results, "node.log"))
    cache_il = json_lines(os.path.join(results, "cache.log"))

    def c(full_id):
        return crit.get(full_id)

    def time_row(what, ours_id, peer_id, peer_name, target=None):
        ours, peer = c(ours_id), c(peer_id)
        r = ratio_time(ours, peer)
        return [
            what,
            ns(ours),
            f"{peer_name}: {ns(peer)}",
            "—" if r is None else f"{r:.2f}×",
            "—" if target is None else f"≤ {target}×",
            verdict(r, target, False),
        ]

    out = []
    out.append("# Benchmarks\n")
    out.append(
        "Written by `scripts/bench` in one run: every rampart figure beside its "
        "peer, measured in the same run on the same machine (and, over Redis, "
        "against the same fresh local `redis-server`). The machine is shared, "
        "so absolute figures move from run to run; the ratios are what to "
        "read. Do not edit by hand: rerun `scripts/bench`.\n"
    )
    out.append("## The run\n")
    out.append(f"- Date: {m['date']}")
    out.append(f"- Commit: `{m['commit']}`{' (with uncommitted changes)' if m.get('dirty') else ''}")
    out.append(f"- Command: `{m['command']}`")
    out.append(f"- Measurement time per criterion benchmark: {m['secs']} s (`RAMPART_BENCH_SECS`); "
               f"Redis consume/GET runs: {m['secs']} s each")
    out.append(f"- CPU: {m['cpu']}, {m['cores']} logical cores")
    out.append(f"- RAM: {m['ram']}")
    out.append(f"- OS: {m['os']}")
    out.append(f"- Load average at start: {m['load_start']}; at end: {m.get('load_end', '?')} "
               "(other work on the machine slows both sides alike)")
    out.append(f"- Toolchain: {m['rustc']}; Node {m['node']}; {m['redis']}")
    out.append("")

    # In process: limiter.
    out.append("## Rate limiting in process (`cargo bench --bench limit`)\n")
    out.append("Token-bucket `consume` against governor's keyed limiter (criterion medians). "
               "Target (issue #3): ≤ 1.5× governor.\n")
    rows = []
    for keys, label in [("hot_key", "hot key"), ("10k_keys", "over 10k keys")]:
        peer_id = f"token_bucket_consume/{keys}/governor"
        for store_id in sorted(k for k in crit if k.startswith(f"token_bucket_consume/{keys}/") and not k.endswith("/governor")):
            name = store_id.rsplit("/", 1)[1]
            rows.append(time_row(f"token bucket, {label}, {name}", store_id, peer_id, "governor keyed", 1.5))
    if not rows:
        rows.append(["token bucket", "not measured", "governor keyed: not measured", "—", "≤ 1.5×", ""])
    out.append(table(rows))
    out.append("")
    others = sorted(k for k in crit if k.startswith("consume/"))
    if others:
        out.append("Other rules' `consume` on MemoryStore, hot key: one-tier rules are admitted "
                   "in place like the bucket, through their own engine; two tiers take the "
                   "generic path; `denied` is a bucket over its limit (no block). governor has "
                   "no equivalent; its token bucket is shown for scale.\n")
        label = {"hot_key": "hot key", "denied": "every request denied"}
        rows = [time_row(f"{k.split('/')[2].replace('_', ' ')}, {label.get(k.split('/')[1], k.split('/')[1])}, "
                         f"{k.split('/')[3]}", k,
                         "token_bucket_consume/hot_key/governor", "governor keyed (token bucket)")
                for k in others]
        out.append(table(rows))
        out.append("")

    # In process: stores.
    out.append("## In-process stores (`cargo bench --bench store`)\n")
    out.append("Store operations against raw moka doing the same (criterion medians). "
               "`set`/`update` are compared with a raw moka `insert`.\n")
    rows = []
    for op, peer_name in [("get", "raw_moka"), ("set", "raw_moka_insert"), ("update", "raw_moka_insert")]:
        for keys in ["hot", "10k"]:
            peer_id = f"{'set' if op == 'update' else op}/{peer_name}/{keys}"
            for store in ["moka_store", "memory_store"]:
                ours_id = f"{op}/{store}/{keys}"
                if ours_id in crit:
                    label = "raw moka get" if op == "get" else "raw moka insert"
                    rows.append(time_row(f"{op}, {keys} key{'s' if keys == '10k' else ''}, {store}",
                                         ours_id, peer_id, label))
    if c("overhead/boxed_future") is not None:
        rows.append(["one boxed future (what async-trait adds to each call)", ns(c("overhead/boxed_future")),
                     "—", "—", "—", ""])
    out.append(table(rows) if rows else "Not measured.")
    out.append("")

    # Cache.
    out.append("## Cache hit (`cargo bench --bench cache`)\n")
    out.append("A cache hit (`Cache::get` / `get_or_set`: key, store read, envelope, "
               "freshness, decode) against a raw moka `get` plus a serde_json decode of the "
               "same ~230-byte value. Target (issue #5): ≤ 1.3×. Two measurements: criterion's "
               "medians, and interleaved rounds (all cases alternate, so background load hits "
               "them alike; the more trustworthy on a shared machine).\n")
    rows = []
    peer_id = "cache_hit/raw_moka_get_plus_json_decode"
    for case in sorted(k for k in crit if k.startswith("cache_hit/") and k != peer_id):
        rows.append(time_row(f"{case.split('/', 1)[1]} (criterion)", case, peer_id, "raw moka get + JSON decode", 1.3))
    for x in cache_il:
        r = ratio_time(x["ns"], x["peer_ns"])
        rows.append([f"{x['case']} (interleaved)", ns(x["ns"]), f"raw moka get + JSON decode: {ns(x['peer_ns'])}",
                     f"{r:.2f}×", "≤ 1.3×", verdict(r, 1.3, False)])
    out.append(table(rows) if rows else "Not measured.")
    out.append("")

    # Web layers.
    out.append("## Web layers (`cargo bench --bench web --features axum`)\n")
    out.append("One GET through an axum router in process (no sockets), with rampart's "
               "tower layers on the in-process store, against the same bare router "
               "(criterion medians).\n")
    rows = []
    peer_id = "web/bare axum router (peer)"
    for case in sorted(k for k in crit if k.startswith("web/") and k != peer_id):
        rows.append(time_row(case.split("/", 1)[1], case, peer_id, "bare axum router"))
    out.append(table(rows) if rows else "Not measured.")
    out.append("")

    # Redis.
    out.append("## Over Redis (`cargo bench -p rampart-redis --bench consume`)\n")
    out.append("One fresh `redis-server` on a free loopback port, started by the bench. "
               "Token-bucket `consume` (one `EVALSHA` per decision, one multiplexed "
               "connection) against `redis-benchmark` running the same script with the same "
               "arguments at the same concurrency; `RedisStore::get` against a raw redis-rs "
               "`GET` on one multiplexed connection. Target (issue #4): consume ≥ 90% of "
               "redis-benchmark at concurrency 64.\n")
    rows = []
    for x in redis:
        r = ratio_rate(x["rampart_ops"], x["peer_ops"])
        target = 0.9 if x["bench"] == "redis_consume" and x["concurrency"] == 64 else None
        what = {"redis_consume": "token-bucket consume", "redis_get": "`RedisStore::get`"}.get(x["bench"], x["bench"])
        rows.append([f"{what}, concurrency {x['concurrency']}", ops(x["rampart_ops"]),
                     f"{x['peer']}: {ops(x['peer_ops'])}", "—" if r is None else f"{100 * r:.0f}%",
                     "—" if target is None else "≥ 90%", verdict(r, target, True)])
    out.append(table(rows) if rows else "Not measured (see the log of the run).")
    out.append("")

    # Node.
    out.append("## Node.js (`node bindings/wasm/bench/consume.js`)\n")
    out.append("`RateLimiter.consume` from Node (the wasm package), 64 in flight over 1,000 keys, "
               "against rate-limiter-flexible, rounds alternating between the sides; medians of "
               "the rounds. In process: `MemoryStore` vs `RateLimiterMemory`; over Redis: the "
               "ioredis adapter vs `RateLimiterRedis` on one fresh local redis-server; the adapter "
               "coalesces the commands of one event-loop turn into fewer socket writes (node-redis "
               "does the same by itself; rate-limiter-flexible does not), and the last row turns "
               "that off. Target (issue #8): ahead of rate-limiter-flexible (≥ 1×) in both.\n")
    rows = []
    if node:
        res = node[-1]
        for part, what in [
            ("memory", "consume in process"),
            ("redis", "consume over Redis (ioredis)"),
            ("redisUncoalesced", "consume over Redis, `coalesceWrites: false`"),
        ]:
            if part not in res:
                continue
            ours = median([x["ops"] for x in res[part]["rampart"]])
            peer = median([x["ops"] for x in res[part]["peer"]])
            r = ratio_rate(ours, peer)
            peer_name = "RateLimiterMemory" if part == "memory" else "RateLimiterRedis"
            rows.append([what, ops(ours), f"{peer_name}: {ops(peer)}", f"{r:.2f}×", "≥ 1×", verdict(r, 1.0, True)])
    out.append(table(rows) if rows else "Not measured (see the log of the run).")
    out.append("")

    if "wasm" in m:
        w = m["wasm"]
        out.append("## npm package size (`bindings/wasm/scripts/build`)\n")
        out.append("The WebAssembly module the Node bench ran (every feature), after `wasm-opt -Oz`, "
                   "gzipped at level 9. Target (issue #8): under 150 KB.\n")
        gz_kb = w["gz"] / 1000
        out.append(table([["rampart_wasm_bg.wasm, gzipped", f"{w['gz']:,} bytes ({w['gz'] / 1024:.1f} KiB; "
                           f"{w['raw']:,} bytes raw)", "—", "—", "< 150 KB", verdict(gz_kb, 150, False)]]))
        out.append("")

    missing = m.get("failed", [])
    if missing:
        out.append("## Not measured in this run\n")
        out += [f"- `{x}` failed; see its log" for x in missing]
        out.append("")

    with open(output, "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
