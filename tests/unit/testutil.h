/* Helpers shared by the Check suites. */
#pragma once

#include <check.h>

#include "base/err.h"

/* Assert r >= 0, printing the struct err on failure (clar's cl_git_pass). */
#define ck_assert_ok(expr, errp)                                                          \
  do {                                                                                    \
    int r_ = (expr);                                                                      \
    char t_[2048];                                                                        \
    ck_assert_msg(r_ >= 0, "%s failed (%d): %s", #expr, r_, err_format((errp), t_, sizeof(t_))); \
  } while (0)

/* Run a suite; returns the process exit status. CK_FORK and timeouts follow
 * Check's environment variables. */
int testutil_run(Suite *s);

/* Make a fresh temporary directory; returns a malloc'd path. */
char *testutil_tmpdir(void);
/* rm -rf */
void testutil_rmrf(const char *path);
/* Write a file (creating parent directories). */
void testutil_write(const char *dir, const char *rel, const char *content);
/* Read a whole file into a malloc'd NUL-terminated string (NULL if missing). */
char *testutil_read(const char *path);
/* tests/data/<module>/<rel>, read whole (malloc'd); fails the test when
 * the vector is missing. */
char *testutil_vector(const char *module, const char *rel);
