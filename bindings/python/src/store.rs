//! `oncelog.Store`: an open store directory (topics, and the producers and
//! consumers built on it).

use std::path::PathBuf;
use std::sync::RwLock;

use oncelog::{ErrorKind, StoreOptions};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use crate::convert::{config_arg, pair_views};
use crate::errors::{binding_error, OrRaise};
use crate::types::TopicMetadata;

/// An open store: a directory of topics that any number of processes open at once.
/// A context manager; `close()` ends this handle (producers and consumers made from
/// it keep the store open until they are closed too). Safe to share between threads.
#[pyclass(frozen, module = "oncelog")]
pub struct Store {
    inner: RwLock<Option<oncelog::Store>>,
    path: PathBuf,
}

impl Store {
    /// The core store, or `Closed`.
    pub fn core(&self) -> PyResult<oncelog::Store> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| binding_error(ErrorKind::Closed, "the store is closed"))
    }
}

/// A path argument: `str` or any `os.PathLike`.
pub fn path_arg(obj: &Bound<'_, PyAny>) -> PyResult<PathBuf> {
    let fspath = obj.py().import("os")?.getattr("fspath")?;
    let p = fspath.call1((obj,)).map_err(|_| {
        PyTypeError::new_err(format!(
            "a store must be an oncelog.Store, a str or an os.PathLike path, not {}",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    let s = p
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err("a store path must be a str path, not bytes"))?;
    Ok(PathBuf::from(s.to_cow()?.into_owned()))
}

/// Opens a store at `path` with the GIL released (opening may recover partitions).
fn open(py: Python<'_>, path: PathBuf, create: bool) -> PyResult<oncelog::Store> {
    let options = StoreOptions {
        create,
        ..StoreOptions::default()
    };
    py.detach(move || oncelog::Store::open(path, options))
        .or_raise()
}

/// The core store behind a `store_or_path` argument: a `Store` (shared), or a path
/// opened (and created if missing) for the caller alone.
pub fn store_arg(obj: &Bound<'_, PyAny>) -> PyResult<oncelog::Store> {
    if let Ok(store) = obj.cast::<Store>() {
        return store.get().core();
    }
    let path = path_arg(obj)?;
    open(obj.py(), path, true)
}

#[pymethods]
impl Store {
    /// Opens the store at `path` (a directory), creating it when missing unless
    /// `create` is false.
    #[new]
    #[pyo3(signature = (path, create = true))]
    fn new(py: Python<'_>, path: &Bound<'_, PyAny>, create: bool) -> PyResult<Store> {
        let path = path_arg(path)?;
        let store = open(py, path.clone(), create)?;
        Ok(Store {
            inner: RwLock::new(Some(store)),
            path,
        })
    }

    /// The store's directory.
    #[getter]
    fn path(&self) -> String {
        self.path.display().to_string()
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    /// Creates a topic with `partitions` partitions and the topic config `config`
    /// (Kafka's keys: `segment.bytes`, `retention.ms`, `max.message.bytes`, ...).
    /// Raises `TopicExists` if it exists.
    #[pyo3(signature = (name, partitions = 1, config = None))]
    fn create_topic(
        &self,
        py: Python<'_>,
        name: &str,
        partitions: i64,
        config: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<TopicMetadata> {
        let store = self.core()?;
        let partitions = u32::try_from(partitions).map_err(|_| {
            binding_error(
                ErrorKind::InvalidArgument,
                format!("partition count must be between 1 and 10000, not {partitions}"),
            )
        })?;
        let (pairs, _) = config_arg(config, &[])?;
        let name = name.to_string();
        let meta = py
            .detach(|| {
                let views: Vec<(&str, &str)> = pair_views(&pairs).collect();
                store.create_topic_with(&name, partitions, &views)
            })
            .or_raise()?;
        Ok(TopicMetadata::from_core(&meta))
    }

    /// Every topic, sorted by name; with `internal=True` also oncelog's own
    /// (`__consumer_offsets`, `__transaction_state`).
    #[pyo3(signature = (internal = false))]
    fn topics(&self, py: Python<'_>, internal: bool) -> PyResult<Vec<TopicMetadata>> {
        let store = self.core()?;
        let metas = py.detach(|| store.topics()).or_raise()?;
        Ok(metas
            .iter()
            .filter(|m| internal || !oncelog::topic::is_internal(&m.name))
            .map(TopicMetadata::from_core)
            .collect())
    }

    /// One topic's metadata; raises `UnknownTopic` if there is none of that name.
    fn topic(&self, py: Python<'_>, name: &str) -> PyResult<TopicMetadata> {
        let store = self.core()?;
        let meta = py.detach(|| store.topic(name)).or_raise()?;
        Ok(TopicMetadata::from_core(&meta))
    }

    /// Grows topic `name` to `partitions` partitions (never shrinks).
    fn add_partitions(
        &self,
        py: Python<'_>,
        name: &str,
        partitions: i64,
    ) -> PyResult<TopicMetadata> {
        let store = self.core()?;
        let partitions = u32::try_from(partitions).map_err(|_| {
            binding_error(
                ErrorKind::InvalidArgument,
                format!("partition count must be between 1 and 10000, not {partitions}"),
            )
        })?;
        let meta = py
            .detach(|| store.add_partitions(name, partitions))
            .or_raise()?;
        Ok(TopicMetadata::from_core(&meta))
    }

    /// Closes this handle. When it is the last one in the process (producers and
    /// consumers hold the store too) and no other process has the store open, the
    /// store is shut down cleanly (synced and trimmed). Closing twice does nothing.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let store = self.inner.write().unwrap_or_else(|p| p.into_inner()).take();
        match store {
            Some(s) => py.detach(|| s.close()).or_raise(),
            None => Ok(()),
        }
    }

    fn __enter__(slf: Py<Store>) -> Py<Store> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let state = if self.closed() { " (closed)" } else { "" };
        format!("Store({:?}){state}", self.path.display().to_string())
    }
}
