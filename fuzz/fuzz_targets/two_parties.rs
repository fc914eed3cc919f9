//! A two-party conversation over the real client stores, driven by a sequence of actions and
//! checked after every step against a model of what libsignal promises. Shared by the
//! `interaction` fuzz target and `client/tests/interaction.rs`, so that the fuzzer and the
//! normal test suite check one set of invariants.
//!
//! Alice starts a PQXDH session from Bob's prekey bundle. Then each action has one party
//! encrypt a message (and commit), or does something to the messages in flight to one party:
//! deliver one (the oldest, or any other, so out of order), drop one, deliver again one that
//! already arrived, or restart the party (close its store and reopen it from disk). The relay
//! delivers at least once and the network loses and reorders, so all of these happen.
//! Invariants:
//! - a delivered message decrypts to exactly what was sent, and only once: a second delivery
//!   fails with `DuplicatedMessage` and leaves the stored session as it was;
//! - dropped messages never stop later ones;
//! - sessions stay post-quantum (PQXDH and SPQR), across restarts too;
//! - Alice's messages are PreKey messages until she hears from Bob; Bob cannot send first.
//!
//! The model follows the Double Ratchet as libsignal implements it: each time a party hears a
//! new sending chain of its peer, it keeps a receiving chain for it (only the last
//! [`RECEIVER_CHAINS`]) and starts a new sending chain of its own. A message whose chain was
//! dropped can never be read (forward secrecy): delivering it must fail, and change nothing.
//!
//! Every encrypt or decrypt is one `ProtocolTxn`, committed only on success, as the client
//! does. libsignal's calls are async only because of its store traits; Sotto's stores never
//! wait, so each future is driven with `now_or_never` (as libsignal's own fuzzer does), which
//! also checks that nothing in the stores ever waits.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use futures_util::FutureExt;
use libsignal_protocol::{
    CiphertextMessage, CiphertextMessageType, DeviceId, PreKeySignalMessage, ProtocolAddress, SignalMessage,
    SignalProtocolError,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sotto_client::store::signal::{KyberKind, ProtocolTxn, create_prekey_bundle, generate_identity, load_session};
use sotto_client::store::{EncryptedStore, KdfParams};

const PASSPHRASE: &[u8] = b"interaction";
/// How many of a peer's sending chains libsignal keeps receiving on (`MAX_RECEIVER_CHAINS`).
const RECEIVER_CHAINS: usize = 5;
/// Sends stop counting as actions past this, far below the 2,000 skipped message keys
/// libsignal (and SPQR) keep per chain: losing keys to that limit is not what this tests.
const MAX_SENDS: usize = 1_000;
/// Longest message body; the length is not what this tests either, so bodies stay short.
const MAX_MESSAGE_LEN: usize = 255;

/// One of the two parties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The initiator: she starts the session from Bob's bundle.
    Alice,
    /// The responder: he can send only once a message from Alice has arrived.
    Bob,
}

/// One step of the conversation. `pick` numbers messages from the oldest, modulo how many
/// there are; an action on an empty list does nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The party encrypts a message with this many bytes (after a unique 4-byte tag).
    Send(Side, u8),
    /// The `pick`-th message in flight to the party arrives (0: in order).
    Deliver(Side, u8),
    /// The newest message in flight to the party arrives, overtaking all the others.
    DeliverLatest(Side),
    /// The `pick`-th message in flight to the party is lost.
    Drop(Side, u8),
    /// The `pick`-th message the party has already received arrives again.
    Replay(Side, u8),
    /// The party closes its store and opens it again from disk.
    Restart(Side),
}

/// A message on the wire, with what the model knows about it.
#[derive(Clone)]
struct Message {
    kind: CiphertextMessageType,
    bytes: Vec<u8>,
    plaintext: Vec<u8>,
    /// The sender's sending chain, numbered by the model.
    chain: u32,
}

