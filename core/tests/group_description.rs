//! A consumer group described from outside, without joining it: members with
//! their liveness, the generation, and who owns which partition.

use std::time::Duration;

use oncelog::{
    describe_group, list_groups, Consumer, ConsumerConfig, MemberStatus, Store, StoreOptions,
    TopicPartition,
};

fn member(store: &Store, group: &str) -> Consumer {
    let config = ConsumerConfig::from_pairs([("group.id", group)]).unwrap();
    let mut c = Consumer::new(store, config).unwrap();
    c.subscribe(&["t"]).unwrap();
    c
}

#[test]
fn describe_group_shows_members_generation_and_owners() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.create_topic_with("t", 2, &[]).unwrap();
    assert_eq!(list_groups(&store).unwrap(), Vec::<String>::new());
    assert_eq!(describe_group(&store, "g").unwrap(), None);

    let mut a = member(&store, "g");
    let mut b = member(&store, "g");
    // Both poll until the generation counts both and each owns its partition.
    for _ in 0..50 {
        a.poll(Duration::from_millis(10)).unwrap();
        b.poll(Duration::from_millis(10)).unwrap();
        if a.assignment().len() == 1 && b.assignment().len() == 1 {
            break;
        }
    }
    a.poll(Duration::from_millis(10)).unwrap();
    b.poll(Duration::from_millis(10)).unwrap();
    let _other = member(&store, "other group");
    assert_eq!(list_groups(&store).unwrap(), ["g", "other group"]);

    let g = describe_group(&store, "g").unwrap().unwrap();
    assert_eq!(g.group_id, "g");
    assert_eq!(Some(g.generation), b.group_generation());
    assert_eq!(g.members.len(), 2);
    for m in &g.members {
        assert_eq!(m.status, MemberStatus::Live);
        assert!(m.in_generation);
        assert_eq!(m.topics, ["t"]);
        assert_eq!(m.session_timeout_ms, Some(45_000));
        assert!(m.heartbeat_age_ms < 10_000);
    }
    assert!(g.members[0].token < g.members[1].token, "in token order");
    let owners: Vec<(TopicPartition, bool)> = g
        .owners
        .iter()
        .map(|o| (o.partition.clone(), o.held))
        .collect();
    assert_eq!(
        owners,
        [
            (TopicPartition::new("t", 0), true),
            (TopicPartition::new("t", 1), true)
        ]
    );
    let tokens: Vec<i64> = g.members.iter().map(|m| m.token).collect();
    assert!(g.owners.iter().all(|o| tokens.contains(&o.token.unwrap())));

    // A member that goes away lets go of its files: dead, and its partition free.
    drop(b);
    let g = describe_group(&store, "g").unwrap().unwrap();
    let statuses: Vec<MemberStatus> = g.members.iter().map(|m| m.status).collect();
    assert!(statuses.contains(&MemberStatus::Live));
    assert!(
        statuses.contains(&MemberStatus::Dead) || g.members.len() == 1,
        "{statuses:?}"
    );
    assert_eq!(g.owners.iter().filter(|o| o.held).count(), 1);
    drop(a);
}
