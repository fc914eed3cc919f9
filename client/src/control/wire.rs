//! The bytes on the control socket.
//!
//! Each message is one frame: a big-endian `u32` length, then that many bytes of JSON
//! (serde's externally tagged form, e.g. `{"Run":{"args":["send","ana","hi"],"interactive":false}}`).
//! JSON keeps the protocol debuggable with `socat` and carries any Unicode exactly; the
//! length prefix lets a reader refuse an oversized frame before allocating for it.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::ControlError;

/// Largest frame body either side sends or accepts. A command line or a burst of output is
/// far smaller; the bound only stops a confused or hostile peer from making us allocate.
pub const MAX_FRAME: usize = 1 << 20;

/// Largest piece of output text put in one [`Reply`]. JSON may spell one byte as six
/// (`\u0001`), so a piece this size always fits in [`MAX_FRAME`] with room for the tag;
/// longer text is sent as several pieces, which the client writes back to back.
pub(crate) const MAX_TEXT_PIECE: usize = (MAX_FRAME - 64) / 6;

/// Client to holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Request {
    /// Run a command: `args` is the command line after the global options. Always the
    /// first message, and only once per connection.
    Run {
        /// The command and its arguments, exactly as the user typed them.
        args: Vec<String>,
        /// Whether the client will send [`Request::Input`] lines.
        interactive: bool,
    },
    /// A line the user typed, for interactive commands.
    Input(String),
    /// The user interrupted the command; the holder should stop it.
    Cancel,
}

/// Holder to client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Reply {
    /// Text for the client's stdout, written verbatim (it carries its own newlines, so a
    /// prompt without one is possible).
    Stdout(String),
    /// Text for the client's stderr, written verbatim.
    Stderr(String),
    /// The command finished with this exit code; nothing follows.
    Exit(i32),
}

/// Encodes `msg` as one frame, length prefix included.
pub(crate) fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, ControlError> {
    let body = serde_json::to_vec(msg).map_err(|e| ControlError::Protocol(format!("cannot encode: {e}")))?;
    if body.len() > MAX_FRAME {
        return Err(ControlError::Protocol(format!("a message of {} bytes exceeds {MAX_FRAME}", body.len())));
    }
    let len = u32::try_from(body.len()).map_err(|_| ControlError::Protocol("frame length overflow".into()))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Writes one frame. A single `write_all` of the whole frame, so a message is never
/// interleaved with another on the same stream.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(w: &mut W, msg: &T) -> Result<(), ControlError> {
    let frame = encode(msg)?;
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one frame. `Ok(None)` is a clean end of stream between frames; an end inside a
/// frame is an `UnexpectedEof` I/O error. Not cancel-safe: a caller that abandons it
/// midway must abandon the stream too.
pub(crate) async fn read_frame<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: &mut R,
) -> Result<Option<T>, ControlError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < len.len() {
        let n = r.read(&mut len[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        got += n;
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(ControlError::Protocol(format!("a frame of {len} bytes exceeds {MAX_FRAME}")));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    serde_json::from_slice(&body).map(Some).map_err(|e| ControlError::Protocol(format!("malformed message: {e}")))
}

/// Splits `text` into pieces of at most [`MAX_TEXT_PIECE`] bytes, on character boundaries.
pub(crate) fn pieces(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = rest.len().min(MAX_TEXT_PIECE);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}
