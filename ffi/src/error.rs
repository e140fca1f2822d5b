//! Result codes (`oncelog_err_t`), the owned error object (`oncelog_error_t`) and
//! their accessors. No thread-local "last error": a failed call hands its error to
//! the caller through `err_out`, so runtimes that move work between OS threads
//! (Go, Node.js workers, async executors) lose nothing.

use std::ffi::{c_char, CStr, CString};

use oncelog::ErrorKind;

use crate::handle::{self, Opaque};
use crate::panic::infallible;

/// A result code: `ONCELOG_ERR_OK` (0) or one of the `ONCELOG_ERR_*` codes.
/// Numbers are stable and never reused; a minor release may add codes, so treat an
/// unknown code as a failure (`oncelog_err_name` names it "unknown").
pub type oncelog_err_t = i32;

/// Success.
pub const ONCELOG_ERR_OK: oncelog_err_t = 0;
/// An argument is NULL where it must not be, out of range, not UTF-8, or otherwise
/// outside what the call accepts.
pub const ONCELOG_ERR_INVALID_ARGUMENT: oncelog_err_t = 1;
/// A configuration key is unknown, or its value cannot be parsed, is out of range, or
/// conflicts with another key.
pub const ONCELOG_ERR_INVALID_CONFIG: oncelog_err_t = 2;
/// A topic name breaks Kafka's naming rules.
pub const ONCELOG_ERR_INVALID_TOPIC_NAME: oncelog_err_t = 3;
/// The topic already exists.
pub const ONCELOG_ERR_TOPIC_EXISTS: oncelog_err_t = 4;
/// No topic of that name exists in the store.
pub const ONCELOG_ERR_UNKNOWN_TOPIC: oncelog_err_t = 5;
/// The topic has no partition of that number.
pub const ONCELOG_ERR_UNKNOWN_PARTITION: oncelog_err_t = 6;
/// The offset is below the log start (deleted by retention) or past the end.
pub const ONCELOG_ERR_OFFSET_OUT_OF_RANGE: oncelog_err_t = 7;
/// A record or batch is larger than the topic's `max.message.bytes` or
/// `segment.bytes`, or a length is larger than any record can be (2^31 - 1).
pub const ONCELOG_ERR_RECORD_TOO_LARGE: oncelog_err_t = 8;
/// The disk is full or a file-size limit was reached; nothing of the failed call was
/// made visible. Retriable.
pub const ONCELOG_ERR_NO_SPACE: oncelog_err_t = 9;
/// Bytes on disk fail their checks where they must not.
pub const ONCELOG_ERR_CORRUPT: oncelog_err_t = 10;
/// The store was written by an incompatible format version. Fatal.
pub const ONCELOG_ERR_INCOMPATIBLE_FORMAT: oncelog_err_t = 11;
/// A wait ran out of time. Retriable.
pub const ONCELOG_ERR_TIMEOUT: oncelog_err_t = 12;
/// A handle was used in a child process after `fork()`: open the store again in the
/// child. Fatal.
pub const ONCELOG_ERR_FORKED: oncelog_err_t = 13;
/// An earlier `fsync` failed; the partition refuses writes until the store is opened
/// again. Fatal.
pub const ONCELOG_ERR_POISONED: oncelog_err_t = 14;
/// The handle was closed (`oncelog_consumer_close`) or the store was closed.
pub const ONCELOG_ERR_CLOSED: oncelog_err_t = 15;
/// An idempotent producer's batch does not follow its previous one.
pub const ONCELOG_ERR_OUT_OF_ORDER_SEQUENCE: oncelog_err_t = 16;
/// A newer producer with the same `transactional.id` took over: this one must stop.
/// Fatal.
pub const ONCELOG_ERR_PRODUCER_FENCED: oncelog_err_t = 17;
/// A transaction call out of order (commit without begin, a send outside a
/// transaction of a transactional producer, begin before `oncelog_init_transactions`).
pub const ONCELOG_ERR_INVALID_TXN_STATE: oncelog_err_t = 18;
/// The transaction cannot commit because a send in it failed: abort it
/// (`oncelog_error_txn_requires_abort` is true).
pub const ONCELOG_ERR_TRANSACTION_ABORTED: oncelog_err_t = 19;
/// A group member commits offsets of a partition it no longer owns.
pub const ONCELOG_ERR_STALE_GENERATION: oncelog_err_t = 20;
/// An operating-system error not covered by a more specific code.
pub const ONCELOG_ERR_IO: oncelog_err_t = 21;
/// A bug inside the library was caught at the boundary (a Rust panic); the call did
/// nothing it reports, and the handle should not be used any more. Fatal.
pub const ONCELOG_ERR_PANIC: oncelog_err_t = 98;
/// An error this version of the library has no code for yet.
pub const ONCELOG_ERR_UNKNOWN: oncelog_err_t = 99;

