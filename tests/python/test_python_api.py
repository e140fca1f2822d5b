"""The Python package's API: every call, and misuse raising the documented
exception (never crashing the interpreter).

Runs against the package installed into the venv by `make python`.
"""

from __future__ import annotations

import pathlib
import pickle
import sys

import pytest

import oncelog
from oncelog import OFFSET_BEGINNING, OFFSET_END, OFFSET_INVALID, TopicPartition


def committed_reader(store, topic, partitions=1, group=None):
    config = {"auto.offset.reset": "earliest", "isolation.level": "read_committed"}
    if group:
        config["group.id"] = group
    c = oncelog.Consumer(store, config)
    c.assign([TopicPartition(topic, p) for p in range(partitions)])
    return c


def read_all(consumer, timeout=0.2):
    out = []
    while True:
        batch = consumer.consume(1000, timeout)
        if not batch:
            return out
        out.extend(batch)


# --- Store -------------------------------------------------------------------


def test_store_creates_topics_and_lists_them(store_dir):
    with oncelog.Store(store_dir) as store:
        assert store.path == str(store_dir)
        meta = store.create_topic("orders", partitions=3, config={"segment.bytes": 1 << 20, "retention.ms": -1})
        assert (meta.name, meta.partitions) == ("orders", 3)
        assert meta.config["segment.bytes"] == str(1 << 20)
        store.create_topic("audit")
        assert [t.name for t in store.topics()] == ["audit", "orders"]
        assert store.topic("orders").partitions == 3
        assert store.add_partitions("orders", 4).partitions == 4
        assert "Store(" in repr(store) and "TopicMetadata(" in repr(meta)
    assert store.closed
    assert "closed" in repr(store)


def test_store_accepts_pathlike_and_refuses_missing_without_create(tmp_path):
    with oncelog.Store(pathlib.Path(tmp_path / "s")) as s:
        assert not s.closed
    with pytest.raises(oncelog.InvalidArgument) as e:
        oncelog.Store(tmp_path / "missing", create=False)
    assert isinstance(e.value, ValueError) and e.value.code == "invalid_argument"
    with pytest.raises(TypeError):
        oncelog.Store(123)
    with pytest.raises(TypeError):
        oncelog.Store(b"bytes-path")


def test_store_misuse(store):
    store.create_topic("t")
    with pytest.raises(oncelog.TopicExists):
        store.create_topic("t")
    with pytest.raises(oncelog.InvalidTopicName):
        store.create_topic("no spaces")
    with pytest.raises(oncelog.InvalidTopicName):
        store.create_topic("__consumer_offsets")
    with pytest.raises(oncelog.InvalidArgument):
        store.create_topic("zero", partitions=0)
    with pytest.raises(oncelog.InvalidArgument):
        store.create_topic("negative", partitions=-1)
    with pytest.raises(oncelog.InvalidArgument):
        store.add_partitions("t", -1)
    with pytest.raises(oncelog.InvalidArgument):
        store.add_partitions("t", 1)  # never shrinks or stays
    with pytest.raises(oncelog.InvalidConfig):
        store.create_topic("badconf", config={"no.such.key": "1"})
    with pytest.raises(oncelog.InvalidConfig):
        store.create_topic("badvalue", config={"segment.bytes": "lots"})
    with pytest.raises(TypeError):
        store.create_topic("badtype", config={"segment.bytes": [1]})
    with pytest.raises(TypeError):
        store.create_topic("notadict", config=[("segment.bytes", "1")])
    with pytest.raises(oncelog.UnknownTopic) as e:
        store.topic("nope")
    assert isinstance(e.value, LookupError)
    store.close()
    store.close()  # twice is fine
    with pytest.raises(oncelog.Closed):
        store.topics()
    with pytest.raises(oncelog.Closed):
        oncelog.Producer(store)


# --- Producer ----------------------------------------------------------------


