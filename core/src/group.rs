//! Consumer groups across processes, without a coordinator process:
//! `groups/<group as hex>/` in the store holds
//!
//! * `member-<token>`: one per live member, with its `session.timeout.ms` and
//!   subscribed topics, `flock`ed by the member for its life (the kernel releases it
//!   when the process dies); its modification time is the member's heartbeat,
//!   renewed at every look at the group (that is, while it polls);
//! * `state`: the current generation and its members, replaced atomically under
//!   `lock` (a `flock` held only while deciding);
//! * `owner-<topic>-<partition>`: `flock`ed by the member consuming the partition,
//!   holding its token.
//!
//! Every member, at most every [`SYNC_INTERVAL`], compares the live members with the
//! generation's; if they differ it writes the next generation. A member is live while
//! its process holds its lock and its heartbeat is younger than its session timeout:
//! a member that stopped polling (hung, or stuck in processing) drops out like a dead
//! one. Each member's partitions follow from the generation alone (Kafka's range
//! assignment per topic, over the members sorted by token), so no leader is needed.
//! A member consumes a partition only while it owns the partition's owner file, so
//! two members never consume one partition at once, whatever their timing: a newly
//! assigned member waits until the previous owner let go (it does on noticing the
//! new generation, or by dying), or takes the file over, under `lock`, from an owner
//! whose session expired. A member that comes back finds its owner files replaced
//! and its offset commits refused.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::consumer::TopicPartition;
use crate::error::{bail, Error, Result};
use crate::fs::{self as ofs, FlockMode};
use crate::store::Store;

/// How often a member looks for joined, left or dead members.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(20);

/// A generation: its number and members (token and subscribed topics).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Generation {
    id: i64,
    members: BTreeMap<i64, Vec<String>>,
}

/// This process's membership in one group.
pub struct Member {
    dir: PathBuf,
    token: i64,
    topics: Vec<String>,
    liveness: File,
    /// Each other member's last heartbeat seen, and since when (see `status_of`).
    heartbeats: Mutex<HashMap<i64, (SystemTime, Instant)>>,
    generation: Generation,
    owned: BTreeMap<TopicPartition, File>,
    last_sync: Option<Instant>,
}

impl Member {
    /// Joins `group` with a subscription to `topics`; the member drops out of the
    /// group when it has not looked at it (polled) for `session_timeout`.
    pub fn join(
        store: &Store,
        group: &str,
        topics: &[String],
        session_timeout: Duration,
    ) -> Result<Member> {
        if topics.is_empty() {
            bail!(InvalidArgument, "subscribe needs at least one topic");
        }
        for t in topics {
            store.topic(t)?;
        }
        let dir = group_dir(store, group);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        let token = ofs::random_token()?;
        let path = dir.join(format!("member-{token:016x}"));
        let content = format!(
            "{SESSION_TIMEOUT_KEY} {}\n{}",
            session_timeout.as_millis(),
            topics.join("\n")
        );
        let file = ofs::create_locked(&path, content.as_bytes())?;
        Ok(Member {
            dir,
            token,
            topics: topics.to_vec(),
            liveness: file,
            heartbeats: Mutex::new(HashMap::new()),
            generation: Generation::default(),
            owned: BTreeMap::new(),
            last_sync: None,
        })
    }

    /// This member's token (its id in the group).
    pub fn token(&self) -> i64 {
        self.token
    }

    /// The current generation's number.
    pub fn generation(&self) -> i64 {
        self.generation.id
    }

