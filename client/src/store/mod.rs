//! The encrypted profile at rest (DESIGN §6) and libsignal's stores on top of it (§5, §8).
//!
//! - [`keys`]: the key hierarchy — a random master key wrapped under Argon2id(passphrase),
//!   and HKDF sub-keys for sealing values and hashing record keys.
//! - [`db`]: [`EncryptedStore`], a sled database whose every value is sealed with
//!   XChaCha20-Poly1305 bound to its place, and [`Txn`], an atomic multi-table write.
//! - [`signal`]: libsignal's six store traits over one [`Txn`], with Sotto's policies
//!   (one-time Kyber deletion, pinned identities, PQXDH + SPQR required).
//! - [`StoreError`]: the one error type.
//!
//! Not yet here: per-conversation epoch keys for cryptographic deletion of messages, and the
//! duress passphrase (both in DESIGN §6).

pub mod db;
mod error;
mod header;
pub mod keys;
pub mod signal;

#[cfg(test)]
mod forensic_tests;

pub use db::{EncryptedStore, Plain, Table, Txn};
pub use error::{StoreCallbackError, StoreError};
pub use header::HEADER_FILE;
pub use keys::KdfParams;
