//! The control socket when things are not as they should be: permissions, stale and live
//! sockets, no holder, a holder that leaves, bad frames, and paths too long for a socket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::rc::Rc;

use tokio::io::AsyncWriteExt;

use super::tests::{local, replies, start, within};
use super::wire::{self, MAX_FRAME};
use super::{
    ControlClient, ControlError, ControlServer, EXIT_PROTOCOL, Output, Reply, Request, SOCKET_NAME, forward,
    path::MAX_SOCKET_PATH, socket_path,
};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

async fn hello(_args: Vec<String>, out: Output) -> i32 {
    out.stdout("hello");
    0
}

#[test]
fn the_socket_is_0600_in_a_0700_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    local(async {
        let server = ControlServer::bind(dir.path()).await.unwrap();
        let socket = server.socket_path().to_path_buf();
        assert_eq!(socket, dir.path().canonicalize().unwrap().join(SOCKET_NAME));
        assert_eq!(socket, socket_path(dir.path()).unwrap());
        assert_eq!(mode(&socket), 0o600);
        assert_eq!(mode(dir.path()), 0o700);
        drop(server);
        assert!(!socket.exists(), "dropping the server removes its socket");
    });
}

#[test]
fn a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join(SOCKET_NAME);
    // What a crashed holder leaves behind: the file, nobody listening.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    local(async {
        assert!(matches!(ControlClient::connect(dir.path()).await, Err(ControlError::NoHolder)));
        let (_stop, _task) = start(dir.path(), hello).await;
        assert_eq!(mode(&socket), 0o600);
        let mut client = ControlClient::connect(dir.path()).await.unwrap();
        client.run(Vec::new(), false).await.unwrap();
        assert_eq!(replies(&mut client).await, vec![Reply::Stdout("hello\n".into()), Reply::Exit(0)]);
    });
}

#[test]
fn a_live_socket_is_not_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    local(async {
        let (_stop, _task) = start(dir.path(), hello).await;
        assert!(matches!(ControlServer::bind(dir.path()).await, Err(ControlError::InUse(_))));
    });
}

#[test]
fn something_else_at_the_socket_path_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(SOCKET_NAME), b"not a socket").unwrap();
    local(async {
        assert!(matches!(ControlServer::bind(dir.path()).await, Err(ControlError::Insecure { .. })));
    });
    assert_eq!(std::fs::read(dir.path().join(SOCKET_NAME)).unwrap(), b"not a socket");
}

#[test]
fn without_a_holder_the_caller_is_told_to_open_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    local(async {
        assert!(matches!(ControlClient::connect(dir.path()).await, Err(ControlError::NoHolder)));
        assert!(matches!(forward(dir.path(), vec!["send".into()]).await, Err(ControlError::NoHolder)));
        let missing = dir.path().join("no such profile");
        assert!(matches!(forward(&missing, Vec::new()).await, Err(ControlError::NoHolder)));
    });
}

#[test]
fn a_holder_that_exits_midway_is_reported_as_gone() {
    let dir = tempfile::tempdir().unwrap();
    local(async {
        let kept = Rc::new(RefCell::new(None));
        let keep = kept.clone();
        let (stop, task) = start(dir.path(), move |_args: Vec<String>, out: Output| {
            // As a command that handed its output to a task of its own would.
            *keep.borrow_mut() = Some(out.clone());
            async move {
                out.stdout("started");
                std::future::pending::<i32>().await
            }
        })
        .await;
        let mut client = ControlClient::connect(dir.path()).await.unwrap();
        client.run(vec!["listen".into()], false).await.unwrap();
        assert_eq!(within(client.next()).await.unwrap(), Some(Reply::Stdout("started\n".into())));
        stop.send(()).unwrap();
        assert!(matches!(within(client.next()).await, Err(ControlError::HolderGone)));
        within(task).await.unwrap();
        assert!(!dir.path().join(SOCKET_NAME).exists(), "the socket is removed on shutdown");
        let kept = kept.borrow_mut().take().unwrap();
        assert!(kept.is_closed(), "an output outliving its connection reads as closed");
        within(kept.closed()).await;
        assert!(matches!(ControlClient::connect(dir.path()).await, Err(ControlError::NoHolder)));
    });
}

