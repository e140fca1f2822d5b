/*
 * txn_producer.c - a transactional C producer process for the cross-process tests.
 *
 *   txn_producer STORE TRANSACTIONAL_ID TOPIC COUNT TAG hang|commit
 *
 * Takes the transactional id over, begins a transaction and produces COUNT
 * records "<TAG>-<i>" spread over the topic's partitions (by key). With "hang" it
 * then prints "ready" and waits to be killed, the transaction still open; with
 * "commit" it commits and prints "committed".
 */
#define _POSIX_C_SOURCE 200809L

#include <oncelog.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *what, oncelog_error_t *err) {
    fprintf(stderr, "%s: %s: %s\n", what, oncelog_err_name(oncelog_error_code(err)),
            oncelog_error_message(err));
    oncelog_error_destroy(err);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s STORE TRANSACTIONAL_ID TOPIC COUNT TAG hang|commit\n", argv[0]);
        return 2;
    }
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = NULL;
    if (oncelog_store_open(argv[1], NULL, &store, &err) != ONCELOG_ERR_OK) {
        return fail("open", err);
    }
    oncelog_conf_t *conf = oncelog_conf_new();
    if (oncelog_conf_set(conf, "transactional.id", argv[2], &err) != ONCELOG_ERR_OK) {
        return fail("conf", err);
    }
    oncelog_producer_t *producer = NULL;
    if (oncelog_producer_new(store, conf, &producer, &err) != ONCELOG_ERR_OK) {
        return fail("producer", err);
    }
    oncelog_conf_destroy(conf);
    if (oncelog_init_transactions(producer, &err) != ONCELOG_ERR_OK) {
        return fail("init_transactions", err);
    }
    if (oncelog_begin_transaction(producer, &err) != ONCELOG_ERR_OK) {
        return fail("begin_transaction", err);
    }
    long count = atol(argv[4]);
    for (long i = 0; i < count; i++) {
        char key[32], value[64];
        snprintf(key, sizeof key, "k%ld", i);
        snprintf(value, sizeof value, "%s-%ld", argv[5], i);
        if (oncelog_produce(producer, argv[3], ONCELOG_PARTITION_ANY, key, strlen(key), value,
                            strlen(value), NULL, NULL, &err) != ONCELOG_ERR_OK) {
            return fail("produce", err);
        }
    }
    if (strcmp(argv[6], "hang") == 0) {
        printf("ready\n");
        fflush(stdout);
        for (;;) {
            pause(); /* until SIGKILL */
        }
    }
    if (oncelog_commit_transaction(producer, &err) != ONCELOG_ERR_OK) {
        return fail("commit_transaction", err);
    }
    printf("committed\n");
    oncelog_producer_destroy(producer);
    oncelog_store_destroy(store);
    return 0;
}
