//! The worker: runs on the libsignal thread, does what the UI asks through a [`Backend`],
//! and reports back. The UI only ever sends a [`Request`] and reads [`Event`]s, so drawing
//! and typing never wait for the network.

use std::path::PathBuf;
use std::time::Duration;

use sotto_client::app::Notice;
use tokio::sync::mpsc;

use super::backend::{Backend, BackendError, ChatId, ChatSummary, Entry, RelayStatus, Safety};

/// How often the relay indicator and delivery states are refreshed.
pub const STATUS_INTERVAL: Duration = Duration::from_millis(500);

/// What the UI asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// This conversation is on screen: load it, and reload it when deliveries change.
    Open(ChatId),
    SendText {
        chat: ChatId,
        text: String,
    },
    CreateInvite {
        name: Option<String>,
    },
    AcceptInvite {
        link: String,
        name: String,
    },
    SafetyNumber(String),
    MarkVerified(String),
    AcceptIdentity(String),
    SendFile {
        chat: ChatId,
        path: PathBuf,
    },
    GroupCreate {
        name: String,
        members: Vec<String>,
    },
    GroupAdd {
        group: String,
        member: String,
    },
    GroupRemove {
        group: String,
        member: String,
    },
    SetTimer {
        chat: ChatId,
        secs: Option<u64>,
    },
}

/// What the worker reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Chats(Vec<ChatSummary>),
    History {
        chat: ChatId,
        entries: Vec<Entry>,
    },
    Status(RelayStatus),
    /// Receiving has started (or could not, see the notices before this).
    Started,
    Notice(Notice),
    Sent {
        chat: ChatId,
        text: String,
        result: Result<(), BackendError>,
    },
    Invite(Result<String, BackendError>),
    Accepted {
        name: String,
        result: Result<(), BackendError>,
    },
    Safety {
        name: String,
        result: Result<Safety, BackendError>,
    },
    Verified {
        name: String,
        result: Result<(), BackendError>,
    },
    IdentityAccepted {
        name: String,
        result: Result<(), BackendError>,
    },
    FileProgress {
        done: u64,
        total: u64,
    },
    FileDone(Result<(), BackendError>),
    GroupDone(Result<(), BackendError>),
    TimerDone {
        secs: Option<u64>,
        result: Result<(), BackendError>,
    },
    /// Loading something failed (the list, a history, the status).
    Failed(BackendError),
}

/// Where events go: the UI thread's channel, or a test's.
pub trait Sink {
    fn send(&self, e: Event);
}

impl Sink for std::sync::mpsc::Sender<Event> {
    fn send(&self, e: Event) {
        // The UI went away: the worker stops when the request channel closes.
        let _ = std::sync::mpsc::Sender::send(self, e);
    }
}

