/* Unit tests for daemon/intent: every validation rule with its exact message
 * and position. Each test loads a small repo: a Fleet and gateways that are
 * valid, plus the document under test. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "intent/intent.h"
#include "testutil.h"

static const char *fleet = "apiVersion: egressd.io/v1\n"
                           "kind: Fleet\n"
                           "metadata: {name: test}\n"
                           "spec:\n"
                           "  clusters:\n"
                           "    - {name: canary, labels: {env: staging}}\n"
                           "    - {name: prod, labels: {env: prod}}\n";

static const char *gateways = "apiVersion: egressd.io/v1\n"
                              "kind: EgressGateway\n"
                              "metadata: {name: gw, namespace: egress}\n"
                              "spec:\n"
                              "  controlPlane: {name: cp, namespace: istio-system}\n"
                              "  service:\n"
                              "    ports:\n"
                              "      - {name: http, port: 80, targetPort: 8080}\n"
                              "      - {name: tls, port: 443, targetPort: 8443}\n"
                              "---\n"
                              "apiVersion: egressd.io/v1\n"
                              "kind: EgressGateway\n"
                              "metadata: {name: other, namespace: egress}\n"
                              "spec:\n"
                              "  controlPlane: {name: cp, namespace: istio-system}\n"
                              "  service:\n"
                              "    ports:\n"
                              "      - {name: http, port: 80, targetPort: 8080}\n"
                              "      - {name: tls, port: 443, targetPort: 8443}\n";

struct loaded {
  struct intent_repo *repo;
  struct diag_list diags;
  int r;
};

/* Load fleet.yaml + gateways.yaml + the given (path, text) pairs (NULL-terminated). */
static struct loaded load(const char *path, ...) {
  struct fileset fs;
  struct err e = ERR_INIT;
  struct loaded l = {0};
  va_list ap;

  fileset_init(&fs, NULL);
  ck_assert_ok(fileset_add(&fs, "fleet.yaml", fleet, strlen(fleet), &e), &e);
  ck_assert_ok(fileset_add(&fs, "gateways.yaml", gateways, strlen(gateways), &e), &e);
  va_start(ap, path);
  for (const char *p = path; p; p = va_arg(ap, const char *)) {
    const char *text = va_arg(ap, const char *);
    ck_assert_ok(fileset_add(&fs, p, text, strlen(text), &e), &e);
  }
  va_end(ap);
  l.r = intent_repo_load(&fs, NULL, &l.repo, &l.diags, &e);
  ck_assert_msg(!err_isset(&e), "%s", e.msg);
  diag_sort(&l.diags);
  fileset_dispose(&fs);
  return l;
}

static void loaded_dispose(struct loaded *l) {
  intent_repo_free(l->repo);
  diag_list_dispose(&l->diags);
}

/* Assert the diagnostics are exactly @want (sorted), printing all on failure. */
static void expect(struct loaded *l, const char *const *want, size_t n) {
  char t[1024], all[8192] = "";
  size_t used = 0;

  for (size_t i = 0; i < l->diags.n; i++)
    used += str_format(all + used, sizeof(all) - used, "\n  %s",
                       diag_format(&l->diags.items[i], t, sizeof(t)));
  ck_assert_msg(l->diags.n == n, "expected %zu diagnostics, got %zu:%s", n, l->diags.n, all);
  for (size_t i = 0; i < n; i++)
    ck_assert_msg(strcmp(diag_format(&l->diags.items[i], t, sizeof(t)), want[i]) == 0,
                  "diagnostic %zu:\n  got  %s\n  want %s", i, t, want[i]);
}

#define EXPECT(l, ...)                                                   \
  do {                                                                   \
    static const char *const want_[] = {__VA_ARGS__};                    \
    expect((l), want_, sizeof(want_) / sizeof(want_[0]));                \
  } while (0)

#define INTENT_HEAD "apiVersion: egressd.io/v1\nkind: EgressIntent\n"

