/* Unit tests for daemon/render: golden output of the example repo, the
 * template engine's structure safety, overrides, collisions, determinism.
 *
 * Golden files: tests/data/render/0001-example/<cluster>.yaml. To update them
 * after an intended change, run with EGRESSD_UPDATE_GOLDEN=1 and review the
 * diff. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "doc/doc.h"
#include "intent/intent.h"
#include "render/render-int.h"
#include "render/render.h"
#include "testutil.h"

static const char *const yaml_suffixes[] = {".yaml", NULL};

struct collect {
  struct buf out;
  size_t n;
  enum render_kind last_kind;
  bool ordered;
};

static int collect(void *userdata, const struct render_object *obj) {
  struct collect *c = userdata;
  struct err e = ERR_INIT;

  if (c->n && obj->kind < c->last_kind)
    c->ordered = false;
  c->last_kind = obj->kind;
  if (c->n)
    buf_puts(&c->out, "---\n");
  ck_assert_ok(doc_emit_yaml(obj->object, &c->out, &e), &e);
  c->n++;
  return 0;
}

static struct intent_repo *load_dir(const char *dir) {
  struct fileset fs;
  struct intent_repo *repo = NULL;
  struct diag_list d = {0};
  struct err e = ERR_INIT;

  fileset_init(&fs, NULL);
  ck_assert_ok(fileset_load_dir(&fs, dir, yaml_suffixes, &e), &e);
  ck_assert_ok(intent_repo_load(&fs, NULL, &repo, &d, &e), &e);
  ck_assert_uint_eq(d.n, 0);
  fileset_dispose(&fs);
  return repo;
}

static struct intent_repo *load_files(struct diag_list *d, const char *path, ...) {
  struct fileset fs;
  struct intent_repo *repo = NULL;
  struct err e = ERR_INIT;
  va_list ap;

  fileset_init(&fs, NULL);
  va_start(ap, path);
  for (const char *p = path; p; p = va_arg(ap, const char *)) {
    const char *text = va_arg(ap, const char *);
    ck_assert_ok(fileset_add(&fs, p, text, strlen(text), &e), &e);
  }
  va_end(ap);
  intent_repo_load(&fs, NULL, &repo, d, &e);
  fileset_dispose(&fs);
  return repo;
}

static void render_to(const struct intent_repo *repo, const char *cluster, const char *api,
                      struct collect *c, struct diag_list *d, int want) {
  struct render_options o = {.istio_api_version = api};
  struct err e = ERR_INIT;

  memset(c, 0, sizeof(*c));
  c->ordered = true;
  if (cluster) {
    o.cluster = intent_fleet_cluster_find(repo->fleet, cluster);
    ck_assert_ptr_nonnull(o.cluster);
  }
  ck_assert_int_eq(render_repo(repo, &o, collect, c, d, &e), want);
}

static void golden(const char *name, const char *actual) {
  char *path = xasprintf("%s/render/0001-example/%s", TEST_DATA_DIR, name);
  char *expected;

  if (getenv("EGRESSD_UPDATE_GOLDEN")) {
    struct err e = ERR_INIT;
    ck_assert_ok(file_write_atomic(path, actual, strlen(actual), 0644, &e), &e);
  }
  expected = testutil_read(path);
  ck_assert_msg(expected != NULL, "missing golden file %s (run with EGRESSD_UPDATE_GOLDEN=1)",
                path);
  if (strcmp(expected, actual) != 0) {
    /* show where it starts to differ */
    size_t i = 0;
    while (expected[i] && expected[i] == actual[i])
      i++;
    ck_abort_msg("%s differs at byte %zu:\n--- expected ---\n%.300s\n--- actual ---\n%.300s", path,
                 i, expected + (i > 100 ? i - 100 : 0), actual + (i > 100 ? i - 100 : 0));
  }
  free(expected);
  free(path);
}

