//! Short invite links: the full invite goes into a sealed, expiring blob on the invite's
//! relay, and the link only says where it is ([`crate::wire::invite_short`]).

use sotto_proto::{BlobReadId, Chunk, RelayAddress, Request, Response};

use super::{AppError, Client};
use crate::relay::LinkError;
use crate::wire::{Invite, InviteLink, ShortInvite};

impl Client {
    /// Seals `invite` into a blob on its relay and returns the short link to it.
    pub(super) async fn upload_invite(&mut self, invite: &Invite) -> Result<String, AppError> {
        let (blob, key) = ShortInvite::seal(invite, &mut rand::rng())?;
        let relay = invite.relay.to_string();
        let size = blob.len() as u64;
        let Response::BlobCreated { write_id, read_id } =
            self.relay_request(&relay, Request::BlobCreate { size }).await?
        else {
            return Err(unexpected("blob create"));
        };
        let data = Chunk::new(blob).map_err(|e| AppError::Link(LinkError::Protocol(e.to_string())))?;
        let put = Request::BlobPut { write_id, offset: 0, answer: true, data };
        match self.relay_request(&relay, put).await? {
            Response::BlobStatus { received, size: total } if received == total => {}
            _ => return Err(unexpected("blob put")),
        }
        Ok(ShortInvite::new(invite.relay.clone(), read_id, key).to_link())
    }

    /// Reads a link of either form; a short one is fetched from its relay and opened.
    pub(super) async fn resolve_invite(&mut self, link: &str) -> Result<Invite, AppError> {
        match InviteLink::parse(link)? {
            InviteLink::Full(invite) => Ok(*invite),
            InviteLink::Short(short) => {
                let blob = self.fetch_invite_blob(&short.relay, short.read_id).await?;
                Ok(short.open(&blob)?)
            }
        }
    }

    async fn fetch_invite_blob(&mut self, relay: &RelayAddress, read_id: BlobReadId) -> Result<Vec<u8>, AppError> {
        let req = Request::BlobGet { read_id, offset: 0, count: 1 };
        match self.relay_request(&relay.to_string(), req).await {
            Ok(Response::BlobData { offset: 0, data, .. }) => Ok(data.into_inner()),
            Ok(_) => Err(unexpected("blob get")),
            Err(AppError::Refused(sotto_proto::ErrorCode::NoBlob)) => Err(AppError::InviteGone),
            Err(e) => Err(e),
        }
    }

    /// An unsigned request to `relay`; a broken link is dropped so the next use reconnects.
    async fn relay_request(&mut self, relay: &str, req: Request) -> Result<Response, AppError> {
        let link = match self.pool.link(relay).await {
            Ok(l) => l,
            Err(e) => {
                self.pool.drop_link(relay);
                return Err(e.into());
            }
        };
        match link.request(req).await {
            Ok(Response::Error(code)) => Err(AppError::Refused(code)),
            Ok(r) => Ok(r),
            Err(e) => {
                self.pool.drop_link(relay);
                Err(e.into())
            }
        }
    }
}

fn unexpected(what: &str) -> AppError {
    AppError::Link(LinkError::Protocol(format!("unexpected answer to {what}")))
}
