//! Drawing tests on ratatui's `TestBackend`: the screens at 80×24 and other sizes, cell
//! by cell. `docs/SCREENS.md` is made of these same captures; a test fails if it is out of
//! date (regenerate with `SOTTO_UPDATE_SCREENS=1 cargo test -p sotto-client --bin sotto chat`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use sotto_client::app::records::Delivery;

use sotto_client::wire::{InviteLink, ShortInvite};
use sotto_proto::BlobReadId;

use super::backend::{ChatId, ChatSummary, Entry, RelayStatus, Safety};
use super::input::str_width;
use super::state::{App, GroupAction, Popup};
use super::view;
use super::worker::Event;

#[path = "../../../tests/common/scan.rs"]
mod scan;

/// 2026-11-23 09:15 UTC.
pub const T0: u64 = 1_795_425_300_000;
const MIN: u64 = 60_000;

pub fn entry(mine: bool, text: &str, at: u64, delivery: Delivery) -> Entry {
    Entry { mine, sender: None, text: text.to_string(), sent_at_ms: at, delivery }
}

/// A profile with a few conversations in several scripts, as the worker would report it.
pub fn fixture() -> App {
    let mut app = App::new();
    // Captures must not depend on the machine's zone (see `times_are_shown_in_the_local_zone`).
    app.zone = super::state::Zone(jiff::tz::TimeZone::UTC);
    let mut aynur = ChatSummary::contact("Aynur");
    aynur.verified = true;
    let mut tenzin = ChatSummary::contact("Tenzin བསྟན་འཛིན");
    tenzin.identity_changed = true;
    let mut group = ChatSummary::contact("press");
    group.id = ChatId::Group("press".into());
    group.members = vec!["Aynur".into(), "Dilnur".into()];
    let mut pending = ChatSummary::contact("Lawyer");
    pending.ready = false;
    let list = vec![aynur, ChatSummary::contact("Dilnur 迪丽努尔"), tenzin, group, pending];
    app.on_event(Event::Chats(list));
    app.on_event(Event::Status(RelayStatus { relays: 1, unreachable: 0, queued: 0 }));
    app.on_event(Event::Started);
    app.on_event(Event::History {
        chat: ChatId::Contact("Aynur".into()),
        entries: vec![
            entry(false, "The meeting moved to Thursday. ئۇچرىشىش پەيشەنبىگە يۆتكەلدى.", T0, Delivery::Received),
            entry(true, "Understood. Same place?", T0 + MIN, Delivery::Stored),
            entry(
                false,
                "Yes. 同一个地方，晚上七点。Bring the documents, and the second phone.",
                T0 + 2 * MIN,
                Delivery::Received,
            ),
            entry(true, "བཀྲ་ཤིས་བདེ་ལེགས། I will be there.", T0 + 3 * MIN, Delivery::Stored),
            entry(true, "Sent from the train, no signal", T0 + 4 * MIN, Delivery::Queued),
            entry(true, "To the old mailbox", T0 + 5 * MIN, Delivery::Failed),
        ],
    });
    for (chat, n) in [("Dilnur 迪丽努尔", 2), ("Tenzin བསྟན་འཛིན", 1)] {
        for i in 0..n {
            app.on_event(Event::Notice(sotto_client::app::Notice::Message {
                from: chat.into(),
                text: format!("unread {i}"),
                sent_at_ms: T0,
                seq: i,
            }));
        }
    }
    app
}

/// Draws `app` at `w`×`h`; returns the backend (buffer and cursor).
pub fn draw(app: &App, w: u16, h: u16) -> TestBackend {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view::draw(f, app)).unwrap();
    t.backend().clone()
}

/// The screen as text, one string per row; a wide character stands for its two cells.
pub fn text(buf: &Buffer) -> Vec<String> {
    let a = buf.area;
    (0..a.height)
        .map(|y| {
            let mut s = String::new();
            let mut x = 0;
            while x < a.width {
                let sym = buf[(x, y)].symbol();
                s.push_str(sym);
                x += u16::try_from(str_width(sym).max(1)).unwrap();
            }
            s.trim_end().to_string()
        })
        .collect()
}

