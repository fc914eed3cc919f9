//! `sotto-client`: the Sotto client library.
//!
//! Modules:
//! - [`relay`]: links to relays: pinned TLS 1.3, WebSocket cells, requests and pushes.
//! - [`store`]: the encrypted profile at rest (Argon2id-wrapped master key, sealed
//!   records) and libsignal's stores on top of it.
#![forbid(unsafe_code)]

pub mod relay;
pub mod store;
