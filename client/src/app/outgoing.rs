//! Invites, accepting them, sending, and the outbox.
//!
//! Every outgoing message is encrypted, sealed, and committed to the outbox together
//! with the ratchet state that produced it, before it leaves. The outbox is then flushed:
//! a message leaves the outbox only once the relay says it is durably stored; until then
//! any later command that reaches the relay sends the same bytes again.

use ed25519_dalek::SigningKey;
use libsignal_protocol::CiphertextMessage;
use rand::RngCore;
use sotto_proto::{Envelope, PublicKey, RelayAddress, Request, Response, SendId};

use super::error::AppError;
use super::profile::{self, check_name};
use super::records::{
    Contact, ContactId, Delivery, Direction, Message, Outgoing, OwnMailbox, PeerMailbox, PendingInvite,
};
use super::{Client, NO_SIG, address_of, now_ms};
use crate::relay::{LinkError, sign_request};
use crate::store::signal::{KyberKind, ProtocolTxn, create_prekey_bundle};
use crate::wire::content::{self, Body, Content, Hello, MailboxAddress, Text, Welcome, encode_content, new_content_id};
use crate::wire::envelope::{self, BodyKind, EnvelopeKey};
use crate::wire::invite::{Invite, PreKeyBundleWire};

/// What flushing the outbox achieved.
#[derive(Debug, Default)]
pub struct FlushReport {
    /// Envelopes the relay stored.
    pub sent: usize,
    /// Envelopes the relay refused for good (mailbox gone, or locked to another sender).
    pub failed: usize,
    /// Envelopes still waiting, and why the last one could not go.
    pub waiting: usize,
    pub last_error: Option<LinkError>,
}

/// Which link [`Client::create_invite_as`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteForm {
    /// ~175 characters (a QR code of ~57 columns); the invite waits sealed in a blob on the
    /// relay and the link stops working when the relay expires it (48 hours by default).
    Short,
    /// ~2.7 KB, self-contained (a QR code of 177 columns); works as long as the invite's
    /// mailbox does.
    Full,
}

impl Client {
    /// Creates a one-time invite: a fresh mailbox on `relay` (or the profile's relay)
    /// and a prekey bundle. Returns a short link (the invite itself waits, sealed, in a
    /// blob on the relay for as long as the relay keeps blobs). `name` is what this profile
    /// will call whoever accepts; without it, the name they suggest.
    pub async fn create_invite(
        &mut self,
        name: Option<&str>,
        relay: Option<&RelayAddress>,
    ) -> Result<String, AppError> {
        Ok(self.make_invite(name, relay, Vec::new(), InviteForm::Short).await?.0)
    }

    /// Like [`Client::create_invite`], with the form of link to return.
    pub async fn create_invite_as(
        &mut self,
        name: Option<&str>,
        relay: Option<&RelayAddress>,
        form: InviteForm,
    ) -> Result<String, AppError> {
        Ok(self.make_invite(name, relay, Vec::new(), form).await?.0)
    }

    /// [`Self::create_invite_as`], accepted only by the holder of `expect_identity` if it is
    /// not empty (group introductions). Returns the link and the invite's mailbox.
    pub(super) async fn make_invite(
        &mut self,
        name: Option<&str>,
        relay: Option<&RelayAddress>,
        expect_identity: Vec<u8>,
        form: InviteForm,
    ) -> Result<(String, OwnMailbox), AppError> {
        if let Some(n) = name {
            check_name(n)?;
        }
        let (relay, my_name) = {
            let txn = self.profile.store.txn();
            let s = profile::settings(&txn)?;
            (relay.map_or(s.relay.clone(), ToString::to_string), s.name.clone())
        };
        let mailbox = self.create_mailbox(&relay).await?;
        let mut invite_id = [0u8; 16];
        rand::rng().fill_bytes(&mut invite_id);
        let mut txn = self.profile.store.txn();
        let bundle = create_prekey_bundle(&mut txn, super::DEVICE_ID, KyberKind::OneTime, &mut rand::rng())?;
        let mut own = mailbox;
        own.invite = Some(PendingInvite { invite_id, name: name.unwrap_or_default().to_string(), expect_identity });
        profile::put_own_mailbox(&mut txn, &own)?;
        txn.commit()?;
        let invite = Invite {
            relay: relay.parse().map_err(crate::wire::WireError::from)?,
            send_id: SendId(own.send_id),
            envelope_key: EnvelopeKey::from_bytes(own.envelope_key),
            invite_id,
            suggested_name: my_name,
            bundle: PreKeyBundleWire::from_bundle(&bundle)?,
        };
        let link = match form {
            InviteForm::Full => invite.to_link()?,
            InviteForm::Short => self.upload_invite(&invite).await?,
        };
        // A program already receiving (`listen` serving this command for another process,
        // `chat`, a group introduction) subscribed before this mailbox existed: subscribe
        // it now, or the answer would wait for the next start. Best effort: a link that
        // drops resubscribes every mailbox when it comes back.
        let _ = self.subscribe_one(&own).await;
        Ok((link, own))
    }

