//! Transactional producers: records in several partitions and consumer offsets
//! become visible together on commit and never on abort; a newer holder of the
//! transactional id fences the older one and aborts what it left open.

use std::time::Duration;

use oncelog::{
    Consumer, ConsumerConfig, ErrorKind, Producer, ProducerConfig, ProducerRecord, Store,
    StoreOptions, TopicConfig, TopicPartition,
};

fn setup() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store
        .create_topic("out", 2, TopicConfig::default())
        .unwrap();
    store
        .create_topic("other", 1, TopicConfig::default())
        .unwrap();
    (dir, store)
}

fn txn_producer(store: &Store, id: &str) -> Producer {
    txn_producer_with(store, id, &[])
}

/// A transactional producer `id` with the config `extra`, after `init_transactions`.
fn txn_producer_with(store: &Store, id: &str, extra: &[(&str, &str)]) -> Producer {
    let mut config = ProducerConfig::from_pairs([("transactional.id", id)]).unwrap();
    for (k, v) in extra {
        config.set(k, v).unwrap();
    }
    let p = Producer::new(store, config).unwrap();
    p.init_transactions().unwrap();
    p
}

fn committed_view(store: &Store) -> Vec<String> {
    let mut c = read_committed_consumer(
        store,
        &[
            TopicPartition::new("out", 0),
            TopicPartition::new("out", 1),
            TopicPartition::new("other", 0),
        ],
    );
    let mut out: Vec<String> = c
        .poll(Duration::ZERO)
        .unwrap()
        .into_iter()
        .map(|r| String::from_utf8(r.value.unwrap()).unwrap())
        .collect();
    out.sort();
    out
}

fn uncommitted_count(store: &Store) -> i64 {
    ["out-0", "out-1", "other-0"]
        .iter()
        .map(|tp| {
            let (t, p) = tp.rsplit_once('-').unwrap();
            store.partition(t, p.parse().unwrap()).unwrap().end_offset()
        })
        .sum()
}

#[test]
fn a_commit_makes_records_and_offsets_visible_together() {
    let (_dir, store) = setup();
    let p = txn_producer(&store, "pipeline");
    p.begin_transaction().unwrap();
    p.send(ProducerRecord::new("out", b"a").partition(0))
        .unwrap();
    p.send(ProducerRecord::new("out", b"b").partition(1))
        .unwrap();
    p.send(ProducerRecord::new("other", b"c")).unwrap();
    p.send_offsets_to_transaction(&[(TopicPartition::new("in", 0), 42)], "g")
        .unwrap();
    assert_eq!(uncommitted_count(&store), 3, "appended already");
    assert!(
        committed_view(&store).is_empty(),
        "but not visible before the commit"
    );
    let group = Consumer::new(
        &store,
        ConsumerConfig::from_pairs([("group.id", "g")]).unwrap(),
    )
    .unwrap();
    assert_eq!(
        group.committed(&TopicPartition::new("in", 0)).unwrap(),
        None
    );

    p.commit_transaction().unwrap();
    assert_eq!(committed_view(&store), ["a", "b", "c"]);
    assert_eq!(
        group
            .committed(&TopicPartition::new("in", 0))
            .unwrap()
            .unwrap()
            .offset,
        42
    );
    let reports = p.poll();
    assert_eq!(reports.len(), 3);
    assert!(reports.iter().all(|r| r.result.is_ok()));

    // The next transaction continues with a new epoch (sequences start again).
    let (_, epoch_after) = p.identity().unwrap();
    p.begin_transaction().unwrap();
    p.send(ProducerRecord::new("out", b"d").partition(0))
        .unwrap();
    p.commit_transaction().unwrap();
    assert!(p.identity().unwrap().1 > epoch_after);
    assert_eq!(committed_view(&store), ["a", "b", "c", "d"]);
}

#[test]
fn an_abort_hides_everything_and_drops_what_was_pending() {
    let (_dir, store) = setup();
    let p = txn_producer_with(&store, "t", &[("linger.ms", "60000")]);
    p.begin_transaction().unwrap();
    p.send_batch("out", 0, &[oncelog::Record::value(b"appended")])
        .unwrap();
    p.send(ProducerRecord::new("out", b"pending").partition(1))
        .unwrap();
    p.send_offsets_to_transaction(&[(TopicPartition::new("in", 0), 7)], "g")
        .unwrap();
    p.abort_transaction().unwrap();
    let reports = p.poll();
    assert_eq!(reports.len(), 1);
    assert_eq!(
        reports[0].result.as_ref().unwrap_err().kind(),
        ErrorKind::TransactionAborted
    );
    assert!(committed_view(&store).is_empty());
    assert_eq!(
        store.partition("out", 0).unwrap().last_stable_offset(),
        store.partition("out", 0).unwrap().end_offset()
    );
    let group = Consumer::new(
        &store,
        ConsumerConfig::from_pairs([("group.id", "g")]).unwrap(),
    )
    .unwrap();
    assert_eq!(
        group.committed(&TopicPartition::new("in", 0)).unwrap(),
        None
    );
}

