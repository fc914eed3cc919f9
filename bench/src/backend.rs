//! Which relay is measured: one started in this process, a `sotto-relay` child process,
//! or one already running elsewhere; and, for the first two, which store it uses.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use sotto_proto::{Host, Pin, RelayAddress};
use sotto_server::store::{MemoryKv, MemoryStore, SledKv, SledStore, Store};
use sotto_server::tls::Identity;
use sotto_server::{Limits, RelayConfig};
use tokio::sync::oneshot;

use crate::procfs;

/// Name of the in-process relay's (and echo server's) runtime threads, so their CPU time
/// can be told from the load generator's.
pub const SERVER_THREAD: &str = "relay-worker";
/// Name of the load generator's runtime threads.
pub const CLIENT_THREAD: &str = "bench-client";
/// The sled database's directory inside a relay's data directory (as `sotto-relay`).
const DB_DIR: &str = "db";
/// The blob directory in it, as `sotto-relay --data` lays it out.
const BLOB_DIR: &str = "blobs";

/// The relay's storage engine.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreKind {
    /// sled in a temporary directory: durable, every send synced before its answer.
    Sled,
    /// Everything in memory (`--ephemeral`).
    Memory,
}

impl FromStr for StoreKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sled" => Ok(Self::Sled),
            "memory" => Ok(Self::Memory),
            other => Err(format!("unknown store {other:?}: expected sled or memory")),
        }
    }
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sled => "sled",
            Self::Memory => "memory",
        })
    }
}

/// A running relay under test.
pub struct Relay {
    pub addr: SocketAddr,
    pub pin: Pin,
    kind: Kind,
    _data: Option<tempfile::TempDir>,
}

enum Kind {
    InProcess { stop: Option<oneshot::Sender<()>> },
    Process(Child),
    External { pid: Option<u32> },
}

impl Drop for Relay {
    fn drop(&mut self) {
        match &mut self.kind {
            Kind::InProcess { stop } => {
                if let Some(s) = stop.take() {
                    let _ = s.send(());
                }
            }
            Kind::Process(child) => stop_child(child),
            Kind::External { .. } => {}
        }
    }
}

/// How long a child relay gets to stop after SIGTERM before it is killed.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(15);

/// Stops a child relay gracefully (SIGTERM: it closes connections and flushes its store,
/// and a profiler wrapped around it writes its report), killing it if it lingers.
fn stop_child(child: &mut Child) {
    let asked = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().is_ok_and(|s| s.success());
    if asked {
        let deadline = std::time::Instant::now() + STOP_GRACE;
        while std::time::Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A data directory on disk (not tmpfs, where a sync would cost nothing), under `base`
/// or the system's temporary directory.
fn data_dir(base: Option<&Path>) -> Result<tempfile::TempDir> {
    let b = tempfile::Builder::new().prefix("sotto-bench-relay").to_owned();
    Ok(match base {
        Some(dir) => b.tempdir_in(dir)?,
        None => b.tempdir()?,
    })
}

impl Relay {
    /// Starts a relay with `store` and `limits` on `runtime`'s threads in this process,
    /// on 127.0.0.1 port 0.
    pub fn in_process(
        runtime: &tokio::runtime::Handle,
        store: &StoreKind,
        limits: Limits,
        base: Option<&Path>,
    ) -> Result<Self> {
        let identity = Identity::generate("127.0.0.1")?;
        let pin = identity.pin();
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let mut config = RelayConfig::new(identity);
        config.limits = limits;
        let (stop, stopped) = oneshot::channel::<()>();
        let mut data = None;
        let _guard = runtime.enter();
        let listener = tokio::net::TcpListener::from_std(listener)?;
        match store {
            StoreKind::Sled => {
                let dir = data_dir(base)?;
                let kv = SledKv::open(&dir.path().join(DB_DIR))?;
                let s = Arc::new(SledStore::with_blob_files(kv, &dir.path().join(BLOB_DIR))?);
                data = Some(dir);
                runtime.spawn(serve(listener, config, s, stopped));
            }
            StoreKind::Memory => {
                runtime.spawn(serve(listener, config, Arc::new(MemoryStore::new(MemoryKv::new())), stopped));
            }
        }
        drop(_guard);
        Ok(Self { addr, pin, kind: Kind::InProcess { stop: Some(stop) }, _data: data })
    }

    /// Starts `binary` (a `sotto-relay`) as a child process with `store` and the limits in
    /// `config_toml`, and reads the address it prints.
    pub fn process(binary: &Path, store: &StoreKind, config_toml: &str, base: Option<&Path>) -> Result<Self> {
        let dir = data_dir(base)?;
        let config = dir.path().join("limits.toml");
        std::fs::write(&config, config_toml)?;
        let mut cmd = Command::new(binary);
        cmd.args(["--listen", "127.0.0.1:0", "--log-level", "warn", "--config"]).arg(&config);
        match store {
            StoreKind::Sled => cmd.arg("--data").arg(dir.path().join("relay")),
            StoreKind::Memory => cmd.arg("--ephemeral"),
        };
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line)?;
        }
        let address: RelayAddress = match line.trim().parse() {
            Ok(a) => a,
            Err(e) => {
                let _ = child.kill();
                bail!("sotto-relay printed {line:?} instead of its address: {e}");
            }
        };
        let (addr, pin) = resolve(&address)?;
        Ok(Self { addr, pin, kind: Kind::Process(child), _data: Some(dir) })
    }

    /// A relay already running at `address` (which must carry a pin); `pid`, if given,
    /// is read for CPU and memory.
    pub fn external(address: &RelayAddress, pid: Option<u32>) -> Result<Self> {
        let (addr, pin) = resolve(address)?;
        Ok(Self { addr, pin, kind: Kind::External { pid }, _data: None })
    }

    /// The relay's process, when it has one of its own.
    pub fn pid(&self) -> Option<u32> {
        match &self.kind {
            Kind::InProcess { .. } => None,
            Kind::Process(c) => Some(c.id()),
            Kind::External { pid } => *pid,
        }
    }

    /// CPU seconds the relay has used so far: its process's, or, in this process, its
    /// runtime's and its store's threads (everything but the load generator's).
    pub fn cpu_s(&self) -> Option<f64> {
        match self.pid() {
            Some(pid) => procfs::process_cpu_s(pid).ok(),
            None if matches!(self.kind, Kind::InProcess { .. }) => server_threads_cpu_s(),
            None => None,
        }
    }
}

