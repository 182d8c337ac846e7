//! Rules for the usual API tiers, overridable from the environment.
//!
//! | preset    | default                                   | algorithm          | variables |
//! |-----------|-------------------------------------------|--------------------|-----------|
//! | `auth`    | 5 per 15 minutes, then blocked 15 minutes | sliding log (exact)| `RATE_LIMIT_AUTH_POINTS`, `RATE_LIMIT_AUTH_DURATION`, `RATE_LIMIT_AUTH_BLOCK` |
//! | `general` | 100 per 15 minutes                        | sliding window counter | `RATE_LIMIT_GENERAL_POINTS`, `RATE_LIMIT_GENERAL_DURATION` |
//! | `api`     | 1000 per hour                             | sliding window counter | `RATE_LIMIT_API_POINTS`, `RATE_LIMIT_API_DURATION` |
//!
//! `*_POINTS` are requests per window (1 to [`super::MAX_LIMIT`]; for
//! `auth`, at most [`super::MAX_LOG_LIMIT`]); `*_DURATION` and
//! `*_BLOCK` are whole seconds (`RATE_LIMIT_AUTH_BLOCK=0` turns the block
//! off). An unset or empty variable keeps the default; anything else that
//! is not a valid number is a [`crate::ErrorKind::Config`] error naming
//! the variable and the value.
//!
//! ```
//! use rampart::limit::presets::Presets;
//! let presets = Presets::from_lookup(|name| match name {
//!     "RATE_LIMIT_API_POINTS" => Some("5000".to_owned()),
//!     _ => None,
//! })?;
//! assert_eq!(presets.api.quotas()[0].limit(), 5000);
//! assert_eq!(presets.auth.capacity(), 5);
//!
//! let bad = Presets::from_lookup(|name| {
//!     (name == "RATE_LIMIT_AUTH_DURATION").then(|| "15m".to_owned())
//! });
//! assert_eq!(
//!     bad.unwrap_err().message(),
//!     "RATE_LIMIT_AUTH_DURATION must be a whole number of seconds between 1 and 3153600000, got \"15m\""
//! );
//! # Ok::<(), rampart::Error>(())
//! ```

use std::time::Duration;

use super::{Algorithm, Quota, Rule, MAX_LIMIT, MAX_LOG_LIMIT};
use crate::{Error, Result, MAX_TTL};

/// The default `auth` preset: 5 requests per 15 minutes.
pub const AUTH_POINTS: u64 = 5;
/// The default `auth` window, in seconds (15 minutes).
pub const AUTH_DURATION_SECS: u64 = 15 * 60;
/// The default `auth` block after a denial, in seconds (15 minutes).
pub const AUTH_BLOCK_SECS: u64 = 15 * 60;
/// The default `general` preset: 100 requests per 15 minutes.
pub const GENERAL_POINTS: u64 = 100;
/// The default `general` window, in seconds (15 minutes).
pub const GENERAL_DURATION_SECS: u64 = 15 * 60;
/// The default `api` preset: 1000 requests per hour.
pub const API_POINTS: u64 = 1000;
/// The default `api` window, in seconds (1 hour).
pub const API_DURATION_SECS: u64 = 60 * 60;

/// The three preset rules.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Presets {
    /// Login and other credential checks: few attempts, then a block.
    pub auth: Rule,
    /// Ordinary pages and endpoints.
    pub general: Rule,
    /// API clients.
    pub api: Rule,
}

impl Presets {
    /// The defaults, ignoring the environment.
    pub fn standard() -> Result<Presets> {
        Self::from_lookup(|_| None)
    }

    /// The defaults overridden by the `RATE_LIMIT_*` environment variables.
    pub fn from_env() -> Result<Presets> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The defaults overridden by `lookup(variable name)` (the environment,
    /// a config file, a test's map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Presets> {
        let max_secs = MAX_TTL.as_secs();
        let auth_points = var(
            &lookup,
            "RATE_LIMIT_AUTH_POINTS",
            AUTH_POINTS,
            1,
            MAX_LOG_LIMIT,
        )?;
        let auth_secs = var(
            &lookup,
            "RATE_LIMIT_AUTH_DURATION",
            AUTH_DURATION_SECS,
            1,
            max_secs,
        )?;
        let auth_block = var(
            &lookup,
            "RATE_LIMIT_AUTH_BLOCK",
            AUTH_BLOCK_SECS,
            0,
            max_secs,
        )?;
        let general_points = var(
            &lookup,
            "RATE_LIMIT_GENERAL_POINTS",
            GENERAL_POINTS,
            1,
            MAX_LIMIT,
        )?;
        let general_secs = var(
            &lookup,
            "RATE_LIMIT_GENERAL_DURATION",
            GENERAL_DURATION_SECS,
            1,
            max_secs,
        )?;
        let api_points = var(&lookup, "RATE_LIMIT_API_POINTS", API_POINTS, 1, MAX_LIMIT)?;
        let api_secs = var(
            &lookup,
            "RATE_LIMIT_API_DURATION",
            API_DURATION_SECS,
            1,
            max_secs,
        )?;
        Ok(Presets {
            auth: Rule::builder(Algorithm::SlidingLog)
                .quota(Quota::new(auth_points, Duration::from_secs(auth_secs)))
                .block_for(Duration::from_secs(auth_block))
                .build()
                .map_err(|e| context(e, "auth"))?,
            general: Rule::builder(Algorithm::SlidingWindow)
                .quota(Quota::new(
                    general_points,
                    Duration::from_secs(general_secs),
                ))
                .build()
                .map_err(|e| context(e, "general"))?,
            api: Rule::builder(Algorithm::SlidingWindow)
                .quota(Quota::new(api_points, Duration::from_secs(api_secs)))
                .build()
                .map_err(|e| context(e, "api"))?,
        })
    }
}

