//! What the chat UI needs from the network and the profile, as a trait ([`Backend`]), and
//! its implementation over the profile's [`Holder`] ([`ClientBackend`]).
//!
//! The trait exists so the whole UI can be driven in tests by a scripted backend, and so
//! features built elsewhere (files, groups, disappearing messages) slot in as methods whose
//! UI already exists: until the client library has them, [`ClientBackend`] answers
//! [`BackendError::NotAvailable`].
//!
//! Every method runs on the libsignal thread (the current-thread runtime that owns the
//! client); the UI never calls them directly but goes through the worker's channels.

use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use sotto_client::app::group::FanOutReport;
use sotto_client::app::records::{Delivery, Direction};
use sotto_client::app::{AppError, Notice, profile};
use sotto_client::files::Progress;
use sotto_client::wire::Body;
use tokio::sync::broadcast;

use super::super::chat_text as text;
use super::super::holder::Holder;
use super::read_marks;

/// A conversation: with one contact, or with a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChatId {
    Contact(String),
    Group(String),
}

impl ChatId {
    /// The name shown for it.
    pub fn name(&self) -> &str {
        match self {
            Self::Contact(n) | Self::Group(n) => n,
        }
    }
}

/// A conversation as the list on the left shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSummary {
    pub id: ChatId,
    /// The user compared safety numbers and marked the contact verified.
    pub verified: bool,
    /// The contact's identity key changed and the user has not accepted it.
    pub identity_changed: bool,
    /// The contact answered: messages can be sent.
    pub ready: bool,
    /// For a group: its members' names.
    pub members: Vec<String>,
    /// The disappearing timer agreed with a contact, in seconds (`None`: off).
    pub timer: Option<u64>,
    /// Messages not read in `sotto chat` (counted from the mark kept in the profile).
    pub unread: usize,
}

impl ChatSummary {
    /// A contact's summary with everything else default.
    pub fn contact(name: &str) -> Self {
        Self {
            id: ChatId::Contact(name.to_string()),
            verified: false,
            identity_changed: false,
            ready: true,
            members: Vec::new(),
            timer: None,
            unread: 0,
        }
    }
}

/// One message in a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Sent by this profile.
    pub mine: bool,
    /// Who wrote it, in a group (for a contact, the conversation says who).
    pub sender: Option<String>,
    pub text: String,
    pub sent_at_ms: u64,
    pub delivery: Delivery,
}

/// What the relays are doing, for the indicator at the top.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStatus {
    /// Relays holding this profile's mailboxes.
    pub relays: usize,
    /// How many of them cannot be reached right now.
    pub unreachable: usize,
    /// Messages written but not yet stored by a relay.
    pub queued: usize,
}

/// A safety number and what the user did with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Safety {
    /// 60 digits.
    pub digits: String,
    /// What the QR code holds.
    pub scannable: Vec<u8>,
    pub verified: bool,
    /// The number shown is for a changed key not yet accepted.
    pub changed: bool,
}

/// What the UI offers that the client cannot do yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// Timers are agreed per conversation; a group's members each have their own.
    GroupTimer,
}

/// Why an operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// This build of the client cannot do it yet.
    #[error("{}", text::not_available(*.0))]
    NotAvailable(Feature),
    /// Saved, but not yet stored by the relay: it goes out when the relay is back.
    #[error("{}", text::queued(.0))]
    Queued(String),
    /// It failed; the words say why.
    #[error("{0}")]
    Failed(String),
}

impl From<AppError> for BackendError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Queued(reason) => Self::Queued(reason.to_string()),
            e => Self::Failed(e.to_string()),
        }
    }
}