    /// Brings the group up to date (at most every [`SYNC_INTERVAL`] unless `force`).
    /// Returns the member's partitions when the generation changed.
    pub fn sync(&mut self, store: &Store, force: bool) -> Result<Option<Vec<TopicPartition>>> {
        if !force && self.last_sync.is_some_and(|t| t.elapsed() < SYNC_INTERVAL) {
            return Ok(None);
        }
        self.last_sync = Some(Instant::now());
        self.heartbeat()?;
        let mut current = read_state(&self.dir)?;
        let live = self.live_members()?;
        if current.members != live {
            let lock = self.lock()?;
            current = read_state(&self.dir)?;
            let live = self.live_members()?;
            if current.members != live {
                current = Generation {
                    id: current.id + 1,
                    members: live,
                };
                self.write_state(&current)?;
            }
            drop(lock);
        }
        if current == self.generation {
            return Ok(None);
        }
        self.generation = current;
        Ok(Some(self.assignment(store)?))
    }

    /// This member's partitions in the current generation: per topic, the
    /// partitions split in contiguous ranges over the subscribed members in token
    /// order (Kafka's range assignor).
    fn assignment(&self, store: &Store) -> Result<Vec<TopicPartition>> {
        let mut mine = Vec::new();
        for topic in &self.topics {
            let members: Vec<i64> = self
                .generation
                .members
                .iter()
                .filter(|(_, topics)| topics.contains(topic))
                .map(|(t, _)| *t)
                .collect();
            let Some(index) = members.iter().position(|t| *t == self.token) else {
                continue;
            };
            let partitions = store.topic(topic)?.partitions as usize;
            let (each, extra) = (partitions / members.len(), partitions % members.len());
            let start = index * each + index.min(extra);
            let count = each + usize::from(index < extra);
            mine.extend(
                (start..start + count).map(|p| TopicPartition::new(topic.clone(), p as u32)),
            );
        }
        Ok(mine)
    }

    /// Takes the owner file of `tp`; false while its previous owner still holds it
    /// (and its session has not expired). True at once if this member owns it
    /// already, and still does: its file was not taken over meanwhile.
    pub fn try_own(&mut self, tp: &TopicPartition) -> Result<bool> {
        let path = self.owner_path(tp);
        if self.still_owns(tp) {
            return Ok(true);
        }
        // Never owned, or taken over while this member was away.
        self.owned.remove(tp);
        let file = ofs::open_rw(&path, true)?;
        if ofs::flock(&file, &path, FlockMode::Exclusive, false)? {
            self.claim(tp, file, &path)?;
            return Ok(true);
        }
        let holder = read_token(&path);
        if holder.is_some_and(|t| self.is_live(t)) {
            return Ok(false);
        }
        // The holder's session expired: take the file over, under the group's lock so
        // that a single member does.
        let _lock = self.lock()?;
        if read_token(&path) != holder || holder.is_some_and(|t| self.is_live(t)) {
            return Ok(false);
        }
        let file = ofs::create_locked(&path, &self.token.to_be_bytes())?;
        self.owned.insert(tp.clone(), file);
        Ok(true)
    }

    /// Whether this member owns `tp` (its owner file was not taken over).
    pub fn still_owns(&self, tp: &TopicPartition) -> bool {
        self.owned
            .get(tp)
            .is_some_and(|f| same_file(f, &self.owner_path(tp)))
    }

    /// Takes the group's lock and returns, with the guard that keeps it, the
    /// partitions of `tps` this member does not own any more (taken over while it
    /// was away): an offset commit for the others made while the guard lives cannot
    /// race with a takeover.
    pub fn check_owned(
        &mut self,
        tps: &[TopicPartition],
    ) -> Result<(OwnershipGuard, Vec<TopicPartition>)> {
        let lock = self.lock()?;
        let lost: Vec<TopicPartition> = tps
            .iter()
            .filter(|tp| !self.still_owns(tp))
            .cloned()
            .collect();
        for tp in &lost {
            self.owned.remove(tp);
        }
        Ok((OwnershipGuard { _lock: lock }, lost))
    }

    /// Lets go of `tp` (closing the file releases its lock).
    pub fn release(&mut self, tp: &TopicPartition) {
        self.owned.remove(tp);
    }

