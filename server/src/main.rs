//! `sotto-relay`: the command line around [`sotto_server::run`].
#![forbid(unsafe_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Parser;
use sotto_proto::{Host, RelayAddress};
use sotto_server::store::redis::{KeyTtls, RedisConfig};
use sotto_server::store::{MemoryKv, MemoryStore, RedisStore, SledKv, SledStore, Store};
use sotto_server::tls::Identity;
use sotto_server::{Limits, RelayConfig};

/// jemalloc, with its background purging thread, hands memory freed by closed connections
/// back to the system within seconds. glibc's malloc kept ~140 MiB of a 200 MiB peak after
/// 10,000 connections had come and gone (the live heap was back at 0.3 MiB: measured with
/// heaptrack, see docs/ROBUSTNESS.md), so a burst of abandoned connections would leave a
/// relay permanently fat.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The sled database's directory inside the data directory.
const DB_DIR: &str = "db";

/// The directory in `--data` holding one file per blob.
const BLOB_DIR: &str = "blobs";

/// Forwards sealed, fixed-size cells between anonymous mailboxes.
#[derive(Parser)]
#[command(name = "sotto-relay", version)]
struct Args {
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:7443")]
    listen: SocketAddr,
    /// Host name or IP address clients should use (printed in the relay address).
    #[arg(long)]
    advertise: Option<String>,
    /// Directory for the relay's key, certificate and database.
    #[arg(long, required_unless_present = "ephemeral", conflicts_with = "ephemeral")]
    data: Option<PathBuf>,
    /// Keep everything in memory; write no file at all.
    #[arg(long)]
    ephemeral: bool,
    /// Keep mailboxes, queues and blobs in a Redis Cluster shared by several relay
    /// processes: `redis-cluster://HOST:PORT[,HOST:PORT...][/NAMESPACE]`. The data
    /// directory then holds only the key and certificate (the same on every process).
    #[arg(long, conflicts_with = "ephemeral")]
    store: Option<String>,
    /// TOML file overriding limits (see docs/PROTOCOL.md for the keys).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Log level for the relay's own events (dependencies stay at warn).
    #[arg(long, default_value = "info")]
    log_level: String,
}

fn main() -> Result<()> {
    let args = Args::parse();
    use std::io::IsTerminal as _;
    tracing_subscriber::fmt()
        .with_env_filter(sotto_server::log::filter(&args.log_level))
        .with_ansi(std::io::stderr().is_terminal())
        // No timestamps: a timed line per connection would be the connection log the
        // relay must not keep.
        .without_time()
        .with_writer(std::io::stderr)
        .init();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(start(args))
}

async fn start(args: Args) -> Result<()> {
    let limits = match &args.config {
        Some(path) => Limits::from_file(path)?,
        None => Limits::default(),
    };
    let host = advertised_host(&args)?;
    let host_name = host.to_connect_string();
    let identity = match &args.data {
        Some(dir) if !args.ephemeral => Identity::load_or_create(dir, &host_name)?,
        _ => Identity::generate(&host_name)?,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let port = listener.local_addr()?.port();
    let address = RelayAddress { host, port, pin: Some(identity.pin()) };
    let mut config = RelayConfig::new(identity);
    config.limits = limits;

    // Connected before the address is printed: a process that announces itself serves.
    let redis = match &args.store {
        Some(url) => Some(
            RedisStore::connect(&RedisConfig::parse(url)?, KeyTtls::from_limits(&config.limits))
                .await
                .context("cannot reach the Redis Cluster given with --store")?,
        ),
        None => None,
    };

    // The address is the only line on stdout, so scripts can read it.
    let mut out = std::io::stdout().lock();
    writeln!(out, "{address}")?;
    out.flush()?;
    drop(out);

    if let Some(store) = redis {
        return serve(listener, config, Arc::new(store)).await;
    }
    match &args.data {
        Some(dir) if !args.ephemeral => {
            let kv = SledKv::open(&dir.join(DB_DIR))?;
            let store = Arc::new(SledStore::with_blob_files(kv, &dir.join(BLOB_DIR))?);
            serve(listener, config, store).await
        }
        _ => serve(listener, config, Arc::new(MemoryStore::new(MemoryKv::new()))).await,
    }
}

async fn serve<S: Store>(listener: tokio::net::TcpListener, config: RelayConfig, store: Arc<S>) -> Result<()> {
    sotto_server::run(listener, config, store, shutdown_signal()).await?;
    Ok(())
}

fn advertised_host(args: &Args) -> Result<Host> {
    if let Some(h) = &args.advertise {
        let probe: RelayAddress = format!("sotto://{h}:1")
            .parse()
            .with_context(|| format!("--advertise {h} is not a host name or IP address"))?;
        return Ok(probe.host);
    }
    let ip = args.listen.ip();
    if ip.is_unspecified() {
        bail!("--listen {} is every interface: say which host clients should use with --advertise HOST", args.listen);
    }
    Ok(match ip {
        std::net::IpAddr::V4(v4) => Host::Ipv4(v4),
        std::net::IpAddr::V6(v6) => Host::Ipv6(v6),
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
