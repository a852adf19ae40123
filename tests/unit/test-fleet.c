/* Unit tests for daemon/fleet: the rollout policy, driven by events. */
#include <string.h>

#include "base/base.h"
#include "fleet/fleet.h"
#include "intent/intent.h"
#include "testutil.h"

#define S USEC_PER_SEC

/* 5 clusters in 3 waves (canary; prod-eu x2 maxParallel 1 bake 300s;
 * prod-us x2 maxParallel 2 maxFailures 1), plus "lab" in no wave. */
static const char *fleet_yaml =
    "apiVersion: egressd.io/v1\nkind: Fleet\nmetadata: {name: f}\n"
    "spec:\n  clusters:\n"
    "    - {name: canary, labels: {env: staging}}\n"
    "    - {name: eu-1, labels: {env: prod, region: eu}}\n"
    "    - {name: eu-2, labels: {env: prod, region: eu}}\n"
    "    - {name: us-1, labels: {env: prod, region: us}}\n"
    "    - {name: us-2, labels: {env: prod, region: us}}\n"
    "    - {name: lab, labels: {env: lab}}\n"
    "  rollout:\n    waves:\n"
    "      - {name: canary, selector: {matchLabels: {env: staging}}, bake: 60s}\n"
    "      - {name: eu, selector: {matchLabels: {region: eu}}, maxParallel: 1, bake: 300s}\n"
    "      - {name: us, selector: {matchLabels: {region: us}}, maxParallel: 2, maxFailures: 1, bake: 0s}\n";
static const char *names[] = {"canary", "eu-1", "eu-2", "us-1", "us-2", "lab"};
static struct intent_repo *repo;

static void setup(void) {
  struct fileset fs;
  struct diag_list d = {0};
  struct err e = ERR_INIT;

  fileset_init(&fs, NULL);
  ck_assert_ok(fileset_add(&fs, "fleet.yaml", fleet_yaml, strlen(fleet_yaml), &e), &e);
  ck_assert_ok(intent_repo_load(&fs, NULL, &repo, &d, &e), &e);
  fileset_dispose(&fs);
}

static void teardown(void) { intent_repo_free(repo); }

static size_t ready(struct fleet_rollout *r, uint64_t now, size_t *out) {
  fleet_rollout_tick(r, now);
  return fleet_rollout_ready(r, now, out, 16);
}

static const char *phase(const struct fleet_rollout *r, const char *name) {
  return fleet_phase_name(r->clusters[fleet_cluster_index(r, name)].phase);
}

