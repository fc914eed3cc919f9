//! The per-conversation record the defences share, and the profile's settings for them.
//!
//! Kept apart from the contact record so that other features can change contacts without
//! touching this, and filed under a keyed hash of the conversation's message prefix, so
//! `put_message` (which knows only a message's key) can find the timer.

use serde::{Deserialize, Serialize};

use crate::app::error::AppError;
use crate::app::records::{self, ContactId};
use crate::store::{Table, Txn};

const SETTINGS_KEY: &[u8] = b"app.defences";
const STATE_DOMAIN: &[u8] = b"conversation-state:";

/// The profile's settings for the defences.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DefenceSettings {
    /// Send delivery receipts (off by default: a receipt tells the sender when you were online).
    #[serde(default)]
    pub receipts: bool,
}

/// A mailbox being retired after a rotation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Retiring {
    pub recv_id: [u8; 24],
    /// When the conversation moved away from it.
    pub since_ms: u64,
    /// When the peer confirmed it sends to the new mailbox (nothing new arrives here after).
    pub confirmed_ms: Option<u64>,
}

/// A sent message awaiting a receipt: its content id and its local counter.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Awaiting {
    pub content_id: [u8; 16],
    pub local: u64,
}

/// What the defences remember about one conversation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConvState {
    /// The disappearing-message timer in seconds (0: off) and when (by the setter's clock)
    /// it was set; the later setting wins (see `expiry`).
    pub timer_secs: u32,
    pub timer_set_at_ms: u64,
    /// Content ids received and not yet acknowledged by a receipt, and when to send them.
    pub receipt_ids: Vec<[u8; 16]>,
    pub receipts_due_ms: Option<u64>,
    /// Our sent messages that a receipt may acknowledge, oldest first.
    pub awaiting: Vec<Awaiting>,
    /// When this conversation's mailbox is next rotated (set on first sight).
    pub next_rotation_ms: Option<u64>,
    /// A new mailbox waiting for the peer's confirmation.
    pub rotation_pending: Option<[u8; 24]>,
    /// Old mailboxes still drained until their grace period ends.
    pub retiring: Vec<Retiring>,
}

/// The keyed-hash prefix under which a contact's messages are filed.
pub fn message_prefix(txn: &Txn<'_>, contact: &ContactId) -> [u8; 32] {
    txn.index_key(Table::Messages, contact)
}

fn state_key(txn: &Txn<'_>, prefix: &[u8]) -> [u8; 32] {
    let mut name = STATE_DOMAIN.to_vec();
    name.extend_from_slice(prefix);
    txn.index_key(Table::Conversations, &name)
}

/// The state of the conversation whose messages are filed under `prefix`.
pub fn by_prefix(txn: &Txn<'_>, prefix: &[u8]) -> Result<ConvState, AppError> {
    match txn.get(Table::Conversations, &state_key(txn, prefix))? {
        Some(raw) => Ok(records::decode(&raw)?),
        None => Ok(ConvState::default()),
    }
}

/// The state of the conversation with `contact`.
pub fn get(txn: &Txn<'_>, contact: &ContactId) -> Result<ConvState, AppError> {
    by_prefix(txn, &message_prefix(txn, contact))
}

/// Saves the state of the conversation with `contact`.
pub fn put(txn: &mut Txn<'_>, contact: &ContactId, s: &ConvState) -> Result<(), AppError> {
    let key = state_key(txn, &message_prefix(txn, contact));
    txn.put(Table::Conversations, &key, &records::encode(s)?);
    Ok(())
}

/// The defence settings (defaults if never set).
pub fn settings(txn: &Txn<'_>) -> Result<DefenceSettings, AppError> {
    match txn.get(Table::Meta, SETTINGS_KEY)? {
        Some(raw) => Ok(records::decode(&raw)?),
        None => Ok(DefenceSettings::default()),
    }
}

/// Saves the defence settings.
pub fn put_settings(txn: &mut Txn<'_>, s: &DefenceSettings) -> Result<(), AppError> {
    txn.put(Table::Meta, SETTINGS_KEY, &records::encode(s)?);
    Ok(())
}
