//! What the relay operator holds: after a conversation between three people, everything in
//! the relay's store is read back. It holds no identity key, name, text, address, envelope
//! key or private key, and nothing ties one person's mailboxes together.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;

use common::*;
use sotto_client::app::{Client, Notice, profile};
use sotto_client::store::signal::local_identity;
use sotto_server::store::kv::Kv;

async fn introduce(a: &mut Client, b: &mut Client, a_calls_b: &str, b_calls_a: &str) {
    let link = a.create_invite(Some(a_calls_b), None).await.unwrap();
    b.accept_invite(&link, b_calls_a).await.unwrap();
    a.subscribe_all().await.unwrap();
    until(a, |n| matches!(n, Notice::Joined { .. })).await;
    b.subscribe_all().await.unwrap();
    until(b, |n| matches!(n, Notice::Ready { .. })).await;
}

#[tokio::test]
async fn the_relay_store_holds_nothing_that_names_or_links_anyone() {
    tokio::task::LocalSet::new()
        .run_until(async {
            let relay = TestRelay::start().await;
            let tmp = tempfile::tempdir().unwrap();
            let mut alice = new_client(&tmp.path().join("a"), &relay.address, "Aynur");
            let mut bob = new_client(&tmp.path().join("b"), &relay.address, "Bilal");
            let mut carol = new_client(&tmp.path().join("c"), &relay.address, "Chodron");
            introduce(&mut alice, &mut bob, "Bilal", "Aynur").await;
            introduce(&mut bob, &mut carol, "Chodron", "Bilal").await;
            introduce(&mut carol, &mut alice, "Aynur", "Chodron").await;
            let texts = ["meet at the tea house", "བཀྲ་ཤིས་", "ئۇيغۇر"];
            alice.send_text("Bilal", texts[0]).await.unwrap();
            bob.send_text("Chodron", texts[1]).await.unwrap();
            // Left undelivered on purpose: queued envelopes are what a seized relay holds.
            carol.send_text("Aynur", texts[2]).await.unwrap();

            // Everything the relay stores.
            let rows = relay.store.engine().scan(&[0x00], &[0xff; 64], usize::MAX).unwrap();
            let stored: Vec<u8> = rows.iter().flat_map(|(k, v)| k.iter().chain(v.iter()).copied()).collect();

            let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
            for name in ["Aynur", "Bilal", "Chodron"] {
                needles.push((format!("name {name}"), name.as_bytes().to_vec()));
            }
            for t in texts {
                needles.push((format!("text {t}"), t.as_bytes().to_vec()));
            }
            needles.push(("loopback address".into(), b"127.0.0.1".to_vec()));
            needles.push(("loopback address bytes".into(), vec![127, 0, 0, 1]));
            let mut owner_keys_by_person = Vec::new();
            for (who, c) in [("Aynur", &mut alice), ("Bilal", &mut bob), ("Chodron", &mut carol)] {
                let txn = c.profile.store.txn();
                let id = local_identity(&txn).unwrap();
                needles.push((
                    format!("{who}'s identity key"),
                    id.identity_key().public_key().public_key_bytes().to_vec(),
                ));
                let mut owners = Vec::new();
                for m in profile::own_mailboxes(&txn).unwrap() {
                    needles.push((format!("{who}'s envelope key"), m.envelope_key.to_vec()));
                    needles.push((format!("{who}'s owner private key"), m.owner_seed.to_vec()));
                    owners.push(ed25519_dalek::SigningKey::from_bytes(&m.owner_seed).verifying_key().to_bytes());
                }
                for contact in profile::contacts(&txn).unwrap() {
                    let peer = contact.peer.clone().unwrap();
                    needles.push((format!("{who}'s sender private key"), peer.sender_seed.to_vec()));
                }
                owner_keys_by_person.push(owners);
            }
            for (what, needle) in &needles {
                assert!(!stored.windows(needle.len()).any(|w| w == needle.as_slice()), "the relay stores {what}");
            }

            // Mailbox records: each owner key and sender key appears once, so no key joins
            // two mailboxes; each person's mailboxes have pairwise unrelated keys.
            let mailboxes: Vec<&(Vec<u8>, Vec<u8>)> = rows.iter().filter(|(k, _)| k[0] == b'M').collect();
            assert_eq!(mailboxes.len(), 6, "two mailboxes per pair of contacts");
            let mut keys = HashSet::new();
            for (_, v) in &mailboxes {
                let owner = &v[24..56];
                assert!(keys.insert(owner.to_vec()), "an owner key is shared between mailboxes");
                if v[56] == 1 {
                    assert!(keys.insert(v[57..89].to_vec()), "a sender key is shared between mailboxes");
                }
            }
            for owners in &owner_keys_by_person {
                assert_eq!(owners.len(), 2);
                assert_ne!(owners[0], owners[1]);
            }
            relay.stop().await;
        })
        .await;
}
