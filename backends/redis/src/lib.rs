//! # rampart-redis
//!
//! [`RedisStore`]: rampart's [`Store`] on Redis 6+ and Redis Cluster, over
//! redis-rs. Every store operation is one command or one script call, so a
//! rate-limit decision or a lock release is **one round trip**.
//!
//! * Connects lazily: an application starts while Redis is down; calls fail
//!   fast with a temporary [`rampart::ErrorKind::Unavailable`] or
//!   [`rampart::ErrorKind::Timeout`] (or go to a `rampart::layers::Fallback` store)
//!   and the store recovers by itself when Redis is back (redis-rs'
//!   connection manager reconnects with exponential backoff and jitter).
//! * Every call is bounded by [`RedisConfig::command_timeout`].
//! * Scripts run with `EVALSHA`, falling back to `EVAL` after `NOSCRIPT`
//!   (a restarted server, `SCRIPT FLUSH`).
//! * Deletes use `UNLINK`; prefix scans use `SCAN` with escaped patterns,
//!   never `KEYS`.
//!
//! ```no_run
//! use rampart::{Key, Store};
//! use rampart_redis::{RedisConfig, RedisStore};
//! # async fn demo() -> rampart::Result<()> {
//! let store = RedisStore::new(RedisConfig::from_url("redis://127.0.0.1:6379")?)?;
//! store.set(&Key::new("greeting")?, "hello".into(), None).await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod config;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod scripts;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use rampart::layers::Prefixed;
use rampart::{
    check_ttl, escape_glob, validate_prefix, Arg, Capabilities, Cursor, Error, Key, KeyTtl,
    MemoryStore, Page, Result, Script, Store, StoreStats, Subscription, Swap, Timestamp, Value,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, IntoConnectionInfo};
use tokio::sync::OnceCell;

pub use config::{RedisConfig, DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT};

/// A live connection: standalone (multiplexed, auto-reconnecting) or Cluster.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

enum Client {
    Single(redis::Client),
    /// The Cluster, and a plain client to its first seed node for pub/sub
    /// (classic pub/sub messages reach every node of a Cluster).
    Cluster(Box<redis::cluster::ClusterClient>, redis::Client),
}

/// A [`Store`] on Redis or Redis Cluster.
///
/// Cheap to share behind an `Arc`; one multiplexed connection (per Cluster
/// node) carries every concurrent call, pipelined.
pub struct RedisStore {
    config: RedisConfig,
    client: Client,
    conn: OnceCell<Conn>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("config", &self.config)
            .field("connected", &self.conn.initialized())
            .finish()
    }
}

/// The `/health` figures of a Redis server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// Round-trip time of a `PING`.
    pub latency: Duration,
    /// `redis_version` from `INFO`.
    pub version: String,
    /// `used_memory` from `INFO`, in bytes.
    pub used_memory: u64,
    /// Keys in the database (`DBSIZE`; summed over Cluster masters).
    pub keys: u64,
}

impl RedisStore {
    /// A store for `config`. Does not connect: the first call does, so this
    /// succeeds while Redis is down. Invalid configuration is an
    /// [`rampart::ErrorKind::Config`] error.
    pub fn new(config: RedisConfig) -> Result<Self> {
        config.validate()?;
        #[cfg(feature = "tls")]
        if config.tls {
            // Several crates may race to install it; any installed provider will do.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = if config.cluster_nodes.is_empty() {
            let mut info = config
                .url_for(&config.host, config.port)
                .into_connection_info()
                .map_err(|e| map_err(e, "connect"))?;
            let settings = credentials(info.redis_settings().clone(), &config);
            info = info.set_redis_settings(settings);
            Client::Single(redis::Client::open(info).map_err(|e| map_err(e, "connect"))?)
        } else {
            let nodes: Vec<String> = config
                .cluster_nodes
                .iter()
                .map(|n| {
                    let (h, p) = n.rsplit_once(':').unwrap_or((n, "6379"));
                    config.url_for(h, p.parse().unwrap_or(6379))
                })
                .collect();
            let mut b = ClusterClientBuilder::new(nodes)
                .connection_timeout(config.connect_timeout)
                .response_timeout(config.command_timeout)
                .retries(2);
            if let Some(u) = &config.username {
                b = b.username(u);
            }
            if let Some(p) = &config.password {
                b = b.password(p);
            }
            let (h, p) = config.cluster_nodes[0]
                .rsplit_once(':')
                .unwrap_or((&config.cluster_nodes[0], "6379"));
            let mut info = config
                .url_for(h, p.parse().unwrap_or(6379))
                .into_connection_info()
                .map_err(|e| map_err(e, "connect"))?;
            let settings = credentials(info.redis_settings().clone(), &config);
            info = info.set_redis_settings(settings);
            let seed = redis::Client::open(info).map_err(|e| map_err(e, "connect"))?;
            Client::Cluster(
                Box::new(b.build().map_err(|e| map_err(e, "connect"))?),
                seed,
            )
        };
        Ok(Self {
            config,
            client,
            conn: OnceCell::new(),
        })
    }

