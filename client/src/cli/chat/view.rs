//! Drawing the main screen from an [`App`]: a pure function of the state, so tests draw it
//! on ratatui's `TestBackend` and compare cells.
//!
//! ```text
//! title bar: relay indicator                                  F1 help
//! chats (unread) │ conversation (times, names, delivery marks)
//!                │ message input (grows to MAX_INPUT_ROWS)
//! last event, or the most useful keys
//! ```

use ratatui::Frame;
use ratatui::layout::{Constraint, Direction as Dir, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use sotto_client::app::records::Delivery;

use super::super::chat_text as text;
use super::super::local_time::format_in;
use super::backend::{ChatId, Entry};
use super::input::{Row, str_width, wrap};
use super::keys::Dims;
use super::state::{App, Chat};

/// Width of the conversation list.
pub const LIST_WIDTH: u16 = 22;
/// The message input grows up to this many rows, then scrolls.
pub const MAX_INPUT_ROWS: usize = 6;
/// Cells for `HH:MM ` before each message.
const TIME_WIDTH: usize = 6;

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy)]
pub struct Areas {
    pub title: Rect,
    pub list: Rect,
    pub conversation: Rect,
    pub input: Rect,
    pub status: Rect,
}

/// Splits the screen. The input is as tall as its text needs.
pub fn areas(area: Rect, app: &App) -> Areas {
    let [title, body, status] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(3), Constraint::Length(1)]).areas(area);
    let list_w = LIST_WIDTH.min(body.width / 3);
    let [list, right] = Layout::horizontal([Constraint::Length(list_w), Constraint::Min(10)]).areas(body);
    let input_w = usize::from(right.width.saturating_sub(1)).max(2);
    let rows = wrap(app.input.text(), input_w).len().clamp(1, MAX_INPUT_ROWS);
    let input_h = u16::try_from(rows + 1).unwrap_or(2).min(right.height.saturating_sub(3).max(2));
    let [conversation, input] = Layout::default()
        .direction(Dir::Vertical)
        .constraints([Constraint::Min(3), Constraint::Length(input_h)])
        .areas(right);
    Areas { title, list, conversation, input, status }
}

/// Sizes the keys need.
pub fn dims(area: Rect, app: &App) -> Dims {
    let a = areas(area, app);
    Dims {
        input_width: usize::from(a.input.width.saturating_sub(1)).max(2),
        page: usize::from(a.conversation.height.saturating_sub(2)).max(1),
    }
}

/// Draws everything.
pub fn draw(f: &mut Frame, app: &App) {
    let a = areas(f.area(), app);
    draw_title(f, app, a.title);
    draw_list(f, app, a.list);
    draw_conversation(f, app, a.conversation);
    draw_input(f, app, a.input);
    draw_status(f, app, a.status);
    if app.popup.is_some() {
        super::popups::draw(f, app);
    }
}

fn draw_title(f: &mut Frame, app: &App, area: Rect) {
    let (mark, words, style) = match app.status {
        _ if !app.started => ("◌", text::CONNECTING.to_string(), Style::default().fg(Color::Yellow)),
        None => ("◌", text::CONNECTING.to_string(), Style::default().fg(Color::Yellow)),
        Some(s) if s.unreachable > 0 => {
            ("✗", text::offline(s.unreachable, s.relays, s.queued), Style::default().fg(Color::Black).bg(Color::Yellow))
        }
        Some(s) if s.relays == 0 => ("·", text::NO_RELAY_YET.to_string(), Style::default().fg(Color::DarkGray)),
        Some(s) => ("●", text::online(s.queued), Style::default().fg(Color::Green)),
    };
    let help = text::TITLE_HELP;
    let left = vec![
        Span::styled(" sotto ", Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED)),
        Span::raw(" "),
        Span::styled(format!("{mark} {words}"), style),
    ];
    let used: usize = left.iter().map(|s| str_width(&s.content)).sum();
    let pad = usize::from(area.width).saturating_sub(used + str_width(help));
    let mut spans = left;
    spans.push(Span::raw(" ".repeat(pad)));
    spans.push(Span::styled(help, Style::default().fg(Color::DarkGray)));
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_list(f: &mut Frame, app: &App, area: Rect) {
    let block = Block::default().borders(Borders::ALL).title(text::CHATS_TITLE);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let w = usize::from(inner.width);
    let mut lines = Vec::new();
    for (i, c) in app.chats.iter().enumerate() {
        let selected = i == app.selected;
        let (mark, mark_style) = chat_mark(c);
        let unread = if c.unread > 0 { format!(" {}", c.unread) } else { String::new() };
        let prefix = if matches!(c.summary.id, ChatId::Group(_)) { "#" } else { "" };
        let name_room = w.saturating_sub(2 + str_width(&unread) + str_width(prefix));
        let name = fit(c.summary.id.name(), name_room);
        let pad = w.saturating_sub(2 + str_width(prefix) + str_width(&name) + str_width(&unread));
        let base = if selected { Style::default().add_modifier(Modifier::REVERSED) } else { Style::default() };
        lines.push(Line::from(vec![
            Span::styled(format!("{mark} "), mark_style.patch(base)),
            Span::styled(format!("{prefix}{name}{}", " ".repeat(pad)), base),
            Span::styled(unread, base.fg(Color::Cyan).add_modifier(Modifier::BOLD)),
        ]));
    }
    // Keep the selection on screen in a long list.
    let h = usize::from(inner.height);
    let skip = (app.selected + 1).saturating_sub(h);
    let lines: Vec<Line> = lines.into_iter().skip(skip).collect();
    f.render_widget(Paragraph::new(lines), inner);
}

