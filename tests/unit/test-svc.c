/* Unit tests for daemon/svc: the host config. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "base/base.h"
#include "base/str.h"
#include "svc/coord.h"
#include "svc/hostconfig.h"
#include "svc/svc-int.h"
#include "testutil.h"

static const char *good =
    "repository:\n"
    "  url: ssh://git@git.example.com/platform/egress.git\n"
    "  interval: 20s\n"
    "  sshKey: deploy_key\n"
    "  knownHosts: /etc/egressd/known_hosts\n"
    "verify:\n"
    "  policy: head\n"
    "  allowedSigners: allowed_signers\n"
    "  revokedKeys: revoked.krl\n"
    "clusters:\n"
    "  - name: prod-eu\n"
    "    kubeconfig: clusters/prod-eu.kubeconfig\n"
    "    context: admin\n"
    "  - name: canary\n"
    "    kubeconfig: /abs/canary.kubeconfig\n"
    "sync:\n"
    "  pruneBudget: 3\n"
    "  driftInterval: 1m\n"
    "state:\n"
    "  dir: /tmp/egressd-state\n"
    "log:\n"
    "  level: debug\n";

START_TEST(test_svc_hostconfig_good_resolves_paths_and_defaults) {
  struct hostconfig *c = NULL;
  struct diag_list d = {0};
  struct err e = ERR_INIT;

  ck_assert_ok(hostconfig_parse("/etc/egressd/egressd.yaml", good, strlen(good), &c, &d, &e), &e);
  ck_assert_uint_eq(d.errors, 0);
  ck_assert_str_eq(c->repo.ref, "refs/heads/main");
  ck_assert(c->repo.interval_usec == 20 * USEC_PER_SEC);
  ck_assert_str_eq(c->repo.ssh_key, "/etc/egressd/deploy_key");
  ck_assert_int_eq(c->verify.policy, HOSTCONFIG_VERIFY_HEAD);
  ck_assert_str_eq(c->verify.allowed_signers, "/etc/egressd/allowed_signers");
  ck_assert_str_eq(c->verify.revoked_keys, "/etc/egressd/revoked.krl");
  ck_assert_uint_eq(c->n_clusters, 2);
  ck_assert_str_eq(hostconfig_cluster_find(c, "prod-eu")->kubeconfig,
                   "/etc/egressd/clusters/prod-eu.kubeconfig");
  ck_assert_str_eq(hostconfig_cluster_find(c, "prod-eu")->context, "admin");
  ck_assert_ptr_null(hostconfig_cluster_find(c, "canary")->context);
  ck_assert_uint_eq(c->sync.prune_budget, 3);
  ck_assert(c->sync.drift_interval_usec == 60 * USEC_PER_SEC);
  ck_assert_str_eq(c->ledger_dir, "/tmp/egressd-state/ledger");
  ck_assert_str_eq(c->ledger_key, "/etc/egressd/ledger_ed25519");
  ck_assert_int_eq(c->log_level, LOG_DEBUG);
  hostconfig_free(c);
}
END_TEST

/* @text (as h.yaml) is refused with exactly the diagnostics @want, sorted. */
static void assert_refused(const char *text, const char *const *want, size_t n) {
  struct hostconfig *c = NULL;
  struct diag_list d = {0};
  struct err e = ERR_INIT;
  char t[1024];

  ck_assert_int_eq(hostconfig_parse("h.yaml", text, strlen(text), &c, &d, &e), -EINVAL);
  ck_assert_ptr_null(c);
  diag_sort(&d);
  ck_assert_uint_eq(d.n, n);
  for (size_t i = 0; i < d.n; i++)
    ck_assert_str_eq(diag_format(&d.items[i], t, sizeof(t)), want[i]);
  diag_list_dispose(&d);
}

