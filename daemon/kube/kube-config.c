/* kubeconfig parsing and validation, as client-go's clientcmd reads it.
 *
 * One file per cluster, so there is no merging: the file is parsed, the
 * context is selected (explicit, else current-context), and that context,
 * its cluster and its user are checked with client-go's rules (validation.go
 * ConfirmUsable): both the file and the -data form set, a client certificate
 * without its key, token and basic auth together, a CA with
 * insecure-skip-tls-verify, exec plugins without command, apiVersion or (for
 * v1) interactiveMode. Other entries of the file are only type-checked the
 * way client-go's decoder does (a list of named entries, unique names).
 * Relative paths (certificate-authority, client-certificate, client-key,
 * tokenFile, and exec.command when it contains a '/') are resolved against
 * the folder of the kubeconfig.
 *
 * Every problem goes to the diag_list with file:line:col and the field named;
 * the first one also to the struct err. Unknown fields are warnings (client-
 * go ignores them; a typo such as "tokenfile" deserves a hint).
 *
 * When you add a field, also touch: struct kube_config in kube.h,
 * kube_config_free(), docs/clusters.md and tests/unit/test-kube.c.
 */
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <string.h>

#include "base/dns.h"
#include "base/fileio.h"
#include "base/mem.h"
#include "base/str.h"
#include "doc/doc-schema.h"
#include "kube/kube-int.h"

#define EXEC_V1 "client.authentication.k8s.io/v1"
#define EXEC_V1BETA1 "client.authentication.k8s.io/v1beta1"
#define EXEC_EXTENSION "client.authentication.k8s.io/exec"

struct parse {
  const char *path;
  char *dir;
  struct diag_list *diags;
  struct err *err;
  unsigned errors;
  struct kube_config *cfg;
};

