//! Differential test of every rate-limit algorithm: random sequences of
//! (time step, operation, cost), clock steps backwards included, through
//! the pure Rust face (`LimitOp::apply`) and through its Lua twin on a real
//! redis-server. Decisions, stored bytes and TTLs must be identical; corrupt
//! state must be a typed error from both faces and must stay untouched.
//!
//! The sequence is seeded (`RAMPART_DIFF_SEED` picks another seed).

mod common;

use rampart::limit::{Algorithm, LimitOp, Operation, Quota, Rule};
use rampart::{
    run, AtomicOp, Change, Clock, ErrorKind, Key, KeyTtl, ManualClock, ScriptTime, Store, Timestamp,
};
use std::time::Duration;
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn rules() -> Vec<Rule> {
    let mut out = Vec::new();
    for alg in [
        Algorithm::TokenBucket,
        Algorithm::SlidingLog,
        Algorithm::SlidingWindow,
        Algorithm::FixedWindow,
    ] {
        out.push(
            Rule::builder(alg)
                .quota(Quota::per_second(5))
                .build()
                .unwrap(),
        );
        out.push(
            Rule::builder(alg)
                .quota(Quota::new(3, Duration::from_millis(700)))
                .quota(Quota::new(10, Duration::from_secs(7)))
                .block_for(Duration::from_millis(1500))
                .build()
                .unwrap(),
        );
        out.push(
            Rule::builder(alg)
                .quota(Quota::new(7, Duration::from_micros(3_333)))
                .build()
                .unwrap(),
        );
    }
    out.push(Rule::sliding_window(Quota::per_day(1_000_000)).unwrap());
    out.push(
        Rule::builder(Algorithm::SlidingLog)
            .quota(Quota::new(200, Duration::from_secs(10)))
            .quota(Quota::new(50, Duration::from_secs(1)))
            .build()
            .unwrap(),
    );
    out.push(Rule::token_bucket(Quota::per_second(3).with_burst(9)).unwrap());
    out
}

