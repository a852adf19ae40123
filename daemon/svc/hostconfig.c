/* The host config parser; see hostconfig.h for the contract. Structure is
 * checked by the schema tables below (doc_schema_check reports unknown
 * fields, wrong types, missing required fields), the rest by apply(), which
 * also fills struct hostconfig. Both report into one diag_list so a user
 * sees every problem at once. */
#include "svc/hostconfig.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/dns.h"
#include "base/fileio.h"
#include "base/mem.h"
#include "base/redact.h"
#include "base/str.h"
#include "base/timeutil.h"
#include "doc/doc-schema.h"
#include "doc/doc.h"
#include "svc/webhook.h"

#define HOSTCONFIG_MAX_BYTES (1u << 20)

static const struct doc_schema s_str = {DOC_SCHEMA_STR};
static const struct doc_schema s_path = {DOC_SCHEMA_STR, "a file path"};
static const struct doc_schema s_bool = {DOC_SCHEMA_BOOL};
static const struct doc_schema s_duration = {DOC_SCHEMA_DURATION, "a duration such as 30s"};
static const struct doc_schema s_count = {DOC_SCHEMA_INT, "a count (0-100000)", .min = 0,
                                          .max = 100000};
static const struct doc_schema s_bytes = {DOC_SCHEMA_INT, "a size in bytes", .min = 1024,
                                          .max = INT64_C(1) << 40};

static const char *const policies[] = {"none", "head", "all", NULL};
static const struct doc_schema s_policy = {DOC_SCHEMA_STR, .enum_values = policies};
static const char *const istio_versions[] = {"auto", "v1", "v1beta1", "v1alpha3", NULL};
static const struct doc_schema s_istio = {DOC_SCHEMA_STR, .enum_values = istio_versions};
static const char *const levels[] = {"debug", "info", "notice", "warning", "error", NULL};
static const struct doc_schema s_level = {DOC_SCHEMA_STR, .enum_values = levels};

/* repository.webhook: the push doorbell (svc/webhook.h) */
static const struct doc_schema_field webhook_fields[] = {
    {"listen", &s_str, false}, {"secretFile", &s_path, true}, {NULL}};
static const struct doc_schema s_webhook = {DOC_SCHEMA_OBJECT, .fields = webhook_fields};

static const struct doc_schema_field repository_fields[] = {
    {"url", &s_str, true},
    {"ref", &s_str, false},
    {"interval", &s_duration, false},
    {"timeout", &s_duration, false},
    {"sshKey", &s_path, false},
    {"knownHosts", &s_path, false},
    {"insecureSkipHostKeyCheck", &s_bool, false},
    {"tokenFile", &s_path, false},
    {"username", &s_str, false},
    {"passwordFile", &s_path, false},
    {"allowRewrite", &s_bool, false},
    {"maxFetchBytes", &s_bytes, false},
    {"webhook", &s_webhook, false},
    {NULL}};
static const struct doc_schema s_repository = {DOC_SCHEMA_OBJECT, .fields = repository_fields};

static const struct doc_schema_field verify_fields[] = {
    {"policy", &s_policy, false},
    {"allowedSigners", &s_path, false},
    {"revokedKeys", &s_path, false},
    {NULL}};
static const struct doc_schema s_verify = {DOC_SCHEMA_OBJECT, .fields = verify_fields};

static const struct doc_schema_field cluster_fields[] = {
    {"name", &s_str, true}, {"kubeconfig", &s_path, true}, {"context", &s_str, false}, {NULL}};
static const struct doc_schema s_cluster = {DOC_SCHEMA_OBJECT, .fields = cluster_fields};
static const struct doc_schema s_clusters = {DOC_SCHEMA_LIST, .items = &s_cluster,
                                             .min_items = 1};

static const struct doc_schema_field sync_fields[] = {
    {"driftInterval", &s_duration, false},
    {"watch", &s_bool, false},
    {"resyncInterval", &s_duration, false},
    {"pruneBudget", &s_count, false},
    {"healthTimeout", &s_duration, false},
    {"requestTimeout", &s_duration, false},
    {"unreachableTimeout", &s_duration, false},
    {"istioApiVersion", &s_istio, false},
    {NULL}};
