//! What the profile remembers, record by record. Every record is sealed by the encrypted
//! store; these types only say what is inside. Records holding secret keys zeroize on
//! drop and never print through `Debug`.

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::store::{Plain, StoreError};

/// A random local id for a contact. It names the contact's libsignal address, so
/// libsignal's own error messages never carry a name.
pub type ContactId = [u8; 16];

/// Profile-wide settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// The relay new mailboxes are made on.
    pub relay: String,
    /// The name this profile suggests to people it invites (may be empty).
    #[serde(default)]
    pub name: String,
}

/// A mailbox this profile owns.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct OwnMailbox {
    pub relay: String,
    pub recv_id: [u8; 24],
    pub send_id: [u8; 24],
    /// Seed of the Ed25519 key that proves ownership to the relay. Fresh per mailbox.
    pub owner_seed: [u8; 32],
    /// The key sealing envelopes into this mailbox, shared with its one sender.
    pub envelope_key: [u8; 32],
    /// Which contact sends here, once known.
    pub contact: Option<ContactId>,
    /// For an invite's mailbox: the invite it answers and the name to give whoever
    /// accepts (empty: use the name they suggest).
    pub invite: Option<PendingInvite>,
    /// A sender key to lock the mailbox to, not yet confirmed by the relay.
    pub secure_pending: Option<[u8; 32]>,
}

/// An invite not yet accepted.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct PendingInvite {
    pub invite_id: [u8; 16],
    pub name: String,
    /// For a group introduction: the identity key the one accepting must have (empty: anyone).
    #[serde(default)]
    pub expect_identity: Vec<u8>,
}

/// Where to send to a contact.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct PeerMailbox {
    pub relay: String,
    pub send_id: [u8; 24],
    pub envelope_key: [u8; 32],
    /// Seed of the Ed25519 key this profile signs sends into that mailbox with.
    pub sender_seed: [u8; 32],
}

/// Someone this profile talks to.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Contact {
    pub id: ContactId,
    /// What the user calls them. Any script; kept byte-exact.
    pub name: String,
    /// What they call themselves (from their profile-name message).
    pub their_name: String,
    pub peer: Option<PeerMailbox>,
    /// The receive id of the mailbox they send into.
    pub my_recv_id: [u8; 24],
    /// The user compared safety numbers and marked them verified.
    pub verified: bool,
    /// Their identity key changed and the user has not accepted the new one: nothing is
    /// sent to them until then.
    pub identity_changed: bool,
    /// The next sequence number for a message to them.
    pub next_seq: u64,
    /// Local counter for ordering their history.
    pub next_local: u64,
}

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    In,
    Out,
}

/// Where an outgoing message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivery {
    /// In the outbox, not yet stored by the relay.
    Queued,
    /// The relay has durably stored it.
    Stored,
    /// The relay refused it for good.
    Failed,
    /// A received message.
    Received,
    /// The recipient's receipt says it arrived.
    Delivered,
}

/// One message in a conversation.
#[derive(Debug, Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Message {
    #[zeroize(skip)]
    pub direction: Direction,
    pub text: String,
    /// The sender's clock, in milliseconds since the epoch.
    pub sent_at_ms: u64,
    /// The sender's sequence number in this conversation.
    pub seq: u64,
    #[zeroize(skip)]
    pub delivery: Delivery,
}

/// A sealed envelope waiting for the relay to store it. The ciphertext is kept as sent:
/// a resend sends these same bytes, so the ratchet never runs twice for one message.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Outgoing {
    pub contact: ContactId,
    /// The message record this envelope carries (its key in the Messages table).
    pub message_key: Vec<u8>,
    pub relay: String,
    pub send_id: [u8; 24],
    pub sender_seed: [u8; 32],
    #[serde(with = "super::compact_bytes")]
    pub envelope: Vec<u8>,
}

/// Serializes a record for sealing.
pub fn encode<T: Serialize>(value: &T) -> Result<Plain, StoreError> {
    serde_json::to_vec(value).map(Plain::new).map_err(|_| StoreError::CorruptRecord("app record"))
}

/// Parses a record that was opened.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|_| StoreError::CorruptRecord("app record"))
}
