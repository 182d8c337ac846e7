//! # rampart-mock
//!
//! Two ways to test code built on a [`rampart::Store`] without a server:
//!
//! - [`MockStore`], a [mockall] mock of the whole `Store` trait (provided
//!   methods included), for interaction tests: *this* function calls `get`
//!   once with *this* key and turns the reply into *that* result.
//! - [`FaultyStore`], a wrapper around a real store that injects failures
//!   (every n-th call, a seeded fraction of calls, or on demand) and latency,
//!   for fault tests: does the cache degrade, does the `Fallback` layer move
//!   traffic, does a lock give up cleanly.
//!
//! Add it as a dev-dependency: `rampart-mock = "0.1"`. `FaultyStore` also
//! builds for `wasm32-unknown-unknown` (its latency sleeps through
//! `rampart::rt::sleep`: tokio's timer natively, `setTimeout` on wasm);
//! `MockStore` is native only, like mockall's `Send` async mocks.
//!
//! ## Expecting a call
//!
//! A small function under test, and a unit test of it that expects one `get`
//! with the right key and returns a value:
//!
//! ```
//! use rampart::{Bytes, Key, Store};
//! use rampart_mock::MockStore;
//!
//! /// The user's display name, or "anonymous" when none is stored.
//! async fn display_name(store: &dyn Store, user: &str) -> rampart::Result<String> {
//!     let key = Key::from_parts(["user", user, "name"])?;
//!     Ok(match store.get(&key).await? {
//!         Some(name) => String::from_utf8_lossy(&name).into_owned(),
//!         None => "anonymous".to_owned(),
//!     })
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let mut store = MockStore::new();
//! store
//!     .expect_get()
//!     .withf(|key| key.as_str() == "user:42:name")
//!     .times(1)
//!     .returning(|_| Ok(Some(Bytes::from_static(b"Ada"))));
//!
//! assert_eq!(display_name(&store, "42").await?, "Ada");
//! # Ok::<(), rampart::Error>(()) }).unwrap();
//! ```
//!
//! ## Injecting an error
//!
//! The same store answers with a temporary [`rampart::Error::unavailable`],
//! as a Redis store does while the server is down; the function under test
//! must pass it on with its kind intact:
//!
//! ```
//! use rampart::{Error, ErrorKind, Key, Store};
//! use rampart_mock::MockStore;
//!
//! /// Counts a page view; the caller decides what an outage means.
//! async fn count_view(store: &dyn Store, page: &str) -> rampart::Result<i64> {
//!     store.increment(&Key::from_parts(["views", page])?, 1, None).await
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let mut store = MockStore::new();
//! store
//!     .expect_increment()
//!     .returning(|_, _, _| Err(Error::unavailable("connection refused")));
//!
//! let err = count_view(&store, "home").await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Unavailable);
//! assert!(err.is_temporary());
//! # });
//! ```
//!
//! ## Injecting faults into a real store
//!
//! ```
//! use rampart::{Key, MemoryStore, Store};
//! use rampart_mock::FaultyStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = FaultyStore::new(MemoryStore::new()).fail_every(2);
//! let key = Key::new("k")?;
//! assert!(store.set(&key, "v".into(), None).await.is_ok()); // call 1
//! assert!(store.get(&key).await.is_err()); // call 2 fails, before reaching the store
//! assert_eq!((store.calls(), store.injected()), (2, 1));
//! # Ok::<(), rampart::Error>(()) }).unwrap();
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod faulty;
#[cfg(not(target_arch = "wasm32"))]
mod mock;

pub use faulty::{FaultMode, FaultyStore};
#[cfg(not(target_arch = "wasm32"))]
pub use mock::MockStore;
/// The mockall this crate's [`MockStore`] is built with, for its
/// `Sequence`, `predicate` and friends without a second dependency.
#[cfg(not(target_arch = "wasm32"))]
pub use mockall;
