//! rampart in one page, on the embedded in-process store (no Redis needed).
//!
//! Run: `cargo run --example quickstart`

use std::time::Duration;

use rampart::{Codec, Json, Key, KeyTtl, Store};
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
    // The embedded default: an in-process store (moka). The same code runs
    // on Redis with `rampart_redis::RedisStore`.
    let store = MokaStore::new();

    // 1. A typed value cached with a TTL.
    let key = Key::from_parts(["shop", "product", "42"])?;
    let product = Product {
        id: 42,
        name: "Espresso machine".into(),
        price_cents: 129_900,
    };
    store
        .set(&key, Json.encode(&product)?, Some(Duration::from_secs(300)))
        .await?;
    let cached: Product = Json.decode(&store.get(&key).await?.expect("just cached"))?;
    let ttl = match store.ttl(&key).await? {
        KeyTtl::Expires(d) => format!("{}s", d.as_secs()),
        other => format!("{other:?}"),
    };
    println!("cached {} = {:?} (expires in {ttl})", key, cached);
    assert_eq!(cached, product);

    // Bad input is a typed error, never a panic.
    let err = Key::new("").unwrap_err();
    println!("empty key -> {} ({})", err, err.code());

    Ok(())
}
