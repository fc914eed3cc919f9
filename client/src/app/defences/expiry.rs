//! Disappearing messages.
//!
//! **The timer.** Each conversation has one timer (0: off), set by either side with `sotto
//! timer NAME 1h`: the setter applies it and sends a `Timer` body inside the ratchet; the other
//! side applies it on receipt. Concurrent changes converge on both sides by one rule: the
//! setting stamped later (by its setter's clock) wins; at an equal stamp, the shorter timer
//! wins (off counts as longest), because erring towards deletion is the safe side.
//!
//! **When a message disappears.** The sender's copy `timer` after it was sent; the receiver's
//! copy `timer` after it was received (not after the sender's clock says, which may be wrong,
//! and not after it was read: `listen` shows a message as it arrives). Every message carries
//! its lifetime (`Content.expire_seconds`: the conversation timer, or `--expire` for one
//! message), so a timer change in flight does not change messages already sent; a message
//! without one takes the receiver's timer.
//!
//! **Deletion is cryptographic.** A message with a lifetime is sealed under the epoch key of
//! its expiry bucket (`store::epochs`) inside the store's usual seal, so the copies sled keeps
//! after deletion die with the key. The record itself is removed at its exact expiry by
//! [`sweep`], which runs when the profile opens and on every tick, and expired records are
//! never returned even before the sweep.
//!
//! Record format in the messages table: `format 1 (1) || expires_at_ms (u64 LE, 0: never) ||
//! body`, the body being the epoch-sealed record, or the record itself when it never expires.

use crate::app::error::AppError;
use crate::app::records::{self, Contact, Message, Outgoing};
use crate::app::{Client, Notice};
use crate::store::{EncryptedStore, Table, Txn};
use crate::wire::content::{Body, MAX_TIMER_SECONDS, Timer};

const RECORD_FORMAT_V1: u8 = 1;
const RECORD_HEADER_LEN: usize = 1 + 8;
const AAD_CONTEXT: &[u8] = b"sotto message v1";

/// A stored message record, opened as far as the master key goes.
struct Stored {
    expires_at_ms: Option<u64>,
    body: Vec<u8>,
}

fn parse(raw: &[u8]) -> Result<Stored, AppError> {
    let bad = || crate::store::StoreError::CorruptRecord("message record");
    if raw.len() < RECORD_HEADER_LEN || raw.first() != Some(&RECORD_FORMAT_V1) {
        return Err(bad().into());
    }
    let at = u64::from_le_bytes(raw.get(1..RECORD_HEADER_LEN).and_then(|b| b.try_into().ok()).ok_or_else(bad)?);
    Ok(Stored {
        expires_at_ms: (at != 0).then_some(at),
        body: raw.get(RECORD_HEADER_LEN..).unwrap_or_default().to_vec(),
    })
}

/// The epoch-sealed body of a stored record that expires (for the forensic tests).
#[cfg(test)]
pub(crate) fn sealed_body(raw: &[u8]) -> Option<Vec<u8>> {
    parse(raw).ok().filter(|s| s.expires_at_ms.is_some()).map(|s| s.body)
}

pub(crate) fn aad(key: &[u8]) -> Vec<u8> {
    [AAD_CONTEXT, key].concat()
}

/// The expiry of the record at `key`, if it exists: `Some(None)` for a record that never
/// expires.
fn existing_expiry(txn: &Txn<'_>, key: &[u8]) -> Result<Option<Option<u64>>, AppError> {
    match txn.get(Table::Messages, key)? {
        Some(raw) => Ok(Some(parse(&raw)?.expires_at_ms)),
        None => Ok(None),
    }
}

/// Writes a message. A message already stored keeps its expiry (a delivery update must not
/// extend its life); a new one expires after its conversation's timer, if any.
pub fn put(txn: &mut Txn<'_>, key: &[u8], m: &Message) -> Result<(), AppError> {
    let expires = match existing_expiry(txn, key)? {
        Some(kept) => kept,
        None => {
            let prefix = key.get(..32).unwrap_or(key);
            let timer = super::state::by_prefix(txn, prefix)?.timer_secs;
            (timer > 0).then(|| txn.now_ms().saturating_add(u64::from(timer) * 1000))
        }
    };
    put_until(txn, key, m, expires)
}

/// Writes a message that disappears at `expires_at_ms` (or never).
pub fn put_until(txn: &mut Txn<'_>, key: &[u8], m: &Message, expires_at_ms: Option<u64>) -> Result<(), AppError> {
    let plain = records::encode(m)?;
    let mut value = vec![RECORD_FORMAT_V1];
    value.extend_from_slice(&expires_at_ms.unwrap_or(0).to_le_bytes());
    match expires_at_ms {
        Some(at) => value.extend_from_slice(&txn.seal_until(at, &aad(key), &plain)?),
        None => value.extend_from_slice(&plain),
    }
    txn.put(Table::Messages, key, &value);
    Ok(())
}

