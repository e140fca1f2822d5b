//! `groups`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use oncelog::offsets::OffsetStore;
use oncelog::{describe_group, list_groups, CommittedOffset, MemberStatus, Store};

use crate::error::CliError;
use crate::output::{age, open_store, table, Out};

/// Arguments of `groups`.
#[derive(Args)]
pub struct Groups {
    #[command(subcommand)]
    pub action: Action,
}

/// What to do with groups.
#[derive(Subcommand)]
pub enum Action {
    /// The groups with committed offsets or live members.
    List,
    /// A group's members, generation, and per partition its committed offset and lag.
    Describe {
        /// The group.
        group: String,
    },
    /// Move a group's committed offsets (while no member is live).
    ResetOffsets {
        /// The group.
        group: String,
        /// The topic.
        #[arg(long)]
        topic: String,
        /// To the first offset of each partition.
        #[arg(long, conflicts_with_all = ["to_latest", "to_offset"])]
        to_earliest: bool,
        /// To the end of each partition.
        #[arg(long, conflicts_with = "to_offset")]
        to_latest: bool,
        /// To this offset (needs --partition).
        #[arg(long, requires = "partition")]
        to_offset: Option<i64>,
        /// Only this partition.
        #[arg(long)]
        partition: Option<u32>,
    },
}

