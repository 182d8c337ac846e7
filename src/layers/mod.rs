//! Layers: stores that wrap stores.
//!
//! Each layer implements [`crate::Store`] completely (every provided method
//! too, checked by `clippy::missing_trait_methods`), so layers compose:
//! `Fallback::new(Prefixed::new(redis, "app")?, MemoryStore::new())`.

mod fallback;
mod prefixed;
#[cfg(feature = "tracing")]
pub mod traced;

pub use fallback::{Fallback, FallbackState};
pub use prefixed::Prefixed;
#[cfg(feature = "tracing")]
pub use traced::Traced;
