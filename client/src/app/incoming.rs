//! Deliveries: open the envelope, decrypt, and commit the new ratchet state together
//! with what the message changed, before acknowledging it to the relay.
//!
//! A crash before the commit leaves the envelope queued at the relay and the ratchet
//! untouched: it is delivered and decrypted again. A crash after the commit and before
//! the acknowledgement redelivers an envelope the ratchet has already consumed:
//! libsignal reports it as a duplicate and it is acknowledged without being shown again.

use ed25519_dalek::SigningKey;
use libsignal_protocol::{
    CiphertextMessage, IdentityKeyStore, PreKeySignalMessage, SignalMessage, SignalProtocolError,
};
use sotto_proto::{Envelope, Push, RecvId, Request, SendId};

use super::error::AppError;
use super::outgoing::{queue, random_seed, welcome};
use super::profile;
use super::records::{Contact, ContactId, Delivery, Direction, Message, OwnMailbox, PeerMailbox};
use super::{Client, NO_SIG, address_of, defences};
use crate::relay::Event;
use crate::store::signal::ProtocolTxn;
use crate::wire::content::{Body, Content, decode_content};
use crate::wire::envelope::{self, BodyKind, EnvelopeKey};

/// Something the user should see.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// A text from a contact.
    Message { from: String, text: String, sent_at_ms: u64, seq: u64 },
    /// Someone accepted an invite and is now a contact under this name.
    Joined { name: String },
    /// A contact whose invite this profile accepted answered: the conversation is set up.
    Ready { name: String },
    /// An envelope could not be read and was dropped; the conversation goes on.
    Dropped { reason: String },
    /// A contact's identity key changed; nothing is sent to them until accepted.
    IdentityChanged { name: String },
    /// A relay could not be used right now.
    RelayTrouble(String),
    /// The disappearing-message timer of a conversation changed (0: off).
    TimerChanged { name: String, seconds: u32 },
    /// A contact's receipt says this many messages arrived.
    Delivered { name: String, count: usize },
    /// A contact sent a file; it is being downloaded.
    FileIncoming { from: String, file_name: String, size: u64 },
    /// A file from a contact was downloaded, checked and saved.
    FileSaved { from: String, file_name: String, size: u64, path: std::path::PathBuf },
    /// A file from a contact could not be received (altered, cut short, expired, too large).
    FileFailed { from: String, file_name: String, reason: String },
    /// A message to a group: text, or a file (its name).
    GroupMessage { group: String, from: String, text: String, file_name: Option<String>, sent_at_ms: u64 },
    /// A file sent to a group: being downloaded, saved, or not received.
    GroupFile { group: String, from: String, file_name: String, size: u64, state: super::FileState },
    /// A change in a group, or a group message that was ignored.
    Group { group: String, event: super::GroupEvent },
}

impl Client {
    pub(super) async fn on_relay_event(&mut self, relay: &str, event: Event) -> Result<Vec<Notice>, AppError> {
        match event {
            Event::Push(Push::Deliver { recv_id, seq, envelope }) => {
                let (mut notices, mailbox) = self.receive(&recv_id, &envelope).await?;
                if let Some(m) = mailbox {
                    let owner = SigningKey::from_bytes(&m.owner_seed);
                    // A failed ack only means a redelivery, which the ratchet recognises.
                    let _ = self.owner_request(relay, &owner, Request::Ack { recv_id, seq, signature: NO_SIG }).await;
                    notices.extend(self.after_receive_groups(&m).await);
                }
                Ok(notices)
            }
            Event::Push(Push::Unsubscribed { .. }) => {
                Ok(vec![Notice::RelayTrouble("another program using this profile took over delivery".into())])
            }
            Event::Unmatched { .. } => Ok(Vec::new()),
        }
    }

