//! What a device keeps about a group, in the encrypted profile (table `Groups`, filed under
//! a keyed hash of the group id, so the record key names nothing).

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::GroupError;
use super::state::{GroupId, MemberId, Membership, Op, replay};
use crate::app::defences::expiry;
use crate::app::error::AppError;
use crate::app::records;
use crate::store::{Table, Txn};

/// Meta key of the flag saying a group has work that needs the network (introductions to
/// make or accept, copies waiting for a session); set in the transaction that created the
/// work, cleared once it is done, so a crash in between only repeats it.
pub const FOLLOWUP_KEY: &[u8] = b"group.followup";

/// One group on this device.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct GroupRecord {
    pub id: GroupId,
    /// What this device calls the group. Any script; unique on this device.
    pub name: String,
    /// This device's member id in the group.
    pub me: MemberId,
    /// Every membership operation seen (a set; order does not matter).
    pub ops: Vec<Op>,
    /// Copies waiting for a session with a member (introduction not finished yet).
    pub pending: Vec<PendingCopy>,
    /// Members this device made an introduction invite for.
    pub invited: Vec<MemberId>,
    /// Introductions received for members not yet in the log, or not yet accepted.
    pub intros: Vec<HeldIntro>,
    /// Local counter for the group's history.
    pub next_local: u64,
    /// The group's disappearing-message timer in seconds (0: off), and the setter's clock
    /// when it was set (the later setting wins; see `group::timer`).
    #[serde(default)]
    pub timer_secs: u32,
    #[serde(default)]
    pub timer_set_at_ms: u64,
}

/// An encoded `GroupOp` for a member this device has no session with yet.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct PendingCopy {
    pub member: MemberId,
    pub op: Vec<u8>,
}

/// An invite link from `member`, forwarded by a member who knows both.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct HeldIntro {
    pub member: MemberId,
    pub link: String,
}

impl GroupRecord {
    /// The membership the log gives.
    pub fn membership(&self) -> Membership {
        replay(&self.ops)
    }

    /// Whether the log holds an operation with this id.
    pub fn knows(&self, op_id: &[u8]) -> bool {
        self.ops.iter().any(|o| o.op_id.as_slice() == op_id)
    }
}

fn key(txn: &Txn<'_>, id: &GroupId) -> [u8; 32] {
    txn.index_key(Table::Groups, id)
}

pub fn get(txn: &Txn<'_>, id: &GroupId) -> Result<Option<GroupRecord>, AppError> {
    match txn.get(Table::Groups, &key(txn, id))? {
        Some(raw) => Ok(Some(records::decode(&raw)?)),
        None => Ok(None),
    }
}

pub fn put(txn: &mut Txn<'_>, g: &GroupRecord) -> Result<(), AppError> {
    let k = key(txn, &g.id);
    txn.put(Table::Groups, &k, &records::encode(g)?);
    Ok(())
}

