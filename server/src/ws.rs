//! The WebSocket framing the relay speaks after the upgrade (RFC 6455 §5), for the one kind
//! of message its clients send: an unfragmented, masked binary message of one cell.
//!
//! The relay frames WebSocket itself, rather than through a general library, for memory: a
//! general framer keeps read and write buffers as large as the largest message it has seen
//! (a cell, 16 KiB each way) for the life of the connection, which made up most of an idle
//! connection's cost. Here nothing is buffered between messages: a frame header is read
//! into a 14-byte array, a payload into a vector of exactly its length that is handed to
//! the caller, and each outgoing frame is built, written and dropped.
//!
//! Two-phase, like every decoder in the project: the header is parsed and checked
//! (reserved bits, masking, opcode, length limit) before any payload is read, so a peer
//! announcing a huge frame is refused before a byte of it is buffered.
//!
//! Reading is cancellation-safe (the connection loop reads inside `select!`): all progress
//! lives in [`WsConn`], and each `read` either completes or consumes nothing.

use std::io::IoSlice;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The longest payload accepted: two cells. A payload of more than one cell and at most
/// this is read and answered with a typed error; a longer one closes the connection
/// before any of it is read.
pub const MAX_PAYLOAD: usize = 2 * sotto_proto::limits::CELL_SIZE;

/// The longest payload of a control frame (RFC 6455 §5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;

/// The longest frame header: 2 bytes, an 8-byte extended length and a 4-byte mask key.
const MAX_HEADER: usize = 14;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// A message from the peer.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A binary message, unmasked.
    Binary(Vec<u8>),
    /// A text message: never a cell, answered with a typed error.
    Text,
    /// A ping, whose payload the pong must echo.
    Ping(Vec<u8>),
    /// A pong (ignored).
    Pong,
    /// The peer is closing.
    Close,
}

/// Why the framing cannot go on; the connection is closed, never answered.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// The stream ended or failed.
    #[error("the connection ended")]
    Io,
    /// A reserved bit was set (no extension was negotiated).
    #[error("reserved bits set")]
    Reserved,
    /// A client frame was not masked (RFC 6455 §5.1 requires it).
    #[error("unmasked client frame")]
    Unmasked,
    /// A fragmented message, or a continuation frame: clients send one cell per message.
    #[error("fragmented message")]
    Fragmented,
    /// An opcode RFC 6455 reserves.
    #[error("reserved opcode {0}")]
    Opcode(u8),
    /// A payload longer than [`MAX_PAYLOAD`], or a control frame longer than 125 bytes.
    #[error("frame of {0} bytes is too long")]
    TooLong(u64),
}

/// Where reading the next frame stands.
enum ReadState {
    /// Reading the header: `have` bytes of it so far.
    Header { buf: [u8; MAX_HEADER], have: usize },
    /// Reading the payload of a frame whose header said `opcode` and `mask`.
    Payload { opcode: u8, mask: [u8; 4], buf: Vec<u8>, have: usize },
}

/// A WebSocket connection after the upgrade, server side.
pub struct WsConn<S> {
    stream: S,
    state: ReadState,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsConn<S> {
    /// Frames over `stream`, whose next byte starts a frame.
    pub fn new(stream: S) -> Self {
        Self { stream, state: ReadState::Header { buf: [0; MAX_HEADER], have: 0 } }
    }

    /// The next message. Cancellation-safe.
    pub async fn next(&mut self) -> Result<Incoming, WsError> {
        loop {
            match &mut self.state {
                ReadState::Header { buf, have } => {
                    let need = header_len(&buf[..*have]).unwrap_or(2);
                    if *have < need {
                        let n = self.stream.read(&mut buf[*have..need]).await.map_err(|_| WsError::Io)?;
                        if n == 0 {
                            return Err(WsError::Io);
                        }
                        *have += n;
                        continue;
                    }
                    let header = parse_header(&buf[..need])?;
                    // `len` was checked against MAX_PAYLOAD: it fits in memory and usize.
                    let len = header.len as usize;
                    self.state =
                        ReadState::Payload { opcode: header.opcode, mask: header.mask, buf: vec![0; len], have: 0 };
                }
                ReadState::Payload { buf, have, .. } if *have < buf.len() => {
                    let n = self.stream.read(&mut buf[*have..]).await.map_err(|_| WsError::Io)?;
                    if n == 0 {
                        return Err(WsError::Io);
                    }
                    *have += n;
                }
                ReadState::Payload { .. } => {
                    let done = std::mem::replace(&mut self.state, ReadState::Header { buf: [0; MAX_HEADER], have: 0 });
                    let ReadState::Payload { opcode, mask, mut buf, .. } = done else { continue };
                    unmask(&mut buf, mask);
                    return Ok(match opcode {
                        OP_BINARY => Incoming::Binary(buf),
                        OP_TEXT => Incoming::Text,
                        OP_PING => Incoming::Ping(buf),
                        OP_PONG => Incoming::Pong,
                        _ => Incoming::Close,
                    });
                }
            }
        }
    }

    /// Writes `payload` as one binary frame, header and payload in one vectored write so
    /// that it leaves in one TLS record without being copied into a frame first. It may
    /// wait in a buffer below TLS until [`Self::flush`].
    pub async fn send_binary(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let (header, header_len) = frame_header(OP_BINARY, payload.len());
        let total = header_len + payload.len();
        let mut written = 0;
        while written < total {
            let n = if written < header_len {
                let parts = [IoSlice::new(&header[written..header_len]), IoSlice::new(payload)];
                self.stream.write_vectored(&parts).await?
            } else {
                self.stream.write(&payload[written - header_len..]).await?
            };
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            written += n;
        }
        Ok(())
    }

    /// Sends whatever frames wait in buffers.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush().await
    }

