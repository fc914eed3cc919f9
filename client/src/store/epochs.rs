//! Sealing a record until a moment: the second layer that makes expiry cryptographic.
//!
//! A record that must disappear at `expires_at` is sealed under the epoch key of a *bucket*
//! of expiry times (a key kept in the [`super::keyring`], never in sled), inside the usual
//! master-key seal. Once every record of a bucket has expired, the bucket's key is destroyed
//! and the copies sled keeps are noise, even to someone holding the passphrase.
//!
//! Buckets are shared by every conversation, not made per conversation: with groups fanning
//! out over pairwise conversations, per-conversation keys would grow the keyring with the
//! number of people, while shared buckets bound it by time alone. Deletion is the same either
//! way: a key dies when everything sealed under it has expired.
//!
//! A bucket's length follows the record's lifetime: `max(`[`MIN_BUCKET_SECS`]`, 2^⌊log2(lifetime
//! / `[`BUCKET_FRACTION`]`)⌋)` seconds, so a key outlives the last record in it by at most a
//! sixteenth of the timer (and at least [`MIN_BUCKET_SECS`]): a one-hour message is noise at
//! most ~4 minutes after it expires, a one-week message at most ~10 hours after. Records expire
//! from the database at their exact time; the bucket bounds only when their sled ghosts die.
//! Per bucket length, live buckets span at most 32 lengths ahead (lifetimes are below 32
//! lengths), so at most 33 × 13 lengths (256 s to 2^20 s, enough for a one-year timer) keys live
//! at once, whatever the number of conversations.
//!
//! ```text
//! blob = format 1 (1) || log2 length (1) || index (u64 LE) || nonce (24) || ciphertext || tag
//! aad  = "sotto epoch v1" || log2 length || index || the caller's aad (the record's place)
//! ```

use super::Plain;
use super::error::StoreError;
use super::keyring::{BucketId, Keyring};
use super::keys::{NONCE_LEN, SealKey, TAG_LEN};

/// Shortest bucket, in seconds (2^8 = 256 s).
pub const MIN_BUCKET_SECS: u64 = 1 << MIN_BUCKET_LOG2;
const MIN_BUCKET_LOG2: u8 = 8;
/// A bucket is at most this fraction of the record's lifetime.
pub const BUCKET_FRACTION: u64 = 16;
/// Longest bucket length (2^20 s ≈ 12 days): a one-year lifetime / 16 fits.
const MAX_BUCKET_LOG2: u8 = 20;
const BLOB_FORMAT_V1: u8 = 1;
const HEADER_LEN: usize = 1 + 1 + 8;
const AAD_CONTEXT: &[u8] = b"sotto epoch v1";

/// The bucket for a record sealed at `now_ms` that expires at `expires_at_ms`.
pub fn bucket_for(now_ms: u64, expires_at_ms: u64) -> BucketId {
    let lifetime_s = expires_at_ms.saturating_sub(now_ms) / 1000;
    let target = (lifetime_s / BUCKET_FRACTION).max(1);
    let floor_log2 = u8::try_from(63 - target.leading_zeros()).unwrap_or(MAX_BUCKET_LOG2);
    let log2 = floor_log2.clamp(MIN_BUCKET_LOG2, MAX_BUCKET_LOG2);
    // Rounded up into the bucket whose end is at or after the expiry.
    (log2, (expires_at_ms / 1000) >> log2)
}

/// When `bucket`'s last record has expired, in milliseconds since the epoch.
pub fn bucket_end_ms(bucket: BucketId) -> u64 {
    let (log2, index) = bucket;
    index.saturating_add(1).checked_shl(u32::from(log2)).unwrap_or(u64::MAX).saturating_mul(1000)
}

/// Bucket length marking the *rolling* keys: not an expiry bucket but the key of one UTC day
/// (the index), under which tables whose old versions must not linger are sealed (see
/// [`ROLLING_TABLES`](super::db::ROLLING_TABLES)). Such a key never ends by itself; it is
/// destroyed by [`stale_rolling`] once everything sealed under it was sealed again under the
/// next day's key.
pub const ROLLING_LOG2: u8 = u8::MAX;
const DAY_MS: u64 = 24 * 3600 * 1000;