static const struct doc_schema s_sync = {DOC_SCHEMA_OBJECT, .fields = sync_fields};

static const struct doc_schema_field state_fields[] = {
    {"dir", &s_path, false}, {"runtimeDir", &s_path, false}, {NULL}};
static const struct doc_schema s_state = {DOC_SCHEMA_OBJECT, .fields = state_fields};

static const struct doc_schema_field ledger_fields[] = {
    {"dir", &s_path, false}, {"key", &s_path, false}, {"origin", &s_str, false}, {NULL}};
static const struct doc_schema s_ledger = {DOC_SCHEMA_OBJECT, .fields = ledger_fields};

static const struct doc_schema_field metrics_fields[] = {{"textfile", &s_path, false}, {NULL}};
static const struct doc_schema s_metrics = {DOC_SCHEMA_OBJECT, .fields = metrics_fields};

static const struct doc_schema_field log_fields[] = {{"level", &s_level, false}, {NULL}};
static const struct doc_schema s_log = {DOC_SCHEMA_OBJECT, .fields = log_fields};

/* coordination: several hosts, one fleet (svc/coord.h) */
static const char *const coord_modes[] = {"sharded", "standby", NULL};
static const struct doc_schema s_coord_mode = {DOC_SCHEMA_STR, .enum_values = coord_modes};
static const struct doc_schema_field coordination_fields[] = {
    {"kubeconfig", &s_path, true},
    {"context", &s_str, false},
    {"namespace", &s_str, false},
    {"identity", &s_str, false},
    {"mode", &s_coord_mode, false},
    {"leaseDuration", &s_duration, false},
    {"renewDeadline", &s_duration, false},
    {"retryPeriod", &s_duration, false},
    {NULL}};
static const struct doc_schema s_coordination = {DOC_SCHEMA_OBJECT, .fields = coordination_fields};

static const struct doc_schema_field root_fields[] = {
    {"repository", &s_repository, true},
    {"verify", &s_verify, false},
    {"clusters", &s_clusters, true},
    {"sync", &s_sync, false},
    {"state", &s_state, false},
    {"ledger", &s_ledger, false},
    {"metrics", &s_metrics, false},
    {"log", &s_log, false},
    {"coordination", &s_coordination, false},
    {NULL}};
static const struct doc_schema s_root = {DOC_SCHEMA_OBJECT, "a mapping of settings",
                                         .fields = root_fields};

struct ctx {
  struct hostconfig *c;
  const char *dir;
  struct diag_list *d;
};

static char *opt_path(struct ctx *x, const struct doc_node *n, const char *key) {
  const char *v = doc_map_str(n, key);
  return v ? path_join(x->dir, v) : NULL;
}

static char *opt_str(const struct doc_node *n, const char *key) {
  const char *v = doc_map_str(n, key);
  return v ? xstrdup(v) : NULL;
}

static void opt_duration(const struct doc_node *n, const char *key, uint64_t *out) {
  const char *v = doc_map_str(n, key);
  uint64_t u;

  if (v && time_parse_duration(v, &u) == 0)
    *out = u;
}

static void opt_bool(const struct doc_node *n, const char *key, bool *out) {
  struct doc_node *v = doc_map_get(n, key);

  if (doc_is(v, DOC_BOOL))
    *out = v->u.b;
}

/* repository.webhook: the listen address must parse and the secret file
 * be readable now, so a typo is found at load (and at reload), not when
 * the first push arrives. Its content is checked and wiped at once; the
 * server reads it again when it starts. */
