//! What an owner or a sender signs.
//!
//! A signature covers a fixed context string, the connection's server nonce and the
//! request's encoding up to (not including) the signature. The nonce is fresh for every
//! connection, so a signature seen once cannot be replayed on another connection, and
//! the context string keeps these signatures from meaning anything elsewhere.

use crate::codec::Writer;
use crate::frame::Request;
use crate::ids::Nonce;

/// Domain separation for request signatures.
pub const SIGNATURE_CONTEXT: &[u8] = b"sotto relay v1 request\0";

/// The bytes to sign (or verify) for `request` on the connection whose hello carried
/// `nonce`. Requests that carry no signature (ping, blob operations) return `None`.
pub fn signed_payload(nonce: &Nonce, request: &Request) -> Option<Vec<u8>> {
    match request {
        Request::CreateMailbox { .. }
        | Request::Secure { .. }
        | Request::Send { .. }
        | Request::Subscribe { .. }
        | Request::Ack { .. }
        | Request::DeleteMailbox { .. } => {}
        Request::Ping
        | Request::BlobCreate { .. }
        | Request::BlobPut { .. }
        | Request::BlobStatus { .. }
        | Request::BlobGet { .. } => return None,
    }
    let mut w = Writer::new();
    w.bytes(SIGNATURE_CONTEXT).bytes(&nonce.0);
    request.encode_unsigned(&mut w);
    Some(w.into_inner())
}
