/* Helpers shared by the Check suites; see testutil.h. */
#include "testutil.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/mem.h"

int testutil_run(Suite *s) {
  SRunner *sr = srunner_create(s);
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

char *testutil_tmpdir(void) {
  const char *base = getenv("TMPDIR");
  char *tmpl = xasprintf("%s/egressd-test-XXXXXX", base ? base : "/tmp");

  ck_assert_ptr_nonnull(mkdtemp(tmpl));
  return tmpl;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

void testutil_rmrf(const char *path) {
  if (path)
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void testutil_write(const char *dir, const char *rel, const char *content) {
  char *path = path_join(dir, rel), *parent = path_dirname(path);
  FILE *f;

  ck_assert_int_ge(dir_make_all(parent, 0755, NULL), 0);
  f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(content, f);
  fclose(f);
  free(parent);
  free(path);
}

char *testutil_vector(const char *module, const char *rel) {
  char *p = xasprintf(TEST_DATA_DIR "/%s/%s", module, rel);
  char *s = testutil_read(p);

  ck_assert_msg(s, "missing test vector %s", p);
  free(p);
  return s;
}

char *testutil_read(const char *path) {
  struct buf b = BUF_INIT;

  if (file_read_all(path, 64u << 20, &b, NULL) < 0) {
    buf_dispose(&b);
    return NULL;
  }
  return buf_detach(&b, NULL);
}
