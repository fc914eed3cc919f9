//! [`Store`] on Redis Cluster: each operation is one script on one slot, plus, where an
//! id leads to another slot (send id to mailbox, read id to blob), a plain key there.
//!
//! Those index keys are written before the record they lead to and deleted after it, so
//! an interruption leaves at most an index key leading nowhere, which reads as "no such
//! mailbox" and expires with its TTL.

use rand::RngCore;
use redis::Value;
use sotto_proto::limits::{BLOB_CHUNK_SIZE, ENVELOPE_SIZE, MAX_BLOB_SIZE};
use sotto_proto::{BlobReadId, BlobWriteId, Chunk, Envelope, PublicKey, RecvId, SendId};

use super::keys::{expire_at, retry_token_expire_at};
use super::{RedisStore, bytes, id_from, int, number, retry, scripts};
use crate::store::{BlobProgress, Mailbox, Quotas, SendTarget, Store, StoreError, StoreEvents, SweepCounts};

/// Random bytes naming one send, so a retry after a failure cannot queue it twice.
const RETRY_TOKEN_LEN: usize = 16;

/// "An earlier attempt may have applied", as scripts read it.
fn flag(retrying: bool) -> &'static [u8] {
    if retrying { b"1" } else { b"0" }
}

impl Store for RedisStore {
    async fn create_mailbox(
        &self,
        recv_id: RecvId,
        send_id: SendId,
        owner_key: PublicKey,
        expires_day: u32,
    ) -> Result<(), StoreError> {
        let x = expire_at(self.ttls.mailbox_days).to_string();
        let skey = self.keys.send(&send_id.0);
        let args: [&[u8]; 2] = [&recv_id.0, x.as_bytes()];
        let claimed = retry(|_| self.eval_durable(&skey, scripts::CLAIM_INDEX, &[&skey], &args)).await?;
        if int(&claimed) != Some(1) {
            return Err(StoreError::Duplicate);
        }
        let mkey = self.keys.mailbox(&recv_id.0);
        let day = expires_day.to_string();
        let created = retry(|retrying| {
            let args: [&[u8]; 5] = [&send_id.0, &owner_key.0, day.as_bytes(), x.as_bytes(), flag(retrying)];
            let mkey = &mkey;
            async move { self.eval_durable(mkey, scripts::CREATE, &[mkey], &args).await }
        })
        .await;
        match created.map(|v| int(&v)) {
            Ok(Some(1)) => Ok(()),
            other => {
                // Give the send id back; it leads nowhere either way.
                let _ = self.command(&skey, del(&skey)).await;
                match other {
                    Ok(_) => Err(StoreError::Duplicate),
                    Err(e) => Err(e),
                }
            }
        }
    }

    async fn mailbox(&self, recv_id: RecvId) -> Result<Option<Mailbox>, StoreError> {
        let (mkey, qkey) = (self.keys.mailbox(&recv_id.0), self.keys.queue(&recv_id.0));
        let v = retry(|_| self.eval(&mkey, scripts::MAILBOX, &[&mkey, &qkey], &[])).await?;
        let fields = match v {
            Value::Nil => return Ok(None),
            Value::Array(f) => f,
            _ => return Err(StoreError::Corrupt),
        };
        let mut f = fields.into_iter();
        let mut next = || f.next().map(bytes).unwrap_or(None);
        let send_id = SendId(id_from(next())?);
        let owner_key = PublicKey(key_from(next())?);
        let sender_key = next().map(|k| key_from(Some(k)).map(PublicKey)).transpose()?;
        let expires_day = number(next())?;
        let next_seq = number(next())?;
        let queued = match f.next() {
            Some(Value::Int(n)) => u32::try_from(n).map_err(|_| StoreError::Corrupt)?,
            _ => return Err(StoreError::Corrupt),
        };
        Ok(Some(Mailbox { send_id, owner_key, sender_key, expires_day, next_seq, queued }))
    }

    async fn touch(&self, recv_id: RecvId, expires_day: u32) -> Result<(), StoreError> {
        let (mkey, qkey) = (self.keys.mailbox(&recv_id.0), self.keys.queue(&recv_id.0));
        let (day, x) = (expires_day.to_string(), expire_at(self.ttls.mailbox_days).to_string());
        let v = retry(|_| self.eval(&mkey, scripts::TOUCH, &[&mkey, &qkey], &[day.as_bytes(), x.as_bytes()])).await?;
        match v {
            Value::Int(-1) => Err(StoreError::NoMailbox),
            Value::Int(_) => Ok(()),
            v => {
                // The key expiry moved: the send id's index key lives as long.
                let send_id = id_from(bytes(v))?;
                let skey = self.keys.send(&send_id);
                let mut cmd = redis::cmd("EXPIREAT");
                cmd.arg(&skey).arg(&x);
                retry(|_| self.command(&skey, cmd.clone())).await.map(drop)
            }
        }
    }

