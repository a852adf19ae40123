/* Unit tests for daemon/kube: kubeconfig parsing (every field, every error
 * client-go reports), client construction (http refusal, PEM checks, URL
 * prefix, tls-server-name), Status error formatting and redaction, backoff,
 * media types, discovery parsing and lookups, the watch frame scanner, token
 * files and exec plugins (real child processes, real loop). Nothing here
 * needs an API server: tests/integration/test_kube*.py covers the wire. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "kube/kube-int.h"
#include "kube/kube.h"
#include "testutil.h"

#define PKI TEST_DATA_DIR "/kube/0001-pki"

/* writable strings for the exec config structs (whose members are char *) */
static char s_exec_v1[] = "client.authentication.k8s.io/v1";
static char s_plugin_out[] = "PLUGIN_OUT";
static char s_home[] = "HOME";
static char s_nowhere[] = "/nowhere";
static char s_flag[] = "--flag";
static char s_two_words[] = "two words";
static char s_hint[] = "install it with apt install foo";
static char s_no_such[] = "egressd-no-such-plugin";
#define DISCO TEST_DATA_DIR "/kube/0002-discovery-kubesim"

static struct kube_config *parse_ok(const char *path, const char *text, const char *context) {
  struct kube_config *c = NULL;
  struct diag_list d = {0};
  struct err e = ERR_INIT;

  ck_assert_ok(kube_config_parse(path, text, strlen(text), context, &c, &d, &e), &e);
  ck_assert_uint_eq(d.errors, 0);
  diag_list_dispose(&d);
  return c;
}

/* Parse @text expecting failure; return the first error message formatted
 * with its position (static buffer) and check that @want is in it. */
static const char *parse_fails(const char *text, const char *context, const char *want) {
  static char out[2048];
  struct kube_config *c = NULL;
  struct diag_list d = {0};
  struct err e = ERR_INIT;
  int r = kube_config_parse("/k/config", text, strlen(text), context, &c, &d, &e);

  ck_assert_int_lt(r, 0);
  ck_assert_ptr_null(c);
  ck_assert_uint_ge(d.errors, 1);
  err_format(&e, out, sizeof(out));
  ck_assert_msg(strstr(out, want), "expected '%s' in '%s'", want, out);
  diag_list_dispose(&d);
  return out;
}

static char *read_file(const char *path) {
  char *s = testutil_read(path);
  ck_assert_ptr_nonnull(s);
  return s;
}

static char *b64(const char *s) {
  size_t n = strlen(s), max = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
  char *out = xmalloc(max);
  sodium_bin2base64(out, max, (const unsigned char *)s, n, sodium_base64_VARIANT_ORIGINAL);
  return out;
}

/* ------------------------------------------------------------ kubeconfig */

static const char *full =
    "apiVersion: v1\n"
    "kind: Config\n"
    "current-context: prod\n"
    "clusters:\n"
    "- name: other\n"
    "  cluster: {server: https://other.example.com}\n"
    "- name: prod-cluster\n"
    "  cluster:\n"
    "    server: https://rancher.example.com/k8s/clusters/c-1\n"
    "    certificate-authority: pki/ca.crt\n"
    "    tls-server-name: kube.internal\n"
    "    proxy-url: socks5://proxy.example.com:1080\n"
    "    disable-compression: true\n"
    "    extensions:\n"
    "    - name: client.authentication.k8s.io/exec\n"
    "      extension: {audience: egress}\n"
    "contexts:\n"
    "- name: prod\n"
    "  context: {cluster: prod-cluster, user: alice, namespace: team-a}\n"
    "- name: other\n"
    "  context: {cluster: other}\n"
    "users:\n"
    "- name: alice\n"
    "  user:\n"
    "    client-certificate: pki/alice.crt\n"
    "    client-key: /abs/alice.key\n"
    "    token: s3cr3t-token-value\n"
    "    as: bob\n"
    "    as-uid: \"1234\"\n"
    "    as-groups: [devs, ops]\n"
    "    as-user-extra: {scopes: [read, write]}\n";

START_TEST(test_kube_config_reads_every_field_and_resolves_relative_paths) {
  struct kube_config *c = parse_ok("/etc/egressd/clusters/prod.kubeconfig", full, NULL);

  ck_assert_str_eq(c->path, "/etc/egressd/clusters/prod.kubeconfig");
  ck_assert_str_eq(c->context, "prod");
  ck_assert_str_eq(c->cluster_ref, "prod-cluster");
  ck_assert_str_eq(c->user_ref, "alice");
  ck_assert_str_eq(c->namespace, "team-a");
  ck_assert_str_eq(c->server, "https://rancher.example.com/k8s/clusters/c-1");
  ck_assert_str_eq(c->ca_file, "/etc/egressd/clusters/pki/ca.crt");
  ck_assert_str_eq(c->tls_server_name, "kube.internal");
  ck_assert_str_eq(c->proxy_url, "socks5://proxy.example.com:1080");
  ck_assert(c->disable_compression);
  ck_assert(!c->insecure_skip_tls_verify);
  ck_assert_str_eq(c->exec_cluster_config, "{\"audience\":\"egress\"}");
  ck_assert_str_eq(c->client_cert_file, "/etc/egressd/clusters/pki/alice.crt");
  ck_assert_str_eq(c->client_key_file, "/abs/alice.key");
  ck_assert_str_eq(c->token, "s3cr3t-token-value");
  ck_assert_str_eq(c->impersonate, "bob");
  ck_assert_str_eq(c->impersonate_uid, "1234");
  ck_assert_uint_eq(c->n_impersonate_groups, 2);
  ck_assert_str_eq(c->impersonate_groups[1], "ops");
  ck_assert_uint_eq(c->n_impersonate_extra, 2);
  ck_assert_str_eq(c->impersonate_extra[0].name, "scopes");
  ck_assert_str_eq(c->impersonate_extra[1].value, "write");
  ck_assert_ptr_null(c->exec);
  ck_assert_str_eq(kube_config_auth_name(c), "bearer token + client certificate");
  kube_config_free(c);
}
END_TEST

START_TEST(test_kube_config_explicit_context_wins_over_current_context) {
  struct kube_config *c = parse_ok("/k/config", full, "other");

  ck_assert_str_eq(c->context, "other");
  ck_assert_str_eq(c->server, "https://other.example.com");
  ck_assert_ptr_null(c->user_ref);
  ck_assert_str_eq(c->namespace, "default");
  ck_assert_str_eq(kube_config_auth_name(c), "none");
  kube_config_free(c);
}
END_TEST

START_TEST(test_kube_config_decodes_data_fields) {
  char *ca = read_file(PKI "/ca.crt"), *crt = read_file(PKI "/client.crt");
  char *key = read_file(PKI "/client.key");
  char *ca64 = b64(ca), *crt64 = b64(crt), *key64 = b64(key);
  char *text = xasprintf("current-context: x\n"
                         "clusters: [{name: x, cluster: {server: 'https://1.2.3.4:6443',"
                         " certificate-authority-data: %s}}]\n"
                         "users: [{name: u, user: {client-certificate-data: %s,"
                         " client-key-data: %s}}]\n"
                         "contexts: [{name: x, context: {cluster: x, user: u}}]\n",
                         ca64, crt64, key64);
  struct kube_config *c = parse_ok("/k/config", text, NULL);

  ck_assert_uint_eq(c->ca_data.len, strlen(ca));
  ck_assert_mem_eq(c->ca_data.data, ca, strlen(ca));
  ck_assert_mem_eq(c->client_cert_data.data, crt, strlen(crt));
  ck_assert_mem_eq(c->client_key_data.data, key, strlen(key));
  ck_assert_str_eq(kube_config_auth_name(c), "client certificate");
  kube_config_free(c);
  free(text);
  free(ca64);
  free(crt64);
  free(key64);
  free(ca);
  free(crt);
  free(key);
}
END_TEST

#define KC(cluster, user)                                                                   \
  "current-context: x\n"                                                                   \
  "clusters: [{name: x, cluster: {server: 'https://k.example.com'" cluster "}}]\n"        \
  "users: [{name: u, user: {" user "}}]\n"                                                 \
  "contexts: [{name: x, context: {cluster: x, user: u}}]\n"

START_TEST(test_kube_config_refuses_file_and_data_forms_together) {
  const char *out;

  out = parse_fails(KC(", certificate-authority: ca.crt, certificate-authority-data: QUJD", ""),
                    NULL, "cluster 'x': certificate-authority and certificate-authority-data are "
                          "both set");
  ck_assert(str_has_prefix(out, "/k/config:2:"));
  parse_fails(KC("", "client-certificate: a.crt, client-certificate-data: QUJD, client-key: k"),
              NULL, "user 'u': client-certificate and client-certificate-data are both set");
  parse_fails(KC("", "client-certificate: a.crt, client-key: k, client-key-data: QUJD"), NULL,
              "user 'u': client-key and client-key-data are both set");
}
END_TEST

START_TEST(test_kube_config_refuses_token_with_basic_auth) {
  parse_fails(KC("", "token: abcdef, username: admin, password: pw"), NULL,
              "user 'u': more than one authentication method found: token and basic auth");
  parse_fails(KC("", "tokenFile: /t, password: pw"), NULL, "more than one authentication method");
}
END_TEST