START_TEST(test_intent_valid_repo_loads) {
  struct loaded l = load("intents/a.yaml",
                         INTENT_HEAD "metadata: {name: httpbin, namespace: smm-demo}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [httpbin.org]\n"
                                     "  ports: [{number: 80, protocol: HTTP}]\n",
                         NULL);

  ck_assert_int_eq(l.r, 0);
  ck_assert_uint_eq(l.diags.n, 0);
  ck_assert_uint_eq(l.repo->n_intents, 1);
  ck_assert_str_eq(l.repo->intents[0]->id, "smm-demo/httpbin");
  ck_assert_str_eq(l.repo->intents[0]->gateway->id, "egress/gw");
  ck_assert_int_eq(l.repo->intents[0]->ports[0].target_port, 80);
  ck_assert_uint_eq(l.repo->n_gateways, 2);
  ck_assert_str_eq(l.repo->fleet->name, "test");
  ck_assert_uint_eq(l.repo->fleet->n_clusters, 2);
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_unknown_field_typo) {
  struct loaded l = load("i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [a.example.com]\n"
                                     "  ports:\n"
                                     "    - number: 443\n"
                                     "      protocol: TLS\n"
                                     "      sni_hosts: [a.example.com]\n"
                                     "  tls_origination: false\n",
                         NULL);

  ck_assert_int_eq(l.r, -EINVAL);
  EXPECT(&l, "i.yaml:10:7: error: unknown field 'sni_hosts' in spec.ports[0]",
         "i.yaml:11:3: error: unknown field 'tls_origination' in spec; did you mean "
         "'tlsOrigination'?");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_unknown_field_without_suggestion) {
  struct loaded l = load("i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [a.example.com]\n"
                                     "  ports: [{number: 80, protocol: HTTP}]\n"
                                     "  retries: 3\n",
                         NULL);

  EXPECT(&l, "i.yaml:8:3: error: unknown field 'retries' in spec");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_duplicate_key) {
  struct loaded l = load("i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [a.example.com]\n"
                                     "  gateway: egress/other\n"
                                     "  ports: [{number: 80, protocol: HTTP}]\n",
                         NULL);

  EXPECT(&l, "i.yaml:7:3: error: duplicate key 'gateway' (first defined at line 5, column 3); "
             "remove one of them");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_wrong_types) {
  struct loaded l = load("i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: a.example.com\n"
                                     "  ports: [{number: \"80\", protocol: HTTP}]\n"
                                     "  enforce: yes\n",
                         NULL);

  EXPECT(&l,
         "i.yaml:6:10: error: spec.hosts must be a list of host names, not the string "
         "\"a.example.com\"",
         "i.yaml:7:20: error: spec.ports[0].number must be a port number (1-65535), not the "
         "string \"80\"",
         "i.yaml:8:12: error: spec.enforce must be a boolean (true or false), not the string "
         "\"yes\"");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_missing_required_fields) {
  struct loaded l = load("i.yaml",
                         INTENT_HEAD "metadata: {name: a}\n"
                                     "spec:\n"
                                     "  hosts: [a.example.com]\n",
                         NULL);

  EXPECT(&l, "i.yaml:3:11: error: missing required field 'namespace' in metadata",
         "i.yaml:5:3: error: missing required field 'gateway' in spec",
         "i.yaml:5:3: error: missing required field 'ports' in spec");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_names_not_dns1123) {
  struct loaded l = load("i.yaml",
                         INTENT_HEAD "metadata: {name: My_Intent, namespace: Payments}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [a.example.com]\n"
                                     "  ports: [{number: 80, protocol: HTTP}]\n",
                         NULL);

  EXPECT(&l, "i.yaml:1:1: error: intent name 'My_Intent' must be lower case",
         "i.yaml:1:1: error: namespace 'Payments' must be lower case");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_hosts_must_be_fqdn) {
  struct loaded l = load("i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts:\n"
                                     "    - localhost\n"
                                     "    - api*.example.com\n"
                                     "    - \"*.example.com\"\n"
                                     "    - a..example.com\n"
                                     "    - ok.example.com\n"
                                     "    - ok.example.com\n"
                                     "  ports: [{number: 80, protocol: HTTP}]\n",
                         NULL);

  EXPECT(&l,
         "i.yaml:7:7: error: host 'localhost' is not fully qualified; write the full domain name "
         "(api.example.com)",
         "i.yaml:8:7: error: host 'api*.example.com' may use a wildcard only as the whole first "
         "label (*.example.com)",
         "i.yaml:9:7: error: host '*.example.com' is a wildcard; an egress gateway forwards to one "
         "resolvable host: give the intent that one host as upstream (the server that hosts every "
         "name the wildcard covers, such as www.example.com), with the wildcard its only host, or "
         "list the hosts",
         "i.yaml:10:7: error: host 'a..example.com' has an empty label between dots",
         "i.yaml:12:7: error: host 'ok.example.com' is listed twice in intent ns/a");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_ports_range_and_protocols) {
  struct loaded l = load("i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [a.example.com]\n"
                                     "  ports:\n"
                                     "    - {number: 0, protocol: HTTP}\n"
                                     "    - {number: 70000, protocol: HTTP}\n"
                                     "    - {number: 443, protocol: QUIC}\n",
                         NULL);

  EXPECT(&l, "i.yaml:8:16: error: spec.ports[0].number: 0 is out of range 1-65535",
         "i.yaml:9:16: error: spec.ports[1].number: 70000 is out of range 1-65535",
         "i.yaml:10:31: error: spec.ports[2].protocol: 'QUIC' is not one of HTTP, HTTPS, TLS, TCP");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_non_root_target_port_below_1024) {
  const char *gw = "apiVersion: egressd.io/v1\n"
                   "kind: EgressGateway\n"
                   "metadata: {name: lowport, namespace: egress}\n"
                   "spec:\n"
                   "  controlPlane: {name: cp, namespace: istio-system}\n"
                   "  service:\n"
                   "    ports:\n"
                   "      - {name: http, port: 80, targetPort: 80}\n"
                   "      - {name: tls, port: 443}\n"
                   "---\n"
                   "apiVersion: egressd.io/v1\n"
                   "kind: EgressGateway\n"
                   "metadata: {name: rootgw, namespace: egress}\n"
                   "spec:\n"
                   "  controlPlane: {name: cp, namespace: istio-system}\n"
                   "  runAsRoot: true\n"
                   "  service:\n"
                   "    ports:\n"
                   "      - {name: http, port: 80, targetPort: 80}\n";
  struct loaded l = load("gw2.yaml", gw, NULL);

  EXPECT(&l,
         "gw2.yaml:8:9: error: targetPort 80 is below 1024 but the gateway runs as non-root and "
         "cannot bind it; use a targetPort above 1024 (for example 8080) or set spec.runAsRoot: "
         "true",
         "gw2.yaml:9:9: error: targetPort 443 is below 1024 but the gateway runs as non-root and "
         "cannot bind it; use a targetPort above 1024 (for example 8443) or set spec.runAsRoot: "
         "true");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_gateway_port_name_must_carry_protocol) {
  const char *gw = "apiVersion: egressd.io/v1\n"
                   "kind: EgressGateway\n"
                   "metadata: {name: named, namespace: egress}\n"
                   "spec:\n"
                   "  controlPlane: {name: cp, namespace: istio-system}\n"
                   "  service:\n"
                   "    ports:\n"
                   "      - {name: web, port: 80, targetPort: 8080}\n"
                   "      - {name: http-alt, port: 8081, targetPort: 8081}\n"
                   "      - {name: http-alt, port: 8082, targetPort: 8082}\n";
  struct loaded l = load("gw2.yaml", gw, NULL);

  EXPECT(&l,
         "gw2.yaml:8:9: error: gateway port name 'web' does not say its protocol; name it http, "
         "http-<suffix>, https, https-<suffix>, tls, tls-<suffix>, tcp or tcp-<suffix> (Istio "
         "selects the protocol from the name)",
         "gw2.yaml:10:9: error: gateway egress/named has port name 'http-alt' twice (also at line "
         "9)");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_gateway_reference_must_exist) {
  struct loaded l = load("i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: gw\n"
                                     "  hosts: [a.example.com]\n"
                                     "  ports: [{number: 80, protocol: HTTP}]\n"
                                     "---\n" INTENT_HEAD
                                     "metadata: {name: b, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/nope\n"
                                     "  hosts: [b.example.com]\n"
                                     "  ports: [{number: 80, protocol: HTTP}]\n",
                         NULL);

  EXPECT(&l,
         "i.yaml:1:1: error: intent ns/a: no EgressGateway 'gw' in namespace 'ns'; did you mean "
         "'egress/gw' (write the namespace: gateway: egress/gw)?",
         "i.yaml:9:1: error: intent ns/b: no EgressGateway 'egress/nope' in the config repo");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_port_must_be_served_by_gateway) {
  struct loaded l = load("i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [a.example.com]\n"
                                     "  ports:\n"
                                     "    - {number: 8443, protocol: TLS}\n"
                                     "    - {number: 443, protocol: HTTP}\n",
                         NULL);

  EXPECT(&l,
         "i.yaml:8:7: error: gateway egress/gw has no service port 8443; add it to the gateway's "
         "spec.service.ports (for example {name: tls-8443, port: 8443, targetPort: 8443})",
         "i.yaml:9:7: error: port 443 is HTTP here but gateway egress/gw serves it as TLS (port "
         "'tls'); use another port or another gateway");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_same_host_port_through_two_gateways) {
  struct loaded l = load("i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: team-a}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [api.stripe.com]\n"
                                     "  ports: [{number: 443, protocol: TLS}]\n"
                                     "---\n" INTENT_HEAD
                                     "metadata: {name: b, namespace: team-b}\n"
                                     "spec:\n"
                                     "  gateway: egress/other\n"
                                     "  hosts: [api.stripe.com]\n"
                                     "  ports: [{number: 443, protocol: TLS}]\n",
                         NULL);

  EXPECT(&l, "i.yaml:14:11: error: host 'api.stripe.com' port 443 goes through gateway "
             "egress/other here, but intent team-a/a (i.yaml:1) already sends it through gateway "
             "egress/gw; a host and port can leave through one gateway per cluster");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_same_host_through_same_gateway_other_namespace_ok) {
  struct loaded l = load("i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: team-a}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [api.stripe.com]\n"
                                     "  ports: [{number: 443, protocol: TLS}]\n"
                                     "---\n" INTENT_HEAD
                                     "metadata: {name: b, namespace: team-b}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [api.stripe.com]\n"
                                     "  ports: [{number: 443, protocol: TLS}]\n",
                         NULL);

  ck_assert_int_eq(l.r, 0);
  ck_assert_uint_eq(l.diags.n, 0);
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_disjoint_clusters_may_use_other_gateways) {
  struct loaded l = load("i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: team-a}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [api.stripe.com]\n"
                                     "  ports: [{number: 443, protocol: TLS}]\n"
                                     "  clusters: {matchLabels: {env: prod}}\n"
                                     "---\n" INTENT_HEAD
                                     "metadata: {name: b, namespace: team-b}\n"
                                     "spec:\n"
                                     "  gateway: egress/other\n"
                                     "  hosts: [api.stripe.com]\n"
                                     "  ports: [{number: 443, protocol: TLS}]\n"
                                     "  clusters: {matchLabels: {env: staging}}\n",
                         NULL);

  ck_assert_int_eq(l.r, 0);
  ck_assert_uint_eq(l.diags.n, 0);
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_same_host_twice_in_namespace) {
  struct loaded l = load("i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [api.example.com]\n"
                                     "  ports: [{number: 80, protocol: HTTP}]\n"
                                     "---\n" INTENT_HEAD
                                     "metadata: {name: b, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [api.example.com]\n"
                                     "  ports: [{number: 443, protocol: TLS}]\n",
                         NULL);

  EXPECT(&l, "i.yaml:14:11: error: host 'api.example.com' is already claimed in namespace 'ns' "
             "by intent ns/a (i.yaml:1); one intent per host and namespace, so merge the two");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_selector_matching_no_cluster) {
  struct loaded l = load("i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [a.example.com]\n"
                                     "  ports: [{number: 80, protocol: HTTP}]\n"
                                     "  clusters:\n"
                                     "    matchLabels: {env: qa}\n",
                         NULL);

  EXPECT(&l, "i.yaml:9:5: error: the cluster selector of intent ns/a matches no cluster of the "
             "Fleet");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_gateway_not_deployed_where_intent_applies) {
  const char *gw = "apiVersion: egressd.io/v1\n"
                   "kind: EgressGateway\n"
                   "metadata: {name: prodonly, namespace: egress}\n"
                   "spec:\n"
                   "  controlPlane: {name: cp, namespace: istio-system}\n"
                   "  service:\n"
                   "    ports: [{name: http, port: 80, targetPort: 8080}]\n"
                   "  clusters: {matchLabels: {env: prod}}\n";
  struct loaded l = load("gw2.yaml", gw, "i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/prodonly\n"
                                     "  hosts: [a.example.com]\n"
                                     "  ports: [{number: 80, protocol: HTTP}]\n",
                         NULL);

  EXPECT(&l, "i.yaml:1:1: error: intent ns/a applies to cluster 'canary' but its gateway "
             "egress/prodonly is not deployed there (see the gateway's spec.clusters)");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_tls_origination_needs_http) {
  struct loaded l = load("i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [a.example.com]\n"
                                     "  ports: [{number: 443, protocol: TLS}]\n"
                                     "  tlsOrigination: true\n",
                         NULL);

  EXPECT(&l, "i.yaml:7:11: error: tlsOrigination: the application speaks plain HTTP and the "
             "gateway originates TLS, so every port must be HTTP, not TLS");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_same_host_port_same_gateway_different_meaning) {
  /* a originates TLS for api.example.com:80, c sends it plain: Istio would
   * merge the gateway routes of the host and one namespace would get the
   * other's */
  struct loaded l = load("i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: team-a}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [api.example.com]\n"
                                     "  ports: [{number: 80, protocol: HTTP}]\n"
                                     "  tlsOrigination: true\n"
                                     "---\n" INTENT_HEAD
                                     "metadata: {name: c, namespace: team-c}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [api.example.com]\n"
                                     "  ports: [{number: 80, protocol: HTTP}]\n"
                                     "---\n" INTENT_HEAD
                                     "metadata: {name: d, namespace: team-d}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [api.example.com]\n"
                                     "  ports: [{number: 80, protocol: HTTP, targetPort: 8443}]\n"
                                     "  tlsOrigination: true\n",
                         NULL);

  EXPECT(&l,
         "i.yaml:16:11: error: host 'api.example.com' port 80 goes through gateway egress/gw here "
         "and in intent team-a/a (i.yaml:7), but the two differ in TLS origination (one "
         "originates TLS at the gateway, the other does not); Istio merges one gateway's routes "
         "of a host, so one namespace would get the other's: make them agree or use another "
         "gateway",
         "i.yaml:24:11: error: host 'api.example.com' port 80 goes through gateway egress/gw here "
         "and in intent team-a/a (i.yaml:7), but the two differ in the port on the external host "
         "(targetPort); Istio merges one gateway's routes of a host, so one namespace would get "
         "the other's: make them agree or use another gateway");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_same_host_port_same_gateway_same_meaning_ok) {
  struct loaded l = load("i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: team-a}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [api.example.com]\n"
                                     "  ports: [{number: 80, protocol: HTTP}]\n"
                                     "  tlsOrigination: true\n"
                                     "  caCertificates: /etc/egress/ca.pem\n"
                                     "---\n" INTENT_HEAD
                                     "metadata: {name: b, namespace: team-b}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [api.example.com]\n"
                                     "  ports: [{number: 80, protocol: HTTP}]\n"
                                     "  tlsOrigination: true\n"
                                     "  caCertificates: /etc/egress/ca.pem\n",
                         NULL);

  ck_assert_int_eq(l.r, 0);
  ck_assert_uint_eq(l.diags.n, 0);
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_origination_ca_fields) {
  struct loaded l = load("i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [a.example.com]\n"
                                     "  ports: [{number: 80, protocol: HTTP}]\n"
                                     "  caCertificates: /etc/ssl/ca.pem\n"
                                     "---\n" INTENT_HEAD
                                     "metadata: {name: b, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [b.example.com]\n"
                                     "  ports: [{number: 80, protocol: HTTP}]\n"
                                     "  tlsOrigination: true\n"
                                     "  caCertificates: ca.pem\n"
                                     "  credentialName: Bad_Name\n",
                         NULL);

  EXPECT(&l,
         "i.yaml:8:19: error: caCertificates says how the gateway verifies the server it "
         "originates TLS to, but intent ns/a does not originate TLS (tlsOrigination: true)",
         "i.yaml:18:19: error: caCertificates 'ca.pem' must be an absolute path in the gateway pod "
         "(for example /etc/ssl/certs/ca-certificates.crt)",
         "i.yaml:18:19: error: caCertificates and credentialName both name the CA to verify "
         "against; give one (a file in the gateway pod, or a Secret with ca.crt in the gateway's "
         "namespace)",
         "i.yaml:18:19: error: credentialName 'Bad_Name' must be lower case (it names a Secret)");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_gateway_placement_fields) {
  struct loaded l = load("g.yaml",
                         "apiVersion: egressd.io/v1\n"
                         "kind: EgressGateway\n"
                         "metadata: {name: egw, namespace: egress}\n"
                         "spec:\n"
                         "  controlPlane: {name: cp, namespace: istio-system}\n"
                         "  service: {ports: [{name: tls, port: 443, targetPort: 8443}]}\n"
                         "  nodeSelector: {node-role.example.com/egress: \"true\"}\n"
                         "  tolerations:\n"
                         "    - {key: dedicated, operator: Equal, value: egress, effect: NoSchedule}\n"
                         "    - {operator: Exists, value: x}\n"
                         "    - {key: k, effect: NoSchedule, tolerationSeconds: 30}\n"
                         "    - {key: k, operator: Matches}\n"
                         "  affinity:\n"
                         "    nodeAffinity:\n"
                         "      requiredDuringSchedulingIgnoredDuringExecution:\n"
                         "        nodeSelectorTerms:\n"
                         "          - matchExpressions: [{key: zone, operator: Within, values: [a]}]\n"
                         "  resources:\n"
                         "    requests: {cpu: 200m, memory: 256Mi, ephemeral-storage: 1e3}\n"
                         "    limits: {memory: 512MB, cpu: half}\n",
                         NULL);

  EXPECT(&l,
         "g.yaml:10:7: error: toleration 2: operator Exists matches any value; remove value",
         "g.yaml:11:7: error: toleration 3: tolerationSeconds applies only to effect NoExecute",
         "g.yaml:12:26: error: spec.tolerations[3].operator: 'Matches' is not one of Exists, Equal",
         "g.yaml:17:54: error: spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuring"
         "Execution.nodeSelectorTerms[0].matchExpressions[0].operator: 'Within' is not one of In, "
         "NotIn, Exists, DoesNotExist, Gt, Lt",
         "g.yaml:20:22: error: resources.limits.memory: '512MB' is not a Kubernetes quantity; write a "
         "number with an optional suffix, such as 100m (CPU) or 128Mi (memory)",
         "g.yaml:20:34: error: resources.limits.cpu: 'half' is not a Kubernetes quantity; write a "
         "number with an optional suffix, such as 100m (CPU) or 128Mi (memory)");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_tcp_by_name_and_by_address) {
  struct loaded l = load("tcp-gateway.yaml",
                         "apiVersion: egressd.io/v1\n"
                         "kind: EgressGateway\n"
                         "metadata: {name: tcp, namespace: egress}\n"
                         "spec:\n"
                         "  controlPlane: {name: cp, namespace: istio-system}\n"
                         "  service:\n"
                         "    ports:\n"
                         "      - {name: tcp-pg, port: 5432, targetPort: 15432}\n"
                         "      - {name: http, port: 80, targetPort: 8080}\n",
                         "i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/tcp\n"
                                     "  hosts: [db.example.com, 10.1.2.3, 10.1.2.4/32]\n"
                                     "  ports: [{number: 5432, protocol: TCP}]\n"
                                     "---\n" INTENT_HEAD
                                     "metadata: {name: b, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/tcp\n"
                                     "  hosts: [replica.example.com, 10.9.0.0/16]\n"
                                     "  ports: [{number: 5432, protocol: TCP}]\n"
                                     "---\n" INTENT_HEAD
                                     "metadata: {name: c, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/tcp\n"
                                     "  hosts: [10.1.2.5]\n"
                                     "  ports: [{number: 80, protocol: HTTP}]\n"
                                     "---\n" INTENT_HEAD
                                     "metadata: {name: d, namespace: other}\n"
                                     "spec:\n"
                                     "  gateway: egress/tcp\n"
                                     "  hosts: [replica.example.com]\n"
                                     "  ports: [{number: 5432, protocol: TCP}]\n"
                                     "---\n" INTENT_HEAD
                                     "metadata: {name: e, namespace: ns2}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [x.example.com]\n"
                                     "  ports: [{number: 443, protocol: TCP}]\n",
                         NULL);

  EXPECT(&l,
         "i.yaml:14:32: error: host '10.9.0.0/16' is an address range; an egress gateway connects to "
         "one address it knows (the client's original destination does not reach it), so list the "
         "addresses one by one (10.9.0.0)",
         "i.yaml:15:11: error: port 5432 of namespace 'ns' goes to 'replica.example.com' here and to "
         "'db.example.com' in intent ns/a (i.yaml:7); TCP to a host name is routed by port alone (a "
         "TCP connection names no host), so one port can go to one such host per namespace: use "
         "another port, or the host's address",
         "i.yaml:22:11: error: host '10.1.2.5' is an address, which only TCP can reach (a TLS SNI and "
         "an HTTP Host name a host): give every port of intent ns/c protocol TCP, or name the host",
         "i.yaml:39:11: error: port 443 is TCP here but gateway egress/gw serves it as TLS (port "
         "'tls'); use another port or another gateway");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_wildcard_host_needs_its_upstream) {
  struct loaded l = load("i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [\"*.wikipedia.org\"]\n"
                                     "  upstream: www.wikipedia.org\n"
                                     "  ports: [{number: 443, protocol: TLS}]\n"
                                     "---\n" INTENT_HEAD
                                     "metadata: {name: b, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [\"*.example.org\"]\n"
                                     "  ports: [{number: 443, protocol: TLS}]\n"
                                     "---\n" INTENT_HEAD
                                     "metadata: {name: c, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [\"*.example.net\"]\n"
                                     "  upstream: example.net\n"
                                     "  ports: [{number: 80, protocol: HTTP}]\n"
                                     "  tlsOrigination: true\n"
                                     "---\n" INTENT_HEAD
                                     "metadata: {name: d, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [d.example.com]\n"
                                     "  upstream: d.example.com\n"
                                     "  ports: [{number: 443, protocol: TLS}]\n",
                         NULL);

  EXPECT(&l,
         "i.yaml:15:11: error: host '*.example.org' is a wildcard; an egress gateway forwards to one "
         "resolvable host: give the intent that one host as upstream (the server that hosts every "
         "name the wildcard covers, such as www.example.org), with the wildcard its only host, or "
         "list the hosts",
         "i.yaml:24:13: error: tlsOrigination cannot serve a wildcard host: the gateway would open "
         "TLS to the upstream for every name, with the upstream's name as SNI, whatever name the "
         "application asked for; originate TLS per named host instead",
         "i.yaml:24:13: error: upstream 'example.net' is not one of the names '*.example.net' "
         "covers; the gateway must reach a server of those names",
         "i.yaml:34:13: error: upstream is where the gateway sends the names of a wildcard host; "
         "intent ns/d has no wildcard host");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_network_policy_needs_enforce) {
  struct loaded l = load("i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [a.example.com]\n"
                                     "  ports: [{number: 443, protocol: TLS}]\n"
                                     "  networkPolicy: true\n",
                         NULL);

  EXPECT(&l, "i.yaml:8:18: error: networkPolicy locks the namespace down below the mesh, which "
             "only enforce: true asks for; set enforce: true on intent ns/a too");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_kind_and_api_version) {
  struct loaded l = load("i.yaml",
                         "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                         "metadata: {name: a}\n"
                         "---\n"
                         "apiVersion: egressd.io/v1\nkind: EgressIntnet\n"
                         "metadata: {name: a}\n",
                         NULL);

  EXPECT(&l,
         "i.yaml:1:13: error: apiVersion must be egressd.io/v1, not 'networking.istio.io/v1'; "
         "Kubernetes manifests do not belong in the config repo (to change what egressd "
         "renders, override a template under templates/)",
         "i.yaml:6:7: error: unknown kind 'EgressIntnet'; did you mean 'EgressIntent'? "
         "(egressd.io/v1 has EgressGateway, EgressIntent and Fleet)");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_duplicates_and_second_fleet) {
  struct loaded l = load("i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [a.example.com]\n"
                                     "  ports: [{number: 80, protocol: HTTP}]\n",
                         "j.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [b.example.com]\n"
                                     "  ports: [{number: 80, protocol: HTTP}]\n"
                                     "---\n"
                                     "apiVersion: egressd.io/v1\nkind: Fleet\n"
                                     "metadata: {name: again}\n"
                                     "spec: {clusters: [{name: x}]}\n",
                         NULL);

  EXPECT(&l, "j.yaml:1:1: error: EgressIntent ns/a is defined twice (first at i.yaml:1)",
         "j.yaml:9:1: error: a second Fleet 'again'; the config repo has exactly one (the first "
         "is 'test' at fleet.yaml:1)");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_yaml_syntax_error_and_others_reported_together) {
  struct loaded l = load("bad.yaml", "a: [1, 2\n", "i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [a.example.com]\n"
                                     "  ports: [{number: 99999, protocol: HTTP}]\n",
                         NULL);

  ck_assert_uint_eq(l.diags.n, 2);
  ck_assert_str_eq(l.diags.items[0].file, "bad.yaml");
  ck_assert_msg(strstr(l.diags.items[0].msg, "YAML syntax error") != NULL, "%s",
                l.diags.items[0].msg);
  ck_assert_str_eq(l.diags.items[1].file, "i.yaml");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_selector_semantics) {
  struct loaded l = load("i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [a.example.com]\n"
                                     "  ports: [{number: 80, protocol: HTTP}]\n"
                                     "  clusters:\n"
                                     "    matchExpressions:\n"
                                     "      - {key: env, operator: NotIn, values: [staging]}\n"
                                     "      - {key: env, operator: Exists}\n",
                         NULL);
  const struct intent *in;

  ck_assert_int_eq(l.r, 0);
  in = l.repo->intents[0];
  ck_assert(!intent_applies_to(in, intent_fleet_cluster_find(l.repo->fleet, "canary")));
  ck_assert(intent_applies_to(in, intent_fleet_cluster_find(l.repo->fleet, "prod")));
  ck_assert(intent_applies_to(in, NULL));
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_missing_fleet) {
  struct fileset fs;
  struct intent_repo *repo = NULL;
  struct diag_list d = {0};
  struct err e = ERR_INIT;

  fileset_init(&fs, NULL);
  ck_assert_ok(fileset_add(&fs, "gateways.yaml", gateways, strlen(gateways), &e), &e);
  ck_assert_int_eq(intent_repo_load(&fs, NULL, &repo, &d, &e), -EINVAL);
  ck_assert_uint_eq(d.n, 1);
  ck_assert_msg(strstr(d.items[0].msg, "the config repo has no Fleet") != NULL, "%s",
                d.items[0].msg);
  diag_list_dispose(&d);
  fileset_dispose(&fs);
}
END_TEST

