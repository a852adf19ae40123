/* Unit tests for daemon/doc: parsing with positions, bounds, typing, output. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "doc/doc.h"
#include "doc/doc-schema.h"
#include "testutil.h"

static struct doc_arena *A;

static void setup(void) { A = doc_arena_new(); }
static void teardown(void) {
  doc_arena_free(A);
  A = NULL;
}

static struct doc_node *parse1(const char *text, struct err *e) {
  struct doc_node *n = NULL;
  int r = doc_parse_one(A, "t.yaml", text, strlen(text), NULL, &n, e);
  return r < 0 ? NULL : n;
}

START_TEST(test_doc_positions_and_types) {
  struct err e = ERR_INIT;
  struct doc_node *n =
      parse1("a: 1\nb:\n  - x\n  - 'true'\n  - true\nc: ~\nd: 1.5\ne: \"80\"\nf: 0x1F\n", &e);
  const struct doc_pair *p;
  struct doc_node *b;

  ck_assert_ptr_nonnull(n);
  ck_assert_int_eq(n->type, DOC_MAP);
  ck_assert_int_eq(doc_map_get(n, "a")->type, DOC_INT);
  ck_assert_int_eq(doc_map_get(n, "a")->u.i, 1);
  b = doc_map_get(n, "b");
  ck_assert_int_eq(b->type, DOC_SEQ);
  ck_assert_uint_eq(b->line, 3);
  ck_assert_uint_eq(b->col, 3);
  ck_assert_int_eq(b->u.seq.items[1]->type, DOC_STR);
  ck_assert_uint_eq(b->u.seq.items[1]->line, 4);
  ck_assert_uint_eq(b->u.seq.items[1]->col, 5);
  ck_assert_int_eq(b->u.seq.items[2]->type, DOC_BOOL);
  ck_assert_int_eq(doc_map_get(n, "c")->type, DOC_NULL);
  ck_assert_int_eq(doc_map_get(n, "d")->type, DOC_FLOAT);
  ck_assert_int_eq(doc_map_get(n, "e")->type, DOC_STR);
  ck_assert_int_eq(doc_map_get(n, "f")->u.i, 31);
  p = doc_map_pair(n, "d");
  ck_assert_uint_eq(p->line, 7);
  ck_assert_uint_eq(p->col, 1);
  ck_assert_str_eq(doc_map_get(n, "a")->file, "t.yaml");
}
END_TEST

START_TEST(test_doc_duplicate_keys_reported_all) {
  struct diag_list d = {0};
  struct err e = ERR_INIT;
  struct doc_node **docs;
  size_t n;
  const char *text = "a: 1\nb: 2\na: 3\nb: 4\n";
  char t[256];

  ck_assert_ok(doc_parse(A, "x.yaml", text, strlen(text), NULL, &docs, &n, &d, &e), &e);
  ck_assert_uint_eq(d.errors, 2);
  diag_sort(&d);
  ck_assert_str_eq(diag_format(&d.items[0], t, sizeof(t)),
                   "x.yaml:3:1: error: duplicate key 'a' (first defined at line 1, column 1); "
                   "remove one of them");
  ck_assert_int_eq(doc_map_get(docs[0], "a")->u.i, 3);
  diag_list_dispose(&d);
  /* without a diag list a duplicate key is fatal */
  ck_assert_int_eq(doc_parse(A, "x.yaml", text, strlen(text), NULL, &docs, &n, NULL, &e),
                   -EBADMSG);
  ck_assert_uint_eq(e.line, 3);
}
END_TEST

START_TEST(test_doc_duplicate_keys_in_big_map) {
  struct diag_list d = {0};
  struct err e = ERR_INIT;
  struct buf b = BUF_INIT;
  struct doc_node **docs;
  size_t n;

  for (int i = 0; i < 5000; i++)
    buf_printf(&b, "k%d: %d\n", i, i);
  buf_printf(&b, "k4321: dup\n");
  ck_assert_ok(doc_parse(A, "big.yaml", b.data, b.len, NULL, &docs, &n, &d, &e), &e);
  ck_assert_uint_eq(d.errors, 1);
  ck_assert_uint_eq(d.items[0].line, 5001);
  ck_assert_uint_eq(doc_len(docs[0]), 5000);
  ck_assert_str_eq(doc_map_str(docs[0], "k4321"), "dup");
  diag_list_dispose(&d);
  buf_dispose(&b);
}
END_TEST

