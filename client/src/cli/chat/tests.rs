//! State tests, and the whole chat driven through the worker by a scripted [`Backend`]:
//! keys in, requests to the backend, events back, the screen drawn.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use sotto_client::app::Notice;
use sotto_client::app::records::Delivery;
use tokio::sync::mpsc;

use super::backend::{Backend, BackendError, ChatId, ChatSummary, Entry, Feature, RelayStatus, Safety};
use super::keys::Dims;
use super::state::{App, Popup};
use super::tests_render::{T0, draw, entry, fixture, text};
use super::worker::{self, Event, Request};

const DIMS: Dims = Dims { input_width: 50, page: 10 };

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn typed(app: &mut App, s: &str) {
    for c in s.chars() {
        assert!(app.on_key(key(KeyCode::Char(c)), DIMS).is_empty());
    }
}

#[test]
fn the_list_selects_the_first_conversation_and_keeps_the_selection() {
    let mut app = App::new();
    let r = app.on_event(Event::Chats(vec![ChatSummary::contact("A"), ChatSummary::contact("B")]));
    assert_eq!(r, vec![Request::Open(ChatId::Contact("A".into()))]);
    assert_eq!(app.on_key(key(KeyCode::Tab), DIMS), vec![Request::Open(ChatId::Contact("B".into()))]);
    // A new contact arrives in front: B stays on screen.
    let r = app.on_event(Event::Chats(vec![
        ChatSummary::contact("0"),
        ChatSummary::contact("A"),
        ChatSummary::contact("B"),
    ]));
    assert_eq!(app.current().unwrap().summary.id, ChatId::Contact("B".into()));
    assert_eq!(r, vec![Request::Open(ChatId::Contact("B".into()))]);
    assert_eq!(app.on_key(key(KeyCode::BackTab), DIMS), vec![Request::Open(ChatId::Contact("A".into()))]);
}

#[test]
fn messages_count_as_unread_until_their_conversation_is_opened() {
    let mut app = fixture();
    let dilnur = app.chats.iter().position(|c| c.summary.id.name().starts_with("Dilnur")).unwrap();
    assert_eq!(app.chats[dilnur].unread, 2);
    app.on_event(Event::Notice(Notice::Message {
        from: "Aynur".into(),
        text: "on screen".into(),
        sent_at_ms: T0,
        seq: 9,
    }));
    assert_eq!(app.current().unwrap().unread, 0);
    assert_eq!(app.current().unwrap().entries.last().unwrap().text, "on screen");
    assert_eq!(app.select(dilnur), vec![Request::Open(ChatId::Contact("Dilnur 迪丽努尔".into()))]);
    assert_eq!(app.chats[dilnur].unread, 0);
}

#[test]
fn group_senders_are_routed_to_their_group() {
    let app = fixture();
    assert_eq!(app.route("press/Dilnur"), (ChatId::Group("press".into()), Some("Dilnur".into())));
    // A contact whose name holds a slash stays a contact.
    assert_eq!(app.route("a/b"), (ChatId::Contact("a/b".into()), None));
    let mut app = fixture();
    app.select(3);
    app.on_event(Event::History { chat: ChatId::Group("press".into()), entries: vec![] });
    app.on_event(Event::Notice(Notice::Message {
        from: "press/Dilnur".into(),
        text: "hi all".into(),
        sent_at_ms: T0,
        seq: 1,
    }));
    let s = text(draw(&app, 80, 24).buffer()).join("\n");
    assert!(s.contains("09:15 Dilnur: hi all"), "{s}");
    assert!(s.contains("press · Aynur, Dilnur"), "{s}");
}

#[test]
fn a_file_sent_to_a_group_counts_unread_then_tells_where_it_was_saved() {
    use sotto_client::app::FileState;
    let mut app = fixture();
    let press = app.chats.iter().position(|c| c.summary.id == ChatId::Group("press".into())).unwrap();
    let before = app.chats[press].unread;
    let arrived = |state| {
        Event::Notice(Notice::GroupFile {
            group: "press".into(),
            from: "Dilnur".into(),
            file_name: "ھۆججەت.pdf".into(),
            size: 2048,
            state,
        })
    };
    assert!(app.on_event(arrived(FileState::Downloading)).is_empty());
    assert_eq!(app.chats[press].unread, before + 1);
    app.on_event(arrived(FileState::Saved("/tmp/saved/ھۆججەت.pdf".into())));
    let toast = app.toast.as_ref().unwrap();
    assert!(!toast.error && toast.text.contains("ھۆججەت.pdf") && toast.text.contains("press/Dilnur"), "{}", toast.text);
    app.on_event(arrived(FileState::Failed("altered".into())));
    assert!(app.toast.as_ref().unwrap().error);
    // On screen, the group's history is read again to show the new entry.
    app.select(press);
    app.on_event(Event::History { chat: ChatId::Group("press".into()), entries: vec![] });
    assert_eq!(app.on_event(arrived(FileState::Downloading)), vec![Request::Open(ChatId::Group("press".into()))]);
    assert_eq!(app.chats[press].unread, 0);
}

