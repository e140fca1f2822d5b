/*
 * exactly_once.c - consume "greetings", transform, produce to "shouts", exactly once.
 *
 *   exactly_once STORE_DIR
 *
 * Each batch of input messages becomes one transaction: the transformed records
 * and the input offsets (sent to the transaction instead of committed by the
 * consumer) commit together or not at all. Killed at any point and restarted, it
 * resumes after the last committed transaction: every input record appears in
 * "shouts" exactly once for read_committed readers. Stops when the input is idle
 * for 2 seconds.
 */
#include <oncelog.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define BATCH 64

static int fail(const char *what, oncelog_error_t *err) {
    fprintf(stderr, "%s failed: %s: %s\n", what, oncelog_err_name(oncelog_error_code(err)),
            oncelog_error_message(err));
    oncelog_error_destroy(err);
    return 1;
}

static oncelog_conf_t *conf_of(const char *const pairs[][2], size_t n, oncelog_error_t **err) {
    oncelog_conf_t *conf = oncelog_conf_new();
    for (size_t i = 0; i < n; i++) {
        if (oncelog_conf_set(conf, pairs[i][0], pairs[i][1], err) != ONCELOG_ERR_OK) {
            oncelog_conf_destroy(conf);
            return NULL;
        }
    }
    return conf;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s STORE_DIR\n", argv[0]);
        return 2;
    }
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = NULL;
    if (oncelog_store_open(argv[1], NULL, &store, &err) != ONCELOG_ERR_OK) {
        return fail("oncelog_store_open", err);
    }
    oncelog_err_t rc = oncelog_topic_create(store, "shouts", 3, NULL, &err);
    if (rc == ONCELOG_ERR_TOPIC_EXISTS) {
        oncelog_error_destroy(err);
    } else if (rc != ONCELOG_ERR_OK) {
        return fail("oncelog_topic_create", err);
    }

    /* exactly-once: read_committed input, offsets committed only by transactions. */
    const char *const consumer_pairs[][2] = {
        {"group.id", "shouter"},
        {"delivery", "exactly-once"},
        {"auto.offset.reset", "earliest"},
    };
    const char *const producer_pairs[][2] = {{"transactional.id", "shouter-1"}};
    oncelog_conf_t *cconf = conf_of(consumer_pairs, 3, &err);
    oncelog_conf_t *pconf = cconf ? conf_of(producer_pairs, 1, &err) : NULL;
    if (pconf == NULL) {
        oncelog_conf_destroy(cconf);
        return fail("oncelog_conf_set", err);
    }
    oncelog_consumer_t *consumer = NULL;
    oncelog_producer_t *producer = NULL;
    rc = oncelog_consumer_new(store, cconf, &consumer, &err);
    if (rc == ONCELOG_ERR_OK) {
        rc = oncelog_producer_new(store, pconf, &producer, &err);
    }
    oncelog_conf_destroy(cconf);
    oncelog_conf_destroy(pconf);
    if (rc != ONCELOG_ERR_OK) {
        return fail("creating the consumer and producer", err);
    }
    const char *topics[] = {"greetings"};
    if (oncelog_consumer_subscribe(consumer, topics, 1, &err) != ONCELOG_ERR_OK) {
        return fail("oncelog_consumer_subscribe", err);
    }
    /* Fences any earlier instance and finishes what it left open. */
    if (oncelog_init_transactions(producer, &err) != ONCELOG_ERR_OK) {
        return fail("oncelog_init_transactions", err);
    }

    long total = 0;
    for (;;) {
        oncelog_message_t *batch[BATCH];
        size_t n = 0;
        if (oncelog_consumer_poll_batch(consumer, 2000, batch, BATCH, &n, &err) != ONCELOG_ERR_OK) {
            return fail("oncelog_consumer_poll_batch", err);
        }
        if (n == 0) {
            break;
        }
        /* The next offset to consume, per input partition. */
        oncelog_topic_partition_offset_t next[BATCH];
        size_t parts = 0;
        rc = oncelog_begin_transaction(producer, &err);
        for (size_t i = 0; i < n && rc == ONCELOG_ERR_OK; i++) {
            size_t len;
            const char *value = oncelog_message_value(batch[i], &len);
            char shout[256];
            len = len < sizeof shout ? len : sizeof shout;
            for (size_t j = 0; j < len; j++) {
                shout[j] = (char)toupper((unsigned char)value[j]);
            }
            size_t key_len;
            const void *key = oncelog_message_key(batch[i], &key_len);
            rc = oncelog_produce(producer, "shouts", ONCELOG_PARTITION_ANY, key, key_len, shout,
                                 len, NULL, NULL, &err);
            int32_t partition = oncelog_message_partition(batch[i]);
            size_t p = 0;
            while (p < parts && next[p].partition != partition) {
                p++;
            }
            next[p].topic = "greetings";
            next[p].partition = partition;
            next[p].offset = oncelog_message_offset(batch[i]) + 1;
            parts = p == parts ? parts + 1 : parts;
        }
        for (size_t i = 0; i < n; i++) {
            oncelog_message_destroy(batch[i]);
        }
        /* With the group metadata, offsets are refused if the group moved on
         * without this consumer (it was away past session.timeout.ms). */
        oncelog_group_metadata_t *group = NULL;
        if (rc == ONCELOG_ERR_OK) {
            rc = oncelog_consumer_group_metadata(consumer, &group, &err);
        }
        if (rc == ONCELOG_ERR_OK) {
            rc = oncelog_send_offsets_to_transaction_for(producer, next, parts, group, &err);
        }
        oncelog_group_metadata_destroy(group);
        if (rc == ONCELOG_ERR_OK) {
            rc = oncelog_commit_transaction(producer, &err);
        }
        if (rc != ONCELOG_ERR_OK && oncelog_error_txn_requires_abort(err)) {
            /* Nothing of this batch is visible: abort, and poll it again from the
             * committed offsets (if this consumer still owns its partitions). */
            oncelog_error_destroy(err);
            err = NULL;
            rc = oncelog_abort_transaction(producer, &err);
            if (rc == ONCELOG_ERR_OK) {
                rc = oncelog_consumer_seek_to_committed(consumer, &err);
            }
            if (rc == ONCELOG_ERR_OK) {
                continue;
            }
        }
        if (rc != ONCELOG_ERR_OK) {
            /* A restart resumes from the offsets of the last committed transaction. */
            return fail("the transaction", err);
        }
        total += (long)n;
    }
    printf("transformed %ld messages\n", total);
    oncelog_consumer_close(consumer, NULL);
    oncelog_consumer_destroy(consumer);
    oncelog_producer_destroy(producer);
    oncelog_store_destroy(store);
    return 0;
}
