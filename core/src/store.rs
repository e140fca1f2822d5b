//! The store: a directory of topics, opened by any number of processes at once.
//!
//! Opening follows DESIGN.md's first-opener protocol: openers are serialised by an
//! OFD lock on byte 0 of `oncelog.lock`; an opener that gets an exclusive `flock` on
//! the same file is alone, so it rebuilds every control block and recovers every
//! partition before downgrading to a shared `flock`. The last process to close does a
//! clean shutdown (sync, trim, checkpoint).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::{StoreOptions, TopicConfig};
use crate::error::{bail, Error, ErrorKind, Result};
use crate::fork;
use crate::fs::{self as ofs, FlockMode};
use crate::keys::{FastMap, PartitionKey, PartitionName};
use crate::log::background::Background;
use crate::log::partition::PartitionLog;
use crate::log::recovery::{self, RecoveryParams};
use crate::log::segment;
use crate::partition::Partition;
use crate::shm::control::ControlFile;
use crate::topic::{self, TopicMeta};

/// The on-disk format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
const META_FILE: &str = "oncelog.meta";
const LOCK_FILE: &str = "oncelog.lock";
const CTL_FILE: &str = "partition.ctl";
const PRODUCER_IDS_FILE: &str = "producer.ids";

/// An open store. Cheap to clone; every clone shares the same mappings and
/// background threads. Dropping the last clone closes it.
#[derive(Clone)]
pub struct Store {
    inner: Arc<StoreInner>,
}

struct StoreInner {
    root: PathBuf,
    options: Arc<StoreOptions>,
    store_id: String,
    lock_file: File,
    lock_path: PathBuf,
    /// Taken with the openers' lock by this store's threads (see `OpenerLock`).
    opener: Mutex<()>,
    partitions: Mutex<FastMap<PartitionName, Arc<PartitionLog>>>,
    background: Arc<Background>,
    fork_gen: u64,
    closed: std::sync::atomic::AtomicBool,
}

/// Holds the openers' OFD lock on byte 0 of `oncelog.lock` while alive. An OFD
/// lock excludes other open file descriptions, not other threads using the same
/// one: a store's threads also take its process-local mutex first.
struct OpenerLock<'a> {
    file: &'a File,
    path: &'a Path,
    // Released after the OFD lock (fields drop after `Drop::drop`).
    _local: Option<MutexGuard<'a, ()>>,
}

impl<'a> OpenerLock<'a> {
    /// On a descriptor no other thread uses.
    fn take(file: &'a File, path: &'a Path) -> Result<OpenerLock<'a>> {
        ofs::ofd_lock_byte0(file, path, true)?;
        Ok(OpenerLock {
            file,
            path,
            _local: None,
        })
    }

    /// On an open store's descriptor, shared by its threads.
    fn take_in(inner: &'a StoreInner) -> Result<OpenerLock<'a>> {
        let local = inner.opener.lock().unwrap_or_else(|p| p.into_inner());
        ofs::ofd_lock_byte0(&inner.lock_file, &inner.lock_path, true)?;
        Ok(OpenerLock {
            file: &inner.lock_file,
            path: &inner.lock_path,
            _local: Some(local),
        })
    }
}

impl Drop for OpenerLock<'_> {
    fn drop(&mut self) {
        let _ = ofs::ofd_lock_byte0(self.file, self.path, false);
    }
}

