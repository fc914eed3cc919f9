//! Forwarding over real sockets: output order, exit codes, exact Unicode, concurrency, and
//! a command noticing that its client left. The app's futures are not `Send`, so every test
//! runs on a current-thread runtime inside a `LocalSet`, as the `sotto` binary does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::client::relay;
use super::{ControlClient, ControlServer, EXIT_INTERRUPTED, MAX_FRAME, Output, Reply, forward};

/// Longest any test waits for something that should happen at once: a hang fails, not stalls.
pub(super) const LIMIT: Duration = Duration::from_secs(10);

/// Runs `f` the way the `sotto` binary runs: current-thread runtime, `LocalSet`.
pub(super) fn local<F: Future>(f: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    tokio::task::LocalSet::new().block_on(&runtime, f)
}

/// `f`, or a test failure if it takes longer than [`LIMIT`].
pub(super) async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f).await.expect("timed out")
}

/// Binds `dir` and serves it with `handler` until the returned sender is used or dropped.
pub(super) async fn start<H, F>(dir: &Path, handler: H) -> (oneshot::Sender<()>, JoinHandle<()>)
where
    H: Fn(Vec<String>, Output) -> F + 'static,
    F: Future<Output = i32> + 'static,
{
    let server = ControlServer::bind(dir).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::task::spawn_local(server.serve(handler, async move {
        let _ = stopped.await;
    }));
    (stop, task)
}

/// Every reply until the holder closes the connection after the exit code.
pub(super) async fn replies(client: &mut ControlClient) -> Vec<Reply> {
    let mut all = Vec::new();
    while let Some(reply) = within(client.next()).await.unwrap() {
        all.push(reply);
    }
    all
}

/// Prints each argument on stdout, one error line on stderr, and exits with 3.
async fn echo(args: Vec<String>, out: Output) -> i32 {
    for arg in &args {
        out.stdout(arg);
    }
    out.stderr("something went wrong");
    3
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn output_arrives_in_order_with_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    local(async {
        let (_stop, _task) = start(dir.path(), echo).await;

        let mut client = ControlClient::connect(dir.path()).await.unwrap();
        client.run(strings(&["send", "ana", "hello"]), false).await.unwrap();
        let expected = vec![
            Reply::Stdout("send\n".into()),
            Reply::Stdout("ana\n".into()),
            Reply::Stdout("hello\n".into()),
            Reply::Stderr("something went wrong\n".into()),
            Reply::Exit(3),
        ];
        assert_eq!(replies(&mut client).await, expected);

        let mut client = ControlClient::connect(dir.path()).await.unwrap();
        client.run(strings(&["a", "b"]), false).await.unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = within(relay(&mut client, &mut out, &mut err, std::future::pending::<()>())).await.unwrap();
        assert_eq!((code, out.as_slice(), err.as_slice()), (3, &b"a\nb\n"[..], &b"something went wrong\n"[..]));

        // The real thing, writing to this process's stdout and stderr.
        assert_eq!(within(forward(dir.path(), Vec::new())).await.unwrap(), 3);
    });
}

