//! The two-party interaction of the `interaction` fuzz target as a property test in the normal
//! suite: two profiles on real sled stores, one PQXDH session, and random sequences of sends,
//! deliveries in and out of order, losses, replays and restarts (stores closed and reopened
//! from disk). The conversation and the model it is checked against live in
//! `fuzz/fuzz_targets/two_parties.rs`, shared with the fuzzer so that both check the same
//! invariants: every delivered message decrypts exactly once to what was sent, losses never
//! stop later messages, and sessions stay post-quantum. The fuzzer explores far longer runs;
//! this keeps every `cargo test` exercising them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../fuzz/fuzz_targets/two_parties.rs"]
mod two_parties;

use proptest::prelude::*;
use sotto_client::store::signal::KyberKind;
use two_parties::Action::{Deliver, DeliverLatest, Drop, Replay, Restart, Send};
use two_parties::Side::{Alice, Bob};
use two_parties::{Action, Interaction, Side};

/// Runs `actions` from a fresh pair of profiles, then `finish` (everything left is delivered,
/// then one message each way must arrive). Returns what each action returned.
fn run(seed: u64, kyber: KyberKind, actions: &[Action]) -> Vec<bool> {
    let tmp = tempfile::tempdir().unwrap();
    let mut conversation = Interaction::new(tmp.path(), seed, kyber);
    let read = actions.iter().map(|&action| conversation.apply(action)).collect();
    conversation.finish();
    read
}

/// One round trip that leaves older messages to Bob in flight: each step of it gives both
/// parties a new ratchet chain.
const ROUND_TRIP: [Action; 4] = [Send(Bob, 3), Deliver(Alice, 0), Send(Alice, 3), DeliverLatest(Bob)];

#[test]
fn every_action_in_one_conversation() {
    for kyber in [KyberKind::OneTime, KyberKind::LastResort] {
        let actions = [
            Send(Bob, 5), // refused: Bob has no session yet
            Send(Alice, 0),
            Send(Alice, 200),
            Send(Alice, 7),
            Deliver(Bob, 1), // the second PreKey message first
            Replay(Bob, 0),
            Drop(Bob, 1),
            Restart(Bob),
            Deliver(Bob, 0),
            Send(Bob, 9),
            Send(Bob, 10),
            Restart(Alice),
            DeliverLatest(Alice),
            Deliver(Alice, 0),
            Replay(Alice, 1),
            Replay(Bob, 0),
            Send(Alice, 1),
            Deliver(Bob, 0),
        ];
        let read = run(7, kyber, &actions);
        let delivered: Vec<bool> = actions
            .iter()
            .zip(read)
            .filter(|(a, _)| matches!(a, Deliver(..) | DeliverLatest(_)))
            .map(|(_, r)| r)
            .collect();
        assert_eq!(delivered, [true; 5]);
    }
}

#[test]
fn losing_the_first_messages_does_not_stop_the_session() {
    let actions = [Send(Alice, 1), Send(Alice, 2), Drop(Bob, 0), Drop(Bob, 0), Send(Alice, 3)];
    run(1, KyberKind::OneTime, &actions);
}

/// libsignal keeps the last five of a peer's sending chains. A message held back while four
/// round trips go by is on the oldest chain still kept, so it arrives.
#[test]
fn a_message_held_back_four_round_trips_still_arrives() {
    let mut actions = vec![Send(Alice, 1), Deliver(Bob, 0), Send(Alice, 2)];
    for _ in 0..4 {
        actions.extend(ROUND_TRIP);
    }
    actions.push(Deliver(Bob, 0));
    assert_eq!(run(2, KyberKind::OneTime, &actions).last(), Some(&true));
}

/// One round trip more and its chain is gone: the model predicts that, and the delivery must
/// fail without touching the stored session (checked inside `apply`).
#[test]
fn a_message_held_back_five_round_trips_is_unreadable() {
    let mut actions = vec![Send(Alice, 1), Deliver(Bob, 0), Send(Alice, 2)];
    for _ in 0..5 {
        actions.extend(ROUND_TRIP);
    }
    actions.extend([Deliver(Bob, 0), Replay(Bob, 0)]);
    let read = run(3, KyberKind::LastResort, &actions);
    assert!(!read[read.len() - 2]);
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Alice), Just(Bob)]
}

/// Weighted towards sending and delivering in order, so that conversations get somewhere.
fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        5 => (side(), any::<u8>()).prop_map(|(s, len)| Send(s, len)),
        5 => side().prop_map(|s| Deliver(s, 0)),
        1 => (side(), 1u8..8).prop_map(|(s, pick)| Deliver(s, pick)),
        1 => side().prop_map(DeliverLatest),
        1 => (side(), 0u8..8).prop_map(|(s, pick)| Drop(s, pick)),
        2 => (side(), 0u8..8).prop_map(|(s, pick)| Replay(s, pick)),
        1 => side().prop_map(Restart),
    ]
}

/// A single action, or a turn in the conversation (one party sends, the other receives):
/// turns make the ratchet step often enough for 40 actions to reach several chains.
fn step() -> impl Strategy<Value = Vec<Action>> {
    prop_oneof![
        2 => action().prop_map(|a| vec![a]),
        3 => (side(), any::<u8>(), any::<bool>()).prop_map(|(s, len, overtake)| {
            let other = if s == Alice { Bob } else { Alice };
            vec![Send(s, len), if overtake { DeliverLatest(other) } else { Deliver(other, 0) }]
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_conversations_keep_every_invariant(
        seed: u64,
        last_resort: bool,
        steps in proptest::collection::vec(step(), 8..=20),
    ) {
        let actions: Vec<Action> = steps.concat();
        let kyber = if last_resort { KyberKind::LastResort } else { KyberKind::OneTime };
        run(seed, kyber, &actions);
    }
}
