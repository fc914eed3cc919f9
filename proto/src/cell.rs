//! The fixed-size cell: every frame, in both directions, travels as exactly one cell.
//!
//! ```text
//! cell    = version:u8 body_len:u16be body padding
//! padding = zero bytes up to CELL_SIZE
//! ```
//!
//! Non-zero padding is rejected rather than ignored, so a cell has exactly one encoding
//! and padding cannot become a covert channel.

use crate::codec::Writer;
use crate::error::DecodeError;
use crate::limits::{CELL_HEADER_LEN, CELL_SIZE, MAX_BODY_LEN, PROTOCOL_VERSION};

/// Wraps a frame body into a cell. Bodies come only from this crate's encoders, whose
/// largest output is checked against [`MAX_BODY_LEN`] at compile time in `limits`.
#[cfg(test)]
pub(crate) fn wrap(body: &[u8]) -> Vec<u8> {
    let mut w = writer();
    w.bytes(body);
    finish(w)
}

/// A writer for a frame body that becomes a cell in place: the buffer has room for the
/// whole cell and the header comes first, so a chunk is copied once while encoding, not
/// again into a cell.
pub(crate) fn writer() -> Writer {
    let mut buf = Vec::with_capacity(CELL_SIZE);
    buf.extend_from_slice(&[PROTOCOL_VERSION, 0, 0]);
    Writer::from_vec(buf)
}

/// The cell from a [`writer`]'s output: the body length set in the header, the rest
/// padded with zeros.
pub(crate) fn finish(w: Writer) -> Vec<u8> {
    let mut cell = w.into_inner();
    let len = cell.len().saturating_sub(CELL_HEADER_LEN);
    debug_assert!(len <= MAX_BODY_LEN);
    if len > MAX_BODY_LEN {
        // Unreachable with this crate's encoders; cut rather than send an oversized cell.
        cell.truncate(CELL_SIZE);
    }
    // `len` is at most MAX_BODY_LEN, which fits u16 (checked in `limits`).
    let len = len.min(MAX_BODY_LEN) as u16;
    cell[1..CELL_HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    cell.resize(CELL_SIZE, 0);
    cell
}

/// Checks a cell's outer shape and returns its body.
pub fn unwrap(cell: &[u8]) -> Result<&[u8], DecodeError> {
    if cell.len() != CELL_SIZE {
        return Err(DecodeError::CellSize { expected: CELL_SIZE, got: cell.len() });
    }
    if cell[0] != PROTOCOL_VERSION {
        return Err(DecodeError::Version(cell[0]));
    }
    let len = usize::from(u16::from_be_bytes([cell[1], cell[2]]));
    if len > MAX_BODY_LEN {
        return Err(DecodeError::BodyLength(len));
    }
    let (body, padding) = cell[CELL_HEADER_LEN..].split_at(len);
    // An OR over every byte rather than a search for the first non-zero one: it runs
    // wide (most of a cell is padding, and every cell is checked) and takes the same
    // time whatever the padding holds.
    if padding.iter().fold(0u8, |acc, &b| acc | b) != 0 {
        return Err(DecodeError::NonZeroPadding);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_then_unwrap_round_trips() {
        let cell = wrap(b"hello");
        assert_eq!(cell.len(), CELL_SIZE);
        assert_eq!(unwrap(&cell), Ok(&b"hello"[..]));
    }

    #[test]
    fn rejects_every_malformed_shape() {
        let good = wrap(b"x");
        assert_eq!(unwrap(&good[..10]), Err(DecodeError::CellSize { expected: CELL_SIZE, got: 10 }));
        let mut v = good.clone();
        v[0] = 9;
        assert_eq!(unwrap(&v), Err(DecodeError::Version(9)));
        let mut v = good.clone();
        v[1..3].copy_from_slice(&u16::MAX.to_be_bytes());
        assert_eq!(unwrap(&v), Err(DecodeError::BodyLength(usize::from(u16::MAX))));
        let mut v = good;
        v[CELL_SIZE - 1] = 1;
        assert_eq!(unwrap(&v), Err(DecodeError::NonZeroPadding));
    }
}
