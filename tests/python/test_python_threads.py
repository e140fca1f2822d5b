"""Threads and fork: waits release the GIL, producers are shared between threads,
a consumer refuses a second concurrent caller, and a forked child cannot use its
parent's objects (it opens the store again)."""

from __future__ import annotations

import os
import threading
import time

import pytest

import oncelog
from oncelog import TopicPartition


def test_a_thread_blocked_in_poll_does_not_block_other_threads(store):
    store.create_topic("t")
    consumer = oncelog.Consumer(store, {"auto.offset.reset": "latest"})
    consumer.assign([TopicPartition("t", 0)])
    consumer.position([TopicPartition("t", 0)])  # pins "latest" before the wait
    got = []
    started = threading.Event()

    def poller():
        started.set()
        got.append((consumer.poll(10.0), time.monotonic()))

    t = threading.Thread(target=poller)
    t.start()
    started.wait()
    time.sleep(0.05)
    # This thread keeps running Python code while the other waits inside poll.
    spins = 0
    until = time.monotonic() + 0.3
    while time.monotonic() < until:
        spins += 1
    assert spins > 10_000, f"only {spins} iterations in 0.3 s: the poller holds the GIL"
    assert t.is_alive() and not got
    with oncelog.Producer(store) as p:
        p.produce("t", b"wake up")
        sent = time.monotonic()
    t.join(5)
    assert not t.is_alive()
    msg, woke = got[0]
    assert msg is not None and msg.value == b"wake up"
    assert woke - sent < 2.0
    consumer.close()


def test_a_blocked_producer_flush_and_batch_let_other_threads_run(store):
    store.create_topic("t")
    p = oncelog.Producer(store)
    records = [(b"k", b"x" * 100)] * 1000
    done = threading.Event()

    def writer():
        for _ in range(200):
            p.produce_batch("t", records)
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    spins = 0
    while not done.is_set():
        spins += 1
    t.join()
    assert spins > 1000, f"only {spins} iterations while 200,000 records were appended"
    p.close()


def test_one_producer_shared_by_threads(store):
    store.create_topic("t", partitions=3)
    p = oncelog.Producer(store)
    errors = []

    def work(n):
        try:
            for i in range(2000):
                if i % 2:
                    p.produce("t", f"{n}:{i}".encode(), key=f"thread-{n}".encode())
                else:
                    p.produce_batch("t", [(f"thread-{n}".encode(), f"{n}:{i}".encode())])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    p.close()
    c = oncelog.Consumer(store, {"auto.offset.reset": "earliest"})
    c.assign([TopicPartition("t", i) for i in range(3)])
    seen = {}
    while True:
        batch = c.consume(1000, 0.2)
        if not batch:
            break
        for m in batch:
            n, i = map(int, m.value.split(b":"))
            seen.setdefault(n, []).append(i)
    # Each thread's records: all there, in order (one key, so one partition).
    assert sorted(seen) == [0, 1, 2, 3]
    for n, order in seen.items():
        assert order == list(range(2000)), n


def test_a_consumer_refuses_a_second_caller(store):
    store.create_topic("t")
    c = oncelog.Consumer(store, {"auto.offset.reset": "latest"})
    c.assign([TopicPartition("t", 0)])
    inside = threading.Event()
    result = []

    def long_poll():
        inside.set()
        result.append(c.poll(1.0))

    t = threading.Thread(target=long_poll)
    t.start()
    inside.wait()
    time.sleep(0.1)
    for call in (lambda: c.poll(0), lambda: c.consume(1, 0), c.assignment, c.close,
                 lambda: c.position([TopicPartition("t", 0)])):
        with pytest.raises(oncelog.ConcurrentUse) as e:
            call()
        assert isinstance(e.value, RuntimeError) and e.value.code == "concurrent_use"
    t.join()
    assert result == [None]
    # Once the other call returned, the consumer works again.
    assert c.poll(0) is None
    c.close()


def test_a_forked_child_cannot_use_the_parents_objects(store):
    store.create_topic("t")
    p = oncelog.Producer(store)
    p.produce("t", b"parent")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            try:
                p.produce("t", b"child through the parent's producer")
            except oncelog.Forked as e:
                assert e.fatal
                # A store opened again in the child works.
                with oncelog.Store(store.path) as s2, oncelog.Producer(s2) as p2:
                    p2.produce("t", b"child")
                code = 0
        finally:
            os.write(w, str(code).encode())
            os._exit(code)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    assert os.read(r, 10) == b"0" and os.waitstatus_to_exitcode(status) == 0
    p.produce("t", b"parent again")
    p.close()
    c = oncelog.Consumer(store, {"auto.offset.reset": "earliest"})
    c.assign([TopicPartition("t", 0)])
    assert [m.value for m in c.consume(10, 1)] == [b"parent", b"child", b"parent again"]


def test_lingering_producer_calls_every_callback_with_threads(store):
    # With linger.ms the core's linger thread appends and reports at any moment,
    # possibly before produce() returns: every callback must still be called once.
    store.create_topic("t", partitions=2)
    p = oncelog.Producer(store, {"linger.ms": 1, "batch.size": 512})
    calls = []

    def work(n):
        for i in range(500):
            p.produce("t", f"{n}:{i}".encode(), key=f"k{i % 2}".encode(),
                      on_delivery=lambda err, msg: calls.append((err, msg.value)))
            if i % 50 == 0:
                p.poll(0)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    p.flush()
    p.close()
    assert all(err is None for err, _ in calls)
    assert sorted(v for _, v in calls) == sorted(f"{n}:{i}".encode() for n in range(3) for i in range(500))
