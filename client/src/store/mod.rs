//! The encrypted profile at rest (DESIGN §6) and libsignal's stores on top of it (§5, §8).
//!
//! - [`keys`]: the key hierarchy — a random master key wrapped under Argon2id(passphrase),
//!   and HKDF sub-keys for sealing values and hashing record keys.
//! - [`db`]: [`EncryptedStore`], a sled database whose every value is sealed with
//!   XChaCha20-Poly1305 bound to its place, and [`Txn`], an atomic multi-table write.
//! - [`signal`]: libsignal's six store traits over one [`Txn`], with Sotto's policies
//!   (one-time Kyber deletion, pinned identities, PQXDH + SPQR required).
//! - [`keyring`] and [`epochs`]: epoch keys in a small file rewritten in place, and records
//!   sealed under them until a moment, so expiry is cryptographic (sled keeps deleted bytes);
//!   the ratchet tables ([`db::ROLLING_TABLES`]) are sealed under a key of the day, rolled
//!   daily, so the old versions sled keeps of them die too.
//! - `header`: the header file with the wrapped master key and the duress slot; [`wipe`]
//!   destroys a profile (duress passphrase, `sotto panic`).
//! - [`Clock`]: the clock expiry follows, which tests move forward.
//! - [`StoreError`]: the one error type.

pub mod clock;
pub mod db;
pub mod epochs;
mod error;
mod header;
pub mod keyring;
pub mod keys;
pub mod signal;
pub mod wipe;

#[cfg(test)]
mod forensic_tests;

pub use clock::Clock;
pub use db::{EncryptedStore, Plain, Table, Txn};
pub use error::{StoreCallbackError, StoreError};
pub use header::{HEADER_FILE, HEADER_LEN};
pub use keyring::{KEYRING_FILE, KEYRING_LEN};
pub use keys::KdfParams;
