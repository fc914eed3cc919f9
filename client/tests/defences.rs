//! The metadata defences between two real clients and a real relay over TLS, with the
//! profiles' clocks moved forward instead of sleeping: disappearing messages, delivery
//! receipts, mailbox rotation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use sotto_client::app::defences::receipts::RECEIPT_DELAY_MAX;
use sotto_client::app::defences::rotation::{DRAIN_WAIT, ROTATION_GRACE, ROTATION_INTERVAL, ROTATION_JITTER};
use sotto_client::app::records::Delivery;
use sotto_client::app::{Client, Notice, profile};
use sotto_proto::RecvId;
use sotto_server::store::Store;

const QUIET: Duration = Duration::from_millis(400);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

async fn local<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::LocalSet::new().run_until(f).await
}

fn history(c: &mut Client, name: &str) -> Vec<String> {
    c.history(name).unwrap().into_iter().map(|m| m.text.clone()).collect()
}

fn advance(c: &mut Client, by: Duration) {
    c.clock().advance(by);
}

#[tokio::test]
async fn the_timer_is_agreed_and_messages_disappear_from_both_stores() {
    local(async {
        let relay = TestRelay::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let mut p = pair(&relay.address, tmp.path()).await;
        p.alice.send_text("Bob", "before the timer").await.unwrap();
        until(&mut p.bob, |n| matches!(n, Notice::Message { .. })).await;

        p.alice.set_timer("Bob", 3600).await.unwrap();
        let (n, _) = until(&mut p.bob, |n| matches!(n, Notice::TimerChanged { .. })).await;
        assert_eq!(n, Notice::TimerChanged { name: "Alice".into(), seconds: 3600 });
        assert_eq!((p.alice.timer("Bob").unwrap(), p.bob.timer("Alice").unwrap()), (3600, 3600));

        p.alice.send_text("Bob", "gone within the hour").await.unwrap();
        until(&mut p.bob, |n| matches!(n, Notice::Message { .. })).await;
        // Bob's own messages follow the agreed timer too, and --expire shortens one message.
        p.bob.send_text("Alice", "mine too").await.unwrap();
        p.bob.send_text_expiring("Alice", "a minute only", Some(60)).await.unwrap();
        until(&mut p.alice, |n| matches!(n, Notice::Message { .. })).await;
        drain(&mut p.alice, QUIET).await;
        let all = ["before the timer", "gone within the hour", "mine too", "a minute only"];
        assert_eq!(history(&mut p.alice, "Bob"), all);
        assert_eq!(history(&mut p.bob, "Alice"), all);

        for c in [&mut p.alice, &mut p.bob] {
            advance(c, 2 * MINUTE);
            c.tick().await.unwrap();
        }
        let left = ["before the timer", "gone within the hour", "mine too"];
        assert_eq!(history(&mut p.alice, "Bob"), left);
        assert_eq!(history(&mut p.bob, "Alice"), left);

        for c in [&mut p.alice, &mut p.bob] {
            advance(c, HOUR);
            c.tick().await.unwrap();
        }
        // Sender's copy and receiver's copy are both gone; the message sent before the
        // timer was set stays.
        assert_eq!(history(&mut p.alice, "Bob"), ["before the timer"]);
        assert_eq!(history(&mut p.bob, "Alice"), ["before the timer"]);

        // Reopened, the profile still agrees; and the timer goes off the same way.
        p.bob.set_timer("Alice", 0).await.unwrap();
        until(&mut p.alice, |n| matches!(n, Notice::TimerChanged { seconds: 0, .. })).await;
        p.alice.send_text("Bob", "stays").await.unwrap();
        until(&mut p.bob, |n| matches!(n, Notice::Message { .. })).await;
        advance(&mut p.bob, 1000 * HOUR);
        p.bob.tick().await.unwrap();
        assert_eq!(history(&mut p.bob, "Alice"), ["before the timer", "stays"]);
        relay.stop().await;
    })
    .await;
}

#[tokio::test]
async fn concurrent_timer_changes_end_the_same_on_both_sides() {
    local(async {
        let relay = TestRelay::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let mut p = pair(&relay.address, tmp.path()).await;
        // Both change it before either hears of the other's change.
        p.alice.set_timer("Bob", 3600).await.unwrap();
        p.bob.set_timer("Alice", 86_400).await.unwrap();
        drain(&mut p.alice, QUIET).await;
        drain(&mut p.bob, QUIET).await;
        let (a, b) = (p.alice.timer("Bob").unwrap(), p.bob.timer("Alice").unwrap());
        assert_eq!(a, b, "the two sides disagree");
        assert!(a == 3600 || a == 86_400);
        relay.stop().await;
    })
    .await;
}

