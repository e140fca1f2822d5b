//! What came out of a demo run, read from the log itself.

use oncelog::Store;

use super::{Mode, OUTPUT};
use crate::error::CliError;

/// How the output compares with the input records `0..records`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Input records.
    pub records: u64,
    /// Input records that never came out.
    pub lost: u64,
    /// Extra copies of records that came out more than once.
    pub duplicated: u64,
}

/// Reads `output` (as a read_committed reader in exactly-once mode) and counts the
/// input numbers in it.
pub fn count(store: &Store, mode: Mode, records: u64) -> Result<Counts, CliError> {
    let mut seen = vec![0u32; records as usize];
    let mut reader = store
        .partition(OUTPUT, 0)?
        .reader(0)?
        .read_committed(mode == Mode::ExactlyOnce);
    while let Some(batch) = reader.next_batch()? {
        if batch.header().is_control() {
            continue;
        }
        for r in batch.records() {
            let r = r?;
            let n = std::str::from_utf8(r.value.unwrap_or_default())
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .filter(|n| *n < records)
                .ok_or_else(|| {
                    CliError::failed(format!(
                        "output offset {}: not an input record number",
                        r.offset
                    ))
                })?;
            seen[n as usize] += 1;
        }
    }
    Ok(Counts {
        records,
        lost: seen.iter().filter(|c| **c == 0).count() as u64,
        duplicated: seen.iter().map(|c| u64::from(c.saturating_sub(1))).sum(),
    })
}
