"""oncelog's default partitioner puts every key on the partition Kafka's does.

DESIGN.md promises Kafka's default partitioner, "so a key lands on the same partition
number as with Kafka's Java client": `toPositive(murmur2(key)) % partitions`. The Rust
example core/examples/partition_keys.rs answers, for each `<partitions> <hex key>` line
on its input, `<partition> <murmur2>` from `oncelog::partitioner`. Here a few thousand
keys (empty; every 1-byte key; 2- and 3-byte keys; every length up to 64; long random
binary; UTF-8 text in several scripts) are crossed with the partition counts 1, 2, 3,
7, 12, 100 and 1000, sent to the example in one run, and every answer is compared with
kafka-python's own `murmur2` and its DefaultPartitioner. Every mismatch is listed with
its key in hex.

kafka-python's murmur2 is an independent port of Java's `Utils.murmur2`; it returns the
32-bit result unsigned, so it is converted to Java's signed int before comparing. That
port is itself checked against the vectors of Kafka's Java `UtilsTest.testMurmur2`.
"""

from __future__ import annotations

import random
import subprocess
from dataclasses import dataclass

import pytest
from conftest import REPO, cargo
from kafka.partitioner.default import DefaultPartitioner, murmur2

PARTITION_COUNTS = (1, 2, 3, 7, 12, 100, 1000)
TOPIC = "keys"
SEED = 20240531  # the keys are random but the same on every run

# Kafka's UtilsTest.testMurmur2 (apache/kafka, clients/src/test/java/org/apache/kafka/
# common/utils/UtilsTest.java): input bytes -> Java int.
KAFKA_JAVA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    bytes([ord("a"), ord("b"), ord("c")]): 479470107,
}


def java_int(unsigned: int) -> int:
    """kafka-python's murmur2 result (0..2**32-1) as the Java int Kafka computes."""
    assert 0 <= unsigned < 1 << 32, unsigned
    return unsigned - (1 << 32) if unsigned >= 1 << 31 else unsigned


def describe(key: bytes) -> str:
    return f"key {key.hex() or '(empty)'} ({len(key)} bytes)"


class OneTopicCluster:
    """The part of kafka-python's ClusterMetadata that DefaultPartitioner reads."""

    def __init__(self, topic: str, partitions: int):
        self.topic = topic
        self.partitions = set(range(partitions))

    def topics(self):
        return {self.topic}

    def partitions_for_topic(self, topic):
        return self.partitions if topic == self.topic else None

    def available_partitions_for_topic(self, topic):
        return self.partitions if topic == self.topic else None


def generate_keys() -> list[bytes]:
    """The keys to compare, deduplicated, in a fixed order."""
    rng = random.Random(SEED)

    def rand_bytes(n: int) -> bytes:
        return bytes(rng.randrange(256) for _ in range(n))

    keys: list[bytes] = [b""]
    keys += list(KAFKA_JAVA_VECTORS)
    keys += [bytes([b]) for b in range(256)]
    # 2 and 3 bytes: the tail-only paths, with high bytes where Java must mask `& 0xff`.
    for n in (2, 3):
        keys += [b"\x00" * n, b"\xff" * n, b"\x80" * n, b"\x7f" * n]
        keys += [bytes([0x80 if i == j else 0 for i in range(n)]) for j in range(n)]
        keys += [rand_bytes(n) for _ in range(300)]
    # Every length up to 64: each chunk count with each tail length.
    for n in range(65):
        keys += [b"\x00" * n, b"\xff" * n, bytes(range(n))]
        keys += [rand_bytes(n) for _ in range(12)]
    # Long random binary.
    keys += [rand_bytes(rng.randrange(65, 1025)) for _ in range(150)]
    # UTF-8 text: ASCII identifiers, and words from several scripts and emoji.
    keys += [f"user-{i}".encode() for i in range(200)]
    keys += [f"order:{rng.randrange(10**9)}".encode() for _ in range(100)]
    alphabets = [
        (0x20, 0x7E),  # ASCII
        (0xC0, 0x24F),  # Latin-1 supplement and extended Latin: 2 bytes
        (0x400, 0x4FF),  # Cyrillic: 2 bytes
        (0x4E00, 0x9FFF),  # CJK: 3 bytes
        (0x1F300, 0x1FAFF),  # emoji: 4 bytes
    ]
    for _ in range(400):
        text = "".join(
            chr(rng.randint(*rng.choice(alphabets))) for _ in range(rng.randrange(1, 24))
        )
        keys.append(text.encode("utf-8"))
    keys += ["ключ".encode(), "キー".encode(), "🔑".encode(), "clé-é".encode()]
    return list(dict.fromkeys(keys))


@dataclass
class Answer:
    key: bytes
    partitions: int
    partition: int  # oncelog's
    murmur2: int  # oncelog's, as a Java int


