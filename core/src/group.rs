//! Consumer groups across processes, without a coordinator process:
//! `groups/<group as hex>/` in the store holds
//!
//! * `member-<token>`: one per live member, listing its subscribed topics, `flock`ed
//!   by the member for its life (the kernel releases it when the process dies);
//! * `state`: the current generation and its members, replaced atomically under
//!   `lock` (a `flock` held only while deciding);
//! * `owner-<topic>-<partition>`: `flock`ed by the member consuming the partition.
//!
//! Every member, at most every [`SYNC_INTERVAL`], compares the live members with the
//! generation's; if they differ it writes the next generation. Each member's
//! partitions follow from the generation alone (Kafka's range assignment per topic,
//! over the members sorted by token), so no leader is needed. A member consumes a
//! partition only while it holds the partition's owner lock, so two members never
//! consume one partition at once, whatever their timing: a newly assigned member
//! waits until the previous owner let go (it does on noticing the new generation, or
//! by dying).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
    _liveness: File,
    generation: Generation,
    owned: BTreeMap<TopicPartition, File>,
    last_sync: Option<Instant>,
}

impl Member {
    /// Joins `group` with a subscription to `topics`.
    pub fn join(store: &Store, group: &str, topics: &[String]) -> Result<Member> {
        if topics.is_empty() {
            bail!(InvalidArgument, "subscribe needs at least one topic");
        }
        for t in topics {
            store.topic(t)?;
        }
        let hex: String = group.bytes().map(|b| format!("{b:02x}")).collect();
        let dir = store.path().join("groups").join(hex);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        let token = ofs::random_token()?;
        let path = dir.join(format!("member-{token:016x}"));
        let file = ofs::create_locked(&path, topics.join("\n").as_bytes())?;
        Ok(Member {
            dir,
            token,
            topics: topics.to_vec(),
            _liveness: file,
            generation: Generation::default(),
            owned: BTreeMap::new(),
            last_sync: None,
        })
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
        let mut current = self.read_state()?;
        let live = self.live_members()?;
        if current.members != live {
            let lock = self.lock()?;
            current = self.read_state()?;
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

    /// Takes the owner lock of `tp`; false while its previous owner still holds it.
    pub fn try_own(&mut self, tp: &TopicPartition) -> Result<bool> {
        if self.owned.contains_key(tp) {
            return Ok(true);
        }
        let path = self
            .dir
            .join(format!("owner-{}-{}", tp.topic, tp.partition));
        let file = ofs::open_rw(&path, true)?;
        if ofs::flock(&file, &path, FlockMode::Exclusive, false)? {
            self.owned.insert(tp.clone(), file);
            return Ok(true);
        }
        Ok(false)
    }

    /// Lets go of `tp` (closing the file releases its lock).
    pub fn release(&mut self, tp: &TopicPartition) {
        self.owned.remove(tp);
    }

    fn lock(&self) -> Result<File> {
        let path = self.dir.join("lock");
        let file = ofs::open_rw(&path, true)?;
        ofs::flock(&file, &path, FlockMode::Exclusive, true)?;
        Ok(file)
    }

    /// Members whose liveness lock is held, with their subscriptions; files of dead
    /// members are removed.
    fn live_members(&self) -> Result<BTreeMap<i64, Vec<String>>> {
        let mut live = BTreeMap::new();
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
            if token != self.token && !is_held(&path) {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let topics = std::fs::read_to_string(&path).unwrap_or_default();
            live.insert(token, topics.lines().map(str::to_string).collect());
        }
        Ok(live)
    }

    fn read_state(&self) -> Result<Generation> {
        let path = self.dir.join("state");
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
                    if let Some(token) = words.next().and_then(|w| i64::from_str_radix(w, 16).ok())
                    {
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

    fn write_state(&self, g: &Generation) -> Result<()> {
        let mut text = format!("generation {}\n", g.id);
        for (token, topics) in &g.members {
            text.push_str(&format!("member {token:016x} {}\n", topics.join(" ")));
        }
        ofs::write_atomic(&self.dir.join("state"), text.as_bytes())
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