START_TEST(test_intent_example_repo_is_valid) {
  struct fileset fs;
  struct intent_repo *repo = NULL;
  struct diag_list d = {0};
  struct err e = ERR_INIT;
  static const char *const yaml[] = {".yaml", NULL};

  fileset_init(&fs, NULL);
  ck_assert_ok(fileset_load_dir(&fs, TEST_SOURCE_DIR "/repo-layout/example", yaml, &e), &e);
  ck_assert_ok(intent_repo_load(&fs, NULL, &repo, &d, &e), &e);
  ck_assert_uint_eq(d.n, 0);
  ck_assert_uint_ge(repo->n_intents, 6);
  ck_assert_uint_eq(repo->n_gateways, 2);
  ck_assert_uint_ge(repo->fleet->n_clusters, 3);
  intent_repo_free(repo);
  fileset_dispose(&fs);
}
END_TEST


START_TEST(test_intent_selector_expressions_need_values_as_kubernetes) {
  struct loaded l = load("i.yaml",
                         INTENT_HEAD "metadata: {name: a, namespace: ns}\n"
                                     "spec:\n"
                                     "  gateway: egress/gw\n"
                                     "  hosts: [a.example.com]\n"
                                     "  ports: [{number: 80, protocol: HTTP}]\n"
                                     "  clusters:\n"
                                     "    matchExpressions:\n"
                                     "      - {key: env, operator: In}\n"
                                     "      - {key: env, operator: Exists, values: [prod]}\n"
                                     "      - {key: env, operator: Near}\n",
                         NULL);

  EXPECT(&l, "i.yaml:10:9: error: selector expression on 'env': In needs at least one value",
         "i.yaml:11:9: error: selector expression on 'env': Exists takes no values",
         "i.yaml:12:30: error: spec.clusters.matchExpressions[2].operator: 'Near' is not one of In, "
         "NotIn, Exists, DoesNotExist");
  loaded_dispose(&l);
}
END_TEST