#[test]
fn enter_sends_and_a_refused_message_comes_back_to_the_input() {
    let mut app = fixture();
    assert!(app.on_key(key(KeyCode::Enter), DIMS).is_empty(), "nothing to send");
    typed(&mut app, "hello 你好");
    assert!(app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::ALT), DIMS).is_empty());
    typed(&mut app, "second");
    let r = app.on_key(key(KeyCode::Enter), DIMS);
    let chat = ChatId::Contact("Aynur".into());
    assert_eq!(r, vec![Request::SendText { chat: chat.clone(), text: "hello 你好\nsecond".into() }]);
    assert!(app.input.is_empty());
    // On screen at once, as queued, before the worker answers.
    let last = app.current().unwrap().entries.last().unwrap();
    assert!(last.mine && last.delivery == Delivery::Queued && last.text == "hello 你好\nsecond");
    app.on_event(Event::Sent {
        chat: chat.clone(),
        text: "hello 你好\nsecond".into(),
        result: Err(BackendError::Failed("too long".into())),
    });
    assert_eq!(app.input.text(), "hello 你好\nsecond");
    assert!(app.toast.as_ref().unwrap().error);
    // Queued is not a failure: the input stays empty and the UI says it will go out.
    app.input.clear();
    app.on_event(Event::Sent { chat, text: "x".into(), result: Err(BackendError::Queued("down".into())) });
    assert!(app.input.is_empty());
    assert!(!app.toast.as_ref().unwrap().error);
}

#[test]
fn question_mark_opens_help_only_on_an_empty_line() {
    let mut app = fixture();
    typed(&mut app, "why");
    app.on_key(key(KeyCode::Char('?')), DIMS);
    assert_eq!(app.input.text(), "why?");
    assert!(app.popup.is_none());
    app.input.clear();
    app.on_key(key(KeyCode::Char('?')), DIMS);
    assert!(matches!(app.popup, Some(Popup::Help { .. })));
    app.on_key(key(KeyCode::Esc), DIMS);
    assert!(app.popup.is_none());
    app.on_key(ctrl('q'), DIMS);
    assert!(app.quit);
}

#[test]
fn popups_ask_the_worker_for_the_right_things() {
    let mut app = fixture();
    app.on_key(key(KeyCode::F(2)), DIMS);
    typed(&mut app, "Zhou 周");
    assert_eq!(app.on_key(key(KeyCode::Enter), DIMS), vec![Request::CreateInvite { name: Some("Zhou 周".into()) }]);
    app.popup = None;

    app.on_key(ctrl('o'), DIMS);
    app.on_paste("sotto:invite#abc\ndef");
    assert!(app.on_key(key(KeyCode::Enter), DIMS).is_empty(), "Enter on the link moves to the name");
    typed(&mut app, "Zhou");
    assert_eq!(
        app.on_key(key(KeyCode::Enter), DIMS),
        vec![Request::AcceptInvite { link: "sotto:invite#abc\ndef".into(), name: "Zhou".into() }]
    );
    app.on_event(Event::Accepted { name: "Zhou".into(), result: Err(BackendError::Failed("used".into())) });
    assert!(matches!(app.popup, Some(Popup::Accept { waiting: false, .. })), "the form stays for another try");
    app.popup = None;

    assert_eq!(app.on_key(key(KeyCode::F(4)), DIMS), vec![Request::SafetyNumber("Aynur".into())]);
    assert!(app.on_key(key(KeyCode::Char('v')), DIMS).is_empty(), "nothing to verify before it loaded");
    app.on_event(Event::Safety {
        name: "Aynur".into(),
        result: Ok(Safety { digits: "1".repeat(60), scannable: vec![1], verified: false, changed: true }),
    });
    assert!(app.on_key(key(KeyCode::Char('v')), DIMS).is_empty(), "a changed key is accepted, not verified");
    assert_eq!(app.on_key(key(KeyCode::Char('a')), DIMS), vec![Request::AcceptIdentity("Aynur".into())]);
    app.popup = None;

    app.on_key(key(KeyCode::F(5)), DIMS);
    typed(&mut app, "/tmp/a b.txt");
    let r = app.on_key(key(KeyCode::Enter), DIMS);
    assert_eq!(r, vec![Request::SendFile { chat: ChatId::Contact("Aynur".into()), path: "/tmp/a b.txt".into() }]);
    app.on_event(Event::FileDone(Err(BackendError::NotAvailable(Feature::GroupTimer))));
    assert!(app.toast.as_ref().unwrap().text.contains("not available"));
    app.popup = None;

    app.on_key(key(KeyCode::F(6)), DIMS);
    typed(&mut app, "press");
    app.on_key(key(KeyCode::Tab), DIMS);
    typed(&mut app, "Aynur, Dilnur");
    assert_eq!(
        app.on_key(key(KeyCode::Enter), DIMS),
        vec![Request::GroupCreate { name: "press".into(), members: vec!["Aynur".into(), "Dilnur".into()] }]
    );
    app.popup = None;

    app.on_key(key(KeyCode::F(7)), DIMS);
    app.on_key(key(KeyCode::Down), DIMS);
    app.on_key(key(KeyCode::Down), DIMS);
    let r = app.on_key(key(KeyCode::Enter), DIMS);
    assert_eq!(r, vec![Request::SetTimer { chat: ChatId::Contact("Aynur".into()), secs: Some(300) }]);
}