START_TEST(test_kube_config_refuses_ca_with_insecure) {
  parse_fails(KC(", certificate-authority: ca.crt, insecure-skip-tls-verify: true", ""), NULL,
              "insecure-skip-tls-verify with a certificate authority is not allowed");
}
END_TEST

START_TEST(test_kube_config_refuses_certificate_without_key_and_key_without_certificate) {
  parse_fails(KC("", "client-certificate: a.crt"), NULL,
              "client-key-data or client-key must be specified");
  parse_fails(KC("", "client-key-data: QUJD"), NULL,
              "client-certificate-data or client-certificate must be specified");
}
END_TEST

START_TEST(test_kube_config_exec_checks_as_client_go) {
  parse_fails(KC("", "exec: {apiVersion: client.authentication.k8s.io/v1, command: p}"), NULL,
              "interactiveMode must be specified for client.authentication.k8s.io/v1");
  parse_fails(KC("", "exec: {apiVersion: client.authentication.k8s.io/v1beta1}"), NULL,
              "exec: command must be specified");
  parse_fails(KC("", "exec: {command: p}"), NULL, "exec: apiVersion must be specified");
  parse_fails(KC("", "exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: p}"), NULL,
              "apiVersion 'client.authentication.k8s.io/v1alpha1' is not supported");
  parse_fails(KC("", "exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: p,"
                     " env: [{value: x}]}"),
              NULL, "env variable name must be specified");
  parse_fails(KC("", "exec: {apiVersion: client.authentication.k8s.io/v1, command: p,"
                     " interactiveMode: Sometimes}"),
              NULL, "invalid interactiveMode 'Sometimes'");
  parse_fails(KC("", "exec: {apiVersion: client.authentication.k8s.io/v1, command: p,"
                     " interactiveMode: Always}"),
              NULL, "interactiveMode Always needs a terminal");
  parse_fails(KC("", "exec: {apiVersion: client.authentication.k8s.io/v1, command: p,"
                     " interactiveMode: Never}, auth-provider: {name: oidc}"),
              NULL, "auth-provider cannot be combined with an exec plugin");
  parse_fails(KC("", "auth-provider: {name: gcp}"), NULL, "auth-provider 'gcp' is not supported");
  parse_fails(KC("", "token: abcdef, exec: {apiVersion: client.authentication.k8s.io/v1,"
                     " command: p, interactiveMode: Never}"),
              NULL, "exec and a token are both set");
}
END_TEST

START_TEST(test_kube_config_exec_fields_and_command_resolution) {
  struct kube_config *c = parse_ok(
      "/etc/k/config",
      KC("", "exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: ./bin/plugin,"
             " args: [--a, b], env: [{name: FOO, value: bar}, {name: EMPTY}],"
             " installHint: 'apt install x', provideClusterInfo: true}"),
      NULL);
  struct kube_config *d;

  ck_assert_ptr_nonnull(c->exec);
  ck_assert_str_eq(c->exec->api_version, "client.authentication.k8s.io/v1beta1");
  ck_assert_str_eq(c->exec->command, "/etc/k/./bin/plugin");
  ck_assert_uint_eq(c->exec->n_args, 2);
  ck_assert_str_eq(c->exec->args[0], "--a");
  ck_assert_uint_eq(c->exec->n_env, 2);
  ck_assert_str_eq(c->exec->env[0].name, "FOO");
  ck_assert_str_eq(c->exec->env[0].value, "bar");
  ck_assert_str_eq(c->exec->env[1].value, "");
  ck_assert_str_eq(c->exec->install_hint, "apt install x");
  ck_assert(c->exec->provide_cluster_info);
  ck_assert_int_eq(c->exec->interactive, KUBE_INTERACTIVE_IF_AVAILABLE);
  ck_assert_str_eq(kube_config_auth_name(c), "exec plugin");
  /* a bare command name is searched in $PATH, not next to the kubeconfig */
  d = parse_ok("/etc/k/config",
               KC("", "exec: {apiVersion: client.authentication.k8s.io/v1, command: kubelogin,"
                      " interactiveMode: Never}"),
               NULL);
  ck_assert_str_eq(d->exec->command, "kubelogin");
  ck_assert_int_eq(d->exec->interactive, KUBE_INTERACTIVE_NEVER);
  kube_config_free(c);
  kube_config_free(d);
}
END_TEST

START_TEST(test_kube_config_selection_errors_name_what_is_missing) {
  parse_fails("clusters: []\n", NULL, "no context selected: the kubeconfig has no current-context");
  parse_fails(KC("", ""), "nope", "context 'nope' is not defined in the kubeconfig");
  parse_fails("current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n", NULL,
              "cluster 'c' named by context 'x' is not defined");
  parse_fails("current-context: x\nclusters: [{name: c, cluster: {server: 'https://a'}}]\n"
              "contexts: [{name: x, context: {cluster: c, user: ghost}}]\n",
              NULL, "user 'ghost' named by context 'x' is not defined");
  parse_fails("current-context: x\nclusters: [{name: c, cluster: {}}]\n"
              "contexts: [{name: x, context: {cluster: c}}]\n",
              NULL, "cluster 'c' has no server");
  parse_fails("current-context: x\nclusters: [{name: c, cluster: {server: 'ftp://a'}}]\n"
              "contexts: [{name: x, context: {cluster: c}}]\n",
              NULL, "must be an https:// URL");
  parse_fails("current-context: x\nclusters: [{name: c, cluster: {server: 'https://u:p@a'}}]\n"
              "contexts: [{name: x, context: {cluster: c}}]\n",
              NULL, "server must not carry credentials");
  parse_fails("current-context: x\nclusters: [{name: c, cluster: {server: 'https://a'}}]\n"
              "contexts: [{name: x, context: {cluster: c, namespace: Team_A}}]\n",
              NULL, "context 'x': namespace 'Team_A' is not valid");
}
END_TEST

START_TEST(test_kube_config_checks_types_names_and_base64) {
  parse_fails(KC(", insecure-skip-tls-verify: 'yes'", ""), NULL,
              "cluster 'x': insecure-skip-tls-verify must be true or false, not a string");
  parse_fails(KC("", "token: 12345"), NULL, "user 'u': token must be a string, not an integer");
  parse_fails(KC(", certificate-authority-data: 'not base64!'", ""), NULL,
              "certificate-authority-data is not valid base64");
  parse_fails("current-context: x\nclusters: [{name: x, cluster: {server: 'https://a'}},"
              " {name: x, cluster: {server: 'https://b'}}]\n"
              "contexts: [{name: x, context: {cluster: x}}]\n",
              NULL, "clusters: duplicate name 'x'");
  parse_fails("current-context: x\nclusters: {x: 1}\n", NULL, "clusters must be a list");
  parse_fails(KC("", "as-groups: [devs]"), NULL,
              "requesting uid, groups or user-extra without impersonating a user");
  parse_fails(KC(", proxy-url: 'ftp://p'", ""), NULL, "proxy-url must be an http://, https:// or socks5://");
  parse_fails("apiVersion: v2\nkind: Config\n", NULL, "apiVersion 'v2' is not a kubeconfig version");
}
END_TEST

START_TEST(test_kube_config_reports_every_problem_at_once) {
  const char *text = KC(", certificate-authority: a, certificate-authority-data: QUJD,"
                        " insecure-skip-tls-verify: true",
                        "token: abcdef, username: u, client-certificate: c");
  struct kube_config *c = NULL;
  struct diag_list d = {0};
  struct err e = ERR_INIT;

  ck_assert_int_eq(kube_config_parse("/k/config", text, strlen(text), NULL, &c, &d, &e), -EINVAL);
  /* both forms, CA + insecure, token + basic, certificate without key */
  ck_assert_uint_eq(d.errors, 4);
  diag_list_dispose(&d);
}
END_TEST

START_TEST(test_kube_config_unknown_field_is_a_warning_with_a_suggestion) {
  const char *text = KC("", "tokenfile: /t");
  struct kube_config *c = NULL;
  struct diag_list d = {0};
  struct err e = ERR_INIT;
  char line[512];

  ck_assert_ok(kube_config_parse("/k/config", text, strlen(text), NULL, &c, &d, &e), &e);
  ck_assert_uint_eq(d.errors, 0);
  ck_assert_uint_eq(d.warnings, 1);
  diag_format(&d.items[0], line, sizeof(line));
  ck_assert_str_eq(line, "/k/config:3:26: warning: user 'u': unknown field 'tokenfile' (ignored); "
                         "did you mean 'tokenFile'?");
  ck_assert_ptr_null(c->token_file);
  kube_config_free(c);
  diag_list_dispose(&d);
}
END_TEST

START_TEST(test_kube_config_syntax_errors_and_empty_files) {
  parse_fails("", NULL, "the kubeconfig is empty");
  parse_fails("# only a comment\n", NULL, "the kubeconfig is empty");
  parse_fails("clusters: [\n", NULL, "/k/config:2:1: YAML syntax error");
  parse_fails("- a\n- b\n", NULL, "a kubeconfig must be a mapping");
}
END_TEST

