//! Five real clients (sled profiles in temp dirs) and a real relay over TLS on loopback:
//! a group is created and filled, members are introduced to each other, every message
//! reaches every other member exactly once, removal and departure take effect everywhere,
//! concurrent changes by two admins converge, and the relay's store holds no group id and
//! nothing that ties members' mailboxes together.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use common::*;
use sotto_client::app::group::record;
use sotto_client::app::{Client, GroupError, GroupEvent, Notice, profile};
use sotto_server::store::kv::Kv;

const GROUP: &str = "Circle 圈";
const NAMES: [&str; 5] = ["Aynur", "Bilal", "Chodron", "Dawa", "Erkin"];

async fn introduce(a: &mut Client, b: &mut Client, a_calls_b: &str, b_calls_a: &str) {
    let link = a.create_invite(Some(a_calls_b), None).await.unwrap();
    b.accept_invite(&link, b_calls_a).await.unwrap();
    a.subscribe_all().await.unwrap();
    until(a, |n| matches!(n, Notice::Joined { .. })).await;
    b.subscribe_all().await.unwrap();
    until(b, |n| matches!(n, Notice::Ready { .. })).await;
}

/// Polls the clients at `who` in turn until none has seen anything for `QUIET`; returns
/// every notice each saw.
async fn settle(clients: &mut [Client], who: &[usize]) -> Vec<Vec<Notice>> {
    const QUIET: Duration = Duration::from_millis(1500);
    let mut seen: Vec<Vec<Notice>> = vec![Vec::new(); clients.len()];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut last = tokio::time::Instant::now();
    while last.elapsed() < QUIET {
        assert!(tokio::time::Instant::now() < deadline, "the group never settled");
        for &i in who {
            let got = clients[i].poll(Duration::from_millis(30)).await.unwrap();
            if !got.is_empty() {
                last = tokio::time::Instant::now();
                seen[i].extend(got);
            }
        }
    }
    seen
}

fn group_texts(notices: &[Notice]) -> Vec<(String, String)> {
    notices
        .iter()
        .filter_map(|n| match n {
            Notice::GroupMessage { from, text, .. } => Some((from.clone(), text.clone())),
            _ => None,
        })
        .collect()
}

/// Each device's view: member names as that device shows them are local, so compare the
/// set of identity-derived member ids instead.
fn membership(c: &mut Client) -> Vec<[u8; 16]> {
    let txn = c.profile.store.txn();
    let g = record::by_name(&txn, GROUP).unwrap();
    g.membership().members.keys().copied().collect()
}

fn admins(c: &mut Client) -> Vec<[u8; 16]> {
    let txn = c.profile.store.txn();
    let g = record::by_name(&txn, GROUP).unwrap();
    g.membership().members.iter().filter(|(_, s)| s.admin).map(|(k, _)| *k).collect()
}

fn my_id(c: &mut Client) -> [u8; 16] {
    let txn = c.profile.store.txn();
    record::by_name(&txn, GROUP).unwrap().me
}

