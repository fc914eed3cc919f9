//! Keys: what each one does to the [`App`], and what it asks the worker for.
//! The same table is shown by `?` (see `chat_text::HELP`).

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use sotto_client::app::records::Delivery;

use super::backend::{ChatId, Entry};
use super::state::{App, Field, GroupAction, Popup, TIMER_CHOICES};
use super::worker::Request;

/// Sizes the keys depend on, from the current terminal size (see `view::dims`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    /// Cells per row of the message input.
    pub input_width: usize,
    /// Rows of conversation on screen (one page for PgUp/PgDn).
    pub page: usize,
}

impl App {
    /// Handles a key; returns what to ask the worker.
    pub fn on_key(&mut self, k: KeyEvent, dims: Dims) -> Vec<Request> {
        if k.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(k.code, KeyCode::Char('c' | 'q')) {
            self.quit = true;
            return Vec::new();
        }
        if self.popup.is_some() {
            return self.popup_key(k);
        }
        self.toast = None;
        let alt = k.modifiers.contains(KeyModifiers::ALT);
        match k.code {
            KeyCode::F(1) => self.popup = Some(Popup::Help { scroll: 0 }),
            KeyCode::Char('?') if self.input.is_empty() && !ctrl && !alt => {
                self.popup = Some(Popup::Help { scroll: 0 });
            }
            KeyCode::F(2) => self.open_invite(),
            KeyCode::Char('n') if ctrl => self.open_invite(),
            KeyCode::F(3) => self.open_accept(),
            KeyCode::Char('o') if ctrl => self.open_accept(),
            KeyCode::F(4) => return self.open_safety(),
            KeyCode::Char('s') if ctrl => return self.open_safety(),
            KeyCode::F(5) => self.open_file(),
            KeyCode::Char('f') if ctrl => self.open_file(),
            KeyCode::F(6) => self.open_group(),
            KeyCode::Char('g') if ctrl => self.open_group(),
            KeyCode::F(7) => self.open_timer(),
            KeyCode::Char('t') if ctrl => self.open_timer(),
            KeyCode::Tab => return self.cycle(true),
            KeyCode::BackTab => return self.cycle(false),
            KeyCode::Down if alt || ctrl => return self.cycle(true),
            KeyCode::Up if alt || ctrl => return self.cycle(false),
            KeyCode::PageUp => self.scroll_by(dims.page.saturating_sub(1).max(1) as isize),
            KeyCode::PageDown => self.scroll_by(-(dims.page.saturating_sub(1).max(1) as isize)),
            KeyCode::Esc => self.scroll_by(isize::MIN),
            KeyCode::Enter if alt => self.input.insert('\n'),
            KeyCode::Char('j') if ctrl => self.input.insert('\n'),
            KeyCode::Enter => return self.send(),
            KeyCode::Up => {
                if !self.input.up(dims.input_width) {
                    self.scroll_by(1);
                }
            }
            KeyCode::Down => {
                if !self.input.down(dims.input_width) {
                    self.scroll_by(-1);
                }
            }
            _ => edit(&mut self.input, k),
        }
        Vec::new()
    }

    /// Pasted text goes where typing would.
    pub fn on_paste(&mut self, s: &str) {
        match &mut self.popup {
            None => self.input.insert_str(s),
            Some(Popup::InviteName { name, .. }) => name.insert_str(s),
            Some(Popup::Accept { link, name, focus, .. }) => {
                if *focus == 0 {
                    link.insert_str(s)
                } else {
                    name.insert_str(s)
                }
            }
            Some(Popup::File { path, .. }) => path.insert_str(s),
            Some(Popup::Group { group, members, focus, .. }) => {
                if *focus == 0 {
                    group.insert_str(s)
                } else {
                    members.insert_str(s)
                }
            }
            Some(Popup::Help { .. } | Popup::Invite { .. } | Popup::Safety { .. } | Popup::Timer { .. }) => {}
        }
    }

    fn cycle(&mut self, forward: bool) -> Vec<Request> {
        let n = self.chats.len();
        if n == 0 {
            return Vec::new();
        }
        let next = if forward { (self.selected + 1) % n } else { (self.selected + n - 1) % n };
        self.select(next)
    }

    /// Scrolls the conversation up by `rows` (negative: down; `isize::MIN`: to the newest).
    fn scroll_by(&mut self, rows: isize) {
        if let Some(c) = self.current_mut() {
            c.scroll = if rows == isize::MIN { 0 } else { c.scroll.saturating_add_signed(rows) };
        }
    }