START_TEST(test_kube_config_load_reads_the_file) {
  char *dir = testutil_tmpdir(), *path = path_join(dir, "c.kubeconfig");
  struct kube_config *c = NULL;
  struct err e = ERR_INIT;

  ck_assert_int_eq(kube_config_load(path, NULL, &c, NULL, &e), -ENOENT);
  ck_assert(strstr(e.msg, "c.kubeconfig"));
  testutil_write(dir, "c.kubeconfig", KC("", "tokenFile: tok"));
  err_clear(&e);
  ck_assert_ok(kube_config_load(path, NULL, &c, NULL, &e), &e);
  ck_assert(str_has_suffix(c->token_file, "/tok"));
  ck_assert(str_has_prefix(c->token_file, dir));
  kube_config_free(c);
  testutil_rmrf(dir);
  free(path);
  free(dir);
}
END_TEST

/* ------------------------------------------------------------ client */

struct fixture {
  char *dir;
  struct kube_loop *loop;
};

static void fixture_init(struct fixture *f) {
  struct err e = ERR_INIT;
  f->dir = testutil_tmpdir();
  ck_assert_ok(kube_loop_new(&f->loop, &e), &e);
}

static void fixture_done(struct fixture *f) {
  kube_loop_free(f->loop);
  testutil_rmrf(f->dir);
  free(f->dir);
}

static int client_from(struct fixture *f, const char *kubeconfig, struct kube_client **ret,
                       struct err *e) {
  char *path;
  int r;

  testutil_write(f->dir, "config", kubeconfig);
  path = path_join(f->dir, "config");
  r = kube_client_new(f->loop, "prod-eu", path, NULL, NULL, ret, NULL, e);
  free(path);
  return r;
}

START_TEST(test_kube_client_refuses_credentials_over_plain_http) {
  struct fixture f;
  struct kube_client *c = NULL;
  struct err e = ERR_INIT;

  fixture_init(&f);
  ck_assert_int_eq(client_from(&f,
                               "current-context: x\n"
                               "clusters: [{name: x, cluster: {server: 'http://127.0.0.1:8080'}}]\n"
                               "users: [{name: u, user: {token: abcdefgh}}]\n"
                               "contexts: [{name: x, context: {cluster: x, user: u}}]\n",
                               &c, &e),
                   -EINVAL);
  ck_assert_ptr_null(c);
  ck_assert(strstr(e.msg, "cluster prod-eu: refusing to send the credentials of user 'u' over "
                          "plain http:// to http://127.0.0.1:8080"));
  ck_assert(!strstr(e.msg, "abcdefgh"));
  /* without credentials plain http is fine (kubectl proxy) */
  err_clear(&e);
  ck_assert_ok(client_from(&f,
                           "current-context: x\n"
                           "clusters: [{name: x, cluster: {server: 'http://127.0.0.1:8080/'}}]\n"
                           "contexts: [{name: x, context: {cluster: x}}]\n",
                           &c, &e),
               &e);
  ck_assert_str_eq(c->base_url, "http://127.0.0.1:8080");
  kube_client_free(c);
  fixture_done(&f);
}
END_TEST

START_TEST(test_kube_client_keeps_the_server_path_prefix) {
  struct fixture f;
  struct kube_client *c = NULL;
  struct err e = ERR_INIT;
  char *path;

  fixture_init(&f);
  ck_assert_ok(client_from(&f,
                           "current-context: x\n"
                           "clusters: [{name: x, cluster: {server: "
                           "'https://rancher.example.com/k8s/clusters/c-1/', "
                           "insecure-skip-tls-verify: true}}]\n"
                           "contexts: [{name: x, context: {cluster: x, namespace: team}}]\n",
                           &c, &e),
               &e);
  ck_assert_str_eq(c->base_url, "https://rancher.example.com/k8s/clusters/c-1");
  ck_assert_ptr_null(c->host_header);
  ck_assert_str_eq(kube_client_namespace(c), "team");
  ck_assert_str_eq(kube_client_name(c), "prod-eu");
  {
    struct kube_ref core = {.version = "v1", .plural = "namespaces"};
    struct kube_ref vs = {.group = "networking.istio.io", .version = "v1",
                          .plural = "virtualservices", .namespace = "demo"};
    struct kube_ref bad = {.group = "g", .version = "v1", .plural = "x/y"};
    path = kube_ref_path(&core, "kube-system", &e, "prod-eu");
    ck_assert_str_eq(path, "/api/v1/namespaces/kube-system");
    free(path);
    path = kube_ref_path(&vs, NULL, &e, "prod-eu");
    ck_assert_str_eq(path, "/apis/networking.istio.io/v1/namespaces/demo/virtualservices");
    free(path);
    path = kube_ref_path(&vs, "system:a b", &e, "prod-eu");
    ck_assert_ptr_null(path);
    ck_assert(strstr(e.msg, "contains a blank"));
    err_clear(&e);
    ck_assert_ptr_null(kube_ref_path(&bad, NULL, &e, "prod-eu"));
    ck_assert(strstr(e.msg, "'x/y' is not a valid resource"));
  }
  kube_client_free(c);
  fixture_done(&f);
}
END_TEST

START_TEST(test_kube_client_routes_tls_server_name_to_the_real_address) {
  struct fixture f;
  struct kube_client *c = NULL;
  struct err e = ERR_INIT;
  char *text = xasprintf("current-context: x\n"
                         "clusters: [{name: x, cluster: {server: 'https://127.0.0.1:6443/p',"
                         " certificate-authority: %s/ca.crt, tls-server-name: kube.internal}}]\n"
                         "contexts: [{name: x, context: {cluster: x}}]\n",
                         PKI);

  fixture_init(&f);
  ck_assert_ok(client_from(&f, text, &c, &e), &e);
  ck_assert_str_eq(c->base_url, "https://kube.internal:6443/p");
  ck_assert_str_eq(c->connect_to->data, "kube.internal:6443:127.0.0.1:6443");
  ck_assert_str_eq(c->host_header, "Host: 127.0.0.1:6443");
  ck_assert(c->ca_pem.len > 0);
  kube_client_free(c);
  free(text);
  fixture_done(&f);
}
END_TEST

START_TEST(test_kube_client_checks_pem_files_and_names_them) {
  struct fixture f;
  struct kube_client *c = NULL;
  struct err e = ERR_INIT;
  char *text;

  fixture_init(&f);
  /* a CA file that is not PEM */
  testutil_write(f.dir, "bad.crt", "hello\n");
  ck_assert_int_eq(client_from(&f,
                               "current-context: x\n"
                               "clusters: [{name: x, cluster: {server: 'https://a:1',"
                               " certificate-authority: bad.crt}}]\n"
                               "contexts: [{name: x, context: {cluster: x}}]\n",
                               &c, &e),
                   -EINVAL);
  ck_assert(strstr(e.msg, "bad.crt of cluster 'x'"));
  ck_assert(strstr(e.msg, "holds no PEM certificate"));
  /* a missing CA file */
  err_clear(&e);
  ck_assert_int_eq(client_from(&f,
                               "current-context: x\n"
                               "clusters: [{name: x, cluster: {server: 'https://a:1',"
                               " certificate-authority: missing.crt}}]\n"
                               "contexts: [{name: x, context: {cluster: x}}]\n",
                               &c, &e),
                   -ENOENT);
  ck_assert(strstr(e.msg, "cluster prod-eu: cannot open"));
  ck_assert(strstr(e.msg, "missing.crt"));
  /* a key that does not belong to the certificate */
  err_clear(&e);
  text = xasprintf("current-context: x\n"
                   "clusters: [{name: x, cluster: {server: 'https://a:1'}}]\n"
                   "users: [{name: u, user: {client-certificate: %s/client.crt,"
                   " client-key: %s/other.key}}]\n"
                   "contexts: [{name: x, context: {cluster: x, user: u}}]\n",
                   PKI, PKI);
  ck_assert_int_eq(client_from(&f, text, &c, &e), -EINVAL);
  ck_assert(strstr(e.msg, "other.key) of user 'u'"));
  ck_assert(strstr(e.msg, "does not match its certificate"));
  free(text);
  /* the matching key is accepted */
  err_clear(&e);
  text = xasprintf("current-context: x\n"
                   "clusters: [{name: x, cluster: {server: 'https://a:1'}}]\n"
                   "users: [{name: u, user: {client-certificate: %s/client.crt,"
                   " client-key: %s/client.key}}]\n"
                   "contexts: [{name: x, context: {cluster: x, user: u}}]\n",
                   PKI, PKI);
  ck_assert_ok(client_from(&f, text, &c, &e), &e);
  ck_assert(c->key_pem.len > 0);
  kube_client_free(c);
  free(text);
  fixture_done(&f);
}
END_TEST

