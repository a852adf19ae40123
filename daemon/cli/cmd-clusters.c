/* egressd clusters: is each cluster usable, and what is on it.
 *
 *   check    reachable, TLS, credentials, Kubernetes and Istio versions, the
 *            Service Mesh Manager CRD, round-trip time; every cluster at once
 *   managed  the objects egressd manages (one LIST per kind with egressd's
 *            ownership label), as the daemon reads live state
 *   get      GET or LIST any served resource through egressd's client
 *   watch    stream a collection's events as JSON lines
 *   apply    server-side apply a file as field manager egressd
 *   delete   delete one object (optionally only if its UID matches)
 *
 * Clusters come from the host config (--config, default /etc/egressd/
 * egressd.yaml; --cluster NAME picks some) or from one kubeconfig
 * (--kubeconfig FILE [--context C] [--name NAME]). All of it runs on one
 * kube loop: clusters proceed concurrently.
 *
 * When you add a subcommand or an option, also touch docs/man/egressd-clusters.1
 * and docs/clusters.md.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "cli/cli.h"
#include "doc/doc.h"
#include "kube/kube.h"
#include "render/render.h"
#include "svc/hostconfig.h"

#define MANAGED_SELECTOR "app.kubernetes.io/managed-by=egressd"

/* ------------------------------------------------------------ common options */

struct target {
  char *name;
  char *kubeconfig;
  char *context;
};

struct common {
  const char *config;
  const char *kubeconfig;
  const char *context;
  const char *name;
  const char *names[64];
  size_t n_names;
  const char *output;
  uint64_t timeout_usec;          /* whole command */
  uint64_t request_timeout_usec;
  uint64_t connect_timeout_usec;
  unsigned attempts;
  /* writes by hand are not the daemon's: they carry their own field manager
   * so managedFields tell them apart, and they are not in the ledger */
  const char *field_manager;
};

enum {
  OPT_CONFIG = 0x100,
  OPT_KUBECONFIG,
  OPT_CONTEXT,
  OPT_NAME,
  OPT_CLUSTER,
  OPT_TIMEOUT,
  OPT_REQUEST_TIMEOUT,
  OPT_CONNECT_TIMEOUT,
  OPT_ATTEMPTS,
  OPT_FIELD_SELECTOR,
  OPT_RV,
  OPT_MAX_EVENTS,
  OPT_WATCH_TIMEOUT,
  OPT_UID,
  OPT_DRY_RUN,
  OPT_FORCE,
  OPT_CASCADE,
  OPT_CHUNK,
};

#define COMMON_OPTIONS                                                                     \
  {"config", required_argument, NULL, OPT_CONFIG},                                         \
      {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},                             \
      {"context", required_argument, NULL, OPT_CONTEXT},                                   \
      {"name", required_argument, NULL, OPT_NAME},                                         \
      {"cluster", required_argument, NULL, OPT_CLUSTER},                                   \
      {"timeout", required_argument, NULL, OPT_TIMEOUT},                                   \
      {"request-timeout", required_argument, NULL, OPT_REQUEST_TIMEOUT},                   \
      {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},                   \
      {"attempts", required_argument, NULL, OPT_ATTEMPTS},                                 \
      {"output", required_argument, NULL, 'o'}, {"help", no_argument, NULL, 'h'}

static const char common_help[] =
    "Clusters (default: every cluster of the host config):\n"
    "  --config FILE           host config (default " HOSTCONFIG_DEFAULT_PATH ")\n"
    "  --cluster NAME          only this cluster of the host config (repeatable)\n"
    "  --kubeconfig FILE       one cluster from this kubeconfig instead of a host config\n"
    "  --context NAME          with --kubeconfig: the context (default: current-context)\n"
    "  --name NAME             with --kubeconfig: the cluster's name in messages\n"
    "                          (default: the kubeconfig's file name)\n"
    "Requests:\n"
    "  --connect-timeout DUR   TCP connect + TLS handshake (default 10s)\n"
    "  --request-timeout DUR   one request (default: sync.requestTimeout, 30s)\n"
    "  --attempts N            attempts of one request, retries included (default 6)\n"
    "  --timeout DUR           the whole command (default 10m)\n"
    "  -h, --help              show this help\n";

/* Handle a common option; 1 if it was one, 0 if not, CLI_EXIT_USAGE+ on error. */
static int common_opt(struct common *co, const char *cmd, int c) {
  uint64_t u;

  switch (c) {
  case OPT_CONFIG:
    co->config = optarg;
    return 1;
  case OPT_KUBECONFIG:
    co->kubeconfig = optarg;
    return 1;
  case OPT_CONTEXT:
    co->context = optarg;
    return 1;
  case OPT_NAME:
    co->name = optarg;
    return 1;
  case OPT_CLUSTER:
    if (co->n_names == ARRAY_SIZE(co->names))
      return -cli_usage_error(cmd, "too many --cluster options");
    co->names[co->n_names++] = optarg;
    return 1;
  case OPT_TIMEOUT:
  case OPT_REQUEST_TIMEOUT:
  case OPT_CONNECT_TIMEOUT:
    if (time_parse_duration(optarg, &u) < 0 || u == 0)
      return -cli_usage_error(cmd, "'%s' is not a duration such as 10s", optarg);
    if (c == OPT_TIMEOUT)
      co->timeout_usec = u;
    else if (c == OPT_REQUEST_TIMEOUT)
      co->request_timeout_usec = u;
    else
      co->connect_timeout_usec = u;
    return 1;
  case OPT_ATTEMPTS: {
    int n;
    if (str_to_int(optarg, 1, 100, &n) < 0)
      return -cli_usage_error(cmd, "--attempts must be 1-100");
    co->attempts = (unsigned)n;
    return 1;
  }
  case 'o':
    co->output = optarg;
    return 1;
  default:
    return 0;
  }
}

static void targets_free(struct target *t, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(t[i].name);
    free(t[i].kubeconfig);
    free(t[i].context);
  }
  free(t);
}

static char *name_of_kubeconfig(const char *path) {
  const char *base = strrchr(path, '/');
  size_t n;

  base = base ? base + 1 : path;
  n = strcspn(base, ".");
  return n ? xstrndup(base, n) : xstrdup("cluster");
}

