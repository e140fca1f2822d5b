//! Reads the journal written by the sync-journal shim (see `sync_journal.c`).

use std::collections::{BTreeMap, HashMap};
use std::fs::Metadata;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// A file's identity: `<major>.<minor>-<inode>-<birth s>-<birth ns>`, as the shim
/// writes it. The birth time tells a reused inode number from the file it replaced.
pub type FileId = String;

/// The identity of the file `meta` describes.
pub fn file_id(meta: &Metadata) -> FileId {
    let born = meta
        .created()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    format!(
        "{}.{}-{}-{}-{}",
        libc::major(meta.dev()),
        libc::minor(meta.dev()),
        meta.ino(),
        born.as_secs(),
        born.subsec_nanos()
    )
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Whether it is a directory.
    pub dir: bool,
    /// The identity of the file or directory it names.
    pub id: FileId,
}

/// Entries of a directory by name.
pub type Listing = BTreeMap<String, Entry>;

/// What the workload's syncs made durable.
#[derive(Debug, Default)]
pub struct Journal {
    files: HashMap<FileId, PathBuf>,
    dirs: HashMap<FileId, Listing>,
    /// Sync calls the model does not cover (`msync`, `sync_file_range`, `sync`,
    /// `syncfs`), one line each.
    pub unmodelled: Vec<String>,
}

impl Journal {
    /// Reads the journal in `dir`.
    pub fn read(dir: &Path) -> io::Result<Journal> {
        let mut journal = Journal::default();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.contains(".tmp.") {
                continue; // a copy its writer did not finish
            }
            if let Some(id) = name.strip_prefix("f-") {
                journal.files.insert(id.to_string(), entry.path());
            } else if let Some(id) = name.strip_prefix("d-") {
                let text = std::fs::read_to_string(entry.path())?;
                journal.dirs.insert(id.to_string(), parse_listing(&text));
            } else if name == "unmodelled" {
                let text = std::fs::read_to_string(entry.path())?;
                journal.unmodelled = text.lines().map(str::to_string).collect();
            }
        }
        Ok(journal)
    }

    /// The content of file `id` at its last sync, if it was ever synced.
    pub fn synced_content(&self, id: &str) -> io::Result<Option<Vec<u8>>> {
        self.files.get(id).map(std::fs::read).transpose()
    }

    /// The entries of directory `id` at its last sync, if it was ever synced.
    pub fn synced_listing(&self, id: &str) -> Option<&Listing> {
        self.dirs.get(id)
    }

    /// How many files and directories were synced at least once.
    pub fn counts(&self) -> (usize, usize) {
        (self.files.len(), self.dirs.len())
    }
}

/// Parses `<f|d> <id> <name>` lines.
fn parse_listing(text: &str) -> Listing {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ' ');
            let kind = parts.next()?;
            let id = parts.next()?;
            let name = parts.next()?;
            Some((
                name.to_string(),
                Entry {
                    dir: kind == "d",
                    id: id.to_string(),
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_parse_names_with_spaces() {
        let l = parse_listing("f 8.1-12-3-4 a b\nd 8.1-13-3-5 sub\n");
        assert_eq!(l["a b"].id, "8.1-12-3-4");
        assert!(!l["a b"].dir);
        assert!(l["sub"].dir);
    }
}
