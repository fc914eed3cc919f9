//! The holder's side: accept forwarded commands and run them next to the holder's own.
//!
//! The app's futures are not `Send` (libsignal's stores are `?Send`), so nothing here
//! spawns: [`ControlServer::serve`] is one future that polls every connection itself
//! (a `FuturesUnordered`), which runs on a current-thread runtime, inside or outside a
//! `LocalSet`, and never panics for want of one. Dropping it ends every forwarded command,
//! whose forwarders then see [`ControlError::HolderGone`] and may take the profile over.

use std::future::Future;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Mutex, mpsc, watch};

use super::path::{self, Place, SOCKET_MODE};
use super::wire::{self, Reply, Request};
use super::{ControlError, EXIT_BUSY, EXIT_PROTOCOL};

/// Forwarded commands running at once; more are told to try again ([`EXIT_BUSY`]), so a
/// runaway script cannot exhaust the holder's file descriptors.
pub const MAX_CONNECTIONS: usize = 64;

/// How long a new connection may take to send its command before it is dropped, so idle
/// connections do not count against [`MAX_CONNECTIONS`] for ever.
pub const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// Output messages queued for a client that is not reading them. Beyond this the client is
/// treated as gone: a paused terminal must not make the holder's memory grow without end.
pub const MAX_PENDING_OUTPUT: usize = 65_536;

/// Input lines queued before the command reads them; a client sending more is cut off.
pub const MAX_PENDING_INPUT: usize = 1_024;

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A bound control socket, ready to [`serve`](Self::serve). Dropping it removes the socket.
pub struct ControlServer {
    listener: UnixListener,
    place: Place,
    /// (device, inode) of the socket we bound, so we never delete someone else's.
    identity: (u64, u64),
}

/// Where a forwarded command writes, and how it learns its client left. Cheap to clone;
/// writing after the client left does nothing.
#[derive(Clone)]
pub struct Output {
    shared: Arc<Shared>,
}

struct Shared {
    replies: mpsc::UnboundedSender<Reply>,
    pending: AtomicUsize,
    closed: watch::Sender<bool>,
    input: Mutex<mpsc::Receiver<String>>,
    interactive: bool,
}