/// Every code with its name and description, in one place so they cannot disagree.
const CODES: &[(oncelog_err_t, &CStr, &CStr)] = &[
    (ONCELOG_ERR_OK, c"ok", c"Success"),
    (
        ONCELOG_ERR_INVALID_ARGUMENT,
        c"invalid_argument",
        c"Invalid argument (NULL, out of range or not UTF-8)",
    ),
    (
        ONCELOG_ERR_INVALID_CONFIG,
        c"invalid_config",
        c"Invalid configuration key or value",
    ),
    (
        ONCELOG_ERR_INVALID_TOPIC_NAME,
        c"invalid_topic_name",
        c"Invalid topic name",
    ),
    (
        ONCELOG_ERR_TOPIC_EXISTS,
        c"topic_exists",
        c"Topic already exists",
    ),
    (
        ONCELOG_ERR_UNKNOWN_TOPIC,
        c"unknown_topic",
        c"Unknown topic",
    ),
    (
        ONCELOG_ERR_UNKNOWN_PARTITION,
        c"unknown_partition",
        c"Unknown partition",
    ),
    (
        ONCELOG_ERR_OFFSET_OUT_OF_RANGE,
        c"offset_out_of_range",
        c"Offset out of range",
    ),
    (
        ONCELOG_ERR_RECORD_TOO_LARGE,
        c"record_too_large",
        c"Record or batch too large",
    ),
    (
        ONCELOG_ERR_NO_SPACE,
        c"no_space",
        c"No space left on the device or file-size limit reached",
    ),
    (ONCELOG_ERR_CORRUPT, c"corrupt", c"Corrupt data on disk"),
    (
        ONCELOG_ERR_INCOMPATIBLE_FORMAT,
        c"incompatible_format",
        c"Store written by an incompatible format version",
    ),
    (ONCELOG_ERR_TIMEOUT, c"timeout", c"Timed out"),
    (
        ONCELOG_ERR_FORKED,
        c"forked",
        c"Handle used in a child process after fork()",
    ),
    (
        ONCELOG_ERR_POISONED,
        c"poisoned",
        c"Partition refuses writes after a failed fsync",
    ),
    (ONCELOG_ERR_CLOSED, c"closed", c"Handle is closed"),
    (
        ONCELOG_ERR_OUT_OF_ORDER_SEQUENCE,
        c"out_of_order_sequence",
        c"Out-of-order sequence number",
    ),
    (
        ONCELOG_ERR_PRODUCER_FENCED,
        c"producer_fenced",
        c"Producer fenced by a newer one with the same transactional.id",
    ),
    (
        ONCELOG_ERR_INVALID_TXN_STATE,
        c"invalid_txn_state",
        c"Transaction call in the wrong state",
    ),
    (
        ONCELOG_ERR_TRANSACTION_ABORTED,
        c"transaction_aborted",
        c"Transaction cannot commit and must be aborted",
    ),
    (
        ONCELOG_ERR_STALE_GENERATION,
        c"stale_generation",
        c"Commit from a group member that no longer owns the partition",
    ),
    (ONCELOG_ERR_IO, c"io", c"Operating-system error"),
    (
        ONCELOG_ERR_PANIC,
        c"panic",
        c"Internal error caught at the library boundary",
    ),
    (ONCELOG_ERR_UNKNOWN, c"unknown", c"Unknown error code"),
];

fn lookup(code: oncelog_err_t) -> (&'static CStr, &'static CStr) {
    CODES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, name, text)| (*name, *text))
        .unwrap_or((c"unknown", c"Unknown error code"))
}

