/* check.c - the framework of check.h. */
#define _XOPEN_SOURCE 700

#include "check.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int check_failures = 0;

void check_true(int ok, const char *file, int line, const char *what) {
    if (!ok) {
        fprintf(stderr, "  %s:%d: check failed: %s\n", file, line, what);
        check_failures++;
    }
}

void check_ok(oncelog_err_t rc, oncelog_error_t **err, const char *file, int line,
              const char *what) {
    if (rc != ONCELOG_ERR_OK) {
        fprintf(stderr, "  %s:%d: %s returned %s: %s\n", file, line, what, oncelog_err_name(rc),
                *err ? oncelog_error_message(*err) : "(no error object)");
        check_failures++;
        oncelog_error_destroy(*err);
        *err = NULL;
    } else if (*err != NULL) {
        fprintf(stderr, "  %s:%d: %s succeeded but wrote an error object\n", file, line, what);
        check_failures++;
    }
}

void check_fails(oncelog_err_t rc, oncelog_err_t code, const char *part, oncelog_error_t **err,
                 const char *file, int line, const char *what) {
    if (rc != code) {
        fprintf(stderr, "  %s:%d: %s returned %s, expected %s (%s)\n", file, line, what,
                oncelog_err_name(rc), oncelog_err_name(code),
                *err ? oncelog_error_message(*err) : "no error object");
        check_failures++;
    } else if (*err == NULL) {
        fprintf(stderr, "  %s:%d: %s returned %s without an error object\n", file, line, what,
                oncelog_err_name(rc));
        check_failures++;
    } else {
        const char *msg = oncelog_error_message(*err);
        if (oncelog_error_code(*err) != code) {
            fprintf(stderr, "  %s:%d: %s: the error object has code %s\n", file, line, what,
                    oncelog_err_name(oncelog_error_code(*err)));
            check_failures++;
        }
        if (msg == NULL || msg[0] == '\0' || (part != NULL && strstr(msg, part) == NULL)) {
            fprintf(stderr, "  %s:%d: %s: message \"%s\" lacks \"%s\"\n", file, line, what,
                    msg ? msg : "(null)", part ? part : "(anything)");
            check_failures++;
        }
    }
    oncelog_error_destroy(*err);
    *err = NULL;
}

static char *dirs[256];
static size_t ndirs = 0;

const char *temp_store_dir(void) {
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/oncelog-ctest-XXXXXX", base && base[0] ? base : "/tmp");
    char *dir = mkdtemp(tmpl);
    if (dir == NULL || ndirs == sizeof dirs / sizeof dirs[0]) {
        perror("mkdtemp");
        exit(2);
    }
    dirs[ndirs] = malloc(strlen(dir) + 1);
    strcpy(dirs[ndirs], dir);
    return dirs[ndirs++];
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void remove_temp_dirs(void) {
    for (size_t i = 0; i < ndirs; i++) {
        nftw(dirs[i], remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(dirs[i]);
    }
    ndirs = 0;
}

oncelog_store_t *open_store_with_topic(const char *topic, int32_t partitions,
                                       const oncelog_conf_t *topic_conf) {
    oncelog_error_t *err = NULL;
    oncelog_store_t *store = NULL;
    OK(oncelog_store_open(temp_store_dir(), NULL, &store, &err));
    if (store != NULL) {
        OK(oncelog_topic_create(store, topic, partitions, topic_conf, &err));
    }
    return store;
}

oncelog_conf_t *conf_of(size_t n, const char *const pairs[][2]) {
    oncelog_error_t *err = NULL;
    oncelog_conf_t *conf = oncelog_conf_new();
    CHECK(conf != NULL);
    for (size_t i = 0; i < n; i++) {
        OK(oncelog_conf_set(conf, pairs[i][0], pairs[i][1], &err));
    }
    return conf;
}

oncelog_consumer_t *reader(oncelog_store_t *store, const char *topic, int32_t partition,
                           int read_committed) {
    oncelog_error_t *err = NULL;
    const char *const pairs[][2] = {
        {"auto.offset.reset", "earliest"},
        {"isolation.level", read_committed ? "read_committed" : "read_uncommitted"},
    };
    oncelog_conf_t *conf = conf_of(2, pairs);
    oncelog_consumer_t *c = NULL;
    OK(oncelog_consumer_new(store, conf, &c, &err));
    oncelog_conf_destroy(conf);
    oncelog_topic_partition_t tp = {topic, partition};
    OK(oncelog_consumer_assign(c, &tp, 1, &err));
    return c;
}

size_t drain(oncelog_consumer_t *c, int32_t idle_ms, char values[][64], size_t cap) {
    oncelog_error_t *err = NULL;
    size_t n = 0;
    for (;;) {
        oncelog_message_t *m = NULL;
        OK(oncelog_consumer_poll(c, idle_ms, &m, &err));
        if (m == NULL) {
            return n;
        }
        if (n < cap) {
            size_t len = 0;
            const char *v = oncelog_message_value(m, &len);
            len = len < 63 ? len : 63;
            if (v != NULL) {
                memcpy(values[n], v, len);
            }
            values[n][len] = '\0';
        }
        n++;
        oncelog_message_destroy(m);
    }
}

int64_t produce_str(oncelog_producer_t *p, const char *topic, int32_t partition, const char *k,
                    const char *v) {
    oncelog_error_t *err = NULL;
    int64_t offset = -1;
    OK(oncelog_produce(p, topic, partition, k, k ? strlen(k) : 0, v, strlen(v), NULL, &offset,
                       &err));
    return offset;
}