/// Serves the UI until its request channel closes.
pub async fn run<B: Backend, S: Sink>(mut b: B, mut requests: mpsc::UnboundedReceiver<Request>, out: S) {
    let mut w = Worker { open: None, status: None };
    w.send_chats(&mut b, &out).await;
    w.refresh_status(&mut b, &out).await;
    for n in b.start().await {
        out.send(Event::Notice(n));
    }
    out.send(Event::Started);
    w.refresh_status(&mut b, &out).await;
    let mut tick = tokio::time::interval(STATUS_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut notices_open = true;
    loop {
        tokio::select! {
            r = requests.recv() => match r {
                Some(r) => w.handle(&mut b, r, &out).await,
                None => break,
            },
            n = b.next_notice(), if notices_open => match n {
                Some(n) => w.on_notice(&mut b, n, &out).await,
                None => notices_open = false,
            },
            _ = tick.tick() => w.refresh_status(&mut b, &out).await,
        }
    }
    b.stop();
}

struct Worker {
    /// The conversation on screen.
    open: Option<ChatId>,
    status: Option<RelayStatus>,
}

impl Worker {
    async fn handle<B: Backend, S: Sink>(&mut self, b: &mut B, r: Request, out: &S) {
        match r {
            Request::Open(chat) => {
                self.open = Some(chat.clone());
                self.send_history(b, &chat, out).await;
                self.mark_read(b, &chat, out).await;
            }
            Request::SendText { chat, text } => {
                let result = b.send_text(&chat, &text).await;
                out.send(Event::Sent { chat: chat.clone(), text, result });
                self.send_history(b, &chat, out).await;
                self.refresh_status(b, out).await;
            }
            Request::CreateInvite { name } => out.send(Event::Invite(b.create_invite(name.as_deref()).await)),
            Request::AcceptInvite { link, name } => {
                let result = b.accept_invite(&link, &name).await;
                let ok = result.is_ok();
                out.send(Event::Accepted { name, result });
                if ok {
                    self.send_chats(b, out).await;
                }
            }
            Request::SafetyNumber(name) => {
                let result = b.safety_number(&name).await;
                out.send(Event::Safety { name, result });
            }
            Request::MarkVerified(name) => {
                let result = b.mark_verified(&name).await;
                out.send(Event::Verified { name, result });
                self.send_chats(b, out).await;
            }
            Request::AcceptIdentity(name) => {
                let result = b.accept_identity(&name).await;
                let result = match result {
                    Ok(notices) => {
                        notices.into_iter().for_each(|n| out.send(Event::Notice(n)));
                        Ok(())
                    }
                    Err(e) => Err(e),
                };
                out.send(Event::IdentityAccepted { name, result });
                self.send_chats(b, out).await;
            }
            Request::SendFile { chat, path } => {
                let mut progress = |done, total| out.send(Event::FileProgress { done, total });
                let result = b.send_file(&chat, &path, &mut progress).await;
                out.send(Event::FileDone(result));
                self.send_history(b, &chat, out).await;
            }
            Request::GroupCreate { name, members } => {
                out.send(Event::GroupDone(b.group_create(&name, &members).await));
                self.send_chats(b, out).await;
            }
            Request::GroupAdd { group, member } => {
                out.send(Event::GroupDone(b.group_add(&group, &member).await));
                self.send_chats(b, out).await;
            }
            Request::GroupRemove { group, member } => {
                out.send(Event::GroupDone(b.group_remove(&group, &member).await));
                self.send_chats(b, out).await;
            }
            Request::SetTimer { chat, secs } => {
                out.send(Event::TimerDone { secs, result: b.set_timer(&chat, secs).await });
            }
        }
    }

    async fn on_notice<B: Backend, S: Sink>(&mut self, b: &mut B, n: Notice, out: &S) {
        // These change the list (a new contact, a changed key): send it again.
        let relist = matches!(
            n,
            Notice::Joined { .. } | Notice::Ready { .. } | Notice::IdentityChanged { .. } | Notice::Group { .. }
        );
        // A message in the conversation on screen is seen as it arrives.
        let chat = match &n {
            Notice::Message { from, .. } => Some(ChatId::Contact(from.clone())),
            Notice::GroupMessage { group, .. } | Notice::GroupFile { group, .. } => Some(ChatId::Group(group.clone())),
            _ => None,
        };
        out.send(Event::Notice(n));
        if relist {
            self.send_chats(b, out).await;
        }
        if let Some(chat) = chat.filter(|c| self.open.as_ref() == Some(c)) {
            self.mark_read(b, &chat, out).await;
        }
    }

    async fn mark_read<B: Backend, S: Sink>(&mut self, b: &mut B, chat: &ChatId, out: &S) {
        if let Err(e) = b.mark_read(chat).await {
            out.send(Event::Failed(e));
        }
    }

    async fn send_chats<B: Backend, S: Sink>(&mut self, b: &mut B, out: &S) {
        match b.chats().await {
            Ok(c) => out.send(Event::Chats(c)),
            Err(e) => out.send(Event::Failed(e)),
        }
    }

    async fn send_history<B: Backend, S: Sink>(&mut self, b: &mut B, chat: &ChatId, out: &S) {
        match b.history(chat).await {
            Ok(entries) => out.send(Event::History { chat: chat.clone(), entries }),
            Err(e) => out.send(Event::Failed(e)),
        }
    }

    /// Sends the status if it changed; when the outbox shrank, the open conversation's
    /// delivery marks changed too, so it is sent again.
    async fn refresh_status<B: Backend, S: Sink>(&mut self, b: &mut B, out: &S) {
        let Ok(now) = b.status().await else { return };
        if self.status == Some(now) {
            return;
        }
        let delivered = self.status.is_some_and(|old| now.queued < old.queued);
        self.status = Some(now);
        out.send(Event::Status(now));
        if delivered && let Some(chat) = self.open.clone() {
            self.send_history(b, &chat, out).await;
        }
    }
}
