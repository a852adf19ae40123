/* Unit tests for daemon/base. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <termios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "base/log.h"
#include "base/redact.h"
#include "testutil.h"

START_TEST(test_err_keeps_first_cause) {
  struct err e = ERR_INIT;
  char t[256];

  ck_assert_int_eq(err_set(&e, -ENOENT, "first %d", 1), -ENOENT);
  ck_assert_int_eq(err_set(&e, -EINVAL, "second"), -EINVAL);
  ck_assert_str_eq(e.msg, "first 1");
  ck_assert_int_eq(e.code, -ENOENT);
  err_set_pos(&e, "a.yaml", 3, 7);
  err_set_pos(&e, "b.yaml", 9, 9);
  err_prefix(&e, "loading %s", "repo");
  ck_assert_str_eq(err_format(&e, t, sizeof(t)), "a.yaml:3:7: loading repo: first 1");
  err_clear(&e);
  ck_assert(!err_isset(&e));
  /* NULL err is allowed everywhere */
  ck_assert_int_eq(err_set(NULL, -EIO, "x"), -EIO);
  /* a non-negative code is a caller bug and never reported as success */
  ck_assert_int_eq(err_set(&e, 0, "bug"), -EIO);
}
END_TEST

START_TEST(test_err_errno_appends_strerror) {
  struct err e = ERR_INIT;

  err_set_errno(&e, -ENOENT, "cannot open '%s'", "x");
  ck_assert_str_eq(e.msg, "cannot open 'x': No such file or directory");
  ck_assert_int_eq(e.src, ERR_SRC_SYS);
}
END_TEST

START_TEST(test_str_to_int_rejects_garbage_and_range) {
  int v = 42;
  int64_t w;
  uint64_t u;

  ck_assert_int_eq(str_to_int("80", 1, 65535, &v), 0);
  ck_assert_int_eq(v, 80);
  ck_assert_int_eq(str_to_int("0", 1, 65535, &v), -ERANGE);
  ck_assert_int_eq(str_to_int("65536", 1, 65535, &v), -ERANGE);
  ck_assert_int_eq(str_to_int("8o", 1, 65535, &v), -EINVAL);
  ck_assert_int_eq(str_to_int(" 8", 1, 65535, &v), -EINVAL);
  ck_assert_int_eq(str_to_int("", 1, 65535, &v), -EINVAL);
  ck_assert_int_eq(v, 80); /* untouched on failure */
  ck_assert_int_eq(str_to_i64("-9223372036854775808", INT64_MIN, INT64_MAX, &w), 0);
  ck_assert(w == INT64_MIN);
  ck_assert_int_eq(str_to_i64("9223372036854775808", INT64_MIN, INT64_MAX, &w), -ERANGE);
  ck_assert_int_eq(str_to_u64("18446744073709551616", UINT64_MAX, &u), -ERANGE);
  ck_assert_int_eq(str_to_u64("-1", UINT64_MAX, &u), -EINVAL);
}
END_TEST

START_TEST(test_str_copy_truncates_and_terminates) {
  char b[4];

  ck_assert_uint_eq(str_copy(b, sizeof(b), "abcdef"), 6);
  ck_assert_str_eq(b, "abc");
  ck_assert_uint_eq(str_format(b, sizeof(b), "%d", 123456), 3);
  ck_assert_str_eq(b, "123");
}
END_TEST

START_TEST(test_str_escape_for_messages) {
  char b[16];

  ck_assert_str_eq(str_escape(b, sizeof(b), "a\nb\tc\x01"), "a\\nb\\tc\\x01");
  ck_assert_str_eq(str_escape(b, sizeof(b), "0123456789abcdefghij"), "0123456789ab...");
}
END_TEST

