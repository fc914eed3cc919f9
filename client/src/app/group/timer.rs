//! Disappearing messages in a group.
//!
//! A group has one timer (0: off), kept by every member in its `GroupRecord`. Any member
//! may set it (`sotto group timer GROUP 1h`): the setter applies it and sends a
//! `GroupOp { kind: Timer, timer_seconds, clock: the setter's clock in ms }` to every other
//! member, who apply it by the rule of a conversation's timer (`defences::expiry`): the
//! setting stamped later wins; at an equal stamp the shorter one (off counts as longest), so
//! concurrent changes converge on every device. A new member gets the setting with the log.
//!
//! Every message copy carries its lifetime (`Content.expire_seconds`, the group's timer
//! when it was sent), so a change in flight does not change messages already sent. The
//! sender's history entry disappears `timer` after it was sent, a member's `timer` after it
//! arrived, sealed under its expiry bucket's epoch key like any message (deletion is
//! cryptographic); the outbox copies die with them.

use super::record::{self, GroupRecord};
use super::state::{MemberId, Membership};
use super::{FanOutReport, GroupError, GroupEvent, fanout};
use crate::app::Client;
use crate::app::defences::expiry::timer_wins;
use crate::app::error::AppError;
use crate::app::incoming::Notice;
use crate::app::records::Contact;
use crate::store::Txn;
use crate::store::signal::ProtocolTxn;
use crate::wire::content::{GroupOp, GroupOpKind, MAX_TIMER_SECONDS};

impl Client {
    /// Sets the disappearing-message timer of `group` (0: off) and tells every member.
    /// Messages already sent keep their lifetime.
    pub async fn group_set_timer(&mut self, group: &str, seconds: u32) -> Result<FanOutReport, AppError> {
        if seconds > MAX_TIMER_SECONDS {
            return Err(AppError::InvalidSetting(format!("a timer can be at most {MAX_TIMER_SECONDS} seconds")));
        }
        let ptxn = ProtocolTxn::new(self.profile.store.txn());
        let report = {
            let (mut g, at) = {
                let txn = ptxn.txn()?;
                (record::by_name(&txn, group)?, txn.now_ms())
            };
            let m = g.membership();
            if !m.is_member(&g.me) {
                return Err(GroupError::NotMember(g.name.clone()).into());
            }
            g.timer_secs = seconds;
            g.timer_set_at_ms = at;
            let op = GroupOp {
                group_id: g.id.to_vec(),
                kind: GroupOpKind::Timer as i32,
                clock: at,
                timer_seconds: seconds,
                ..Default::default()
            };
            let plan: Vec<_> = m.members.keys().filter(|k| **k != g.me).map(|k| (*k, op.clone())).collect();
            let report = fanout::fan_out(&ptxn, &mut g, &m, &plan).await?;
            record::put(&mut *ptxn.txn()?, &g)?;
            report
        };
        ptxn.commit()?;
        self.finish_fan_out(report).await
    }

    /// The disappearing-message timer of `group`, in seconds (0: off).
    pub fn group_timer(&mut self, group: &str) -> Result<u32, AppError> {
        let txn = self.profile.store.txn();
        Ok(record::by_name(&txn, group)?.timer_secs)
    }
}

/// A Timer from the member `sender`: applied if it wins over the current setting.
pub(super) fn on_timer(
    rec: &mut GroupRecord,
    m: &Membership,
    (sender, sender_id): (&Contact, &MemberId),
    g: &GroupOp,
) -> Vec<Notice> {
    if !m.is_member(sender_id) {
        return vec![event(rec, GroupEvent::NotAMember { name: sender.name.clone() })];
    }
    if !apply(rec, g.clock, g.timer_seconds) {
        return Vec::new();
    }
    vec![event(rec, GroupEvent::TimerChanged { name: sender.name.clone(), seconds: g.timer_seconds })]
}

fn event(rec: &GroupRecord, event: GroupEvent) -> Notice {
    Notice::Group { group: rec.name.clone(), event }
}

/// Takes the setting `(seconds, stamped at)` if it wins; returns whether it did.
pub(super) fn apply(rec: &mut GroupRecord, at: u64, seconds: u32) -> bool {
    if !timer_wins(at, seconds, rec.timer_set_at_ms, rec.timer_secs) {
        return false;
    }
    rec.timer_secs = seconds;
    rec.timer_set_at_ms = at;
    true
}

/// The lifetime, in seconds, of a copy of `op` sent now: the group's timer for a message,
/// none for anything else (membership, introductions, the timer itself).
pub(super) fn lifetime(rec: &GroupRecord, op: &GroupOp) -> u32 {
    if op.kind == GroupOpKind::Text as i32 { rec.timer_secs } else { 0 }
}

/// When this device's copy of a message sent to the group now disappears.
pub(super) fn sent_expiry(txn: &Txn<'_>, rec: &GroupRecord) -> Option<u64> {
    after(txn, rec.timer_secs)
}

/// When a group message received now disappears: after its own lifetime if it carries
/// one, else after the group's timer.
pub(super) fn received_expiry(txn: &Txn<'_>, rec: &GroupRecord, expire_seconds: u32) -> Option<u64> {
    after(txn, if expire_seconds > 0 { expire_seconds } else { rec.timer_secs })
}

fn after(txn: &Txn<'_>, seconds: u32) -> Option<u64> {
    (seconds > 0).then(|| txn.now_ms().saturating_add(u64::from(seconds) * 1000))
}
