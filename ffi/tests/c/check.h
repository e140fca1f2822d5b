/*
 * check.h - the C test suite's small framework: checks that count failures, the
 * expected-error checks every misuse test uses, and store helpers.
 */
#ifndef ONCELOG_CHECK_H
#define ONCELOG_CHECK_H

#include <oncelog.h>

#include <stddef.h>
#include <stdint.h>

/* Failed checks of the running test. */
extern int check_failures;

void check_true(int ok, const char *file, int line, const char *what);
/* rc must be OK; otherwise the error is shown and freed. */
void check_ok(oncelog_err_t rc, oncelog_error_t **err, const char *file, int line,
              const char *what);
/* rc must be `code`, with an error object of that code whose message contains
 * `part` (NULL: any non-empty message); the object is freed and *err reset. */
void check_fails(oncelog_err_t rc, oncelog_err_t code, const char *part, oncelog_error_t **err,
                 const char *file, int line, const char *what);

#define CHECK(cond) check_true(!!(cond), __FILE__, __LINE__, #cond)
/* Each test declares `oncelog_error_t *err = NULL;` and passes `&err` in `call`. */
#define OK(call) check_ok((call), &err, __FILE__, __LINE__, #call)
#define FAILS(code, part, call) check_fails((call), (code), (part), &err, __FILE__, __LINE__, #call)

/* A fresh empty directory for a store; removed (with its content) by cleanup. */
const char *temp_store_dir(void);
void remove_temp_dirs(void);

/* Opens a store in a fresh directory with topic `topic` of `partitions`
 * partitions (and the topic keys of `topic_conf`, which may be NULL). */
oncelog_store_t *open_store_with_topic(const char *topic, int32_t partitions,
                                       const oncelog_conf_t *topic_conf);

/* A conf of n key/value pairs (checked). */
oncelog_conf_t *conf_of(size_t n, const char *const pairs[][2]);

/* A consumer assigned to topic/partition from the beginning; read_committed if
 * asked. */
oncelog_consumer_t *reader(oncelog_store_t *store, const char *topic, int32_t partition,
                           int read_committed);

/* Polls `c` until nothing arrives for `idle_ms`; copies up to `cap` values (as
 * NUL-terminated strings of at most 63 bytes) into `values` and returns how many
 * messages came. */
size_t drain(oncelog_consumer_t *c, int32_t idle_ms, char values[][64], size_t cap);

/* Produces value `v` (a string) with key `k` (NULL: none) to topic/partition and
 * returns its offset (-1 on failure, counted as a failed check). */
int64_t produce_str(oncelog_producer_t *p, const char *topic, int32_t partition, const char *k,
                    const char *v);

/* The test functions, defined in the test_*.c files and run by main.c. */
#define ONCELOG_TESTS(X)                                                                           \
    X(version_macros_match_the_library)                                                            \
    X(error_codes_have_stable_distinct_names)                                                      \
    X(error_accessors_accept_null)                                                                 \
    X(a_null_err_out_still_returns_the_code)                                                       \
    X(conf_checks_keys_and_values_at_once)                                                         \
    X(conf_rejects_null_and_non_utf8)                                                              \
    X(store_open_checks_its_arguments)                                                             \
    X(topic_create_checks_name_partitions_and_existence)                                           \
    X(handles_may_be_destroyed_in_any_order)                                                       \
    X(producer_new_checks_arguments_and_config_combinations)                                       \
    X(produce_reports_partition_and_offset)                                                        \
    X(produce_keeps_null_and_empty_keys_and_values_apart)                                          \
    X(produce_rejects_bad_arguments_without_writing_outputs)                                       \
    X(produce_rejects_oversized_records)                                                           \
    X(produce_record_carries_headers_and_timestamp)                                                \
    X(produce_record_checks_every_field)                                                           \
    X(produce_batch_appends_all_or_nothing)                                                        \
    X(flush_appends_lingering_records)                                                             \
    X(producer_is_thread_safe)                                                                     \
    X(transaction_calls_in_the_wrong_state_fail)                                                   \
    X(commit_shows_records_and_offsets_abort_hides_them)                                           \
    X(a_failed_send_requires_abort)                                                                \
    X(a_newer_producer_fences_the_older_one)                                                       \
    X(offsets_with_stale_group_metadata_are_refused)                                               \
    X(consumer_new_checks_arguments_and_config)                                                    \
    X(poll_returns_messages_in_order_then_null_on_timeout)                                         \
    X(poll_and_assign_reject_bad_arguments)                                                        \
    X(message_accessors_borrow_from_the_message)                                                   \
    X(poll_batch_hands_out_up_to_capacity)                                                         \
    X(messages_outlive_their_consumer_on_any_thread)                                               \
    X(seek_and_position_follow_what_was_handed_out)                                                \
    X(commit_commits_only_what_was_handed_out)                                                     \
    X(close_commits_and_later_calls_fail_closed)                                                   \
    X(destroy_without_close_still_commits)                                                         \
    X(subscribe_shares_partitions_between_members)

#define DECLARE_TEST(name) void test_##name(void);
ONCELOG_TESTS(DECLARE_TEST)
#undef DECLARE_TEST

#endif