START_TEST(test_doc_syntax_error_has_position) {
  struct err e = ERR_INIT;

  ck_assert_ptr_null(parse1("a: 1\nb: [1, 2\nc: 3\n", &e));
  ck_assert_int_eq(e.code, -EBADMSG);
  ck_assert_str_eq(e.file, "t.yaml");
  ck_assert_uint_gt(e.line, 1);
  ck_assert_msg(strstr(e.msg, "YAML syntax error") != NULL, "%s", e.msg);
}
END_TEST

START_TEST(test_doc_alias_bomb_is_bounded) {
  struct err e = ERR_INIT;
  const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                     "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                     "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                     "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n";

  ck_assert_ptr_null(parse1(bomb, &e));
  ck_assert_int_eq(e.code, -E2BIG);
  ck_assert_msg(strstr(e.msg, "too many YAML nodes") != NULL, "%s", e.msg);
  ck_assert_uint_eq(e.line, 7);
}
END_TEST

START_TEST(test_doc_small_alias_expands) {
  struct err e = ERR_INIT;
  struct doc_node *n = parse1("base: &p {port: 80}\nother: *p\n", &e);

  ck_assert_ptr_nonnull(n);
  ck_assert_int_eq(doc_path(n, "other.port")->u.i, 80);
  ck_assert(doc_path(n, "other") != doc_path(n, "base")); /* a copy, not shared */
}
END_TEST

START_TEST(test_doc_depth_limit) {
  struct err e = ERR_INIT;
  struct buf b = BUF_INIT;

  for (int i = 0; i < 100; i++)
    buf_putc(&b, '[');
  for (int i = 0; i < 100; i++)
    buf_putc(&b, ']');
  ck_assert_ptr_null(parse1(buf_cstr(&b), &e));
  ck_assert_int_eq(e.code, -E2BIG);
  ck_assert_msg(strstr(e.msg, "nesting deeper than 64") != NULL, "%s", e.msg);
  buf_dispose(&b);
}
END_TEST

START_TEST(test_doc_size_and_doc_count_limits) {
  struct err e = ERR_INIT;
  struct doc_limits lim = doc_limits_default;
  struct doc_node **docs;
  size_t n;
  const char *three = "a: 1\n---\nb: 2\n---\nc: 3\n";

  lim.max_docs = 2;
  ck_assert_int_eq(doc_parse(A, "s.yaml", three, strlen(three), &lim, &docs, &n, NULL, &e),
                   -E2BIG);
  ck_assert_uint_eq(e.line, 4);
  err_clear(&e);
  lim = doc_limits_default;
  lim.max_bytes = 10;
  ck_assert_int_eq(doc_parse(A, "s.yaml", three, strlen(three), &lim, &docs, &n, NULL, &e),
                   -E2BIG);
  err_clear(&e);
  lim = doc_limits_default;
  lim.max_scalar = 3;
  ck_assert_int_eq(doc_parse(A, "s.yaml", "k: abcd", 7, &lim, &docs, &n, NULL, &e), -E2BIG);
}
END_TEST

START_TEST(test_doc_invalid_utf8_position) {
  struct err e = ERR_INIT;

  ck_assert_ptr_null(parse1("a: 1\nb: \"x\xff\"\n", &e));
  ck_assert_int_eq(e.code, -EILSEQ);
  ck_assert_uint_eq(e.line, 2);
  ck_assert_uint_eq(e.col, 6);
}
END_TEST