START_TEST(test_render_example_golden_per_cluster) {
  struct intent_repo *repo = load_dir(TEST_SOURCE_DIR "/repo-layout/example");
  static const char *const clusters[] = {"canary", "prod-eu", "prod-us"};
  struct diag_list d = {0};
  struct collect c;

  for (size_t i = 0; i < ARRAY_SIZE(clusters); i++) {
    char name[64];
    render_to(repo, clusters[i], "v1beta1", &c, &d, 0);
    ck_assert(c.ordered);
    str_format(name, sizeof(name), "%s.yaml", clusters[i]);
    golden(name, buf_cstr(&c.out));
    buf_dispose(&c.out);
  }
  render_to(repo, NULL, "v1", &c, &d, 0);
  golden("all-v1.yaml", buf_cstr(&c.out));
  buf_dispose(&c.out);
  render_to(repo, NULL, "v1alpha3", &c, &d, 0);
  golden("all-v1alpha3.yaml", buf_cstr(&c.out));
  buf_dispose(&c.out);
  ck_assert_uint_eq(d.n, 0);
  intent_repo_free(repo);
}
END_TEST

START_TEST(test_render_is_deterministic) {
  struct intent_repo *repo = load_dir(TEST_SOURCE_DIR "/repo-layout/example");
  struct diag_list d = {0};
  struct collect a, b;

  render_to(repo, NULL, "v1beta1", &a, &d, 0);
  render_to(repo, NULL, "v1beta1", &b, &d, 0);
  ck_assert_uint_gt(a.n, 20);
  ck_assert_str_eq(buf_cstr(&a.out), buf_cstr(&b.out));
  buf_dispose(&a.out);
  buf_dispose(&b.out);
  intent_repo_free(repo);
}
END_TEST

START_TEST(test_render_cluster_selectors_apply) {
  struct intent_repo *repo = load_dir(TEST_SOURCE_DIR "/repo-layout/example");
  struct diag_list d = {0};
  struct collect canary, us;

  render_to(repo, "canary", "v1beta1", &canary, &d, 0);
  render_to(repo, "prod-us", "v1beta1", &us, &d, 0);
  /* s3-eu selects region=eu, pagerduty selects env In (prod) */
  ck_assert_ptr_nonnull(strstr(buf_cstr(&canary.out), "name: s3-eu\n"));
  ck_assert_ptr_null(strstr(buf_cstr(&canary.out), "name: pagerduty\n"));
  ck_assert_ptr_null(strstr(buf_cstr(&us.out), "name: s3-eu\n"));
  ck_assert_ptr_nonnull(strstr(buf_cstr(&us.out), "name: pagerduty\n"));
  buf_dispose(&canary.out);
  buf_dispose(&us.out);
  intent_repo_free(repo);
}
END_TEST

/* A value carrying YAML syntax stays one string: templates take values as
 * nodes, so nothing an intent says can add a key or a document. */
START_TEST(test_render_template_values_cannot_change_structure) {
  const char *evil = "x.example.com\"\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"
                     "spec: {a: ${intent.name}}\n";
  const char *tmpl_text = "kind: VirtualService\nspec:\n  hosts: [\"${host}\"]\n"
                          "  name: \"vs-${host}\"\n  list: ${list}\n";
  struct doc_arena *a = doc_arena_new();
  struct doc_node *tmpl, *values, *out, **docs, *list;
  struct diag_list d = {0};
  struct err e = ERR_INIT;
  struct buf y = BUF_INIT;
  size_t n;

  ck_assert_ok(doc_parse_one(a, "t.yaml", tmpl_text, strlen(tmpl_text), NULL, &tmpl, &e), &e);
  values = doc_new_map(a);
  doc_map_set(a, values, "host", doc_new_str(a, evil));
  list = doc_new_seq(a);
  doc_seq_push(a, list, doc_new_str(a, "- {injected: true}"));
  doc_map_set(a, values, "list", list);
  ck_assert_ok(render_template_apply(a, tmpl, values, &out, &d), &e);
  ck_assert_str_eq(doc_path(out, "spec.hosts")->u.seq.items[0]->u.str.s, evil);
  ck_assert_uint_eq(doc_len(doc_path(out, "spec")), 3);
  ck_assert_ok(doc_emit_yaml(out, &y, &e), &e);
  /* the text round-trips to exactly one document equal to the tree */
  ck_assert_ok(doc_parse(a, "o.yaml", y.data, y.len, NULL, &docs, &n, NULL, &e), &e);
  ck_assert_uint_eq(n, 1);
  ck_assert(doc_equal(docs[0], out));
  ck_assert_uint_eq(doc_len(docs[0]), 2);
  ck_assert_ptr_null(doc_map_get(docs[0], "apiVersion"));
  buf_dispose(&y);
  doc_arena_free(a);
}
END_TEST

