/* Discovery: which kinds a cluster serves, at which versions, under which
 * plural, namespaced or not; cached for the client's lifetime.
 *
 * GET /api and GET /apis go out together with client-go's Accept (aggregated
 * v2, v2beta1, then plain JSON). Each answer is judged by its response
 * Content-Type, as client-go does: aggregated (two requests in all), or the
 * legacy documents, after which every group-version is fetched (at most
 * WALK_PARALLEL at a time). A 404 on /api is an empty core group. A
 * group-version that fails (a stale aggregated API, 503 from a dead
 * metrics-server) is recorded, not fatal: lookups in that group then say
 * discovery failed instead of "not served". 401/403 fail the discovery.
 *
 * Resources without responseKind are dropped; subresources are ignored. The
 * preferred version of a kind is the first version, in the server's order of
 * preference for its group, that serves it.
 *
 * When you change the lookup messages, also touch docs/clusters.md and the
 * discovery tests (tests/unit/test-kube.c, tests/integration/test_kube.py).
 */
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "base/mem.h"
#include "base/str.h"
#include "kube/kube-int.h"

#define ACCEPT_AGGREGATED                                                                         \
  "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"                         \
  "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
#define ACCEPT_LEGACY "application/json, */*"
#define WALK_PARALLEL 8

struct res {
  struct kube_resource pub;
  char *group, *kind, *plural;
  char **versions;
  size_t n_versions, cap;
};

struct group {
  char *name;
  char **order;                 /* versions, the server's preference first */
  size_t n_order, cap;
  char *failed;                 /* why a version of the group failed; NULL: none */
};

struct kube_discovery {
  char *cluster;
  struct strmap by_gk;          /* "group/Kind" -> struct res */
  struct ptrvec resources;      /* struct res, in discovery order */
  struct strmap group_by_name;  /* -> struct group */
  struct ptrvec groups;
  bool aggregated;
  bool sealed;
};

struct kube_discovery *kube_discovery_new(const char *cluster) {
  struct kube_discovery *d = xcalloc(1, sizeof(*d));
  d->cluster = xstrdup(cluster);
  return d;
}

static void res_free(void *p) {
  struct res *r = p;
  free(r->group);
  free(r->kind);
  free(r->plural);
  for (size_t i = 0; i < r->n_versions; i++)
    free(r->versions[i]);
  free(r->versions);
  free(r);
}

static void group_free(void *p) {
  struct group *g = p;
  free(g->name);
  for (size_t i = 0; i < g->n_order; i++)
    free(g->order[i]);
  free(g->order);
  free(g->failed);
  free(g);
}

void kube_discovery_free(struct kube_discovery *d) {
  if (!d)
    return;
  ptrvec_dispose_all(&d->resources, res_free);
  ptrvec_dispose_all(&d->groups, group_free);
  strmap_dispose(&d->by_gk);
  strmap_dispose(&d->group_by_name);
  free(d->cluster);
  free(d);
}

static struct group *group_get(struct kube_discovery *d, const char *name) {
  struct group *g = strmap_get(&d->group_by_name, name);

  if (!g) {
    g = xcalloc(1, sizeof(*g));
    g->name = xstrdup(name);
    strmap_put(&d->group_by_name, name, g);
    ptrvec_push(&d->groups, g);
  }
  return g;
}

static bool has_str(char *const *v, size_t n, const char *s) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i], s) == 0)
      return true;
  return false;
}

static void group_add_version(struct group *g, const char *version) {
  if (has_str(g->order, g->n_order, version))
    return;
  g->order = xgrow(g->order, &g->cap, g->n_order + 1, sizeof(*g->order));
  g->order[g->n_order++] = xstrdup(version);
}

static void add_resource(struct kube_discovery *d, const char *group, const char *version,
                         const char *kind, const char *plural, bool namespaced) {
  char *key = xasprintf("%s/%s", group, kind);
  struct res *r = strmap_get(&d->by_gk, key);

  if (!r) {
    r = xcalloc(1, sizeof(*r));
    r->group = xstrdup(group);
    r->kind = xstrdup(kind);
    r->plural = xstrdup(plural);
    r->pub.namespaced = namespaced;
    strmap_put(&d->by_gk, key, r);
    ptrvec_push(&d->resources, r);
  }
  free(key);
  if (!has_str(r->versions, r->n_versions, version)) {
    r->versions = xgrow(r->versions, &r->cap, r->n_versions + 1, sizeof(*r->versions));
    r->versions[r->n_versions++] = xstrdup(version);
  }
  group_add_version(group_get(d, group), version);
}

