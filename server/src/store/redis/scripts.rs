//! The Lua scripts: each runs atomically on the master of one hash slot, so every
//! read-check-write of one mailbox or blob happens at once or not at all.
//!
//! Numbers travel as decimal strings; sequence numbers, offsets and sizes stay far below
//! 10^14, where Lua's number formatting is still exact.

/// Queues an envelope. KEYS: record, queue, retry token. ARGV: envelope key prefix,
/// channel, value, most envelopes queued, envelope expiry, token expiry.
/// Returns the sequence number (the earlier one if this token already sent),
/// -1 without a mailbox, -2 when the queue is full.
///
/// Every path that succeeds writes something, even a retry that finds its token: `WAIT`
/// counts only the writes of its own connection, and that write, coming after the first
/// attempt's in the master's stream, makes a replica's answer cover both.
pub(super) const ENQUEUE: &str = r"
local prev = redis.call('GET', KEYS[3])
if prev then
  redis.call('SET', KEYS[3], prev, 'KEEPTTL')
  return tonumber(prev)
end
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
for _ = 1, 64 do
  local first = redis.call('ZRANGE', KEYS[2], 0, 0)
  if #first == 0 or redis.call('EXISTS', ARGV[1] .. first[1]) == 1 then break end
  redis.call('ZREM', KEYS[2], first[1])
end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return -2 end
local seq = redis.call('HINCRBY', KEYS[1], 'n', 1) - 1
redis.call('SET', ARGV[1] .. seq, ARGV[3], 'EXAT', ARGV[5])
redis.call('ZADD', KEYS[2], seq, seq)
redis.call('EXPIREAT', KEYS[2], redis.call('HGET', KEYS[1], 'x'))
redis.call('SET', KEYS[3], seq, 'EXAT', ARGV[6])
redis.call('SPUBLISH', ARGV[2], 'w')
return seq
";

/// Reads a mailbox. KEYS: record, queue. Returns nil, or
/// [send_id, owner_key, sender_key or nil, expires_day, next_seq, queued].
pub(super) const MAILBOX: &str = r"
local r = redis.call('HMGET', KEYS[1], 's', 'o', 'k', 'e', 'n')
if not r[1] then return false end
r[6] = redis.call('ZCARD', KEYS[2])
return r
";

/// Writes an index key (send id to recv id, read id to write id) unless another value
/// holds it. KEYS: index key. ARGV: value, expiry. Returns 1 if it holds ARGV[1] now
/// (written again if a lost attempt wrote it: see [`ENQUEUE`] on why), 0 if taken.
pub(super) const CLAIM_INDEX: &str = r"
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[2])
return 1
";

/// Creates a mailbox. KEYS: record. ARGV: send_id, owner_key, expires_day, expiry,
/// retrying ('1' when an earlier attempt may have created it). Returns 1, or 0 if taken.
pub(super) const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  if ARGV[5] == '1' and redis.call('HGET', KEYS[1], 's') == ARGV[1] then
    redis.call('HSET', KEYS[1], 's', ARGV[1])
    return 1
  end
  return 0
end
redis.call('HSET', KEYS[1], 's', ARGV[1], 'o', ARGV[2], 'e', ARGV[3], 'n', 0, 'x', ARGV[4])
redis.call('EXPIREAT', KEYS[1], ARGV[4])
return 1
";

/// Moves a mailbox's expiry later. KEYS: record, queue. ARGV: expires_day, expiry.
/// Returns -1 without a mailbox, the send id when the key expiry moved, else 0.
pub(super) const TOUCH: &str = r"
local r = redis.call('HMGET', KEYS[1], 's', 'e', 'x')
if not r[1] then return -1 end
if tonumber(r[2]) < tonumber(ARGV[1]) then redis.call('HSET', KEYS[1], 'e', ARGV[1]) end
if tonumber(r[3]) < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'x', ARGV[2])
  redis.call('EXPIREAT', KEYS[1], ARGV[2])
  redis.call('EXPIREAT', KEYS[2], ARGV[2])
  return r[1]
end
return 0
";

/// Locks a mailbox to a sender key. KEYS: record. ARGV: key, retrying.
/// Returns 0, -1 without a mailbox, -2 if already secured.
pub(super) const SECURE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HSETNX', KEYS[1], 'k', ARGV[1]) == 1 then return 0 end
if ARGV[2] == '1' and redis.call('HGET', KEYS[1], 'k') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'k', ARGV[1])
  return 0
end
return -2
";