/* The clusters to work on. Returns 0 or a CLI exit status. */
static int load_targets(struct common *co, const char *cmd, struct target **ret, size_t *n_ret) {
  struct target *t;
  struct hostconfig *hc = NULL;
  struct diag_list diags = {0};
  struct err err = ERR_INIT;
  size_t n = 0;

  if (co->kubeconfig) {
    if (co->n_names || co->config)
      return cli_usage_error(cmd, "--kubeconfig names one cluster; it excludes --config and "
                                  "--cluster");
    t = xcalloc(1, sizeof(*t));
    t->name = co->name ? xstrdup(co->name) : name_of_kubeconfig(co->kubeconfig);
    t->kubeconfig = xstrdup(co->kubeconfig);
    t->context = co->context ? xstrdup(co->context) : NULL;
    *ret = t;
    *n_ret = 1;
    return 0;
  }
  if (co->context || co->name)
    return cli_usage_error(cmd, "--context and --name go with --kubeconfig");
  if (hostconfig_load(co->config ? co->config : HOSTCONFIG_DEFAULT_PATH, &hc, &diags, &err) < 0) {
    if (diags.n)
      diag_print(&diags, stderr, cli_color(stderr));
    else
      err_print(&err, stderr, "egressd: ");
    diag_list_dispose(&diags);
    return CLI_EXIT_USAGE;
  }
  diag_list_dispose(&diags);
  if (!co->request_timeout_usec)
    co->request_timeout_usec = hc->sync.request_timeout_usec;
  for (size_t i = 0; i < co->n_names; i++)
    if (!hostconfig_cluster_find(hc, co->names[i])) {
      fprintf(stderr, "egressd %s: cluster '%s' is not in %s\n", cmd, co->names[i], hc->path);
      hostconfig_free(hc);
      return CLI_EXIT_USAGE;
    }
  t = xcalloc(hc->n_clusters ? hc->n_clusters : 1, sizeof(*t));
  for (size_t i = 0; i < hc->n_clusters; i++) {
    const struct hostconfig_cluster *hcl = &hc->clusters[i];
    bool want = co->n_names == 0;
    for (size_t j = 0; j < co->n_names; j++)
      want |= strcmp(co->names[j], hcl->name) == 0;
    if (!want)
      continue;
    t[n].name = xstrdup(hcl->name);
    t[n].kubeconfig = xstrdup(hcl->kubeconfig);
    t[n].context = hcl->context ? xstrdup(hcl->context) : NULL;
    n++;
  }
  hostconfig_free(hc);
  *ret = t;
  *n_ret = n;
  return 0;
}

static void kube_opts(const struct common *co, struct kube_options *o) {
  kube_options_init(o);
  if (co->request_timeout_usec)
    o->request_timeout_usec = co->request_timeout_usec;
  if (co->connect_timeout_usec)
    o->connect_timeout_usec = co->connect_timeout_usec;
  if (co->attempts)
    o->max_attempts = co->attempts;
  if (co->field_manager)
    o->field_manager = co->field_manager;
}

static uint64_t command_timeout(const struct common *co) {
  return co->timeout_usec ? co->timeout_usec : 600 * USEC_PER_SEC;
}

/* One cluster for get/watch/apply/delete: its loop, client and discovery. */
struct one {
  struct target *t;
  size_t n_t;
  struct kube_loop *loop;
  struct kube_client *c;
};

static void one_close(struct one *o) {
  kube_client_free(o->c);
  kube_loop_free(o->loop);
  targets_free(o->t, o->n_t);
}

static int one_open(struct common *co, const char *cmd, struct one *o) {
  struct kube_options kopts;
  struct kube_result res;
  struct err err = ERR_INIT;
  int r;

  memset(o, 0, sizeof(*o));
  r = load_targets(co, cmd, &o->t, &o->n_t);
  if (r)
    return r;
  if (o->n_t != 1) {
    targets_free(o->t, o->n_t);
    o->t = NULL;
    return cli_usage_error(cmd, "name one cluster (--cluster NAME or --kubeconfig FILE)");
  }
  kube_opts(co, &kopts);
  if (kube_loop_new(&o->loop, &err) < 0 ||
      kube_client_new(o->loop, o->t->name, o->t->kubeconfig, o->t->context, &kopts, &o->c, NULL,
                      &err) < 0 ||
      kube_client_discover_sync(o->c, &res, &err) < 0) {
    err_print(&err, stderr, "egressd: ");
    one_close(o);
    return CLI_EXIT_FAIL;
  }
  return 0;
}

/* one_open(), then the resource @what names (a plural, kind or short name,
 * optionally .group) and its ref: in namespace @ns, or the kubeconfig's
 * namespace, or every namespace when @all. */
static int one_open_resource(struct common *co, const char *cmd, struct one *o, const char *what,
                             const char *ns, bool all, const struct kube_resource **rt,
                             struct kube_ref *ref) {
  struct err err = ERR_INIT;
  int r = one_open(co, cmd, o);

  if (r)
    return r;
  if (kube_discovery_resolve(o->c, what, rt, &err) < 0) {
    err_print(&err, stderr, "egressd: ");
    one_close(o);
    return CLI_EXIT_FAIL;
  }
  *ref = kube_ref_of(*rt, all ? NULL : ns ? ns : kube_client_namespace(o->c));
  return 0;
}

static void print_doc(const struct doc_node *n, const char *format, FILE *f) {
  struct buf b = BUF_INIT;
  struct err err = ERR_INIT;

  if (str_eq(format, "yaml")) {
    if (doc_emit_yaml(n, &b, &err) < 0)
      err_print(&err, stderr, "egressd: ");
  } else {
    doc_emit_json(n, &b, DOC_JSON_PRETTY);
  }
  fwrite(b.data ? b.data : "", 1, b.len, f);
  buf_dispose(&b);
}

/* ------------------------------------------------------------ check */

struct check {
  const struct target *t;
  struct kube_client *c;
  struct doc_arena *a;
  struct err err;
  const char *problem;          /* NULL while usable */
  bool reachable, tls, creds, done, usable;
  char *version, *protocol;
  uint64_t rtt_usec, started, elapsed_usec;
  unsigned requests;
  const char *istio;
  unsigned istio_bits;
  bool smm;
};

static void check_finish(struct check *k) {
  k->done = true;
  k->elapsed_usec = time_now_mono_usec() - k->started;
}

static void check_fail(struct check *k, const char *problem, const struct err *e) {
  k->problem = problem;
  k->err = *e;
  check_finish(k);
}

/* What an authentication or authorization failure means to the operator. */
static const char *auth_problem(const struct kube_result *res) {
  if (res->anonymous)
    return "credentials ignored";
  return res->status == 403 ? "not authorized" : "credentials rejected";
}