impl Message {
    /// Parses the serialized form, as a receiver would.
    fn parse(&self) -> CiphertextMessage {
        match self.kind {
            CiphertextMessageType::PreKey => {
                CiphertextMessage::PreKeySignalMessage(PreKeySignalMessage::try_from(self.bytes.as_slice()).unwrap())
            }
            CiphertextMessageType::Whisper => {
                CiphertextMessage::SignalMessage(SignalMessage::try_from(self.bytes.as_slice()).unwrap())
            }
            other => panic!("unexpected message type {other:?}"),
        }
    }
}

struct Party {
    side: Side,
    dir: PathBuf,
    /// `None` only inside [`Party::restart`].
    store: Option<EncryptedStore>,
    /// How this party names the other.
    peer: ProtocolAddress,
    /// Messages in flight to this party, oldest first.
    inbox: Vec<Message>,
    /// Messages this party has decrypted, for replays.
    received: Vec<Message>,
    /// The model: this party's current sending chain.
    chain: u32,
    /// The model: the peer's chains this party can still receive on, oldest first.
    peer_chains: VecDeque<u32>,
    heard_from_peer: bool,
}

impl Party {
    fn create(root: &Path, side: Side, rng: &mut StdRng) -> Party {
        let (name, peer) = match side {
            Side::Alice => ("alice", "bob"),
            Side::Bob => ("bob", "alice"),
        };
        let dir = root.join(name);
        let mut store = EncryptedStore::create(&dir, PASSPHRASE, KdfParams::insecure_for_tests()).unwrap();
        let mut txn = store.txn();
        generate_identity(&mut txn, rng).unwrap();
        txn.commit().unwrap();
        Party {
            side,
            dir,
            store: Some(store),
            peer: ProtocolAddress::new(peer.to_owned(), DeviceId::new(1).unwrap()),
            inbox: Vec::new(),
            received: Vec::new(),
            chain: 0,
            peer_chains: VecDeque::new(),
            heard_from_peer: false,
        }
    }

    fn store(&mut self) -> &mut EncryptedStore {
        self.store.as_mut().expect("a store is open between actions")
    }

    fn has_session(&self) -> bool {
        self.side == Side::Alice || self.heard_from_peer
    }

    /// The stored session record, to check that a failed decryption left it alone.
    fn session_bytes(&mut self) -> Option<Vec<u8>> {
        let peer = self.peer.clone();
        let txn = self.store().txn();
        load_session(&txn, &peer).unwrap().map(|record| record.serialize().unwrap())
    }

    fn assert_post_quantum(&mut self, now: SystemTime) {
        let peer = self.peer.clone();
        let side = self.side;
        let ptx = ProtocolTxn::new(self.store().txn());
        assert!(ptx.session_is_post_quantum(&peer, now).unwrap(), "{side:?}'s session is no longer post-quantum");
    }

    /// One transaction, committed only if decryption succeeds; on error it is dropped, so
    /// nothing of the attempt is stored.
    fn decrypt(
        &mut self,
        message: &Message,
        rng: &mut StdRng,
        now: SystemTime,
    ) -> Result<Vec<u8>, SignalProtocolError> {
        let ciphertext = message.parse();
        let store = self.store.as_mut().expect("a store is open between actions");
        let ptx = ProtocolTxn::new(store.txn());
        let plaintext = sync(ptx.decrypt(&self.peer, &ciphertext, now, rng))?;
        ptx.commit().unwrap();
        Ok(plaintext)
    }

    /// Whether libsignal still holds (or would create) a receiving chain for `chain`.
    fn can_receive(&self, chain: u32) -> bool {
        self.peer_chains.contains(&chain) || self.peer_chains.back().is_none_or(|&newest| chain > newest)
    }

