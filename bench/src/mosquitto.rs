//! The MQTT baseline: mosquitto (the Debian package) started by the bench on a loopback
//! port with TLS 1.3 and persistence on, driven through rumqttc at QoS 1.
//!
//! The load is the relay's: one receiver per pair subscribed at QoS 1 with a persistent
//! session (so mosquitto queues for it, as the relay queues for a mailbox), one sender
//! publishing cell-sized payloads at QoS 1 with the same window of unacknowledged
//! messages. mosquitto's `persistence` saves its state to disk every `autosave_interval`
//! and does not sync a message before its PUBACK: it is the weaker durability of the two,
//! and `docs/BENCHMARKS.md` says so.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use sotto_proto::Pin;
use sotto_proto::limits::CELL_SIZE;

use crate::load::{self, Load, ReceiverResult, RunResult};
use sotto_client::relay::tls::pinned_config as pinned_client;

/// Where Debian installs the broker.
pub const DEFAULT_BINARY: &str = "/usr/sbin/mosquitto";
/// How long the broker may take to open its port.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest MQTT packet either side accepts: a cell plus the MQTT header, with room.
const MAX_PACKET: usize = 2 * CELL_SIZE;
/// Requests rumqttc buffers between the sender and its event loop: one, so the window
/// (rumqttc's `inflight`) is what bounds unacknowledged messages, as for the relay.
const REQUEST_CHANNEL: usize = 1;
/// MQTT keep-alive: longer than any run.
const KEEP_ALIVE: Duration = Duration::from_secs(600);

/// A running broker, stopped (SIGKILL) when dropped.
pub struct Mosquitto {
    child: Child,
    pub addr: SocketAddr,
    pin: Pin,
    _dir: tempfile::TempDir,
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Mosquitto {
    /// Starts `binary` on a free loopback port with a fresh key and certificate, TLS 1.3,
    /// persistence in a temporary directory, and a delivery window of `window`.
    pub fn start(binary: &Path, window: usize) -> Result<Self> {
        if !binary.exists() {
            bail!("{} is missing: run scripts/bench, which installs mosquitto", binary.display());
        }
        let dir = tempfile::Builder::new().prefix("sotto-bench-mqtt").tempdir()?;
        let key = rcgen::KeyPair::generate()?;
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])?.self_signed(&key)?;
        let pin = Pin::from_spki_der(&rcgen::PublicKeyData::subject_public_key_info(&key));
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&cert_path, cert.pem())?;
        std::fs::write(&key_path, key.serialize_pem())?;
        let port = free_port()?;
        let conf = config(port, &cert_path, &key_path, dir.path(), window);
        let conf_path = dir.path().join("mosquitto.conf");
        std::fs::write(&conf_path, conf)?;
        let log = std::fs::File::create(dir.path().join("mosquitto.log"))?;
        let child = Command::new(binary)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut m = Self { child, addr, pin, _dir: dir };
        let deadline = Instant::now() + START_TIMEOUT;
        while StdTcpStream::connect(addr).is_err() {
            if let Some(status) = m.child.try_wait()? {
                bail!("mosquitto exited ({status}): {}", m.log());
            }
            if Instant::now() > deadline {
                bail!("mosquitto did not open its port: {}", m.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(m)
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> String {
        let path: PathBuf = self._dir.path().join("mosquitto.log");
        let Ok(f) = std::fs::File::open(path) else { return String::new() };
        BufReader::new(f).lines().map_while(Result::ok).collect::<Vec<_>>().join(" | ")
    }

    fn options(&self, id: String, clean: bool, window: usize) -> Result<MqttOptions> {
        let tls = pinned_client(self.pin, &[])?;
        let mut o = MqttOptions::new(id, self.addr.ip().to_string(), self.addr.port());
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::clone(&tls))));
        o.set_max_packet_size(MAX_PACKET, MAX_PACKET);
        o.set_clean_session(clean);
        o.set_keep_alive(KEEP_ALIVE);
        o.set_inflight(u16::try_from(window).unwrap_or(u16::MAX).max(1));
        o.set_request_channel_capacity(REQUEST_CHANNEL);
        Ok(o)
    }

    /// Runs `load` through the broker; `run_id` keeps client ids and topics of runs apart.
    pub async fn run(&self, load: Load, run_id: u32) -> Result<RunResult> {
        let mut pairs = Vec::with_capacity(load.pairs);
        for p in 0..load.pairs {
            let topic = format!("bench/{run_id}/{p}");
            let (rc, mut rl) = AsyncClient::new(self.options(format!("r-{run_id}-{p}"), false, load.window)?, 16);
            rc.subscribe(topic.clone(), QoS::AtLeastOnce).await?;
            wait_for(&mut rl, |p| matches!(p, Packet::SubAck(_))).await?;
            let (sc, mut sl) = AsyncClient::new(self.options(format!("s-{run_id}-{p}"), true, load.window)?, 16);
            wait_for(&mut sl, |p| matches!(p, Packet::ConnAck(_))).await?;
            pairs.push((topic, rc, rl, sc, sl));
        }
        let start = Instant::now();
        let mut receivers = Vec::new();
        let mut senders = Vec::new();
        for (topic, rc, rl, sc, sl) in pairs {
            receivers.push(tokio::spawn(receive(rc, rl, load.messages)));
            senders.push(tokio::spawn(send(sc, sl, topic, load, start)));
        }
        for s in senders {
            s.await??;
        }
        let mut results = Vec::new();
        for r in receivers {
            results.push(r.await??);
        }
        Ok(RunResult::from_receivers(start, results))
    }
}