START_TEST(test_svc_hostconfig_reports_every_problem) {
  const char *bad = "repository:\n"
                    "  url: not a url\n"
                    "  intervall: 5s\n"
                    "verify:\n"
                    "  policy: some\n"
                    "clusters:\n"
                    "  - name: Prod\n"
                    "    kubeconfig: a\n"
                    "  - name: x\n"
                    "  - name: y\n"
                    "    kubeconfig: b\n"
                    "  - name: y\n"
                    "    kubeconfig: c\n"
                    "sync:\n"
                    "  driftInterval: soon\n";
  const char *want[] = {
      "h.yaml:2:8: error: repository.url 'not a url' is not a Git URL; use file://, git://, "
      "https://, ssh:// or user@host:path",
      "h.yaml:3:3: error: unknown field 'intervall' in repository; did you mean 'interval'?",
      "h.yaml:5:3: error: verify.allowedSigners is required unless verify.policy is none "
      "(commits are verified by default; see docs/signing.md)",
      "h.yaml:5:11: error: verify.policy: 'some' is not one of none, head, all",
      "h.yaml:7:11: error: cluster name 'Prod' must be lower case (cluster names are DNS-1123 "
      "labels)",
      "h.yaml:9:5: error: missing required field 'kubeconfig' in clusters[1]",
      "h.yaml:12:11: error: cluster 'y' is listed twice (first at line 10)",
      "h.yaml:15:18: error: sync.driftInterval: 'soon' is not a duration; write it as 30s, 5m, "
      "1h30m or 250ms",
  };

  assert_refused(bad, want, sizeof(want) / sizeof(want[0]));
}
END_TEST

/* W-2 and W-8: credentials over plain http:// are refused at load time,
 * and the URL is quoted without its query values. */
START_TEST(test_svc_hostconfig_refuses_credentials_over_plain_http) {
  const char *bad = "repository:\n"
                    "  url: http://127.0.0.1:8080/egress.git?access_token=ghp_SECRET1234\n"
                    "  tokenFile: /etc/egressd/git-token\n"
                    "verify: {policy: none}\n"
                    "clusters: [{name: a, kubeconfig: a}]\n";
  const char *fine = "repository:\n"
                     "  url: https://u:pw@git.example/egress.git?access_token=ghp_SECRET1234\n"
                     "verify: {policy: none}\n"
                     "clusters: [{name: a, kubeconfig: a}]\n";
  struct hostconfig *c = NULL;
  struct diag_list d = {0};
  struct err e = ERR_INIT;
  char t[512];

  ck_assert_int_eq(hostconfig_parse("h.yaml", bad, strlen(bad), &c, &d, &e), -EINVAL);
  ck_assert_uint_eq(d.n, 1);
  ck_assert_str_eq(diag_format(&d.items[0], t, sizeof(t)),
                   "h.yaml:2:8: error: repository.url "
                   "'http://127.0.0.1:8080/egress.git?access_token=[redacted]' is plain http://: "
                   "refusing to send the token of repository.tokenFile in clear text; use the "
                   "server's https:// URL");
  diag_list_dispose(&d);
  ck_assert_int_eq(hostconfig_parse("h.yaml", fine, strlen(fine), &c, &d, &e), 0);
  ck_assert_str_eq(c->repo.url_shown,
                   "https://u:[redacted]@git.example/egress.git?access_token=[redacted]");
  ck_assert(strstr(c->repo.url, "ghp_SECRET1234")); /* the real URL is what is fetched */
  hostconfig_free(c);
  diag_list_dispose(&d);
}
END_TEST

START_TEST(test_svc_hostconfig_syntax_error_is_a_diagnostic) {
  const char *bad = "repository: {url: [\n";
  struct hostconfig *c = NULL;
  struct diag_list d = {0};
  struct err e = ERR_INIT;

  ck_assert_int_eq(hostconfig_parse("h.yaml", bad, strlen(bad), &c, &d, &e), -EINVAL);
  ck_assert_uint_eq(d.errors, 1);
  ck_assert_str_eq(d.items[0].file, "h.yaml");
  ck_assert(!err_isset(&e));
  diag_list_dispose(&d);
}
END_TEST

