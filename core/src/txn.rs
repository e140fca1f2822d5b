//! The transaction coordinator: the log `__transaction_state`, one record per state
//! change of a `transactional.id` (producer id, epoch, status, partitions,
//! timestamps), read by every process. Every change is made under that log's append
//! lock after catching up with it, so processes agree on one history.
//!
//! * `init` fences the previous holder of a transactional id (the epoch moves on)
//!   and finishes what it left: an open transaction is aborted, one found in
//!   PrepareCommit is committed (rolled forward).
//! * `add_partitions` records a partition in the open transaction before the
//!   producer's first write to it.
//! * `end` decides, then writes a marker to every partition of the transaction with
//!   the next epoch (fencing any late write of this transaction), then the completed
//!   state with that epoch. A commit of several partitions is decided by a
//!   PrepareCommit record (a holder that dies after it is rolled forward); a commit
//!   of one partition by its COMMIT marker alone (one-phase commit: the marker is
//!   atomic in its partition); an abort needs no decision record (an open
//!   transaction whose holder is gone is aborted anyway).
//!
//! With `acks=synced` each step is on stable storage before the next one depends on
//! it: the data before the decision, the decision before the markers, the markers
//! before the completed state. A one-partition commit therefore costs one
//! `fdatasync` (data and marker together).
//!
//! Each process keeps the log's records in a cache: a change made under the lock
//! updates it directly, so only other processes' records are ever read back.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::Durability;
use crate::error::{bail, Error, ErrorKind, Result};
use crate::keys::{FastMap, FastSet};
use crate::log::partition::{now_ms, AppendGuard};
use crate::partition::{AppendOptions, Partition};
use crate::record::{ControlRecordType, Record};
use crate::store::Store;
use crate::topic::TRANSACTION_STATE;
use crate::wire::{put_str, Cursor};
use crate::Reader;

/// Where a transactional id's transaction stands (Kafka's names and numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnStatus {
    /// No transaction open.
    Empty = 0,
    /// A transaction is open.
    Ongoing = 1,
    /// Decided to commit; markers may still be missing.
    PrepareCommit = 2,
    /// Decided to abort; markers may still be missing.
    PrepareAbort = 3,
    /// Committed: every marker written.
    CompleteCommit = 4,
    /// Aborted: every marker written.
    CompleteAbort = 5,
}

impl TxnStatus {
    fn from_i8(v: i8) -> Option<TxnStatus> {
        Some(match v {
            0 => TxnStatus::Empty,
            1 => TxnStatus::Ongoing,
            2 => TxnStatus::PrepareCommit,
            3 => TxnStatus::PrepareAbort,
            4 => TxnStatus::CompleteCommit,
            5 => TxnStatus::CompleteAbort,
            _ => return None,
        })
    }
}

/// The state of one transactional id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnState {
    /// The producer id it maps to.
    pub producer_id: i64,
    /// The current epoch; older ones are fenced.
    pub epoch: i16,
    /// `transaction.timeout.ms`.
    pub timeout_ms: i32,
    /// Where the transaction stands.
    pub status: TxnStatus,
    /// The partitions of the open (or deciding) transaction.
    pub partitions: BTreeSet<(String, u32)>,
    /// When the transaction started (ms since the Unix epoch).
    pub started_ms: i64,
    /// When the state last changed.
    pub updated_ms: i64,
    /// The session of the holder (a random token from `init`): its liveness lock
    /// is `transactions/<owner>.live`, held while the holder lives.
    pub owner: i64,
}

/// What identifies one open transaction across state records.
fn open_key(s: &TxnState) -> (i64, i16, i64) {
    (s.producer_id, s.epoch, s.started_ms)
}

/// Config of `__transaction_state`: 1 MiB segments, kept (compaction comes later).
const LOG_CONFIG: [(&str, &str); 3] = [
    ("segment.bytes", "1048576"),
    ("retention.ms", "-1"),
    ("retention.bytes", "-1"),
];