def test_produce_values_keys_headers_and_timestamps(store):
    store.create_topic("t", partitions=2)
    delivered = []
    with oncelog.Producer(store) as p:
        p.produce("t", b"bytes", key=b"k1", partition=0)
        p.produce("t", "text", key="k2", partition=0, headers={"h": b"v", "s": "str", "n": None})
        p.produce("t", bytearray(b"ba"), key=memoryview(b"mv"), partition=0, headers=[("a", b"1"), ("a", b"2")])
        p.produce("t", None, key=b"tombstone", partition=0, timestamp=0)
        p.produce("t", value=b"x", partition=1, timestamp=1_700_000_000_000,
                  on_delivery=lambda err, msg: delivered.append((err, msg)))
        assert p.flush() == 0
    assert len(delivered) == 1
    err, msg = delivered[0]
    assert err is None
    assert (msg.topic, msg.partition, msg.offset, msg.value, msg.key) == ("t", 1, 0, b"x", None)
    assert msg.timestamp == 1_700_000_000_000
    c = oncelog.Consumer(store, {"auto.offset.reset": "earliest"})
    c.assign([TopicPartition("t", 0)])
    msgs = read_all(c)
    assert [(m.key, m.value) for m in msgs] == [
        (b"k1", b"bytes"), (b"k2", b"text"), (b"mv", b"ba"), (b"tombstone", None)]
    assert msgs[0].headers is None
    assert msgs[1].headers == [("h", b"v"), ("s", b"str"), ("n", None)]
    assert msgs[2].headers == [("a", b"1"), ("a", b"2")]
    assert msgs[3].timestamp == 0
    assert [m.offset for m in msgs] == [0, 1, 2, 3]
    assert all(m.topic == "t" and m.partition == 0 for m in msgs)
    with pytest.raises(AttributeError):
        msgs[0].value = b"changed"
    assert "Message(" in repr(msgs[0])
    c.close()


def test_keys_are_partitioned_as_kafka_does(store):
    # murmur2 of the key, as Kafka's Java client: the same key, the same partition.
    store.create_topic("keys", partitions=7)
    delivered = {}
    with oncelog.Producer(store) as p:
        for i in range(50):
            key = f"user-{i % 5}".encode()
            p.produce("keys", b"v", key=key, on_delivery=lambda e, m: delivered.setdefault(m.key, set()).add(m.partition))
        p.flush()
        from kafka.partitioner.default import murmur2

        for key, parts in delivered.items():
            assert parts == {(murmur2(key) & 0x7FFFFFFF) % 7}


def test_produce_misuse_raises(store):
    store.create_topic("t", partitions=2)
    store.create_topic("small", config={"max.message.bytes": 1024})
    p = oncelog.Producer(store)
    with pytest.raises(oncelog.UnknownTopic):
        p.produce("nope", b"v")
    with pytest.raises(oncelog.UnknownPartition):
        p.produce("t", b"v", partition=2)
    with pytest.raises(oncelog.InvalidArgument):
        p.produce("t", b"v", partition=-5)
    with pytest.raises(TypeError):
        p.produce("t", 42)
    with pytest.raises(TypeError):
        p.produce("t", b"v", key=[1, 2])
    with pytest.raises(TypeError):
        p.produce(7, b"v")
    with pytest.raises(TypeError):
        p.produce("t", b"v", headers="not headers")
    with pytest.raises(TypeError):
        p.produce("t", b"v", headers=[("k",)])
    with pytest.raises(TypeError):
        p.produce("t", b"v", headers={1: b"v"})
    with pytest.raises(oncelog.InvalidArgument):
        p.produce("t", b"v", timestamp=-1)
    with pytest.raises(TypeError):
        p.produce("t", b"v", on_delivery="not callable")
    with pytest.raises(oncelog.RecordTooLarge) as e:
        p.produce("small", b"x" * 2000)
    assert isinstance(e.value, ValueError) and not e.value.fatal
    # A refused record does not stop the producer.
    p.produce("small", b"fits")
    with pytest.raises(TypeError):
        p.produce("t", value=b"v", unknown_keyword=1)
    p.close()
    p.close()
    with pytest.raises(oncelog.Closed):
        p.produce("t", b"v")
    with pytest.raises(oncelog.Closed):
        p.flush()
    with pytest.raises(oncelog.Closed):
        p.produce_batch("t", [b"v"])


