//! Strings written into the internal logs are Kafka strings (an int16 length): a
//! transactional id, group id or offset metadata longer than 32767 bytes is refused
//! up front. (They were cut when encoded: the record then named another id or group,
//! or, cut inside a UTF-8 character, could not be read back at all. Found by the
//! property tests of `src/codec_props.rs`.)

use oncelog::offsets::OffsetStore;
use oncelog::txn::Coordinator;
use oncelog::{
    ConsumerConfig, Durability, ErrorKind, ProducerConfig, Store, StoreOptions, TopicConfig,
};

const LONGEST: usize = i16::MAX as usize;

#[test]
fn offset_metadata_of_the_longest_length_round_trips_and_longer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    let offsets = OffsetStore::open(&store).unwrap();
    // 16383 two-byte characters and one more byte: the longest string that fits.
    let longest = "é".repeat(LONGEST / 2) + "a";
    offsets.commit("g", &[("t", 0, 7, &longest)]).unwrap();
    let committed = offsets.committed("g", "t", 0).unwrap().unwrap();
    assert_eq!((committed.offset, committed.metadata), (7, longest.clone()));

    let too_long = longest + "é";
    let err = offsets.commit("g", &[("t", 0, 8, &too_long)]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let group = "g".repeat(LONGEST + 1);
    let err = offsets.commit(&group, &[("t", 0, 8, "")]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(offsets.committed("g", "t", 0).unwrap().unwrap().offset, 7);
}

#[test]
fn a_transactional_id_too_long_for_the_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let coordinator = Coordinator::open(&store, Durability::Written).unwrap();
    let too_long = "x".repeat(LONGEST + 1);
    let err = coordinator.init(&too_long, 60_000).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(coordinator.states().unwrap().is_empty());
    let longest = "x".repeat(LONGEST);
    coordinator.init(&longest, 60_000).unwrap();
    let states = coordinator.states().unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].0, longest);

    let mut config = ProducerConfig::default();
    let err = config.set("transactional.id", &too_long).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    let mut config = ConsumerConfig::default();
    let err = config.set("group.id", &too_long).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
}
