/*
 * demo_child.c - a child process of `oncelog demo --lang c`: the producer or the
 * consumer of one delivery mode, doing exactly what the Rust child does, so that
 * either may be killed and restarted in the other language.
 *
 *   demo_child --dir STORE --mode MODE --role ROLE --records N
 *
 * MODE: at-most-once | at-least-once | exactly-once; ROLE: producer | consumer.
 * The producer writes the numbers 0..N-1 to "input" in chunks of 100 (noting its
 * progress in STORE/producer.next before a chunk at most once, after it at least
 * once, or in the log itself through transactions exactly once), then creates
 * STORE/producer.done. The consumer turns each input record into an "output"
 * record, committing offsets as the mode says, until the producer is done and the
 * input is drained.
 */
#include <oncelog.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 100
#define BATCH 100

static const char *dir, *mode;
static long long records;

static void die(const char *what, oncelog_error_t *err) {
    fprintf(stderr, "demo_child (%s): %s: %s\n", mode, what,
            err ? oncelog_error_message(err) : "failed");
    oncelog_error_destroy(err);
    exit(1);
}

#define TRY(call)                                                                                  \
    do {                                                                                           \
        oncelog_error_t *err_ = NULL;                                                              \
        if ((call) != ONCELOG_ERR_OK) {                                                            \
            die(#call, err_);                                                                      \
        }                                                                                          \
    } while (0)
#define E (&err_)

static void path_of(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", dir, name);
}

static long long read_number(const char *name) {
    char path[4096];
    path_of(path, sizeof path, name);
    FILE *f = fopen(path, "r");
    long long n = 0;
    if (f != NULL) {
        if (fscanf(f, "%lld", &n) != 1) {
            n = 0;
        }
        fclose(f);
    }
    return n;
}

/* Replaces the number (a rename: a kill leaves the old or the new). */
static void write_number(const char *name, long long n) {
    char path[4096], tmp[4200];
    path_of(path, sizeof path, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%lld", n) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        die("writing the producer's progress", NULL);
    }
}

static int exists(const char *name) {
    char path[4096];
    path_of(path, sizeof path, name);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        fclose(f);
        return 1;
    }
    return 0;
}

static oncelog_conf_t *conf(const char *key1, const char *value1, const char *key2,
                            const char *value2) {
    oncelog_conf_t *c = oncelog_conf_new();
    const char *pairs[][2] = {{"delivery", mode}, {key1, value1}, {key2, value2}};
    for (size_t i = 0; i < 3; i++) {
        if (pairs[i][0] != NULL) {
            TRY(oncelog_conf_set(c, pairs[i][0], pairs[i][1], E));
        }
    }
    return c;
}

/* Input records that committed transactions hold (each number once, in order). */
static long long committed_input(oncelog_store_t *store) {
    oncelog_conf_t *c = oncelog_conf_new();
    TRY(oncelog_conf_set(c, "isolation.level", "read_committed", E));
    TRY(oncelog_conf_set(c, "auto.offset.reset", "earliest", E));
    oncelog_consumer_t *reader = NULL;
    TRY(oncelog_consumer_new(store, c, &reader, E));
    oncelog_conf_destroy(c);
    oncelog_topic_partition_t tp = {"input", 0};
    TRY(oncelog_consumer_assign(reader, &tp, 1, E));
    long long n = 0;
    for (;;) {
        oncelog_message_t *batch[BATCH];
        size_t got = 0;
        TRY(oncelog_consumer_poll_batch(reader, 0, batch, BATCH, &got, E));
        if (got == 0) {
            break;
        }
        for (size_t i = 0; i < got; i++) {
            oncelog_message_destroy(batch[i]);
        }
        n += (long long)got;
    }
    oncelog_consumer_destroy(reader);
    return n;
}

static void produce(oncelog_store_t *store) {
    int exactly = strcmp(mode, "exactly-once") == 0;
    oncelog_conf_t *c = conf(exactly ? "transactional.id" : NULL, "demo-producer", NULL, NULL);
    oncelog_producer_t *p = NULL;
    TRY(oncelog_producer_new(store, c, &p, E));
    oncelog_conf_destroy(c);
    long long next;
    if (exactly) {
        TRY(oncelog_init_transactions(p, E));
        next = committed_input(store);
    } else {
        next = read_number("producer.next");
    }
    while (next < records) {
        long long end = next + CHUNK < records ? next + CHUNK : records;
        if (strcmp(mode, "at-most-once") == 0) {
            write_number("producer.next", end); /* never sent again, whatever happens */
        }
        if (exactly) {
            TRY(oncelog_begin_transaction(p, E));
        }
        int failed = 0;
        for (long long i = next; i < end && !failed; i++) {
            char v[32];
            int len = snprintf(v, sizeof v, "%lld", i);
            oncelog_error_t *err = NULL;
            failed = oncelog_produce(p, "input", 0, NULL, 0, v, (size_t)len, NULL, NULL, &err) !=
                     ONCELOG_ERR_OK;
            if (failed && strcmp(mode, "at-most-once") != 0) {
                die("oncelog_produce", err);
            }
            oncelog_error_destroy(err);
        }
        if (exactly) {
            TRY(oncelog_commit_transaction(p, E));
        } else {
            oncelog_error_t *err = NULL;
            if (oncelog_producer_flush(p, &err) != ONCELOG_ERR_OK &&
                strcmp(mode, "at-least-once") == 0) {
                die("oncelog_producer_flush", err);
            }
            oncelog_error_destroy(err);
        }
        if (strcmp(mode, "at-least-once") == 0) {
            write_number("producer.next", end); /* acknowledged: not sent again */
        }
        next = end;
    }
    oncelog_producer_destroy(p);
    char path[4096];
    path_of(path, sizeof path, "producer.done");
    FILE *f = fopen(path, "w");
    if (f == NULL || fclose(f) != 0) {
        die("creating producer.done", NULL);
    }
}