START_TEST(test_render_template_unknown_value_is_reported) {
  const char *tmpl_text = "a: ${nope.x}\nb: \"${also}-x\"\n";
  struct doc_arena *a = doc_arena_new();
  struct doc_node *tmpl, *out;
  struct diag_list d = {0};
  struct err e = ERR_INIT;
  char t[256];

  ck_assert_ok(doc_parse_one(a, "t.yaml", tmpl_text, strlen(tmpl_text), NULL, &tmpl, &e), &e);
  ck_assert_int_eq(render_template_apply(a, tmpl, doc_new_map(a), &out, &d), -EINVAL);
  ck_assert_uint_eq(d.n, 2);
  ck_assert_str_eq(diag_format(&d.items[0], t, sizeof(t)),
                   "t.yaml:1:4: error: template: unknown value 'nope.x'");
  ck_assert_str_eq(diag_format(&d.items[1], t, sizeof(t)),
                   "t.yaml:2:4: error: template: unknown value 'also'");
  diag_list_dispose(&d);
  doc_arena_free(a);
}
END_TEST

START_TEST(test_render_template_null_removes_key_and_escape) {
  const char *tmpl_text = "a: ${n}\nb: [x, \"${n}\", y]\nc: \"$${literal}\"\nd: ${i}\n";
  struct doc_arena *a = doc_arena_new();
  struct doc_node *tmpl, *out, *values;
  struct diag_list d = {0};
  struct err e = ERR_INIT;

  ck_assert_ok(doc_parse_one(a, "t.yaml", tmpl_text, strlen(tmpl_text), NULL, &tmpl, &e), &e);
  values = doc_new_map(a);
  doc_map_set(a, values, "n", doc_new_null(a));
  doc_map_set(a, values, "i", doc_new_int(a, 443));
  ck_assert_int_eq(render_template_apply(a, tmpl, values, &out, &d), 0);
  ck_assert_ptr_null(doc_map_get(out, "a"));
  ck_assert_uint_eq(doc_len(doc_map_get(out, "b")), 2);
  ck_assert_str_eq(doc_map_str(out, "c"), "${literal}");
  ck_assert_int_eq(doc_map_get(out, "d")->type, DOC_INT);
  ck_assert_int_eq(doc_map_get(out, "d")->u.i, 443);
  doc_arena_free(a);
}
END_TEST

static const char *mini_fleet = "apiVersion: egressd.io/v1\nkind: Fleet\nmetadata: {name: t}\n"
                                "spec: {clusters: [{name: c1}]}\n";
static const char *mini_gw =
    "apiVersion: egressd.io/v1\nkind: EgressGateway\nmetadata: {name: gw, namespace: ns}\n"
    "spec:\n  controlPlane: {name: cp, namespace: istio-system}\n"
    "  service: {ports: [{name: http, port: 80, targetPort: 8080}]}\n";
static const char *mini_intent =
    "apiVersion: egressd.io/v1\nkind: EgressIntent\nmetadata: {name: a, namespace: ns}\n"
    "spec: {gateway: gw, hosts: [a.example.com], ports: [{number: 80, protocol: HTTP}]}\n";

START_TEST(test_render_template_override_from_repo) {
  const char *dr = "apiVersion: ${apiVersion.networking}\n"
                   "kind: DestinationRule\n"
                   "metadata:\n"
                   "  name: ${destinationRule.name}\n"
                   "  namespace: ${destinationRule.namespace}\n"
                   "  labels: {team: platform}\n"
                   "spec:\n"
                   "  host: ${destinationRule.host}\n"
                   "  trafficPolicy:\n"
                   "    connectionPool: {tcp: {maxConnections: 100}}\n"
                   "  subsets: ${destinationRule.subsets}\n";
  struct diag_list d = {0};
  struct intent_repo *repo = load_files(&d, "fleet.yaml", mini_fleet, "gw.yaml", mini_gw,
                                        "i.yaml", mini_intent, "templates/destinationrule.yaml",
                                        dr, NULL);
  struct collect c;

  ck_assert_ptr_nonnull(repo);
  render_to(repo, NULL, "v1beta1", &c, &d, 0);
  ck_assert_msg(strstr(buf_cstr(&c.out), "maxConnections: 100") != NULL, "%s", buf_cstr(&c.out));
  /* the template's own labels stay, ownership labels are always added */
  ck_assert_ptr_nonnull(strstr(buf_cstr(&c.out), "team: platform\n"));
  ck_assert_ptr_nonnull(strstr(buf_cstr(&c.out), "    app.kubernetes.io/managed-by: egressd\n"
                                                  "    egressd.io/instance: t\n"
                                                  "    egressd.io/intent: a\n"));
  buf_dispose(&c.out);
  intent_repo_free(repo);
}
END_TEST