static void problem(struct parse *p, const struct doc_node *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(struct parse *p, const struct doc_node *at, const char *fmt, ...) {
  char msg[ERR_MSG_MAX];
  va_list ap;
  unsigned line = at ? at->line : 0, col = at ? at->col : 0;

  va_start(ap, fmt);
  str_vformat(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  p->errors++;
  if (p->diags)
    diag_error(p->diags, p->path, line, col, "%s", msg);
  if (!err_isset(p->err)) {
    err_set_src(p->err, -EINVAL, ERR_SRC_INPUT, "%s", msg);
    err_set_pos(p->err, p->path, line, col);
  }
}

static void warning(struct parse *p, unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void warning(struct parse *p, unsigned line, unsigned col, const char *fmt, ...) {
  char msg[ERR_MSG_MAX];
  va_list ap;

  if (!p->diags)
    return;
  va_start(ap, fmt);
  str_vformat(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  diag_warning(p->diags, p->path, line, col, "%s", msg);
}

/* Warn about keys of @map that are not in @known, suggesting the closest. */
static void check_known(struct parse *p, const struct doc_node *map, const char *const *known,
                        const char *where) {
  if (!doc_is(map, DOC_MAP))
    return;
  for (size_t i = 0; i < map->u.map.n; i++) {
    const struct doc_pair *pr = &map->u.map.items[i];
    const char *best = NULL;
    unsigned best_d = 4;
    bool found = false;

    for (const char *const *k = known; *k; k++) {
      unsigned d;
      if (strcmp(*k, pr->key) == 0) {
        found = true;
        break;
      }
      d = doc_schema_distance(pr->key, *k, 4);
      if (d < best_d) {
        best_d = d;
        best = *k;
      }
    }
    if (found)
      continue;
    if (best)
      warning(p, pr->line, pr->col, "%s: unknown field '%s' (ignored); did you mean '%s'?", where,
              pr->key, best);
    else
      warning(p, pr->line, pr->col, "%s: unknown field '%s' (ignored)", where, pr->key);
  }
}

/* A string field: NULL when absent; a problem when present but not a string. */
static const char *str_field(struct parse *p, const struct doc_node *map, const char *key,
                             const char *where) {
  const struct doc_pair *pr = doc_map_pair(map, key);

  if (!pr || doc_is(pr->value, DOC_NULL))
    return NULL;
  if (!doc_is(pr->value, DOC_STR)) {
    problem(p, pr->value, "%s: %s must be a string, not %s", where, key,
            doc_type_name(pr->value->type));
    return NULL;
  }
  return pr->value->u.str.s;
}

/* Like str_field, but "" counts as absent (Go's zero value). */
static const char *nonempty_field(struct parse *p, const struct doc_node *map, const char *key,
                                  const char *where) {
  const char *s = str_field(p, map, key, where);
  return str_is_empty(s) ? NULL : s;
}

static bool bool_field(struct parse *p, const struct doc_node *map, const char *key,
                       const char *where) {
  const struct doc_pair *pr = doc_map_pair(map, key);

  if (!pr || doc_is(pr->value, DOC_NULL))
    return false;
  if (!doc_is(pr->value, DOC_BOOL)) {
    problem(p, pr->value, "%s: %s must be true or false, not %s", where, key,
            doc_type_name(pr->value->type));
    return false;
  }
  return pr->value->u.b;
}

static const struct doc_node *pos_of(const struct doc_node *map, const char *key) {
  const struct doc_node *v = doc_map_get(map, key);
  return v ? v : map;
}

/* A -data field: base64 (Go's []byte in JSON/YAML; newlines are ignored). */
static void data_field(struct parse *p, const struct doc_node *map, const char *key,
                       const char *where, struct buf *out) {
  const char *s = nonempty_field(p, map, key, where);
  size_t max, bin_len = 0;
  const char *end = NULL;

  if (!s)
    return;
  max = strlen(s) / 4 * 3 + 3;
  buf_reserve(out, max + 1);
  if (sodium_base642bin((unsigned char *)out->data, max, s, strlen(s), "\r\n", &bin_len, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      (end && *end)) {
    problem(p, doc_map_get(map, key), "%s: %s is not valid base64 (it holds the PEM text, base64-encoded)",
            where, key);
    buf_dispose_secret(out);
    return;
  }
  out->len = bin_len;
  out->data[bin_len] = '\0';
  if (bin_len == 0)
    buf_dispose(out);
}

static char *path_field(struct parse *p, const struct doc_node *map, const char *key,
                        const char *where) {
  const char *s = nonempty_field(p, map, key, where);
  return s ? path_join(p->dir, s) : NULL;
}

/* The entry called @name in the named list @key ("clusters") of @root, with
 * the inner map @inner ("cluster"). Type problems of the list were reported
 * by check_named_list. */
static const struct doc_node *find_named(const struct doc_node *root, const char *key,
                                         const char *inner, const char *name,
                                         const struct doc_node **ret_entry) {
  const struct doc_node *list = doc_map_get(root, key);

  if (!doc_is(list, DOC_SEQ))
    return NULL;
  for (size_t i = 0; i < list->u.seq.n; i++) {
    const struct doc_node *e = list->u.seq.items[i];
    if (str_eq(doc_map_str(e, "name"), name)) {
      if (ret_entry)
        *ret_entry = e;
      return doc_map_get(e, inner);
    }
  }
  return NULL;
}

/* client-go decodes the whole file: a named list must be a list of maps with
 * a string name, unique, and an inner map. */
static void check_named_list(struct parse *p, const struct doc_node *root, const char *key,
                             const char *inner) {
  const struct doc_pair *pr = doc_map_pair(root, key);
  const struct doc_node *list;
  struct strmap seen = {0};
  const char *const entry_known[] = {"name", inner, NULL};

  if (!pr || doc_is(pr->value, DOC_NULL))
    return;
  list = pr->value;
  if (!doc_is(list, DOC_SEQ)) {
    problem(p, list, "%s must be a list of {name, %s} entries, not %s", key, inner,
            doc_type_name(list->type));
    return;
  }
  for (size_t i = 0; i < list->u.seq.n; i++) {
    struct doc_node *e = list->u.seq.items[i];
    const struct doc_node *in, *prev;
    const char *name;

    if (!doc_is(e, DOC_MAP)) {
      problem(p, e, "%s[%zu] must be a mapping with name and %s, not %s", key, i, inner,
              doc_type_name(e->type));
      continue;
    }
    name = doc_map_str(e, "name");
    if (!name) {
      problem(p, e, "%s[%zu] has no name", key, i);
      continue;
    }
    prev = strmap_get(&seen, name);
    if (prev) {
      problem(p, doc_map_get(e, "name"), "%s: duplicate name '%s' (first defined at line %u)", key,
              name, prev->line);
      continue;
    }
    strmap_put(&seen, name, e);
    in = doc_map_get(e, inner);
    if (in && !doc_is(in, DOC_MAP) && !doc_is(in, DOC_NULL))
      problem(p, in, "%s '%s': %s must be a mapping, not %s", key, name, inner,
              doc_type_name(in->type));
    check_known(p, e, entry_known, key);
  }
  strmap_dispose(&seen);
}

static void parse_cluster(struct parse *p, const struct doc_node *cl, const char *name) {
  static const char *const known[] = {
      "server", "certificate-authority", "certificate-authority-data", "insecure-skip-tls-verify",
      "tls-server-name", "proxy-url", "disable-compression", "extensions", NULL};
  struct kube_config *c = p->cfg;
  char where[300];
  const char *server, *proxy;
  const struct doc_node *ext;

  str_format(where, sizeof(where), "cluster '%s'", name);
  check_known(p, cl, known, where);
  server = nonempty_field(p, cl, "server", where);
  if (!server) {
    const struct doc_node *sv = doc_map_get(cl, "server");
    if (!sv || doc_is(sv, DOC_NULL))
      problem(p, cl, "%s has no server; set server: https://<host>:<port>", where);
    else if (doc_is(sv, DOC_STR))
      problem(p, sv, "%s has an empty server; set server: https://<host>:<port>", where);
  } else {
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL, *query = NULL, *frag = NULL;

    if (curl_url_set(u, CURLUPART_URL, server, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
      problem(p, doc_map_get(cl, "server"),
              "%s: server '%s' is not a URL such as https://api.example.com:6443", where, server);
    } else if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0) {
      problem(p, doc_map_get(cl, "server"), "%s: server '%s' must be an https:// URL", where,
              server);
    } else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
      problem(p, doc_map_get(cl, "server"),
              "%s: server must not carry credentials; put them in the user entry", where);
    } else if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK ||
               curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_OK) {
      problem(p, doc_map_get(cl, "server"),
              "%s: server '%s' must not have a query or fragment", where, server);
    } else {
      c->server = xstrdup(server);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(query);
    curl_free(frag);
    curl_url_cleanup(u);
  }

  c->ca_file = path_field(p, cl, "certificate-authority", where);
  data_field(p, cl, "certificate-authority-data", where, &c->ca_data);
  if (c->ca_file && c->ca_data.len)
    problem(p, pos_of(cl, "certificate-authority-data"),
            "%s: certificate-authority and certificate-authority-data are both set; keep one "
            "(client-go refuses this too)",
            where);
  c->insecure_skip_tls_verify = bool_field(p, cl, "insecure-skip-tls-verify", where);
  if (c->insecure_skip_tls_verify && (c->ca_file || c->ca_data.len))
    problem(p, pos_of(cl, "insecure-skip-tls-verify"),
            "%s: insecure-skip-tls-verify with a certificate authority is not allowed; remove "
            "one of them",
            where);
  if (nonempty_field(p, cl, "tls-server-name", where)) {
    const char *tsn = doc_map_str(cl, "tls-server-name");
    if (strspn(tsn, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
            strlen(tsn) ||
        strlen(tsn) > 253)
      problem(p, doc_map_get(cl, "tls-server-name"),
              "%s: tls-server-name '%s' is not a host name (letters, digits, '.', '-')", where, tsn);
    else
      c->tls_server_name = xstrdup(tsn);
  }
  proxy = nonempty_field(p, cl, "proxy-url", where);
  if (proxy) {
    if (!str_has_prefix(proxy, "http://") && !str_has_prefix(proxy, "https://") &&
        !str_has_prefix(proxy, "socks5://"))
      problem(p, doc_map_get(cl, "proxy-url"),
              "%s: proxy-url must be an http://, https:// or socks5:// URL", where);
    else
      c->proxy_url = xstrdup(proxy);
  }
  c->disable_compression = bool_field(p, cl, "disable-compression", where);

  ext = doc_map_get(cl, "extensions");
  if (ext && !doc_is(ext, DOC_NULL)) {
    if (!doc_is(ext, DOC_SEQ)) {
      problem(p, ext, "%s: extensions must be a list of {name, extension}", where);
    } else {
      for (size_t i = 0; i < ext->u.seq.n; i++) {
        const struct doc_node *e = ext->u.seq.items[i];
        if (!doc_is(e, DOC_MAP) || !doc_map_str(e, "name")) {
          problem(p, e, "%s: extensions[%zu] must be a mapping with a name", where, i);
          continue;
        }
        if (str_eq(doc_map_str(e, "name"), EXEC_EXTENSION) && doc_map_get(e, "extension")) {
          struct buf j = BUF_INIT;
          doc_emit_json(doc_map_get(e, "extension"), &j, 0);
          free(c->exec_cluster_config);
          c->exec_cluster_config = buf_detach(&j, NULL);
        }
      }
    }
  }
}

static void parse_exec(struct parse *p, const struct doc_node *ex, const char *where_user) {
  static const char *const known[] = {"apiVersion", "command", "args", "env", "installHint",
                                      "provideClusterInfo", "interactiveMode", NULL};
  struct kube_exec_config *x = xcalloc(1, sizeof(*x));
  char where[300];
  const char *v, *mode;
  const struct doc_node *args, *env;

  p->cfg->exec = x;
  str_format(where, sizeof(where), "%s: exec", where_user);
  if (!doc_is(ex, DOC_MAP)) {
    problem(p, ex, "%s must be a mapping", where);
    return;
  }
  check_known(p, ex, known, where);
  v = nonempty_field(p, ex, "apiVersion", where);
  if (!v)
    problem(p, ex, "%s: apiVersion must be specified (%s or %s)", where, EXEC_V1, EXEC_V1BETA1);
  else if (strcmp(v, EXEC_V1) != 0 && strcmp(v, EXEC_V1BETA1) != 0)
    problem(p, doc_map_get(ex, "apiVersion"), "%s: apiVersion '%s' is not supported; use %s or %s",
            where, v, EXEC_V1, EXEC_V1BETA1);
  else
    x->api_version = xstrdup(v);

  v = nonempty_field(p, ex, "command", where);
  if (!v)
    problem(p, ex, "%s: command must be specified", where);
  else
    x->command = strchr(v, '/') ? path_join(p->dir, v) : xstrdup(v);

  args = doc_map_get(ex, "args");
  if (args && !doc_is(args, DOC_NULL)) {
    if (!doc_is(args, DOC_SEQ)) {
      problem(p, args, "%s: args must be a list of strings", where);
    } else {
      x->args = xcalloc(args->u.seq.n + 1, sizeof(*x->args));
      for (size_t i = 0; i < args->u.seq.n; i++) {
        const struct doc_node *a = args->u.seq.items[i];
        if (!doc_is(a, DOC_STR)) {
          problem(p, a, "%s: args[%zu] must be a string, not %s", where, i, doc_type_name(a->type));
          continue;
        }
        x->args[x->n_args++] = xstrdup(a->u.str.s);
      }
    }
  }
  env = doc_map_get(ex, "env");
  if (env && !doc_is(env, DOC_NULL)) {
    if (!doc_is(env, DOC_SEQ)) {
      problem(p, env, "%s: env must be a list of {name, value}", where);
    } else {
      x->env = xcalloc(env->u.seq.n + 1, sizeof(*x->env));
      for (size_t i = 0; i < env->u.seq.n; i++) {
        const struct doc_node *e = env->u.seq.items[i];
        const char *name = doc_map_str(e, "name"), *value = doc_map_str(e, "value");
        if (!doc_is(e, DOC_MAP)) {
          problem(p, e, "%s: env[%zu] must be a mapping with name and value", where, i);
          continue;
        }
        if (str_is_empty(name)) {
          problem(p, e, "%s: env[%zu]: env variable name must be specified", where, i);
          continue;
        }
        if (strchr(name, '=')) {
          problem(p, doc_map_get(e, "name"), "%s: env[%zu]: name '%s' must not contain '='", where,
                  i, name);
          continue;
        }
        if (doc_map_get(e, "value") && !value && !doc_is(doc_map_get(e, "value"), DOC_NULL)) {
          problem(p, doc_map_get(e, "value"), "%s: env[%zu]: value must be a string", where, i);
          continue;
        }
        x->env[x->n_env].name = xstrdup(name);
        x->env[x->n_env].value = xstrdup(value ? value : "");
        x->n_env++;
      }
    }
  }
  v = nonempty_field(p, ex, "installHint", where);
  x->install_hint = v ? xstrdup(v) : NULL;
  x->provide_cluster_info = bool_field(p, ex, "provideClusterInfo", where);
  mode = nonempty_field(p, ex, "interactiveMode", where);
  if (!mode) {
    if (str_eq(x->api_version, EXEC_V1))
      problem(p, ex, "%s: interactiveMode must be specified for %s (use Never)", where, EXEC_V1);
    x->interactive = KUBE_INTERACTIVE_IF_AVAILABLE;
  } else if (strcmp(mode, "Never") == 0) {
    x->interactive = KUBE_INTERACTIVE_NEVER;
  } else if (strcmp(mode, "IfAvailable") == 0) {
    x->interactive = KUBE_INTERACTIVE_IF_AVAILABLE;
  } else if (strcmp(mode, "Always") == 0) {
    x->interactive = KUBE_INTERACTIVE_ALWAYS;
    problem(p, doc_map_get(ex, "interactiveMode"),
            "%s: interactiveMode Always needs a terminal, and egressd runs without one; use "
            "Never or IfAvailable",
            where);
  } else {
    problem(p, doc_map_get(ex, "interactiveMode"),
            "%s: invalid interactiveMode '%s' (Never, IfAvailable or Always)", where, mode);
  }
}

static void parse_user(struct parse *p, const struct doc_node *u, const char *name) {
  static const char *const known[] = {
      "client-certificate", "client-certificate-data", "client-key", "client-key-data", "token",
      "tokenFile", "as", "as-uid", "as-groups", "as-user-extra", "username", "password",
      "auth-provider", "exec", "extensions", NULL};
  struct kube_config *c = p->cfg;
  char where[300];
  const char *v;
  const struct doc_node *groups, *extra, *ex, *ap;
  bool token, basic;

  str_format(where, sizeof(where), "user '%s'", name);
  check_known(p, u, known, where);
  c->client_cert_file = path_field(p, u, "client-certificate", where);
  data_field(p, u, "client-certificate-data", where, &c->client_cert_data);
  c->client_key_file = path_field(p, u, "client-key", where);
  data_field(p, u, "client-key-data", where, &c->client_key_data);
  if (c->client_cert_file && c->client_cert_data.len)
    problem(p, pos_of(u, "client-certificate-data"),
            "%s: client-certificate and client-certificate-data are both set; keep one", where);
  if (c->client_key_file && c->client_key_data.len)
    problem(p, pos_of(u, "client-key-data"),
            "%s: client-key and client-key-data are both set; keep one", where);
  if ((c->client_cert_file || c->client_cert_data.len) &&
      !(c->client_key_file || c->client_key_data.len))
    problem(p, u, "%s: client-key-data or client-key must be specified to use the client "
                  "certificate",
            where);
  if ((c->client_key_file || c->client_key_data.len) &&
      !(c->client_cert_file || c->client_cert_data.len))
    problem(p, u, "%s: client-certificate-data or client-certificate must be specified to use "
                  "the client key",
            where);

  v = nonempty_field(p, u, "token", where);
  c->token = v ? xstrdup(v) : NULL;
  c->token_file = path_field(p, u, "tokenFile", where);
  v = nonempty_field(p, u, "username", where);
  c->username = v ? xstrdup(v) : NULL;
  v = nonempty_field(p, u, "password", where);
  c->password = v ? xstrdup(v) : NULL;
  token = c->token || c->token_file;
  basic = c->username || c->password;
  if (token && basic)
    problem(p, pos_of(u, c->username ? "username" : "password"),
            "%s: more than one authentication method found: token and basic auth (username/"
            "password); only one is allowed",
            where);

  v = nonempty_field(p, u, "as", where);
  c->impersonate = v ? xstrdup(v) : NULL;
  v = nonempty_field(p, u, "as-uid", where);
  c->impersonate_uid = v ? xstrdup(v) : NULL;
  groups = doc_map_get(u, "as-groups");
  if (groups && !doc_is(groups, DOC_NULL)) {
    if (!doc_is(groups, DOC_SEQ)) {
      problem(p, groups, "%s: as-groups must be a list of strings", where);
    } else {
      c->impersonate_groups = xcalloc(groups->u.seq.n + 1, sizeof(char *));
      for (size_t i = 0; i < groups->u.seq.n; i++) {
        const struct doc_node *g = groups->u.seq.items[i];
        if (!doc_is(g, DOC_STR))
          problem(p, g, "%s: as-groups[%zu] must be a string", where, i);
        else
          c->impersonate_groups[c->n_impersonate_groups++] = xstrdup(g->u.str.s);
      }
    }
  }
  extra = doc_map_get(u, "as-user-extra");
  if (extra && !doc_is(extra, DOC_NULL)) {
    if (!doc_is(extra, DOC_MAP)) {
      problem(p, extra, "%s: as-user-extra must be a mapping of key to a list of strings", where);
    } else {
      size_t n = 0;
      for (size_t i = 0; i < extra->u.map.n; i++)
        n += doc_is(extra->u.map.items[i].value, DOC_SEQ) ? extra->u.map.items[i].value->u.seq.n : 0;
      c->impersonate_extra = xcalloc(n + 1, sizeof(*c->impersonate_extra));
      for (size_t i = 0; i < extra->u.map.n; i++) {
        const struct doc_pair *pr = &extra->u.map.items[i];
        if (!doc_is(pr->value, DOC_SEQ)) {
          problem(p, pr->value, "%s: as-user-extra.%s must be a list of strings", where, pr->key);
          continue;
        }
        for (size_t j = 0; j < pr->value->u.seq.n; j++) {
          const struct doc_node *s = pr->value->u.seq.items[j];
          if (!doc_is(s, DOC_STR)) {
            problem(p, s, "%s: as-user-extra.%s[%zu] must be a string", where, pr->key, j);
            continue;
          }
          c->impersonate_extra[c->n_impersonate_extra].name = xstrdup(pr->key);
          c->impersonate_extra[c->n_impersonate_extra].value = xstrdup(s->u.str.s);
          c->n_impersonate_extra++;
        }
      }
    }
  }
  if (!c->impersonate && (c->impersonate_uid || c->n_impersonate_groups || c->n_impersonate_extra))
    problem(p, pos_of(u, c->impersonate_uid ? "as-uid" : c->n_impersonate_groups ? "as-groups"
                                                                                : "as-user-extra"),
            "%s: requesting uid, groups or user-extra without impersonating a user (set 'as')",
            where);

  ap = doc_map_get(u, "auth-provider");
  ex = doc_map_get(u, "exec");
  if (ap && !doc_is(ap, DOC_NULL) && ex && !doc_is(ex, DOC_NULL))
    problem(p, ap, "%s: auth-provider cannot be combined with an exec plugin", where);
  else if (ap && !doc_is(ap, DOC_NULL))
    problem(p, ap,
            "%s: auth-provider '%s' is not supported (client-go removed its providers); use an "
            "exec plugin such as kubelogin or gke-gcloud-auth-plugin",
            where, doc_map_str(ap, "name") ? doc_map_str(ap, "name") : "?");
  if (ex && !doc_is(ex, DOC_NULL)) {
    parse_exec(p, ex, where);
    if (token || basic)
      problem(p, ex,
              "%s: exec and %s are both set; egressd uses one authentication method per user", where,
              token ? "a token" : "basic auth");
    if (c->client_cert_file || c->client_cert_data.len)
      problem(p, ex,
              "%s: exec and a client certificate are both set; let the plugin return the "
              "certificate, or remove exec",
              where);
  }
}

void kube_config_free(struct kube_config *c) {
  if (!c)
    return;
  free(c->path);
  free(c->context);
  free(c->cluster_ref);
  free(c->user_ref);
  free(c->namespace);
  free(c->server);
  free(c->ca_file);
  buf_dispose(&c->ca_data);
  free(c->tls_server_name);
  if (c->proxy_url) {
    sodium_memzero(c->proxy_url, strlen(c->proxy_url));
    free(c->proxy_url);
  }
  free(c->exec_cluster_config);
  free(c->client_cert_file);
  free(c->client_key_file);
  buf_dispose(&c->client_cert_data);
  buf_dispose_secret(&c->client_key_data);
  if (c->token) {
    sodium_memzero(c->token, strlen(c->token));
    free(c->token);
  }
  free(c->token_file);
  free(c->username);
  if (c->password) {
    sodium_memzero(c->password, strlen(c->password));
    free(c->password);
  }
  free(c->impersonate);
  free(c->impersonate_uid);
  for (size_t i = 0; i < c->n_impersonate_groups; i++)
    free(c->impersonate_groups[i]);
  free(c->impersonate_groups);
  for (size_t i = 0; i < c->n_impersonate_extra; i++) {
    free(c->impersonate_extra[i].name);
    free(c->impersonate_extra[i].value);
  }
  free(c->impersonate_extra);
  if (c->exec) {
    struct kube_exec_config *x = c->exec;
    free(x->api_version);
    free(x->command);
    for (size_t i = 0; i < x->n_args; i++)
      free(x->args[i]);
    free(x->args);
    for (size_t i = 0; i < x->n_env; i++) {
      free(x->env[i].name);
      if (x->env[i].value) {
        sodium_memzero(x->env[i].value, strlen(x->env[i].value));
        free(x->env[i].value);
      }
    }
    free(x->env);
    free(x->install_hint);
    free(x);
  }
  free(c);
}

int kube_config_parse(const char *path, const char *data, size_t len, const char *context,
                      struct kube_config **ret, struct diag_list *diags, struct err *err) {
  static const char *const root_known[] = {"apiVersion", "kind", "preferences", "current-context",
                                           "clusters", "users", "contexts", "extensions", NULL};
  static const char *const context_known[] = {"cluster", "user", "namespace", "extensions", NULL};
  struct doc_limits lim = doc_limits_default;
  struct doc_arena *a = doc_arena_new();
  struct doc_node *root = NULL, **docs = NULL;
  size_t n_docs = 0;
  struct parse p = {.path = path, .diags = diags, .err = err};
  const struct doc_node *ctx, *cl, *us = NULL, *ctx_entry = NULL;
  const char *v, *cluster_ref, *user_ref, *ns;
  char where[300];
  int r;

  lim.max_bytes = KUBE_CONFIG_MAX_BYTES;
  lim.max_docs = 2;
  r = doc_parse(a, path, data, len, &lim, &docs, &n_docs, NULL, err);
  if (r < 0) {
    if (diags && err)
      diag_error(diags, path, err->line, err->col, "%s", err->msg);
    doc_arena_free_secret(a);
    return r;
  }
  if (n_docs != 1 || doc_is(docs[0], DOC_NULL)) {
    const char *what = n_docs > 1 ? "holds more than one YAML document; a kubeconfig is one"
                                  : "is empty; it needs clusters, users, contexts and a context";
    err_set_src(err, -EINVAL, ERR_SRC_INPUT, "the kubeconfig %s", what);
    err_set_pos(err, path, 0, 0);
    if (diags)
      diag_error(diags, path, 0, 0, "the kubeconfig %s", what);
    doc_arena_free_secret(a);
    return -EINVAL;
  }
  root = docs[0];
  p.cfg = xcalloc(1, sizeof(*p.cfg));
  p.cfg->path = xstrdup(path);
  p.dir = path_dirname(path);
  if (!doc_is(root, DOC_MAP)) {
    problem(&p, root, "a kubeconfig must be a mapping (apiVersion: v1, kind: Config, ...), not %s",
            doc_type_name(root->type));
    goto out;
  }
  check_known(&p, root, root_known, "kubeconfig");
  v = str_field(&p, root, "apiVersion", "kubeconfig");
  if (v && *v && strcmp(v, "v1") != 0)
    problem(&p, doc_map_get(root, "apiVersion"), "apiVersion '%s' is not a kubeconfig version (v1)",
            v);
  v = str_field(&p, root, "kind", "kubeconfig");
  if (v && *v && strcmp(v, "Config") != 0)
    problem(&p, doc_map_get(root, "kind"), "kind '%s' is not a kubeconfig (kind: Config)", v);
  check_named_list(&p, root, "clusters", "cluster");
  check_named_list(&p, root, "users", "user");
  check_named_list(&p, root, "contexts", "context");

  if (str_is_empty(context)) {
    context = nonempty_field(&p, root, "current-context", "kubeconfig");
    if (!context) {
      problem(&p, root,
              "no context selected: the kubeconfig has no current-context; set current-context "
              "or name a context (the host config's clusters[].context)");
      goto out;
    }
  }
  p.cfg->context = xstrdup(context);
  ctx = find_named(root, "contexts", "context", context, &ctx_entry);
  if (!ctx_entry) {
    problem(&p, doc_map_get(root, "contexts") ? doc_map_get(root, "contexts") : root,
            "context '%s' is not defined in the kubeconfig", context);
    goto out;
  }
  str_format(where, sizeof(where), "context '%s'", context);
  if (!doc_is(ctx, DOC_MAP)) {
    problem(&p, ctx_entry, "%s has no context settings (cluster, user)", where);
    goto out;
  }
  check_known(&p, ctx, context_known, where);
  cluster_ref = nonempty_field(&p, ctx, "cluster", where);
  user_ref = nonempty_field(&p, ctx, "user", where);
  ns = nonempty_field(&p, ctx, "namespace", where);
  if (ns && dns_label_check(ns))
    problem(&p, doc_map_get(ctx, "namespace"), "%s: namespace '%s' is not valid: %s", where, ns,
            dns_label_check(ns));
  p.cfg->namespace = xstrdup(ns ? ns : "default");
  if (!cluster_ref) {
    problem(&p, ctx, "%s names no cluster", where);
    goto out;
  }
  p.cfg->cluster_ref = xstrdup(cluster_ref);
  cl = find_named(root, "clusters", "cluster", cluster_ref, NULL);
  if (!doc_is(cl, DOC_MAP))
    problem(&p, doc_map_get(ctx, "cluster"), "cluster '%s' named by %s is not defined", cluster_ref,
            where);
  else
    parse_cluster(&p, cl, cluster_ref);
  if (user_ref) {
    const struct doc_node *user_entry = NULL;
    p.cfg->user_ref = xstrdup(user_ref);
    us = find_named(root, "users", "user", user_ref, &user_entry);
    if (!user_entry)
      problem(&p, doc_map_get(ctx, "user"), "user '%s' named by %s is not defined", user_ref, where);
    else if (doc_is(us, DOC_MAP))
      parse_user(&p, us, user_ref);
  }

out:
  free(p.dir);
  doc_arena_free_secret(a);
  if (p.errors) {
    kube_config_free(p.cfg);
    return -EINVAL;
  }
  *ret = p.cfg;
  return 0;
}

int kube_config_load(const char *path, const char *context, struct kube_config **ret,
                     struct diag_list *diags, struct err *err) {
  struct buf b = BUF_INIT;
  int r;

  buf_reserve(&b, 64u << 10); /* most kubeconfigs fit: no realloc leaves a copy of a token */
  r = file_read_all(path, KUBE_CONFIG_MAX_BYTES, &b, err);
  if (r < 0) {
    if (diags && err)
      diag_error(diags, path, 0, 0, "%s", err->msg);
    buf_dispose_secret(&b);
    return r;
  }
  r = kube_config_parse(path, buf_cstr(&b), b.len, context, ret, diags, err);
  buf_dispose_secret(&b);
  return r;
}

const char *kube_config_auth_name(const struct kube_config *c) {
  bool cert = c->client_cert_file || c->client_cert_data.len;

  if (c->exec)
    return "exec plugin";
  if (c->token && cert)
    return "bearer token + client certificate";
  if (c->token)
    return "bearer token";
  if (c->token_file && cert)
    return "token file + client certificate";
  if (c->token_file)
    return "token file";
  if (c->username || c->password)
    return "basic auth";
  if (cert)
    return "client certificate";
  return "none";
}