struct Cache {
    map: FastMap<String, TxnState>,
    reader: Option<Reader>,
    /// `map` holds every record of the log below this offset.
    valid_to: i64,
    /// Ids whose state in `map` was decided here and not written yet (see
    /// `Coordinator::end`).
    unwritten: FastSet<String>,
    /// Reused for encoding records.
    key: Vec<u8>,
    value: Vec<u8>,
}

/// This process's handle on the coordinator log.
pub struct Coordinator {
    store: Store,
    log: Partition,
    cache: Mutex<Cache>,
    /// Durability of its records and markers: a transaction committed with
    /// `acks=synced` survives power loss as a whole.
    durability: Durability,
    /// When this process first saw each open transaction, by (producer id, epoch,
    /// start): `transaction.timeout.ms` is measured from there on the monotonic
    /// clock, so that a jump of the wall clock neither aborts a live transaction
    /// nor keeps a hung one open.
    open_since: Mutex<FastMap<(i64, i16, i64), Instant>>,
}

impl Coordinator {
    /// Opens (creating on first use) the store's `__transaction_state`; its records
    /// and the markers it writes get `durability`.
    pub fn open(store: &Store, durability: Durability) -> Result<Coordinator> {
        Ok(Coordinator {
            durability,
            open_since: Mutex::new(FastMap::default()),
            store: store.clone(),
            log: store.internal_partition(TRANSACTION_STATE, &LOG_CONFIG)?,
            cache: Mutex::new(Cache {
                map: FastMap::default(),
                reader: None,
                valid_to: -1,
                unwritten: FastSet::default(),
                key: Vec::new(),
                value: Vec::new(),
            }),
        })
    }

