//! Soak test under faults: mixed cache / rate-limit / session / lock load
//! on a real local redis-server that is SIGKILLed and restarted every few
//! seconds (every third outage is a `CLIENT PAUSE` instead: a hung server,
//! where calls run into the command timeout). Opt-in and bounded in time: `scripts/soak [minutes]` runs it
//! (release mode); `cargo test` only compiles it.
//!
//! ```text
//! cargo run --release -p rampart-redis --example soak -- --secs 300 --kill-every 5 --down 1
//! ```
//!
//! The server runs with `appendonly yes` + `appendfsync always` in a
//! temporary directory: Redis replies to a write only after it is on disk,
//! so every acknowledged write must survive a SIGKILL. That is what makes
//! "no lost sessions" and "never more than the limit" meaningful across
//! restarts (without persistence a restart empties Redis, and every session
//! and counter is lost by design).
//!
//! Checks (any failure is a violation; the exit code is 1 if there is one):
//!
//! * **no panic** in any task;
//! * **bounded latency**: every call returns within (its round trips ×
//!   command timeout) + 1 s of slack, outage or not;
//! * **only temporary errors** (`Unavailable`, `Timeout`), and **none while
//!   Redis is up**: an operation that starts `--margin` seconds after the
//!   server is ready and ends before the next kill must succeed;
//! * **exact limits**: each round takes a fresh key (token bucket, and fixed
//!   window, both `LIMIT` per day, so nothing refills during a round) and
//!   keeps `ROUND_WORKERS` tasks firing at it until `ATTEMPTS` requests were
//!   answered (a failed request is retried, so a round hit by a kill spans
//!   the restart). In a round entirely outside an outage exactly `LIMIT`
//!   are admitted and the rest denied; in a round hit by a kill, never more
//!   than `LIMIT` are admitted (a request whose reply was lost may have
//!   counted: fewer is allowed, more is not);
//! * **no lost sessions**: every acknowledged, not destroyed session is
//!   readable with its data whenever a read succeeds, and all of them are
//!   read back once more at the end;
//! * **no double lock holders**: a holder holds for a few ms (far below the
//!   TTL) and gives the lock up before releasing it; an acquisition while a
//!   previous holder is still inside its TTL is a violation, and fencing
//!   tokens must strictly increase per resource (across restarts too). An
//!   acquisition after a holder's TTL ran out (the documented semantics: a
//!   lock expires even while its holder is stuck) is counted, not flagged;
//! * **recovery**: after every restart (or pause) some operation succeeds
//!   within `--recover` seconds of the server answering `PING`.
//!
//! `--no-aof` is the negative control: the same run without persistence,
//! where every restart empties Redis, must report lost sessions and
//! over-admitted limit rounds (and exit 1), showing the checks can fail.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rampart::cache::Cache;
use rampart::limit::{Limiter, Quota, Rule};
use rampart::lock::{Locks, Release};
use rampart::session::{SessionConfig, SessionId, SessionMeta, Sessions};
use rampart::Error;
use rampart_redis::{RedisConfig, RedisStore};

/// Requests admitted per fresh key in a limit round.
const LIMIT: u64 = 20;
/// Requests fired at a fresh key in a limit round.
const ATTEMPTS: u64 = 50;
/// Concurrent workers per limit round.
const ROUND_WORKERS: usize = 8;
/// Lock hold time (TTL) and resources.
const LOCK_TTL: Duration = Duration::from_secs(2);
const RESOURCES: usize = 3;
/// Session users: few enough to share indexes, many enough that no user's
/// index reaches its capacity (which would end the oldest sessions).
const USERS: u64 = 5_000;
/// Slack on top of the per-call bound: catches hangs, not slowness.
const SLACK: Duration = Duration::from_secs(1);

type Store = Arc<RedisStore>;

// ------------------------------------------------------------------ options

