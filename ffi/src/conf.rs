//! `oncelog_conf_t`: configuration as string key/value pairs with Kafka's names, so
//! new options never change the ABI. One conf type serves producers, consumers and
//! topics, as librdkafka's does: each call takes the keys it knows and leaves the
//! others, and `oncelog_conf_set` refuses a key that no call knows, or a value that
//! the calls knowing the key refuse, at once.

use std::ffi::c_char;
use std::sync::Mutex;

use oncelog::{ConsumerConfig, ProducerConfig, TopicConfig};

use crate::args::str_arg;
use crate::error::{
    oncelog_err_t, oncelog_error_t, Failure, FfiResult, ONCELOG_ERR_INVALID_CONFIG,
};
use crate::handle::{self, Opaque};
use crate::panic::{call, infallible};

/// A configuration: an ordered set of key/value strings. Created with
/// `oncelog_conf_new`, freed with `oncelog_conf_destroy`. Calls that take a conf
/// copy what they need: the conf stays the caller's and may be freed or reused right
/// after. Safe to use from several threads (calls are serialised inside).
pub struct oncelog_conf_t {
    _opaque: [u8; 0],
}

/// What an `oncelog_conf_t` points to.
#[derive(Default)]
pub struct Conf {
    pairs: Mutex<Vec<(String, String)>>,
}

impl Opaque for oncelog_conf_t {
    type Inner = Conf;
}

impl Conf {
    /// Checks `key` and `value`, then sets the key (replacing an earlier value).
    pub fn set(&self, key: &str, value: &str) -> FfiResult<()> {
        validate(key, value)?;
        let mut pairs = self.pairs.lock().unwrap_or_else(|p| p.into_inner());
        match pairs.iter_mut().find(|(k, _)| k == key) {
            Some(pair) => pair.1 = value.to_string(),
            None => pairs.push((key.to_string(), value.to_string())),
        }
        Ok(())
    }

    /// The pairs whose key is in `keys`, in the order they were first set.
    pub fn pairs_for(&self, keys: &[&str]) -> Vec<(String, String)> {
        let pairs = self.pairs.lock().unwrap_or_else(|p| p.into_inner());
        pairs
            .iter()
            .filter(|(k, _)| keys.contains(&k.as_str()))
            .cloned()
            .collect()
    }
}

/// The pairs of an optional conf (NULL: none) for a call that knows `keys`.
pub(crate) fn pairs_of(
    conf: *const oncelog_conf_t,
    keys: &[&str],
) -> FfiResult<Vec<(String, String)>> {
    if conf.is_null() {
        return Ok(Vec::new());
    }
    Ok(handle::get(conf, "conf")?.pairs_for(keys))
}

/// Borrowed `(&str, &str)` views of owned pairs, as the core's `from_pairs` take them.
pub(crate) fn views(pairs: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

/// Refuses a key that neither producers, consumers nor topics know, and a value that
/// one that knows the key refuses. Combinations (such as `transactional.id` with
/// `enable.idempotence=false`) are checked when the producer or consumer is created.
fn validate(key: &str, value: &str) -> FfiResult<()> {
    let mut known = false;
    if ProducerConfig::KEYS.contains(&key) {
        known = true;
        ProducerConfig::default().set(key, value)?;
    }
    if ConsumerConfig::KEYS.contains(&key) {
        known = true;
        ConsumerConfig::default().set(key, value)?;
    }
    if TopicConfig::KEYS.contains(&key) {
        known = true;
        TopicConfig::default().set(key, value)?;
    }
    if !known {
        let mut all: Vec<&str> = ProducerConfig::KEYS
            .iter()
            .chain(ConsumerConfig::KEYS.iter())
            .chain(TopicConfig::KEYS.iter())
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        return Err(Failure::new(
            ONCELOG_ERR_INVALID_CONFIG,
            format!("unknown config key {key:?}; known keys: {}", all.join(", ")),
        ));
    }
    Ok(())
}

/// A new, empty configuration (every key at its default). Free it with
/// `oncelog_conf_destroy`. Returns NULL only if the library failed internally.
#[no_mangle]
pub extern "C" fn oncelog_conf_new() -> *mut oncelog_conf_t {
    infallible(std::ptr::null_mut(), || handle::into_raw(Conf::default()))
}

/// Sets `key` to `value` (both NUL-terminated UTF-8 strings, Kafka's names:
/// "acks", "linger.ms", "transactional.id", "group.id", "auto.offset.reset",
/// "isolation.level", "segment.bytes", the oncelog preset "delivery", ...),
/// replacing an earlier value of the same key.
///
/// The key and value are checked now: an unknown key or a value that cannot be
/// parsed or is out of range returns `ONCELOG_ERR_INVALID_CONFIG` and leaves the conf
/// as it was. The strings are copied.
#[no_mangle]
pub extern "C" fn oncelog_conf_set(
    conf: *mut oncelog_conf_t,
    key: *const c_char,
    value: *const c_char,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let conf = handle::get(conf, "conf")?;
        let key = str_arg(key, "key")?;
        let value = str_arg(value, "value")?;
        conf.set(key, value)
    })
}

/// Frees `conf`. NULL is accepted and ignored. Handles created with it are not
/// affected (they copied what they needed).
#[no_mangle]
pub extern "C" fn oncelog_conf_destroy(conf: *mut oncelog_conf_t) {
    infallible((), || {
        // SAFETY: the caller passes a conf this library created and gives it up.
        unsafe { handle::free(conf) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_any_role_are_accepted_and_checked_and_the_last_value_wins() {
        let conf = Conf::default();
        conf.set("acks", "all").unwrap();
        conf.set("group.id", "g").unwrap();
        conf.set("segment.bytes", "4096").unwrap();
        conf.set("acks", "1").unwrap();
        assert_eq!(
            conf.pairs_for(&ProducerConfig::KEYS),
            vec![("acks".to_string(), "1".to_string())]
        );
        assert_eq!(conf.pairs_for(&TopicConfig::KEYS).len(), 1);
        let unknown = conf.set("acks.typo", "1").unwrap_err();
        assert_eq!(unknown.code, ONCELOG_ERR_INVALID_CONFIG);
        assert!(unknown.message.contains("known keys"), "{unknown:?}");
        for (k, v) in [
            ("acks", "2"),
            ("segment.bytes", "1"),
            ("isolation.level", "x"),
        ] {
            let e = conf.set(k, v).unwrap_err();
            assert_eq!(e.code, ONCELOG_ERR_INVALID_CONFIG, "{k}={v}");
        }
    }
}