static void apply_webhook(struct ctx *x, const struct doc_node *w) {
  struct hostconfig *c = x->c;
  const struct doc_pair *p;

  if (!doc_is(w, DOC_MAP))
    return;
  c->repo.webhook.enabled = true;
  c->repo.webhook.listen = opt_str(w, "listen");
  c->repo.webhook.secret_file = opt_path(x, w, "secretFile");
  if (c->repo.webhook.listen && (p = doc_map_pair(w, "listen"))) {
    struct sockaddr_storage ss;
    socklen_t len;
    const char *why;
    char shown[200];
    if (webhook_listen_parse(c->repo.webhook.listen, &ss, &len, &why) < 0)
      diag_error(x->d, p->value->file, p->value->line, p->value->col,
                 "repository.webhook.listen '%s' %s",
                 str_escape(shown, sizeof(shown), c->repo.webhook.listen), why);
  }
  if (c->repo.webhook.secret_file && (p = doc_map_pair(w, "secretFile"))) {
    struct buf secret = BUF_INIT;
    struct err e = ERR_INIT;
    if (webhook_secret_load(c->repo.webhook.secret_file, &secret, &e) < 0)
      diag_error(x->d, p->value->file, p->value->line, p->value->col,
                 "repository.webhook.secretFile: %s", e.msg);
    buf_dispose_secret(&secret);
  }
}

static void apply_repository(struct ctx *x, const struct doc_node *r) {
  struct hostconfig *c = x->c;
  const struct doc_pair *p;
  struct doc_node *v;

  c->repo.url = opt_str(r, "url");
  free(c->repo.url_shown);
  c->repo.url_shown = url_redact(c->repo.url ? c->repo.url : "");
  free(c->repo.ref);
  c->repo.ref = opt_str(r, "ref");
  if (!c->repo.ref)
    c->repo.ref = xstrdup("refs/heads/main");
  opt_duration(r, "interval", &c->repo.interval_usec);
  opt_duration(r, "timeout", &c->repo.timeout_usec);
  c->repo.ssh_key = opt_path(x, r, "sshKey");
  c->repo.known_hosts = opt_path(x, r, "knownHosts");
  opt_bool(r, "insecureSkipHostKeyCheck", &c->repo.insecure_skip_host_key_check);
  c->repo.token_file = opt_path(x, r, "tokenFile");
  c->repo.username = opt_str(r, "username");
  c->repo.password_file = opt_path(x, r, "passwordFile");
  opt_bool(r, "allowRewrite", &c->repo.allow_rewrite);
  if (doc_is(v = doc_map_get(r, "maxFetchBytes"), DOC_INT))
    c->repo.max_fetch_bytes = (uint64_t)v->u.i;
  apply_webhook(x, doc_map_get(r, "webhook"));

  if ((p = doc_map_pair(r, "url")) && doc_is(p->value, DOC_STR)) {
    const char *u = p->value->u.str.s;
    if (!str_has_prefix(u, "file://") && !str_has_prefix(u, "git://") &&
        !str_has_prefix(u, "http://") && !str_has_prefix(u, "https://") &&
        !str_has_prefix(u, "ssh://") && !(strchr(u, '@') && strchr(u, ':')))
      diag_error(x->d, p->value->file, p->value->line, p->value->col,
                 "repository.url '%s' is not a Git URL; use file://, git://, https://, ssh:// "
                 "or user@host:path",
                 c->repo.url_shown);
    /* as the kube client refuses credentials without TLS; loopback too */
    if (str_has_prefix(u, "http://") && (c->repo.token_file || c->repo.password_file))
      diag_error(x->d, p->value->file, p->value->line, p->value->col,
                 "repository.url '%s' is plain http://: refusing to send %s in clear text; use "
                 "the server's https:// URL",
                 c->repo.url_shown,
                 c->repo.token_file ? "the token of repository.tokenFile"
                                    : "the password of repository.passwordFile");
  }
  if (c->repo.ref && !str_has_prefix(c->repo.ref, "refs/") && (p = doc_map_pair(r, "ref")))
    diag_error(x->d, p->value->file, p->value->line, p->value->col,
               "repository.ref '%s' must be a full ref name such as refs/heads/main",
               c->repo.ref);
  if (c->repo.token_file && c->repo.password_file && (p = doc_map_pair(r, "passwordFile")))
    diag_error(x->d, r->file, p->line, p->col,
               "repository: use either tokenFile or username/passwordFile, not both");
  if (c->repo.password_file && !c->repo.username && (p = doc_map_pair(r, "passwordFile")))
    diag_error(x->d, r->file, p->line, p->col,
               "repository.passwordFile needs repository.username");
  if ((p = doc_map_pair(r, "interval")) && c->repo.interval_usec < USEC_PER_SEC)
    diag_error(x->d, r->file, p->value->line, p->value->col,
               "repository.interval must be at least 1s");
  if ((p = doc_map_pair(r, "timeout")) && c->repo.timeout_usec < USEC_PER_SEC)
    diag_error(x->d, r->file, p->value->line, p->value->col,
               "repository.timeout must be at least 1s");
}

