//! What the network sees: a recording TCP proxy between the clients and the relay parses
//! the TLS records in both directions. After each connection's TLS handshake and HTTP
//! upgrade, every application-data record has one length per direction, whatever is
//! sent: invites, a one-character text, a long text in any script, receipts of delivery,
//! and cover traffic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::record_proxy::*;
use common::*;
use sotto_client::app::Notice;

#[tokio::test]
async fn every_record_after_the_handshake_has_one_length_per_direction() {
    tokio::task::LocalSet::new()
        .run_until(async {
            let relay = TestRelay::start().await;
            let (port, log) = recording_proxy(relay.address.port).await;
            let mut via_proxy = relay.address.clone();
            via_proxy.port = port;
            let tmp = tempfile::tempdir().unwrap();
            let mut p = pair(&via_proxy, tmp.path()).await;
            for text in ["k", "ok", &"長いメッセージ ".repeat(500), "ئەسسالامۇ ئەلەيكۇم"] {
                p.alice.send_text("Bob", text).await.unwrap();
                until(&mut p.bob, |n| matches!(n, Notice::Message { .. })).await;
                p.bob.send_text("Alice", text).await.unwrap();
                until(&mut p.alice, |n| matches!(n, Notice::Message { .. })).await;
            }
            let records = log.lock().unwrap().clone();
            drop(p);
            let (up, down) = assert_one_length_per_direction(&records);
            assert!(up + down >= 30, "only {} cells seen", up + down);
            relay.stop().await;
        })
        .await;
}

/// Cover cells (opt-in) leave in the same `Send` request and the same sealed envelope as real
/// messages: on the wire they are records of the same length, and they are never shown.
#[tokio::test]
async fn cover_cells_are_the_same_size_on_the_wire_and_never_shown() {
    tokio::task::LocalSet::new()
        .run_until(async {
            let relay = TestRelay::start().await;
            let (port, log) = recording_proxy(relay.address.port).await;
            let mut via_proxy = relay.address.clone();
            via_proxy.port = port;
            let tmp = tempfile::tempdir().unwrap();
            let mut p = pair(&via_proxy, tmp.path()).await;
            let before = assert_one_length_per_direction(&log.lock().unwrap().clone());

            // The highest rate, ten a second on average, for three seconds; a real message
            // goes out in the middle of it.
            p.alice.start_cover(sotto_client::app::defences::cover::MAX_COVER_RATE).await.unwrap();
            let mut shown = drain(&mut p.alice, Duration::from_millis(1500)).await;
            p.alice.send_text("Bob", "hidden among cover").await.unwrap();
            shown.extend(drain(&mut p.alice, Duration::from_millis(1500)).await);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
            while tokio::time::Instant::now() < deadline {
                shown.extend(p.alice.poll(Duration::from_millis(100)).await.unwrap());
            }
            let sent = p.alice.cover_sent();
            p.alice.stop_cover();
            // Cover cells that were still on their way back are drained, acknowledged, dropped.
            shown.extend(drain(&mut p.alice, Duration::from_millis(500)).await);
            assert!(sent >= 10, "only {sent} cover cells in three seconds at ten a second");
            assert!(!shown.iter().any(|n| matches!(n, Notice::Message { .. })), "cover shown: {shown:?}");
            assert_eq!(p.alice.history("Bob").unwrap().len(), 1, "cover in the history");
            let (n, _) = until(&mut p.bob, |n| matches!(n, Notice::Message { .. })).await;
            assert_eq!(texts(&[n]), ["hidden among cover"]);

            let records = log.lock().unwrap().clone();
            let after = assert_one_length_per_direction(&records);
            // Each cover cell: a send up, and its answer, the delivery back and the ack's
            // answer down; all of them cells of the one length.
            let sent = usize::try_from(sent).unwrap();
            assert!(after.0 - before.0 >= 2 * sent, "up: {before:?} -> {after:?} for {sent} cover cells");
            assert!(after.1 - before.1 >= 3 * sent, "down: {before:?} -> {after:?} for {sent} cover cells");
            relay.stop().await;
        })
        .await;
}

/// A file moves with many cells in flight each way (uploads and downloads keep a window
/// of chunks open): still one record length per direction, so batching never cuts a
/// cell across records; and the cells are the file's chunks plus a few per cent.
#[tokio::test]
async fn a_file_transfer_keeps_one_length_per_direction() {
    tokio::task::LocalSet::new()
        .run_until(async {
            let relay = TestRelay::start().await;
            let (port, log) = recording_proxy(relay.address.port).await;
            let mut via_proxy = relay.address.clone();
            via_proxy.port = port;
            let tmp = tempfile::tempdir().unwrap();
            let mut p = pair(&via_proxy, tmp.path()).await;
            p.bob.set_file_settings(sotto_client::files::FileSettings::new(tmp.path().join("saved")));
            let before = assert_one_length_per_direction(&log.lock().unwrap().clone());
            let path = tmp.path().join("four.bin");
            let bytes: Vec<u8> = (0..4u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
            std::fs::write(&path, &bytes).unwrap();
            p.alice.send_file("Bob", &path, &sotto_client::files::NoProgress).await.unwrap();
            let (n, _) = until(&mut p.bob, |n| matches!(n, Notice::FileSaved { .. } | Notice::FileFailed { .. })).await;
            let Notice::FileSaved { path: saved, .. } = n else { panic!("{n:?}") };
            assert_eq!(std::fs::read(saved).unwrap(), bytes);
            let after = assert_one_length_per_direction(&log.lock().unwrap().clone());
            // 4 MiB is 259 chunks of 16,256 bytes. Up: 259 puts and 5 ranged gets (64
            // chunks each); down: 259 chunks and 9 answers to puts (one per 32, and the
            // last). The few cells beyond those are the pointer's message, its delivery,
            // acknowledgements and receipts: the file costs its own size in cells each
            // way, plus about 3%.
            let (up, down) = (after.0 - before.0, after.1 - before.1);
            assert!((259 + 5..=259 + 5 + 16).contains(&up), "up: {before:?} -> {after:?}");
            assert!((259 + 9..=259 + 9 + 16).contains(&down), "down: {before:?} -> {after:?}");
            relay.stop().await;
        })
        .await;
}
