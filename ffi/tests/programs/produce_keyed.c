/*
 * produce_keyed.c - a C producer process for the cross-process tests.
 *
 *   produce_keyed STORE TOPIC COUNT
 *
 * Produces COUNT records, key "key-<i>" and value "value-<i>", letting the
 * partitioner choose the partition, and prints "<i> <partition> <offset>" for each,
 * then "done".
 */
#include <oncelog.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s STORE TOPIC COUNT\n", argv[0]);
        return 2;
    }
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = NULL;
    oncelog_producer_t *producer = NULL;
    if (oncelog_store_open(argv[1], NULL, &store, &err) != ONCELOG_ERR_OK ||
        oncelog_producer_new(store, NULL, &producer, &err) != ONCELOG_ERR_OK) {
        fprintf(stderr, "setup: %s\n", oncelog_error_message(err));
        return 1;
    }
    long count = atol(argv[3]);
    for (long i = 0; i < count; i++) {
        char key[32], value[32];
        snprintf(key, sizeof key, "key-%ld", i);
        snprintf(value, sizeof value, "value-%ld", i);
        int32_t partition = -1;
        int64_t offset = -1;
        if (oncelog_produce(producer, argv[2], ONCELOG_PARTITION_ANY, key, strlen(key), value,
                            strlen(value), &partition, &offset, &err) != ONCELOG_ERR_OK) {
            fprintf(stderr, "produce %ld: %s\n", i, oncelog_error_message(err));
            return 1;
        }
        printf("%ld %d %lld\n", i, (int)partition, (long long)offset);
    }
    printf("done\n");
    oncelog_producer_destroy(producer);
    oncelog_store_destroy(store);
    return 0;
}
