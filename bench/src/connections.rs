//! `sotto-bench connections`: how much resident memory the relay spends on each idle,
//! subscribed connection.
//!
//! The relay runs as its own `sotto-relay` process, so its RSS is its own. The bench
//! reads its VmRSS, opens K connections (each: TLS, WebSocket, create a mailbox,
//! subscribe), spreads them over several 127.0.0.x source addresses (one address has
//! only ~28,000 ephemeral ports), waits for the relay to settle, reads VmRSS again and
//! checks that the connections are still served.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::sync::{Mutex, Semaphore};

use crate::backend::{self, Relay, StoreKind};
use crate::procfs;
use crate::relay_load::{self, Link};

/// Connections opened from one 127.0.0.x source address: below the ~28,000 ephemeral
/// ports Linux uses by default, with room for TIME_WAIT leftovers.
const PER_SOURCE: usize = 20_000;
/// File descriptors beyond the connections: the runtime, the relay's files, slack.
const FD_SLACK: u64 = 256;
/// Read buffer of an idle client's WebSocket (the bench's memory, not the relay's).
const IDLE_READ_BUFFER: usize = 4_096;
/// Time the relay gets to settle (freed buffers returned, allocator quiet) before RSS is read.
const SETTLE: Duration = Duration::from_secs(3);
/// Connections checked with a Ping afterwards, to show the relay still serves them.
const PROBES: usize = 100;

/// What `connections` mode was asked.
pub struct Options {
    pub count: usize,
    pub concurrency: usize,
    pub store: StoreKind,
    pub relay_binary: std::path::PathBuf,
    pub data_dir: Option<std::path::PathBuf>,
}

/// Raises this process's open-file limit to `want` (the relay child inherits it),
/// raising the hard limit too where allowed (root); returns the soft limit now in force.
pub fn raise_nofile(want: u64) -> u64 {
    let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap_or((0, 0));
    if soft >= want {
        return soft;
    }
    if hard < want && rlimit::Resource::NOFILE.set(want, want).is_ok() {
        return want;
    }
    let target = want.min(hard);
    if rlimit::Resource::NOFILE.set(target, hard).is_ok() { target } else { soft }
}

/// The i-th source address: 127.0.0.1, 127.0.0.2, ...
fn source(i: usize) -> IpAddr {
    let n = u8::try_from(1 + i / PER_SOURCE).unwrap_or(u8::MAX);
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

pub fn run(opts: &Options, client: &tokio::runtime::Runtime) -> Result<()> {
    // The bench and the relay are separate processes: each needs one descriptor per
    // connection, under its own copy of this limit.
    let need = opts.count as u64 + FD_SLACK;
    let limit = raise_nofile(need);
    if limit < need {
        bail!(
            "the open-file limit is {limit} and cannot be raised here (no CAP_SYS_RESOURCE); \
             {need} are needed: raise the hard limit (`ulimit -Hn`) or use --count {}",
            limit.saturating_sub(FD_SLACK)
        );
    }
    let relay = Relay::process(
        &opts.relay_binary,
        &opts.store,
        &backend::bench_limits_toml(opts.count + FD_SLACK as usize),
        opts.data_dir.as_deref(),
    )?;
    let pid = relay.pid().context("the relay has no process id")?;
    let target = crate::relay_mode::relay_target(&relay, IDLE_READ_BUFFER)?;
    // A first connection warms the relay (TLS tables, runtime threads) so the baseline
    // holds everything but the per-connection cost.
    let warm = client.block_on(open(&target, None))?;
    std::thread::sleep(SETTLE);
    let before = procfs::status_kib(pid, "VmRSS")?;
    println!("# connections: store={} count={} concurrency={}", opts.store, opts.count, opts.concurrency);
    let start = Instant::now();
    let links = client.block_on(open_all(&target, opts.count, opts.concurrency))?;
    let open_s = start.elapsed().as_secs_f64();
    std::thread::sleep(SETTLE);
    let after = procfs::status_kib(pid, "VmRSS")?;
    let hwm = procfs::status_kib(pid, "VmHWM")?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
    let alive = client.block_on(probe(&links))?;
    let per = (after.saturating_sub(before) as f64) * 1024.0 / opts.count as f64;
    println!("connections={}", links.lock_owned_len(client));
    println!("open_s={open_s:.1}");
    println!("relay_fds={fds}");
    println!("relay_rss_before_kib={before}");
    println!("relay_rss_after_kib={after}");
    println!("relay_peak_rss_kib={hwm}");
    println!("probes_answered={alive}/{}", PROBES.min(opts.count));
    println!("relay_rss_per_conn_bytes={per:.0}");
    println!("relay_rss_per_conn_kib={:.2}", per / 1024.0);
    drop(warm);
    Ok(())
}

type Links = Arc<Mutex<Vec<Link>>>;

trait LenExt {
    fn lock_owned_len(&self, rt: &tokio::runtime::Runtime) -> usize;
}

impl LenExt for Links {
    fn lock_owned_len(&self, rt: &tokio::runtime::Runtime) -> usize {
        rt.block_on(async { self.lock().await.len() })
    }
}

/// One idle subscribed connection.
async fn open(target: &relay_load::Target, from: Option<IpAddr>) -> Result<Link> {
    let mut link = relay_load::connect(target, from).await?;
    let mb = relay_load::create_mailbox(&mut link, None).await?;
    relay_load::subscribe(&mut link, &mb).await?;
    Ok(link)
}

async fn open_all(target: &relay_load::Target, count: usize, concurrency: usize) -> Result<Links> {
    let links: Links = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let slots = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let permit = slots.clone().acquire_owned().await?;
        let target = target.clone();
        let links = links.clone();
        tasks.spawn(async move {
            let link = open(&target, Some(source(i))).await;
            drop(permit);
            links.lock().await.push(link?);
            anyhow::Ok(())
        });
        // Reap finished tasks as we go, so a failure stops the run early.
        while let Some(done) = tasks.try_join_next() {
            done??;
        }
        if (i + 1) % 10_000 == 0 {
            eprintln!("# {} connections opened", i + 1);
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(links)
}

/// Pings a sample of the connections; returns how many answered.
async fn probe(links: &Links) -> Result<usize> {
    let mut all = links.lock().await;
    let n = all.len();
    let step = (n / PROBES).max(1);
    let mut answered = 0;
    for link in all.iter_mut().step_by(step).take(PROBES) {
        let r = tokio::time::timeout(Duration::from_secs(10), link.call(None, sotto_proto::Request::Ping)).await;
        if matches!(r, Ok(Ok(sotto_proto::Response::Pong))) {
            answered += 1;
        }
    }
    Ok(answered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_change_every_per_source_connections() {
        assert_eq!(source(0), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(source(PER_SOURCE - 1), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(source(PER_SOURCE), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(source(100_000), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 6)));
    }
}