void kube_discovery_mark_failed(struct kube_discovery *d, const char *group, const char *version,
                                const char *why) {
  struct group *g = group_get(d, group);

  if (!g->failed)
    g->failed = xasprintf("%s%s%s: %s", group, *group ? "/" : "", version, why);
}

void kube_discovery_set_group_order(struct kube_discovery *d, const char *group,
                                    const char *const *versions, size_t n, const char *preferred) {
  struct group *g = group_get(d, group);

  if (preferred)
    group_add_version(g, preferred);
  for (size_t i = 0; i < n; i++)
    group_add_version(g, versions[i]);
}

int kube_discovery_parse_aggregated(struct kube_discovery *d, const struct doc_node *list,
                                    struct err *err) {
  const struct doc_node *items = doc_map_get(list, "items");

  if (!doc_is(list, DOC_MAP) || !str_eq(doc_map_str(list, "kind"), "APIGroupDiscoveryList") ||
      !(doc_is(items, DOC_SEQ) || !items))
    return err_set_src(err, -EBADMSG, ERR_SRC_KUBE,
                       "cluster %s: the aggregated discovery document is not an "
                       "APIGroupDiscoveryList",
                       d->cluster);
  d->aggregated = true;
  for (size_t i = 0; i < doc_len(items); i++) {
    const struct doc_node *item = items->u.seq.items[i], *versions = doc_map_get(item, "versions");
    const char *group = doc_path_str(item, "metadata.name");

    if (!group)
      group = "";
    for (size_t j = 0; j < doc_len(versions) && doc_is(versions, DOC_SEQ); j++) {
      const struct doc_node *v = versions->u.seq.items[j];
      const struct doc_node *resources = doc_map_get(v, "resources");
      const char *version = doc_map_str(v, "version");

      if (str_is_empty(version))
        continue;
      if (str_eq(doc_map_str(v, "freshness"), "Stale")) {
        kube_discovery_mark_failed(d, group, version, "stale (its aggregated API server is not answering)");
        continue;
      }
      group_add_version(group_get(d, group), version);
      for (size_t k = 0; k < doc_len(resources) && doc_is(resources, DOC_SEQ); k++) {
        const struct doc_node *r = resources->u.seq.items[k];
        const char *plural = doc_map_str(r, "resource");
        const char *kind = doc_path_str(r, "responseKind.kind");
        const char *scope = doc_map_str(r, "scope");

        if (str_is_empty(plural) || str_is_empty(kind) || strchr(plural, '/'))
          continue; /* client-go drops resources without responseKind */
        add_resource(d, group, version, kind, plural, str_eq(scope, "Namespaced"));
      }
    }
  }
  return 0;
}

int kube_discovery_parse_resource_list(struct kube_discovery *d, const char *group,
                                       const char *version, const struct doc_node *list,
                                       struct err *err) {
  const struct doc_node *resources = doc_map_get(list, "resources");

  if (!doc_is(list, DOC_MAP) || (resources && !doc_is(resources, DOC_SEQ)))
    return err_set_src(err, -EBADMSG, ERR_SRC_KUBE,
                       "cluster %s: the discovery document of %s%s%s is not an APIResourceList",
                       d->cluster, group, *group ? "/" : "", version);
  group_add_version(group_get(d, group), version);
  for (size_t i = 0; i < doc_len(resources); i++) {
    const struct doc_node *r = resources->u.seq.items[i], *ns = doc_map_get(r, "namespaced");
    const char *plural = doc_map_str(r, "name"), *kind = doc_map_str(r, "kind");

    if (str_is_empty(plural) || str_is_empty(kind) || strchr(plural, '/'))
      continue;
    add_resource(d, group, version, kind, plural, doc_is(ns, DOC_BOOL) && ns->u.b);
  }
  return 0;
}

