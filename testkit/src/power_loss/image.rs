//! Builds a crash image: a directory tree that a power loss at the end of a
//! workload could have left behind, from the workload's sync journal and the files
//! as the workload left them (the page cache's view).
//!
//! The model, per file and per directory:
//!
//! * **File content.** The bytes of the last synced copy stay. Of the part written
//!   since, split into sectors (512 B or 4 KiB per image), each sector is either
//!   the new bytes or the old ones (zeros past the synced size, where a write
//!   extended the file): all old, all new, a random prefix of the changed sectors
//!   new, or each changed sector new or old at random. The size is the synced one
//!   or the current one. A file never synced has an empty synced copy.
//! * **Directory entries.** An entry that the directory's last sync saw, naming the
//!   same file as now, stays. An entry created since may be there or not; an entry
//!   deleted since may come back (with its last synced content); one replaced
//!   since (a rename over it) names the old file or the new one.
//!
//! Every file is treated alike, control blocks and lock files included.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;

use crate::rng::XorShift;

use super::journal::{file_id, Entry, Journal, Listing};

/// What a crash image holds and what the power loss took, for the report.
#[derive(Clone, Debug, Default)]
pub struct ImageStats {
    /// Sector size of the image.
    pub sector: usize,
    /// Files written into the image.
    pub files: usize,
    /// Entries of the workload's tree missing from the image.
    pub dropped: usize,
    /// Entries in the image that the workload had deleted or replaced.
    pub resurrected: usize,
    /// Bytes of `.log` files changed since their last sync (the unsynced tail).
    pub unsynced_log_bytes: u64,
    /// Of those, bytes that the image lost (old bytes or zeros instead of new).
    pub lost_log_bytes: u64,
    /// Bytes of `.log` files in the image.
    pub log_bytes: u64,
}

/// Builds in `out` (which must not exist) a crash image of the tree at `live`,
/// whose syncs `journal` recorded, with choices drawn from `rng`.
pub fn build(
    live: &Path,
    journal: &Journal,
    out: &Path,
    rng: &mut XorShift,
) -> io::Result<ImageStats> {
    let mut stats = ImageStats {
        sector: if rng.chance(50) { 512 } else { 4096 },
        ..ImageStats::default()
    };
    let root = file_id(&std::fs::symlink_metadata(live)?);
    let mut b = Builder {
        journal,
        rng,
        stats: &mut stats,
        durable_only: false,
    };
    b.dir(Some(live), &root, out)?;
    Ok(stats)
}

/// Builds in `out` the image that keeps exactly what the syncs made durable and
/// nothing else: the entries of each directory's last sync, the content of each
/// file's last sync (empty if never synced). One of the images [`build`] can
/// make, chosen on purpose.
pub fn build_durable(live: &Path, journal: &Journal, out: &Path) -> io::Result<ImageStats> {
    let mut stats = ImageStats {
        sector: 512,
        ..ImageStats::default()
    };
    let root = file_id(&std::fs::symlink_metadata(live)?);
    let mut rng = XorShift::new(1);
    let mut b = Builder {
        journal,
        rng: &mut rng,
        stats: &mut stats,
        durable_only: true,
    };
    b.dir(Some(live), &root, out)?;
    Ok(stats)
}

struct Builder<'a> {
    journal: &'a Journal,
    rng: &'a mut XorShift,
    stats: &'a mut ImageStats,
    /// Keep only what was synced (no random choices).
    durable_only: bool,
}

impl Builder<'_> {
    /// Writes directory `id` (live at `live`, if it still is) into `out`.
    fn dir(&mut self, live: Option<&Path>, id: &str, out: &Path) -> io::Result<()> {
        std::fs::create_dir(out)?;
        let now = match live {
            Some(path) => live_listing(path)?,
            None => Listing::new(),
        };
        let synced = self.journal.synced_listing(id).cloned().unwrap_or_default();
        let names: BTreeSet<&String> = now.keys().chain(synced.keys()).collect();
        for name in names {
            let chosen = match (synced.get(name), now.get(name)) {
                (s, n) if self.durable_only => {
                    self.stats.dropped += usize::from(n.is_some() && s != n);
                    s
                }
                (Some(s), Some(n)) if s == n => Some(s),
                (Some(s), Some(n)) => {
                    // Replaced since the directory's last sync: old or new.
                    if self.rng.chance(50) {
                        self.stats.resurrected += 1;
                        Some(s)
                    } else {
                        Some(n)
                    }
                }
                (Some(s), None) => {
                    // Deleted since: may come back.
                    let back = self.rng.chance(50);
                    self.stats.resurrected += usize::from(back);
                    back.then_some(s)
                }
                (None, Some(n)) => {
                    // Created since: may be gone.
                    let kept = self.rng.chance(50);
                    self.stats.dropped += usize::from(!kept);
                    kept.then_some(n)
                }
                (None, None) => None,
            };
            let Some(entry) = chosen else { continue };
            let live_path = live
                .map(|p| p.join(name))
                .filter(|_| now.get(name) == Some(entry));
            self.entry(name, entry, live_path.as_deref(), &out.join(name))?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        name: &str,
        entry: &Entry,
        live: Option<&Path>,
        out: &Path,
    ) -> io::Result<()> {
        if entry.dir {
            return self.dir(live, &entry.id, out);
        }
        let synced = self.journal.synced_content(&entry.id)?.unwrap_or_default();
        let current = match live {
            // A file can vanish between the listing and the read (never, once the
            // workload is dead; but then it is simply not current).
            Some(path) => std::fs::read(path).ok(),
            None => None,
        };
        let current = match current {
            Some(c) if !self.durable_only => c,
            _ => synced.clone(),
        };
        let crash = crash_content(&synced, &current, self.stats.sector, self.rng);
        if name.ends_with(".log") {
            self.stats.unsynced_log_bytes += crash.unsynced;
            self.stats.lost_log_bytes += crash.lost;
            self.stats.log_bytes += crash.bytes.len() as u64;
        }
        self.stats.files += 1;
        std::fs::write(out, &crash.bytes)
    }
}