START_TEST(test_str_utf8_validation) {
  size_t off = 0;

  ck_assert(str_valid_utf8("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15, NULL));
  ck_assert(!str_valid_utf8("ab\xc3", 3, &off));
  ck_assert_uint_eq(off, 2);
  ck_assert(!str_valid_utf8("\xc0\xaf", 2, &off));         /* overlong '/' */
  ck_assert(!str_valid_utf8("\xed\xa0\x80", 3, &off));     /* surrogate */
  ck_assert(!str_valid_utf8("\xf4\x90\x80\x80", 4, &off)); /* > U+10FFFF */
  ck_assert(!str_valid_utf8("a\0b", 3, &off));
  ck_assert_uint_eq(off, 1);
  ck_assert(!str_valid_utf8("\xe0\x80\x80", 3, &off));     /* overlong 3-byte */
}
END_TEST

START_TEST(test_time_parse_duration) {
  uint64_t u;
  char b[32];

  ck_assert_int_eq(time_parse_duration("15s", &u), 0);
  ck_assert(u == 15 * USEC_PER_SEC);
  ck_assert_int_eq(time_parse_duration("1h30m", &u), 0);
  ck_assert(u == 5400 * USEC_PER_SEC);
  ck_assert_int_eq(time_parse_duration("250ms", &u), 0);
  ck_assert(u == 250 * USEC_PER_MSEC);
  ck_assert_int_eq(time_parse_duration("0", &u), 0);
  ck_assert(u == 0);
  ck_assert_int_eq(time_parse_duration("15", &u), -EINVAL);
  ck_assert_int_eq(time_parse_duration("s", &u), -EINVAL);
  ck_assert_int_eq(time_parse_duration("10x", &u), -EINVAL);
  ck_assert_int_eq(time_parse_duration("400d", &u), -ERANGE);
  time_format_duration(b, sizeof(b), 3723 * USEC_PER_SEC);
  ck_assert_str_eq(b, "1h2m3s");
  time_format_duration(b, sizeof(b), 4 * USEC_PER_SEC);
  ck_assert_str_eq(b, "4s");
}
END_TEST

START_TEST(test_time_rfc3339_roundtrip) {
  int64_t s;
  char b[32];

  ck_assert_int_eq(time_parse_rfc3339("2026-11-27T00:18:13Z", &s), 0);
  ck_assert(s == 1795738693);
  time_format_rfc3339(b, sizeof(b), (uint64_t)s * USEC_PER_SEC);
  ck_assert_str_eq(b, "2026-11-27T00:18:13Z");
  ck_assert_int_eq(time_parse_rfc3339("2026-11-27T01:18:13.123+01:00", &s), 0);
  ck_assert(s == 1795738693);
  ck_assert_int_eq(time_parse_rfc3339("2026-11-27 00:18:13", &s), -EINVAL);
  ck_assert_int_eq(time_parse_rfc3339("2026-13-27T00:18:13Z", &s), -EINVAL);
}
END_TEST

START_TEST(test_buf_grows_and_detaches) {
  struct buf b = BUF_INIT;
  char *p;
  size_t n;

  ck_assert_str_eq(buf_cstr(&b), "");
  for (int i = 0; i < 1000; i++)
    buf_printf(&b, "%04d,", i);
  ck_assert_uint_eq(b.len, 5000);
  ck_assert(strncmp(b.data + 4995, "0999,", 5) == 0);
  buf_truncate(&b, 4);
  ck_assert_str_eq(buf_cstr(&b), "0000");
  p = buf_detach(&b, &n);
  ck_assert_uint_eq(n, 4);
  ck_assert_ptr_null(b.data);
  free(p);
}
END_TEST

START_TEST(test_strmap_put_get_many) {
  struct strmap m = {0};
  char k[32];

  for (long i = 0; i < 5000; i++) {
    str_format(k, sizeof(k), "key-%ld", i);
    ck_assert_ptr_null(strmap_put(&m, k, (void *)(i + 1)));
  }
  ck_assert_uint_eq(strmap_size(&m), 5000);
  ck_assert(strmap_get(&m, "key-4321") == (void *)4322);
  ck_assert(strmap_put(&m, "key-7", (void *)1) == (void *)8);
  ck_assert_ptr_null(strmap_get(&m, "key-5000"));
  ck_assert(!strmap_has(&m, ""));
  {
    size_t it = 0, n = 0;
    long sum = 0;
    const char *key;
    void *v;
    while (strmap_next(&m, &it, &key, &v)) {
      n++;
      sum += (long)v;
      ck_assert_ptr_nonnull(key);
    }
    ck_assert_uint_eq(n, 5000);
    ck_assert_int_eq(sum, 5000L * 5001L / 2 - 8 + 1);
  }
  strmap_dispose(&m);
}
END_TEST

START_TEST(test_file_write_atomic_and_bounded_read) {
  char *dir = testutil_tmpdir(), *path = path_join(dir, "f");
  struct buf b = BUF_INIT;
  struct err e = ERR_INIT;
  struct stat st;

  ck_assert_ok(file_write_atomic(path, "hello", 5, 0600, &e), &e);
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0600);
  ck_assert_ok(file_read_all(path, 5, &b, &e), &e);
  ck_assert_str_eq(buf_cstr(&b), "hello");
  buf_reset(&b);
  ck_assert_int_eq(file_read_all(path, 4, &b, &e), -EFBIG);
  ck_assert_msg(strstr(e.msg, "limit of 4 bytes") != NULL, "%s", e.msg);
  buf_dispose(&b);
  testutil_rmrf(dir);
  free(path);
  free(dir);
}
END_TEST

START_TEST(test_diag_sorted_compiler_format) {
  struct diag_list l = {0};
  char t[256];

  diag_error(&l, "b.yaml", 1, 1, "late file");
  diag_warning(&l, "a.yaml", 10, 2, "warn");
  diag_error(&l, "a.yaml", 2, 5, "early");
  diag_sort(&l);
  ck_assert_uint_eq(l.errors, 2);
  ck_assert_uint_eq(l.warnings, 1);
  ck_assert_str_eq(diag_format(&l.items[0], t, sizeof(t)), "a.yaml:2:5: error: early");
  ck_assert_str_eq(diag_format(&l.items[1], t, sizeof(t)), "a.yaml:10:2: warning: warn");
  ck_assert_str_eq(diag_format(&l.items[2], t, sizeof(t)), "b.yaml:1:1: error: late file");
  diag_list_dispose(&l);
}
END_TEST

START_TEST(test_path_helpers) {
  char *p;

  p = path_join("/etc/egressd/", "c.kubeconfig");
  ck_assert_str_eq(p, "/etc/egressd/c.kubeconfig");
  free(p);
  p = path_join("/etc", "/abs");
  ck_assert_str_eq(p, "/abs");
  free(p);
  p = path_dirname("/a/b/c");
  ck_assert_str_eq(p, "/a/b");
  free(p);
  p = path_dirname("c");
  ck_assert_str_eq(p, ".");
  free(p);
}
END_TEST


START_TEST(test_fileset_load_dir_sorted_bounded) {
  char *dir = testutil_tmpdir();
  struct fileset fs;
  struct fileset_limits lim = fileset_limits_default;
  struct err e = ERR_INIT;
  static const char *const yaml[] = {".yaml", ".yml", NULL};

  testutil_write(dir, "b.yaml", "b: 1\n");
  testutil_write(dir, "a/x.yaml", "x: 1\n");
  testutil_write(dir, "a-b.yml", "y: 1\n");
  testutil_write(dir, "notes.txt", "ignored\n");
  testutil_write(dir, ".git/config", "hidden\n");
  fileset_init(&fs, NULL);
  ck_assert_ok(fileset_load_dir(&fs, dir, yaml, &e), &e);
  fileset_sort(&fs);
  ck_assert_uint_eq(fs.n, 3);
  ck_assert_str_eq(fs.items[0].path, "a-b.yml");
  ck_assert_str_eq(fs.items[1].path, "a/x.yaml");
  ck_assert_str_eq(fs.items[2].path, "b.yaml");
  ck_assert_ptr_nonnull(fileset_get(&fs, "a/x.yaml"));
  ck_assert_int_eq(fileset_add(&fs, "b.yaml", "", 0, &e), -EEXIST);
  err_clear(&e);
  ck_assert_int_eq(fileset_add(&fs, "../etc/passwd", "", 0, &e), -EINVAL);
  fileset_dispose(&fs);

  lim.max_file_bytes = 4;
  fileset_init(&fs, &lim);
  err_clear(&e);
  ck_assert_int_eq(fileset_load_dir(&fs, dir, yaml, &e), -E2BIG);
  fileset_dispose(&fs);
  testutil_rmrf(dir);
  free(dir);
}
END_TEST


START_TEST(test_dns_names) {
  ck_assert_ptr_null(dns_label_check("smm-demo"));
  ck_assert_str_eq(dns_label_check("Smm"), "must be lower case");
  ck_assert_str_eq(dns_label_check("-a"), "must start and end with a letter or digit");
  ck_assert_str_eq(dns_label_check("a.b"), "may contain only lower-case letters, digits and '-'");
  ck_assert_ptr_nonnull(dns_label_check("a123456789012345678901234567890123456789012345678901234567890123"));
  ck_assert_ptr_null(dns_rfc1035_label_check("egress-gw"));
  ck_assert_ptr_nonnull(dns_rfc1035_label_check("1gw"));
  ck_assert_ptr_null(dns_subdomain_check("httpbin.org-egress"));
  ck_assert_str_eq(dns_subdomain_check("a..b"), "has an empty part between dots");
}
END_TEST

START_TEST(test_dns_hosts) {
  ck_assert_ptr_null(dns_host_check("httpbin.org"));
  ck_assert_ptr_null(dns_host_check("*.googleapis.com"));
  ck_assert_ptr_nonnull(dns_host_check("*"));
  ck_assert_ptr_nonnull(dns_host_check("api*.example.com"));
  ck_assert_ptr_nonnull(dns_host_check("a.*.example.com"));
  ck_assert_ptr_nonnull(dns_host_check("localhost"));
  ck_assert_ptr_nonnull(dns_host_check("10.0.0.1"));
  ck_assert_ptr_nonnull(dns_host_check("example.com."));
  ck_assert_ptr_nonnull(dns_host_check("Example.com"));
  ck_assert_ptr_nonnull(dns_host_check("*.com"));
  ck_assert_str_eq(dns_host_check("localhost"),
                   "is not fully qualified; write the full domain name (api.example.com)");
}
END_TEST

/* ---- W-10: atomic writes never use a temporary name someone planted ----
 *
 * A writer's directory may be writable by others (a shared node_exporter
 * textfile directory): whatever they put at a temporary name must neither
 * redirect the write (symlink), block it (FIFO), nor be renamed into place
 * (a file of theirs). The old scheme used the predictable <path>.tmp.<pid>;
 * these tests plant there, and, through the suffix hook, at the names the
 * new scheme draws. A hang on a FIFO is caught by alarm(). */

typedef int (*replace_fn)(const char *, const void *, size_t, mode_t, struct err *);

static const struct {
  const char *name;
  replace_fn fn;
} writers[] = {{"file_write_atomic", file_write_atomic}, {"file_replace", file_replace}};

static void assert_file_is(const char *path, const char *want) {
  char *got = testutil_read(path);
  struct stat st;

  ck_assert_msg(lstat(path, &st) == 0 && S_ISREG(st.st_mode), "%s is not a regular file", path);
  ck_assert_msg(got && strcmp(got, want) == 0, "%s holds '%s', want '%s'", path, got ? got : "(none)",
                want);
  free(got);
}

START_TEST(test_file_write_never_follows_a_planted_symlink) {
  char *dir = testutil_tmpdir(), *victim = path_join(dir, "victim");
  struct err e = ERR_INIT;
  struct stat st;

  testutil_write(dir, "victim", "victim's content");
  for (size_t w = 0; w < ARRAY_SIZE(writers); w++) {
    char *path = xasprintf("%s/%s.prom", dir, writers[w].name);
    char *old_tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());

    /* at the name the old code used, and at the destination itself */
    ck_assert_int_eq(symlink(victim, old_tmp), 0);
    ck_assert_int_eq(symlink(victim, path), 0);
    err_clear(&e);
    ck_assert_ok(writers[w].fn(path, "new\n", 4, 0644, &e), &e);
    assert_file_is(path, "new\n"); /* the link was replaced, not followed */
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
    assert_file_is(victim, "victim's content");
    ck_assert_int_eq(lstat(old_tmp, &st), 0);
    ck_assert_msg(S_ISLNK(st.st_mode), "%s: the planted link is gone or changed", writers[w].name);
    free(old_tmp);
    free(path);
  }
  free(victim);
  testutil_rmrf(dir);
  free(dir);
}
END_TEST