/// The code of a core error kind; kinds newer than this mapping become
/// `ONCELOG_ERR_UNKNOWN` (the message still says what happened).
pub fn code_of(kind: ErrorKind) -> oncelog_err_t {
    match kind {
        ErrorKind::InvalidArgument => ONCELOG_ERR_INVALID_ARGUMENT,
        ErrorKind::InvalidConfig => ONCELOG_ERR_INVALID_CONFIG,
        ErrorKind::InvalidTopicName => ONCELOG_ERR_INVALID_TOPIC_NAME,
        ErrorKind::TopicExists => ONCELOG_ERR_TOPIC_EXISTS,
        ErrorKind::UnknownTopic => ONCELOG_ERR_UNKNOWN_TOPIC,
        ErrorKind::UnknownPartition => ONCELOG_ERR_UNKNOWN_PARTITION,
        ErrorKind::OffsetOutOfRange => ONCELOG_ERR_OFFSET_OUT_OF_RANGE,
        ErrorKind::RecordTooLarge => ONCELOG_ERR_RECORD_TOO_LARGE,
        ErrorKind::NoSpace => ONCELOG_ERR_NO_SPACE,
        ErrorKind::Corrupt => ONCELOG_ERR_CORRUPT,
        ErrorKind::IncompatibleFormat => ONCELOG_ERR_INCOMPATIBLE_FORMAT,
        ErrorKind::Timeout => ONCELOG_ERR_TIMEOUT,
        ErrorKind::Forked => ONCELOG_ERR_FORKED,
        ErrorKind::Poisoned => ONCELOG_ERR_POISONED,
        ErrorKind::Closed => ONCELOG_ERR_CLOSED,
        ErrorKind::OutOfOrderSequence => ONCELOG_ERR_OUT_OF_ORDER_SEQUENCE,
        ErrorKind::ProducerFenced => ONCELOG_ERR_PRODUCER_FENCED,
        ErrorKind::InvalidTxnState => ONCELOG_ERR_INVALID_TXN_STATE,
        ErrorKind::TransactionAborted => ONCELOG_ERR_TRANSACTION_ABORTED,
        ErrorKind::StaleGeneration => ONCELOG_ERR_STALE_GENERATION,
        ErrorKind::Io => ONCELOG_ERR_IO,
        _ => ONCELOG_ERR_UNKNOWN,
    }
}

/// A failed call, before it is handed to C: the code, a message for humans and the
/// flags that tell the caller what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The `ONCELOG_ERR_*` code.
    pub code: oncelog_err_t,
    /// What went wrong, naming the call or argument where the layer knows it.
    pub message: String,
    /// Trying the same call again later may succeed.
    pub retriable: bool,
    /// The handle that returned it cannot be used any more.
    pub fatal: bool,
    /// The open transaction must be aborted.
    pub txn_requires_abort: bool,
}

impl Failure {
    /// A failure with `code` and `message` and no flags.
    pub fn new(code: oncelog_err_t, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            retriable: false,
            fatal: false,
            txn_requires_abort: false,
        }
    }

    /// `ONCELOG_ERR_INVALID_ARGUMENT` with `message`.
    pub fn invalid(message: impl Into<String>) -> Failure {
        Failure::new(ONCELOG_ERR_INVALID_ARGUMENT, message)
    }
}

impl From<oncelog::Error> for Failure {
    fn from(e: oncelog::Error) -> Failure {
        Failure {
            code: code_of(e.kind()),
            message: e.message().to_string(),
            retriable: e.is_retriable(),
            fatal: e.is_fatal(),
            txn_requires_abort: e.txn_requires_abort(),
        }
    }
}

/// The result of the body of an exported function.
pub type FfiResult<T> = Result<T, Failure>;

/// An error returned through `err_out`: its code, message and flags. Owned by the
/// caller, freed with `oncelog_error_destroy`; immutable, so it may be read from any
/// thread.
pub struct oncelog_error_t {
    _opaque: [u8; 0],
}

/// What an `oncelog_error_t` points to.
pub struct ErrorObject {
    code: oncelog_err_t,
    message: CString,
    retriable: bool,
    fatal: bool,
    txn_requires_abort: bool,
}

impl Opaque for oncelog_error_t {
    type Inner = ErrorObject;
}

impl ErrorObject {
    /// The object for `failure`. A NUL inside the message (a path, say) would cut it
    /// short in C, so it is shown as `\0`.
    pub fn new(failure: Failure) -> ErrorObject {
        let message =
            CString::new(failure.message.replace('\0', "\\0")).expect("NUL bytes were replaced");
        ErrorObject {
            code: failure.code,
            message,
            retriable: failure.retriable,
            fatal: failure.fatal,
            txn_requires_abort: failure.txn_requires_abort,
        }
    }
}

/// The code of `error`, or `ONCELOG_ERR_INVALID_ARGUMENT` if `error` is NULL.
#[no_mangle]
pub extern "C" fn oncelog_error_code(error: *const oncelog_error_t) -> oncelog_err_t {
    infallible(ONCELOG_ERR_INVALID_ARGUMENT, || {
        handle::get(error, "error").map_or(ONCELOG_ERR_INVALID_ARGUMENT, |e| e.code)
    })
}

/// The message of `error`: a NUL-terminated UTF-8 string for humans, saying what
/// failed (it does not repeat the code's name). Borrowed from `error`: valid until
/// `oncelog_error_destroy(error)`. Returns an empty string if `error` is NULL, never
/// NULL.
#[no_mangle]
pub extern "C" fn oncelog_error_message(error: *const oncelog_error_t) -> *const c_char {
    infallible(c"".as_ptr(), || {
        handle::get(error, "error").map_or(c"".as_ptr(), |e| e.message.as_ptr())
    })
}