static void apply_verify(struct ctx *x, const struct doc_node *root) {
  struct hostconfig *c = x->c;
  const struct doc_node *v = doc_map_get(root, "verify");
  const char *pol = doc_map_str(v, "policy");

  if (str_eq(pol, "none"))
    c->verify.policy = HOSTCONFIG_VERIFY_NONE;
  else if (str_eq(pol, "head"))
    c->verify.policy = HOSTCONFIG_VERIFY_HEAD;
  c->verify.allowed_signers = opt_path(x, v, "allowedSigners");
  c->verify.revoked_keys = opt_path(x, v, "revokedKeys");
  if (c->verify.policy != HOSTCONFIG_VERIFY_NONE && !c->verify.allowed_signers) {
    const struct doc_node *at = v ? v : root;
    diag_error(x->d, at->file, at->line, at->col,
               "verify.allowedSigners is required unless verify.policy is none (commits are "
               "verified by default; see docs/signing.md)");
  }
}

static void apply_clusters(struct ctx *x, const struct doc_node *list) {
  struct hostconfig *c = x->c;

  if (!doc_is(list, DOC_SEQ))
    return;
  c->clusters = xcalloc(list->u.seq.n, sizeof(*c->clusters));
  for (size_t i = 0; i < list->u.seq.n; i++) {
    const struct doc_node *e = list->u.seq.items[i];
    const struct doc_pair *np = doc_map_pair(e, "name");
    const char *name = doc_map_str(e, "name"), *why;
    struct hostconfig_cluster *hc;

    if (!doc_is(e, DOC_MAP) || !name || !doc_map_str(e, "kubeconfig"))
      continue; /* the schema check reported it */
    if ((why = dns_label_check(name))) {
      diag_error(x->d, e->file, np->value->line, np->value->col,
                 "cluster name '%s' %s (cluster names are DNS-1123 labels)", name, why);
      continue;
    }
    if (hostconfig_cluster_find(c, name)) {
      const struct hostconfig_cluster *first = hostconfig_cluster_find(c, name);
      diag_error(x->d, e->file, np->value->line, np->value->col,
                 "cluster '%s' is listed twice (first at line %u)", name, first->line);
      continue;
    }
    hc = &c->clusters[c->n_clusters++];
    hc->name = xstrdup(name);
    hc->kubeconfig = opt_path(x, e, "kubeconfig");
    hc->context = opt_str(e, "context");
    hc->line = e->line;
    hc->col = e->col;
  }
}

/* coordination: names that become parts of Lease names must be DNS labels,
 * and the three durations must nest as client-go's leader election
 * requires (leaseDuration > renewDeadline > retryPeriod), or a member could
 * stop writing later than another starts. */