START_TEST(test_file_write_never_blocks_on_a_planted_fifo) {
  char *dir = testutil_tmpdir();
  struct err e = ERR_INIT;
  struct stat st;

  alarm(5); /* the old code blocks in open() forever: the test dies, and fails */
  for (size_t w = 0; w < ARRAY_SIZE(writers); w++) {
    char *path = xasprintf("%s/%s.prom", dir, writers[w].name);
    char *old_tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());

    ck_assert_int_eq(mkfifo(old_tmp, 0666), 0);
    err_clear(&e);
    ck_assert_ok(writers[w].fn(path, "new\n", 4, 0600, &e), &e);
    assert_file_is(path, "new\n");
    ck_assert_int_eq(lstat(old_tmp, &st), 0);
    ck_assert_msg(S_ISFIFO(st.st_mode), "%s: the planted FIFO is gone or changed", writers[w].name);
    free(old_tmp);
    free(path);
  }
  alarm(0);
  testutil_rmrf(dir);
  free(dir);
}
END_TEST

static unsigned suffix_calls;

/* "planted1", "planted2", ...: the names the test plants at, in order */
static void fixed_suffixes(char *out, size_t size) {
  snprintf(out, size, "planted%u", ++suffix_calls);
}

static void one_suffix(char *out, size_t size) {
  suffix_calls++;
  snprintf(out, size, "planted1");
}