#[tokio::test]
async fn five_members_create_talk_remove_leave_and_converge() {
    tokio::task::LocalSet::new()
        .run_until(async {
            let relay = TestRelay::start().await;
            let tmp = tempfile::tempdir().unwrap();
            let mut c: Vec<Client> = NAMES.iter().map(|n| new_client(&tmp.path().join(n), &relay.address, n)).collect();
            // Aynur knows everyone; nobody else knows anybody.
            for i in 1..5 {
                let (a, rest) = c.split_at_mut(1);
                introduce(&mut a[0], &mut rest[i - 1], NAMES[i], NAMES[0]).await;
            }
            for client in &mut c {
                client.subscribe_all().await.unwrap();
            }
            let all: Vec<usize> = (0..5).collect();

            // Create and add.
            c[0].group_create(GROUP).unwrap();
            assert!(matches!(
                c[0].group_create(GROUP).unwrap_err(),
                sotto_client::app::AppError::Group(GroupError::NameTaken(_))
            ));
            for name in &NAMES[1..] {
                c[0].group_add(GROUP, name).await.unwrap();
            }
            let seen = settle(&mut c, &all).await;
            for i in 1..5 {
                assert!(
                    seen[i].iter().any(|n| matches!(n, Notice::Group { event: GroupEvent::AddedYou { .. }, .. })),
                    "{} was not told it was added: {:?}",
                    NAMES[i],
                    seen[i]
                );
            }
            // Everyone sees five members, all connected: introductions finished.
            let reference = membership(&mut c[0]);
            assert_eq!(reference.len(), 5);
            for (i, client) in c.iter_mut().enumerate() {
                assert_eq!(membership(client), reference, "{} disagrees", NAMES[i]);
                let members = client.group_members(GROUP).unwrap();
                assert_eq!(members.len(), 5);
                assert!(members.iter().all(|m| m.connected), "{}: {members:?}", NAMES[i]);
                // Members known only through the group carry the name the introducer
                // suggested (their own profile name here).
                let mut names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
                names.sort();
                let mut want: Vec<String> = NAMES.iter().map(ToString::to_string).collect();
                want.sort();
                assert_eq!(names, want, "{}", NAMES[i]);
            }
            // Introductions made pairwise contacts of everyone.
            for client in &mut c {
                assert_eq!(client.contact_names().unwrap().len(), 4);
            }

            // Every member's message reaches every other member exactly once.
            for i in 0..5 {
                let text = format!("{} says སྐད་ཆ {i}", NAMES[i]);
                let r = c[i].group_send_text(GROUP, &text).await.unwrap();
                assert_eq!((r.copies, r.waiting), (4, 0));
            }
            let seen = settle(&mut c, &all).await;
            for i in 0..5 {
                let mut got = group_texts(&seen[i]);
                got.sort();
                let mut want: Vec<(String, String)> = (0..5)
                    .filter(|j| *j != i)
                    .map(|j| (NAMES[j].to_string(), format!("{} says སྐད་ཆ {j}", NAMES[j])))
                    .collect();
                want.sort();
                assert_eq!(got, want, "{} got the wrong messages", NAMES[i]);
                // And keeps them, with its own, in its history.
                let history = c[i].group_history(GROUP).unwrap();
                assert_eq!(history.len(), 5);
                assert_eq!(history.iter().filter(|e| e.outgoing).count(), 1);
            }

            // Removal: Dawa is removed, but sends once more before hearing of it.
            c[0].group_remove(GROUP, "Dawa").await.unwrap();
            let seen = settle(&mut c, &[0, 1, 2, 4]).await;
            for i in [1, 2, 4] {
                assert!(seen[i].iter().any(|n| matches!(n, Notice::Group { event: GroupEvent::Removed { .. }, .. })));
            }
            c[3].group_send_text(GROUP, "I was not told").await.unwrap();
            let seen = settle(&mut c, &all).await;
            for i in [0, 1, 2, 4] {
                assert!(group_texts(&seen[i]).is_empty(), "{} showed a removed member's message", NAMES[i]);
                assert!(
                    seen[i].iter().any(|n| matches!(n, Notice::Group { event: GroupEvent::NotAMember { .. }, .. })),
                    "{} did not say it dropped it: {:?}",
                    NAMES[i],
                    seen[i]
                );
            }
            assert!(seen[3].iter().any(|n| matches!(n, Notice::Group { event: GroupEvent::RemovedYou, .. })));
            assert!(matches!(
                c[3].group_send_text(GROUP, "again").await.unwrap_err(),
                sotto_client::app::AppError::Group(GroupError::NotMember(_))
            ));
            // Only admins remove.
            assert!(matches!(
                c[1].group_remove(GROUP, "Chodron").await.unwrap_err(),
                sotto_client::app::AppError::Group(GroupError::NotAdmin(_))
            ));

            // Leaving: Erkin leaves; later messages reach only the three left.
            c[4].group_leave(GROUP).await.unwrap();
            let seen = settle(&mut c, &all).await;
            for i in [0, 1, 2] {
                assert!(seen[i].iter().any(|n| matches!(n, Notice::Group { event: GroupEvent::Left { .. }, .. })));
                assert_eq!(membership(&mut c[i]).len(), 3);
            }
            let r = c[1].group_send_text(GROUP, "three of us").await.unwrap();
            assert_eq!(r.copies, 2);
            let seen = settle(&mut c, &all).await;
            assert_eq!(group_texts(&seen[0]), vec![("Bilal".to_string(), "three of us".to_string())]);
            assert_eq!(group_texts(&seen[2]).len(), 1);
            assert!(group_texts(&seen[3]).is_empty() && group_texts(&seen[4]).is_empty());

            // Two admins change the group at once, neither hearing of the other's change
            // first: Aynur adds Dawa back while Bilal removes Chodron.
            c[0].group_promote(GROUP, "Bilal").await.unwrap();
            settle(&mut c, &all).await;
            assert_eq!(admins(&mut c[2]).len(), 2);
            c[0].group_add(GROUP, "Dawa").await.unwrap();
            c[1].group_remove(GROUP, "Chodron").await.unwrap();
            settle(&mut c, &all).await;
            let ids: Vec<[u8; 16]> = c.iter_mut().map(my_id).collect();
            let want: Vec<[u8; 16]> = {
                let mut v = vec![ids[0], ids[1], ids[3]];
                v.sort();
                v
            };
            for i in [0, 1, 3] {
                assert_eq!(membership(&mut c[i]), want, "{} did not converge", NAMES[i]);
            }
            // Dawa, added by Aynur, heard of Bilal's concurrent removal through Aynur.
            assert!(!membership(&mut c[3]).contains(&ids[2]));

            // The same member changed at one clock by both admins: the removal wins.
            c[0].group_promote(GROUP, "Dawa").await.unwrap();
            c[1].group_remove(GROUP, "Dawa").await.unwrap();
            settle(&mut c, &all).await;
            let want = {
                let mut v = vec![ids[0], ids[1]];
                v.sort();
                v
            };
            for i in [0, 1] {
                assert_eq!(membership(&mut c[i]), want, "{} did not converge", NAMES[i]);
            }

            // Left queued at the relay on purpose: what a seized relay would hold.
            c[0].group_send_text(GROUP, "queued for Bilal").await.unwrap();

            // The relay's store.
            let gid = {
                let txn = c[0].profile.store.txn();
                record::by_name(&txn, GROUP).unwrap().id
            };
            let rows = relay.store.engine().scan(&[0x00], &[0xff; 64], usize::MAX).unwrap();
            let stored: Vec<u8> = rows.iter().flat_map(|(k, v)| k.iter().chain(v.iter()).copied()).collect();
            let mut needles: Vec<(String, Vec<u8>)> = vec![("the group id".into(), gid.to_vec())];
            for (i, id) in ids.iter().enumerate() {
                needles.push((format!("{}'s member id", NAMES[i]), id.to_vec()));
            }
            for n in NAMES.iter().chain([&GROUP]) {
                needles.push((format!("name {n}"), n.as_bytes().to_vec()));
            }
            let mut owners_by_person: BTreeMap<usize, Vec<[u8; 32]>> = BTreeMap::new();
            for (i, client) in c.iter_mut().enumerate() {
                let txn = client.profile.store.txn();
                for m in profile::own_mailboxes(&txn).unwrap() {
                    needles.push((format!("{}'s envelope key", NAMES[i]), m.envelope_key.to_vec()));
                    owners_by_person
                        .entry(i)
                        .or_default()
                        .push(ed25519_dalek::SigningKey::from_bytes(&m.owner_seed).verifying_key().to_bytes());
                }
            }
            for (what, needle) in &needles {
                assert!(!stored.windows(needle.len()).any(|w| w == needle.as_slice()), "the relay stores {what}");
            }
            // Mailboxes: one per direction per pair (introductions included); no owner or
            // sender key is shared by two mailboxes, so nothing joins one person's mailboxes
            // or the members of the group.
            let mailboxes: Vec<_> = rows.iter().filter(|(k, _)| k[0] == b'M').collect();
            assert!(mailboxes.len() >= 20, "{} mailboxes", mailboxes.len());
            let mut keys = HashSet::new();
            for (_, v) in &mailboxes {
                assert!(keys.insert(v[24..56].to_vec()), "an owner key is shared between mailboxes");
                if v[56] == 1 {
                    assert!(keys.insert(v[57..89].to_vec()), "a sender key is shared between mailboxes");
                }
            }
            for owners in owners_by_person.values() {
                let unique: HashSet<_> = owners.iter().collect();
                assert_eq!(unique.len(), owners.len());
            }
            relay.stop().await;
        })
        .await;
}

