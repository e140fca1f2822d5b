//! `oncelog_store_t`: an open store directory, and topic creation.

use std::ffi::c_char;

use oncelog::{Store, StoreOptions, TopicConfig};

use crate::args::{out_arg, path_arg, str_arg, write_out};
use crate::conf::{self, oncelog_conf_t};
use crate::error::{oncelog_err_t, oncelog_error_t, Failure};
use crate::handle::{self, Opaque};
use crate::panic::{call, infallible};

/// An open store. Created with `oncelog_store_open`, freed with
/// `oncelog_store_destroy`. Thread-safe: any number of threads may use one store
/// handle at once. Producers and consumers created from it keep the store open
/// until they are destroyed too, so the handles may be destroyed in any order.
pub struct oncelog_store_t {
    _opaque: [u8; 0],
}

/// What an `oncelog_store_t` points to.
pub struct StoreHandle {
    /// The core store.
    pub store: Store,
}

impl Opaque for oncelog_store_t {
    type Inner = StoreHandle;
}

/// The store behind a handle argument named `store`.
pub(crate) fn store_arg<'a>(store: *const oncelog_store_t) -> crate::error::FfiResult<&'a Store> {
    Ok(&handle::get(store, "store")?.store)
}

/// Opens (creating it if missing) the store in directory `path` and stores a new
/// handle in `*store_out`, which the caller frees with `oncelog_store_destroy`.
///
/// `conf` may be NULL. Its topic keys ("segment.bytes", "retention.ms", ...) become
/// the defaults of topics created without their own; other keys are left for the
/// producers and consumers. Any number of processes may open the same directory at
/// once.
#[no_mangle]
pub extern "C" fn oncelog_store_open(
    path: *const c_char,
    conf: *const oncelog_conf_t,
    store_out: *mut *mut oncelog_store_t,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let path = path_arg(path, "path")?;
        out_arg(store_out, "store_out")?;
        let pairs = conf::pairs_of(conf, &TopicConfig::KEYS)?;
        let options = StoreOptions {
            default_topic_config: TopicConfig::from_pairs(conf::views(&pairs))?,
            ..StoreOptions::default()
        };
        let store = Store::open(path, options)?;
        write_out(store_out, handle::into_raw(StoreHandle { store }));
        Ok(())
    })
}

/// Releases the handle. The store closes (the last process out syncs and trims its
/// files) once its producers and consumers are destroyed too. NULL is accepted and
/// ignored.
#[no_mangle]
pub extern "C" fn oncelog_store_destroy(store: *mut oncelog_store_t) {
    infallible((), || {
        // SAFETY: the caller passes a store this library created and gives it up.
        unsafe { handle::free(store) }
    })
}

/// Creates topic `topic` with `partitions` partitions (1 to 10000). `conf` may be
/// NULL; its topic keys ("segment.bytes", "retention.ms", "retention.bytes",
/// "max.message.bytes", ...) override the store's defaults, other keys are ignored.
/// `ONCELOG_ERR_TOPIC_EXISTS` if it exists already (whatever its settings).
#[no_mangle]
pub extern "C" fn oncelog_topic_create(
    store: *mut oncelog_store_t,
    topic: *const c_char,
    partitions: i32,
    conf: *const oncelog_conf_t,
    err_out: *mut *mut oncelog_error_t,
) -> oncelog_err_t {
    call(err_out, || {
        let store = store_arg(store)?;
        let topic = str_arg(topic, "topic")?;
        let partitions = u32::try_from(partitions)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                Failure::invalid(format!("partitions must be 1 or more, not {partitions}"))
            })?;
        let pairs = conf::pairs_of(conf, &TopicConfig::KEYS)?;
        let mut config = store.options().default_topic_config.clone();
        for (k, v) in conf::views(&pairs) {
            config.set(k, v)?;
        }
        store.create_topic(topic, partitions, config)?;
        Ok(())
    })
}