impl Store {
    /// Opens the store at `path`, creating it if `options.create`.
    pub fn open(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        options.validate()?;
        let root = path.as_ref().to_path_buf();
        if !root.is_dir() {
            if !options.create {
                bail!(
                    InvalidArgument,
                    "no store at {} (and create is off)",
                    root.display()
                );
            }
            std::fs::create_dir_all(&root).map_err(|e| Error::io("create", &root, e))?;
        }
        let topics_dir = root.join("topics");
        if !topics_dir.is_dir() {
            std::fs::create_dir_all(&topics_dir)
                .map_err(|e| Error::io("create", &topics_dir, e))?;
        }
        let lock_path = root.join(LOCK_FILE);
        let lock_file = ofs::open_rw(&lock_path, true)?;
        let options = Arc::new(options);
        let background = Background::start()?;
        let store_id;
        {
            let _opener = OpenerLock::take(&lock_file, &lock_path)?;
            store_id = read_or_create_meta(&root)?;
            if ofs::flock(&lock_file, &lock_path, FlockMode::Exclusive, false)? {
                // Alone: nothing mapped anywhere, every control block is rebuilt.
                reinitialise_all(&root)?;
            }
            ofs::flock(&lock_file, &lock_path, FlockMode::Shared, true)?;
        }
        Ok(Store {
            inner: Arc::new(StoreInner {
                root,
                options,
                store_id,
                lock_file,
                lock_path,
                opener: Mutex::new(()),
                partitions: Mutex::new(FastMap::default()),
                background,
                fork_gen: fork::generation(),
                closed: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.inner.root
    }

    /// The store's id, fixed at creation.
    pub fn id(&self) -> &str {
        &self.inner.store_id
    }

    /// The options it was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.inner.options
    }

    /// Creates a topic with `partitions` partitions and `config`.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        config: TopicConfig,
    ) -> Result<TopicMeta> {
        if topic::is_internal(name) {
            bail!(
                InvalidTopicName,
                "topic name {name:?} is reserved for oncelog's own use"
            );
        }
        self.create_any_topic(name, partitions, config)
    }

    fn create_any_topic(
        &self,
        name: &str,
        partitions: u32,
        config: TopicConfig,
    ) -> Result<TopicMeta> {
        fork::check(self.inner.fork_gen)?;
        topic::validate_name(name)?;
        if partitions == 0 || partitions > topic::MAX_PARTITIONS {
            bail!(
                InvalidArgument,
                "partition count must be between 1 and {}, not {partitions}",
                topic::MAX_PARTITIONS
            );
        }
        let root = &self.inner.root;
        let _opener = OpenerLock::take_in(&self.inner)?;
        for existing in list_topic_names(root)? {
            if existing == name {
                bail!(TopicExists, "topic {name:?} already exists");
            }
            if topic::collides(&existing, name) {
                bail!(
                    InvalidTopicName,
                    "topic {name:?} collides with existing topic {existing:?} ('.' and '_' are treated alike)"
                );
            }
        }
        let meta = TopicMeta {
            name: name.to_string(),
            partitions,
            config,
        };
        for p in 0..partitions {
            create_partition(root, &meta, p)?;
        }
        ofs::sync_dir(root)?;
        meta.save(root)?;
        Ok(meta)
    }

    /// Partition 0 of an internal topic, created with `config` on first use.
    pub(crate) fn internal_partition(
        &self,
        name: &str,
        config: &[(&str, &str)],
    ) -> Result<Partition> {
        match self.partition(name, 0) {
            Err(e) if e.kind() == ErrorKind::UnknownTopic => {
                match self.create_any_topic(
                    name,
                    1,
                    TopicConfig::from_pairs(config.iter().copied())?,
                ) {
                    Ok(_) => {}
                    // Another process created it meanwhile.
                    Err(e) if e.kind() == ErrorKind::TopicExists => {}
                    Err(e) => return Err(e),
                }
                self.partition(name, 0)
            }
            other => other,
        }
    }

    /// Creates a topic from Kafka-style `key=value` config pairs.
    pub fn create_topic_with(
        &self,
        name: &str,
        partitions: u32,
        config: &[(&str, &str)],
    ) -> Result<TopicMeta> {
        let mut c = self.inner.options.default_topic_config.clone();
        for (k, v) in config {
            c.set(k, v)?;
        }
        self.create_topic(name, partitions, c)
    }

    /// Grows `name` to `partitions` partitions (never shrinks).
    pub fn add_partitions(&self, name: &str, partitions: u32) -> Result<TopicMeta> {
        fork::check(self.inner.fork_gen)?;
        let root = &self.inner.root;
        let _opener = OpenerLock::take_in(&self.inner)?;
        let mut meta = TopicMeta::load(root, name)?;
        if partitions <= meta.partitions || partitions > topic::MAX_PARTITIONS {
            bail!(
                InvalidArgument,
                "topic {name:?} has {} partitions; the new count must be larger and at most {}, not {partitions}",
                meta.partitions,
                topic::MAX_PARTITIONS
            );
        }
        for p in meta.partitions..partitions {
            create_partition(root, &meta, p)?;
        }
        meta.partitions = partitions;
        meta.save(root)?;
        Ok(meta)
    }

    /// A producer id never handed out before in this store (ids start at 1). Each
    /// call takes the openers' lock and makes one small durable write: idempotent
    /// producers take one when they start.
    pub fn allocate_producer_id(&self) -> Result<i64> {
        fork::check(self.inner.fork_gen)?;
        let _opener = OpenerLock::take_in(&self.inner)?;
        let path = self.inner.root.join(PRODUCER_IDS_FILE);
        let last = match std::fs::read_to_string(&path) {
            Ok(text) => text
                .strip_prefix("oncelog-last-producer-id ")
                .and_then(|t| t.trim().parse::<i64>().ok())
                .filter(|id| *id >= 0)
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::Corrupt,
                        format!("{} is not a producer id counter", path.display()),
                    )
                })?,
            // A new store, or the counter was deleted: go on past every id the
            // partitions know, or a new producer would take an old one's id and its
            // first batches would pass for that producer's retries (acknowledged,
            // never appended).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                highest_producer_id(&self.inner.root)?
            }
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        let id = last + 1;
        ofs::write_atomic(&path, format!("oncelog-last-producer-id {id}\n").as_bytes())?;
        Ok(id)
    }

    /// Every topic, sorted by name.
    pub fn topics(&self) -> Result<Vec<TopicMeta>> {
        list_topic_names(&self.inner.root)?
            .iter()
            .map(|n| TopicMeta::load(&self.inner.root, n))
            .collect()
    }

    /// One topic's metadata.
    pub fn topic(&self, name: &str) -> Result<TopicMeta> {
        topic::validate_name(name)?;
        TopicMeta::load(&self.inner.root, name)
    }

    /// A handle on partition `partition` of `topic`.
    pub fn partition(&self, topic: &str, partition: u32) -> Result<Partition> {
        fork::check(self.inner.fork_gen)?;
        let mut map = self
            .inner
            .partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(log) = map.get(&(topic, partition) as &dyn PartitionKey) {
            return Ok(Partition::new(self.clone(), log.clone()));
        }
        let meta = self.topic(topic)?;
        if partition >= meta.partitions {
            bail!(
                UnknownPartition,
                "topic {topic:?} has {} partitions; there is no partition {partition}",
                meta.partitions
            );
        }
        let dir = TopicMeta::partition_dir(&self.inner.root, topic, partition);
        let ctl = ControlFile::attach(&dir.join(CTL_FILE))?;
        let log = PartitionLog::new(
            topic,
            partition,
            dir,
            meta.config,
            self.inner.options.clone(),
            ctl,
            self.inner.background.clone(),
        )?;
        map.insert((topic.to_string(), partition), log.clone());
        Ok(Partition::new(self.clone(), log))
    }

    /// Closes this handle and reports errors of the clean shutdown, which runs when
    /// this is the last handle of the process (partitions and readers hold the store
    /// too: while one is alive this only drops the handle and returns `Ok`) and the
    /// process is the last with the store open: it syncs and trims every partition.
    /// Dropping does the same, ignoring errors.
    pub fn close(self) -> Result<()> {
        match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner.close(),
            Err(_) => Ok(()),
        }
    }
}