struct Opts {
    secs: u64,
    kill_every: f64,
    down: f64,
    margin: f64,
    recover: f64,
    timeout: Duration,
    /// Every Nth outage is a `CLIENT PAUSE` instead of a kill (0: never).
    pause_every: u64,
    /// Negative control: no persistence, so the checks must fire.
    no_aof: bool,
}

fn opts() -> Opts {
    let mut o = Opts {
        secs: 120,
        kill_every: 5.0,
        down: 1.0,
        margin: 2.0,
        recover: 5.0,
        timeout: Duration::from_millis(500),
        pause_every: 3,
        no_aof: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).map(String::as_str).unwrap_or("");
        let num = || -> f64 {
            value
                .parse()
                .unwrap_or_else(|_| usage(&format!("{} needs a number", args[i])))
        };
        if args[i] == "--no-aof" {
            o.no_aof = true;
            i += 1;
            continue;
        }
        match args[i].as_str() {
            "--secs" => o.secs = num() as u64,
            "--kill-every" => o.kill_every = num(),
            "--down" => o.down = num(),
            "--margin" => o.margin = num(),
            "--recover" => o.recover = num(),
            "--timeout-ms" => o.timeout = Duration::from_millis(num() as u64),
            "--pause-every" => o.pause_every = num() as u64,
            other => usage(&format!("unknown argument {other}")),
        }
        i += 2;
    }
    if o.margin >= o.kill_every {
        usage("--margin must be below --kill-every (else nothing is ever checked as clean)");
    }
    o
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "soak: {msg}\nusage: soak [--secs N] [--kill-every S] [--down S] [--margin S] [--recover S] [--timeout-ms MS] [--pause-every N] [--no-aof]"
    );
    std::process::exit(2)
}

// ------------------------------------------------------------------ phases

/// What the killer is doing, shared with every worker.
struct Phase {
    t0: Instant,
    /// Outages so far (the epoch); bumped just before each SIGKILL or
    /// pause.
    kills: AtomicU64,
    /// How many of them were `CLIENT PAUSE` rather than SIGKILL.
    pauses: AtomicU64,
    /// Whether the server is up (false from just before a kill until the
    /// restarted server answers PING).
    up: AtomicBool,
    /// When the server last became ready, in µs since `t0`.
    ready_us: AtomicU64,
    /// The last epoch whose recovery was measured.
    recovered: AtomicU64,
    recoveries: Mutex<Vec<Duration>>,
    margin: Duration,
    /// The longest a recovery may take.
    recover: Duration,
    violations: Mutex<Vec<String>>,
}

/// The phase seen when an operation started.
#[derive(Clone, Copy)]
struct Snap {
    kills: u64,
    up: bool,
    /// Up for at least the margin.
    settled: bool,
}

impl Phase {
    fn now_us(&self) -> u64 {
        self.t0.elapsed().as_micros() as u64
    }

    fn snap(&self) -> Snap {
        let up = self.up.load(Ordering::SeqCst);
        let kills = self.kills.load(Ordering::SeqCst);
        let since = self
            .now_us()
            .saturating_sub(self.ready_us.load(Ordering::SeqCst));
        Snap {
            kills,
            up,
            settled: up && since >= self.margin.as_micros() as u64,
        }
    }

    /// The operation that started at `s` ran entirely while Redis was up
    /// and settled: it must succeed, exactly.
    fn clean(&self, s: Snap) -> bool {
        s.settled && self.kills.load(Ordering::SeqCst) == s.kills && self.up.load(Ordering::SeqCst)
    }

