//! Files: throughput of the whole path (encrypt, upload, relay store, download, check,
//! decrypt, save) against a bare TLS copy of the same bytes up to a loopback server and
//! back, measured in the same run, and against the same copy without fsync. Prints each
//! run, the medians, their ratios and the median of the per-run ratios.
//!
//! `cargo bench -p sotto-client --bench files` (size: `FILES_BENCH_MIB`, default 256;
//! runs: `FILES_BENCH_RUNS`, default 3). The relay runs in this process on loopback with
//! a sled store in a temporary directory, as `sotto-relay` does; its per-connection
//! frame rate limit is lifted so the path itself is measured (with the default limit of
//! 2,000 cells a second a transfer is capped near 32 MB/s each way; that run is printed
//! too, once). `FILES_BENCH_SOTTO_ONLY=1` runs the Sotto path alone, for a profiler.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use sotto_client::app::{Client, Notice};
use sotto_client::files::{FileSettings, NoProgress};
use sotto_client::relay::ConnectOptions;
use sotto_client::store::KdfParams;
use sotto_proto::RelayAddress;
use sotto_server::store::{SledKv, SledStore};
use sotto_server::tls::Identity;
use sotto_server::{Limits, RelayConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIB: usize = 1 << 20;
const COPY_BUF: usize = 256 * 1024;

fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mib: usize = std::env::var("FILES_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    let runs: usize = std::env::var("FILES_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("payload.bin");
    write_file(&file, mib * MIB);
    let bytes = (mib * MIB) as f64;
    if std::env::var_os("FILES_BENCH_SOTTO_ONLY").is_some() {
        // For profiling (`perf record`): the Sotto path alone, no baseline, no summary.
        for run in 0..runs {
            let s =
                rt.block_on(tokio::task::LocalSet::new().run_until(sotto_round_trip(&file, tmp.path(), run, false)));
            println!("run {run}: sotto {:.2} s ({:.1} MB/s)", s.as_secs_f64(), bytes / s.as_secs_f64() / 1e6);
        }
        return;
    }
    println!("files bench: {mib} MiB file, {runs} runs each, alternating");
    let (mut sotto, mut bare, mut unsynced) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ratios, mut strict) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let b = rt.block_on(bare_tls_round_trip(&file, &tmp.path().join(format!("bare{run}")), true));
        let s = rt.block_on(tokio::task::LocalSet::new().run_until(sotto_round_trip(&file, tmp.path(), run, false)));
        let u = rt.block_on(bare_tls_round_trip(&file, &tmp.path().join(format!("unsynced{run}")), false));
        println!(
            "run {run}: sotto {:.2} s ({:.1} MB/s), bare TLS {:.2} s ({:.1} MB/s), bare TLS without fsync {:.2} s ({:.1} MB/s)",
            s.as_secs_f64(),
            bytes / s.as_secs_f64() / 1e6,
            b.as_secs_f64(),
            bytes / b.as_secs_f64() / 1e6,
            u.as_secs_f64(),
            bytes / u.as_secs_f64() / 1e6
        );
        ratios.push(b.as_secs_f64() / s.as_secs_f64());
        strict.push(u.as_secs_f64() / s.as_secs_f64());
        sotto.push(s);
        bare.push(b);
        unsynced.push(u);
    }
    let (ms, mb, mu) = (median(&mut sotto), median(&mut bare), median(&mut unsynced));
    println!(
        "median: sotto {:.1} MB/s, bare TLS {:.1} MB/s, ratio {:.2}; bare TLS without fsync {:.1} MB/s, ratio {:.2}",
        bytes / ms.as_secs_f64() / 1e6,
        bytes / mb.as_secs_f64() / 1e6,
        mb.as_secs_f64() / ms.as_secs_f64(),
        bytes / mu.as_secs_f64() / 1e6,
        mu.as_secs_f64() / ms.as_secs_f64()
    );
    println!(
        "median of the per-run ratios: {:.2} against bare TLS, {:.2} against bare TLS without fsync",
        median_f64(&mut ratios),
        median_f64(&mut strict)
    );
    let limited = rt.block_on(tokio::task::LocalSet::new().run_until(sotto_round_trip(&file, tmp.path(), runs, true)));
    println!("with the default relay rate limit: sotto {:.1} MB/s", bytes / limited.as_secs_f64() / 1e6);
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn median_f64(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn write_file(path: &Path, size: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut block = vec![0u8; MIB];
    for _ in 0..size / MIB {
        for w in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&block).unwrap();
    }
    f.flush().unwrap();
}

