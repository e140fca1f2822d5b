/*
 * consumer.c - a member of consumer group GROUP reading the topic "greetings".
 *
 *   consumer STORE_DIR GROUP [MAX]
 *
 * Joins the group (members in other processes share the partitions), prints
 * each message, and stops after MAX messages (default: no limit) or when nothing
 * arrives for 2 seconds. At-least-once: offsets are committed after processing
 * (at the next poll and on close), so a crash may repeat messages, never lose them.
 */
#include <oncelog.h>

#include <stdio.h>
#include <stdlib.h>

static int fail(const char *what, oncelog_error_t *err) {
    fprintf(stderr, "%s failed: %s: %s\n", what, oncelog_err_name(oncelog_error_code(err)),
            oncelog_error_message(err));
    oncelog_error_destroy(err);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s STORE_DIR GROUP [MAX]\n", argv[0]);
        return 2;
    }
    long max = argc > 3 ? atol(argv[3]) : -1;
    oncelog_error_t *err = NULL;

    oncelog_store_t *store = NULL;
    if (oncelog_store_open(argv[1], NULL, &store, &err) != ONCELOG_ERR_OK) {
        return fail("oncelog_store_open", err);
    }
    oncelog_conf_t *conf = oncelog_conf_new();
    const char *settings[][2] = {
        {"group.id", argv[2]},
        {"delivery", "at-least-once"},
        {"auto.offset.reset", "earliest"},
    };
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        if (oncelog_conf_set(conf, settings[i][0], settings[i][1], &err) != ONCELOG_ERR_OK) {
            return fail("oncelog_conf_set", err);
        }
    }
    oncelog_consumer_t *consumer = NULL;
    oncelog_err_t rc = oncelog_consumer_new(store, conf, &consumer, &err);
    oncelog_conf_destroy(conf);
    if (rc != ONCELOG_ERR_OK) {
        return fail("oncelog_consumer_new", err);
    }
    const char *topics[] = {"greetings"};
    if (oncelog_consumer_subscribe(consumer, topics, 1, &err) != ONCELOG_ERR_OK) {
        return fail("oncelog_consumer_subscribe", err);
    }

    long seen = 0;
    while (max < 0 || seen < max) {
        oncelog_message_t *msg = NULL;
        if (oncelog_consumer_poll(consumer, 2000, &msg, &err) != ONCELOG_ERR_OK) {
            return fail("oncelog_consumer_poll", err);
        }
        if (msg == NULL) {
            break; /* nothing for 2 s */
        }
        size_t key_len, value_len;
        const char *key = oncelog_message_key(msg, &key_len);
        const char *value = oncelog_message_value(msg, &value_len);
        printf("%s-%d@%lld %.*s: %.*s\n", oncelog_message_topic(msg),
               (int)oncelog_message_partition(msg), (long long)oncelog_message_offset(msg),
               (int)key_len, key ? key : "", (int)value_len, value ? value : "");
        oncelog_message_destroy(msg);
        seen++;
    }
    /* Commits what was processed and leaves the group. */
    if (oncelog_consumer_close(consumer, &err) != ONCELOG_ERR_OK) {
        return fail("oncelog_consumer_close", err);
    }
    printf("consumed %ld messages\n", seen);
    oncelog_consumer_destroy(consumer);
    oncelog_store_destroy(store);
    return 0;
}
