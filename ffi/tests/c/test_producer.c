/* test_producer.c - producing: single records, records with headers, batches,
 * lingering records, threads. */
#define _XOPEN_SOURCE 700

#include "check.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void test_producer_new_checks_arguments_and_config_combinations(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = open_store_with_topic("t", 1, NULL);
    oncelog_producer_t *p = (oncelog_producer_t *)&err;
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "store", oncelog_producer_new(NULL, NULL, &p, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "producer_out", oncelog_producer_new(store, NULL, NULL, &err));
    const char *const conflict[][2] = {{"transactional.id", "x"}, {"enable.idempotence", "false"}};
    oncelog_conf_t *conf = conf_of(2, conflict);
    FAILS(ONCELOG_ERR_INVALID_CONFIG, "idempotence", oncelog_producer_new(store, conf, &p, &err));
    oncelog_conf_destroy(conf);
    const char *const no_retries[][2] = {{"retries", "0"}};
    conf = conf_of(1, no_retries);
    FAILS(ONCELOG_ERR_INVALID_CONFIG, "retries", oncelog_producer_new(store, conf, &p, &err));
    oncelog_conf_destroy(conf);
    CHECK(p == (oncelog_producer_t *)&err);
    oncelog_producer_destroy(NULL);
    oncelog_store_destroy(store);
}

void test_produce_reports_partition_and_offset(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = open_store_with_topic("t", 3, NULL);
    oncelog_producer_t *p = NULL;
    OK(oncelog_producer_new(store, NULL, &p, &err));
    int64_t next[3] = {0, 0, 0};
    int32_t first_partition = -1;
    for (int i = 0; i < 12; i++) {
        int32_t part = -7;
        int64_t off = -7;
        OK(oncelog_produce(p, "t", ONCELOG_PARTITION_ANY, "same-key", 8, "v", 1, &part, &off, &err));
        CHECK(part >= 0 && part < 3);
        if (first_partition < 0) {
            first_partition = part;
        }
        CHECK(part == first_partition); /* one key, one partition */
        if (part >= 0 && part < 3) {
            CHECK(off == next[part]);
            next[part]++;
        }
    }
    /* An explicit partition is kept, and offsets there continue. */
    int32_t part = -7;
    int64_t off = -7;
    int32_t other = (first_partition + 1) % 3;
    OK(oncelog_produce(p, "t", other, "same-key", 8, "v", 1, &part, &off, &err));
    CHECK(part == other && off == 0);
    /* Outputs are optional. */
    OK(oncelog_produce(p, "t", other, NULL, 0, "v", 1, NULL, NULL, &err));
    CHECK(produce_str(p, "t", other, NULL, "v") == 2);
    oncelog_producer_destroy(p);
    oncelog_store_destroy(store);
}

void test_produce_keeps_null_and_empty_keys_and_values_apart(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = open_store_with_topic("t", 1, NULL);
    oncelog_producer_t *p = NULL;
    OK(oncelog_producer_new(store, NULL, &p, &err));
    OK(oncelog_produce(p, "t", 0, NULL, 0, NULL, 0, NULL, NULL, &err)); /* null key, tombstone */
    OK(oncelog_produce(p, "t", 0, "", 0, "", 0, NULL, NULL, &err));     /* empty key and value */
    oncelog_consumer_t *c = reader(store, "t", 0, 0);
    oncelog_message_t *m = NULL;
    size_t len = 99;
    OK(oncelog_consumer_poll(c, 1000, &m, &err));
    CHECK(m != NULL);
    CHECK(oncelog_message_key(m, &len) == NULL && len == 0);
    len = 99;
    CHECK(oncelog_message_value(m, &len) == NULL && len == 0);
    oncelog_message_destroy(m);
    OK(oncelog_consumer_poll(c, 1000, &m, &err));
    CHECK(m != NULL);
    len = 99;
    CHECK(oncelog_message_key(m, &len) != NULL && len == 0);
    len = 99;
    CHECK(oncelog_message_value(m, &len) != NULL && len == 0);
    oncelog_message_destroy(m);
    oncelog_consumer_destroy(c);
    oncelog_producer_destroy(p);
    oncelog_store_destroy(store);
}