    /// The state of `id` as every process sees it.
    pub fn state(&self, id: &str) -> Result<Option<TxnState>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        self.catch_up(&mut cache)?;
        Ok(cache.map.get(id).cloned())
    }

    /// Every transactional id the log knows, with its latest state, sorted by id.
    /// The latest record of a live holder may still say `Ongoing` or
    /// `PrepareCommit` for a transaction whose markers already ended it (its
    /// completed state is written with the holder's next record): a partition's
    /// [`producers`](crate::Partition::producers) tell whether the transaction is
    /// still open there.
    pub fn states(&self) -> Result<Vec<(String, TxnState)>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        self.catch_up(&mut cache)?;
        let mut all: Vec<(String, TxnState)> = cache
            .map
            .iter()
            .map(|(id, s)| (id.clone(), s.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }

    /// Takes over `id`: fences every older epoch, finishes a transaction the
    /// previous holder left (abort, or commit if it was prepared), and returns the
    /// producer id and the new epoch.
    pub fn init(&self, id: &str, timeout_ms: i32) -> Result<(i64, i16, i64)> {
        crate::wire::check_str("a transactional id", id)?;
        let owner = crate::fs::random_token()?;
        self.locked(|this, cache, guard| {
            let state = match cache.map.get(id).cloned() {
                None => TxnState {
                    producer_id: this.store.allocate_producer_id()?,
                    epoch: 0,
                    timeout_ms,
                    status: TxnStatus::Empty,
                    partitions: BTreeSet::new(),
                    started_ms: -1,
                    updated_ms: now_ms(),
                    owner,
                },
                Some(mut s) => {
                    let next = match s.status {
                        TxnStatus::Ongoing | TxnStatus::PrepareAbort => Some(false),
                        TxnStatus::PrepareCommit => Some(true),
                        _ => None,
                    };
                    if let Some(commit) = next {
                        s = this.finish(cache, guard, id, s, commit)?;
                    }
                    // A fresh epoch fences the previous holder.
                    let (producer_id, epoch) = this.next_identity(&s)?;
                    TxnState {
                        producer_id,
                        epoch,
                        timeout_ms,
                        status: TxnStatus::Empty,
                        partitions: BTreeSet::new(),
                        started_ms: -1,
                        updated_ms: now_ms(),
                        owner,
                    }
                }
            };
            let identity = (state.producer_id, state.epoch, owner);
            this.write(cache, guard, id, state)?;
            Ok(identity)
        })
    }

    /// Records `partitions` in the open transaction of `id` (opening it if needed),
    /// for the holder of `producer_id`/`epoch`.
    pub fn add_partitions(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, u32)],
    ) -> Result<()> {
        self.locked(|this, cache, guard| {
            let s = current(cache, id, producer_id, epoch)?;
            let mut s = match s.status {
                TxnStatus::Ongoing => {
                    if partitions.iter().all(|p| s.partitions.contains(p)) {
                        return Ok(());
                    }
                    s.clone()
                }
                TxnStatus::Empty | TxnStatus::CompleteCommit | TxnStatus::CompleteAbort => {
                    TxnState {
                        status: TxnStatus::Ongoing,
                        partitions: BTreeSet::new(),
                        started_ms: now_ms(),
                        ..*s
                    }
                }
                TxnStatus::PrepareCommit | TxnStatus::PrepareAbort => bail!(
                    InvalidTxnState,
                    "transactional id {id:?} is completing its transaction"
                ),
            };
            s.partitions.extend(partitions.iter().cloned());
            s.updated_ms = now_ms();
            this.write(cache, guard, id, s)?;
            Ok(())
        })
    }

    /// Commits (or aborts) the open transaction of `id` for the holder of
    /// `producer_id`/`epoch`; returns the epoch the producer goes on with.
    ///
    /// A commit of one partition is decided by its COMMIT marker alone; a commit of
    /// several is decided by a PrepareCommit record first, so that a holder dying
    /// between markers is rolled forward. The completed state is not written: the
    /// holder's next record (or [`complete_deferred`](Self::complete_deferred) when
    /// it closes) supersedes the decision, and a finisher that finds every marker
    /// written has nothing left to do. With `acks=synced` each step is on stable
    /// storage before the next one depends on it (the data before the decision, the
    /// decision before the markers), and the waits for `fdatasync` happen outside the
    /// coordinator's lock so that concurrent committers share them (group commit).
    pub fn end(&self, id: &str, producer_id: i64, epoch: i16, commit: bool) -> Result<(i64, i16)> {
        let unchanged = (producer_id, epoch);
        if self.durability != Durability::Synced {
            // No waits: all under one lock.
            return self.locked(|this, cache, guard| {
                let s = current(cache, id, producer_id, epoch)?;
                if s.status != TxnStatus::Ongoing {
                    // Nothing was written in this transaction: nothing to mark.
                    return Ok(unchanged);
                }
                if commit && s.partitions.len() > 1 {
                    let s = s.clone();
                    this.prepare_commit(cache, guard, id, s)?;
                }
                let s = &cache.map[id];
                this.mark(s, commit)?;
                let next = this.next_identity(s)?;
                Ok(defer_completion(cache, id, commit, next))
            });
        }
        let Some(open) = self.state(id)? else {
            return Ok(unchanged);
        };
        let two_phase = commit && open.partitions.len() > 1;
        if two_phase {
            // The decision may only become durable after the data it commits.
            for (topic, partition) in &open.partitions {
                self.store.partition(topic, *partition)?.sync()?;
            }
        }
        let decided = self.locked(|this, cache, guard| {
            let s = current(cache, id, producer_id, epoch)?.clone();
            if s.status != TxnStatus::Ongoing {
                return Ok(None);
            }
            if two_phase {
                let (s, decision) = this.prepare_commit(cache, guard, id, s)?;
                return Ok(Some((s, decision, Vec::new())));
            }
            // No decision record: the markers decide, under this same lock.
            let marked = this.mark(&s, commit)?;
            Ok(Some((s, -1, marked)))
        })?;
        let Some((decided, decision, mut marked)) = decided else {
            return Ok(unchanged);
        };
        if two_phase {
            self.log.sync_to(decision + 1)?;
            marked = self.locked(|this, cache, _| {
                // Still ours, still where we left it? (A process that fenced us
                // meanwhile finished it already.)
                current(cache, id, producer_id, epoch)?;
                if cache.map.get(id) != Some(&decided) {
                    bail!(
                        ProducerFenced,
                        "transactional id {id:?} was taken over while committing"
                    );
                }
                this.mark(&decided, commit)
            })?;
        }
        // The data of a one-partition commit is synced with its marker. (Only up to
        // the marker: other committers' later appends wait for their own sync.)
        for (p, offset) in &marked {
            p.sync_to(offset + 1)?;
        }
        let next = self.next_identity(&decided)?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.map.get(id) == Some(&decided) {
            return Ok(defer_completion(&mut cache, id, commit, next));
        }
        // Finished meanwhile by a process that found the markers written: its state
        // says with which identity the holder goes on (if it still holds the id).
        Ok(cache.map.get(id).map_or(next, |s| (s.producer_id, s.epoch)))
    }

    /// The producer id and epoch the holder of `s` goes on with once its
    /// transaction is marked: the next epoch, or, before the epoch would overflow, a
    /// new producer id at epoch 0 (as Kafka does). Epochs stay below `i16::MAX - 1`,
    /// so the markers' epoch (one more) is always valid.
    fn next_identity(&self, s: &TxnState) -> Result<(i64, i16)> {
        if s.epoch >= i16::MAX - 2 {
            return Ok((self.store.allocate_producer_id()?, 0));
        }
        Ok((s.producer_id, s.epoch + 1))
    }

    /// Writes the completed state of `id`'s last transaction if [`end`](Self::end)
    /// left it unwritten (a producer calls this when it closes).
    pub fn complete_deferred(&self, id: &str) -> Result<()> {
        if !self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unwritten
            .contains(id)
        {
            return Ok(());
        }
        self.locked(|this, cache, guard| match cache.map.get(id) {
            Some(s) if cache.unwritten.contains(id) => {
                let s = s.clone();
                this.write(cache, guard, id, s).map(|_| ())
            }
            _ => Ok(()),
        })
    }

    /// Records the decision to commit `s` (of several partitions); returns the new
    /// state and the decision's offset.
    fn prepare_commit(
        &self,
        cache: &mut Cache,
        guard: &AppendGuard<'_>,
        id: &str,
        mut s: TxnState,
    ) -> Result<(TxnState, i64)> {
        s.status = TxnStatus::PrepareCommit;
        s.updated_ms = now_ms();
        let offset = self.write(cache, guard, id, s.clone())?;
        crate::failpoint::hit("txn.after_prepare_commit");
        Ok((s, offset))
    }

    /// Ends someone else's transaction under the lock (`init`, and abandoned
    /// transactions): markers where it is still open, then the completed state —
    /// or `Empty` when an undecided transaction was open nowhere any more (its
    /// holder wrote every marker; whether they said commit is not recorded here).
    fn finish(
        &self,
        cache: &mut Cache,
        guard: &AppendGuard<'_>,
        id: &str,
        mut s: TxnState,
        commit: bool,
    ) -> Result<TxnState> {
        let marked = self.mark(&s, commit)?;
        if self.durability == Durability::Synced {
            for (p, offset) in &marked {
                p.sync_to(offset + 1)?;
            }
        }
        s.status = match (commit, marked.is_empty()) {
            (true, _) => TxnStatus::CompleteCommit,
            (false, false) => TxnStatus::CompleteAbort,
            (false, true) => TxnStatus::Empty,
        };
        (s.producer_id, s.epoch) = self.next_identity(&s)?;
        s.partitions.clear();
        s.updated_ms = now_ms();
        self.write(cache, guard, id, s.clone())?;
        Ok(s)
    }

    /// Ends the transaction of `s` with a COMMIT or ABORT marker of the next epoch
    /// (fencing any late write of it) in every partition of `s` where it is still
    /// open; returns those partitions with their marker's offset.
    fn mark(&self, s: &TxnState, commit: bool) -> Result<Vec<(Partition, i64)>> {
        let kind = if commit {
            ControlRecordType::Commit
        } else {
            ControlRecordType::Abort
        };
        let marker_epoch = s.epoch.saturating_add(1);
        let mut marked = Vec::with_capacity(s.partitions.len());
        for (topic, partition) in &s.partitions {
            let p = self.store.partition(topic, *partition)?;
            if let Some(offset) = p.end_open_txn(s.producer_id, |open| {
                (open <= s.epoch).then_some((kind, marker_epoch))
            })? {
                marked.push((p, offset));
            }
        }
        Ok(marked)
    }

    /// Aborts every transaction open in `partition` that the coordinator does not
    /// know as open there: a transaction whose state record was lost with the
    /// machine's power while its data survived (with `acks=synced` the data is synced
    /// before anything depends on it, the state record is not), or the late write of
    /// a fenced producer. Without this, such a transaction would hold the
    /// partition's last stable offset back forever. Returns how many it aborted.
    pub fn abort_orphans(&self, partition: &Partition) -> Result<usize> {
        let candidates = partition.open_transactions();
        if candidates.is_empty() {
            return Ok(0);
        }
        let here = (partition.topic().to_string(), partition.id());
        self.locked(|_, cache, _| {
            let mut aborted = 0;
            for (producer_id, _) in candidates {
                // Under the coordinator's lock no transaction can be recorded
                // meanwhile, and a producer records a partition before writing to it.
                let known = |epoch: i16| {
                    cache.map.values().any(|s| {
                        s.producer_id == producer_id
                            && s.epoch == epoch
                            && matches!(
                                s.status,
                                TxnStatus::Ongoing
                                    | TxnStatus::PrepareCommit
                                    | TxnStatus::PrepareAbort
                            )
                            && s.partitions.contains(&here)
                    })
                };
                if partition
                    .end_open_txn(producer_id, |open| {
                        (!known(open)).then_some((ControlRecordType::Abort, open.saturating_add(1)))
                    })?
                    .is_some()
                {
                    aborted += 1;
                }
            }
            Ok(aborted)
        })
    }

    /// Aborts every open transaction whose holder is dead (its liveness lock is
    /// free) or that is older than its `transaction.timeout.ms`, and completes every
    /// prepared one whose holder is dead: the work of whichever process notices
    /// first. The finished transaction's markers carry the next epoch, so a holder
    /// that was only hung is fenced. Returns how many it finished.
    pub fn finish_abandoned(&self) -> Result<usize> {
        let candidates: Vec<(String, TxnState)> = {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            self.catch_up(&mut cache)?;
            self.open_since
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|k, _| {
                    cache
                        .map
                        .values()
                        .any(|s| s.status == TxnStatus::Ongoing && open_key(s) == *k)
                });
            cache
                .map
                .iter()
                .filter(|(_, s)| self.abandoned(s))
                .map(|(id, s)| (id.clone(), s.clone()))
                .collect()
        };
        let mut finished = 0;
        for (id, seen) in candidates {
            finished += self.locked(|this, cache, guard| {
                // Still the same, still abandoned?
                match cache.map.get(&id) {
                    Some(s) if *s == seen && this.abandoned(s) => {
                        let commit = s.status == TxnStatus::PrepareCommit;
                        this.finish(cache, guard, &id, seen.clone(), commit)?;
                        Ok(1)
                    }
                    _ => Ok(0),
                }
            })?;
        }
        Ok(finished)
    }

    fn abandoned(&self, s: &TxnState) -> bool {
        match s.status {
            TxnStatus::Ongoing => !self.holder_alive(s.owner) || self.timed_out(s),
            TxnStatus::PrepareCommit | TxnStatus::PrepareAbort => !self.holder_alive(s.owner),
            _ => false,
        }
    }

    /// Whether this process has seen the open transaction `s` for longer than its
    /// `transaction.timeout.ms`. Counted from the first sight, not from the start
    /// the wall clock recorded: a process that starts later waits up to one more
    /// timeout, and no wall-clock jump makes a live transaction look old.
    fn timed_out(&self, s: &TxnState) -> bool {
        let mut seen = self.open_since.lock().unwrap_or_else(|p| p.into_inner());
        let since = *seen.entry(open_key(s)).or_insert_with(Instant::now);
        since.elapsed() > Duration::from_millis(u64::try_from(s.timeout_ms).unwrap_or(0))
    }

    /// Whether the session `owner` still holds its liveness lock (the kernel drops
    /// it when the process dies).
    fn holder_alive(&self, owner: i64) -> bool {
        let path = self.liveness_path(owner);
        let Ok(file) = std::fs::File::open(&path) else {
            return false;
        };
        match crate::fs::flock(&file, &path, crate::fs::FlockMode::Exclusive, false) {
            Ok(true) => {
                let _ = std::fs::remove_file(&path);
                false
            }
            _ => true,
        }
    }

    fn liveness_path(&self, owner: i64) -> std::path::PathBuf {
        self.store
            .path()
            .join("transactions")
            .join(format!("{owner:016x}.live"))
    }

    /// Takes the liveness lock of session `owner`, held as long as the returned file
    /// is open (that is, as long as the holder's process lives).
    pub fn hold_liveness(&self, owner: i64) -> Result<std::fs::File> {
        let path = self.liveness_path(owner);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        }
        // Created already locked: a process checking it never sees it unlocked.
        crate::fs::create_locked(&path, b"")
    }

    fn locked<T>(
        &self,
        f: impl FnOnce(&Coordinator, &mut Cache, &AppendGuard<'_>) -> Result<T>,
    ) -> Result<T> {
        let guard = self.log.log().lock()?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        // Under the lock the log cannot grow: the state read here is the latest.
        self.catch_up(&mut cache)?;
        f(self, &mut cache, &guard)
    }

    fn write(
        &self,
        cache: &mut Cache,
        guard: &AppendGuard<'_>,
        id: &str,
        s: TxnState,
    ) -> Result<i64> {
        encode_key(id, &mut cache.key);
        encode_value(&s, &mut cache.value);
        let info = self.log.log().append_under_lock(
            guard,
            &[Record::keyed(&cache.key, &cache.value)],
            &AppendOptions::default(),
        )?;
        // Caught up under the same lock: this record is the next one, no need to
        // read it back.
        if info.base_offset == cache.valid_to {
            cache.valid_to = info.last_offset + 1;
        }
        match cache.map.get_mut(id) {
            Some(slot) => *slot = s,
            None => {
                cache.map.insert(id.to_string(), s);
            }
        }
        cache.unwritten.remove(id);
        Ok(info.last_offset)
    }

    /// Applies the records other processes (or earlier handles) appended since the
    /// cache was last brought up to date.
    fn catch_up(&self, cache: &mut Cache) -> Result<()> {
        if cache.valid_to >= 0 && self.log.end_offset() == cache.valid_to {
            return Ok(());
        }
        let reader = match cache.reader.as_mut() {
            Some(r) => r,
            None => {
                let start = self.log.start_offset();
                cache.valid_to = start;
                cache.reader.insert(self.log.reader(start)?)
            }
        };
        if reader.position() != cache.valid_to {
            reader.seek(cache.valid_to)?;
        }
        while let Some(batch) = reader.next_batch()? {
            for record in batch.records() {
                let record = record?;
                let (Some(k), Some(v)) = (record.key, record.value) else {
                    continue;
                };
                let (Some(id), Some(state)) = (decode_key(k), decode_value(v)) else {
                    return Err(Error::new(
                        ErrorKind::Corrupt,
                        format!(
                            "{TRANSACTION_STATE} offset {}: not a transaction state record",
                            record.offset
                        ),
                    ));
                };
                // What another process wrote supersedes what was decided here.
                cache.unwritten.remove(&id);
                cache.map.insert(id, state);
            }
        }
        cache.valid_to = reader.position();
        Ok(())
    }
}

