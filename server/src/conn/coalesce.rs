//! A socket with read-ahead and write coalescing whose buffers exist only while bytes
//! flow.
//!
//! rustls reads a socket 4 KiB at a time and writes each record as soon as it is made, so
//! a cell costs several system calls each way. Below TLS, this stream reads up to
//! [`READ_AHEAD`] bytes at once and gathers written records until a flush (the connection
//! flushes after each event, and every few cells within one). Unlike a plain buffered
//! stream it holds no memory while idle: the read buffer is freed once drained and the
//! write buffer once flushed, so the thousands of idle connections a relay keeps cost
//! what they cost without it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes asked of the socket at once when the reader wants less (four cells' records).
pub const READ_AHEAD: usize = 64 * 1024;

/// Written bytes gathered before they go to the socket without waiting for a flush.
pub const WRITE_COALESCE: usize = 64 * 1024;

/// See the module docs.
pub struct Coalesced<S> {
    inner: S,
    /// Bytes read ahead; `read_pos` is where the next read starts. Empty when drained.
    read_buf: Vec<u8>,
    read_pos: usize,
    /// Bytes written and not yet sent; `write_pos` is how many of them went out.
    write_buf: Vec<u8>,
    write_pos: usize,
}

impl<S> Coalesced<S> {
    pub fn new(inner: S) -> Self {
        Self { inner, read_buf: Vec::new(), read_pos: 0, write_buf: Vec::new(), write_pos: 0 }
    }
}

impl<S: AsyncWrite + Unpin> Coalesced<S> {
    /// Sends the gathered bytes; frees the buffer once they are all out.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.write_pos < self.write_buf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.write_buf[self.write_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.write_pos += n;
        }
        self.write_buf = Vec::new();
        self.write_pos = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Coalesced<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.read_pos == this.read_buf.len() {
            if buf.remaining() >= READ_AHEAD {
                // A large read gains nothing from a copy.
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            this.read_buf.resize(READ_AHEAD, 0);
            this.read_pos = 0;
            let mut ahead = ReadBuf::new(&mut this.read_buf);
            let read = Pin::new(&mut this.inner).poll_read(cx, &mut ahead);
            let filled = ahead.filled().len();
            if !matches!(read, Poll::Ready(Ok(()))) || filled == 0 {
                // Nothing came (not yet, an error, or the end): hold no memory meanwhile.
                this.read_buf = Vec::new();
                return read;
            }
            this.read_buf.truncate(filled);
        }
        let n = (this.read_buf.len() - this.read_pos).min(buf.remaining());
        buf.put_slice(&this.read_buf[this.read_pos..this.read_pos + n]);
        this.read_pos += n;
        if this.read_pos == this.read_buf.len() {
            this.read_buf = Vec::new();
            this.read_pos = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Coalesced<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.write_buf.len() + data.len() > WRITE_COALESCE {
            ready!(this.poll_send(cx))?;
        }
        if this.write_buf.is_empty() && data.len() >= WRITE_COALESCE {
            return Pin::new(&mut this.inner).poll_write(cx, data);
        }
        if this.write_buf.capacity() == 0 {
            this.write_buf.reserve_exact(WRITE_COALESCE);
        }
        this.write_buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_pass_unchanged_both_ways_and_buffers_are_freed() {
        let (a, b) = tokio::io::duplex(1 << 20);
        let mut a = Coalesced::new(a);
        let mut b = Coalesced::new(b);
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        // Written in pieces of every size, some larger than the coalescing buffer.
        let mut at = 0;
        for (i, len) in [1usize, 100, 70_000, 3, 16_384, 65_536, 40_000].iter().cycle().enumerate() {
            if at == data.len() {
                break;
            }
            let end = (at + len).min(data.len());
            a.write_all(&data[at..end]).await.unwrap();
            if i % 3 == 0 {
                a.flush().await.unwrap();
            }
            at = end;
        }
        a.flush().await.unwrap();
        assert!(a.write_buf.capacity() == 0, "the write buffer outlived its flush");
        let mut got = vec![0u8; data.len()];
        // Read in small pieces, as rustls does.
        let mut at = 0;
        while at < got.len() {
            let end = (at + 4096).min(got.len());
            let n = b.read(&mut got[at..end]).await.unwrap();
            assert!(n > 0);
            at += n;
        }
        assert_eq!(got, data);
        assert!(b.read_buf.capacity() == 0, "the read buffer outlived its bytes");
    }
}