#[test]
fn a_newer_holder_fences_the_older_and_aborts_what_it_left_open() {
    let (_dir, store) = setup();
    let old = txn_producer(&store, "worker");
    old.begin_transaction().unwrap();
    old.send(ProducerRecord::new("out", b"from the zombie").partition(0))
        .unwrap();
    let out0 = store.partition("out", 0).unwrap();
    assert_eq!(
        out0.last_stable_offset(),
        0,
        "the open transaction holds the LSO"
    );

    // A new process takes over the id (the old one is presumed dead, or a zombie).
    let new = txn_producer(&store, "worker");
    assert_eq!(
        out0.last_stable_offset(),
        out0.end_offset(),
        "the leftover transaction was aborted"
    );
    assert!(committed_view(&store).is_empty());

    // The zombie can neither write nor commit any more.
    let late = old.send(ProducerRecord::new("out", b"late").partition(1));
    let commit = old.commit_transaction();
    for result in [late.map(|_| ()), commit] {
        let e = result.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ProducerFenced, "{e}");
    }
    // The new holder works.
    new.begin_transaction().unwrap();
    new.send(ProducerRecord::new("out", b"from the new holder").partition(1))
        .unwrap();
    new.commit_transaction().unwrap();
    assert_eq!(committed_view(&store), ["from the new holder"]);
}

#[test]
fn transaction_calls_out_of_order_are_refused() {
    let (_dir, store) = setup();
    let config = ProducerConfig::from_pairs([("transactional.id", "x")]).unwrap();
    let p = Producer::new(&store, config).unwrap();
    assert_eq!(
        p.begin_transaction().unwrap_err().kind(),
        ErrorKind::InvalidTxnState,
        "before init"
    );
    p.init_transactions().unwrap();
    assert_eq!(
        p.send(ProducerRecord::new("out", b"x")).unwrap_err().kind(),
        ErrorKind::InvalidTxnState
    );
    assert_eq!(
        p.commit_transaction().unwrap_err().kind(),
        ErrorKind::InvalidTxnState
    );
    p.begin_transaction().unwrap();
    assert_eq!(
        p.begin_transaction().unwrap_err().kind(),
        ErrorKind::InvalidTxnState
    );
    assert_eq!(
        p.init_transactions().unwrap_err().kind(),
        ErrorKind::InvalidTxnState
    );
    p.abort_transaction().unwrap();
    let plain = Producer::new(&store, ProducerConfig::default()).unwrap();
    assert_eq!(
        plain.init_transactions().unwrap_err().kind(),
        ErrorKind::InvalidConfig
    );
    let bad =
        ProducerConfig::from_pairs([("transactional.id", "y"), ("enable.idempotence", "false")]);
    assert_eq!(bad.unwrap_err().kind(), ErrorKind::InvalidConfig);
}

fn read_committed_consumer(store: &Store, partitions: &[TopicPartition]) -> Consumer {
    let mut c = Consumer::new(
        store,
        ConsumerConfig::from_pairs([
            ("isolation.level", "read_committed"),
            ("auto.offset.reset", "earliest"),
        ])
        .unwrap(),
    )
    .unwrap();
    c.assign(partitions).unwrap();
    c
}

#[test]
fn a_transaction_whose_holder_is_gone_is_aborted_by_whoever_waits_behind_it() {
    let (_dir, store) = setup();
    let p = txn_producer(&store, "gone");
    p.begin_transaction().unwrap();
    p.send(ProducerRecord::new("out", b"never visible").partition(0))
        .unwrap();
    drop(p); // the holder is gone: its liveness lock is released
    let out0 = store.partition("out", 0).unwrap();
    out0.append(&[oncelog::Record::value(b"after")]).unwrap();
    assert_eq!(out0.last_stable_offset(), 0);

    let mut c = read_committed_consumer(&store, &[TopicPartition::new("out", 0)]);
    let t0 = std::time::Instant::now();
    let got = c.poll(Duration::from_secs(10)).unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "noticed at once, not at the timeout"
    );
    let values: Vec<Vec<u8>> = got.into_iter().map(|r| r.value.unwrap()).collect();
    assert_eq!(values, [b"after".to_vec()]);
    assert_eq!(out0.last_stable_offset(), out0.end_offset());
}