/// Records in the cache (only) that the transaction of `id` the cache holds (its
/// decided state) completed, and that its holder goes on as `next` (producer id and
/// epoch); returns `next`.
fn defer_completion(cache: &mut Cache, id: &str, commit: bool, next: (i64, i16)) -> (i64, i16) {
    let Some(s) = cache.map.get_mut(id) else {
        return next;
    };
    s.status = if commit {
        TxnStatus::CompleteCommit
    } else {
        TxnStatus::CompleteAbort
    };
    (s.producer_id, s.epoch) = next;
    s.partitions.clear();
    s.updated_ms = now_ms();
    if !cache.unwritten.contains(id) {
        cache.unwritten.insert(id.to_string());
    }
    next
}

/// The state of `id` if `producer_id`/`epoch` holds it; `producer_fenced` if a newer
/// epoch (or another producer id) took it over.
fn current<'c>(cache: &'c Cache, id: &str, producer_id: i64, epoch: i16) -> Result<&'c TxnState> {
    let Some(s) = cache.map.get(id) else {
        bail!(
            InvalidTxnState,
            "transactional id {id:?} was never initialised: call init_transactions"
        );
    };
    if s.producer_id != producer_id || s.epoch != epoch {
        bail!(
            ProducerFenced,
            "transactional id {id:?} is held by producer {} epoch {}; this producer ({producer_id} epoch {epoch}) is fenced",
            s.producer_id,
            s.epoch
        );
    }
    Ok(s)
}

