//! [`RedisConfig`]: where the Redis server is and how to talk to it.

use std::fmt;
use std::time::Duration;

use rampart::{Error, Result};

/// How long a command may take before it fails with a `Timeout` (default).
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_millis(500);
/// How long connecting may take (default).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Configuration of a [`crate::RedisStore`].
///
/// Build it from a URL ([`RedisConfig::from_url`]), from the environment
/// ([`RedisConfig::from_env`]) or field by field. `Debug` never shows the
/// password.
///
/// ```
/// use rampart_redis::RedisConfig;
/// let c = RedisConfig::from_url("redis://app:s3cret@127.0.0.1:6380/2").unwrap();
/// assert_eq!(c.db, 2);
/// assert!(!format!("{c:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisConfig {
    /// Host name or address (standalone), default `127.0.0.1`.
    pub host: String,
    /// TCP port, default 6379.
    pub port: u16,
    /// ACL user name.
    pub username: Option<String>,
    /// Password (never printed).
    pub password: Option<String>,
    /// Database number (standalone only).
    pub db: i64,
    /// `rediss://`: TLS (needs the `tls` feature).
    pub tls: bool,
    /// Cluster seed nodes as `host:port`; non-empty means Redis Cluster.
    pub cluster_nodes: Vec<String>,
    /// A namespace for every key (`REDIS_KEY_PREFIX`), applied by
    /// [`crate::store_from_env`] through `rampart::layers::Prefixed`.
    pub key_prefix: Option<String>,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// How long one command may take; a call never waits longer (plus a
    /// small scheduling margin), even while Redis is down or paused.
    pub command_timeout: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 6379,
            username: None,
            password: None,
            db: 0,
            tls: false,
            cluster_nodes: Vec::new(),
            key_prefix: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("db", &self.db)
            .field("tls", &self.tls)
            .field("cluster_nodes", &self.cluster_nodes)
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .finish()
    }
}

fn config_err(msg: impl Into<String>) -> Error {
    Error::config(msg.into()).with_operation("redis.config")
}

/// Decodes `%XX` escapes (passwords in URLs).
fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    config_err("a '%' escape in the Redis URL is not followed by two hex digits")
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| config_err("the Redis URL's credentials are not UTF-8"))
}