void kube_discovery_seal(struct kube_discovery *d) {
  for (size_t i = 0; i < d->resources.n; i++) {
    struct res *r = d->resources.items[i];
    struct group *g = strmap_get(&d->group_by_name, r->group);
    size_t k = 0;

    /* order the kind's versions as its group prefers them */
    for (size_t j = 0; g && j < g->n_order; j++)
      for (size_t m = k; m < r->n_versions; m++)
        if (strcmp(r->versions[m], g->order[j]) == 0) {
          char *t = r->versions[k];
          r->versions[k] = r->versions[m];
          r->versions[m] = t;
          k++;
          break;
        }
    r->pub.group = r->group;
    r->pub.kind = r->kind;
    r->pub.plural = r->plural;
    r->pub.version = r->versions[0];
    r->pub.versions = (const char *const *)r->versions;
    r->pub.n_versions = r->n_versions;
  }
  d->sealed = true;
}

static const char *hint_of(const char *group) {
  if (strcmp(group, "servicemesh.cisco.com") == 0)
    return "; is Service Mesh Manager installed?";
  if (strcmp(group, "networking.istio.io") == 0 || strcmp(group, "security.istio.io") == 0)
    return "; is Istio installed?";
  return "";
}

int kube_discovery_find_in(const struct kube_discovery *d, const char *cluster, const char *group,
                           const char *version, const char *kind,
                           const struct kube_resource **ret, struct err *err) {
  char *key;
  struct res *r;
  struct group *g;
  char gv[300];

  if (!d || !d->sealed)
    return err_set_src(err, -EAGAIN, ERR_SRC_KUBE,
                       "cluster %s: discovery has not run yet", cluster);
  if (!group)
    group = "";
  if (version)
    str_format(gv, sizeof(gv), "%s%s%s", group, *group ? "/" : "", version);
  else
    str_format(gv, sizeof(gv), "%s", *group ? group : "the core group");
  key = xasprintf("%s/%s", group, kind);
  r = strmap_get(&d->by_gk, key);
  free(key);
  g = strmap_get(&d->group_by_name, group);
  if (!r || (version && !has_str(r->versions, r->n_versions, version))) {
    if (g && g->failed)
      return err_set_src(err, -EAGAIN, ERR_SRC_KUBE,
                         "cluster %s: cannot tell whether it serves %s %s: discovery failed for %s",
                         cluster, gv, kind, g->failed);
    if (r) {
      struct buf served = BUF_INIT;
      int rc;
      for (size_t i = 0; i < r->n_versions; i++)
        buf_printf(&served, "%s%s", i ? ", " : "", r->versions[i]);
      rc = err_set_src(err, -ENOENT, ERR_SRC_KUBE,
                       "cluster %s does not serve %s %s (it serves %s)", cluster, gv, kind,
                       buf_cstr(&served));
      buf_dispose(&served);
      return rc;
    }
    return err_set_src(err, -ENOENT, ERR_SRC_KUBE, "cluster %s does not serve %s %s%s", cluster, gv,
                       kind, hint_of(group));
  }
  *ret = &r->pub;
  return 0;
}

unsigned kube_discovery_istio_in(const struct kube_discovery *d) {
  struct group *g = d && d->sealed ? strmap_get(&d->group_by_name, "networking.istio.io") : NULL;
  unsigned bits = 0;

  for (size_t i = 0; g && i < g->n_order; i++) {
    if (strcmp(g->order[i], "v1") == 0)
      bits |= KUBE_ISTIO_V1;
    else if (strcmp(g->order[i], "v1beta1") == 0)
      bits |= KUBE_ISTIO_V1BETA1;
    else if (strcmp(g->order[i], "v1alpha3") == 0)
      bits |= KUBE_ISTIO_V1ALPHA3;
  }
  return bits;
}

/* ------------------------------------------------------------ public lookups */

bool kube_client_discovered(const struct kube_client *c) { return c->disco && c->disco->sealed; }

bool kube_discovery_aggregated(const struct kube_client *c) {
  return c->disco && c->disco->aggregated;
}

int kube_discovery_find(const struct kube_client *c, const char *group, const char *version,
                        const char *kind, const struct kube_resource **ret, struct err *err) {
  return kube_discovery_find_in(c->disco, c->name, group, version, kind, ret, err);
}

unsigned kube_discovery_istio_versions(const struct kube_client *c) {
  return kube_discovery_istio_in(c->disco);
}