/// Key: version int16 = 0, transactional id (Kafka's `TransactionLogKey`).
pub(crate) fn encode_key(id: &str, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&0i16.to_be_bytes());
    put_str(out, id);
}

pub(crate) fn decode_key(bytes: &[u8]) -> Option<String> {
    let mut c = Cursor(bytes);
    (c.i16()? == 0).then_some(())?;
    let id = c.string()?;
    c.is_empty().then_some(id)
}

/// Value, modelled on Kafka's `TransactionLogValue` v0 with the partitions listed
/// flat: version int16 = 0, producerId int64, epoch int16, timeoutMs int32, status
/// int8, partition count int32 and per partition topic string + partition int32,
/// lastUpdate int64, start int64, owner int64 (the holder's liveness token).
pub(crate) fn encode_value(s: &TxnState, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&0i16.to_be_bytes());
    out.extend_from_slice(&s.producer_id.to_be_bytes());
    out.extend_from_slice(&s.epoch.to_be_bytes());
    out.extend_from_slice(&s.timeout_ms.to_be_bytes());
    out.push(s.status as u8);
    out.extend_from_slice(&(s.partitions.len() as i32).to_be_bytes());
    for (topic, partition) in &s.partitions {
        put_str(out, topic);
        out.extend_from_slice(&(*partition as i32).to_be_bytes());
    }
    out.extend_from_slice(&s.updated_ms.to_be_bytes());
    out.extend_from_slice(&s.started_ms.to_be_bytes());
    out.extend_from_slice(&s.owner.to_be_bytes());
}