impl RedisConfig {
    /// Parses `redis://[user[:password]@]host[:port][/db]` or `rediss://...`
    /// (TLS). Errors never echo the password.
    pub fn from_url(url: &str) -> Result<Self> {
        let mut c = RedisConfig::default();
        let rest = if let Some(r) = url.strip_prefix("redis://") {
            r
        } else if let Some(r) = url.strip_prefix("rediss://") {
            c.tls = true;
            r
        } else {
            return Err(config_err(
                "a Redis URL must start with redis:// or rediss://",
            ));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let hostport = match authority.rfind('@') {
            Some(i) => {
                let creds = &authority[..i];
                let (user, pass) = match creds.find(':') {
                    Some(j) => (&creds[..j], Some(&creds[j + 1..])),
                    None => (creds, None),
                };
                if !user.is_empty() {
                    c.username = Some(percent_decode(user)?);
                }
                if let Some(p) = pass.filter(|p| !p.is_empty()) {
                    c.password = Some(percent_decode(p)?);
                }
                &authority[i + 1..]
            }
            None => authority,
        };
        let (host, port) = if let Some(stripped) = hostport.strip_prefix('[') {
            // [ipv6]:port
            let end = stripped
                .find(']')
                .ok_or_else(|| config_err("unterminated IPv6 address in the Redis URL"))?;
            let port = match &stripped[end + 1..] {
                "" => None,
                rest => Some(rest.strip_prefix(':').ok_or_else(|| {
                    config_err("unexpected text after the IPv6 address in the Redis URL")
                })?),
            };
            (&stripped[..end], port)
        } else {
            match hostport.rfind(':') {
                Some(i) => (&hostport[..i], Some(&hostport[i + 1..])),
                None => (hostport, None),
            }
        };
        // A bracket outside `[ipv6]` would not survive `url_for` (found by
        // the `redis_config_url` fuzz target).
        if host.contains(['[', ']']) {
            return Err(config_err(
                "a Redis host may not contain '[' or ']' (write an IPv6 address as [addr])",
            ));
        }
        if !host.is_empty() {
            c.host = host.to_string();
        }
        if let Some(p) = port {
            c.port = parse_port(p)?;
        }
        let path = path.split('?').next().unwrap_or("");
        if !path.is_empty() {
            c.db = parse_db(path)?;
        }
        c.validate()?;
        Ok(c)
    }

    /// Reads the environment:
    ///
    /// * `REDIS_ENABLED=false` (or `0`/`no`/`off`) → `Ok(None)`;
    /// * `REDIS_URL`, else `REDIS_HOST` (+ `REDIS_PORT`), else
    ///   `REDIS_CLUSTER_NODES` (comma-separated `host:port`) → a config; none
    ///   of them → `Ok(None)` (run on the in-process store);
    /// * `REDIS_PASSWORD`, `REDIS_USERNAME`, `REDIS_DB`, `REDIS_KEY_PREFIX`,
    ///   `REDIS_CONNECT_TIMEOUT` and `REDIS_COMMAND_TIMEOUT` (milliseconds, or
    ///   with a unit: `500ms`, `2s`) refine it.
    ///
    /// Invalid values are an [`rampart::ErrorKind::Config`] error naming the
    /// variable.
    pub fn from_env() -> Result<Option<Self>> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`RedisConfig::from_env`] over any variable source (tests, config files).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if let Some(enabled) = get("REDIS_ENABLED") {
            match enabled.to_ascii_lowercase().as_str() {
                "false" | "0" | "no" | "off" => return Ok(None),
                "true" | "1" | "yes" | "on" => {}
                _ => {
                    return Err(config_err(format!(
                        "REDIS_ENABLED must be true or false, not {enabled:?}"
                    )))
                }
            }
        }
        let mut c = if let Some(url) = get("REDIS_URL") {
            Self::from_url(&url).map_err(|e| config_err(format!("REDIS_URL: {}", e.message())))?
        } else if let Some(host) = get("REDIS_HOST") {
            RedisConfig {
                host,
                ..Default::default()
            }
        } else if let Some(nodes) = get("REDIS_CLUSTER_NODES") {
            RedisConfig {
                cluster_nodes: nodes
                    .split(',')
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty())
                    .collect(),
                ..Default::default()
            }
        } else {
            return Ok(None);
        };
        if let Some(p) = get("REDIS_PORT") {
            c.port =
                parse_port(&p).map_err(|e| config_err(format!("REDIS_PORT: {}", e.message())))?;
        }
        if let Some(p) = get("REDIS_PASSWORD") {
            c.password = Some(p);
        }
        if let Some(u) = get("REDIS_USERNAME") {
            c.username = Some(u);
        }
        if let Some(db) = get("REDIS_DB") {
            c.db = parse_db(&db).map_err(|e| config_err(format!("REDIS_DB: {}", e.message())))?;
        }
        if let Some(prefix) = get("REDIS_KEY_PREFIX") {
            c.key_prefix = Some(prefix);
        }
        if let Some(t) = get("REDIS_CONNECT_TIMEOUT") {
            c.connect_timeout = parse_duration_ms(&t)
                .map_err(|e| config_err(format!("REDIS_CONNECT_TIMEOUT: {}", e.message())))?;
        }
        if let Some(t) = get("REDIS_COMMAND_TIMEOUT") {
            c.command_timeout = parse_duration_ms(&t)
                .map_err(|e| config_err(format!("REDIS_COMMAND_TIMEOUT: {}", e.message())))?;
        }
        c.validate()?;
        Ok(Some(c))
    }

    /// Checks the fields for consistency.
    pub fn validate(&self) -> Result<()> {
        if self.host.is_empty() && self.cluster_nodes.is_empty() {
            return Err(config_err("no Redis host given"));
        }
        if self.port == 0 {
            return Err(config_err("the Redis port must be between 1 and 65535"));
        }
        if !(0..=15_999).contains(&self.db) {
            return Err(config_err(
                "the Redis database must be a small non-negative number",
            ));
        }
        if !self.cluster_nodes.is_empty() && self.db != 0 {
            return Err(config_err("Redis Cluster has only database 0"));
        }
        for node in &self.cluster_nodes {
            let port = node.rsplit_once(':').map(|(_, p)| p);
            if port.is_none_or(|p| parse_port(p).is_err()) {
                return Err(config_err(format!(
                    "cluster node {node:?} is not host:port"
                )));
            }
        }
        if self.command_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(config_err("Redis timeouts must be positive"));
        }
        if self.tls && !cfg!(feature = "tls") {
            return Err(config_err(
                "rediss:// needs rampart-redis built with the `tls` feature",
            ));
        }
        if let Some(prefix) = &self.key_prefix {
            rampart::validate_prefix(prefix)?;
        }
        Ok(())
    }

    /// The connection URL (with the password; never log it).
    pub(crate) fn url_for(&self, host: &str, port: u16) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        format!("{scheme}://{host}:{port}/{}", self.db)
    }
}

