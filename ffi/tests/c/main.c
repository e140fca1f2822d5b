/*
 * main.c - runs every test of the C suite (check.h lists them) and ends with the
 * line "N passed, M failed". Exit status 0 only if every test passed.
 *
 *   oncelog_c_tests [NAME_SUBSTRING]
 */
#include "check.h"

#include <stdio.h>
#include <string.h>

struct test {
    const char *name;
    void (*run)(void);
};

#define ENTRY(name) {#name, test_##name},
static const struct test tests[] = {ONCELOG_TESTS(ENTRY)};
#undef ENTRY

int main(int argc, char **argv) {
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (argc > 1 && strstr(tests[i].name, argv[1]) == NULL) {
            continue;
        }
        check_failures = 0;
        tests[i].run();
        remove_temp_dirs();
        if (check_failures == 0) {
            printf("ok   %s\n", tests[i].name);
            passed++;
        } else {
            printf("FAIL %s (%d failed checks)\n", tests[i].name, check_failures);
            failed++;
        }
        fflush(stdout);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