/// The entries of the directory at `path` now.
fn live_listing(path: &Path) -> io::Result<Listing> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(path)? {
        let e = e?;
        let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        if !meta.is_dir() && !meta.is_file() {
            continue;
        }
        out.insert(
            e.file_name().to_string_lossy().into_owned(),
            Entry {
                dir: meta.is_dir(),
                id: file_id(&meta),
            },
        );
    }
    Ok(out)
}

/// A file's content after the power loss.
#[derive(Debug)]
pub struct Crashed {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Bytes of the current content in sectors changed since the sync.
    pub unsynced: u64,
    /// Of those, bytes not in the image (old bytes or zeros instead).
    pub lost: u64,
}

/// One file's content after a power loss: `synced` as of its last sync, `current`
/// as the workload left it, sectors of `sector` bytes.
pub fn crash_content(synced: &[u8], current: &[u8], sector: usize, rng: &mut XorShift) -> Crashed {
    let padded = |bytes: &[u8], at: usize| -> Vec<u8> {
        let mut s = vec![0u8; sector];
        if at < bytes.len() {
            let n = (bytes.len() - at).min(sector);
            s[..n].copy_from_slice(&bytes[at..at + n]);
        }
        s
    };
    let longest = synced.len().max(current.len());
    let changed: Vec<usize> = (0..longest)
        .step_by(sector)
        .filter(|&at| padded(synced, at) != padded(current, at))
        .collect();
    let unsynced = changed
        .iter()
        .map(|&at| current.len().saturating_sub(at).min(sector) as u64)
        .sum();
    // 0: nothing reached the disk, 1: everything, 2: a prefix, 3: any sectors.
    let mode = if changed.is_empty() {
        0
    } else {
        rng.range(0, 3)
    };
    let len = match mode {
        0 => synced.len(),
        1 => current.len(),
        _ if rng.chance(50) => synced.len(),
        _ => current.len(),
    };
    let prefix = rng.range(0, changed.len() as u64) as usize;
    let mut bytes = synced.to_vec();
    bytes.resize(longest, 0);
    let mut lost = 0u64;
    for (i, &at) in changed.iter().enumerate() {
        let new = match mode {
            0 => false,
            1 => true,
            2 => i < prefix,
            _ => rng.chance(50),
        };
        let n = sector.min(longest - at);
        if new {
            bytes[at..at + n].copy_from_slice(&padded(current, at)[..n]);
        } else {
            bytes[at..at + n].copy_from_slice(&padded(synced, at)[..n]);
        }
        if !new || at >= len {
            lost += current.len().saturating_sub(at).min(sector) as u64;
        }
    }
    bytes.truncate(len);
    Crashed {
        bytes,
        unsynced,
        lost,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Synced bytes always survive; every other sector is old or new, whole.
    #[test]
    fn synced_bytes_survive_and_sectors_are_old_or_new() {
        let synced: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8 + 1).collect();
        let mut current = synced.clone();
        current[600..700].fill(0xee); // sector 1 changed
        current.extend(std::iter::repeat_n(0xaa, 2000)); // extended
        let mut rng = XorShift::new(7);
        let mut seen_new = false;
        let mut seen_old = false;
        for _ in 0..200 {
            let c = crash_content(&synced, &current, 512, &mut rng);
            assert!(c.bytes.len() == synced.len() || c.bytes.len() == current.len());
            assert_eq!(c.bytes[..512], synced[..512], "an unchanged sector moved");
            for at in (512..c.bytes.len()).step_by(512) {
                let end = (at + 512).min(c.bytes.len());
                let got = &c.bytes[at..end];
                let old: Vec<u8> = (at..end)
                    .map(|i| synced.get(i).copied().unwrap_or(0))
                    .collect();
                let new = &current[at..end];
                assert!(got == old.as_slice() || got == new, "sector at {at} torn");
                seen_new |= got == new && got != old.as_slice();
                seen_old |= got == old.as_slice() && got != new;
            }
            assert!(c.unsynced > 0 && c.lost <= c.unsynced + 512);
        }
        assert!(seen_new && seen_old);
    }
}
