//! Kafka's default partitioner: which partition a record goes to when the caller does
//! not name one.
//!
//! - A record **with a key** goes to `toPositive(murmur2(key)) % partitions`, exactly as
//!   in Kafka's Java client (`Utils.murmur2`, `Utils.toPositive`), so a key lands on the
//!   same partition number as it would in Kafka. An empty key is a key: it is hashed.
//! - A record **without a key** is *sticky* (KIP-480): every keyless record for a topic
//!   goes to one partition until the batch being filled for it is completed, then the
//!   partitioner moves to another partition chosen at random. See [`StickyPartitioner`].
//!
//! The partition count is a [`NonZeroU32`]: a topic has at least one partition, and no
//! partition number can be answered for zero.
//!
//! ```
//! use std::num::NonZeroU32;
//! use oncelog::partitioner::{murmur2, partition, partition_for_key, StickyPartitioner};
//!
//! let twelve = NonZeroU32::new(12).unwrap();
//! // Kafka's own test vector: murmur2("21") == -973932308.
//! assert_eq!(murmur2(b"21"), -973932308);
//! assert_eq!(partition_for_key(b"21", twelve), 0);
//!
//! let mut sticky = StickyPartitioner::with_seed(7);
//! let first = partition(None, twelve, &mut sticky, "orders");
//! assert_eq!(partition(None, twelve, &mut sticky, "orders"), first);
//! sticky.batch_completed("orders", twelve);
//! assert_ne!(partition(None, twelve, &mut sticky, "orders"), first);
//! // A keyed record ignores the sticky choice.
//! assert_eq!(partition(Some(b"21"), twelve, &mut sticky, "orders"), 0);
//! ```

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Kafka's murmur2 seed (`Utils.murmur2`).
const MURMUR2_SEED: u32 = 0x9747_b28c;
/// Murmur2's multiplier.
const MURMUR2_M: u32 = 0x5bd1_e995;
/// Murmur2's shift in the mixing of each 4-byte chunk.
const MURMUR2_R: u32 = 24;

/// The 32-bit MurmurHash2 of `data`, bit for bit as Kafka's Java `Utils.murmur2`
/// computes it (seed `0x9747b28c`, little-endian 4-byte chunks), returned as Java's
/// signed `int`.
///
/// Java arrays are at most `i32::MAX` bytes long; for longer input (which Kafka cannot
/// hash) the length mixed into the seed is taken modulo 2³², as a Java `int` would wrap.
pub fn murmur2(data: &[u8]) -> i32 {
    // Java's `int` arithmetic wraps and `>>>` is a logical shift: u32 with wrapping
    // multiplication and `>>` is the same bits.
    let mut h = MURMUR2_SEED ^ (data.len() as u32);

    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(MURMUR2_M);
        k ^= k >> MURMUR2_R;
        k = k.wrapping_mul(MURMUR2_M);
        h = h.wrapping_mul(MURMUR2_M);
        h ^= k;
    }

    // The last 1-3 bytes, as Java's `switch (length % 4)` falling through 3 -> 2 -> 1.
    // Bytes are unsigned here, as Java's `& 0xff` makes them.
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(MURMUR2_M);
    }

    h ^= h >> 13;
    h = h.wrapping_mul(MURMUR2_M);
    h ^= h >> 15;

    // Reinterpret the bits as Java's signed int (a cast, not a conversion of value).
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (`n & 0x7fffffff`).
///
/// This is not the absolute value: `to_positive(-1)` is `i32::MAX` and
/// `to_positive(i32::MIN)` is `0`, as in Kafka.
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition Kafka's default partitioner gives a record with key `key` in a topic of
/// `partitions` partitions: `toPositive(murmur2(key)) % partitions`.
///
/// The result is always below `partitions`. An empty key is hashed like any other.
pub fn partition_for_key(key: &[u8], partitions: NonZeroU32) -> u32 {
    // to_positive leaves a value in 0..=i32::MAX, which the cast keeps unchanged.
    let positive = to_positive(murmur2(key)) as u32;
    positive % partitions.get()
}

/// The partition for a record: hashed from its key when it has one
/// ([`partition_for_key`]), else the current sticky choice of `sticky` for `topic`
/// ([`StickyPartitioner::partition`]).
///
/// `Some(&[])` (an empty key) is a key and is hashed; only `None` is sticky, as in Kafka.
pub fn partition(
    key: Option<&[u8]>,
    partitions: NonZeroU32,
    sticky: &mut StickyPartitioner,
    topic: &str,
) -> u32 {
    match key {
        Some(key) => partition_for_key(key, partitions),
        None => sticky.partition(topic, partitions),
    }
}

