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

mod fallback_primary_down {
    use super::*;
    use rampart_mock::FaultyStore;
    // The primary fails every call: everything must work on the insurance store.
    rampart::conformance_suite!(Harness::manual(|clock| Fallback::new(
        FaultyStore::new(MemoryStore::builder().clock(clock.clone()).build()).fail_every(1),
        MemoryStore::builder().clock(clock).build(),
    )));
}
