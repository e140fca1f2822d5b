//! [`Consumer`]: Kafka's consumer over a store, for partitions assigned to it.
//! `poll` returns records from the assigned partitions, sleeping on their futexes
//! (all of them at once) when there is nothing new; positions start at the group's
//! committed offsets or at `auto.offset.reset`; offsets are committed to
//! `__consumer_offsets` as the commit mode says (the `delivery` preset chooses
//! at-most-once or at-least-once behaviour).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::config::{CommitMode, ConsumerConfig, Isolation, OffsetReset};
use crate::error::{bail, Error, ErrorKind, Result};
use crate::group::{GroupMetadata, Member, OwnershipGuard};
use crate::offsets::{CommittedOffset, OffsetStore};
use crate::partition::Partition;
use crate::shm::control::wait_until_any;
use crate::store::Store;
use crate::txn::Coordinator;
use crate::Reader;

/// A topic and a partition number.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
}

impl TopicPartition {
    /// `topic`/`partition`.
    pub fn new(topic: impl Into<String>, partition: u32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

/// A record handed out by [`Consumer::poll`], owning its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// The offset.
    pub offset: i64,
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The value (`None`: a tombstone).
    pub value: Option<Vec<u8>>,
    /// The headers, in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// The timestamp (ms since the Unix epoch).
    pub timestamp: i64,
}

struct Assigned {
    tp: TopicPartition,
    partition: Partition,
    reader: Option<Reader>,
    /// The next offset to hand out; `None` until first looked up.
    position: Option<i64>,
    /// The last offset committed by this consumer.
    committed: Option<i64>,
    /// Whether this consumer may read it now: always for `assign`; in a group, once
    /// it holds the partition's owner lock.
    owned: bool,
}

impl Assigned {
    /// Its owner file was taken over: once owned again, it starts from the
    /// committed offset.
    fn lose_ownership(&mut self) {
        self.owned = false;
        self.reader = None;
        self.position = None;
        self.committed = None;
    }
}

/// Called with the partitions a rebalance takes away or hands over.
pub type RebalanceCallback = Box<dyn FnMut(&[TopicPartition]) + Send>;

/// A consumer. One thread at a time (`&mut self`), like Kafka's.
pub struct Consumer {
    store: Store,
    config: ConsumerConfig,
    offsets: Option<OffsetStore>,
    assigned: Vec<Assigned>,
    /// Where the next poll starts looking, for fairness between partitions.
    next: usize,
    last_auto_commit: Instant,
    closed: bool,
    /// The transaction coordinator, opened when a read_committed poll is held back by
    /// an open transaction (to finish it if its holder is gone).
    coordinator: Option<Coordinator>,
    last_reap: Option<Instant>,
    /// Membership of the group after `subscribe`.
    member: Option<Member>,
    on_assign: Option<RebalanceCallback>,
    on_revoke: Option<RebalanceCallback>,
}

/// How often a read_committed consumer held back by an open transaction checks
/// whether its holder is gone or timed out.
const REAP_INTERVAL: Duration = Duration::from_millis(100);
/// How long `position` waits at most for an open transaction holding offsets of
/// the group (Kafka's `default.api.timeout.ms`).
const UNSTABLE_OFFSET_WAIT: Duration = Duration::from_secs(60);

impl Consumer {
    /// A consumer on `store` with `config`.
    pub fn new(store: &Store, mut config: ConsumerConfig) -> Result<Consumer> {
        if config.group_id.is_none() && config.commit_mode == CommitMode::Auto {
            // As Kafka: without a group there is nothing to auto-commit to.
            config.commit_mode = CommitMode::Manual;
        }
        let needs_group = !matches!(config.commit_mode, CommitMode::Manual | CommitMode::Auto);
        if needs_group && config.group_id.is_none() {
            bail!(
                InvalidConfig,
                "a delivery preset commits offsets: it needs group.id"
            );
        }
        let offsets = match config.group_id {
            Some(_) => Some(OffsetStore::open(store)?),
            None => None,
        };
        Ok(Consumer {
            store: store.clone(),
            config,
            offsets,
            assigned: Vec::new(),
            next: 0,
            last_auto_commit: Instant::now(),
            closed: false,
            coordinator: None,
            last_reap: None,
            member: None,
            on_assign: None,
            on_revoke: None,
        })
    }