static void on_check_discovered(void *ud, const struct kube_result *res) {
  struct check *k = ud;
  const struct kube_resource *r;
  struct err e = ERR_INIT;

  k->requests += res->attempts;
  if (res->r < 0) {
    check_fail(k, res->failure == KUBE_FAIL_AUTH ? auth_problem(res) : "discovery failed",
               &res->err);
    return;
  }
  k->creds = true;
  k->istio = kube_discovery_istio_version(k->c);
  k->istio_bits = kube_discovery_istio_versions(k->c);
  k->smm = kube_discovery_has_smm(k->c);
  if (!k->istio) {
    kube_discovery_find(k->c, "networking.istio.io", NULL, "VirtualService", &r, &e);
    check_fail(k, "Istio missing", &e);
    return;
  }
  if (!k->smm) {
    kube_discovery_find(k->c, "servicemesh.cisco.com", "v1alpha1", "IstioMeshGateway", &r, &e);
    check_fail(k, "Service Mesh Manager missing", &e);
    return;
  }
  k->usable = true;
  check_finish(k);
}

static void on_check_version(void *ud, const struct kube_result *res) {
  struct check *k = ud;
  struct err err = ERR_INIT;
  const char *v;

  k->requests += res->attempts;
  k->rtt_usec = res->rtt_usec;
  if (res->protocol)
    k->protocol = xstrdup(res->protocol);
  if (res->r < 0) {
    switch (res->failure) {
    case KUBE_FAIL_CONNECT:
      check_fail(k, "unreachable", &res->err);
      return;
    case KUBE_FAIL_TLS:
      k->reachable = true;
      check_fail(k, "TLS failed", &res->err);
      return;
    case KUBE_FAIL_AUTH:
      k->reachable = k->tls = true;
      check_fail(k, auth_problem(res), &res->err);
      return;
    default:
      k->reachable = res->status > 0;
      k->tls = res->status > 0;
      check_fail(k, "GET /version failed", &res->err);
      return;
    }
  }
  k->reachable = k->tls = true;
  v = doc_map_str(res->object, "gitVersion");
  k->version = xstrdup(v ? v : "?");
  if (kube_client_discover(k->c, on_check_discovered, k, NULL, &err) < 0)
    check_fail(k, "discovery failed", &err);
}

static void check_line(const struct check *k, struct buf *b) {
  const struct kube_config *cfg = k->c ? kube_client_config(k->c) : NULL;
  char rtt[32];

  buf_printf(b, "%s: %s", k->t->name, k->usable ? "usable" : "UNUSABLE");
  if (cfg)
    buf_printf(b, " (%s)", cfg->server);
  buf_puts(b, ":");
  if (!cfg) {
    buf_printf(b, " %s", k->err.msg);
    if (k->err.file[0]) {
      char text[ERR_MSG_MAX + ERR_PATH_MAX + 32];
      buf_reset(b);
      buf_printf(b, "%s: UNUSABLE: %s", k->t->name, err_format(&k->err, text, sizeof(text)));
    }
    return;
  }
  if (!k->reachable) {
    buf_printf(b, " unreachable: %s", k->err.msg);
    return;
  }
  if (str_has_prefix(cfg->server, "http://"))
    buf_puts(b, " reachable, plain http (no TLS)");
  else if (cfg->insecure_skip_tls_verify)
    buf_puts(b, k->tls ? " reachable, TLS not verified (insecure-skip-tls-verify)"
                       : " reachable, TLS failed");
  else
    buf_puts(b, k->tls ? " reachable, TLS verified" : " reachable, TLS failed");
  if (k->tls && !k->creds && k->problem &&
      (strcmp(k->problem, "credentials rejected") == 0 || strcmp(k->problem, "not authorized") == 0 ||
       strcmp(k->problem, "credentials ignored") == 0))
    buf_printf(b, ", %s (%s)", k->problem, kube_config_auth_name(cfg));
  else if (k->creds)
    buf_printf(b, ", credentials accepted (%s)", kube_config_auth_name(cfg));
  if (k->version)
    buf_printf(b, ", Kubernetes %s", k->version);
  if (k->protocol)
    buf_printf(b, " over %s", k->protocol);
  if (k->creds) {
    if (k->istio) {
      buf_printf(b, ", Istio %s (served:", k->istio);
      if (k->istio_bits & KUBE_ISTIO_V1)
        buf_puts(b, " v1");
      if (k->istio_bits & KUBE_ISTIO_V1BETA1)
        buf_puts(b, (k->istio_bits & KUBE_ISTIO_V1) ? ", v1beta1" : " v1beta1");
      if (k->istio_bits & KUBE_ISTIO_V1ALPHA3)
        buf_puts(b, (k->istio_bits & (KUBE_ISTIO_V1 | KUBE_ISTIO_V1BETA1)) ? ", v1alpha3"
                                                                           : " v1alpha3");
      buf_puts(b, ")");
    } else {
      buf_puts(b, ", no Istio");
    }
    buf_printf(b, ", Service Mesh Manager CRD %s", k->smm ? "present" : "missing");
  }
  if (k->rtt_usec) {
    str_format(rtt, sizeof(rtt), "%.1fms", (double)k->rtt_usec / 1000.0);
    buf_printf(b, ", rtt %s", rtt);
  }
  if (k->problem && k->reachable)
    buf_printf(b, ": %s", k->err.msg);
}

static struct doc_node *check_json(struct doc_arena *a, const struct check *k) {
  const struct kube_config *cfg = k->c ? kube_client_config(k->c) : NULL;
  struct doc_node *o = doc_new_map(a), *vs = doc_new_seq(a);
  char text[ERR_MSG_MAX + ERR_PATH_MAX + 32];

