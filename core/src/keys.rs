//! Keys of the engine's in-process maps: a `(topic, partition)` key that is looked
//! up by `(&str, u32)` without building a `String`, and a fast hasher for maps whose
//! keys come from the application itself (topic names, transactional ids), where
//! SipHash's protection against chosen collisions buys nothing and costs a tenth of
//! a small transaction's instructions.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// A partition of a topic, owned: the key of maps by partition.
pub(crate) type PartitionName = (String, u32);

/// A `(topic, partition)` key, owned or borrowed. A map keyed by [`PartitionName`]
/// is looked up with `&(topic, partition) as &dyn PartitionKey`.
pub(crate) trait PartitionKey {
    /// The topic's name.
    fn topic(&self) -> &str;
    /// The partition's number.
    fn partition(&self) -> u32;
}

impl PartitionKey for PartitionName {
    fn topic(&self) -> &str {
        &self.0
    }
    fn partition(&self) -> u32 {
        self.1
    }
}

impl PartitionKey for (&str, u32) {
    fn topic(&self) -> &str {
        self.0
    }
    fn partition(&self) -> u32 {
        self.1
    }
}

impl<'a> Borrow<dyn PartitionKey + 'a> for PartitionName {
    fn borrow(&self) -> &(dyn PartitionKey + 'a) {
        self
    }
}

/// Hashes as the tuple `(String, u32)` does (its fields in order), as `Borrow`
/// requires.
impl Hash for dyn PartitionKey + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.topic().hash(state);
        self.partition().hash(state);
    }
}

impl PartialEq for dyn PartitionKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.partition() == other.partition() && self.topic() == other.topic()
    }
}

impl Eq for dyn PartitionKey + '_ {}

/// A multiply-rotate hasher: one rotate, xor and multiply per 8 bytes of key.
#[derive(Clone, Copy, Default)]
pub(crate) struct FastHasher {
    hash: u64,
}

/// An odd constant with well spread bits (from the golden ratio).
const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(MULTIPLIER);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            // The length keeps "ab" and "ab\0" (equal once padded) apart.
            self.add(u64::from_le_bytes(word) ^ (bytes.len() as u64) << 56);
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        // The table takes its control bits from the top and its bucket from the
        // bottom: fold the well-mixed high half into the low one.
        self.hash ^ (self.hash >> 32)
    }
}

/// A `HashMap` with [`FastHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// A `HashSet` with [`FastHasher`].
pub(crate) type FastSet<K> = HashSet<K, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_borrowed_key_finds_its_owned_entry_and_no_other() {
        let mut map: FastMap<PartitionName, i32> = FastMap::default();
        for (i, topic) in ["orders", "payments", "a-much-longer-topic-name"]
            .iter()
            .enumerate()
        {
            for p in 0..3 {
                map.insert((topic.to_string(), p), i as i32 * 10 + p as i32);
            }
        }
        assert_eq!(map.get(&("payments", 2u32) as &dyn PartitionKey), Some(&12));
        assert_eq!(
            map.get(&("a-much-longer-topic-name", 0u32) as &dyn PartitionKey),
            Some(&20)
        );
        assert_eq!(map.get(&("payments", 3u32) as &dyn PartitionKey), None);
        assert_eq!(map.get(&("payment", 2u32) as &dyn PartitionKey), None);
    }

    #[test]
    fn keys_differing_in_one_byte_or_length_hash_differently() {
        let hash = |bytes: &[u8]| {
            let mut h = FastHasher::default();
            h.write(bytes);
            h.finish()
        };
        assert_ne!(hash(b"topic-1"), hash(b"topic-2"));
        assert_ne!(hash(b"abcdefgh1"), hash(b"abcdefgh2"));
        // Zero padding of the last word must not make a shorter key equal a longer one.
        let mut a = FastHasher::default();
        "ab".hash(&mut a);
        let mut b = FastHasher::default();
        "ab\0".hash(&mut b);
        assert_ne!(a.finish(), b.finish());
    }
}
