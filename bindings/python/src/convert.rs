//! Python values to core arguments: bytes-like keys and values, headers, timeouts,
//! configuration dicts and topic-partition lists. Wrong types raise `TypeError`,
//! wrong values the core's `InvalidArgument` (a `ValueError`).

use std::borrow::Cow;
use std::time::Duration;

use oncelog::ErrorKind;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::errors::binding_error;

/// The bytes of a key, value or header value: `bytes` (borrowed, no copy), `str`
/// (UTF-8), `bytearray` or `memoryview` (copied: they may change), or `None`.
pub fn bytes_arg<'a>(obj: &'a Bound<'_, PyAny>, what: &str) -> PyResult<Option<Cow<'a, [u8]>>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Some(Cow::Borrowed(b.as_bytes())));
    }
    if obj.is_none() {
        return Ok(None);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Some(Cow::Owned(s.to_cow()?.into_owned().into_bytes())));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Some(Cow::Owned(b.to_vec())));
    }
    if obj.get_type().name()? == "memoryview" {
        let bytes = obj.py().get_type::<PyBytes>().call1((obj,))?;
        return Ok(Some(Cow::Owned(
            bytes.cast::<PyBytes>()?.as_bytes().to_vec(),
        )));
    }
    Err(PyTypeError::new_err(format!(
        "{what} must be bytes, str, bytearray, memoryview or None, not {}",
        obj.get_type().name()?
    )))
}

/// The same value as a Python `bytes` object (for messages handed back to Python):
/// `bytes` itself when it was one.
pub fn as_pybytes<'py>(
    obj: &Bound<'py, PyAny>,
    bytes: Option<&[u8]>,
) -> Option<Bound<'py, PyBytes>> {
    match obj.cast::<PyBytes>() {
        Ok(b) => Some(b.clone()),
        Err(_) => bytes.map(|b| PyBytes::new(obj.py(), b)),
    }
}

/// Headers: a list of `(key, value)` pairs or a dict; keys are `str`, values
/// bytes-like or `None`. Order is kept; keys may repeat in a list.
pub fn headers_arg(obj: &Bound<'_, PyAny>) -> PyResult<Vec<(String, Option<Vec<u8>>)>> {
    let mut out = Vec::new();
    let mut add = |k: &Bound<'_, PyAny>, v: &Bound<'_, PyAny>| -> PyResult<()> {
        let key = k.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "a header key must be str, not {}",
                k.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        let value = bytes_arg(v, "a header value")?.map(Cow::into_owned);
        out.push((key.to_cow()?.into_owned(), value));
        Ok(())
    };
    if let Ok(d) = obj.cast::<PyDict>() {
        for (k, v) in d.iter() {
            add(&k, &v)?;
        }
        return Ok(out);
    }
    if obj.cast::<PyString>().is_ok() || obj.cast::<PyBytes>().is_ok() {
        return Err(PyTypeError::new_err(
            "headers must be a dict or a list of (key, value) pairs",
        ));
    }
    let iter = obj.try_iter().map_err(|_| {
        PyTypeError::new_err("headers must be a dict or a list of (key, value) pairs")
    })?;
    for item in iter {
        let item = item?;
        let pair = item
            .cast::<PyTuple>()
            .map_err(|_| PyTypeError::new_err("each header must be a (key, value) tuple"))?;
        if pair.len() != 2 {
            return Err(PyTypeError::new_err(
                "each header must be a (key, value) tuple",
            ));
        }
        add(&pair.get_item(0)?, &pair.get_item(1)?)?;
    }
    Ok(out)
}

