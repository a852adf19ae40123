/* Unit tests for daemon/plan: drift on egressd's fields only, ordering, and
 * every prune safety rule. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "doc/doc.h"
#include "plan/plan.h"
#include "testutil.h"

static struct doc_arena *A;

static void setup(void) { A = doc_arena_new(); }
static void teardown(void) {
  doc_arena_free(A);
  A = NULL;
}

static struct doc_node *json(const char *text) {
  struct doc_node *n = NULL;
  struct err e = ERR_INIT;

  ck_assert_ok(doc_parse_one(A, "t.json", text, strlen(text), NULL, &n, &e), &e);
  return n;
}

#define VS_DESIRED                                                                              \
  "{\"apiVersion\":\"networking.istio.io/v1beta1\",\"kind\":\"VirtualService\","               \
  "\"metadata\":{\"name\":\"vs\",\"namespace\":\"ns\",\"labels\":{\"app.kubernetes.io/"         \
  "managed-by\":\"egressd\"}},"                                                                 \
  "\"spec\":{\"hosts\":[\"a.example.com\"],\"gateways\":[\"gw\",\"mesh\"],"                     \
  "\"http\":[{\"match\":[{\"port\":80}],\"route\":[{\"destination\":{\"host\":\"a.example.com\"}}]}]}}"

/* The same object as the API server returns it: defaults, status, another
 * manager's label and field, managedFields. */
#define VS_LIVE(hosts, extra_owned)                                                             \
  "{\"apiVersion\":\"networking.istio.io/v1beta1\",\"kind\":\"VirtualService\","               \
  "\"metadata\":{\"name\":\"vs\",\"namespace\":\"ns\",\"uid\":\"u-1\",\"resourceVersion\":\"7\"," \
  "\"generation\":3,\"creationTimestamp\":\"2026-11-27T00:00:00Z\","                            \
  "\"labels\":{\"app.kubernetes.io/managed-by\":\"egressd\",\"team\":\"x\"},"                   \
  "\"managedFields\":[{\"manager\":\"egressd\",\"operation\":\"Apply\",\"fieldsType\":\"FieldsV1\"," \
  "\"fieldsV1\":{\"f:metadata\":{\"f:labels\":{\"f:app.kubernetes.io/managed-by\":{}}},"       \
  "\"f:spec\":{\"f:hosts\":{},\"f:gateways\":{},\"f:http\":{}" extra_owned "}}},"               \
  "{\"manager\":\"kubectl-edit\",\"operation\":\"Update\",\"fieldsV1\":{\"f:spec\":{\"f:exportTo\":{}}}}]}," \
  "\"spec\":{\"hosts\":" hosts ",\"gateways\":[\"gw\",\"mesh\"],\"exportTo\":[\"*\"],"         \
  "\"tcp\":[{\"route\":[{\"destination\":{\"host\":\"t\"}}]}],"                                 \
  "\"http\":[{\"match\":[{\"port\":80}],\"route\":[{\"destination\":{\"host\":\"a.example.com\"},\"weight\":100}]}]}," \
  "\"status\":{\"observedGeneration\":3}}"

START_TEST(test_plan_defaults_status_and_other_managers_are_not_drift) {
  char **paths = NULL;
  size_t n = 99;

  /* weight:100 defaulted inside an http route, exportTo and a label of another
   * manager, status, bookkeeping: none of it is drift */
  ck_assert(plan_object_in_sync(json(VS_DESIRED), json(VS_LIVE("[\"a.example.com\"]", "")),
                                "egressd", &paths, &n));
  ck_assert_uint_eq(n, 0);
  plan_paths_free(paths, n);
}
END_TEST

START_TEST(test_plan_changed_managed_field_is_drift) {
  char **paths = NULL;
  size_t n = 0;

  ck_assert(!plan_object_in_sync(json(VS_DESIRED),
                                 json(VS_LIVE("[\"a.example.com\",\"b.example.com\"]", "")),
                                 "egressd", &paths, &n));
  ck_assert_uint_eq(n, 1);
  ck_assert_str_eq(paths[0], "spec.hosts");
  plan_paths_free(paths, n);
}
END_TEST