    fn send(&mut self) -> Vec<Request> {
        if self.input.text().trim().is_empty() {
            return Vec::new();
        }
        let Some(chat) = self.current().map(|c| c.summary.id.clone()) else {
            self.error(super::super::chat_text::NO_CHAT_SELECTED);
            return Vec::new();
        };
        let text = self.input.take();
        if let Some(c) = self.current_mut() {
            c.scroll = 0;
            // Shown at once as queued, whatever the network does; the worker's reload after
            // the send replaces it with what the profile stored.
            if c.loaded {
                let sent_at_ms = now_ms();
                c.entries.push(Entry {
                    mine: true,
                    sender: None,
                    text: text.clone(),
                    sent_at_ms,
                    delivery: Delivery::Queued,
                });
            }
        }
        vec![Request::SendText { chat, text }]
    }

    fn open_invite(&mut self) {
        self.popup = Some(Popup::InviteName { name: Field::new(), waiting: false });
    }

    fn open_accept(&mut self) {
        self.popup = Some(Popup::Accept { link: Field::new(), name: Field::new(), focus: 0, waiting: false });
    }

    fn open_safety(&mut self) -> Vec<Request> {
        match self.current().map(|c| c.summary.id.clone()) {
            Some(ChatId::Contact(name)) => {
                self.popup = Some(Popup::Safety { name: name.clone(), safety: None, scroll: 0 });
                vec![Request::SafetyNumber(name)]
            }
            Some(ChatId::Group(_)) => {
                self.error(super::super::chat_text::SAFETY_NEEDS_CONTACT);
                Vec::new()
            }
            None => {
                self.error(super::super::chat_text::NO_CHAT_SELECTED);
                Vec::new()
            }
        }
    }

    fn open_file(&mut self) {
        if self.current().is_none() {
            self.error(super::super::chat_text::NO_CHAT_SELECTED);
            return;
        }
        self.popup = Some(Popup::File { path: Field::new(), progress: None, sending: false });
    }

    fn open_group(&mut self) {
        let group = match self.current().map(|c| &c.summary.id) {
            Some(ChatId::Group(g)) => Field::with_text(g),
            _ => Field::new(),
        };
        self.popup =
            Some(Popup::Group { action: GroupAction::Create, group, members: Field::new(), focus: 0, waiting: false });
    }

    fn open_timer(&mut self) {
        let Some(c) = self.current() else {
            self.error(super::super::chat_text::NO_CHAT_SELECTED);
            return;
        };
        let choice = TIMER_CHOICES.iter().position(|t| *t == c.timer).unwrap_or(0);
        self.popup = Some(Popup::Timer { choice, waiting: false });
    }