/// An admin that was removed but has not heard of it yet still believes it may change the
/// group: what it sends is ignored by everyone else, with a notice, and nothing crashes.
#[tokio::test]
async fn changes_by_a_removed_admin_are_ignored_with_a_notice() {
    tokio::task::LocalSet::new()
        .run_until(async {
            let relay = TestRelay::start().await;
            let tmp = tempfile::tempdir().unwrap();
            let mut c: Vec<Client> =
                NAMES[..3].iter().map(|n| new_client(&tmp.path().join(n), &relay.address, n)).collect();
            for i in 1..3 {
                let (a, rest) = c.split_at_mut(1);
                introduce(&mut a[0], &mut rest[i - 1], NAMES[i], NAMES[0]).await;
            }
            for client in &mut c {
                client.subscribe_all().await.unwrap();
            }
            c[0].group_create(GROUP).unwrap();
            c[0].group_add(GROUP, "Bilal").await.unwrap();
            c[0].group_add(GROUP, "Chodron").await.unwrap();
            c[0].group_promote(GROUP, "Bilal").await.unwrap();
            settle(&mut c, &[0, 1, 2]).await;
            assert_eq!(admins(&mut c[1]).len(), 2);

            // Aynur removes Bilal (clock 5). Bilal has not heard of it: he promotes Chodron
            // (clock 5, concurrent with his removal, and ordered before it: it stands) and
            // then removes Chodron (clock 6, after his removal in the order: ignored).
            c[0].group_remove(GROUP, "Bilal").await.unwrap();
            settle(&mut c, &[0, 2]).await;
            c[1].group_promote(GROUP, "Chodron").await.unwrap();
            c[1].group_remove(GROUP, "Chodron").await.unwrap();
            c[1].group_send_text(GROUP, "still here?").await.unwrap();
            let seen = settle(&mut c, &[0, 1, 2]).await;
            for i in [0, 2] {
                assert!(
                    seen[i].iter().any(|n| matches!(n, Notice::Group { event: GroupEvent::NotAllowed { .. }, .. })),
                    "{}: {:?}",
                    NAMES[i],
                    seen[i]
                );
                assert!(group_texts(&seen[i]).is_empty());
            }
            // Bilal's message went only to Aynur (in his view Chodron was gone), who
            // dropped it.
            assert!(
                seen[0].iter().any(|n| matches!(n, Notice::Group { event: GroupEvent::NotAMember { .. }, .. })),
                "{:?}",
                seen[0]
            );
            let ids: Vec<[u8; 16]> = c.iter_mut().map(my_id).collect();
            let mut want = vec![ids[0], ids[2]];
            want.sort();
            // Bilal's device converges too: its own removal of Chodron comes after its
            // removal in the order, so it is ignored there as well.
            for i in 0..3 {
                assert_eq!(membership(&mut c[i]), want, "{}", NAMES[i]);
            }
            assert!(admins(&mut c[0]).contains(&ids[2]));
            relay.stop().await;
        })
        .await;
}
