//! The forwarding side: hand a command line to the holder and relay what it prints.
//!
//! A process that cannot open the profile calls [`forward`]; the user sees the command's
//! output and exit code as if it had run here. [`ControlError::NoHolder`] and
//! [`ControlError::HolderGone`] tell the caller to open the profile itself instead.

use std::future::Future;
use std::io::{ErrorKind, Write};
use std::path::Path;

use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use super::wire::{self, Reply, Request};
use super::{ControlError, EXIT_INTERRUPTED, path};

/// A connection to the holder of a profile.
pub struct ControlClient {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    exited: bool,
}

impl ControlClient {
    /// Connects to whoever holds `profile_dir`. [`ControlError::NoHolder`] if nobody does.
    pub async fn connect(profile_dir: &Path) -> Result<ControlClient, ControlError> {
        let places = match path::candidates(profile_dir) {
            Err(ControlError::Io(e)) if e.kind() == ErrorKind::NotFound => return Err(ControlError::NoHolder),
            other => other?,
        };
        for place in places {
            let stream = match UnixStream::connect(&place.socket).await {
                Ok(stream) => stream,
                // No socket, or a stale one: try the next place.
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => continue,
                Err(e) => return Err(e.into()),
            };
            // Our command line may hold a message: never hand it to another user's process.
            if !stream.peer_cred().is_ok_and(|c| c.uid() == rustix::process::getuid().as_raw()) {
                return Err(path::insecure(&place.socket, "it is served by another user"));
            }
            let (rd, wr) = stream.into_split();
            return Ok(ControlClient { rd, wr, exited: false });
        }
        Err(ControlError::NoHolder)
    }

    /// Asks the holder to run `args` (the command line after the global options).
    pub async fn run(&mut self, args: Vec<String>, interactive: bool) -> Result<(), ControlError> {
        self.send(&Request::Run { args, interactive }).await
    }

    /// Sends a line the user typed to an interactive command.
    pub async fn send_input(&mut self, line: String) -> Result<(), ControlError> {
        self.send(&Request::Input(line)).await
    }

    /// Tells the holder to stop the command, and stops sending.
    pub async fn cancel(&mut self) -> Result<(), ControlError> {
        self.send(&Request::Cancel).await?;
        self.wr.shutdown().await.map_err(|e| gone(e.into()))
    }

    /// The next message from the holder; `None` after [`Reply::Exit`] once the holder closed
    /// the connection. [`ControlError::HolderGone`] if it closed before `Exit`. Not
    /// cancel-safe: abandon the client if you abandon a call.
    pub async fn next(&mut self) -> Result<Option<Reply>, ControlError> {
        match wire::read_frame::<_, Reply>(&mut self.rd).await {
            Ok(Some(reply)) if self.exited => {
                Err(ControlError::Protocol(format!("the holder sent {reply:?} after the exit code")))
            }
            Ok(Some(reply)) => {
                self.exited = matches!(reply, Reply::Exit(_));
                Ok(Some(reply))
            }
            Ok(None) if self.exited => Ok(None),
            Ok(None) => Err(ControlError::HolderGone),
            Err(e) => Err(gone(e)),
        }
    }

    async fn send(&mut self, request: &Request) -> Result<(), ControlError> {
        wire::write_frame(&mut self.wr, request).await.map_err(gone)
    }
}

/// Runs `args` in the process holding `profile_dir`, writing its output to this process's
/// stdout and stderr as it arrives, and returns its exit code. On Ctrl-C the holder is told
/// to stop and this returns [`EXIT_INTERRUPTED`].
///
/// [`ControlError::NoHolder`]: nobody holds the profile; [`ControlError::HolderGone`]: the
/// holder exited midway. Either way the caller should open the profile itself (after
/// `HolderGone` the command may have partly run).
pub async fn forward(profile_dir: &Path, args: Vec<String>) -> Result<i32, ControlError> {
    let mut client = ControlClient::connect(profile_dir).await?;
    client.run(args, false).await?;
    // Registered only once connected: tokio never unregisters a signal handler, and a
    // caller told NoHolder must keep the default Ctrl-C behaviour.
    let interrupted = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handling here: never interrupt rather than interrupt at once.
            std::future::pending::<()>().await;
        }
    };
    relay(&mut client, &mut std::io::stdout(), &mut std::io::stderr(), interrupted).await
}

/// Copies the holder's replies to `out` and `err` until the exit code, or until `cancel`
/// resolves (then the holder is told to stop and this returns [`EXIT_INTERRUPTED`]).
pub(crate) async fn relay(
    client: &mut ControlClient,
    out: &mut impl Write,
    err: &mut impl Write,
    cancel: impl Future,
) -> Result<i32, ControlError> {
    let mut cancel = std::pin::pin!(cancel);
    loop {
        let reply = tokio::select! {
            reply = client.next() => reply?,
            _ = &mut cancel => {
                let _ = client.cancel().await;
                return Ok(EXIT_INTERRUPTED);
            }
        };
        let written = match reply {
            Some(Reply::Stdout(text)) => out.write_all(text.as_bytes()).and_then(|()| out.flush()),
            Some(Reply::Stderr(text)) => err.write_all(text.as_bytes()).and_then(|()| err.flush()),
            Some(Reply::Exit(code)) => return Ok(code),
            None => return Err(ControlError::HolderGone),
        };
        if let Err(e) = written {
            // Our reader went away (e.g. piped into `head`): stop the command too.
            let _ = client.cancel().await;
            return Err(e.into());
        }
    }
}

/// Reads a broken connection as the holder having gone away.
fn gone(e: ControlError) -> ControlError {
    match e {
        ControlError::Io(io)
            if matches!(
                io.kind(),
                ErrorKind::UnexpectedEof
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
                    | ErrorKind::NotConnected
            ) =>
        {
            ControlError::HolderGone
        }
        other => other,
    }
}
