//! `sotto-bench relay`: the relay, the bare TLS echo and mosquitto under one load, in
//! turns, several times; then the relay again at half its peak rate for latency.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use sotto_proto::RelayAddress;
use sotto_server::tls::Identity;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::backend::{self, Relay, StoreKind};
use crate::load::{Load, RunResult, median};
use crate::mosquitto::Mosquitto;
use crate::procfs;
use crate::{echo, relay_load};
use sotto_client::relay::tls::{ALPN_HTTP1, pinned_config as pinned_client};

/// Largest single run; a run past it has stalled.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);
/// Messages per sender of the warm-up run that precedes measurement (fills caches, opens
/// sled's files, lets the allocators grow).
const WARMUP_MESSAGES: usize = 200;

/// What `relay` mode was asked.
pub struct Options {
    pub load: Load,
    pub runs: usize,
    pub store: StoreKind,
    pub relay_process: bool,
    pub relay_binary: PathBuf,
    pub target: Option<RelayAddress>,
    pub target_pid: Option<u32>,
    pub mosquitto: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
}

/// The systems measured, in the order they take turns.
#[derive(Clone, Copy, PartialEq, Eq)]
enum System {
    Relay,
    Echo,
    Mosquitto,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            Self::Relay => "relay",
            Self::Echo => "echo",
            Self::Mosquitto => "mosquitto",
        }
    }
}

/// Everything under test, started.
struct Systems {
    relay: Relay,
    relay_tls: relay_load::Target,
    echo: echo::Target,
    mosquitto: Option<Mosquitto>,
}

/// Runs relay mode on `client` (the load generator's runtime), with servers started in
/// this process on `server`.
pub fn run(opts: &Options, client: &tokio::runtime::Runtime, server: &tokio::runtime::Handle) -> Result<()> {
    let systems = start(opts, server)?;
    println!(
        "# relay: {} | pairs={} messages={} window={} cell={} bytes runs={}",
        describe(opts),
        opts.load.pairs,
        opts.load.messages,
        opts.load.window,
        sotto_proto::limits::CELL_SIZE,
        opts.runs
    );
    let mut order = vec![System::Relay, System::Echo];
    if systems.mosquitto.is_some() {
        order.push(System::Mosquitto);
    }
    let warm = Load { messages: WARMUP_MESSAGES.min(opts.load.messages), ..opts.load };
    for &s in &order {
        client.block_on(measure(&systems, s, warm, 0)).with_context(|| format!("{} warm-up", s.name()))?;
    }
    let mut results: Vec<(System, RunResult)> = Vec::new();
    for run in 1..=opts.runs {
        for &s in &order {
            let r = client.block_on(measure(&systems, s, opts.load, run as u32))?;
            print_run(run, s.name(), &r);
            results.push((s, r));
        }
    }
    let med = |s: System, f: fn(&RunResult) -> f64| {
        median(&results.iter().filter(|(x, _)| *x == s).map(|(_, r)| f(r)).collect::<Vec<_>>())
    };
    let relay_peak = med(System::Relay, |r| r.msgs_per_s);
    let half = Load { rate: Some(relay_peak / 2.0), ..opts.load };
    let h = client.block_on(measure(&systems, System::Relay, half, opts.runs as u32 + 1))?;
    print_run(0, "relay_at_half_peak", &h);
    // The same offered rate through the bare TLS forwarder: the latency floor of TLS, the
    // load generator and this machine's scheduler at that rate.
    let he = client.block_on(measure(&systems, System::Echo, half, opts.runs as u32 + 1))?;
    print_run(0, "echo_at_relay_half_peak", &he);

    let echo_rate = med(System::Echo, |r| r.msgs_per_s);
    let mqtt_rate = med(System::Mosquitto, |r| r.msgs_per_s);
    for s in &order {
        let n = s.name();
        println!("{n}_p50_us={:.0}", med(*s, |r| f64::from(r.p50_us)));
        println!("{n}_p99_us={:.0}", med(*s, |r| f64::from(r.p99_us)));
        println!("{n}_p999_us={:.0}", med(*s, |r| f64::from(r.p999_us)));
        println!("{n}_cpu_us_per_msg={:.1}", med(*s, RunResult::cpu_us_per_msg));
        println!("{n}_client_cpu_us_per_msg={:.1}", med(*s, RunResult::client_cpu_us_per_msg));
        println!("{n}_cpu_cores={:.2}", med(*s, |r| r.server_cpu_s / r.elapsed.as_secs_f64().max(1e-9)));
        let rss = med(*s, |r| r.server_peak_rss_kib.map_or(f64::NAN, |k| k as f64));
        if rss > 0.0 {
            println!("{n}_peak_rss_kib={rss:.0}");
        }
    }
    println!("relay_half_peak_offered_msgs_per_s={:.0}", relay_peak / 2.0);
    println!("relay_half_peak_p50_us={}", h.p50_us);
    println!("relay_half_peak_p99_us={}", h.p99_us);
    println!("relay_half_peak_p999_us={}", h.p999_us);
    println!("echo_at_relay_half_peak_p99_us={}", he.p99_us);
    println!("relay_msgs_per_s={relay_peak:.0}");
    println!("echo_msgs_per_s={echo_rate:.0}");
    if systems.mosquitto.is_some() {
        println!("mosquitto_msgs_per_s={mqtt_rate:.0}");
    } else {
        println!("mosquitto_msgs_per_s=skipped");
    }
    println!("ratio_vs_echo={:.3}", relay_peak / echo_rate);
    if systems.mosquitto.is_some() {
        println!("ratio_vs_mosquitto={:.3}", relay_peak / mqtt_rate);
    } else {
        println!("ratio_vs_mosquitto=skipped");
    }
    Ok(())
}