START_TEST(test_svc_hostconfig_missing_file_is_io_error) {
  struct hostconfig *c = NULL;
  struct diag_list d = {0};
  struct err e = ERR_INIT;

  ck_assert_int_eq(hostconfig_load("/nonexistent/egressd.yaml", &c, &d, &e), -ENOENT);
  ck_assert_msg(strstr(e.msg, "cannot read the host config") != NULL, "%s", e.msg);
  ck_assert_uint_eq(d.errors, 0);
}
END_TEST

/* What a watch event means, against what egressd knows of the object: the
 * rows a wrong rule would get wrong (an echo taken for drift makes a pass
 * after every write; status taken for drift, a pass per operator update;
 * drift taken for status, a missed correction). */
START_TEST(test_svc_watch_judge_table) {
  static const struct {
    const char *name;
    struct svc_watch_known k;  /* before */
    bool not_ours;             /* no record: judge(NULL, ...) */
    struct svc_watch_seen s;
    bool drift;
    const char *why;           /* when drift */
    const char *rv_after;      /* the known rv after */
  } rows[] = {
      {"echo of egressd's write", {"10", 1, 7, true}, false, {NULL, "10", 1, 7}, false, NULL, "10"},
      {"status only (operator)", {"10", 1, 7, true}, false, {NULL, "11", 1, 7}, false, NULL, "11"},
      {"spec changed", {"10", 1, 7, true}, false, {NULL, "11", 2, 7}, true, "its spec changed", "10"},
      {"labels changed", {"10", 1, 7, true}, false, {NULL, "11", 1, 8}, true,
       "its labels or annotations changed", "10"},
      {"deleted", {"10", 1, 7, true}, false, {NULL, "11", 1, 7, true}, true, "deleted", "10"},
      {"not judged yet: any change", {"10", 0, 0, false}, false, {NULL, "11", 1, 7}, true, "changed",
       "10"},
      {"not judged yet: echo judges it", {"10", 0, 0, false}, false, {NULL, "10", 1, 7}, false, NULL,
       "10"},
      {"pruned by egressd", {"10", 1, 7, true, true}, false, {NULL, "11", 1, 7, true}, false, NULL,
       "10"},
      {"not egressd's", {""}, true, {NULL, "11", 1, 7}, false, NULL, NULL},
      {"gateway broke", {"10", 1, 7, true}, false, {NULL, "11", 1, 7, false, true}, true,
       "reports ReconcileFailed", "10"},
      {"gateway still broken", {"10", 1, 7, true, false, true}, false,
       {NULL, "11", 1, 7, false, true}, false, NULL, "11"},
  };

  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    struct svc_watch_known k = rows[i].k;
    const char *why = NULL;
    bool drift = svc_watch_judge(rows[i].not_ours ? NULL : &k, &rows[i].s, &why);
    ck_assert_msg(drift == rows[i].drift, "%s: drift %d", rows[i].name, drift);
    if (drift)
      ck_assert_msg(why && strcmp(why, rows[i].why) == 0, "%s: why %s", rows[i].name, why);
    if (rows[i].rv_after)
      ck_assert_msg(strcmp(k.rv, rows[i].rv_after) == 0, "%s: rv %s", rows[i].name, k.rv);
  }
}
END_TEST

