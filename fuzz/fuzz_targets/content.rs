//! Any bytes decode to a `Content` or an error (they come from a peer, inside the ratchet,
//! so a malicious contact controls them); a decoded `Content` re-encodes to bytes that decode
//! to the same `Content`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_client::wire::content::{decode_content, encode_content};

fuzz_target!(|data: &[u8]| {
    let Ok(content) = decode_content(data) else { return };
    // `decode_content` checked what `encode_content` checks, so a decoded value re-encodes.
    let bytes = encode_content(&content).unwrap();
    assert_eq!(decode_content(&bytes).unwrap(), content);
    // Canonical protobuf: encoding is a fixed point even when the input was not canonical.
    assert_eq!(encode_content(&decode_content(&bytes).unwrap()).unwrap(), bytes);
});
