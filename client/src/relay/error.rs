//! Why a relay link failed, in words a user can act on.

use sotto_proto::ErrorCode;
use thiserror::Error;

/// A failure talking to a relay.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The relay could not be reached (no network, wrong address, relay down, blocked).
    #[error("cannot reach the relay: {0}")]
    Unreachable(String),
    /// The proxy could not be used.
    #[error("the proxy failed: {0}")]
    Proxy(String),
    /// The relay's key does not match the pin in its address: possibly an impostor.
    #[error("the relay's key does not match its address (possible interception); not connecting")]
    WrongPin,
    /// TLS failed for another reason.
    #[error("secure connection to the relay failed: {0}")]
    Tls(String),
    /// The HTTP upgrade to WebSocket failed.
    #[error("the relay did not accept the connection: {0}")]
    Handshake(String),
    /// Connecting took longer than allowed.
    #[error("the relay did not answer in time")]
    Timeout,
    /// The relay sent something that is not a valid frame.
    #[error("the relay sent an invalid message: {0}")]
    Protocol(String),
    /// The connection closed.
    #[error("the connection to the relay closed")]
    Closed,
    /// The relay refused a request.
    #[error("{0}")]
    Refused(ErrorCode),
}
