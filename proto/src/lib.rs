//! `sotto-proto`: the wire formats of Sotto, with no I/O.
//!
//! Modules:
//! - [`limits`]: every size on the wire, as named constants, and why each is what it is.
//! - [`cell`]: the fixed-size cell that carries every frame in both directions.
//! - [`frame`]: relay frames: client requests, server responses and pushes.
//! - [`ids`]: mailbox and blob ids, keys, signatures, envelopes and blob chunks.
//! - [`auth`]: what an owner or sender signs, bound to one connection's nonce.
//! - [`attachment`]: the blob format of files: STREAM segments, Padmé, digest.
//! - [`address`]: relay addresses `sotto://HOST:PORT#PIN` and SPKI pins.
//! - [`error`]: decoding errors and the error codes the relay sends.
//!
//! Decoding is total: every byte string decodes to a value or a typed error, never a
//! panic; trailing bytes and non-zero padding are rejected.
#![forbid(unsafe_code)]

pub mod address;
pub mod attachment;
pub mod auth;
pub mod cell;
mod codec;
pub mod error;
pub mod frame;
pub mod ids;
pub mod limits;

pub use address::{AddressError, Host, Pin, RelayAddress};
pub use error::{DecodeError, ErrorCode};
pub use frame::{ClientFrame, Push, Request, Response, ServerFrame};
pub use ids::{BlobReadId, BlobWriteId, Chunk, Envelope, Nonce, PublicKey, RecvId, SendId, Signature};