START_TEST(test_file_write_skips_every_taken_temporary_name) {
  char *dir = testutil_tmpdir(), *victim = path_join(dir, "victim");
  char *path = path_join(dir, "metrics.prom");
  char *t1 = xasprintf("%s.tmp.planted1", path), *t2 = xasprintf("%s.tmp.planted2", path);
  char *t3 = xasprintf("%s.tmp.planted3", path), *t4 = xasprintf("%s.tmp.planted4", path);
  struct err e = ERR_INIT;
  struct stat st;

  alarm(5);
  testutil_write(dir, "victim", "victim's content");
  ck_assert_int_eq(symlink(victim, t1), 0);
  ck_assert_int_eq(mkfifo(t2, 0666), 0);
  testutil_write(dir, "metrics.prom.tmp.planted3", "planted content");
  ck_assert_int_eq(chmod(t3, 0666), 0);
  file_tmp_suffix_hook(fixed_suffixes);
  suffix_calls = 0;
  ck_assert_ok(file_write_atomic(path, "new\n", 4, 0644, &e), &e);
  ck_assert_uint_eq(suffix_calls, 4); /* three names were taken: the fourth is ours */
  assert_file_is(path, "new\n");
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0644);
  /* the planted entries are untouched and none of them became the file */
  assert_file_is(victim, "victim's content");
  ck_assert_int_eq(lstat(t1, &st), 0);
  ck_assert(S_ISLNK(st.st_mode));
  ck_assert_int_eq(lstat(t2, &st), 0);
  ck_assert(S_ISFIFO(st.st_mode));
  assert_file_is(t3, "planted content");
  ck_assert_int_eq(lstat(t4, &st), -1); /* renamed into place */

  /* every name taken: a bounded number of tries, then an error saying so */
  file_tmp_suffix_hook(one_suffix);
  suffix_calls = 0;
  err_clear(&e);
  ck_assert_int_eq(file_replace(path, "newer\n", 6, 0644, &e), -EEXIST);
  ck_assert_msg(suffix_calls > 1 && suffix_calls <= 100, "%u tries", suffix_calls);
  ck_assert_msg(strstr(e.msg, "cannot create a temporary file next to") != NULL, "%s", e.msg);
  assert_file_is(path, "new\n");
  file_tmp_suffix_hook(NULL);
  alarm(0);

  free(t1);
  free(t2);
  free(t3);
  free(t4);
  free(path);
  free(victim);
  testutil_rmrf(dir);
  free(dir);
}
END_TEST