fn config(port: u16, cert: &Path, key: &Path, dir: &Path, window: usize) -> String {
    format!(
        "per_listener_settings false\n\
         allow_anonymous true\n\
         user root\n\
         listener {port} 127.0.0.1\n\
         certfile {cert}\n\
         keyfile {key}\n\
         tls_version tlsv1.3\n\
         persistence true\n\
         persistence_location {dir}/\n\
         max_inflight_messages {window}\n\
         max_queued_messages 1000000\n\
         max_keepalive 65535\n\
         log_dest stderr\n\
         log_type error\n\
         log_type warning\n",
        cert = cert.display(),
        key = key.display(),
        dir = dir.display(),
    )
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Polls `el` until a packet for which `want` holds arrives.
async fn wait_for(el: &mut EventLoop, want: impl Fn(&Packet) -> bool) -> Result<()> {
    loop {
        if let Event::Incoming(p) = el.poll().await? {
            if want(&p) {
                return Ok(());
            }
        }
    }
}

async fn send(client: AsyncClient, mut el: EventLoop, topic: String, load: Load, start: Instant) -> Result<()> {
    let expected = load.messages;
    let acks = tokio::spawn(async move {
        let mut acked = 0;
        while acked < expected {
            if let Event::Incoming(Packet::PubAck(_)) = el.poll().await? {
                acked += 1;
            }
        }
        anyhow::Ok(el)
    });
    let mut payload = vec![0u8; CELL_SIZE];
    for i in 0..load.messages {
        let sent = load::pace(&load, start, i).await;
        load::stamp(&mut payload, sent);
        client.publish(topic.clone(), QoS::AtLeastOnce, false, payload.clone()).await?;
    }
    let mut el = acks.await??;
    client.disconnect().await?;
    // Lets the DISCONNECT go out; the loop then ends with an error, which is expected.
    while el.poll().await.is_ok() {}
    Ok(())
}

async fn receive(client: AsyncClient, mut el: EventLoop, expected: usize) -> Result<ReceiverResult> {
    let mut result = ReceiverResult { latencies_us: Vec::with_capacity(expected), last: None };
    while result.latencies_us.len() < expected {
        if let Event::Incoming(Packet::Publish(p)) = el.poll().await? {
            if let Some(l) = load::latency_us(&p.payload) {
                result.latencies_us.push(l);
            }
            result.last = Some(Instant::now());
        }
    }
    client.disconnect().await?;
    while el.poll().await.is_ok() {}
    Ok(result)
}