fn joined(b: &TestBackend) -> String {
    text(b.buffer()).join("\n")
}

/// Every row of a bordered pane ends at the same column, whatever script it holds.
fn assert_cells_line_up(b: &TestBackend) {
    let buf = b.buffer();
    let right = buf.area.width - 1;
    let bottom = (2..buf.area.height).find(|y| buf[(right, *y)].symbol() == "┘").expect("the pane's corner");
    for y in 2..bottom {
        assert_eq!(buf[(right, y)].symbol(), "│", "row {y}: {}", text(buf)[usize::from(y)]);
    }
}

#[test]
fn main_screen_at_80x24() {
    let app = fixture();
    let b = draw(&app, 80, 24);
    let s = joined(&b);
    let rows = text(b.buffer());
    assert!(rows[0].contains("● online"), "{}", rows[0]);
    assert!(rows[0].ends_with("F1 or ? help"), "{}", rows[0]);
    // The list: marks, names in every script, unread counts.
    assert!(s.contains("│✓ Aynur"), "{s}");
    assert!(rows.iter().any(|r| r.contains("  Dilnur 迪丽努尔") && r.contains(" 2│")), "{s}");
    assert!(rows.iter().any(|r| r.contains("! Tenzin") && r.contains(" 1│")), "{s}");
    assert!(s.contains("  #press"), "{s}");
    assert!(s.contains("… Lawyer"), "{s}");
    // The conversation: times, names, the three delivery states, a day separator.
    assert!(s.contains(" 2026-11-23 "), "{s}");
    assert!(s.contains("09:15 Aynur: The meeting moved to Thursday."), "{s}");
    assert!(s.contains("09:16 me: Understood. Same place?  ✓"), "{s}");
    assert!(s.contains("09:19 me: Sent from the train, no signal  ◷ queued"), "{s}");
    assert!(s.contains("09:20 me: To the old mailbox  ✗ failed"), "{s}");
    assert!(s.contains("同一个地方，晚上七点。"), "{s}");
    assert!(s.contains("Aynur ✓ verified"), "{s}");
    assert!(rows[23].starts_with("Enter send"), "{}", rows[23]);
    assert_cells_line_up(&b);
    // Colours carry the state too.
    let buf = b.buffer();
    let y = rows.iter().position(|r| r.contains("✗ failed")).unwrap();
    let x = (0..80).find(|x| buf[(*x, u16::try_from(y).unwrap())].symbol() == "✗").unwrap();
    assert_eq!(buf[(x, u16::try_from(y).unwrap())].fg, Color::Red);
}

#[test]
fn times_are_shown_in_the_local_zone() {
    // UTC+8: the 09:15 UTC message is shown at 17:15.
    let mut app = fixture();
    app.zone = super::state::Zone(jiff::tz::TimeZone::posix("CST-8").unwrap());
    let s = joined(&draw(&app, 80, 24));
    assert!(s.contains("17:15 Aynur: The meeting moved") && s.contains(" 2026-11-23 "), "{s}");
    assert!(!s.contains("09:15"), "{s}");
    // UTC-11: the same messages happened the day before, and the day line says so.
    app.zone = super::state::Zone(jiff::tz::TimeZone::posix("NUT11").unwrap());
    let s = joined(&draw(&app, 80, 24));
    assert!(s.contains("22:15 Aynur: The meeting moved") && s.contains(" 2026-11-22 "), "{s}");
}

