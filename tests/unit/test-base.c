/* Unit tests for daemon/base. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/base.h"
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
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return testutil_run(base_suite()); }