impl StoreInner {
    fn close(&self) -> Result<()> {
        if fork::check(self.fork_gen).is_err() || self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.background.stop();
        let _opener = OpenerLock::take_in(self)?;
        let last = ofs::flock(
            &self.lock_file,
            &self.lock_path,
            FlockMode::Exclusive,
            false,
        )?;
        let result = if last {
            clean_shutdown(&self.root)
        } else {
            Ok(())
        };
        // Release explicitly: a child forked from this process shares the lock's
        // file description and would otherwise keep the store looking open.
        ofs::funlock(&self.lock_file, &self.lock_path)?;
        result
    }
}

impl Drop for StoreInner {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

fn read_or_create_meta(root: &Path) -> Result<String> {
    let path = root.join(META_FILE);
    match File::open(&path) {
        Ok(mut f) => {
            let mut text = String::new();
            f.read_to_string(&mut text)
                .map_err(|e| Error::io("read", &path, e))?;
            let mut version = None;
            let mut id = None;
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("format_version=") {
                    version = v.parse::<u32>().ok();
                } else if let Some(v) = line.strip_prefix("store_id=") {
                    id = Some(v.to_string());
                }
            }
            match (version, id) {
                (Some(FORMAT_VERSION), Some(id)) => Ok(id),
                (Some(v), _) => Err(Error::new(
                    ErrorKind::IncompatibleFormat,
                    format!(
                        "{} has format version {v}; this build reads version {FORMAT_VERSION}",
                        path.display()
                    ),
                )),
                _ => Err(Error::new(
                    ErrorKind::Corrupt,
                    format!("{} is not an oncelog store file", path.display()),
                )),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 16];
            File::open("/dev/urandom")
                .and_then(|mut r| r.read_exact(&mut bytes))
                .map_err(|e| Error::io("read", Path::new("/dev/urandom"), e))?;
            let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let text = format!("oncelog-store\nformat_version={FORMAT_VERSION}\nstore_id={id}\n");
            ofs::write_atomic(&path, text.as_bytes())?;
            Ok(id)
        }
        Err(e) => Err(Error::io("open", &path, e)),
    }
}

