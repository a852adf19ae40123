/* Unit tests for daemon/render: golden output of the example repo, the
 * template engine's structure safety, overrides, collisions, determinism.
 *
 * Golden files: tests/data/render/0001-example/<cluster>.yaml (the example
 * repo), tests/data/render/NNNN-<what>/<cluster>.yaml for the repo in that
 * directory's repo/. To update them after an intended change, run with
 * EGRESSD_UPDATE_GOLDEN=1 and review the diff. The Istio oracle judges every
 * golden too (tests/meshcheck/judge.py, the *.mesh files). */
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

static void golden_in(const char *dir, const char *name, const char *actual) {
  char *path = xasprintf("%s/render/%s/%s", TEST_DATA_DIR, dir, name);
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

static void golden(const char *name, const char *actual) { golden_in("0001-example", name, actual); }

/* A golden case of its own: repo/ rendered for each cluster of its Fleet
 * with networking.istio.io/v1beta1 (Istio 1.17). */
static void golden_case(const char *dir) {
  char *root = xasprintf("%s/render/%s/repo", TEST_DATA_DIR, dir);
  struct intent_repo *repo = load_dir(root);
  struct diag_list d = {0};
  struct collect c;

  for (size_t i = 0; i < repo->fleet->n_clusters; i++) {
    char name[128];
    render_to(repo, repo->fleet->clusters[i].name, "v1beta1", &c, &d, 0);
    ck_assert(c.ordered);
    str_format(name, sizeof(name), "%s.yaml", repo->fleet->clusters[i].name);
    golden_in(dir, name, buf_cstr(&c.out));
    buf_dispose(&c.out);
  }
  ck_assert_uint_eq(d.n, 0);
  intent_repo_free(repo);
  free(root);
}

START_TEST(test_render_tcp_by_name_and_address_golden) { golden_case("0002-tcp"); }
END_TEST

START_TEST(test_render_wildcard_host_golden) { golden_case("0003-wildcard"); }
END_TEST

START_TEST(test_render_network_policy_golden) { golden_case("0004-networkpolicy"); }
END_TEST

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

/* ---- template overrides held to the CRD schemas (render-crd.c) ---- */

/* Every diagnostic, sorted, one "file:line:col: error: msg" per line. */
static char *diag_text(struct diag_list *d) {
  struct buf b = BUF_INIT;
  char t[1024];

  diag_sort(d);
  for (size_t i = 0; i < d->n; i++)
    buf_printf(&b, "%s\n", diag_format(&d->items[i], t, sizeof(t)));
  return buf_detach(&b, NULL);
}

static const char *two_hosts_intent =
    "apiVersion: egressd.io/v1\nkind: EgressIntent\nmetadata: {name: a, namespace: ns}\n"
    "spec: {gateway: gw, hosts: [a.example.com, b.example.com], enforce: true,\n"
    "       ports: [{number: 80, protocol: HTTP}]}\n";

/* Render the mini repo (two hosts: two VirtualServices, one Sidecar) with
 * one override; the diagnostics as text. */
static char *render_override(const char *name, const char *text, const char *api, int want,
                             size_t *ret_n) {
  struct diag_list d = {0};
  struct intent_repo *repo = load_files(&d, "fleet.yaml", mini_fleet, "gw.yaml", mini_gw,
                                        "i.yaml", two_hosts_intent, name, text, NULL);
  struct collect c;
  char *out;

  ck_assert_msg(repo != NULL && d.n == 0, "%s", d.n ? d.items[0].msg : "no repo");
  render_to(repo, NULL, api, &c, &d, want);
  out = diag_text(&d);
  if (ret_n)
    *ret_n = c.n;
  buf_dispose(&c.out);
  diag_list_dispose(&d);
  intent_repo_free(repo);
  return out;
}

/* The golden message test: a VirtualService override with a typo'd field,
 * two wrong types and a value inserted where a list belongs. Each problem is
 * reported once (the template renders two VirtualServices), at the position
 * in the template where it was written, sorted, with what to do. */
START_TEST(test_render_override_crd_problems_reported_with_positions) {
  const char *vs = "apiVersion: ${apiVersion.networking}\n"                    /* 1 */
                   "kind: VirtualService\n"                                    /* 2 */
                   "metadata:\n"                                               /* 3 */
                   "  name: ${virtualService.name}\n"                          /* 4 */
                   "  namespace: ${virtualService.namespace}\n"                /* 5 */
                   "spec:\n"                                                   /* 6 */
                   "  hosts: [\"${virtualService.host}\"]\n"                   /* 7 */
                   "  gateways: ${virtualService.gateways}\n"                  /* 8 */
                   "  http: ${virtualService.http}\n"                          /* 9 */
                   "  tls:\n"                                                  /* 10 */
                   "    - match:\n"                                            /* 11 */
                   "        - sni_hosts: [\"${virtualService.host}\"]\n"       /* 12 */
                   "          port: \"443\"\n"                                 /* 13 */
                   "      route:\n"                                            /* 14 */
                   "        - destination: {host: \"${virtualService.host}\"}\n" /* 15 */
                   "          weight: heavy\n"                                 /* 16 */
                   "  tcp: ${intent.name}\n";                                  /* 17 */
  size_t emitted;
  char *text = render_override("templates/virtualservice.yaml", vs, "v1beta1", -EINVAL, &emitted);

  ck_assert_str_eq(
      text,
      "templates/virtualservice.yaml:12:11: error: VirtualService networking.istio.io/v1beta1: "
      "spec.tls[0].match[0].sni_hosts: field not declared in the CRD schema (Istio 1.17.8); did "
      "you mean 'sniHosts'?\n"
      "templates/virtualservice.yaml:13:17: error: VirtualService networking.istio.io/v1beta1: "
      "spec.tls[0].match[0].port: the CRD schema (Istio 1.17.8) wants an integer here, not the "
      "string \"443\"; remove the quotes\n"
      "templates/virtualservice.yaml:16:19: error: VirtualService networking.istio.io/v1beta1: "
      "spec.tls[0].route[0].weight: the CRD schema (Istio 1.17.8) wants an integer here, not the "
      "string \"heavy\"\n"
      "templates/virtualservice.yaml:17:8: error: VirtualService networking.istio.io/v1beta1: "
      "spec.tcp: the CRD schema (Istio 1.17.8) wants a list here, not the string \"a\"; write it "
      "as a list\n");
  /* the kinds before the VirtualService went out; nothing after the problem */
  ck_assert_uint_eq(emitted, 4); /* IstioMeshGateway, Gateway, ServiceEntry, DestinationRule */
  free(text);
}
END_TEST

START_TEST(test_render_override_crd_wrong_enum_suggests_value) {
  const char *sc = "apiVersion: ${apiVersion.networking}\n"
                   "kind: Sidecar\n"
                   "metadata: {name: '${sidecar.name}', namespace: '${sidecar.namespace}'}\n"
                   "spec:\n"
                   "  outboundTrafficPolicy:\n"
                   "    mode: registry_only\n";
  char *text = render_override("templates/sidecar.yaml", sc, "v1", -EINVAL, NULL);

  ck_assert_str_eq(text, "templates/sidecar.yaml:6:11: error: Sidecar networking.istio.io/v1: "
                         "spec.outboundTrafficPolicy.mode: the CRD schema (Istio head) allows "
                         "only REGISTRY_ONLY or ALLOW_ANY here, not 'registry_only'; did you "
                         "mean 'REGISTRY_ONLY'?\n");
  free(text);
}
END_TEST

/* The type problem of the override below, for @api and its schema's @istio. */
static const char *dr_type_msg(char *buf, size_t size, const char *api, const char *istio) {
  str_format(buf, size,
             "templates/destinationrule.yaml:10:46: error: DestinationRule networking.istio.io/%s: "
             "spec.trafficPolicy.connectionPool.tcp.maxConnections: the CRD schema (Istio %s) "
             "wants an integer here, not the string \"100\"; remove the quotes\n",
             api, istio);
  return buf;
}

/* idleTimeout came after Istio 1.17: v1beta1 is held to 1.17.8's schema,
 * which lacks it, but a newer Istio serving v1beta1 takes it: a warning; v1
 * (Istio head's) takes it; a wrong type is an error in both. */
START_TEST(test_render_override_crd_field_of_newer_istio_only_in_v1) {
  const char *dr = "apiVersion: ${apiVersion.networking}\n"
                   "kind: DestinationRule\n"
                   "metadata:\n"
                   "  name: ${destinationRule.name}\n"
                   "  namespace: ${destinationRule.namespace}\n"
                   "spec:\n"
                   "  host: ${destinationRule.host}\n"
                   "  trafficPolicy:\n"
                   "    connectionPool:\n"
                   "      tcp: {idleTimeout: 1h, maxConnections: '100'}\n"
                   "  subsets: ${destinationRule.subsets}\n";
  char want[1024], type_msg[512], *text;

  text = render_override("templates/destinationrule.yaml", dr, "v1beta1", -EINVAL, NULL);
  str_format(want, sizeof(want),
             "templates/destinationrule.yaml:10:13: warning: DestinationRule "
             "networking.istio.io/v1beta1: spec.trafficPolicy.connectionPool.tcp.idleTimeout: "
             "field not declared in the CRD schema (Istio 1.17.8); only newer Istio declares it "
             "(Istio head, networking.istio.io/v1), and a cluster of Istio 1.17.8 refuses it: "
             "remove it if one runs that, or render with --istio-api v1 if every cluster serves "
             "that version\n%s",
             dr_type_msg(type_msg, sizeof(type_msg), "v1beta1", "1.17.8"));
  ck_assert_str_eq(text, want);
  free(text);

  text = render_override("templates/destinationrule.yaml", dr, "v1alpha3", -EINVAL, NULL);
  ck_assert_ptr_nonnull(strstr(text, "v1alpha3: spec.trafficPolicy.connectionPool.tcp.idleTimeout: "
                                     "field not declared in the CRD schema (Istio 1.17.8)"));
  free(text);

  text = render_override("templates/destinationrule.yaml", dr, "v1", -EINVAL, NULL);
  ck_assert_str_eq(text, dr_type_msg(type_msg, sizeof(type_msg), "v1", "head"));
  free(text);
}
END_TEST

/* Required fields, int-or-string, additionalProperties, ObjectMeta. */
START_TEST(test_render_override_crd_required_and_maps) {
  const char *imgw = "apiVersion: servicemesh.cisco.com/v1alpha1\n"                 /* 1 */
                     "kind: IstioMeshGateway\n"                                     /* 2 */
                     "metadata:\n"                                                  /* 3 */
                     "  name: ${gateway.name}\n"                                    /* 4 */
                     "  namespace: ${gateway.namespace}\n"                          /* 5 */
                     "  labels: {team: 5}\n"                                        /* 6 */
                     "  lables: {team: x}\n"                                        /* 7 */
                     "spec:\n"                                                      /* 8 */
                     "  istioControlPlane: {name: cp, namespace: istio-system}\n"   /* 9 */
                     "  deployment:\n"                                              /* 10 */
                     "    resources:\n"                                             /* 11 */
                     "      requests: {cpu: 200m, memory: 1}\n"                     /* 12 */
                     "      limits: {cpu: true}\n"                                  /* 13 */
                     "    podMetadata: {labels: {a: b}}\n"                          /* 14 */
                     "  service:\n"                                                 /* 15 */
                     "    type: ClusterIP\n"                                        /* 16 */
                     "    ports: [{name: http, targetPort: http}]\n";               /* 17 */
  char *text = render_override("templates/istiomeshgateway.yaml", imgw, "v1beta1", -EINVAL, NULL);

  ck_assert_str_eq(
      text,
      "templates/istiomeshgateway.yaml:6:18: error: IstioMeshGateway servicemesh.cisco.com/"
      "v1alpha1: metadata.labels.team: the CRD schema (SMM 1.17) wants a string here, not the "
      "integer 5; quote it\n"
      "templates/istiomeshgateway.yaml:7:3: error: IstioMeshGateway servicemesh.cisco.com/"
      "v1alpha1: metadata.lables: field not declared in the CRD schema (SMM 1.17); did you mean "
      "'labels'?\n"
      "templates/istiomeshgateway.yaml:8:1: error: IstioMeshGateway servicemesh.cisco.com/"
      "v1alpha1: spec: missing field 'type', which the CRD schema (SMM 1.17) requires\n"
      "templates/istiomeshgateway.yaml:13:21: error: IstioMeshGateway servicemesh.cisco.com/"
      "v1alpha1: spec.deployment.resources.limits.cpu: the CRD schema (SMM 1.17) wants an "
      "integer or a string here, not true; quote it\n"
      "templates/istiomeshgateway.yaml:17:13: error: IstioMeshGateway servicemesh.cisco.com/"
      "v1alpha1: spec.service.ports[0]: missing field 'port', which the CRD schema (SMM 1.17) "
      "requires\n");
  free(text);
}
END_TEST

/* An override that only changes what the schema allows is fine, for every
 * API version: the built-in templates committed as overrides render the
 * example exactly as without them. */
START_TEST(test_render_override_crd_valid_override_is_silent) {
  static const char *const apis[] = {"v1beta1", "v1alpha3", "v1"};

  for (size_t i = 0; i < ARRAY_SIZE(apis); i++) {
    struct intent_repo *plain = load_dir(TEST_SOURCE_DIR "/repo-layout/example"), *over;
    struct fileset fs;
    struct diag_list d = {0};
    struct err e = ERR_INIT;
    struct collect a, b;

    fileset_init(&fs, NULL);
    ck_assert_ok(fileset_load_dir(&fs, TEST_SOURCE_DIR "/repo-layout/example", yaml_suffixes, &e),
                 &e);
    for (const char *const *n = render_template_names(); *n; n++) {
      size_t len;
      const char *t = render_builtin_template(*n, &len);
      char *path = xasprintf("templates/%s", *n);
      ck_assert_ok(fileset_add(&fs, path, t, len, &e), &e);
      free(path);
    }
    ck_assert_ok(intent_repo_load(&fs, NULL, &over, &d, &e), &e);
    fileset_dispose(&fs);
    render_to(plain, NULL, apis[i], &a, &d, 0);
    render_to(over, NULL, apis[i], &b, &d, 0);
    ck_assert_msg(d.n == 0, "%s: %s", apis[i], d.n ? d.items[0].msg : "");
    ck_assert_uint_gt(b.n, 20);
    ck_assert_str_eq(buf_cstr(&a.out), buf_cstr(&b.out));
    buf_dispose(&a.out);
    buf_dispose(&b.out);
    intent_repo_free(plain);
    intent_repo_free(over);
  }
}
END_TEST

/* Every apiVersion and kind egressd renders has its schema: an undeclared
 * field is found in each (a kind without one would be checked against
 * nothing), and one problem seen twice in a render is reported once. */
START_TEST(test_render_crd_every_rendered_kind_has_a_schema) {
  static const char *const net[] = {"v1alpha3", "v1beta1", "v1"};
  struct doc_arena *a = doc_arena_new();
  struct render_crd *crd = NULL;
  struct diag_list d = {0};
  size_t want = 0;

  for (int kind = 0; kind < _RENDER_KIND_MAX; kind++) {
    const struct render_kind_info *ki = render_kind_info((enum render_kind)kind);
    for (size_t v = 0; v < ARRAY_SIZE(net); v++) {
      char api[64], text[256];
      struct doc_node *obj;
      struct err e = ERR_INIT;

      /* one version of the IstioMeshGateway and of the NetworkPolicy;
       * security.istio.io has no v1alpha3 */
      if (((kind == RENDER_KIND_ISTIO_MESH_GATEWAY || kind == RENDER_KIND_NETWORK_POLICY) && v > 0) ||
          (kind == RENDER_KIND_AUTHORIZATION_POLICY && v == 0))
        continue;
      if (kind == RENDER_KIND_ISTIO_MESH_GATEWAY)
        str_format(api, sizeof(api), "%s/v1alpha1", ki->group);
      else if (kind == RENDER_KIND_NETWORK_POLICY)
        str_format(api, sizeof(api), "%s/v1", ki->group);
      else if (kind == RENDER_KIND_AUTHORIZATION_POLICY)
        str_format(api, sizeof(api), "%s/%s", ki->group, str_eq(net[v], "v1") ? "v1" : "v1beta1");
      else
        str_format(api, sizeof(api), "%s/%s", ki->group, net[v]);
      str_format(text, sizeof(text),
                 "{apiVersion: %s, kind: %s, metadata: {name: n, namespace: ns}, "
                 "spec: {bogus: 1}}",
                 api, ki->kind);
      ck_assert_ok(doc_parse_one(a, "t.yaml", text, strlen(text), NULL, &obj, &e), &e);
      ck_assert_msg(render_crd_check(&crd, a, api, ki->kind, obj, &d) >= 1, "%s %s", api,
                    ki->kind);
      ck_assert_msg(d.n > want, "%s %s: nothing reported", api, ki->kind);
      want = d.n;
      /* the same problem again: counted, not reported twice */
      ck_assert_int_ge(render_crd_check(&crd, a, api, ki->kind, obj, &d), 1);
      ck_assert_uint_eq(d.n, want);
    }
  }
  diag_list_dispose(&d);
  doc_arena_free(a);
}
END_TEST

/* The engine keeps the template's positions: on nodes, on map keys, and a
 * value inserted whole gets its placeholder's. */
START_TEST(test_render_template_keeps_positions) {
  const char *tmpl_text = "a:\n  bb: ${v}\n  cc: [x, \"y-${s}\"]\n";
  struct doc_arena *a = doc_arena_new();
  struct doc_node *tmpl, *out, *values, *v;
  struct diag_list d = {0};
  struct err e = ERR_INIT;
  const struct doc_pair *p;

  ck_assert_ok(doc_parse_one(a, "t.yaml", tmpl_text, strlen(tmpl_text), NULL, &tmpl, &e), &e);
  values = doc_new_map(a);
  v = doc_new_map(a);
  doc_map_set(a, v, "k", doc_new_int(a, 1));
  doc_map_set(a, values, "v", v);
  doc_map_set(a, values, "s", doc_new_str(a, "z"));
  ck_assert_int_eq(render_template_apply(a, tmpl, values, &out, &d), 0);
  p = doc_map_pair(doc_map_get(out, "a"), "bb");
  ck_assert_uint_eq(p->line, 2);
  ck_assert_uint_eq(p->col, 3);
  ck_assert_str_eq(p->value->file, "t.yaml");
  ck_assert_uint_eq(p->value->line, 2); /* the placeholder's */
  ck_assert_uint_eq(p->value->col, 7);
  ck_assert_uint_eq(doc_map_get(p->value, "k")->line, 0); /* built in code */
  p = doc_map_pair(doc_map_get(out, "a"), "cc");
  ck_assert_uint_eq(p->line, 3);
  ck_assert_uint_eq(p->value->u.seq.items[1]->line, 3);
  ck_assert_uint_eq(p->value->u.seq.items[1]->col, 11);
  ck_assert_str_eq(p->value->u.seq.items[1]->u.str.s, "y-z");
  /* the values tree itself is not touched */
  ck_assert_uint_eq(v->line, 0);
  doc_arena_free(a);
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
  tcase_add_test(tc, test_render_tcp_by_name_and_address_golden);
  tcase_add_test(tc, test_render_wildcard_host_golden);
  tcase_add_test(tc, test_render_network_policy_golden);
  tcase_add_test(tc, test_render_template_override_from_repo);
  tcase_add_test(tc, test_render_template_override_cannot_rename_or_typo);
  tcase_add_test(tc, test_render_name_collision_reported);
  tcase_add_test(tc, test_render_long_names_are_bounded);
  tcase_add_test(tc, test_render_enforcement_objects);
  tcase_add_test(tc, test_render_override_crd_problems_reported_with_positions);
  tcase_add_test(tc, test_render_override_crd_wrong_enum_suggests_value);
  tcase_add_test(tc, test_render_override_crd_field_of_newer_istio_only_in_v1);
  tcase_add_test(tc, test_render_override_crd_required_and_maps);
  tcase_add_test(tc, test_render_override_crd_valid_override_is_silent);
  tcase_add_test(tc, test_render_crd_every_rendered_kind_has_a_schema);
  tcase_add_test(tc, test_render_template_keeps_positions);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return testutil_run(render_suite()); }