START_TEST(test_kube_client_rereads_a_changed_token_file) {
  struct fixture f;
  struct kube_client *c = NULL;
  struct err e = ERR_INIT;
  char *tok;

  fixture_init(&f);
  testutil_write(f.dir, "token", "first-token\n");
  ck_assert_ok(client_from(&f,
                           "current-context: x\n"
                           "clusters: [{name: x, cluster: {server: 'https://a:1'}}]\n"
                           "users: [{name: u, user: {tokenFile: token}}]\n"
                           "contexts: [{name: x, context: {cluster: x, user: u}}]\n",
                           &c, &e),
               &e);
  ck_assert_str_eq(buf_cstr(&c->auth.cred.token), "first-token");
  testutil_write(f.dir, "token", "second-longer-token\n");
  /* checked at most once a second: not yet */
  ck_assert_int_eq(kube_auth_prepare(&c->auth, NULL, &e), 0);
  ck_assert_str_eq(buf_cstr(&c->auth.cred.token), "first-token");
  c->auth.tf_checked -= 2 * KUBE_TOKEN_STAT_USEC;
  ck_assert_int_eq(kube_auth_prepare(&c->auth, NULL, &e), 0);
  ck_assert_str_eq(buf_cstr(&c->auth.cred.token), "second-longer-token");
  /* a file that disappears keeps the last token, as client-go */
  tok = path_join(f.dir, "token");
  unlink(tok);
  c->auth.tf_checked -= 2 * KUBE_TOKEN_STAT_USEC;
  ck_assert_int_eq(kube_auth_prepare(&c->auth, NULL, &e), 0);
  ck_assert_str_eq(buf_cstr(&c->auth.cred.token), "second-longer-token");
  free(tok);
  kube_client_free(c);
  /* an empty token file is an error at construction */
  testutil_write(f.dir, "token", "  \n");
  err_clear(&e);
  ck_assert_int_eq(client_from(&f,
                               "current-context: x\n"
                               "clusters: [{name: x, cluster: {server: 'https://a:1'}}]\n"
                               "users: [{name: u, user: {tokenFile: token}}]\n"
                               "contexts: [{name: x, context: {cluster: x, user: u}}]\n",
                               &c, &e),
                   -EINVAL);
  ck_assert(strstr(e.msg, "of user 'u' is empty"));
  fixture_done(&f);
}
END_TEST

START_TEST(test_kube_client_basic_auth_is_base64_of_user_and_password) {
  struct fixture f;
  struct kube_client *c = NULL;
  struct err e = ERR_INIT;

  fixture_init(&f);
  ck_assert_ok(client_from(&f,
                           "current-context: x\n"
                           "clusters: [{name: x, cluster: {server: 'https://a:1'}}]\n"
                           "users: [{name: u, user: {username: user, password: pw}}]\n"
                           "contexts: [{name: x, context: {cluster: x, user: u}}]\n",
                           &c, &e),
               &e);
  /* trace 43: Authorization: Basic dXNlcjpwdw== */
  ck_assert_str_eq(buf_cstr(&c->auth.basic), "dXNlcjpwdw==");
  ck_assert_str_eq(kube_config_auth_name(c->cfg), "basic auth");
  kube_client_free(c);
  fixture_done(&f);
}
END_TEST

/* ------------------------------------------------------------ Status errors */

START_TEST(test_kube_status_error_uses_reason_message_and_causes) {
  const char *invalid =
      "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
      "\"message\":\"VirtualService.networking.istio.io \\\"Bad_Name\\\" is invalid: "
      "metadata.name: Invalid value: \\\"Bad_Name\\\"\",\"reason\":\"Invalid\","
      "\"details\":{\"name\":\"Bad_Name\",\"group\":\"networking.istio.io\","
      "\"kind\":\"VirtualService\",\"causes\":[{\"reason\":\"FieldValueInvalid\","
      "\"message\":\"Invalid value: \\\"Bad_Name\\\"\",\"field\":\"metadata.name\"},"
      "{\"reason\":\"FieldValueRequired\",\"message\":\"Required value\","
      "\"field\":\"spec.hosts\"}]},\"code\":422}";
  const char *conflict =
      "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
      "\"message\":\"Apply failed with 1 conflict: conflict with \\\"kubectl\\\": .spec.hosts\","
      "\"reason\":\"Conflict\",\"details\":{\"causes\":[{\"reason\":\"FieldManagerConflict\","
      "\"message\":\"conflict with \\\"kubectl\\\"\",\"field\":\".spec.hosts\"}]},\"code\":409}";
  struct err e = ERR_INIT;
  int r;

  r = kube_status_error(&e, "prod-eu", "PATCH /apis/x", 422, "application/json", invalid,
                        strlen(invalid), NULL);
  ck_assert_int_eq(r, -EINVAL);
  ck_assert_int_eq(e.detail, 422);
  ck_assert_str_eq(e.reason, "Invalid");
  ck_assert_int_eq(e.src, ERR_SRC_KUBE);
  /* the first cause is in the message already; the second is added */
  ck_assert_str_eq(e.msg, "cluster prod-eu: PATCH /apis/x: HTTP 422 Invalid: "
                          "VirtualService.networking.istio.io \"Bad_Name\" is invalid: "
                          "metadata.name: Invalid value: \"Bad_Name\" (spec.hosts: Required value)");
  err_clear(&e);
  r = kube_status_error(&e, "prod-eu", "PATCH /apis/y", 409, "application/json", conflict,
                        strlen(conflict), NULL);
  ck_assert_int_eq(r, -EBUSY);
  ck_assert_str_eq(e.reason, "Conflict");
  ck_assert_str_eq(e.msg, "cluster prod-eu: PATCH /apis/y: HTTP 409 Conflict: Apply failed with 1 "
                          "conflict: conflict with \"kubectl\": .spec.hosts (.spec.hosts: conflict "
                          "with \"kubectl\")");
}
END_TEST

START_TEST(test_kube_status_error_quotes_non_status_bodies) {
  const char *apf = "Too many requests, please try again later.\n";
  const char *html = "<html><head><title>502 Bad Gateway</title></head>\n<body><h1>Bad\tGateway"
                     "</h1></body></html>";
  struct err e = ERR_INIT;

  ck_assert_int_eq(kube_status_error(&e, "c", "GET /api", 429, "text/plain; charset=utf-8", apf,
                                     strlen(apf), NULL),
                   -EAGAIN);
  ck_assert_str_eq(e.msg, "cluster c: GET /api: HTTP 429 Too Many Requests: server said \"Too many "
                          "requests, please try again later.\"");
  ck_assert_str_eq(e.reason, "");
  err_clear(&e);
  kube_status_error(&e, "c", "GET /api", 502, "text/html", html, strlen(html), NULL);
  ck_assert_str_eq(e.msg, "cluster c: GET /api: HTTP 502 Bad Gateway: server said \"502 Bad "
                          "Gateway Bad Gateway\"");
  err_clear(&e);
  kube_status_error(&e, "c", "GET /api", 503, NULL, "", 0, NULL);
  ck_assert_str_eq(e.msg, "cluster c: GET /api: HTTP 503 Service Unavailable");
}
END_TEST

START_TEST(test_kube_status_error_never_contains_a_secret_even_when_echoed) {
  const char *token = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2VuLXZhbHVl.sig-1234567890";
  const char *secrets[] = {token, "hunter2pw", NULL};
  char *status = xasprintf("{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"Unauthorized\","
                           "\"message\":\"token %s rejected (password hunter2pw)\",\"code\":401}",
                           token);
  struct buf text = BUF_INIT;
  struct err e = ERR_INIT;

  kube_status_error(&e, "c", "GET /api", 401, "application/json", status, strlen(status), secrets);
  ck_assert(!strstr(e.msg, token));
  ck_assert(!strstr(e.msg, "c2VjcmV0LXRva2VuLXZhbHVl"));
  ck_assert(!strstr(e.msg, "hunter2pw"));
  ck_assert(strstr(e.msg, "token [redacted] rejected (password [redacted])"));
  /* a proxy echoing the header, the token straddling the excerpt's cut */
  buf_printf(&text, "%*sAuthorization: Bearer %s", KUBE_EXCERPT_MAX - 30, "", token);
  err_clear(&e);
  kube_status_error(&e, "c", "GET /api", 400, "text/plain", text.data, text.len, secrets);
  ck_assert(!strstr(e.msg, "eyJhbGci"));
  ck_assert(strstr(e.msg, "Bearer [redacted]"));
  /* "Bearer x" is masked even when x is not a known secret */
  buf_reset(&text);
  buf_puts(&text, "bad header: authorization: bearer someoneelsestoken, sorry");
  err_clear(&e);
  kube_status_error(&e, "c", "GET /api", 400, "text/plain", text.data, text.len, NULL);
  ck_assert_str_eq(e.msg, "cluster c: GET /api: HTTP 400 Bad Request: server said \"bad header: "
                          "authorization: bearer [redacted], sorry\"");
  buf_dispose(&text);
  free(status);
}
END_TEST

/* W-6: a secret at the edge of what used to be the 16 KiB window, split by
 * newlines or tags, or only a few bytes long never reaches the message. */
