/* test_basics.c - versions, error codes and objects, confs and stores. */
#define _XOPEN_SOURCE 700

#include "check.h"

#include <stdio.h>
#include <string.h>

void test_version_macros_match_the_library(void) {
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", ONCELOG_VERSION_MAJOR, ONCELOG_VERSION_MINOR,
             ONCELOG_VERSION_PATCH);
    CHECK(strcmp(oncelog_version(), want) == 0);
    CHECK(ONCELOG_VERSION_MAJOR >= 0 && ONCELOG_VERSION_MINOR >= 0 && ONCELOG_VERSION_PATCH >= 0);
}

void test_error_codes_have_stable_distinct_names(void) {
    static const struct {
        oncelog_err_t code;
        int value;
        const char *name;
    } known[] = {
        {ONCELOG_ERR_OK, 0, "ok"},
        {ONCELOG_ERR_INVALID_ARGUMENT, 1, "invalid_argument"},
        {ONCELOG_ERR_INVALID_CONFIG, 2, "invalid_config"},
        {ONCELOG_ERR_INVALID_TOPIC_NAME, 3, "invalid_topic_name"},
        {ONCELOG_ERR_TOPIC_EXISTS, 4, "topic_exists"},
        {ONCELOG_ERR_UNKNOWN_TOPIC, 5, "unknown_topic"},
        {ONCELOG_ERR_UNKNOWN_PARTITION, 6, "unknown_partition"},
        {ONCELOG_ERR_OFFSET_OUT_OF_RANGE, 7, "offset_out_of_range"},
        {ONCELOG_ERR_RECORD_TOO_LARGE, 8, "record_too_large"},
        {ONCELOG_ERR_NO_SPACE, 9, "no_space"},
        {ONCELOG_ERR_CORRUPT, 10, "corrupt"},
        {ONCELOG_ERR_INCOMPATIBLE_FORMAT, 11, "incompatible_format"},
        {ONCELOG_ERR_TIMEOUT, 12, "timeout"},
        {ONCELOG_ERR_FORKED, 13, "forked"},
        {ONCELOG_ERR_POISONED, 14, "poisoned"},
        {ONCELOG_ERR_CLOSED, 15, "closed"},
        {ONCELOG_ERR_OUT_OF_ORDER_SEQUENCE, 16, "out_of_order_sequence"},
        {ONCELOG_ERR_PRODUCER_FENCED, 17, "producer_fenced"},
        {ONCELOG_ERR_INVALID_TXN_STATE, 18, "invalid_txn_state"},
        {ONCELOG_ERR_TRANSACTION_ABORTED, 19, "transaction_aborted"},
        {ONCELOG_ERR_STALE_GENERATION, 20, "stale_generation"},
        {ONCELOG_ERR_IO, 21, "io"},
        {ONCELOG_ERR_PANIC, 98, "panic"},
        {ONCELOG_ERR_UNKNOWN, 99, "unknown"},
    };
    size_t n = sizeof known / sizeof known[0];
    for (size_t i = 0; i < n; i++) {
        /* The numbers are the ABI: they never change. */
        CHECK(known[i].code == known[i].value);
        CHECK(strcmp(oncelog_err_name(known[i].code), known[i].name) == 0);
        CHECK(oncelog_err_str(known[i].code) != NULL && oncelog_err_str(known[i].code)[0] != '\0');
        for (size_t j = 0; j < i; j++) {
            CHECK(strcmp(known[i].name, known[j].name) != 0);
            CHECK(strcmp(oncelog_err_str(known[i].code), oncelog_err_str(known[j].code)) != 0);
        }
    }
    CHECK(strcmp(oncelog_err_name(12345), "unknown") == 0);
    CHECK(strcmp(oncelog_err_name(-1), "unknown") == 0);
    CHECK(oncelog_err_str(-7) != NULL);
}