    fn claim(&mut self, tp: &TopicPartition, file: File, path: &Path) -> Result<()> {
        file.set_len(0)
            .map_err(|e| Error::io("truncate", path, e))?;
        std::os::unix::fs::FileExt::write_all_at(&file, &self.token.to_be_bytes(), 0)
            .map_err(|e| Error::io("write", path, e))?;
        self.owned.insert(tp.clone(), file);
        Ok(())
    }

    fn owner_path(&self, tp: &TopicPartition) -> PathBuf {
        self.dir
            .join(format!("owner-{}-{}", tp.topic, tp.partition))
    }

    /// Renews the heartbeat: the member file's modification time.
    fn heartbeat(&self) -> Result<()> {
        // SAFETY: a plain syscall on a descriptor we own; NULL means "now".
        if unsafe { libc::futimens(self.liveness.as_raw_fd(), std::ptr::null()) } != 0 {
            return Err(Error::io(
                "touch",
                &self.dir,
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Whether member `token` is live: this one, or one whose process holds its
    /// member file and whose heartbeat is within its session timeout.
    fn is_live(&self, token: i64) -> bool {
        token == self.token || self.status_of(token, &self.member_path(token)) == MemberStatus::Live
    }

    fn member_path(&self, token: i64) -> PathBuf {
        self.dir.join(format!("member-{token:016x}"))
    }

    /// The status of member `token` as this member judges it. A heartbeat's age is
    /// how long this member has seen it unchanged, on the monotonic clock, not the
    /// wall clock's distance from it: a jump of the wall clock neither expels a live
    /// member nor keeps a hung one in. (A member that joins later counts from when
    /// it first looks.)
    fn status_of(&self, token: i64, path: &Path) -> MemberStatus {
        member_status(path, |mtime| {
            let mut seen = self.heartbeats.lock().unwrap_or_else(|p| p.into_inner());
            let entry = seen.entry(token).or_insert((mtime, Instant::now()));
            if entry.0 != mtime {
                *entry = (mtime, Instant::now());
            }
            entry.1.elapsed()
        })
    }

    fn lock(&self) -> Result<File> {
        let path = self.dir.join("lock");
        let file = ofs::open_rw(&path, true)?;
        ofs::flock(&file, &path, FlockMode::Exclusive, true)?;
        Ok(file)
    }

    /// Live members with their subscriptions (this one always); files of dead
    /// members are removed, members whose session expired are left out.
    fn live_members(&self) -> Result<BTreeMap<i64, Vec<String>>> {
        let mut live = BTreeMap::new();
        let mut listed = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(|e| Error::io("list", &self.dir, e))? {
            let entry = entry.map_err(|e| Error::io("list", &self.dir, e))?;
            let name = entry.file_name();
            let Some(token) = name
                .to_str()
                .and_then(|n| n.strip_prefix("member-"))
                .and_then(|t| i64::from_str_radix(t, 16).ok())
            else {
                continue;
            };
            let path = entry.path();
            listed.push(token);
            if token != self.token {
                match self.status_of(token, &path) {
                    MemberStatus::Live => {}
                    MemberStatus::Expired => continue,
                    MemberStatus::Dead => {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                }
            }
            let content = std::fs::read_to_string(&path).unwrap_or_default();
            let topics = content
                .lines()
                .filter(|l| !l.starts_with(SESSION_TIMEOUT_KEY))
                .map(str::to_string)
                .collect();
            live.insert(token, topics);
        }
        self.heartbeats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|t, _| listed.contains(t));
        Ok(live)
    }

    fn write_state(&self, g: &Generation) -> Result<()> {
        let mut text = format!("generation {}\n", g.id);
        for (token, topics) in &g.members {
            text.push_str(&format!("member {token:016x} {}\n", topics.join(" ")));
        }
        ofs::write_atomic(&self.dir.join("state"), text.as_bytes())
    }
}

/// Keeps a group's lock: see [`Member::check_owned`].
pub struct OwnershipGuard {
    _lock: File,
}

/// What a consumer passes to `send_offsets_to_transaction` (Kafka's
/// `ConsumerGroupMetadata`): offsets sent with it are refused once the group has
/// moved to another generation, so that a member that was away (hung, or too slow
/// in processing) cannot commit offsets for partitions that moved on without it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMetadata {
    /// The group.
    pub group_id: String,
    /// The generation the consumer is in (-1 outside a subscription).
    pub generation: i64,
    /// The consumer's member token (0 outside a subscription).
    pub member: i64,
}

impl GroupMetadata {
    /// Checks that the group is still in this generation, with this member.
    pub(crate) fn check_current(&self, store: &Store) -> Result<()> {
        if self.generation < 0 {
            return Ok(());
        }
        let current = read_state(&group_dir(store, &self.group_id))?;
        if current.id != self.generation || !current.members.contains_key(&self.member) {
            bail!(
                StaleGeneration,
                "group {:?} moved from generation {} to {} without this member: its offsets are refused",
                self.group_id,
                self.generation,
                current.id
            );
        }
        Ok(())
    }
}

/// A consumer group as any process sees it from outside, without joining it
/// (what `oncelog groups describe` prints): [`describe_group`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub group_id: String,
    /// The current generation (0 before any member joined).
    pub generation: i64,
    /// Every member file, in token order: live members, members whose session
    /// expired, and dead ones whose file nobody removed yet.
    pub members: Vec<GroupMember>,
    /// The partitions' owner files: who consumes (or last consumed) each one.
    pub owners: Vec<PartitionOwner>,
}

/// One member of a [`GroupDescription`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMember {
    /// The member's token (its id in the group).
    pub token: i64,
    /// The topics it subscribed to.
    pub topics: Vec<String>,
    /// Its `session.timeout.ms`.
    pub session_timeout_ms: Option<u64>,
    /// Live, expired or dead.
    pub status: MemberStatus,
    /// Whether the current generation counts it.
    pub in_generation: bool,
    /// Milliseconds since its last heartbeat (its last look at the group).
    pub heartbeat_age_ms: u64,
}

/// The owner file of one partition of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionOwner {
    /// The partition.
    pub partition: TopicPartition,
    /// The token of the member that took it last.
    pub token: Option<i64>,
    /// Whether a process holds it now (the member is consuming it).
    pub held: bool,
}

