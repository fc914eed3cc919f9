//! Two parties talking over Sotto's real stores (sled, encrypted, reopened from disk) while the
//! network loses, reorders and duplicates their messages, in the style of libsignal's own
//! interaction fuzzer: the fuzzer's bytes choose who sends, what arrives, and who restarts.
//! Every delivered message must decrypt exactly once to what was sent, losses must not stop
//! later messages, and sessions must stay post-quantum (see `two_parties.rs`).
#![no_main]

mod two_parties;

use libfuzzer_sys::fuzz_target;
use sotto_client::store::signal::KyberKind;
use two_parties::{Action, Interaction, Side};

/// Longer inputs are cut here: a run costs a store commit per message, and ratchet coverage
/// comes from the order of actions more than from their number.
const MAX_ACTIONS: usize = 512;
/// Shorter inputs are repeated up to this many actions.
const MIN_ACTIONS: usize = 32;

fuzz_target!(|data: &[u8]| {
    // The first byte seeds the randomness and picks the kind of ML-KEM prekey; every other
    // byte is an action. (A u64 seed would spend the first eight bytes of every input, and
    // libFuzzer starts with short inputs.)
    let Some((&seed, actions)) = data.split_first() else { return };
    let kyber = if seed & 1 == 0 { KyberKind::OneTime } else { KyberKind::LastResort };
    let scratch = scratch_dir();
    let mut conversation = Interaction::new(scratch.path(), u64::from(seed), kyber);
    // Short inputs repeat: libFuzzer starts with inputs of a few bytes and lengthens them
    // slowly at this speed, and a repeated pattern (say: send, deliver, reply, deliver) already
    // walks the ratchet through many chains.
    let steps = actions.len().clamp(MIN_ACTIONS, MAX_ACTIONS);
    for &byte in actions.iter().cycle().take(steps) {
        conversation.apply(action(byte));
    }
    conversation.finish();
});

/// One byte, one action: the low bit picks the party, the rest the action, weighted towards
/// sending and delivering in order so that conversations get somewhere.
fn action(byte: u8) -> Action {
    let side = if byte & 1 == 0 { Side::Alice } else { Side::Bob };
    match byte >> 1 {
        op @ 0..=47 => Action::Send(side, op * 5),
        48..=79 => Action::Deliver(side, 0),
        80..=87 => Action::DeliverLatest(side),
        op @ 88..=95 => Action::Deliver(side, op - 87),
        op @ 96..=105 => Action::Drop(side, op - 96),
        op @ 106..=115 => Action::Replay(side, op - 106),
        _ => Action::Restart(side),
    }
}

/// Every commit flushes sled to disk: in memory when possible, so a run costs CPU, not fsyncs.
fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    let mut builder = tempfile::Builder::new();
    builder.prefix("sotto-interaction-");
    if shm.is_dir() { builder.tempdir_in(shm) } else { builder.tempdir() }.unwrap()
}
