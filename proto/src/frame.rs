//! Relay frames: what a client asks ([`ClientFrame`]) and what a relay answers or pushes
//! ([`ServerFrame`]).
//!
//! ```text
//! client body = corr:u32be tag:u8 fields
//! server body = tag:u8 fields            ; responses carry corr:u32be first
//! ```
//!
//! Fields are fixed-size except blob chunks (`len:u16be data`). A request that carries a
//! signature carries it last, so what is signed is exactly the encoding before it
//! (see [`crate::auth`]). Every tag and field is listed in `docs/PROTOCOL.md`.

use crate::cell;
use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, ErrorCode};
use crate::ids::{BlobReadId, BlobWriteId, Chunk, Envelope, Nonce, PublicKey, RecvId, SendId, Signature};
use crate::limits::{BLOB_GET_MAX_CHUNKS, ENVELOPE_SIZE, MAX_BLOB_SIZE};

/// A request from a client, with the correlation id its response will carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFrame {
    /// Chosen by the client; echoed in the response. Lets requests be pipelined.
    pub corr: u32,
    /// What is asked.
    pub request: Request,
}

/// Everything a client can ask of a relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Keeps the connection alive; answered by [`Response::Pong`].
    Ping,
    /// Creates a mailbox owned by `owner_key`; the signature proves possession.
    CreateMailbox { owner_key: PublicKey, signature: Signature },
    /// Locks a mailbox so only `sender_key` may send into it. Owner-signed.
    Secure { recv_id: RecvId, sender_key: PublicKey, signature: Signature },
    /// Queues an envelope. Once the mailbox is secured, signed by its sender key.
    Send { send_id: SendId, envelope: Envelope, signature: Option<Signature> },
    /// Starts delivery of queued and new envelopes on this connection. Owner-signed.
    Subscribe { recv_id: RecvId, signature: Signature },
    /// Deletes a delivered envelope from the queue. Owner-signed.
    Ack { recv_id: RecvId, seq: u64, signature: Signature },
    /// Deletes a mailbox and everything queued in it. Owner-signed.
    DeleteMailbox { recv_id: RecvId, signature: Signature },
    /// Starts a blob upload of `size` bytes.
    BlobCreate { size: u64 },
    /// Uploads the chunk at `offset`; offsets must follow each other. Answered only if
    /// `answer` is set, the chunk completes the blob, or the put is refused: a client
    /// asks for one answer per run of chunks instead of one per chunk.
    BlobPut { write_id: BlobWriteId, offset: u64, answer: bool, data: Chunk },
    /// Asks how many bytes of an upload the relay holds (to resume).
    BlobStatus { write_id: BlobWriteId },
    /// Downloads `count` chunks (1 to [`BLOB_GET_MAX_CHUNKS`]) of a completed blob,
    /// from `offset` on: answered by one `BlobData` per chunk, in order, or by fewer
    /// followed by one `Error` where the relay had to stop.
    BlobGet { read_id: BlobReadId, offset: u64, count: u16 },
}

/// A frame from a relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFrame {
    /// The first frame on every connection: the nonce that signatures on it must cover.
    Hello { nonce: Nonce },
    /// The answer to the request with the same correlation id.
    Response { corr: u32, response: Response },
    /// Something the client did not ask for just now: a delivery, or the end of one.
    Push(Push),
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Done (for a `Send`: durably stored).
    Ok,
    /// The answer to `Ping`.
    Pong,
    /// Refused; nothing was changed.
    Error(ErrorCode),
    /// The new mailbox's two ids.
    MailboxCreated { recv_id: RecvId, send_id: SendId },
    /// The new blob's two capabilities.
    BlobCreated { write_id: BlobWriteId, read_id: BlobReadId },
    /// How many of the blob's `size` bytes the relay holds.
    BlobStatus { received: u64, size: u64 },
    /// A chunk of a blob of `size` bytes, starting at `offset`.
    BlobData { offset: u64, size: u64, data: Chunk },
}

/// Frames the relay sends unasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Push {
    /// A queued envelope; stays queued until acknowledged by `seq`.
    Deliver { recv_id: RecvId, seq: u64, envelope: Envelope },
    /// Delivery for this mailbox stopped on this connection (another connection
    /// subscribed, or the mailbox was deleted).
    Unsubscribed { recv_id: RecvId },
}