/// Runs the groups action.
pub fn run(store: &Path, args: Groups) -> Result<ExitCode, CliError> {
    let s = open_store(store)?;
    let mut out = Out::new();
    match args.action {
        Action::List => {
            let mut names: BTreeSet<String> = list_groups(&s)?.into_iter().collect();
            for (group, ..) in committed(&s)? {
                names.insert(group);
            }
            for name in names {
                out.line(&name)?;
            }
        }
        Action::Describe { group } => describe(&s, &group, &mut out)?,
        Action::ResetOffsets {
            group,
            topic,
            to_earliest,
            to_latest,
            to_offset,
            partition,
        } => {
            let target = match (to_earliest, to_latest, to_offset) {
                (true, false, None) => Target::Earliest,
                (false, true, None) => Target::Latest,
                (false, false, Some(o)) => Target::Offset(o),
                _ => {
                    return Err(CliError::usage(
                        "reset-offsets needs one of --to-earliest, --to-latest or --to-offset N --partition P",
                    ))
                }
            };
            reset(&s, &group, &topic, partition, target, &mut out)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Every committed offset, without creating `__consumer_offsets` in a store that
/// has none.
fn committed(s: &Store) -> Result<Vec<(String, String, u32, CommittedOffset)>, CliError> {
    if s.topic(oncelog::topic::CONSUMER_OFFSETS).is_err() {
        return Ok(Vec::new());
    }
    Ok(OffsetStore::open(s)?.all_committed()?)
}

fn status_name(status: MemberStatus) -> &'static str {
    match status {
        MemberStatus::Live => "live",
        MemberStatus::Expired => "expired",
        MemberStatus::Dead => "dead",
    }
}

fn describe(s: &Store, group: &str, out: &mut Out) -> Result<(), CliError> {
    let desc = describe_group(s, group)?;
    let offsets: Vec<(String, u32, i64)> = committed(s)?
        .into_iter()
        .filter(|(g, ..)| g == group)
        .map(|(_, t, p, c)| (t, p, c.offset))
        .collect();
    if desc.is_none() && offsets.is_empty() {
        return Err(CliError::failed(format!(
            "no group {group:?} in {}: no member ever joined it and it committed no offset",
            s.path().display()
        )));
    }
    let (generation, members, owners) = match desc {
        Some(d) => (d.generation, d.members, d.owners),
        None => (0, Vec::new(), Vec::new()),
    };
    let live = members
        .iter()
        .filter(|m| m.status == MemberStatus::Live)
        .count();
    out.line(&format!(
        "group {group}: generation {generation}, {} member{} ({live} live)",
        members.len(),
        if members.len() == 1 { "" } else { "s" }
    ))?;
    if !members.is_empty() {
        let mut rows = vec![[
            "MEMBER".to_string(),
            "STATUS".to_string(),
            "IN GENERATION".to_string(),
            "HEARTBEAT".to_string(),
            "TOPICS".to_string(),
        ]];
        for m in &members {
            rows.push([
                format!("{:016x}", m.token),
                status_name(m.status).to_string(),
                if m.in_generation { "yes" } else { "no" }.to_string(),
                format!("{} ago", age(m.heartbeat_age_ms as i64)),
                m.topics.join(","),
            ]);
        }
        out.write(table_string(&rows).as_bytes())?;
    }
    // Every partition of the subscribed topics, and every partition with an offset.
    let mut partitions: BTreeSet<(String, u32)> =
        offsets.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
    for topic in members.iter().flat_map(|m| m.topics.iter()) {
        if let Ok(meta) = s.topic(topic) {
            partitions.extend((0..meta.partitions).map(|p| (topic.clone(), p)));
        }
    }
    let mut rows = vec![[
        "TOPIC".to_string(),
        "PARTITION".to_string(),
        "COMMITTED".to_string(),
        "END".to_string(),
        "LAG".to_string(),
        "OWNER".to_string(),
    ]];
    for (topic, p) in &partitions {
        let committed = offsets
            .iter()
            .find(|(t, q, _)| t == topic && q == p)
            .map(|(_, _, o)| *o);
        let end = s.partition(topic, *p).map(|x| x.end_offset()).ok();
        let owner = owners
            .iter()
            .find(|o| o.partition.topic == *topic && o.partition.partition == *p && o.held)
            .and_then(|o| o.token)
            .map_or("-".to_string(), |t| format!("{t:016x}"));
        rows.push([
            topic.clone(),
            p.to_string(),
            committed.map_or("-".to_string(), |o| o.to_string()),
            end.map_or("?".to_string(), |e| e.to_string()),
            match (committed, end) {
                (Some(c), Some(e)) => (e - c).max(0).to_string(),
                _ => "-".to_string(),
            },
            owner,
        ]);
    }
    if rows.len() > 1 {
        out.write(table_string(&rows).as_bytes())?;
    }
    Ok(())
}

/// Where reset-offsets moves a group's offsets.
#[derive(Clone, Copy)]
enum Target {
    Earliest,
    Latest,
    Offset(i64),
}

fn reset(
    s: &Store,
    group: &str,
    topic: &str,
    partition: Option<u32>,
    target: Target,
    out: &mut Out,
) -> Result<(), CliError> {
    if group.is_empty() {
        return Err(CliError::usage("the group id must not be empty"));
    }
    // A member's process holds its file (live, or alive with its session expired):
    // it could commit over the reset at any time.
    if let Some(desc) = describe_group(s, group)? {
        let active = desc
            .members
            .iter()
            .filter(|m| m.status != MemberStatus::Dead)
            .count();
        if active > 0 {
            return Err(CliError::failed(format!(
                "group {group:?} has {active} live member{}: stop {} before resetting its offsets",
                if active == 1 { "" } else { "s" },
                if active == 1 { "it" } else { "them" }
            )));
        }
    }
    let meta = s.topic(topic)?;
    let partitions: Vec<u32> = match partition {
        Some(p) if p >= meta.partitions => {
            return Err(CliError::failed(format!(
                "topic {topic} has {} partitions; there is no partition {p}",
                meta.partitions
            )))
        }
        Some(p) => vec![p],
        None => (0..meta.partitions).collect(),
    };
    let before: Vec<(String, u32, i64)> = committed(s)?
        .into_iter()
        .filter(|(g, t, ..)| g == group && t == topic)
        .map(|(_, t, p, c)| (t, p, c.offset))
        .collect();
    let mut new = Vec::with_capacity(partitions.len());
    for p in partitions {
        let log = s.partition(topic, p)?;
        let (start, end) = (log.start_offset(), log.end_offset());
        let offset = match target {
            Target::Earliest => start,
            Target::Latest => end,
            Target::Offset(o) if (start..=end).contains(&o) => o,
            Target::Offset(o) => {
                return Err(CliError::failed(format!(
                    "offset {o} is outside {topic}-{p}'s range [{start}, {end}]"
                )))
            }
        };
        new.push((p, offset));
    }
    let list: Vec<(&str, u32, i64, &str)> = new.iter().map(|(p, o)| (topic, *p, *o, "")).collect();
    OffsetStore::open(s)?.commit(group, &list)?;
    for (p, o) in new {
        let old = before
            .iter()
            .find(|(_, q, _)| *q == p)
            .map_or("none".to_string(), |(_, _, o)| o.to_string());
        out.line(&format!("{topic}-{p}: {old} -> {o}"))?;
    }
    Ok(())
}

fn table_string<const N: usize>(rows: &[[String; N]]) -> String {
    let mut s = String::new();
    table(&mut s, rows);
    s
}