START_TEST(test_intent_fleet_name_and_empty_control_plane) {
  struct fileset fs;
  struct intent_repo *repo = NULL;
  struct diag_list d = {0};
  struct err e = ERR_INIT;
  char t[512];
  const char *f = "apiVersion: egressd.io/v1\nkind: Fleet\nmetadata: {name: My Fleet}\n"
                  "spec: {clusters: [{name: c1}]}\n";
  const char *g = "apiVersion: egressd.io/v1\nkind: EgressGateway\n"
                  "metadata: {name: gw, namespace: egress}\n"
                  "spec:\n  controlPlane: {name: '', namespace: istio-system}\n"
                  "  service: {ports: [{name: http, port: 80, targetPort: 8080}]}\n";
  static const char *const known[] = {"virtualservice.yaml", NULL};
  struct intent_load_options o = {.known_templates = known};

  fileset_init(&fs, NULL);
  ck_assert_ok(fileset_add(&fs, "fleet.yaml", f, strlen(f), &e), &e);
  ck_assert_ok(fileset_add(&fs, "gw.yaml", g, strlen(g), &e), &e);
  ck_assert_ok(fileset_add(&fs, "templates/virtualservices.yaml", "a: 1\n", 5, &e), &e);
  ck_assert_int_eq(intent_repo_load(&fs, &o, &repo, &d, &e), -EINVAL);
  diag_sort(&d);
  ck_assert_uint_eq(d.n, 3);
  ck_assert_str_eq(diag_format(&d.items[0], t, sizeof(t)),
                   "fleet.yaml:1:1: error: Fleet name 'My Fleet' must be lower case");
  ck_assert_str_eq(diag_format(&d.items[1], t, sizeof(t)),
                   "gw.yaml:1:1: error: control plane name '' is empty");
  ck_assert_str_eq(diag_format(&d.items[2], t, sizeof(t)),
                   "templates/virtualservices.yaml: warning: not a template egressd renders, so it "
                   "is ignored (the templates are named after what they render: see "
                   "docs/templates.md)");
  diag_list_dispose(&d);
  fileset_dispose(&fs);
}
END_TEST

