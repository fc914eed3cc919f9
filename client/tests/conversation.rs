//! Two clients and a real relay over TLS: the promises of a conversation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use sotto_client::app::{AppError, InviteForm, Notice};
use sotto_client::relay::LinkError;
use sotto_client::wire::ShortInvite;
use sotto_proto::{BlobReadId, Envelope, RecvId};
use sotto_server::store::{Quotas, Store};

const QUIET: Duration = Duration::from_millis(400);

async fn local<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::LocalSet::new().run_until(f).await
}

#[tokio::test]
async fn messages_flow_both_ways_in_any_script() {
    local(async {
        let relay = TestRelay::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let mut p = pair(&relay.address, tmp.path()).await;
        let texts_ab = ["hello", "你好，世界", "ئەسسالامۇ ئەلەيكۇم", "བཀྲ་ཤིས་བདེ་ལེགས།", "e\u{301} 👩‍👩‍👧 \u{200f}rtl"];
        for t in texts_ab {
            p.alice.send_text("Bob", t).await.unwrap();
        }
        let (first, _) = until(&mut p.bob, |n| matches!(n, Notice::Message { .. })).await;
        let mut got = texts(&[first]);
        got.extend(texts(&drain(&mut p.bob, QUIET).await));
        assert_eq!(got, texts_ab);
        p.bob.send_text("Alice", "got them all").await.unwrap();
        let (n, _) = until(&mut p.alice, |n| matches!(n, Notice::Message { .. })).await;
        let Notice::Message { from, text, seq, .. } = n else { panic!("{n:?}") };
        assert_eq!((from.as_str(), text.as_str(), seq), ("Bob", "got them all", 1));
        let history: Vec<String> = p.bob.history("Alice").unwrap().into_iter().map(|m| m.text.clone()).collect();
        assert_eq!(history.len(), 6);
        assert_eq!(&history[..5], &texts_ab);
        relay.stop().await;
    })
    .await;
}

#[tokio::test]
async fn offline_recipient_gets_messages_later_and_restarts_keep_everything() {
    local(async {
        let relay = TestRelay::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let Pair { mut alice, bob, alice_dir, bob_dir } = pair(&relay.address, tmp.path()).await;
        drop(bob); // Bob goes offline.
        alice.send_text("Bob", "are you there?").await.unwrap();
        alice.send_text("Bob", "call me when back").await.unwrap();
        drop(alice); // Alice restarts too.

        let mut bob = reopen(&bob_dir);
        bob.subscribe_all().await.unwrap();
        let (first, _) = until(&mut bob, |n| matches!(n, Notice::Message { .. })).await;
        let mut got = texts(&[first]);
        got.extend(texts(&drain(&mut bob, QUIET).await));
        assert_eq!(got, ["are you there?", "call me when back"]);
        bob.send_text("Alice", "back now").await.unwrap();
        drop(bob);

        let mut alice = reopen(&alice_dir);
        alice.subscribe_all().await.unwrap();
        let (n, _) = until(&mut alice, |n| matches!(n, Notice::Message { .. })).await;
        assert_eq!(texts(&[n]), ["back now"]);
        let h: Vec<String> = alice.history("Bob").unwrap().into_iter().map(|m| m.text.clone()).collect();
        assert_eq!(h, ["are you there?", "call me when back", "back now"]);
        let mut bob = reopen(&bob_dir);
        assert_eq!(bob.contact_names().unwrap(), ["Alice"]);
        assert_eq!(bob.history("Alice").unwrap().len(), 3);
        relay.stop().await;
    })
    .await;
}

/// Takes every envelope queued in `recv_id` off the relay's queue.
async fn take_queue(relay: &TestRelay, recv_id: RecvId) -> Vec<Envelope> {
    let queued = relay.store.pending(recv_id, None, 1000).await.unwrap();
    for (seq, _) in &queued {
        relay.store.ack(recv_id, *seq).await.unwrap();
    }
    queued.into_iter().map(|(_, e)| e).collect()
}

async fn put_queue(relay: &TestRelay, recv_id: RecvId, envelopes: Vec<Envelope>) {
    let q = Quotas { max_queue_len: 1000, max_queue_bytes: u64::MAX, max_blob_size: 0, blob_quota_bytes: 0 };
    for e in envelopes {
        relay.store.enqueue(recv_id, e, u32::MAX, q).await.unwrap();
    }
}

