//! Names for received files: whatever a sender wrote becomes a safe single path
//! component in the downloads directory, and never replaces a file already there.
//!
//! Sanitizing removes only what is dangerous (path separators, control and
//! direction-override characters, names a file system treats specially) and keeps every
//! other character byte-exact: a name in Chinese, Uyghur or Tibetan arrives as written.

use std::path::{Path, PathBuf};

/// Longest file name written, in UTF-8 bytes (common file systems allow 255).
pub const MAX_SAVED_NAME_BYTES: usize = 200;

/// The name used when a sender gave none, or nothing usable was left.
pub const FALLBACK_NAME: &str = "file";

/// Most `name (N).ext` variants tried before giving up on a free name.
pub const MAX_COLLISION_SUFFIX: u32 = 10_000;

/// A safe file name for what a sender called `wanted`.
pub fn sanitize(wanted: &str) -> String {
    // Only the last component of anything that looks like a path.
    let last = wanted.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut name: String = last.chars().filter(|c| !unsafe_char(*c)).collect();
    // Leading dots would hide the file or name `.`/`..`; trailing dots and spaces are
    // dropped by some file systems and confuse the rest.
    name = name.trim_start_matches(['.', ' ']).trim_end_matches(['.', ' ']).to_string();
    if name.len() > MAX_SAVED_NAME_BYTES {
        name = truncate_keeping_extension(&name, MAX_SAVED_NAME_BYTES);
    }
    if name.is_empty() { FALLBACK_NAME.to_string() } else { name }
}

/// A path in `dir` for `name` that does not exist yet: `name`, else `stem (2).ext`, …
pub fn unused_path(dir: &Path, name: &str) -> Option<PathBuf> {
    let first = dir.join(name);
    if !exists(&first) {
        return Some(first);
    }
    let (stem, ext) = split_extension(name);
    (2..MAX_COLLISION_SUFFIX).map(|n| dir.join(format!("{stem} ({n}){ext}"))).find(|p| !exists(p))
}

fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

/// Control characters (C0, DEL, C1), bidirectional overrides and isolates (which can
/// make `evil<U+202E>gpj.exe` display as `evilexe.jpg`), and characters Windows forbids.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
        || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*' | '\0')
}

/// `(stem, ".ext")`, or `(name, "")` when there is no extension.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 && name.len() - i <= 16 => name.split_at(i),
        _ => (name, ""),
    }
}

fn truncate_keeping_extension(name: &str, max: usize) -> String {
    let (stem, ext) = split_extension(name);
    let mut end = max.saturating_sub(ext.len()).min(stem.len());
    while !stem.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ext}", &stem[..end])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn paths_dots_and_controls_are_removed() {
        assert_eq!(sanitize("../../etc/passwd"), "passwd");
        assert_eq!(sanitize("..\\..\\boot.ini"), "boot.ini");
        assert_eq!(sanitize(".."), FALLBACK_NAME);
        assert_eq!(sanitize("/"), FALLBACK_NAME);
        assert_eq!(sanitize(""), FALLBACK_NAME);
        assert_eq!(sanitize(".hidden"), "hidden");
        assert_eq!(sanitize("a\nb\r\u{7}c\u{0}.txt"), "abc.txt");
        assert_eq!(sanitize("evil\u{202E}gpj.exe"), "evilgpj.exe");
        assert_eq!(sanitize("what?.jpg "), "what.jpg");
    }

    #[test]
    fn every_script_is_kept_byte_exact() {
        for n in ["照片 2024.jpg", "ئۇيغۇرچە ھۆججەت.pdf", "བོད་ཡིག.txt", "e\u{301}té.png", "👩‍👩‍👧.gif"]
        {
            assert_eq!(sanitize(n).as_bytes(), n.as_bytes());
        }
    }

    #[test]
    fn long_names_keep_their_extension_and_char_boundaries() {
        let long = format!("{}.jpeg", "长".repeat(100));
        let s = sanitize(&long);
        assert!(s.len() <= MAX_SAVED_NAME_BYTES && s.ends_with(".jpeg"), "{s}");
        assert!(s.trim_end_matches(".jpeg").chars().all(|c| c == '长'));
    }

    #[test]
    fn collisions_get_a_suffix() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(unused_path(dir.path(), "a.txt").unwrap(), dir.path().join("a.txt"));
        std::fs::write(dir.path().join("a.txt"), b"x").unwrap();
        assert_eq!(unused_path(dir.path(), "a.txt").unwrap(), dir.path().join("a (2).txt"));
        std::fs::write(dir.path().join("a (2).txt"), b"x").unwrap();
        assert_eq!(unused_path(dir.path(), "a.txt").unwrap(), dir.path().join("a (3).txt"));
        std::fs::write(dir.path().join("noext"), b"x").unwrap();
        assert_eq!(unused_path(dir.path(), "noext").unwrap(), dir.path().join("noext (2)"));
    }
}
