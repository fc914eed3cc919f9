//! Several `sotto-relay` processes sharing one key and one Redis Cluster, behind one
//! address (a round-robin proxy): a conversation spans nodes, and survives one node being
//! SIGKILLed while clients reconnect through the address.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster;
mod common;
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{Mailbox, ack, create_mailbox, envelope, next_delivery, send, subscribe};
use sotto_client::relay::{ConnectOptions, Event, RelayLink};
use sotto_proto::{Push, RelayAddress, Response, SendId};
use support::{RelayProcess, free_port};

/// How long a client waits for what it expects before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// Two relay nodes on the shared cluster (one namespace), the second with a copy of the
/// first one's data directory, and the proxy in front of them.
struct TwoNodes {
    nodes: Vec<Option<RelayProcess>>,
    proxy: cluster::Proxy,
    address: RelayAddress,
    _tmp: tempfile::TempDir,
}

impl TwoNodes {
    async fn start() -> Self {
        let url = cluster::store_url(&cluster::seeds(), &cluster::namespace());
        let tmp = tempfile::tempdir().unwrap();
        let (a_dir, b_dir) = (tmp.path().join("a"), tmp.path().join("b"));
        let a = start_node(tmp.path(), &a_dir, &url, "a.log");
        cluster::copy_dir(&a_dir, &b_dir);
        let b = start_node(tmp.path(), &b_dir, &url, "b.log");
        assert_eq!(a.address.pin, b.address.pin, "nodes with one key must have one pin");
        let backends = [&a, &b].map(|n| format!("127.0.0.1:{}", n.address.port).parse().unwrap());
        let proxy = cluster::Proxy::start(backends.to_vec()).await;
        let address = proxy.address(&a.address.pin.unwrap());
        Self { nodes: vec![Some(a), Some(b)], proxy, address, _tmp: tmp }
    }

    async fn link(&self) -> RelayLink {
        RelayLink::connect(&self.address, &ConnectOptions::default()).await.unwrap()
    }

    fn choices(&self) -> Vec<usize> {
        self.proxy.choices.lock().unwrap().clone()
    }
}

impl Drop for TwoNodes {
    fn drop(&mut self) {
        for node in self.nodes.iter_mut().filter_map(Option::take) {
            node.kill();
        }
    }
}

fn start_node(cwd: &Path, data: &Path, url: &str, log: &str) -> RelayProcess {
    RelayProcess::start(cwd, free_port(), &["--data", data.to_str().unwrap(), "--store", url], &cwd.join(log))
}

#[tokio::test]
async fn a_client_on_one_node_receives_what_another_sent_through_the_other() {
    let nodes = TwoNodes::start().await;
    let mut alice = nodes.link().await;
    let mut bob = nodes.link().await;
    assert_eq!(nodes.choices(), vec![0, 1], "the proxy should have put Alice and Bob on different nodes");

    let alice_mb = create_mailbox(&alice).await;
    let bob_mb = create_mailbox(&bob).await;
    assert_eq!(subscribe(&alice, &alice_mb).await, Response::Ok);
    assert_eq!(subscribe(&bob, &bob_mb).await, Response::Ok);
    for i in 0..20u8 {
        assert_eq!(send(&bob, alice_mb.send_id, i).await, Response::Ok);
        let (r, seq, env) = next_delivery(&mut alice).await;
        assert_eq!((r, env), (alice_mb.recv_id, envelope(i)));
        assert_eq!(ack(&alice, &alice_mb, seq).await, Response::Ok);

        assert_eq!(send(&alice, bob_mb.send_id, 100 + i).await, Response::Ok);
        let (r, seq, env) = next_delivery(&mut bob).await;
        assert_eq!((r, env), (bob_mb.recv_id, envelope(100 + i)));
        assert_eq!(ack(&bob, &bob_mb, seq).await, Response::Ok);
    }
    // Deleting on one node ends the subscription held on the other.
    let del = common::signed(
        &bob,
        &alice_mb.owner,
        sotto_proto::Request::DeleteMailbox { recv_id: alice_mb.recv_id, signature: common::NO_SIG },
    );
    assert_eq!(bob.request(del).await.unwrap(), Response::Ok);
    let ended = tokio::time::timeout(PATIENCE, alice.next_event()).await.unwrap();
    assert_eq!(ended, Some(Event::Push(Push::Unsubscribed { recv_id: alice_mb.recv_id })));
}