static Suite *intent_suite(void) {
  Suite *s = suite_create("intent");
  TCase *tc = tcase_create("validation");

  tcase_add_test(tc, test_intent_valid_repo_loads);
  tcase_add_test(tc, test_intent_unknown_field_typo);
  tcase_add_test(tc, test_intent_unknown_field_without_suggestion);
  tcase_add_test(tc, test_intent_duplicate_key);
  tcase_add_test(tc, test_intent_wrong_types);
  tcase_add_test(tc, test_intent_missing_required_fields);
  tcase_add_test(tc, test_intent_names_not_dns1123);
  tcase_add_test(tc, test_intent_hosts_must_be_fqdn);
  tcase_add_test(tc, test_intent_ports_range_and_protocols);
  tcase_add_test(tc, test_intent_non_root_target_port_below_1024);
  tcase_add_test(tc, test_intent_gateway_port_name_must_carry_protocol);
  tcase_add_test(tc, test_intent_gateway_reference_must_exist);
  tcase_add_test(tc, test_intent_port_must_be_served_by_gateway);
  tcase_add_test(tc, test_intent_same_host_port_through_two_gateways);
  tcase_add_test(tc, test_intent_same_host_through_same_gateway_other_namespace_ok);
  tcase_add_test(tc, test_intent_disjoint_clusters_may_use_other_gateways);
  tcase_add_test(tc, test_intent_same_host_twice_in_namespace);
  tcase_add_test(tc, test_intent_selector_matching_no_cluster);
  tcase_add_test(tc, test_intent_gateway_not_deployed_where_intent_applies);
  tcase_add_test(tc, test_intent_tls_origination_needs_http);
  tcase_add_test(tc, test_intent_same_host_port_same_gateway_different_meaning);
  tcase_add_test(tc, test_intent_same_host_port_same_gateway_same_meaning_ok);
  tcase_add_test(tc, test_intent_origination_ca_fields);
  tcase_add_test(tc, test_intent_gateway_placement_fields);
  tcase_add_test(tc, test_intent_tcp_by_name_and_by_address);
  tcase_add_test(tc, test_intent_wildcard_host_needs_its_upstream);
  tcase_add_test(tc, test_intent_network_policy_needs_enforce);
  tcase_add_test(tc, test_intent_kind_and_api_version);
  tcase_add_test(tc, test_intent_duplicates_and_second_fleet);
  tcase_add_test(tc, test_intent_yaml_syntax_error_and_others_reported_together);
  tcase_add_test(tc, test_intent_selector_semantics);
  tcase_add_test(tc, test_intent_missing_fleet);
  tcase_add_test(tc, test_intent_example_repo_is_valid);
  tcase_add_test(tc, test_intent_selector_expressions_need_values_as_kubernetes);
  tcase_add_test(tc, test_intent_fleet_name_and_empty_control_plane);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return testutil_run(intent_suite()); }
