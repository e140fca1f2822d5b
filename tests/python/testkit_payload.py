"""The self-checking records of the Rust testkit (testkit/src/payload.rs and
rng.rs), in Python: so that Python writes records a Rust reader verifies, and
verifies the records a Rust writer wrote.

A record has the key ``w<writer>-s<seq>`` and the value
``"OLTK" | writer u32 | seq u64 | len u32 | filler | fnv64`` (big-endian), the filler
from xorshift64* seeded by writer and seq, the FNV-1a over everything before it.
"""

from __future__ import annotations

import struct

MASK = (1 << 64) - 1
MAGIC = b"OLTK"
HEAD = 4 + 4 + 8 + 4
TAIL = 8
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x00000100000001B3
STOP = b"stop"


class XorShift:
    """testkit/src/rng.rs: xorshift64* with a mixed seed."""

    def __init__(self, seed: int):
        s = (seed ^ 0x9E3779B97F4A7C15) & MASK
        s = ((s ^ (s >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        s = ((s ^ (s >> 27)) * 0x94D049BB133111EB) & MASK
        s ^= s >> 31
        self.state = s if s else 0x2545F4914F6CDD1D

    def next_u64(self) -> int:
        x = self.state
        x ^= x >> 12
        x = (x ^ (x << 25)) & MASK
        x ^= x >> 27
        self.state = x
        return (x * 0x2545F4914F6CDD1D) & MASK


def fnv64(state: int, data: bytes) -> int:
    for b in data:
        state = ((state ^ b) * FNV_PRIME) & MASK
    return state


def _filler(writer: int, seq: int, n: int) -> bytes:
    rng = XorShift(((writer << 40) ^ seq) & MASK)
    return bytes(rng.next_u64() & 0xFF for _ in range(n))


def key(writer: int, seq: int) -> bytes:
    return f"w{writer}-s{seq}".encode()


def value(writer: int, seq: int, length: int) -> bytes:
    length = max(length, HEAD + TAIL)
    body = MAGIC + struct.pack(">IQI", writer, seq, length) + _filler(writer, seq, length - TAIL - HEAD)
    return body + struct.pack(">Q", fnv64(FNV_OFFSET, body))


def classify(k: bytes | None, v: bytes | None) -> tuple[int, int] | str:
    """(writer, seq) of a whole, correct record; "stop" for the sentinel; raises
    ValueError saying what is wrong otherwise."""
    if k == STOP and v == STOP:
        return "stop"
    if v is None or len(v) < HEAD + TAIL:
        raise ValueError(f"value too short: {v!r}")
    if v[:4] != MAGIC:
        raise ValueError(f"bad magic {v[:4]!r}")
    body, tail = v[:-TAIL], v[-TAIL:]
    if struct.unpack(">Q", tail)[0] != fnv64(FNV_OFFSET, body):
        raise ValueError("checksum mismatch")
    writer, seq, length = struct.unpack(">IQI", v[4:HEAD])
    if length != len(v):
        raise ValueError(f"value says {length} bytes, has {len(v)}")
    if body[HEAD:] != _filler(writer, seq, len(body) - HEAD):
        raise ValueError(f"filler of w{writer}-s{seq} is wrong")
    if k != key(writer, seq):
        raise ValueError(f"key {k!r} does not belong to w{writer}-s{seq}")
    return writer, seq


def digest(k: bytes | None, v: bytes | None) -> str:
    """testkit/src/payload.rs `digest`: two FNV-1a lanes over the length-prefixed
    key and value, 32 hex digits."""
    lanes = [FNV_OFFSET, FNV_OFFSET ^ 0x5BD1E99500000001]
    for field in (k, v):
        n = -1 if field is None else len(field)
        prefix = struct.pack(">q", n)
        for i in range(2):
            lanes[i] = fnv64(fnv64(lanes[i], prefix), field or b"")
        lanes[1] = ((lanes[1] << 17) | (lanes[1] >> 47)) & MASK
    return f"{lanes[0]:016x}{lanes[1]:016x}"