const char *kube_discovery_istio_version(const struct kube_client *c) {
  unsigned bits = kube_discovery_istio_versions(c);
  return bits & KUBE_ISTIO_V1        ? "v1"
         : bits & KUBE_ISTIO_V1BETA1 ? "v1beta1"
         : bits & KUBE_ISTIO_V1ALPHA3 ? "v1alpha3"
                                      : NULL;
}

bool kube_discovery_has_smm(const struct kube_client *c) {
  const struct kube_resource *r;
  return kube_discovery_find(c, "servicemesh.cisco.com", "v1alpha1", "IstioMeshGateway", &r,
                             NULL) == 0;
}

int kube_discovery_resolve(const struct kube_client *c, const char *name,
                           const struct kube_resource **ret, struct err *err) {
  const struct kube_discovery *d = c->disco;
  const char *dot = strchr(name, '.');
  size_t nlen = dot ? (size_t)(dot - name) : strlen(name);
  const char *group = dot ? dot + 1 : NULL;
  const struct res *found = NULL;
  struct buf also = BUF_INIT;
  int n = 0;

  if (!d || !d->sealed)
    return err_set_src(err, -EAGAIN, ERR_SRC_KUBE, "cluster %s: discovery has not run yet", c->name);
  for (size_t i = 0; i < d->resources.n; i++) {
    const struct res *r = d->resources.items[i];
    bool match = (strlen(r->kind) == nlen && strncasecmp(r->kind, name, nlen) == 0) ||
                 (strlen(r->plural) == nlen && strncmp(r->plural, name, nlen) == 0);
    if (!match || (group && strcmp(group, r->group) != 0))
      continue;
    if (n++ == 0) {
      found = r;
    } else {
      /* kubectl prefers the core group; otherwise the name is ambiguous */
      if (*found->group == '\0')
        continue;
      if (*r->group == '\0') {
        found = r;
        continue;
      }
      buf_printf(&also, "%s%s.%s", also.len ? ", " : "", r->plural, r->group);
    }
  }
  if (!found) {
    buf_dispose(&also);
    return err_set_src(err, -ENOENT, ERR_SRC_KUBE, "cluster %s serves no resource named '%s'",
                       c->name, name);
  }
  if (also.len) {
    int r = err_set_src(err, -EINVAL, ERR_SRC_INPUT,
                        "cluster %s: '%s' is ambiguous: %s.%s, %s; add the group", c->name, name,
                        found->plural, found->group, buf_cstr(&also));
    buf_dispose(&also);
    return r;
  }
  buf_dispose(&also);
  *ret = &found->pub;
  return 0;
}

/* ------------------------------------------------------------ the async walk */

struct gv {
  char *group, *version;
};

/* One discovery request in flight. */
struct dreq {
  struct disco_run *run;
  bool root, core;              /* /api (core) or /apis; else a group-version */
  char *group, *version;
  struct kube_http *h;
};

struct disco_run {
  struct kube_client *c;
  struct kube_discovery *d;
  struct ptrvec waiters;        /* struct kube_op */
  struct gv *queue;
  size_t n_queue, next, cap;
  struct ptrvec inflight;       /* struct dreq */
  unsigned requests;
  struct err err;
  enum kube_failure failure;
  long status;
  bool anonymous;
};

static void dreq_free(struct dreq *q) {
  free(q->group);
  free(q->version);
  free(q);
}

static void run_free(struct disco_run *run) {
  for (size_t i = 0; i < run->inflight.n; i++) {
    struct dreq *q = run->inflight.items[i];
    kube_http_cancel(q->h);
    dreq_free(q);
  }
  ptrvec_dispose(&run->inflight);
  for (size_t i = 0; i < run->n_queue; i++) {
    free(run->queue[i].group);
    free(run->queue[i].version);
  }
  free(run->queue);
  ptrvec_dispose(&run->waiters);
  kube_discovery_free(run->d);
  free(run);
}

static void finish_run(struct disco_run *run) {
  struct kube_client *c = run->c;
  struct ptrvec waiters = run->waiters;

  memset(&run->waiters, 0, sizeof(run->waiters));
  c->disco_run = NULL;
  if (!err_isset(&run->err)) {
    kube_discovery_seal(run->d);
    kube_discovery_free(c->disco);
    c->disco = run->d;
    run->d = NULL;
  }
  for (size_t i = 0; i < waiters.n; i++) {
    struct kube_op *op = waiters.items[i];
    op->state = NULL;
    op->on_cancel = NULL;
    op->res.attempts = i == 0 ? run->requests : 0;
    if (err_isset(&run->err)) {
      op->res.err = run->err;
      op->res.r = run->err.code;
      op->res.failure = run->failure;
      op->res.status = run->status;
      op->res.anonymous = run->anonymous;
    }
  }
  /* from the loop: a callback may cancel another waiter, which only disarms
   * its timer */
  for (size_t i = 0; i < waiters.n; i++)
    kube_op_complete_later(waiters.items[i]);
  ptrvec_dispose(&waiters);
  run_free(run);
}