void test_produce_rejects_bad_arguments_without_writing_outputs(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = open_store_with_topic("t", 2, NULL);
    oncelog_producer_t *p = NULL;
    OK(oncelog_producer_new(store, NULL, &p, &err));
    int32_t part = -42;
    int64_t off = -42;
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "producer",
          oncelog_produce(NULL, "t", 0, NULL, 0, "v", 1, &part, &off, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "topic",
          oncelog_produce(p, NULL, 0, NULL, 0, "v", 1, &part, &off, &err));
    FAILS(ONCELOG_ERR_UNKNOWN_TOPIC, NULL,
          oncelog_produce(p, "missing", 0, NULL, 0, "v", 1, &part, &off, &err));
    FAILS(ONCELOG_ERR_UNKNOWN_PARTITION, "2 partitions",
          oncelog_produce(p, "t", 7, NULL, 0, "v", 1, &part, &off, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "partition",
          oncelog_produce(p, "t", -5, NULL, 0, "v", 1, &part, &off, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "key",
          oncelog_produce(p, "t", 0, NULL, 3, "v", 1, &part, &off, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "value",
          oncelog_produce(p, "t", 0, NULL, 0, NULL, 8, &part, &off, &err));
    const char bad_topic[] = {'t', (char)0xc3, 0};
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "UTF-8",
          oncelog_produce(p, bad_topic, 0, NULL, 0, "v", 1, &part, &off, &err));
    CHECK(part == -42 && off == -42);
    /* Nothing was appended by the failed calls. */
    CHECK(produce_str(p, "t", 0, NULL, "first") == 0);
    oncelog_producer_destroy(p);
    oncelog_store_destroy(store);
}

void test_produce_rejects_oversized_records(void) {
    oncelog_error_t *err = NULL;
    const char *const pairs[][2] = {{"max.message.bytes", "1024"}};
    oncelog_conf_t *topic_conf = conf_of(1, pairs);
    oncelog_store_t *store = open_store_with_topic("t", 1, topic_conf);
    oncelog_conf_destroy(topic_conf);
    oncelog_producer_t *p = NULL;
    OK(oncelog_producer_new(store, NULL, &p, &err));
    static char big[4096];
    memset(big, 'b', sizeof big);
    int64_t off = -42;
    FAILS(ONCELOG_ERR_RECORD_TOO_LARGE, "1024",
          oncelog_produce(p, "t", 0, NULL, 0, big, sizeof big, NULL, &off, &err));
    FAILS(ONCELOG_ERR_RECORD_TOO_LARGE, "1024",
          oncelog_produce(p, "t", 0, big, 1500, "v", 1, NULL, &off, &err));
    /* A length no record can have is refused before the buffer is read. */
    FAILS(ONCELOG_ERR_RECORD_TOO_LARGE, "value",
          oncelog_produce(p, "t", 0, NULL, 0, "tiny", (size_t)INT32_MAX + 1, NULL, &off, &err));
    FAILS(ONCELOG_ERR_RECORD_TOO_LARGE, "key",
          oncelog_produce(p, "t", 0, "k", SIZE_MAX, "v", 1, NULL, &off, &err));
    CHECK(off == -42);
    CHECK(produce_str(p, "t", 0, NULL, "fits") == 0);
    oncelog_producer_destroy(p);
    oncelog_store_destroy(store);
}

void test_produce_record_carries_headers_and_timestamp(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = open_store_with_topic("t", 1, NULL);
    oncelog_producer_t *p = NULL;
    OK(oncelog_producer_new(store, NULL, &p, &err));
    oncelog_header_t headers[3] = {
        {"trace", "abc", 3},
        {"empty", "", 0},
        {"null", NULL, 0},
    };
    /* An hour ago: a timestamp older than retention.ms would let the segment be
     * deleted as soon as it rolls, as in Kafka. */
    int64_t stamp = (int64_t)time(NULL) * 1000 - 3600 * 1000 + 123;
    oncelog_record_t rec = {"k", 1, "value", 5, headers, 3, stamp};
    int32_t part = -1;
    int64_t off = -1;
    OK(oncelog_produce_record(p, "t", ONCELOG_PARTITION_ANY, &rec, &part, &off, &err));
    CHECK(part == 0 && off == 0);
    oncelog_record_t plain = {NULL, 0, "now", 3, NULL, 0, ONCELOG_TIMESTAMP_NOW};
    OK(oncelog_produce_record(p, "t", 0, &plain, NULL, &off, &err));
    CHECK(off == 1);

    oncelog_consumer_t *c = reader(store, "t", 0, 0);
    oncelog_message_t *m = NULL;
    OK(oncelog_consumer_poll(c, 1000, &m, &err));
    CHECK(m != NULL);
    CHECK(oncelog_message_timestamp(m) == stamp);
    CHECK(oncelog_message_header_count(m) == 3);
    const char *key = NULL;
    const void *value = NULL;
    size_t len = 99;
    OK(oncelog_message_header(m, 0, &key, &value, &len, &err));
    CHECK(key && strcmp(key, "trace") == 0 && len == 3 && value && memcmp(value, "abc", 3) == 0);
    OK(oncelog_message_header(m, 1, &key, &value, &len, &err));
    CHECK(key && strcmp(key, "empty") == 0 && value != NULL && len == 0);
    OK(oncelog_message_header(m, 2, &key, &value, &len, &err));
    CHECK(key && strcmp(key, "null") == 0 && value == NULL && len == 0);
    OK(oncelog_message_header(m, 2, &key, NULL, NULL, &err)); /* value outputs optional */
    oncelog_message_destroy(m);
    OK(oncelog_consumer_poll(c, 1000, &m, &err));
    CHECK(m != NULL && oncelog_message_header_count(m) == 0);
    CHECK(oncelog_message_timestamp(m) > stamp + 3000 * 1000); /* the append time */
    oncelog_message_destroy(m);
    oncelog_consumer_destroy(c);
    oncelog_producer_destroy(p);
    oncelog_store_destroy(store);
}

void test_produce_record_checks_every_field(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = open_store_with_topic("t", 1, NULL);
    oncelog_producer_t *p = NULL;
    OK(oncelog_producer_new(store, NULL, &p, &err));
    const char bad[] = {(char)0xfe, 0};
    oncelog_header_t null_key[1] = {{NULL, "v", 1}};
    oncelog_header_t bad_key[1] = {{bad, "v", 1}};
    oncelog_header_t bad_value[1] = {{"h", NULL, 4}};
    oncelog_record_t r = {NULL, 0, "v", 1, null_key, 1, ONCELOG_TIMESTAMP_NOW};
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "record",
          oncelog_produce_record(p, "t", 0, NULL, NULL, NULL, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "headers[0].key",
          oncelog_produce_record(p, "t", 0, &r, NULL, NULL, &err));
    r.headers = bad_key;
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "UTF-8", oncelog_produce_record(p, "t", 0, &r, NULL, NULL, &err));
    r.headers = bad_value;
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "headers[0].value",
          oncelog_produce_record(p, "t", 0, &r, NULL, NULL, &err));
    r.headers = NULL;
    r.header_count = 2;
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "headers",
          oncelog_produce_record(p, "t", 0, &r, NULL, NULL, &err));
    r.header_count = 0;
    r.timestamp = -5;
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "timestamp",
          oncelog_produce_record(p, "t", 0, &r, NULL, NULL, &err));
    r.timestamp = 0;
    r.key_len = 3; /* with a NULL key */
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "key", oncelog_produce_record(p, "t", 0, &r, NULL, NULL, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "producer",
          oncelog_produce_record(NULL, "t", 0, &r, NULL, NULL, &err));
    CHECK(produce_str(p, "t", 0, NULL, "first") == 0);
    oncelog_producer_destroy(p);
    oncelog_store_destroy(store);
}

