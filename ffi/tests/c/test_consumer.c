/* test_consumer.c - consumers: assign, poll, messages, positions, commits, close,
 * groups. */
#define _XOPEN_SOURCE 700

#include "check.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* A store with topic "t" of `partitions` partitions holding `n` records "v<i>" in
 * partition 0. */
static oncelog_store_t *store_with_records(int32_t partitions, int n) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = open_store_with_topic("t", partitions, NULL);
    oncelog_producer_t *p = NULL;
    OK(oncelog_producer_new(store, NULL, &p, &err));
    for (int i = 0; i < n; i++) {
        char v[16];
        snprintf(v, sizeof v, "v%d", i);
        CHECK(produce_str(p, "t", 0, NULL, v) == i);
    }
    oncelog_producer_destroy(p);
    return store;
}

static oncelog_consumer_t *group_consumer(oncelog_store_t *store, const char *group,
                                          const char *delivery) {
    oncelog_error_t *err = NULL;
    const char *const pairs[][2] = {
        {"group.id", group}, {"auto.offset.reset", "earliest"}, {"delivery", delivery}};
    oncelog_conf_t *conf = conf_of(delivery ? 3 : 2, pairs);
    oncelog_consumer_t *c = NULL;
    OK(oncelog_consumer_new(store, conf, &c, &err));
    oncelog_conf_destroy(conf);
    return c;
}

static void assign0(oncelog_consumer_t *c) {
    oncelog_error_t *err = NULL;
    oncelog_topic_partition_t tp = {"t", 0};
    OK(oncelog_consumer_assign(c, &tp, 1, &err));
}

/* Polls one message and returns its offset (-1 for none). */
static int64_t poll_offset(oncelog_consumer_t *c, int32_t timeout_ms) {
    oncelog_error_t *err = NULL;
    oncelog_message_t *m = NULL;
    OK(oncelog_consumer_poll(c, timeout_ms, &m, &err));
    int64_t o = m ? oncelog_message_offset(m) : -1;
    oncelog_message_destroy(m);
    return o;
}

void test_consumer_new_checks_arguments_and_config(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = store_with_records(1, 0);
    oncelog_consumer_t *c = (oncelog_consumer_t *)&err;
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "store", oncelog_consumer_new(NULL, NULL, &c, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "consumer_out",
          oncelog_consumer_new(store, NULL, NULL, &err));
    const char *const pairs[][2] = {{"delivery", "at-least-once"}};
    oncelog_conf_t *conf = conf_of(1, pairs);
    FAILS(ONCELOG_ERR_INVALID_CONFIG, "group.id", oncelog_consumer_new(store, conf, &c, &err));
    oncelog_conf_destroy(conf);
    CHECK(c == (oncelog_consumer_t *)&err);
    OK(oncelog_consumer_new(store, NULL, &c, &err));
    oncelog_consumer_destroy(c);
    oncelog_consumer_destroy(NULL);
    oncelog_store_destroy(store);
}

void test_poll_returns_messages_in_order_then_null_on_timeout(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = store_with_records(1, 5);
    oncelog_consumer_t *c = reader(store, "t", 0, 0);
    for (int i = 0; i < 5; i++) {
        CHECK(poll_offset(c, 1000) == i);
    }
    oncelog_message_t *m = (oncelog_message_t *)&err;
    OK(oncelog_consumer_poll(c, 0, &m, &err));
    CHECK(m == NULL);
    m = (oncelog_message_t *)&err;
    OK(oncelog_consumer_poll(c, 30, &m, &err));
    CHECK(m == NULL);
    /* A record appended later arrives. */
    oncelog_producer_t *p = NULL;
    OK(oncelog_producer_new(store, NULL, &p, &err));
    CHECK(produce_str(p, "t", 0, NULL, "late") == 5);
    CHECK(poll_offset(c, -1) == 5); /* -1: no time limit */
    oncelog_producer_destroy(p);
    oncelog_consumer_destroy(c);
    oncelog_store_destroy(store);
}