/// The groups that have a directory in the store (members joined once), sorted.
/// Groups that only ever committed offsets through `assign` have none: see
/// [`OffsetStore::all_committed`](crate::offsets::OffsetStore::all_committed).
pub fn list_groups(store: &Store) -> Result<Vec<String>> {
    let dir = store.path().join("groups");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", &dir, e)),
    };
    let mut groups = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", &dir, e))?;
        if let Some(group) = entry.file_name().to_str().and_then(decode_hex_name) {
            groups.push(group);
        }
    }
    groups.sort();
    Ok(groups)
}

/// Describes `group` from its files without joining it or changing anything;
/// `None` when no member ever joined it.
pub fn describe_group(store: &Store, group: &str) -> Result<Option<GroupDescription>> {
    let dir = group_dir(store, group);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("list", &dir, e)),
    };
    let generation = read_state(&dir)?;
    let mut members = Vec::new();
    let mut owners = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", &dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = entry.path();
        if let Some(token) = name
            .strip_prefix("member-")
            .and_then(|t| i64::from_str_radix(t, 16).ok())
        {
            let status = member_status(&path, wall_clock_age);
            // Gone between listing and reading: it left.
            let Ok(content) = std::fs::read_to_string(&path) else {
                continue;
            };
            let mut lines = content.lines();
            let session_timeout_ms = lines
                .next()
                .and_then(|l| l.strip_prefix(SESSION_TIMEOUT_KEY))
                .and_then(|v| v.trim().parse().ok());
            let heartbeat_age_ms = std::fs::metadata(&path)
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|m| crate::clock::wall_now().duration_since(m).ok())
                .map_or(0, |d| d.as_millis() as u64);
            members.push(GroupMember {
                token,
                topics: lines.map(str::to_string).collect(),
                session_timeout_ms,
                status,
                in_generation: generation.members.contains_key(&token),
                heartbeat_age_ms,
            });
        } else if let Some((topic, partition)) = name
            .strip_prefix("owner-")
            .and_then(|n| n.rsplit_once('-'))
            .and_then(|(t, p)| Some((t, p.parse::<u32>().ok()?)))
        {
            owners.push(PartitionOwner {
                partition: TopicPartition::new(topic, partition),
                token: read_token(&path),
                held: is_held(&path),
            });
        }
    }
    members.sort_by_key(|m| m.token);
    owners.sort_by(|a, b| a.partition.cmp(&b.partition));
    Ok(Some(GroupDescription {
        group_id: group.to_string(),
        generation: generation.id,
        members,
        owners,
    }))
}