    /// A success of an operation started at `s`: the first one after a
    /// restart measures that restart's recovery.
    fn success(&self, s: Snap) {
        if !s.up || s.kills == 0 {
            return;
        }
        let seen = self.recovered.load(Ordering::SeqCst);
        if seen < s.kills
            && self.kills.load(Ordering::SeqCst) == s.kills
            && self
                .recovered
                .compare_exchange(seen, s.kills, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            let took = Duration::from_micros(
                self.now_us()
                    .saturating_sub(self.ready_us.load(Ordering::SeqCst)),
            );
            if took > self.recover {
                self.violation(format!(
                    "outage {}: first success {took:?} after the server was ready",
                    s.kills
                ));
            }
            self.recoveries.lock().unwrap().push(took);
        }
    }

    fn violation(&self, msg: String) {
        let mut v = self.violations.lock().unwrap();
        if v.len() < 50 {
            eprintln!(
                "VIOLATION at {:.1}s: {msg}",
                self.t0.elapsed().as_secs_f64()
            );
        }
        v.push(msg);
    }
}

// ------------------------------------------------------------------ stats

#[derive(Default)]
struct KindStats {
    ok: u64,
    /// Error code → count, for errors during an outage.
    outage_errors: BTreeMap<&'static str, u64>,
    /// Errors while Redis was up and settled (each is also a violation).
    up_errors: u64,
    latencies_us: Vec<u32>,
}

#[derive(Default)]
struct Stats {
    kinds: BTreeMap<&'static str, KindStats>,
    counters: BTreeMap<&'static str, u64>,
}

impl Stats {
    fn add(&mut self, name: &'static str, n: u64) {
        *self.counters.entry(name).or_default() += n;
    }

    fn merge(&mut self, other: Stats) {
        for (k, v) in other.kinds {
            let mine = self.kinds.entry(k).or_default();
            mine.ok += v.ok;
            mine.up_errors += v.up_errors;
            for (code, n) in v.outage_errors {
                *mine.outage_errors.entry(code).or_default() += n;
            }
            mine.latencies_us.extend(v.latencies_us);
        }
        for (k, n) in other.counters {
            self.add(k, n);
        }
    }
}

/// Times one call of `kind` (at most `round_trips` store round trips) and
/// applies the checks every call shares: latency bound, error kinds, no
/// error while Redis is up. Returns the result and whether the call ran
/// entirely outside an outage.
async fn call<T>(
    phase: &Phase,
    stats: &mut Stats,
    timeout: Duration,
    kind: &'static str,
    round_trips: u32,
    fut: impl std::future::Future<Output = rampart::Result<T>>,
) -> (rampart::Result<T>, bool) {
    let snap = phase.snap();
    let start = Instant::now();
    let result = fut.await;
    let took = start.elapsed();
    let clean = phase.clean(snap);
    let k = stats.kinds.entry(kind).or_default();
    k.latencies_us
        .push(took.as_micros().min(u32::MAX as u128) as u32);
    let bound = timeout * round_trips + SLACK;
    if took > bound {
        phase.violation(format!("{kind} took {took:?} (bound {bound:?})"));
    }
    match &result {
        Ok(_) => {
            k.ok += 1;
            phase.success(snap);
        }
        Err(e) => {
            if !e.is_temporary()
                || !matches!(
                    e.kind(),
                    rampart::ErrorKind::Unavailable | rampart::ErrorKind::Timeout
                )
            {
                phase.violation(format!("{kind}: unexpected error {e}"));
            }
            if clean {
                k.up_errors += 1;
                phase.violation(format!("{kind} failed while Redis was up: {e}"));
            } else {
                *k.outage_errors.entry(e.code()).or_default() += 1;
            }
        }
    }
    (result, clean)
}

/// xorshift64*: enough randomness for a load mix, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn utc_day() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        / 86_400
}

struct Ctx {
    phase: Arc<Phase>,
    deadline: Instant,
    timeout: Duration,
}

// ------------------------------------------------------------------ workloads

