//! Opening any 16,256 bytes as an envelope gives a body or an error, never a panic (the relay,
//! or anyone who learns a send id, chooses them); sealing any body of any kind opens to the
//! same body and kind.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sotto_client::wire::WireError;
use sotto_client::wire::envelope::{BodyKind, EnvelopeKey, MAX_BODY_LEN, open, seal};
use sotto_proto::limits::ENVELOPE_SIZE;
use sotto_proto::{Envelope, SendId};

fuzz_target!(|data: &[u8]| {
    let key = EnvelopeKey::from_bytes(std::array::from_fn(|i| i as u8));
    let send_id = SendId(std::array::from_fn(|i| 0xA0 + i as u8));

    // Forged envelopes: without the key nothing authenticates, so this exercises the AEAD
    // check and the length handling around it.
    let mut forged = data.to_vec();
    forged.resize(ENVELOPE_SIZE, 0);
    assert_eq!(open(&key, &send_id, &Envelope::from_slice(&forged).unwrap()), Err(WireError::Tampered));

    // Genuine envelopes: the first byte picks the kind (and the nonce seed), the rest is
    // the body, truncated to what one envelope holds.
    let Some((&selector, body)) = data.split_first() else { return };
    let kind = match selector % 3 {
        0 => BodyKind::PreKey,
        1 => BodyKind::Signal,
        _ => BodyKind::Cover,
    };
    let body = &body[..body.len().min(MAX_BODY_LEN)];
    let mut rng = StdRng::seed_from_u64(u64::from(selector));
    let envelope = seal(&key, &send_id, kind, body, &mut rng).unwrap();
    assert_eq!(envelope.as_bytes().len(), ENVELOPE_SIZE);
    assert_eq!(open(&key, &send_id, &envelope).unwrap(), (kind, body.to_vec()));

    // Moved to another mailbox, it must not open.
    let mut other = send_id;
    other.0[0] ^= 1;
    assert!(open(&key, &other, &envelope).is_err());
});