static void fail_run(struct disco_run *run, const struct kube_http_result *res) {
  if (!err_isset(&run->err)) {
    run->err = *res->err;
    run->failure = res->failure;
    run->status = res->status;
    run->anonymous = res->anonymous;
  }
}

static void parse_legacy_root(struct disco_run *run, bool core, const struct doc_node *doc);
static bool is_aggregated(const char *ct);
static void pump(struct disco_run *run);

static void on_response(void *ud, const struct kube_http_result *res) {
  struct dreq *q = ud;
  struct disco_run *run = q->run;

  for (size_t i = 0; i < run->inflight.n; i++)
    if (run->inflight.items[i] == q) {
      run->inflight.items[i] = run->inflight.items[--run->inflight.n];
      break;
    }
  if (q->root && res->r < 0) {
    if (!(q->core && res->status == 404)) /* no core group: tolerated, as client-go */
      fail_run(run, res);
  } else if (res->r < 0) {
    if (res->failure == KUBE_FAIL_AUTH)
      fail_run(run, res);
    else
      kube_discovery_mark_failed(run->d, q->group, q->version, res->err->msg);
  } else {
    struct doc_arena *a = doc_arena_new();
    struct doc_node *doc = NULL;
    struct err perr = ERR_INIT;
    int r = kube_parse_json(a, "discovery", buf_cstr(res->body), res->body->len,
                            run->c->opts.max_response_bytes, &doc, &perr);
    if (r == 0 && q->root && is_aggregated(res->content_type))
      r = kube_discovery_parse_aggregated(run->d, doc, &perr);
    else if (r == 0 && q->root)
      parse_legacy_root(run, q->core, doc);
    else if (r == 0)
      r = kube_discovery_parse_resource_list(run->d, q->group, q->version, doc, &perr);
    if (r < 0 && q->root && !err_isset(&run->err)) {
      run->err = perr;
      run->failure = KUBE_FAIL_BODY;
      err_prefix(&run->err, "cluster %s: discovery (GET %s)", run->c->name, q->core ? "/api" : "/apis");
    } else if (r < 0) {
      kube_discovery_mark_failed(run->d, q->group, q->version, perr.msg);
    }
    doc_arena_free(a);
  }
  dreq_free(q);
  pump(run);
}

static int submit(struct disco_run *run, bool root, bool core, const char *group,
                  const char *version, struct err *err) {
  struct dreq *q = xcalloc(1, sizeof(*q));
  struct kube_http_spec spec = {.method = KUBE_GET};
  char *path;

  q->run = run;
  q->root = root;
  q->core = core;
  q->group = xstrdup(group ? group : "");
  q->version = xstrdup(version ? version : "");
  if (root) {
    path = xstrdup(core ? "/api" : "/apis");
    spec.accept = ACCEPT_AGGREGATED;
  } else {
    path = *q->group ? xasprintf("/apis/%s/%s", q->group, q->version)
                     : xasprintf("/api/%s", q->version);
    spec.accept = ACCEPT_LEGACY;
  }
  spec.path = path;
  q->h = kube_http_submit(run->c, &spec, on_response, q, err);
  free(path);
  if (!q->h) {
    dreq_free(q);
    return -EINVAL;
  }
  ptrvec_push(&run->inflight, q);
  run->requests++;
  return 0;
}

static void pump(struct disco_run *run) {
  while (!err_isset(&run->err) && run->next < run->n_queue && run->inflight.n < WALK_PARALLEL) {
    struct gv *g = &run->queue[run->next++];
    struct err e = ERR_INIT;
    if (submit(run, false, false, g->group, g->version, &e) < 0)
      kube_discovery_mark_failed(run->d, g->group, g->version, e.msg);
  }
  if (run->inflight.n == 0)
    finish_run(run);
}

