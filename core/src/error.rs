//! Errors: one [`Error`] type whose [`ErrorKind`] says what went wrong and
//! whether retrying, aborting the transaction or giving up is the answer.

use std::fmt;
use std::io;
use std::path::Path;

/// What went wrong, as a caller decides on it.
///
/// New kinds may be added in a minor release; match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An argument is outside what the call accepts (empty batch, negative offset, ...).
    InvalidArgument,
    /// A configuration key is unknown or its value cannot be parsed or is out of range.
    InvalidConfig,
    /// A topic name breaks Kafka's naming rules.
    InvalidTopicName,
    /// The topic already exists.
    TopicExists,
    /// No topic of that name exists in the store.
    UnknownTopic,
    /// The topic has no partition of that number.
    UnknownPartition,
    /// The requested offset is below the log start (deleted by retention) or past the end.
    OffsetOutOfRange,
    /// A record or batch is larger than `max.message.bytes` or `segment.bytes` allows.
    RecordTooLarge,
    /// The disk is full or a file-size limit was reached; nothing of the failed call was
    /// made visible and everything acknowledged before it is kept.
    NoSpace,
    /// Bytes on disk fail their checks (length, offsets, CRC, magic) where they must not.
    Corrupt,
    /// The store was written by an incompatible format version.
    IncompatibleFormat,
    /// A wait ran out of time.
    Timeout,
    /// A handle was used in a child process after `fork()`; reopen the store in the child.
    Forked,
    /// An earlier `fsync` failed, so the partition refuses further writes rather than
    /// risk silently losing them. Reopen the store to recover.
    Poisoned,
    /// The store or partition was closed.
    Closed,
    /// An idempotent producer's batch does not follow its previous one (a gap, or a
    /// retry of a batch older than the last five).
    OutOfOrderSequence,
    /// A newer epoch of the same producer exists: this one is a zombie and must stop.
    ProducerFenced,
    /// A transaction call out of order (commit without begin, send outside a
    /// transaction of a transactional producer, ...).
    InvalidTxnState,
    /// The transaction cannot commit (a send in it failed): abort it.
    TransactionAborted,
    /// A consumer group member commits offsets of a partition it no longer owns
    /// (the group rebalanced): the commit is refused, so a zombie cannot commit.
    StaleGeneration,
    /// An operating-system error not covered by a more specific kind.
    Io,
}

impl ErrorKind {
    /// A stable lower-case name for the kind, as the C and Python layers show it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::InvalidTopicName => "invalid_topic_name",
            ErrorKind::TopicExists => "topic_exists",
            ErrorKind::UnknownTopic => "unknown_topic",
            ErrorKind::UnknownPartition => "unknown_partition",
            ErrorKind::OffsetOutOfRange => "offset_out_of_range",
            ErrorKind::RecordTooLarge => "record_too_large",
            ErrorKind::NoSpace => "no_space",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::IncompatibleFormat => "incompatible_format",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Forked => "forked",
            ErrorKind::Poisoned => "poisoned",
            ErrorKind::Closed => "closed",
            ErrorKind::OutOfOrderSequence => "out_of_order_sequence",
            ErrorKind::ProducerFenced => "producer_fenced",
            ErrorKind::InvalidTxnState => "invalid_txn_state",
            ErrorKind::TransactionAborted => "transaction_aborted",
            ErrorKind::StaleGeneration => "stale_generation",
            ErrorKind::Io => "io",
        }
    }

    /// True when the same call may succeed if simply tried again later.
    pub fn is_retriable(self) -> bool {
        matches!(self, ErrorKind::Timeout | ErrorKind::NoSpace)
    }

    /// True when the current transaction must be aborted before the producer goes on.
    pub fn txn_requires_abort(self) -> bool {
        matches!(
            self,
            ErrorKind::TransactionAborted | ErrorKind::StaleGeneration
        )
    }

    /// True when the handle that returned it cannot be used any more.
    pub fn is_fatal(self) -> bool {
        matches!(
            self,
            ErrorKind::Forked
                | ErrorKind::Poisoned
                | ErrorKind::IncompatibleFormat
                | ErrorKind::ProducerFenced
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An oncelog error: a kind, a message naming what failed, and the OS error behind it
/// if there is one.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<io::Error>,
}

/// The result of every fallible oncelog call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with a message for humans.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// An I/O error on `path` while doing `what`; full disks and file-size limits
    /// become [`ErrorKind::NoSpace`].
    pub fn io(what: &str, path: &Path, err: io::Error) -> Error {
        let kind = match err.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EFBIG) | Some(libc::EDQUOT) => ErrorKind::NoSpace,
            _ => ErrorKind::Io,
        };
        Error {
            kind,
            message: format!("{what} {}: {err}", path.display()),
            source: Some(err),
        }
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// See [`ErrorKind::is_retriable`].
    pub fn is_retriable(&self) -> bool {
        self.kind.is_retriable()
    }

    /// See [`ErrorKind::is_fatal`].
    pub fn is_fatal(&self) -> bool {
        self.kind.is_fatal()
    }

    /// See [`ErrorKind::txn_requires_abort`].
    pub fn txn_requires_abort(&self) -> bool {
        self.kind.txn_requires_abort()
    }

    /// The operating-system error code behind this error, if any.
    pub fn os_error(&self) -> Option<i32> {
        self.source.as_ref().and_then(io::Error::raw_os_error)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Shorthand for `Err(Error::new(kind, message))`.
macro_rules! bail {
    ($kind:ident, $($fmt:tt)+) => {
        return Err($crate::error::Error::new($crate::error::ErrorKind::$kind, format!($($fmt)+)))
    };
}
pub(crate) use bail;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_disk_and_file_size_limit_are_no_space() {
        for code in [libc::ENOSPC, libc::EFBIG] {
            let err = Error::io(
                "reserve",
                Path::new("x.log"),
                io::Error::from_raw_os_error(code),
            );
            assert_eq!(err.kind(), ErrorKind::NoSpace);
            assert!(err.is_retriable());
            assert_eq!(err.os_error(), Some(code));
        }
        let err = Error::io(
            "open",
            Path::new("x.log"),
            io::Error::from_raw_os_error(libc::EACCES),
        );
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(err.to_string().starts_with("io: open x.log"));
    }
}
