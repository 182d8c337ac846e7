//! # rampart-wasm
//!
//! The Node.js face of rampart: the core compiled to WebAssembly behind a
//! [wasm-bindgen] API, wrapped by the npm package `rampart` (`index.js`,
//! typed by `index.d.ts`). Thin forwarding only: every decision is made by
//! the core; this crate validates what JavaScript hands it, converts
//! values, and runs futures.
//!
//! What it exports (through `index.js`):
//!
//! * `Store`: any [`rampart::Store`] as a JavaScript object, either the
//!   core's portable [`rampart::MemoryStore`] or a [`JsStore`] over a
//!   JavaScript object implementing the store interface (the package's
//!   ioredis and node-redis adapters, or the user's own).
//! * `RateLimiter`: the core's [`rampart::limit::Limiter`] over any of
//!   those stores; decisions cross the boundary as numbers in a shared
//!   buffer, and headers are rendered by the core. On the core's
//!   `MemoryStore`, `consume` is a synchronous export (no task, the key
//!   in a scratch buffer when short and ASCII): the core decides in place
//!   before the first poll, and `lib/limiter.js` returns a settled promise.
//! * `Locks`: the core's distributed locks ([`rampart::lock::Locks`]):
//!   token-checked, fenced, with the watchdog of `withLock`.
//! * `Sessions`: the core's server-side sessions ([`rampart::session`]):
//!   hashed ids, a per-user index, rolling and absolute expiry, rotation
//!   and revocation; `RefreshTokens` (rotating families with reuse
//!   detection) and the access-token `Denylist`.
//! * `Cache`: the core's cache ([`rampart::cache::Cache`]): JSON values,
//!   TTLs, tags, prefix invalidation, stale-while-revalidate, and
//!   `getOrSet` whose concurrent misses share one loader call.
//! * `ManualClock`: time that moves only when told to, for tests.
//!
//! # No panic crosses the boundary
//! On `wasm32-unknown-unknown` a panic aborts: the module traps, and a trap
//! inside a promise callback is an unhandled rejection that ends the Node
//! process. So:
//!
//! * every input is validated ([`convert`]) and refused with a coded error
//!   (`RAMPART_INVALID_KEY`, `RAMPART_INVALID_INPUT`, ...), never unwrapped;
//! * futures run on this crate's own executor ([`runtime`]), whose every
//!   poll is called by `lib/runtime.js` inside a `try`: if a bug panics
//!   anyway, the panic hook hands the message to JavaScript, the trap is
//!   caught there, every pending promise is rejected with
//!   `RAMPART_PANIC`, and the instance refuses further calls (its memory
//!   can no longer be trusted) instead of killing the process.
//!
//! Cargo features `limiter`, `cache`, `sessions` and `locks` (all on by
//! default) select the bindings compiled in; a left-out class throws
//! `RAMPART_UNSUPPORTED` from JavaScript.
//!
//! Natively this crate builds (so the workspace lints and unit-tests it)
//! but exports nothing: the bindings exist on `wasm32` only.
//!
//! [wasm-bindgen]: https://docs.rs/wasm-bindgen
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod convert;

#[cfg(all(target_arch = "wasm32", feature = "cache"))]
mod cache;
#[cfg(target_arch = "wasm32")]
mod clock;
#[cfg(target_arch = "wasm32")]
mod error;
#[cfg(target_arch = "wasm32")]
mod js_store;
#[cfg(all(target_arch = "wasm32", feature = "limiter"))]
mod limiter;
#[cfg(all(target_arch = "wasm32", feature = "locks"))]
mod locks;
#[cfg(target_arch = "wasm32")]
pub mod runtime;
#[cfg(all(target_arch = "wasm32", feature = "sessions"))]
mod sessions;
#[cfg(target_arch = "wasm32")]
mod store;

#[cfg(all(target_arch = "wasm32", feature = "cache"))]
pub use cache::CacheHandle;
#[cfg(target_arch = "wasm32")]
pub use clock::ManualClockHandle;
#[cfg(target_arch = "wasm32")]
pub use js_store::JsStore;
#[cfg(all(target_arch = "wasm32", feature = "limiter"))]
pub use limiter::{LimiterExtras, RateLimiterHandle};
#[cfg(all(target_arch = "wasm32", feature = "locks"))]
pub use locks::{LockHandleJs, LocksHandle};
#[cfg(all(target_arch = "wasm32", feature = "sessions"))]
pub use sessions::{DenylistHandle, RefreshTokensHandle, SessionsHandle};
#[cfg(target_arch = "wasm32")]
pub use store::StoreHandle;