#[test]
fn wide_characters_wrap_and_the_cursor_sits_after_them() {
    let mut app = fixture();
    app.input.insert_str("你好 ئۇيغۇر བོད");
    let mut b = draw(&app, 80, 24);
    let rows = text(b.buffer());
    let input_row = rows.iter().position(|r| r.contains("你好 ئۇيغۇر")).unwrap();
    // The input starts in the column after the list; 你好 are two cells each.
    let x0 = u16::try_from(rows[input_row].find('你').map(|i| str_width(&rows[input_row][..i])).unwrap()).unwrap();
    let expected = x0 + u16::try_from(str_width("你好 ئۇيغۇر བོད")).unwrap();
    assert_eq!(str_width("你好 ئۇيغۇر བོད"), 4 + 1 + 6 + 1 + 2);
    b.assert_cursor_position((expected, u16::try_from(input_row).unwrap()));

    // A long line in Chinese wraps by cells: no row overflows the border.
    let mut app = fixture();
    app.on_event(Event::History {
        chat: ChatId::Contact("Aynur".into()),
        entries: vec![entry(false, &"人人生而自由，在尊严和权利上一律平等。".repeat(4), T0, Delivery::Received)],
    });
    let b = draw(&app, 80, 24);
    assert_cells_line_up(&b);
    let s = joined(&b);
    assert!(s.contains("09:15 Aynur: 人人生而自由"), "{s}");
    // Continuation rows are indented under the text, after the time.
    assert!(text(b.buffer()).iter().any(|r| r.contains("│      ") && r.contains("平等")), "{s}");
}

#[test]
fn escape_sequences_in_a_message_never_reach_the_terminal() {
    let mut app = fixture();
    let evil = "a\u{1b}[2J\u{1b}]52;c;c2VjcmV0\u{7}b\u{9b}31mc";
    app.on_event(Event::History {
        chat: ChatId::Contact("Aynur".into()),
        entries: vec![entry(false, evil, T0, Delivery::Received)],
    });
    let b = draw(&app, 80, 24);
    let buf = b.buffer();
    for cell in &buf.content {
        assert!(
            !cell.symbol().chars().any(char::is_control),
            "a control character reached the screen: {:?}",
            cell.symbol()
        );
    }
    assert!(joined(&b).contains("Aynur: a[2J]52;c;c2VjcmV0b31mc"), "{}", joined(&b));
    assert_cells_line_up(&b);
}

#[test]
fn multi_line_input_grows_and_keeps_the_cursor() {
    let mut app = fixture();
    app.input.insert_str("first line\nsecond 行\nthird");
    let mut b = draw(&app, 80, 24);
    let rows = text(b.buffer());
    let y = rows.iter().position(|r| r.contains("third")).unwrap();
    assert!(rows[y - 1].contains("second 行") && rows[y - 2].contains("first line"));
    let x = u16::try_from(str_width(&rows[y][..rows[y].find("third").unwrap()]) + 5).unwrap();
    b.assert_cursor_position((x, u16::try_from(y).unwrap()));
}

#[test]
fn scrollback_pages_through_older_messages() {
    let mut app = fixture();
    let entries = (0..60).map(|i| entry(i % 2 == 0, &format!("message {i}"), T0 + i * MIN, Delivery::Stored)).collect();
    app.on_event(Event::History { chat: ChatId::Contact("Aynur".into()), entries });
    let dims = view::dims(ratatui::layout::Rect::new(0, 0, 80, 24), &app);
    let s = joined(&draw(&app, 80, 24));
    assert!(s.contains("message 59") && !s.contains("message 30 "), "{s}");
    app.on_key(crossterm::event::KeyEvent::from(crossterm::event::KeyCode::PageUp), dims);
    let s = joined(&draw(&app, 80, 24));
    assert!(!s.contains("message 59") && s.contains("message 40"), "{s}");
    assert!(s.contains("more rows (PgDn, Esc)"), "{s}");
    // Far past the top: the oldest message and the day line are shown, no further.
    for _ in 0..20 {
        app.on_key(crossterm::event::KeyEvent::from(crossterm::event::KeyCode::PageUp), dims);
    }
    let s = joined(&draw(&app, 80, 24));
    assert!(s.contains("message 0") && s.contains(" 2026-11-23 "), "{s}");
    app.on_key(crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Esc), dims);
    assert!(joined(&draw(&app, 80, 24)).contains("message 59"));
}