/// Kafka's sticky partitioning of records without a key (KIP-480).
///
/// For each topic it holds one current partition. [`partition`](Self::partition)
/// returns it (choosing one at random the first time), and keeps returning it until the
/// caller reports with [`batch_completed`](Self::batch_completed) that the batch being
/// filled for that partition is done; then a new partition is chosen at random, never
/// the one just left when the topic has two partitions or more. Keyless records so fill
/// few, large batches instead of many small ones, and spread over all partitions over
/// time.
///
/// Kafka 3.3's adaptive partitioner (KIP-794) switches after a number of bytes and
/// weighs partitions by their brokers' queue lengths; with no brokers here, oncelog keeps
/// KIP-480's rule: switch when the batch completes, to a uniformly chosen other
/// partition.
///
/// Choices come from a small xorshift generator, not from a cryptographic source: they
/// spread load, they protect nothing. [`with_seed`](Self::with_seed) makes them
/// reproducible. One value serves one producer; share it between threads behind a lock.
#[derive(Debug, Clone)]
pub struct StickyPartitioner {
    rng: XorShift64Star,
    /// The current sticky partition of each topic seen so far.
    current: HashMap<String, u32>,
}

impl StickyPartitioner {
    /// A partitioner seeded from the clock, the process id and the thread, so that
    /// producers started together do not all pick the same partitions.
    pub fn new() -> StickyPartitioner {
        StickyPartitioner::with_seed(clock_process_thread_seed())
    }

    /// A partitioner whose choices are fully determined by `seed`: two partitioners with
    /// the same seed, given the same calls, return the same partitions.
    pub fn with_seed(seed: u64) -> StickyPartitioner {
        StickyPartitioner {
            rng: XorShift64Star::new(seed),
            current: HashMap::new(),
        }
    }

    /// The current sticky partition for `topic`, below `partitions`.
    ///
    /// The first call for a topic chooses one at random. Later calls return the same
    /// partition until [`batch_completed`](Self::batch_completed) is called for the
    /// topic. If the remembered partition is not below `partitions` (the caller passed
    /// fewer partitions than before), a new one is chosen.
    pub fn partition(&mut self, topic: &str, partitions: NonZeroU32) -> u32 {
        if let Some(&current) = self.current.get(topic) {
            if current < partitions.get() {
                return current;
            }
        }
        let chosen = self.rng.below(partitions);
        self.set(topic, chosen);
        chosen
    }

    /// Reports that the batch being filled for `topic`'s sticky partition is complete,
    /// so the next keyless record goes elsewhere: a new partition below `partitions` is
    /// chosen uniformly at random among all but the current one (with one partition,
    /// that stays 0). Calling it for a topic with no sticky partition yet simply chooses
    /// one.
    pub fn batch_completed(&mut self, topic: &str, partitions: NonZeroU32) {
        let chosen = match self.current.get(topic) {
            Some(&previous) if previous < partitions.get() && partitions.get() >= 2 => {
                // Uniform over the other partitions-1 numbers: draw below partitions-1
                // and step over the previous one.
                let others = NonZeroU32::new(partitions.get() - 1).unwrap_or(NonZeroU32::MIN);
                let drawn = self.rng.below(others);
                if drawn >= previous {
                    drawn + 1
                } else {
                    drawn
                }
            }
            _ => self.rng.below(partitions),
        };
        self.set(topic, chosen);
    }

    fn set(&mut self, topic: &str, partition: u32) {
        match self.current.get_mut(topic) {
            Some(slot) => *slot = partition,
            None => {
                self.current.insert(topic.to_owned(), partition);
            }
        }
    }
}

impl Default for StickyPartitioner {
    /// Same as [`StickyPartitioner::new`].
    fn default() -> StickyPartitioner {
        StickyPartitioner::new()
    }
}

/// Marsaglia's xorshift64 with a multiplicative output step (xorshift64*): tiny, fast
/// and good enough to spread partitions. Its state is never 0.
#[derive(Debug, Clone)]
struct XorShift64Star {
    state: u64,
}