  doc_map_set(a, o, "name", doc_new_str(a, k->t->name));
  doc_map_set(a, o, "usable", doc_new_bool(a, k->usable));
  doc_map_set(a, o, "server", cfg ? doc_new_str(a, cfg->server) : doc_new_null(a));
  doc_map_set(a, o, "auth", cfg ? doc_new_str(a, kube_config_auth_name(cfg)) : doc_new_null(a));
  doc_map_set(a, o, "reachable", doc_new_bool(a, k->reachable));
  doc_map_set(a, o, "tls", doc_new_bool(a, k->tls && cfg && !str_has_prefix(cfg->server, "http://")));
  doc_map_set(a, o, "tlsVerified",
              doc_new_bool(a, k->tls && cfg && !cfg->insecure_skip_tls_verify &&
                                  !str_has_prefix(cfg->server, "http://")));
  doc_map_set(a, o, "credentialsAccepted", doc_new_bool(a, k->creds));
  doc_map_set(a, o, "kubernetesVersion", k->version ? doc_new_str(a, k->version) : doc_new_null(a));
  doc_map_set(a, o, "protocol", k->protocol ? doc_new_str(a, k->protocol) : doc_new_null(a));
  doc_map_set(a, o, "istioVersion", k->istio ? doc_new_str(a, k->istio) : doc_new_null(a));
  if (k->istio_bits & KUBE_ISTIO_V1)
    doc_seq_push(a, vs, doc_new_str(a, "v1"));
  if (k->istio_bits & KUBE_ISTIO_V1BETA1)
    doc_seq_push(a, vs, doc_new_str(a, "v1beta1"));
  if (k->istio_bits & KUBE_ISTIO_V1ALPHA3)
    doc_seq_push(a, vs, doc_new_str(a, "v1alpha3"));
  doc_map_set(a, o, "istioVersions", vs);
  doc_map_set(a, o, "smm", k->creds ? doc_new_bool(a, k->smm) : doc_new_null(a));
  doc_map_set(a, o, "rttMicroseconds", doc_new_int(a, (int64_t)k->rtt_usec));
  doc_map_set(a, o, "elapsedMicroseconds", doc_new_int(a, (int64_t)k->elapsed_usec));
  doc_map_set(a, o, "requests", doc_new_int(a, k->requests));
  doc_map_set(a, o, "problem", k->problem ? doc_new_str(a, k->problem) : doc_new_null(a));
  doc_map_set(a, o, "error",
              k->problem ? doc_new_str(a, err_format(&k->err, text, sizeof(text))) : doc_new_null(a));
  return o;
}

static void check_usage(FILE *f) {
  fprintf(f,
          "usage: egressd clusters check [options] [-o text|json]\n\n"
          "Check every cluster at once: reachable, TLS verified, credentials accepted, the\n"
          "Kubernetes version, the networking.istio.io versions served (egressd uses v1, else\n"
          "v1beta1, else v1alpha3), the Service Mesh Manager CRD (IstioMeshGateway), and the\n"
          "round-trip time of GET /version. One line per cluster.\n\n"
          "%s  -o, --output FORMAT     text (default) or json\n\n"
          "Exit status: 0 every cluster is usable, 1 some cluster is not, 2 usage or host\n"
          "config error.\n",
          common_help);
}

static int cmd_check(int argc, char **argv) {
  static const struct option opts[] = {COMMON_OPTIONS, {NULL, 0, NULL, 0}};
  struct common co = {.output = "text"};
  struct target *t = NULL;
  struct check *k = NULL;
  struct kube_loop *loop = NULL;
  struct kube_options kopts;
  struct err err = ERR_INIT;
  size_t n = 0;
  int c, r, rc = CLI_EXIT_OK;

  while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
    if (c == 'h') {
      check_usage(stdout);
      return CLI_EXIT_OK;
    }
    r = common_opt(&co, "clusters check", c);
    if (r < 0)
      return -r;
    if (r == 0)
      return cli_usage_error("clusters check", "unknown option");
  }
  if (optind < argc)
    return cli_usage_error("clusters check", "unexpected argument '%s'", argv[optind]);
  if (!str_eq(co.output, "text") && !str_eq(co.output, "json"))
    return cli_usage_error("clusters check", "-o must be text or json");
  r = load_targets(&co, "clusters check", &t, &n);
  if (r)
    return r;
  if (kube_loop_new(&loop, &err) < 0) {
    err_print(&err, stderr, "egressd: ");
    targets_free(t, n);
    return CLI_EXIT_USAGE;
  }
  kube_opts(&co, &kopts);
  k = xcalloc(n ? n : 1, sizeof(*k));
  for (size_t i = 0; i < n; i++) {
    struct err e = ERR_INIT;
    k[i].t = &t[i];
    k[i].a = doc_arena_new();
    k[i].started = time_now_mono_usec();
    if (kube_client_new(loop, t[i].name, t[i].kubeconfig, t[i].context, &kopts, &k[i].c, NULL,
                        &e) < 0) {
      k[i].c = NULL;
      check_fail(&k[i], "configuration", &e);
      continue;
    }
    if (kube_client_get_path(k[i].c, "/version", k[i].a, on_check_version, &k[i], NULL, &e) < 0)
      check_fail(&k[i], "GET /version failed", &e);
  }
  if (kube_loop_run_until_idle(loop, command_timeout(&co)) < 0)
    for (size_t i = 0; i < n; i++)
      if (!k[i].done) {
        struct err e = ERR_INIT;
        err_set(&e, -ETIMEDOUT, "cluster %s: no answer within the command's --timeout",
                t[i].name);
        check_fail(&k[i], "timeout", &e);
      }
  if (str_eq(co.output, "json")) {
    struct doc_arena *a = doc_arena_new();
    struct doc_node *root = doc_new_map(a), *list = doc_new_seq(a);
    for (size_t i = 0; i < n; i++)
      doc_seq_push(a, list, check_json(a, &k[i]));
    doc_map_set(a, root, "clusters", list);
    print_doc(root, "json", stdout);
    doc_arena_free(a);
  } else {
    for (size_t i = 0; i < n; i++) {
      struct buf line = BUF_INIT;
      check_line(&k[i], &line);
      printf("%s\n", buf_cstr(&line));
      buf_dispose(&line);
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (!k[i].usable)
      rc = CLI_EXIT_FAIL;
    kube_client_free(k[i].c);
    doc_arena_free(k[i].a);
    free(k[i].version);
    free(k[i].protocol);
  }
  free(k);
  kube_loop_free(loop);
  targets_free(t, n);
  return rc;
}

/* ------------------------------------------------------------ managed */

/* The managed kinds are the kinds render/ renders (render_kind_info). */

struct managed_cluster;

struct managed_list {
  struct managed_cluster *mc;
  const struct kube_resource *r;
  struct kube_result res;
  bool done;
};

struct managed_cluster {
  const struct target *t;
  struct kube_client *c;
  struct doc_arena *a;
  struct managed_list lists[_RENDER_KIND_MAX];
  size_t n_lists;
  struct err err;
  bool failed;
  const char *selector;
};

static void on_managed_list(void *ud, const struct kube_result *res) {
  struct managed_list *l = ud;
  l->res = *res;
  l->done = true;
}

static void on_managed_discovered(void *ud, const struct kube_result *res) {
  struct managed_cluster *mc = ud;

  if (res->r < 0) {
    mc->err = res->err;
    mc->failed = true;
    return;
  }
  for (int i = 0; i < _RENDER_KIND_MAX; i++) {
    const struct render_kind_info *ki = render_kind_info((enum render_kind)i);
    const struct kube_resource *r;
    struct managed_list *l;
    struct kube_ref ref;
    struct kube_list_options lo = {.label_selector = mc->selector};
    struct err e = ERR_INIT;

    if (kube_discovery_find(mc->c, ki->group, NULL, ki->kind, &r, NULL) < 0)
      continue; /* not served here: nothing of that kind can be managed */
    l = &mc->lists[mc->n_lists++];
    l->mc = mc;
    l->r = r;
    ref = kube_ref_of(r, NULL);
    if (kube_client_list(mc->c, &ref, &lo, mc->a, on_managed_list, l, NULL, &e) < 0) {
      l->res.r = e.code;
      l->res.err = e;
      l->done = true;
    }
  }
}

