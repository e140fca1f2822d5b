/* test_transactions.c - transactional producers: state rules, commit and abort,
 * offsets in a transaction, abort-only transactions, fencing. */
#define _XOPEN_SOURCE 700

#include "check.h"

#include <string.h>

static oncelog_producer_t *txn_producer(oncelog_store_t *store, const char *id) {
    oncelog_error_t *err = NULL;
    const char *const pairs[][2] = {{"transactional.id", id}};
    oncelog_conf_t *conf = conf_of(1, pairs);
    oncelog_producer_t *p = NULL;
    OK(oncelog_producer_new(store, conf, &p, &err));
    oncelog_conf_destroy(conf);
    return p;
}

void test_transaction_calls_in_the_wrong_state_fail(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = open_store_with_topic("t", 1, NULL);
    oncelog_topic_partition_offset_t offs[1] = {{"t", 0, 5}};

    /* Without a transactional.id. */
    oncelog_producer_t *plain = NULL;
    OK(oncelog_producer_new(store, NULL, &plain, &err));
    FAILS(ONCELOG_ERR_INVALID_CONFIG, "transactional.id", oncelog_init_transactions(plain, &err));
    FAILS(ONCELOG_ERR_INVALID_CONFIG, "transactional.id", oncelog_begin_transaction(plain, &err));
    FAILS(ONCELOG_ERR_INVALID_CONFIG, "transactional.id", oncelog_commit_transaction(plain, &err));
    FAILS(ONCELOG_ERR_INVALID_CONFIG, "transactional.id", oncelog_abort_transaction(plain, &err));
    FAILS(ONCELOG_ERR_INVALID_CONFIG, "transactional.id",
          oncelog_send_offsets_to_transaction(plain, offs, 1, "g", &err));
    oncelog_producer_destroy(plain);

    oncelog_producer_t *p = txn_producer(store, "wrong-state");
    FAILS(ONCELOG_ERR_INVALID_TXN_STATE, "init_transactions", oncelog_begin_transaction(p, &err));
    OK(oncelog_init_transactions(p, &err));
    FAILS(ONCELOG_ERR_INVALID_TXN_STATE, "no transaction", oncelog_commit_transaction(p, &err));
    FAILS(ONCELOG_ERR_INVALID_TXN_STATE, "no transaction", oncelog_abort_transaction(p, &err));
    FAILS(ONCELOG_ERR_INVALID_TXN_STATE, "begin_transaction",
          oncelog_produce(p, "t", 0, NULL, 0, "v", 1, NULL, NULL, &err));
    FAILS(ONCELOG_ERR_INVALID_TXN_STATE, "open transaction",
          oncelog_send_offsets_to_transaction(p, offs, 1, "g", &err));
    OK(oncelog_begin_transaction(p, &err));
    FAILS(ONCELOG_ERR_INVALID_TXN_STATE, "already open", oncelog_begin_transaction(p, &err));
    FAILS(ONCELOG_ERR_INVALID_TXN_STATE, NULL, oncelog_init_transactions(p, &err));
    /* Arguments are checked too. */
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "group_id",
          oncelog_send_offsets_to_transaction(p, offs, 1, NULL, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "offsets",
          oncelog_send_offsets_to_transaction(p, NULL, 2, "g", &err));
    offs[0].offset = -3;
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "offsets[0].offset",
          oncelog_send_offsets_to_transaction(p, offs, 1, "g", &err));
    offs[0].topic = NULL;
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "offsets[0].topic",
          oncelog_send_offsets_to_transaction(p, offs, 1, "g", &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "producer", oncelog_init_transactions(NULL, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "producer", oncelog_begin_transaction(NULL, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "producer", oncelog_commit_transaction(NULL, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "producer", oncelog_abort_transaction(NULL, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "producer",
          oncelog_send_offsets_to_transaction(NULL, offs, 1, "g", &err));
    OK(oncelog_send_offsets_to_transaction(p, NULL, 0, "g", &err)); /* nothing to add */
    OK(oncelog_commit_transaction(p, &err));
    oncelog_producer_destroy(p);
    oncelog_store_destroy(store);
}

void test_commit_shows_records_and_offsets_abort_hides_them(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = open_store_with_topic("out", 1, NULL);
    OK(oncelog_topic_create(store, "in", 1, NULL, &err));
    oncelog_producer_t *p = txn_producer(store, "pipeline");
    OK(oncelog_init_transactions(p, &err));

    OK(oncelog_begin_transaction(p, &err));
    CHECK(produce_str(p, "out", 0, NULL, "aborted-1") >= 0);
    oncelog_topic_partition_offset_t offs[1] = {{"in", 0, 41}};
    OK(oncelog_send_offsets_to_transaction(p, offs, 1, "g", &err));
    OK(oncelog_abort_transaction(p, &err));

    OK(oncelog_begin_transaction(p, &err));
    CHECK(produce_str(p, "out", 0, NULL, "committed-1") >= 0);
    oncelog_record_t recs[2] = {{NULL, 0, "committed-2", 11, NULL, 0, ONCELOG_TIMESTAMP_NOW},
                                {NULL, 0, "committed-3", 11, NULL, 0, ONCELOG_TIMESTAMP_NOW}};
    OK(oncelog_produce_batch(p, "out", 0, recs, 2, NULL, &err));
    offs[0].offset = 42;
    OK(oncelog_send_offsets_to_transaction(p, offs, 1, "g", &err));

    /* Open: a read_committed reader sees nothing yet, and the group has no offset. */
    oncelog_consumer_t *rc = reader(store, "out", 0, 1);
    char got[8][64];
    CHECK(drain(rc, 0, got, 8) == 0);
    const char *const gpairs[][2] = {{"group.id", "g"}};
    oncelog_conf_t *gconf = conf_of(1, gpairs);
    oncelog_consumer_t *group = NULL;
    OK(oncelog_consumer_new(store, gconf, &group, &err));
    oncelog_conf_destroy(gconf);
    int64_t committed = 0;
    OK(oncelog_consumer_committed(group, "in", 0, &committed, &err));
    CHECK(committed == ONCELOG_OFFSET_INVALID);

    OK(oncelog_commit_transaction(p, &err));
    CHECK(drain(rc, 200, got, 8) == 3);
    CHECK(strcmp(got[0], "committed-1") == 0 && strcmp(got[2], "committed-3") == 0);
    OK(oncelog_consumer_committed(group, "in", 0, &committed, &err));
    CHECK(committed == 42);
    /* read_uncommitted sees the aborted record too. */
    oncelog_consumer_t *ru = reader(store, "out", 0, 0);
    CHECK(drain(ru, 100, got, 8) == 4 && strcmp(got[0], "aborted-1") == 0);
    oncelog_consumer_destroy(ru);
    oncelog_consumer_destroy(rc);
    oncelog_consumer_destroy(group);
    oncelog_producer_destroy(p);
    oncelog_store_destroy(store);
}

void test_a_failed_send_requires_abort(void) {
    oncelog_error_t *err = NULL;
    const char *const pairs[][2] = {{"max.message.bytes", "1024"}};
    oncelog_conf_t *topic_conf = conf_of(1, pairs);
    oncelog_store_t *store = open_store_with_topic("t", 1, topic_conf);
    oncelog_conf_destroy(topic_conf);
    oncelog_producer_t *p = txn_producer(store, "doomed");
    OK(oncelog_init_transactions(p, &err));
    OK(oncelog_begin_transaction(p, &err));
    CHECK(produce_str(p, "t", 0, NULL, "kept back") >= 0);
    static char value[200];
    memset(value, 'v', sizeof value);
    oncelog_record_t recs[10];
    for (int i = 0; i < 10; i++) {
        oncelog_record_t r = {NULL, 0, value, sizeof value, NULL, 0, ONCELOG_TIMESTAMP_NOW};
        recs[i] = r;
    }
    /* Each record fits, the batch does not: the append fails inside the transaction. */
    FAILS(ONCELOG_ERR_RECORD_TOO_LARGE, NULL, oncelog_produce_batch(p, "t", 0, recs, 10, NULL, &err));
    oncelog_err_t rc = oncelog_commit_transaction(p, &err);
    CHECK(rc == ONCELOG_ERR_TRANSACTION_ABORTED);
    CHECK(err != NULL && oncelog_error_txn_requires_abort(err) && !oncelog_error_is_fatal(err) &&
          !oncelog_error_is_retriable(err));
    CHECK(err != NULL && strstr(oncelog_error_message(err), "abort") != NULL);
    oncelog_error_destroy(err);
    err = NULL;
    OK(oncelog_abort_transaction(p, &err));
    /* The producer goes on with a new transaction. */
    OK(oncelog_begin_transaction(p, &err));
    CHECK(produce_str(p, "t", 0, NULL, "next") >= 0);
    OK(oncelog_commit_transaction(p, &err));
    oncelog_consumer_t *c = reader(store, "t", 0, 1);
    char got[8][64];
    CHECK(drain(c, 200, got, 8) == 1 && strcmp(got[0], "next") == 0);
    oncelog_consumer_destroy(c);
    oncelog_producer_destroy(p);
    oncelog_store_destroy(store);
}

void test_a_newer_producer_fences_the_older_one(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = open_store_with_topic("t", 1, NULL);
    oncelog_producer_t *old = txn_producer(store, "same-id");
    OK(oncelog_init_transactions(old, &err));
    OK(oncelog_begin_transaction(old, &err));
    CHECK(produce_str(old, "t", 0, NULL, "zombie") >= 0);

    oncelog_producer_t *newer = txn_producer(store, "same-id");
    OK(oncelog_init_transactions(newer, &err)); /* aborts the old transaction */
    oncelog_err_t rc = oncelog_commit_transaction(old, &err);
    CHECK(rc == ONCELOG_ERR_PRODUCER_FENCED);
    CHECK(err != NULL && oncelog_error_is_fatal(err) && !oncelog_error_txn_requires_abort(err));
    oncelog_error_destroy(err);
    err = NULL;
    /* Fenced for good. */
    FAILS(ONCELOG_ERR_PRODUCER_FENCED, NULL, oncelog_begin_transaction(old, &err));

    OK(oncelog_begin_transaction(newer, &err));
    CHECK(produce_str(newer, "t", 0, NULL, "newer") >= 0);
    OK(oncelog_commit_transaction(newer, &err));
    oncelog_consumer_t *c = reader(store, "t", 0, 1);
    char got[8][64];
    CHECK(drain(c, 200, got, 8) == 1 && strcmp(got[0], "newer") == 0);
    oncelog_consumer_destroy(c);
    oncelog_producer_destroy(old);
    oncelog_producer_destroy(newer);
    oncelog_store_destroy(store);
}

static oncelog_consumer_t *member(oncelog_store_t *store) {
    oncelog_error_t *err = NULL;
    const char *const pairs[][2] = {
        {"group.id", "members"}, {"delivery", "exactly-once"}, {"auto.offset.reset", "earliest"}};
    oncelog_conf_t *conf = conf_of(3, pairs);
    oncelog_consumer_t *c = NULL;
    OK(oncelog_consumer_new(store, conf, &c, &err));
    oncelog_conf_destroy(conf);
    const char *topics[] = {"in"};
    OK(oncelog_consumer_subscribe(c, topics, 1, &err));
    return c;
}

void test_offsets_with_stale_group_metadata_are_refused(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = open_store_with_topic("in", 2, NULL);
    OK(oncelog_topic_create(store, "out", 1, NULL, &err));
    oncelog_producer_t *in = NULL;
    OK(oncelog_producer_new(store, NULL, &in, &err));
    CHECK(produce_str(in, "in", 0, NULL, "a") == 0);
    CHECK(produce_str(in, "in", 1, NULL, "b") == 0);
    oncelog_producer_destroy(in);

    oncelog_consumer_t *first = member(store);
    oncelog_message_t *m = NULL;
    OK(oncelog_consumer_poll(first, 2000, &m, &err));
    CHECK(m != NULL);
    oncelog_topic_partition_offset_t offs[1] = {{"in", oncelog_message_partition(m), 1}};
    oncelog_message_destroy(m);
    oncelog_group_metadata_t *stale = NULL;
    OK(oncelog_consumer_group_metadata(first, &stale, &err));

    /* A second member joins: the group moves to a new generation. */
    oncelog_consumer_t *second = member(store);
    OK(oncelog_consumer_poll(second, 300, &m, &err));
    oncelog_message_destroy(m);

    oncelog_producer_t *p = txn_producer(store, "stale");
    OK(oncelog_init_transactions(p, &err));
    OK(oncelog_begin_transaction(p, &err));
    CHECK(produce_str(p, "out", 0, NULL, "never") >= 0);
    FAILS(ONCELOG_ERR_STALE_GENERATION, "generation",
          oncelog_send_offsets_to_transaction_for(p, offs, 1, stale, &err));
    oncelog_err_t rc = oncelog_commit_transaction(p, &err);
    CHECK(rc == ONCELOG_ERR_TRANSACTION_ABORTED);
    CHECK(err != NULL && oncelog_error_txn_requires_abort(err));
    oncelog_error_destroy(err);
    err = NULL;
    OK(oncelog_abort_transaction(p, &err));
    /* The aborted batch is polled again from the committed offsets. */
    OK(oncelog_consumer_seek_to_committed(first, &err));

    /* Misuse. */
    oncelog_group_metadata_t *md = NULL;
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "consumer",
          oncelog_consumer_group_metadata(NULL, &md, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "metadata_out",
          oncelog_consumer_group_metadata(first, NULL, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "consumer", oncelog_consumer_seek_to_committed(NULL, &err));
    OK(oncelog_begin_transaction(p, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "metadata",
          oncelog_send_offsets_to_transaction_for(p, offs, 1, NULL, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "producer",
          oncelog_send_offsets_to_transaction_for(NULL, offs, 1, stale, &err));
    OK(oncelog_abort_transaction(p, &err));
    oncelog_consumer_t *lone = reader(store, "in", 0, 1);
    FAILS(ONCELOG_ERR_INVALID_CONFIG, "group.id", oncelog_consumer_group_metadata(lone, &md, &err));
    CHECK(md == NULL);
    oncelog_group_metadata_destroy(NULL);

    oncelog_group_metadata_destroy(stale);
    oncelog_consumer_destroy(lone);
    oncelog_consumer_destroy(second);
    oncelog_consumer_destroy(first);
    oncelog_producer_destroy(p);
    oncelog_store_destroy(store);
}