    /// Locks the mailbox if a sender key arrived, and sends what the message queued.
    async fn after_receive(&mut self, m: &OwnMailbox) {
        let fresh = {
            let txn = self.profile.store.txn();
            profile::own_mailbox(&txn, &m.recv_id).ok().flatten()
        };
        if let Some(fresh) = fresh.filter(|f| f.secure_pending.is_some()) {
            let _ = self.subscribe_one(&fresh).await;
        }
        let _ = self.flush_outbox().await;
    }

    /// [`Self::after_receive`], then the group work the message made due (introductions),
    /// whose notices are returned.
    async fn after_receive_groups(&mut self, m: &OwnMailbox) -> Vec<Notice> {
        self.after_receive(m).await;
        let notices = self.group_followups().await.unwrap_or_else(|e| vec![Notice::RelayTrouble(e.to_string())]);
        let _ = self.flush_outbox().await;
        notices
    }

    /// Processes one envelope; returns what to show and the mailbox to acknowledge on.
    pub(super) async fn receive(
        &mut self,
        recv_id: &RecvId,
        env: &Envelope,
    ) -> Result<(Vec<Notice>, Option<OwnMailbox>), AppError> {
        let mailbox = {
            let txn = self.profile.store.txn();
            profile::own_mailbox(&txn, &recv_id.0)?
        };
        let Some(mailbox) = mailbox else { return Ok((Vec::new(), None)) };
        let key = EnvelopeKey::from_bytes(mailbox.envelope_key);
        let (kind, body) = match envelope::open(&key, &SendId(mailbox.send_id), env) {
            Ok(opened) => opened,
            Err(_) => return Ok((vec![dropped("a message arrived damaged or forged")], Some(mailbox))),
        };
        let message = match kind {
            BodyKind::Cover => return Ok((Vec::new(), Some(mailbox))),
            BodyKind::PreKey => {
                PreKeySignalMessage::try_from(body.as_slice()).map(CiphertextMessage::PreKeySignalMessage)
            }
            BodyKind::Signal => SignalMessage::try_from(body.as_slice()).map(CiphertextMessage::SignalMessage),
        };
        let Ok(message) = message else {
            return Ok((vec![dropped("a message was not a valid Signal message")], Some(mailbox)));
        };
        let notices = match (mailbox.contact, &mailbox.invite) {
            (Some(id), _) => self.receive_from_contact(&mailbox, env, id, &message).await?,
            (None, Some(_)) => self.receive_from_invitee(&mailbox, &message).await?,
            (None, None) => vec![dropped("a message arrived in a mailbox that belongs to nobody")],
        };
        Ok((notices, Some(mailbox)))
    }