START_TEST(test_fleet_waves_in_order_with_bake_and_parallelism) {
  struct fleet_rollout r = {0};
  struct fleet_options o = {0};
  size_t idx[16], n;
  uint64_t t = 1000 * S;

  fleet_rollout_begin(&r, "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1", repo->fleet, names, 6, t);
  ck_assert_uint_eq(r.n_waves, 4);
  ck_assert_str_eq(r.waves[3].name, "rest");
  ck_assert_uint_eq(r.clusters[fleet_cluster_index(&r, "lab")].wave, 3);
  /* wave 1: canary only */
  n = ready(&r, t, idx);
  ck_assert_uint_eq(n, 1);
  ck_assert_str_eq(r.clusters[idx[0]].name, "canary");
  fleet_cluster_started(&r, idx[0], t);
  ck_assert_uint_eq(ready(&r, t, idx), 0);
  fleet_cluster_finished(&r, idx[0], FLEET_RESULT_OK, NULL, &o, t + 5 * S);
  ck_assert_str_eq(phase(&r, "canary"), "baking");
  /* nothing in wave 2 before canary has baked 60 s */
  ck_assert_uint_eq(ready(&r, t + 64 * S, idx), 0);
  ck_assert_str_eq(fleet_cluster_commit(&r, (size_t)fleet_cluster_index(&r, "eu-1")), "");
  n = ready(&r, t + 65 * S, idx);
  ck_assert_str_eq(phase(&r, "canary"), "done");
  ck_assert_str_eq(r.clusters[fleet_cluster_index(&r, "canary")].applied, r.target);
  /* wave 2: one at a time */
  ck_assert_uint_eq(n, 1);
  ck_assert_str_eq(r.clusters[idx[0]].name, "eu-1");
  fleet_cluster_started(&r, idx[0], t + 65 * S);
  fleet_cluster_finished(&r, idx[0], FLEET_RESULT_OK, NULL, &o, t + 70 * S);
  /* maxParallel 1: eu-2 waits until eu-1 has baked its 300 s */
  ck_assert_uint_eq(ready(&r, t + 369 * S, idx), 0);
  n = ready(&r, t + 370 * S, idx);
  ck_assert_uint_eq(n, 1);
  ck_assert_str_eq(r.clusters[idx[0]].name, "eu-2");
  fleet_cluster_started(&r, idx[0], t + 370 * S);
  fleet_cluster_finished(&r, idx[0], FLEET_RESULT_OK, NULL, &o, t + 380 * S);
  ck_assert_uint_eq(ready(&r, t + 679 * S, idx), 0); /* eu-2 bakes until t+680 */
  t += 300 * S; /* the rest of the test as before, shifted */
  n = ready(&r, t + 380 * S, idx);
  /* wave 3: two at once */
  ck_assert_uint_eq(n, 2);
  ck_assert_str_eq(r.clusters[idx[0]].name, "us-1");
  ck_assert_str_eq(r.clusters[idx[1]].name, "us-2");
  fleet_cluster_started(&r, idx[0], t + 380 * S);
  fleet_cluster_started(&r, idx[1], t + 380 * S);
  fleet_cluster_finished(&r, idx[0], FLEET_RESULT_OK, NULL, &o, t + 381 * S);
  fleet_cluster_finished(&r, idx[1], FLEET_RESULT_FAILED, "boom", &o, t + 381 * S);
  /* one failure is within the budget of 1: on to the rest */
  n = ready(&r, t + 381 * S, idx);
  ck_assert_uint_eq(n, 1);
  ck_assert_str_eq(r.clusters[idx[0]].name, "lab");
  fleet_cluster_started(&r, idx[0], t + 381 * S);
  fleet_cluster_finished(&r, idx[0], FLEET_RESULT_OK, NULL, &o, t + 382 * S);
  fleet_rollout_tick(&r, t + 382 * S);
  ck_assert_int_eq(r.state, FLEET_ROLLOUT_COMPLETE);
  fleet_rollout_dispose(&r);
}
END_TEST

START_TEST(test_fleet_failure_beyond_budget_halts_later_waves) {
  struct fleet_rollout r = {0};
  struct fleet_options o = {0};
  size_t idx[16];
  uint64_t t = 0;
  const char *old = "0000000000000000000000000000000000000000";

  /* everyone on an old commit first */
  fleet_rollout_begin(&r, old, repo->fleet, names, 6, t);
  for (size_t i = 0; i < r.n_clusters; i++)
    str_copy(r.clusters[i].applied, sizeof(r.clusters[i].applied), old);
  fleet_rollout_begin(&r, "1111111111111111111111111111111111111111", repo->fleet, names, 6, t);
  ck_assert_uint_eq(ready(&r, t, idx), 1);
  fleet_cluster_started(&r, idx[0], t);
  fleet_cluster_finished(&r, idx[0], FLEET_RESULT_OK, NULL, &o, t);
  t += 60 * S;
  ck_assert_uint_eq(ready(&r, t, idx), 1);
  fleet_cluster_started(&r, idx[0], t);
  fleet_cluster_finished(&r, idx[0], FLEET_RESULT_FAILED,
                         "IstioMeshGateway egress/gw: ReconcileFailed: no LoadBalancer", &o, t);
  ck_assert_int_eq(r.state, FLEET_ROLLOUT_HALTED);
  ck_assert_str_eq(r.halt_reason, "wave eu: 1 cluster failed (budget 0): eu-1: IstioMeshGateway "
                                  "egress/gw: ReconcileFailed: no LoadBalancer");
  ck_assert_uint_eq(ready(&r, t + 1000 * S, idx), 0);
  /* later waves stay on the old commit; the failed one keeps the new */
  ck_assert_str_eq(fleet_cluster_commit(&r, (size_t)fleet_cluster_index(&r, "us-1")), old);
  ck_assert_str_eq(fleet_cluster_commit(&r, (size_t)fleet_cluster_index(&r, "eu-2")), old);
  ck_assert_str_eq(fleet_cluster_commit(&r, (size_t)fleet_cluster_index(&r, "eu-1")), r.target);
  /* a fix commit starts over at wave 1 */
  fleet_rollout_begin(&r, "2222222222222222222222222222222222222222", repo->fleet, names, 6, t);
  ck_assert_int_eq(r.state, FLEET_ROLLOUT_RUNNING);
  ck_assert_uint_eq(r.wave, 0);
  ck_assert_str_eq(phase(&r, "eu-1"), "pending");
  ck_assert_str_eq(r.clusters[fleet_cluster_index(&r, "canary")].applied, "1111111111111111111111111111111111111111");
  fleet_rollout_dispose(&r);
}
END_TEST