#[test]
fn help_lists_the_keys() {
    let mut app = fixture();
    app.popup = Some(Popup::Help { scroll: 0 });
    let s = joined(&draw(&app, 80, 24));
    for k in ["Keys", "Enter", "Alt-Enter", "F2  Ctrl-N", "F3  Ctrl-O", "F4  Ctrl-S", "Tab, Shift-Tab"] {
        assert!(s.contains(k), "{k}: {s}");
    }
}

/// An invite link as long as a real one (the ML-KEM key makes it ~2,400 characters).
fn long_link() -> String {
    format!("sotto:invite#{}", "AQpDc290dG86Ly8xMjcuMC4wLjE6NDM4MjEjNi1uaFVyWkRjVndjdkZRckdfQ3lJU".repeat(38))
}

/// A short invite link as the relay makes them (a pinned loopback relay).
pub fn short_link() -> String {
    let relay = "sotto://127.0.0.1:41234#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8".parse().unwrap();
    ShortInvite::new(relay, BlobReadId([0x5a; 24]), zeroize::Zeroizing::new([0x42; 32])).to_link()
}

#[test]
fn the_invite_qr_code_fits_80x24_beside_the_link_and_scans() {
    let mut app = fixture();
    let link = short_link();
    app.on_event(Event::Invite(Ok(link.clone())));
    let rows = text(draw(&app, 80, 24).buffer());
    let s = rows.join("\n");
    assert!(!s.contains("needs a window"), "{s}");
    // The code (43 columns with a one-module quiet zone) sits left of the text and the link.
    let code_rows = rows.iter().filter(|r| r.chars().skip(1).take(43).all(|c| "█▀▄ ".contains(c))).count();
    assert!(code_rows >= 22, "{code_rows} rows of code:\n{s}");
    let side: Vec<String> =
        rows.iter().map(|r| r.chars().skip(45).collect::<String>().trim_end_matches('│').trim().to_string()).collect();
    let start = side.iter().position(|t| t.starts_with("sotto:invite#")).expect("the link beside the code");
    let shown: String = side[start..].iter().take_while(|t| !t.is_empty()).map(String::as_str).collect();
    assert_eq!(shown, link, "{s}");
    // Scanned, the code gives the compact form of the same invite.
    let scanned = scan::scan(&rows);
    assert_eq!(scanned.len(), 1, "{s}");
    let InviteLink::Short(got) = InviteLink::parse(&scanned[0]).unwrap() else { panic!("not a short invite") };
    assert_eq!(got.to_link(), link);
    assert!(scanned[0].starts_with("SOTTO:INVITE:"));
    // Larger windows draw the code above the link, with a wider quiet zone.
    let rows = text(draw(&app, 120, 45).buffer());
    assert_eq!(scan::scan(&rows).len(), 1);
    assert!(rows.iter().any(|r| r.contains(&link[..40])));
}

#[test]
fn invite_shows_the_qr_code_when_it_fits_and_says_what_size_it_needs_when_not() {
    let mut app = fixture();
    let link = long_link();
    app.on_event(Event::Invite(Ok(link.clone())));
    let small = joined(&draw(&app, 80, 24));
    assert!(small.contains("The QR code needs a window of at least"), "{small}");
    assert!(small.contains("sotto:invite#AQpD"), "{small}");
    let big = draw(&app, 200, 100);
    let s = joined(&big);
    assert!(!s.contains("needs a window"), "{s}");
    let qr_rows = text(big.buffer()).iter().filter(|r| r.contains("▀") || r.contains("▄")).count();
    assert!(qr_rows > 60, "{qr_rows} rows of QR code");
    // Scrolling reaches the end of the link.
    app.popup = Some(Popup::Invite { link: link.clone(), qr: link, scroll: 500 });
    let s = joined(&draw(&app, 80, 24));
    assert!(s.contains("Esc close"), "{s}");
}