    async fn receive_from_contact(
        &mut self,
        mailbox: &OwnMailbox,
        env: &Envelope,
        id: ContactId,
        message: &CiphertextMessage,
    ) -> Result<Vec<Notice>, AppError> {
        let address = address_of(&id);
        let ptxn = ProtocolTxn::new(self.profile.store.txn());
        let Some(mut contact) = profile::contact(&*ptxn.txn()?, &id)? else {
            return Ok(vec![dropped("a message arrived for a contact that was removed")]);
        };
        let plaintext = match ptxn.decrypt(&address, message, std::time::SystemTime::now(), &mut rand::rng()).await {
            Ok(p) => zeroize::Zeroizing::new(p),
            Err(SignalProtocolError::DuplicatedMessage(..)) => return Ok(Vec::new()),
            Err(SignalProtocolError::UntrustedIdentity(_)) => {
                drop(ptxn);
                return self.identity_changed(mailbox, env, contact, message).await;
            }
            Err(e) => {
                return Ok(vec![dropped(&format!("a message from \"{}\" could not be decrypted ({e})", contact.name))]);
            }
        };
        let content = match decode_content(&plaintext) {
            Ok(c) => c,
            Err(e) => return Ok(vec![dropped(&format!("a message from \"{}\" was malformed ({e})", contact.name))]),
        };
        let mut notices = Vec::new();
        let mut new_download = false;
        match content.body {
            Some(Body::Text(t)) => {
                let msg = Message {
                    direction: Direction::In,
                    text: t.text.clone(),
                    sent_at_ms: content.sent_at_ms,
                    seq: content.seq,
                    delivery: Delivery::Received,
                };
                let mut txn = ptxn.txn()?;
                let key = profile::message_key(&txn, &contact.id, contact.next_local);
                contact.next_local += 1;
                let expires = defences::expiry::received_expiry(&txn, &contact, content.expire_seconds)?;
                defences::expiry::put_until(&mut txn, &key, &msg, expires)?;
                defences::receipts::on_received(&mut txn, &contact, &content.id)?;
                notices.push(Notice::Message {
                    from: contact.name.clone(),
                    text: t.text,
                    sent_at_ms: content.sent_at_ms,
                    seq: content.seq,
                });
            }
            Some(Body::Welcome(w)) => {
                let mut txn = ptxn.txn()?;
                if let Some(mut own) = profile::own_mailbox(&txn, &mailbox.recv_id)? {
                    own.secure_pending = Some(key32(&w.sender_key)?);
                    profile::put_own_mailbox(&mut txn, &own)?;
                }
                contact.their_name = w.profile_name.clone();
                // The answer to a mailbox rotation is no news to the user.
                if !defences::rotation::on_welcome(&mut txn, &contact, &mailbox.recv_id)? {
                    notices.push(Notice::Ready { name: contact.name.clone() });
                }
            }
            Some(Body::ProfileName(p)) => contact.their_name = p.name,
            Some(Body::Timer(t)) => {
                notices.extend(defences::expiry::on_timer(&mut *ptxn.txn()?, &contact, &t, content.sent_at_ms)?);
            }
            Some(Body::Receipt(r)) => notices.extend(defences::receipts::on_receipt(&mut *ptxn.txn()?, &contact, &r)?),
            Some(Body::Rotation(r)) => notices.extend(defences::rotation::on_rotation(&ptxn, &mut contact, &r).await?),
            Some(Body::Attachment(a)) => {
                let mut txn = ptxn.txn()?;
                let expires = defences::expiry::received_expiry(&txn, &contact, content.expire_seconds)?;
                let when = (content.sent_at_ms, content.seq, expires);
                let n = super::downloads::record_incoming(&mut txn, &mut contact, when, &a, &self.files)?;
                defences::receipts::on_received(&mut txn, &contact, &content.id)?;
                drop(txn);
                new_download = matches!(n, Notice::FileIncoming { .. });
                notices.push(n);
            }
            Some(Body::GroupOp(g)) => {
                // The group code may send to this contact too: it reads and saves it itself.
                profile::put_contact(&mut *ptxn.txn()?, &contact)?;
                let when = (content.sent_at_ms, content.expire_seconds);
                let group_notices = super::group::receive(&ptxn, &contact.id, g, when, &self.files).await?;
                new_download = group_notices.iter().any(Notice::starts_download);
                notices.extend(group_notices);
                contact = profile::contact(&*ptxn.txn()?, &contact.id)?.unwrap_or(contact);
            }
            // Bodies this version does not act on yet (a new profile name):
            // until then they are consumed (the ratchet moved) and not shown.
            _ => {}
        }
        profile::put_contact(&mut *ptxn.txn()?, &contact)?;
        ptxn.commit()?;
        if new_download {
            self.downloads_changed();
        }
        Ok(notices)
    }

