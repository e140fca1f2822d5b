//! The recovery point of a partition: `recovery.checkpoint`, the offset below which
//! every batch and every sealed segment's indexes are on stable storage. Recovery
//! walks and verifies only what lies past it.

use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::fs;

const FILE_NAME: &str = "recovery.checkpoint";
const HEADER: &str = "oncelog-recovery-point v1";

/// Path of the checkpoint in a partition directory.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Reads the checkpoint: `None` when absent (recover from the first segment).
pub fn read(dir: &Path) -> Result<Option<i64>> {
    let path = path(dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    let mut lines = text.lines();
    let offset = match (lines.next(), lines.next().map(str::parse::<i64>)) {
        (Some(HEADER), Some(Ok(offset))) if offset >= 0 => offset,
        _ => {
            // Written atomically, so damage means the disk or a person changed it:
            // recovering from the start is always safe.
            return Err(Error::new(
                ErrorKind::Corrupt,
                format!("{} is not a recovery checkpoint", path.display()),
            ));
        }
    };
    Ok(Some(offset))
}

/// Writes the checkpoint atomically.
pub fn write(dir: &Path, offset: i64) -> Result<()> {
    fs::write_atomic(&path(dir), format!("{HEADER}\n{offset}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        write(dir.path(), 1234).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(1234));
        std::fs::write(path(dir.path()), "garbage").unwrap();
        assert_eq!(read(dir.path()).unwrap_err().kind(), ErrorKind::Corrupt);
    }
}