def test_producer_config_is_checked(store):
    with pytest.raises(oncelog.InvalidConfig) as e:
        oncelog.Producer(store, {"bootstrap.servers": "localhost:9092"})
    assert e.value.code == "invalid_config" and "bootstrap.servers" in str(e.value)
    with pytest.raises(oncelog.InvalidConfig):
        oncelog.Producer(store, {"acks": "sometimes"})
    with pytest.raises(oncelog.InvalidConfig):
        oncelog.Producer(store, {"transactional.id": "t", "enable.idempotence": False})
    with pytest.raises(oncelog.InvalidConfig):
        oncelog.Producer(store, {"delivery": "twice"})
    with pytest.raises(TypeError):
        oncelog.Producer(store, {"acks": None})
    with pytest.raises(TypeError):
        oncelog.Producer(store, {1: "x"})
    with pytest.raises(TypeError):
        oncelog.Producer(store, "acks=all")
    with pytest.raises(TypeError):
        oncelog.Producer(store, {"on_delivery": 5})
    # Kafka's names, Python values: ints, bools, the delivery preset.
    oncelog.Producer(store, {"acks": "all", "linger.ms": 0, "enable.idempotence": True, "delivery": "at-least-once"}).close()


def test_producer_opens_a_store_from_a_path(store_dir):
    with oncelog.Store(store_dir) as s:
        s.create_topic("t")
    with oncelog.Producer(str(store_dir)) as p:
        p.produce("t", b"from a path")
    with oncelog.Consumer(store_dir, {"auto.offset.reset": "earliest"}) as c:
        c.assign([TopicPartition("t", 0)])
        assert c.poll(5).value == b"from a path"


def test_delivery_callbacks_are_served_by_poll_and_flush(store):
    store.create_topic("t")
    seen = []
    p = oncelog.Producer(store, {"on_delivery": lambda err, msg: seen.append(("default", msg.offset))})
    p.produce("t", b"a")
    p.produce("t", b"b", callback=lambda err, msg: seen.append(("own", msg.offset)))
    assert len(p) == 2  # two callbacks not served yet
    assert seen == []
    assert p.poll(0) == 2
    assert seen == [("default", 0), ("own", 1)]
    assert p.poll(0) == 0

    def boom(err, msg):
        raise RuntimeError("callback failed")

    p.produce("t", b"c", on_delivery=boom)
    p.produce("t", b"d")
    with pytest.raises(RuntimeError, match="callback failed"):
        p.poll()
    # The report after the failing one is still served.
    assert p.poll() == 1
    assert seen[-1] == ("default", 3)
    p.close()


def test_lingering_producer_batches_and_reports(store):
    store.create_topic("t", partitions=3)
    seen = []
    with oncelog.Producer(store, {"linger.ms": 60000, "batch.size": 1 << 20}) as p:
        for i in range(30):
            p.produce("t", f"v{i}".encode(), key=f"k{i % 3}".encode(), on_delivery=lambda e, m: seen.append((e, m)))
        p.produce("t", b"no callback", partition=2)
        assert len(p) >= 30  # still pending
        assert p.flush() == 0
    assert len(seen) == 30 and all(e is None for e, _ in seen)
    by_partition = {}
    for _, m in seen:
        by_partition.setdefault(m.partition, []).append(m.offset)
    for offsets in by_partition.values():
        assert offsets == sorted(offsets)
    c = oncelog.Consumer(store, {"auto.offset.reset": "earliest"})
    c.assign([TopicPartition("t", p) for p in range(3)])
    assert len(read_all(c)) == 31


def test_produce_batch_forms_and_order(store):
    store.create_topic("t", partitions=2)
    with oncelog.Producer(store) as p:
        assert p.produce_batch("t", [b"v0", "v1", None], partition=0) == 3
        assert p.produce_batch("t", [(b"k", b"v3"), (None, b"v4", {"h": b"x"}), (b"k", b"v5", None, 123)], partition=0) == 3
        assert p.produce_batch("t", (bytes([i]) * 10 for i in range(5)), partition=1) == 5
        assert p.produce_batch("t", []) == 0
        # Keyed records go where Kafka's partitioner puts them.
        assert p.produce_batch("t", [(f"key{i}".encode(), b"x") for i in range(20)]) == 20
        with pytest.raises(TypeError):
            p.produce_batch("t", b"not a list")
        with pytest.raises(TypeError):
            p.produce_batch("t", [(b"k",)])
        with pytest.raises(TypeError):
            p.produce_batch("t", [(b"k", b"v", None, None, None)])
        with pytest.raises(TypeError):
            p.produce_batch("t", [42])
        with pytest.raises(TypeError):
            p.produce_batch("t", 42)
        with pytest.raises(oncelog.UnknownPartition):
            p.produce_batch("t", [b"v"], partition=9)
    c = oncelog.Consumer(store, {"auto.offset.reset": "earliest"})
    c.assign([TopicPartition("t", 0)])
    msgs = read_all(c)
    assert [m.value for m in msgs[:6]] == [b"v0", b"v1", None, b"v3", b"v4", b"v5"]
    assert msgs[4].headers == [("h", b"x")]
    assert msgs[5].timestamp == 123
    c.assign([TopicPartition("t", 0), TopicPartition("t", 1)])
    assert len(read_all(c)) == 6 + 5 + 20