#[test]
fn an_oversized_frame_is_refused_and_others_are_still_served() {
    let dir = tempfile::tempdir().unwrap();
    local(async {
        let (_stop, _task) = start(dir.path(), hello).await;

        let mut raw = tokio::net::UnixStream::connect(dir.path().join(SOCKET_NAME)).await.unwrap();
        let too_long = u32::try_from(MAX_FRAME + 1).unwrap();
        raw.write_all(&too_long.to_be_bytes()).await.unwrap();
        let Some(Reply::Stderr(why)) = within(wire::read_frame(&mut raw)).await.unwrap() else { panic!("no reason") };
        assert!(why.contains("exceeds"), "{why}");
        assert_eq!(within(wire::read_frame(&mut raw)).await.unwrap(), Some(Reply::Exit(EXIT_PROTOCOL)));

        let mut raw = tokio::net::UnixStream::connect(dir.path().join(SOCKET_NAME)).await.unwrap();
        raw.write_all(b"\0\0\0\x05{nope").await.unwrap();
        assert!(matches!(within(wire::read_frame(&mut raw)).await.unwrap(), Some(Reply::Stderr(_))));
        assert_eq!(within(wire::read_frame(&mut raw)).await.unwrap(), Some(Reply::Exit(EXIT_PROTOCOL)));

        let mut raw = tokio::net::UnixStream::connect(dir.path().join(SOCKET_NAME)).await.unwrap();
        wire::write_frame(&mut raw, &Request::Cancel).await.unwrap();
        assert!(matches!(within(wire::read_frame(&mut raw)).await.unwrap(), Some(Reply::Stderr(_))));

        let mut client = ControlClient::connect(dir.path()).await.unwrap();
        client.run(Vec::new(), false).await.unwrap();
        assert_eq!(replies(&mut client).await, vec![Reply::Stdout("hello\n".into()), Reply::Exit(0)]);

        // Nor does the client send one.
        let huge = vec!["x".repeat(MAX_FRAME)];
        let mut client = ControlClient::connect(dir.path()).await.unwrap();
        assert!(matches!(client.run(huge, false).await, Err(ControlError::Protocol(_))));
    });
}

#[test]
fn a_client_refuses_an_oversized_frame_from_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    local(async {
        let listener = tokio::net::UnixListener::bind(dir.path().join(SOCKET_NAME)).unwrap();
        let fake = tokio::task::spawn_local(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let too_long = u32::try_from(MAX_FRAME + 1).unwrap();
            stream.write_all(&too_long.to_be_bytes()).await.unwrap();
            stream
        });
        let mut client = ControlClient::connect(dir.path()).await.unwrap();
        client.run(Vec::new(), false).await.unwrap();
        assert!(matches!(within(client.next()).await, Err(ControlError::Protocol(_))));
        drop(within(fake).await.unwrap());
    });
}

#[test]
fn a_profile_path_too_long_for_a_socket_falls_back_to_a_short_private_one() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("a profile directory whose name is long".repeat(3));
    std::fs::create_dir(&profile).unwrap();
    assert!(profile.join(SOCKET_NAME).as_os_str().len() > MAX_SOCKET_PATH);
    local(async {
        let (stop, task) = start(&profile, hello).await;
        let socket = socket_path(&profile).unwrap();
        assert!(socket.as_os_str().len() <= MAX_SOCKET_PATH, "{}", socket.display());
        assert!(!socket.starts_with(dir.path()));
        assert_eq!(mode(&socket), 0o600);
        let parent = socket.parent().unwrap();
        assert_eq!(mode(parent), 0o700);
        assert_eq!(mode(parent.parent().unwrap()), 0o700);
        assert_eq!(within(forward(&profile, Vec::new())).await.unwrap(), 0);

        stop.send(()).unwrap();
        within(task).await.unwrap();
        assert!(!parent.exists(), "the fallback directory is removed on shutdown");
    });
}
