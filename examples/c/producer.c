/*
 * producer.c - produce keyed records to the topic "greetings".
 *
 *   producer STORE_DIR [COUNT]
 *
 * Opens (or creates) the store, creates the topic with 3 partitions if it does
 * not exist, and produces COUNT records (default 10). Kafka's partitioner picks
 * the partition from the key, so records with the same key stay in order.
 */
#include <oncelog.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints a failed call's error, frees it, and returns 1 (the exit status). */
static int fail(const char *what, oncelog_error_t *err) {
    fprintf(stderr, "%s failed: %s: %s\n", what, oncelog_err_name(oncelog_error_code(err)),
            oncelog_error_message(err));
    oncelog_error_destroy(err);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s STORE_DIR [COUNT]\n", argv[0]);
        return 2;
    }
    int count = argc > 2 ? atoi(argv[2]) : 10;
    oncelog_error_t *err = NULL;

    oncelog_store_t *store = NULL;
    if (oncelog_store_open(argv[1], NULL, &store, &err) != ONCELOG_ERR_OK) {
        return fail("oncelog_store_open", err);
    }
    oncelog_err_t rc = oncelog_topic_create(store, "greetings", 3, NULL, &err);
    if (rc == ONCELOG_ERR_TOPIC_EXISTS) {
        oncelog_error_destroy(err); /* fine: another run created it */
    } else if (rc != ONCELOG_ERR_OK) {
        return fail("oncelog_topic_create", err);
    }

    oncelog_conf_t *conf = oncelog_conf_new();
    if (oncelog_conf_set(conf, "acks", "written", &err) != ONCELOG_ERR_OK) {
        return fail("oncelog_conf_set", err);
    }
    oncelog_producer_t *producer = NULL;
    rc = oncelog_producer_new(store, conf, &producer, &err);
    oncelog_conf_destroy(conf); /* the producer copied what it needs */
    if (rc != ONCELOG_ERR_OK) {
        return fail("oncelog_producer_new", err);
    }

    for (int i = 0; i < count; i++) {
        char key[32], value[64];
        snprintf(key, sizeof key, "user-%d", i % 4);
        snprintf(value, sizeof value, "hello number %d", i);
        int32_t partition;
        int64_t offset;
        if (oncelog_produce(producer, "greetings", ONCELOG_PARTITION_ANY, key, strlen(key), value,
                            strlen(value), &partition, &offset, &err) != ONCELOG_ERR_OK) {
            return fail("oncelog_produce", err);
        }
        printf("%s -> greetings-%d@%lld\n", key, (int)partition, (long long)offset);
    }
    if (oncelog_producer_flush(producer, &err) != ONCELOG_ERR_OK) {
        return fail("oncelog_producer_flush", err);
    }
    printf("produced %d records\n", count);
    oncelog_producer_destroy(producer);
    oncelog_store_destroy(store);
    return 0;
}
