"""demo_child.py - a child process of `oncelog demo --lang python`: the producer or
the consumer of one delivery mode, doing exactly what the Rust and C children do,
so that either may be killed and restarted in another language.

    python demo_child.py --dir STORE --mode MODE --role ROLE --records N

MODE: at-most-once | at-least-once | exactly-once; ROLE: producer | consumer.
The producer writes the numbers 0..N-1 to "input" in chunks of 100 (noting its
progress in STORE/producer.next before a chunk at most once, after it at least
once, or in the log itself through transactions exactly once), then creates
STORE/producer.done. The consumer turns each input record into an "output" record,
committing offsets as the mode says, until the producer is done and the input is
drained.
"""

import argparse
import os
import sys

import oncelog

CHUNK = 100


def read_number(path: str) -> int:
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except FileNotFoundError:
        return 0


def write_number(path: str, n: int) -> None:
    """Replaces the number (a rename: a kill leaves the old or the new)."""
    with open(path + ".tmp", "w") as f:
        f.write(str(n))
    os.replace(path + ".tmp", path)


def committed_input(store: oncelog.Store) -> int:
    """Input records that committed transactions hold (each number once, in order)."""
    reader = oncelog.Consumer(
        store, {"isolation.level": "read_committed", "auto.offset.reset": "earliest"}
    )
    reader.assign([oncelog.TopicPartition("input", 0)])
    n = 0
    while True:
        batch = reader.consume(1000, timeout=0)
        if not batch:
            break
        n += len(batch)
    reader.close()
    return n


def produce(store: oncelog.Store, directory: str, mode: str, records: int) -> None:
    progress = os.path.join(directory, "producer.next")
    config = {"delivery": mode}
    if mode == "exactly-once":
        config["transactional.id"] = "demo-producer"
    producer = oncelog.Producer(store, config)
    if mode == "exactly-once":
        producer.init_transactions()
        nxt = committed_input(store)
    else:
        nxt = read_number(progress)
    while nxt < records:
        end = min(nxt + CHUNK, records)
        values = [str(i).encode() for i in range(nxt, end)]
        if mode == "at-most-once":
            write_number(progress, end)  # never sent again, whatever happens
            try:
                for v in values:
                    producer.produce("input", v, partition=0)
                producer.flush()
            except oncelog.OncelogError:
                pass
        elif mode == "at-least-once":
            for v in values:
                producer.produce("input", v, partition=0)
            producer.flush()
            write_number(progress, end)  # acknowledged: not sent again
        else:
            with producer.transaction():
                for v in values:
                    producer.produce("input", v, partition=0)
        nxt = end
    producer.close()
    open(os.path.join(directory, "producer.done"), "w").close()


def consume(store: oncelog.Store, directory: str, mode: str) -> None:
    consumer = oncelog.Consumer(
        store,
        {
            "group.id": "demo",
            "delivery": mode,
            "auto.offset.reset": "earliest",
            "max.poll.records": 100,
        },
    )
    consumer.assign([oncelog.TopicPartition("input", 0)])
    config = {"delivery": mode}
    if mode == "exactly-once":
        config["transactional.id"] = "demo-consumer"
    producer = oncelog.Producer(store, config)
    if mode == "exactly-once":
        producer.init_transactions()
    done_file = os.path.join(directory, "producer.done")
    while True:
        # Checked before polling: once the producer is done, an empty poll means the
        # input is drained.
        done = os.path.exists(done_file)
        batch = consumer.consume(100, timeout=0.05)
        if not batch:
            if done:
                break
            continue
        if mode != "exactly-once":
            # at-most-once: committed by the poll, before this; at-least-once: by the
            # next poll, after it.
            for msg in batch:
                producer.produce("output", msg.value, partition=0)
            producer.flush()
            continue
        try:
            with producer.transaction():
                for msg in batch:
                    producer.produce("output", msg.value, partition=0)
                producer.send_offsets_to_transaction(
                    [oncelog.TopicPartition("input", 0, batch[-1].offset + 1)],
                    consumer.consumer_group_metadata(),
                )
        except oncelog.OncelogError as e:
            if not e.txn_requires_abort:
                raise
            consumer.seek_to_committed()
    consumer.close()
    producer.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--mode", required=True, choices=["at-most-once", "at-least-once", "exactly-once"])
    ap.add_argument("--role", required=True, choices=["producer", "consumer"])
    ap.add_argument("--records", required=True, type=int)
    args = ap.parse_args()
    store = oncelog.Store(args.dir)
    if args.role == "producer":
        produce(store, args.dir, args.mode, args.records)
    else:
        consume(store, args.dir, args.mode)
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
