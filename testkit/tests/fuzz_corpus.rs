//! Replays every committed fuzz input through the fuzz targets' bodies, without
//! instrumentation: the corpus (`fuzz/corpus/<target>/`) and the crash inputs that
//! became regression tests (`fuzz/regressions/<target>/`). A crash the fuzzer found
//! once fails this test if it comes back.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// The inputs committed for `target`, sorted.
fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut out = Vec::new();
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(kind).join(target)) else {
            continue;
        };
        out.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_file()));
    }
    out.sort();
    out
}

/// Runs `body` on each input of `target`; fails naming every input that panicked.
fn replay(target: &str, body: fn(&[u8])) {
    let inputs = inputs(target);
    assert!(!inputs.is_empty(), "no committed inputs for {target}");
    let failed: Vec<String> = inputs
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("read a fuzz input");
            catch_unwind(AssertUnwindSafe(|| body(&data))).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} inputs of {target} fail: {failed:#?}",
        failed.len(),
        inputs.len()
    );
}

#[test]
fn batch_decode_inputs_pass() {
    replay("batch_decode", oncelog::fuzzing::batch_decode);
}

#[test]
fn open_store_inputs_pass() {
    replay("open_store", oncelog::fuzzing::open_store);
}

#[test]
fn api_sequence_inputs_pass() {
    replay("api_sequence", oncelog::fuzzing::api_sequence);
}