static void enqueue(struct disco_run *run, const char *group, const char *version) {
  for (size_t i = 0; i < run->n_queue; i++)
    if (strcmp(run->queue[i].group, group) == 0 && strcmp(run->queue[i].version, version) == 0)
      return;
  run->queue = xgrow(run->queue, &run->cap, run->n_queue + 1, sizeof(*run->queue));
  run->queue[run->n_queue].group = xstrdup(group);
  run->queue[run->n_queue].version = xstrdup(version);
  run->n_queue++;
}

static bool is_aggregated(const char *ct) {
  return kube_media_type_is(ct, "application/json",
                            "g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList") ||
         kube_media_type_is(ct, "application/json",
                            "g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList");
}

static void parse_legacy_root(struct disco_run *run, bool core, const struct doc_node *doc) {
  if (core) {
    const struct doc_node *versions = doc_map_get(doc, "versions");
    for (size_t i = 0; i < doc_len(versions) && doc_is(versions, DOC_SEQ); i++) {
      const struct doc_node *v = versions->u.seq.items[i];
      if (doc_is(v, DOC_STR))
        enqueue(run, "", v->u.str.s);
    }
    return;
  }
  {
    const struct doc_node *groups = doc_map_get(doc, "groups");
    for (size_t i = 0; i < doc_len(groups) && doc_is(groups, DOC_SEQ); i++) {
      const struct doc_node *g = groups->u.seq.items[i], *vs = doc_map_get(g, "versions");
      const char *name = doc_map_str(g, "name");
      const char *pref = doc_path_str(g, "preferredVersion.version");
      const char *order[64];
      size_t n = 0;

      if (str_is_empty(name))
        continue;
      for (size_t j = 0; j < doc_len(vs) && doc_is(vs, DOC_SEQ) && n < ARRAY_SIZE(order); j++) {
        const char *v = doc_map_str(vs->u.seq.items[j], "version");
        if (!str_is_empty(v))
          order[n++] = v;
      }
      kube_discovery_set_group_order(run->d, name, order, n, pref);
      for (size_t j = 0; j < n; j++)
        enqueue(run, name, order[j]);
    }
  }
}

static void on_waiter_cancel(struct kube_op *op) {
  struct disco_run *run = op->state;

  if (!run)
    return;
  for (size_t i = 0; i < run->waiters.n; i++)
    if (run->waiters.items[i] == op) {
      memmove(&run->waiters.items[i], &run->waiters.items[i + 1],
              (run->waiters.n - i - 1) * sizeof(void *));
      run->waiters.n--;
      break;
    }
  op->state = NULL;
}

int kube_client_discover(struct kube_client *c, kube_done_fn done, void *userdata,
                         struct kube_op **ret_op, struct err *err) {
  struct kube_op *op = kube_op_new(c, NULL, done, userdata);
  struct disco_run *run;

  if (ret_op)
    *ret_op = op;
  if (kube_client_discovered(c)) {
    kube_op_complete_later(op);
    return 0;
  }
  op->on_cancel = on_waiter_cancel;
  if (c->disco_run) {
    run = c->disco_run;
    op->state = run;
    ptrvec_push(&run->waiters, op);
    return 0;
  }
  run = xcalloc(1, sizeof(*run));
  run->c = c;
  run->d = kube_discovery_new(c->name);
  op->state = run;
  ptrvec_push(&run->waiters, op);
  c->disco_run = run;
  if (submit(run, true, true, NULL, NULL, err) < 0 || submit(run, true, false, NULL, NULL, err) < 0) {
    op->state = NULL;
    c->disco_run = NULL;
    memset(&run->waiters, 0, sizeof(run->waiters));
    run_free(run);
    if (ret_op)
      *ret_op = NULL;
    kube_op_free(op);
    return err_isset(err) ? err->code : -EINVAL;
  }
  return 0;
}

void kube_client_discovery_reset(struct kube_client *c) {
  kube_discovery_free(c->disco);
  c->disco = NULL;
}

void kube_discovery_run_cancel(struct kube_client *c) {
  struct disco_run *run = c->disco_run;

  if (!run)
    return;
  for (size_t i = 0; i < run->waiters.n; i++)
    ((struct kube_op *)run->waiters.items[i])->state = NULL;
  c->disco_run = NULL;
  run_free(run);
}