#[test]
fn a_transaction_open_past_its_timeout_is_aborted_and_its_holder_fenced() {
    let (_dir, store) = setup();
    let p = txn_producer_with(&store, "slow", &[("transaction.timeout.ms", "300")]);
    p.begin_transaction().unwrap();
    p.send(ProducerRecord::new("out", b"too slow").partition(0))
        .unwrap();
    let mut c = read_committed_consumer(&store, &[TopicPartition::new("out", 0)]);
    assert!(
        c.poll(Duration::from_millis(100)).unwrap().is_empty(),
        "still within its timeout"
    );
    let t0 = std::time::Instant::now();
    let out0 = store.partition("out", 0).unwrap();
    while out0.last_stable_offset() < out0.end_offset() {
        assert!(c.poll(Duration::from_millis(100)).unwrap().is_empty());
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the transaction was never aborted"
        );
    }
    // The holder was alive but too slow: it is fenced.
    assert_eq!(
        p.commit_transaction().unwrap_err().kind(),
        ErrorKind::ProducerFenced
    );
}

#[test]
fn a_transaction_unknown_to_the_coordinator_is_aborted_by_whoever_waits_behind_it() {
    // Transactional data whose state record never reached the coordinator log (as
    // after a power cut that kept the synced data and lost the unsynced record).
    let (_dir, store) = setup();
    let out0 = store.partition("out", 0).unwrap();
    let orphan = store.allocate_producer_id().unwrap();
    let options = oncelog::AppendOptions {
        batch: oncelog::record::BatchOptions {
            producer: oncelog::record::ProducerInfo {
                producer_id: orphan,
                producer_epoch: 3,
                base_sequence: 0,
            },
            transactional: true,
            ..Default::default()
        },
        durability: None,
    };
    out0.append_with(&[oncelog::Record::value(b"orphan")], &options)
        .unwrap();
    out0.append(&[oncelog::Record::value(b"after")]).unwrap();
    assert_eq!(out0.last_stable_offset(), 0);

    let mut c = read_committed_consumer(&store, &[TopicPartition::new("out", 0)]);
    let values: Vec<Vec<u8>> = c
        .poll(Duration::from_secs(10))
        .unwrap()
        .into_iter()
        .map(|r| r.value.unwrap())
        .collect();
    assert_eq!(values, [b"after".to_vec()]);
    assert_eq!(out0.last_stable_offset(), out0.end_offset());
    assert_eq!(out0.end_offset(), 3, "one ABORT marker was appended");
}

#[test]
fn a_committed_producer_idle_past_its_timeout_is_neither_fenced_nor_marked_again() {
    let (_dir, store) = setup();
    let p = txn_producer_with(&store, "idle", &[("transaction.timeout.ms", "200")]);
    for partitions in [&[0][..], &[0, 1][..]] {
        p.begin_transaction().unwrap();
        for &partition in partitions {
            p.send(ProducerRecord::new("out", b"kept").partition(partition))
                .unwrap();
        }
        p.commit_transaction().unwrap();
        let ends = (store.partition("out", 0).unwrap().end_offset(), {
            store.partition("out", 1).unwrap().end_offset()
        });
        std::thread::sleep(Duration::from_millis(300));
        // Another process looking for abandoned transactions finds the last one
        // decided and marked everywhere: it writes no marker.
        let other = oncelog::txn::Coordinator::open(&store, oncelog::Durability::Written).unwrap();
        other.finish_abandoned().unwrap();
        assert_eq!(
            (store.partition("out", 0).unwrap().end_offset(), {
                store.partition("out", 1).unwrap().end_offset()
            }),
            ends
        );
    }
    p.begin_transaction().unwrap();
    p.send(ProducerRecord::new("out", b"still holder").partition(0))
        .unwrap();
    p.commit_transaction().unwrap();
    assert_eq!(
        committed_view(&store),
        ["kept", "kept", "kept", "still holder"]
    );
}

#[test]
fn a_holder_that_committed_leaves_nothing_to_finish_to_the_next_one() {
    let (_dir, store) = setup();
    let first = txn_producer(&store, "handover");
    first.begin_transaction().unwrap();
    first
        .send(ProducerRecord::new("out", b"one").partition(0))
        .unwrap();
    first.commit_transaction().unwrap();
    let end = store.partition("out", 0).unwrap().end_offset();
    // The first holder is still open (its completed state not yet written): the next
    // holder finds its transaction marked and adds no marker of its own.
    let second = txn_producer(&store, "handover");
    assert_eq!(store.partition("out", 0).unwrap().end_offset(), end);
    first.begin_transaction().unwrap();
    assert_eq!(
        first
            .send(ProducerRecord::new("out", b"zombie").partition(0))
            .unwrap_err()
            .kind(),
        ErrorKind::ProducerFenced
    );
    second.begin_transaction().unwrap();
    second
        .send(ProducerRecord::new("out", b"two").partition(1))
        .unwrap();
    second.commit_transaction().unwrap();
    assert_eq!(committed_view(&store), ["one", "two"]);
}