    /// Accepts an invite link: starts a post-quantum session from its bundle, makes a
    /// mailbox for the inviter to answer into, and sends the first message. The contact
    /// is saved as `name`.
    pub async fn accept_invite(&mut self, link: &str, name: &str) -> Result<(), AppError> {
        check_name(name)?;
        let invite = self.resolve_invite(link).await?;
        let id = self.start_contact(&invite, name).await?;
        let report = self.flush_outbox().await?;
        if report.failed > 0 {
            self.forget_contact(&id).await?;
            return Err(AppError::InviteUsed);
        }
        if let Some(e) = report.last_error {
            return Err(AppError::Queued(e));
        }
        Ok(())
    }

    /// Starts a session from an invite, saves its sender as `name` and queues the first
    /// message (not yet sent).
    pub(super) async fn start_contact(&mut self, invite: &Invite, name: &str) -> Result<ContactId, AppError> {
        let (relay, my_name) = {
            let txn = self.profile.store.txn();
            if profile::contact_by_name(&txn, name).is_ok() {
                return Err(AppError::InvalidName(format!("a contact called \"{name}\" already exists")));
            }
            let s = profile::settings(&txn)?;
            (s.relay.clone(), s.name.clone())
        };
        let mut mailbox = self.create_mailbox(&relay).await?;
        let id = profile::new_contact_id();
        mailbox.contact = Some(id);
        let sender_seed = random_seed();
        let my_relay: RelayAddress = relay.parse().map_err(crate::wire::WireError::from)?;
        let hello = content_of(
            0,
            Body::Hello(Hello {
                invite_id: invite.invite_id.to_vec(),
                reply: Some(MailboxAddress::new(
                    &my_relay,
                    &SendId(mailbox.send_id),
                    &EnvelopeKey::from_bytes(mailbox.envelope_key),
                )),
                sender_key: SigningKey::from_bytes(&sender_seed).verifying_key().to_bytes().to_vec(),
                profile_name: my_name.clone(),
            }),
        );
        let peer = PeerMailbox {
            relay: invite.relay.to_string(),
            send_id: invite.send_id.0,
            envelope_key: *invite.envelope_key.as_bytes(),
            sender_seed,
        };
        let contact = Contact {
            id,
            name: name.to_string(),
            their_name: invite.suggested_name.clone(),
            peer: Some(peer),
            my_recv_id: mailbox.recv_id,
            verified: false,
            identity_changed: false,
            next_seq: 1,
            next_local: 0,
        };
        let bundle = invite.bundle.to_bundle()?;
        let ptxn = ProtocolTxn::new(self.profile.store.txn());
        ptxn.process_prekey_bundle(&address_of(&id), &bundle, std::time::SystemTime::now(), &mut rand::rng()).await?;
        {
            let mut txn = ptxn.txn()?;
            profile::put_own_mailbox(&mut txn, &mailbox)?;
            profile::put_contact(&mut txn, &contact)?;
        }
        queue(&ptxn, &contact, &hello, None).await?;
        ptxn.commit()?;
        Ok(id)
    }

    /// Encrypts and queues a text for `name`, then flushes the outbox. Returns once the
    /// relay stored it; if the relay cannot be reached the message stays queued and
    /// [`AppError::Queued`] says so.
    pub async fn send_text(&mut self, name: &str, text: &str) -> Result<(), AppError> {
        self.send_text_expiring(name, text, None).await
    }