#[test]
fn unicode_arguments_round_trip_exactly() {
    let sent = strings(&[
        "send",
        "ئانا",                                   // Uyghur (Arabic script, right to left)
        "سالام دۇنيا، قانداق ئەھۋالىڭىز؟",         // Uyghur
        "你好，世界！今天见面吗？",               // Chinese
        "བཀྲ་ཤིས་བདེ་ལེགས། ཁྱེད་རང་སྐུ་གཟུགས་བདེ་པོ་ཡིན་པས།", // Tibetan, stacked letters
        "👩‍👩‍👧‍👦 🏳️‍🌈 🇹🇼 👍🏽",                            // emoji: ZWJ sequences, flags, skin tone
        "e\u{301} \u{200f}\u{200d} \u{feff}",     // combining accent, RTL mark, ZWJ, BOM
        "tab\tquote\"backslash\\nul\0bell\u{7}",  // what JSON must escape
        "line one\nline two\r\n",
        "",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let received = Rc::new(RefCell::new(Vec::new()));
    local(async {
        let seen = received.clone();
        let (_stop, _task) = start(dir.path(), move |args: Vec<String>, out: Output| {
            seen.borrow_mut().clone_from(&args);
            async move {
                for arg in &args {
                    out.stdout(arg);
                }
                0
            }
        })
        .await;
        let mut client = ControlClient::connect(dir.path()).await.unwrap();
        client.run(sent.clone(), false).await.unwrap();
        let mut expected: Vec<Reply> = sent.iter().map(|a| Reply::Stdout(format!("{a}\n"))).collect();
        expected.push(Reply::Exit(0));
        assert_eq!(replies(&mut client).await, expected);
    });
    let received = received.borrow();
    assert_eq!(*received, sent);
    for (got, want) in received.iter().zip(&sent) {
        assert_eq!(got.as_bytes(), want.as_bytes());
    }
}

#[test]
fn two_clients_are_served_at_once() {
    let dir = tempfile::tempdir().unwrap();
    local(async {
        // `wait` finishes only after `go` has finished: possible only if the holder runs
        // `go` while `wait` is still running.
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let done_tx = Rc::new(Cell::new(Some(done_tx)));
        let done_rx = Rc::new(Cell::new(Some(done_rx)));
        let (_stop, _task) = start(dir.path(), move |args: Vec<String>, out: Output| {
            let (done_tx, done_rx) = (done_tx.clone(), done_rx.clone());
            async move {
                if args[0] == "wait" {
                    out.stdout("waiting");
                    done_rx.take().unwrap().await.unwrap();
                    out.stdout("the other one finished");
                    1
                } else {
                    out.stdout("going");
                    done_tx.take().unwrap().send(()).unwrap();
                    2
                }
            }
        })
        .await;

        let mut waiting = ControlClient::connect(dir.path()).await.unwrap();
        waiting.run(strings(&["wait"]), false).await.unwrap();
        assert_eq!(within(waiting.next()).await.unwrap(), Some(Reply::Stdout("waiting\n".into())));

        let mut going = ControlClient::connect(dir.path()).await.unwrap();
        going.run(strings(&["go"]), false).await.unwrap();
        assert_eq!(replies(&mut going).await, vec![Reply::Stdout("going\n".into()), Reply::Exit(2)]);
        let rest = replies(&mut waiting).await;
        assert_eq!(rest, vec![Reply::Stdout("the other one finished\n".into()), Reply::Exit(1)]);
    });
}

/// Serves a command that prints `started`, waits for its client to leave, and records what
/// `is_closed` said then.
async fn start_watcher(dir: &Path, seen: Rc<Cell<Option<bool>>>) -> (oneshot::Sender<()>, JoinHandle<()>) {
    start(dir, move |_args: Vec<String>, out: Output| {
        let seen = seen.clone();
        async move {
            assert!(!out.is_closed());
            out.stdout("started");
            out.closed().await;
            seen.set(Some(out.is_closed()));
            out.stdout("nobody reads this");
            0
        }
    })
    .await
}

async fn wait_for(seen: &Cell<Option<bool>>) -> bool {
    within(async {
        loop {
            if let Some(closed) = seen.get() {
                return closed;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}

#[test]
fn a_client_that_disconnects_closes_the_output() {
    let dir = tempfile::tempdir().unwrap();
    local(async {
        let seen = Rc::new(Cell::new(None));
        let (_stop, _task) = start_watcher(dir.path(), seen.clone()).await;
        let mut client = ControlClient::connect(dir.path()).await.unwrap();
        client.run(strings(&["listen"]), false).await.unwrap();
        assert_eq!(within(client.next()).await.unwrap(), Some(Reply::Stdout("started\n".into())));
        drop(client);
        assert!(wait_for(&seen).await);
    });
}

#[test]
fn ctrl_c_cancels_the_command_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    local(async {
        let seen = Rc::new(Cell::new(None));
        let (_stop, _task) = start_watcher(dir.path(), seen.clone()).await;
        let mut client = ControlClient::connect(dir.path()).await.unwrap();
        client.run(strings(&["listen"]), false).await.unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let ctrl_c = tokio::time::sleep(Duration::from_millis(100));
        let code = within(relay(&mut client, &mut out, &mut err, ctrl_c)).await.unwrap();
        assert_eq!((code, out.as_slice()), (EXIT_INTERRUPTED, &b"started\n"[..]));
        assert!(wait_for(&seen).await);
        // The holder still serves others afterwards.
        let mut again = ControlClient::connect(dir.path()).await.unwrap();
        again.run(strings(&["listen"]), false).await.unwrap();
        assert_eq!(within(again.next()).await.unwrap(), Some(Reply::Stdout("started\n".into())));
    });
}

#[test]
fn output_longer_than_a_frame_is_split_and_reassembled() {
    let dir = tempfile::tempdir().unwrap();
    // Control characters cost six bytes in JSON; mixed with multi-byte letters so pieces
    // must be cut on character boundaries.
    let line: String = "\u{1}é字🙂".repeat(MAX_FRAME / 2);
    local(async {
        let printed = line.clone();
        let (_stop, _task) = start(dir.path(), move |_args: Vec<String>, out: Output| {
            let printed = printed.clone();
            async move {
                out.stdout(&printed);
                0
            }
        })
        .await;
        let mut client = ControlClient::connect(dir.path()).await.unwrap();
        client.run(Vec::new(), false).await.unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(within(relay(&mut client, &mut out, &mut err, std::future::pending::<()>())).await.unwrap(), 0);
        assert_eq!(out, format!("{line}\n").into_bytes());
    });
}

#[test]
fn input_lines_reach_an_interactive_command() {
    let dir = tempfile::tempdir().unwrap();
    local(async {
        let (_stop, _task) = start(dir.path(), |_args: Vec<String>, out: Output| async move {
            assert!(out.is_interactive());
            while let Some(line) = out.input().await {
                if line == "/quit" {
                    return 0;
                }
                out.stdout(&format!("you said: {line}"));
            }
            1
        })
        .await;
        let mut client = ControlClient::connect(dir.path()).await.unwrap();
        client.run(strings(&["chat", "ana"]), true).await.unwrap();
        client.send_input("selam 👋".into()).await.unwrap();
        client.send_input("/quit".into()).await.unwrap();
        let expected = vec![Reply::Stdout("you said: selam 👋\n".into()), Reply::Exit(0)];
        assert_eq!(replies(&mut client).await, expected);
    });
}