START_TEST(test_plan_owned_field_no_longer_rendered_is_drift) {
  char **paths = NULL;
  size_t n = 0;

  /* egressd applied spec.tcp earlier (its managedFields say so); the render
   * no longer has it, so an apply must remove it */
  ck_assert(!plan_object_in_sync(json(VS_DESIRED),
                                 json(VS_LIVE("[\"a.example.com\"]", ",\"f:tcp\":{}")), "egressd",
                                 &paths, &n));
  ck_assert_uint_eq(n, 1);
  ck_assert_str_eq(paths[0], "spec.tcp (no longer rendered)");
  plan_paths_free(paths, n);
  /* the same field owned by someone else is theirs */
  ck_assert(plan_object_in_sync(json(VS_DESIRED), json(VS_LIVE("[\"a.example.com\"]", "")),
                                "egressd", NULL, NULL));
}
END_TEST

START_TEST(test_plan_list_map_keys_in_managed_fields) {
  const char *desired = "{\"spec\":{\"service\":{\"ports\":[{\"port\":80,\"protocol\":\"TCP\"}]}}}";
  const char *live =
      "{\"metadata\":{\"managedFields\":[{\"manager\":\"egressd\",\"operation\":\"Apply\","
      "\"fieldsV1\":{\"f:spec\":{\"f:service\":{\"f:ports\":{"
      "\"k:{\\\"port\\\":80,\\\"protocol\\\":\\\"TCP\\\"}\":{\".\":{},\"f:port\":{}},"
      "\"k:{\\\"port\\\":443,\\\"protocol\\\":\\\"TCP\\\"}\":{\".\":{},\"f:port\":{}}}}}}}]},"
      "\"spec\":{\"service\":{\"ports\":[{\"port\":80,\"protocol\":\"TCP\"}]}}}";
  char **paths = NULL;
  size_t n = 0;

  ck_assert(!plan_object_in_sync(json(desired), json(live), "egressd", &paths, &n));
  ck_assert_uint_eq(n, 1);
  ck_assert_str_eq(paths[0],
                   "spec.service.ports[{\"port\":443,\"protocol\":\"TCP\"}] (no longer rendered)");
  plan_paths_free(paths, n);
}
END_TEST

START_TEST(test_plan_atomic_list_compares_whole) {
  const char *desired = "{\"spec\":{\"hosts\":[\"a\",\"b\"]}}";

  ck_assert(!plan_object_in_sync(json(desired), json("{\"spec\":{\"hosts\":[\"b\",\"a\"]}}"),
                                 "egressd", NULL, NULL));
  ck_assert(!plan_object_in_sync(json(desired), json("{\"spec\":{\"hosts\":[\"a\"]}}"),
                                 "egressd", NULL, NULL));
  ck_assert(plan_object_in_sync(json(desired), json("{\"spec\":{\"hosts\":[\"a\",\"b\"]}}"),
                                "egressd", NULL, NULL));
}
END_TEST

START_TEST(test_plan_projection_hides_bookkeeping) {
  struct doc_node *p = plan_live_projection(A, json(VS_DESIRED),
                                            json(VS_LIVE("[\"a.example.com\"]", ",\"f:tcp\":{}")),
                                            "egressd");
  struct buf out = BUF_INIT;

  doc_emit_json(p, &out, 0);
  ck_assert_ptr_null(strstr(out.data, "managedFields"));
  ck_assert_ptr_null(strstr(out.data, "resourceVersion"));
  ck_assert_ptr_null(strstr(out.data, "status"));
  ck_assert_ptr_null(strstr(out.data, "exportTo"));   /* another manager's field */
  ck_assert_ptr_null(strstr(out.data, "\"team\""));   /* another manager's label */
  ck_assert_ptr_nonnull(strstr(out.data, "\"tcp\"")); /* egressd's, to be removed */
  /* a default inside an element of an atomic list is not shown either */
  ck_assert_ptr_null(strstr(out.data, "\"weight\""));
  buf_dispose(&out);
}
END_TEST

static struct plan_input obj(const char *kind, int rank, const char *ns, const char *name,
                             const char *uid) {
  char text[512];
  struct doc_node *o;

  str_format(text, sizeof(text),
             "{\"apiVersion\":\"v\",\"kind\":\"%s\",\"metadata\":{\"name\":\"%s\",\"namespace\":"
             "\"%s\"%s%s%s},\"spec\":{\"x\":1}}",
             kind, name, ns, uid ? ",\"uid\":\"" : "", uid ? uid : "", uid ? "\"" : "");
  o = json(text);
  return (struct plan_input){kind, "v", doc_path_str(o, "metadata.namespace"),
                             doc_path_str(o, "metadata.name"), rank, false, o};
}

