//! The conformance suite through `FaultyStore`: with no fault configured,
//! or with faults configured but healed, it must be a transparent wrapper.

use rampart::testkit::Harness;
use rampart::MemoryStore;
use rampart_mock::FaultyStore;

mod faulty_no_faults {
    use super::*;
    rampart::conformance_suite!(Harness::manual(|clock| FaultyStore::new(
        MemoryStore::builder().clock(clock).build()
    )));
}

mod faulty_healed {
    use super::*;
    rampart::conformance_suite!(Harness::manual(|clock| {
        let store = FaultyStore::new(MemoryStore::builder().clock(clock).build())
            .fail_every(1)
            .fail_fraction(1.0);
        store.heal();
        store
    }));
}