#[test]
fn a_closed_producer_leaves_its_last_transaction_completed() {
    let (_dir, store) = setup();
    let p = txn_producer(&store, "closer");
    p.begin_transaction().unwrap();
    p.send(ProducerRecord::new("out", b"a").partition(0))
        .unwrap();
    p.send(ProducerRecord::new("other", b"b").partition(0))
        .unwrap();
    p.commit_transaction().unwrap();
    let other = oncelog::txn::Coordinator::open(&store, oncelog::Durability::Written).unwrap();
    let status = |c: &oncelog::txn::Coordinator| c.state("closer").unwrap().unwrap().status;
    assert_eq!(status(&other), oncelog::txn::TxnStatus::PrepareCommit);
    p.close().unwrap();
    assert_eq!(status(&other), oncelog::txn::TxnStatus::CompleteCommit);
}

#[test]
fn a_synced_commit_is_on_stable_storage_and_one_partition_costs_one_fdatasync() {
    let (_dir, store) = setup();
    let p = txn_producer_with(&store, "durable", &[("acks", "synced")]);
    let out0 = store.partition("out", 0).unwrap();
    let other0 = store.partition("other", 0).unwrap();

    // A first commit; its sync also has the flusher thread move the recovery point
    // (at most once a second, a sync of its own): let that pass.
    p.begin_transaction().unwrap();
    p.send(ProducerRecord::new("out", b"first").partition(0))
        .unwrap();
    p.commit_transaction().unwrap();
    std::thread::sleep(Duration::from_millis(100));

    let syncs = out0.metrics().syncs;
    p.begin_transaction().unwrap();
    for i in 0..10 {
        p.send(ProducerRecord::new("out", format!("r{i}").as_bytes()).partition(0))
            .unwrap();
    }
    assert_eq!(out0.metrics().syncs, syncs, "no sync before the commit");
    p.commit_transaction().unwrap();
    assert_eq!(out0.metrics().syncs, syncs + 1, "data and marker in one");
    assert_eq!(out0.synced_offset(), out0.end_offset());

    p.begin_transaction().unwrap();
    p.send(ProducerRecord::new("out", b"x").partition(0))
        .unwrap();
    p.send(ProducerRecord::new("other", b"y").partition(0))
        .unwrap();
    p.commit_transaction().unwrap();
    assert_eq!(out0.synced_offset(), out0.end_offset());
    assert_eq!(other0.synced_offset(), other0.end_offset());
}

#[test]
fn concurrent_synced_committers_share_their_syncs() {
    let (_dir, store) = setup();
    let out0 = store.partition("out", 0).unwrap();
    let syncs = out0.metrics().syncs;
    let (threads, commits) = (4, 50);
    std::thread::scope(|s| {
        for t in 0..threads {
            let store = &store;
            s.spawn(move || {
                let id = format!("committer-{t}");
                let p = txn_producer_with(store, &id, &[("acks", "synced")]);
                for i in 0..commits {
                    p.begin_transaction().unwrap();
                    p.send(ProducerRecord::new("out", format!("{t}-{i}").as_bytes()).partition(0))
                        .unwrap();
                    p.commit_transaction().unwrap();
                }
            });
        }
    });
    assert_eq!(out0.synced_offset(), out0.end_offset());
    let used = out0.metrics().syncs - syncs;
    assert!(
        used < threads * commits,
        "{used} syncs for {} commits: none was shared",
        threads * commits
    );
    assert_eq!(committed_view(&store).len(), (threads * commits) as usize);
}

#[test]
fn a_producer_outlives_its_epochs_by_moving_to_a_new_producer_id() {
    // Every transaction ends with the next epoch (its markers fence the previous
    // one); before the epoch would overflow, the holder goes on as a new producer
    // id. Nothing may be mistaken for a retried duplicate on the way.
    let (_dir, store) = setup();
    let p = txn_producer(&store, "long-lived");
    let (first_id, _) = p.identity().unwrap();
    let n = i16::MAX as i64 + 100;
    for i in 0..n {
        p.begin_transaction().unwrap();
        p.send(ProducerRecord::new("other", &i.to_be_bytes()).partition(0))
            .unwrap();
        p.commit_transaction().unwrap();
    }
    let (id, epoch) = p.identity().unwrap();
    assert_ne!(id, first_id, "moved to a new producer id");
    assert!(epoch < 200, "and started again from epoch 0: {epoch}");
    let other = store.partition("other", 0).unwrap();
    assert_eq!(
        other.end_offset(),
        2 * n,
        "every record and marker appended"
    );
    assert_eq!(other.metrics().duplicates, 0);
}