/* coordination: defaults, and the terms that could let two members write */
START_TEST(test_svc_hostconfig_coordination) {
  const char *base = "repository: {url: file:///r}\n"
                     "verify: {policy: none}\n"
                     "clusters: [{name: a, kubeconfig: a}]\n";
  const char *bad_tail = "coordination:\n"
                         "  kubeconfig: mgmt.kubeconfig\n"
                         "  identity: Host_A\n"
                         "  leaseDuration: 10s\n"
                         "  renewDeadline: 10s\n"
                         "  retryPeriod: 50ms\n";
  const char *want[] = {
      "h.yaml:6:13: error: coordination.identity 'Host_A' must be lower case (it names a Lease: "
      "a DNS-1123 label)",
      "h.yaml:8:18: error: coordination.renewDeadline (10000ms) must be shorter than "
      "leaseDuration (10000ms): a member must stop writing before another may take its clusters",
      "h.yaml:9:16: error: coordination.retryPeriod must be at least 100ms",
  };
  struct hostconfig *c = NULL;
  struct diag_list d = {0};
  struct err e = ERR_INIT;
  char text[1024];

  str_format(text, sizeof(text), "%scoordination: {kubeconfig: /etc/egressd/mgmt, identity: "
                                 "host-a}\n", base);
  ck_assert_ok(hostconfig_parse("/etc/egressd/egressd.yaml", text, strlen(text), &c, &d, &e), &e);
  ck_assert(c->coord.enabled);
  ck_assert(!c->coord.standby);
  ck_assert_str_eq(c->coord.namespace, "egressd-system");
  ck_assert_str_eq(c->coord.identity, "host-a");
  ck_assert(c->coord.lease_duration_usec == 15 * USEC_PER_SEC);
  ck_assert(c->coord.renew_deadline_usec == 10 * USEC_PER_SEC);
  ck_assert(c->coord.retry_period_usec == 2 * USEC_PER_SEC);
  hostconfig_free(c);
  c = NULL;

  str_format(text, sizeof(text), "%s%s", base, bad_tail);
  assert_refused(text, want, sizeof(want) / sizeof(want[0]));
}
END_TEST

/* Rendezvous hashing: the answers test_ha.py computes with Python's
 * BLAKE2b, and a member leaving or joining moves only its own share. */
START_TEST(test_svc_coord_rendezvous) {
  const char *three[] = {"host-a", "host-b", "host-c"}, *four[] = {"host-a", "host-b", "host-c",
                                                                   "host-d"};
  const char *want[] = {"host-c", "host-b", "host-c", "host-c", "host-b", "host-a"};
  char cluster[16];
  size_t moved = 0;

  for (int i = 0; i < 6; i++) {
    str_format(cluster, sizeof(cluster), "c%d", i + 1);
    ck_assert_str_eq(three[coord_rendezvous(three, 3, cluster)], want[i]);
  }
  ck_assert_int_eq(coord_rendezvous(three, 0, "c1"), -1);
  for (int i = 0; i < 1000; i++) {
    int before, after;
    str_format(cluster, sizeof(cluster), "cluster-%d", i);
    before = coord_rendezvous(three, 3, cluster);
    after = coord_rendezvous(four, 4, cluster);
    if (after != before) {
      ck_assert_int_eq(after, 3); /* only ever to the one that joined */
      moved++;
    }
  }
  ck_assert_uint_gt(moved, 150); /* about a quarter */
  ck_assert_uint_lt(moved, 350);
}
END_TEST

static Suite *svc_suite(void) {
  Suite *s = suite_create("svc");
  TCase *tc = tcase_create("hostconfig");

  tcase_add_test(tc, test_svc_hostconfig_good_resolves_paths_and_defaults);
  tcase_add_test(tc, test_svc_hostconfig_reports_every_problem);
  tcase_add_test(tc, test_svc_hostconfig_refuses_credentials_over_plain_http);
  tcase_add_test(tc, test_svc_hostconfig_syntax_error_is_a_diagnostic);
  tcase_add_test(tc, test_svc_hostconfig_missing_file_is_io_error);
  tcase_add_test(tc, test_svc_hostconfig_coordination);
  suite_add_tcase(s, tc);
  tc = tcase_create("coord");
  tcase_add_test(tc, test_svc_coord_rendezvous);
  suite_add_tcase(s, tc);
  tc = tcase_create("watch");
  tcase_add_test(tc, test_svc_watch_judge_table);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return testutil_run(svc_suite()); }