    /// The model's side of a successful decryption.
    fn heard(&mut self, chain: u32) {
        self.heard_from_peer = true;
        if self.peer_chains.back().is_none_or(|&newest| chain > newest) {
            // A new ratchet key from the peer: libsignal adds a receiving chain for it, forgets
            // the oldest beyond its limit, and answers with a new sending chain of its own.
            self.peer_chains.push_back(chain);
            if self.peer_chains.len() > RECEIVER_CHAINS {
                self.peer_chains.pop_front();
            }
            self.chain += 1;
        }
    }

    /// Closes the store and reopens it: every commit must have reached the disk.
    fn restart(&mut self, now: SystemTime) {
        let before = self.session_bytes();
        // Closed first: sled locks its directory while open.
        drop(self.store.take());
        self.store = Some(EncryptedStore::open(&self.dir, PASSPHRASE).unwrap());
        assert!(self.session_bytes() == before, "{:?}'s session changed across a restart", self.side);
        if self.has_session() {
            self.assert_post_quantum(now);
        }
    }
}

/// The conversation and its model. Drop it before the directory it lives in.
pub struct Interaction {
    parties: [Party; 2],
    rng: StdRng,
    /// One instant for the whole run: nothing here depends on time passing, and a fixed one
    /// keeps what a run does reproducible from its seed.
    now: SystemTime,
    sent: usize,
}

impl Interaction {
    /// Creates both profiles under `root` and Alice's session with Bob, from a bundle whose
    /// ML-KEM prekey is of `kyber` kind. `seed` drives every choice libsignal makes.
    pub fn new(root: &Path, seed: u64, kyber: KyberKind) -> Interaction {
        let mut rng = StdRng::seed_from_u64(seed);
        let now = SystemTime::now();
        let mut alice = Party::create(root, Side::Alice, &mut rng);
        let mut bob = Party::create(root, Side::Bob, &mut rng);

        let mut txn = bob.store().txn();
        let bundle = create_prekey_bundle(&mut txn, DeviceId::new(1).unwrap(), kyber, &mut rng).unwrap();
        txn.commit().unwrap();

        let peer = alice.peer.clone();
        let ptx = ProtocolTxn::new(alice.store().txn());
        sync(ptx.process_prekey_bundle(&peer, &bundle, now, &mut rng)).unwrap();
        ptx.commit().unwrap();
        // libsignal gives Alice a receiving chain for Bob's signed prekey (his chain 0, which
        // he never sends on: his first message comes from the chain he starts on hearing her).
        alice.peer_chains.push_back(0);
        alice.assert_post_quantum(now);

        Interaction { parties: [alice, bob], rng, now, sent: 0 }
    }

    /// Performs one action and checks the invariants it touches. Returns whether a message
    /// was read (only a delivery reads one).
    pub fn apply(&mut self, action: Action) -> bool {
        match action {
            Action::Send(side, len) if self.sent < MAX_SENDS => self.send(side, usize::from(len)),
            Action::Send(..) => {}
            Action::Deliver(side, pick) => return self.deliver(side, usize::from(pick)),
            Action::DeliverLatest(side) => {
                let newest = self.party(side).inbox.len().saturating_sub(1);
                return self.deliver(side, newest);
            }
            Action::Drop(side, pick) => {
                let inbox = &mut self.party(side).inbox;
                if !inbox.is_empty() {
                    inbox.remove(usize::from(pick) % inbox.len());
                }
            }
            Action::Replay(side, pick) => self.replay(side, pick),
            Action::Restart(side) => {
                let now = self.now;
                self.party(side).restart(now);
            }
        }
        false
    }

    /// Delivers everything still in flight, in order, then has each party send one message
    /// that must arrive: whatever was lost or reordered before, the conversation goes on.
    pub fn finish(&mut self) {
        for side in [Side::Alice, Side::Bob] {
            while !self.party(side).inbox.is_empty() {
                self.deliver(side, 0);
            }
        }
        for (from, to) in [(Side::Alice, Side::Bob), (Side::Bob, Side::Alice)] {
            self.send(from, 16);
            assert!(self.deliver(to, 0), "{to:?} could not read the last message");
        }
    }