/// Up to ARGV[3] queued envelopes after a score bound. KEYS: queue. ARGV: envelope key
/// prefix, lower bound ('-inf' or '(' .. seq), limit. Returns [seq, value, seq, value, ...];
/// index entries whose envelope's TTL ran out are dropped on the way.
pub(super) const PENDING: &str = r"
local out = {}
local min = ARGV[2]
local want = tonumber(ARGV[3])
while #out < 2 * want do
  local seqs = redis.call('ZRANGEBYSCORE', KEYS[1], min, '+inf', 'LIMIT', 0, want - #out / 2)
  if #seqs == 0 then break end
  for _, s in ipairs(seqs) do
    local v = redis.call('GET', ARGV[1] .. s)
    if v then
      out[#out + 1] = s
      out[#out + 1] = v
    else
      redis.call('ZREM', KEYS[1], s)
    end
  end
  min = '(' .. seqs[#seqs]
end
return out
";

/// Deletes a delivered envelope. KEYS: queue. ARGV: envelope key prefix, seq.
/// Returns 0, or -3 if it is not queued.
pub(super) const ACK: &str = r"
if redis.call('ZREM', KEYS[1], ARGV[2]) == 0 then return -3 end
redis.call('DEL', ARGV[1] .. ARGV[2])
return 0
";

/// Deletes a mailbox and its queue and tells its subscriber. KEYS: record, queue.
/// ARGV: envelope key prefix, channel. Returns the send id, or -1 without a mailbox.
pub(super) const DELETE: &str = r"
local s = redis.call('HGET', KEYS[1], 's')
if not s then return -1 end
for _, seq in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do redis.call('DEL', ARGV[1] .. seq) end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SPUBLISH', ARGV[2], 'd')
return s
";

/// Sweeps one mailbox. KEYS: record, queue. ARGV: envelope key prefix, channel, today.
/// Returns [mailbox deleted (0/1), envelopes deleted, send id or ''].
pub(super) const SWEEP_MAILBOX: &str = r"
local r = redis.call('HMGET', KEYS[1], 's', 'e')
if not r[1] then return {0, 0, ''} end
local today = tonumber(ARGV[3])
if tonumber(r[2]) < today then
  local seqs = redis.call('ZRANGE', KEYS[2], 0, -1)
  for _, seq in ipairs(seqs) do redis.call('DEL', ARGV[1] .. seq) end
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('SPUBLISH', ARGV[2], 'd')
  return {1, #seqs, r[1]}
end
local n = 0
while true do
  local first = redis.call('ZRANGE', KEYS[2], 0, 0)
  if #first == 0 then break end
  local v = redis.call('GET', ARGV[1] .. first[1])
  if v and struct.unpack('>I4', v) >= today then break end
  redis.call('ZREM', KEYS[2], first[1])
  redis.call('DEL', ARGV[1] .. first[1])
  n = n + 1
end
return {0, n, r[1]}
";

/// Reserves blob quota. KEYS: quota hash. ARGV: size, expires_day, quota, expiry.
/// Returns 0, or -1 over quota.
pub(super) const BLOB_RESERVE: &str = r"
local total = 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do total = total + tonumber(v) end
if total + tonumber(ARGV[1]) > tonumber(ARGV[3]) then return -1 end
redis.call('HINCRBY', KEYS[1], ARGV[2], ARGV[1])
if redis.call('EXPIRETIME', KEYS[1]) < tonumber(ARGV[4]) then redis.call('EXPIREAT', KEYS[1], ARGV[4]) end
return 0
";

/// Gives reserved blob quota back. KEYS: quota hash. ARGV: size, expires_day.
pub(super) const BLOB_RELEASE: &str = r"
if redis.call('HINCRBY', KEYS[1], ARGV[2], -tonumber(ARGV[1])) <= 0 then redis.call('HDEL', KEYS[1], ARGV[2]) end
return 0
";

/// Forgets the quota of blobs that expired before today. KEYS: quota hash. ARGV: today.
pub(super) const BLOB_QUOTA_SWEEP: &str = r"
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if tonumber(f) < tonumber(ARGV[1]) then redis.call('HDEL', KEYS[1], f) end
end
return 0
";

/// Creates a blob record. KEYS: record. ARGV: read_id, size, expires_day, expiry.
/// Returns 1, or 0 if taken.
pub(super) const BLOB_CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'r', ARGV[1], 'z', ARGV[2], 'v', 0, 'e', ARGV[3], 'x', ARGV[4])
redis.call('EXPIREAT', KEYS[1], ARGV[4])
return 1
";

/// Stores the next chunk. KEYS: record. ARGV: chunk key prefix, offset, length, chunk
/// size, data, chunk index. Returns [received, size], [-1] without a blob, [-2] when the
/// chunk does not continue the upload.
pub(super) const BLOB_PUT: &str = r"
local r = redis.call('HMGET', KEYS[1], 'z', 'v', 'x')
if not r[1] then return {-1} end
local size, received = tonumber(r[1]), tonumber(r[2])
local off, len = tonumber(ARGV[2]), tonumber(ARGV[3])
local e = off + len
if off ~= received or e > size or (len ~= tonumber(ARGV[4]) and e ~= size) or len == 0 then return {-2} end
redis.call('SET', ARGV[1] .. ARGV[6], ARGV[5], 'EXAT', r[3])
redis.call('HSET', KEYS[1], 'v', e)
return {e, size}
";

/// Deletes a blob that expired before today. KEYS: record. ARGV: chunk key prefix,
/// today, chunk size. Returns its read id, or nil if it lives on.
pub(super) const SWEEP_BLOB: &str = r"
local r = redis.call('HMGET', KEYS[1], 'r', 'v', 'e')
if not r[1] or tonumber(r[3]) >= tonumber(ARGV[2]) then return false end
local chunks = math.ceil(tonumber(r[2]) / tonumber(ARGV[3]))
for i = 0, chunks - 1 do redis.call('DEL', ARGV[1] .. i) end
redis.call('DEL', KEYS[1])
return r[1]
";