/// Today's rolling bucket.
pub fn rolling_bucket(now_ms: u64) -> BucketId {
    (ROLLING_LOG2, now_ms / DAY_MS)
}

/// Rolling buckets older than today's, whose keys are due to go once their records moved.
pub(crate) fn stale_rolling(ring: &Keyring, now_ms: u64) -> Vec<BucketId> {
    let today = rolling_bucket(now_ms);
    ring.buckets().into_iter().filter(|b| b.0 == ROLLING_LOG2 && *b < today).collect()
}

/// Seals `plaintext` under the key of the bucket for `expires_at_ms` (made if needed).
pub(crate) fn seal(
    ring: &mut Keyring,
    now_ms: u64,
    expires_at_ms: u64,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, StoreError> {
    seal_in(ring, bucket_for(now_ms, expires_at_ms), aad, plaintext)
}

/// Seals `plaintext` under the key of `bucket` (made if needed).
pub(crate) fn seal_in(
    ring: &mut Keyring,
    bucket: BucketId,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let key = SealKey::from_bytes(&ring.get_or_create(bucket)?.0);
    let mut out = header(bucket);
    out.extend_from_slice(&key.seal(&full_aad(bucket, aad), plaintext)?);
    Ok(out)
}

/// Opens a blob from [`seal`]; `Ok(None)` if its bucket's key was destroyed (the record
/// has expired for good).
pub(crate) fn open(ring: &Keyring, aad: &[u8], blob: &[u8]) -> Result<Option<Plain>, StoreError> {
    let bucket = parse_header(blob).ok_or(StoreError::CorruptRecord("sealed record"))?;
    let Some(key) = ring.get(bucket) else { return Ok(None) };
    let key = SealKey::from_bytes(&key.0);
    let body = blob.get(HEADER_LEN..).unwrap_or_default();
    key.open(&full_aad(bucket, aad), body).map(Some).ok_or(StoreError::CorruptRecord("sealed record"))
}

/// The bucket a blob names, if it is well formed.
pub fn parse_header(blob: &[u8]) -> Option<BucketId> {
    if blob.len() < HEADER_LEN + NONCE_LEN + TAG_LEN || blob.first() != Some(&BLOB_FORMAT_V1) {
        return None;
    }
    let log2 = *blob.get(1)?;
    let index = u64::from_le_bytes(blob.get(2..HEADER_LEN)?.try_into().ok()?);
    Some((log2, index))
}

/// Whether `key` opens `blob` (a test trying every key a seized profile holds).
#[cfg(test)]
pub(crate) fn opens_with(key: &[u8; 32], aad: &[u8], blob: &[u8]) -> bool {
    let Some(bucket) = parse_header(blob) else { return false };
    SealKey::from_bytes(key).open(&full_aad(bucket, aad), blob.get(HEADER_LEN..).unwrap_or_default()).is_some()
}

fn header((log2, index): BucketId) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN + NONCE_LEN + TAG_LEN + 64);
    h.push(BLOB_FORMAT_V1);
    h.push(log2);
    h.extend_from_slice(&index.to_le_bytes());
    h
}

fn full_aad((log2, index): BucketId, aad: &[u8]) -> Vec<u8> {
    let mut a = AAD_CONTEXT.to_vec();
    a.push(log2);
    a.extend_from_slice(&index.to_le_bytes());
    a.extend_from_slice(aad);
    a
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const H: u64 = 3_600_000;

    #[test]
    fn buckets_scale_with_the_lifetime_and_end_after_the_expiry() {
        let now = 1_700_000_000_000;
        for lifetime in [1_000, 60_000, H, 24 * H, 7 * 24 * H, 365 * 24 * H] {
            let b = bucket_for(now, now + lifetime);
            let end = bucket_end_ms(b);
            let len_ms = (1u64 << b.0) * 1000;
            assert!(end >= now + lifetime, "bucket ends before the expiry");
            assert!(end - (now + lifetime) <= len_ms, "bucket ends more than one length late");
            assert!(len_ms <= (lifetime / BUCKET_FRACTION).max(MIN_BUCKET_SECS * 1000));
            assert!(lifetime < 32 * len_ms, "more than 32 live buckets per length");
        }
        assert_eq!(bucket_for(now, now + 365 * 24 * H).0, MAX_BUCKET_LOG2);
    }
}
