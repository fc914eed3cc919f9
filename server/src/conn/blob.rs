//! Blob commands: create, upload chunk by chunk (resumable), and download.

use std::time::Instant;

use rand::RngCore;
use sotto_proto::limits::BLOB_CHUNK_SIZE;
use sotto_proto::{BlobReadId, BlobWriteId, Chunk, ErrorCode, Response};

use super::{Closed, Connection, Ws, store_error};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// Times fresh blob ids are drawn again after a collision.
const ID_ATTEMPTS: usize = 3;

impl<S: Store> Connection<S> {
    pub(super) async fn blob_create(&mut self, size: u64) -> Response {
        if size > self.shared.limits.max_blob_size {
            return Response::Error(ErrorCode::TooLarge);
        }
        let expires = self.today().saturating_add(self.shared.limits.blob_ttl_days());
        for _ in 0..ID_ATTEMPTS {
            let (mut w, mut r) = ([0u8; 24], [0u8; 24]);
            rand::rng().fill_bytes(&mut w);
            rand::rng().fill_bytes(&mut r);
            let (write_id, read_id) = (BlobWriteId(w), BlobReadId(r));
            match self.shared.store.blob_create(write_id, read_id, size, expires, self.quotas()).await {
                Ok(()) => return Response::BlobCreated { write_id, read_id },
                Err(StoreError::Duplicate) => continue,
                Err(e) => return store_error(&e),
            }
        }
        Response::Error(ErrorCode::Internal)
    }

    pub(super) async fn blob_put(&mut self, write_id: BlobWriteId, offset: u64, data: Chunk) -> Response {
        match self.shared.store.blob_put(write_id, offset, data).await {
            Ok(p) => {
                Metrics::inc(&self.shared.metrics.blob_chunks_stored);
                Response::BlobStatus { received: p.received, size: p.size }
            }
            Err(e) => store_error(&e),
        }
    }

    pub(super) async fn blob_status(&mut self, write_id: BlobWriteId) -> Response {
        match self.shared.store.blob_status(write_id).await {
            Ok(p) => Response::BlobStatus { received: p.received, size: p.size },
            Err(e) => store_error(&e),
        }
    }

    /// Answers a ranged read: one `BlobData` per chunk, or fewer and then the error
    /// that stopped it. The chunks beyond the first cost a frame of the rate limit
    /// each, as separate requests would; one cell is read from the store and written at
    /// a time, so a read holds one chunk in memory whatever its length.
    pub(super) async fn blob_get(
        &mut self,
        ws: &mut Ws,
        corr: u32,
        read_id: BlobReadId,
        offset: u64,
        count: u16,
    ) -> Result<(), Closed> {
        if !self.bucket.take_n(u32::from(count) - 1, Instant::now()) {
            Metrics::inc(&self.shared.metrics.rate_limited);
            return self.respond(ws, corr, Response::Error(ErrorCode::RateLimited)).await;
        }
        for i in 0..u64::from(count) {
            let at = offset.saturating_add(i * BLOB_CHUNK_SIZE as u64);
            let response = match self.shared.store.blob_get(read_id, at).await {
                Ok((size, data)) => {
                    Metrics::inc(&self.shared.metrics.blob_chunks_served);
                    Response::BlobData { offset: at, size, data }
                }
                Err(e) => return self.respond(ws, corr, store_error(&e)).await,
            };
            self.respond(ws, corr, response).await?;
        }
        Ok(())
    }
}