#[tokio::test]
async fn pure_face_and_lua_twin_agree() {
    let server = common::Server::start();
    let redis = server.store();
    let seed = std::env::var("RAMPART_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9E3779B97F4A7C15u64);
    let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
    let mut ttls = 0u64;
    let mut rng = Rng(seed);
    let mut checked = 0u64;
    for (ri, rule) in rules().iter().enumerate() {
        for seq in 0..8 {
            let key = Key::new(format!("lua_check:{ri}:{seq}")).unwrap();
            redis.delete(&key).await.unwrap();
            let mut state: Option<Vec<u8>> = None;
            // When admitted consumes were made, for refunds that name
            // their charge (`LimitOp::undo`).
            let mut charges: Vec<Timestamp> = Vec::new();
            for _ in 0..150 {
                let (op, amount) = match rng.below(10) {
                    0..=5 => (Operation::Consume, 1 + rng.below(rule.capacity())),
                    6 => (Operation::Check, 1 + rng.below(rule.capacity())),
                    7 => (Operation::Refund, 1 + rng.below(4)),
                    8 => (Operation::Penalty, 1 + rng.below(4)),
                    _ => (Operation::Block, 1 + rng.below(2_000_000)),
                };
                let lop = match charges.len() as u64 {
                    len if op == Operation::Refund && len > 0 && rng.below(2) == 0 => {
                        let at = charges[rng.below(len) as usize];
                        LimitOp::undo(rule, amount, at).unwrap()
                    }
                    _ => LimitOp::new(rule, op, amount).unwrap(),
                };
                let (change, pure) = lop.apply(state.as_deref(), clock.now()).unwrap();
                if op == Operation::Consume && pure.allowed {
                    charges.push(clock.now());
                }
                let want_ttl = match &change {
                    Change::Set { value, ttl } => {
                        state = Some(value.to_vec());
                        ttl.map(|t| t.as_micros().div_ceil(1000) as u64)
                    }
                    Change::Remove => {
                        state = None;
                        None
                    }
                    Change::Keep => None,
                    Change::SetKeepTtl(_) => unreachable!(),
                };
                let lua = run(&redis, &key, &lop, &clock, ScriptTime::Caller)
                    .await
                    .unwrap();
                assert_eq!(
                    pure,
                    lua,
                    "rule {ri} {:?} seq {seq} op {op:?} {amount}",
                    rule.algorithm()
                );
                if let Some(ms) = want_ttl {
                    match redis.ttl(&key).await.unwrap() {
                        KeyTtl::Expires(d) => {
                            let got = d.as_millis() as u64;
                            assert!(got <= ms && got + 1000 >= ms, "ttl {got} ms, want {ms} ms: rule {ri} {:?} op {op:?} {amount} state {:?} decision {pure:?}", rule.algorithm(), state.as_ref().map(|s| String::from_utf8_lossy(s).into_owned()));
                        }
                        KeyTtl::Missing if ms <= 1000 => {}
                        other => panic!("ttl {other:?}, want {ms} ms"),
                    }
                    ttls += 1;
                }
                let stored = redis.get(&key).await.unwrap();
                if !(want_ttl.is_some_and(|ms| ms <= 1000) && stored.is_none()) {
                    assert_eq!(
                        stored.as_deref(),
                        state.as_deref(),
                        "stored state differs: rule {ri} seq {seq} op {op:?}"
                    );
                }
                // Expired-equivalent states decide like missing ones, so
                // dropping the TTL keeps real time out of the comparison.
                if let Some(v) = &state {
                    redis.set(&key, v.clone().into(), None).await.unwrap();
                }
                checked += 1;
                let step = match rng.below(4) {
                    0 => 0,
                    1 => rng.below(1_000),
                    2 => rng.below(300_000),
                    _ => rng.below(3_000_000),
                };
                if rng.below(10) == 0 {
                    // A clock step back (another server, a failover).
                    let back = rng.below(2_000_000);
                    clock.set(Timestamp::from_micros(clock.now().as_micros() - back));
                } else {
                    clock.advance(Duration::from_micros(step));
                }
            }
            // Server time: the script reads TIME; just check it answers sanely.
            let lop = LimitOp::new(rule, Operation::Check, 1).unwrap();
            let d = run(&redis, &key, &lop, &clock, ScriptTime::Server)
                .await
                .unwrap();
            assert!(d.at > Timestamp::from_secs(1_600_000_000));
            let _ = lop.script();
        }
    }
    // Corrupt values: a typed error from both faces.
    let key = Key::new("lua_check:corrupt").unwrap();
    for bad in [
        "garbage",
        "tb1:",
        "tb1:1,,2",
        "tb1:-1",
        "tb1:12345678901234567",
        "tb1:9007199254740992",
    ] {
        redis.set(&key, bad.into(), None).await.unwrap();
        let rule = Rule::token_bucket(Quota::per_second(5)).unwrap();
        let lop = LimitOp::new(&rule, Operation::Consume, 1).unwrap();
        let e = run(&redis, &key, &lop, &clock, ScriptTime::Caller)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::CorruptData, "{bad:?}: {e}");
        let pure = lop.apply(Some(bad.as_bytes()), clock.now()).unwrap_err();
        assert_eq!(pure.kind(), ErrorKind::CorruptData, "{bad:?}: {pure}");
        assert_eq!(
            redis.get(&key).await.unwrap().as_deref(),
            Some(bad.as_bytes())
        );
    }
    println!("checked {checked} operations ({ttls} TTLs): pure face == Lua twin (decisions and stored bytes)");
    assert!(checked > 10_000 && ttls > 1_000);
}

