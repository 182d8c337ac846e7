//! The session suite (sessions, refresh tokens, denylist) on `MokaStore`.

use rampart::testkit::Harness;
use rampart_moka::MokaStore;

rampart::session_suite!(Harness::manual(|clock| MokaStore::builder()
    .clock(clock)
    .build()));
