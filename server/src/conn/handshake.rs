//! TLS 1.3, then the HTTP upgrade to WebSocket on [`WS_PATH`] (RFC 6455 §4.2).
//!
//! The relay reads the HTTP request head itself and answers the upgrade itself, so that
//! anything other than a well-formed WebSocket upgrade to [`WS_PATH`] (a prober's `GET /`,
//! a browser, a scanner) gets the answer of an ordinary web server: a complete `404 Not
//! Found` with the usual headers. Nothing in the answer says what runs behind it.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::coalesce::Coalesced;
use crate::ws::WsConn;

/// The HTTP path of the WebSocket endpoint.
pub const WS_PATH: &str = "/v1";

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
pub(crate) type Stream = Replay<TlsStream<Coalesced<TcpStream>>>;

/// Completes TLS and the WebSocket upgrade. Errors carry nothing: the caller only counts.
pub(crate) async fn accept(tcp: TcpStream, tls: TlsAcceptor) -> Result<super::Ws, ()> {
    // Below TLS, reads ahead and gathers writes (records stay one per cell: TLS makes
    // them above), holding no memory while the connection is idle.
    let tcp = Coalesced::new(tcp);
    let mut stream = tls.accept(tcp).await.map_err(drop)?;
    // rustls takes a whole cell's frame in every write, so it always makes one record of
    // it: with a limit, a write meeting a part-full buffer (a slow reader) would be cut
    // into two short records, which an observer could tell apart. Memory stays bounded
    // because the connection flushes, waiting for the socket, after every few cells.
    stream.get_mut().1.set_buffer_limit(None);
    let head = read_head(&mut stream).await?;
    let Some(upgrade) = parse_upgrade(&head) else {
        let _ = stream.write_all(NOT_FOUND).await;
        let _ = stream.shutdown().await;
        return Err(());
    };
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        upgrade.accept
    );
    stream.write_all(response.as_bytes()).await.map_err(drop)?;
    stream.flush().await.map_err(drop)?;
    // A client may send its first frames right behind the request head.
    let early = head.get(upgrade.head_len..).map(<[u8]>::to_vec).unwrap_or_default();
    Ok(WsConn::new(Replay { head: early, read: 0, inner: stream }))
}

/// A valid upgrade request: where its head ends, and the `Sec-WebSocket-Accept` answer.
struct Upgrade {
    head_len: usize,
    accept: String,
}

/// Reads up to the end of the request head (`\r\n\r\n`), at most [`MAX_REQUEST_HEAD`]
/// bytes. Bytes after the head (a client may send its first frame early) are kept.
async fn read_head(stream: &mut TlsStream<Coalesced<TcpStream>>) -> Result<Vec<u8>, ()> {
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

/// The upgrade `head` asks for, if it is `GET /v1` with everything RFC 6455 §4.2.1
/// requires: `Upgrade: websocket`, a `Connection` header with the `upgrade` token,
/// `Sec-WebSocket-Version: 13` and a `Sec-WebSocket-Key` of 16 bytes in base64.
fn parse_upgrade(head: &[u8]) -> Option<Upgrade> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(head_len)) = req.parse(head) else { return None };
    if req.method != Some("GET") || req.path != Some(WS_PATH) {
        return None;
    }
    let header = |name: &str| req.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value);
    let upgrade = header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case(b"websocket"));
    let connection = header("connection")
        .is_some_and(|v| v.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"upgrade")));
    let version = header("sec-websocket-version").is_some_and(|v| v.trim_ascii() == b"13");
    let key = header("sec-websocket-key").map(<[u8]>::trim_ascii)?;
    // 16 bytes in base64 are 24 characters ending in "==".
    let key_ok = key.len() == 24 && key.ends_with(b"==");
    (upgrade && connection && version && key_ok).then(|| Upgrade { head_len, accept: derive_accept_key(key) })
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

    // Passed through so a frame's header and payload reach TLS as one write (one record).
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