static void managed_usage(FILE *f) {
  fprintf(f,
          "usage: egressd clusters managed [options] [-l SELECTOR] [-o text|json]\n\n"
          "List the objects egressd manages on each cluster: one LIST per managed kind\n"
          "(IstioMeshGateway, Gateway, ServiceEntry, DestinationRule, VirtualService, Sidecar,\n"
          "AuthorizationPolicy, NetworkPolicy) in every namespace, with the label selector\n"
          MANAGED_SELECTOR ", as the daemon reads live state.\n\n"
          "%s  -l, --selector SEL      another label selector\n"
          "  -o, --output FORMAT     text (default; CLUSTER KIND NAMESPACE/NAME UID) or json\n\n"
          "Exit status: 0 listed, 1 some cluster failed, 2 usage or host config error.\n",
          common_help);
}

static int cmd_managed(int argc, char **argv) {
  static const struct option opts[] = {COMMON_OPTIONS, {"selector", required_argument, NULL, 'l'},
                                       {NULL, 0, NULL, 0}};
  struct common co = {.output = "text"};
  const char *selector = MANAGED_SELECTOR;
  struct target *t = NULL;
  struct managed_cluster *mc;
  struct kube_loop *loop = NULL;
  struct kube_options kopts;
  struct err err = ERR_INIT;
  struct doc_arena *out_a = doc_arena_new();
  struct doc_node *out = doc_new_seq(out_a);
  size_t n = 0;
  int c, r, rc = CLI_EXIT_OK;

  while ((c = getopt_long(argc, argv, "l:o:h", opts, NULL)) != -1) {
    if (c == 'h') {
      managed_usage(stdout);
      doc_arena_free(out_a);
      return CLI_EXIT_OK;
    }
    if (c == 'l') {
      selector = optarg;
      continue;
    }
    r = common_opt(&co, "clusters managed", c);
    if (r <= 0) {
      doc_arena_free(out_a);
      return r < 0 ? -r : cli_usage_error("clusters managed", "unknown option");
    }
  }
  if (optind < argc || (!str_eq(co.output, "text") && !str_eq(co.output, "json"))) {
    doc_arena_free(out_a);
    return cli_usage_error("clusters managed", optind < argc ? "unexpected argument"
                                                             : "-o must be text or json");
  }
  r = load_targets(&co, "clusters managed", &t, &n);
  if (r || kube_loop_new(&loop, &err) < 0) {
    if (!r)
      err_print(&err, stderr, "egressd: ");
    doc_arena_free(out_a);
    targets_free(t, n);
    return r ? r : CLI_EXIT_USAGE;
  }
  kube_opts(&co, &kopts);
  mc = xcalloc(n ? n : 1, sizeof(*mc));
  for (size_t i = 0; i < n; i++) {
    mc[i].t = &t[i];
    mc[i].a = doc_arena_new();
    mc[i].selector = selector;
    if (kube_client_new(loop, t[i].name, t[i].kubeconfig, t[i].context, &kopts, &mc[i].c, NULL,
                        &mc[i].err) < 0 ||
        kube_client_discover(mc[i].c, on_managed_discovered, &mc[i], NULL, &mc[i].err) < 0)
      mc[i].failed = true;
  }
  if (kube_loop_run_until_idle(loop, command_timeout(&co)) < 0) {
    fprintf(stderr, "egressd: clusters managed: no answer within --timeout\n");
    rc = CLI_EXIT_FAIL;
  }
  for (size_t i = 0; i < n; i++) {
    if (mc[i].failed) {
      err_print(&mc[i].err, stderr, "egressd: ");
      rc = CLI_EXIT_FAIL;
      continue;
    }
    for (size_t j = 0; j < mc[i].n_lists; j++) {
      struct managed_list *l = &mc[i].lists[j];
      if (!l->done || l->res.r < 0) {
        if (l->done)
          err_print(&l->res.err, stderr, "egressd: ");
        rc = CLI_EXIT_FAIL;
        continue;
      }
      for (size_t m = 0; m < doc_len(l->res.object); m++) {
        const struct doc_node *item = l->res.object->u.seq.items[m];
        const char *ns = doc_path_str(item, "metadata.namespace");
        struct doc_node *row = doc_new_map(out_a);
        doc_map_set(out_a, row, "cluster", doc_new_str(out_a, t[i].name));
        doc_map_set(out_a, row, "kind", doc_new_str(out_a, l->r->kind));
        doc_map_set(out_a, row, "group", doc_new_str(out_a, l->r->group));
        doc_map_set(out_a, row, "namespace", ns ? doc_new_str(out_a, ns) : doc_new_null(out_a));
        doc_map_set(out_a, row, "name",
                    doc_new_str(out_a, doc_path_str(item, "metadata.name") ?: ""));
        doc_map_set(out_a, row, "uid", doc_new_str(out_a, doc_path_str(item, "metadata.uid") ?: ""));
        doc_seq_push(out_a, out, row);
      }
    }
  }
  if (str_eq(co.output, "json")) {
    struct doc_node *root = doc_new_map(out_a);
    doc_map_set(out_a, root, "items", out);
    print_doc(root, "json", stdout);
  } else {
    for (size_t i = 0; i < doc_len(out); i++) {
      const struct doc_node *row = out->u.seq.items[i];
      const char *ns = doc_map_str(row, "namespace");
      printf("%s %s.%s %s%s%s %s\n", doc_map_str(row, "cluster"), doc_map_str(row, "kind"),
             doc_map_str(row, "group"), ns ? ns : "", ns ? "/" : "", doc_map_str(row, "name"),
             doc_map_str(row, "uid"));
    }
  }
  for (size_t i = 0; i < n; i++) {
    kube_client_free(mc[i].c);
    doc_arena_free(mc[i].a);
  }
  free(mc);
  kube_loop_free(loop);
  targets_free(t, n);
  doc_arena_free(out_a);
  return rc;
}

/* ------------------------------------------------------------ get */