START_TEST(test_kube_status_error_redacts_split_edge_and_short_secrets) {
  const char *token = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2VuLXZhbHVl.sig-1234567890";
  const char *secrets[] = {token, NULL};
  struct buf body = BUF_INIT;
  struct err e = ERR_INIT;
  size_t pad;

  /* an HTML page whose one long tag pushes the echoed token across byte
   * 16384: the first bytes of the token used to survive the window's cut */
  buf_puts(&body, "<html><b title=\"");
  pad = 16384 - 10 - body.len - strlen("\">you sent ");
  for (size_t i = 0; i < pad; i++)
    buf_putc(&body, 'x');
  buf_puts(&body, "\">you sent ");
  ck_assert_uint_eq(body.len, 16384 - 10);
  buf_printf(&body, "%s</b></html>", token);
  kube_status_error(&e, "c", "GET /api", 400, "text/html", body.data, body.len, secrets);
  ck_assert_msg(!strstr(e.msg, "eyJhbGci"), "%s", e.msg);
  ck_assert_str_eq(e.msg, "cluster c: GET /api: HTTP 400 Bad Request: server said \"you sent "
                          "[redacted]\"");
  /* split by a newline (a proxy wrapping its echo): folded into one line,
   * the two halves would read as the token */
  buf_reset(&body);
  buf_printf(&body, "bad token: %.30s\r\n%s", token, token + 30);
  err_clear(&e);
  kube_status_error(&e, "c", "GET /api", 400, "text/plain", body.data, body.len, secrets);
  ck_assert_str_eq(e.msg, "cluster c: GET /api: HTTP 400 Bad Request: server said \"bad token: "
                          "[redacted]\"");
  /* split by a tag, and in a Status message by newlines */
  buf_reset(&body);
  buf_printf(&body, "<p>%.20s<br>%s</p>", token, token + 20);
  err_clear(&e);
  kube_status_error(&e, "c", "GET /api", 400, "text/html", body.data, body.len, secrets);
  ck_assert_msg(!strstr(e.msg, "c2VjcmV0") && strstr(e.msg, "[redacted]"), "%s", e.msg);
  buf_reset(&body);
  buf_printf(&body, "{\"kind\":\"Status\",\"message\":\"token %.25s\\n%.25s\\n%s\",\"code\":401}",
             token, token + 25, token + 50);
  err_clear(&e);
  kube_status_error(&e, "c", "GET /api", 401, "application/json", body.data, body.len, secrets);
  ck_assert_str_eq(e.msg, "cluster c: GET /api: HTTP 401 Unauthorized: token [redacted]");
  /* a server that echoes only the first bytes of the token */
  buf_reset(&body);
  buf_printf(&body, "token '%.12s' is malformed", token);
  err_clear(&e);
  kube_status_error(&e, "c", "GET /api", 400, "text/plain", body.data, body.len, secrets);
  ck_assert_str_eq(e.msg, "cluster c: GET /api: HTTP 400 Bad Request: server said \"token "
                          "'[redacted]' is malformed\"");
  buf_dispose(&body);
}
END_TEST

START_TEST(test_kube_short_secrets_are_redacted_too) {
  struct fixture f;
  struct kube_client *c = NULL;
  struct err e = ERR_INIT;
  const char *secrets[9];
  const char *status = "{\"kind\":\"Status\",\"message\":\"password pw is wrong\",\"code\":401}";
  bool has_pw = false;

  fixture_init(&f);
  ck_assert_ok(client_from(&f,
                           "current-context: x\n"
                           "clusters: [{name: x, cluster: {server: 'https://a:1'}}]\n"
                           "users: [{name: u, user: {username: user, password: pw}}]\n"
                           "contexts: [{name: x, context: {cluster: x, user: u}}]\n",
                           &c, &e),
               &e);
  kube_auth_secrets(&c->auth, secrets, ARRAY_SIZE(secrets));
  for (size_t i = 0; secrets[i]; i++)
    has_pw |= strcmp(secrets[i], "pw") == 0;
  ck_assert_msg(has_pw, "a 2-byte password must be among the secrets to redact");
  kube_status_error(&e, "c", "GET /api", 401, "application/json", status, strlen(status), secrets);
  ck_assert_str_eq(e.msg, "cluster c: GET /api: HTTP 401 Unauthorized: password [redacted] is "
                          "wrong");
  kube_client_free(c);
  fixture_done(&f);
}
END_TEST

START_TEST(test_kube_status_errno_follows_the_status) {
  ck_assert_int_eq(kube_status_errno(404, "NotFound"), -ENOENT);
  ck_assert_int_eq(kube_status_errno(409, "AlreadyExists"), -EEXIST);
  ck_assert_int_eq(kube_status_errno(409, "Conflict"), -EBUSY);
  ck_assert_int_eq(kube_status_errno(410, "Expired"), -ESTALE);
  ck_assert_int_eq(kube_status_errno(401, NULL), -EACCES);
  ck_assert_int_eq(kube_status_errno(403, NULL), -EACCES);
  ck_assert_int_eq(kube_status_errno(422, NULL), -EINVAL);
  ck_assert_int_eq(kube_status_errno(503, NULL), -EAGAIN);
  ck_assert_int_eq(kube_status_errno(504, NULL), -ETIMEDOUT);
}
END_TEST

/* ------------------------------------------------------------ backoff, media types */

START_TEST(test_kube_backoff_is_jittered_exponential_and_capped) {
  struct kube_options o;

  kube_options_init(&o); /* 200 ms base, 10 s cap */
  /* rnd 0: the fixed half */
  ck_assert_uint_eq(kube_backoff_delay(&o, 1, -1, 0), 100000);
  ck_assert_uint_eq(kube_backoff_delay(&o, 2, -1, 0), 200000);
  ck_assert_uint_eq(kube_backoff_delay(&o, 3, -1, 0), 400000);
  /* the largest jitter reaches the full wait */
  ck_assert_uint_eq(kube_backoff_delay(&o, 3, -1, 400000), 800000);
  ck_assert_uint_eq(kube_backoff_delay(&o, 3, -1, 400001), 400000);
  /* capped at 10 s, also after many retries */
  ck_assert_uint_eq(kube_backoff_delay(&o, 20, -1, 0), 5000000);
  ck_assert_uint_eq(kube_backoff_delay(&o, 200, -1, 5000000), 10000000);
  for (uint32_t rnd = 0; rnd < 100000; rnd += 997)
    ck_assert_uint_le(kube_backoff_delay(&o, 7, -1, rnd * 97), 10000000);
}
END_TEST

START_TEST(test_kube_backoff_honours_retry_after_up_to_the_cap) {
  struct kube_options o;

  kube_options_init(&o);
  ck_assert_uint_eq(kube_backoff_delay(&o, 1, 1, 12345), 1000000);
  ck_assert_uint_eq(kube_backoff_delay(&o, 5, 3, 0), 3000000);
  ck_assert_uint_eq(kube_backoff_delay(&o, 1, 32, 0), 10000000); /* APF's maximum */
  ck_assert_uint_eq(kube_backoff_delay(&o, 1, INT64_MAX / 2, 0), 10000000);
  ck_assert_uint_eq(kube_backoff_delay(&o, 1, 0, 999), 0);
}
END_TEST

START_TEST(test_kube_media_type_is_judged_by_type_and_parameters) {
  const char *p = "g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

  ck_assert(kube_media_type_is("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
                               "application/json", p));
  ck_assert(kube_media_type_is("application/json; as=APIGroupDiscoveryList; v=v2; "
                               "g=apidiscovery.k8s.io",
                               "application/json", p));
  ck_assert(!kube_media_type_is("application/json;g=apidiscovery.k8s.io;v=v2beta1;"
                                "as=APIGroupDiscoveryList",
                                "application/json", p));
  ck_assert(!kube_media_type_is("application/json", "application/json", p));
  ck_assert(kube_media_type_is("Application/JSON; charset=utf-8", "application/json", NULL));
  ck_assert(!kube_media_type_is("application/jsonx", "application/json", NULL));
  ck_assert(!kube_media_type_is(NULL, "application/json", NULL));
}
END_TEST

/* ------------------------------------------------------------ discovery */

static struct kube_discovery *disco_from(const char *apis, const char *api) {
  struct kube_discovery *d = kube_discovery_new("prod-eu");
  struct doc_arena *a = doc_arena_new();
  struct doc_node *n;
  struct err e = ERR_INIT;

  ck_assert_ok(kube_parse_json(a, "apis", apis, strlen(apis), 1u << 20, &n, &e), &e);
  ck_assert_ok(kube_discovery_parse_aggregated(d, n, &e), &e);
  if (api) {
    ck_assert_ok(kube_parse_json(a, "api", api, strlen(api), 1u << 20, &n, &e), &e);
    ck_assert_ok(kube_discovery_parse_aggregated(d, n, &e), &e);
  }
  kube_discovery_seal(d);
  doc_arena_free(a);
  return d;
}

