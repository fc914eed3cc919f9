//! Drawing the popups: help, invites (with the QR code), accepting an invite, the safety
//! number, sending a file, groups, and the disappearing timer.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Gauge, Paragraph};
use sotto_client::wire::invite::qr_text;

use super::super::chat_text as text;
use super::input::{Editor, str_width, wrap};
use super::state::{App, GroupAction, Popup, TIMER_CHOICES};

/// Draws the open popup over the main screen.
pub fn draw(f: &mut Frame, app: &App) {
    let Some(p) = &app.popup else { return };
    let full = f.area();
    match p {
        Popup::Help { scroll } => {
            let area = centered(full, 76, 40);
            let inner = frame(f, area, text::HELP_TITLE);
            let lines: Vec<Line> = text::HELP.iter().flat_map(|l| rows(l, usize::from(inner.width))).collect();
            doc(f, inner, lines, *scroll);
        }
        Popup::InviteName { name, waiting } => {
            let area = centered(full, 64, 9);
            let inner = frame(f, area, text::INVITE_TITLE);
            let mut lines = rows(text::INVITE_NAME_PROMPT, usize::from(inner.width));
            lines.push(Line::raw(""));
            let field_y = inner.y + u16::try_from(lines.len()).unwrap_or(0);
            lines.push(Line::raw(""));
            lines.push(Line::raw(""));
            lines.push(hint(if *waiting { text::INVITE_WAITING } else { text::INVITE_NAME_KEYS }));
            f.render_widget(Paragraph::new(lines), inner);
            field(f, Rect { y: field_y, height: 1, ..inner }, name, !*waiting);
        }
        Popup::Invite { link, qr, scroll } => {
            let area = centered(full, u16::MAX, u16::MAX);
            let inner = frame(f, area, text::INVITE_TITLE);
            super::invite_view::draw(f, inner, link, qr, *scroll);
        }
        Popup::Accept { link, name, focus, waiting } => {
            let area = centered(full, 70, 12);
            let inner = frame(f, area, text::ACCEPT_TITLE);
            let w = usize::from(inner.width);
            let mut lines = rows(text::ACCEPT_LINK_PROMPT, w);
            let link_y = inner.y + u16::try_from(lines.len()).unwrap_or(0);
            lines.push(Line::raw(""));
            lines.push(Line::raw(""));
            lines.extend(rows(text::ACCEPT_NAME_PROMPT, w));
            let name_y = inner.y + u16::try_from(lines.len()).unwrap_or(0);
            lines.push(Line::raw(""));
            lines.push(Line::raw(""));
            lines.push(hint(if *waiting { text::ACCEPT_WAITING } else { text::FORM_KEYS }));
            f.render_widget(Paragraph::new(lines), inner);
            field(f, Rect { y: link_y, height: 1, ..inner }, link, *focus == 0 && !*waiting);
            field(f, Rect { y: name_y, height: 1, ..inner }, name, *focus == 1 && !*waiting);
        }
        Popup::Safety { name, safety, scroll } => {
            let area = centered(full, 76, u16::MAX);
            let inner = frame(f, area, text::SAFETY_TITLE);
            let w = usize::from(inner.width);
            let mut lines = rows(&text::safety_intro(name), w);
            lines.push(Line::raw(""));
            match safety {
                None => lines.push(Line::raw(text::LOADING)),
                Some(s) => {
                    for group in s.digits.as_bytes().chunks(20) {
                        let digits: Vec<String> =
                            group.chunks(5).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
                        lines.push(Line::styled(
                            format!("  {}", digits.join("  ")),
                            Style::default().add_modifier(Modifier::BOLD),
                        ));
                    }
                    lines.push(Line::raw(""));
                    let state = if s.changed {
                        Line::styled(text::SAFETY_CHANGED, Style::default().fg(Color::White).bg(Color::Red))
                    } else if s.verified {
                        Line::styled(text::SAFETY_VERIFIED, Style::default().fg(Color::Green))
                    } else {
                        Line::raw(text::SAFETY_NOT_VERIFIED)
                    };
                    lines.push(state);
                    lines.push(hint(match (s.changed, s.verified) {
                        (true, _) => text::SAFETY_KEYS_CHANGED,
                        (false, false) => text::SAFETY_KEYS,
                        (false, true) => text::DOC_KEYS,
                    }));
                    lines.push(Line::raw(""));
                    let scannable =
                        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &s.scannable);
                    lines.extend(qr_lines(&scannable, inner, text::safety_qr_too_big));
                }
            }
            doc(f, inner, lines, *scroll);
        }
        Popup::File { path, progress, sending } => {
            let area = centered(full, 64, 10);
            let inner = frame(f, area, text::FILE_TITLE);
            let mut lines = rows(text::FILE_PROMPT, usize::from(inner.width));
            let field_y = inner.y + u16::try_from(lines.len()).unwrap_or(0);
            lines.extend([Line::raw(""), Line::raw(""), Line::raw(""), Line::raw("")]);
            lines.push(hint(if *sending { text::FILE_SENDING } else { text::FILE_KEYS }));
            f.render_widget(Paragraph::new(lines), inner);
            field(f, Rect { y: field_y, height: 1, ..inner }, path, !*sending);
            if let Some((done, total)) = progress {
                let ratio = if *total == 0 { 1.0 } else { (*done as f64 / *total as f64).clamp(0.0, 1.0) };
                let gauge = Gauge::default()
                    .gauge_style(Style::default().fg(Color::Green))
                    .ratio(ratio)
                    .label(text::progress(*done, *total));
                f.render_widget(gauge, Rect { y: field_y + 2, height: 1, ..inner });
            }
        }
        Popup::Group { action, group, members, focus, waiting } => {
            let area = centered(full, 70, 12);
            let inner = frame(f, area, text::GROUP_TITLE);
            let w = usize::from(inner.width);
            let tabs: Vec<Span> = [GroupAction::Create, GroupAction::Add, GroupAction::Remove]
                .iter()
                .map(|a| {
                    let label = format!(" {} ", text::group_action(*a));
                    if a == action {
                        Span::styled(label, Style::default().add_modifier(Modifier::REVERSED))
                    } else {
                        Span::raw(label)
                    }
                })
                .collect();
            let mut lines = vec![Line::from(tabs), Line::raw("")];
            lines.extend(rows(text::GROUP_NAME_PROMPT, w));
            let group_y = inner.y + u16::try_from(lines.len()).unwrap_or(0);
            lines.push(Line::raw(""));
            lines.extend(rows(text::GROUP_MEMBERS_PROMPT, w));
            let members_y = inner.y + u16::try_from(lines.len()).unwrap_or(0);
            lines.push(Line::raw(""));
            lines.push(Line::raw(""));
            lines.push(hint(if *waiting { text::GROUP_WAITING } else { text::GROUP_KEYS }));
            f.render_widget(Paragraph::new(lines), inner);
            field(f, Rect { y: group_y, height: 1, ..inner }, group, *focus == 0 && !*waiting);
            field(f, Rect { y: members_y, height: 1, ..inner }, members, *focus == 1 && !*waiting);
        }
        Popup::Timer { choice, waiting } => {
            let area = centered(full, 50, u16::try_from(TIMER_CHOICES.len() + 6).unwrap_or(12));
            let inner = frame(f, area, text::TIMER_TITLE);
            let mut lines = rows(text::TIMER_PROMPT, usize::from(inner.width));
            lines.push(Line::raw(""));
            for (i, t) in TIMER_CHOICES.iter().enumerate() {
                let label = format!("  {}  ", text::timer_choice(*t));
                lines.push(if i == *choice {
                    Line::styled(label, Style::default().add_modifier(Modifier::REVERSED))
                } else {
                    Line::raw(label)
                });
            }
            lines.push(Line::raw(""));
            lines.push(hint(if *waiting { text::TIMER_WAITING } else { text::TIMER_KEYS }));
            f.render_widget(Paragraph::new(lines), inner);
        }
    }
}