/// Writes another kind of record kept in the messages table (a group's history entry) in
/// the same record format, never expiring, so that the sweep reads every record alike.
pub(crate) fn put_other(txn: &mut Txn<'_>, key: &[u8], plain: &[u8]) {
    let mut value = vec![RECORD_FORMAT_V1];
    value.extend_from_slice(&0u64.to_le_bytes());
    value.extend_from_slice(plain);
    txn.put(Table::Messages, key, &value);
}

/// [`put_other`] for a record that disappears at `expires_at_ms` (or never): sealed under
/// its expiry bucket's epoch key, like a message.
pub(crate) fn put_other_until(
    txn: &mut Txn<'_>,
    key: &[u8],
    plain: &[u8],
    expires_at_ms: Option<u64>,
) -> Result<(), AppError> {
    let Some(at) = expires_at_ms else {
        put_other(txn, key, plain);
        return Ok(());
    };
    let mut value = vec![RECORD_FORMAT_V1];
    value.extend_from_slice(&at.to_le_bytes());
    value.extend_from_slice(&txn.seal_until(at, &aad(key), plain)?);
    txn.put(Table::Messages, key, &value);
    Ok(())
}

/// Rewrites a record written by [`put_other_until`], keeping its expiry (an update must
/// not extend its life). Nothing is written if it is gone.
pub(crate) fn update_other(txn: &mut Txn<'_>, key: &[u8], plain: &[u8]) -> Result<(), AppError> {
    match existing_expiry(txn, key)? {
        Some(expires) => put_other_until(txn, key, plain, expires),
        None => Ok(()),
    }
}

/// The record written by [`put_other_until`] at `key`, decoded; `None` once it has expired
/// (even before the sweep).
pub(crate) fn open_other<T: for<'de> serde::Deserialize<'de>>(
    txn: &Txn<'_>,
    key: &[u8],
    raw: &[u8],
) -> Result<Option<T>, AppError> {
    let stored = parse(raw)?;
    match stored.expires_at_ms {
        None => Ok(Some(records::decode(&stored.body)?)),
        Some(at) if at <= txn.now_ms() => Ok(None),
        Some(_) => match txn.open_until(&aad(key), &stored.body)? {
            Some(plain) => Ok(Some(records::decode(&plain)?)),
            None => Ok(None),
        },
    }
}

/// Reads a message; `None` if there is none, or if it has expired (even before the sweep).
pub fn get(txn: &Txn<'_>, key: &[u8]) -> Result<Option<Message>, AppError> {
    match txn.get(Table::Messages, key)? {
        Some(raw) => open(txn, key, &raw),
        None => Ok(None),
    }
}

fn open(txn: &Txn<'_>, key: &[u8], raw: &[u8]) -> Result<Option<Message>, AppError> {
    open_other(txn, key, raw)
}

/// Puts an outbox entry that must disappear at `at` with its message: sealed under the same
/// epoch as the message, so its ratchet ciphertext dies with it.
pub fn put_outgoing_until(txn: &mut Txn<'_>, id: &[u8; 16], o: &Outgoing, at: u64) -> Result<(), AppError> {
    let plain = records::encode(o)?;
    let mut value = vec![RECORD_FORMAT_V1];
    value.extend_from_slice(&at.to_le_bytes());
    value.extend_from_slice(&txn.seal_until(at, &outbox_aad(id), &plain)?);
    txn.put(Table::Outbox, id, &value);
    Ok(())
}

/// Opens an outbox entry: a plain record (JSON, starting with `{`) or one sealed until a
/// moment; `None` once that moment has passed.
pub fn open_outgoing(txn: &Txn<'_>, id: &[u8; 16], raw: &[u8]) -> Result<Option<Outgoing>, AppError> {
    if raw.first() != Some(&RECORD_FORMAT_V1) {
        return Ok(Some(records::decode(raw)?));
    }
    let stored = parse(raw)?;
    match stored.expires_at_ms {
        Some(at) if at > txn.now_ms() => match txn.open_until(&outbox_aad(id), &stored.body)? {
            Some(plain) => Ok(Some(records::decode(&plain)?)),
            None => Ok(None),
        },
        _ => Ok(None),
    }
}

fn outbox_aad(id: &[u8]) -> Vec<u8> {
    [b"sotto outbox v1".as_slice(), id].concat()
}

/// Every live message whose key starts with `prefix`, in key order.
pub fn with_prefix(txn: &Txn<'_>, prefix: &[u8]) -> Result<Vec<Message>, AppError> {
    let mut out = Vec::new();
    for (k, raw) in txn.scan_table(Table::Messages)? {
        if k.starts_with(prefix)
            && let Some(m) = open(txn, &k, &raw)?
        {
            out.push(m);
        }
    }
    Ok(out)
}

