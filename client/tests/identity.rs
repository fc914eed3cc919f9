//! A forged identity key stops the conversation until the user decides.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::SystemTime;

use common::*;
use ed25519_dalek::SigningKey;
use libsignal_protocol::ProtocolAddress;
use sotto_client::app::{AppError, DEVICE_ID, InviteForm, Notice, profile};
use sotto_client::relay::{ConnectOptions, RelayLink, sign_request};
use sotto_client::store::signal::ProtocolTxn;
use sotto_client::wire::content::{Body, Content, Text, encode_content, new_content_id};
use sotto_client::wire::envelope::{BodyKind, EnvelopeKey, seal};
use sotto_client::wire::invite::Invite;
use sotto_proto::{Request, Response, SendId};

#[tokio::test]
async fn a_forged_identity_key_stops_the_conversation() {
    tokio::task::LocalSet::new()
        .run_until(async {
            let relay = TestRelay::start().await;
            let tmp = tempfile::tempdir().unwrap();
            let mut p = pair(&relay.address, tmp.path()).await;

            // Eve holds Bob's transport credentials for Alice's mailbox (say, from a
            // seized phone's backup) and a bundle of Alice's from an invite meant for
            // someone else. She starts a session with her own identity key, as Bob.
            let link = p.alice.create_invite_as(Some("Carol"), None, InviteForm::Full).await.unwrap();
            let invite = Invite::parse(&link).unwrap();
            let mut eve = new_client(&tmp.path().join("eve"), &relay.address, "Eve");
            let ptxn = ProtocolTxn::new(eve.profile.store.txn());
            let alice_addr = ProtocolAddress::new("alice".into(), DEVICE_ID);
            let mut rng = rand::rng();
            ptxn.process_prekey_bundle(&alice_addr, &invite.bundle.to_bundle().unwrap(), SystemTime::now(), &mut rng)
                .await
                .unwrap();
            let content = Content {
                id: new_content_id(&mut rng),
                seq: 99,
                sent_at_ms: 1,
                expire_seconds: 0,
                body: Some(Body::Text(Text { text: "it's me, Bob, new phone".into() })),
            };
            let ct = ptxn
                .encrypt(&alice_addr, &encode_content(&content).unwrap(), SystemTime::now(), &mut rng)
                .await
                .unwrap();
            drop(ptxn);
            let peer = {
                let txn = p.bob.profile.store.txn();
                profile::contact_by_name(&txn, "Alice").unwrap().peer.clone().unwrap()
            };
            let env = seal(
                &EnvelopeKey::from_bytes(peer.envelope_key),
                &SendId(peer.send_id),
                BodyKind::PreKey,
                ct.serialize(),
                &mut rng,
            )
            .unwrap();
            let link = RelayLink::connect(&relay.address, &ConnectOptions::default()).await.unwrap();
            let mut req = Request::Send { send_id: SendId(peer.send_id), envelope: env, signature: None };
            sign_request(&SigningKey::from_bytes(&peer.sender_seed), &link.nonce(), &mut req);
            assert_eq!(link.request(req).await.unwrap(), Response::Ok);

            // Alice is told, shows nothing from Eve, and refuses to send to "Bob".
            let (n, seen) = until(&mut p.alice, |n| matches!(n, Notice::IdentityChanged { .. })).await;
            assert_eq!(n, Notice::IdentityChanged { name: "Bob".into() });
            assert!(texts(&seen).is_empty());
            assert!(matches!(p.alice.send_text("Bob", "hello?").await, Err(AppError::IdentityChanged(_))));
            assert!(matches!(p.alice.mark_verified("Bob"), Err(AppError::IdentityChanged(_))));
            let number = p.alice.safety_number("Bob").unwrap();
            assert!(number.changed);
            assert_ne!(
                number.digits,
                p.bob.safety_number("Alice").unwrap().digits,
                "the new number differs from Bob's"
            );
            assert!(p.alice.history("Bob").unwrap().iter().all(|m| !m.text.contains("new phone")));

            // Only if Alice accepts the new key does the held message show.
            let shown = p.alice.accept_new_identity("Bob").await.unwrap();
            assert_eq!(texts(&shown), ["it's me, Bob, new phone"]);
            relay.stop().await;
        })
        .await;
}