pub(crate) fn decode_value(bytes: &[u8]) -> Option<TxnState> {
    let mut c = Cursor(bytes);
    (c.i16()? == 0).then_some(())?;
    let producer_id = c.i64()?;
    let epoch = c.i16()?;
    let timeout_ms = c.i32()?;
    let status = TxnStatus::from_i8(c.i8()?)?;
    let n = usize::try_from(c.i32()?).ok()?;
    let mut partitions = BTreeSet::new();
    for _ in 0..n {
        let topic = c.string()?;
        let partition = u32::try_from(c.i32()?).ok()?;
        partitions.insert((topic, partition));
    }
    let updated_ms = c.i64()?;
    let started_ms = c.i64()?;
    let owner = c.i64()?;
    c.is_empty().then_some(TxnState {
        owner,
        producer_id,
        epoch,
        timeout_ms,
        status,
        partitions,
        started_ms,
        updated_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_records_round_trip_and_reject_damage() {
        let s = TxnState {
            producer_id: 12,
            epoch: 3,
            timeout_ms: 60_000,
            status: TxnStatus::PrepareCommit,
            partitions: [
                ("out".to_string(), 2),
                ("__consumer_offsets".to_string(), 0),
            ]
            .into(),
            started_ms: 1_000,
            updated_ms: 2_000,
            owner: 99,
        };
        let (mut k, mut v) = (Vec::new(), Vec::new());
        encode_value(&s, &mut v);
        assert_eq!(decode_value(&v), Some(s));
        encode_key("pipeline-1", &mut k);
        assert_eq!(decode_key(&k).as_deref(), Some("pipeline-1"));
        for cut in 0..v.len() {
            assert_eq!(decode_value(&v[..cut]), None, "cut at {cut}");
        }
        let mut bad_status = v.clone();
        bad_status[16] = 9;
        assert_eq!(decode_value(&bad_status), None);
    }
}