impl XorShift64Star {
    fn new(seed: u64) -> XorShift64Star {
        // Spread the seed (small seeds such as 1, 2, 3 would otherwise start alike) and
        // keep the state away from 0, the one state xorshift never leaves.
        let state = splitmix64(seed);
        XorShift64Star {
            state: if state == 0 { GOLDEN_GAMMA } else { state },
        }
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`, by multiply-and-shift of the generator's high 32 bits: each
    /// value's probability is within 2⁻³² of `1/n`, plenty for spreading load.
    fn below(&mut self, n: NonZeroU32) -> u32 {
        let high = self.next_u64() >> 32;
        // high < 2^32 and n <= u32::MAX, so the product shifted right by 32 is below n.
        ((high * u64::from(n.get())) >> 32) as u32
    }
}

/// 2⁶⁴ divided by the golden ratio, splitmix64's increment.
const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// splitmix64's output function: a bijective mix of 64 bits.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(GOLDEN_GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seed that differs between processes, threads, instants and successive calls.
fn clock_process_thread_seed() -> u64 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    // ThreadId has no stable integer form; hash it. RandomState's keys add the
    // per-process randomness std already draws for HashMaps.
    let thread = RandomState::new().hash_one(std::thread::current().id());
    let calls = CALLS.fetch_add(1, Ordering::Relaxed);
    splitmix64(nanos) ^ splitmix64(u64::from(std::process::id()).rotate_left(32) ^ calls) ^ thread
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(partitions: u32) -> NonZeroU32 {
        NonZeroU32::new(partitions).unwrap()
    }

    /// Kafka's own vectors, from `UtilsTest.testMurmur2` in apache/kafka
    /// (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java).
    #[test]
    fn murmur2_matches_kafkas_utils_test_vectors() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            // `new byte[] {'a', 'b', 'c'}` in the Java test: a byte array, not a string.
            (&[0x61, 0x62, 0x63], 479470107),
        ];
        for (data, expected) in cases {
            assert_eq!(
                murmur2(data),
                expected,
                "murmur2({:?})",
                String::from_utf8_lossy(data)
            );
        }
    }

    /// Kafka's UtilsTest has no empty-input or high-byte vector. These values were
    /// computed with kafka-python 3.0.12's independent `kafka.partitioner.default.murmur2`
    /// (unsigned result converted to Java's signed int). They cover every tail length and
    /// bytes >= 0x80, which Java must mask with `& 0xff` to avoid sign extension.
    #[test]
    fn murmur2_of_empty_and_binary_inputs() {
        let every_byte: Vec<u8> = (0..=255).collect();
        let cases: [(&[u8], i32); 9] = [
            (b"", 275646681),
            (&[0x00], 375494588),
            (&[0xff], -311467685),
            (&[0x80, 0x81], 1642145146),
            (&[0xff, 0xfe, 0xfd], 998637092),
            (&[0xff, 0xff, 0xff, 0xff], 644171429),
            (&[0x00, 0x00, 0x00, 0x00, 0x80], -850477039),
            (&every_byte, -1948347274),
            ("ключ-🔑".as_bytes(), 1313857076),
        ];
        for (data, expected) in cases {
            assert_eq!(murmur2(data), expected, "murmur2 of {data:02x?}");
        }
    }

    /// The empty input, worked by hand: no chunk and no tail, so only the final mixing
    /// of `seed ^ 0` runs.
    #[test]
    fn murmur2_of_empty_input_is_the_mixed_seed() {
        let mut h: u32 = 0x9747_b28c;
        h ^= h >> 13;
        h = h.wrapping_mul(0x5bd1_e995);
        h ^= h >> 15;
        assert_eq!(murmur2(&[]), h as i32);
        assert_eq!(murmur2(&[]), 275646681);
    }

    #[test]
    fn to_positive_clears_the_sign_bit_only() {
        assert_eq!(to_positive(0), 0);
        assert_eq!(to_positive(5), 5);
        assert_eq!(to_positive(i32::MAX), i32::MAX);
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-973932308), 1173551340);
    }

    /// Expected partitions computed with kafka-python 3.0.12
    /// (`murmur2(key) & 0x7fffffff % n`, its DefaultPartitioner's rule).
    #[test]
    fn partition_for_key_matches_kafka() {
        let cases: [(&[u8], [u32; 7]); 6] = [
            (b"", [0, 1, 0, 2, 9, 81, 681]),
            (b"21", [0, 0, 0, 3, 0, 40, 340]),
            (b"foobar", [0, 0, 0, 0, 6, 66, 166]),
            (b"order-42", [0, 0, 0, 1, 0, 24, 24]),
            (b"user:1001", [0, 1, 2, 2, 5, 13, 913]),
            (&[0xff], [0, 1, 0, 5, 3, 63, 963]),
        ];
        let counts = [1, 2, 3, 7, 12, 100, 1000];
        for (key, expected) in cases {
            for (count, want) in counts.into_iter().zip(expected) {
                assert_eq!(
                    partition_for_key(key, n(count)),
                    want,
                    "key {key:02x?}, {count} partitions"
                );
            }
        }
    }

    #[test]
    fn partition_for_key_is_in_range_for_any_count() {
        for count in [1, 2, 3, 5, 64, 1 << 20, i32::MAX as u32, u32::MAX] {
            for key in [
                &b""[..],
                b"a",
                b"ab",
                b"abc",
                b"abcd",
                b"\xff\xff\xff\xff\xff",
            ] {
                assert!(partition_for_key(key, n(count)) < count);
            }
        }
        // Above i32::MAX partitions the hash itself is the partition.
        assert_eq!(
            partition_for_key(b"21", n(u32::MAX)),
            to_positive(-973932308) as u32
        );
    }

    #[test]
    fn sticky_stays_until_batch_completed_then_moves() {
        for count in [2, 3, 7, 12, 100] {
            let mut sticky = StickyPartitioner::with_seed(u64::from(count));
            let mut current = sticky.partition("t", n(count));
            for _ in 0..200 {
                for _ in 0..5 {
                    assert_eq!(sticky.partition("t", n(count)), current);
                }
                sticky.batch_completed("t", n(count));
                let next = sticky.partition("t", n(count));
                assert_ne!(next, current, "{count} partitions: stayed on {current}");
                assert!(next < count);
                current = next;
            }
        }
    }

    #[test]
    fn sticky_with_one_partition_is_always_zero() {
        let mut sticky = StickyPartitioner::new();
        for _ in 0..100 {
            assert_eq!(sticky.partition("t", n(1)), 0);
            sticky.batch_completed("t", n(1));
        }
        let mut fresh = StickyPartitioner::with_seed(3);
        fresh.batch_completed("never-asked", n(1));
        assert_eq!(fresh.partition("never-asked", n(1)), 0);
    }

    #[test]
    fn sticky_is_always_in_range_even_when_the_count_changes() {
        let mut sticky = StickyPartitioner::with_seed(42);
        // Counts grow (topics gain partitions) and, out of contract, shrink.
        let counts = [1, 2, 3, 8, 8, 2, 1, 100, 5, 1000, 4, 2, 2];
        for round in 0..50 {
            for &count in &counts {
                let p = sticky.partition("t", n(count));
                assert!(p < count, "round {round}: {p} >= {count}");
                sticky.batch_completed("t", n(count));
                assert!(sticky.partition("t", n(count)) < count);
            }
        }
    }

    #[test]
    fn sticky_is_deterministic_with_a_seed() {
        fn run(seed: u64) -> Vec<u32> {
            let mut sticky = StickyPartitioner::with_seed(seed);
            let mut out = Vec::new();
            for i in 0..500u32 {
                let topic = if i % 3 == 0 { "a" } else { "b" };
                out.push(sticky.partition(topic, n(10)));
                sticky.batch_completed(topic, n(10));
            }
            out
        }
        assert_eq!(run(1), run(1));
        assert_eq!(run(0), run(0));
        assert_ne!(run(1), run(2));
        assert_ne!(run(0), run(1));
    }

    #[test]
    fn sticky_topics_are_independent() {
        let mut sticky = StickyPartitioner::with_seed(9);
        let a = sticky.partition("a", n(50));
        let b = sticky.partition("b", n(50));
        for _ in 0..20 {
            sticky.batch_completed("a", n(50));
            assert_eq!(sticky.partition("b", n(50)), b);
        }
        assert_ne!(sticky.partition("a", n(50)), a);
    }

    #[test]
    fn sticky_spreads_over_all_partitions() {
        let count = 7;
        let mut sticky = StickyPartitioner::with_seed(2024);
        let mut hits = [0u32; 7];
        for _ in 0..7000 {
            hits[sticky.partition("t", n(count)) as usize] += 1;
            sticky.batch_completed("t", n(count));
        }
        // Uniform would be 1000 each; allow a wide margin (the run is deterministic).
        for (p, &h) in hits.iter().enumerate() {
            assert!(
                (800..1200).contains(&h),
                "partition {p} chosen {h} times: {hits:?}"
            );
        }
    }

    #[test]
    fn new_partitioners_are_seeded_differently() {
        // Same thread, same instant or not: the call counter alone makes seeds differ.
        let a = clock_process_thread_seed();
        let b = clock_process_thread_seed();
        assert_ne!(a, b);
        let mut sticky = StickyPartitioner::default();
        assert!(sticky.partition("t", n(3)) < 3);
    }

    #[test]
    fn xorshift_never_sticks_at_zero() {
        for seed in [0, 1, u64::MAX, GOLDEN_GAMMA.wrapping_neg()] {
            let mut rng = XorShift64Star::new(seed);
            assert_ne!(rng.state, 0);
            let first = rng.next_u64();
            assert_ne!(first, rng.next_u64());
        }
    }

    #[test]
    fn keyed_records_hash_and_keyless_records_stick() {
        let mut sticky = StickyPartitioner::with_seed(5);
        let count = n(12);
        let keyless = partition(None, count, &mut sticky, "t");
        assert_eq!(partition(Some(b"foobar"), count, &mut sticky, "t"), 6);
        // An empty key is a key: hashed, not sticky.
        assert_eq!(partition(Some(b""), count, &mut sticky, "t"), 9);
        assert_eq!(partition(None, count, &mut sticky, "t"), keyless);
        sticky.batch_completed("t", count);
        assert_ne!(partition(None, count, &mut sticky, "t"), keyless);
        assert_eq!(partition(Some(b"foobar"), count, &mut sticky, "t"), 6);
    }
}