static void apply_coordination(struct ctx *x, const struct doc_node *n) {
  struct hostconfig *c = x->c;
  const struct doc_pair *p;
  const struct doc_node *at;
  const char *why;
  char host[256] = "";

  if (!doc_is(n, DOC_MAP))
    return;
  c->coord.enabled = true;
  c->coord.kubeconfig = opt_path(x, n, "kubeconfig");
  c->coord.context = opt_str(n, "context");
  c->coord.namespace = opt_str(n, "namespace");
  if (!c->coord.namespace)
    c->coord.namespace = xstrdup("egressd-system");
  c->coord.identity = opt_str(n, "identity");
  if (!c->coord.identity) {
    gethostname(host, sizeof(host) - 1);
    for (char *s = host; *s; s++)
      if (*s >= 'A' && *s <= 'Z')
        *s = (char)(*s - 'A' + 'a');
    if ((why = dns_label_check(host)))
      diag_error(x->d, n->file, n->line, n->col,
                 "coordination.identity is not set and the host name '%s' %s; set "
                 "coordination.identity to a DNS-1123 label unique in the fleet",
                 host, why);
    c->coord.identity = xstrdup(host);
  } else if ((why = dns_label_check(c->coord.identity)) && (p = doc_map_pair(n, "identity"))) {
    diag_error(x->d, p->value->file, p->value->line, p->value->col,
               "coordination.identity '%s' %s (it names a Lease: a DNS-1123 label)",
               c->coord.identity, why);
  }
  if ((p = doc_map_pair(n, "namespace")) && (why = dns_label_check(c->coord.namespace)))
    diag_error(x->d, p->value->file, p->value->line, p->value->col,
               "coordination.namespace '%s' %s", c->coord.namespace, why);
  c->coord.standby = str_eq(doc_map_str(n, "mode"), "standby");
  opt_duration(n, "leaseDuration", &c->coord.lease_duration_usec);
  opt_duration(n, "renewDeadline", &c->coord.renew_deadline_usec);
  opt_duration(n, "retryPeriod", &c->coord.retry_period_usec);
  if (c->coord.lease_duration_usec % USEC_PER_SEC && (p = doc_map_pair(n, "leaseDuration")))
    diag_error(x->d, p->value->file, p->value->line, p->value->col,
               "coordination.leaseDuration must be whole seconds (a Lease counts in seconds)");
  if (c->coord.retry_period_usec < 100 * USEC_PER_MSEC && (p = doc_map_pair(n, "retryPeriod")))
    diag_error(x->d, p->value->file, p->value->line, p->value->col,
               "coordination.retryPeriod must be at least 100ms");
  /* point at the duration written (the other may be the default) */
  at = (p = doc_map_pair(n, "renewDeadline")) || (p = doc_map_pair(n, "leaseDuration"))
           ? p->value
           : n;
  if (c->coord.renew_deadline_usec >= c->coord.lease_duration_usec)
    diag_error(x->d, at->file, at->line, at->col,
               "coordination.renewDeadline (%llums) must be shorter than leaseDuration (%llums): "
               "a member must stop writing before another may take its clusters",
               (unsigned long long)(c->coord.renew_deadline_usec / USEC_PER_MSEC),
               (unsigned long long)(c->coord.lease_duration_usec / USEC_PER_MSEC));
  else if (c->coord.retry_period_usec * 6 / 5 >= c->coord.renew_deadline_usec) {
    if ((p = doc_map_pair(n, "retryPeriod")))
      at = p->value;
    diag_error(x->d, at->file, at->line, at->col,
               "coordination.retryPeriod (%llums, plus 20%% jitter) must be shorter than "
               "renewDeadline (%llums): a renewal must have a chance before the deadline",
               (unsigned long long)(c->coord.retry_period_usec / USEC_PER_MSEC),
               (unsigned long long)(c->coord.renew_deadline_usec / USEC_PER_MSEC));
  }
}

static int level_of(const char *s) {
  if (str_eq(s, "debug"))
    return LOG_DEBUG;
  if (str_eq(s, "notice"))
    return LOG_NOTICE;
  if (str_eq(s, "warning"))
    return LOG_WARNING;
  if (str_eq(s, "error"))
    return LOG_ERR;
  return LOG_INFO;
}

