#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::wire::invite::INVITE_PREFIX;
use crate::wire::invite::tests::invite as sample_invite;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn short(invite: &Invite) -> (ShortInvite, Vec<u8>) {
    let (blob, key) = ShortInvite::seal(invite, &mut rand::rng()).unwrap();
    let relay = invite.relay.clone();
    (ShortInvite::new(relay, BlobReadId([9; 24]), key), blob)
}

#[test]
fn a_short_link_round_trips_and_opens_its_blob_to_the_same_invite() {
    let invite = sample_invite();
    let (s, blob) = short(&invite);
    assert_eq!(blob.len(), INVITE_BLOB_SIZE);
    let link = s.to_link();
    assert!(link.starts_with(INVITE_PREFIX));
    // Small enough for a QR code that fits a terminal.
    assert!(link.len() < 200, "short link is {} characters", link.len());
    let InviteLink::Short(parsed) = InviteLink::parse(&format!("  <{link}>\n")).unwrap() else {
        panic!("a short link parsed as a full one")
    };
    assert_eq!(parsed.relay, invite.relay);
    assert_eq!(parsed.read_id, BlobReadId([9; 24]));
    let opened = parsed.open(&blob).unwrap();
    assert_eq!(opened.to_link().unwrap(), invite.to_link().unwrap());
}

#[test]
fn full_links_still_parse_as_full() {
    let invite = sample_invite();
    let InviteLink::Full(parsed) = InviteLink::parse(&invite.to_link().unwrap()).unwrap() else {
        panic!("a full link parsed as a short one")
    };
    assert_eq!(parsed.to_link().unwrap(), invite.to_link().unwrap());
}

#[test]
fn any_change_to_the_blob_or_another_key_is_tampered() {
    let invite = sample_invite();
    let (s, blob) = short(&invite);
    for i in [0, 23, 24, 100, INVITE_BLOB_SIZE - 1] {
        let mut bad = blob.clone();
        bad[i] ^= 1;
        assert!(matches!(s.open(&bad), Err(InviteError::Garbled(WireError::Tampered))), "byte {i}");
    }
    assert!(matches!(s.open(&blob[..blob.len() - 1]), Err(InviteError::Garbled(WireError::Tampered))));
    let (other, _) = short(&invite);
    assert!(matches!(other.open(&blob), Err(InviteError::Garbled(WireError::Tampered))));
}

#[test]
fn blobs_of_two_invites_are_the_same_size_and_unrelated() {
    let (_, a) = short(&sample_invite());
    let (_, b) = short(&sample_invite());
    assert_eq!(a.len(), b.len());
    assert_ne!(a[..24], b[..24]);
}

#[test]
fn a_damaged_short_link_is_garbled_not_a_panic() {
    let (s, _) = short(&sample_invite());
    let link = s.to_link();
    for cut in [INVITE_PREFIX.len() + 1, link.len() / 2, link.len() - 3] {
        assert!(InviteLink::parse(&link[..cut]).is_err(), "cut at {cut}");
    }
    // A version this build does not know.
    let mut unknown = String::from(INVITE_PREFIX);
    URL_SAFE_NO_PAD.encode_string([7u8, 1, 2, 3], &mut unknown);
    assert!(matches!(InviteLink::parse(&unknown), Err(InviteError::UnsupportedVersion(7))));
}