START_TEST(test_fleet_unreachable_retries_then_counts_as_failure) {
  struct fleet_rollout r = {0};
  struct fleet_options o = {.unreachable_timeout_usec = 60 * S, .retry_min_usec = 5 * S,
                            .retry_max_usec = 20 * S};
  size_t idx[16];
  uint64_t t = 0;
  size_t c;

  fleet_rollout_begin(&r, "1111111111111111111111111111111111111111", repo->fleet, names, 6, t);
  ck_assert_uint_eq(ready(&r, t, idx), 1);
  c = idx[0];
  fleet_cluster_started(&r, c, t);
  fleet_cluster_finished(&r, c, FLEET_RESULT_UNREACHABLE, "connection refused", &o, t);
  ck_assert_str_eq(phase(&r, "canary"), "unreachable");
  ck_assert_uint_eq(ready(&r, t + 4 * S, idx), 0);   /* backoff 5 s */
  ck_assert_uint_eq(ready(&r, t + 5 * S, idx), 1);
  fleet_cluster_started(&r, c, t + 5 * S);
  fleet_cluster_finished(&r, c, FLEET_RESULT_UNREACHABLE, "connection refused", &o, t + 5 * S);
  ck_assert(r.clusters[c].retry_at == t + 15 * S);    /* then 10 s */
  fleet_cluster_started(&r, c, t + 61 * S);
  fleet_cluster_finished(&r, c, FLEET_RESULT_UNREACHABLE, "connection refused", &o, t + 61 * S);
  ck_assert_str_eq(phase(&r, "canary"), "failed");
  ck_assert_str_eq(r.clusters[c].last_error, "unreachable for 1m: connection refused");
  ck_assert_int_eq(r.state, FLEET_ROLLOUT_HALTED);
  /* resume retries the failed cluster */
  fleet_rollout_resume(&r, t + 100 * S);
  ck_assert_int_eq(r.state, FLEET_ROLLOUT_RUNNING);
  ck_assert_uint_eq(ready(&r, t + 100 * S, idx), 1);
  fleet_rollout_dispose(&r);
}
END_TEST

/* A host problem (the ledger could not record the plan) retries with
 * backoff for as long as it lasts and never halts the rollout. */