    /// A store for a `redis://` or `rediss://` URL.
    pub fn from_url(url: &str) -> Result<Self> {
        Self::new(RedisConfig::from_url(url)?)
    }

    /// The configuration.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    async fn conn(&self) -> Result<Conn> {
        let connect = async {
            match &self.client {
                Client::Single(client) => {
                    let cfg = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(self.config.connect_timeout))
                        .set_response_timeout(Some(self.config.command_timeout))
                        .set_number_of_retries(2)
                        .set_min_delay(Duration::from_millis(20))
                        .set_max_delay(Duration::from_millis(500));
                    ConnectionManager::new_lazy_with_config(client.clone(), cfg)
                        .map(Conn::Single)
                        .map_err(|e| map_err(e, "connect"))
                }
                Client::Cluster(client, _) => {
                    match tokio::time::timeout(
                        self.config.connect_timeout,
                        client.get_async_connection(),
                    )
                    .await
                    {
                        Ok(Ok(c)) => Ok(Conn::Cluster(c)),
                        Ok(Err(e)) => Err(map_err(e, "connect")),
                        Err(_) => Err(Error::timeout("connecting to the Redis Cluster timed out")
                            .with_operation("connect")),
                    }
                }
            }
        };
        self.conn.get_or_try_init(|| connect).await.cloned()
    }

    /// Runs one command with the call timeout; errors are typed.
    async fn query(&self, op: &'static str, cmd: &Cmd) -> Result<redis::Value> {
        self.bounded(op, async {
            let mut conn = self.conn().await?;
            let reply = match &mut conn {
                Conn::Single(c) => cmd.query_async::<redis::Value>(c).await,
                Conn::Cluster(c) => cmd.query_async::<redis::Value>(c).await,
            };
            reply.map_err(|e| map_err(e, op))
        })
        .await
    }

    /// Runs one command on a given Cluster node (SCAN, INFO).
    async fn query_node(
        &self,
        op: &'static str,
        cmd: Cmd,
        node: Option<(&str, u16)>,
    ) -> Result<redis::Value> {
        self.bounded(op, async {
            match self.conn().await? {
                Conn::Single(mut c) => cmd.query_async::<redis::Value>(&mut c).await,
                Conn::Cluster(mut c) => {
                    let routing = match node {
                        Some((host, port)) => SingleNodeRoutingInfo::ByAddress {
                            host: host.to_string(),
                            port,
                        },
                        None => SingleNodeRoutingInfo::Random,
                    };
                    c.route_command(cmd, RoutingInfo::SingleNode(routing)).await
                }
            }
            .map_err(|e| map_err(e, op))
        })
        .await
    }

    async fn bounded<T>(
        &self,
        op: &'static str,
        fut: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.config.command_timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(Error::timeout(format!(
                "Redis did not answer within {:?}",
                self.config.command_timeout
            ))
            .with_operation(op)),
        }
    }

    async fn script(
        &self,
        op: &'static str,
        script: &Script,
        keys: &[&Key],
        args: &[Arg],
    ) -> Result<redis::Value> {
        let build = |verb: &str, head: &str| {
            let mut cmd = redis::cmd(verb);
            cmd.arg(head).arg(keys.len());
            for k in keys {
                cmd.arg(k.as_bytes());
            }
            for a in args {
                match a {
                    Arg::Int(i) => cmd.arg(*i),
                    Arg::Bytes(b) => cmd.arg(&b[..]),
                    Arg::Str(s) => cmd.arg(s.as_str()),
                };
            }
            cmd
        };
        match self.query(op, &build("EVALSHA", script.sha1())).await {
            // The server lost its script cache (restart, SCRIPT FLUSH, a
            // new Cluster node): EVAL runs the script and caches it again.
            Err(e) if e.message() == NOSCRIPT => {
                self.query(op, &build("EVAL", script.source())).await
            }
            other => other,
        }
    }

    /// Masters of the Cluster, sorted (a stable order for scan cursors).
    async fn masters(&self) -> Result<Vec<(String, u16)>> {
        let reply = self
            .query_node("scan", redis::cmd("CLUSTER").arg("NODES").to_owned(), None)
            .await?;
        let text = match reply {
            redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
            redis::Value::VerbatimString { text, .. } => text,
            redis::Value::SimpleString(s) => s,
            other => {
                return Err(Error::backend(format!(
                    "unexpected CLUSTER NODES reply: {other:?}"
                )))
            }
        };
        let mut masters: Vec<(String, u16)> = text
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let flags = fields.get(2)?;
                if !flags.contains("master") || flags.contains("fail") {
                    return None;
                }
                let addr = fields.get(1)?.split('@').next()?;
                let (host, port) = addr.rsplit_once(':')?;
                Some((host.to_string(), port.parse().ok()?))
            })
            .collect();
        masters.sort();
        Ok(masters)
    }

    /// Ping latency, server version, memory and key count, for `/health`.
    pub async fn health(&self) -> Result<Health> {
        let start = Instant::now();
        self.query("health", &redis::cmd("PING")).await?;
        let latency = start.elapsed();
        let stats = self.stats().await?;
        Ok(Health {
            latency,
            version: stats
                .server
                .unwrap_or_default()
                .trim_start_matches("redis ")
                .to_string(),
            used_memory: stats.memory_bytes.unwrap_or(0),
            keys: stats.keys.unwrap_or(0),
        })
    }
}

