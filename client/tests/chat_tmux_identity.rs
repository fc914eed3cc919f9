//! `sotto chat` when a contact's identity key changes: the real binary in tmux (80×24) against
//! a real relay. A forger who holds Bob's transport credentials for Alice's mailbox (read
//! from Bob's profile, as a seized phone's backup would give them) and a bundle of Alice's
//! from an invite meant for someone else starts a session as "Bob" with her own identity key.
//! The chat shows the banner and the mark, refuses to send, and shows the held message only
//! once Alice accepts the new key in the safety-number screen.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::binary::*;
use common::tmux::Tmux;
use common::*;
use ed25519_dalek::SigningKey;
use libsignal_protocol::ProtocolAddress;
use sotto_client::app::records::PeerMailbox;
use sotto_client::app::{Client, DEVICE_ID, profile};
use sotto_client::relay::{ConnectOptions, RelayLink, sign_request};
use sotto_client::store::signal::ProtocolTxn;
use sotto_client::wire::content::{Body, Content, Text, encode_content, new_content_id};
use sotto_client::wire::envelope::{BodyKind, EnvelopeKey, seal};
use sotto_client::wire::invite::Invite;
use sotto_proto::{RelayAddress, Request, Response, SendId};

/// What Bob's profile (made by the binary) holds for sending to Alice.
fn bobs_mailbox_at_alice(b: &Path) -> PeerMailbox {
    // sled releases its lock shortly after the last `sotto` on the profile exits.
    for _ in 0..50 {
        if let Ok(mut bob) = Client::open(b, PASSPHRASE.as_bytes(), ConnectOptions::default()) {
            let txn = bob.profile.store.txn();
            return profile::contact_by_name(&txn, "Alice").unwrap().peer.clone().unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("Bob's profile would not open");
}

/// Eve, as "Bob": a new session with Alice's `invite` bundle under her own identity key,
/// sealed for Bob's mailbox at Alice and signed with Bob's sender key.
async fn forge(relay: &RelayAddress, eve_dir: &Path, invite: &Invite, peer: &PeerMailbox, text: &str) {
    let mut eve = new_client(eve_dir, relay, "Eve");
    let ptxn = ProtocolTxn::new(eve.profile.store.txn());
    let alice = ProtocolAddress::new("alice".into(), DEVICE_ID);
    let mut rng = rand::rng();
    ptxn.process_prekey_bundle(&alice, &invite.bundle.to_bundle().unwrap(), SystemTime::now(), &mut rng).await.unwrap();
    let content = Content {
        id: new_content_id(&mut rng),
        seq: 99,
        sent_at_ms: 1_795_425_300_000,
        expire_seconds: 0,
        body: Some(Body::Text(Text { text: text.into() })),
    };
    let ct = ptxn.encrypt(&alice, &encode_content(&content).unwrap(), SystemTime::now(), &mut rng).await.unwrap();
    drop(ptxn);
    let env = seal(
        &EnvelopeKey::from_bytes(peer.envelope_key),
        &SendId(peer.send_id),
        BodyKind::PreKey,
        ct.serialize(),
        &mut rng,
    )
    .unwrap();
    let link = RelayLink::connect(relay, &ConnectOptions::default()).await.unwrap();
    let mut req = Request::Send { send_id: SendId(peer.send_id), envelope: env, signature: None };
    sign_request(&SigningKey::from_bytes(&peer.sender_seed), &link.nonce(), &mut req);
    assert_eq!(link.request(req).await.unwrap(), Response::Ok);
}

#[test]
fn a_changed_identity_key_shows_the_banner_and_is_accepted_in_the_chat() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let relay = rt.block_on(TestRelay::start());
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    introduce(&relay.address.to_string(), &a, &b);
    let peer = bobs_mailbox_at_alice(&b);

    let t = Tmux::start(&a, 80, 24);
    t.until(&["● online", "to Bob", "not verified (F4)"]);
    // Alice's bundle, from a full invite meant for Carol (made by the chat's own process).
    let out = ok(&a, &["invite", "--full", "--name", "Carol", "--no-qr"]);
    let invite = Invite::parse(out.lines().find(|l| l.starts_with("sotto:")).unwrap()).unwrap();
    rt.block_on(tokio::task::LocalSet::new().run_until(forge(
        &relay.address,
        &tmp.path().join("eve"),
        &invite,
        &peer,
        "it's me, Bob, new phone",
    )));

    // The banner, the mark in the list, and nothing of the forged message.
    let s = t.until(&["⚠ The safety number of Bob changed", "! Bob"]);
    assert!(!s.contains("new phone"), "{s}");
    // Nothing is sent to "Bob" meanwhile: the words come back to the input.
    t.type_text("are you there?");
    t.key("Enter");
    t.until(&["safety number of \"Bob\" changed"]);
    t.until(&["are you there?"]);
    t.key("C-u");
    // The safety-number screen says the key changed; accepting it shows the held message.
    t.key("F4");
    t.until(&["Their key CHANGED", "A accept the new number"]);
    t.key("a");
    t.until(&["Status: not verified."]);
    t.key("Escape");
    let s = t.until(&["Bob: it's me, Bob, new phone"]);
    assert!(!s.contains("⚠ The safety number"), "{s}");
    t.until(&["  Bob"]);

    t.key("C-q");
    t.until(&["CHAT-EXITED 0"]);
    rt.block_on(relay.stop());
}
