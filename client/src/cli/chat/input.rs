//! Text editing and wrapping by display width.
//!
//! Chinese and other wide characters take two terminal cells, combining marks (Tibetan
//! vowel signs, Arabic harakat) take none: positions are counted in cells with
//! `unicode-width`, never in bytes or chars, so wrapping and the cursor land where the
//! terminal draws them.

use unicode_width::UnicodeWidthChar;

/// The most bytes the input holds (a message is at most this long anyway: the relay's
/// cell bounds it far below).
pub const MAX_INPUT_BYTES: usize = 64 * 1024;

/// Cells a character takes (control characters are never drawn: none).
pub fn char_width(c: char) -> usize {
    if c == '\t' { 1 } else { c.width().unwrap_or(0) }
}

/// Cells a string takes.
pub fn str_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// One wrapped row: the byte range of the text it shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub start: usize,
    pub end: usize,
}

/// Wraps `text` into rows of at most `width` cells: at newlines, after the last space
/// that fits, or else (scripts without spaces) between characters.
pub fn wrap(text: &str, width: usize) -> Vec<Row> {
    let width = width.max(2);
    let mut rows = Vec::new();
    let mut line_start = 0;
    for line in text.split('\n') {
        wrap_line(line, line_start, width, &mut rows);
        line_start += line.len() + 1;
    }
    rows
}

fn wrap_line(line: &str, offset: usize, width: usize, rows: &mut Vec<Row>) {
    let mut start = 0;
    let mut used = 0;
    let mut last_space: Option<usize> = None;
    let mut prev_wide = false;
    for (i, c) in line.char_indices() {
        let w = char_width(c);
        if used + w > width && i > start {
            // Break after the last space in this row; but between two characters of a
            // script written without spaces (wide ones: Chinese, Japanese) a line may break
            // anywhere, so break right here.
            let cut = match last_space {
                _ if w > 1 || prev_wide => i,
                Some(s) if s > start => s,
                _ => i,
            };
            rows.push(Row { start: offset + start, end: offset + cut });
            used = str_width(&line[cut..i]);
            start = cut;
            last_space = None;
        }
        used += w;
        prev_wide = w > 1;
        if c == ' ' {
            last_space = Some(i + 1);
        }
    }
    rows.push(Row { start: offset + start, end: offset + line.len() });
}

/// A text being typed, with a cursor (a byte offset on a char boundary).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Editor {
    text: String,
    cursor: usize,
}

impl Editor {
    pub fn new() -> Self {
        Self::default()
    }

