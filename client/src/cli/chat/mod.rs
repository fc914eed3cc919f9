//! `sotto chat`: the full-screen terminal chat.
//!
//! Two threads. The UI thread owns the terminal: it reads keys, keeps the [`state::App`]
//! and draws it ([`view`], [`popups`]); it never touches the network or the profile. The
//! libsignal thread (this process's current-thread runtime, which owns the client) runs
//! the [`worker`] over a [`backend::Backend`]. They talk only through channels, so a relay
//! that hangs never freezes the screen, and the whole UI can be driven in tests by a
//! scripted backend.
//!
//! - [`backend`]: what the UI needs from the client, and its implementation.
//! - [`worker`]: requests in, events out.
//! - [`state`], [`keys`]: the state and how keys change it; [`read_marks`]: unread counts
//!   kept in the profile.
//! - [`input`]: editing and wrapping by display width.
//! - [`view`], [`popups`], [`invite_view`]: drawing.

pub mod backend;
pub mod input;
pub mod invite_view;
pub mod keys;
pub mod popups;
pub mod read_marks;
pub mod state;
pub mod view;
pub mod worker;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_render;

use std::io::{IsTerminal, Write};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossterm::event::{self, DisableBracketedPaste, EnableBracketedPaste, Event as TermEvent};
use crossterm::terminal::{self, Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use tokio::sync::mpsc;

use self::backend::ClientBackend;
use self::state::App;
use self::worker::{Event, Request};
use super::chat_text as text;
use super::holder::Holder;

/// How long the UI waits for a key before looking for worker events again.
pub const UI_TICK: Duration = Duration::from_millis(40);

/// Runs the chat on the profile `h` holds, until the user quits.
pub async fn run(h: &Rc<Holder>) -> u8 {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        eprintln!("{}", text::NEEDS_TERMINAL);
        return 1;
    }
    let (requests, requests_rx) = mpsc::unbounded_channel::<Request>();
    let (events, events_rx) = std::sync::mpsc::channel::<Event>();
    let stop = Arc::new(AtomicBool::new(false));
    let ui_stop = stop.clone();
    let ui =
        match std::thread::Builder::new().name("sotto-chat-ui".into()).spawn(move || ui(requests, events_rx, &ui_stop))
        {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return 1;
            }
        };
    let work = worker::run(ClientBackend::new(h.clone()), requests_rx, events);
    tokio::pin!(work);
    tokio::select! {
        () = &mut work => {}
        () = terminated() => {
            // Let the UI restore and wipe the terminal; the worker ends when it is gone.
            stop.store(true, Ordering::SeqCst);
            work.await;
        }
    }
    // The worker ended because the UI dropped its sender: the thread is finishing.
    match ui.join() {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            1
        }
        Err(_) => 1,
    }
}

/// Resolves on SIGTERM or SIGHUP (Ctrl-C is a key in raw mode).
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup)) = (signal(SignalKind::terminate()), signal(SignalKind::hangup())) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await;
}

/// The UI thread: sets the terminal up, runs the loop, and always restores it.
fn ui(
    requests: mpsc::UnboundedSender<Request>,
    events: std::sync::mpsc::Receiver<Event>,
    stop: &AtomicBool,
) -> Result<(), String> {
    install_panic_hook();
    TERMINAL_TAKEN.store(true, Ordering::SeqCst);
    let mut terminal = setup().map_err(|e| {
        restore();
        e.to_string()
    })?;
    let result = ui_loop(&mut terminal, &requests, &events, stop).map_err(|e| e.to_string());
    restore();
    result
}

/// Whether the chat holds the terminal (raw mode, alternate screen): only then does a
/// panic restore it.
static TERMINAL_TAKEN: AtomicBool = AtomicBool::new(false);

fn setup() -> std::io::Result<Terminal<CrosstermBackend<std::io::Stdout>>> {
    terminal::enable_raw_mode()?;
    let mut out = std::io::stdout();
    execute!(out, EnterAlternateScreen, EnableBracketedPaste, Clear(ClearType::All))?;
    Terminal::new(CrosstermBackend::new(out))
}

/// Wipes what the chat showed and gives the terminal back as it was. Only the first call
/// after taking the terminal does anything.
fn restore() {
    if !TERMINAL_TAKEN.swap(false, Ordering::SeqCst) {
        return;
    }
    let mut out = std::io::stdout();
    // The alternate screen is cleared before leaving (some terminals keep it), and the
    // main screen is cleared after, so no message stays visible.
    let _ = execute!(
        out,
        Clear(ClearType::All),
        DisableBracketedPaste,
        LeaveAlternateScreen,
        Clear(ClearType::All),
        cursor::MoveTo(0, 0),
        cursor::Show
    );
    let _ = terminal::disable_raw_mode();
    let _ = out.flush();
}

/// A panic anywhere (UI or libsignal thread) restores the terminal before the message.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}

fn ui_loop(
    terminal: &mut Terminal<CrosstermBackend<std::io::Stdout>>,
    requests: &mpsc::UnboundedSender<Request>,
    events: &std::sync::mpsc::Receiver<Event>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let mut app = App::new();
    let mut dirty = true;
    loop {
        while let Ok(e) = events.try_recv() {
            send_all(requests, app.on_event(e));
            dirty = true;
        }
        if app.quit || stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        if dirty {
            terminal.draw(|f| view::draw(f, &app))?;
            let area = screen(terminal)?;
            let max = view::max_scroll(area, &app);
            if let Some(c) = app.current_mut() {
                c.scroll = c.scroll.min(max);
            }
            dirty = false;
        }
        if event::poll(UI_TICK)? {
            match event::read()? {
                TermEvent::Key(k) => {
                    let dims = view::dims(screen(terminal)?, &app);
                    send_all(requests, app.on_key(k, dims));
                }
                TermEvent::Paste(s) => app.on_paste(&s),
                _ => {}
            }
            // Keys, pastes and resizes all redraw.
            dirty = true;
        }
    }
}

fn screen(terminal: &Terminal<CrosstermBackend<std::io::Stdout>>) -> std::io::Result<Rect> {
    let s = terminal.size()?;
    Ok(Rect::new(0, 0, s.width, s.height))
}

fn send_all(requests: &mpsc::UnboundedSender<Request>, list: Vec<Request>) {
    for r in list {
        // The worker only goes away when this thread does.
        let _ = requests.send(r);
    }
}