/// `begin_consume` + the host's own EVAL + `finish_consume` (how the Node
/// bindings drive a decision) decide exactly as `consume`: every rule,
/// random costs and clock steps (backwards too), blocks included, on two
/// keys of one redis-server.
#[tokio::test]
async fn begin_and_finish_decide_as_consume() {
    use rampart::limit::{Begin, Limiter};
    let server = common::Server::start();
    let store = std::sync::Arc::new(server.store());
    let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
    let mut rng = Rng(0x2545F4914F6CDD1D);
    let mut calls = 0;
    for (ri, rule) in rules().into_iter().enumerate() {
        let build = |side: &str| {
            Limiter::builder(store.clone(), rule.clone())
                .clock(clock.shared())
                .script_time(ScriptTime::Caller)
                .prefix(format!("split{ri}:{side}"))
                .build()
                .unwrap()
        };
        let (whole, split) = (build("whole"), build("split"));
        let (kw, ks) = (whole.key("k").unwrap(), split.key("k").unwrap());
        for _ in 0..120 {
            // TTLs run on real time, the decisions on the manual clock
            // (short windows give millisecond TTLs): both keys start each
            // step from the same state, without a TTL. An expired-
            // equivalent state decides like a missing one, so this changes
            // no decision.
            match store.get(&kw).await.unwrap() {
                Some(v) => {
                    store.set(&kw, v.clone(), None).await.unwrap();
                    store.set(&ks, v, None).await.unwrap();
                }
                None => {
                    store.delete(&ks).await.unwrap();
                }
            }
            let cost = 1 + rng.below(rule.capacity());
            let want = whole.consume(&kw, cost).await.unwrap();
            let got = match split.begin_consume(&ks, cost) {
                Begin::Call(call) => {
                    calls += 1;
                    let reply = store.eval(call.script, &[&ks], &call.args).await;
                    split.finish_consume(&ks, cost, reply).await.unwrap()
                }
                Begin::Decided(d) => d.unwrap(),
            };
            assert_eq!(want, got, "rule {ri} cost {cost}");
            if rng.below(10) == 0 {
                let back = rng.below(2_000_000);
                clock.set(Timestamp::from_micros(clock.now().as_micros() - back));
            } else {
                clock.advance(Duration::from_micros(rng.below(400_000)));
            }
        }
    }
    assert!(calls > 1_000, "{calls} script calls");
}