    /// An editor holding `text`, cursor at the end.
    pub fn with_text(text: &str) -> Self {
        let mut e = Self::new();
        e.insert_str(text);
        e
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Takes the text out, leaving the editor empty.
    pub fn take(&mut self) -> String {
        self.cursor = 0;
        std::mem::take(&mut self.text)
    }

    pub fn insert(&mut self, c: char) {
        if c.is_control() && c != '\n' && c != '\t' {
            return;
        }
        if self.text.len() + c.len_utf8() > MAX_INPUT_BYTES {
            return;
        }
        self.text.insert(self.cursor, c);
        self.cursor += c.len_utf8();
    }

    /// Inserts pasted text: line ends become `\n`, other control characters are dropped.
    pub fn insert_str(&mut self, s: &str) {
        let s = s.replace("\r\n", "\n").replace('\r', "\n");
        for c in s.chars() {
            self.insert(c);
        }
    }

    pub fn backspace(&mut self) {
        if let Some(c) = self.text[..self.cursor].chars().next_back() {
            self.cursor -= c.len_utf8();
            self.text.remove(self.cursor);
        }
    }

    pub fn delete(&mut self) {
        if self.cursor < self.text.len() {
            self.text.remove(self.cursor);
        }
    }

    /// Deletes the word before the cursor (and the spaces after it).
    pub fn delete_word(&mut self) {
        let before = &self.text[..self.cursor];
        let trimmed = before.trim_end_matches(' ');
        let start = trimmed.rfind([' ', '\n']).map_or(0, |i| i + 1);
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    pub fn clear(&mut self) {
        self.text.clear();
        self.cursor = 0;
    }

    pub fn left(&mut self) {
        if let Some(c) = self.text[..self.cursor].chars().next_back() {
            self.cursor -= c.len_utf8();
        }
    }

    pub fn right(&mut self) {
        if let Some(c) = self.text[self.cursor..].chars().next() {
            self.cursor += c.len_utf8();
        }
    }

    /// To the start of the current line.
    pub fn home(&mut self) {
        self.cursor = self.text[..self.cursor].rfind('\n').map_or(0, |i| i + 1);
    }

    /// To the end of the current line.
    pub fn end(&mut self) {
        self.cursor = self.text[self.cursor..].find('\n').map_or(self.text.len(), |i| self.cursor + i);
    }

    /// One row up in the wrapped layout at `width`; false at the top row.
    pub fn up(&mut self, width: usize) -> bool {
        self.vertical(width, false)
    }

    /// One row down in the wrapped layout at `width`; false at the bottom row.
    pub fn down(&mut self, width: usize) -> bool {
        self.vertical(width, true)
    }

    fn vertical(&mut self, width: usize, down: bool) -> bool {
        let rows = wrap(&self.text, width);
        let (row, col) = self.cursor_at(&rows);
        let target = if down { row + 1 } else { row.wrapping_sub(1) };
        let Some(r) = rows.get(target) else { return false };
        // The character at (or just before) the same column on the target row.
        let mut pos = r.start;
        let mut used = 0;
        for (i, c) in self.text[r.start..r.end].char_indices() {
            let w = char_width(c);
            if used + w > col {
                break;
            }
            used += w;
            pos = r.start + i + c.len_utf8();
        }
        self.cursor = pos;
        true
    }

    /// The cursor's (row, column in cells) in `rows`.
    pub fn cursor_at(&self, rows: &[Row]) -> (usize, usize) {
        // The last row that starts at or before the cursor; a cursor at a soft break
        // belongs to the next row.
        let mut row = 0;
        for (i, r) in rows.iter().enumerate() {
            if r.start <= self.cursor {
                row = i;
            }
        }
        let r = rows.get(row).copied().unwrap_or(Row { start: 0, end: 0 });
        let end = self.cursor.min(r.end).max(r.start);
        (row, str_width(&self.text[r.start..end]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_text(t: &str, w: usize) -> Vec<&str> {
        wrap(t, w).iter().map(|r| &t[r.start..r.end]).collect()
    }

    #[test]
    fn wraps_by_cells_at_spaces_and_inside_spaceless_scripts() {
        assert_eq!(rows_text("hello world again", 11), vec!["hello ", "world again"]);
        // Six Chinese characters are twelve cells: five cells hold two of them.
        assert_eq!(rows_text("你好世界朋友", 5), vec!["你好", "世界", "朋友"]);
        assert_eq!(rows_text("a\nb", 10), vec!["a", "b"]);
        // Chinese after a word fills the row instead of moving down whole.
        assert_eq!(rows_text("name: 你好世界", 10), vec!["name: 你好", "世界"]);
        assert_eq!(rows_text("", 10), vec![""]);
        // A Tibetan vowel sign takes no cell and stays with its letter.
        assert_eq!(rows_text("ཀིཀིཀི", 2), vec!["ཀིཀི", "ཀི"]);
    }

    #[test]
    fn the_cursor_is_counted_in_cells() {
        let mut e = Editor::with_text("ab你好");
        let rows = wrap(e.text(), 20);
        assert_eq!(e.cursor_at(&rows), (0, 6));
        e.left();
        assert_eq!(e.cursor_at(&rows), (0, 4));
        e.backspace();
        assert_eq!(e.text(), "ab好");
        e.insert('界');
        assert_eq!(e.text(), "ab界好");
        e.home();
        e.insert_str("x\r\ny");
        assert_eq!(e.text(), "x\nyab界好");
        assert_eq!(e.cursor_at(&wrap(e.text(), 20)), (1, 1));
    }

    #[test]
    fn up_and_down_keep_the_column() {
        let mut e = Editor::with_text("abcdef\n你好世界");
        let w = 20;
        assert!(e.up(w));
        assert_eq!(e.cursor_at(&wrap(e.text(), w)), (0, 6));
        e.home();
        e.right();
        e.right();
        e.right();
        assert!(e.down(w));
        // Column 3 falls inside 好 (cells 2-3): the cursor stops before it.
        assert_eq!(e.cursor_at(&wrap(e.text(), w)), (1, 2));
        assert!(!e.down(w));
    }

    #[test]
    fn control_characters_are_not_typed_and_words_delete() {
        let mut e = Editor::new();
        e.insert_str("one two\u{1b}[31m");
        assert_eq!(e.text(), "one two[31m");
        e.delete_word();
        assert_eq!(e.text(), "one ");
        e.delete_word();
        assert_eq!(e.text(), "");
    }
}