START_TEST(test_file_create_fresh_removes_what_was_planted) {
  char *dir = testutil_tmpdir(), *victim = path_join(dir, "victim");
  char *path = path_join(dir, "checkpoint.tmp");
  struct err e = ERR_INIT;
  struct stat st;
  int fd;

  alarm(5);
  testutil_write(dir, "victim", "victim's content");
  for (int round = 0; round < 3; round++) {
    if (round == 0)
      ck_assert_int_eq(symlink(victim, path), 0);
    else if (round == 1)
      ck_assert_int_eq(mkfifo(path, 0666), 0);
    else
      testutil_write(dir, "checkpoint.tmp", "a stale one");
    err_clear(&e);
    fd = file_create_fresh(path, 0600, &e);
    ck_assert_ok(fd, &e);
    ck_assert_int_eq(write(fd, "new", 3), 3);
    ck_assert_int_eq(close(fd), 0);
    assert_file_is(path, "new");
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    assert_file_is(victim, "victim's content");
    ck_assert_int_eq(unlink(path), 0);
  }
  alarm(0);
  free(path);
  free(victim);
  testutil_rmrf(dir);
  free(dir);
}
END_TEST

START_TEST(test_file_write_leaves_only_the_file_behind) {
  char *dir = testutil_tmpdir(), *path = path_join(dir, "state.json");
  struct err e = ERR_INIT;

  /* the default (random) suffixes: repeated writes each succeed and leave
   * nothing behind but the file */
  for (int i = 0; i < 50; i++)
    ck_assert_ok(file_write_atomic(path, "x", 1, 0600, &e), &e);
  {
    DIR *dh = opendir(dir);
    struct dirent *de;
    unsigned entries = 0;
    ck_assert_ptr_nonnull(dh);
    while ((de = readdir(dh)))
      if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
        ck_assert_str_eq(de->d_name, "state.json");
        entries++;
      }
    closedir(dh);
    ck_assert_uint_eq(entries, 1);
  }
  free(path);
  testutil_rmrf(dir);
  free(dir);
}
END_TEST