    /// [`Self::send_text`] for a message that disappears from both sides after `expire`
    /// seconds (`None`: the conversation's timer).
    pub async fn send_text_expiring(&mut self, name: &str, text: &str, expire: Option<u32>) -> Result<(), AppError> {
        let max = content::MAX_TEXT_BYTES;
        if text.len() > max {
            return Err(AppError::TooLong(text.len(), max));
        }
        self.send_body(name, Body::Text(Text { text: text.to_string() }), text.to_string(), expire).await
    }

    /// Sends `body` to the contact `name` under the conversation's timer (or `expire`),
    /// records it in the conversation as `shown`, and flushes the outbox. Texts and file
    /// pointers alike: both disappear under a timer, both get delivery receipts.
    pub(super) async fn send_body(
        &mut self,
        name: &str,
        body: Body,
        shown: String,
        expire: Option<u32>,
    ) -> Result<(), AppError> {
        let ptxn = ProtocolTxn::new(self.profile.store.txn());
        let mut contact = {
            let txn = ptxn.txn()?;
            profile::contact_by_name(&txn, name)?
        };
        if contact.identity_changed {
            return Err(AppError::IdentityChanged(contact.name.clone()));
        }
        if contact.peer.is_none() {
            return Err(AppError::NotReady(contact.name.clone()));
        }
        let seq = contact.next_seq;
        contact.next_seq += 1;
        let mut body = content_of(seq, body);
        let lifetime = super::defences::expiry::lifetime(&*ptxn.txn()?, &contact, expire)?;
        body.expire_seconds = lifetime;
        let local = contact.next_local;
        contact.next_local += 1;
        let message = Message {
            direction: Direction::Out,
            text: shown,
            sent_at_ms: body.sent_at_ms,
            seq,
            delivery: Delivery::Queued,
        };
        let message_key = {
            let mut txn = ptxn.txn()?;
            let key = profile::message_key(&txn, &contact.id, local);
            let expires = (lifetime > 0).then(|| txn.now_ms().saturating_add(u64::from(lifetime) * 1000));
            super::defences::expiry::put_until(&mut txn, &key, &message, expires)?;
            super::defences::receipts::on_sent(&mut txn, &contact, &body.id, local)?;
            profile::put_contact(&mut txn, &contact)?;
            key
        };
        queue(&ptxn, &contact, &body, Some(message_key)).await?;
        ptxn.commit()?;
        let report = self.flush_outbox().await?;
        match report.last_error {
            Some(e) => Err(AppError::Queued(e)),
            None => Ok(()),
        }
    }

    /// Sends everything in the outbox that can go now, pipelined per relay (see `flush`).
    pub async fn flush_outbox(&mut self) -> Result<FlushReport, AppError> {
        self.flush_pipelined().await
    }

    pub(super) async fn send_envelope(&mut self, out: &Outgoing) -> Result<(), AppError> {
        let envelope =
            Envelope::from_slice(&out.envelope).map_err(|_| crate::store::StoreError::CorruptRecord("outbox"))?;
        let link = match self.pool.link(&out.relay).await {
            Ok(l) => l,
            Err(e) => {
                self.pool.drop_link(&out.relay);
                return Err(e.into());
            }
        };
        let mut req = Request::Send { send_id: SendId(out.send_id), envelope, signature: None };
        sign_request(&SigningKey::from_bytes(&out.sender_seed), &link.nonce(), &mut req);
        match link.request(req).await {
            Ok(Response::Ok) => Ok(()),
            Ok(Response::Error(code)) => Err(AppError::Refused(code)),
            Ok(_) => Err(AppError::Link(LinkError::Protocol("unexpected answer to send".into()))),
            Err(e) => {
                self.pool.drop_link(&out.relay);
                Err(e.into())
            }
        }
    }

    /// Creates a mailbox on `relay` with fresh keys (not yet saved).
    pub(super) async fn create_mailbox(&mut self, relay: &str) -> Result<OwnMailbox, AppError> {
        let owner_seed = random_seed();
        let owner = SigningKey::from_bytes(&owner_seed);
        let req = Request::CreateMailbox { owner_key: PublicKey(owner.verifying_key().to_bytes()), signature: NO_SIG };
        let Response::MailboxCreated { recv_id, send_id } = self.owner_request(relay, &owner, req).await? else {
            return Err(AppError::Link(LinkError::Protocol("unexpected answer to create".into())));
        };
        Ok(OwnMailbox {
            relay: relay.to_string(),
            recv_id: recv_id.0,
            send_id: send_id.0,
            owner_seed,
            envelope_key: random_seed(),
            contact: None,
            invite: None,
            secure_pending: None,
        })
    }

