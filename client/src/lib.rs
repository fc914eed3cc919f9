//! `sotto-client`: the Sotto client library.
//!
//! Modules:
//! - [`store`]: the encrypted profile at rest (Argon2id-wrapped master key, sealed
//!   records) and libsignal's stores on top of it.
#![forbid(unsafe_code)]

pub mod store;