START_TEST(test_fleet_deferred_retries_and_never_halts) {
  struct fleet_rollout r = {0};
  struct fleet_options o = {.unreachable_timeout_usec = 60 * S, .retry_min_usec = 5 * S,
                            .retry_max_usec = 20 * S};
  size_t idx[16];
  uint64_t t = 0;
  size_t c;

  fleet_rollout_begin(&r, "1111111111111111111111111111111111111111", repo->fleet, names, 6, t);
  ck_assert_uint_eq(ready(&r, t, idx), 1);
  c = idx[0];
  for (unsigned k = 0; k < 10; k++) {   /* 10 deferrals over more than unreachableTimeout */
    fleet_cluster_started(&r, c, t);
    fleet_cluster_finished(&r, c, FLEET_RESULT_DEFERRED, "No space left on device", &o, t);
    ck_assert_str_eq(phase(&r, "canary"), "deferred");
    ck_assert_int_eq(r.state, FLEET_ROLLOUT_RUNNING);
    ck_assert_uint_eq(ready(&r, r.clusters[c].retry_at - 1, idx), 0);
    t = r.clusters[c].retry_at;
    ck_assert_uint_eq(ready(&r, t, idx), 1);
  }
  ck_assert(t > 60 * S);
  ck_assert_str_eq(r.clusters[c].last_error, "No space left on device");
  fleet_cluster_started(&r, c, t);
  fleet_cluster_finished(&r, c, FLEET_RESULT_OK, NULL, &o, t);
  ck_assert_str_eq(phase(&r, "canary"), "baking");
  fleet_rollout_dispose(&r);
}
END_TEST

/* A wall clock stepped back while the daemon was stopped leaves a bake
 * ending a day after it began; at start it ends at most one bake away. */
START_TEST(test_fleet_clamps_deadlines_a_clock_step_left_behind) {
  struct fleet_rollout r = {0};
  size_t idx[16];
  uint64_t t = 1000 * S, day = 86400 * S;
  size_t c;

  fleet_rollout_begin(&r, "1111111111111111111111111111111111111111", repo->fleet, names, 6, t);
  ck_assert_uint_eq(ready(&r, t, idx), 1);
  c = idx[0];
  fleet_cluster_started(&r, c, t);
  fleet_cluster_finished(&r, c, FLEET_RESULT_OK, NULL, NULL, t + day); /* before the step */
  ck_assert_str_eq(phase(&r, "canary"), "baking");
  ck_assert_uint_eq(fleet_rollout_clamp_deadlines(&r, NULL, t), 1);
  ck_assert(r.clusters[c].bake_until == t + r.waves[r.clusters[c].wave].bake_usec);
  ck_assert_uint_eq(fleet_rollout_clamp_deadlines(&r, NULL, t), 0); /* nothing more to do */
  fleet_rollout_tick(&r, r.clusters[c].bake_until);
  ck_assert_str_eq(phase(&r, "canary"), "done");
  fleet_rollout_dispose(&r);
}
END_TEST

START_TEST(test_fleet_pause_resume_and_bake_failure) {
  struct fleet_rollout r = {0};
  struct fleet_options o = {0};
  size_t idx[16];

  fleet_rollout_begin(&r, "1111111111111111111111111111111111111111", repo->fleet, names, 6, 0);
  fleet_rollout_pause(&r);
  ck_assert_uint_eq(ready(&r, 0, idx), 0);
  /* a new commit while paused stays paused */
  fleet_rollout_begin(&r, "3333333333333333333333333333333333333333", repo->fleet, names, 6, 0);
  ck_assert_int_eq(r.state, FLEET_ROLLOUT_PAUSED);
  ck_assert_uint_eq(ready(&r, 0, idx), 0);
  fleet_rollout_resume(&r, 0);
  ck_assert_uint_eq(ready(&r, 0, idx), 1);
  fleet_cluster_started(&r, idx[0], 0);
  fleet_cluster_finished(&r, idx[0], FLEET_RESULT_OK, NULL, &o, 0);
  fleet_cluster_bake_failed(&r, idx[0], "drift in VirtualService a/b", 10 * S);
  ck_assert_str_eq(phase(&r, "canary"), "failed");
  ck_assert_int_eq(r.state, FLEET_ROLLOUT_HALTED);
  ck_assert_msg(strstr(r.halt_reason, "while baking: drift in VirtualService a/b") != NULL, "%s",
                r.halt_reason);
  fleet_rollout_dispose(&r);
}
END_TEST

