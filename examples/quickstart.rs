//! rampart in one page, on the embedded in-process store (no Redis needed):
//! a cached value, a rate limiter with its HTTP headers, sessions, and a
//! process lock.
//!
//! Run: `cargo run --example quickstart`
//!
//! The same code runs on Redis: build the store with
//! `rampart_redis::RedisStore::from_url("redis://127.0.0.1:6379")?` instead.

use std::sync::Arc;
use std::time::Duration;

use rampart::cache::{Cache, EntryOptions};
use rampart::limit::{presets::Presets, HeaderStyle, Limiter};
use rampart::lock::{Extend, Locks, Release};
use rampart::session::{SessionConfig, SessionId, SessionMeta, Sessions};
use rampart::{Change, Key, Store};
use rampart_moka::MokaStore;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Product {
    id: u32,
    name: String,
    price_cents: u64,
}

#[tokio::main]
async fn main() -> rampart::Result<()> {
    // The embedded default: one in-process store shared by every feature.
    let store = Arc::new(MokaStore::new());

    // 1. A typed value cached with a TTL: cache-aside with stampede
    //    protection, stale-while-revalidate and tag invalidation.
    println!("== cache");
    let cache = Cache::builder(store.clone())
        .namespace("shop")
        .default_ttl(Duration::from_secs(300))
        .stale_while_revalidate(Duration::from_secs(30))
        .build()?;
    let load = || async {
        // Your database query; runs once however many requests miss at once.
        Ok(Product {
            id: 42,
            name: "Espresso machine".into(),
            price_cents: 129_900,
        })
    };
    let options = EntryOptions::new().tag("catalogue");
    let product: Product = cache
        .get_or_set("product:42", options.clone(), load)
        .await?;
    let again: Product = cache.get_or_set("product:42", options, load).await?;
    assert_eq!(product, again);
    println!("cached {product:?}");
    cache.invalidate_tag("catalogue").await?; // every catalogue entry now misses
    let stats = cache.stats().await;
    println!(
        "hits={} misses={} loader calls={} hit rate={:?}",
        stats.hits,
        stats.misses,
        stats.loader_calls,
        stats.hit_rate()
    );

    // 2. Rate limiting: the auth preset, 5 attempts per 15 minutes, then a
    //    15-minute block (RATE_LIMIT_AUTH_* override it).
    println!("\n== rate limit (auth preset)");
    let presets = Presets::from_env()?;
    let login_limit = Limiter::builder(store.clone(), presets.auth)
        .prefix("rl:auth")
        .build()?;
    let who = login_limit.key("alice@example.com")?;
    for attempt in 1..=6 {
        let d = login_limit.consume(&who, 1).await?;
        println!(
            "attempt {attempt}: allowed={} remaining={} retry_after={:?}",
            d.allowed, d.remaining, d.retry_after
        );
        if attempt == 6 {
            for (name, value) in d.headers(HeaderStyle::Draft8) {
                println!("  {name}: {value}");
            }
        }
    }

    // 3. Sessions: login, renewal on each request, logout everywhere.
    println!("\n== sessions");
    let sessions = Sessions::new(store.clone(), SessionConfig::default())?;
    let meta = SessionMeta::new()
        .with_ip("203.0.113.7")
        .with_user_agent("Firefox/128");
    let login = sessions.create("alice", &vec!["cart:42"], meta).await?;
    // The id goes to the client (an HttpOnly cookie); the store keeps a hash.
    let id = SessionId::parse(login.id.as_str())?;
    let session = sessions.get::<Vec<String>>(&id).await?.expect("logged in");
    println!(
        "alice's session renewed until {:?}; {} active",
        session.expires,
        sessions.count("alice").await?
    );
    sessions.destroy_all("alice").await?; // password change
    assert!(sessions.get::<Vec<String>>(&id).await?.is_none());
    println!(
        "after logout-everywhere: {} active",
        sessions.count("alice").await?
    );

    // 4. A process lock: acquire, update with the fencing token, extend, release.
    println!("\n== process lock");
    let locks = Locks::new(store.clone());
    let Some(mut lock) = locks
        .acquire(
            "report:2024",
            Duration::from_secs(30),
            Duration::from_secs(5),
        )
        .await?
    else {
        return Err(rampart::Error::new(
            rampart::ErrorKind::Conflict,
            "someone else is building the report",
        ));
    };
    let record = Key::new("report:2024:status")?;
    let fence = lock.fence();
    // Writers refuse a token older than the last one they saw.
    store
        .update(&record, &mut |current| {
            let seen = current
                .and_then(|v| {
                    std::str::from_utf8(v)
                        .ok()?
                        .split_once(':')?
                        .0
                        .parse::<u64>()
                        .ok()
                })
                .unwrap_or(0);
            if fence <= seen {
                return Change::Keep;
            }
            Change::Set {
                value: format!("{fence}:building").into(),
                ttl: None,
            }
        })
        .await?;
    println!("locked with fencing token {fence}");
    if let Extend::NotHeld = lock.extend(Duration::from_secs(30)).await? {
        println!("lost the lock: stop");
    }
    assert_eq!(lock.release().await?, Release::Released);
    println!("released");

    // Bad input is a typed error, never a panic.
    let err = Key::new("").unwrap_err();
    println!("\nempty key -> {err} ({})", err.code());
    Ok(())
}