/// One file through Sotto: Alice sends it, Bob's client fetches, checks and saves it.
async fn sotto_round_trip(file: &Path, root: &Path, run: usize, default_limits: bool) -> Duration {
    let dir = root.join(format!("sotto{run}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let identity = Identity::generate("localhost").unwrap();
    let address: RelayAddress = format!("sotto://127.0.0.1:{port}#{}", identity.pin()).parse().unwrap();
    let mut limits = Limits::default();
    if !default_limits {
        limits.frames_per_second = 1_000_000;
        limits.frame_burst = 1_000_000;
    }
    let config = RelayConfig { limits, ..RelayConfig::new(identity) };
    // Laid out as `sotto-relay --data` lays it out: sled for records, a file per blob.
    let kv = SledKv::open(&dir.join("relay").join("db")).unwrap();
    let store = Arc::new(SledStore::with_blob_files(kv, &dir.join("relay").join("blobs")).unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let relay = tokio::spawn(sotto_server::run(listener, config, store, async {
        let _ = stopped.await;
    }));
    let new = |name: &str| {
        let mut c = Client::init(
            &dir.join(name),
            b"bench",
            &address,
            KdfParams::insecure_for_tests(),
            ConnectOptions::default(),
        )
        .unwrap();
        c.set_my_name(name).unwrap();
        c
    };
    let (mut alice, mut bob) = (new("alice"), new("bob"));
    bob.set_file_settings(FileSettings::new(dir.join("saved")));
    let link = alice.create_invite(Some("Bob"), None).await.unwrap();
    bob.accept_invite(&link, "Alice").await.unwrap();
    alice.subscribe_all().await.unwrap();
    wait_for(&mut alice, |n| matches!(n, Notice::Joined { .. })).await;
    bob.subscribe_all().await.unwrap();
    wait_for(&mut bob, |n| matches!(n, Notice::Ready { .. })).await;

    let start = Instant::now();
    alice.send_file("Bob", file, &NoProgress).await.unwrap();
    let uploaded = start.elapsed();
    let n = wait_for(&mut bob, |n| matches!(n, Notice::FileSaved { .. } | Notice::FileFailed { .. })).await;
    let took = start.elapsed();
    println!(
        "  (sotto: upload and pointer {:.2} s, download and save {:.2} s)",
        uploaded.as_secs_f64(),
        (took - uploaded).as_secs_f64()
    );
    assert!(matches!(n, Notice::FileSaved { .. }), "{n:?}");
    drop((alice, bob));
    let _ = stop.send(());
    let _ = relay.await;
    let _ = std::fs::remove_dir_all(&dir);
    took
}

async fn wait_for(c: &mut Client, want: impl Fn(&Notice) -> bool) -> Notice {
    loop {
        for n in c.poll(Duration::from_millis(100)).await.unwrap() {
            if want(&n) {
                return n;
            }
        }
    }
}

/// The baseline: the file's bytes over TLS 1.3 (same provider, pinned the same way) to a
/// loopback server that writes them to a file and syncs it, then read back over TLS into
/// another file, synced too: the durability Sotto gives (the relay syncs a blob before its
/// last answer, the receiver syncs a file before naming it). No WebSocket, no cells, no
/// end-to-end encryption, no relay store. With `sync` false, neither file is synced: the
/// fastest copy there is, as a stricter second baseline.
async fn bare_tls_round_trip(file: &Path, dir: &Path, sync: bool) -> Duration {
    std::fs::create_dir_all(dir).unwrap();
    let identity = Identity::generate("localhost").unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(identity.tls_config().unwrap());
    let connector =
        tokio_rustls::TlsConnector::from(sotto_client::relay::tls::client_config(Some(identity.pin())).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stored = dir.join("stored");
    let server = {
        let stored = stored.clone();
        tokio::spawn(async move {
            // Upload: receive everything, store it.
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let mut out = std::fs::File::create(&stored).unwrap();
            let mut buf = vec![0u8; COPY_BUF];
            loop {
                let n = tls.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n]).unwrap();
            }
            if sync {
                out.sync_all().unwrap();
            }
            // Download: send it back.
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let mut input = std::fs::File::open(&stored).unwrap();
            loop {
                let n = input.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                tls.write_all(&buf[..n]).await.unwrap();
            }
            tls.shutdown().await.unwrap();
        })
    };
    let start = Instant::now();
    let name = ServerName::try_from("localhost").unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = connector.connect(name.clone(), tcp).await.unwrap();
    let mut input = std::fs::File::open(file).unwrap();
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = input.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        tls.write_all(&buf[..n]).await.unwrap();
    }
    tls.shutdown().await.unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let mut out = std::fs::File::create(dir.join("fetched")).unwrap();
    loop {
        let n = match tls.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            // The server closes after its close_notify; both count as the end.
            Err(_) => break,
        };
        out.write_all(&buf[..n]).unwrap();
    }
    if sync {
        out.sync_all().unwrap();
    }
    let took = start.elapsed();
    server.await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
    took
}