mod tag {
    pub const PING: u8 = 0x01;
    pub const CREATE_MAILBOX: u8 = 0x02;
    pub const SECURE: u8 = 0x03;
    pub const SEND: u8 = 0x04;
    pub const SUBSCRIBE: u8 = 0x05;
    pub const ACK: u8 = 0x06;
    pub const DELETE_MAILBOX: u8 = 0x07;
    pub const BLOB_CREATE: u8 = 0x08;
    pub const BLOB_PUT: u8 = 0x09;
    pub const BLOB_STATUS: u8 = 0x0A;
    pub const BLOB_GET: u8 = 0x0B;

    pub const HELLO: u8 = 0x80;
    pub const R_OK: u8 = 0x81;
    pub const R_PONG: u8 = 0x82;
    pub const R_ERROR: u8 = 0x83;
    pub const R_MAILBOX_CREATED: u8 = 0x84;
    pub const R_BLOB_CREATED: u8 = 0x85;
    pub const R_BLOB_STATUS: u8 = 0x86;
    pub const R_BLOB_DATA: u8 = 0x87;
    pub const P_DELIVER: u8 = 0xC0;
    pub const P_UNSUBSCRIBED: u8 = 0xC1;
}

const FLAG_ABSENT: u8 = 0;
const FLAG_PRESENT: u8 = 1;

impl Request {
    /// Sets the request's signature (for a send: its sender signature). Returns `false`
    /// for requests that carry none.
    pub fn set_signature(&mut self, s: Signature) -> bool {
        match self {
            Self::CreateMailbox { signature, .. }
            | Self::Secure { signature, .. }
            | Self::Subscribe { signature, .. }
            | Self::Ack { signature, .. }
            | Self::DeleteMailbox { signature, .. } => *signature = s,
            Self::Send { signature, .. } => *signature = Some(s),
            Self::Ping
            | Self::BlobCreate { .. }
            | Self::BlobPut { .. }
            | Self::BlobStatus { .. }
            | Self::BlobGet { .. } => return false,
        }
        true
    }

    /// Writes the tag and every field except the trailing signature.
    pub(crate) fn encode_unsigned(&self, w: &mut Writer) {
        match self {
            Self::Ping => {
                w.u8(tag::PING);
            }
            Self::CreateMailbox { owner_key, .. } => {
                w.u8(tag::CREATE_MAILBOX).bytes(&owner_key.0);
            }
            Self::Secure { recv_id, sender_key, .. } => {
                w.u8(tag::SECURE).bytes(&recv_id.0).bytes(&sender_key.0);
            }
            Self::Send { send_id, envelope, .. } => {
                w.u8(tag::SEND).bytes(&send_id.0).bytes(envelope.as_bytes());
            }
            Self::Subscribe { recv_id, .. } => {
                w.u8(tag::SUBSCRIBE).bytes(&recv_id.0);
            }
            Self::Ack { recv_id, seq, .. } => {
                w.u8(tag::ACK).bytes(&recv_id.0).u64(*seq);
            }
            Self::DeleteMailbox { recv_id, .. } => {
                w.u8(tag::DELETE_MAILBOX).bytes(&recv_id.0);
            }
            Self::BlobCreate { size } => {
                w.u8(tag::BLOB_CREATE).u64(*size);
            }
            Self::BlobPut { write_id, offset, answer, data } => {
                // A chunk is at most BLOB_CHUNK_SIZE, which fits u16 (checked in `limits`).
                w.u8(tag::BLOB_PUT)
                    .bytes(&write_id.0)
                    .u64(*offset)
                    .u8(if *answer { FLAG_PRESENT } else { FLAG_ABSENT })
                    .u16(data.len() as u16)
                    .bytes(data.as_bytes());
            }
            Self::BlobStatus { write_id } => {
                w.u8(tag::BLOB_STATUS).bytes(&write_id.0);
            }
            Self::BlobGet { read_id, offset, count } => {
                w.u8(tag::BLOB_GET).bytes(&read_id.0).u64(*offset).u16(*count);
            }
        }
    }

