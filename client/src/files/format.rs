//! The attachment format lives in `sotto_proto::attachment` (where it is documented):
//! it is a wire format, and there it is compiled with optimizations even in debug builds,
//! so tests that move hundreds of megabytes stay fast. Re-exported here, with a fresh key.

pub use sotto_proto::attachment::*;

/// A fresh random file key.
pub fn generate_key() -> FileKey {
    let mut k = [0u8; KEY_LEN];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut k);
    let key = FileKey::from_bytes(k);
    zeroize::Zeroize::zeroize(&mut k);
    key
}