/// 4 separate clients x 32 tasks on one key, limit 100: exactly 100 admitted,
/// for every algorithm.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_clients_times_32_tasks_admit_exactly_the_limit() {
    use rampart::limit::Limiter;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let server = common::Server::start();
    for (i, alg) in [
        Algorithm::TokenBucket,
        Algorithm::SlidingLog,
        Algorithm::SlidingWindow,
        Algorithm::FixedWindow,
    ]
    .into_iter()
    .enumerate()
    {
        let rule = Rule::builder(alg)
            .quota(Quota::per_hour(100))
            .build()
            .unwrap();
        let admitted = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let limiter = Arc::new(
                Limiter::builder(server.store(), rule.clone())
                    .prefix(format!("rl{i}"))
                    .build()
                    .unwrap(),
            );
            for _ in 0..32 {
                let limiter = limiter.clone();
                let admitted = admitted.clone();
                tasks.push(tokio::spawn(async move {
                    let key = limiter.key("shared").unwrap();
                    for _ in 0..5 {
                        if limiter.consume(&key, 1).await.unwrap().allowed {
                            admitted.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }));
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(admitted.load(Ordering::SeqCst), 100, "{alg:?}");
    }
}

/// Each decision is one EVALSHA: counted by the server (`INFO
/// commandstats`) and by watching what clients send (`MONITOR`).
#[tokio::test]
async fn one_command_per_decision() {
    use rampart::limit::Limiter;
    let server = common::Server::start();
    let cli_calls = |cmd: &str| -> u64 {
        server
            .cli(&["INFO", "commandstats"])
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!("cmdstat_{cmd}:calls="))
                    .map(|r| r.split(',').next().unwrap().parse().unwrap())
            })
            .unwrap_or(0)
    };
    for alg in [
        Algorithm::TokenBucket,
        Algorithm::SlidingLog,
        Algorithm::SlidingWindow,
        Algorithm::FixedWindow,
    ] {
        let rule = Rule::builder(alg)
            .quota(Quota::per_second(1_000))
            .build()
            .unwrap();
        let limiter = Limiter::builder(server.store(), rule)
            .prefix(format!("{alg:?}"))
            .build()
            .unwrap();
        let key = limiter.key("user:1").unwrap();
        limiter.consume(&key, 1).await.unwrap(); // connects and loads the script
        server.cli(&["CONFIG", "RESETSTAT"]);
        for _ in 0..50 {
            limiter.consume(&key, 1).await.unwrap();
        }
        let top_level: u64 = server
            .cli(&["INFO", "commandstats"])
            .lines()
            .filter(|l| l.starts_with("cmdstat_evalsha") || l.starts_with("cmdstat_eval:"))
            .filter_map(|l| {
                l.split("calls=")
                    .nth(1)?
                    .split(',')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum();
        assert_eq!(top_level, 50, "{alg:?}: one script call per decision");
        // Nothing outside the script: every GET/SET seen ran inside it.
        assert_eq!(
            cli_calls("get"),
            50,
            "{alg:?}: one GET per decision, inside the script"
        );
    }
}

/// Stored values the random sequences never produce (the edges of each
/// script's parsing and its one-tier lane): well-formed states with and
/// without a block, states of another number of tiers, fields at the
/// 16-digit and 2^53 limits, and corrupt values. For every rule and
/// operation both faces must agree: the same decision and stored bytes,
/// or the same error with the value untouched.
#[tokio::test]
async fn odd_and_corrupt_values_agree() {
    let server = common::Server::start();
    let redis = server.store();
    let now: u64 = 1_700_000_000_123_456;
    let clock = ManualClock::new(Timestamp::from_micros(now));
    let z = |v: u64| format!("{v:016}");
    let fixed = |tag: &str, per_tier: &[u64]| -> Vec<String> {
        let f = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        let two: Vec<u64> = per_tier.iter().chain(per_tier).copied().collect();
        let mut out = vec![
            format!("{tag}:0,{}", f(per_tier)),
            format!("{tag}:{},{}", now + 500_000, f(per_tier)),
            format!("{tag}:{},{}", now - 5, f(per_tier)),
            format!("{tag}:{}", now + 700_000),
            format!("{tag}:0"),
            format!("{tag}:{},{}", now + 500_000, f(&two)),
            format!("{tag}:0,{}", f(&two)),
            format!("{tag}:0000000000000000,{}", f(per_tier)),
            format!("{tag}:9007199254740991,{}", f(per_tier)),
        ];
        for bad in [
            format!("{tag}:"),
            format!("{tag}:0,{},", f(per_tier)),
            format!("{tag}:0,,{}", f(per_tier)),
            format!("{tag}:-1,{}", f(per_tier)),
            format!("{tag}:+1,{}", f(per_tier)),
            format!("{tag}: 1,{}", f(per_tier)),
            format!("{tag}:1e3,{}", f(per_tier)),
            format!("{tag}:0x10,{}", f(per_tier)),
            format!("{tag}:00000000000000000,{}", f(per_tier)),
            format!("{tag}:9007199254740992,{}", f(per_tier)),
            format!("{tag}:0,{}x", f(per_tier)),
            format!("{tag}:0,{} ", f(per_tier)),
            format!("{tag}0,{}", f(per_tier)),
            format!("{}:0,{}", tag.to_uppercase(), f(per_tier)),
            format!("x{tag}:0,{}", f(per_tier)),
        ] {
            out.push(bad);
        }
        out
    };
    let aligned = now - now % 1_000_000;
    let mut values: Vec<String> = Vec::new();
    values.extend(fixed("tb1", &[now + 300_000]));
    values.extend(fixed("tb1", &[now - 300_000]));
    values.extend(fixed("fw1", &[aligned, 3]));
    values.extend(fixed("fw1", &[aligned + 1_000_000, 9]));
    values.extend(fixed("fw1", &[aligned - 1_000_000, 2]));
    values.extend(fixed("sc1", &[aligned, 4, 2]));
    values.extend(fixed("sc1", &[aligned - 1_000_000, 40, 30]));
    values.extend(fixed("sc1", &[aligned - 7_000_000, 1, 1]));
    let log = |blocked: u64, base: u64, recs: &[(u64, u64)]| {
        let mut v = format!("sl1:{}{}", z(blocked), z(base));
        for &(ts, cum) in recs {
            v += &(z(ts) + &z(cum));
        }
        v
    };
    let recs = [
        (now - 2_000_000, 1),
        (now - 300_000, 3),
        (now - 1_000, 4),
        (now, 6),
    ];
    for r in 0..=recs.len() {
        values.push(log(0, 0, &recs[..r]));
        values.push(log(now + 400_000, 0, &recs[..r]));
        values.push(log(now - 1, 0, &recs[..r]));
    }
    values.push(log(0, 0, &[(now + 900_000, 2)]));
    let rebase = 1u64 << 50;
    values.push(log(
        0,
        rebase - 1,
        &[(now - 2_000_000, rebase), (now - 10, rebase + 2)],
    ));
    values.push(log(0, rebase + 5, &[(now - 10, rebase + 7)]));
    values.push(log(0, 0, &[(now - 10, 4_503_599_627_370_495)]));
    let one = log(0, 0, &recs[2..3]);
    for bad in [
        "sl1:".to_owned(),
        format!("sl1:{}", z(0)),
        format!("{one}0"),
        one[..one.len() - 1].to_owned(),
        one.replace("sl1:", "sl2:"),
        format!("sl1:{}{}", "000000000000000x", &one[20..]),
        format!("sl1:{}{}", z(0), &one[20..]).replacen("0000000000000000", "9007199254740992", 1),
        format!("sl1:{}{}", " 000000000000000", &one[20..]),
        format!("{}x", &one[..one.len() - 1]),
        format!("{}x{}", &one[..36], &one[37..]),
        format!("{}-{}", &one[..52], &one[53..]),
    ] {
        values.push(bad);
    }
    let key = Key::new("lua_check:odd").unwrap();
    let mut compared = 0u64;
    for rule in rules() {
        let ops = [
            (Operation::Consume, 1),
            (Operation::Consume, rule.capacity()),
            (Operation::Check, 1),
            (Operation::Refund, 1),
            (Operation::Penalty, 2),
            (Operation::Block, 1_000),
        ];
        for v in &values {
            for &(op, amount) in &ops {
                let lop = LimitOp::new(&rule, op, amount).unwrap();
                redis.set(&key, v.clone().into(), None).await.unwrap();
                let pure = lop.apply(Some(v.as_bytes()), clock.now());
                let lua = run(&redis, &key, &lop, &clock, ScriptTime::Caller).await;
                let stored = redis.get(&key).await.unwrap().map(|b| b.to_vec());
                let what = format!("{:?} {op:?} {amount} on {v:?}", rule.algorithm());
                match (pure, lua) {
                    (Ok((change, d1)), Ok(d2)) => {
                        assert_eq!(d1, d2, "{what}");
                        // A state written with a TTL of a second or less
                        // (a 1 ms block) may be gone by the time it is read
                        // back on a loaded machine: Redis expires it on
                        // real time, while this test's clock stands still.
                        let (want, short) = match change {
                            Change::Set { value, ttl } => (
                                Some(value.to_vec()),
                                ttl.is_some_and(|t| t <= Duration::from_secs(1)),
                            ),
                            Change::Remove => (None, false),
                            Change::Keep => (Some(v.as_bytes().to_vec()), false),
                            Change::SetKeepTtl(_) => unreachable!(),
                        };
                        if !(short && stored.is_none()) {
                            assert_eq!(
                                stored.as_deref().map(String::from_utf8_lossy),
                                want.as_deref().map(String::from_utf8_lossy),
                                "{what}"
                            );
                        }
                    }
                    (Err(e1), Err(e2)) => {
                        assert_eq!(e1.kind(), e2.kind(), "{what}: {e1} / {e2}");
                        assert_eq!(stored.as_deref(), Some(v.as_bytes()), "{what}: written");
                    }
                    (p, l) => panic!("{what}: pure {p:?}, lua {l:?}"),
                }
                compared += 1;
            }
        }
    }
    println!("compared {compared} odd or corrupt values");
}