START_TEST(test_kube_discovery_reads_kubesim_aggregated_documents) {
  char *apis = read_file(DISCO "/apis.json"), *api = read_file(DISCO "/api.json");
  struct kube_discovery *d = disco_from(apis, api);
  const struct kube_resource *r;
  struct err e = ERR_INIT;

  ck_assert_ok(kube_discovery_find_in(d, "prod-eu", "networking.istio.io", NULL, "VirtualService",
                                      &r, &e),
               &e);
  ck_assert_str_eq(r->plural, "virtualservices");
  ck_assert_str_eq(r->version, "v1");
  ck_assert_uint_eq(r->n_versions, 3);
  ck_assert_str_eq(r->versions[2], "v1alpha3");
  ck_assert(r->namespaced);
  ck_assert_ok(kube_discovery_find_in(d, "prod-eu", "servicemesh.cisco.com", "v1alpha1",
                                      "IstioMeshGateway", &r, &e),
               &e);
  ck_assert_str_eq(r->plural, "istiomeshgateways");
  ck_assert_ok(kube_discovery_find_in(d, "prod-eu", "", "v1", "Namespace", &r, &e), &e);
  ck_assert(!r->namespaced);
  ck_assert_str_eq(r->plural, "namespaces");
  ck_assert_uint_eq(kube_discovery_istio_in(d),
                    KUBE_ISTIO_V1 | KUBE_ISTIO_V1BETA1 | KUBE_ISTIO_V1ALPHA3);
  kube_discovery_free(d);
  free(apis);
  free(api);
}
END_TEST

static const char *agg_v1alpha3_only =
    "{\"kind\":\"APIGroupDiscoveryList\",\"apiVersion\":\"apidiscovery.k8s.io/v2\",\"items\":["
    "{\"metadata\":{\"name\":\"networking.istio.io\"},\"versions\":["
    "{\"version\":\"v1alpha3\",\"resources\":["
    "{\"resource\":\"virtualservices\",\"responseKind\":{\"group\":\"networking.istio.io\","
    "\"version\":\"v1alpha3\",\"kind\":\"VirtualService\"},\"scope\":\"Namespaced\"},"
    "{\"resource\":\"noresponsekind\",\"scope\":\"Namespaced\"}]}]},"
    "{\"metadata\":{\"name\":\"metrics.k8s.io\"},\"versions\":["
    "{\"version\":\"v1beta1\",\"freshness\":\"Stale\",\"resources\":[]}]},"
    "{\"metadata\":{\"name\":\"example.com\"},\"versions\":["
    "{\"version\":\"v2\",\"resources\":[{\"resource\":\"widgets\",\"responseKind\":"
    "{\"kind\":\"Widget\"},\"scope\":\"Cluster\"}]},"
    "{\"version\":\"v1\",\"resources\":[{\"resource\":\"widgets\",\"responseKind\":"
    "{\"kind\":\"Widget\"},\"scope\":\"Cluster\"}]}]}]}";

START_TEST(test_kube_discovery_missing_kind_is_a_precise_error) {
  struct kube_discovery *d = disco_from(agg_v1alpha3_only, NULL);
  const struct kube_resource *r;
  struct err e = ERR_INIT;

  ck_assert_int_eq(kube_discovery_find_in(d, "prod-eu", "servicemesh.cisco.com", "v1alpha1",
                                          "IstioMeshGateway", &r, &e),
                   -ENOENT);
  ck_assert_str_eq(e.msg, "cluster prod-eu does not serve servicemesh.cisco.com/v1alpha1 "
                          "IstioMeshGateway; is Service Mesh Manager installed?");
  err_clear(&e);
  ck_assert_int_eq(kube_discovery_find_in(d, "prod-eu", "networking.istio.io", "v1",
                                          "VirtualService", &r, &e),
                   -ENOENT);
  ck_assert_str_eq(e.msg, "cluster prod-eu does not serve networking.istio.io/v1 VirtualService "
                          "(it serves v1alpha3)");
  err_clear(&e);
  ck_assert_int_eq(kube_discovery_find_in(d, "prod-eu", "networking.istio.io", NULL, "Gateway", &r,
                                          &e),
                   -ENOENT);
  ck_assert_str_eq(e.msg,
                   "cluster prod-eu does not serve networking.istio.io Gateway; is Istio installed?");
  /* a resource without responseKind is dropped, as client-go does */
  err_clear(&e);
  ck_assert_int_eq(kube_discovery_find_in(d, "prod-eu", "networking.istio.io", NULL, "", &r, &e),
                   -ENOENT);
  /* a stale group is "cannot tell", not "not served" */
  err_clear(&e);
  ck_assert_int_eq(kube_discovery_find_in(d, "prod-eu", "metrics.k8s.io", "v1beta1", "PodMetrics",
                                          &r, &e),
                   -EAGAIN);
  ck_assert_str_eq(e.msg, "cluster prod-eu: cannot tell whether it serves metrics.k8s.io/v1beta1 "
                          "PodMetrics: discovery failed for metrics.k8s.io/v1beta1: stale (its "
                          "aggregated API server is not answering)");
  /* preferred version: the group's first */
  ck_assert_ok(kube_discovery_find_in(d, "prod-eu", "example.com", NULL, "Widget", &r, &e), &e);
  ck_assert_str_eq(r->version, "v2");
  ck_assert(!r->namespaced);
  ck_assert_uint_eq(kube_discovery_istio_in(d), KUBE_ISTIO_V1ALPHA3);
  kube_discovery_free(d);
}
END_TEST

START_TEST(test_kube_discovery_legacy_lists_and_group_order) {
  char *legacy = read_file(DISCO "/legacy-networking-v1beta1.json");
  struct kube_discovery *d = kube_discovery_new("c");
  struct doc_arena *a = doc_arena_new();
  struct doc_node *n;
  const struct kube_resource *r;
  const char *order[] = {"v1beta1", "v1alpha3"};
  struct err e = ERR_INIT;

  ck_assert_ok(kube_parse_json(a, "l", legacy, strlen(legacy), 1u << 20, &n, &e), &e);
  kube_discovery_set_group_order(d, "networking.istio.io", order, 2, "v1beta1");
  ck_assert_ok(kube_discovery_parse_resource_list(d, "networking.istio.io", "v1beta1", n, &e), &e);
  kube_discovery_seal(d);
  ck_assert_ok(kube_discovery_find_in(d, "c", "networking.istio.io", "v1beta1", "DestinationRule",
                                      &r, &e),
               &e);
  ck_assert_str_eq(r->plural, "destinationrules");
  ck_assert_str_eq(r->version, "v1beta1");
  ck_assert(r->namespaced);
  /* "virtualservices/status" is a subresource, not a kind */
  ck_assert_int_eq(kube_discovery_find_in(d, "c", "networking.istio.io", NULL, "VirtualService/status",
                                          &r, NULL),
                   -ENOENT);
  ck_assert_uint_eq(kube_discovery_istio_in(d), KUBE_ISTIO_V1BETA1 | KUBE_ISTIO_V1ALPHA3);
  kube_discovery_free(d);
  doc_arena_free(a);
  free(legacy);
}
END_TEST

/* ------------------------------------------------------------ watch frames */

START_TEST(test_kube_watch_frames_are_found_wherever_the_stream_is_cut) {
  const char *stream =
      "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a}\\\"{\"},\"x\":[1,{\"y\":\"]\"}]}}\n"
      "  {\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"7\"}}}"
      "{\"type\":\"DELETED\",\"object\":{}}\n";
  const char *want[] = {
      "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a}\\\"{\"},\"x\":[1,{\"y\":\"]\"}]}}",
      "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"7\"}}}",
      "{\"type\":\"DELETED\",\"object\":{}}"};
  size_t len = strlen(stream);

  /* feed the stream in every chunk size: the frames never depend on it */
  for (size_t chunk = 1; chunk <= len; chunk++) {
    struct kube_frame f = {0};
    size_t avail = 0, used = 0, got = 0, off, flen;

    while (used < len) {
      int r;
      avail = avail + chunk > len ? len : avail + chunk;
      while ((r = kube_frame_next(&f, stream + used, avail - used, &off, &flen)) == 1) {
        ck_assert_uint_lt(got, 3);
        ck_assert_uint_eq(flen, strlen(want[got]));
        ck_assert_mem_eq(stream + used + off, want[got], flen);
        got++;
        used += off + flen;
      }
      ck_assert_int_eq(r, 0);
      if (avail == len)
        break;
    }
    ck_assert_uint_eq(got, 3);
  }
}
END_TEST

START_TEST(test_kube_watch_frame_rejects_what_is_not_a_json_object) {
  struct kube_frame f = {0};
  size_t off, flen;
  char deep[2000];

  ck_assert_int_eq(kube_frame_next(&f, "  [1,2]", 7, &off, &flen), -EBADMSG);
  memset(&f, 0, sizeof(f));
  ck_assert_int_eq(kube_frame_next(&f, "<html>", 6, &off, &flen), -EBADMSG);
  memset(&f, 0, sizeof(f));
  ck_assert_int_eq(kube_frame_next(&f, "{\"a\":[1}]", 10, &off, &flen), -EBADMSG);
  memset(&f, 0, sizeof(f));
  ck_assert_int_eq(kube_frame_next(&f, "{\"a\":[1,{\"b\":\"}]\"}]} {", 22, &off, &flen), 1);
  ck_assert_uint_eq(flen, 20);
  memset(&f, 0, sizeof(f));
  memset(deep, '[', sizeof(deep));
  deep[0] = '{';
  ck_assert_int_eq(kube_frame_next(&f, deep, sizeof(deep), &off, &flen), -EBADMSG);
}
END_TEST

