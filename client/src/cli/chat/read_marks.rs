//! How far each conversation has been read, kept in the encrypted profile (a record in the
//! conversations table, filed under a keyed hash like every other), so the unread counts on
//! the left survive a restart of `sotto chat`.
//!
//! A mark is the number of incoming messages read and the newest one's ordering key: the
//! sender's sequence number with a contact, the sender's clock in a group (whose members
//! each count on their own). Unread is the larger of "incoming beyond the count" (catches a
//! late message stamped before the newest read one, from a member with a slow clock) and
//! "incoming newer than the newest read" (stays right after old messages disappeared).
//! Neither ever counts a message read after it was read. A conversation never opened has no
//! mark: all of it is unread.

use serde::{Deserialize, Serialize};
use sotto_client::app::records::{self, Direction};
use sotto_client::app::{AppError, Client, profile};
use sotto_client::store::{Table, Txn};

use super::backend::ChatId;

/// Names the marks' records (before the conversation's own name or id).
const DOMAIN: &[u8] = b"chat-read:";

/// How far a conversation has been read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadMark {
    /// Incoming messages read.
    pub count: u64,
    /// The newest read one's ordering key.
    pub newest: u64,
}

impl ReadMark {
    /// The mark once every one of `incoming` (ordering keys) is read.
    pub fn all_read(incoming: &[u64]) -> Self {
        Self { count: incoming.len() as u64, newest: incoming.iter().copied().max().unwrap_or(0) }
    }

    /// How many of `incoming` are unread under `mark`.
    pub fn unread(mark: Option<Self>, incoming: &[u64]) -> usize {
        let Some(m) = mark else { return incoming.len() };
        let beyond_count = incoming.len().saturating_sub(usize::try_from(m.count).unwrap_or(usize::MAX));
        let newer = incoming.iter().filter(|k| **k > m.newest).count();
        beyond_count.max(newer)
    }
}

/// Unread messages in `chat`.
pub fn unread(c: &mut Client, chat: &ChatId) -> Result<usize, AppError> {
    let incoming = incoming(c, chat)?;
    let txn = c.profile.store.txn();
    let mark = get(&txn, &key(&txn, chat)?)?;
    Ok(ReadMark::unread(mark, &incoming))
}

/// Marks everything in `chat` read.
pub fn mark_read(c: &mut Client, chat: &ChatId) -> Result<(), AppError> {
    let mark = ReadMark::all_read(&incoming(c, chat)?);
    let mut txn = c.profile.store.txn();
    let key = key(&txn, chat)?;
    if get(&txn, &key)? == Some(mark) {
        return Ok(());
    }
    txn.put(Table::Conversations, &key, &records::encode(&mark)?);
    Ok(txn.commit()?)
}

/// The ordering keys of the incoming messages in `chat`.
fn incoming(c: &mut Client, chat: &ChatId) -> Result<Vec<u64>, AppError> {
    Ok(match chat {
        ChatId::Contact(name) => {
            c.history(name)?.iter().filter(|m| m.direction == Direction::In).map(|m| m.seq).collect()
        }
        ChatId::Group(group) => c.group_history(group)?.iter().filter(|e| !e.outgoing).map(|e| e.sent_at_ms).collect(),
    })
}

/// Where `chat`'s mark is filed: a contact by its id (names can change), a group by name.
fn key(txn: &Txn<'_>, chat: &ChatId) -> Result<[u8; 32], AppError> {
    let mut name = DOMAIN.to_vec();
    match chat {
        ChatId::Contact(n) => {
            name.extend_from_slice(b"contact:");
            name.extend_from_slice(&profile::contact_by_name(txn, n)?.id);
        }
        ChatId::Group(g) => {
            name.extend_from_slice(b"group:");
            name.extend_from_slice(g.as_bytes());
        }
    }
    Ok(txn.index_key(Table::Conversations, &name))
}

fn get(txn: &Txn<'_>, key: &[u8]) -> Result<Option<ReadMark>, AppError> {
    match txn.get(Table::Conversations, key)? {
        Some(raw) => Ok(Some(records::decode(&raw)?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::ReadMark;

    #[test]
    fn unread_counts_from_a_mark() {
        // Never opened: everything.
        assert_eq!(ReadMark::unread(None, &[1, 2, 3]), 3);
        let m = ReadMark::all_read(&[1, 2, 3]);
        assert_eq!(m, ReadMark { count: 3, newest: 3 });
        assert_eq!(ReadMark::unread(Some(m), &[1, 2, 3]), 0);
        // Two more arrive.
        assert_eq!(ReadMark::unread(Some(m), &[1, 2, 3, 4, 5]), 2);
        // The read ones disappeared (a timer) and one arrived: one unread, not zero.
        assert_eq!(ReadMark::unread(Some(m), &[4]), 1);
        // A group member's slow clock stamps a new message before the newest read one.
        assert_eq!(ReadMark::unread(Some(m), &[1, 2, 3, 2]), 1);
        // Nothing incoming yet.
        assert_eq!(ReadMark::all_read(&[]), ReadMark { count: 0, newest: 0 });
        assert_eq!(ReadMark::unread(Some(ReadMark::all_read(&[])), &[]), 0);
    }
}