const NOSCRIPT: &str = "the script is not cached on the server (NOSCRIPT)";

fn credentials(
    mut redis: redis::RedisConnectionInfo,
    config: &RedisConfig,
) -> redis::RedisConnectionInfo {
    if let Some(u) = &config.username {
        redis = redis.set_username(u);
    }
    if let Some(p) = &config.password {
        redis = redis.set_password(p);
    }
    redis
}

/// Maps a redis-rs error to rampart's, keeping it as the source.
fn map_err(e: redis::RedisError, op: &'static str) -> Error {
    use redis::ServerErrorKind as S;
    let base = if e.is_timeout() {
        Error::timeout("Redis did not answer in time")
    } else if e.is_connection_refusal() || e.is_io_error() || e.is_connection_dropped() {
        Error::unavailable("Redis cannot be reached")
    } else {
        match e.kind() {
            redis::ErrorKind::Server(S::NoScript) => Error::backend(NOSCRIPT),
            redis::ErrorKind::Server(
                S::BusyLoading | S::TryAgain | S::ClusterDown | S::MasterDown | S::ReadOnly,
            )
            | redis::ErrorKind::ClusterConnectionNotFound => Error::unavailable(
                "Redis is not ready to serve (loading, failing over or read-only)",
            ),
            redis::ErrorKind::AuthenticationFailed | redis::ErrorKind::InvalidClientConfig => {
                Error::config("Redis refused the credentials or configuration")
            }
            redis::ErrorKind::Server(S::NoPerm) => {
                Error::config("the Redis ACL user lacks a permission")
            }
            _ if e.code().and_then(rampart::ErrorKind::from_code).is_some() => {
                // A Lua twin's own typed error: `RAMPART_<KIND> message`.
                let kind = e
                    .code()
                    .and_then(rampart::ErrorKind::from_code)
                    .unwrap_or(rampart::ErrorKind::Backend);
                Error::new(kind, e.detail().unwrap_or_default().to_string())
            }
            _ => {
                let detail = e.detail().unwrap_or_default();
                if detail.contains("not an integer") {
                    Error::corrupt("stored value is not a decimal integer")
                } else if detail.contains("overflow") {
                    Error::invalid_input("increment overflows an i64")
                } else {
                    Error::backend("Redis answered with an error")
                }
            }
        }
    };
    base.with_operation(op).with_source(e)
}

fn ms(ttl: Duration) -> u64 {
    // Redis keeps milliseconds: round up so a 1 µs TTL is not "no TTL".
    (ttl.as_micros().div_ceil(1000)).max(1) as u64
}