fn safety(changed: bool, verified: bool) -> Safety {
    Safety {
        digits: "123456789012345678901234567890123456789012345678901234567890".into(),
        scannable: vec![7; 68],
        verified,
        changed,
    }
}

#[test]
fn safety_number_screen() {
    let mut app = fixture();
    app.popup = Some(Popup::Safety { name: "Aynur".into(), safety: None, scroll: 0 });
    assert!(joined(&draw(&app, 80, 24)).contains("loading"));
    app.on_event(Event::Safety { name: "Aynur".into(), result: Ok(safety(false, false)) });
    let s = joined(&draw(&app, 80, 24));
    assert!(s.contains("12345  67890  12345  67890"), "{s}");
    assert!(s.contains("Status: not verified."), "{s}");
    assert!(s.contains("V mark verified"), "{s}");
    // Room for the QR code at a larger size.
    let s = joined(&draw(&app, 100, 50));
    assert!(s.contains('▀') && !s.contains("shows the number as a QR code"), "{s}");
    app.on_event(Event::Safety { name: "Aynur".into(), result: Ok(safety(true, false)) });
    let s = joined(&draw(&app, 80, 24));
    assert!(s.contains("Their key CHANGED") && s.contains("A accept the new number"), "{s}");
}

#[test]
fn identity_change_banner() {
    let mut app = fixture();
    app.select(2);
    let b = draw(&app, 80, 24);
    let s = joined(&b);
    assert!(s.contains("⚠ The safety number of Tenzin"), "{s}");
    let rows = text(b.buffer());
    let y = rows.iter().position(|r| r.contains("⚠ The safety")).unwrap();
    let x = (0..80).find(|x| b.buffer()[(*x, u16::try_from(y).unwrap())].symbol() == "⚠").unwrap();
    assert_eq!(b.buffer()[(x, u16::try_from(y).unwrap())].bg, Color::Red);
}

#[test]
fn unreachable_relay_indicator() {
    let mut app = fixture();
    app.on_event(Event::Notice(sotto_client::app::Notice::RelayTrouble("connection refused".into())));
    app.on_event(Event::Status(RelayStatus { relays: 1, unreachable: 1, queued: 2 }));
    let rows = text(draw(&app, 80, 24).buffer());
    assert!(rows[0].contains("✗ relay unreachable · 2 waiting, sent when it is back"), "{}", rows[0]);
    assert!(rows[23].contains("Relay: connection refused. Retrying"), "{}", rows[23]);
    // Back: the indicator and the line at the bottom say so.
    app.on_event(Event::Status(RelayStatus { relays: 1, unreachable: 0, queued: 0 }));
    let rows = text(draw(&app, 80, 24).buffer());
    assert!(rows[0].contains("● online") && rows[23].starts_with("Enter send"), "{}", rows[0]);
    // Before the worker reports anything.
    let rows = text(draw(&App::new(), 80, 24).buffer());
    assert!(rows[0].contains("◌ connecting"), "{}", rows[0]);
    assert!(rows.join("\n").contains("No conversations yet"));
}

#[test]
fn every_screen_draws_at_any_size() {
    let mut screens = vec![fixture()];
    for p in [
        Popup::Help { scroll: 0 },
        Popup::invite(long_link()),
        Popup::Safety { name: "Aynur".into(), safety: Some(safety(true, false)), scroll: 3 },
        Popup::File {
            path: super::input::Editor::with_text("/tmp/報告.pdf"),
            progress: Some((512 * 1024, 2048 * 1024)),
            sending: true,
        },
        Popup::Group {
            action: GroupAction::Add,
            group: super::input::Editor::with_text("press"),
            members: super::input::Editor::new(),
            focus: 1,
            waiting: false,
        },
        Popup::Timer { choice: 3, waiting: false },
    ] {
        let mut a = fixture();
        a.popup = Some(p);
        screens.push(a);
    }
    for app in &screens {
        for (w, h) in [(80, 24), (120, 40), (60, 20), (40, 12), (20, 6), (1, 1), (0, 0)] {
            draw(app, w, h);
        }
    }
}

