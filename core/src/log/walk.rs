//! Walking the batches of a segment: the one loop shared by recovery (verify and
//! rebuild indexes), repair after a dead lock holder, and index rules at append time.

use super::index::{OffsetEntry, TimeEntry};
use super::segment::MappedSegment;
use crate::record::{Batch, BatchHeader, BATCH_HEADER_LEN};

/// Running index state of a segment, advanced batch by batch exactly as Kafka's
/// `LogSegment.append` does, so that an index rebuilt by a walk equals the index
/// written at append time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexCursor {
    /// `index.interval.bytes`.
    pub interval: u32,
    /// Position of the batch named by the last offset-index entry.
    pub last_index_position: Option<u32>,
    /// Timestamp of the last time-index entry.
    pub last_time_timestamp: Option<i64>,
    /// Largest timestamp in the segment so far (`i64::MIN` when empty).
    pub max_timestamp: i64,
    /// Offset of the record with `max_timestamp`.
    pub offset_of_max_timestamp: i64,
}

/// What one batch adds to the indexes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexAdditions {
    /// A new offset-index entry.
    pub offset: Option<OffsetEntry>,
    /// A new time-index entry.
    pub time: Option<TimeEntry>,
}

impl IndexCursor {
    /// The cursor of an empty segment.
    pub fn new(interval: u32) -> IndexCursor {
        IndexCursor {
            interval,
            last_index_position: None,
            last_time_timestamp: None,
            max_timestamp: i64::MIN,
            offset_of_max_timestamp: -1,
        }
    }

    /// Accounts for a batch at `position` with `last_offset` and `max_timestamp`.
    pub fn on_batch(
        &mut self,
        position: u32,
        last_offset: i64,
        max_timestamp: i64,
    ) -> IndexAdditions {
        if max_timestamp > self.max_timestamp {
            self.max_timestamp = max_timestamp;
            self.offset_of_max_timestamp = last_offset;
        }
        let since = position - self.last_index_position.unwrap_or(0);
        let mut add = IndexAdditions::default();
        if since > self.interval {
            add.offset = Some(OffsetEntry {
                offset: last_offset,
                position,
            });
            self.last_index_position = Some(position);
            add.time = self.maybe_time_entry();
        }
        add
    }

    /// The time entry Kafka appends when a segment is sealed, if the max grew.
    pub fn maybe_time_entry(&mut self) -> Option<TimeEntry> {
        if self.max_timestamp == i64::MIN {
            return None;
        }
        if self
            .last_time_timestamp
            .is_some_and(|t| t >= self.max_timestamp)
        {
            return None;
        }
        self.last_time_timestamp = Some(self.max_timestamp);
        Some(TimeEntry {
            timestamp: self.max_timestamp,
            offset: self.offset_of_max_timestamp,
        })
    }
}

/// Where a walk stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalkEnd {
    /// Reached the limit (the end of the bytes, or the requested offset).
    Complete,
    /// Found a batch that fails a check; everything from `position` on is invalid.
    Invalid {
        /// What failed.
        reason: String,
    },
}

/// A walk's position: the next batch starts at `position` and holds `next_offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkPos {
    /// Byte position of the next batch.
    pub position: u64,
    /// Offset the next batch must start with.
    pub next_offset: i64,
    /// Max timestamp of the segment's first batch (`i64::MIN` until one is seen).
    pub first_batch_timestamp: i64,
}

/// Walks batches of `seg` from `pos` while they lie below `limit_len` bytes and below
/// `stop_offset`, checking length, offsets and, for batches whose last offset is at
/// or past `verify_from`, the CRC. `on_batch` sees each good batch.
///
/// # Safety
/// `[pos.position, limit_len)` of the segment must be readable: reserved on disk,
/// and not being written by anyone (exclusive opener or append-lock holder).
pub unsafe fn walk(
    seg: &MappedSegment,
    pos: &mut WalkPos,
    limit_len: u64,
    stop_offset: i64,
    verify_from: i64,
    mut on_batch: impl FnMut(u64, &BatchHeader),
) -> WalkEnd {
    while pos.next_offset < stop_offset {
        let remaining = limit_len.saturating_sub(pos.position);
        if remaining == 0 {
            return WalkEnd::Complete;
        }
        if remaining < BATCH_HEADER_LEN as u64 {
            return WalkEnd::Invalid {
                reason: format!("{remaining} trailing bytes, too few for a batch header"),
            };
        }
        let Some(head) = seg.bytes(pos.position as usize, BATCH_HEADER_LEN) else {
            return WalkEnd::Invalid {
                reason: "batch header outside the mapping".into(),
            };
        };
        let header = match BatchHeader::parse(head) {
            Ok(h) => h,
            Err(e) => {
                return WalkEnd::Invalid {
                    reason: e.to_string(),
                }
            }
        };
        if header.base_offset != pos.next_offset {
            return WalkEnd::Invalid {
                reason: format!(
                    "batch starts at offset {}, expected {}",
                    header.base_offset, pos.next_offset
                ),
            };
        }
        let total = header.total_len() as u64;
        if total > remaining {
            return WalkEnd::Invalid {
                reason: format!("batch of {total} bytes overruns the {remaining} bytes left"),
            };
        }
        if header.last_offset() >= verify_from {
            let Some(bytes) = seg.bytes(pos.position as usize, total as usize) else {
                return WalkEnd::Invalid {
                    reason: "batch outside the mapping".into(),
                };
            };
            if let Err(e) = Batch::parse(bytes).and_then(|b| b.verify_crc()) {
                return WalkEnd::Invalid {
                    reason: e.to_string(),
                };
            }
        }
        if pos.first_batch_timestamp == i64::MIN && pos.position == 0 {
            pos.first_batch_timestamp = header.max_timestamp;
        }
        on_batch(pos.position, &header);
        pos.position += total;
        pos.next_offset = header.next_offset();
    }
    WalkEnd::Complete
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_entries_follow_kafkas_interval_rule() {
        let mut c = IndexCursor::new(100);
        // First batch at 0: nothing indexed (0 bytes since the start).
        assert_eq!(c.on_batch(0, 9, 1000), IndexAdditions::default());
        // 60 bytes since the start: not more than the interval.
        assert_eq!(c.on_batch(60, 19, 900), IndexAdditions::default());
        // 120 > 100: indexed, with the max timestamp so far (from the first batch).
        let add = c.on_batch(120, 29, 1100);
        assert_eq!(
            add.offset,
            Some(OffsetEntry {
                offset: 29,
                position: 120
            })
        );
        assert_eq!(
            add.time,
            Some(TimeEntry {
                timestamp: 1100,
                offset: 29
            })
        );
        // 80 bytes since the last entry: not indexed.
        assert_eq!(c.on_batch(200, 39, 1200), IndexAdditions::default());
        // Indexed again, but the max timestamp did not grow past 1200 -> time entry.
        let add = c.on_batch(260, 49, 1150);
        assert_eq!(
            add.offset,
            Some(OffsetEntry {
                offset: 49,
                position: 260
            })
        );
        assert_eq!(
            add.time,
            Some(TimeEntry {
                timestamp: 1200,
                offset: 39
            })
        );
        // Sealing appends nothing more: 1200 is already the last time entry.
        assert_eq!(c.maybe_time_entry(), None);
    }
}