START_TEST(test_fleet_restart_skips_clusters_already_at_target) {
  struct fleet_rollout r = {0};
  size_t idx[16];
  const char *target = "1111111111111111111111111111111111111111";

  fleet_rollout_begin(&r, target, repo->fleet, names, 6, 0);
  str_copy(r.clusters[0].applied, sizeof(r.clusters[0].applied), target); /* canary */
  str_copy(r.clusters[1].applied, sizeof(r.clusters[1].applied), target); /* eu-1 */
  fleet_rollout_begin(&r, target, repo->fleet, names, 6, 0);
  ck_assert_str_eq(phase(&r, "canary"), "done");
  ck_assert_str_eq(phase(&r, "eu-1"), "done");
  ck_assert_uint_eq(ready(&r, 0, idx), 1);
  ck_assert_str_eq(r.clusters[idx[0]].name, "eu-2");
  fleet_rollout_dispose(&r);
}
END_TEST

/* Coordination: clusters owned by other members take the phase their owner
 * published; the waves wait for them, and their deadlines stay the owner's. */
START_TEST(test_fleet_observed_clusters_hold_the_waves) {
  struct fleet_rollout r = {0};
  struct fleet_options o = {0};
  const char *target = "1111111111111111111111111111111111111111";
  const char *old = "0000000000000000000000000000000000000000";
  int eu1, eu2;
  size_t idx[16];

  fleet_rollout_begin(&r, target, repo->fleet, names, 6, 0);
  eu1 = fleet_cluster_index(&r, "eu-1");
  eu2 = fleet_cluster_index(&r, "eu-2");
  /* canary is this member's; it bakes and is done */
  ck_assert_uint_eq(ready(&r, 0, idx), 1);
  fleet_cluster_started(&r, idx[0], 0);
  fleet_cluster_finished(&r, idx[0], FLEET_RESULT_OK, NULL, &o, 0);
  ck_assert_uint_eq(ready(&r, 61 * S, idx), 1); /* eu-1 is next (maxParallel 1) */
  /* eu-1 is another member's: it says it bakes; nothing else of the wave starts */
  fleet_cluster_observe(&r, (size_t)eu1, target, FLEET_BAKING, NULL, 61 * S);
  ck_assert_str_eq(phase(&r, "eu-1"), "baking");
  ck_assert_uint_eq(ready(&r, 10000 * S, idx), 0); /* its bake is the owner's to end */
  /* a phase for another commit (an older rollout) is pending here */
  fleet_cluster_observe(&r, (size_t)eu2, old, FLEET_DONE, old, 62 * S);
  ck_assert_str_eq(phase(&r, "eu-2"), "pending");
  ck_assert_str_eq(r.clusters[eu2].applied, old);
  /* the owner says done: the wave goes on with eu-2 */
  fleet_cluster_observe(&r, (size_t)eu1, target, FLEET_DONE, target, 400 * S);
  ck_assert_uint_eq(ready(&r, 400 * S, idx), 1);
  ck_assert_int_eq((int)idx[0], eu2);
  /* a failure another member saw counts against the budget here too */
  fleet_cluster_started(&r, idx[0], 400 * S);
  fleet_cluster_observe(&r, (size_t)eu2, target, FLEET_FAILED, NULL, 401 * S);
  fleet_rollout_tick(&r, 401 * S);
  ck_assert_int_eq(r.state, FLEET_ROLLOUT_HALTED);
  fleet_rollout_dispose(&r);
}
END_TEST

static Suite *fleet_suite(void) {
  Suite *s = suite_create("fleet");
  TCase *tc = tcase_create("rollout");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_fleet_waves_in_order_with_bake_and_parallelism);
  tcase_add_test(tc, test_fleet_failure_beyond_budget_halts_later_waves);
  tcase_add_test(tc, test_fleet_unreachable_retries_then_counts_as_failure);
  tcase_add_test(tc, test_fleet_deferred_retries_and_never_halts);
  tcase_add_test(tc, test_fleet_clamps_deadlines_a_clock_step_left_behind);
  tcase_add_test(tc, test_fleet_pause_resume_and_bake_failure);
  tcase_add_test(tc, test_fleet_restart_skips_clusters_already_at_target);
  tcase_add_test(tc, test_fleet_observed_clusters_hold_the_waves);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return testutil_run(fleet_suite()); }