impl ControlServer {
    /// Binds the control socket of `profile_dir`, which the caller must hold open (only the
    /// holder may serve). A stale socket left by a crashed holder is replaced; a live one is
    /// [`ControlError::InUse`].
    pub async fn bind(profile_dir: &Path) -> Result<ControlServer, ControlError> {
        let mut first_error = None;
        for place in path::candidates(profile_dir)? {
            match Self::bind_at(place).await {
                Ok(server) => return Ok(server),
                Err(e @ ControlError::InUse(_)) => return Err(e),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or_else(|| ControlError::PathTooLong(profile_dir.join(super::SOCKET_NAME))))
    }

    async fn bind_at(place: Place) -> Result<ControlServer, ControlError> {
        path::prepare(&place)?;
        let socket = &place.socket;
        match std::fs::symlink_metadata(socket) {
            Ok(meta) if std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) => {
                match UnixStream::connect(socket).await {
                    Ok(_) => return Err(ControlError::InUse(socket.clone())),
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => std::fs::remove_file(socket)?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(_) => return Err(path::insecure(socket, "something other than a socket is in the way")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let listener = UnixListener::bind(socket)?;
        // The directory is already 0700; this is the second fence, independent of umask.
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(SOCKET_MODE))?;
        let meta = std::fs::symlink_metadata(socket)?;
        Ok(ControlServer { listener, identity: (meta.dev(), meta.ino()), place })
    }

    /// The socket this server listens on.
    pub fn socket_path(&self) -> &Path {
        &self.place.socket
    }

    /// Serves forwarded commands until `shutdown` resolves, running each with `handler`
    /// (`handler(args, output)` resolves to the exit code) concurrently with the others.
    /// Then the socket is removed and commands still running are dropped.
    pub async fn serve<H, F>(self, handler: H, shutdown: impl Future)
    where
        H: Fn(Vec<String>, Output) -> F,
        F: Future<Output = i32>,
    {
        let mut connections = FuturesUnordered::new();
        let mut pause = None;
        let mut shutdown = std::pin::pin!(shutdown);
        let listener = &self.listener;
        loop {
            let accept = async move {
                if let Some(d) = pause {
                    tokio::time::sleep(d).await;
                }
                listener.accept().await
            };
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = accept => match accepted {
                    Ok((stream, _)) => {
                        pause = None;
                        let busy = connections.len() >= MAX_CONNECTIONS;
                        connections.push(connection(&handler, stream, busy));
                    }
                    Err(e) => {
                        tracing::warn!("control socket: accept failed: {e}");
                        pause = Some(ACCEPT_BACKOFF);
                    }
                },
                Some(()) = connections.next(), if !connections.is_empty() => {}
            }
        }
        drop(connections);
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.place.socket).is_ok_and(|m| (m.dev(), m.ino()) == self.identity);
        if ours {
            let _ = std::fs::remove_file(&self.place.socket);
        }
        path::tidy(&self.place);
    }
}

/// Whether the peer runs as our user. The 0700 directory already keeps others out; this
/// also turns away root and anything that got hold of the socket some other way.
fn peer_is_us(stream: &UnixStream) -> bool {
    stream.peer_cred().is_ok_and(|c| c.uid() == rustix::process::getuid().as_raw())
}

/// Serves one connection: read the command, run it, stream its output, send its exit code.
async fn connection<H, F>(handler: &H, stream: UnixStream, busy: bool)
where
    H: Fn(Vec<String>, Output) -> F,
    F: Future<Output = i32>,
{
    if !peer_is_us(&stream) {
        return;
    }
    let (mut rd, mut wr) = stream.into_split();
    if busy {
        let text = "sotto: too many commands are running on this profile at once; try again shortly\n";
        return refuse(&mut wr, text.into(), EXIT_BUSY).await;
    }
    let (args, interactive) = match tokio::time::timeout(FIRST_FRAME_TIMEOUT, wire::read_frame(&mut rd)).await {
        Ok(Ok(Some(Request::Run { args, interactive }))) => (args, interactive),
        Ok(Ok(Some(_))) => {
            return refuse(&mut wr, "sotto: a forwarded command must start with Run\n".into(), EXIT_PROTOCOL).await;
        }
        // Tell the client why (it may be a newer sotto speaking a newer protocol).
        Ok(Err(ControlError::Protocol(e))) => return refuse(&mut wr, format!("sotto: {e}\n"), EXIT_PROTOCOL).await,
        Ok(Ok(None) | Err(_)) | Err(_) => return,
    };

    let (replies, mut queue) = mpsc::unbounded_channel();
    let (input_tx, input_rx) = mpsc::channel(MAX_PENDING_INPUT);
    let output = Output {
        shared: Arc::new(Shared {
            replies,
            pending: AtomicUsize::new(0),
            closed: watch::Sender::new(false),
            input: Mutex::new(input_rx),
            interactive,
        }),
    };

    // However this connection ends (even dropped at shutdown), tasks the command left
    // holding an `Output` must learn that nobody reads it any more.
    let _closer = CloseOnDrop(output.clone());

    // Reads what the client sends while the command runs; anything that ends the stream,
    // and Cancel, means the client is gone. Never completes, so it cannot end the command.
    let reader = async {
        loop {
            let Ok(Some(Request::Input(line))) = wire::read_frame::<_, Request>(&mut rd).await else { break };
            if input_tx.try_send(line).is_err() {
                break;
            }
        }
        drop(input_tx);
        output.mark_closed();
        std::future::pending::<()>().await;
    };
    let writer = async {
        let write_all = async {
            while let Some(reply) = queue.recv().await {
                output.shared.pending.fetch_sub(1, Ordering::Relaxed);
                let last = matches!(reply, Reply::Exit(_));
                if wire::write_frame(&mut wr, &reply).await.is_err() {
                    break;
                }
                if last {
                    let _ = wr.shutdown().await;
                    return;
                }
            }
            output.mark_closed();
        };
        tokio::select! {
            () = write_all => {}
            () = output.closed() => {}
        }
        // Later output has nowhere to go: drop it instead of queueing it.
        queue.close();
    };
    let run = async {
        let code = handler(args, output.clone()).await;
        output.send(Reply::Exit(code));
    };
    tokio::select! {
        _ = async { tokio::join!(run, writer) } => {}
        () = reader => {}
    }
}

/// Marks an [`Output`] closed when dropped.
struct CloseOnDrop(Output);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.mark_closed();
    }
}

/// Answers a connection we will not run, with a reason and an exit code.
async fn refuse(wr: &mut tokio::net::unix::OwnedWriteHalf, text: String, code: i32) {
    if wire::write_frame(wr, &Reply::Stderr(text)).await.is_ok() {
        let _ = wire::write_frame(wr, &Reply::Exit(code)).await;
    }
}

impl Output {
    /// Writes `line` and a newline to the client's stdout.
    pub fn stdout(&self, line: &str) {
        self.text(line, Reply::Stdout);
    }

    /// Writes `line` and a newline to the client's stderr.
    pub fn stderr(&self, line: &str) {
        self.text(line, Reply::Stderr);
    }

    /// Whether the client went away (it disconnected, was interrupted, or stopped reading):
    /// a long-running command should stop.
    pub fn is_closed(&self) -> bool {
        *self.shared.closed.borrow()
    }

    /// Resolves once the client went away (see [`is_closed`](Self::is_closed)).
    pub async fn closed(&self) {
        let mut rx = self.shared.closed.subscribe();
        let _ = rx.wait_for(|closed| *closed).await;
    }

    /// Whether the client said it would send input lines.
    pub fn is_interactive(&self) -> bool {
        self.shared.interactive
    }

    /// The next line the client typed; `None` once the client went away.
    pub async fn input(&self) -> Option<String> {
        self.shared.input.lock().await.recv().await
    }

    fn text(&self, line: &str, make: fn(String) -> Reply) {
        let mut text = String::with_capacity(line.len() + 1);
        text.push_str(line);
        text.push('\n');
        for piece in wire::pieces(&text) {
            if self.shared.pending.load(Ordering::Relaxed) >= MAX_PENDING_OUTPUT {
                self.mark_closed();
                return;
            }
            self.send(make(piece.to_owned()));
        }
    }

    fn send(&self, reply: Reply) {
        // Counted before sending so the writer's decrement can never come first.
        self.shared.pending.fetch_add(1, Ordering::Relaxed);
        if self.shared.replies.send(reply).is_err() {
            self.shared.pending.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn mark_closed(&self) {
        self.shared.closed.send_replace(true);
    }
}