/// Headers as Python sees them on a message: `None` when there are none, else a
/// list of `(str, bytes | None)` tuples.
pub fn headers_to_py<'py>(
    py: Python<'py>,
    headers: &[(String, Option<Vec<u8>>)],
) -> PyResult<Option<Bound<'py, PyList>>> {
    if headers.is_empty() {
        return Ok(None);
    }
    let items = headers
        .iter()
        .map(|(k, v)| {
            let value = v.as_deref().map(|v| PyBytes::new(py, v).into_any());
            PyTuple::new(
                py,
                [
                    PyString::new(py, k).into_any(),
                    value.unwrap_or_else(|| py.None().into_bound(py)),
                ],
            )
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok(Some(PyList::new(py, items)?))
}

/// A timeout in seconds: `None` or a negative number wait without limit (as
/// confluent-kafka's -1).
pub fn timeout_arg(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_nan() => Err(binding_error(
            ErrorKind::InvalidArgument,
            "timeout must be a number of seconds, not NaN",
        )),
        Some(t) if t < 0.0 => Ok(None),
        Some(t) => Ok(Some(
            Duration::try_from_secs_f64(t).unwrap_or(Duration::MAX),
        )),
    }
}

/// A configuration value as the core reads it: `str` as is, `bool` as
/// `true`/`false`, `int` and `float` in decimal.
fn config_value(key: &str, v: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(s.to_cow()?.into_owned());
    }
    if let Ok(b) = v.extract::<bool>() {
        if v.get_type().name()? == "bool" {
            return Ok(if b { "true" } else { "false" }.to_string());
        }
    }
    if let Ok(i) = v.extract::<i128>() {
        return Ok(i.to_string());
    }
    if v.get_type().name()? == "float" {
        return Ok(v.str()?.to_cow()?.into_owned());
    }
    Err(PyTypeError::new_err(format!(
        "config value of {key:?} must be str, int, float or bool, not {}",
        v.get_type().name()?
    )))
}

/// A configuration split in two: the `(key, value)` strings for the core, and the
/// binding's own keys with their Python values.
pub type SplitConfig<'py> = (Vec<(String, String)>, Vec<(String, Bound<'py, PyAny>)>);

/// A configuration dict as `(key, value)` strings. Keys in `extra` (the binding's
/// own, such as `on_delivery`) are returned apart, unconverted.
pub fn config_arg<'py>(
    config: Option<&Bound<'py, PyAny>>,
    extra: &[&str],
) -> PyResult<SplitConfig<'py>> {
    let mut pairs = Vec::new();
    let mut kept = Vec::new();
    let Some(config) = config else {
        return Ok((pairs, kept));
    };
    if config.is_none() {
        return Ok((pairs, kept));
    }
    let dict = config.cast::<PyDict>().map_err(|_| {
        PyTypeError::new_err(format!(
            "config must be a dict of Kafka config keys to values, not {}",
            config
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    for (k, v) in dict.iter() {
        let key = k
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err("config keys must be str"))?
            .to_cow()?
            .into_owned();
        if extra.contains(&key.as_str()) {
            kept.push((key, v));
            continue;
        }
        let value = config_value(&key, &v)?;
        pairs.push((key, value));
    }
    Ok((pairs, kept))
}

/// Borrowed `(&str, &str)` views of owned pairs, for the core's `from_pairs`.
pub fn pair_views(pairs: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

/// A partition number: 0 or more and at most `u32::MAX`.
pub fn partition_number(partition: i64) -> PyResult<u32> {
    u32::try_from(partition).map_err(|_| {
        binding_error(
            ErrorKind::InvalidArgument,
            format!("partition must be 0 or more, not {partition}"),
        )
    })
}

/// A list (or other iterable) of topic names, refusing a bare `str`, which would
/// otherwise be taken letter by letter.
pub fn topic_list(topics: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if topics.cast::<PyString>().is_ok() {
        return Err(PyTypeError::new_err(
            "topics must be a list of topic names, not a str (write [topic])",
        ));
    }
    let iter = topics
        .try_iter()
        .map_err(|_| PyTypeError::new_err("topics must be a list of topic names"))?;
    iter.map(|t| {
        let t = t?;
        let s = t
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err("topics must be a list of topic names (str)"))?;
        Ok(s.to_cow()?.into_owned())
    })
    .collect()
}