void test_error_accessors_accept_null(void) {
    CHECK(oncelog_error_code(NULL) == ONCELOG_ERR_INVALID_ARGUMENT);
    CHECK(oncelog_error_message(NULL) != NULL && oncelog_error_message(NULL)[0] == '\0');
    CHECK(!oncelog_error_is_retriable(NULL));
    CHECK(!oncelog_error_is_fatal(NULL));
    CHECK(!oncelog_error_txn_requires_abort(NULL));
    oncelog_error_destroy(NULL);

    /* A plain argument error has no flags set. */
    oncelog_error_t *err = NULL;
    CHECK(oncelog_conf_set(NULL, "acks", "1", &err) == ONCELOG_ERR_INVALID_ARGUMENT);
    CHECK(err != NULL);
    CHECK(!oncelog_error_is_retriable(err) && !oncelog_error_is_fatal(err) &&
          !oncelog_error_txn_requires_abort(err));
    oncelog_error_destroy(err);
}

void test_a_null_err_out_still_returns_the_code(void) {
    oncelog_conf_t *conf = oncelog_conf_new();
    CHECK(oncelog_conf_set(conf, "no.such.key", "1", NULL) == ONCELOG_ERR_INVALID_CONFIG);
    CHECK(oncelog_store_open(NULL, NULL, NULL, NULL) == ONCELOG_ERR_INVALID_ARGUMENT);
    CHECK(oncelog_conf_set(conf, "acks", "all", NULL) == ONCELOG_ERR_OK);
    oncelog_conf_destroy(conf);
}

void test_conf_checks_keys_and_values_at_once(void) {
    oncelog_error_t *err = NULL;
    oncelog_conf_t *conf = oncelog_conf_new();
    CHECK(conf != NULL);
    /* Keys of producers, consumers, topics and the delivery preset. */
    OK(oncelog_conf_set(conf, "acks", "all", &err));
    OK(oncelog_conf_set(conf, "linger.ms", "5", &err));
    OK(oncelog_conf_set(conf, "group.id", "g", &err));
    OK(oncelog_conf_set(conf, "segment.bytes", "65536", &err));
    OK(oncelog_conf_set(conf, "delivery", "exactly-once", &err));
    OK(oncelog_conf_set(conf, "acks", "1", &err)); /* replaces */

    FAILS(ONCELOG_ERR_INVALID_CONFIG, "no.such.key", oncelog_conf_set(conf, "no.such.key", "1", &err));
    FAILS(ONCELOG_ERR_INVALID_CONFIG, "acks", oncelog_conf_set(conf, "acks", "2", &err));
    FAILS(ONCELOG_ERR_INVALID_CONFIG, "linger.ms", oncelog_conf_set(conf, "linger.ms", "-1", &err));
    FAILS(ONCELOG_ERR_INVALID_CONFIG, "isolation.level",
          oncelog_conf_set(conf, "isolation.level", "maybe", &err));
    FAILS(ONCELOG_ERR_INVALID_CONFIG, "segment.bytes",
          oncelog_conf_set(conf, "segment.bytes", "12", &err));
    FAILS(ONCELOG_ERR_INVALID_CONFIG, "delivery", oncelog_conf_set(conf, "delivery", "twice", &err));
    FAILS(ONCELOG_ERR_INVALID_CONFIG, "transactional.id",
          oncelog_conf_set(conf, "transactional.id", "", &err));
    oncelog_conf_destroy(conf);
    oncelog_conf_destroy(NULL);
}