fn to_value(v: redis::Value) -> Result<Value> {
    Ok(match v {
        redis::Value::Nil => Value::Nil,
        redis::Value::Int(i) => Value::Int(i),
        redis::Value::BulkString(b) => Value::Data(Bytes::from(b)),
        redis::Value::SimpleString(s) => Value::Status(s),
        redis::Value::Okay => Value::Status("OK".into()),
        redis::Value::Boolean(b) => Value::Int(i64::from(b)),
        redis::Value::Double(d) => Value::Data(Bytes::from(d.to_string())),
        redis::Value::VerbatimString { text, .. } => Value::Data(Bytes::from(text)),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            Value::Array(items.into_iter().map(to_value).collect::<Result<_>>()?)
        }
        redis::Value::Map(pairs) => {
            let mut out = Vec::with_capacity(pairs.len() * 2);
            for (k, v) in pairs {
                out.push(to_value(k)?);
                out.push(to_value(v)?);
            }
            Value::Array(out)
        }
        redis::Value::Attribute { data, .. } => to_value(*data)?,
        redis::Value::ServerError(e) => {
            return Err(Error::backend(format!(
                "Redis script error: {}",
                e.details().unwrap_or("unknown")
            )))
        }
        other => return Err(Error::backend(format!("unexpected Redis reply: {other:?}"))),
    })
}

fn opt_bytes(v: redis::Value) -> Result<Option<Bytes>> {
    to_value(v)?.into_bytes()
}

fn int(v: redis::Value) -> Result<i64> {
    to_value(v)?.as_int()
}

fn key_err(e: Error, key: &Key) -> Error {
    e.with_key(key)
}