fn context(e: Error, preset: &str) -> Error {
    Error::config(format!("rate-limit preset {preset}: {}", e.message()))
}

/// The `auth` preset from the environment.
pub fn auth() -> Result<Rule> {
    Presets::from_env().map(|p| p.auth)
}

/// The `general` preset from the environment.
pub fn general() -> Result<Rule> {
    Presets::from_env().map(|p| p.general)
}

/// The `api` preset from the environment.
pub fn api() -> Result<Rule> {
    Presets::from_env().map(|p| p.api)
}

fn var(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64> {
    let Some(raw) = lookup(name) else {
        return Ok(default);
    };
    let text = raw.trim();
    if text.is_empty() {
        return Ok(default);
    }
    let unit = if name.ends_with("_POINTS") {
        "a whole number"
    } else {
        "a whole number of seconds"
    };
    match text.parse::<u64>() {
        Ok(v) if (min..=max).contains(&v) && text.bytes().all(|b| b.is_ascii_digit()) => Ok(v),
        _ => Err(Error::config(format!(
            "{name} must be {unit} between {min} and {max}, got {raw:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use std::collections::HashMap;

    fn with(vars: &[(&str, &str)]) -> Result<Presets> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Presets::from_lookup(move |name| map.get(name).cloned())
    }

    #[test]
    fn defaults_match_the_usual_tiers() {
        let p = Presets::standard().unwrap();
        assert_eq!(p.auth.quotas(), &[Quota::new(5, Duration::from_secs(900))]);
        assert_eq!(p.auth.block_duration(), Some(Duration::from_secs(900)));
        assert_eq!(p.auth.algorithm(), Algorithm::SlidingLog);
        assert_eq!(
            p.general.quotas(),
            &[Quota::new(100, Duration::from_secs(900))]
        );
        assert_eq!(p.general.block_duration(), None);
        assert_eq!(p.api.quotas(), &[Quota::per_hour(1000)]);
    }

    #[test]
    fn every_variable_overrides() {
        let p = with(&[
            ("RATE_LIMIT_AUTH_POINTS", "3"),
            ("RATE_LIMIT_AUTH_DURATION", "60"),
            ("RATE_LIMIT_AUTH_BLOCK", "0"),
            ("RATE_LIMIT_GENERAL_POINTS", " 50 "),
            ("RATE_LIMIT_GENERAL_DURATION", "30"),
            ("RATE_LIMIT_API_POINTS", "10"),
            ("RATE_LIMIT_API_DURATION", "1"),
            ("RATE_LIMIT_UNRELATED", "x"),
        ])
        .unwrap();
        assert_eq!(p.auth.quotas(), &[Quota::per_minute(3)]);
        assert_eq!(p.auth.block_duration(), None);
        assert_eq!(
            p.general.quotas(),
            &[Quota::new(50, Duration::from_secs(30))]
        );
        assert_eq!(p.api.quotas(), &[Quota::per_second(10)]);
        assert_eq!(
            with(&[("RATE_LIMIT_API_POINTS", "")])
                .unwrap()
                .api
                .capacity(),
            1000
        );
    }

    #[test]
    fn invalid_values_name_the_variable() {
        for (name, value) in [
            ("RATE_LIMIT_AUTH_POINTS", "0"),
            ("RATE_LIMIT_AUTH_POINTS", "10001"),
            ("RATE_LIMIT_AUTH_DURATION", "-5"),
            ("RATE_LIMIT_AUTH_BLOCK", "1.5"),
            ("RATE_LIMIT_GENERAL_POINTS", "lots"),
            ("RATE_LIMIT_GENERAL_DURATION", "0"),
            ("RATE_LIMIT_API_POINTS", "99999999999"),
            ("RATE_LIMIT_API_DURATION", "+60"),
        ] {
            let e = with(&[(name, value)]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.message().starts_with(name), "{}", e.message());
            assert!(
                e.message().contains(&format!("{value:?}")),
                "{}",
                e.message()
            );
        }
    }
}