fn describe(opts: &Options) -> String {
    match (&opts.target, opts.relay_process) {
        (Some(a), _) => format!("target {a}"),
        (None, true) => format!("sotto-relay process, store={}", opts.store),
        (None, false) => format!("in-process, store={}", opts.store),
    }
}

fn start(opts: &Options, server: &tokio::runtime::Handle) -> Result<Systems> {
    let relay = match (&opts.target, opts.relay_process) {
        (Some(a), _) => Relay::external(a, opts.target_pid)?,
        (None, true) => {
            Relay::process(&opts.relay_binary, &opts.store, &backend::bench_limits_toml(0), opts.data_dir.as_deref())?
        }
        (None, false) => Relay::in_process(server, &opts.store, backend::bench_limits(0), opts.data_dir.as_deref())?,
    };
    let relay_tls = relay_load::Target {
        addr: relay.addr,
        tls: TlsConnector::from(pinned_client(relay.pin, &[ALPN_HTTP1])?),
        read_buffer: sotto_proto::limits::CELL_SIZE * 2,
    };
    let identity = Identity::generate("127.0.0.1")?;
    let acceptor = TlsAcceptor::from(identity.tls_config()?);
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let echo_addr = listener.local_addr()?;
    {
        let _g = server.enter();
        let l = tokio::net::TcpListener::from_std(listener)?;
        server.spawn(echo::serve(l, acceptor));
    }
    let echo = echo::Target { addr: echo_addr, tls: TlsConnector::from(pinned_client(identity.pin(), &[ALPN_HTTP1])?) };
    let mosquitto = match &opts.mosquitto {
        Some(bin) => Some(Mosquitto::start(bin, opts.load.window)?),
        None => None,
    };
    Ok(Systems { relay, relay_tls, echo, mosquitto })
}

