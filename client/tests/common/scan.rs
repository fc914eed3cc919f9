//! Reading a QR code off a text screen, as a phone's camera would: every cell drawn with
//! half blocks is one module wide and two tall. Anything that is not a block (borders,
//! letters, blank cells) counts as the dark background it is on a terminal.

/// Pixels per module in the picture handed to the decoder.
const SCALE: usize = 4;

/// The texts of every QR code found on `screen` (its rows as captured).
pub fn scan(screen: &[String]) -> Vec<String> {
    let cells: Vec<Vec<char>> = screen.iter().map(|r| r.chars().collect()).collect();
    let w = cells.iter().map(Vec::len).max().unwrap_or(0);
    let h = cells.len() * 2;
    let light = |x: usize, y: usize| {
        let c = cells.get(y / 2).and_then(|r| r.get(x)).copied().unwrap_or(' ');
        matches!((c, y % 2), ('█', _) | ('▀', 0) | ('▄', 1))
    };
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w * SCALE, h * SCALE, |x, y| {
        if light(x / SCALE, y / SCALE) { 255 } else { 0 }
    });
    img.detect_grids().into_iter().filter_map(|g| g.decode().ok().map(|(_, text)| text)).collect()
}