/// A backend whose relay can be taken down and brought back.
#[derive(Default)]
struct Fake {
    down: bool,
    /// Messages written, and whether the relay stored them.
    sent: Vec<(String, bool)>,
    calls: Vec<String>,
}

struct Scripted {
    state: Rc<RefCell<Fake>>,
    notices: mpsc::UnboundedReceiver<Notice>,
}

impl Backend for Scripted {
    async fn start(&mut self) -> Vec<Notice> {
        Vec::new()
    }
    fn stop(&mut self) {}
    async fn next_notice(&mut self) -> Option<Notice> {
        self.notices.recv().await
    }
    async fn chats(&mut self) -> Result<Vec<ChatSummary>, BackendError> {
        Ok(vec![ChatSummary::contact("Bob")])
    }
    async fn history(&mut self, _chat: &ChatId) -> Result<Vec<Entry>, BackendError> {
        let s = self.state.borrow();
        Ok(s.sent
            .iter()
            .map(|(t, stored)| entry(true, t, T0, if *stored { Delivery::Stored } else { Delivery::Queued }))
            .collect())
    }
    async fn status(&mut self) -> Result<RelayStatus, BackendError> {
        let mut s = self.state.borrow_mut();
        // The relay is back: the outbox flushes, as the pump does.
        if !s.down {
            s.sent.iter_mut().for_each(|m| m.1 = true);
        }
        let queued = s.sent.iter().filter(|m| !m.1).count();
        Ok(RelayStatus { relays: 1, unreachable: usize::from(s.down), queued })
    }
    async fn send_text(&mut self, _chat: &ChatId, text: &str) -> Result<(), BackendError> {
        let mut s = self.state.borrow_mut();
        let stored = !s.down;
        s.sent.push((text.to_string(), stored));
        if stored { Ok(()) } else { Err(BackendError::Queued("connection refused".into())) }
    }
    async fn create_invite(&mut self, _name: Option<&str>) -> Result<String, BackendError> {
        Ok("sotto:invite#x".into())
    }
    async fn accept_invite(&mut self, _link: &str, _name: &str) -> Result<(), BackendError> {
        Ok(())
    }
    async fn safety_number(&mut self, _name: &str) -> Result<Safety, BackendError> {
        Err(BackendError::Failed("no".into()))
    }
    async fn mark_verified(&mut self, _name: &str) -> Result<(), BackendError> {
        Ok(())
    }
    async fn accept_identity(&mut self, _name: &str) -> Result<Vec<Notice>, BackendError> {
        Ok(Vec::new())
    }
    async fn send_file(
        &mut self,
        _c: &ChatId,
        path: &Path,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(), BackendError> {
        self.state.borrow_mut().calls.push(format!("file {}", path.display()));
        progress(50, 100);
        progress(100, 100);
        Ok(())
    }
    async fn group_create(&mut self, _name: &str, _members: &[String]) -> Result<(), BackendError> {
        Err(BackendError::NotAvailable(Feature::GroupTimer))
    }
    async fn group_add(&mut self, _g: &str, _m: &str) -> Result<(), BackendError> {
        Err(BackendError::NotAvailable(Feature::GroupTimer))
    }
    async fn group_remove(&mut self, _g: &str, _m: &str) -> Result<(), BackendError> {
        Err(BackendError::NotAvailable(Feature::GroupTimer))
    }
    async fn set_timer(&mut self, _c: &ChatId, _s: Option<u64>) -> Result<(), BackendError> {
        Err(BackendError::NotAvailable(Feature::GroupTimer))
    }
    async fn mark_read(&mut self, chat: &ChatId) -> Result<(), BackendError> {
        self.state.borrow_mut().calls.push(format!("read {}", chat.name()));
        Ok(())
    }
}

/// Runs the worker over `backend` while `script` plays the UI side, like the UI thread.
async fn drive(backend: Scripted, script: impl AsyncFnOnce(&mut Ui)) {
    let (requests, requests_rx) = mpsc::unbounded_channel();
    let (events, events_rx) = std::sync::mpsc::channel();
    let worker = tokio::task::spawn_local(worker::run(backend, requests_rx, events));
    let mut app = App::new();
    app.zone = super::state::Zone(jiff::tz::TimeZone::UTC);
    let mut ui = Ui { app, requests, events: events_rx };
    script(&mut ui).await;
    drop(ui);
    worker.await.unwrap();
}

struct Ui {
    app: App,
    requests: mpsc::UnboundedSender<Request>,
    events: std::sync::mpsc::Receiver<Event>,
}

impl Ui {
    fn key(&mut self, k: KeyEvent) {
        for r in self.app.on_key(k, DIMS) {
            self.requests.send(r).unwrap();
        }
    }
    fn typed(&mut self, s: &str) {
        s.chars().for_each(|c| self.key(key(KeyCode::Char(c))));
    }
    /// Applies events until the screen shows `want` (within a few seconds).
    async fn until_screen(&mut self, want: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            while let Ok(e) = self.events.try_recv() {
                for r in self.app.on_event(e) {
                    self.requests.send(r).unwrap();
                }
            }
            let s = text(draw(&self.app, 80, 24).buffer()).join("\n");
            if s.contains(want) {
                return s;
            }
            assert!(tokio::time::Instant::now() < deadline, "never showed {want:?}:\n{s}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[test]
fn a_message_typed_while_the_relay_is_down_goes_out_when_it_is_back() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let state = Rc::new(RefCell::new(Fake { down: true, ..Fake::default() }));
    let (notify, notices) = mpsc::unbounded_channel();
    let backend = Scripted { state: state.clone(), notices };
    let script_state = state.clone();
    tokio::task::LocalSet::new().block_on(&rt, async move {
        drive(backend, async |ui: &mut Ui| {
            ui.until_screen("✗ relay unreachable").await;
            ui.typed("written offline 离线");
            ui.key(key(KeyCode::Enter));
            let s = ui.until_screen("written offline 离线  ◷ queued").await;
            assert!(s.contains("1 waiting, sent when it is back"), "{s}");
            // The UI keeps working meanwhile: help opens and closes.
            ui.key(key(KeyCode::F(1)));
            ui.until_screen("Keys").await;
            ui.key(key(KeyCode::Esc));
            script_state.borrow_mut().down = false;
            let s = ui.until_screen("written offline 离线  ✓").await;
            assert!(s.contains("● online"), "{s}");
            // A reply arrives.
            notify
                .send(Notice::Message { from: "Bob".into(), text: "got it 收到".into(), sent_at_ms: T0, seq: 1 })
                .unwrap();
            ui.until_screen("09:15 Bob: got it 收到").await;
            // A file goes through the path prompt, with progress.
            ui.key(key(KeyCode::F(5)));
            ui.typed("/tmp/x");
            ui.key(key(KeyCode::Enter));
            ui.until_screen("File sent.").await;
            // A feature this build lacks says so.
            ui.key(key(KeyCode::F(7)));
            ui.key(key(KeyCode::Enter));
            ui.until_screen("not available in this version").await;
        })
        .await;
    });
    // Opening Bob's conversation marks it read, and so does his reply arriving on screen.
    let calls = state.borrow().calls.clone();
    let file = calls.iter().position(|c| c == "file /tmp/x").unwrap();
    assert_eq!(calls[..file].iter().filter(|c| *c == "read Bob").count(), 2, "{calls:?}");
    assert!(calls[..file].iter().all(|c| c == "read Bob"), "{calls:?}");
}
