//! The `sotto-relay` binary, started as a real process: restart keeps data and pin,
//! a blob upload cut by SIGKILL resumes, `--ephemeral` writes nothing, and trace logs
//! carry no id, key or address.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use base64::Engine;
use common::*;
use sotto_client::relay::{ConnectOptions, RelayLink};
use sotto_proto::{Chunk, RelayAddress, Request, Response};

struct RelayProcess {
    child: Child,
    address: RelayAddress,
}

impl RelayProcess {
    fn start(cwd: &Path, args: &[&str], stderr: Stdio) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sotto-relay"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .current_dir(cwd)
            .env("HOME", cwd)
            .env("TMPDIR", cwd)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let address = line.trim().parse().unwrap_or_else(|e| panic!("bad address line {line:?}: {e}"));
        Self { child, address }
    }

    async fn link(&self) -> RelayLink {
        RelayLink::connect(&self.address, &ConnectOptions::default()).await.unwrap()
    }

    /// SIGTERM, then wait for a clean exit.
    fn terminate(mut self) {
        let ok = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "relay exited with {status}");
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        }
        out.push(path);
    }
    out
}

#[tokio::test]
async fn restart_after_sigkill_keeps_queued_envelopes_and_pin() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data_arg = data.to_str().unwrap();
    let relay = RelayProcess::start(tmp.path(), &["--data", data_arg], Stdio::null());
    let first_address = relay.address.clone();
    let link = relay.link().await;
    let mb = create_mailbox(&link).await;
    for i in 0..20 {
        assert_eq!(send(&link, mb.send_id, i).await, Response::Ok);
    }
    drop(link);
    // No graceful shutdown: every acknowledged send must already be on disk.
    relay.kill();

    let relay = RelayProcess::start(tmp.path(), &["--data", data_arg], Stdio::null());
    assert_eq!(relay.address.pin, first_address.pin, "the pin changed across restarts");
    let mut link = relay.link().await;
    assert_eq!(subscribe(&link, &mb).await, Response::Ok);
    for i in 0..20 {
        let (_, seq, env) = next_delivery(&mut link).await;
        assert_eq!(env, envelope(i));
        assert_eq!(ack(&link, &mb, seq).await, Response::Ok);
    }
    drop(link);
    relay.terminate();
}

/// The blob's chunk `i`: full-size, distinct per index.
fn blob_chunk(i: u64, len: usize) -> Chunk {
    Chunk::new((0..len).map(|j| (i as usize * 31 + j) as u8).collect()).unwrap()
}

#[tokio::test]
async fn a_blob_upload_cut_by_sigkill_resumes_and_reads_back_whole() {
    use sotto_proto::limits::BLOB_CHUNK_SIZE;
    const CHUNKS: u64 = 40;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data_arg = data.to_str().unwrap();
    let size = (CHUNKS - 1) * BLOB_CHUNK_SIZE as u64 + 100;
    let len = |i: u64| if i + 1 == CHUNKS { 100 } else { BLOB_CHUNK_SIZE };
    let relay = RelayProcess::start(tmp.path(), &["--data", data_arg], Stdio::null());
    let link = relay.link().await;
    let Response::BlobCreated { write_id, read_id } = link.request(Request::BlobCreate { size }).await.unwrap() else {
        panic!("blob not created")
    };
    for i in 0..CHUNKS / 2 {
        let put = Request::BlobPut {
            write_id,
            offset: i * BLOB_CHUNK_SIZE as u64,
            answer: true,
            data: blob_chunk(i, len(i)),
        };
        assert!(matches!(link.request(put).await.unwrap(), Response::BlobStatus { .. }));
    }
    drop(link);
    relay.kill();

    // Whatever the relay kept, it says so in whole chunks, and the upload goes on from there.
    let relay = RelayProcess::start(tmp.path(), &["--data", data_arg], Stdio::null());
    let link = relay.link().await;
    let Response::BlobStatus { received, size: told } = link.request(Request::BlobStatus { write_id }).await.unwrap()
    else {
        panic!("no status")
    };
    assert_eq!(told, size);
    assert_eq!(received % BLOB_CHUNK_SIZE as u64, 0);
    assert!(received <= CHUNKS / 2 * BLOB_CHUNK_SIZE as u64);
    for i in received / BLOB_CHUNK_SIZE as u64..CHUNKS {
        let put = Request::BlobPut {
            write_id,
            offset: i * BLOB_CHUNK_SIZE as u64,
            answer: true,
            data: blob_chunk(i, len(i)),
        };
        assert!(matches!(link.request(put).await.unwrap(), Response::BlobStatus { .. }));
    }
    // Complete means durable: a second SIGKILL loses none of it.
    drop(link);
    relay.kill();
    let relay = RelayProcess::start(tmp.path(), &["--data", data_arg], Stdio::null());
    let link = relay.link().await;
    for i in 0..CHUNKS {
        let offset = i * BLOB_CHUNK_SIZE as u64;
        match link.request(Request::BlobGet { read_id, offset, count: 1 }).await.unwrap() {
            Response::BlobData { data, size: s, .. } => {
                assert_eq!(s, size);
                assert_eq!(data, blob_chunk(i, len(i)), "chunk {i}");
            }
            other => panic!("chunk {i}: {other:?}"),
        }
    }
    drop(link);
    relay.terminate();
}