void test_produce_batch_appends_all_or_nothing(void) {
    oncelog_error_t *err = NULL;
    const char *const pairs[][2] = {{"max.message.bytes", "4096"}};
    oncelog_conf_t *topic_conf = conf_of(1, pairs);
    oncelog_store_t *store = open_store_with_topic("t", 2, topic_conf);
    oncelog_conf_destroy(topic_conf);
    oncelog_producer_t *p = NULL;
    OK(oncelog_producer_new(store, NULL, &p, &err));
    char values[20][16];
    oncelog_record_t recs[20];
    for (int i = 0; i < 20; i++) {
        snprintf(values[i], sizeof values[i], "batch-%d", i);
        oncelog_record_t r = {NULL, 0, values[i], strlen(values[i]), NULL, 0, ONCELOG_TIMESTAMP_NOW};
        recs[i] = r;
    }
    int64_t base = -1;
    OK(oncelog_produce_batch(p, "t", 1, recs, 20, &base, &err));
    CHECK(base == 0);
    OK(oncelog_produce_batch(p, "t", 1, recs, 5, &base, &err));
    CHECK(base == 20);
    OK(oncelog_produce_batch(p, "t", 1, recs, 1, NULL, &err));

    base = -42;
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "count", oncelog_produce_batch(p, "t", 1, recs, 0, &base, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "records",
          oncelog_produce_batch(p, "t", 1, NULL, 3, &base, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "partition",
          oncelog_produce_batch(p, "t", ONCELOG_PARTITION_ANY, recs, 3, &base, &err));
    FAILS(ONCELOG_ERR_UNKNOWN_PARTITION, NULL, oncelog_produce_batch(p, "t", 9, recs, 3, &base, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "producer",
          oncelog_produce_batch(NULL, "t", 1, recs, 3, &base, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "count",
          oncelog_produce_batch(p, "t", 1, recs, SIZE_MAX / 2, &base, &err));
    /* One bad record refuses the whole batch, naming it. */
    recs[5].key_len = 4; /* with a NULL key */
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "records[5].key",
          oncelog_produce_batch(p, "t", 1, recs, 20, &base, &err));
    recs[5].key_len = 0;
    /* A batch larger than max.message.bytes. */
    static char big[512];
    memset(big, 'x', sizeof big);
    for (int i = 0; i < 20; i++) {
        recs[i].value = big;
        recs[i].value_len = sizeof big;
    }
    FAILS(ONCELOG_ERR_RECORD_TOO_LARGE, "4096", oncelog_produce_batch(p, "t", 1, recs, 20, &base, &err));
    CHECK(base == -42);
    /* Near the limit the exact size decides: 7 of these fit in 4096 bytes, 8 do not. */
    OK(oncelog_produce_batch(p, "t", 0, recs, 7, &base, &err));
    FAILS(ONCELOG_ERR_RECORD_TOO_LARGE, "4096", oncelog_produce_batch(p, "t", 0, recs, 8, &base, &err));
    /* The producer is still usable after refused batches. */
    CHECK(produce_str(p, "t", 1, NULL, "after") == 26);

    oncelog_consumer_t *c = reader(store, "t", 1, 0);
    char got[32][64];
    CHECK(drain(c, 100, got, 32) == 27);
    CHECK(strcmp(got[0], "batch-0") == 0 && strcmp(got[19], "batch-19") == 0);
    CHECK(strcmp(got[20], "batch-0") == 0 && strcmp(got[26], "after") == 0);
    oncelog_consumer_destroy(c);
    oncelog_producer_destroy(p);
    oncelog_store_destroy(store);
}

void test_flush_appends_lingering_records(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = open_store_with_topic("t", 1, NULL);
    const char *const pairs[][2] = {{"linger.ms", "60000"}, {"batch.size", "1000000"}};
    oncelog_conf_t *conf = conf_of(2, pairs);
    oncelog_producer_t *p = NULL;
    OK(oncelog_producer_new(store, conf, &p, &err));
    oncelog_conf_destroy(conf);
    oncelog_consumer_t *c = reader(store, "t", 0, 0);
    char got[8][64];
    OK(oncelog_produce(p, "t", 0, NULL, 0, "a", 1, NULL, NULL, &err));
    OK(oncelog_produce(p, "t", 0, NULL, 0, "b", 1, NULL, NULL, &err));
    CHECK(drain(c, 0, got, 8) == 0); /* still buffered */
    OK(oncelog_producer_flush(p, &err));
    CHECK(drain(c, 100, got, 8) == 2);
    /* Asking for the offset appends at once. */
    int64_t off = -1;
    OK(oncelog_produce(p, "t", 0, NULL, 0, "c", 1, NULL, &off, &err));
    CHECK(off == 2);
    CHECK(drain(c, 100, got, 8) == 1 && strcmp(got[0], "c") == 0);
    OK(oncelog_producer_flush(p, &err));
    FAILS(ONCELOG_ERR_INVALID_ARGUMENT, "producer", oncelog_producer_flush(NULL, &err));
    /* Destroying a lingering producer appends what it holds. */
    OK(oncelog_produce(p, "t", 0, NULL, 0, "d", 1, NULL, NULL, &err));
    oncelog_producer_destroy(p);
    CHECK(drain(c, 100, got, 8) == 1 && strcmp(got[0], "d") == 0);
    oncelog_consumer_destroy(c);
    oncelog_store_destroy(store);
}

#define THREADS 4
#define PER_THREAD 300

struct job {
    oncelog_producer_t *producer;
    int id;
    int failures;
    int64_t offsets[PER_THREAD];
};

static void *produce_many(void *arg) {
    struct job *job = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char value[32];
        snprintf(value, sizeof value, "%d:%d", job->id, i);
        oncelog_error_t *e = NULL;
        if (oncelog_produce(job->producer, "t", 0, NULL, 0, value, strlen(value), NULL,
                            &job->offsets[i], &e) != ONCELOG_ERR_OK) {
            job->failures++;
            oncelog_error_destroy(e);
        }
    }
    return NULL;
}

void test_producer_is_thread_safe(void) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = open_store_with_topic("t", 1, NULL);
    oncelog_producer_t *p = NULL;
    OK(oncelog_producer_new(store, NULL, &p, &err));
    static struct job jobs[THREADS];
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) {
        jobs[t].producer = p;
        jobs[t].id = t;
        jobs[t].failures = 0;
        CHECK(pthread_create(&threads[t], NULL, produce_many, &jobs[t]) == 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        CHECK(jobs[t].failures == 0);
        for (int i = 1; i < PER_THREAD; i++) {
            CHECK(jobs[t].offsets[i] > jobs[t].offsets[i - 1]); /* each thread in order */
        }
    }
    /* Every offset was handed out once. */
    static unsigned char seen[THREADS * PER_THREAD];
    memset(seen, 0, sizeof seen);
    for (int t = 0; t < THREADS; t++) {
        for (int i = 0; i < PER_THREAD; i++) {
            int64_t o = jobs[t].offsets[i];
            CHECK(o >= 0 && o < THREADS * PER_THREAD && !seen[o]);
            if (o >= 0 && o < THREADS * PER_THREAD) {
                seen[o] = 1;
            }
        }
    }
    CHECK(produce_str(p, "t", 0, NULL, "last") == THREADS * PER_THREAD);
    oncelog_producer_destroy(p);
    oncelog_store_destroy(store);
}