fn deliveries(c: &mut Client, name: &str) -> Vec<Delivery> {
    c.history(name).unwrap().into_iter().filter(|m| m.text.starts_with("r")).map(|m| m.delivery).collect()
}

#[tokio::test]
async fn receipts_are_off_by_default_then_delayed_and_batched() {
    local(async {
        let relay = TestRelay::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let mut p = pair(&relay.address, tmp.path()).await;
        assert!(!p.bob.receipts_enabled().unwrap());
        p.alice.send_text("Bob", "r0").await.unwrap();
        until(&mut p.bob, |n| matches!(n, Notice::Message { .. })).await;
        advance(&mut p.bob, 2 * RECEIPT_DELAY_MAX);
        p.bob.tick().await.unwrap();
        assert!(drain(&mut p.alice, QUIET).await.is_empty(), "a receipt was sent while they are off");
        assert_eq!(deliveries(&mut p.alice, "Bob"), [Delivery::Stored]);

        p.bob.set_receipts(true).unwrap();
        for t in ["r1", "r2", "r3"] {
            p.alice.send_text("Bob", t).await.unwrap();
        }
        let (first, _) = until(&mut p.bob, |n| matches!(n, Notice::Message { .. })).await;
        let mut got = texts(&[first]);
        got.extend(texts(&drain(&mut p.bob, QUIET).await));
        assert_eq!(got, ["r1", "r2", "r3"]);
        // Not at once: nothing reaches Alice before the random delay has run out.
        p.bob.tick().await.unwrap();
        assert!(drain(&mut p.alice, QUIET).await.is_empty());
        assert!(deliveries(&mut p.alice, "Bob").iter().all(|d| *d == Delivery::Stored));

        advance(&mut p.bob, RECEIPT_DELAY_MAX);
        p.bob.tick().await.unwrap();
        let (n, others) = until(&mut p.alice, |n| matches!(n, Notice::Delivered { .. })).await;
        // One receipt for the three: batched.
        assert_eq!(n, Notice::Delivered { name: "Bob".into(), count: 3 });
        assert!(!drain(&mut p.alice, QUIET).await.iter().chain(&others).any(|n| matches!(n, Notice::Delivered { .. })));
        assert_eq!(
            deliveries(&mut p.alice, "Bob"),
            [Delivery::Stored, Delivery::Delivered, Delivery::Delivered, Delivery::Delivered]
        );
        relay.stop().await;
    })
    .await;
}

fn my_recv_id(c: &mut Client, name: &str) -> RecvId {
    let txn = c.profile.store.txn();
    RecvId(profile::contact_by_name(&txn, name).unwrap().my_recv_id)
}