#[tokio::test]
async fn ephemeral_relay_leaves_no_file_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(tmp.path(), &["--ephemeral"], Stdio::null());
    let mut link = relay.link().await;
    let mb = create_mailbox(&link).await;
    assert_eq!(send(&link, mb.send_id, 1).await, Response::Ok);
    assert_eq!(subscribe(&link, &mb).await, Response::Ok);
    next_delivery(&mut link).await;
    drop(link);
    relay.terminate();
    assert!(files_under(tmp.path()).is_empty(), "{:?}", files_under(tmp.path()));
}

/// Every way an id or key could be spelled in a log line.
fn spellings(bytes: &[u8]) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let decimal = bytes.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ");
    vec![
        hex::encode(bytes),
        hex::encode_upper(bytes),
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
        // A prefix long enough to be unique, as a truncated rendering might show.
        hex::encode(&bytes[..8]),
        decimal.chars().take(40).collect(),
    ]
}

#[tokio::test]
async fn trace_logs_hold_no_id_key_or_address() {
    let tmp = tempfile::tempdir().unwrap();
    let log_path = tmp.path().join("relay.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let relay = RelayProcess::start(tmp.path(), &["--ephemeral", "--log-level", "trace"], Stdio::from(log));

    let mut owner = relay.link().await;
    let sender = relay.link().await;
    let mb = create_mailbox(&owner).await;
    let sender_key = new_key();
    let req = signed(
        &owner,
        &mb.owner,
        Request::Secure { recv_id: mb.recv_id, sender_key: public(&sender_key), signature: NO_SIG },
    );
    assert_eq!(owner.request(req).await.unwrap(), Response::Ok);
    let req =
        signed(&sender, &sender_key, Request::Send { send_id: mb.send_id, envelope: envelope(3), signature: None });
    assert_eq!(sender.request(req).await.unwrap(), Response::Ok);
    assert_eq!(subscribe(&owner, &mb).await, Response::Ok);
    let (_, seq, _) = next_delivery(&mut owner).await;
    assert_eq!(ack(&owner, &mb, seq).await, Response::Ok);
    let Response::BlobCreated { write_id, read_id } = sender.request(Request::BlobCreate { size: 2 }).await.unwrap()
    else {
        panic!()
    };
    let put = Request::BlobPut { write_id, offset: 0, answer: true, data: Chunk::new(vec![9, 9]).unwrap() };
    assert!(matches!(sender.request(put).await.unwrap(), Response::BlobStatus { .. }));
    assert!(matches!(
        owner.request(Request::BlobGet { read_id, offset: 0, count: 1 }).await.unwrap(),
        Response::BlobData { .. }
    ));
    let req = signed(&owner, &mb.owner, Request::DeleteMailbox { recv_id: mb.recv_id, signature: NO_SIG });
    assert_eq!(owner.request(req).await.unwrap(), Response::Ok);
    let nonce = owner.nonce();
    drop((owner, sender));
    relay.terminate();

    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(text.contains("request"), "trace log is empty; the test would prove nothing:\n{text}");
    assert!(text.contains("connection opened"));
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("recv id", mb.recv_id.0.to_vec()),
        ("send id", mb.send_id.0.to_vec()),
        ("owner key", public(&mb.owner).0.to_vec()),
        ("sender key", public(&sender_key).0.to_vec()),
        ("blob write id", write_id.0.to_vec()),
        ("blob read id", read_id.0.to_vec()),
        ("nonce", nonce.0.to_vec()),
    ];
    for (what, bytes) in secrets {
        for s in spellings(&bytes) {
            assert!(!text.contains(&s), "the log holds the {what} as {s}");
        }
    }
    for addr in ["127.0.0.1", "localhost", "::1"] {
        assert!(!text.contains(addr), "the log holds the address {addr}");
    }
}