/// The mark before a name: changed key, verified, not yet answered.
fn chat_mark(c: &Chat) -> (&'static str, Style) {
    if c.summary.identity_changed {
        ("!", Style::default().fg(Color::Red).add_modifier(Modifier::BOLD))
    } else if !c.summary.ready {
        ("…", Style::default().fg(Color::DarkGray))
    } else if c.summary.verified {
        ("✓", Style::default().fg(Color::Green))
    } else {
        (" ", Style::default())
    }
}

/// Cuts `s` to `w` cells, with an ellipsis if cut.
fn fit(s: &str, w: usize) -> String {
    if str_width(s) <= w {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = super::input::char_width(c);
        if used + cw + 1 > w {
            break;
        }
        used += cw;
        out.push(c);
    }
    out.push('…');
    out
}

fn draw_conversation(f: &mut Frame, app: &App, area: Rect) {
    let Some(chat) = app.current() else {
        let block = Block::default().borders(Borders::ALL);
        let inner = block.inner(area);
        f.render_widget(block, area);
        f.render_widget(Paragraph::new(plain_rows(text::NO_CHATS, usize::from(inner.width))), inner);
        return;
    };
    let mut title =
        vec![Span::styled(format!(" {} ", chat.summary.id.name()), Style::default().add_modifier(Modifier::BOLD))];
    match &chat.summary.id {
        ChatId::Group(_) => title.push(Span::raw(text::members(&chat.summary.members))),
        ChatId::Contact(_) if chat.summary.verified => {
            title.push(Span::styled(text::VERIFIED_TAG, Style::default().fg(Color::Green)));
        }
        ChatId::Contact(_) => title.push(Span::styled(text::NOT_VERIFIED_TAG, Style::default().fg(Color::DarkGray))),
    }
    if let Some(t) = chat.timer {
        title.push(Span::raw(text::timer_tag(t)));
    }
    let mut block = Block::default().borders(Borders::ALL).title(Line::from(title));
    let inner = block.inner(area);
    let w = usize::from(inner.width);
    let mut banner: Vec<Line> = Vec::new();
    if chat.summary.identity_changed {
        let style = Style::default().fg(Color::White).bg(Color::Red).add_modifier(Modifier::BOLD);
        banner =
            plain_rows(&text::identity_banner(chat.summary.id.name()), w).into_iter().map(|l| l.style(style)).collect();
    } else if !chat.summary.ready {
        banner = plain_rows(&text::not_ready_banner(chat.summary.id.name()), w)
            .into_iter()
            .map(|l| l.style(Style::default().fg(Color::DarkGray)))
            .collect();
    }
    let h = usize::from(inner.height).saturating_sub(banner.len());
    let rows = if chat.loaded { message_rows(chat, w, &app.zone.0) } else { plain_rows(text::LOADING, w) };
    let max = rows.len().saturating_sub(h);
    let scroll = chat.scroll.min(max);
    if scroll > 0 {
        block = block.title_bottom(Line::from(text::scrolled(scroll)).right_aligned());
    }
    f.render_widget(block, area);
    let start = rows.len().saturating_sub(h + scroll);
    let mut shown: Vec<Line> = banner;
    shown.extend(rows.into_iter().skip(start).take(h));
    f.render_widget(Paragraph::new(shown), inner);
}

/// How far the conversation on screen can scroll up.
pub fn max_scroll(area: Rect, app: &App) -> usize {
    let a = areas(area, app);
    let Some(chat) = app.current() else { return 0 };
    let w = usize::from(a.conversation.width.saturating_sub(2));
    let banner = usize::from(chat.summary.identity_changed || !chat.summary.ready) * 2;
    let h = usize::from(a.conversation.height.saturating_sub(2)).saturating_sub(banner);
    message_rows(chat, w, &app.zone.0).len().saturating_sub(h)
}

/// Text wrapped into unstyled rows.
fn plain_rows(s: &str, w: usize) -> Vec<Line<'static>> {
    wrap(s, w).iter().map(|r| Line::from(s[r.start..r.end].to_string())).collect()
}

