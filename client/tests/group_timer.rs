//! Disappearing messages in a group: real profiles (sled in temp dirs), a real relay over
//! TLS on loopback, and the profiles' clocks moved forward instead of sleeping. A member
//! sets the timer, every member applies it, messages and files sent under it disappear from
//! every member's history, a newcomer learns the setting with the log, and concurrent
//! changes converge on the later one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use sotto_client::app::{Client, FileState, GroupEvent, Notice};
use sotto_client::files::{FileSettings, NoProgress};

const GROUP: &str = "Witnesses ཤེས་རྟོགས";
const NAMES: [&str; 4] = ["Aynur", "Bilal", "Chodron", "Dawa"];
const HOUR: Duration = Duration::from_secs(3600);

async fn introduce(a: &mut Client, b: &mut Client, a_calls_b: &str, b_calls_a: &str) {
    let link = a.create_invite(Some(a_calls_b), None).await.unwrap();
    b.accept_invite(&link, b_calls_a).await.unwrap();
    a.subscribe_all().await.unwrap();
    until(a, |n| matches!(n, Notice::Joined { .. })).await;
    b.subscribe_all().await.unwrap();
    until(b, |n| matches!(n, Notice::Ready { .. })).await;
}

/// Polls every client in turn until none has seen anything for a while and no download
/// runs.
async fn settle(clients: &mut [Client]) -> Vec<Vec<Notice>> {
    const QUIET: Duration = Duration::from_millis(1500);
    let mut seen: Vec<Vec<Notice>> = vec![Vec::new(); clients.len()];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut last = tokio::time::Instant::now();
    while last.elapsed() < QUIET || clients.iter().any(Client::downloads_busy) {
        assert!(tokio::time::Instant::now() < deadline, "the group never settled");
        for (i, c) in clients.iter_mut().enumerate() {
            let got = c.poll(Duration::from_millis(30)).await.unwrap();
            if !got.is_empty() {
                last = tokio::time::Instant::now();
                seen[i].extend(got);
            }
        }
    }
    seen
}

fn history(c: &mut Client) -> Vec<String> {
    c.group_history(GROUP)
        .unwrap()
        .into_iter()
        .map(|e| e.file_name.clone().map_or_else(|| e.text.clone(), |f| format!("[file] {f}")))
        .collect()
}

fn timer_events(notices: &[Notice]) -> Vec<(String, u32)> {
    notices
        .iter()
        .filter_map(|n| match n {
            Notice::Group { event: GroupEvent::TimerChanged { name, seconds }, .. } => Some((name.clone(), *seconds)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_group_timer_is_agreed_and_messages_and_files_disappear_from_every_member() {
    tokio::task::LocalSet::new()
        .run_until(async {
            let relay = TestRelay::start().await;
            let tmp = tempfile::tempdir().unwrap();
            let mut c: Vec<Client> = NAMES.iter().map(|n| new_client(&tmp.path().join(n), &relay.address, n)).collect();
            // Aynur knows everyone; the group introduces the others to each other.
            for i in 1..4 {
                let (a, rest) = c.split_at_mut(1);
                introduce(&mut a[0], &mut rest[i - 1], NAMES[i], NAMES[0]).await;
            }
            for (i, client) in c.iter_mut().enumerate() {
                client.subscribe_all().await.unwrap();
                client.set_file_settings(FileSettings::new(tmp.path().join(format!("saved-{i}"))));
            }
            c[0].group_create(GROUP).unwrap();
            c[0].group_add(GROUP, "Bilal").await.unwrap();
            c[0].group_add(GROUP, "Chodron").await.unwrap();
            settle(&mut c[..3]).await;
            c[1].group_send_text(GROUP, "before the timer").await.unwrap();
            settle(&mut c[..3]).await;

            // Chodron, not an admin, sets the timer; the others apply it and say so.
            c[2].group_set_timer(GROUP, 3600).await.unwrap();
            let seen = settle(&mut c[..3]).await;
            for i in [0, 1] {
                assert_eq!(timer_events(&seen[i]), [("Chodron".to_string(), 3600)], "{}", NAMES[i]);
            }
            for (i, client) in c[..3].iter_mut().enumerate() {
                assert_eq!(client.group_timer(GROUP).unwrap(), 3600, "{}", NAMES[i]);
            }

            // A text and a file sent under the timer.
            c[0].group_send_text(GROUP, "gone within the hour").await.unwrap();
            let path = tmp.path().join("photo.jpg");
            std::fs::write(&path, b"\xff\xd8\xff").unwrap();
            c[1].group_send_file(GROUP, &path, &NoProgress).await.unwrap();
            let seen = settle(&mut c[..3]).await;
            for i in [0, 2] {
                assert!(
                    seen[i].iter().any(|n| matches!(n, Notice::GroupFile { state: FileState::Saved(_), .. })),
                    "{}: {:?}",
                    NAMES[i],
                    seen[i]
                );
            }
            let all = ["before the timer", "gone within the hour", "[file] photo.jpg"];
            for (i, client) in c[..3].iter_mut().enumerate() {
                assert_eq!(history(client), all, "{}", NAMES[i]);
            }

            // A newcomer learns the timer with the log.
            c[0].group_add(GROUP, "Dawa").await.unwrap();
            settle(&mut c).await;
            assert_eq!(c[3].group_timer(GROUP).unwrap(), 3600);

            // Two hours later the messages sent under the timer are gone from every member
            // (sender's and receivers' copies); the one sent before stays.
            for client in &mut c {
                client.clock().advance(2 * HOUR);
                client.tick().await.unwrap();
            }
            for (i, client) in c[..3].iter_mut().enumerate() {
                assert_eq!(history(client), ["before the timer"], "{}", NAMES[i]);
            }

            // Concurrent changes: Aynur sets a minute while Bilal, whose change is stamped
            // later, turns it off. Every member ends with Bilal's.
            c[1].clock().advance(Duration::from_secs(60));
            c[0].group_set_timer(GROUP, 60).await.unwrap();
            c[1].group_set_timer(GROUP, 0).await.unwrap();
            settle(&mut c).await;
            for (i, client) in c.iter_mut().enumerate() {
                assert_eq!(client.group_timer(GROUP).unwrap(), 0, "{}", NAMES[i]);
            }
            c[2].group_send_text(GROUP, "stays").await.unwrap();
            settle(&mut c).await;
            for client in &mut c {
                client.clock().advance(2 * HOUR);
                client.tick().await.unwrap();
            }
            assert_eq!(history(&mut c[0]), ["before the timer", "stays"]);
            assert_eq!(history(&mut c[3]), ["stays"]);
            relay.stop().await;
        })
        .await;
}