/// The captures in docs/SCREENS.md, in order.
fn captures() -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut app = fixture();
    out.push(("The main screen (80×24)", joined(&draw(&app, 80, 24))));
    let mut offline = fixture();
    offline.on_event(Event::Notice(sotto_client::app::Notice::RelayTrouble("connection refused".into())));
    offline.on_event(Event::Status(RelayStatus { relays: 1, unreachable: 1, queued: 1 }));
    out.push(("The relay cannot be reached: the message waits, the UI goes on", joined(&draw(&offline, 80, 24))));
    app.popup = Some(Popup::Help { scroll: 0 });
    out.push(("Keys (`?` or F1)", joined(&draw(&app, 80, 24))));
    app.on_event(Event::Invite(Ok(short_link())));
    out.push(("A new invite at 80×24: the QR code beside the link", joined(&draw(&app, 80, 24))));
    app.on_event(Event::Invite(Ok(long_link())));
    out.push(("A full invite link: too long for a QR code at 80×24", joined(&draw(&app, 80, 24))));
    app.popup = Some(Popup::Safety { name: "Aynur".into(), safety: Some(safety(false, true)), scroll: 0 });
    out.push(("Safety number (F4)", joined(&draw(&app, 80, 24))));
    let mut changed = fixture();
    changed.select(2);
    out.push(("A contact's safety number changed", joined(&draw(&changed, 80, 24))));
    changed.popup = Some(Popup::Safety {
        name: "Tenzin བསྟན་འཛིན".into(), safety: Some(safety(true, false)), scroll: 0
    });
    out.push(("Accepting the changed number (F4, then A)", joined(&draw(&changed, 80, 24))));
    let mut file = fixture();
    file.popup = Some(Popup::File {
        path: super::input::Editor::with_text("/home/a/報告.pdf"),
        progress: Some((768 * 1024, 2048 * 1024)),
        sending: true,
    });
    out.push(("Sending a file (F5)", joined(&draw(&file, 80, 24))));
    let mut group = fixture();
    group.popup = Some(Popup::Group {
        action: GroupAction::Create,
        group: super::input::Editor::with_text("press"),
        members: super::input::Editor::with_text("Aynur, Dilnur 迪丽努尔"),
        focus: 1,
        waiting: false,
    });
    out.push(("Groups (F6)", joined(&draw(&group, 80, 24))));
    let mut timer = fixture();
    timer.popup = Some(Popup::Timer { choice: 3, waiting: false });
    out.push(("Disappearing messages (F7)", joined(&draw(&timer, 80, 24))));
    out
}

#[test]
fn screens_doc_is_current() {
    let mut doc = String::from(
        "# Screens of `sotto chat`\n\nText captures of the terminal UI at 80×24, drawn by the tests in \
         `client/src/cli/chat/tests_render.rs` on ratatui's `TestBackend` (colours are not shown). \
         The test fails when this file is out of date; regenerate it with\n\
         `SOTTO_UPDATE_SCREENS=1 cargo test -p sotto-client --bin sotto chat::tests_render`.\n",
    );
    for (title, screen) in captures() {
        doc.push_str(&format!("\n## {title}\n\n```text\n{screen}\n```\n"));
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/SCREENS.md");
    if std::env::var_os("SOTTO_UPDATE_SCREENS").is_some() {
        std::fs::write(&path, &doc).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(on_disk == doc, "docs/SCREENS.md is out of date: regenerate it (see its first lines)");
}
