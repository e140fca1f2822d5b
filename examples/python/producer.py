"""producer.py - produce keyed records to the topic "greetings".

    python producer.py STORE_DIR [COUNT]

Opens (or creates) the store, creates the topic with 3 partitions if it does not
exist, and produces COUNT records (default 10). Kafka's partitioner picks the
partition from the key, so records with the same key stay in order. Each record's
delivery is reported to a callback, served by flush().
"""

import sys

import oncelog


def main() -> int:
    if len(sys.argv) < 2:
        print(f"usage: {sys.argv[0]} STORE_DIR [COUNT]", file=sys.stderr)
        return 2
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    with oncelog.Store(sys.argv[1]) as store:
        try:
            store.create_topic("greetings", partitions=3)
        except oncelog.TopicExists:
            pass  # fine: another run created it

        def delivered(err, msg):
            if err is not None:
                print(f"delivery failed: {err}", file=sys.stderr)
            else:
                print(f"{msg.key.decode()} -> {msg.topic}-{msg.partition}@{msg.offset}")

        with oncelog.Producer(store, {"acks": "written"}) as producer:
            for i in range(count):
                producer.produce(
                    "greetings",
                    f"hello number {i}".encode(),
                    key=f"user-{i % 4}".encode(),
                    on_delivery=delivered,
                )
            producer.flush()  # serves the delivery callbacks
    print(f"produced {count} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
