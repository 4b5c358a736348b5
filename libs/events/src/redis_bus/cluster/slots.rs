//! Which primary serves which slot: the key-to-slot rule of Redis Cluster
//! and the slot map a node gives (`CLUSTER SLOTS`).

use redis::Value;

/// The slots of a Redis Cluster.
pub(super) const SLOTS: u16 = 16_384;

/// CRC16 (XMODEM), as Redis Cluster hashes keys.
fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |mut crc, byte| {
        crc ^= u16::from(*byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
        crc
    })
}

/// The slot of `key`: of its hash tag (the part between the first `{` and
/// the next `}`, when not empty), else of all of it.
pub(super) fn slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|b| *b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        rest.iter().position(|b| *b == b'}').filter(|close| *close > 0).map(|close| &rest[..close])
    });
    crc16(tagged.unwrap_or(key)) % SLOTS
}

/// A node's address.
pub(super) type Addr = (String, u16);

/// Slot ranges and their primaries.
#[derive(Debug, Default)]
pub(super) struct SlotMap(Vec<(u16, u16, Addr)>);

impl SlotMap {
    /// Reads a `CLUSTER SLOTS` reply; a primary named without a host (`""`)
    /// is on `default_host`, the node that answered.
    pub(super) fn from_reply(reply: &Value, default_host: &str) -> Option<Self> {
        let Value::Array(ranges) = reply else { return None };
        let mut map = Vec::with_capacity(ranges.len());
        for range in ranges {
            let Value::Array(fields) = range else { return None };
            let [Value::Int(start), Value::Int(end), Value::Array(primary), ..] = fields.as_slice() else {
                return None;
            };
            let [host, Value::Int(port), ..] = primary.as_slice() else { return None };
            let host = match host {
                Value::BulkString(h) => String::from_utf8(h.clone()).ok()?,
                Value::SimpleString(h) => h.clone(),
                _ => return None,
            };
            let host = if host.is_empty() || host == "?" { default_host.to_owned() } else { host };
            map.push((u16::try_from(*start).ok()?, u16::try_from(*end).ok()?, (host, u16::try_from(*port).ok()?)));
        }
        Some(SlotMap(map))
    }

    /// The primary serving `slot`.
    pub(super) fn owner(&self, slot: u16) -> Option<&Addr> {
        self.0.iter().find(|(start, end, _)| (*start..=*end).contains(&slot)).map(|(_, _, addr)| addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from `CLUSTER KEYSLOT` on Redis 7.
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_eq!(slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % SLOTS, "an empty tag hashes the whole key");
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
        assert_eq!(slot(b""), 0);
    }

    #[test]
    fn a_slot_map_reads_cluster_slots() {
        let node = |host: &str, port: i64| {
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![Value::Int(0), Value::Int(5460), node("10.0.0.1", 7000), node("10.0.0.4", 7003)]),
            Value::Array(vec![Value::Int(5461), Value::Int(16383), node("", 7001)]),
        ]);
        let map = SlotMap::from_reply(&reply, "10.0.0.9").unwrap();
        assert_eq!(map.owner(0), Some(&("10.0.0.1".to_owned(), 7000)));
        assert_eq!(map.owner(5461), Some(&("10.0.0.9".to_owned(), 7001)));
        assert!(SlotMap::from_reply(&Value::Int(1), "h").is_none());
    }
}