START_TEST(test_doc_unknown_tag_rejected) {
  struct err e = ERR_INIT;

  ck_assert_ptr_null(parse1("a: !Ref x\n", &e));
  ck_assert_msg(strstr(e.msg, "unsupported YAML tag '!Ref'") != NULL, "%s", e.msg);
  err_clear(&e);
  ck_assert_ptr_nonnull(parse1("a: !!str 80\n", &e));
  err_clear(&e);
  ck_assert_ptr_null(parse1("a: !!int abc\n", &e));
}
END_TEST

START_TEST(test_doc_json_parse_and_emit) {
  struct err e = ERR_INIT;
  const char *json =
      "{\"kind\":\"List\",\"items\":[{\"n\":1,\"s\":\"a\\\"b\\n\\u00e9\\/\"},null,true,-2.5e3]}";
  struct doc_node *n = parse1(json, &e);
  struct buf out = BUF_INIT;

  ck_assert_msg(n != NULL, "%s", e.msg);
  ck_assert_str_eq(doc_path_str(n, "kind"), "List");
  doc_emit_json(n, &out, 0);
  ck_assert_str_eq(buf_cstr(&out),
                   "{\"kind\":\"List\",\"items\":[{\"n\":1,\"s\":\"a\\\"b\\n\xc3\xa9/\"},null,true,"
                   "-2.5e3]}");
  buf_reset(&out);
  doc_emit_json(n, &out, DOC_JSON_SORT_KEYS);
  ck_assert(str_has_prefix(buf_cstr(&out), "{\"items\":"));
  buf_dispose(&out);
}
END_TEST

START_TEST(test_doc_json_control_chars_escaped) {
  struct buf out = BUF_INIT;
  struct doc_node *s = doc_new_strn(A, "a\x01\tb", 4);

  doc_emit_json(s, &out, 0);
  ck_assert_str_eq(buf_cstr(&out), "\"a\\u0001\\tb\"");
  buf_dispose(&out);
}
END_TEST

START_TEST(test_doc_yaml_emit_quotes_ambiguous_strings) {
  struct err e = ERR_INIT;
  struct buf out = BUF_INIT;
  struct doc_node *m = doc_new_map(A), *back;

  doc_map_set(A, m, "port", doc_new_str(A, "80"));
  doc_map_set(A, m, "flag", doc_new_str(A, "yes"));
  doc_map_set(A, m, "real", doc_new_bool(A, true));
  doc_map_set(A, m, "empty", doc_new_str(A, ""));
  doc_map_set(A, m, "host", doc_new_str(A, "*.example.com"));
  doc_map_set(A, m, "inject", doc_new_str(A, "a: b\n- c"));
  doc_map_set(A, m, "list", doc_new_seq(A));
  ck_assert_ok(doc_emit_yaml(m, &out, &e), &e);
  ck_assert_msg(strstr(buf_cstr(&out), "port: '80'\n") != NULL, "%s", buf_cstr(&out));
  ck_assert_msg(strstr(buf_cstr(&out), "flag: 'yes'\n") != NULL, "%s", buf_cstr(&out));
  ck_assert_msg(strstr(buf_cstr(&out), "real: true\n") != NULL, "%s", buf_cstr(&out));
  ck_assert_msg(strstr(buf_cstr(&out), "list: []\n") != NULL, "%s", buf_cstr(&out));
  /* whatever the style, it reads back to the same tree */
  back = parse1(buf_cstr(&out), &e);
  ck_assert_ptr_nonnull(back);
  ck_assert(doc_equal(m, back));
  buf_dispose(&out);
}
END_TEST

START_TEST(test_doc_equal_ignores_key_order) {
  struct err e = ERR_INIT;
  struct doc_node *x = parse1("{a: 1, b: [1, 2], c: {d: x}}", &e);
  struct doc_node *y = parse1("{c: {d: x}, b: [1, 2], a: 1.0}", &e);
  struct doc_node *z = parse1("{c: {d: x}, b: [2, 1], a: 1}", &e);

  ck_assert(doc_equal(x, y));
  ck_assert(!doc_equal(x, z));
  ck_assert(doc_equal(x, doc_copy(A, x)));
  /* NaN is the same value as itself in a document (found by fuzz-doc) */
  ck_assert(doc_equal(parse1("- .NAN\n", &e), parse1("- .nan\n", &e)));
}
END_TEST