/// The group id of a `groups/` directory name (the id's bytes in hex).
fn decode_hex_name(name: &str) -> Option<String> {
    if name.len() % 2 != 0 {
        return None;
    }
    let bytes = (0..name.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(name.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// First line of a member file: its session timeout.
const SESSION_TIMEOUT_KEY: &str = "session.timeout.ms";

fn group_dir(store: &Store, group: &str) -> PathBuf {
    let hex: String = group.bytes().map(|b| format!("{b:02x}")).collect();
    store.path().join("groups").join(hex)
}

fn read_state(dir: &Path) -> Result<Generation> {
    let path = dir.join("state");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Generation::default()),
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    let mut generation = Generation::default();
    for line in text.lines() {
        let mut words = line.split(' ');
        match words.next() {
            Some("generation") => {
                generation.id = words.next().and_then(|w| w.parse().ok()).unwrap_or(0)
            }
            Some("member") => {
                if let Some(token) = words.next().and_then(|w| i64::from_str_radix(w, 16).ok()) {
                    generation
                        .members
                        .insert(token, words.map(str::to_string).collect());
                }
            }
            _ => {}
        }
    }
    Ok(generation)
}

/// Whether a group member is still in the group, as every member judges it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberStatus {
    /// Its process holds its member file and its heartbeat is within its session
    /// timeout.
    Live,
    /// Its process holds the file, but its heartbeat is older than its session timeout.
    Expired,
    /// No process holds the file.
    Dead,
}

/// The age of a heartbeat (a member file's modification time) by the wall clock:
/// for descriptions only, a wall-clock jump moves it.
fn wall_clock_age(mtime: SystemTime) -> Duration {
    crate::clock::wall_now()
        .duration_since(mtime)
        .unwrap_or_default()
}

/// The status of the member whose file is `path`; `age` says how old its heartbeat
/// (the file's modification time) is.
fn member_status(path: &Path, age: impl FnOnce(SystemTime) -> Duration) -> MemberStatus {
    if !is_held(path) {
        return MemberStatus::Dead;
    }
    let Ok(meta) = std::fs::metadata(path) else {
        return MemberStatus::Dead;
    };
    let timeout = std::fs::read_to_string(path)
        .ok()
        .and_then(|c| {
            c.lines()
                .next()?
                .strip_prefix(SESSION_TIMEOUT_KEY)?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(Duration::MAX, Duration::from_millis);
    let age = meta.modified().map(age).unwrap_or_default();
    if age > timeout {
        MemberStatus::Expired
    } else {
        MemberStatus::Live
    }
}

/// The token written in an owner file.
fn read_token(path: &Path) -> Option<i64> {
    let bytes = std::fs::read(path).ok()?;
    Some(i64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// Whether `file` is still the file at `path` (not replaced by a takeover).
fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

/// Whether another process holds the `flock` of `path`.
fn is_held(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    !matches!(
        ofs::flock(&file, path, FlockMode::Exclusive, false),
        Ok(true)
    )
}