START_TEST(test_render_template_override_cannot_rename_or_typo) {
  const char *se = "apiVersion: ${apiVersion.networking}\n"
                   "kind: ServiceEntry\n"
                   "metadata:\n"
                   "  name: ${intent.name}-renamed\n"
                   "  namespace: ${intent.namespace}\n"
                   "spec:\n"
                   "  hosts: ${intent.hosts}\n";
  const char *vs = "apiVersion: ${apiVersion.networking}\n"
                   "kind: VirtualService\n"
                   "metadata: {name: '${virtualService.nam}', namespace: x}\n";
  struct diag_list d = {0};
  struct intent_repo *repo =
      load_files(&d, "fleet.yaml", mini_fleet, "gw.yaml", mini_gw, "i.yaml", mini_intent,
                 "templates/serviceentry.yaml", se, "templates/virtualservice.yaml", vs, NULL);
  struct collect c;
  char t[512];

  ck_assert_ptr_nonnull(repo);
  render_to(repo, NULL, "v1beta1", &c, &d, -EINVAL);
  diag_sort(&d);
  ck_assert_uint_eq(d.n, 2);
  ck_assert_str_eq(diag_format(&d.items[0], t, sizeof(t)),
                   "templates/serviceentry.yaml:1:1: error: template serviceentry.yaml must "
                   "render ServiceEntry ns/a (apiVersion networking.istio.io/v1beta1); it renders "
                   "ServiceEntry ns/a-renamed (apiVersion networking.istio.io/v1beta1): a "
                   "template may shape an object but not rename or move it");
  ck_assert_str_eq(diag_format(&d.items[1], t, sizeof(t)),
                   "templates/virtualservice.yaml:3:18: error: template: unknown value "
                   "'virtualService.nam'");
  /* the Istio Gateway and IMGW come first and are fine; nothing after a failure */
  ck_assert_uint_eq(c.n, 2);
  buf_dispose(&c.out);
  diag_list_dispose(&d);
  intent_repo_free(repo);
}
END_TEST

START_TEST(test_render_name_collision_reported) {
  const char *intents =
      "apiVersion: egressd.io/v1\nkind: EgressIntent\nmetadata: {name: x, namespace: ns}\n"
      "spec: {gateway: gw, hosts: [y-z.example.com], ports: [{number: 80, protocol: HTTP}]}\n"
      "---\n"
      "apiVersion: egressd.io/v1\nkind: EgressIntent\nmetadata: {name: x-y, namespace: ns}\n"
      "spec: {gateway: gw, hosts: [z.example.com], ports: [{number: 80, protocol: HTTP}]}\n";
  struct diag_list d = {0};
  struct intent_repo *repo =
      load_files(&d, "fleet.yaml", mini_fleet, "gw.yaml", mini_gw, "i.yaml", intents, NULL);
  struct collect c;
  char t[512];

  ck_assert_ptr_nonnull(repo);
  render_to(repo, NULL, "v1beta1", &c, &d, -EINVAL);
  ck_assert_uint_eq(d.n, 1);
  ck_assert_str_eq(diag_format(&d.items[0], t, sizeof(t)),
                   "i.yaml:6:1: error: VirtualService ns/x-y-z.example.com would be rendered "
                   "twice: by intent ns/x (i.yaml) and by intent ns/x-y (i.yaml); rename one of "
                   "them");
  buf_dispose(&c.out);
  diag_list_dispose(&d);
  intent_repo_free(repo);
}
END_TEST