    /// Answers a ping, at once.
    pub async fn send_pong(&mut self, payload: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(&encode_frame(OP_PONG, payload)).await?;
        self.stream.flush().await
    }

    /// Sends a close frame and closes the stream (TLS close_notify).
    pub async fn close(&mut self) -> std::io::Result<()> {
        self.stream.write_all(&encode_frame(OP_CLOSE, &[])).await?;
        self.stream.flush().await?;
        self.stream.shutdown().await
    }
}

/// A parsed frame header.
#[derive(Debug, PartialEq, Eq)]
struct Header {
    opcode: u8,
    mask: [u8; 4],
    len: u64,
}

/// The length of the header that starts `bytes`, once its first two bytes are there.
fn header_len(bytes: &[u8]) -> Option<usize> {
    let (&b1, _) = bytes.get(1).zip(bytes.first())?;
    let masked = if b1 & 0x80 != 0 { 4 } else { 0 };
    Some(
        2 + masked
            + match b1 & 0x7F {
                126 => 2,
                127 => 8,
                _ => 0,
            },
    )
}

/// Checks a complete header (as long as [`header_len`] says) from a client.
fn parse_header(h: &[u8]) -> Result<Header, WsError> {
    let (b0, b1) = (h[0], h[1]);
    if b0 & 0x70 != 0 {
        return Err(WsError::Reserved);
    }
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0F;
    if b1 & 0x80 == 0 {
        return Err(WsError::Unmasked);
    }
    let (len, rest) = match b1 & 0x7F {
        126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), &h[4..]),
        127 => (u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]), &h[10..]),
        n => (u64::from(n), &h[2..]),
    };
    let mask = [rest[0], rest[1], rest[2], rest[3]];
    match opcode {
        OP_CONTINUATION => Err(WsError::Fragmented),
        OP_TEXT | OP_BINARY if !fin => Err(WsError::Fragmented),
        OP_TEXT | OP_BINARY if len > MAX_PAYLOAD as u64 => Err(WsError::TooLong(len)),
        OP_TEXT | OP_BINARY => Ok(Header { opcode, mask, len }),
        OP_CLOSE | OP_PING | OP_PONG if !fin => Err(WsError::Fragmented),
        OP_CLOSE | OP_PING | OP_PONG if len > MAX_CONTROL_PAYLOAD as u64 => Err(WsError::TooLong(len)),
        OP_CLOSE | OP_PING | OP_PONG => Ok(Header { opcode, mask, len }),
        other => Err(WsError::Opcode(other)),
    }
}

/// Eight bytes at a time (the compiler widens it further): every cell from a client is
/// masked, so this runs over every byte the relay receives.
fn unmask(buf: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3]]);
    let mut words = buf.chunks_exact_mut(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        word.copy_from_slice(&(u64::from_ne_bytes(w) ^ wide).to_ne_bytes());
    }
    // The rest starts at a multiple of eight, so the mask starts over with its first byte.
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
}

/// A server frame (unmasked, final) of `opcode` carrying `payload`.
fn encode_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let (header, header_len) = frame_header(opcode, payload.len());
    let mut frame = Vec::with_capacity(header_len + payload.len());
    frame.extend_from_slice(&header[..header_len]);
    frame.extend_from_slice(payload);
    frame
}

/// The header of a final, unmasked frame of `len` bytes, and how long it is.
fn frame_header(opcode: u8, len: usize) -> ([u8; 10], usize) {
    let mut header = [0u8; 10];
    header[0] = 0x80 | opcode;
    match len {
        n @ 0..=125 => {
            header[1] = n as u8;
            (header, 2)
        }
        n @ 126..=0xFFFF => {
            header[1] = 126;
            header[2..4].copy_from_slice(&(n as u16).to_be_bytes());
            (header, 4)
        }
        n => {
            header[1] = 127;
            header[2..10].copy_from_slice(&(n as u64).to_be_bytes());
            (header, 10)
        }
    }
}

#[cfg(test)]
#[path = "ws_tests.rs"]
mod tests;