static void inventory_add(struct strmap *inv, const char *kind, const char *ns, const char *name,
                          const char *uid) {
  char *k = plan_key(kind, ns, name);
  strmap_put(inv, k, (void *)(uintptr_t)uid);
  free(k);
}

START_TEST(test_plan_orders_applies_then_deletes_in_reverse) {
  struct plan_input desired[] = {obj("VirtualService", 4, "a", "vs", NULL),
                                 obj("Gateway", 1, "gw", "g", NULL),
                                 obj("ServiceEntry", 2, "a", "se", NULL)};
  struct plan_input live[] = {obj("ServiceEntry", 2, "a", "se", "u-se"),
                              obj("DestinationRule", 3, "a", "old-dr", "u-dr"),
                              obj("VirtualService", 4, "a", "old-vs", "u-vs"),
                              obj("Sidecar", 5, "a", "stray", "u-sc")};
  struct strmap inv = {0};
  struct plan_options o = {.prune_budget = 10, .inventory = &inv};
  struct plan p;
  struct err e = ERR_INIT;

  inventory_add(&inv, "ServiceEntry", "a", "se", "u-se");
  inventory_add(&inv, "DestinationRule", "a", "old-dr", "u-dr");
  inventory_add(&inv, "VirtualService", "a", "old-vs", "u-vs");
  ck_assert_ok(plan_build(desired, 3, live, 4, &o, &p, &e), &e);
  ck_assert_uint_eq(p.n, 6);
  ck_assert_str_eq(p.items[0].kind, "Gateway");
  ck_assert_int_eq(p.items[0].action, PLAN_CREATE);
  ck_assert_str_eq(p.items[1].kind, "ServiceEntry");
  ck_assert_int_eq(p.items[1].action, PLAN_UNCHANGED);
  ck_assert_str_eq(p.items[2].kind, "VirtualService");
  ck_assert_int_eq(p.items[2].action, PLAN_CREATE);
  /* deletions: VirtualService before DestinationRule (reverse dependency order) */
  ck_assert_str_eq(p.items[3].name, "old-vs");
  ck_assert_int_eq(p.items[3].action, PLAN_DELETE);
  ck_assert_str_eq(p.items[3].uid, "u-vs");
  ck_assert_str_eq(p.items[4].name, "old-dr");
  ck_assert_int_eq(p.items[4].action, PLAN_DELETE);
  /* labelled but never created by us: left alone */
  ck_assert_str_eq(p.items[5].name, "stray");
  ck_assert_int_eq(p.items[5].action, PLAN_ORPHAN);
  ck_assert(!p.prune_refused);
  ck_assert_uint_eq(p.count[PLAN_DELETE], 2);
  plan_dispose(&p);
  strmap_dispose(&inv);
}
END_TEST

START_TEST(test_plan_prune_needs_matching_uid) {
  struct plan_input desired[] = {obj("ServiceEntry", 2, "a", "keep", NULL)};
  struct plan_input live[] = {obj("ServiceEntry", 2, "a", "keep", "u-k"),
                              obj("ServiceEntry", 2, "a", "gone", "u-recreated")};
  struct strmap inv = {0};
  struct plan_options o = {.prune_budget = 10, .inventory = &inv};
  struct plan p;
  struct err e = ERR_INIT;

  inventory_add(&inv, "ServiceEntry", "a", "gone", "u-original");
  ck_assert_ok(plan_build(desired, 1, live, 2, &o, &p, &e), &e);
  ck_assert_int_eq(p.items[1].action, PLAN_ORPHAN);
  ck_assert_uint_eq(p.count[PLAN_DELETE], 0);
  plan_dispose(&p);
  /* no inventory at all: nothing is ever deleted */
  o.inventory = NULL;
  ck_assert_ok(plan_build(desired, 1, live, 2, &o, &p, &e), &e);
  ck_assert_uint_eq(p.count[PLAN_DELETE], 0);
  ck_assert_uint_eq(p.count[PLAN_ORPHAN], 1);
  plan_dispose(&p);
  strmap_dispose(&inv);
}
END_TEST