    /// The first message on an invite's mailbox: whoever accepted the invite.
    async fn receive_from_invitee(
        &mut self,
        mailbox: &OwnMailbox,
        message: &CiphertextMessage,
    ) -> Result<Vec<Notice>, AppError> {
        let Some(invite) = mailbox.invite.clone() else { return Ok(Vec::new()) };
        if !matches!(message, CiphertextMessage::PreKeySignalMessage(_)) {
            return Ok(vec![dropped("an invite was answered with an unexpected message")]);
        }
        let id = profile::new_contact_id();
        let address = address_of(&id);
        let ptxn = ProtocolTxn::new(self.profile.store.txn());
        let plaintext = match ptxn.decrypt(&address, message, std::time::SystemTime::now(), &mut rand::rng()).await {
            Ok(p) => zeroize::Zeroizing::new(p),
            Err(e) => return Ok(vec![dropped(&format!("an answer to an invite could not be decrypted ({e})"))]),
        };
        let Ok(Content { body: Some(Body::Hello(hello)), .. }) = decode_content(&plaintext) else {
            return Ok(vec![dropped("an answer to an invite was not a greeting")]);
        };
        if hello.invite_id.as_slice() != invite.invite_id.as_slice() {
            return Ok(vec![dropped("an answer named another invite")]);
        }
        if !super::group::introduction_answered_by(&invite, message) {
            return Ok(vec![dropped("an introduction was answered by someone other than the member introduced")]);
        }
        let (reply_relay, reply_send, reply_key) =
            hello.reply.as_ref().ok_or(crate::wire::WireError::MissingField("hello.reply"))?.to_parts()?;
        let my_name = profile::settings(&*ptxn.txn()?)?.name;
        let name = {
            let txn = ptxn.txn()?;
            let wanted = if invite.name.is_empty() { hello.profile_name.clone() } else { invite.name.clone() };
            profile::unique_name(&txn, &wanted)?
        };
        let sender_seed = random_seed();
        let contact = Contact {
            id,
            name: name.clone(),
            their_name: hello.profile_name.clone(),
            peer: Some(PeerMailbox {
                relay: reply_relay.to_string(),
                send_id: reply_send.0,
                envelope_key: *reply_key.as_bytes(),
                sender_seed,
            }),
            my_recv_id: mailbox.recv_id,
            verified: false,
            identity_changed: false,
            next_seq: 1,
            next_local: 0,
        };
        {
            let mut txn = ptxn.txn()?;
            let mut own = mailbox.clone();
            own.invite = None;
            own.contact = Some(id);
            own.secure_pending = Some(key32(&hello.sender_key)?);
            profile::put_own_mailbox(&mut txn, &own)?;
            profile::put_contact(&mut txn, &contact)?;
        }
        queue(&ptxn, &contact, &welcome(&sender_seed, &my_name), None).await?;
        super::group::introduction_joined(&ptxn, &invite)?;
        ptxn.commit()?;
        Ok(vec![Notice::Joined { name }])
    }

    /// A message signed by an identity key other than the trusted one: the new key is
    /// kept aside (untrusted), the contact is marked, and the envelope is held until the
    /// user accepts the key (then it is read) or not (then nothing is sent to them).
    async fn identity_changed(
        &mut self,
        mailbox: &OwnMailbox,
        env: &Envelope,
        mut contact: Contact,
        message: &CiphertextMessage,
    ) -> Result<Vec<Notice>, AppError> {
        let ptxn = ProtocolTxn::new(self.profile.store.txn());
        if let CiphertextMessage::PreKeySignalMessage(m) = message {
            let mut store = ptxn.store();
            store.save_identity(&address_of(&contact.id), m.identity_key()).await?;
        }
        profile::hold_envelope(&mut *ptxn.txn()?, &contact.id, &mailbox.recv_id, env)?;
        contact.identity_changed = true;
        profile::put_contact(&mut *ptxn.txn()?, &contact)?;
        ptxn.commit()?;
        Ok(vec![Notice::IdentityChanged { name: contact.name.clone() }])
    }
}

/// A 32-byte key from a checked wire field.
fn key32(bytes: &[u8]) -> Result<[u8; 32], AppError> {
    bytes.try_into().map_err(|_| AppError::Wire(crate::wire::WireError::BadKey("sender_key")))
}

fn dropped(reason: &str) -> Notice {
    Notice::Dropped { reason: reason.to_string() }
}