    async fn secure(&self, recv_id: RecvId, sender_key: PublicKey) -> Result<(), StoreError> {
        let mkey = self.keys.mailbox(&recv_id.0);
        let v = retry(|retrying| {
            let mkey = &mkey;
            async move { self.eval_durable(mkey, scripts::SECURE, &[mkey], &[&sender_key.0, flag(retrying)]).await }
        })
        .await?;
        match int(&v) {
            Some(0) => Ok(()),
            Some(-1) => Err(StoreError::NoMailbox),
            Some(-2) => Err(StoreError::AlreadySecured),
            _ => Err(StoreError::Corrupt),
        }
    }

    async fn send_target(&self, send_id: SendId) -> Result<Option<SendTarget>, StoreError> {
        let skey = self.keys.send(&send_id.0);
        let mut get = redis::cmd("GET");
        get.arg(&skey);
        let Some(recv) = bytes(retry(|_| self.command(&skey, get.clone())).await?) else { return Ok(None) };
        let recv_id = RecvId(id_from(Some(recv))?);
        let mkey = self.keys.mailbox(&recv_id.0);
        let mut hmget = redis::cmd("HMGET");
        hmget.arg(&mkey).arg("s").arg("k");
        let Value::Array(f) = retry(|_| self.command(&mkey, hmget.clone())).await? else {
            return Err(StoreError::Corrupt);
        };
        let mut f = f.into_iter().map(bytes);
        // A send id left behind by an interrupted create or delete leads nowhere.
        match f.next().flatten() {
            Some(s) if s == send_id.0 => {}
            _ => return Ok(None),
        }
        let sender_key = f.next().flatten().map(|k| key_from(Some(k)).map(PublicKey)).transpose()?;
        Ok(Some(SendTarget { recv_id, sender_key }))
    }

    async fn enqueue(
        &self,
        recv_id: RecvId,
        envelope: Envelope,
        expires_day: u32,
        quotas: Quotas,
    ) -> Result<u64, StoreError> {
        let mut token = [0u8; RETRY_TOKEN_LEN];
        rand::rng().fill_bytes(&mut token);
        let r = &recv_id.0;
        let (mkey, qkey, dkey) = (self.keys.mailbox(r), self.keys.queue(r), self.keys.retry_token(r, &token));
        let (prefix, channel) = (self.keys.envelope_prefix(r), self.keys.channel(r));
        let most = u64::from(quotas.max_queue_len).min(quotas.max_queue_bytes / ENVELOPE_SIZE as u64).to_string();
        let mut value = Vec::with_capacity(4 + ENVELOPE_SIZE);
        value.extend_from_slice(&expires_day.to_be_bytes());
        value.extend_from_slice(envelope.as_bytes());
        let x = expire_at(self.ttls.envelope_days).to_string();
        let token_x = retry_token_expire_at().to_string();
        let args: [&[u8]; 6] =
            [prefix.as_bytes(), channel.as_bytes(), &value, most.as_bytes(), x.as_bytes(), token_x.as_bytes()];
        let v = retry(|_| self.eval_durable(&mkey, scripts::ENQUEUE, &[&mkey, &qkey, &dkey], &args)).await?;
        match int(&v) {
            Some(-1) => Err(StoreError::NoMailbox),
            Some(-2) => Err(StoreError::QueueFull),
            Some(seq) => u64::try_from(seq).map_err(|_| StoreError::Corrupt),
            None => Err(StoreError::Corrupt),
        }
    }

