//! `sotto-client`: the Sotto client library.
//!
//! Modules:
//! - [`app`]: the client application: profile records, invites, sessions, sending,
//!   receiving, safety numbers.
//! - [`control`]: the local socket through which `sotto` processes share one profile.
//! - [`files`]: files and images: the blob format, uploads, downloads, safe names.
//! - [`relay`]: links to relays: pinned TLS 1.3, WebSocket cells, requests and pushes.
//! - [`store`]: the encrypted profile at rest (Argon2id-wrapped master key, sealed
//!   records) and libsignal's stores on top of it.
//! - [`wire`]: end-to-end formats: sealed envelopes, the `Content` inside the ratchet,
//!   invite links.
#![forbid(unsafe_code)]

pub mod app;
pub mod control;
pub mod files;
pub mod relay;
pub mod store;
pub mod wire;
