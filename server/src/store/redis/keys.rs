//! Key names and expiry times in Redis.
//!
//! Every key is named after one id only, the one it belongs to, so no key name joins two
//! mailboxes (or a mailbox to a blob). A mailbox's record, queue index, envelopes, retry
//! tokens and wake-up channel share the hash tag `{hex(recv_id)}`, so they live in one
//! hash slot and one script can change them together:
//!
//! ```text
//! P m{R}          hash    s=send_id o=owner_key [k=sender_key] e=expires_day n=next_seq x=expire_at
//! P q{R}          zset    seq -> seq (the queue, in order)
//! P e{R}:SEQ      string  expires_day:u32be envelope
//! P d{R}:TOKEN    string  seq (a send's retry token)
//! P n{R}          sharded pub/sub channel: "w" (queue changed), "d" (mailbox gone)
//! P s{S}          string  recv_id (where a send id leads)
//! P b{W}          hash    r=read_id z=size v=received e=expires_day x=expire_at
//! P c{W}:INDEX    string  chunk
//! P r{B}          string  write_id (where a read id leads)
//! P t{blobs}      hash    expires_day -> declared bytes of the blobs that expire then
//! ```
//!
//! `P` is the namespace (empty by default) so several relays can share one cluster.
//! Expiry times are whole UTC days (see [`KeyTtls`]): a key's TTL tells no more about when
//! it was written than the day, as the sled store's records do.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sotto_proto::limits::ID_LEN;

use crate::config::Limits;

/// Seconds in a day.
const DAY_SECS: u64 = 86_400;

/// Seconds in an hour: retry tokens expire on hour boundaries.
const HOUR_SECS: u64 = 3_600;

/// Key names of one store (one namespace).
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    ns: String,
}

impl Keys {
    pub fn new(ns: &str) -> Self {
        Self { ns: ns.to_string() }
    }

    fn tagged(&self, kind: char, id: &[u8; ID_LEN]) -> String {
        format!("{}{kind}{{{}}}", self.ns, hex(id))
    }

    pub fn mailbox(&self, recv: &[u8; ID_LEN]) -> String {
        self.tagged('m', recv)
    }
    pub fn queue(&self, recv: &[u8; ID_LEN]) -> String {
        self.tagged('q', recv)
    }
    /// Envelope keys are this prefix followed by the sequence number in decimal.
    pub fn envelope_prefix(&self, recv: &[u8; ID_LEN]) -> String {
        format!("{}:", self.tagged('e', recv))
    }
    pub fn retry_token(&self, recv: &[u8; ID_LEN], token: &[u8; 16]) -> String {
        format!("{}:{}", self.tagged('d', recv), hex(token))
    }
    pub fn channel(&self, recv: &[u8; ID_LEN]) -> String {
        self.tagged('n', recv)
    }
    pub fn send(&self, send: &[u8; ID_LEN]) -> String {
        self.tagged('s', send)
    }
    pub fn blob(&self, write: &[u8; ID_LEN]) -> String {
        self.tagged('b', write)
    }
    /// Chunk keys are this prefix followed by the chunk index in decimal.
    pub fn chunk_prefix(&self, write: &[u8; ID_LEN]) -> String {
        format!("{}:", self.tagged('c', write))
    }
    pub fn read(&self, read: &[u8; ID_LEN]) -> String {
        self.tagged('r', read)
    }
    pub fn blob_quota(&self) -> String {
        format!("{}t{{blobs}}", self.ns)
    }
    /// The SCAN pattern of every mailbox record.
    pub fn mailbox_pattern(&self) -> String {
        format!("{}m{{*", self.ns)
    }
    /// The SCAN pattern of every blob record.
    pub fn blob_pattern(&self) -> String {
        format!("{}b{{*", self.ns)
    }

    /// The id inside a key or channel name of this namespace, e.g. `P m{…}`.
    pub fn id_of(&self, name: &[u8]) -> Option<[u8; ID_LEN]> {
        let rest = name.strip_prefix(self.ns.as_bytes())?;
        let open = rest.iter().position(|&b| b == b'{')?;
        let hexed = rest.get(open + 1..open + 1 + 2 * ID_LEN)?;
        (rest.get(open + 1 + 2 * ID_LEN) == Some(&b'}')).then_some(())?;
        unhex(hexed)
    }
}

/// Whether a namespace is safe inside key names and SCAN patterns.
pub(crate) fn valid_namespace(ns: &str) -> bool {
    ns.len() <= 64 && ns.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b':')
}

/// How long keys live, from the relay's limits: a backstop that deletes everything in
/// time even when no relay process runs its sweeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyTtls {
    pub mailbox_days: u32,
    pub envelope_days: u32,
    pub blob_days: u32,
}

impl KeyTtls {
    pub fn from_limits(l: &Limits) -> Self {
        Self { mailbox_days: l.mailbox_ttl_days, envelope_days: l.envelope_ttl_days, blob_days: l.blob_ttl_days() }
    }
}

impl Default for KeyTtls {
    fn default() -> Self {
        Self::from_limits(&Limits::default())
    }
}

/// The Unix time (seconds) at which something written now and kept `days` whole days
/// after today must be gone: the end of the last day, so the TTL names only the day.
pub(crate) fn expire_at(days: u32) -> u64 {
    let today = now_secs() / DAY_SECS;
    (today + u64::from(days) + 1) * DAY_SECS
}

/// When a send's retry token expires: the end of the next whole hour, so it outlives any
/// retry and tells at most the hour of a send, for at most two hours.
pub(crate) fn retry_token_expire_at() -> u64 {
    (now_secs() / HOUR_SECS + 2) * HOUR_SECS
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs()
}

pub(crate) fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(char::from(DIGITS[usize::from(x >> 4)]));
        s.push(char::from(DIGITS[usize::from(x & 15)]));
    }
    s
}

fn unhex(h: &[u8]) -> Option<[u8; ID_LEN]> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; ID_LEN];
    for (i, pair) in h.chunks_exact(2).enumerate() {
        *out.get_mut(i)? = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_names_and_share_a_slot() {
        let keys = Keys::new("ns:");
        let id = [0xab; ID_LEN];
        assert_eq!(keys.id_of(keys.channel(&id).as_bytes()), Some(id));
        assert_eq!(keys.id_of(keys.mailbox(&id).as_bytes()), Some(id));
        assert_eq!(keys.id_of(b"ns:m{zz}"), None);
        let slot = |k: &str| redis::cluster_routing::Route::with_key(k, redis::cluster_routing::SlotAddr::Master);
        let m = slot(&keys.mailbox(&id));
        assert_eq!(m, slot(&keys.queue(&id)));
        assert_eq!(m, slot(&format!("{}7", keys.envelope_prefix(&id))));
        assert_eq!(m, slot(&keys.retry_token(&id, &[1; 16])));
        assert_eq!(m, slot(&keys.channel(&id)));
    }

    #[test]
    fn expiry_is_a_day_boundary() {
        assert_eq!(expire_at(3) % DAY_SECS, 0);
        assert!(expire_at(3) > now_secs() + 3 * DAY_SECS);
        assert!(valid_namespace("sotto:test-1_"));
        assert!(!valid_namespace("a*b"));
    }
}
