//! Secrets are compared in constant time and never shown: the helper's
//! semantics (checked against `==` on random inputs), the secret types'
//! `Debug`, and error messages about malformed secrets.

use proptest::prelude::*;
use rampart::session::{constant_time_eq, RefreshToken, SessionConfig, SessionId, Sessions};
use rampart::MemoryStore;

proptest! {
    #[test]
    fn constant_time_eq_is_equality(a in proptest::collection::vec(any::<u8>(), 0..64),
                                    b in proptest::collection::vec(any::<u8>(), 0..64)) {
        prop_assert_eq!(constant_time_eq(&a, &b), a == b);
        prop_assert!(constant_time_eq(&a, &a));
    }

    #[test]
    fn one_flipped_bit_anywhere_is_unequal(a in proptest::collection::vec(any::<u8>(), 1..64),
                                           at in any::<prop::sample::Index>(),
                                           bit in 0u8..8) {
        let mut b = a.clone();
        let i = at.index(a.len());
        b[i] ^= 1 << bit;
        prop_assert!(!constant_time_eq(&a, &b));
    }
}

#[test]
fn secret_types_compare_by_value_and_hide_in_debug() {
    let id = SessionId::generate().unwrap();
    let again = SessionId::parse(id.as_str()).unwrap();
    assert_eq!(id, again);
    assert_ne!(id, SessionId::generate().unwrap());
    assert_eq!(format!("{id:?}"), "SessionId(..)");
    assert_eq!(format!("{:?}", Some(&again)), "Some(SessionId(..))");
    // The handle is public, and not the id.
    assert_ne!(id.handle().as_str(), id.as_str());
    assert!(!format!("{:?}", id.handle()).contains(id.as_str()));

    let text = "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4";
    let token = RefreshToken::parse(text).unwrap();
    assert_eq!(format!("{token:?}"), "RefreshToken(..)");
    assert_eq!(token, RefreshToken::parse(text).unwrap());
}

#[test]
fn malformed_secrets_are_not_echoed() {
    let secret = "password-like-secret-value-that-must-not-leak";
    for err in [
        SessionId::parse(secret).unwrap_err(),
        RefreshToken::parse(secret).unwrap_err(),
    ] {
        assert_eq!(err.kind(), rampart::ErrorKind::InvalidInput);
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[test]
fn configuration_debug_is_plain() {
    let sessions = Sessions::new(MemoryStore::new(), SessionConfig::default()).unwrap();
    let shown = format!("{sessions:?}");
    assert!(shown.contains("idle_timeout"), "{shown}");
}