def run_partition_keys(lines: list[str]) -> subprocess.CompletedProcess:
    """Runs core/examples/partition_keys.rs once with `lines` on its standard input."""
    cmd = [cargo(), "run", "--locked", "--quiet", "-p", "oncelog", "--example", "partition_keys"]
    return subprocess.run(
        cmd, cwd=REPO, input="".join(f"{line}\n" for line in lines), capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def answers() -> list[Answer]:
    """Every generated key with every partition count, answered by one run of the example."""
    cases = [(key, n) for key in generate_keys() for n in PARTITION_COUNTS]
    proc = run_partition_keys([f"{n} {key.hex()}" for key, n in cases])
    if proc.returncode != 0:
        pytest.fail(
            f"partition_keys exited {proc.returncode}\n--- stderr\n{proc.stderr}"
            f"\n--- stdout (last 2000 chars)\n{proc.stdout[-2000:]}"
        )
    out = proc.stdout.splitlines()
    assert len(out) == len(cases), f"{len(cases)} lines sent, {len(out)} answered"
    result = []
    for (key, n), line in zip(cases, out):
        fields = line.split()
        assert len(fields) == 2, f"{describe(key)}, {n} partitions: bad answer {line!r}"
        result.append(Answer(key, n, int(fields[0]), int(fields[1])))
    return result


def test_kafka_python_reproduces_kafkas_java_vectors():
    # The reference must itself agree with Java's Utils.murmur2 before it judges us.
    for data, expected in KAFKA_JAVA_VECTORS.items():
        assert java_int(murmur2(data)) == expected, describe(data)


def test_the_keys_cover_what_the_test_promises(answers):
    keys = {a.key for a in answers}
    lengths = {len(k) for k in keys}
    texts = [k for k in keys if not k.isascii() and _is_utf8(k)]
    cases = {
        "empty key": b"" in keys,
        "every 1-byte key": all(bytes([b]) in keys for b in range(256)),
        "2- and 3-byte keys": all(sum(len(k) == n for k in keys) >= 250 for n in (2, 3)),
        "every length 0..=64": set(range(65)) <= lengths,
        "keys longer than 64 bytes": any(len(k) > 64 for k in keys),
        "a byte >= 0x80 in each tail position": all(
            any(len(k) % 4 == t and k[len(k) - t + i] >= 0x80 for k in keys)
            for t in (1, 2, 3)
            for i in range(t)
        ),
        "non-ASCII UTF-8 text (2-, 3- and 4-byte characters)": all(
            any(_has_utf8_width(k, w) for k in texts) for w in (2, 3, 4)
        ),
        "negative and positive murmur2": {a.murmur2 < 0 for a in answers} == {True, False},
        "Kafka's Java vectors": set(KAFKA_JAVA_VECTORS) <= keys,
        "every partition count for every key": len(answers) == len(keys) * len(PARTITION_COUNTS),
        "a few thousand keys": len(keys) >= 2000,
    }
    missing = [name for name, ok in cases.items() if not ok]
    assert not missing, f"the generated keys lack: {missing}"


def test_murmur2_and_partition_match_kafka_python(answers):
    partitioner = DefaultPartitioner()
    clusters = {n: OneTopicCluster(TOPIC, n) for n in PARTITION_COUNTS}
    hashes: dict[bytes, int] = {}
    mismatches = []
    for a in answers:
        if a.key not in hashes:
            hashes[a.key] = java_int(murmur2(a.key))
        want_hash = hashes[a.key]
        want_partition = partitioner.partition(TOPIC, a.key, a.key, None, None, clusters[a.partitions])
        wrong = []
        if a.murmur2 != want_hash:
            wrong.append(f"murmur2 {a.murmur2}, kafka-python {want_hash}")
        if a.partition != want_partition:
            wrong.append(f"partition {a.partition}, kafka-python {want_partition}")
        if not 0 <= a.partition < a.partitions:
            wrong.append(f"partition {a.partition} out of range")
        if wrong:
            mismatches.append(f"{describe(a.key)}, {a.partitions} partitions: {'; '.join(wrong)}")
    assert not mismatches, (
        f"{len(mismatches)} of {len(answers)} answers differ from kafka-python:\n"
        + "\n".join(mismatches)
    )


def test_zero_partitions_is_refused():
    # A topic has at least one partition: no partition number answers for zero.
    proc = run_partition_keys(["0 3231"])
    assert proc.returncode != 0, f"accepted 0 partitions and answered {proc.stdout!r}"
    assert "at least 1" in proc.stderr, proc.stderr


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _has_utf8_width(data: bytes, width: int) -> bool:
    return any(len(ch.encode("utf-8")) == width for ch in data.decode("utf-8"))
