//! The new-invite popup: the QR code and the link, laid out for the window.
//!
//! The QR code holds the compact form of a short invite (`wire::invite_qr`): a version 6
//! code, 41 modules. Drawn with half blocks it takes 41 + 2q columns and ⌈(41 + 2q) / 2⌉ rows
//! for a quiet zone of q modules, so inside the popup's border at 80×24 (78×22 cells) it fits
//! only with q = 1 (43×22), and only beside the text, not above it. The layouts, tried in
//! order, each with the widest quiet zone (4 down to 1) that fits:
//!
//! 1. stacked: the text, the code, the link, all visible at once;
//! 2. side by side: the code on the left, the text and link beside it (scrollable);
//! 3. the text and link alone, with the window size the code would need.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use sotto_client::wire::invite::{QR_QUIET_ZONE, qr_text_with_quiet_zone};

use super::super::chat_text as text;
use super::input::{str_width, wrap};
use super::popups::{doc, hint, rows};

/// Narrowest column of text beside the code (the link wraps in it).
pub const MIN_SIDE_TEXT: usize = 30;
/// Columns between the code and the text beside it.
const GAP: usize = 1;
/// The narrowest quiet zone drawn (the standard asks for four modules; scanners read codes on
/// screens with one).
const MIN_QUIET_ZONE: usize = 1;

/// Draws the invite inside `inner` (the popup's border is drawn already).
pub fn draw(f: &mut Frame, inner: Rect, link: &str, qr: &str, scroll: u16) {
    let (w, h) = (usize::from(inner.width), usize::from(inner.height));
    let codes: Vec<(usize, Vec<String>)> = (MIN_QUIET_ZONE..=QR_QUIET_ZONE)
        .rev()
        .filter_map(|q| qr_text_with_quiet_zone(qr, q).ok().map(|c| (q, c.lines().map(str::to_string).collect())))
        .collect();
    let size = |c: &[String]| (c.iter().map(|l| str_width(l)).max().unwrap_or(0), c.len());
    // 1. Stacked, everything in view.
    for (_, code) in &codes {
        let (cw, ch) = size(code);
        let text = text_lines(link, w, None);
        // The code and the blank row after it come on top of the text.
        let code_rows = ch + 1;
        if cw <= w && code_rows + text.len() <= h {
            let mut lines = text_lines(link, w, Some(code));
            lines.truncate(h);
            f.render_widget(Paragraph::new(lines), inner);
            return;
        }
    }
    // 2. Side by side.
    for (_, code) in &codes {
        let (cw, ch) = size(code);
        if ch <= h && cw + GAP + MIN_SIDE_TEXT <= w {
            let top = inner.y + u16::try_from((h - ch) / 2).unwrap_or(0);
            let code_area =
                Rect { y: top, width: u16::try_from(cw).unwrap_or(0), height: u16::try_from(ch).unwrap_or(0), ..inner };
            f.render_widget(Paragraph::new(code_lines(code)), code_area);
            let offset = u16::try_from(cw + GAP).unwrap_or(0);
            let side = Rect { x: inner.x + offset, width: inner.width - offset, ..inner };
            doc(f, side, text_lines(link, usize::from(side.width), None), scroll);
            return;
        }
    }
    // 3. No room: say how much the smallest layout needs.
    let mut lines = rows(text::INVITE_INTRO, w);
    lines.push(Line::raw(""));
    let need = match codes.last() {
        Some((_, code)) => {
            let (cw, ch) = size(code);
            // The border comes on top of the code and the text beside it.
            text::invite_qr_too_big(cw + GAP + MIN_SIDE_TEXT + 2, ch + 2)
        }
        None => text::invite_qr_too_big(0, 0),
    };
    lines.extend(rows(&need, w));
    lines.push(Line::raw(""));
    lines.extend(link_lines(link, w));
    lines.push(Line::raw(""));
    lines.push(hint(text::DOC_KEYS));
    doc(f, inner, lines, scroll);
}

/// The intro, the code (if given), the link and the keys, for a column `w` wide.
fn text_lines(link: &str, w: usize, code: Option<&[String]>) -> Vec<Line<'static>> {
    let mut lines = rows(text::INVITE_INTRO, w);
    lines.push(Line::raw(""));
    if let Some(code) = code {
        lines.extend(code_lines(code));
        lines.push(Line::raw(""));
    }
    lines.extend(link_lines(link, w));
    lines.push(Line::raw(""));
    lines.push(hint(text::DOC_KEYS));
    lines
}

fn link_lines(link: &str, w: usize) -> Vec<Line<'static>> {
    wrap(link, w).iter().map(|r| Line::raw(link[r.start..r.end].to_string())).collect()
}

/// Light modules are drawn as full blocks: pin the colours so the code scans on any theme.
fn code_lines(code: &[String]) -> Vec<Line<'static>> {
    let style = Style::default().fg(Color::White).bg(Color::Black);
    code.iter().map(|l| Line::styled(l.clone(), style)).collect()
}