/// True when the same call may succeed if simply tried again later (a full disk, a
/// timeout). False if `error` is NULL.
#[no_mangle]
pub extern "C" fn oncelog_error_is_retriable(error: *const oncelog_error_t) -> bool {
    infallible(false, || {
        handle::get(error, "error").is_ok_and(|e| e.retriable)
    })
}

/// True when the handle that returned `error` cannot be used any more (fenced,
/// forked, poisoned, incompatible, or a caught panic): destroy it. False if `error`
/// is NULL.
#[no_mangle]
pub extern "C" fn oncelog_error_is_fatal(error: *const oncelog_error_t) -> bool {
    infallible(false, || handle::get(error, "error").is_ok_and(|e| e.fatal))
}

/// True when the producer's open transaction must be aborted
/// (`oncelog_abort_transaction`) before the producer goes on. False if `error` is NULL.
#[no_mangle]
pub extern "C" fn oncelog_error_txn_requires_abort(error: *const oncelog_error_t) -> bool {
    infallible(false, || {
        handle::get(error, "error").is_ok_and(|e| e.txn_requires_abort)
    })
}

/// Frees `error` and its message. NULL is accepted and ignored.
#[no_mangle]
pub extern "C" fn oncelog_error_destroy(error: *mut oncelog_error_t) {
    infallible((), || {
        // SAFETY: the caller passes an error this library created and gives it up.
        unsafe { handle::free(error) }
    })
}

/// The stable lower-case name of `code` ("ok", "invalid_argument", ...; "unknown"
/// for a code this version does not know). A static string: never freed, never NULL.
#[no_mangle]
pub extern "C" fn oncelog_err_name(code: oncelog_err_t) -> *const c_char {
    infallible(c"unknown".as_ptr(), || lookup(code).0.as_ptr())
}

/// A one-line English description of `code`. A static string: never freed, never
/// NULL.
#[no_mangle]
pub extern "C" fn oncelog_err_str(code: oncelog_err_t) -> *const c_char {
    infallible(c"Unknown error code".as_ptr(), || lookup(code).1.as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kinds the core has today; a kind added there must get a code here.
    const KINDS: [ErrorKind; 21] = [
        ErrorKind::InvalidArgument,
        ErrorKind::InvalidConfig,
        ErrorKind::InvalidTopicName,
        ErrorKind::TopicExists,
        ErrorKind::UnknownTopic,
        ErrorKind::UnknownPartition,
        ErrorKind::OffsetOutOfRange,
        ErrorKind::RecordTooLarge,
        ErrorKind::NoSpace,
        ErrorKind::Corrupt,
        ErrorKind::IncompatibleFormat,
        ErrorKind::Timeout,
        ErrorKind::Forked,
        ErrorKind::Poisoned,
        ErrorKind::Closed,
        ErrorKind::OutOfOrderSequence,
        ErrorKind::ProducerFenced,
        ErrorKind::InvalidTxnState,
        ErrorKind::TransactionAborted,
        ErrorKind::StaleGeneration,
        ErrorKind::Io,
    ];

    #[test]
    fn every_core_kind_has_its_own_code_named_as_the_core_names_it() {
        let mut seen = std::collections::HashSet::new();
        for kind in KINDS {
            let code = code_of(kind);
            assert_ne!(code, ONCELOG_ERR_UNKNOWN, "{kind:?} has no code");
            assert!(seen.insert(code), "{kind:?} shares code {code}");
            assert_eq!(lookup(code).0.to_str().unwrap(), kind.name());
        }
    }

    #[test]
    fn codes_are_unique_and_unknown_codes_are_named_unknown() {
        let mut codes: Vec<_> = CODES.iter().map(|c| c.0).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), CODES.len());
        assert_eq!(lookup(12345).0, c"unknown");
        assert_eq!(lookup(-1).0, c"unknown");
    }

    #[test]
    fn an_error_object_keeps_code_flags_and_message_with_nul_bytes_shown() {
        let mut f = Failure::new(ONCELOG_ERR_NO_SPACE, "disk\0full");
        f.retriable = true;
        let raw: *mut oncelog_error_t = handle::into_raw(ErrorObject::new(f));
        assert_eq!(oncelog_error_code(raw), ONCELOG_ERR_NO_SPACE);
        assert!(oncelog_error_is_retriable(raw));
        assert!(!oncelog_error_is_fatal(raw));
        // SAFETY: the message is a NUL-terminated string owned by `raw`.
        let msg = unsafe { CStr::from_ptr(oncelog_error_message(raw)) };
        assert_eq!(msg.to_str().unwrap(), "disk\\0full");
        oncelog_error_destroy(raw);
        oncelog_error_destroy(std::ptr::null_mut());
    }
}