static void apply(struct ctx *x, const struct doc_node *root) {
  struct hostconfig *c = x->c;
  const struct doc_node *n;
  char host[256] = "localhost";

  apply_repository(x, doc_map_get(root, "repository"));
  apply_verify(x, root);
  apply_clusters(x, doc_map_get(root, "clusters"));

  n = doc_map_get(root, "sync");
  opt_duration(n, "driftInterval", &c->sync.drift_interval_usec);
  opt_bool(n, "watch", &c->sync.watch);
  opt_duration(n, "resyncInterval", &c->sync.resync_interval_usec);
  opt_duration(n, "healthTimeout", &c->sync.health_timeout_usec);
  opt_duration(n, "requestTimeout", &c->sync.request_timeout_usec);
  opt_duration(n, "unreachableTimeout", &c->sync.unreachable_timeout_usec);
  {
    static const char *const positive[] = {"driftInterval", "resyncInterval", "healthTimeout",
                                           "requestTimeout", "unreachableTimeout"};
    for (size_t i = 0; i < sizeof(positive) / sizeof(positive[0]); i++) {
      const struct doc_pair *p = doc_map_pair(n, positive[i]);
      uint64_t u;
      if (p && doc_is(p->value, DOC_STR) && time_parse_duration(p->value->u.str.s, &u) == 0 &&
          u < USEC_PER_SEC)
        diag_error(x->d, p->value->file, p->value->line, p->value->col,
                   "sync.%s must be at least 1s", positive[i]);
    }
  }
  if (doc_is(doc_map_get(n, "pruneBudget"), DOC_INT))
    c->sync.prune_budget = (unsigned)doc_map_get(n, "pruneBudget")->u.i;
  if (doc_map_str(n, "istioApiVersion") && !str_eq(doc_map_str(n, "istioApiVersion"), "auto"))
    c->istio_api_version = xstrdup(doc_map_str(n, "istioApiVersion"));

  n = doc_map_get(root, "state");
  if (doc_map_str(n, "dir")) {
    free(c->state_dir);
    c->state_dir = opt_path(x, n, "dir");
  }
  if (doc_map_str(n, "runtimeDir")) {
    free(c->runtime_dir);
    c->runtime_dir = opt_path(x, n, "runtimeDir");
  }
  apply_coordination(x, doc_map_get(root, "coordination"));
  n = doc_map_get(root, "ledger");
  c->ledger_dir = doc_map_str(n, "dir") ? opt_path(x, n, "dir")
                                        : path_join(c->state_dir, "ledger");
  c->ledger_key = doc_map_str(n, "key") ? opt_path(x, n, "key")
                                        : path_join(x->dir, "ledger_ed25519");
  if (doc_map_str(n, "origin")) {
    c->ledger_origin = opt_str(n, "origin");
  } else if (c->coord.enabled) {
    /* each member keeps its own ledger, named after the member */
    c->ledger_origin = xasprintf("egressd/%s", c->coord.identity);
  } else {
    gethostname(host, sizeof(host) - 1);
    c->ledger_origin = xasprintf("egressd/%s", host);
  }
  c->metrics_textfile = opt_path(x, doc_map_get(root, "metrics"), "textfile");
  c->log_level = level_of(doc_path_str(root, "log.level"));
}

static struct hostconfig *defaults(const char *path) {
  struct hostconfig *c = xcalloc(1, sizeof(*c));

  c->path = xstrdup(path);
  c->repo.ref = xstrdup("refs/heads/main");
  c->repo.interval_usec = 15 * USEC_PER_SEC;
  c->repo.timeout_usec = 60 * USEC_PER_SEC;
  c->repo.max_fetch_bytes = 256u << 20;
  c->verify.policy = HOSTCONFIG_VERIFY_ALL;
  c->sync.drift_interval_usec = 30 * USEC_PER_SEC;
  c->sync.watch = true;
  c->sync.resync_interval_usec = 600 * USEC_PER_SEC;
  c->sync.prune_budget = 10;
  c->sync.health_timeout_usec = 300 * USEC_PER_SEC;
  c->sync.request_timeout_usec = 30 * USEC_PER_SEC;
  c->sync.unreachable_timeout_usec = 600 * USEC_PER_SEC;
  c->state_dir = xstrdup("/var/lib/egressd");
  c->runtime_dir = xstrdup("/run/egressd");
  c->log_level = LOG_INFO;
  c->coord.lease_duration_usec = 15 * USEC_PER_SEC;
  c->coord.renew_deadline_usec = 10 * USEC_PER_SEC;
  c->coord.retry_period_usec = 2 * USEC_PER_SEC;
  return c;
}

