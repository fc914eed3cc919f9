//! TLS 1.3, then the HTTP upgrade to WebSocket on [`WS_PATH`]. A WebSocket upgrade to
//! any other path gets a 404. A request that is not a WebSocket upgrade at all (what a
//! prober's plain `GET /` is) is refused by the WebSocket library, which closes the
//! connection without an HTTP answer: answering it like an ordinary web server would is
//! a follow-up (see the closing notes).

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::Ws;

/// The HTTP path of the WebSocket endpoint.
pub const WS_PATH: &str = "/v1";

/// The largest WebSocket message read: two cells. Anything between one cell and this
/// gets a typed error; anything larger closes the connection before it is buffered.
pub const MAX_WS_MESSAGE: usize = 2 * sotto_proto::limits::CELL_SIZE;

/// Completes TLS and the WebSocket upgrade. Errors carry nothing: the caller only counts.
pub(crate) async fn accept(tcp: TcpStream, tls: TlsAcceptor) -> Result<Ws, ()> {
    let stream = tls.accept(tcp).await.map_err(drop)?;
    let config = WebSocketConfig::default().max_message_size(Some(MAX_WS_MESSAGE)).max_frame_size(Some(MAX_WS_MESSAGE));
    // The callback's signature is tungstenite's; its error type is what it is.
    #[allow(clippy::result_large_err)]
    let check_path = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path() == WS_PATH {
            return Ok(resp);
        }
        let mut not_found = ErrorResponse::new(Some("Not Found".into()));
        *not_found.status_mut() = StatusCode::NOT_FOUND;
        Err(not_found)
    };
    tokio_tungstenite::accept_hdr_async_with_config(stream, check_path, Some(config)).await.map_err(drop)
}