/* --- redaction (base/redact.h) --------------------------------------------- */

static char *redacted(const char *text, const char *const *secrets) {
  struct buf b = BUF_INIT;

  buf_puts(&b, text);
  redact_secrets(&b, secrets);
  return buf_detach(&b, NULL);
}

#define ck_redacts(text, secrets, want)                                                        \
  do {                                                                                         \
    char *got_ = redacted(text, secrets);                                                      \
    ck_assert_str_eq(got_, want);                                                              \
    free(got_);                                                                                \
  } while (0)

START_TEST(test_redact_secrets_whole_split_partial_and_short) {
  const char *tok[] = {"ghp_4Xq9ZrTt1bVw8KpL", NULL};
  const char *two[] = {"abc", "abcdefghij", NULL};
  const char *shorts[] = {"pw", "x", NULL};

  ck_redacts("token ghp_4Xq9ZrTt1bVw8KpL rejected", tok, "token [redacted] rejected");
  /* split by a newline, by CR LF and indentation, by a tab */
  ck_redacts("token ghp_4Xq9Zr\nTt1bVw8KpL rejected", tok, "token [redacted] rejected");
  ck_redacts("ghp_4Xq9\r\n    ZrTt1b\tVw8KpL", tok, "[redacted]");
  /* a truncated echo, and the other half of a split at a cut */
  ck_redacts("Authorization header 'ghp_4Xq9Zr...' too long", tok,
             "Authorization header '[redacted]...' too long");
  ck_redacts("token=Tt1bVw8KpL;", tok, "token=[redacted];");
  /* shorter pieces are ordinary words: left alone */
  ck_redacts("ghp_4Xq is not it", tok, "ghp_4Xq is not it");
  /* the longest secret wins; any length counts */
  ck_redacts("abcdefghij and abc", two, "[redacted] and [redacted]");
  ck_redacts("user=x pw=pw", shorts, "user=[redacted] [redacted]=[redacted]");
  ck_redacts("nothing to hide", tok, "nothing to hide");
  ck_redacts("nothing to hide", NULL, "nothing to hide");
}
END_TEST

