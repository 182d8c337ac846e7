//! The conformance suite against the core's stores and layers.

use std::sync::Arc;

use rampart::layers::{Fallback, Prefixed};
use rampart::testkit::Harness;
use rampart::{MemoryStore, Store};

mod memory {
    use super::*;
    rampart::conformance_suite!(Harness::manual(|clock| MemoryStore::builder()
        .clock(clock)
        .build()));
}

mod dyn_memory {
    use super::*;
    rampart::conformance_suite!(Harness::manual(|clock| Arc::new(
        MemoryStore::builder().clock(clock).build()
    ) as Arc<dyn Store>));
}

mod prefixed {
    use super::*;
    rampart::conformance_suite!(Harness::manual(|clock| Prefixed::new(
        MemoryStore::builder().clock(clock).build(),
        "app:ns"
    )
    .unwrap()));
}

mod fallback_primary_up {
    use super::*;
    rampart::conformance_suite!(Harness::manual(|clock| Fallback::new(
        MemoryStore::builder().clock(clock.clone()).build(),
        MemoryStore::builder().clock(clock).build(),
    )));
}

/// A primary that is always down: every call is `Unavailable`.
mod down {
    use std::time::Duration;

    use async_trait::async_trait;
    use rampart::{Bytes, Cursor, Error, Key, KeyTtl, Page, Result, Store, Swap};

    #[derive(Debug, Default)]
    pub struct DownStore;

    fn down<T>() -> Result<T> {
        Err(Error::unavailable("connection refused"))
    }

    #[async_trait]
    impl Store for DownStore {
        async fn get(&self, _: &Key) -> Result<Option<Bytes>> {
            down()
        }
        async fn set(&self, _: &Key, _: Bytes, _: Option<Duration>) -> Result<()> {
            down()
        }
        async fn delete(&self, _: &Key) -> Result<bool> {
            down()
        }
        async fn ttl(&self, _: &Key) -> Result<KeyTtl> {
            down()
        }
        async fn compare_and_swap(
            &self,
            _: &Key,
            _: Option<&[u8]>,
            _: Option<Bytes>,
            _: Option<Duration>,
        ) -> Result<Swap> {
            down()
        }
        async fn scan(&self, _: &str, _: &Cursor, _: usize) -> Result<Page> {
            down()
        }
    }
}

mod fallback_primary_down {
    use super::*;
    // Everything must work on the insurance store while the primary is down.
    rampart::conformance_suite!(Harness::manual(|clock| Fallback::new(
        down::DownStore,
        MemoryStore::builder().clock(clock).build(),
    )));
}

mod cas_only {
    use super::*;
    // Only the required methods: the suite checks every provided default.
    rampart::conformance_suite!(Harness::manual(|clock| rampart::testkit::CasOnly(
        MemoryStore::builder().clock(clock).build()
    )));
}