    fn party(&mut self, side: Side) -> &mut Party {
        &mut self.parties[side as usize]
    }

    fn send(&mut self, side: Side, len: usize) {
        let Interaction { parties, rng, now, sent } = self;
        let [alice, bob] = parties;
        let (me, them) = match side {
            Side::Alice => (alice, bob),
            Side::Bob => (bob, alice),
        };
        // A unique tag, so that a message decrypting as another one cannot go unnoticed.
        let mut plaintext = u32::try_from(*sent).unwrap().to_be_bytes().to_vec();
        plaintext.extend((0..len.min(MAX_MESSAGE_LEN)).map(|_| rng.random::<u8>()));

        let has_session = me.has_session();
        let store = me.store.as_mut().expect("a store is open between actions");
        let ptx = ProtocolTxn::new(store.txn());
        let result = sync(ptx.encrypt(&me.peer, &plaintext, *now, rng));
        if !has_session {
            assert!(result.is_err(), "{side:?} encrypted without a session");
            return;
        }
        let ciphertext = result.unwrap_or_else(|e| panic!("{side:?} could not encrypt: {e}"));
        ptx.commit().unwrap();
        let expected = if me.heard_from_peer { CiphertextMessageType::Whisper } else { CiphertextMessageType::PreKey };
        assert_eq!(ciphertext.message_type(), expected, "{side:?} sent the wrong kind of message");
        me.assert_post_quantum(*now);

        them.inbox.push(Message {
            kind: ciphertext.message_type(),
            bytes: ciphertext.serialize().to_vec(),
            plaintext,
            chain: me.chain,
        });
        *sent += 1;
    }

    /// Delivers the `pick`-th message in flight to `side`; returns whether it was read.
    fn deliver(&mut self, side: Side, pick: usize) -> bool {
        let Interaction { parties, rng, now, .. } = self;
        let me = &mut parties[side as usize];
        if me.inbox.is_empty() {
            return false;
        }
        let message = me.inbox.remove(pick % me.inbox.len());
        let before = me.session_bytes();
        let result = me.decrypt(&message, rng, *now);
        if me.can_receive(message.chain) {
            let plaintext = result.unwrap_or_else(|e| panic!("{side:?} could not decrypt a message in flight: {e}"));
            assert!(plaintext == message.plaintext, "{side:?} decrypted something other than what was sent");
            me.heard(message.chain);
            me.assert_post_quantum(*now);
            me.received.push(message);
            true
        } else {
            // Its chain is gone, and forward secrecy says it stays unreadable.
            assert!(result.is_err(), "{side:?} decrypted a message from a chain it should have forgotten");
            assert!(me.session_bytes() == before, "a failed decryption changed {side:?}'s session");
            false
        }
    }

    /// Delivers again the `pick`-th message `side` has already read: it must be refused as a
    /// duplicate and change nothing.
    fn replay(&mut self, side: Side, pick: u8) {
        let Interaction { parties, rng, now, .. } = self;
        let me = &mut parties[side as usize];
        if me.received.is_empty() {
            return;
        }
        let message = me.received[usize::from(pick) % me.received.len()].clone();
        let before = me.session_bytes();
        let result = me.decrypt(&message, rng, *now);
        if me.peer_chains.contains(&message.chain) {
            assert!(
                matches!(result, Err(SignalProtocolError::DuplicatedMessage(..))),
                "{side:?} took a replay for {:?}",
                result.map(|_| "a new message")
            );
        } else {
            // Its chain is gone: refused all the same, for another reason.
            assert!(result.is_err(), "{side:?} decrypted a replay from a chain it should have forgotten");
        }
        assert!(me.session_bytes() == before, "a replay changed {side:?}'s session");
    }
}

/// Drives a libsignal future that never waits; see the module docs.
fn sync<F: Future>(future: F) -> F::Output {
    future.now_or_never().expect("Sotto's stores never wait")
}