START_TEST(test_plan_empty_render_deletes_nothing) {
  struct plan_input live[] = {obj("ServiceEntry", 2, "a", "x", "u-x"),
                              obj("VirtualService", 4, "a", "y", "u-y")};
  struct strmap inv = {0};
  struct plan_options o = {.prune_budget = 10, .inventory = &inv};
  struct plan p;
  struct err e = ERR_INIT;

  inventory_add(&inv, "ServiceEntry", "a", "x", "u-x");
  inventory_add(&inv, "VirtualService", "a", "y", "u-y");
  ck_assert_ok(plan_build(NULL, 0, live, 2, &o, &p, &e), &e);
  ck_assert(p.prune_refused);
  ck_assert_uint_eq(p.count[PLAN_DELETE], 0);
  ck_assert_uint_eq(p.count[PLAN_HELD], 2);
  ck_assert_str_eq(p.prune_refused_why,
                   "refusing to delete all 2 objects egressd manages on this cluster: the render "
                   "keeps none of them (it is empty); if that is really meant, allow it with the "
                   "commit trailer 'Egressd-Allow-Prune: 2'");
  plan_dispose(&p);
  /* an explicit allowance in the commit lets it through */
  o.prune_allowance = 2;
  ck_assert_ok(plan_build(NULL, 0, live, 2, &o, &p, &e), &e);
  ck_assert(!p.prune_refused);
  ck_assert_uint_eq(p.count[PLAN_DELETE], 2);
  plan_dispose(&p);
  strmap_dispose(&inv);
}
END_TEST

START_TEST(test_plan_prune_budget) {
  struct plan_input desired[] = {obj("Gateway", 1, "g", "keep", NULL)};
  struct plan_input live[] = {obj("Gateway", 1, "g", "keep", "u0"),
                              obj("ServiceEntry", 2, "a", "a", "u1"),
                              obj("ServiceEntry", 2, "a", "b", "u2"),
                              obj("ServiceEntry", 2, "a", "c", "u3")};
  struct strmap inv = {0};
  struct plan_options o = {.prune_budget = 2, .inventory = &inv};
  struct plan p;
  struct err e = ERR_INIT;

  inventory_add(&inv, "ServiceEntry", "a", "a", "u1");
  inventory_add(&inv, "ServiceEntry", "a", "b", "u2");
  inventory_add(&inv, "ServiceEntry", "a", "c", "u3");
  ck_assert_ok(plan_build(desired, 1, live, 4, &o, &p, &e), &e);
  ck_assert(p.prune_refused);
  ck_assert_uint_eq(p.count[PLAN_HELD], 3);
  ck_assert_uint_eq(p.count[PLAN_UNCHANGED], 1);
  ck_assert_str_eq(p.prune_refused_why,
                   "refusing to delete 3 objects: more than the prune budget of 2; to allow it, "
                   "add the trailer 'Egressd-Allow-Prune: 3' to the commit message");
  plan_dispose(&p);
  o.prune_allowance = 2; /* an allowance below the count does not help */
  ck_assert_ok(plan_build(desired, 1, live, 4, &o, &p, &e), &e);
  ck_assert(p.prune_refused);
  plan_dispose(&p);
  o.prune_budget = 3;
  ck_assert_ok(plan_build(desired, 1, live, 4, &o, &p, &e), &e);
  ck_assert(!p.prune_refused);
  ck_assert_uint_eq(p.count[PLAN_DELETE], 3);
  plan_dispose(&p);
  strmap_dispose(&inv);
}
END_TEST

static Suite *plan_suite(void) {
  Suite *s = suite_create("plan");
  TCase *tc = tcase_create("plan");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_plan_defaults_status_and_other_managers_are_not_drift);
  tcase_add_test(tc, test_plan_changed_managed_field_is_drift);
  tcase_add_test(tc, test_plan_owned_field_no_longer_rendered_is_drift);
  tcase_add_test(tc, test_plan_list_map_keys_in_managed_fields);
  tcase_add_test(tc, test_plan_atomic_list_compares_whole);
  tcase_add_test(tc, test_plan_projection_hides_bookkeeping);
  tcase_add_test(tc, test_plan_orders_applies_then_deletes_in_reverse);
  tcase_add_test(tc, test_plan_prune_needs_matching_uid);
  tcase_add_test(tc, test_plan_empty_render_deletes_nothing);
  tcase_add_test(tc, test_plan_prune_budget);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return testutil_run(plan_suite()); }