/// The operations the chat UI needs. Implementations run on the libsignal thread.
#[allow(async_fn_in_trait)]
pub trait Backend {
    /// Starts receiving (subscribes to the mailboxes). May take as long as the network
    /// does; what failed is reported as notices.
    async fn start(&mut self) -> Vec<Notice>;
    /// Stops receiving.
    fn stop(&mut self);
    /// The next thing to show; `None` once nothing more can come.
    async fn next_notice(&mut self) -> Option<Notice>;
    /// Every conversation, in the order to list them.
    async fn chats(&mut self) -> Result<Vec<ChatSummary>, BackendError>;
    /// A conversation's messages, oldest first.
    async fn history(&mut self, chat: &ChatId) -> Result<Vec<Entry>, BackendError>;
    /// Relays and outbox.
    async fn status(&mut self) -> Result<RelayStatus, BackendError>;
    /// Sends a text; [`BackendError::Queued`] if the relay cannot be reached now.
    async fn send_text(&mut self, chat: &ChatId, text: &str) -> Result<(), BackendError>;
    /// Makes a one-time invite link; `name` is what to call whoever accepts.
    async fn create_invite(&mut self, name: Option<&str>) -> Result<String, BackendError>;
    /// Accepts an invite link, saving its sender as `name`.
    async fn accept_invite(&mut self, link: &str, name: &str) -> Result<(), BackendError>;
    /// The safety number with a contact.
    async fn safety_number(&mut self, name: &str) -> Result<Safety, BackendError>;
    /// Marks a contact verified.
    async fn mark_verified(&mut self, name: &str) -> Result<(), BackendError>;
    /// Accepts a contact's changed identity key; returns what the held messages show.
    async fn accept_identity(&mut self, name: &str) -> Result<Vec<Notice>, BackendError>;
    /// Sends a file, reporting `(bytes done, total)` as it goes.
    async fn send_file(
        &mut self,
        chat: &ChatId,
        path: &Path,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(), BackendError>;
    /// Creates a group with these members.
    async fn group_create(&mut self, name: &str, members: &[String]) -> Result<(), BackendError>;
    /// Adds a contact to a group.
    async fn group_add(&mut self, group: &str, member: &str) -> Result<(), BackendError>;
    /// Removes a member from a group.
    async fn group_remove(&mut self, group: &str, member: &str) -> Result<(), BackendError>;
    /// Sets a conversation's disappearing timer (`None`: off).
    async fn set_timer(&mut self, chat: &ChatId, secs: Option<u64>) -> Result<(), BackendError>;
    /// Remembers that everything in `chat` has been seen.
    async fn mark_read(&mut self, chat: &ChatId) -> Result<(), BackendError>;
}

/// The real backend: the profile held by this process, shared with forwarded commands.
pub struct ClientBackend {
    holder: Rc<Holder>,
    notices: Option<broadcast::Receiver<Notice>>,
}

impl ClientBackend {
    pub fn new(holder: Rc<Holder>) -> Self {
        Self { holder, notices: None }
    }
}

impl Backend for ClientBackend {
    async fn start(&mut self) -> Vec<Notice> {
        self.notices = Some(self.holder.listen_start().await);
        let failures = self.holder.take_subscribe_failures().await;
        failures.into_iter().map(|(_, e)| Notice::RelayTrouble(e)).collect()
    }

    fn stop(&mut self) {
        if self.notices.take().is_some() {
            self.holder.listen_stop();
        }
    }

