//! The chat's state: everything on screen is drawn from an [`App`], and an `App` changes
//! only through keys ([`super::keys`]) and worker [`Event`]s ([`App::on_event`]).

use std::collections::HashMap;

use sotto_client::app::records::Delivery;
use sotto_client::app::{FileState, Notice};

use super::super::chat_text as text;
use super::backend::{BackendError, ChatId, ChatSummary, Entry, RelayStatus, Safety};
use super::input::Editor;
use super::worker::{Event, Request};

/// Disappearing-timer choices offered, in seconds (`None`: off).
pub const TIMER_CHOICES: [Option<u64>; 6] = [None, Some(30), Some(300), Some(3600), Some(86_400), Some(604_800)];

/// A conversation on the left and what is known of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chat {
    pub summary: ChatSummary,
    /// Its messages, once loaded.
    pub entries: Vec<Entry>,
    pub loaded: bool,
    /// Messages that arrived since it was last on screen (at start, as the profile counts
    /// them; then counted here).
    pub unread: usize,
    /// Rows scrolled up from the newest message.
    pub scroll: usize,
    /// The disappearing timer agreed in this conversation (as last reported or set).
    pub timer: Option<u64>,
}

impl Chat {
    fn new(summary: ChatSummary) -> Self {
        let (timer, unread) = (summary.timer, summary.unread);
        Self { summary, entries: Vec::new(), loaded: false, unread, scroll: 0, timer }
    }
}

/// A one-line form field.
pub type Field = Editor;

/// What the group popup does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupAction {
    Create,
    Add,
    Remove,
}

/// Something waiting on the worker, shown in a popup meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Popup {
    Help {
        scroll: u16,
    },
    /// Asking what to call whoever accepts the new invite.
    InviteName {
        name: Field,
        waiting: bool,
    },
    /// The invite made: the link to copy, and what its QR code holds (the compact form of
    /// a short link, see `wire::invite_qr`).
    Invite {
        link: String,
        qr: String,
        scroll: u16,
    },
    /// Pasting someone's invite. `focus` 0: link, 1: name.
    Accept {
        link: Field,
        name: Field,
        focus: u8,
        waiting: bool,
    },
    /// The safety number with a contact (`None` while loading).
    Safety {
        name: String,
        safety: Option<Safety>,
        scroll: u16,
    },
    /// Sending a file: the path, then progress.
    File {
        path: Field,
        progress: Option<(u64, u64)>,
        sending: bool,
    },
    /// Managing groups. `focus` 0: group name, 1: members.
    Group {
        action: GroupAction,
        group: Field,
        members: Field,
        focus: u8,
        waiting: bool,
    },
    /// Choosing the disappearing timer (an index into [`TIMER_CHOICES`]).
    Timer {
        choice: usize,
        waiting: bool,
    },
}

impl Popup {
    /// The popup showing a new invite `link`.
    pub fn invite(link: String) -> Self {
        let qr = sotto_client::wire::invite_qr::qr_form(&link);
        Self::Invite { link, qr, scroll: 0 }
    }
}

/// The line at the bottom: what just happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toast {
    pub text: String,
    pub error: bool,
}

/// The whole UI state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct App {
    pub chats: Vec<Chat>,
    pub selected: usize,
    pub input: Editor,
    pub popup: Option<Popup>,
    /// `None` until the worker first reports.
    pub status: Option<RelayStatus>,
    /// Receiving has started.
    pub started: bool,
    /// The last relay problem reported, cleared when every relay is up.
    pub relay_problem: Option<String>,
    pub toast: Option<Toast>,
    pub quit: bool,
    /// The time zone times are shown in.
    pub zone: Zone,
}

/// A time zone; by default the system's (`TZ`, `/etc/localtime`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone(pub jiff::tz::TimeZone);

impl Default for Zone {
    fn default() -> Self {
        Self(jiff::tz::TimeZone::system())
    }
}

impl App {
    pub fn new() -> Self {
        Self::default()
    }

    /// The conversation on screen.
    pub fn current(&self) -> Option<&Chat> {
        self.chats.get(self.selected)
    }

    pub fn current_mut(&mut self) -> Option<&mut Chat> {
        self.chats.get_mut(self.selected)
    }

    /// Whether some relay cannot be reached now.
    pub fn offline(&self) -> bool {
        self.status.is_some_and(|s| s.unreachable > 0)
    }

    pub fn info(&mut self, t: impl Into<String>) {
        self.toast = Some(Toast { text: t.into(), error: false });
    }

    pub fn error(&mut self, t: impl Into<String>) {
        self.toast = Some(Toast { text: t.into(), error: true });
    }