void test_conf_rejects_null_and_non_utf8(void) {
    oncelog_error_t *err = NULL;
    oncelog_conf_t *conf = oncelog_conf_new();
    const char bad[] = {'a', (char)0xff, 'b', 0};
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "conf", oncelog_conf_set(NULL, "acks", "1", &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "key", oncelog_conf_set(conf, NULL, "1", &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "value", oncelog_conf_set(conf, "acks", NULL, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "UTF-8", oncelog_conf_set(conf, bad, "1", &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "UTF-8", oncelog_conf_set(conf, "group.id", bad, &err));
    oncelog_conf_destroy(conf);
}

void test_store_open_checks_its_arguments(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = (oncelog_store_t *)&err; /* a sentinel: must stay untouched */
    const char *dir = temp_store_dir();
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "path", oncelog_store_open(NULL, NULL, &store, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "path", oncelog_store_open("", NULL, &store, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "store_out", oncelog_store_open(dir, NULL, NULL, &err));
    CHECK(store == (oncelog_store_t *)&err);

    /* A regular file where the directory should be. */
    char file[600];
    snprintf(file, sizeof file, "%s/not-a-dir", dir);
    FILE *f = fopen(file, "w");
    CHECK(f != NULL);
    if (f) {
        fclose(f);
    }
    FAILS(ONCELOG_ERR_IO, NULL, oncelog_store_open(file, NULL, &store, &err));
    CHECK(store == (oncelog_store_t *)&err);

    /* Two handles on one directory, and a conf of topic defaults. */
    const char *const pairs[][2] = {{"segment.bytes", "65536"}, {"acks", "all"}};
    oncelog_conf_t *conf = conf_of(2, pairs);
    oncelog_store_t *a = NULL, *b = NULL;
    OK(oncelog_store_open(dir, conf, &a, &err));
    OK(oncelog_store_open(dir, NULL, &b, &err));
    oncelog_conf_destroy(conf);
    CHECK(a != NULL && b != NULL && a != b);
    OK(oncelog_topic_create(a, "t", 1, NULL, &err));
    FAILS(ONCELOG_ERR_TOPIC_EXISTS, "t", oncelog_topic_create(b, "t", 1, NULL, &err));
    oncelog_store_destroy(a);
    oncelog_store_destroy(b);
    oncelog_store_destroy(NULL);
}

void test_topic_create_checks_name_partitions_and_existence(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = NULL;
    OK(oncelog_store_open(temp_store_dir(), NULL, &store, &err));
    OK(oncelog_topic_create(store, "orders", 4, NULL, &err));
    FAILS(ONCELOG_ERR_TOPIC_EXISTS, NULL, oncelog_topic_create(store, "orders", 4, NULL, &err));
    FAILS(ONCELOG_ERR_INVALID_TOPIC_NAME, NULL,
          oncelog_topic_create(store, "no spaces!", 1, NULL, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "partitions", oncelog_topic_create(store, "z", 0, NULL, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "partitions", oncelog_topic_create(store, "z", -3, NULL, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "store", oncelog_topic_create(NULL, "z", 1, NULL, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "topic", oncelog_topic_create(store, NULL, 1, NULL, &err));
    /* Topic keys of the conf apply; others are left alone. */
    const char *const pairs[][2] = {{"max.message.bytes", "1024"}, {"group.id", "ignored"}};
    oncelog_conf_t *conf = conf_of(2, pairs);
    OK(oncelog_topic_create(store, "small", 1, conf, &err));
    oncelog_conf_destroy(conf);
    oncelog_producer_t *p = NULL;
    OK(oncelog_producer_new(store, NULL, &p, &err));
    char big[2048];
    memset(big, 'x', sizeof big);
    FAILS(ONCELOG_ERR_RECORD_TOO_LARGE, "max.message.bytes",
          oncelog_produce(p, "small", 0, NULL, 0, big, sizeof big, NULL, NULL, &err));
    OK(oncelog_produce(p, "orders", 0, NULL, 0, big, sizeof big, NULL, NULL, &err));
    oncelog_producer_destroy(p);
    oncelog_store_destroy(store);
}

void test_handles_may_be_destroyed_in_any_order(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = open_store_with_topic("t", 1, NULL);
    oncelog_producer_t *p = NULL;
    oncelog_consumer_t *c = reader(store, "t", 0, 0);
    OK(oncelog_producer_new(store, NULL, &p, &err));
    oncelog_store_destroy(store); /* the producer and consumer keep it open */
    CHECK(produce_str(p, "t", 0, NULL, "still open") == 0);
    char values[4][64];
    CHECK(drain(c, 100, values, 4) == 1);
    CHECK(strcmp(values[0], "still open") == 0);
    oncelog_consumer_destroy(c);
    oncelog_producer_destroy(p);
}