    /// A key while a popup is open.
    fn popup_key(&mut self, k: KeyEvent) -> Vec<Request> {
        let Some(popup) = self.popup.as_mut() else { return Vec::new() };
        let chat = self.chats.get(self.selected).map(|c| c.summary.id.clone());
        if k.code == KeyCode::Esc {
            self.popup = None;
            return Vec::new();
        }
        match popup {
            Popup::Help { scroll } | Popup::Invite { scroll, .. } => {
                if !scroll_key(scroll, k) && matches!(k.code, KeyCode::Char('q') | KeyCode::Enter) {
                    self.popup = None;
                }
            }
            Popup::Safety { name, safety, scroll } => {
                let name = name.clone();
                let changed = safety.as_ref().is_some_and(|s| s.changed);
                let loaded = safety.is_some();
                if scroll_key(scroll, k) {
                    return Vec::new();
                }
                match k.code {
                    KeyCode::Char('v' | 'V') if loaded && !changed => return vec![Request::MarkVerified(name)],
                    KeyCode::Char('a' | 'A') if changed => return vec![Request::AcceptIdentity(name)],
                    KeyCode::Char('q') | KeyCode::Enter => self.popup = None,
                    _ => {}
                }
            }
            Popup::InviteName { name, waiting } => {
                if *waiting {
                    return Vec::new();
                }
                if k.code == KeyCode::Enter {
                    *waiting = true;
                    let n = name.text().trim().to_string();
                    return vec![Request::CreateInvite { name: (!n.is_empty()).then_some(n) }];
                }
                edit(name, k);
            }
            Popup::Accept { link, name, focus, waiting } => {
                if *waiting {
                    return Vec::new();
                }
                match k.code {
                    KeyCode::Tab | KeyCode::BackTab | KeyCode::Up | KeyCode::Down => *focus = 1 - *focus,
                    KeyCode::Enter if *focus == 0 => *focus = 1,
                    KeyCode::Enter => {
                        let (l, n) = (link.text().trim().to_string(), name.text().trim().to_string());
                        if l.is_empty() || n.is_empty() {
                            *focus = u8::from(!l.is_empty());
                            return Vec::new();
                        }
                        *waiting = true;
                        return vec![Request::AcceptInvite { link: l, name: n }];
                    }
                    _ => edit(if *focus == 0 { link } else { name }, k),
                }
            }
            Popup::File { path, sending, .. } => {
                if *sending {
                    return Vec::new();
                }
                match (k.code, chat) {
                    (KeyCode::Enter, Some(chat)) if !path.text().trim().is_empty() => {
                        *sending = true;
                        return vec![Request::SendFile { chat, path: PathBuf::from(path.text().trim()) }];
                    }
                    _ => edit(path, k),
                }
            }
            Popup::Group { action, group, members, focus, waiting } => {
                if *waiting {
                    return Vec::new();
                }
                match k.code {
                    KeyCode::Tab | KeyCode::BackTab | KeyCode::Up | KeyCode::Down => *focus = 1 - *focus,
                    KeyCode::Left | KeyCode::Right if k.modifiers.contains(KeyModifiers::CONTROL) => {
                        *action = match (*action, k.code == KeyCode::Right) {
                            (GroupAction::Create, true) | (GroupAction::Remove, false) => GroupAction::Add,
                            (GroupAction::Add, true) | (GroupAction::Create, false) => GroupAction::Remove,
                            (GroupAction::Remove, true) | (GroupAction::Add, false) => GroupAction::Create,
                        };
                    }
                    KeyCode::Enter => {
                        let g = group.text().trim().to_string();
                        let names: Vec<String> =
                            members.text().split(',').map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect();
                        if g.is_empty() || names.is_empty() {
                            *focus = u8::from(!g.is_empty());
                            return Vec::new();
                        }
                        *waiting = true;
                        return match action {
                            GroupAction::Create => vec![Request::GroupCreate { name: g, members: names }],
                            GroupAction::Add => {
                                names.into_iter().map(|m| Request::GroupAdd { group: g.clone(), member: m }).collect()
                            }
                            GroupAction::Remove => names
                                .into_iter()
                                .map(|m| Request::GroupRemove { group: g.clone(), member: m })
                                .collect(),
                        };
                    }
                    _ => edit(if *focus == 0 { group } else { members }, k),
                }
            }
            Popup::Timer { choice, waiting } => {
                if *waiting {
                    return Vec::new();
                }
                match (k.code, chat) {
                    (KeyCode::Up, _) => *choice = choice.saturating_sub(1),
                    (KeyCode::Down, _) => *choice = (*choice + 1).min(TIMER_CHOICES.len() - 1),
                    (KeyCode::Enter, Some(chat)) => {
                        *waiting = true;
                        return vec![Request::SetTimer { chat, secs: TIMER_CHOICES[*choice] }];
                    }
                    _ => {}
                }
            }
        }
        Vec::new()
    }
}

/// This device's clock, in milliseconds since the epoch (as messages are stamped).
fn now_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// Scroll keys in a scrollable popup; true if `k` was one.
fn scroll_key(scroll: &mut u16, k: KeyEvent) -> bool {
    match k.code {
        KeyCode::Up => *scroll = scroll.saturating_sub(1),
        KeyCode::Down => *scroll = scroll.saturating_add(1),
        KeyCode::PageUp => *scroll = scroll.saturating_sub(10),
        KeyCode::PageDown => *scroll = scroll.saturating_add(10),
        KeyCode::Home => *scroll = 0,
        _ => return false,
    }
    true
}

/// Editing keys, common to the message input and the popups' fields.
fn edit(e: &mut Field, k: KeyEvent) {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    match k.code {
        KeyCode::Char('a') if ctrl => e.home(),
        KeyCode::Char('e') if ctrl => e.end(),
        KeyCode::Char('u') if ctrl => e.clear(),
        KeyCode::Char('w') if ctrl => e.delete_word(),
        KeyCode::Char(_) if ctrl => {}
        KeyCode::Char(c) => e.insert(c),
        KeyCode::Backspace => e.backspace(),
        KeyCode::Delete => e.delete(),
        KeyCode::Left => e.left(),
        KeyCode::Right => e.right(),
        KeyCode::Home => e.home(),
        KeyCode::End => e.end(),
        _ => {}
    }
}