void test_poll_and_assign_reject_bad_arguments(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = store_with_records(2, 3);
    oncelog_consumer_t *c = NULL;
    OK(oncelog_consumer_new(store, NULL, &c, &err));
    oncelog_message_t *m = (oncelog_message_t *)&err;
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "consumer", oncelog_consumer_poll(NULL, 0, &m, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "message_out", oncelog_consumer_poll(c, 0, NULL, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "timeout_ms", oncelog_consumer_poll(c, -2, &m, &err));
    CHECK(m == (oncelog_message_t *)&err);

    oncelog_topic_partition_t tps[2] = {{"t", 0}, {"t", 0}};
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "consumer", oncelog_consumer_assign(NULL, tps, 1, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "partitions", oncelog_consumer_assign(c, NULL, 1, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "twice", oncelog_consumer_assign(c, tps, 2, &err));
    tps[1].topic = "missing";
    FAILS(ONCELOG_ERR_UNKNOWN_TOPIC, NULL, oncelog_consumer_assign(c, tps, 2, &err));
    tps[1].topic = "t";
    tps[1].partition = 5;
    FAILS(ONCELOG_ERR_UNKNOWN_PARTITION, NULL, oncelog_consumer_assign(c, tps, 2, &err));
    tps[1].partition = -1;
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "partition", oncelog_consumer_assign(c, tps, 2, &err));
    tps[1].topic = NULL;
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "topic", oncelog_consumer_assign(c, tps, 2, &err));
    /* Nothing assigned: a poll times out. */
    OK(oncelog_consumer_assign(c, NULL, 0, &err));
    CHECK(poll_offset(c, 10) == -1);
    oncelog_consumer_destroy(c);
    oncelog_store_destroy(store);
}