fn list_topic_names(root: &Path) -> Result<Vec<String>> {
    let dir = root.join("topics");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| Error::io("list", &dir, e))? {
        let entry = entry.map_err(|e| Error::io("list", &dir, e))?;
        if let Some(name) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.strip_suffix(".properties"))
        {
            if topic::validate_name(name).is_ok() {
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

fn params<'a>(dir: &'a Path, config: &'a TopicConfig) -> RecoveryParams<'a> {
    use crate::log::index::{index_file_len, IndexKind};
    RecoveryParams {
        dir,
        config,
        index_len: index_file_len(IndexKind::Offset, config),
        time_len: index_file_len(IndexKind::Time, config),
    }
}

/// Creates a partition directory with an empty segment and a fresh control block.
/// Caller holds the opener lock.
fn create_partition(root: &Path, meta: &TopicMeta, p: u32) -> Result<()> {
    let dir = TopicMeta::partition_dir(root, &meta.name, p);
    if dir.exists() {
        // Left by a creation that died before its metadata file was written: it
        // holds no record. One that does lost its topic's metadata file from outside.
        if holds_records(&dir)? {
            bail!(
                Corrupt,
                "partition directory {} holds records, but topic {:?} has no metadata file \
                 (topics/{}.properties deleted from outside?): restore it, or remove the \
                 directory to drop the records",
                dir.display(),
                meta.name,
                meta.name
            );
        }
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io("remove stale", &dir, e))?;
    }
    std::fs::create_dir(&dir).map_err(|e| Error::io("create", &dir, e))?;
    recover_into_fresh_ctl(&dir, &meta.config)?;
    // The first segment's files must survive a power cut with the topic.
    ofs::sync_dir(&dir)
}

/// The highest producer id in the producer table of any partition (0 if none).
/// Caller holds the opener lock; the store is open, so every control block was
/// rebuilt by its first opener.
fn highest_producer_id(root: &Path) -> Result<i64> {
    let mut highest = 0;
    for name in list_topic_names(root)? {
        let meta = TopicMeta::load(root, &name)?;
        for p in 0..meta.partitions {
            let dir = TopicMeta::partition_dir(root, &name, p);
            let ctl = ControlFile::attach(&dir.join(CTL_FILE))?;
            for entry in ctl.block().producers.entries() {
                highest = highest.max(entry.producer_id);
            }
        }
    }
    Ok(highest)
}

/// Whether a partition directory holds a record: more than its first, empty
/// segment (whose `.log` may be reserved on disk, but is zeros from its start).
fn holds_records(dir: &Path) -> Result<bool> {
    use std::os::unix::fs::FileExt;
    let bases = segment::list_bases(dir, segment::LOG_EXT)?;
    match bases[..] {
        [] => Ok(false),
        [0] => {
            let path = segment::file_path(dir, 0, segment::LOG_EXT);
            let file = File::open(&path).map_err(|e| Error::io("open", &path, e))?;
            // A batch starts with its base offset and a non-zero length.
            let mut head = [0u8; 12];
            let n = file
                .read_at(&mut head, 0)
                .map_err(|e| Error::io("read", &path, e))?;
            Ok(head[..n].iter().any(|b| *b != 0))
        }
        _ => Ok(true),
    }
}

/// Rebuilds `partition.ctl` of `dir` from the log.
fn recover_into_fresh_ctl(dir: &Path, config: &TopicConfig) -> Result<()> {
    let ctl = ControlFile::create(&dir.join(CTL_FILE))?;
    let report = recovery::recover(&params(dir, config), ctl.block())?;
    let block = ctl.block();
    let rp = crate::log::checkpoint::read(dir)
        .ok()
        .flatten()
        .unwrap_or(0);
    block
        .sync
        .synced_offset
        .store(rp.min(report.end_offset), Ordering::Release);
    let m = &block.metrics;
    m.recovery_verified_batches
        .store(report.batches_verified, Ordering::Relaxed);
    m.recovery_truncations
        .store(u64::from(report.truncated.is_some()), Ordering::Relaxed);
    ctl.publish_initialised();
    Ok(())
}

/// First opener: every partition of every topic gets a rebuilt control block.
fn reinitialise_all(root: &Path) -> Result<()> {
    for name in list_topic_names(root)? {
        let meta = TopicMeta::load(root, &name)?;
        for p in 0..meta.partitions {
            let dir = TopicMeta::partition_dir(root, &name, p);
            if !dir.is_dir() {
                bail!(
                    Corrupt,
                    "partition directory {} of topic {name:?} is missing",
                    dir.display()
                );
            }
            recover_into_fresh_ctl(&dir, &meta.config)?;
        }
    }
    Ok(())
}

/// Last closer: every partition is synced, its active segment trimmed to its
/// logical end, and its recovery point moved to the end, so the next open walks
/// nothing.
fn clean_shutdown(root: &Path) -> Result<()> {
    for name in list_topic_names(root)? {
        let meta = TopicMeta::load(root, &name)?;
        for p in 0..meta.partitions {
            shut_down_partition(&TopicMeta::partition_dir(root, &name, p))?;
        }
    }
    Ok(())
}

fn shut_down_partition(dir: &Path) -> Result<()> {
    let Ok(ctl) = ControlFile::attach(&dir.join(CTL_FILE)) else {
        return Ok(());
    };
    let block = ctl.block();
    if block.needs_repair.load(Ordering::Acquire) != 0 {
        // A holder died and nobody repaired: the next first opener recovers it.
        return Ok(());
    }
    let tail = &block.tail;
    let base = tail.active_base.load(Ordering::Acquire);
    let end_pos = tail.end_position.load(Ordering::Acquire);
    let end = tail.end_offset.load(Ordering::Acquire);
    let synced = block.sync.synced_offset.load(Ordering::Acquire);
    let rp = crate::log::checkpoint::read(dir).ok().flatten();
    // Moving the recovery point to the end makes recovery trust every file below
    // it: those must be durable, even when the data itself is already synced.
    let moving = rp != Some(end);
    let rp = rp.unwrap_or(0);
    let sync_file = |path: &Path| -> Result<()> {
        if synced < end || moving {
            ofs::sync_data(&ofs::open_rw(path, false)?, path)?;
        }
        Ok(())
    };
    // Sealed segments the flusher may not have reached yet.
    let bases = segment::list_bases(dir, segment::LOG_EXT)?;
    let first = bases
        .partition_point(|b| *b <= synced.min(rp))
        .saturating_sub(1);
    for &b in bases[first..].iter().filter(|b| **b < base) {
        for ext in [
            segment::LOG_EXT,
            segment::INDEX_EXT,
            segment::TIME_INDEX_EXT,
            segment::TXN_INDEX_EXT,
        ] {
            sync_file(&segment::file_path(dir, b, ext))?;
        }
    }
    let time_entries = seal_time_index(dir, base, tail)?;
    for (ext, len) in [
        (segment::LOG_EXT, end_pos),
        (
            segment::INDEX_EXT,
            u64::from(tail.index_entries.load(Ordering::Acquire)) * 8,
        ),
        (segment::TIME_INDEX_EXT, u64::from(time_entries) * 12),
    ] {
        let path = segment::file_path(dir, base, ext);
        ofs::open_rw(&path, false)?
            .set_len(len)
            .map_err(|e| Error::io("truncate", &path, e))?;
        sync_file(&path)?;
    }
    if moving {
        crate::log::checkpoint::write(dir, end)?;
    }
    // Anyone who still attaches to this block (it should be rebuilt first) must not
    // trust the reservation and index sizes just given back.
    tail.reserved_len.store(end_pos, Ordering::Release);
    block.needs_repair.store(1, Ordering::Release);
    Ok(())
}

/// Kafka's last step for a segment that stops being written: a final time-index
/// entry with the segment's largest timestamp, if the index does not end with it.
/// Returns the entry count.
fn seal_time_index(dir: &Path, base: i64, tail: &crate::shm::control::Tail) -> Result<u32> {
    use std::os::unix::fs::FileExt;
    let count = tail.time_entries.load(Ordering::Acquire);
    let max = tail.max_timestamp.load(Ordering::Acquire);
    if max == i64::MIN {
        return Ok(count);
    }
    let path = segment::file_path(dir, base, segment::TIME_INDEX_EXT);
    let file = ofs::open_rw(&path, false)?;
    if count > 0 {
        let mut last = [0u8; 8];
        file.read_exact_at(&mut last, u64::from(count - 1) * 12)
            .map_err(|e| Error::io("read", &path, e))?;
        if i64::from_be_bytes(last) >= max {
            return Ok(count);
        }
    }
    let relative = tail.offset_of_max_timestamp.load(Ordering::Acquire) - base;
    let Ok(relative) = i32::try_from(relative) else {
        return Ok(count);
    };
    let mut entry = [0u8; 12];
    entry[..8].copy_from_slice(&max.to_be_bytes());
    entry[8..].copy_from_slice(&relative.to_be_bytes());
    file.write_all_at(&entry, u64::from(count) * 12)
        .map_err(|e| Error::io("write", &path, e))?;
    Ok(count + 1)
}