START_TEST(test_url_redact_hides_query_values_and_userinfo) {
  static const struct {
    const char *url, *want;
  } cases[] = {
      {"https://git.example/org/egress.git?access_token=ghp_SECRET",
       "https://git.example/org/egress.git?access_token=[redacted]"},
      {"https://git.example/r.git?a=1&token=s3cr3t;b=&c#frag",
       "https://git.example/r.git?a=[redacted]&token=[redacted];b=&[redacted]#[redacted]"},
      {"https://deploy:pa55word@git.example:8443/r.git", "https://deploy:[redacted]@git.example:8443/r.git"},
      {"https://ghp_tokenAsUser@github.com/o/r.git", "https://[redacted]@github.com/o/r.git"},
      {"HTTP://u:p@h/r", "HTTP://u:[redacted]@h/r"},
      {"https://a@b:c@h/r", "https://a@b:[redacted]@h/r"},
      {"ssh://git@git.example:2222/r.git", "ssh://git@git.example:2222/r.git"},
      {"ssh://git:pw@h/r", "ssh://git:[redacted]@h/r"},
      {"git@github.com:o/r.git", "git@github.com:o/r.git"},
      {"git://h/r.git?token=abc", "git://h/r.git?token=[redacted]"},
      {"https://h/r.git", "https://h/r.git"},
      {"/srv/git/r.git", "/srv/git/r.git"},
      {"file:///srv/git/r.git", "file:///srv/git/r.git"},
      {"", ""},
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    char *got = url_redact(cases[i].url);
    ck_assert_msg(strcmp(got, cases[i].want) == 0, "url_redact('%s') = '%s', want '%s'",
                  cases[i].url, got, cases[i].want);
    free(got);
  }
}
END_TEST

START_TEST(test_url_secrets_lists_what_url_redact_hides) {
  char **s = url_secrets("https://u:password1@h/r?access_token=ghp_SECRET123&x=1", 8);

  ck_assert_str_eq(s[0], "password1");
  ck_assert_str_eq(s[1], "ghp_SECRET123");
  ck_assert_ptr_null(s[2]); /* "1" is shorter than 8 bytes */
  ck_redacts("GET https://h/r?access_token=ghp_SECRET123 failed", (const char *const *)s,
             "GET https://h/r?access_token=[redacted] failed");
  url_secrets_free(s);
  s = url_secrets("/srv/r.git", 1);
  ck_assert_ptr_null(s[0]);
  url_secrets_free(s);
}
END_TEST

/* Where log lines go and how they look: "<N>" only when stderr is the
 * journal (JOURNAL_STREAM names it), plain lines otherwise, colour only on
 * a terminal without NO_COLOR. */
static char *log_capture(int fd_target, const char *journal_stream, const char *no_color,
                         int read_fd) {
  static char out[512];
  int saved = dup(STDERR_FILENO);
  ssize_t n;

  if (journal_stream)
    setenv("JOURNAL_STREAM", journal_stream, 1);
  else
    unsetenv("JOURNAL_STREAM");
  if (no_color)
    setenv("NO_COLOR", no_color, 1);
  else
    unsetenv("NO_COLOR");
  fflush(stderr);
  ck_assert_int_ge(dup2(fd_target, STDERR_FILENO), 0);
  log_open(LOG_TARGET_STDERR, NULL);
  {
    struct log_ctx lc = {.cluster = "prod-eu"};
    log_ctx_emit(LOG_WARNING, &lc, "drift %d", 1);
  }
  fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  unsetenv("JOURNAL_STREAM");
  unsetenv("NO_COLOR");
  n = read(read_fd, out, sizeof(out) - 1);
  ck_assert_int_gt(n, 0);
  out[n] = '\0';
  return out;
}

