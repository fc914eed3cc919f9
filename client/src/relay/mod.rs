//! Links to relays.
//!
//! - [`tls`]: the rustls client configuration that trusts a relay's pin and nothing else.
//! - [`link`]: one connection to one relay: requests with their responses, and pushes.
//! - [`error`]: why a link failed, [`LinkError`].

pub mod error;
pub mod link;
pub mod tls;

pub use error::LinkError;
pub use link::{ConnectOptions, Event, RelayLink, Replies, sign_request};
