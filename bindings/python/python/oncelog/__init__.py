"""oncelog: an embedded, mmap-backed, append-only log in Kafka's format, shared by
many processes with no broker, with Kafka's delivery semantics.

The API follows confluent-kafka's::

    import oncelog

    with oncelog.Store("data") as store:
        store.create_topic("orders", partitions=3)
        with oncelog.Producer(store, {"acks": "written"}) as producer:
            producer.produce("orders", b"hello", key=b"id-1")
        with oncelog.Consumer(store, {"group.id": "g", "auto.offset.reset": "earliest"}) as consumer:
            consumer.subscribe(["orders"])
            msg = consumer.poll(1.0)

Every error is an :class:`OncelogError` (see :mod:`oncelog.errors`).
"""

from oncelog._oncelog import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    OFFSET_STORED,
    Consumer,
    GroupMetadata,
    Message,
    Producer,
    Store,
    TopicMetadata,
    TopicPartition,
    Transaction,
    __version__,
)
from oncelog.errors import (
    Closed,
    ConcurrentUse,
    CorruptLog,
    Forked,
    IncompatibleFormat,
    InvalidArgument,
    InvalidConfig,
    InvalidTopicName,
    InvalidTxnState,
    IoError,
    NoSpace,
    OffsetOutOfRange,
    OncelogError,
    OutOfOrderSequence,
    Poisoned,
    ProducerFenced,
    RecordTooLarge,
    StaleGeneration,
    Timeout,
    TopicExists,
    TransactionAborted,
    UnknownPartition,
    UnknownTopic,
)

__all__ = [
    "__version__",
    "Store",
    "Producer",
    "Transaction",
    "Consumer",
    "Message",
    "TopicPartition",
    "GroupMetadata",
    "TopicMetadata",
    "OFFSET_BEGINNING",
    "OFFSET_END",
    "OFFSET_STORED",
    "OFFSET_INVALID",
    "OncelogError",
    "InvalidArgument",
    "InvalidConfig",
    "InvalidTopicName",
    "TopicExists",
    "UnknownTopic",
    "UnknownPartition",
    "OffsetOutOfRange",
    "RecordTooLarge",
    "NoSpace",
    "CorruptLog",
    "IncompatibleFormat",
    "Timeout",
    "Forked",
    "Poisoned",
    "Closed",
    "OutOfOrderSequence",
    "ProducerFenced",
    "InvalidTxnState",
    "TransactionAborted",
    "StaleGeneration",
    "IoError",
    "ConcurrentUse",
]