    /// The config in force.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// Consumes exactly `partitions`, outside any group rebalancing. Positions start
    /// at the group's committed offsets, or at `auto.offset.reset`.
    pub fn assign(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.check_open()?;
        let mut assigned = Vec::with_capacity(partitions.len());
        for tp in partitions {
            if assigned.iter().any(|a: &Assigned| a.tp == *tp) {
                bail!(
                    InvalidArgument,
                    "{}-{} is listed twice",
                    tp.topic,
                    tp.partition
                );
            }
            let partition = self.store.partition(&tp.topic, tp.partition)?;
            assigned.push(Assigned {
                tp: tp.clone(),
                partition,
                reader: None,
                position: None,
                committed: None,
                owned: true,
            });
        }
        self.member = None;
        self.assigned = assigned;
        self.next = 0;
        Ok(())
    }

    /// Joins the consumer group (`group.id`) with a subscription to `topics`: the
    /// group's live members share the partitions of their subscriptions, one owner
    /// per partition at a time, and rebalance when a member joins, leaves or dies.
    pub fn subscribe(&mut self, topics: &[&str]) -> Result<()> {
        self.subscribe_with(topics, None, None)
    }

    /// As [`subscribe`](Self::subscribe), with callbacks for the partitions a
    /// rebalance hands over (`on_assign`) and takes away (`on_revoke`, called while
    /// the consumer still owns them, before it commits and lets go of them).
    pub fn subscribe_with(
        &mut self,
        topics: &[&str],
        on_assign: Option<RebalanceCallback>,
        on_revoke: Option<RebalanceCallback>,
    ) -> Result<()> {
        self.check_open()?;
        let Some(group) = self.config.group_id.clone() else {
            bail!(InvalidConfig, "subscribe needs group.id");
        };
        let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        if self.member.is_some() {
            self.revoke_all()?;
        }
        self.assigned.clear();
        self.member = Some(Member::join(
            &self.store,
            &group,
            &topics,
            Duration::from_millis(self.config.session_timeout_ms),
        )?);
        self.on_assign = on_assign;
        self.on_revoke = on_revoke;
        self.rebalance(true)
    }

    /// Stops consuming: leaves the group (its other members rebalance) or drops the
    /// partitions given to [`assign`](Self::assign). Every partition is revoked
    /// first (the `on_revoke` callback, then a commit if the mode commits what was
    /// handed out). The consumer may then subscribe or assign again.
    pub fn unsubscribe(&mut self) -> Result<()> {
        self.check_open()?;
        let result = self.revoke_all();
        // Dropping the membership releases its owner locks and leaves the group.
        self.member = None;
        self.assigned.clear();
        self.next = 0;
        self.on_assign = None;
        self.on_revoke = None;
        result
    }

    /// Follows the group's generation: partitions that moved away are revoked
    /// (callback, commit as the mode says, owner lock released), new ones added.
    fn rebalance(&mut self, force: bool) -> Result<()> {
        let Some(member) = self.member.as_mut() else {
            return Ok(());
        };
        let Some(mine) = member.sync(&self.store, force)? else {
            return Ok(());
        };
        let revoked: Vec<TopicPartition> = self
            .assigned
            .iter()
            .map(|a| a.tp.clone())
            .filter(|tp| !mine.contains(tp))
            .collect();
        if !revoked.is_empty() {
            if let Some(cb) = self.on_revoke.as_mut() {
                cb(&revoked);
            }
            if matches!(
                self.config.commit_mode,
                CommitMode::Auto | CommitMode::AfterProcessing
            ) {
                self.commit()?;
            }
            let member = self.member.as_mut().expect("checked above");
            for tp in &revoked {
                member.release(tp);
            }
            self.assigned.retain(|a| !revoked.contains(&a.tp));
        }
        // Partitions kept across the generations: taken over while this member was
        // away (its session expired), they start again from the committed offset once
        // owned again.
        let member = self.member.as_ref().expect("checked above");
        for a in self.assigned.iter_mut().filter(|a| a.owned) {
            if !member.still_owns(&a.tp) {
                a.lose_ownership();
            }
        }
        let added: Vec<TopicPartition> = mine
            .iter()
            .filter(|tp| !self.assigned.iter().any(|a| a.tp == **tp))
            .cloned()
            .collect();
        for tp in &added {
            let partition = self.store.partition(&tp.topic, tp.partition)?;
            self.assigned.push(Assigned {
                tp: tp.clone(),
                partition,
                reader: None,
                position: None,
                committed: None,
                owned: false,
            });
        }
        if !added.is_empty() {
            if let Some(cb) = self.on_assign.as_mut() {
                cb(&added);
            }
        }
        self.next = 0;
        Ok(())
    }