    /// Removes a contact whose invite turned out to be used, and its mailbox.
    async fn forget_contact(&mut self, id: &ContactId) -> Result<(), AppError> {
        let mut txn = self.profile.store.txn();
        let Some(c) = profile::contact(&txn, id)? else { return Ok(()) };
        let mailbox = profile::own_mailbox(&txn, &c.my_recv_id)?;
        profile::remove_contact(&mut txn, id);
        profile::remove_own_mailbox(&mut txn, &c.my_recv_id);
        crate::store::signal::delete_session(&mut txn, &address_of(id))?;
        txn.commit()?;
        if let Some(m) = mailbox {
            let owner = SigningKey::from_bytes(&m.owner_seed);
            let req = Request::DeleteMailbox { recv_id: sotto_proto::RecvId(m.recv_id), signature: NO_SIG };
            let _ = self.owner_request(&m.relay, &owner, req).await;
        }
        Ok(())
    }
}

/// Encrypts `body` for `contact`, seals it for their mailbox and puts it in the outbox,
/// all in `ptxn`.
pub(super) async fn queue(
    ptxn: &ProtocolTxn<'_>,
    contact: &Contact,
    body: &Content,
    message_key: Option<Vec<u8>>,
) -> Result<(), AppError> {
    let peer = contact.peer.as_ref().ok_or_else(|| AppError::NotReady(contact.name.clone()))?;
    let plaintext = zeroize::Zeroizing::new(encode_content(body)?);
    let ciphertext =
        ptxn.encrypt(&address_of(&contact.id), &plaintext, std::time::SystemTime::now(), &mut rand::rng()).await?;
    let kind = match &ciphertext {
        CiphertextMessage::PreKeySignalMessage(_) => BodyKind::PreKey,
        _ => BodyKind::Signal,
    };
    let key = EnvelopeKey::from_bytes(peer.envelope_key);
    let sealed = envelope::seal(&key, &SendId(peer.send_id), kind, ciphertext.serialize(), &mut rand::rng())?;
    let out = Outgoing {
        contact: contact.id,
        message_key: message_key.unwrap_or_default(),
        relay: peer.relay.clone(),
        send_id: peer.send_id,
        sender_seed: peer.sender_seed,
        envelope: sealed.as_bytes().to_vec(),
    };
    // Keyed by time, then a counter, so the outbox flushes in the order messages were
    // written, also within one millisecond (a fan-out writes many).
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&now_ms().to_be_bytes());
    id[8..12].copy_from_slice(&super::flush::next_outbox_counter().to_be_bytes());
    rand::rng().fill_bytes(&mut id[12..]);
    let mut txn = ptxn.txn()?;
    if body.expire_seconds > 0 {
        // Its ciphertext must die with the message: old ratchet states linger in sled.
        let at = txn.now_ms().saturating_add(u64::from(body.expire_seconds) * 1000);
        super::defences::expiry::put_outgoing_until(&mut txn, &id, &out, at)?;
    } else {
        profile::put_outgoing(&mut txn, &id, &out)?;
    }
    Ok(())
}

/// A content with a fresh id, stamped now.
pub(super) fn content_of(seq: u64, body: Body) -> Content {
    Content { id: new_content_id(&mut rand::rng()), seq, sent_at_ms: now_ms(), expire_seconds: 0, body: Some(body) }
}

/// The answer to a greeting: the key this profile will sign its sends with.
pub(super) fn welcome(sender_seed: &[u8; 32], my_name: &str) -> Content {
    let sender_key = SigningKey::from_bytes(sender_seed).verifying_key().to_bytes().to_vec();
    content_of(0, Body::Welcome(Welcome { sender_key, profile_name: my_name.to_string() }))
}

pub(super) fn random_seed() -> [u8; 32] {
    let mut s = [0u8; 32];
    rand::rng().fill_bytes(&mut s);
    s
}