#[tokio::test]
async fn rotation_with_messages_in_flight_loses_nothing() {
    local(async {
        let relay = TestRelay::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let mut p = pair(&relay.address, tmp.path()).await;
        let old = my_recv_id(&mut p.alice, "Bob");

        // Queued in the old mailbox before the rotation.
        for t in ["before 1", "before 2"] {
            p.bob.send_text("Alice", t).await.unwrap();
        }
        assert_eq!(p.alice.rotate(Some("Bob")).await.unwrap(), 1);
        let new = my_recv_id(&mut p.alice, "Bob");
        assert_ne!(old, new);
        // Sent by Bob before he has read the rotation: still to the old mailbox.
        for t in ["in flight 1", "in flight 2"] {
            p.bob.send_text("Alice", t).await.unwrap();
        }
        // Bob reads it (nothing to show), moves, and announces his new sender key there.
        let shown = drain(&mut p.bob, QUIET).await;
        assert!(shown.is_empty(), "{shown:?}");
        for t in ["after 1", "after 2"] {
            p.bob.send_text("Alice", t).await.unwrap();
        }
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while got.len() < 6 && tokio::time::Instant::now() < deadline {
            got.extend(texts(&p.alice.poll(Duration::from_millis(100)).await.unwrap()));
        }
        got.extend(texts(&drain(&mut p.alice, QUIET).await));
        got.sort();
        assert_eq!(got, ["after 1", "after 2", "before 1", "before 2", "in flight 1", "in flight 2"]);
        // The new mailbox is locked to Bob's new key, which the old one never saw.
        let (old_box, new_box) =
            (relay.store.mailbox(old).await.unwrap().unwrap(), relay.store.mailbox(new).await.unwrap().unwrap());
        let (old_key, new_key) = (old_box.sender_key.unwrap(), new_box.sender_key.unwrap());
        assert_ne!(old_key.0, new_key.0);
        assert_ne!(old_box.owner_key.0, new_box.owner_key.0);

        // The old mailbox outlives the grace period only.
        p.alice.tick().await.unwrap();
        assert!(relay.store.mailbox(old).await.unwrap().is_some());
        advance(&mut p.alice, ROTATION_GRACE + DRAIN_WAIT);
        p.alice.tick().await.unwrap();
        assert!(relay.store.mailbox(old).await.unwrap().is_none(), "old mailbox kept after the grace period");
        assert!(relay.store.mailbox(new).await.unwrap().is_some());

        p.bob.send_text("Alice", "later").await.unwrap();
        let (n, _) = until(&mut p.alice, |n| matches!(n, Notice::Message { .. })).await;
        assert_eq!(texts(&[n]), ["later"]);
        assert!(p.bob.history("Alice").unwrap().iter().all(|m| m.delivery == Delivery::Stored));
        assert_eq!(p.alice.history("Bob").unwrap().len(), 7);
        relay.stop().await;
    })
    .await;
}

#[tokio::test]
async fn conversations_rotate_weekly_by_themselves() {
    local(async {
        let relay = TestRelay::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let mut p = pair(&relay.address, tmp.path()).await;
        p.alice.tick().await.unwrap(); // schedules the first rotation
        let old = my_recv_id(&mut p.alice, "Bob");
        advance(&mut p.alice, ROTATION_INTERVAL - HOUR);
        p.alice.tick().await.unwrap();
        assert_eq!(my_recv_id(&mut p.alice, "Bob"), old, "rotated early");
        advance(&mut p.alice, ROTATION_JITTER + 2 * HOUR);
        p.alice.tick().await.unwrap();
        assert_ne!(my_recv_id(&mut p.alice, "Bob"), old, "no rotation after a week");
        drain(&mut p.bob, QUIET).await;
        p.bob.send_text("Alice", "to the new mailbox").await.unwrap();
        let (n, _) = until(&mut p.alice, |n| matches!(n, Notice::Message { .. })).await;
        assert_eq!(texts(&[n]), ["to the new mailbox"]);
        relay.stop().await;
    })
    .await;
}

/// A file sent under the timer disappears from both histories like a text (the saved
/// copy stays in the downloads directory), and gets a delivery receipt like a text.
#[tokio::test]
async fn a_file_under_the_timer_disappears_from_both_histories() {
    local(async {
        let relay = TestRelay::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let mut p = pair(&relay.address, tmp.path()).await;
        p.bob.set_file_settings(sotto_client::files::FileSettings::new(tmp.path().join("saved")));
        p.alice.set_timer("Bob", 3600).await.unwrap();
        until(&mut p.bob, |n| matches!(n, Notice::TimerChanged { .. })).await;
        let path = tmp.path().join("note.txt");
        std::fs::write(&path, "a file under the timer").unwrap();
        p.alice.send_file("Bob", &path, &sotto_client::files::NoProgress).await.unwrap();
        let (n, _) = until(&mut p.bob, |n| matches!(n, Notice::FileSaved { .. })).await;
        let Notice::FileSaved { path: saved, .. } = n else { unreachable!() };
        assert_eq!(history(&mut p.alice, "Bob").len(), 1);
        assert_eq!(history(&mut p.bob, "Alice").len(), 1);
        assert!(history(&mut p.bob, "Alice")[0].contains("saved to"), "{:?}", history(&mut p.bob, "Alice"));

        for c in [&mut p.alice, &mut p.bob] {
            advance(c, HOUR + MINUTE);
            c.tick().await.unwrap();
        }
        assert!(history(&mut p.alice, "Bob").is_empty());
        assert!(history(&mut p.bob, "Alice").is_empty());
        assert_eq!(std::fs::read_to_string(saved).unwrap(), "a file under the timer");
        relay.stop().await;
    })
    .await;
}
