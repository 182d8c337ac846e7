//! # rampart
//!
//! The four things web backends keep in Redis — **caching, rate limiting,
//! sessions and distributed locks** — written once against a small
//! [`Store`] trait, and run on Redis (`rampart-redis`), in process
//! ([`MemoryStore`], `rampart-moka`), under a mock (`rampart-mock`) and from
//! Node.js through WebAssembly.
//!
//! ```
//! use rampart::{Key, MemoryStore, Store};
//! use std::time::Duration;
//!
//! # futures_lite_block_on(async {
//! let store = MemoryStore::new();
//! let key = Key::new("greeting")?;
//! store.set(&key, "hello".into(), Some(Duration::from_secs(60))).await?;
//! assert_eq!(store.get(&key).await?.as_deref(), Some(&b"hello"[..]));
//! # Ok::<(), rampart::Error>(())
//! # }).unwrap();
//! # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

/// A Lua script of the crate as embedded: `src/<path>` with its full-line
/// comments blanked (`build.rs`; line numbers kept).
macro_rules! lua {
    ($path:literal) => {
        include_str!(concat!(env!("OUT_DIR"), "/lua/", $path))
    };
}

mod atomic;
pub mod cache;
mod clock;
mod codec;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod key;
pub mod layers;
pub mod limit;
mod local;
pub mod lock;
mod memory;
mod pubsub;
pub mod rt;
mod script;
pub mod session;
mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
#[cfg(all(feature = "axum", not(target_arch = "wasm32")))]
pub mod web;

pub use atomic::{run, AtomicOp, ScriptTime};
pub use bytes::Bytes;
pub use clock::{duration_micros, Clock, ManualClock, SharedClock, SystemClock, Timestamp};
pub use codec::{Codec, Json, MsgPack};
pub use error::{Error, ErrorKind, Result};
pub use key::{escape_glob, glob_match, validate_prefix, Key, MAX_KEY_LEN, SEPARATOR};
pub use local::{LocalChange, LocalUpdateFn, LocalValue, INLINE_CAPACITY};
pub use memory::{MemoryStore, MemoryStoreBuilder};
pub use pubsub::Hub;
pub use script::{Arg, Script, Value};
pub use store::{
    check_ttl, Atomic, Capabilities, Change, Cursor, KeyTtl, MaybeSend, MaybeSync, Page, Store,
    StoreStats, Subscription, Swap, UpdateFn, Updated, MAX_CAS_ATTEMPTS, MAX_TTL,
};
