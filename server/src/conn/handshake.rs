//! TLS 1.3, then the HTTP upgrade to WebSocket on [`WS_PATH`].
//!
//! The relay reads the HTTP request head itself before the WebSocket library sees it, so
//! that anything other than a WebSocket upgrade to [`WS_PATH`] (a prober's `GET /`, a
//! browser, a scanner) gets the answer of an ordinary web server: a complete `404 Not
//! Found` with the usual headers. Nothing in the answer says what runs behind it.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The HTTP path of the WebSocket endpoint.
pub const WS_PATH: &str = "/v1";

/// The largest WebSocket message read: two cells. Anything between one cell and this
/// gets a typed error; anything larger closes the connection before it is buffered.
pub const MAX_WS_MESSAGE: usize = 2 * sotto_proto::limits::CELL_SIZE;

/// Bytes read from the TLS stream at a time. tungstenite's default (128 KiB per
/// connection) would dominate an idle connection's memory; a cell arrives in two reads.
pub const WS_READ_CHUNK: usize = 8 * 1024;

/// Bytes of cells waiting to be written before writes push back. Every cell is flushed as
/// it is sent, so this only fills while the peer is slow to read.
pub const WS_MAX_WRITE_BUFFER: usize = 4 * sotto_proto::limits::CELL_SIZE;

/// The longest HTTP request head accepted (request line and headers).
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// Headers parsed in a request head; more is not a browser or a client of ours.
const MAX_HEADERS: usize = 64;

/// What any unknown path gets: an ordinary, complete 404.
const NOT_FOUND: &[u8] = b"HTTP/1.1 404 Not Found\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Length: 22\r\n\
Connection: close\r\n\
\r\n\
<h1>404 Not Found</h1>";

/// The stream a WebSocket runs on: the TLS stream, with the request head already read
/// replayed in front of it.
pub(crate) type Stream = Replay<TlsStream<TcpStream>>;

/// Completes TLS and the WebSocket upgrade. Errors carry nothing: the caller only counts.
pub(crate) async fn accept(tcp: TcpStream, tls: TlsAcceptor) -> Result<super::Ws, ()> {
    let mut stream = tls.accept(tcp).await.map_err(drop)?;
    let head = read_head(&mut stream).await?;
    if !is_upgrade_to_ws_path(&head) {
        let _ = stream.write_all(NOT_FOUND).await;
        let _ = stream.shutdown().await;
        return Err(());
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_WS_MESSAGE))
        .max_frame_size(Some(MAX_WS_MESSAGE))
        .read_buffer_size(WS_READ_CHUNK)
        .write_buffer_size(0)
        .max_write_buffer_size(WS_MAX_WRITE_BUFFER);
    let replay = Replay { head, read: 0, inner: stream };
    tokio_tungstenite::accept_async_with_config(replay, Some(config)).await.map_err(drop)
}

/// Reads up to the end of the request head (`\r\n\r\n`), at most [`MAX_REQUEST_HEAD`]
/// bytes. Bytes after the head (a client may send its first frame early) are kept.
async fn read_head(stream: &mut TlsStream<TcpStream>) -> Result<Vec<u8>, ()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await.map_err(drop)?;
        if n == 0 {
            return Err(());
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(head);
        }
        if head.len() > MAX_REQUEST_HEAD {
            return Err(());
        }
    }
}

/// Whether the head is `GET /v1` asking to upgrade to WebSocket. The WebSocket library
/// checks the rest of the handshake (version, key) afterwards.
fn is_upgrade_to_ws_path(head: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(head), Ok(httparse::Status::Complete(_))) {
        return false;
    }
    let upgrade = req
        .headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("upgrade") && h.value.eq_ignore_ascii_case(b"websocket"));
    req.method == Some("GET") && req.path == Some(WS_PATH) && upgrade
}

/// A stream that first yields bytes already read from it.
pub(crate) struct Replay<S> {
    head: Vec<u8>,
    read: usize,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if self.read < self.head.len() {
            let n = (self.head.len() - self.read).min(buf.remaining());
            let start = self.read;
            buf.put_slice(&self.head[start..start + n]);
            self.read += n;
            if self.read == self.head.len() {
                // The head is not needed again; give its memory back.
                self.head = Vec::new();
                self.read = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
