"""consumer.py - a member of consumer group GROUP reading the topic "greetings".

    python consumer.py STORE_DIR GROUP [MAX]

Joins the group (members in other processes share the partitions), prints each
message, and stops after MAX messages (default: no limit) or when nothing arrives
for 2 seconds. At-least-once: offsets are committed after processing (at the next
poll and on close), so a crash may repeat messages, never lose them.
"""

import sys

import oncelog


def main() -> int:
    if len(sys.argv) < 3:
        print(f"usage: {sys.argv[0]} STORE_DIR GROUP [MAX]", file=sys.stderr)
        return 2
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else None
    config = {
        "group.id": sys.argv[2],
        "delivery": "at-least-once",
        "auto.offset.reset": "earliest",
    }
    seen = 0
    with oncelog.Store(sys.argv[1]) as store, oncelog.Consumer(store, config) as consumer:
        consumer.subscribe(
            ["greetings"],
            on_assign=lambda c, parts: print(f"assigned {[p.partition for p in parts]}", flush=True),
            on_revoke=lambda c, parts: print(f"revoked {[p.partition for p in parts]}", flush=True),
        )
        print("ready", flush=True)
        while limit is None or seen < limit:
            msg = consumer.poll(2.0)
            if msg is None:
                break  # nothing for 2 s
            key = msg.key.decode() if msg.key is not None else ""
            value = msg.value.decode() if msg.value is not None else ""
            print(f"{msg.topic}-{msg.partition}@{msg.offset} {key}: {value}", flush=True)
            seen += 1
        # Leaving the with block commits what was processed and leaves the group.
    print(f"consumed {seen} messages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