#[async_trait]
impl Store for RedisStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::REDIS
    }

    async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        let reply = self
            .query("get", redis::cmd("GET").arg(key.as_bytes()))
            .await;
        reply.and_then(opt_bytes).map_err(|e| key_err(e, key))
    }

    async fn set(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        check_ttl(ttl)?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(key.as_bytes()).arg(&value[..]);
        if let Some(t) = ttl {
            cmd.arg("PX").arg(ms(t));
        }
        self.query("set", &cmd)
            .await
            .map(drop)
            .map_err(|e| key_err(e, key))
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        let reply = self
            .query("delete", redis::cmd("UNLINK").arg(key.as_bytes()))
            .await;
        reply
            .and_then(int)
            .map(|n| n > 0)
            .map_err(|e| key_err(e, key))
    }

    async fn ttl(&self, key: &Key) -> Result<KeyTtl> {
        let reply = self
            .query("ttl", redis::cmd("PTTL").arg(key.as_bytes()))
            .await;
        Ok(match reply.and_then(int).map_err(|e| key_err(e, key))? {
            -1 => KeyTtl::Persistent,
            n if n > 0 => KeyTtl::Expires(Duration::from_millis(n as u64)),
            _ => KeyTtl::Missing,
        })
    }

    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<&[u8]>,
        new: Option<Bytes>,
        ttl: Option<Duration>,
    ) -> Result<Swap> {
        if new.is_some() {
            check_ttl(ttl)?;
        }
        let args = [
            Arg::Int(i64::from(expected.is_some())),
            Arg::Bytes(Bytes::copy_from_slice(expected.unwrap_or_default())),
            Arg::Int(i64::from(new.is_some())),
            Arg::Bytes(new.unwrap_or_default()),
            Arg::Int(ttl.map_or(0, |t| ms(t) as i64)),
        ];
        let reply = self
            .script("compare_and_swap", &scripts::CAS, &[key], &args)
            .await;
        let items = reply
            .and_then(to_value)
            .and_then(Value::into_array)
            .map_err(|e| key_err(e, key))?;
        let mut items = items.into_iter();
        match items.next().map(|v| v.as_int()).transpose()? {
            Some(1) => Ok(Swap::Swapped),
            Some(0) => Ok(Swap::Conflict(
                items.next().map(Value::into_bytes).transpose()?.flatten(),
            )),
            _ => Err(Error::backend("unexpected compare-and-swap reply").with_key(key)),
        }
    }

    async fn scan(&self, prefix: &str, cursor: &Cursor, count: usize) -> Result<Page> {
        validate_prefix(prefix)?;
        let pattern = format!("{}*", escape_glob(prefix));
        let count = count.clamp(1, 10_000);
        // Standalone cursors are Redis' own; Cluster cursors are
        // "<master index>:<that master's cursor>".
        let (node_index, node_cursor) = match cursor.as_raw().split_once(':') {
            _ if cursor.is_start() => (0usize, "0".to_string()),
            Some((n, c)) => (
                n.parse()
                    .map_err(|_| Error::invalid_input("malformed scan cursor"))?,
                c.to_string(),
            ),
            None => (0, cursor.as_raw().to_string()),
        };
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(&node_cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(count);
        let (masters, node) = match &self.client {
            Client::Single(_) => (Vec::new(), None),
            Client::Cluster(..) => {
                let masters = self.masters().await?;
                let node = masters.get(node_index).cloned().ok_or_else(|| {
                    Error::invalid_input("scan cursor names an unknown Cluster node")
                })?;
                (masters, Some(node))
            }
        };
        let reply = self
            .query_node("scan", cmd, node.as_ref().map(|(h, p)| (h.as_str(), *p)))
            .await?;
        let mut parts = to_value(reply)?.into_array()?.into_iter();
        let next_raw = parts
            .next()
            .and_then(|v| v.into_bytes().ok().flatten())
            .ok_or_else(|| Error::backend("unexpected SCAN reply"))?;
        let next_raw = String::from_utf8_lossy(&next_raw).into_owned();
        let keys = parts
            .next()
            .ok_or_else(|| Error::backend("unexpected SCAN reply"))?
            .into_array()?
            .into_iter()
            .filter_map(|v| v.into_bytes().ok().flatten())
            .filter_map(|b| std::str::from_utf8(&b).ok().and_then(|s| Key::new(s).ok()))
            .collect();
        let next = match (&self.client, next_raw.as_str()) {
            (Client::Single(_), "0") => None,
            (Client::Single(_), c) => Some(Cursor::from_raw(c)),
            (Client::Cluster(..), "0") if node_index + 1 >= masters.len() => None,
            (Client::Cluster(..), "0") => Some(Cursor::from_raw(format!("{}:0", node_index + 1))),
            (Client::Cluster(..), c) => Some(Cursor::from_raw(format!("{node_index}:{c}"))),
        };
        Ok(Page { keys, next })
    }

    async fn set_if_absent(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        check_ttl(ttl)?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(key.as_bytes()).arg(&value[..]).arg("NX");
        if let Some(t) = ttl {
            cmd.arg("PX").arg(ms(t));
        }
        let reply = self
            .query("set_if_absent", &cmd)
            .await
            .map_err(|e| key_err(e, key))?;
        Ok(!matches!(reply, redis::Value::Nil))
    }

    async fn delete_if_equal(&self, key: &Key, expected: &[u8]) -> Result<bool> {
        let args = [Arg::Bytes(Bytes::copy_from_slice(expected))];
        let reply = self
            .script("delete_if_equal", &scripts::DELETE_IF_EQUAL, &[key], &args)
            .await;
        reply
            .and_then(int)
            .map(|n| n == 1)
            .map_err(|e| key_err(e, key))
    }

    async fn expire_if_equal(
        &self,
        key: &Key,
        expected: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool> {
        check_ttl(ttl)?;
        let args = [
            Arg::Bytes(Bytes::copy_from_slice(expected)),
            Arg::Int(ttl.map_or(0, |t| ms(t) as i64)),
        ];
        let reply = self
            .script("expire_if_equal", &scripts::EXPIRE_IF_EQUAL, &[key], &args)
            .await;
        reply
            .and_then(int)
            .map(|n| n == 1)
            .map_err(|e| key_err(e, key))
    }

    async fn increment(
        &self,
        key: &Key,
        delta: i64,
        ttl_if_created: Option<Duration>,
    ) -> Result<i64> {
        check_ttl(ttl_if_created)?;
        let args = [
            Arg::Int(delta),
            Arg::Int(ttl_if_created.map_or(0, |t| ms(t) as i64)),
        ];
        let reply = self
            .script("increment", &scripts::INCREMENT, &[key], &args)
            .await;
        reply.and_then(int).map_err(|e| key_err(e, key))
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("MGET");
        for k in keys {
            cmd.arg(k.as_bytes());
        }
        let reply = self.query("get_many", &cmd).await?;
        let values = to_value(reply)?.into_array()?;
        if values.len() != keys.len() {
            return Err(Error::backend("MGET answered a different number of values"));
        }
        values.into_iter().map(Value::into_bytes).collect()
    }

    async fn delete_many(&self, keys: &[Key]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let mut cmd = redis::cmd("UNLINK");
        for k in keys {
            cmd.arg(k.as_bytes());
        }
        let n = int(self.query("delete_many", &cmd).await?)?;
        Ok(n.max(0) as u64)
    }

    async fn eval(&self, script: &Script, keys: &[&Key], args: &[Arg]) -> Result<Value> {
        let reply = self.script("eval", script, keys, args).await;
        let reply = reply.and_then(to_value);
        match keys.first() {
            Some(k) => reply.map_err(|e| key_err(e, k)),
            None => reply,
        }
    }

    async fn publish(&self, channel: &Key, message: Bytes) -> Result<()> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(channel.as_bytes()).arg(&message[..]);
        self.query("publish", &cmd)
            .await
            .map(drop)
            .map_err(|e| key_err(e, channel))
    }

    /// A dedicated connection per subscription; the stream ends if that
    /// connection drops (delivery is at most once, as the trait says).
    async fn subscribe(&self, channel: &Key) -> Result<Subscription> {
        use futures_util::StreamExt;
        let client = match &self.client {
            Client::Single(c) => c.clone(),
            Client::Cluster(_, c) => c.clone(),
        };
        let subscribe = async {
            let mut pubsub = client
                .get_async_pubsub()
                .await
                .map_err(|e| map_err(e, "subscribe"))?;
            pubsub
                .subscribe(channel.as_bytes())
                .await
                .map_err(|e| map_err(e, "subscribe"))?;
            Ok::<_, Error>(pubsub)
        };
        let pubsub = match tokio::time::timeout(self.config.connect_timeout, subscribe).await {
            Ok(r) => r.map_err(|e| key_err(e, channel))?,
            Err(_) => {
                return Err(Error::timeout("subscribing timed out")
                    .with_operation("subscribe")
                    .with_key(channel))
            }
        };
        Ok(Box::pin(pubsub.into_on_message().map(|msg| {
            Bytes::copy_from_slice(msg.get_payload_bytes())
        })))
    }

    async fn server_time(&self) -> Result<Timestamp> {
        let reply =
            to_value(self.query("server_time", &redis::cmd("TIME")).await?)?.into_array()?;
        match reply.as_slice() {
            [secs, micros] => {
                let (s, us) = (secs.as_int()?, micros.as_int()?);
                Ok(Timestamp::from_micros(
                    (s.max(0) as u64) * 1_000_000 + us.max(0) as u64,
                ))
            }
            _ => Err(Error::backend("unexpected TIME reply")),
        }
    }

    async fn stats(&self) -> Result<StoreStats> {
        let keys = int(self.query("stats", &redis::cmd("DBSIZE")).await?)?;
        let info = self
            .query_node(
                "stats",
                redis::cmd("INFO").arg("server").arg("memory").to_owned(),
                None,
            )
            .await?;
        let text = match to_value(info)?.into_bytes()? {
            Some(b) => String::from_utf8_lossy(&b).into_owned(),
            None => String::new(),
        };
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
                .map(|v| v.trim().to_string())
        };
        let mut stats = StoreStats::default();
        stats.keys = Some(keys.max(0) as u64);
        stats.memory_bytes = field("used_memory").and_then(|v| v.parse().ok());
        stats.server = field("redis_version").map(|v| format!("redis {v}"));
        Ok(stats)
    }
}

/// The store the environment asks for, as `Arc<dyn Store>`:
/// [`RedisStore`] when Redis is configured ([`RedisConfig::from_env`]),
/// under `REDIS_KEY_PREFIX` if set; otherwise (no Redis configured, or
/// `REDIS_ENABLED=false`) the in-process [`MemoryStore`], so the same code
/// runs with or without Redis.
pub fn store_from_env() -> Result<Arc<dyn Store>> {
    match RedisConfig::from_env()? {
        None => Ok(Arc::new(MemoryStore::new())),
        Some(config) => {
            let prefix = config.key_prefix.clone();
            let store = RedisStore::new(config)?;
            Ok(match prefix {
                Some(p) => Arc::new(Prefixed::new(store, p)?),
                None => Arc::new(store),
            })
        }
    }
}
