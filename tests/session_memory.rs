//! The session suite (sessions, refresh tokens, denylist) on the portable
//! in-process store, with a manual clock: expiry is exact and instant.

use std::sync::Arc;

use rampart::testkit::Harness;
use rampart::{MemoryStore, Store};

mod memory {
    use super::*;
    rampart::session_suite!(Harness::manual(|clock| MemoryStore::builder()
        .clock(clock)
        .build()));
}

mod dyn_memory {
    use super::*;
    rampart::session_suite!(Harness::manual(|clock| Arc::new(
        MemoryStore::builder().clock(clock).build()
    ) as Arc<dyn Store>));
}