    /// Selects the conversation at `index` and asks for its messages.
    pub fn select(&mut self, index: usize) -> Vec<Request> {
        let Some(chat) = self.chats.get_mut(index) else { return Vec::new() };
        self.selected = index;
        chat.unread = 0;
        chat.scroll = 0;
        vec![Request::Open(chat.summary.id.clone())]
    }

    /// Applies what the worker reported; returns what to ask it next.
    pub fn on_event(&mut self, e: Event) -> Vec<Request> {
        match e {
            Event::Chats(list) => return self.set_chats(list),
            Event::History { chat, entries } => {
                if let Some(c) = self.chats.iter_mut().find(|c| c.summary.id == chat) {
                    c.entries = entries;
                    c.loaded = true;
                }
            }
            Event::Status(s) => {
                if s.unreachable == 0 {
                    self.relay_problem = None;
                }
                self.status = Some(s);
            }
            Event::Started => self.started = true,
            Event::Notice(n) => return self.on_notice(n),
            Event::Sent { chat, text: body, result } => match result {
                Ok(()) => {}
                Err(BackendError::Queued(_)) => self.info(text::QUEUED_TOAST),
                Err(e) => {
                    // Not saved: give the words back so nothing typed is lost.
                    if self.input.is_empty() && self.current().is_some_and(|c| c.summary.id == chat) {
                        self.input = Editor::with_text(&body);
                    }
                    self.error(e.to_string());
                }
            },
            Event::Invite(result) => match result {
                Ok(link) => {
                    self.popup = Some(Popup::invite(link));
                }
                Err(e) => {
                    self.popup = None;
                    self.error(e.to_string());
                }
            },
            Event::Accepted { name, result } => match result {
                Ok(()) => {
                    self.popup = None;
                    self.info(text::accepted(&name));
                }
                Err(e) => {
                    if let Some(Popup::Accept { waiting, .. }) = &mut self.popup {
                        *waiting = false;
                    }
                    self.error(e.to_string());
                }
            },
            Event::Safety { name, result } => match result {
                Ok(s) => {
                    if let Some(Popup::Safety { name: n, safety, .. }) = &mut self.popup
                        && *n == name
                    {
                        *safety = Some(s);
                    }
                }
                Err(e) => {
                    self.popup = None;
                    self.error(e.to_string());
                }
            },
            Event::Verified { name, result } => match result {
                Ok(()) => {
                    self.info(text::marked_verified(&name));
                    return vec![Request::SafetyNumber(name)];
                }
                Err(e) => self.error(e.to_string()),
            },
            Event::IdentityAccepted { name, result } => match result {
                Ok(()) => {
                    self.info(text::identity_accepted(&name));
                    let mut next = vec![Request::SafetyNumber(name.clone())];
                    if self.current().is_some_and(|c| c.summary.id == ChatId::Contact(name.clone())) {
                        next.push(Request::Open(ChatId::Contact(name)));
                    }
                    return next;
                }
                Err(e) => self.error(e.to_string()),
            },
            Event::FileProgress { done, total } => {
                if let Some(Popup::File { progress, .. }) = &mut self.popup {
                    *progress = Some((done, total));
                }
            }
            Event::FileDone(result) => {
                if let Some(Popup::File { sending, .. }) = &mut self.popup {
                    *sending = false;
                }
                match result {
                    Ok(()) => {
                        self.popup = None;
                        self.info(text::FILE_SENT);
                    }
                    Err(e) => self.error(e.to_string()),
                }
            }
            Event::GroupDone(result) => match result {
                Ok(()) => {
                    self.popup = None;
                    self.info(text::GROUP_DONE);
                }
                Err(e) => {
                    if let Some(Popup::Group { waiting, .. }) = &mut self.popup {
                        *waiting = false;
                    }
                    self.error(e.to_string());
                }
            },
            Event::TimerDone { secs, result } => match result {
                Ok(()) => {
                    self.popup = None;
                    if let Some(c) = self.current_mut() {
                        c.timer = secs;
                    }
                    self.info(text::timer_set(secs));
                }
                Err(e) => {
                    if let Some(Popup::Timer { waiting, .. }) = &mut self.popup {
                        *waiting = false;
                    }
                    self.error(e.to_string());
                }
            },
            Event::Failed(e) => self.error(e.to_string()),
        }
        Vec::new()
    }

    /// Replaces the list, keeping what is known of each conversation and the selection.
    fn set_chats(&mut self, list: Vec<ChatSummary>) -> Vec<Request> {
        let selected = self.current().map(|c| c.summary.id.clone());
        let mut old: HashMap<ChatId, Chat> = self.chats.drain(..).map(|c| (c.summary.id.clone(), c)).collect();
        self.chats = list
            .into_iter()
            .map(|s| match old.remove(&s.id) {
                Some(mut c) => {
                    c.timer = s.timer;
                    c.summary = s;
                    c
                }
                None => Chat::new(s),
            })
            .collect();
        let index = selected.and_then(|id| self.chats.iter().position(|c| c.summary.id == id));
        match index {
            Some(i) => {
                self.selected = i;
                if self.chats[i].loaded { Vec::new() } else { vec![Request::Open(self.chats[i].summary.id.clone())] }
            }
            None if self.chats.is_empty() => {
                self.selected = 0;
                Vec::new()
            }
            None => self.select(0),
        }
    }