void test_message_accessors_borrow_from_the_message(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = open_store_with_topic("events", 2, NULL);
    oncelog_producer_t *p = NULL;
    OK(oncelog_producer_new(store, NULL, &p, &err));
    OK(oncelog_produce(p, "events", 1, "key-1", 5, "value-1", 7, NULL, NULL, &err));
    oncelog_consumer_t *c = reader(store, "events", 1, 0);
    oncelog_message_t *m = NULL;
    OK(oncelog_consumer_poll(c, 1000, &m, &err));
    CHECK(m != NULL);
    /* The message outlives its consumer, producer and store. */
    oncelog_consumer_destroy(c);
    oncelog_producer_destroy(p);
    oncelog_store_destroy(store);
    CHECK(strcmp(oncelog_message_topic(m), "events") == 0);
    CHECK(oncelog_message_partition(m) == 1);
    CHECK(oncelog_message_offset(m) == 0);
    CHECK(oncelog_message_timestamp(m) > 0);
    size_t len = 0;
    const char *k = oncelog_message_key(m, &len);
    CHECK(k != NULL && len == 5 && memcmp(k, "key-1", 5) == 0);
    const char *v = oncelog_message_value(m, &len);
    CHECK(v != NULL && len == 7 && memcmp(v, "value-1", 7) == 0);
    CHECK(oncelog_message_value(m, NULL) == v); /* len_out is optional */
    CHECK(oncelog_message_header_count(m) == 0);
    const char *hk = NULL;
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "out of range",
          oncelog_message_header(m, 0, &hk, NULL, NULL, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "key_out",
          oncelog_message_header(m, 0, NULL, NULL, NULL, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "message",
          oncelog_message_header(NULL, 0, &hk, NULL, NULL, &err));
    CHECK(hk == NULL);
    oncelog_message_destroy(m);
    /* NULL messages give the documented defaults. */
    len = 9;
    CHECK(oncelog_message_topic(NULL) == NULL);
    CHECK(oncelog_message_partition(NULL) == -1);
    CHECK(oncelog_message_offset(NULL) == -1);
    CHECK(oncelog_message_timestamp(NULL) == -1);
    CHECK(oncelog_message_key(NULL, &len) == NULL && len == 0);
    len = 9;
    CHECK(oncelog_message_value(NULL, &len) == NULL && len == 0);
    CHECK(oncelog_message_header_count(NULL) == 0);
    oncelog_message_destroy(NULL);
}

void test_poll_batch_hands_out_up_to_capacity(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = store_with_records(1, 10);
    oncelog_consumer_t *c = reader(store, "t", 0, 0);
    oncelog_message_t *batch[4];
    size_t n = 99;
    size_t sizes[4] = {0, 0, 0, 0};
    int64_t expect = 0;
    for (int round = 0; round < 4; round++) {
        OK(oncelog_consumer_poll_batch(c, 200, batch, 4, &n, &err));
        sizes[round] = n;
        for (size_t i = 0; i < n; i++) {
            CHECK(oncelog_message_offset(batch[i]) == expect++);
            oncelog_message_destroy(batch[i]);
        }
    }
    CHECK(sizes[0] == 4 && sizes[1] == 4 && sizes[2] == 2 && sizes[3] == 0);
    n = 99;
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "capacity",
          oncelog_consumer_poll_batch(c, 0, batch, 0, &n, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "messages",
          oncelog_consumer_poll_batch(c, 0, NULL, 4, &n, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "count_out",
          oncelog_consumer_poll_batch(c, 0, batch, 4, NULL, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "consumer",
          oncelog_consumer_poll_batch(NULL, 0, batch, 4, &n, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "timeout_ms",
          oncelog_consumer_poll_batch(c, -9, batch, 4, &n, &err));
    CHECK(n == 99);
    oncelog_consumer_destroy(c);
    oncelog_store_destroy(store);
}

void test_seek_and_position_follow_what_was_handed_out(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = store_with_records(2, 10);
    oncelog_consumer_t *c = reader(store, "t", 0, 0);
    int64_t pos = -1;
    OK(oncelog_consumer_position(c, "t", 0, &pos, &err));
    CHECK(pos == 0);
    for (int i = 0; i < 3; i++) {
        CHECK(poll_offset(c, 1000) == i);
    }
    /* The consumer read ahead internally; the position is what was handed out. */
    OK(oncelog_consumer_position(c, "t", 0, &pos, &err));
    CHECK(pos == 3);
    OK(oncelog_consumer_seek(c, "t", 0, 1, &err));
    CHECK(poll_offset(c, 1000) == 1);
    OK(oncelog_consumer_seek(c, "t", 0, ONCELOG_OFFSET_END, &err));
    OK(oncelog_consumer_position(c, "t", 0, &pos, &err));
    CHECK(pos == 10);
    CHECK(poll_offset(c, 0) == -1);
    OK(oncelog_consumer_seek(c, "t", 0, ONCELOG_OFFSET_BEGINNING, &err));
    CHECK(poll_offset(c, 1000) == 0);

    pos = -42;
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "offset", oncelog_consumer_seek(c, "t", 0, -7, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "not assigned", oncelog_consumer_seek(c, "t", 1, 0, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "not assigned",
          oncelog_consumer_position(c, "t", 1, &pos, &err));
    FAILS(ONCELOG_ERR_OFFSET_OUT_OF_RANGE, NULL, oncelog_consumer_seek(c, "t", 0, 99, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "topic", oncelog_consumer_seek(c, NULL, 0, 0, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "consumer", oncelog_consumer_seek(NULL, "t", 0, 0, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "offset_out",
          oncelog_consumer_position(c, "t", 0, NULL, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "consumer",
          oncelog_consumer_position(NULL, "t", 0, &pos, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "partition",
          oncelog_consumer_position(c, "t", -1, &pos, &err));
    CHECK(pos == -42);
    oncelog_consumer_destroy(c);
    oncelog_store_destroy(store);
}

void test_commit_commits_only_what_was_handed_out(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = store_with_records(1, 10);
    const char *const pairs[][2] = {
        {"group.id", "g"}, {"enable.auto.commit", "false"}, {"auto.offset.reset", "earliest"}};
    oncelog_conf_t *conf = conf_of(3, pairs);
    oncelog_consumer_t *c = NULL;
    OK(oncelog_consumer_new(store, conf, &c, &err));
    oncelog_conf_destroy(conf);
    assign0(c);
    int64_t committed = 0;
    OK(oncelog_consumer_committed(c, "t", 0, &committed, &err));
    CHECK(committed == ONCELOG_OFFSET_INVALID);
    for (int i = 0; i < 3; i++) {
        CHECK(poll_offset(c, 1000) == i);
    }
    OK(oncelog_consumer_commit(c, NULL, 0, &err));
    OK(oncelog_consumer_committed(c, "t", 0, &committed, &err));
    CHECK(committed == 3);
    CHECK(poll_offset(c, 1000) == 3); /* nothing skipped by the commit */
    oncelog_topic_partition_offset_t offs[1] = {{"t", 0, 7}};
    OK(oncelog_consumer_commit(c, offs, 1, &err));
    OK(oncelog_consumer_committed(c, "t", 0, &committed, &err));
    CHECK(committed == 7);

    offs[0].offset = -1;
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "offset", oncelog_consumer_commit(c, offs, 1, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "offsets", oncelog_consumer_commit(c, NULL, 1, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "consumer", oncelog_consumer_commit(NULL, NULL, 0, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "offset_out",
          oncelog_consumer_committed(c, "t", 0, NULL, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "consumer",
          oncelog_consumer_committed(NULL, "t", 0, &committed, &err));
    oncelog_consumer_destroy(c);

    /* Without a group there is nothing to commit to. */
    oncelog_consumer_t *lone = reader(store, "t", 0, 0);
    CHECK(poll_offset(lone, 1000) == 0);
    FAILS(ONCELOG_ERR_INVALID_CONFIG, "group.id", oncelog_consumer_commit(lone, NULL, 0, &err));
    FAILS(ONCELOG_ERR_INVALID_CONFIG, "group.id",
          oncelog_consumer_committed(lone, "t", 0, &committed, &err));
    oncelog_consumer_destroy(lone);
    /* An exactly-once consumer commits through a transaction only. */
    oncelog_consumer_t *eos = group_consumer(store, "e", "exactly-once");
    assign0(eos);
    FAILS(ONCELOG_ERR_INVALID_CONFIG, "transaction", oncelog_consumer_commit(eos, NULL, 0, &err));
    oncelog_consumer_destroy(eos);
    oncelog_store_destroy(store);
}

void test_close_commits_and_later_calls_fail_closed(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = store_with_records(1, 10);
    oncelog_consumer_t *c = group_consumer(store, "alo", "at-least-once");
    assign0(c);
    for (int i = 0; i < 4; i++) {
        CHECK(poll_offset(c, 1000) == i);
    }
    OK(oncelog_consumer_close(c, &err));
    OK(oncelog_consumer_close(c, &err)); /* again: nothing to do */
    oncelog_message_t *m = NULL;
    int64_t o = 0;
    size_t n = 0;
    oncelog_message_t *batch[2];
    oncelog_topic_partition_t tp = {"t", 0};
    const char *topics[] = {"t"};
    FAILS(ONCELOG_ERR_CLOSED, "closed", oncelog_consumer_poll(c, 0, &m, &err));
    FAILS(ONCELOG_ERR_CLOSED, "closed", oncelog_consumer_poll_batch(c, 0, batch, 2, &n, &err));
    FAILS(ONCELOG_ERR_CLOSED, "closed", oncelog_consumer_commit(c, NULL, 0, &err));
    FAILS(ONCELOG_ERR_CLOSED, "closed", oncelog_consumer_seek(c, "t", 0, 0, &err));
    FAILS(ONCELOG_ERR_CLOSED, "closed", oncelog_consumer_position(c, "t", 0, &o, &err));
    FAILS(ONCELOG_ERR_CLOSED, "closed", oncelog_consumer_committed(c, "t", 0, &o, &err));
    FAILS(ONCELOG_ERR_CLOSED, "closed", oncelog_consumer_assign(c, &tp, 1, &err));
    FAILS(ONCELOG_ERR_CLOSED, "closed", oncelog_consumer_subscribe(c, topics, 1, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "consumer", oncelog_consumer_close(NULL, &err));
    oncelog_consumer_destroy(c);

    /* The close committed the 4 handed out, not the 10 read ahead. */
    oncelog_consumer_t *next = group_consumer(store, "alo", "at-least-once");
    assign0(next);
    CHECK(poll_offset(next, 1000) == 4);
    oncelog_consumer_destroy(next);
    oncelog_store_destroy(store);
}

void test_destroy_without_close_still_commits(void) {
    oncelog_store_t *store = store_with_records(1, 10);
    oncelog_consumer_t *c = group_consumer(store, "alo", "at-least-once");
    assign0(c);
    CHECK(poll_offset(c, 1000) == 0);
    CHECK(poll_offset(c, 1000) == 1);
    oncelog_consumer_destroy(c);
    oncelog_consumer_t *next = group_consumer(store, "alo", "at-least-once");
    assign0(next);
    CHECK(poll_offset(next, 1000) == 2);
    oncelog_consumer_destroy(next);
    oncelog_store_destroy(store);
}

void test_subscribe_shares_partitions_between_members(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = open_store_with_topic("t", 2, NULL);
    const char *topics[] = {"t"};
    oncelog_consumer_t *lone = NULL;
    OK(oncelog_consumer_new(store, NULL, &lone, &err));
    FAILS(ONCELOG_ERR_INVALID_CONFIG, "group.id", oncelog_consumer_subscribe(lone, topics, 1, &err));
    oncelog_consumer_destroy(lone);

    oncelog_consumer_t *a = group_consumer(store, "members", "at-least-once");
    oncelog_consumer_t *b = group_consumer(store, "members", "at-least-once");
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "count", oncelog_consumer_subscribe(a, topics, 0, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "topics", oncelog_consumer_subscribe(a, NULL, 1, &err));
    const char *null_topic[] = {NULL};
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "topics[0]",
          oncelog_consumer_subscribe(a, null_topic, 1, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "consumer", oncelog_consumer_subscribe(NULL, topics, 1, &err));
    OK(oncelog_consumer_subscribe(a, topics, 1, &err));
    OK(oncelog_consumer_subscribe(b, topics, 1, &err));
    /* Let both members see the group of two and settle on one partition each. */
    for (int round = 0; round < 10; round++) {
        CHECK(poll_offset(a, 10) == -1);
        CHECK(poll_offset(b, 10) == -1);
    }
    oncelog_producer_t *p = NULL;
    OK(oncelog_producer_new(store, NULL, &p, &err));
    for (int i = 0; i < 20; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        CHECK(produce_str(p, "t", i % 2, NULL, v) >= 0);
    }
    oncelog_producer_destroy(p);

    /* Poll both in turn until all 20 arrived; each partition has one owner. */
    int seen[20] = {0};
    int total = 0, from_a = 0, from_b = 0;
    for (int round = 0; round < 400 && total < 20; round++) {
        oncelog_consumer_t *c = round % 2 ? b : a;
        oncelog_message_t *m = NULL;
        OK(oncelog_consumer_poll(c, 10, &m, &err));
        if (m == NULL) {
            continue;
        }
        size_t len = 0;
        const char *v = oncelog_message_value(m, &len);
        int i = 0;
        for (size_t j = 0; j < len; j++) {
            i = i * 10 + (v[j] - '0');
        }
        CHECK(i >= 0 && i < 20 && !seen[i]);
        if (i >= 0 && i < 20) {
            seen[i] = 1;
        }
        total++;
        if (c == a) {
            from_a++;
        } else {
            from_b++;
        }
        oncelog_message_destroy(m);
    }
    CHECK(total == 20);
    CHECK(from_a == 10 && from_b == 10); /* one partition each */

    /* a leaves the group: b takes both partitions and reads a's next record. */
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "consumer", oncelog_consumer_unsubscribe(NULL, &err));
    OK(oncelog_consumer_unsubscribe(a, &err));
    OK(oncelog_producer_new(store, NULL, &p, &err));
    CHECK(produce_str(p, "t", 0, NULL, "20") >= 0);
    CHECK(produce_str(p, "t", 1, NULL, "21") >= 0);
    oncelog_producer_destroy(p);
    CHECK(poll_offset(a, 10) == -1);
    int after = 0;
    for (int round = 0; round < 200 && after < 2; round++) {
        if (poll_offset(b, 10) == 10) {
            after++;
        }
    }
    CHECK(after == 2);
    oncelog_consumer_destroy(a);
    oncelog_consumer_destroy(b);
    oncelog_store_destroy(store);
}

static void *destroy_all(void *arg) {
    oncelog_message_t **msgs = arg;
    for (int i = 0; i < 6; i++) {
        oncelog_message_destroy(msgs[i]);
    }
    return NULL;
}

void test_messages_outlive_their_consumer_on_any_thread(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = store_with_records(1, 10);
    oncelog_consumer_t *c = reader(store, "t", 0, 0);
    oncelog_message_t *msgs[6];
    size_t n = 0;
    /* One core poll reads all 10; 6 are handed out, 4 stay in the consumer. */
    OK(oncelog_consumer_poll_batch(c, 1000, msgs, 6, &n, &err));
    CHECK(n == 6);
    oncelog_consumer_destroy(c); /* drops the 4 unread ones */
    oncelog_store_destroy(store);
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *v = oncelog_message_value(msgs[i], &len);
        char want[8];
        snprintf(want, sizeof want, "v%d", (int)i);
        CHECK(v != NULL && len == strlen(want) && memcmp(v, want, len) == 0);
        CHECK(strcmp(oncelog_message_topic(msgs[i]), "t") == 0);
    }
    /* Destroyed on another thread, the last one freeing what they shared. */
    pthread_t t;
    CHECK(pthread_create(&t, NULL, destroy_all, msgs) == 0);
    pthread_join(t, NULL);
}
