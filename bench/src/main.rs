//! `sotto-bench`: measures the relay against the fastest things that do the same work on
//! this machine, in one run.
//!
//! - `relay`: N sender/receiver pairs over real TLS and the real protocol, each sending
//!   M cells; throughput, end-to-end latency percentiles, relay CPU and peak memory; the
//!   same load through a bare rustls TLS forwarder (the ceiling) and through mosquitto
//!   (QoS 1, TLS, persistence on); then the relay at half its peak rate.
//! - `connections`: K idle subscribed connections; the relay's RSS per connection.
//!
//! The machine is shared and noisy, so systems take turns, each several times, and the
//! summary reports medians and ratios measured in the same invocation.
#![forbid(unsafe_code)]

mod backend;
mod connections;
mod echo;
mod load;
mod mosquitto;
mod procfs;
mod relay_load;
mod relay_mode;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use sotto_proto::RelayAddress;

use crate::backend::{CLIENT_THREAD, SERVER_THREAD, StoreKind};

/// Threads of each runtime: the machine's two cores, once for the servers and once for the
/// load generator (they compete for the cores, as they would for any system measured).
const WORKER_THREADS: usize = 2;

#[derive(Parser)]
#[command(name = "sotto-bench", version, about = "Load generator for the Sotto relay, with baselines")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Throughput and latency of the relay, a bare TLS echo and mosquitto.
    Relay(RelayArgs),
    /// The relay's resident memory per idle subscribed connection.
    Connections(ConnectionsArgs),
}

#[derive(clap::Args)]
struct RelayArgs {
    /// A small run that finishes in under a minute.
    #[arg(long)]
    quick: bool,
    /// Sender/receiver pairs (default 32; 8 with --quick).
    #[arg(long)]
    pairs: Option<usize>,
    /// Messages per sender (default 2,000; 500 with --quick).
    #[arg(long)]
    messages: Option<usize>,
    /// Unanswered messages a sender may have in flight.
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Times each system is measured; the summary takes medians (default 3; 1 with --quick).
    #[arg(long)]
    runs: Option<usize>,
    /// The relay's store: sled (durable, in a temporary directory) or memory.
    #[arg(long, default_value = "sled")]
    store: StoreKind,
    /// Run the relay as a `sotto-relay` child process instead of in this process.
    #[arg(long)]
    relay_process: bool,
    /// The `sotto-relay` binary for --relay-process (default: beside this one).
    #[arg(long)]
    relay_binary: Option<PathBuf>,
    /// Measure a relay that is already running (`sotto://HOST:PORT#PIN`).
    #[arg(long)]
    target: Option<RelayAddress>,
    /// Process id of the --target relay, to read its CPU time and memory.
    #[arg(long, requires = "target")]
    target_pid: Option<u32>,
    /// The mosquitto binary.
    #[arg(long, default_value = mosquitto::DEFAULT_BINARY)]
    mosquitto: PathBuf,
    /// Skip the mosquitto baseline.
    #[arg(long)]
    no_mosquitto: bool,
    /// Directory for the relay's temporary data (default: the system's temporary directory).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ConnectionsArgs {
    /// Idle subscribed connections to open.
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// The relay's store: sled or memory.
    #[arg(long, default_value = "sled")]
    store: StoreKind,
    /// The `sotto-relay` binary (default: beside this one).
    #[arg(long)]
    relay_binary: Option<PathBuf>,
    /// Directory for the relay's temporary data.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

pub(crate) fn runtime(name: &str) -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .thread_name(name)
        .enable_all()
        .build()?)
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    load::epoch();
    let client = runtime(CLIENT_THREAD)?;
    match cli.mode {
        Mode::Relay(a) => {
            let server = runtime(SERVER_THREAD)?;
            let (pairs, messages, runs) = if a.quick { (8, 500, 1) } else { (32, 2_000, 3) };
            let opts = relay_mode::Options {
                load: load::Load {
                    pairs: a.pairs.unwrap_or(pairs).max(1),
                    messages: a.messages.unwrap_or(messages).max(1),
                    window: a.window.max(1),
                    rate: None,
                },
                runs: a.runs.unwrap_or(runs).max(1),
                store: a.store,
                relay_process: a.relay_process,
                relay_binary: a.relay_binary.unwrap_or_else(backend::sibling_relay_binary),
                target: a.target,
                target_pid: a.target_pid,
                mosquitto: (!a.no_mosquitto).then_some(a.mosquitto),
                data_dir: a.data_dir,
            };
            let r = relay_mode::run(&opts, &client, server.handle());
            server.shutdown_background();
            r
        }
        Mode::Connections(a) => connections::run(
            &connections::Options {
                count: a.count.max(1),
                concurrency: a.concurrency,
                store: a.store,
                relay_binary: a.relay_binary.unwrap_or_else(backend::sibling_relay_binary),
                data_dir: a.data_dir,
            },
            &client,
        ),
    }
}
