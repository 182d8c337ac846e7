//! The presets read the real environment (one test in its own binary, so
//! setting variables races with nothing).

use std::time::Duration;

use rampart::limit::presets::{self, Presets};
use rampart::limit::{Algorithm, Quota};
use rampart::ErrorKind;

#[test]
fn presets_follow_the_environment() {
    std::env::set_var("RATE_LIMIT_AUTH_POINTS", "7");
    std::env::set_var("RATE_LIMIT_AUTH_DURATION", "600");
    std::env::set_var("RATE_LIMIT_AUTH_BLOCK", "1800");
    std::env::set_var("RATE_LIMIT_API_DURATION", "60");
    let auth = presets::auth().unwrap();
    assert_eq!(auth.quotas(), &[Quota::new(7, Duration::from_secs(600))]);
    assert_eq!(auth.block_duration(), Some(Duration::from_secs(1800)));
    assert_eq!(auth.algorithm(), Algorithm::SlidingLog);
    assert_eq!(presets::api().unwrap().quotas(), &[Quota::per_minute(1000)]);
    assert_eq!(
        presets::general().unwrap().quotas(),
        &[Quota::new(100, Duration::from_secs(900))]
    );

    std::env::set_var("RATE_LIMIT_GENERAL_POINTS", "a hundred");
    let e = Presets::from_env().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert_eq!(
        e.message(),
        "RATE_LIMIT_GENERAL_POINTS must be a whole number between 1 and 4294967295, got \"a hundred\""
    );
    assert_eq!(presets::auth().unwrap_err().kind(), ErrorKind::Config);
    std::env::remove_var("RATE_LIMIT_GENERAL_POINTS");
    assert!(Presets::from_env().is_ok());
}