START_TEST(test_log_prefixes_only_for_the_journal) {
  int p[2], m, s;
  struct stat st;
  char stream[64];

  ck_assert_int_eq(pipe(p), 0);
  ck_assert_int_eq(fstat(p[1], &st), 0);
  str_format(stream, sizeof(stream), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
  ck_assert_str_eq(log_capture(p[1], stream, NULL, p[0]), "<4>cluster prod-eu: drift 1\n");
  ck_assert_str_eq(log_capture(p[1], NULL, NULL, p[0]), "egressd: warning: cluster prod-eu: drift 1\n");
  ck_assert_str_eq(log_capture(p[1], "1:2", NULL, p[0]), "egressd: warning: cluster prod-eu: drift 1\n");
  close(p[0]);
  close(p[1]);
  /* a terminal: colour, unless NO_COLOR */
  m = posix_openpt(O_RDWR | O_NOCTTY);
  ck_assert_int_ge(m, 0);
  ck_assert_int_eq(grantpt(m), 0);
  ck_assert_int_eq(unlockpt(m), 0);
  s = open(ptsname(m), O_RDWR | O_NOCTTY);
  ck_assert_int_ge(s, 0);
  {
    struct termios t;
    tcgetattr(s, &t);
    cfmakeraw(&t); /* no \n -> \r\n */
    tcsetattr(s, TCSANOW, &t);
  }
  ck_assert_str_eq(log_capture(s, NULL, NULL, m),
                   "egressd: \033[1;33mwarning\033[0m: cluster prod-eu: drift 1\n");
  ck_assert_str_eq(log_capture(s, NULL, "1", m), "egressd: warning: cluster prod-eu: drift 1\n");
  close(s);
  close(m);
  log_open(LOG_TARGET_AUTO, NULL);
}
END_TEST

static Suite *base_suite(void) {
  Suite *s = suite_create("base");
  TCase *tc = tcase_create("base");

  tcase_add_test(tc, test_err_keeps_first_cause);
  tcase_add_test(tc, test_err_errno_appends_strerror);
  tcase_add_test(tc, test_str_to_int_rejects_garbage_and_range);
  tcase_add_test(tc, test_str_copy_truncates_and_terminates);
  tcase_add_test(tc, test_str_utf8_validation);
  tcase_add_test(tc, test_str_escape_for_messages);
  tcase_add_test(tc, test_time_parse_duration);
  tcase_add_test(tc, test_time_rfc3339_roundtrip);
  tcase_add_test(tc, test_buf_grows_and_detaches);
  tcase_add_test(tc, test_strmap_put_get_many);
  tcase_add_test(tc, test_file_write_atomic_and_bounded_read);
  tcase_add_test(tc, test_diag_sorted_compiler_format);
  tcase_add_test(tc, test_path_helpers);
  tcase_add_test(tc, test_fileset_load_dir_sorted_bounded);
  tcase_add_test(tc, test_dns_names);
  tcase_add_test(tc, test_dns_hosts);
  tcase_add_test(tc, test_file_write_never_follows_a_planted_symlink);
  tcase_add_test(tc, test_file_write_never_blocks_on_a_planted_fifo);
  tcase_add_test(tc, test_file_write_skips_every_taken_temporary_name);
  tcase_add_test(tc, test_file_write_leaves_only_the_file_behind);
  tcase_add_test(tc, test_file_create_fresh_removes_what_was_planted);
  tcase_add_test(tc, test_log_prefixes_only_for_the_journal);
  suite_add_tcase(s, tc);

  tc = tcase_create("redact");
  tcase_add_test(tc, test_redact_secrets_whole_split_partial_and_short);
  tcase_add_test(tc, test_url_redact_hides_query_values_and_userinfo);
  tcase_add_test(tc, test_url_secrets_lists_what_url_redact_hides);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return testutil_run(base_suite()); }