    async fn next_notice(&mut self) -> Option<Notice> {
        let rx = self.notices.as_mut()?;
        loop {
            match rx.recv().await {
                Ok(n) => return Some(n),
                // A slow UI skipped some notices; the history reload on opening shows them.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    async fn chats(&mut self) -> Result<Vec<ChatSummary>, BackendError> {
        let mut c = self.holder.client.lock().await;
        let contacts = {
            let txn = c.profile.store.txn();
            profile::contacts(&txn).map_err(BackendError::from)?
        };
        let mut chats = Vec::with_capacity(contacts.len());
        for k in &contacts {
            let timer = c.timer(&k.name)?;
            chats.push(ChatSummary {
                verified: k.verified,
                identity_changed: k.identity_changed,
                ready: k.peer.is_some(),
                timer: (timer > 0).then_some(u64::from(timer)),
                unread: read_marks::unread(&mut c, &ChatId::Contact(k.name.clone()))?,
                ..ChatSummary::contact(&k.name)
            });
        }
        for group in c.group_names()? {
            let members = c.group_members(&group)?.into_iter().filter(|m| !m.me).map(|m| m.name).collect();
            let id = ChatId::Group(group);
            let unread = read_marks::unread(&mut c, &id)?;
            chats.push(ChatSummary { id, members, unread, ..ChatSummary::contact("") });
        }
        Ok(chats)
    }

    async fn history(&mut self, chat: &ChatId) -> Result<Vec<Entry>, BackendError> {
        let name = match chat {
            ChatId::Contact(name) => name,
            ChatId::Group(group) => {
                let mut c = self.holder.client.lock().await;
                return Ok(c
                    .group_history(group)?
                    .into_iter()
                    .map(|e| Entry {
                        mine: e.outgoing,
                        sender: (!e.outgoing).then(|| e.from.clone()),
                        text: match &e.file_name {
                            Some(f) => text::file_entry(f),
                            None => e.text.clone(),
                        },
                        sent_at_ms: e.sent_at_ms,
                        delivery: Delivery::Stored,
                    })
                    .collect());
            }
        };
        let mut c = self.holder.client.lock().await;
        let messages = c.history(name)?;
        Ok(messages
            .iter()
            .map(|m| Entry {
                mine: m.direction == Direction::Out,
                sender: None,
                text: m.text.clone(),
                sent_at_ms: m.sent_at_ms,
                delivery: m.delivery,
            })
            .collect())
    }

    async fn status(&mut self) -> Result<RelayStatus, BackendError> {
        let mut c = self.holder.client.lock().await;
        let (relays, queued) = {
            let txn = c.profile.store.txn();
            let mut relays: Vec<String> =
                profile::own_mailboxes(&txn).map_err(BackendError::from)?.iter().map(|m| m.relay.clone()).collect();
            relays.sort();
            relays.dedup();
            (relays, profile::outbox(&txn).map_err(BackendError::from)?.len())
        };
        let unreachable = relays.iter().filter(|r| !c.relay_connected(r)).count();
        Ok(RelayStatus { relays: relays.len(), unreachable, queued })
    }

    async fn send_text(&mut self, chat: &ChatId, body: &str) -> Result<(), BackendError> {
        let mut c = self.holder.client.lock().await;
        match chat {
            ChatId::Contact(name) => Ok(c.send_text(name, body).await?),
            ChatId::Group(group) => fan_out(c.group_send_text(group, body).await?),
        }
    }

    async fn create_invite(&mut self, name: Option<&str>) -> Result<String, BackendError> {
        let mut c = self.holder.client.lock().await;
        let link = c.create_invite(name, None).await?;
        // Receiving started before this mailbox existed: subscribe it too. The relay was
        // just reached, so this normally succeeds; if the link drops, `poll` subscribes
        // every mailbox on that relay again when it reconnects. Deliver anything queued.
        let _ = c.subscribe_all().await;
        let _ = c.flush_outbox().await;
        Ok(link)
    }

    async fn accept_invite(&mut self, link: &str, name: &str) -> Result<(), BackendError> {
        let mut c = self.holder.client.lock().await;
        c.accept_invite(link, name).await?;
        // The mailbox made for their answer did not exist when receiving started.
        let _ = c.subscribe_all().await;
        Ok(())
    }

    async fn safety_number(&mut self, name: &str) -> Result<Safety, BackendError> {
        let mut c = self.holder.client.lock().await;
        let n = c.safety_number(name)?;
        Ok(Safety { digits: n.digits, scannable: n.scannable, verified: n.verified, changed: n.changed })
    }

    async fn mark_verified(&mut self, name: &str) -> Result<(), BackendError> {
        let mut c = self.holder.client.lock().await;
        Ok(c.mark_verified(name)?)
    }

    async fn accept_identity(&mut self, name: &str) -> Result<Vec<Notice>, BackendError> {
        let mut c = self.holder.client.lock().await;
        Ok(c.accept_new_identity(name).await?)
    }

    async fn send_file(
        &mut self,
        chat: &ChatId,
        path: &Path,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(), BackendError> {
        let mut c = self.holder.client.lock().await;
        // The upload reports into atomics; this task passes them on to the UI a few times a
        // second, so the UI's callback need not be shareable across threads.
        let counts = Counts::default();
        let pointer = {
            let upload = c.upload_file(path, &counts);
            tokio::pin!(upload);
            let mut tick = tokio::time::interval(PROGRESS_EVERY);
            loop {
                tokio::select! {
                    r = &mut upload => break r?,
                    _ = tick.tick() => progress(counts.done.load(Ordering::Relaxed), counts.total.load(Ordering::Relaxed)),
                }
            }
        };
        let total = counts.total.load(Ordering::Relaxed);
        progress(total, total);
        match chat {
            ChatId::Contact(name) => Ok(c.send_attachment(name, &pointer).await?),
            ChatId::Group(group) => fan_out(c.group_send(group, Body::Attachment(pointer)).await?),
        }
    }

    async fn group_create(&mut self, name: &str, members: &[String]) -> Result<(), BackendError> {
        let mut c = self.holder.client.lock().await;
        c.group_create(name)?;
        for m in members {
            fan_out(c.group_add(name, m).await?)?;
        }
        Ok(())
    }

    async fn group_add(&mut self, group: &str, member: &str) -> Result<(), BackendError> {
        let mut c = self.holder.client.lock().await;
        fan_out(c.group_add(group, member).await?)
    }

    async fn group_remove(&mut self, group: &str, member: &str) -> Result<(), BackendError> {
        let mut c = self.holder.client.lock().await;
        fan_out(c.group_remove(group, member).await?)
    }

    async fn set_timer(&mut self, chat: &ChatId, secs: Option<u64>) -> Result<(), BackendError> {
        let ChatId::Contact(name) = chat else { return Err(BackendError::NotAvailable(Feature::GroupTimer)) };
        let seconds = u32::try_from(secs.unwrap_or(0)).map_err(|_| BackendError::Failed(text::timer_too_long()))?;
        let mut c = self.holder.client.lock().await;
        Ok(c.set_timer(name, seconds).await?)
    }

    async fn mark_read(&mut self, chat: &ChatId) -> Result<(), BackendError> {
        let mut c = self.holder.client.lock().await;
        Ok(read_marks::mark_read(&mut c, chat)?)
    }
}

/// How often an upload's progress reaches the UI.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// An upload's progress, as the files code reports it.
#[derive(Default)]
struct Counts {
    done: AtomicU64,
    total: AtomicU64,
}

impl Progress for Counts {
    fn start(&self, total: u64, done: u64) {
        self.total.store(total, Ordering::Relaxed);
        self.done.store(done, Ordering::Relaxed);
    }

    fn set(&self, done: u64) {
        self.done.store(done, Ordering::Relaxed);
    }

    fn finish(&self) {}
}

/// A group send or change that reached the relay. Copies for members still being
/// introduced wait in the profile and leave once they can; a relay that could not be
/// reached is reported by the call itself ([`AppError::Queued`]).
fn fan_out(_report: FanOutReport) -> Result<(), BackendError> {
    Ok(())
}

impl Drop for ClientBackend {
    fn drop(&mut self) {
        self.stop();
    }
}