START_TEST(test_doc_map_set_del) {
  struct doc_node *m = doc_new_map(A);

  doc_map_set(A, m, "a", doc_new_int(A, 1));
  doc_map_set(A, m, "b", doc_new_int(A, 2));
  doc_map_set(A, m, "a", doc_new_int(A, 3));
  ck_assert_uint_eq(doc_len(m), 2);
  ck_assert_str_eq(m->u.map.items[0].key, "a");
  ck_assert_int_eq(doc_map_get(m, "a")->u.i, 3);
  ck_assert(doc_map_del(m, "a"));
  ck_assert(!doc_map_del(m, "a"));
  ck_assert_str_eq(m->u.map.items[0].key, "b");
}
END_TEST

START_TEST(test_doc_empty_documents) {
  struct err e = ERR_INIT;
  struct doc_node **docs;
  size_t n;
  const char *text = "---\n---\na: 1\n";

  ck_assert_ok(doc_parse(A, "e.yaml", text, strlen(text), NULL, &docs, &n, NULL, &e), &e);
  ck_assert_uint_eq(n, 2);
  ck_assert_int_eq(docs[0]->type, DOC_NULL);
  ck_assert_int_eq(docs[1]->type, DOC_MAP);
  ck_assert_ok(doc_parse(A, "e.yaml", "", 0, NULL, &docs, &n, NULL, &e), &e);
  ck_assert_uint_eq(n, 0);
}
END_TEST


static const char *const protocols[] = {"HTTP", "TLS", NULL};
static const struct doc_schema port_number = {DOC_SCHEMA_INT, "a port number (1-65535)", .min = 1,
                                              .max = 65535};
static const struct doc_schema proto = {DOC_SCHEMA_STR, .enum_values = protocols};
static const struct doc_schema str = {DOC_SCHEMA_STR};
static const struct doc_schema strlist = {DOC_SCHEMA_LIST, .items = &str, .min_items = 1};
static const struct doc_schema_field port_fields[] = {
    {"number", &port_number, true}, {"protocol", &proto, true}, {"sniHosts", &strlist, false}, {NULL}};
static const struct doc_schema port = {DOC_SCHEMA_OBJECT, .fields = port_fields};
static const struct doc_schema ports = {DOC_SCHEMA_LIST, .items = &port};
static const struct doc_schema labels = {DOC_SCHEMA_STRMAP};
static const struct doc_schema_field spec_fields[] = {
    {"ports", &ports, true}, {"labels", &labels, false}, {NULL}};
static const struct doc_schema spec = {DOC_SCHEMA_OBJECT, .fields = spec_fields};

START_TEST(test_doc_schema_reports_every_problem) {
  struct err e = ERR_INIT;
  struct diag_list d = {0};
  char t[512];
  struct doc_node *n = parse1("ports:\n"
                              "  - number: 80\n"
                              "    protocol: HTTP\n"
                              "    sni_hosts: [a.example.com]\n"
                              "  - number: '443'\n"
                              "    protocol: QUIC\n"
                              "  - number: 70000\n"
                              "labels: {env: 1}\n"
                              "extra: x\n",
                              &e);

  ck_assert_ptr_nonnull(n);
  ck_assert_uint_eq(doc_schema_check(n, &spec, "spec", &d), 7);
  diag_sort(&d);
  ck_assert_str_eq(diag_format(&d.items[0], t, sizeof(t)),
                   "t.yaml:4:5: error: unknown field 'sni_hosts' in spec.ports[0]; did you mean "
                   "'sniHosts'?");
  ck_assert_str_eq(diag_format(&d.items[1], t, sizeof(t)),
                   "t.yaml:5:13: error: spec.ports[1].number must be a port number (1-65535), not "
                   "the string \"443\"");
  ck_assert_str_eq(diag_format(&d.items[2], t, sizeof(t)),
                   "t.yaml:6:15: error: spec.ports[1].protocol: 'QUIC' is not one of HTTP, TLS");
  ck_assert_str_eq(diag_format(&d.items[3], t, sizeof(t)),
                   "t.yaml:7:5: error: missing required field 'protocol' in spec.ports[2]");
  ck_assert_str_eq(diag_format(&d.items[4], t, sizeof(t)),
                   "t.yaml:7:13: error: spec.ports[2].number: 70000 is out of range 1-65535");
  ck_assert_str_eq(diag_format(&d.items[5], t, sizeof(t)),
                   "t.yaml:8:15: error: spec.labels.env must be a string, not the integer 1; quote it");
  ck_assert_str_eq(diag_format(&d.items[6], t, sizeof(t)),
                   "t.yaml:9:1: error: unknown field 'extra' in spec");
  diag_list_dispose(&d);
}
END_TEST