/// One run of `load` on `system`, with that system's CPU time and peak memory.
async fn measure(systems: &Systems, system: System, load: Load, run: u32) -> Result<RunResult> {
    let pid = match system {
        System::Relay => systems.relay.pid(),
        System::Echo => None,
        System::Mosquitto => systems.mosquitto.as_ref().map(Mosquitto::pid),
    };
    let cpu = || match (system, pid) {
        (_, Some(p)) => procfs::process_cpu_s(p).ok(),
        (System::Relay, None) => systems.relay.cpu_s(),
        _ => backend::server_threads_cpu_s(),
    };
    let peak_pid = pid.unwrap_or_else(std::process::id);
    procfs::reset_peak_rss(peak_pid);
    let before = cpu();
    let client_before = backend::client_threads_cpu_s();
    let first_pair = run.wrapping_mul(1 << 16);
    let fut = async {
        match system {
            System::Relay => relay_load::run(&systems.relay_tls, load).await,
            System::Echo => echo::run(&systems.echo, load, first_pair).await,
            System::Mosquitto => match &systems.mosquitto {
                Some(m) => m.run(load, run).await,
                None => anyhow::bail!("mosquitto is not running"),
            },
        }
    };
    let mut r = tokio::time::timeout(RUN_TIMEOUT, fut)
        .await
        .with_context(|| format!("{} did not finish within {RUN_TIMEOUT:?}", system.name()))??;
    if let (Some(b), Some(a)) = (before, cpu()) {
        r.server_cpu_s = a - b;
    }
    if let (Some(b), Some(a)) = (client_before, backend::client_threads_cpu_s()) {
        r.client_cpu_s = a - b;
    }
    r.server_peak_rss_kib = procfs::status_kib(peak_pid, "VmHWM").ok();
    Ok(r)
}

fn print_run(run: usize, name: &str, r: &RunResult) {
    println!(
        "run={run} system={name} delivered={} elapsed_s={:.3} msgs_per_s={:.0} p50_us={} p99_us={} p999_us={} \
         cpu_s={:.2} cpu_us_per_msg={:.1} client_cpu_us_per_msg={:.1} peak_rss_kib={}",
        r.delivered,
        r.elapsed.as_secs_f64(),
        r.msgs_per_s,
        r.p50_us,
        r.p99_us,
        r.p999_us,
        r.server_cpu_s,
        r.cpu_us_per_msg(),
        r.client_cpu_us_per_msg(),
        r.server_peak_rss_kib.map_or("-".to_string(), |k| k.to_string())
    );
}

/// Shared so `connections` mode can reuse the relay client without a second TLS setup.
pub fn relay_target(relay: &Relay, read_buffer: usize) -> Result<relay_load::Target> {
    Ok(relay_load::Target {
        addr: relay.addr,
        tls: TlsConnector::from(Arc::clone(&pinned_client(relay.pin, &[ALPN_HTTP1])?)),
        read_buffer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The drivers work end to end against a real relay (memory store) and the real
    /// echo forwarder: every message is delivered and measured.
    #[test]
    fn relay_and_echo_deliver_every_message() -> Result<()> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let server = crate::runtime(backend::SERVER_THREAD)?;
        let client = crate::runtime(backend::CLIENT_THREAD)?;
        let opts = Options {
            load: Load { pairs: 2, messages: 20, window: 4, rate: None },
            runs: 1,
            store: StoreKind::Memory,
            relay_process: false,
            relay_binary: PathBuf::new(),
            target: None,
            target_pid: None,
            mosquitto: None,
            data_dir: None,
        };
        let systems = start(&opts, server.handle())?;
        for s in [System::Relay, System::Echo] {
            let r = client.block_on(measure(&systems, s, opts.load, 1))?;
            assert_eq!(r.delivered, 40, "{}", s.name());
            assert!(r.msgs_per_s > 0.0 && r.p50_us > 0 && r.p50_us <= r.p999_us);
        }
        // At a rate, the run takes at least as long as the rate says: 40 messages at 400/s.
        let paced = Load { rate: Some(400.0), ..opts.load };
        let r = client.block_on(measure(&systems, System::Relay, paced, 2))?;
        assert_eq!(r.delivered, 40);
        assert!(r.elapsed >= Duration::from_millis(90), "{:?}", r.elapsed);
        drop(systems);
        server.shutdown_background();
        Ok(())
    }
}