fn bobs_mailbox_for_alice(bob: &mut sotto_client::app::Client) -> RecvId {
    let txn = bob.profile.store.txn();
    let alice = sotto_client::app::profile::contact_by_name(&txn, "Alice").unwrap();
    RecvId(alice.my_recv_id)
}

#[tokio::test]
async fn reordered_and_duplicated_envelopes_are_shown_once_in_order() {
    local(async {
        let relay = TestRelay::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let Pair { mut alice, bob, bob_dir, .. } = pair(&relay.address, tmp.path()).await;
        let recv = {
            let mut bob = bob;
            bobs_mailbox_for_alice(&mut bob)
        };
        for t in ["one", "two", "three"] {
            alice.send_text("Bob", t).await.unwrap();
        }
        let e = take_queue(&relay, recv).await;
        assert_eq!(e.len(), 3);
        put_queue(&relay, recv, vec![e[2].clone(), e[0].clone(), e[1].clone(), e[0].clone(), e[2].clone()]).await;

        let mut bob = reopen(&bob_dir);
        bob.subscribe_all().await.unwrap();
        let (first, _) = until(&mut bob, |n| matches!(n, Notice::Message { .. })).await;
        let mut shown = texts(&[first]);
        shown.extend(texts(&drain(&mut bob, QUIET).await));
        shown.sort();
        assert_eq!(shown, ["one", "three", "two"], "each shown exactly once");
        let h: Vec<String> = bob.history("Alice").unwrap().into_iter().map(|m| m.text.clone()).collect();
        assert_eq!(h, ["one", "two", "three"], "history in the order sent");
        // Everything was acknowledged: the queue is empty.
        assert!(relay.store.pending(recv, None, 10).await.unwrap().is_empty());
        relay.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_tampered_envelope_is_rejected_and_the_session_goes_on() {
    local(async {
        let relay = TestRelay::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let Pair { mut alice, bob, bob_dir, .. } = pair(&relay.address, tmp.path()).await;
        let recv = {
            let mut bob = bob;
            bobs_mailbox_for_alice(&mut bob)
        };
        alice.send_text("Bob", "first").await.unwrap();
        alice.send_text("Bob", "second").await.unwrap();
        let e = take_queue(&relay, recv).await;
        let mut bad = e[0].as_bytes().to_vec();
        bad[100] ^= 0x01;
        put_queue(&relay, recv, vec![Envelope::from_slice(&bad).unwrap(), e[1].clone()]).await;

        let mut bob = reopen(&bob_dir);
        bob.subscribe_all().await.unwrap();
        let seen = drain(&mut bob, Duration::from_millis(1500)).await;
        assert!(seen.iter().any(|n| matches!(n, Notice::Dropped { .. })), "{seen:?}");
        assert_eq!(texts(&seen), ["second"]);
        alice.send_text("Bob", "third").await.unwrap();
        let (n, _) = until(&mut bob, |n| matches!(n, Notice::Message { .. })).await;
        assert_eq!(texts(&[n]), ["third"]);
        relay.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_wrong_pin_is_refused() {
    local(async {
        let relay = TestRelay::start().await;
        let other = sotto_server::tls::Identity::generate("localhost").unwrap();
        let mut forged = relay.address.clone();
        forged.pin = Some(other.pin());
        let tmp = tempfile::tempdir().unwrap();
        let mut c = new_client(tmp.path(), &forged, "Mallory's victim");
        let err = c.create_invite(None, None).await.err();
        assert!(matches!(err, Some(AppError::Link(LinkError::WrongPin))), "{err:?}");
        relay.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_relay_queues_the_message_and_a_later_command_delivers_it() {
    local(async {
        let relays = Restartable::new();
        let relay = relays.start(0).await;
        let port = relay.address.port;
        let tmp = tempfile::tempdir().unwrap();
        let Pair { mut alice, mut bob, .. } = pair(&relay.address, tmp.path()).await;
        relay.stop().await;

        let err = alice.send_text("Bob", "while the relay is down").await.err();
        assert!(matches!(err, Some(AppError::Queued(_))), "{err:?}");
        let h = alice.history("Bob").unwrap();
        assert_eq!(h.last().map(|m| m.delivery), Some(sotto_client::app::records::Delivery::Queued));

        let relay = relays.start(port).await;
        let report = alice.flush_outbox().await.unwrap();
        assert_eq!((report.sent, report.waiting), (1, 0));
        bob.subscribe_all().await.unwrap();
        let (n, _) = until(&mut bob, |n| matches!(n, Notice::Message { .. })).await;
        assert_eq!(texts(&[n]), ["while the relay is down"]);
        assert_eq!(
            alice.history("Bob").unwrap().last().map(|m| m.delivery),
            Some(sotto_client::app::records::Delivery::Stored)
        );
        relay.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_invite_works_once() {
    local(async {
        let relay = TestRelay::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let mut alice = new_client(&tmp.path().join("a"), &relay.address, "Alice");
        let mut bob = new_client(&tmp.path().join("b"), &relay.address, "Bob");
        let mut carol = new_client(&tmp.path().join("c"), &relay.address, "Carol");
        let link = alice.create_invite(None, None).await.unwrap();
        bob.accept_invite(&link, "Alice").await.unwrap();
        alice.subscribe_all().await.unwrap();
        let (n, _) = until(&mut alice, |n| matches!(n, Notice::Joined { .. })).await;
        // No name given: the name Bob suggested.
        assert_eq!(n, Notice::Joined { name: "Bob".into() });
        // The mailbox is now locked to Bob: Carol's use of the same link fails.
        let err = carol.accept_invite(&link, "Alice").await.err();
        assert!(matches!(err, Some(AppError::InviteUsed)), "{err:?}");
        assert!(carol.contact_names().unwrap().is_empty());
        // Garbled and foreign links are clear errors.
        let garbled = format!("{}xx", &link[..link.len() / 2]);
        assert!(matches!(carol.accept_invite(&garbled, "A").await, Err(AppError::Invite(_))));
        assert!(matches!(carol.accept_invite("https://example.org/invite", "A").await, Err(AppError::Invite(_))));
        relay.stop().await;
    })
    .await;
}

#[tokio::test]
async fn short_links_fit_a_terminal_and_full_links_still_work() {
    local(async {
        let relay = TestRelay::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let mut alice = new_client(&tmp.path().join("a"), &relay.address, "Alice");
        let mut bob = new_client(&tmp.path().join("b"), &relay.address, "Bob");
        let mut carol = new_client(&tmp.path().join("c"), &relay.address, "Carol");
        // The default link is short: its QR code fits an 80-column terminal.
        let short = alice.create_invite(Some("Bob"), None).await.unwrap();
        let qr = sotto_client::wire::qr_text(&short).unwrap();
        let width = qr.lines().map(|l| l.chars().count()).max().unwrap();
        assert!(short.len() < 200 && width <= 61, "{} characters, QR {width} columns", short.len());
        bob.accept_invite(&short, "Alice").await.unwrap();
        // A full link is self-contained and works too.
        let full = alice.create_invite_as(Some("Carol"), None, InviteForm::Full).await.unwrap();
        assert!(full.len() > 2_000);
        carol.accept_invite(&full, "Alice").await.unwrap();
        alice.subscribe_all().await.unwrap();
        let mut joined = std::collections::BTreeSet::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while joined.len() < 2 && tokio::time::Instant::now() < deadline {
            joined.extend(alice.poll(Duration::from_millis(100)).await.unwrap().into_iter().filter_map(|n| match n {
                Notice::Joined { name } => Some(name),
                _ => None,
            }));
        }
        assert_eq!(joined.into_iter().collect::<Vec<_>>(), ["Bob", "Carol"]);
        // A short link whose sealed invite the relay does not have (expired, or a link
        // damaged where it names the blob) says so.
        let invite = sotto_client::wire::Invite::parse(&full).unwrap();
        let (_, key) = ShortInvite::seal(&invite, &mut rand::rng()).unwrap();
        let gone = ShortInvite::new(relay.address.clone(), BlobReadId([7; 24]), key).to_link();
        let mut dave = new_client(&tmp.path().join("d"), &relay.address, "Dave");
        let err = dave.accept_invite(&gone, "Alice").await.err();
        assert!(matches!(err, Some(AppError::InviteGone)), "{err:?}");
        assert!(dave.contact_names().unwrap().is_empty());
        relay.stop().await;
    })
    .await;
}

#[tokio::test]
async fn safety_numbers_match_on_both_sides() {
    local(async {
        let relay = TestRelay::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let mut p = pair(&relay.address, tmp.path()).await;
        let a = p.alice.safety_number("Bob").unwrap();
        let b = p.bob.safety_number("Alice").unwrap();
        assert_eq!(a.digits.len(), 60);
        assert!(a.digits.chars().all(|c| c.is_ascii_digit()));
        assert_eq!(a.digits, b.digits);
        p.alice.mark_verified("Bob").unwrap();
        assert!(p.alice.safety_number("Bob").unwrap().verified);
        relay.stop().await;
    })
    .await;
}

#[tokio::test]
async fn profile_files_hold_no_text_name_or_key_in_clear() {
    local(async {
        let relay = TestRelay::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let mut p = pair(&relay.address, tmp.path()).await;
        let secret = "MARKER meet at the north gate at nine";
        p.alice.send_text("Bob", secret).await.unwrap();
        until(&mut p.bob, |n| matches!(n, Notice::Message { .. })).await;
        p.bob.send_text("Alice", "MARKER-REPLY 好的").await.unwrap();
        until(&mut p.alice, |n| matches!(n, Notice::Message { .. })).await;
        let mailbox = {
            let txn = p.bob.profile.store.txn();
            sotto_client::app::profile::contact_by_name(&txn, "Alice").unwrap().peer.clone().unwrap()
        };
        drop(p.alice);
        drop(p.bob);
        let needles: Vec<Vec<u8>> = vec![
            secret.as_bytes().to_vec(),
            "MARKER-REPLY".as_bytes().to_vec(),
            "好的".as_bytes().to_vec(),
            b"Alice".to_vec(),
            b"Bob".to_vec(),
            mailbox.envelope_key.to_vec(),
            mailbox.sender_seed.to_vec(),
            mailbox.send_id.to_vec(),
            hex::encode(mailbox.send_id).into_bytes(),
        ];
        for f in files_under(tmp.path()) {
            let bytes = std::fs::read(&f).unwrap();
            for n in &needles {
                assert!(
                    !bytes.windows(n.len()).any(|w| w == n.as_slice()),
                    "{} holds {:?}",
                    f.display(),
                    String::from_utf8_lossy(n)
                );
            }
        }
        relay.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_listening_client_reconnects_after_the_relay_restarts() {
    local(async {
        let relays = Restartable::new();
        let relay = relays.start(0).await;
        let port = relay.address.port;
        let tmp = tempfile::tempdir().unwrap();
        let Pair { mut alice, mut bob, .. } = pair(&relay.address, tmp.path()).await;
        relay.stop().await;
        // Bob notices the drop while polling, and keeps polling.
        let _ = drain(&mut bob, Duration::from_millis(300)).await;
        let relay = relays.start(port).await;
        alice.send_text("Bob", "after the restart").await.unwrap();
        let (n, _) = until(&mut bob, |n| matches!(n, Notice::Message { .. })).await;
        assert_eq!(texts(&[n]), ["after the restart"]);
        relay.stop().await;
    })
    .await;
}

#[tokio::test]
async fn contacts_on_different_relays_talk_through_both() {
    local(async {
        let (r1, r2) = (TestRelay::start().await, TestRelay::start().await);
        let tmp = tempfile::tempdir().unwrap();
        // Alice's mailboxes live on the first relay, Bob's on the second.
        let mut alice = new_client(&tmp.path().join("a"), &r1.address, "Alice");
        let mut bob = new_client(&tmp.path().join("b"), &r2.address, "Bob");
        let link = alice.create_invite(Some("Bob"), None).await.unwrap();
        bob.accept_invite(&link, "Alice").await.unwrap();
        alice.subscribe_all().await.unwrap();
        until(&mut alice, |n| matches!(n, Notice::Joined { .. })).await;
        bob.subscribe_all().await.unwrap();
        until(&mut bob, |n| matches!(n, Notice::Ready { .. })).await;
        alice.send_text("Bob", "via the second relay").await.unwrap();
        bob.send_text("Alice", "via the first relay").await.unwrap();
        let (n, _) = until(&mut bob, |n| matches!(n, Notice::Message { .. })).await;
        assert_eq!(texts(&[n]), ["via the second relay"]);
        let (n, _) = until(&mut alice, |n| matches!(n, Notice::Message { .. })).await;
        assert_eq!(texts(&[n]), ["via the first relay"]);
        // Each relay holds only its own side's mailboxes.
        let bobs_mailbox = bobs_mailbox_for_alice(&mut bob);
        assert!(r2.store.mailbox(bobs_mailbox).await.unwrap().is_some());
        assert!(r1.store.mailbox(bobs_mailbox).await.unwrap().is_none());
        r1.stop().await;
        r2.stop().await;
    })
    .await;
}