    async fn pending(
        &self,
        recv_id: RecvId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Envelope)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (qkey, prefix) = (self.keys.queue(&recv_id.0), self.keys.envelope_prefix(&recv_id.0));
        let min = after.map_or_else(|| "-inf".to_string(), |a| format!("({a}"));
        let limit = limit.to_string();
        let v = retry(|_| {
            self.eval(&qkey, scripts::PENDING, &[&qkey], &[prefix.as_bytes(), min.as_bytes(), limit.as_bytes()])
        })
        .await?;
        let Value::Array(items) = v else { return Err(StoreError::Corrupt) };
        let mut out = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter().map(bytes);
        while let Some(seq) = it.next() {
            let seq: u64 = number(seq)?;
            let value = it.next().flatten().ok_or(StoreError::Corrupt)?;
            let env =
                Envelope::from_slice(value.get(4..).ok_or(StoreError::Corrupt)?).map_err(|_| StoreError::Corrupt)?;
            out.push((seq, env));
        }
        Ok(out)
    }

    async fn ack(&self, recv_id: RecvId, seq: u64) -> Result<(), StoreError> {
        let (qkey, prefix) = (self.keys.queue(&recv_id.0), self.keys.envelope_prefix(&recv_id.0));
        let seq = seq.to_string();
        let v = retry(|retrying| {
            let (qkey, prefix, seq) = (&qkey, &prefix, &seq);
            async move {
                let v = self.eval(qkey, scripts::ACK, &[qkey], &[prefix.as_bytes(), seq.as_bytes()]).await?;
                // Gone after an attempt whose answer was lost: that attempt deleted it.
                Ok(if retrying && int(&v) == Some(-3) { Value::Int(0) } else { v })
            }
        })
        .await?;
        match int(&v) {
            Some(0) => Ok(()),
            Some(-3) => Err(StoreError::NoMessage),
            _ => Err(StoreError::Corrupt),
        }
    }

    async fn delete_mailbox(&self, recv_id: RecvId) -> Result<(), StoreError> {
        let r = &recv_id.0;
        let (mkey, qkey) = (self.keys.mailbox(r), self.keys.queue(r));
        let (prefix, channel) = (self.keys.envelope_prefix(r), self.keys.channel(r));
        let mut first_try = true;
        let v = retry(|retrying| {
            first_try = !retrying;
            self.eval_durable(&mkey, scripts::DELETE, &[&mkey, &qkey], &[prefix.as_bytes(), channel.as_bytes()])
        })
        .await?;
        match v {
            Value::Int(-1) if first_try => Err(StoreError::NoMailbox),
            Value::Int(_) => Ok(()),
            v => {
                let skey = self.keys.send(&id_from(bytes(v))?);
                retry(|_| self.durable(&skey, del(&skey))).await.map(drop)
            }
        }
    }

    async fn blob_create(
        &self,
        write_id: BlobWriteId,
        read_id: BlobReadId,
        size: u64,
        expires_day: u32,
        q: Quotas,
    ) -> Result<(), StoreError> {
        if size > q.max_blob_size {
            return Err(StoreError::TooLarge);
        }
        let tkey = self.keys.blob_quota();
        let (size_s, day, quota) = (size.to_string(), expires_day.to_string(), q.blob_quota_bytes.to_string());
        let x = expire_at(self.ttls.blob_days).to_string();
        let reserve: [&[u8]; 4] = [size_s.as_bytes(), day.as_bytes(), quota.as_bytes(), x.as_bytes()];
        // Not retried: a reservation whose answer was lost would count twice.
        if int(&self.eval_durable(&tkey, scripts::BLOB_RESERVE, &[&tkey], &reserve).await?) != Some(0) {
            return Err(StoreError::TooLarge);
        }
        let release = || async {
            let _ = self.eval(&tkey, scripts::BLOB_RELEASE, &[&tkey], &[size_s.as_bytes(), day.as_bytes()]).await;
        };
        let rkey = self.keys.read(&read_id.0);
        let args: [&[u8]; 2] = [&write_id.0, x.as_bytes()];
        match self.eval_durable(&rkey, scripts::CLAIM_INDEX, &[&rkey], &args).await.map(|v| int(&v)) {
            Ok(Some(1)) => {}
            Ok(_) => {
                release().await;
                return Err(StoreError::Duplicate);
            }
            Err(e) => {
                release().await;
                return Err(e);
            }
        }
        let bkey = self.keys.blob(&write_id.0);
        let args: [&[u8]; 4] = [&read_id.0, size_s.as_bytes(), day.as_bytes(), x.as_bytes()];
        match self.eval_durable(&bkey, scripts::BLOB_CREATE, &[&bkey], &args).await.map(|v| int(&v)) {
            Ok(Some(1)) => Ok(()),
            other => {
                let _ = self.command(&rkey, del(&rkey)).await;
                release().await;
                match other {
                    Err(e) => Err(e),
                    Ok(_) => Err(StoreError::Duplicate),
                }
            }
        }
    }

    async fn blob_put(&self, write_id: BlobWriteId, offset: u64, data: Chunk) -> Result<BlobProgress, StoreError> {
        if offset > MAX_BLOB_SIZE || offset % BLOB_CHUNK_SIZE as u64 != 0 {
            return Err(StoreError::BadOffset);
        }
        let bkey = self.keys.blob(&write_id.0);
        let prefix = self.keys.chunk_prefix(&write_id.0);
        let (off, len, chunk) = (offset.to_string(), data.len().to_string(), BLOB_CHUNK_SIZE.to_string());
        let index = (offset / BLOB_CHUNK_SIZE as u64).to_string();
        let args: [&[u8]; 6] =
            [prefix.as_bytes(), off.as_bytes(), len.as_bytes(), chunk.as_bytes(), data.as_bytes(), index.as_bytes()];
        // The last chunk waits for a replica, so a finished upload survives a failover
        // before the sender passes the pointer on; earlier ones resume from blob_status.
        let last = offset + data.len() as u64;
        let v = match self.blob_status(write_id).await {
            Ok(p) if p.size == last => self.eval_durable(&bkey, scripts::BLOB_PUT, &[&bkey], &args).await?,
            _ => self.eval(&bkey, scripts::BLOB_PUT, &[&bkey], &args).await?,
        };
        let Value::Array(r) = v else { return Err(StoreError::Corrupt) };
        match (r.first().and_then(int), r.get(1).and_then(int)) {
            (Some(-1), _) => Err(StoreError::NoBlob),
            (Some(-2), _) => Err(StoreError::BadOffset),
            (Some(received), Some(size)) => Ok(BlobProgress {
                received: u64::try_from(received).map_err(|_| StoreError::Corrupt)?,
                size: u64::try_from(size).map_err(|_| StoreError::Corrupt)?,
            }),
            _ => Err(StoreError::Corrupt),
        }
    }

    async fn blob_status(&self, write_id: BlobWriteId) -> Result<BlobProgress, StoreError> {
        let bkey = self.keys.blob(&write_id.0);
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(&bkey).arg("z").arg("v");
        let Value::Array(f) = retry(|_| self.command(&bkey, cmd.clone())).await? else {
            return Err(StoreError::Corrupt);
        };
        let mut f = f.into_iter().map(bytes);
        let Some(size) = f.next().flatten() else { return Err(StoreError::NoBlob) };
        Ok(BlobProgress { size: number(Some(size))?, received: number(f.next().flatten())? })
    }

    async fn blob_get(&self, read_id: BlobReadId, offset: u64) -> Result<(u64, Chunk), StoreError> {
        let rkey = self.keys.read(&read_id.0);
        let mut get = redis::cmd("GET");
        get.arg(&rkey);
        let wid = bytes(retry(|_| self.command(&rkey, get.clone())).await?).ok_or(StoreError::NoBlob)?;
        let write_id = BlobWriteId(id_from(Some(wid))?);
        let blob = self.blob_status(write_id).await?;
        if blob.received < blob.size {
            return Err(StoreError::BlobIncomplete);
        }
        if blob.size == 0 && offset == 0 {
            return Ok((0, Chunk::new(Vec::new()).map_err(|_| StoreError::Corrupt)?));
        }
        if offset % BLOB_CHUNK_SIZE as u64 != 0 || offset >= blob.size {
            return Err(StoreError::BadOffset);
        }
        let ckey = format!("{}{}", self.keys.chunk_prefix(&write_id.0), offset / BLOB_CHUNK_SIZE as u64);
        let mut get = redis::cmd("GET");
        get.arg(&ckey);
        let data = bytes(retry(|_| self.command(&ckey, get.clone())).await?).ok_or(StoreError::Corrupt)?;
        Ok((blob.size, Chunk::new(data).map_err(|_| StoreError::Corrupt)?))
    }

    async fn sweep(&self, today: u32) -> Result<SweepCounts, StoreError> {
        self.sweep_all(today).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        // Every write that promised durability already waited for a replica.
        Ok(())
    }

    fn events(&self) -> Option<StoreEvents> {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

fn del(key: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("DEL");
    cmd.arg(key);
    cmd
}

fn key_from(v: Option<Vec<u8>>) -> Result<[u8; 32], StoreError> {
    v.and_then(|b| b.try_into().ok()).ok_or(StoreError::Corrupt)
}