    fn encode_signature(&self, w: &mut Writer) {
        match self {
            Self::CreateMailbox { signature, .. }
            | Self::Secure { signature, .. }
            | Self::Subscribe { signature, .. }
            | Self::Ack { signature, .. }
            | Self::DeleteMailbox { signature, .. } => {
                w.bytes(&signature.0);
            }
            Self::Send { signature: None, .. } => {
                w.u8(FLAG_ABSENT);
            }
            Self::Send { signature: Some(s), .. } => {
                w.u8(FLAG_PRESENT).bytes(&s.0);
            }
            Self::Ping
            | Self::BlobCreate { .. }
            | Self::BlobPut { .. }
            | Self::BlobStatus { .. }
            | Self::BlobGet { .. } => {}
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let t = r.u8()?;
        let req = match t {
            tag::PING => Self::Ping,
            tag::CREATE_MAILBOX => {
                Self::CreateMailbox { owner_key: PublicKey(r.array()?), signature: Signature(r.array()?) }
            }
            tag::SECURE => Self::Secure {
                recv_id: RecvId(r.array()?),
                sender_key: PublicKey(r.array()?),
                signature: Signature(r.array()?),
            },
            tag::SEND => {
                let send_id = SendId(r.array()?);
                let envelope = Envelope::from_slice(r.take(ENVELOPE_SIZE)?)?;
                let signature = match r.u8()? {
                    FLAG_ABSENT => None,
                    FLAG_PRESENT => Some(Signature(r.array()?)),
                    f => return Err(DecodeError::BadFlag(f)),
                };
                Self::Send { send_id, envelope, signature }
            }
            tag::SUBSCRIBE => Self::Subscribe { recv_id: RecvId(r.array()?), signature: Signature(r.array()?) },
            tag::ACK => Self::Ack { recv_id: RecvId(r.array()?), seq: r.u64()?, signature: Signature(r.array()?) },
            tag::DELETE_MAILBOX => {
                Self::DeleteMailbox { recv_id: RecvId(r.array()?), signature: Signature(r.array()?) }
            }
            tag::BLOB_CREATE => {
                let size = r.u64()?;
                if size > MAX_BLOB_SIZE {
                    return Err(DecodeError::BlobTooLarge(size));
                }
                Self::BlobCreate { size }
            }
            tag::BLOB_PUT => {
                let write_id = BlobWriteId(r.array()?);
                let offset = r.u64()?;
                let answer = match r.u8()? {
                    FLAG_ABSENT => false,
                    FLAG_PRESENT => true,
                    f => return Err(DecodeError::BadFlag(f)),
                };
                Self::BlobPut { write_id, offset, answer, data: read_chunk(r)? }
            }
            tag::BLOB_STATUS => Self::BlobStatus { write_id: BlobWriteId(r.array()?) },
            tag::BLOB_GET => {
                let read_id = BlobReadId(r.array()?);
                let offset = r.u64()?;
                let count = r.u16()?;
                if count == 0 || count > BLOB_GET_MAX_CHUNKS {
                    return Err(DecodeError::ChunkCount(count));
                }
                Self::BlobGet { read_id, offset, count }
            }
            t => return Err(DecodeError::UnknownTag(t)),
        };
        Ok(req)
    }
}

/// A frame body written by `encode`.
fn body_of(encode: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut w = Writer::new();
    encode(&mut w);
    w.into_inner()
}

/// A cell around the frame body written by `encode`, built in place.
fn cell_of(encode: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut w = cell::writer();
    encode(&mut w);
    cell::finish(w)
}

fn read_chunk(r: &mut Reader<'_>) -> Result<Chunk, DecodeError> {
    let len = usize::from(r.u16()?);
    Chunk::new(r.take(len)?.to_vec())
}

impl ClientFrame {
    /// The frame's body, before it is wrapped into a cell.
    pub fn encode_body(&self) -> Vec<u8> {
        body_of(|w| self.encode_into(w))
    }

    /// The frame as one cell, ready for the wire.
    pub fn to_cell(&self) -> Vec<u8> {
        cell_of(|w| self.encode_into(w))
    }

    fn encode_into(&self, w: &mut Writer) {
        w.u32(self.corr);
        self.request.encode_unsigned(w);
        self.request.encode_signature(w);
    }

    /// Parses a frame body (the cell layer already removed).
    pub fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let corr = r.u32()?;
        let request = Request::decode(&mut r)?;
        r.finish()?;
        Ok(Self { corr, request })
    }