/// Rolls the day's key of the ratchet states if a day has passed, deletes every expired
/// message and destroys the epoch keys nothing needs any more, if anything is due. Returns how many messages were deleted.
pub fn sweep(store: &mut EncryptedStore) -> Result<usize, AppError> {
    // Ratchet states and the outbox move to today's key; yesterday's dies.
    store.roll()?;
    if !store.expiry_due() {
        return Ok(0);
    }
    let now = store.clock().now_ms();
    let mut expired = Vec::new();
    let mut next = u64::MAX;
    for table in [Table::Messages, Table::Outbox] {
        for item in store.scan_table(table) {
            let (k, raw) = item?;
            // Outbox entries that never expire are plain records.
            if table == Table::Outbox && raw.first() != Some(&RECORD_FORMAT_V1) {
                continue;
            }
            if let Some(at) = parse(&raw)?.expires_at_ms {
                if at <= now {
                    expired.push((table, k));
                } else {
                    next = next.min(at);
                }
            }
        }
    }
    if !expired.is_empty() {
        let mut txn = store.txn();
        for (table, k) in &expired {
            txn.remove(*table, k);
        }
        txn.commit()?;
    }
    store.destroy_expired_keys()?;
    store.set_next_expiry(next)?;
    Ok(expired.iter().filter(|(t, _)| *t == Table::Messages).count())
}

/// The lifetime, in seconds, of a message about to be sent to `contact`: `expire` if given,
/// else the conversation's timer (0: never expires).
pub fn lifetime(txn: &Txn<'_>, contact: &Contact, expire: Option<u32>) -> Result<u32, AppError> {
    let seconds = match expire {
        Some(s) => s,
        None => super::state::get(txn, &contact.id)?.timer_secs,
    };
    if seconds > MAX_TIMER_SECONDS {
        return Err(AppError::InvalidSetting(format!("a message can live at most {MAX_TIMER_SECONDS} seconds")));
    }
    Ok(seconds)
}

/// When a message received now from `contact` disappears: after its own lifetime if it
/// carries one, else after the conversation's timer.
pub fn received_expiry(txn: &Txn<'_>, contact: &Contact, expire_seconds: u32) -> Result<Option<u64>, AppError> {
    let seconds = if expire_seconds > 0 { expire_seconds } else { super::state::get(txn, &contact.id)?.timer_secs };
    Ok((seconds > 0).then(|| txn.now_ms().saturating_add(u64::from(seconds) * 1000)))
}

/// Whether a timer stamped `(at, secs)` replaces the current `(cur_at, cur_secs)`: the later
/// stamp wins; at equal stamps the shorter timer (off counts as longest).
pub fn timer_wins(at: u64, secs: u32, cur_at: u64, cur_secs: u32) -> bool {
    let rank = |s: u32| if s == 0 { u64::MAX } else { u64::from(s) };
    (at, std::cmp::Reverse(rank(secs))) > (cur_at, std::cmp::Reverse(rank(cur_secs)))
}

/// A received `Timer`: applied if it wins over the current setting.
pub fn on_timer(txn: &mut Txn<'_>, contact: &Contact, t: &Timer, sent_at_ms: u64) -> Result<Vec<Notice>, AppError> {
    let mut s = super::state::get(txn, &contact.id)?;
    if !timer_wins(sent_at_ms, t.seconds, s.timer_set_at_ms, s.timer_secs) {
        return Ok(Vec::new());
    }
    s.timer_secs = t.seconds;
    s.timer_set_at_ms = sent_at_ms;
    super::state::put(txn, &contact.id, &s)?;
    Ok(vec![Notice::TimerChanged { name: contact.name.clone(), seconds: t.seconds }])
}

impl Client {
    /// Sets the disappearing-message timer of the conversation with `name` (0: off) and tells
    /// them. Messages already sent keep their lifetime.
    pub async fn set_timer(&mut self, name: &str, seconds: u32) -> Result<(), AppError> {
        if seconds > MAX_TIMER_SECONDS {
            return Err(AppError::InvalidSetting(format!("a timer can be at most {MAX_TIMER_SECONDS} seconds")));
        }
        let body = crate::app::outgoing::content_of(0, Body::Timer(Timer { seconds }));
        self.send_control(name, body, |txn, contact, content| {
            let mut s = super::state::get(txn, &contact.id)?;
            s.timer_secs = seconds;
            s.timer_set_at_ms = content.sent_at_ms;
            super::state::put(txn, &contact.id, &s)
        })
        .await
    }

    /// The disappearing-message timer of the conversation with `name`, in seconds (0: off).
    pub fn timer(&mut self, name: &str) -> Result<u32, AppError> {
        let txn = self.profile.store.txn();
        let c = crate::app::profile::contact_by_name(&txn, name)?;
        Ok(super::state::get(&txn, &c.id)?.timer_secs)
    }

    /// Deletes what has expired now (also run by every tick).
    pub fn expire_now(&mut self) -> Result<usize, AppError> {
        sweep(&mut self.profile.store)
    }
}

#[cfg(test)]
mod tests {
    use super::timer_wins;

    #[test]
    fn concurrent_timer_changes_converge() {
        // Later stamp wins, whichever side sees which first.
        assert!(timer_wins(2, 3600, 1, 60) && !timer_wins(1, 60, 2, 3600));
        // Equal stamps: the shorter wins on both sides; off is the longest.
        assert!(timer_wins(5, 60, 5, 3600) && !timer_wins(5, 3600, 5, 60));
        assert!(timer_wins(5, 60, 5, 0) && !timer_wins(5, 0, 5, 60));
        assert!(!timer_wins(5, 60, 5, 60));
    }
}