/// Every group, sorted by name.
pub fn all(txn: &Txn<'_>) -> Result<Vec<GroupRecord>, AppError> {
    let mut out: Vec<GroupRecord> =
        txn.scan_table(Table::Groups)?.iter().map(|(_, v)| records::decode(v)).collect::<Result<_, _>>()?;
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The group this device calls `name`.
pub fn by_name(txn: &Txn<'_>, name: &str) -> Result<GroupRecord, AppError> {
    all(txn)?.into_iter().find(|g| g.name == name).ok_or_else(|| GroupError::NoSuchGroup(name.to_string()).into())
}

/// `wanted`, or `wanted (2)`, `wanted (3)`… whichever no group here has yet.
pub fn unique_name(txn: &Txn<'_>, wanted: &str) -> Result<String, AppError> {
    let taken: Vec<String> = all(txn)?.into_iter().map(|g| g.name.clone()).collect();
    let base = if wanted.trim().is_empty() { "group".to_string() } else { wanted.to_string() };
    if !taken.contains(&base) {
        return Ok(base);
    }
    Ok((2..).map(|n| format!("{base} ({n})")).find(|n| !taken.contains(n)).unwrap_or(base))
}

/// Marks that a group has network work to do (see [`FOLLOWUP_KEY`]).
pub fn set_followup(txn: &mut Txn<'_>) {
    txn.put(Table::Meta, FOLLOWUP_KEY, &[1]);
}

/// Whether [`set_followup`] was called since the work was last done.
pub fn followup_due(txn: &Txn<'_>) -> Result<bool, AppError> {
    Ok(txn.contains(Table::Meta, FOLLOWUP_KEY)?)
}

pub fn clear_followup(txn: &mut Txn<'_>) {
    txn.remove(Table::Meta, FOLLOWUP_KEY);
}

/// One message in a group's history.
#[derive(Debug, Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct GroupEntry {
    /// Sent by this profile.
    pub outgoing: bool,
    /// Who sent it, as this device named them when it arrived (empty when outgoing).
    pub from: String,
    pub text: String,
    /// For a file: its name.
    pub file_name: Option<String>,
    /// The sender's clock, in milliseconds since the epoch.
    pub sent_at_ms: u64,
    /// For a file: how it stands, as the history shows it (`[file] NAME (SIZE)`, then
    /// `saved to PATH` or why it was not). Absent in entries written before files were
    /// received in groups.
    #[serde(default)]
    pub file_note: Option<String>,
}

/// The record key of a group's history entry: a keyed hash of the group, then a counter.
fn entry_key(txn: &Txn<'_>, group: &GroupId, local: u64) -> Vec<u8> {
    let mut k = txn.index_key(Table::Messages, &[b"group:".as_slice(), group].concat()).to_vec();
    k.extend_from_slice(&local.to_be_bytes());
    k
}

/// Adds an entry to `g`'s history (the caller saves `g`: its counter moved), to disappear
/// at `expires_at_ms` (or never). Returns the entry's record key.
pub fn put_entry(
    txn: &mut Txn<'_>,
    g: &mut GroupRecord,
    e: &GroupEntry,
    expires_at_ms: Option<u64>,
) -> Result<Vec<u8>, AppError> {
    let key = entry_key(txn, &g.id, g.next_local);
    g.next_local += 1;
    expiry::put_other_until(txn, &key, &records::encode(e)?, expires_at_ms)?;
    Ok(key)
}

/// Rewrites the history entry at `key` (returned by [`put_entry`]), keeping its expiry;
/// nothing if it is gone.
pub fn update_entry(txn: &mut Txn<'_>, key: &[u8], e: &GroupEntry) -> Result<(), AppError> {
    expiry::update_other(txn, key, &records::encode(e)?)
}

/// The history entry at `key`, if it is still there (and has not expired).
pub fn entry_at(txn: &Txn<'_>, key: &[u8]) -> Result<Option<GroupEntry>, AppError> {
    match txn.get(Table::Messages, key)? {
        Some(raw) => expiry::open_other(txn, key, &raw),
        None => Ok(None),
    }
}

/// A group's history, in the order the messages were sent (expired entries left out).
pub fn history(txn: &Txn<'_>, group: &GroupId) -> Result<Vec<GroupEntry>, AppError> {
    let prefix = entry_key(txn, group, 0);
    let prefix = &prefix[..prefix.len() - 8];
    let mut out: Vec<(u64, GroupEntry)> = Vec::new();
    for (k, v) in txn.scan_table(Table::Messages)? {
        if !k.starts_with(prefix) {
            continue;
        }
        let local = k.get(prefix.len()..).and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_be_bytes);
        if let Some(e) = expiry::open_other(txn, &k, &v)? {
            out.push((local, e));
        }
    }
    out.sort_by_key(|(local, e)| (e.sent_at_ms, *local));
    Ok(out.into_iter().map(|(_, e)| e).collect())
}