    /// Parses one cell from the wire.
    pub fn from_cell(cell: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_body(cell::unwrap(cell)?)
    }
}

impl ServerFrame {
    /// The frame's body, before it is wrapped into a cell.
    pub fn encode_body(&self) -> Vec<u8> {
        body_of(|w| self.encode_into(w))
    }

    /// The frame as one cell, ready for the wire.
    pub fn to_cell(&self) -> Vec<u8> {
        cell_of(|w| self.encode_into(w))
    }

    fn encode_into(&self, w: &mut Writer) {
        match self {
            Self::Hello { nonce } => {
                w.u8(tag::HELLO).bytes(&nonce.0);
            }
            Self::Response { corr, response } => encode_response(w, *corr, response),
            Self::Push(Push::Deliver { recv_id, seq, envelope }) => {
                w.u8(tag::P_DELIVER).bytes(&recv_id.0).u64(*seq).bytes(envelope.as_bytes());
            }
            Self::Push(Push::Unsubscribed { recv_id }) => {
                w.u8(tag::P_UNSUBSCRIBED).bytes(&recv_id.0);
            }
        }
    }

    /// Parses a frame body (the cell layer already removed).
    pub fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let t = r.u8()?;
        let frame = match t {
            tag::HELLO => Self::Hello { nonce: Nonce(r.array()?) },
            tag::P_DELIVER => Self::Push(Push::Deliver {
                recv_id: RecvId(r.array()?),
                seq: r.u64()?,
                envelope: Envelope::from_slice(r.take(ENVELOPE_SIZE)?)?,
            }),
            tag::P_UNSUBSCRIBED => Self::Push(Push::Unsubscribed { recv_id: RecvId(r.array()?) }),
            t => {
                let corr = r.u32()?;
                Self::Response { corr, response: decode_response(t, &mut r)? }
            }
        };
        r.finish()?;
        Ok(frame)
    }

    /// Parses one cell from the wire.
    pub fn from_cell(cell: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_body(cell::unwrap(cell)?)
    }
}

fn encode_response(w: &mut Writer, corr: u32, response: &Response) {
    match response {
        Response::Ok => {
            w.u8(tag::R_OK).u32(corr);
        }
        Response::Pong => {
            w.u8(tag::R_PONG).u32(corr);
        }
        Response::Error(code) => {
            w.u8(tag::R_ERROR).u32(corr).u16(code.to_u16());
        }
        Response::MailboxCreated { recv_id, send_id } => {
            w.u8(tag::R_MAILBOX_CREATED).u32(corr).bytes(&recv_id.0).bytes(&send_id.0);
        }
        Response::BlobCreated { write_id, read_id } => {
            w.u8(tag::R_BLOB_CREATED).u32(corr).bytes(&write_id.0).bytes(&read_id.0);
        }
        Response::BlobStatus { received, size } => {
            w.u8(tag::R_BLOB_STATUS).u32(corr).u64(*received).u64(*size);
        }
        Response::BlobData { offset, size, data } => {
            // A chunk is at most BLOB_CHUNK_SIZE, which fits u16 (checked in `limits`).
            w.u8(tag::R_BLOB_DATA).u32(corr).u64(*offset).u64(*size).u16(data.len() as u16).bytes(data.as_bytes());
        }
    }
}

fn decode_response(t: u8, r: &mut Reader<'_>) -> Result<Response, DecodeError> {
    Ok(match t {
        tag::R_OK => Response::Ok,
        tag::R_PONG => Response::Pong,
        tag::R_ERROR => Response::Error(ErrorCode::from_u16(r.u16()?)),
        tag::R_MAILBOX_CREATED => Response::MailboxCreated { recv_id: RecvId(r.array()?), send_id: SendId(r.array()?) },
        tag::R_BLOB_CREATED => {
            Response::BlobCreated { write_id: BlobWriteId(r.array()?), read_id: BlobReadId(r.array()?) }
        }
        tag::R_BLOB_STATUS => Response::BlobStatus { received: r.u64()?, size: r.u64()? },
        tag::R_BLOB_DATA => Response::BlobData { offset: r.u64()?, size: r.u64()?, data: read_chunk(r)? },
        t => return Err(DecodeError::UnknownTag(t)),
    })
}