/// CPU seconds of this process's threads that are not the load generator's.
pub fn server_threads_cpu_s() -> Option<f64> {
    let main = main_thread_name();
    procfs::threads_cpu_s(|comm| comm != main && !comm.starts_with(CLIENT_THREAD)).ok()
}

/// CPU seconds of the load generator's threads.
pub fn client_threads_cpu_s() -> Option<f64> {
    procfs::threads_cpu_s(|comm| comm.starts_with(CLIENT_THREAD)).ok()
}

/// The main thread's name (the executable's, cut to 15 bytes by the kernel).
fn main_thread_name() -> String {
    std::fs::read_to_string("/proc/self/comm").map(|s| s.trim().to_string()).unwrap_or_default()
}

async fn serve<S: Store>(
    listener: tokio::net::TcpListener,
    config: RelayConfig,
    store: Arc<S>,
    stopped: oneshot::Receiver<()>,
) {
    let r = sotto_server::run(listener, config, store, async {
        let _ = stopped.await;
    })
    .await;
    if let Err(e) = r {
        eprintln!("relay stopped with an error: {e}");
    }
}

/// The socket address and pin of a relay address.
fn resolve(address: &RelayAddress) -> Result<(SocketAddr, Pin)> {
    let Some(pin) = address.pin else { bail!("the relay address needs a pin (#...)") };
    let ip = match &address.host {
        Host::Ipv4(a) => (*a).into(),
        Host::Ipv6(a) => (*a).into(),
        Host::Domain(d) => std::net::ToSocketAddrs::to_socket_addrs(&(d.as_str(), address.port))?
            .next()
            .with_context(|| format!("{d} has no address"))?
            .ip(),
    };
    Ok((SocketAddr::new(ip, address.port), pin))
}

/// `sotto-relay` beside this executable (cargo builds both into one directory).
pub fn sibling_relay_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("sotto-relay")))
        .unwrap_or_else(|| PathBuf::from("sotto-relay"))
}

/// The limits the bench runs the relay with: the defaults, except the per-connection
/// frame rate (a policy against one abusive client, not a capacity; a bench pair sends
/// far faster than any person), the idle time-out (so connections opened early in a
/// long connections run are not closed before the last opens) and the connection limit.
pub fn bench_limits(max_connections: usize) -> Limits {
    Limits {
        frames_per_second: BENCH_FRAMES_PER_SECOND,
        frame_burst: BENCH_FRAMES_PER_SECOND,
        idle_timeout: BENCH_IDLE_TIMEOUT,
        max_connections: max_connections.max(Limits::default().max_connections),
        ..Limits::default()
    }
}

/// The same limits as a TOML file for `sotto-relay --config`.
pub fn bench_limits_toml(max_connections: usize) -> String {
    let l = bench_limits(max_connections);
    format!(
        "frames_per_second = {}\nframe_burst = {}\nidle_timeout_secs = {}\nmax_connections = {}\n",
        l.frames_per_second,
        l.frame_burst,
        l.idle_timeout.as_secs(),
        l.max_connections
    )
}

/// Frames per second per connection the bench allows (the default is 2,000).
const BENCH_FRAMES_PER_SECOND: u32 = 1_000_000;
/// Idle time-out of the bench relay: an hour (the default is 300 s).
const BENCH_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_kinds_parse_and_print() {
        assert_eq!("sled".parse::<StoreKind>(), Ok(StoreKind::Sled));
        assert_eq!("memory".parse::<StoreKind>(), Ok(StoreKind::Memory));
        assert!("redis".parse::<StoreKind>().is_err());
        assert_eq!(StoreKind::Memory.to_string(), "memory");
    }

    #[test]
    fn limits_toml_is_accepted_by_the_relay() {
        let l = Limits::from_toml(&bench_limits_toml(150_000));
        assert_eq!(l.ok(), Some(bench_limits(150_000)));
    }
}
