//! The in-memory engine for `--ephemeral`: nothing touches the disk, everything is gone
//! when the process ends.

use std::collections::BTreeMap;
use std::sync::RwLock;

use super::StoreError;
use super::kv::{BatchOp, Kv, Rows};

/// An ordered map in memory.
#[derive(Default)]
pub struct MemoryKv {
    map: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemoryKv {
    /// An empty engine.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Kv for MemoryKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        Ok(map.get(key).cloned())
    }

    fn apply(&self, batch: Vec<BatchOp>) -> Result<(), StoreError> {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        for (k, v) in batch {
            match v {
                Some(v) => map.insert(k, v),
                None => map.remove(&k),
            };
        }
        Ok(())
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Rows, StoreError> {
        if start >= end {
            return Ok(Vec::new());
        }
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        Ok(map.range(start.to_vec()..end.to_vec()).take(limit).map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    async fn durable(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