fn parse_port(p: &str) -> Result<u16> {
    match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(config_err(format!("{p:?} is not a port number (1-65535)"))),
    }
}

fn parse_db(p: &str) -> Result<i64> {
    p.parse::<i64>()
        .ok()
        .filter(|d| *d >= 0)
        .ok_or_else(|| config_err(format!("{p:?} is not a database number")))
}

/// `500`, `500ms` or `2s`.
fn parse_duration_ms(s: &str) -> Result<Duration> {
    let (num, unit) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1_000)
    } else {
        (s, 1)
    };
    match num.trim().parse::<u64>() {
        Ok(n) if n > 0 && n <= 86_400_000 => Ok(Duration::from_millis(n * unit)),
        _ => Err(config_err(format!(
            "{s:?} is not a duration (milliseconds, or with ms/s)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart::ErrorKind;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<Option<RedisConfig>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RedisConfig::from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn urls() {
        let c = RedisConfig::from_url("redis://localhost").unwrap();
        assert_eq!((c.host.as_str(), c.port, c.db), ("localhost", 6379, 0));
        let c = RedisConfig::from_url("redis://:p%40ss@10.0.0.1:7000/3").unwrap();
        assert_eq!(c.password.as_deref(), Some("p@ss"));
        assert_eq!(c.username, None);
        assert_eq!((c.port, c.db), (7000, 3));
        let c = RedisConfig::from_url("redis://[::1]:6390").unwrap();
        assert_eq!((c.host.as_str(), c.port), ("::1", 6390));
        for bad in [
            "http://x",
            "redis://h:0",
            "redis://h:99999",
            "redis://h/x",
            "redis://u:%zz@h",
            "redis://h]:1",
            "redis://[::1]x",
        ] {
            let e = RedisConfig::from_url(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
        }
        let e = RedisConfig::from_url("redis://u:topsecret@h:bad").unwrap_err();
        assert!(!e.to_string().contains("topsecret"));
    }

    #[test]
    fn environment() {
        assert_eq!(env(&[]).unwrap(), None);
        assert_eq!(
            env(&[("REDIS_ENABLED", "false"), ("REDIS_URL", "redis://h")]).unwrap(),
            None
        );
        let c = env(&[
            ("REDIS_HOST", "cache.internal"),
            ("REDIS_PORT", "6380"),
            ("REDIS_PASSWORD", "pw"),
            ("REDIS_DB", "4"),
            ("REDIS_KEY_PREFIX", "myapp"),
            ("REDIS_CONNECT_TIMEOUT", "1500"),
            ("REDIS_COMMAND_TIMEOUT", "2s"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.host, "cache.internal");
        assert_eq!((c.port, c.db), (6380, 4));
        assert_eq!(c.key_prefix.as_deref(), Some("myapp"));
        assert_eq!(c.connect_timeout, Duration::from_millis(1500));
        assert_eq!(c.command_timeout, Duration::from_secs(2));
        let c = env(&[("REDIS_CLUSTER_NODES", "127.0.0.1:7000, 127.0.0.1:7001")])
            .unwrap()
            .unwrap();
        assert_eq!(c.cluster_nodes.len(), 2);
        for bad in [
            &[("REDIS_HOST", "h"), ("REDIS_PORT", "x")][..],
            &[("REDIS_URL", "redis://h"), ("REDIS_DB", "-1")],
            &[("REDIS_URL", "redis://h"), ("REDIS_CONNECT_TIMEOUT", "0")],
            &[("REDIS_ENABLED", "maybe")],
            &[("REDIS_CLUSTER_NODES", "nohostport")],
        ] {
            let e = env(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad:?}");
        }
    }

    #[test]
    fn debug_hides_password() {
        let c = env(&[("REDIS_URL", "redis://u:hunter2@h:1/0")])
            .unwrap()
            .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("<redacted>"));
    }
}
