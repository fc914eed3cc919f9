//! The store on Redis Cluster: several relay processes share one cluster, so one relay
//! address can be served by many machines.
//!
//! - [`keys`]: key names (one hash slot per mailbox, per blob) and day-rounded expiry.
//! - `scripts`: the Lua scripts; every operation on a mailbox or blob is one of them.
//! - `ops`: the [`Store`](super::Store) implementation.
//! - `notify`: sharded pub/sub wake-ups for the mailboxes subscribed on this process,
//!   re-subscribed after failovers.
//! - `sweep`: the sweeper, walking every master.
//!
//! Durability: a write that [`Store`](super::Store) promises durable is followed, on the
//! same connection to the same master, by `WAIT 1`: it is acknowledged only once a replica
//! has it, and the cluster's nodes run with `appendfsync always` (docs/CLUSTER.md says
//! exactly what an acknowledgement then guarantees). Writes that may have happened before
//! a failure are retried with the same request, and every script is written so a retry
//! does not apply twice.

pub mod keys;
mod notify;
mod ops;
mod scripts;
mod sweep;

use std::sync::Mutex;
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Value};

pub use self::keys::KeyTtls;
use self::keys::Keys;
use super::{StoreError, StoreEvents};

/// The URL scheme of `--store`.
pub const SCHEME: &str = "redis-cluster://";

/// How long a durable write waits for a replica to confirm it before it counts as failed
/// (and is retried).
const WAIT_REPLICA_MS: u64 = 1_000;

/// How long an operation keeps retrying through a failover before it gives up and the
/// client gets an error. A master's replica takes over within the cluster's node
/// time-out plus an election (seconds).
const RETRY_DEADLINE: Duration = Duration::from_secs(20);

/// First pause between retries; it doubles up to [`RETRY_MAX_PAUSE`].
const RETRY_FIRST_PAUSE: Duration = Duration::from_millis(50);

/// Longest pause between retries.
const RETRY_MAX_PAUSE: Duration = Duration::from_secs(1);

/// Independent connections to each master. `WAIT` holds up the connection it is sent on
/// until a replica answers, so durable writes take turns on one connection; several let
/// that many wait at once.
const DATA_CONNECTIONS: usize = 4;

/// Time to connect to one node.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Time one command may take; above [`WAIT_REPLICA_MS`], so a `WAIT` finishes first.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the cluster is and which namespace this relay's keys are in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// Seed nodes, `HOST:PORT`.
    pub nodes: Vec<String>,
    /// Prefix of every key; empty unless several relays share the cluster.
    pub namespace: String,
}

impl RedisConfig {
    /// Parses `redis-cluster://HOST:PORT[,HOST:PORT…][/NAMESPACE]`.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let bad = |why: &str| StoreError::Engine(format!("bad --store address: {why}"));
        let rest = url.strip_prefix(SCHEME).ok_or_else(|| bad("it must start with redis-cluster://"))?;
        let (hosts, namespace) = rest.split_once('/').unwrap_or((rest, ""));
        if !keys::valid_namespace(namespace) {
            return Err(bad("the namespace may hold only letters, digits, '-', '_' and ':'"));
        }
        let mut nodes = Vec::new();
        for node in hosts.split(',').filter(|n| !n.is_empty()) {
            let (host, port) = node.rsplit_once(':').ok_or_else(|| bad("each node is HOST:PORT"))?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(bad("each node is HOST:PORT"));
            }
            nodes.push(node.to_string());
        }
        if nodes.is_empty() {
            return Err(bad("name at least one node"));
        }
        Ok(Self { nodes, namespace: namespace.to_string() })
    }
}

/// The [`Store`](super::Store) on Redis Cluster.
pub struct RedisStore {
    conns: Vec<ClusterConnection>,
    next_conn: std::sync::atomic::AtomicUsize,
    keys: Keys,
    ttls: KeyTtls,
    events: Mutex<Option<StoreEvents>>,
}

impl RedisStore {
    /// Connects to the cluster; keys live as long as `ttls` says.
    pub async fn connect(config: &RedisConfig, ttls: KeyTtls) -> Result<Self, StoreError> {
        let urls: Vec<String> = config.nodes.iter().map(|n| format!("redis://{n}")).collect();
        let mut conns = Vec::with_capacity(DATA_CONNECTIONS);
        for _ in 0..DATA_CONNECTIONS {
            let client = builder(&urls).build().map_err(engine)?;
            conns.push(client.get_async_connection().await.map_err(engine)?);
        }
        let keys = Keys::new(&config.namespace);
        let events = notify::start(&urls, keys.clone()).await?;
        Ok(Self { conns, next_conn: Default::default(), keys, ttls, events: Mutex::new(Some(events)) })
    }

    /// The next data connection, in turn.
    fn conn(&self) -> ClusterConnection {
        let i = self.next_conn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.conns[i % self.conns.len()].clone()
    }

    /// Runs a script on the master of `slot_key`'s slot. The request is built before
    /// the future is returned, so the future borrows none of the arguments.
    fn eval(
        &self,
        slot_key: &str,
        script: &str,
        keys: &[&str],
        args: &[&[u8]],
    ) -> impl Future<Output = Result<Value, StoreError>> + Send + use<> {
        self.command(slot_key, eval_cmd(script, keys, args))
    }