/// Every message of `chat` as screen rows of width `w`, with day separators, times in `tz`.
pub fn message_rows(chat: &Chat, w: usize, tz: &jiff::tz::TimeZone) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let mut day = String::new();
    let body_w = w.saturating_sub(TIME_WIDTH).max(4);
    for e in &chat.entries {
        let stamp = format_in(e.sent_at_ms, tz);
        let (date, clock) = stamp.split_once(' ').unwrap_or(("", ""));
        if date != day {
            day = date.to_string();
            let label = format!(" {date} ");
            let side = w.saturating_sub(str_width(&label)) / 2;
            out.push(Line::styled(
                format!("{}{label}{}", "─".repeat(side), "─".repeat(side)),
                Style::default().fg(Color::DarkGray),
            ));
        }
        let who = sender_name(chat, e);
        let mark = delivery_mark(e);
        let full = format!("{who}: {}{}", e.text, mark.0);
        let rows = wrap(&full, body_w);
        let who_end = who.len() + 1;
        let mark_start = full.len() - mark.0.len();
        for (i, r) in rows.iter().enumerate() {
            let lead = if i == 0 {
                Span::styled(format!("{clock} "), Style::default().fg(Color::DarkGray))
            } else {
                Span::raw(" ".repeat(TIME_WIDTH))
            };
            let mut spans = vec![lead];
            let who_style = if e.mine { Style::default().fg(Color::Cyan) } else { Style::default().fg(Color::Magenta) }
                .add_modifier(Modifier::BOLD);
            spans.extend(styled_row(&full, *r, &[(0, who_end, who_style), (mark_start, full.len(), mark.1)]));
            out.push(Line::from(spans));
        }
    }
    out
}

/// Who wrote an entry, as shown.
fn sender_name(chat: &Chat, e: &Entry) -> String {
    if e.mine {
        return text::ME.to_string();
    }
    match (&chat.summary.id, &e.sender) {
        (ChatId::Group(_), Some(s)) => s.clone(),
        (id, _) => id.name().to_string(),
    }
}

/// The mark after one of my messages: queued, stored at the relay, failed.
fn delivery_mark(e: &Entry) -> (&'static str, Style) {
    match (e.mine, e.delivery) {
        (true, Delivery::Queued) => (text::MARK_QUEUED, Style::default().fg(Color::Yellow)),
        (true, Delivery::Stored) => (text::MARK_STORED, Style::default().fg(Color::Green)),
        (true, Delivery::Failed) => (text::MARK_FAILED, Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)),
        _ => ("", Style::default()),
    }
}

/// The part of `s` in `row` as spans, with `styles` (byte ranges) applied.
fn styled_row(s: &str, row: Row, styles: &[(usize, usize, Style)]) -> Vec<Span<'static>> {
    let mut cuts = vec![row.start, row.end];
    for (a, b, _) in styles {
        cuts.extend([*a, *b].into_iter().filter(|x| *x > row.start && *x < row.end));
    }
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2)
        .filter(|p| p[0] < p[1])
        .map(|p| {
            let style = styles.iter().find(|(a, b, _)| p[0] >= *a && p[1] <= *b).map_or(Style::default(), |x| x.2);
            Span::styled(s[p[0]..p[1]].to_string(), style)
        })
        .collect()
}

fn draw_input(f: &mut Frame, app: &App, area: Rect) {
    let title = match app.current() {
        Some(c) => text::input_title(c.summary.id.name()),
        None => String::new(),
    };
    let block = Block::default().borders(Borders::TOP).title(Span::styled(title, Style::default().fg(Color::DarkGray)));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let w = usize::from(inner.width.saturating_sub(1)).max(2);
    let rows = wrap(app.input.text(), w);
    let (row, col) = app.input.cursor_at(&rows);
    // Keep the cursor's row visible when the text is taller than the box.
    let h = usize::from(inner.height).max(1);
    let skip = (row + 1).saturating_sub(h);
    let t = app.input.text();
    let lines: Vec<Line> = rows.iter().skip(skip).take(h).map(|r| Line::from(t[r.start..r.end].to_string())).collect();
    f.render_widget(Paragraph::new(lines), inner);
    if app.popup.is_none() {
        let x = inner.x.saturating_add(u16::try_from(col).unwrap_or(u16::MAX)).min(inner.right().saturating_sub(1));
        let y = inner.y.saturating_add(u16::try_from(row - skip).unwrap_or(0));
        f.set_cursor_position(Position { x, y });
    }
}

fn draw_status(f: &mut Frame, app: &App, area: Rect) {
    let line = match (&app.toast, &app.relay_problem) {
        (Some(t), _) => {
            let style = if t.error { Style::default().fg(Color::Red) } else { Style::default().fg(Color::Green) };
            Line::styled(fit(&t.text, usize::from(area.width)), style)
        }
        (None, Some(p)) if app.offline() => {
            Line::styled(fit(&text::relay_problem(p), usize::from(area.width)), Style::default().fg(Color::Yellow))
        }
        _ => Line::styled(fit(text::HINTS, usize::from(area.width)), Style::default().fg(Color::DarkGray)),
    };
    f.render_widget(Paragraph::new(line), area);
}
