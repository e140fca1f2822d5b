//! Builds the sync-journal shim (`sync_journal.c`) with the system C compiler.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The shim's C source.
pub const SOURCE: &str = include_str!("sync_journal.c");

/// The environment variable naming the journal directory of a shimmed process.
pub const JOURNAL_ENV: &str = "ONCELOG_SYNC_JOURNAL";

/// Compiles the shim into `dir` (with `$CC`, else `cc`) and returns the path of the
/// shared library, to be put in `LD_PRELOAD`.
pub fn build(dir: &Path) -> io::Result<PathBuf> {
    let src = dir.join("sync_journal.c");
    let lib = dir.join("libsync_journal.so");
    std::fs::write(&src, SOURCE)?;
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let out = Command::new(&cc)
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o"])
        .arg(&lib)
        .arg(&src)
        .arg("-ldl")
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{cc} failed to build the sync journal shim: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(lib)
}