    /// Runs a script and then `WAIT 1` on the same connection: succeeds only once a
    /// replica has the write.
    fn eval_durable(
        &self,
        slot_key: &str,
        script: &str,
        keys: &[&str],
        args: &[&[u8]],
    ) -> impl Future<Output = Result<Value, StoreError>> + Send + use<> {
        self.durable(slot_key, eval_cmd(script, keys, args))
    }

    /// Runs `cmd` and then `WAIT 1` on the master of `slot_key`'s slot.
    fn durable(&self, slot_key: &str, cmd: Cmd) -> impl Future<Output = Result<Value, StoreError>> + Send + use<> {
        let mut pipe = redis::pipe();
        pipe.add_command(cmd);
        pipe.cmd("WAIT").arg(1).arg(WAIT_REPLICA_MS);
        let route = SingleNodeRoutingInfo::SpecificNode(Route::with_key(slot_key, SlotAddr::Master));
        let mut conn = self.conn();
        async move {
            let mut values = conn.route_pipeline(pipe, 0, 2, route).await.map_err(engine)?.into_iter();
            let (Some(result), Some(acked)) = (values.next(), values.next()) else {
                return Err(StoreError::Engine("redis: short pipeline reply".into()));
            };
            let result = server_error(result)?;
            match server_error(acked)? {
                Value::Int(n) if n >= 1 => Ok(result),
                _ => Err(StoreError::Engine("redis: no replica confirmed the write".into())),
            }
        }
    }

    /// Runs `cmd` on the master of `slot_key`'s slot.
    fn command(&self, slot_key: &str, cmd: Cmd) -> impl Future<Output = Result<Value, StoreError>> + Send + use<> {
        let mut conn = self.conn();
        let route = routing(slot_key);
        async move { server_error(conn.route_command(cmd, route).await.map_err(engine)?) }
    }
}

/// The cluster client's settings, for data and for pub/sub alike.
fn builder(urls: &[String]) -> ClusterClientBuilder {
    ClusterClient::builder(urls.to_vec())
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        // Requests are small and each waits for its answer: without this, Nagle's
        // algorithm and delayed acknowledgements add milliseconds to each one.
        .tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true))
}

fn routing(slot_key: &str) -> redis::cluster_routing::RoutingInfo {
    redis::cluster_routing::RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::with_key(
        slot_key,
        SlotAddr::Master,
    )))
}

fn eval_cmd(script: &str, keys: &[&str], args: &[&[u8]]) -> Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script).arg(keys.len()).arg(keys);
    for a in args {
        cmd.arg(*a);
    }
    cmd
}

/// A server's error reply as an error.
fn server_error(v: Value) -> Result<Value, StoreError> {
    match v {
        Value::ServerError(e) => Err(StoreError::Engine(format!("redis: {:?}", e.kind()))),
        v => Ok(v),
    }
}

/// A client error as a store error that names its kind only: a message could carry a
/// key, and keys carry ids.
fn engine(e: redis::RedisError) -> StoreError {
    StoreError::Engine(format!("redis: {:?}", e.kind()))
}

/// Runs `op` until it succeeds, fails for a reason a retry cannot fix, or
/// [`RETRY_DEADLINE`] passes. `op` is told whether an earlier attempt may have applied.
async fn retry<T, F, Fut>(mut op: F) -> Result<T, StoreError>
where
    F: FnMut(bool) -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let deadline = tokio::time::Instant::now() + RETRY_DEADLINE;
    let mut pause = RETRY_FIRST_PAUSE;
    let mut retrying = false;
    loop {
        match op(retrying).await {
            Err(StoreError::Engine(e)) if tokio::time::Instant::now() + pause < deadline => {
                tracing::debug!(error = %e, "redis operation retried");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RETRY_MAX_PAUSE);
                retrying = true;
            }
            other => return other,
        }
    }
}

/// Integer reply.
fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(*n),
        _ => None,
    }
}

/// Bulk string reply.
fn bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        _ => None,
    }
}

fn id_from(v: Option<Vec<u8>>) -> Result<[u8; sotto_proto::limits::ID_LEN], StoreError> {
    v.and_then(|b| b.try_into().ok()).ok_or(StoreError::Corrupt)
}

/// A decimal field.
fn number<T: std::str::FromStr>(v: Option<Vec<u8>>) -> Result<T, StoreError> {
    v.and_then(|b| String::from_utf8(b).ok()).and_then(|s| s.parse().ok()).ok_or(StoreError::Corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_parse_or_say_why_not() {
        let c = RedisConfig::parse("redis-cluster://127.0.0.1:7001,127.0.0.1:7002/relay-a").ok();
        assert_eq!(c.as_ref().map(|c| c.nodes.len()), Some(2));
        assert_eq!(c.map(|c| c.namespace), Some("relay-a".to_string()));
        assert!(RedisConfig::parse("redis://127.0.0.1:7001").is_err());
        assert!(RedisConfig::parse("redis-cluster://").is_err());
        assert!(RedisConfig::parse("redis-cluster://host").is_err());
        assert!(RedisConfig::parse("redis-cluster://h:1/a*").is_err());
    }
}