START_TEST(test_render_long_names_are_bounded) {
  char intents[2048];
  char host[300];
  struct diag_list d = {0};
  struct intent_repo *repo;
  struct collect c;
  const char *p;

  /* 4 labels of 60 characters: a 243-character host */
  str_format(host, sizeof(host), "%060d.%060d.%060d.%060d.com", 1, 2, 3, 4);
  for (char *q = host; *q; q++)
    if (*q == '0')
      *q = 'a';
  str_format(intents, sizeof(intents),
             "apiVersion: egressd.io/v1\nkind: EgressIntent\n"
             "metadata: {name: a-very-long-intent-name-that-is-allowed-as-a-label, namespace: ns}\n"
             "spec: {gateway: gw, hosts: [%s], ports: [{number: 80, protocol: HTTP}]}\n",
             host);
  repo = load_files(&d, "fleet.yaml", mini_fleet, "gw.yaml", mini_gw, "i.yaml", intents, NULL);
  ck_assert_msg(repo != NULL, "%s", d.n ? d.items[0].msg : "");
  render_to(repo, NULL, "v1beta1", &c, &d, 0);
  p = strstr(buf_cstr(&c.out), "kind: VirtualService\nmetadata:\n  name: ");
  ck_assert_ptr_nonnull(p);
  p += strlen("kind: VirtualService\nmetadata:\n  name: ");
  ck_assert_uint_le((size_t)(strchr(p, '\n') - p), 253);
  {
    char *name = xstrndup(p, (size_t)(strchr(p, '\n') - p));
    ck_assert_msg(dns_subdomain_check(name) == NULL, "%s: %s", name, dns_subdomain_check(name));
    free(name);
  }
  buf_dispose(&c.out);
  intent_repo_free(repo);
}
END_TEST

START_TEST(test_render_enforcement_objects) {
  struct intent_repo *repo = load_dir(TEST_SOURCE_DIR "/repo-layout/example");
  struct diag_list d = {0};
  struct collect c;
  const char *out, *ap;

  render_to(repo, "prod-us", "v1beta1", &c, &d, 0);
  out = buf_cstr(&c.out);
  ck_assert_ptr_nonnull(strstr(out, "kind: Sidecar\nmetadata:\n  name: egressd-registry-only\n"
                                    "  namespace: payments\n"));
  ck_assert_ptr_nonnull(strstr(out, "mode: REGISTRY_ONLY"));
  ap = strstr(out, "kind: AuthorizationPolicy");
  ck_assert_ptr_nonnull(ap);
  /* every namespace routed through the shared gateway is admitted, on the
   * ports the gateway pod receives on (target ports 8443 and 8080 for the
   * Service ports 443 and 80) */
  ck_assert_ptr_nonnull(strstr(ap, "      - payments\n    to:\n    - operation:\n        ports:\n"
                                   "        - '8443'\n"));
  ck_assert_ptr_nonnull(strstr(ap, "      - news\n    to:\n    - operation:\n        ports:\n"
                                   "        - '8080'\n"));
  /* the AuthorizationPolicy is the last kind */
  ck_assert_ptr_null(strstr(ap, "kind: VirtualService"));
  buf_dispose(&c.out);
  intent_repo_free(repo);
}
END_TEST

static Suite *render_suite(void) {
  Suite *s = suite_create("render");
  TCase *tc = tcase_create("render");

  tcase_add_test(tc, test_render_example_golden_per_cluster);
  tcase_add_test(tc, test_render_is_deterministic);
  tcase_add_test(tc, test_render_cluster_selectors_apply);
  tcase_add_test(tc, test_render_template_values_cannot_change_structure);
  tcase_add_test(tc, test_render_template_unknown_value_is_reported);
  tcase_add_test(tc, test_render_template_null_removes_key_and_escape);
  tcase_add_test(tc, test_render_template_override_from_repo);
  tcase_add_test(tc, test_render_template_override_cannot_rename_or_typo);
  tcase_add_test(tc, test_render_name_collision_reported);
  tcase_add_test(tc, test_render_long_names_are_bounded);
  tcase_add_test(tc, test_render_enforcement_objects);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return testutil_run(render_suite()); }