def test_produce_batch_splits_at_the_size_limit_and_refuses_a_record_too_large(store):
    store.create_topic("small", config={"max.message.bytes": 4096})
    with oncelog.Producer(store) as p:
        assert p.produce_batch("small", [b"x" * 500] * 40) == 40
        with pytest.raises(oncelog.RecordTooLarge):
            p.produce_batch("small", [b"ok", b"y" * 5000])
        p.produce("small", b"still works")
    c = oncelog.Consumer(store, {"auto.offset.reset": "earliest"})
    c.assign([TopicPartition("small", 0)])
    msgs = read_all(c)
    # Nothing of the refused call was appended.
    assert [len(m.value) for m in msgs] == [500] * 40 + [len(b"still works")]


# --- Transactions --------------------------------------------------------------


def test_transactions_commit_and_abort(store):
    store.create_topic("t")
    p = oncelog.Producer(store, {"transactional.id": "tx"})
    with pytest.raises(oncelog.InvalidTxnState):
        p.begin_transaction()  # before init_transactions
    p.init_transactions()
    with pytest.raises(oncelog.InvalidTxnState):
        p.produce("t", b"outside")
    with pytest.raises(oncelog.InvalidTxnState):
        p.commit_transaction()
    p.begin_transaction()
    p.produce("t", b"committed")
    p.produce_batch("t", [b"c2", b"c3"])
    p.commit_transaction()
    p.begin_transaction()
    p.produce("t", b"aborted")
    p.abort_transaction()
    with p.transaction():
        p.produce("t", b"with")
    with pytest.raises(KeyError):
        with p.transaction():
            p.produce("t", b"rolled back")
            raise KeyError("boom")
    tx = p.transaction()
    with tx:
        pass
    with pytest.raises(oncelog.InvalidTxnState):
        with tx:
            pass
    p.close()
    c = committed_reader(store, "t")
    assert [m.value for m in read_all(c)] == [b"committed", b"c2", b"c3", b"with"]


def test_transactions_on_a_plain_producer_are_invalid_config(store):
    p = oncelog.Producer(store)
    for call in (p.init_transactions, p.begin_transaction, p.commit_transaction, p.abort_transaction):
        with pytest.raises(oncelog.InvalidConfig):
            call()
    p.close()


def test_a_zombie_producer_is_fenced(store):
    store.create_topic("t")
    old = oncelog.Producer(store, {"transactional.id": "same"})
    old.init_transactions()
    old.begin_transaction()
    old.produce("t", b"zombie")
    new = oncelog.Producer(store, {"transactional.id": "same"})
    new.init_transactions()  # aborts the old one's transaction and fences it
    with pytest.raises(oncelog.ProducerFenced) as e:
        old.commit_transaction()
    assert e.value.fatal and e.value.code == "producer_fenced"
    with pytest.raises(oncelog.ProducerFenced):
        old.begin_transaction()
    with new.transaction():
        new.produce("t", b"new")
    assert [m.value for m in read_all(committed_reader(store, "t"))] == [b"new"]