    /// Revokes every partition (leaving the group or resubscribing).
    fn revoke_all(&mut self) -> Result<()> {
        let all: Vec<TopicPartition> = self.assigned.iter().map(|a| a.tp.clone()).collect();
        if !all.is_empty() {
            if let Some(cb) = self.on_revoke.as_mut() {
                cb(&all);
            }
        }
        if matches!(
            self.config.commit_mode,
            CommitMode::Auto | CommitMode::AfterProcessing
        ) {
            self.commit()?;
        }
        self.assigned.clear();
        Ok(())
    }

    /// Takes the owner locks of assigned partitions not owned yet (a previous owner
    /// may still hold one until it notices the rebalance).
    fn claim_partitions(&mut self) -> Result<()> {
        let Some(member) = self.member.as_mut() else {
            return Ok(());
        };
        for a in self.assigned.iter_mut().filter(|a| !a.owned) {
            a.owned = member.try_own(&a.tp)?;
        }
        Ok(())
    }

    /// The group generation this consumer is in (`None` outside a group), for
    /// `send_offsets_to_transaction`'s group metadata.
    pub fn group_generation(&self) -> Option<i64> {
        self.member.as_ref().map(Member::generation)
    }

    /// What a transactional producer sends with this consumer's offsets
    /// ([`Producer::send_offsets_to_transaction_for`](crate::Producer::send_offsets_to_transaction_for)):
    /// the group, and the generation and member this consumer is in (-1 and 0 when
    /// it assigned its partitions itself). `invalid_config` without `group.id`.
    pub fn group_metadata(&self) -> Result<GroupMetadata> {
        let Some(group_id) = self.config.group_id.clone() else {
            bail!(InvalidConfig, "group metadata needs group.id");
        };
        Ok(match &self.member {
            Some(m) => GroupMetadata {
                group_id,
                generation: m.generation(),
                member: m.token(),
            },
            None => GroupMetadata {
                group_id,
                generation: -1,
                member: 0,
            },
        })
    }

    /// In a group: takes the group's lock for an offset commit of `tps` (returned,
    /// to be held while committing), after checking this member still owns them;
    /// those it lost start again from the committed offset, and the commit is
    /// refused (`stale_generation`).
    fn check_owned(&mut self, tps: &[TopicPartition]) -> Result<Option<OwnershipGuard>> {
        let Some(member) = self.member.as_mut() else {
            return Ok(None);
        };
        let (guard, lost) = member.check_owned(tps)?;
        if lost.is_empty() {
            return Ok(Some(guard));
        }
        for a in self.assigned.iter_mut().filter(|a| lost.contains(&a.tp)) {
            a.lose_ownership();
        }
        bail!(
            StaleGeneration,
            "{} partition(s) of this commit, first {}-{}, were taken over by other group members while this one was away (its session expired): the commit is refused",
            lost.len(),
            lost[0].topic,
            lost[0].partition
        );
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.assigned.iter().map(|a| a.tp.clone()).collect()
    }

