/*
 * bench_c.c - the batched-append and read-all workloads through the C API.
 *
 *   bench_c STORE_DIR RECORDS BATCH
 *
 * Generates RECORDS records of a 16-byte key and a 100-byte value (the same bytes
 * as the Rust side: xorshift64 seeded with 42), then, on a fresh store in
 * STORE_DIR (removed before the store closes, so no clean-shutdown sync lands in a
 * later measurement):
 *   append     oncelog_produce_batch of BATCH records at a time (the records'
 *              structs are filled inside the timing, as a producer would)
 *   read_batch a consumer from offset 0, oncelog_consumer_poll_batch of up to
 *              BATCH messages, summing every value byte
 *   read_one   the same with oncelog_consumer_poll, one message per call
 * and prints one line "append_ns=.. read_batch_ns=.. read_one_ns=.. sum=..".
 * Driven by ffi/examples/bench_c_vs_rust.rs (make bench-c).
 */
#define _XOPEN_SOURCE 700

#include <oncelog.h>

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_LEN 16
#define VALUE_LEN 100

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what, oncelog_error_t *err) {
    fprintf(stderr, "bench_c: %s: %s\n", what, oncelog_error_message(err));
    exit(1);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static oncelog_consumer_t *reader(oncelog_store_t *store, const char *batch) {
    oncelog_error_t *err = NULL;
    oncelog_conf_t *conf = oncelog_conf_new();
    oncelog_consumer_t *c = NULL;
    oncelog_topic_partition_t tp = {"bench", 0};
    if (oncelog_conf_set(conf, "auto.offset.reset", "earliest", &err) ||
        oncelog_conf_set(conf, "max.poll.records", batch, &err) ||
        oncelog_consumer_new(store, conf, &c, &err) || oncelog_consumer_assign(c, &tp, 1, &err)) {
        die("consumer", err);
    }
    oncelog_conf_destroy(conf);
    return c;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s STORE_DIR RECORDS BATCH\n", argv[0]);
        return 2;
    }
    size_t n = (size_t)atol(argv[2]);
    size_t batch = (size_t)atol(argv[3]);
    unsigned char *keys = malloc(n * KEY_LEN);
    unsigned char *values = malloc(n * VALUE_LEN);
    oncelog_record_t *recs = malloc(batch * sizeof *recs);
    oncelog_message_t **msgs = malloc(batch * sizeof *msgs);
    if (!keys || !values || !recs || !msgs) {
        return 1;
    }
    uint64_t x = 42;
    for (size_t i = 0; i < n * KEY_LEN; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        keys[i] = (unsigned char)x;
    }
    for (size_t i = 0; i < n * VALUE_LEN; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        values[i] = (unsigned char)x;
    }

    oncelog_error_t *err = NULL;
    oncelog_store_t *store = NULL;
    oncelog_producer_t *producer = NULL;
    if (oncelog_store_open(argv[1], NULL, &store, &err) ||
        oncelog_topic_create(store, "bench", 1, NULL, &err) ||
        oncelog_producer_new(store, NULL, &producer, &err)) {
        die("setup", err);
    }

    int64_t t0 = now_ns();
    for (size_t start = 0; start < n; start += batch) {
        size_t m = n - start < batch ? n - start : batch;
        for (size_t j = 0; j < m; j++) {
            size_t i = start + j;
            oncelog_record_t r = {keys + i * KEY_LEN, KEY_LEN, values + i * VALUE_LEN, VALUE_LEN,
                                  NULL, 0, ONCELOG_TIMESTAMP_NOW};
            recs[j] = r;
        }
        if (oncelog_produce_batch(producer, "bench", 0, recs, m, NULL, &err)) {
            die("produce_batch", err);
        }
    }
    int64_t append_ns = now_ns() - t0;

    uint64_t sum_batch = 0, sum_one = 0;
    oncelog_consumer_t *c = reader(store, argv[3]);
    size_t seen = 0;
    t0 = now_ns();
    while (seen < n) {
        size_t got = 0;
        if (oncelog_consumer_poll_batch(c, 1000, msgs, batch, &got, &err)) {
            die("poll_batch", err);
        }
        for (size_t j = 0; j < got; j++) {
            size_t len;
            const unsigned char *v = oncelog_message_value(msgs[j], &len);
            for (size_t k = 0; k < len; k++) {
                sum_batch += v[k];
            }
            oncelog_message_destroy(msgs[j]);
        }
        seen += got;
        if (got == 0) {
            break;
        }
    }
    int64_t read_batch_ns = now_ns() - t0;
    oncelog_consumer_destroy(c);
    if (seen != n) {
        fprintf(stderr, "bench_c: poll_batch read %zu of %zu\n", seen, n);
        return 1;
    }

    c = reader(store, argv[3]);
    seen = 0;
    t0 = now_ns();
    while (seen < n) {
        oncelog_message_t *m = NULL;
        if (oncelog_consumer_poll(c, 1000, &m, &err)) {
            die("poll", err);
        }
        if (m == NULL) {
            break;
        }
        size_t len;
        const unsigned char *v = oncelog_message_value(m, &len);
        for (size_t k = 0; k < len; k++) {
            sum_one += v[k];
        }
        oncelog_message_destroy(m);
        seen++;
    }
    int64_t read_one_ns = now_ns() - t0;
    oncelog_consumer_destroy(c);
    if (seen != n || sum_one != sum_batch) {
        fprintf(stderr, "bench_c: poll read %zu of %zu (sums %llu, %llu)\n", seen, n,
                (unsigned long long)sum_one, (unsigned long long)sum_batch);
        return 1;
    }

    nftw(argv[1], remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    oncelog_producer_destroy(producer);
    oncelog_store_destroy(store);
    printf("append_ns=%lld read_batch_ns=%lld read_one_ns=%lld sum=%llu\n", (long long)append_ns,
           (long long)read_batch_ns, (long long)read_one_ns, (unsigned long long)sum_batch);
    free(keys);
    free(values);
    free(recs);
    free(msgs);
    return 0;
}