def test_offsets_sent_in_a_transaction_commit_with_it(store):
    store.create_topic("in")
    store.create_topic("out")
    with oncelog.Producer(store) as p:
        p.produce_batch("in", [b"a", b"b", b"c"])
    consumer = oncelog.Consumer(store, {"group.id": "g", "delivery": "exactly-once", "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition("in", 0)])
    producer = oncelog.Producer(store, {"transactional.id": "pipe"})
    producer.init_transactions()
    msgs = consumer.consume(10, 5)
    assert len(msgs) == 3
    with pytest.raises(oncelog.InvalidConfig):
        consumer.commit()  # exactly-once commits through the transaction
    with producer.transaction():
        for m in msgs:
            producer.produce("out", m.value.upper())
        producer.send_offsets_to_transaction([TopicPartition("in", 0, msgs[-1].offset + 1)],
                                             consumer.consumer_group_metadata())
    assert consumer.committed([TopicPartition("in", 0)]) == [TopicPartition("in", 0, 3)]
    # An aborted transaction's offsets are not committed.
    with pytest.raises(ZeroDivisionError):
        with producer.transaction():
            producer.send_offsets_to_transaction([TopicPartition("in", 0, 99)], "g")
            1 / 0
    assert consumer.committed([TopicPartition("in", 0)])[0].offset == 3
    producer.begin_transaction()
    with pytest.raises(oncelog.InvalidArgument):
        producer.send_offsets_to_transaction([TopicPartition("in", 0, -1)], "g")
    with pytest.raises(TypeError):
        producer.send_offsets_to_transaction([TopicPartition("in", 0, 1)], 42)
    with pytest.raises(TypeError):
        producer.send_offsets_to_transaction(["in"], "g")
    producer.abort_transaction()
    producer.close()
    consumer.close()


# --- Consumer ----------------------------------------------------------------


def fill(store, topic="t", n=10, partitions=1):
    store.create_topic(topic, partitions=partitions)
    with oncelog.Producer(store) as p:
        for part in range(partitions):
            p.produce_batch(topic, [f"{part}:{i}".encode() for i in range(n)], partition=part)


def test_poll_consume_and_iterate(store):
    fill(store, n=10)
    c = oncelog.Consumer(store, {"auto.offset.reset": "earliest", "max.poll.records": 3})
    c.assign([TopicPartition("t", 0)])
    assert c.assignment() == [TopicPartition("t", 0)]
    first = c.poll(5)
    assert first.value == b"0:0" and first.offset == 0
    assert [m.offset for m in c.consume(4, 5)] == [1, 2, 3, 4]
    it = iter(c)
    assert next(it).offset == 5
    rest = []
    for m in c:
        rest.append(m.offset)
        if m.offset == 9:
            break
    assert rest == [6, 7, 8, 9]
    assert c.poll(0.05) is None
    assert c.consume(5, 0.05) == []
    with pytest.raises(oncelog.InvalidArgument):
        c.consume(0)
    with pytest.raises(oncelog.InvalidArgument):
        c.poll(float("nan"))
    c.close()


def test_commit_committed_position_and_seek(store):
    fill(store, n=10, partitions=2)
    c = oncelog.Consumer(store, {"group.id": "g", "auto.offset.reset": "earliest", "enable.auto.commit": False})
    tp0, tp1 = TopicPartition("t", 0), TopicPartition("t", 1)
    c.assign([tp0, tp1])
    assert c.committed([tp0, tp1]) == [TopicPartition("t", 0, OFFSET_INVALID), TopicPartition("t", 1, OFFSET_INVALID)]
    msgs = [m for m in c.consume(4, 5) if m.partition == 0]
    assert msgs
    c.commit(message=msgs[-1])
    assert c.committed([tp0])[0].offset == msgs[-1].offset + 1
    c.commit(offsets=[TopicPartition("t", 1, 7)])
    assert c.committed([tp1])[0].offset == 7
    with pytest.raises(oncelog.InvalidArgument):
        c.commit(message=msgs[0], offsets=[tp0])
    with pytest.raises(oncelog.InvalidArgument):
        c.commit(offsets=[TopicPartition("t", 0)])  # no offset
    with pytest.raises(TypeError):
        c.commit(message="not a message")
    # Position: the next message handed out, whatever is buffered inside.
    c.seek(TopicPartition("t", 0, 2))
    assert c.position([tp0]) == [TopicPartition("t", 0, 2)]
    assert c.poll(5).offset in (2, 0)
    c.seek(TopicPartition("t", 0, OFFSET_END))
    assert c.position([tp0])[0].offset == 10
    c.seek(TopicPartition("t", 1, OFFSET_BEGINNING))
    assert c.position([tp1])[0].offset == 0
    with pytest.raises(oncelog.InvalidArgument):
        c.seek(TopicPartition("t", 0, -7))
    with pytest.raises(oncelog.InvalidArgument):
        c.seek(TopicPartition("other", 0, 1))  # not assigned
    with pytest.raises(TypeError):
        c.seek("t")
    # commit() with no argument commits what was handed out, not what is buffered.
    c.assign([tp0])
    got = c.poll(5)
    c.commit()
    assert c.committed([tp0])[0].offset == got.offset + 1
    c.close()


def test_assign_with_offsets(store):
    fill(store, n=10)
    c = oncelog.Consumer(store, {"auto.offset.reset": "earliest"})
    c.assign([TopicPartition("t", 0, 7)])
    assert c.poll(5).offset == 7
    c.assign([TopicPartition("t", 0, OFFSET_END)])
    assert c.poll(0.05) is None
    c.assign([TopicPartition("t", 0, OFFSET_BEGINNING)])
    assert c.poll(5).offset == 0
    with pytest.raises(oncelog.UnknownTopic):
        c.assign([TopicPartition("nope", 0)])
    with pytest.raises(oncelog.UnknownPartition):
        c.assign([TopicPartition("t", 5)])
    with pytest.raises(oncelog.InvalidArgument):
        c.assign([TopicPartition("t", 0), TopicPartition("t", 0)])
    with pytest.raises(TypeError):
        c.assign(["t"])
    c.close()


def test_consumer_config_and_closed_misuse(store):
    fill(store)
    with pytest.raises(oncelog.InvalidConfig):
        oncelog.Consumer(store, {"delivery": "exactly-once"})  # needs group.id
    with pytest.raises(oncelog.InvalidConfig):
        oncelog.Consumer(store, {"isolation.level": "serializable"})
    with pytest.raises(oncelog.InvalidConfig):
        oncelog.Consumer(store, {"group.id": "g", "session.timeout.ms": 5})
    c = oncelog.Consumer(store, {})
    with pytest.raises(oncelog.InvalidConfig):
        c.subscribe(["t"])  # needs group.id
    with pytest.raises(oncelog.InvalidConfig):
        c.consumer_group_metadata()
    with pytest.raises(oncelog.InvalidConfig):
        c.committed([TopicPartition("t", 0)])
    with c:
        pass
    assert c.closed
    for call in (lambda: c.poll(0), lambda: c.consume(1, 0), c.commit, c.assignment,
                 lambda: c.assign([]), lambda: next(iter(c)), c.seek_to_committed):
        with pytest.raises(oncelog.Closed):
            call()
    c.close()  # twice is fine


def test_subscribe_with_rebalance_callbacks(store):
    fill(store, partitions=3)
    events = []
    c = oncelog.Consumer(store, {"group.id": "g", "auto.offset.reset": "earliest"})
    with pytest.raises(TypeError):
        c.subscribe("t")  # a str, not a list
    with pytest.raises(TypeError):
        c.subscribe(["t"], on_assign=5)
    c.subscribe(["t"], on_assign=lambda cons, parts: events.append(("assign", cons is c, sorted(parts))),
                on_revoke=lambda cons, parts: events.append(("revoke", cons is c, sorted(parts))))
    assert events == [("assign", True, [TopicPartition("t", p) for p in range(3)])]
    msgs = read_all(c, 0.5)
    assert len(msgs) == 30
    meta = c.consumer_group_metadata()
    assert meta.group_id == "g" and meta.generation >= 0 and "GroupMetadata(" in repr(meta)
    # A second member takes some partitions: the first is told.
    other = oncelog.Consumer(store, {"group.id": "g", "auto.offset.reset": "earliest"})
    other.subscribe(["t"])
    for _ in range(50):
        c.poll(0.05)
        other.poll(0.05)
        if any(e[0] == "revoke" for e in events):
            break
    assert any(e[0] == "revoke" and e[1] for e in events), events
    other.close()
    c.close()


def test_unsubscribe_hands_the_partitions_to_the_other_member(store):
    fill(store, partitions=2)
    events = []
    a = oncelog.Consumer(store, {"group.id": "g", "auto.offset.reset": "earliest"})
    a.subscribe(["t"], on_revoke=lambda cons, parts: events.append(sorted(p.partition for p in parts)))
    assert a.poll(1.0) is not None  # one handed out; the rest stay buffered
    b = oncelog.Consumer(store, {"group.id": "g", "auto.offset.reset": "earliest"})
    b.subscribe(["t"])
    a.unsubscribe()
    assert events == [[0, 1]]
    assert a.assignment() == [] and a.poll(0.05) is None
    # b reads everything a did not hand out: 20 records less the one a had.
    got = read_all(b, 0.5)
    assert len(got) == 19 and {m.partition for m in got} == {0, 1}
    # a may join again, or take an assignment.
    a.assign([TopicPartition("t", 0)])
    assert a.poll(1.0) is not None
    b.close()
    a.close()
    with pytest.raises(oncelog.Closed):
        a.unsubscribe()


def test_an_exception_in_a_rebalance_callback_propagates(store):
    fill(store, partitions=1)
    c = oncelog.Consumer(store, {"group.id": "g"})

    def bad(consumer, partitions):
        raise ValueError("from on_assign")

    with pytest.raises(ValueError, match="from on_assign"):
        c.subscribe(["t"], on_assign=bad)
    c.close()

    c = oncelog.Consumer(store, {"group.id": "g2"})
    calls = []

    def reenter(consumer, partitions):
        calls.append(1)
        consumer.assignment()  # the consumer is inside subscribe: refused

    with pytest.raises(oncelog.ConcurrentUse):
        c.subscribe(["t"], on_assign=reenter)
    assert calls == [1]
    c.close()


def test_seek_to_committed_rewinds_to_the_group_offsets(store):
    fill(store, n=5)
    c = oncelog.Consumer(store, {"group.id": "g", "auto.offset.reset": "earliest", "enable.auto.commit": "false"})
    c.assign([TopicPartition("t", 0)])
    c.commit(offsets=[TopicPartition("t", 0, 2)])
    c.seek(TopicPartition("t", 0, 0))
    assert c.poll(5).offset == 0
    c.seek_to_committed()
    assert c.poll(5).offset == 2
    c.close()


# --- Errors ------------------------------------------------------------------


def test_errors_carry_code_and_flags_and_pickle():
    assert issubclass(oncelog.NoSpace, OSError) and issubclass(oncelog.NoSpace, oncelog.OncelogError)
    assert issubclass(oncelog.IoError, OSError)
    assert issubclass(oncelog.Timeout, TimeoutError)
    assert issubclass(oncelog.InvalidConfig, ValueError)
    assert issubclass(oncelog.UnknownTopic, LookupError)
    assert issubclass(oncelog.ConcurrentUse, RuntimeError)
    assert oncelog.NoSpace.retriable and oncelog.ProducerFenced.fatal
    assert oncelog.TransactionAborted.txn_requires_abort and oncelog.StaleGeneration.txn_requires_abort
    from oncelog.errors import class_for_code

    assert class_for_code("a_kind_from_the_future") is oncelog.OncelogError
    assert class_for_code("corrupt") is oncelog.CorruptLog
    e = oncelog.TransactionAborted("abort it", "transaction_aborted", txn_requires_abort=True)
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is oncelog.TransactionAborted
    assert (back.code, back.txn_requires_abort, str(back)) == ("transaction_aborted", True, "abort it")


def test_a_full_disk_is_no_space_and_retriable(tmp_path):
    # A file-size limit makes appends fail with EFBIG, which the core reports as
    # no_space (never SIGBUS). In a child process: the limit would hit pytest too.
    script = f"""
import resource, signal, oncelog
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
store = oncelog.Store({str(tmp_path / 's')!r})
store.create_topic("t", config={{"segment.bytes": 1 << 20}})
resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, resource.RLIM_INFINITY))
p = oncelog.Producer(store, {{"delivery.timeout.ms": 100, "retry.backoff.ms": 10}})
try:
    for i in range(100000):
        p.produce("t", b"x" * 1000)
except oncelog.NoSpace as e:
    assert isinstance(e, OSError) and e.retriable and not e.fatal, e
    assert e.errno == 27, e.errno  # EFBIG
    print("no_space after", i)
"""
    import subprocess

    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("no_space after"), proc.stdout


def test_module_surface():
    assert oncelog.__version__
    for name in oncelog.__all__:
        assert hasattr(oncelog, name), name
    tp = TopicPartition("t", 1, 5)
    assert (tp.topic, tp.partition, tp.offset) == ("t", 1, 5)
    assert TopicPartition("t").partition == -1 and TopicPartition("t", 0).offset == OFFSET_INVALID
    assert tp == TopicPartition("t", 1, 5) and hash(tp) == hash(TopicPartition("t", 1, 5))
    assert sorted([TopicPartition("b", 0), TopicPartition("a", 1)])[0].topic == "a"
    assert pickle.loads(pickle.dumps(tp)) == tp
    assert repr(tp) == 'TopicPartition(topic="t", partition=1, offset=5)'
