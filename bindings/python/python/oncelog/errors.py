"""The exceptions oncelog raises: one class per error kind of the Rust core.

Every error is an :class:`OncelogError` whose ``code`` is the core's kind name
(``"no_space"``, ``"producer_fenced"``, ...) and whose flags say what to do about
it: ``retriable`` (the same call may succeed later), ``fatal`` (the object that
raised it cannot be used any more) and ``txn_requires_abort`` (abort the open
transaction). A kind this version has no class for is raised as
:class:`OncelogError` itself, so ``except OncelogError`` catches everything.

Where a built-in exception means the same thing, the class also derives from it:
bad arguments and configuration are ``ValueError``, unknown topics and partitions
``LookupError``, a full disk and other operating-system failures ``OSError``, a
timeout ``TimeoutError``.
"""

from __future__ import annotations

from typing import Dict, Optional, Type

__all__ = [
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


class OncelogError(Exception):
    """An error of oncelog.

    Attributes:
        code: the core's name for the kind of error (``"unknown"`` if none).
        retriable: the same call may succeed if simply tried again later.
        fatal: the object that raised it cannot be used any more.
        txn_requires_abort: the open transaction must be aborted.
    """

    code: str = "unknown"
    retriable: bool = False
    fatal: bool = False
    txn_requires_abort: bool = False

    def __init__(
        self,
        message: str = "",
        code: Optional[str] = None,
        *,
        retriable: Optional[bool] = None,
        fatal: Optional[bool] = None,
        txn_requires_abort: Optional[bool] = None,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        if retriable is not None:
            self.retriable = retriable
        if fatal is not None:
            self.fatal = fatal
        if txn_requires_abort is not None:
            self.txn_requires_abort = txn_requires_abort

    @property
    def message(self) -> str:
        """The message, without the class name."""
        return str(self.args[0]) if self.args else ""


class InvalidArgument(OncelogError, ValueError):
    """An argument is outside what the call accepts."""

    code = "invalid_argument"


class InvalidConfig(OncelogError, ValueError):
    """A configuration key is unknown, or its value is malformed, out of range or
    conflicts with another key."""

    code = "invalid_config"


class InvalidTopicName(OncelogError, ValueError):
    """A topic name breaks Kafka's naming rules."""

    code = "invalid_topic_name"


class TopicExists(OncelogError):
    """The topic already exists."""

    code = "topic_exists"


class UnknownTopic(OncelogError, LookupError):
    """No topic of that name exists in the store."""

    code = "unknown_topic"


class UnknownPartition(OncelogError, LookupError):
    """The topic has no partition of that number."""

    code = "unknown_partition"


class OffsetOutOfRange(OncelogError):
    """The offset is below the log start (deleted by retention) or past the end."""

    code = "offset_out_of_range"


class RecordTooLarge(OncelogError, ValueError):
    """A record or batch is larger than the topic's ``max.message.bytes`` or
    ``segment.bytes``."""

    code = "record_too_large"


class NoSpace(OncelogError, OSError):
    """The disk is full or a file-size limit was reached; nothing of the failed call
    was made visible. Retriable."""

    code = "no_space"
    retriable = True


class CorruptLog(OncelogError):
    """Bytes on disk fail their checks (length, offsets, CRC, magic)."""

    code = "corrupt"


class IncompatibleFormat(OncelogError):
    """The store was written by an incompatible format version. Fatal."""

    code = "incompatible_format"
    fatal = True


class Timeout(OncelogError, TimeoutError):
    """A wait ran out of time. Retriable."""

    code = "timeout"
    retriable = True


class Forked(OncelogError):
    """An object was used in a child process after ``fork()``: open the store again
    in the child. Fatal."""

    code = "forked"
    fatal = True


class Poisoned(OncelogError, OSError):
    """An earlier ``fsync`` failed: the partition refuses writes until the store is
    opened again. Fatal."""

    code = "poisoned"
    fatal = True


class Closed(OncelogError):
    """The store, producer or consumer was closed."""

    code = "closed"


class OutOfOrderSequence(OncelogError):
    """An idempotent producer's batch does not follow its previous one."""

    code = "out_of_order_sequence"


class ProducerFenced(OncelogError):
    """A newer producer with the same ``transactional.id`` took over: this one must
    stop. Fatal."""

    code = "producer_fenced"
    fatal = True


class InvalidTxnState(OncelogError):
    """A transaction call out of order (commit without begin, a send outside a
    transaction of a transactional producer, ...)."""

    code = "invalid_txn_state"


class TransactionAborted(OncelogError):
    """The transaction cannot commit because a send in it failed: abort it."""

    code = "transaction_aborted"
    txn_requires_abort = True


class StaleGeneration(OncelogError):
    """A consumer-group member commits offsets of a partition it no longer owns (the
    group moved on without it): the commit is refused, and a transaction that
    carried them must abort."""

    code = "stale_generation"
    txn_requires_abort = True


class IoError(OncelogError, OSError):
    """An operating-system error not covered by a more specific class."""

    code = "io"


class ConcurrentUse(OncelogError, RuntimeError):
    """A consumer was called while another call on it was still running: from
    another thread, or from inside one of its own rebalance callbacks. A consumer
    is for one thread at a time."""

    code = "concurrent_use"


_BY_CODE: Dict[str, Type[OncelogError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        InvalidConfig,
        InvalidTopicName,
        TopicExists,
        UnknownTopic,
        UnknownPartition,
        OffsetOutOfRange,
        RecordTooLarge,
        NoSpace,
        CorruptLog,
        IncompatibleFormat,
        Timeout,
        Forked,
        Poisoned,
        Closed,
        OutOfOrderSequence,
        ProducerFenced,
        InvalidTxnState,
        TransactionAborted,
        StaleGeneration,
        IoError,
        ConcurrentUse,
    )
}


def class_for_code(code: str) -> Type[OncelogError]:
    """The exception class of an error kind; :class:`OncelogError` for a kind this
    version does not know."""
    return _BY_CODE.get(code, OncelogError)