static void consume(oncelog_store_t *store) {
    int exactly = strcmp(mode, "exactly-once") == 0;
    oncelog_conf_t *cc = conf("group.id", "demo", "auto.offset.reset", "earliest");
    oncelog_consumer_t *consumer = NULL;
    TRY(oncelog_consumer_new(store, cc, &consumer, E));
    oncelog_conf_destroy(cc);
    oncelog_topic_partition_t tp = {"input", 0};
    TRY(oncelog_consumer_assign(consumer, &tp, 1, E));
    oncelog_conf_t *pc = conf(exactly ? "transactional.id" : NULL, "demo-consumer", NULL, NULL);
    oncelog_producer_t *p = NULL;
    TRY(oncelog_producer_new(store, pc, &p, E));
    oncelog_conf_destroy(pc);
    if (exactly) {
        TRY(oncelog_init_transactions(p, E));
    }
    for (;;) {
        /* Checked before polling: once the producer is done, an empty poll means
         * the input is drained. */
        int done = exists("producer.done");
        oncelog_message_t *batch[BATCH];
        size_t n = 0;
        TRY(oncelog_consumer_poll_batch(consumer, 50, batch, BATCH, &n, E));
        if (n == 0) {
            if (done) {
                break;
            }
            continue;
        }
        if (exactly) {
            TRY(oncelog_begin_transaction(p, E));
        }
        int64_t next = 0;
        for (size_t i = 0; i < n; i++) {
            size_t len;
            const void *value = oncelog_message_value(batch[i], &len);
            TRY(oncelog_produce(p, "output", 0, NULL, 0, value, len, NULL, NULL, E));
            next = oncelog_message_offset(batch[i]) + 1;
            oncelog_message_destroy(batch[i]);
        }
        if (!exactly) {
            /* at-most-once: committed by the poll, before this; at-least-once: by the
             * next poll, after it. */
            TRY(oncelog_producer_flush(p, E));
            continue;
        }
        oncelog_topic_partition_offset_t offsets[1] = {{"input", 0, next}};
        oncelog_group_metadata_t *group = NULL;
        TRY(oncelog_consumer_group_metadata(consumer, &group, E));
        oncelog_error_t *err = NULL;
        oncelog_err_t rc = oncelog_send_offsets_to_transaction_for(p, offsets, 1, group, &err);
        oncelog_group_metadata_destroy(group);
        if (rc == ONCELOG_ERR_OK) {
            rc = oncelog_commit_transaction(p, &err);
        }
        if (rc != ONCELOG_ERR_OK) {
            if (!oncelog_error_txn_requires_abort(err)) {
                die("the transaction", err);
            }
            oncelog_error_destroy(err);
            TRY(oncelog_abort_transaction(p, E));
            TRY(oncelog_consumer_seek_to_committed(consumer, E));
        }
    }
    TRY(oncelog_consumer_close(consumer, E));
    oncelog_consumer_destroy(consumer);
    oncelog_producer_destroy(p);
}

int main(int argc, char **argv) {
    const char *role = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--dir") == 0) {
            dir = argv[i + 1];
        } else if (strcmp(argv[i], "--mode") == 0) {
            mode = argv[i + 1];
        } else if (strcmp(argv[i], "--role") == 0) {
            role = argv[i + 1];
        } else if (strcmp(argv[i], "--records") == 0) {
            records = atoll(argv[i + 1]);
        }
    }
    if (dir == NULL || mode == NULL || role == NULL || records <= 0) {
        fprintf(stderr, "usage: %s --dir STORE --mode MODE --role ROLE --records N\n", argv[0]);
        return 2;
    }
    oncelog_store_t *store = NULL;
    TRY(oncelog_store_open(dir, NULL, &store, E));
    if (strcmp(role, "producer") == 0) {
        produce(store);
    } else {
        consume(store);
    }
    oncelog_store_destroy(store);
    return 0;
}