#[tokio::test]
async fn subscribing_on_one_node_ends_the_subscription_held_on_the_other() {
    let nodes = TwoNodes::start().await;
    let mut first = nodes.link().await;
    let second = nodes.link().await;
    assert_eq!(nodes.choices(), vec![0, 1]);
    let mb = create_mailbox(&first).await;
    assert_eq!(subscribe(&first, &mb).await, Response::Ok);
    // The owner comes back on the other node (say, from a new network) while the old
    // connection still looks alive: as within one relay, the newer subscription wins.
    assert_eq!(subscribe(&second, &mb).await, Response::Ok);
    let ended = tokio::time::timeout(PATIENCE, first.next_event()).await.unwrap();
    assert_eq!(ended, Some(Event::Push(Push::Unsubscribed { recv_id: mb.recv_id })));
    assert_eq!(send(&first, mb.send_id, 9).await, Response::Ok);
    assert!(common::quiet_for(&mut first, 500).await, "the ended subscription still delivers");
}

/// One party of a conversation that reconnects through the address when its link dies.
struct Party {
    address: RelayAddress,
    link: RelayLink,
    mailbox: Mailbox,
    /// How often each tag arrived.
    received: BTreeMap<u8, u32>,
    reconnects: u32,
}

impl Party {
    async fn join(nodes: &TwoNodes) -> Self {
        let link = nodes.link().await;
        let mailbox = create_mailbox(&link).await;
        assert_eq!(subscribe(&link, &mailbox).await, Response::Ok);
        Self { address: nodes.address.clone(), link, mailbox, received: BTreeMap::new(), reconnects: 0 }
    }

    /// Connects again through the address and subscribes again, until it works.
    async fn reconnect(&mut self) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            assert!(tokio::time::Instant::now() < deadline, "could not reconnect through the address");
            if let Ok(link) = RelayLink::connect(&self.address, &ConnectOptions::default()).await {
                self.link = link;
                if subscribe(&self.link, &self.mailbox).await == Response::Ok {
                    self.reconnects += 1;
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends until the relay acknowledges, reconnecting as needed.
    async fn send(&mut self, to: SendId, tag: u8) {
        loop {
            match self
                .link
                .request(sotto_proto::Request::Send { send_id: to, envelope: envelope(tag), signature: None })
                .await
            {
                Ok(Response::Ok) => return,
                Ok(other) => panic!("send refused: {other:?}"),
                Err(_) => self.reconnect().await,
            }
        }
    }

    /// Reads deliveries (acknowledging each) until `tag` has arrived.
    async fn receive(&mut self, tag: u8) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !self.received.contains_key(&tag) {
            assert!(tokio::time::Instant::now() < deadline, "tag {tag} never arrived");
            match tokio::time::timeout(Duration::from_secs(1), self.link.next_event()).await {
                Ok(Some(Event::Push(Push::Deliver { seq, envelope: env, .. }))) => {
                    *self.received.entry(env.as_bytes()[0]).or_default() += 1;
                    let _ = ack(&self.link, &self.mailbox, seq).await;
                }
                Ok(Some(_)) | Err(_) => {}
                Ok(None) => self.reconnect().await,
            }
        }
    }
}

#[tokio::test]
async fn a_relay_node_killed_mid_conversation_loses_nothing() {
    let mut nodes = TwoNodes::start().await;
    let mut alice = Party::join(&nodes).await;
    let mut bob = Party::join(&nodes).await;
    assert_eq!(nodes.choices(), vec![0, 1]);
    const ROUNDS: u8 = 40;
    const KILL_AT: u8 = 15;
    for i in 0..ROUNDS {
        if i == KILL_AT {
            // Alice's node dies without a goodbye, between one message and the next.
            nodes.nodes[0].take().unwrap().kill();
        }
        alice.send(bob.mailbox.send_id, i).await;
        bob.send(alice.mailbox.send_id, 100 + i).await;
        bob.receive(i).await;
        alice.receive(100 + i).await;
    }
    assert!(alice.reconnects >= 1, "Alice's node was killed; she must have reconnected");
    assert_eq!(bob.reconnects, 0, "Bob's node stayed up");
    assert_eq!(*nodes.choices().last().unwrap(), 1, "the reconnection went to the surviving node");
    let want_bob: Vec<u8> = (0..ROUNDS).collect();
    let want_alice: Vec<u8> = (100..100 + ROUNDS).collect();
    assert_eq!(bob.received.keys().copied().collect::<Vec<_>>(), want_bob);
    assert_eq!(alice.received.keys().copied().collect::<Vec<_>>(), want_alice);
    // Delivery is at least once: only what was in flight at the crash may come twice.
    let doubles = alice.received.values().chain(bob.received.values()).filter(|&&n| n > 1).count();
    assert!(doubles <= 2, "{doubles} envelopes delivered more than once");
}