static void get_usage(FILE *f) {
  fprintf(f,
          "usage: egressd clusters get [options] RESOURCE [NAME] [-n NS | -A] [-l SELECTOR]\n\n"
          "GET one object, or LIST a collection (paged, every page read), through egressd's\n"
          "own client. RESOURCE is a kind, a plural or a singular name, optionally with\n"
          ".GROUP (VirtualService, virtualservices.networking.istio.io).\n\n"
          "%s  -n, --namespace NS      namespace (default: the context's)\n"
          "  -A, --all-namespaces    LIST in every namespace\n"
          "  -l, --selector SEL      label selector\n"
          "  --field-selector SEL    field selector\n"
          "  --chunk-size N          LIST page size (default 500)\n"
          "  -o, --output FORMAT     json (default; a v1 List for a LIST), yaml or name\n\n"
          "Exit status: 0 found, 1 not found or failed, 2 usage error.\n",
          common_help);
}

static int cmd_get(int argc, char **argv) {
  static const struct option opts[] = {COMMON_OPTIONS,
                                       {"namespace", required_argument, NULL, 'n'},
                                       {"all-namespaces", no_argument, NULL, 'A'},
                                       {"selector", required_argument, NULL, 'l'},
                                       {"field-selector", required_argument, NULL, OPT_FIELD_SELECTOR},
                                       {"chunk-size", required_argument, NULL, OPT_CHUNK},
                                       {NULL, 0, NULL, 0}};
  struct common co = {.output = "json"};
  const char *ns = NULL, *what, *name;
  struct kube_list_options lo = {0};
  bool all = false;
  struct one o;
  const struct kube_resource *res_type;
  struct kube_result res;
  struct kube_ref ref;
  struct doc_arena *a;
  struct err err = ERR_INIT;
  int c, r, chunk;

  while ((c = getopt_long(argc, argv, "n:Al:o:h", opts, NULL)) != -1) {
    switch (c) {
    case 'h':
      get_usage(stdout);
      return CLI_EXIT_OK;
    case 'n':
      ns = optarg;
      break;
    case 'A':
      all = true;
      break;
    case 'l':
      lo.label_selector = optarg;
      break;
    case OPT_FIELD_SELECTOR:
      lo.field_selector = optarg;
      break;
    case OPT_CHUNK:
      if (str_to_int(optarg, 1, 100000, &chunk) < 0)
        return cli_usage_error("clusters get", "--chunk-size must be 1-100000");
      lo.page_size = (unsigned)chunk;
      break;
    default:
      r = common_opt(&co, "clusters get", c);
      if (r <= 0)
        return r < 0 ? -r : cli_usage_error("clusters get", "unknown option");
    }
  }
  if (optind >= argc || argc - optind > 2)
    return cli_usage_error("clusters get", "give RESOURCE and optionally NAME");
  if (!str_eq(co.output, "json") && !str_eq(co.output, "yaml") && !str_eq(co.output, "name"))
    return cli_usage_error("clusters get", "-o must be json, yaml or name");
  what = argv[optind];
  name = argc - optind == 2 ? argv[optind + 1] : NULL;
  if (all && name)
    return cli_usage_error("clusters get", "-A lists; it takes no NAME");
  r = one_open_resource(&co, "clusters get", &o, what, ns, all, &res_type, &ref);
  if (r)
    return r;
  a = doc_arena_new();
  r = name ? kube_client_get_sync(o.c, &ref, name, a, &res, &err)
           : kube_client_list_sync(o.c, &ref, &lo, a, &res, &err);
  if (r < 0) {
    err_print(&err, stderr, "egressd: ");
  } else if (str_eq(co.output, "name")) {
    for (size_t i = 0; name ? i < 1 : i < doc_len(res.object); i++) {
      const struct doc_node *obj = name ? res.object : res.object->u.seq.items[i];
      printf("%s%s%s/%s\n", res_type->plural, *res_type->group ? "." : "", res_type->group,
             doc_path_str(obj, "metadata.name") ?: "");
    }
  } else if (name) {
    print_doc(res.object, co.output, stdout);
  } else {
    struct doc_node *list = doc_new_map(a), *meta = doc_new_map(a);
    doc_map_set(a, list, "apiVersion", doc_new_str(a, "v1"));
    doc_map_set(a, list, "kind", doc_new_str(a, "List"));
    doc_map_set(a, meta, "resourceVersion",
                doc_new_str(a, res.resource_version ? res.resource_version : ""));
    doc_map_set(a, list, "metadata", meta);
    doc_map_set(a, list, "items", res.object);
    print_doc(list, co.output, stdout);
  }
  doc_arena_free(a);
  one_close(&o);
  return r < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/* ------------------------------------------------------------ watch */

struct watch_ctx {
  unsigned max_events, events;
  bool done, failed;
  struct err err;
};

static void on_watch_event(void *ud, const struct kube_watch_event *ev) {
  static const char *const names[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "RELISTED",
                                      "FAILED"};
  struct watch_ctx *w = ud;
  struct doc_arena *a;
  struct doc_node *line;
  struct buf b = BUF_INIT;

  if (ev->type == KUBE_WATCH_FAILED) {
    w->err = *ev->err;
    w->failed = w->done = true;
    return;
  }
  a = doc_arena_new();
  line = doc_new_map(a);
  doc_map_set(a, line, "type", doc_new_str(a, names[ev->type]));
  doc_map_set(a, line, "resourceVersion",
              ev->resource_version ? doc_new_str(a, ev->resource_version) : doc_new_null(a));
  if (ev->type == KUBE_WATCH_RELISTED)
    doc_map_set(a, line, "items", doc_copy(a, ev->object));
  else if (ev->type != KUBE_WATCH_BOOKMARK)
    doc_map_set(a, line, "object", doc_copy(a, ev->object));
  doc_emit_json(line, &b, 0);
  printf("%s\n", buf_cstr(&b));
  fflush(stdout);
  buf_dispose(&b);
  doc_arena_free(a);
  if (ev->type != KUBE_WATCH_BOOKMARK && w->max_events && ++w->events >= w->max_events)
    w->done = true;
}

static void watch_usage(FILE *f) {
  fprintf(f,
          "usage: egressd clusters watch [options] RESOURCE [-n NS | -A] [-l SELECTOR]\n\n"
          "Print the events of a collection as JSON lines ({\"type\", \"resourceVersion\",\n"
          "\"object\"}), as the daemon watches: without --resource-version it LISTs first\n"
          "(type RELISTED, with \"items\"); it reconnects from the last resourceVersion when\n"
          "the server ends the stream, and re-lists on 410 Gone.\n\n"
          "%s  -n, --namespace NS      namespace (default: the context's)\n"
          "  -A, --all-namespaces    every namespace\n"
          "  -l, --selector SEL      label selector\n"
          "  --field-selector SEL    field selector\n"
          "  --resource-version RV   start after RV instead of listing\n"
          "  --watch-timeout SEC     timeoutSeconds of each watch request (default 300)\n"
          "  --max-events N          stop after N events (bookmarks not counted)\n\n"
          "It stops after --timeout (default 10m). Exit status: 0 stopped as asked, 1 the\n"
          "watch failed, 2 usage error.\n",
          common_help);
}

static int cmd_watch(int argc, char **argv) {
  static const struct option opts[] = {COMMON_OPTIONS,
                                       {"namespace", required_argument, NULL, 'n'},
                                       {"all-namespaces", no_argument, NULL, 'A'},
                                       {"selector", required_argument, NULL, 'l'},
                                       {"field-selector", required_argument, NULL, OPT_FIELD_SELECTOR},
                                       {"resource-version", required_argument, NULL, OPT_RV},
                                       {"watch-timeout", required_argument, NULL, OPT_WATCH_TIMEOUT},
                                       {"max-events", required_argument, NULL, OPT_MAX_EVENTS},
                                       {NULL, 0, NULL, 0}};
  struct common co = {.output = "json"};
  struct kube_watch_options wo = {0};
  struct watch_ctx w = {0};
  const char *ns = NULL;
  bool all = false;
  struct one o;
  const struct kube_resource *rt;
  struct kube_ref ref;
  struct kube_watch *kw = NULL;
  struct err err = ERR_INIT;
  uint64_t deadline;
  int c, r, num;

  while ((c = getopt_long(argc, argv, "n:Al:o:h", opts, NULL)) != -1) {
    switch (c) {
    case 'h':
      watch_usage(stdout);
      return CLI_EXIT_OK;
    case 'n':
      ns = optarg;
      break;
    case 'A':
      all = true;
      break;
    case 'l':
      wo.label_selector = optarg;
      break;
    case OPT_FIELD_SELECTOR:
      wo.field_selector = optarg;
      break;
    case OPT_RV:
      wo.resource_version = optarg;
      break;
    case OPT_WATCH_TIMEOUT:
      if (str_to_int(optarg, 1, 86400, &num) < 0)
        return cli_usage_error("clusters watch", "--watch-timeout must be 1-86400 seconds");
      wo.timeout_sec = (unsigned)num;
      break;
    case OPT_MAX_EVENTS:
      if (str_to_int(optarg, 1, 100000000, &num) < 0)
        return cli_usage_error("clusters watch", "--max-events must be a positive number");
      w.max_events = (unsigned)num;
      break;
    default:
      r = common_opt(&co, "clusters watch", c);
      if (r <= 0)
        return r < 0 ? -r : cli_usage_error("clusters watch", "unknown option");
    }
  }
  if (argc - optind != 1)
    return cli_usage_error("clusters watch", "give one RESOURCE");
  r = one_open_resource(&co, "clusters watch", &o, argv[optind], ns, all, &rt, &ref);
  if (r)
    return r;
  if (kube_client_watch(o.c, &ref, &wo, on_watch_event, &w, &kw, &err) < 0) {
    err_print(&err, stderr, "egressd: ");
    one_close(&o);
    return CLI_EXIT_FAIL;
  }
  deadline = time_now_mono_usec() + command_timeout(&co);
  while (!w.done) {
    uint64_t now = time_now_mono_usec();
    if (now >= deadline)
      break;
    if (kube_loop_run_once(o.loop, deadline - now, NULL, 0) < 0)
      break;
  }
  if (w.failed)
    err_print(&w.err, stderr, "egressd: ");
  kube_watch_stop(kw);
  one_close(&o);
  return w.failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/* ------------------------------------------------------------ apply */

static void apply_usage(FILE *f) {
  fprintf(f,
          "usage: egressd clusters apply [options] -f FILE [--dry-run] [--force]\n\n"
          "Server-side apply every object of FILE (YAML or JSON, several documents allowed)\n"
          "with fieldValidation=Strict, as the daemon applies, but as field manager\n"
          "egressd-cli and without a ledger record. For repairs and experiments; the daemon\n"
          "keeps what the config repo says.\n\n"
          "%s  -f, --filename FILE     the objects ('-' for standard input)\n"
          "  -n, --namespace NS      namespace for objects without one (default: the context's)\n"
          "  --dry-run               dryRun=All: the server checks, nothing is stored\n"
          "  --force                 force=true: take over fields other managers own\n\n"
          "Exit status: 0 all applied, 1 some failed, 2 usage error.\n",
          common_help);
}

static int cmd_apply(int argc, char **argv) {
  static const struct option opts[] = {COMMON_OPTIONS,
                                       {"filename", required_argument, NULL, 'f'},
                                       {"namespace", required_argument, NULL, 'n'},
                                       {"dry-run", no_argument, NULL, OPT_DRY_RUN},
                                       {"force", no_argument, NULL, OPT_FORCE},
                                       {NULL, 0, NULL, 0}};
  struct common co = {.output = "text", .field_manager = "egressd-cli"};
  const char *file = NULL, *ns = NULL;
  unsigned flags = 0;
  struct one o;
  struct buf data = BUF_INIT;
  struct doc_arena *a;
  struct doc_node **docs;
  size_t n_docs;
  struct err err = ERR_INIT;
  int c, r, rc = CLI_EXIT_OK;

  while ((c = getopt_long(argc, argv, "f:n:o:h", opts, NULL)) != -1) {
    switch (c) {
    case 'h':
      apply_usage(stdout);
      return CLI_EXIT_OK;
    case 'f':
      file = optarg;
      break;
    case 'n':
      ns = optarg;
      break;
    case OPT_DRY_RUN:
      flags |= KUBE_APPLY_DRY_RUN;
      break;
    case OPT_FORCE:
      flags |= KUBE_APPLY_FORCE;
      break;
    default:
      r = common_opt(&co, "clusters apply", c);
      if (r <= 0)
        return r < 0 ? -r : cli_usage_error("clusters apply", "unknown option");
    }
  }
  if (!file || optind < argc)
    return cli_usage_error("clusters apply", "give -f FILE and no other argument");
  r = str_eq(file, "-") ? fd_read_all(0, "<stdin>", 64u << 20, &data, &err)
                        : file_read_all(file, 64u << 20, &data, &err);
  if (r < 0) {
    err_print(&err, stderr, "egressd: ");
    buf_dispose(&data);
    return CLI_EXIT_USAGE;
  }
  a = doc_arena_new();
  if (doc_parse(a, str_eq(file, "-") ? "<stdin>" : file, buf_cstr(&data), data.len, NULL, &docs,
                &n_docs, NULL, &err) < 0) {
    err_print(&err, stderr, "egressd: ");
    doc_arena_free(a);
    buf_dispose(&data);
    return CLI_EXIT_USAGE;
  }
  buf_dispose(&data);
  r = one_open(&co, "clusters apply", &o);
  if (r) {
    doc_arena_free(a);
    return r;
  }
  for (size_t i = 0; i < n_docs; i++) {
    const struct doc_node *obj = docs[i];
    const char *api = doc_map_str(obj, "apiVersion"), *kind = doc_map_str(obj, "kind");
    const char *slash = api ? strrchr(api, '/') : NULL;
    char group[256] = "";
    const struct kube_resource *rt;
    struct kube_result res;
    struct kube_ref ref;
    struct err e = ERR_INIT;

    if (doc_is(obj, DOC_NULL))
      continue;
    if (!api || !kind) {
      fprintf(stderr, "egressd: %s:%u: an object needs apiVersion and kind\n", file,
              obj->line);
      rc = CLI_EXIT_FAIL;
      continue;
    }
    if (slash)
      str_format(group, sizeof(group), "%.*s", (int)(slash - api), api);
    if (kube_discovery_find(o.c, group, slash ? slash + 1 : api, kind, &rt, &e) < 0) {
      err_print(&e, stderr, "egressd: ");
      rc = CLI_EXIT_FAIL;
      continue;
    }
    ref = kube_ref_of(rt, doc_path_str(obj, "metadata.namespace")
                              ?: (ns ? ns : kube_client_namespace(o.c)));
    ref.version = slash ? slash + 1 : api;
    if (kube_client_apply_sync(o.c, &ref, obj, flags, a, &res, &e) < 0) {
      err_print(&e, stderr, "egressd: ");
      rc = CLI_EXIT_FAIL;
      continue;
    }
    printf("%s%s%s/%s %s%s\n", rt->plural, *rt->group ? "." : "", rt->group,
           doc_path_str(obj, "metadata.name"), res.created ? "created" : "applied",
           flags & KUBE_APPLY_DRY_RUN ? " (dry run)" : "");
  }
  doc_arena_free(a);
  one_close(&o);
  return rc;
}

/* ------------------------------------------------------------ delete */

static void delete_usage(FILE *f) {
  fprintf(f,
          "usage: egressd clusters delete [options] RESOURCE NAME [-n NS] [--uid UID]\n\n"
          "DELETE one object with propagationPolicy Background (or --cascade), as the daemon\n"
          "prunes. With --uid, only if the object still has that UID.\n\n"
          "%s  -n, --namespace NS      namespace (default: the context's)\n"
          "  --uid UID               precondition: the object's metadata.uid\n"
          "  --cascade POLICY        background (default), foreground or orphan\n"
          "  --dry-run               dryRun=All\n\n"
          "Exit status: 0 deleted or already gone, 1 failed, 2 usage error.\n",
          common_help);
}

static int cmd_delete(int argc, char **argv) {
  static const struct option opts[] = {COMMON_OPTIONS,
                                       {"namespace", required_argument, NULL, 'n'},
                                       {"uid", required_argument, NULL, OPT_UID},
                                       {"cascade", required_argument, NULL, OPT_CASCADE},
                                       {"dry-run", no_argument, NULL, OPT_DRY_RUN},
                                       {NULL, 0, NULL, 0}};
  struct common co = {.output = "text"};
  struct kube_delete_options dopt = {0};
  const char *ns = NULL;
  struct one o;
  const struct kube_resource *rt;
  struct kube_result res;
  struct kube_ref ref;
  struct doc_arena *a;
  struct err err = ERR_INIT;
  int c, r;

  while ((c = getopt_long(argc, argv, "n:o:h", opts, NULL)) != -1) {
    switch (c) {
    case 'h':
      delete_usage(stdout);
      return CLI_EXIT_OK;
    case 'n':
      ns = optarg;
      break;
    case OPT_UID:
      dopt.uid = optarg;
      break;
    case OPT_DRY_RUN:
      dopt.dry_run = true;
      break;
    case OPT_CASCADE:
      if (str_eq(optarg, "background"))
        dopt.propagation = KUBE_PROPAGATION_BACKGROUND;
      else if (str_eq(optarg, "foreground"))
        dopt.propagation = KUBE_PROPAGATION_FOREGROUND;
      else if (str_eq(optarg, "orphan"))
        dopt.propagation = KUBE_PROPAGATION_ORPHAN;
      else
        return cli_usage_error("clusters delete", "--cascade is background, foreground or orphan");
      break;
    default:
      r = common_opt(&co, "clusters delete", c);
      if (r <= 0)
        return r < 0 ? -r : cli_usage_error("clusters delete", "unknown option");
    }
  }
  if (argc - optind != 2)
    return cli_usage_error("clusters delete", "give RESOURCE and NAME");
  r = one_open_resource(&co, "clusters delete", &o, argv[optind], ns, false, &rt, &ref);
  if (r)
    return r;
  a = doc_arena_new();
  r = kube_client_delete_sync(o.c, &ref, argv[optind + 1], &dopt, a, &res, &err);
  if (r < 0)
    err_print(&err, stderr, "egressd: ");
  else
    printf("%s%s%s/%s %s%s\n", rt->plural, *rt->group ? "." : "", rt->group, argv[optind + 1],
           res.gone ? "already gone" : res.finalizing ? "deletion pending (finalizers)" : "deleted",
           dopt.dry_run ? " (dry run)" : "");
  doc_arena_free(a);
  one_close(&o);
  return r < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/* ------------------------------------------------------------ the group */

static void usage(FILE *f) {
  fprintf(f, "usage: egressd clusters <command> [options]\n\n"
             "commands:\n"
             "  check     is every cluster usable (reachable, TLS, credentials, Istio, SMM)?\n"
             "  managed   the objects egressd manages on each cluster\n"
             "  get       GET or LIST a resource through egressd's client\n"
             "  watch     print a collection's events as JSON lines\n"
             "  apply     server-side apply a file as field manager egressd\n"
             "  delete    delete one object, optionally only if its UID matches\n\n"
             "See 'egressd clusters <command> --help' and egressd-clusters(1).\n");
}

int cmd_clusters(int argc, char **argv) {
  static const struct cli_command sub[] = {
      {"check", "", cmd_check}, {"managed", "", cmd_managed}, {"get", "", cmd_get},
      {"watch", "", cmd_watch}, {"apply", "", cmd_apply},     {"delete", "", cmd_delete},
  };

  return cli_group("clusters", sub, ARRAY_SIZE(sub), usage, argc, argv);
}
