//! The sweeper on Redis Cluster: every master is scanned for mailbox and blob records,
//! and each is swept by one script on its own slot.
//!
//! Key TTLs delete everything in time even with no sweeper running; the sweep applies the
//! relay's day-exact rules (the same as the sled store's) and tells subscribers, on every
//! relay process, that a mailbox is gone. Several processes may sweep at once: each
//! script is atomic, so each item is deleted and counted once.

use redis::Value;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use sotto_proto::RecvId;
use sotto_proto::limits::BLOB_CHUNK_SIZE;

use super::{RedisStore, bytes, engine, id_from, int, retry, scripts, server_error};
use crate::store::{StoreError, SweepCounts};

/// Keys asked for per SCAN step.
const SCAN_COUNT: usize = 512;

impl RedisStore {
    pub(super) async fn sweep_all(&self, today: u32) -> Result<SweepCounts, StoreError> {
        let mut counts = SweepCounts::default();
        let today_s = today.to_string();
        for (host, port) in self.masters().await? {
            for key in self.scan(&host, port, &self.keys.mailbox_pattern()).await? {
                if let Some(id) = self.keys.id_of(&key) {
                    self.sweep_mailbox(RecvId(id), &today_s, &mut counts).await?;
                }
            }
            for key in self.scan(&host, port, &self.keys.blob_pattern()).await? {
                if let Some(id) = self.keys.id_of(&key) {
                    self.sweep_blob(&id, &today_s, &mut counts).await?;
                }
            }
        }
        let tkey = self.keys.blob_quota();
        retry(|_| self.eval(&tkey, scripts::BLOB_QUOTA_SWEEP, &[&tkey], &[today_s.as_bytes()])).await?;
        Ok(counts)
    }

    async fn sweep_mailbox(&self, recv_id: RecvId, today: &str, counts: &mut SweepCounts) -> Result<(), StoreError> {
        let r = &recv_id.0;
        let (mkey, qkey) = (self.keys.mailbox(r), self.keys.queue(r));
        let (prefix, channel) = (self.keys.envelope_prefix(r), self.keys.channel(r));
        let args: [&[u8]; 3] = [prefix.as_bytes(), channel.as_bytes(), today.as_bytes()];
        let v = retry(|_| self.eval(&mkey, scripts::SWEEP_MAILBOX, &[&mkey, &qkey], &args)).await?;
        let Value::Array(f) = v else { return Err(StoreError::Corrupt) };
        let mut f = f.into_iter();
        let (deleted, envelopes, send) = (f.next(), f.next(), f.next());
        counts.envelopes += envelopes.as_ref().and_then(int).and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
        if deleted.as_ref().and_then(int) == Some(1) {
            counts.mailboxes += 1;
            counts.deleted.push(recv_id);
            let skey = self.keys.send(&id_from(send.and_then(bytes))?);
            let mut del = redis::cmd("DEL");
            del.arg(&skey);
            retry(|_| self.command(&skey, del.clone())).await?;
        }
        Ok(())
    }

    async fn sweep_blob(&self, write_id: &[u8; 24], today: &str, counts: &mut SweepCounts) -> Result<(), StoreError> {
        let (bkey, prefix) = (self.keys.blob(write_id), self.keys.chunk_prefix(write_id));
        let chunk = BLOB_CHUNK_SIZE.to_string();
        let args: [&[u8]; 3] = [prefix.as_bytes(), today.as_bytes(), chunk.as_bytes()];
        let v = retry(|_| self.eval(&bkey, scripts::SWEEP_BLOB, &[&bkey], &args)).await?;
        let Some(read_id) = bytes(v) else { return Ok(()) };
        counts.blobs += 1;
        let rkey = self.keys.read(&id_from(Some(read_id))?);
        let mut del = redis::cmd("DEL");
        del.arg(&rkey);
        retry(|_| self.command(&rkey, del.clone())).await.map(drop)
    }

    /// The masters serving slots now, as (host, port).
    async fn masters(&self) -> Result<Vec<(String, u16)>, StoreError> {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("NODES");
        let v = retry(|_| async {
            let mut conn = self.conn();
            server_error(
                conn.route_command(cmd.clone(), RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random))
                    .await
                    .map_err(engine)?,
            )
        })
        .await?;
        let text = match v {
            Value::VerbatimString { text, .. } => text,
            v => String::from_utf8(bytes(v).ok_or(StoreError::Corrupt)?).map_err(|_| StoreError::Corrupt)?,
        };
        Ok(parse_masters(&text))
    }

    /// Every key matching `pattern` on one node.
    async fn scan(&self, host: &str, port: u16, pattern: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut out = Vec::new();
        let mut cursor = "0".to_string();
        loop {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(&cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(SCAN_COUNT);
            let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host: host.to_string(), port });
            let v = retry(|_| async {
                let mut conn = self.conn();
                server_error(conn.route_command(cmd.clone(), route.clone()).await.map_err(engine)?)
            })
            .await?;
            let Value::Array(parts) = v else { return Err(StoreError::Corrupt) };
            let mut parts = parts.into_iter();
            let next = bytes(parts.next().ok_or(StoreError::Corrupt)?).ok_or(StoreError::Corrupt)?;
            if let Some(Value::Array(keys)) = parts.next() {
                out.extend(keys.into_iter().filter_map(bytes));
            }
            cursor = String::from_utf8(next).map_err(|_| StoreError::Corrupt)?;
            if cursor == "0" {
                return Ok(out);
            }
        }
    }
}

/// The reachable masters that serve slots, from `CLUSTER NODES` text.
fn parse_masters(text: &str) -> Vec<(String, u16)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(addr), Some(flags)) = (f.get(1), f.get(2)) else { continue };
        let serves_slots = f.len() > 8;
        if !flags.split(',').any(|x| x == "master") || flags.contains("fail") || !serves_slots {
            continue;
        }
        let addr = addr.split('@').next().unwrap_or(addr);
        if let Some((host, port)) = addr.rsplit_once(':')
            && let Ok(port) = port.parse()
        {
            out.push((host.to_string(), port));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::parse_masters;

    #[test]
    fn masters_are_read_from_cluster_nodes() {
        let text = "a 127.0.0.1:7002@17002 master - 0 1 2 connected 5461-10922\n\
                    b 127.0.0.1:7006@17006 slave a 0 1 1 connected\n\
                    c 127.0.0.1:7001@17001 myself,master - 0 1 1 connected 0-5460\n\
                    d 127.0.0.1:7003@17003 master,fail - 0 1 3 disconnected\n";
        assert_eq!(parse_masters(text), vec![("127.0.0.1".into(), 7002), ("127.0.0.1".into(), 7001)]);
    }
}
