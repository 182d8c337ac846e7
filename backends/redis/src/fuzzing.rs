//! The `redis_config_url` fuzz target body, shared by `fuzz/` and the
//! corpus replay test (`tests/fuzz_corpus.rs`). Not a public API (feature
//! `fuzzing`).

use rampart::ErrorKind;

use crate::RedisConfig;

/// A target body.
pub type Target = fn(&[u8]);

/// Every target of this crate: (name, body).
pub const TARGETS: &[(&str, Target)] = &[("redis_config_url", redis_config_url)];

/// `RedisConfig::from_url` on arbitrary text: a URL that parses gives a
/// valid config whose `Debug` hides the password and whose connection
/// URL parses back to the same host, port, database and TLS flag;
/// anything else is a `Config` error.
pub fn redis_config_url(data: &[u8]) {
    let url = String::from_utf8_lossy(data);
    let config = match RedisConfig::from_url(&url) {
        Ok(c) => c,
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Config, "{e}");
            return;
        }
    };
    config.validate().expect("a parsed config is valid");
    if config.password.is_some() {
        assert!(format!("{config:?}").contains("password: Some(\"<redacted>\")"));
    }
    let again = RedisConfig::from_url(&config.url_for(&config.host, config.port))
        .expect("the connection URL of a parsed config parses");
    assert_eq!(
        (&again.host, again.port, again.db, again.tls),
        (&config.host, config.port, config.db, config.tls),
        "the connection URL does not round-trip"
    );
}

/// Seed inputs: (target, file name, bytes).
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    [
        ("plain", "redis://127.0.0.1:6379"),
        ("auth_db", "redis://app:s3cret@10.0.0.7:6380/2"),
        (
            "escaped",
            "redis://user:p%40ss%3Aw0rd@cache.internal/15?timeout=5",
        ),
        ("ipv6", "redis://[::1]:7000/1"),
        ("password_only", "redis://:only@localhost"),
        ("tls", "rediss://example.com:6380"),
        ("bad_port", "redis://host:99999"),
        ("bad_escape", "redis://u:%zz@host"),
    ]
    .into_iter()
    .map(|(name, url)| ("redis_config_url", name.to_owned(), url.as_bytes().to_vec()))
    .collect()
}