    fn on_notice(&mut self, n: Notice) -> Vec<Request> {
        match n {
            Notice::Message { from, text: body, sent_at_ms, .. } => {
                let (chat, sender) = self.route(&from);
                return self.add_incoming(chat, sender, body, sent_at_ms);
            }
            Notice::Joined { name } => self.info(text::joined(&name)),
            Notice::Ready { name } => self.info(text::ready(&name)),
            Notice::Dropped { reason } => self.error(text::dropped(&reason)),
            Notice::IdentityChanged { name } => {
                if let Some(c) = self.chats.iter_mut().find(|c| c.summary.id == ChatId::Contact(name.clone())) {
                    c.summary.identity_changed = true;
                }
                self.error(text::identity_changed_toast(&name));
            }
            Notice::RelayTrouble(reason) => self.relay_problem = Some(reason),
            Notice::GroupMessage { group, from, text: body, file_name, sent_at_ms } => {
                let body = file_name.map_or(body, |f| text::file_entry(&f));
                return self.add_incoming(ChatId::Group(group), Some(from), body, sent_at_ms);
            }
            Notice::TimerChanged { name, seconds } => {
                let secs = (seconds > 0).then_some(u64::from(seconds));
                if let Some(c) = self.chats.iter_mut().find(|c| c.summary.id == ChatId::Contact(name.clone())) {
                    c.timer = secs;
                }
                self.info(text::timer_changed(&name, secs));
            }
            Notice::FileSaved { from, file_name, path, .. } => {
                self.info(text::file_saved(&from, &file_name, &path.display().to_string()));
            }
            Notice::FileFailed { from, file_name, reason } => self.error(text::file_failed(&from, &file_name, &reason)),
            Notice::Group { group, .. } => self.info(text::group_changed(&group)),
            Notice::GroupFile { group, from, file_name, state, .. } => {
                return self.on_group_file(group, from, file_name, state);
            }
            _ => {}
        }
        Vec::new()
    }

    /// A file sent to a group: its entry is in the group's history (read again if it is
    /// loaded, counted unread if not on screen); how it ended is told like a contact's file.
    fn on_group_file(&mut self, group: String, from: String, file_name: String, state: FileState) -> Vec<Request> {
        let sender = format!("{group}/{from}");
        match state {
            FileState::Downloading => {
                let chat = ChatId::Group(group);
                let on_screen = self.current().is_some_and(|c| c.summary.id == chat);
                let Some(c) = self.chats.iter_mut().find(|c| c.summary.id == chat) else { return Vec::new() };
                if !on_screen {
                    c.unread += 1;
                }
                if c.loaded || on_screen {
                    return vec![Request::Open(chat)];
                }
            }
            FileState::Saved(path) => self.info(text::file_saved(&sender, &file_name, &path.display().to_string())),
            FileState::Failed(reason) => self.error(text::file_failed(&sender, &file_name, &reason)),
            _ => {}
        }
        Vec::new()
    }

    /// A message that arrived in `chat`: appended if its history is loaded, counted unread
    /// unless it is on screen.
    fn add_incoming(&mut self, chat: ChatId, sender: Option<String>, body: String, sent_at_ms: u64) -> Vec<Request> {
        let on_screen = self.current().is_some_and(|c| c.summary.id == chat);
        let Some(c) = self.chats.iter_mut().find(|c| c.summary.id == chat) else { return Vec::new() };
        if c.loaded {
            c.entries.push(Entry { mine: false, sender, text: body, sent_at_ms, delivery: Delivery::Received });
        } else if on_screen {
            // Its history may have been read before this message was stored.
            return vec![Request::Open(chat)];
        }
        if !on_screen {
            c.unread += 1;
        }
        Vec::new()
    }

    /// Which conversation a sender belongs to. Group messages come from `GROUP/NAME`;
    /// a contact's name may itself hold a `/`, so the prefix counts as a group only if
    /// this profile has a group of that name and no contact is called `from`.
    pub fn route(&self, from: &str) -> (ChatId, Option<String>) {
        let contact = ChatId::Contact(from.to_string());
        if self.chats.iter().any(|c| c.summary.id == contact) {
            return (contact, None);
        }
        if let Some((group, name)) = from.split_once('/') {
            let id = ChatId::Group(group.to_string());
            if self.chats.iter().any(|c| c.summary.id == id) {
                return (id, Some(name.to_string()));
            }
        }
        (contact, None)
    }
}
