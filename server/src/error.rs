//! The relay library's error type.

use thiserror::Error;

use crate::store::StoreError;

/// Why the relay could not start or keep running. Per-request failures are not here:
/// they become [`sotto_proto::ErrorCode`]s on the wire and the connection goes on.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The configuration file is unreadable or invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// The relay's key or certificate could not be made, read or written.
    #[error("relay identity: {0}")]
    Identity(String),
    /// TLS could not be set up.
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A socket or file operation failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}
