//! Large byte fields of JSON records as base64 text instead of JSON's array of numbers.
//!
//! A sealed envelope in the outbox is 16,256 bytes: as a JSON array it became ~57 KB to
//! write, seal, sync and parse per message, which dominated group fan-out (measured in
//! `docs/BENCHMARKS.md`, "Group fan-out"); as base64 it is 21.7 KB and encodes at memory
//! speed. Reading accepts both forms, so records written before still open.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

/// Writes `bytes` as one base64 string.
pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    let text = zeroize::Zeroizing::new(STANDARD_NO_PAD.encode(bytes));
    s.serialize_str(&text)
}

/// Reads a base64 string, or the array of numbers older records hold.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    d.deserialize_any(BytesVisitor)
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("base64 text or an array of bytes")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
        STANDARD_NO_PAD.decode(v).map_err(|_| E::custom("bad base64"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct R {
        #[serde(with = "super")]
        b: Vec<u8>,
    }

    #[test]
    fn writes_base64_and_reads_both_forms() {
        let r = R { b: (0..=255).collect() };
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.starts_with("{\"b\":\"AAEC"), "{json}");
        assert_eq!(serde_json::from_str::<R>(&json).unwrap(), r);
        let old = format!("{{\"b\":{:?}}}", r.b);
        assert_eq!(serde_json::from_str::<R>(&old).unwrap(), r);
        assert!(serde_json::from_str::<R>("{\"b\":\"not base64!\"}").is_err());
        assert!(serde_json::from_str::<R>("{\"b\":[256]}").is_err());
    }
}