    /// Up to `max.poll.records` records from the assigned partitions, waiting at most
    /// `timeout` for the first. Commits as the commit mode says: before returning
    /// them (at-most-once), or those returned by the previous poll (at-least-once,
    /// and auto-commit when its interval passed).
    pub fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        self.check_open()?;
        match self.config.commit_mode {
            CommitMode::AfterProcessing => self.commit()?,
            CommitMode::Auto if self.auto_commit_due() => self.commit()?,
            _ => {}
        }
        let deadline = Instant::now() + timeout;
        loop {
            self.rebalance(false)?;
            self.claim_partitions()?;
            for i in 0..self.assigned.len() {
                if self.assigned[i].owned {
                    self.ensure_position(i)?;
                }
            }
            let records = self.fetch()?;
            if !records.is_empty() {
                if self.config.commit_mode == CommitMode::BeforeProcessing {
                    self.commit()?;
                }
                return Ok(records);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Vec::new());
            }
            // Held back by an open transaction: whichever process notices first
            // finishes a transaction whose holder died or timed out.
            let held_back = self.held_back_by_transaction();
            if held_back {
                self.finish_abandoned_transactions()?;
            }
            // In a group: look at the membership again soon, and at partitions still
            // owned by someone else.
            let in_group = self.member.is_some();
            let slice = match (held_back, in_group) {
                (true, _) => left.min(REAP_INTERVAL),
                (false, true) => left.min(crate::group::SYNC_INTERVAL),
                (false, false) => left,
            };
            if self.assigned.is_empty() {
                std::thread::sleep(slice);
                if !in_group {
                    return Ok(Vec::new());
                }
                continue;
            }
            if !self.wait(slice) && !held_back && !in_group {
                return Ok(Vec::new());
            }
        }
    }

    /// Moves `tp`'s position to `offset` (the next record handed out).
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        self.check_open()?;
        let read_committed = self.config.isolation == Isolation::ReadCommitted;
        let a = self.find_mut(tp)?;
        let reader = a.partition.reader(offset)?.read_committed(read_committed);
        a.reader = Some(reader);
        a.position = Some(offset);
        Ok(())
    }

    /// Moves every assigned partition back to its committed offset (read again at
    /// the next `poll`): what an exactly-once loop does after aborting a
    /// transaction, so that the records it had polled are polled again.
    pub fn seek_to_committed(&mut self) -> Result<()> {
        self.check_open()?;
        for a in &mut self.assigned {
            a.reader = None;
            a.position = None;
            a.committed = None;
        }
        Ok(())
    }

    /// The offset of the next record `poll` will hand out from `tp`.
    ///
    /// In read_committed mode this waits (up to a minute) while an open transaction
    /// holds offsets of the group for `tp` (see `poll`).
    pub fn position(&mut self, tp: &TopicPartition) -> Result<i64> {
        self.check_open()?;
        let i = self.index(tp)?;
        let t0 = Instant::now();
        while !self.ensure_position(i)? {
            if t0.elapsed() > UNSTABLE_OFFSET_WAIT {
                bail!(
                    Timeout,
                    "{}-{}: an open transaction still holds offsets of this group",
                    tp.topic,
                    tp.partition
                );
            }
            self.finish_abandoned_transactions()?;
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(self.assigned[i].position.expect("ensured"))
    }

    /// The offset the group committed for `tp`, as every process sees it.
    pub fn committed(&self, tp: &TopicPartition) -> Result<Option<CommittedOffset>> {
        let (offsets, group) = self.offsets_and_group()?;
        offsets.committed(group, &tp.topic, tp.partition)
    }

    /// Commits the current positions of every assigned partition (synchronously).
    pub fn commit(&mut self) -> Result<()> {
        self.check_open()?;
        if self.config.commit_mode == CommitMode::Transactional {
            bail!(
                InvalidConfig,
                "an exactly-once consumer commits its offsets through the producer's transaction (send_offsets_to_transaction)"
            );
        }
        let changed: Vec<(String, u32, i64)> = self
            .assigned
            .iter()
            .filter(|a| a.owned)
            .filter_map(|a| match a.position {
                Some(p) if a.committed != Some(p) => Some((a.tp.topic.clone(), a.tp.partition, p)),
                _ => None,
            })
            .collect();
        self.last_auto_commit = Instant::now();
        if changed.is_empty() {
            return Ok(());
        }
        let tps: Vec<TopicPartition> = changed
            .iter()
            .map(|(t, p, _)| TopicPartition::new(t.clone(), *p))
            .collect();
        let _owned = self.check_owned(&tps)?;
        let (offsets, group) = self.offsets_and_group()?;
        let list: Vec<(&str, u32, i64, &str)> = changed
            .iter()
            .map(|(t, p, o)| (t.as_str(), *p, *o, ""))
            .collect();
        offsets.commit(group, &list)?;
        for (t, p, o) in changed {
            if let Some(a) = self
                .assigned
                .iter_mut()
                .find(|a| a.tp.topic == t && a.tp.partition == p)
            {
                a.committed = Some(o);
            }
        }
        Ok(())
    }

    /// Commits explicit offsets (the next offset to consume, per partition).
    pub fn commit_offsets(&mut self, offsets: &[(TopicPartition, i64)]) -> Result<()> {
        self.check_open()?;
        if self.member.is_some() {
            if let Some((tp, _)) = offsets
                .iter()
                .find(|(tp, _)| !self.assigned.iter().any(|a| a.tp == *tp && a.owned))
            {
                bail!(
                    StaleGeneration,
                    "{}-{} is not owned by this group member (any more): the group rebalanced",
                    tp.topic,
                    tp.partition
                );
            }
        }
        let tps: Vec<TopicPartition> = offsets.iter().map(|(tp, _)| tp.clone()).collect();
        let _owned = self.check_owned(&tps)?;
        let (store, group) = self.offsets_and_group()?;
        let list: Vec<(&str, u32, i64, &str)> = offsets
            .iter()
            .map(|(tp, o)| (tp.topic.as_str(), tp.partition, *o, ""))
            .collect();
        store.commit(group, &list)?;
        for (tp, o) in offsets {
            if let Some(a) = self.assigned.iter_mut().find(|a| a.tp == *tp) {
                a.committed = Some(*o);
            }
        }
        Ok(())
    }

    /// Commits as the commit mode says (auto and at-least-once commit what was
    /// handed out) and stops the consumer.
    pub fn close(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        let result = match self.config.commit_mode {
            CommitMode::Auto | CommitMode::AfterProcessing => self.commit(),
            _ => Ok(()),
        };
        // Leaving the group: dropping the membership releases its locks, and the
        // other members rebalance.
        self.member = None;
        self.closed = true;
        result
    }

    fn check_open(&self) -> Result<()> {
        if self.closed {
            bail!(Closed, "the consumer is closed");
        }
        Ok(())
    }

    fn auto_commit_due(&self) -> bool {
        self.last_auto_commit.elapsed()
            >= Duration::from_millis(self.config.auto_commit_interval_ms)
    }

    fn offsets_and_group(&self) -> Result<(&OffsetStore, &str)> {
        match (&self.offsets, &self.config.group_id) {
            (Some(o), Some(g)) => Ok((o, g)),
            _ => bail!(InvalidConfig, "committed offsets need group.id"),
        }
    }

    fn index(&self, tp: &TopicPartition) -> Result<usize> {
        self.assigned
            .iter()
            .position(|a| a.tp == *tp)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "{}-{} is not assigned to this consumer",
                        tp.topic, tp.partition
                    ),
                )
            })
    }

    fn find_mut(&mut self, tp: &TopicPartition) -> Result<&mut Assigned> {
        let i = self.index(tp)?;
        Ok(&mut self.assigned[i])
    }

    /// Gives partition `i` a position and a reader: the committed offset, else the
    /// reset policy; a committed offset that retention deleted also resets.
    /// Opens the reader of assigned partition `i` at its position, its committed
    /// offset, or as `auto.offset.reset` says. False (and no reader yet) while a
    /// read_committed consumer finds an open transaction holding offsets of its group
    /// for the partition: its committed offset is not stable yet (the transaction of
    /// a previous owner, which may still commit them).
    fn ensure_position(&mut self, i: usize) -> Result<bool> {
        if self.assigned[i].reader.is_some() {
            return Ok(true);
        }
        let read_committed = self.config.isolation == Isolation::ReadCommitted;
        let committed = match (&self.offsets, &self.config.group_id) {
            (Some(o), Some(g)) => {
                let tp = &self.assigned[i].tp;
                if read_committed
                    && self.assigned[i].position.is_none()
                    && o.has_pending(g, &tp.topic, tp.partition)?
                {
                    return Ok(false);
                }
                o.committed(g, &tp.topic, tp.partition)?.map(|c| c.offset)
            }
            _ => None,
        };
        let a = &mut self.assigned[i];
        a.committed = committed;
        let wanted = a.position.or(committed);
        let open = |o: i64| {
            a.partition
                .reader(o)
                .map(|r| r.read_committed(read_committed))
        };
        let reader = match wanted.map(open) {
            Some(Ok(r)) => r,
            Some(Err(e)) if e.kind() != ErrorKind::OffsetOutOfRange => return Err(e),
            _ => {
                // Retention may move the log start between reading it and opening
                // there: read it again.
                let mut tries = 0;
                loop {
                    let start = match self.config.auto_offset_reset {
                        OffsetReset::Earliest => a.partition.start_offset(),
                        OffsetReset::Latest => a.partition.end_offset(),
                        OffsetReset::None => bail!(
                            OffsetOutOfRange,
                            "no valid offset for {}-{} and auto.offset.reset is none",
                            a.tp.topic,
                            a.tp.partition
                        ),
                    };
                    match open(start) {
                        Err(e) if e.kind() == ErrorKind::OffsetOutOfRange && tries < 100 => {
                            tries += 1
                        }
                        other => break other?,
                    }
                }
            }
        };
        a.position = Some(reader.position());
        a.reader = Some(reader);
        Ok(true)
    }

    /// Takes what is there, round-robin over the partitions, without waiting.
    fn fetch(&mut self) -> Result<Vec<ConsumerRecord>> {
        let max = self.config.max_poll_records;
        let mut out = Vec::new();
        let n = self.assigned.len();
        for k in 0..n {
            if out.len() >= max {
                break;
            }
            let i = (self.next + k) % n;
            let a = &mut self.assigned[i];
            if !a.owned {
                continue;
            }
            // No reader: its committed offset is not stable yet.
            let Some(reader) = a.reader.as_mut() else {
                continue;
            };
            let mut deleted = false;
            while out.len() < max {
                let batch = match reader.next_batch() {
                    Ok(Some(batch)) => batch,
                    Ok(None) => break,
                    // Retention deleted the segment under the reader: the next poll
                    // applies auto.offset.reset (or fails, with `none`); the records
                    // already taken from other partitions are handed out.
                    Err(e) if e.kind() == ErrorKind::OffsetOutOfRange => {
                        deleted = true;
                        break;
                    }
                    Err(e) => return Err(e),
                };
                if batch.header().is_control() {
                    continue;
                }
                for record in batch.records() {
                    let r = record?;
                    if out.len() >= max {
                        break;
                    }
                    out.push(ConsumerRecord {
                        topic: a.tp.topic.clone(),
                        partition: a.tp.partition,
                        offset: r.offset,
                        key: r.key.map(<[u8]>::to_vec),
                        value: r.value.map(<[u8]>::to_vec),
                        headers: r
                            .headers()
                            .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                            .collect(),
                        timestamp: r.timestamp,
                    });
                }
            }
            // A batch cut short by max.poll.records resumes at the next record.
            let handed_out = out
                .iter()
                .rev()
                .find(|r| r.topic == a.tp.topic && r.partition == a.tp.partition);
            let position = handed_out.map_or(reader.position(), |r| r.offset + 1);
            if position != reader.position() && !deleted {
                match reader.seek(position) {
                    Err(e) if e.kind() == ErrorKind::OffsetOutOfRange => deleted = true,
                    other => other?,
                }
            }
            if deleted {
                a.reader = None;
            }
            a.position = Some(position);
        }
        self.next = (self.next + 1) % n.max(1);
        Ok(out)
    }

    /// True when a read_committed consumer has records past its position that an
    /// open transaction keeps back.
    /// Whether an open transaction holds a read_committed consumer back: records
    /// past the last stable offset, or offsets of its group not stable yet.
    fn held_back_by_transaction(&self) -> bool {
        self.config.isolation == Isolation::ReadCommitted
            && self.assigned.iter().any(|a| {
                let p = &a.partition;
                (a.owned && a.reader.is_none())
                    || (p.last_stable_offset() < p.end_offset()
                        && a.position.is_some_and(|pos| pos >= p.last_stable_offset()))
            })
    }

    fn finish_abandoned_transactions(&mut self) -> Result<()> {
        if self.last_reap.is_some_and(|t| t.elapsed() < REAP_INTERVAL) {
            return Ok(());
        }
        self.last_reap = Some(Instant::now());
        let coordinator = match self.coordinator.take() {
            Some(c) => c,
            // Finishing someone else's transaction: sync, whatever it was sent with.
            None => Coordinator::open(&self.store, crate::Durability::Synced)?,
        };
        let mut result = coordinator.finish_abandoned().map(|_| ());
        for a in &self.assigned {
            let p = &a.partition;
            if result.is_ok() && p.last_stable_offset() < p.end_offset() {
                result = coordinator.abort_orphans(p).map(|_| ());
            }
        }
        self.coordinator = Some(coordinator);
        result
    }

    /// Sleeps until any assigned partition has records past its position, or
    /// `timeout`. Returns whether something arrived.
    fn wait(&self, timeout: Duration) -> bool {
        let words: Vec<_> = self
            .assigned
            .iter()
            .map(|a| &a.partition.log().block().wait)
            .collect();
        wait_until_any(&words, timeout, || {
            self.assigned.iter().any(|a| {
                a.partition
                    .log()
                    .block()
                    .tail
                    .end_offset
                    .load(Ordering::SeqCst)
                    > a.position.unwrap_or(i64::MAX)
            })
        })
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