/// Rounds of `ATTEMPTS` answered concurrent requests at a fresh key.
async fn limit_rounds(ctx: Arc<Ctx>, name: &'static str, limiter: Arc<Limiter<Store>>) -> Stats {
    let mut stats = Stats::default();
    let mut round = 0u64;
    while Instant::now() < ctx.deadline {
        round += 1;
        let key = limiter
            .key(&format!("{}:{round}", ctx.phase.t0.elapsed().as_nanos()))
            .expect("valid key");
        let fired = Arc::new(AtomicU64::new(0));
        let snap = ctx.phase.snap();
        let day = utc_day();
        let workers: Vec<_> = (0..ROUND_WORKERS)
            .map(|_| {
                let (ctx, limiter, key, fired) =
                    (ctx.clone(), limiter.clone(), key.clone(), fired.clone());
                tokio::spawn(async move {
                    let mut stats = Stats::default();
                    let (mut allowed, mut denied, mut failed) = (0u64, 0u64, 0u64);
                    // A failed request gives its slot back, so a round hit
                    // by a kill waits out the outage and ends after the
                    // restart: without persistence it would over-admit.
                    while fired.fetch_add(1, Ordering::SeqCst) < ATTEMPTS {
                        let (r, _) = call(
                            &ctx.phase,
                            &mut stats,
                            ctx.timeout,
                            name,
                            1,
                            limiter.consume(&key, 1),
                        )
                        .await;
                        // Paced a little, so kills land inside rounds.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        match r {
                            Ok(d) if d.allowed => allowed += 1,
                            Ok(_) => denied += 1,
                            Err(_) => {
                                failed += 1;
                                fired.fetch_sub(1, Ordering::SeqCst);
                                if Instant::now() > ctx.deadline + Duration::from_secs(30) {
                                    break;
                                }
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                    (stats, allowed, denied, failed)
                })
            })
            .collect();
        let (mut allowed, mut denied, mut failed) = (0, 0, 0);
        for w in workers {
            match w.await {
                Ok((s, a, d, f)) => {
                    stats.merge(s);
                    allowed += a;
                    denied += d;
                    failed += f;
                }
                Err(e) => ctx.phase.violation(format!("{name} worker panicked: {e}")),
            }
        }
        if allowed > LIMIT {
            ctx.phase.violation(format!(
                "{name}: round {round} admitted {allowed} > limit {LIMIT}"
            ));
        }
        if ctx.phase.clean(snap) && day == utc_day() {
            stats.add("rounds clean (exactly LIMIT admitted)", 1);
            if failed == 0 && (allowed, denied) != (LIMIT, ATTEMPTS - LIMIT) {
                ctx.phase.violation(format!(
                    "{name}: clean round {round} admitted {allowed} / denied {denied}, want exactly {LIMIT} / {}",
                    ATTEMPTS - LIMIT
                ));
            }
        } else if ctx.phase.kills.load(Ordering::SeqCst) != snap.kills {
            stats.add("rounds spanning an outage", 1);
            stats.add(
                "rounds spanning an outage: admitted (<= LIMIT each)",
                allowed,
            );
        } else {
            stats.add("rounds near an outage (not checked exactly)", 1);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stats
}

async fn cache_load(ctx: Arc<Ctx>, cache: Cache<Store>, seed: u64) -> Stats {
    let mut stats = Stats::default();
    let mut rng = Rng(seed);
    while Instant::now() < ctx.deadline {
        let key = format!("item:{}", rng.below(500));
        let expected = format!("value of {key}");
        let loaded = expected.clone();
        let (r, _) = call(
            &ctx.phase,
            &mut stats,
            ctx.timeout,
            "cache.get_or_set",
            2,
            cache.get_or_set(&key, Duration::from_secs(20), move || async move {
                Ok::<_, Error>(loaded)
            }),
        )
        .await;
        if let Ok(v) = r {
            if v != expected {
                ctx.phase
                    .violation(format!("cache {key}: got {v:?}, want {expected:?}"));
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    stats
}

/// Each task owns its sessions, so a read never races a destroy.
async fn session_load(
    ctx: Arc<Ctx>,
    sessions: Arc<Sessions<Store>>,
    seed: u64,
) -> (Stats, Vec<(SessionId, String)>) {
    let mut stats = Stats::default();
    let mut rng = Rng(seed);
    let mut live: Vec<(SessionId, String)> = Vec::new();
    let mut n = 0u64;
    while Instant::now() < ctx.deadline {
        let r = rng.below(100);
        if live.is_empty() || r < 35 {
            n += 1;
            let user = format!("user{}", rng.below(USERS));
            let data = format!("{seed}-{n}");
            let (res, _) = call(
                &ctx.phase,
                &mut stats,
                ctx.timeout,
                "session.create",
                3,
                sessions.create(&user, &data, SessionMeta::new()),
            )
            .await;
            if let Ok(s) = res {
                live.push((s.id, data));
            }
        } else if r < 92 {
            let i = rng.below(live.len() as u64) as usize;
            let (id, data) = &live[i];
            let (res, _) = call(
                &ctx.phase,
                &mut stats,
                ctx.timeout,
                "session.get",
                3,
                sessions.get::<String>(id),
            )
            .await;
            match res {
                Ok(Some(s)) if &s.data == data => {}
                Ok(Some(s)) => ctx.phase.violation(format!(
                    "session {} holds {:?}, want {data:?}",
                    s.handle, s.data
                )),
                Ok(None) => {
                    ctx.phase
                        .violation(format!("acknowledged session {} was lost", id.handle()));
                    live.swap_remove(i);
                }
                Err(_) => {}
            }
        } else {
            let i = rng.below(live.len() as u64) as usize;
            let (id, _) = live.swap_remove(i);
            let (res, _) = call(
                &ctx.phase,
                &mut stats,
                ctx.timeout,
                "session.destroy",
                2,
                sessions.destroy(&id),
            )
            .await;
            match res {
                Ok(true) => stats.add("sessions destroyed", 1),
                Ok(false) => ctx.phase.violation(format!(
                    "acknowledged session {} was gone before its destroy",
                    id.handle()
                )),
                // Unknown: maybe destroyed, maybe not. No longer checked.
                Err(_) => stats.add("sessions in doubt after a failed destroy", 1),
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    (stats, live)
}

/// Who believes they hold each resource, and the highest fence seen.
#[derive(Default)]
struct Holder {
    current: Option<(u64, Instant)>,
    max_fence: u64,
}

async fn lock_load(
    ctx: Arc<Ctx>,
    locks: Arc<Locks<Store>>,
    holders: Arc<Vec<Mutex<Holder>>>,
    seed: u64,
) -> Stats {
    let mut stats = Stats::default();
    // Shown even when zero.
    stats.add("locks taken over after a TTL ran out", 0);
    stats.add("releases finding the lock expired", 0);
    let mut rng = Rng(seed);
    while Instant::now() < ctx.deadline {
        let r = rng.below(RESOURCES as u64) as usize;
        let resource = format!("res{r}");
        let started = Instant::now();
        let (res, _) = call(
            &ctx.phase,
            &mut stats,
            ctx.timeout,
            "lock.try_acquire",
            1,
            locks.try_acquire(&resource, LOCK_TTL),
        )
        .await;
        match res {
            Ok(Some(guard)) => {
                let fence = guard.fence();
                {
                    let mut h = holders[r].lock().unwrap();
                    if fence <= h.max_fence {
                        ctx.phase.violation(format!(
                            "{resource}: fence {fence} not above {}",
                            h.max_fence
                        ));
                    }
                    h.max_fence = h.max_fence.max(fence);
                    if let Some((other, since)) = h.current {
                        if since.elapsed() < LOCK_TTL {
                            ctx.phase.violation(format!(
                                "{resource}: double holders, fences {other} and {fence}"
                            ));
                        } else {
                            stats.add("locks taken over after a TTL ran out", 1);
                        }
                    }
                    h.current = Some((fence, started));
                }
                stats.add("locks acquired", 1);
                tokio::time::sleep(Duration::from_millis(1 + rng.below(4))).await;
                {
                    // Stop using the resource before releasing it.
                    let mut h = holders[r].lock().unwrap();
                    if h.current.is_some_and(|(f, _)| f == fence) {
                        h.current = None;
                    }
                }
                let (rel, _) = call(
                    &ctx.phase,
                    &mut stats,
                    ctx.timeout,
                    "lock.release",
                    1,
                    guard.release(),
                )
                .await;
                match rel {
                    Ok(Release::Released) => {}
                    Ok(Release::NotHeld) => stats.add("releases finding the lock expired", 1),
                    Err(_) => {}
                }
            }
            Ok(None) => stats.add("lock attempts finding it held", 1),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stats
}

// ------------------------------------------------------------------ killer

/// Kills the server every `kill_every` seconds, keeps it down for `down`,
/// restarts it on the same port (same data directory: the AOF is replayed).
fn killer(
    mut server: common::Server,
    phase: Arc<Phase>,
    deadline: Instant,
    o: &Opts,
) -> common::Server {
    let recover = Duration::from_secs_f64(o.recover);
    loop {
        let next = Instant::now() + Duration::from_secs_f64(o.kill_every);
        if next + Duration::from_secs_f64(o.down) + recover >= deadline {
            return server;
        }
        std::thread::sleep(next - Instant::now());
        let epoch = phase.kills.load(Ordering::SeqCst);
        if epoch > 0 && phase.recovered.load(Ordering::SeqCst) < epoch {
            phase.violation(format!(
                "no operation succeeded in the {}s after outage {epoch}",
                o.kill_every
            ));
        }
        phase.up.store(false, Ordering::SeqCst);
        let n = phase.kills.fetch_add(1, Ordering::SeqCst) + 1;
        if o.pause_every > 0 && n.is_multiple_of(o.pause_every) {
            // A hung server instead of a dead one: every call runs into the
            // command timeout, which is what the latency bound is about.
            phase.pauses.fetch_add(1, Ordering::SeqCst);
            let ms = (o.down * 1000.0) as u64;
            let reply = server.cli(&["CLIENT", "PAUSE", &ms.to_string(), "ALL"]);
            if reply.trim() != "OK" {
                phase.violation(format!("CLIENT PAUSE answered {reply:?}"));
            }
            std::thread::sleep(Duration::from_secs_f64(o.down));
            // Answered once the pause is over.
            server.cli(&["PING"]);
        } else {
            server.kill();
            std::thread::sleep(Duration::from_secs_f64(o.down));
            server.restart();
        }
        phase.ready_us.store(phase.now_us(), Ordering::SeqCst);
        phase.up.store(true, Ordering::SeqCst);
    }
}

// ------------------------------------------------------------------ report

fn pct(sorted: &[u32], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    Duration::from_micros(sorted[i] as u64)
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let o = opts();
    // Persistence on: an acknowledged write is on disk before the reply.
    let server = if o.no_aof {
        common::Server::start()
    } else {
        common::Server::start_with(&["--appendonly", "yes", "--appendfsync", "always"])
    };
    let port = server.port;
    let mut config = RedisConfig::from_url(&server.url()).expect("url");
    config.command_timeout = o.timeout;
    config.connect_timeout = o.timeout;
    let store: Store = Arc::new(RedisStore::new(config).expect("store"));

    let phase = Arc::new(Phase {
        t0: Instant::now(),
        kills: AtomicU64::new(0),
        pauses: AtomicU64::new(0),
        up: AtomicBool::new(true),
        ready_us: AtomicU64::new(0),
        recovered: AtomicU64::new(0),
        recoveries: Mutex::new(Vec::new()),
        margin: Duration::from_secs_f64(o.margin),
        recover: Duration::from_secs_f64(o.recover),
        violations: Mutex::new(Vec::new()),
    });
    let deadline = Instant::now() + Duration::from_secs(o.secs);
    let ctx = Arc::new(Ctx {
        phase: phase.clone(),
        deadline,
        timeout: o.timeout,
    });
    println!(
        "soak: redis-server on 127.0.0.1:{port} ({}), {}s, an outage every {}s (1 in {} a CLIENT PAUSE, the rest SIGKILL), down {}s, command timeout {:?}, clean after {}s up",
        if o.no_aof {
            "NO persistence: a negative control, violations expected"
        } else {
            "appendonly yes, appendfsync always"
        },
        o.secs,
        o.kill_every,
        o.pause_every,
        o.down,
        o.timeout,
        o.margin
    );

    let day = Quota::per_day(LIMIT);
    let bucket = Arc::new(
        Limiter::builder(store.clone(), Rule::token_bucket(day).expect("rule"))
            .prefix("soak:tb")
            .build()
            .expect("limiter"),
    );
    let window = Arc::new(
        Limiter::builder(store.clone(), Rule::fixed_window(day).expect("rule"))
            .prefix("soak:fw")
            .build()
            .expect("limiter"),
    );
    let cache = Cache::builder(store.clone())
        .namespace("soak:cache")
        .build()
        .expect("cache");
    let sessions = Arc::new(
        Sessions::new(
            store.clone(),
            SessionConfig::default().with_namespace("soak:session"),
        )
        .expect("sessions"),
    );
    let locks = Arc::new(Locks::new(store.clone()));
    let holders: Arc<Vec<Mutex<Holder>>> =
        Arc::new((0..RESOURCES).map(|_| Mutex::default()).collect());

    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(limit_rounds(
        ctx.clone(),
        "limit.token_bucket",
        bucket,
    )));
    tasks.push(tokio::spawn(limit_rounds(
        ctx.clone(),
        "limit.fixed_window",
        window,
    )));
    for i in 0..6 {
        tasks.push(tokio::spawn(cache_load(
            ctx.clone(),
            cache.clone(),
            0x9E37 + i,
        )));
    }
    for i in 0..6 {
        tasks.push(tokio::spawn(lock_load(
            ctx.clone(),
            locks.clone(),
            holders.clone(),
            0x51_7CC1 + i,
        )));
    }
    let session_tasks: Vec<_> = (0..8)
        .map(|i| tokio::spawn(session_load(ctx.clone(), sessions.clone(), 0xA5A5 + i)))
        .collect();

    let killer_phase = phase.clone();
    let killer = std::thread::spawn(move || killer(server, killer_phase, deadline, &o));

    let mut stats = Stats::default();
    for t in tasks {
        match t.await {
            Ok(s) => stats.merge(s),
            Err(e) => phase.violation(format!("a task panicked: {e}")),
        }
    }
    let mut live = Vec::new();
    for t in session_tasks {
        match t.await {
            Ok((s, l)) => {
                stats.merge(s);
                live.extend(l);
            }
            Err(e) => phase.violation(format!("a session task panicked: {e}")),
        }
    }
    let server = match killer.join() {
        Ok(s) => s,
        Err(_) => {
            eprintln!("soak: the killer thread panicked");
            std::process::exit(1);
        }
    };

    let kills = phase.kills.load(Ordering::SeqCst);
    if kills > 0 && phase.recovered.load(Ordering::SeqCst) < kills {
        phase.violation(format!(
            "no operation succeeded after the last restart ({kills})"
        ));
    }

    let load_secs = phase.t0.elapsed().as_secs_f64();

    // The end: every acknowledged, not destroyed session reads back.
    let checks: Vec<_> =
        live.chunks(live.len().div_ceil(16).max(1))
            .map(|chunk| {
                let (chunk, sessions, phase) = (chunk.to_vec(), sessions.clone(), phase.clone());
                tokio::spawn(async move {
                    let mut verified = 0u64;
                    for (id, data) in &chunk {
                        let mut tries = 0;
                        loop {
                            match sessions.get::<String>(id).await {
                                Ok(Some(s)) if &s.data == data => verified += 1,
                                Ok(_) => phase
                                    .violation(format!("session {} lost by the end", id.handle())),
                                Err(_) if tries < 50 => {
                                    tries += 1;
                                    tokio::time::sleep(Duration::from_millis(100)).await;
                                    continue;
                                }
                                Err(e) => phase
                                    .violation(format!("final session read keeps failing: {e}")),
                            }
                            break;
                        }
                    }
                    verified
                })
            })
            .collect();
    let mut verified = 0;
    for c in checks {
        match c.await {
            Ok(n) => verified += n,
            Err(e) => phase.violation(format!("a final check panicked: {e}")),
        }
    }
    stats.add("sessions verified at the end", verified);

    let c = cache.counters();
    if c.corrupt > 0 {
        phase.violation(format!("the cache read {} corrupt entries", c.corrupt));
    }
    stats.add("cache hits", c.hits);
    stats.add("cache loader calls", c.loader_calls);
    stats.add("cache store errors absorbed (value still served)", c.errors);

    report(
        &phase,
        &stats,
        load_secs,
        &o_summary(port, load_secs, &phase),
    );
    let violations = phase.violations.lock().unwrap().len();
    drop(server);
    if violations > 0 {
        std::process::exit(1);
    }
}

fn o_summary(port: u16, load_secs: f64, phase: &Phase) -> String {
    format!(
        "port {port}, load ran {load_secs:.0}s, {} outages: {} SIGKILL + restart, {} CLIENT PAUSE",
        phase.kills.load(Ordering::SeqCst),
        phase.kills.load(Ordering::SeqCst) - phase.pauses.load(Ordering::SeqCst),
        phase.pauses.load(Ordering::SeqCst)
    )
}

fn report(phase: &Phase, stats: &Stats, secs: f64, head: &str) {
    println!(
        "\n== soak summary ({head}; limit rounds: LIMIT = {LIMIT} of {ATTEMPTS} answered requests)"
    );
    println!(
        "{:<20} {:>9} {:>9} {:>8} {:>8} {:>8} {:>9}  errors during outages",
        "operation", "ok", "err(up)", "p50 ms", "p99 ms", "max ms", "ops/s"
    );
    let mut all_max = Duration::ZERO;
    for (name, k) in &stats.kinds {
        let mut l = k.latencies_us.clone();
        l.sort_unstable();
        let max = pct(&l, 1.0);
        all_max = all_max.max(max);
        let errors: Vec<String> = k
            .outage_errors
            .iter()
            .map(|(c, n)| format!("{c}={n}"))
            .collect();
        println!(
            "{:<20} {:>9} {:>9} {:>8} {:>8} {:>8} {:>9.0}  {}",
            name,
            k.ok,
            k.up_errors,
            ms(pct(&l, 0.5)),
            ms(pct(&l, 0.99)),
            ms(max),
            l.len() as f64 / secs,
            if errors.is_empty() {
                "-".to_string()
            } else {
                errors.join(" ")
            }
        );
    }
    for (name, n) in &stats.counters {
        println!("{name:<45} {n}");
    }
    let mut rec = phase.recoveries.lock().unwrap().clone();
    rec.sort();
    if !rec.is_empty() {
        println!(
            "recoveries: {} measured, first success after PING: p50 {} ms, max {} ms",
            rec.len(),
            ms(rec[rec.len() / 2]),
            ms(*rec.last().unwrap())
        );
    }
    println!("slowest call overall: {} ms", ms(all_max));
    let v = phase.violations.lock().unwrap();
    println!("violations: {}", v.len());
    for m in v.iter().take(20) {
        println!("  {m}");
    }
}