int hostconfig_parse(const char *path, const char *data, size_t len, struct hostconfig **ret,
                     struct diag_list *diags, struct err *err) {
  struct doc_arena *a = doc_arena_new();
  struct doc_limits lim = doc_limits_default;
  struct doc_node **docs;
  size_t n, before = diags->errors;
  struct hostconfig *c = NULL;
  struct ctx x;
  char *dir = NULL;
  int r;

  lim.max_bytes = HOSTCONFIG_MAX_BYTES;
  lim.max_docs = 2;
  r = doc_parse(a, path, data, len, &lim, &docs, &n, diags, err);
  if (r < 0) {
    /* a syntax error is a problem of the file: report it like the others */
    diag_error(diags, err->file[0] ? err->file : path, err->line, err->col, "%s", err->msg);
    err_clear(err);
    r = -EINVAL;
    goto out;
  }
  if (n != 1 || !doc_is(docs[0], DOC_MAP)) {
    diag_error(diags, path, n ? docs[0]->line : 1, n ? docs[0]->col : 1,
               "the host config must be one YAML mapping (see egressd.yaml(5))");
    r = -EINVAL;
    goto out;
  }
  doc_schema_check(docs[0], &s_root, "", diags);
  /* relative paths in the file are relative to the file's directory, made
   * absolute so they mean the same after the daemon changes directory */
  {
    char *d = path_dirname(path), *abs = realpath(d, NULL);
    dir = abs ? abs : d;
    if (abs)
      free(d);
  }
  c = defaults(path);
  x = (struct ctx){c, dir, diags};
  apply(&x, docs[0]);
  if (diags->errors > before) {
    r = -EINVAL;
    goto out;
  }
  *ret = c;
  c = NULL;
  r = 0;
out:
  hostconfig_free(c);
  free(dir);
  doc_arena_free(a);
  return r;
}

int hostconfig_load(const char *path, struct hostconfig **ret, struct diag_list *diags,
                    struct err *err) {
  struct buf b = BUF_INIT;
  int r;

  r = file_read_all(path, HOSTCONFIG_MAX_BYTES, &b, err);
  if (r < 0) {
    err_prefix(err, "cannot read the host config");
    buf_dispose(&b);
    return r;
  }
  r = hostconfig_parse(path, buf_cstr(&b), b.len, ret, diags, err);
  buf_dispose(&b);
  return r;
}

const struct hostconfig_cluster *hostconfig_cluster_find(const struct hostconfig *c,
                                                         const char *name) {
  for (size_t i = 0; i < c->n_clusters; i++)
    if (strcmp(c->clusters[i].name, name) == 0)
      return &c->clusters[i];
  return NULL;
}

const char *hostconfig_verify_name(enum hostconfig_verify v) {
  switch (v) {
  case HOSTCONFIG_VERIFY_NONE:
    return "none";
  case HOSTCONFIG_VERIFY_HEAD:
    return "head";
  case HOSTCONFIG_VERIFY_ALL:
    return "all";
  }
  return "?";
}

void hostconfig_free(struct hostconfig *c) {
  if (!c)
    return;
  for (size_t i = 0; i < c->n_clusters; i++) {
    free(c->clusters[i].name);
    free(c->clusters[i].kubeconfig);
    free(c->clusters[i].context);
  }
  free(c->clusters);
  free(c->path);
  free(c->repo.url);
  free(c->repo.url_shown);
  free(c->repo.ref);
  free(c->repo.ssh_key);
  free(c->repo.known_hosts);
  free(c->repo.token_file);
  free(c->repo.username);
  free(c->repo.password_file);
  free(c->repo.webhook.listen);
  free(c->repo.webhook.secret_file);
  free(c->verify.allowed_signers);
  free(c->verify.revoked_keys);
  free(c->istio_api_version);
  free(c->state_dir);
  free(c->runtime_dir);
  free(c->ledger_dir);
  free(c->ledger_key);
  free(c->ledger_origin);
  free(c->metrics_textfile);
  free(c->coord.kubeconfig);
  free(c->coord.context);
  free(c->coord.namespace);
  free(c->coord.identity);
  free(c);
}