START_TEST(test_doc_schema_distance) {
  ck_assert_uint_eq(doc_schema_distance("sni_hosts", "sniHosts", 2), 0);
  ck_assert_uint_eq(doc_schema_distance("gatway", "gateway", 2), 1);
  ck_assert_uint_gt(doc_schema_distance("zzzz", "gateway", 2), 2);
}
END_TEST

START_TEST(test_doc_arena_wipe_zeroes_what_the_arena_holds) {
  struct doc_arena *a = doc_arena_new();
  const char *y = "token: s3cr3t-value\nbig: [1, 2, 3]\n";
  struct doc_node *root = NULL;
  struct err e = ERR_INIT;
  const char *tok, *copy;
  char *bigstr = xmalloc(100000);
  size_t n;

  ck_assert_ok(doc_parse_one(a, "k", y, strlen(y), NULL, &root, &e), &e);
  tok = doc_map_str(root, "token");
  ck_assert_str_eq(tok, "s3cr3t-value");
  n = strlen(tok);
  /* also a one-off block bigger than the arena's block size */
  memset(bigstr, 'k', 99999);
  bigstr[99999] = '\0';
  copy = doc_arena_strdup(a, bigstr);
  doc_arena_wipe(a);
  for (size_t i = 0; i < n; i++)
    ck_assert_int_eq(tok[i], 0);
  for (size_t i = 0; i < 99999; i++)
    ck_assert_int_eq(copy[i], 0);
  doc_arena_free_secret(a);
  doc_arena_free_secret(NULL);
  free(bigstr);
}
END_TEST

static Suite *doc_suite(void) {
  Suite *s = suite_create("doc");
  TCase *tc = tcase_create("doc");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_doc_positions_and_types);
  tcase_add_test(tc, test_doc_duplicate_keys_reported_all);
  tcase_add_test(tc, test_doc_duplicate_keys_in_big_map);
  tcase_add_test(tc, test_doc_syntax_error_has_position);
  tcase_add_test(tc, test_doc_alias_bomb_is_bounded);
  tcase_add_test(tc, test_doc_small_alias_expands);
  tcase_add_test(tc, test_doc_depth_limit);
  tcase_add_test(tc, test_doc_size_and_doc_count_limits);
  tcase_add_test(tc, test_doc_invalid_utf8_position);
  tcase_add_test(tc, test_doc_unknown_tag_rejected);
  tcase_add_test(tc, test_doc_json_parse_and_emit);
  tcase_add_test(tc, test_doc_json_control_chars_escaped);
  tcase_add_test(tc, test_doc_yaml_emit_quotes_ambiguous_strings);
  tcase_add_test(tc, test_doc_equal_ignores_key_order);
  tcase_add_test(tc, test_doc_map_set_del);
  tcase_add_test(tc, test_doc_empty_documents);
  tcase_add_test(tc, test_doc_schema_reports_every_problem);
  tcase_add_test(tc, test_doc_schema_distance);
  tcase_add_test(tc, test_doc_arena_wipe_zeroes_what_the_arena_holds);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return testutil_run(doc_suite()); }