/// A rectangle of at most `w`×`h` in the middle of `area`.
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

/// Clears `area`, draws a titled border, returns the inside.
fn frame(f: &mut Frame, area: Rect, title: &str) -> Rect {
    f.render_widget(Clear, area);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(Color::Cyan))
        .title(Span::styled(format!(" {title} "), Style::default().add_modifier(Modifier::BOLD)));
    let inner = block.inner(area);
    f.render_widget(block, area);
    inner
}

/// Text wrapped to `w` as lines.
pub(super) fn rows(s: &str, w: usize) -> Vec<Line<'static>> {
    wrap(s, w).iter().map(|r| Line::raw(s[r.start..r.end].to_string())).collect()
}

pub(super) fn hint(s: &str) -> Line<'static> {
    Line::styled(s.to_string(), Style::default().fg(Color::DarkGray))
}

/// A scrollable document: `scroll` rows from the top, clamped so the end stays in view.
pub(super) fn doc(f: &mut Frame, inner: Rect, lines: Vec<Line<'static>>, scroll: u16) {
    let max = u16::try_from(lines.len().saturating_sub(usize::from(inner.height))).unwrap_or(u16::MAX);
    f.render_widget(Paragraph::new(lines).scroll((scroll.min(max), 0)), inner);
}

/// The QR code of `data` if it fits inside `inner` whole (a cut code cannot be scanned),
/// else a line saying how large the window must be.
fn qr_lines(data: &str, inner: Rect, too_big: fn(usize, usize) -> String) -> Vec<Line<'static>> {
    let Ok(qr) = qr_text(data) else { return rows(&too_big(0, 0), usize::from(inner.width)) };
    let qr_w = qr.lines().map(str_width).max().unwrap_or(0);
    let qr_h = qr.lines().count();
    if qr_w > usize::from(inner.width) || qr_h > usize::from(inner.height) {
        // Borders and the popup's margins come on top of the code itself.
        return rows(&too_big(qr_w + 2, qr_h + 2), usize::from(inner.width));
    }
    // Light modules are drawn as full blocks: pin the colours so the code scans on any theme.
    let style = Style::default().fg(Color::White).bg(Color::Black);
    qr.lines().map(|l| Line::styled(l.to_string(), style)).collect()
}

/// A one-line text field; shows the end of a long text, and the cursor if focused.
fn field(f: &mut Frame, area: Rect, e: &Editor, focused: bool) {
    let w = usize::from(area.width).saturating_sub(3).max(1);
    let t = e.text();
    let flat = t.replace('\n', " ");
    let rows = wrap(&flat, w);
    // Newlines became spaces of the same length: the editor's byte offsets still hold.
    let (row, col) = e.cursor_at(&rows);
    let r = rows.get(row).copied();
    let shown = r.map_or(String::new(), |r| flat[r.start..r.end].to_string());
    let style = if focused { Style::default().bg(Color::DarkGray) } else { Style::default() };
    let line = Line::from(vec![
        Span::raw("> "),
        Span::styled(format!("{shown}{}", " ".repeat(w.saturating_sub(str_width(&shown)) + 1)), style),
    ]);
    f.render_widget(Paragraph::new(line), area);
    if focused {
        let x = area.x + 2 + u16::try_from(col).unwrap_or(0);
        f.set_cursor_position(Position { x: x.min(area.right().saturating_sub(1)), y: area.y });
    }
}
