//! Golden tests: the headers of a decision, byte for byte as
//! express-rate-limit emits them for the same situation (its own header
//! tests: a fresh client, limit 5, window 60 s or 2 h, key "foo").

use std::time::Duration;

use rampart::limit::{Algorithm, Decision, HeaderOptions, HeaderStyle, Limiter, Quota, Rule};
use rampart::{Key, ManualClock, MemoryStore, Timestamp};

/// A time on a two-day boundary, so every fixed window starts now (as
/// express-rate-limit's windows start at a client's first hit).
const T0: u64 = 172_800 * 10_000;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn limiter(rule: Rule) -> (Limiter<MemoryStore>, ManualClock) {
    let clock = ManualClock::new(Timestamp::from_secs(T0));
    let store = MemoryStore::builder().clock(clock.shared()).build();
    let limiter = Limiter::builder(store, rule)
        .clock(clock.shared())
        .build()
        .unwrap();
    (limiter, clock)
}

/// The first request of a client under a fixed window of `limit` per `window`.
fn first_hit(limit: u64, window: Duration) -> Decision {
    let (l, _) = limiter(Rule::fixed_window(Quota::new(limit, window)).unwrap());
    block_on(l.consume(&Key::new("foo").unwrap(), 1)).unwrap()
}

fn pairs(list: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    list.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

#[test]
fn legacy_headers() {
    let d = first_hit(5, Duration::from_secs(60));
    assert_eq!(
        d.headers(HeaderStyle::Legacy),
        pairs(&[
            ("X-RateLimit-Limit", "5"),
            ("X-RateLimit-Remaining", "4"),
            ("X-RateLimit-Reset", &(T0 + 60).to_string()),
        ])
    );
}

#[test]
fn draft6_headers() {
    let d = first_hit(5, Duration::from_secs(60));
    assert_eq!(
        d.headers(HeaderStyle::Draft6),
        pairs(&[
            ("RateLimit-Policy", "5;w=60"),
            ("RateLimit-Limit", "5"),
            ("RateLimit-Remaining", "4"),
            ("RateLimit-Reset", "60"),
        ])
    );
}

#[test]
fn draft6_reset_is_zero_when_nothing_is_counted() {
    let (l, _) = limiter(Rule::fixed_window(Quota::per_minute(5)).unwrap());
    let d = block_on(l.check(&Key::new("foo").unwrap(), 1)).unwrap();
    assert_eq!(
        d.headers(HeaderStyle::Draft6),
        pairs(&[
            ("RateLimit-Policy", "5;w=60"),
            ("RateLimit-Limit", "5"),
            ("RateLimit-Remaining", "5"),
            ("RateLimit-Reset", "0"),
        ])
    );
}

#[test]
fn draft7_headers() {
    let d = first_hit(5, Duration::from_secs(60));
    assert_eq!(
        d.headers(HeaderStyle::Draft7),
        pairs(&[
            ("RateLimit-Policy", "5;w=60"),
            ("RateLimit", "limit=5, remaining=4, reset=60"),
        ])
    );
}

#[test]
fn draft8_headers() {
    let d = first_hit(5, Duration::from_secs(2 * 60 * 60));
    assert_eq!(
        d.headers_with(&HeaderOptions::new(HeaderStyle::Draft8).partition_key("foo")),
        pairs(&[
            (
                "RateLimit-Policy",
                "\"5-in-2hrs\"; q=5; w=7200; pk=:MmMyNmI0NmI2OGZm:"
            ),
            ("RateLimit", "\"5-in-2hrs\"; r=4; t=7200"),
        ])
    );
    // Without a partition key, no `pk`.
    assert_eq!(
        d.headers(HeaderStyle::Draft8)[0].1,
        "\"5-in-2hrs\"; q=5; w=7200"
    );
}

#[test]
fn draft8_names_can_be_overridden() {
    let d = first_hit(5, Duration::from_secs(2 * 60 * 60));
    let opts = HeaderOptions::new(HeaderStyle::Draft8)
        .names(&["keep-kalm"])
        .partition_key("foo");
    assert_eq!(
        d.headers_with(&opts),
        pairs(&[
            (
                "RateLimit-Policy",
                "\"keep-kalm\"; q=5; w=7200; pk=:MmMyNmI0NmI2OGZm:"
            ),
            ("RateLimit", "\"keep-kalm\"; r=4; t=7200"),
        ])
    );
}

#[test]
fn draft8_lists_every_tier() {
    // express-rate-limit's "multiple headers" test stacks five limiters;
    // here four are tiers of one rule (the most a rule holds) and the
    // fifth a rule of its own.
    let rule = Rule::builder(Algorithm::FixedWindow)
        .quota(Quota::new(1, Duration::from_secs(5)))
        .quota(Quota::per_minute(5))
        .quota(Quota::per_hour(6))
        .quota(Quota::per_day(7))
        .build()
        .unwrap();
    let (l, _) = limiter(rule);
    let d = block_on(l.consume(&Key::new("foo").unwrap(), 1)).unwrap();
    let opts = HeaderOptions::new(HeaderStyle::Draft8).partition_key("foo");
    assert_eq!(
        d.headers_with(&opts),
        pairs(&[
            (
                "RateLimit-Policy",
                "\"1-in-5sec\"; q=1; w=5; pk=:MmMyNmI0NmI2OGZm:, \
                 \"5-in-1min\"; q=5; w=60; pk=:MmMyNmI0NmI2OGZm:, \
                 \"6-in-1hr\"; q=6; w=3600; pk=:MmMyNmI0NmI2OGZm:, \
                 \"7-in-1day\"; q=7; w=86400; pk=:MmMyNmI0NmI2OGZm:"
            ),
            (
                "RateLimit",
                "\"1-in-5sec\"; r=0; t=5, \"5-in-1min\"; r=4; t=60, \
                 \"6-in-1hr\"; r=5; t=3600, \"7-in-1day\"; r=6; t=86400"
            ),
        ])
    );
    let d = first_hit(8, Duration::from_secs(2 * 86_400));
    assert_eq!(
        d.headers_with(&opts),
        pairs(&[
            (
                "RateLimit-Policy",
                "\"8-in-2days\"; q=8; w=172800; pk=:MmMyNmI0NmI2OGZm:"
            ),
            ("RateLimit", "\"8-in-2days\"; r=7; t=172800"),
        ])
    );
}

#[test]
fn retry_after_once_the_limit_is_reached() {
    let (l, clock) = limiter(Rule::fixed_window(Quota::per_minute(1)).unwrap());
    let key = Key::new("foo").unwrap();
    let first = block_on(l.consume(&key, 1)).unwrap();
    assert!(first.allowed);
    assert!(!first
        .headers(HeaderStyle::Draft7)
        .iter()
        .any(|(k, _)| *k == "Retry-After"));
    let denied = block_on(l.consume(&key, 1)).unwrap();
    assert_eq!(
        denied.headers(HeaderStyle::Legacy),
        pairs(&[
            ("X-RateLimit-Limit", "1"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", &(T0 + 60).to_string()),
            ("Retry-After", "60"),
        ])
    );
    // Half a second later it still rounds up to 60 (express: Math.ceil).
    clock.advance(Duration::from_millis(500));
    let denied = block_on(l.consume(&key, 1)).unwrap();
    assert_eq!(
        denied.headers(HeaderStyle::Draft7),
        pairs(&[
            ("RateLimit-Policy", "1;w=60"),
            ("RateLimit", "limit=1, remaining=0, reset=60"),
            ("Retry-After", "60"),
        ])
    );
    let quiet = HeaderOptions::new(HeaderStyle::Draft7).retry_after(false);
    assert_eq!(denied.headers_with(&quiet).len(), 2);
}

#[test]
fn token_bucket_and_blocked_keys() {
    let (l, _) = limiter(Rule::token_bucket(Quota::per_second(10)).unwrap());
    let key = Key::new("foo").unwrap();
    let d = block_on(l.consume(&key, 1)).unwrap();
    // Back to full in 100 ms: rounded up to a second.
    assert_eq!(
        d.headers(HeaderStyle::Draft7)[1].1,
        "limit=10, remaining=9, reset=1"
    );

    // A bucket whose burst is not its rate announces the burst per the
    // time it takes to refill: 50 per 5 s is the 10/s it sustains (not
    // "50 per second", five times the real rate).
    let (l, _) = limiter(Rule::token_bucket(Quota::per_second(10).with_burst(50)).unwrap());
    let d = block_on(l.consume(&key, 1)).unwrap();
    assert_eq!(d.window, Duration::from_secs(5));
    assert_eq!(
        d.headers(HeaderStyle::Draft8),
        pairs(&[
            ("RateLimit-Policy", "\"50-in-5sec\"; q=50; w=5"),
            ("RateLimit", "\"50-in-5sec\"; r=49; t=1"),
        ])
    );
    // And a burst under the rate: 1 per 100 ms. The drafts count whole
    // seconds, so the policy scales to one: 10 per second, the real rate
    // (rounding the window up would announce a tenth of it).
    let (l, _) = limiter(Rule::token_bucket(Quota::per_second(10).with_burst(1)).unwrap());
    let d = block_on(l.consume(&key, 1)).unwrap();
    assert_eq!(d.window, Duration::from_millis(100));
    assert_eq!(d.headers(HeaderStyle::Draft6)[0].1, "10;w=1");
    assert_eq!(
        d.headers(HeaderStyle::Draft8),
        pairs(&[
            ("RateLimit-Policy", "\"10-in-1sec\"; q=10; w=1"),
            ("RateLimit", "\"10-in-1sec\"; r=0; t=1"),
        ])
    );
    // A sub-second quota scales to the first multiple of a second: 5 per
    // 300 ms is 20 per 1.2 s, announced over 2 s (rounded up, so the rate
    // announced is never above the real one).
    let (l, _) = limiter(Rule::fixed_window(Quota::new(5, Duration::from_millis(300))).unwrap());
    let d = block_on(l.consume(&key, 1)).unwrap();
    assert_eq!(d.headers(HeaderStyle::Draft7)[0].1, "20;w=2");
    assert_eq!(
        d.headers(HeaderStyle::Draft8)[0].1,
        "\"20-in-1.2sec\"; q=20; w=2"
    );

    let rule = Rule::builder(Algorithm::SlidingLog)
        .quota(Quota::per_minute(1))
        .block_for(Duration::from_secs(900))
        .build()
        .unwrap();
    let (l, _) = limiter(rule);
    block_on(l.consume(&key, 1)).unwrap();
    let blocked = block_on(l.consume(&key, 1)).unwrap();
    assert!(blocked.is_blocked());
    assert_eq!(
        blocked.headers(HeaderStyle::Draft6),
        pairs(&[
            ("RateLimit-Policy", "1;w=60"),
            ("RateLimit-Limit", "1"),
            ("RateLimit-Remaining", "0"),
            ("RateLimit-Reset", "900"),
            ("Retry-After", "900"),
        ])
    );
}