/* ------------------------------------------------------------ exec plugins */

struct exec_done {
  bool done;
  struct kube_exec_result res;
};

static void on_exec(void *ud, struct kube_exec_result *res) {
  struct exec_done *d = ud;
  d->done = true;
  d->res.r = res->r;
  d->res.err = res->err;
  d->res.cred = res->cred;
  memset(&res->cred, 0, sizeof(res->cred));
}

static void write_script(const char *dir, const char *name, const char *body) {
  char *path = path_join(dir, name);
  testutil_write(dir, name, body);
  ck_assert_int_eq(chmod(path, 0755), 0);
  free(path);
}

static int run_plugin(struct fixture *f, struct kube_exec_config *x, const char *info,
                      uint64_t timeout, struct exec_done *d) {
  struct kube_exec_run *run = NULL;
  struct err e = ERR_INIT;
  int r;

  memset(d, 0, sizeof(*d));
  r = kube_exec_start(f->loop, "prod-eu", x, info, timeout, on_exec, d, &run, &e);
  if (r < 0) {
    d->res.r = r;
    d->res.err = e;
    return r;
  }
  ck_assert_int_eq(kube_loop_run_until(f->loop, &d->done, 10 * USEC_PER_SEC), 0);
  return d->res.r;
}

#define CRED(extra) \
  "{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\"," \
  "\"status\":{" extra "}}"

START_TEST(test_kube_exec_passes_args_env_and_exec_info) {
  struct fixture f;
  struct kube_pair env[] = {{s_plugin_out, NULL}, {s_home, s_nowhere}};
  char *args[] = {s_flag, s_two_words};
  struct kube_exec_config x = {.api_version = s_exec_v1,
                               .args = args, .n_args = 2, .env = env, .n_env = 2,
                               .interactive = KUBE_INTERACTIVE_NEVER};
  struct exec_done d;
  char *out, *got;

  fixture_init(&f);
  out = path_join(f.dir, "out");
  env[0].value = out;
  write_script(f.dir, "plugin",
               "#!/bin/sh\n"
               "{ printf '%s|' \"$@\"; echo; echo \"HOME=$HOME\"; "
               "echo \"INFO=$KUBERNETES_EXEC_INFO\"; } > \"$PLUGIN_OUT\"\n"
               "cat 0<&0 >/dev/null\n" /* stdin is /dev/null: this ends at once */
               "echo '" CRED("\"token\":\"exec-token-1\"") "'\n");
  x.command = path_join(f.dir, "plugin");
  ck_assert_ok(run_plugin(&f, &x, NULL, 10 * USEC_PER_SEC, &d), &d.res.err);
  ck_assert_str_eq(buf_cstr(&d.res.cred.token), "exec-token-1");
  ck_assert_int_eq(d.res.cred.expires, 0);
  got = read_file(out);
  ck_assert_str_eq(got, "--flag|two words|\nHOME=/nowhere\n"
                        "INFO={\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication."
                        "k8s.io/v1\",\"spec\":{\"interactive\":false}}\n");
  free(got);
  kube_cred_dispose(&d.res.cred);
  free(x.command);
  free(out);
  fixture_done(&f);
}
END_TEST

START_TEST(test_kube_exec_info_carries_cluster_info_when_asked) {
  struct kube_config *c = parse_ok(
      "/k/config",
      "current-context: x\n"
      "clusters: [{name: x, cluster: {server: 'https://127.0.0.1:16443', tls-server-name: emu.test,"
      " extensions: [{name: client.authentication.k8s.io/exec, extension: {audience: emu-test}}]}}]\n"
      "users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: p,"
      " interactiveMode: Never, provideClusterInfo: true}}}]\n"
      "contexts: [{name: x, context: {cluster: x, user: u}}]\n",
      NULL);
  struct buf ca = BUF_INIT, out = BUF_INIT;

  buf_puts(&ca, "PEM");
  kube_exec_info(c, &ca, &out);
  ck_assert_str_eq(buf_cstr(&out),
                   "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\","
                   "\"spec\":{\"cluster\":{\"server\":\"https://127.0.0.1:16443\","
                   "\"tls-server-name\":\"emu.test\",\"certificate-authority-data\":\"UEVN\","
                   "\"config\":{\"audience\":\"emu-test\"}},\"interactive\":false}}");
  buf_dispose(&ca);
  buf_dispose(&out);
  kube_config_free(c);
}
END_TEST

START_TEST(test_kube_exec_output_is_checked) {
  struct fixture f;
  struct kube_exec_config x = {.api_version = s_exec_v1, .install_hint = s_hint};
  struct exec_done d;
  static const struct {
    const char *script, *want;
  } cases[] = {
      {"echo '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\","
       "\"status\":{\"token\":\"t\"}}'",
       "is configured to use API version client.authentication.k8s.io/v1, plugin returned version "
       "client.authentication.k8s.io/v1beta1"},
      {"echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\"}'",
       "returned no status"},
      {"echo '" CRED("\"clientCertificateData\":\"x\"") "'",
       "returned clientCertificateData without clientKeyData"},
      {"echo '" CRED("\"expirationTimestamp\":\"soon\"") "'", "returned neither a token nor"},
      {"echo '" CRED("\"token\":\"t\",\"expirationTimestamp\":\"soon\"") "'",
       "expirationTimestamp that is not RFC 3339: 'soon'"},
      {"echo not json", "did not print an ExecCredential JSON object"},
      {"echo 'token leaked? no' >&2; echo 'error: login required' >&2; exit 3",
       "failed with exit status 3: \"error: login required\""},
  };

  fixture_init(&f);
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    char *body = xasprintf("#!/bin/sh\n%s\n", cases[i].script);
    char name[32];
    str_format(name, sizeof(name), "p%zu", i);
    write_script(f.dir, name, body);
    x.command = path_join(f.dir, name);
    ck_assert_int_lt(run_plugin(&f, &x, NULL, 10 * USEC_PER_SEC, &d), 0);
    ck_assert_msg(strstr(d.res.err.msg, cases[i].want), "case %zu: '%s'", i, d.res.err.msg);
    ck_assert(str_has_prefix(d.res.err.msg, "cluster prod-eu: exec plugin '"));
    free(x.command);
    free(body);
  }
  /* not found: the install hint says what to do */
  x.command = s_no_such;
  ck_assert_int_eq(run_plugin(&f, &x, NULL, 10 * USEC_PER_SEC, &d), -ENOENT);
  ck_assert_str_eq(d.res.err.msg, "cluster prod-eu: exec plugin 'egressd-no-such-plugin' not found: "
                                  "install it with apt install foo");
  fixture_done(&f);
}
END_TEST

START_TEST(test_kube_exec_timeout_and_oversize_output_fail) {
  struct fixture f;
  struct kube_exec_config x = {.api_version = s_exec_v1};
  struct exec_done d;
  uint64_t t0;

  fixture_init(&f);
  write_script(f.dir, "slow", "#!/bin/sh\nexec sleep 30\n");
  x.command = path_join(f.dir, "slow");
  t0 = time_now_mono_usec();
  ck_assert_int_eq(run_plugin(&f, &x, NULL, 300 * USEC_PER_MSEC, &d), -ETIMEDOUT);
  ck_assert(strstr(d.res.err.msg, "did not finish within"));
  ck_assert_uint_lt(time_now_mono_usec() - t0, 5 * USEC_PER_SEC); /* killed, not waited for */
  free(x.command);
  write_script(f.dir, "big", "#!/bin/sh\nhead -c 3000000 /dev/zero\n");
  x.command = path_join(f.dir, "big");
  ck_assert_int_eq(run_plugin(&f, &x, NULL, 10 * USEC_PER_SEC, &d), -EFBIG);
  ck_assert(strstr(d.res.err.msg, "printed more than 1048576 bytes"));
  free(x.command);
  ck_assert_uint_eq(kube_loop_pending(f.loop), 0);
  fixture_done(&f);
}
END_TEST

/* A client whose server refuses connections: the exec plugin still runs
 * before each request, so its runs show the credential cache at work. */
struct count_done {
  unsigned n;
  struct kube_result last;
};

static void on_count(void *ud, const struct kube_result *res) {
  struct count_done *c = ud;
  c->n++;
  c->last = *res;
}

static unsigned plugin_runs(const char *dir) {
  char *path = path_join(dir, "runs"), *s = testutil_read(path);
  unsigned n = 0;
  for (char *p = s; p && *p; p++)
    n += *p == '\n';
  free(s);
  free(path);
  return n;
}

