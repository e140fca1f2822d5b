"""exactly_once.py - an exactly-once consume-transform-produce loop.

    python exactly_once.py STORE_DIR [--input T] [--output O] [--group G]
                           [--transactional-id ID] [--max-poll N] [--idle SECONDS]

A member of consumer group G (default "upper") reading topic T (default
"greetings") read_committed; for each poll it writes the upper-cased values to
topic O (default "greetings-upper", created if missing) and commits the input
offsets in the same transaction, with the consumer's group metadata. A crash at any
instant leaves every input record exactly once in O, as a read_committed consumer
sees it: the next run with the same transactional id aborts what the crashed one
left open, and the group's committed offsets say where to resume.

Several copies (each its own --transactional-id) share the input's partitions.
Stops when nothing arrives for --idle seconds (default 2; 0: never).
"""

import argparse
import sys

import oncelog


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("store")
    ap.add_argument("--input", default="greetings")
    ap.add_argument("--output", default="greetings-upper")
    ap.add_argument("--group", default="upper")
    ap.add_argument("--transactional-id", default="upper-1")
    ap.add_argument("--max-poll", type=int, default=100)
    ap.add_argument("--idle", type=float, default=2.0)
    args = ap.parse_args()

    store = oncelog.Store(args.store)
    try:
        store.create_topic(args.output)
    except oncelog.TopicExists:
        pass

    def new_producer() -> oncelog.Producer:
        producer = oncelog.Producer(store, {"transactional.id": args.transactional_id})
        # Fences any earlier producer with this id, and aborts what it left open.
        producer.init_transactions()
        return producer

    producer = new_producer()
    consumer = oncelog.Consumer(
        store,
        {
            "group.id": args.group,
            "delivery": "exactly-once",  # read_committed; offsets only through transactions
            "auto.offset.reset": "earliest",
            "max.poll.records": args.max_poll,
        },
    )
    consumer.subscribe([args.input])
    print("ready", flush=True)
    done = 0
    while True:
        msgs = consumer.consume(args.max_poll, timeout=args.idle if args.idle > 0 else None)
        if not msgs:
            break
        next_offsets = {}
        try:
            with producer.transaction():
                for msg in msgs:
                    producer.produce(args.output, (msg.value or b"").upper(), key=msg.key)
                    next_offsets[(msg.topic, msg.partition)] = msg.offset + 1
                producer.send_offsets_to_transaction(
                    [oncelog.TopicPartition(t, p, o) for (t, p), o in next_offsets.items()],
                    consumer.consumer_group_metadata(),
                )
        except oncelog.OncelogError as e:
            if not (e.txn_requires_abort or isinstance(e, oncelog.ProducerFenced)):
                raise
            # The transaction was aborted (by the with block, or by whoever fenced
            # this producer): nothing of it is visible. Its records are polled again,
            # by this member or by whichever member owns their partitions now.
            print(f"aborted: {e.code}", flush=True)
            if isinstance(e, oncelog.ProducerFenced):
                producer = new_producer()
            consumer.seek_to_committed()
            continue
        done += len(msgs)
        print(f"committed {done}", flush=True)
    consumer.close()
    producer.close()
    store.close()
    print(f"transformed {done} messages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