static void two_requests(struct fixture *f, const char *expiry, unsigned want_runs) {
  struct kube_client *c = NULL;
  struct count_done cd = {0};
  struct doc_arena *a = doc_arena_new();
  struct err e = ERR_INIT;
  char *script = xasprintf("#!/bin/sh\necho run >> '%s/runs'\n"
                           "echo '" CRED("\"token\":\"tok\",\"expirationTimestamp\":\"%s\"") "'\n",
                           f->dir, expiry);
  char *kc = xasprintf("current-context: x\n"
                       "clusters: [{name: x, cluster: {server: 'https://127.0.0.1:1',"
                       " insecure-skip-tls-verify: true}}]\n"
                       "users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1,"
                       " command: ./plugin, interactiveMode: Never}}}]\n"
                       "contexts: [{name: x, context: {cluster: x, user: u}}]\n");
  char *runs = path_join(f->dir, "runs");

  unlink(runs);
  write_script(f->dir, "plugin", script);
  ck_assert_ok(client_from(f, kc, &c, &e), &e);
  for (int i = 0; i < 2; i++) {
    ck_assert_ok(kube_client_get_path(c, "/version", a, on_count, &cd, NULL, &e), &e);
    ck_assert_ok(kube_loop_run_until_idle(f->loop, 10 * USEC_PER_SEC), &e);
  }
  ck_assert_uint_eq(cd.n, 2);
  /* the request itself failed fast, once, without retries */
  ck_assert_int_eq(cd.last.failure, KUBE_FAIL_CONNECT);
  ck_assert_int_eq(cd.last.r, -ECONNREFUSED);
  ck_assert_uint_eq(cd.last.attempts, 1);
  ck_assert(strstr(cd.last.err.msg, "cluster prod-eu: GET /version: "));
  ck_assert_uint_eq(plugin_runs(f->dir), want_runs);
  kube_client_free(c);
  doc_arena_free(a);
  free(runs);
  free(kc);
  free(script);
}

START_TEST(test_kube_exec_credential_is_cached_until_it_expires) {
  struct fixture f;

  fixture_init(&f);
  two_requests(&f, "2999-01-01T00:00:00Z", 1); /* valid: one run for both requests */
  two_requests(&f, "2001-01-01T00:00:00Z", 2); /* expired: a run before each request */
  fixture_done(&f);
}
END_TEST

/* ------------------------------------------------------------ the loop */

START_TEST(test_kube_loop_waits_on_the_callers_descriptors_too) {
  struct fixture f;
  int p[2];
  struct pollfd pfd;
  uint64_t t0;

  fixture_init(&f);
  ck_assert_int_eq(pipe(p), 0);
  pfd = (struct pollfd){.fd = p[0], .events = POLLIN};
  /* nothing ready: returns after the wait with no revents */
  t0 = time_now_mono_usec();
  ck_assert_int_eq(kube_loop_run_once(f.loop, 50 * USEC_PER_MSEC, &pfd, 1), 0);
  ck_assert_uint_ge(time_now_mono_usec() - t0, 40 * USEC_PER_MSEC);
  ck_assert_int_eq(pfd.revents, 0);
  /* readable: returns at once with POLLIN */
  ck_assert_int_eq(write(p[1], "x", 1), 1);
  t0 = time_now_mono_usec();
  ck_assert_int_eq(kube_loop_run_once(f.loop, 10 * USEC_PER_SEC, &pfd, 1), 1);
  ck_assert(pfd.revents & POLLIN);
  ck_assert_uint_lt(time_now_mono_usec() - t0, 5 * USEC_PER_SEC);
  close(p[0]);
  close(p[1]);
  ck_assert_int_eq(kube_loop_run_until_idle(f.loop, USEC_PER_SEC), 0);
  fixture_done(&f);
}
END_TEST

static void on_cancelled(void *ud, const struct kube_result *res) {
  (void)res;
  ck_assert_msg(false, "a cancelled operation completed (%p)", ud);
}

START_TEST(test_kube_cancelled_and_freed_operations_never_call_back) {
  struct fixture f;
  struct kube_client *c = NULL;
  struct kube_op *op = NULL;
  struct doc_arena *a = doc_arena_new();
  struct kube_ref ref = {.group = "networking.istio.io", .version = "v1", .plural = "gateways"};
  struct err e = ERR_INIT;

  fixture_init(&f);
  ck_assert_ok(client_from(&f,
                           "current-context: x\n"
                           "clusters: [{name: x, cluster: {server: 'https://127.0.0.1:1',"
                           " insecure-skip-tls-verify: true}}]\n"
                           "contexts: [{name: x, context: {cluster: x}}]\n",
                           &c, &e),
               &e);
  ck_assert_ok(kube_client_list(c, &ref, NULL, a, on_cancelled, NULL, &op, &e), &e);
  kube_op_cancel(op);
  ck_assert_ok(kube_client_discover(c, on_cancelled, NULL, &op, &e), &e);
  kube_op_cancel(op);
  ck_assert_ok(kube_client_get(c, &ref, "x", a, on_cancelled, NULL, NULL, &e), &e);
  ck_assert_ok(kube_client_discover(c, on_cancelled, NULL, NULL, &e), &e);
  kube_client_free(c); /* cancels the last two */
  ck_assert_uint_eq(kube_loop_pending(f.loop), 0);
  ck_assert_int_eq(kube_loop_run_until_idle(f.loop, USEC_PER_SEC), 0);
  doc_arena_free(a);
  fixture_done(&f);
}
END_TEST

static Suite *kube_suite(void) {
  Suite *s = suite_create("kube");
  TCase *tc = tcase_create("kubeconfig");

  tcase_add_test(tc, test_kube_config_reads_every_field_and_resolves_relative_paths);
  tcase_add_test(tc, test_kube_config_explicit_context_wins_over_current_context);
  tcase_add_test(tc, test_kube_config_decodes_data_fields);
  tcase_add_test(tc, test_kube_config_refuses_file_and_data_forms_together);
  tcase_add_test(tc, test_kube_config_refuses_token_with_basic_auth);
  tcase_add_test(tc, test_kube_config_refuses_ca_with_insecure);
  tcase_add_test(tc, test_kube_config_refuses_certificate_without_key_and_key_without_certificate);
  tcase_add_test(tc, test_kube_config_exec_checks_as_client_go);
  tcase_add_test(tc, test_kube_config_exec_fields_and_command_resolution);
  tcase_add_test(tc, test_kube_config_selection_errors_name_what_is_missing);
  tcase_add_test(tc, test_kube_config_checks_types_names_and_base64);
  tcase_add_test(tc, test_kube_config_reports_every_problem_at_once);
  tcase_add_test(tc, test_kube_config_unknown_field_is_a_warning_with_a_suggestion);
  tcase_add_test(tc, test_kube_config_syntax_errors_and_empty_files);
  tcase_add_test(tc, test_kube_config_load_reads_the_file);
  suite_add_tcase(s, tc);

  tc = tcase_create("client");
  tcase_add_test(tc, test_kube_client_refuses_credentials_over_plain_http);
  tcase_add_test(tc, test_kube_client_keeps_the_server_path_prefix);
  tcase_add_test(tc, test_kube_client_routes_tls_server_name_to_the_real_address);
  tcase_add_test(tc, test_kube_client_checks_pem_files_and_names_them);
  tcase_add_test(tc, test_kube_client_rereads_a_changed_token_file);
  tcase_add_test(tc, test_kube_client_basic_auth_is_base64_of_user_and_password);
  tcase_add_test(tc, test_kube_loop_waits_on_the_callers_descriptors_too);
  tcase_add_test(tc, test_kube_cancelled_and_freed_operations_never_call_back);
  suite_add_tcase(s, tc);

  tc = tcase_create("errors");
  tcase_add_test(tc, test_kube_status_error_uses_reason_message_and_causes);
  tcase_add_test(tc, test_kube_status_error_quotes_non_status_bodies);
  tcase_add_test(tc, test_kube_status_error_never_contains_a_secret_even_when_echoed);
  tcase_add_test(tc, test_kube_status_error_redacts_split_edge_and_short_secrets);
  tcase_add_test(tc, test_kube_short_secrets_are_redacted_too);
  tcase_add_test(tc, test_kube_status_errno_follows_the_status);
  tcase_add_test(tc, test_kube_backoff_is_jittered_exponential_and_capped);
  tcase_add_test(tc, test_kube_backoff_honours_retry_after_up_to_the_cap);
  tcase_add_test(tc, test_kube_media_type_is_judged_by_type_and_parameters);
  suite_add_tcase(s, tc);

  tc = tcase_create("discovery");
  tcase_add_test(tc, test_kube_discovery_reads_kubesim_aggregated_documents);
  tcase_add_test(tc, test_kube_discovery_missing_kind_is_a_precise_error);
  tcase_add_test(tc, test_kube_discovery_legacy_lists_and_group_order);
  tcase_add_test(tc, test_kube_watch_frames_are_found_wherever_the_stream_is_cut);
  tcase_add_test(tc, test_kube_watch_frame_rejects_what_is_not_a_json_object);
  suite_add_tcase(s, tc);

  tc = tcase_create("exec");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_kube_exec_passes_args_env_and_exec_info);
  tcase_add_test(tc, test_kube_exec_info_carries_cluster_info_when_asked);
  tcase_add_test(tc, test_kube_exec_output_is_checked);
  tcase_add_test(tc, test_kube_exec_timeout_and_oversize_output_fail);
  tcase_add_test(tc, test_kube_exec_credential_is_cached_until_it_expires);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return testutil_run(kube_suite()); }
