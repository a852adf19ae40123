/* One cluster's reconcile as a state machine on the kube loop; see apply.h
 * for the phases and the rules.
 *
 * Invariants:
 *   - nothing is written before the plan is complete and the planned hook
 *     has accepted it;
 *   - writes of one kind rank finish before the next rank starts (creates and
 *     updates ascending, deletes descending);
 *   - every operation in flight has its handle in an opctx, so freeing a job
 *     cancels it and no callback can touch freed memory;
 *   - the inventory lists only objects egressd wrote (or found unchanged) and
 *     that still exist, with their UIDs, and is replaced atomically.
 *
 * When you change a phase, also touch docs/reconcile.md and
 * tests/integration/test_sync.py.
 */
#include "apply/apply.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/timeutil.h"
#include "doc/doc.h"
#include "render/render.h"

#define DEFAULT_PARALLEL 8
#define CHECK_LIST_MIN 16
#define DEFAULT_HEALTH_TIMEOUT (300 * USEC_PER_SEC)
#define DEFAULT_HEALTH_INTERVAL (1 * USEC_PER_SEC)
#define INVENTORY_MAX_BYTES (64u << 20)

enum phase {
  PH_DISCOVER,
  PH_READ,
  PH_CHECK,
  PH_APPLY,
  PH_PRUNE,
  PH_HEALTH,
  PH_DONE,
};

/* A kind egressd manages, as this cluster serves it. */
struct kindinfo {
  bool served;
  struct kube_ref ref;
  struct err why;            /* when not served */
};

/* The userdata of one operation in flight. */
struct opctx {
  struct apply_job *job;
  size_t index;              /* object index, or kind */
  struct kube_op *op;        /* NULL when not in flight */
  /* the answer to a write: parsed here and freed once its callback has
   * taken what the job keeps (a few fields), so a job of thousands of
   * writes does not hold every object the server sent back */
  struct doc_arena *scratch;
};

struct apply_job {
  struct apply_request req;
  struct apply_result res;
  enum phase phase;
  struct doc_arena *arena;   /* desired and live objects, strings */
  struct kindinfo kinds[_RENDER_KIND_MAX];
  struct kindinfo deployments;
  struct plan_input *desired;
  size_t n_desired, cap_desired;
  struct plan_input *live;
  size_t n_live, cap_live;
  struct plan plan;
  struct strmap inventory;   /* key -> malloc'd uid */
  struct opctx *ops;         /* one per plan item */
  struct opctx kind_ops[_RENDER_KIND_MAX + 1];
  struct opctx discover_op;
  size_t inflight;
  size_t next;               /* next plan item to look at in this phase */
  int rank;                  /* the kind rank being written */
  bool stopping;             /* apply_job_stop(): no new write */
  bool fenced;               /* the may_write hook said no: stopping too */
  bool failed_read;
  bool check_by_list[_RENDER_KIND_MAX];
  /* gateways written in this pass whose spec changed (created, or a new
   * generation): "ns/name" -> the resourceVersion of egressd's write
   * (malloc'd). Their status counts only once someone wrote after it; routes
   * that send mesh traffic to them wait until they are healthy (the gate) */
  struct strmap fresh;
  enum { GATE_UNSET, GATE_WAITING, GATE_OPEN } gate;
  struct strmap held;        /* "ns/name" of gateways not healthy at the gate -> why (malloc'd) */
  struct strmap missing_ns;  /* namespaces a write found missing -> NULL */
  /* health */
  uint64_t health_deadline, health_next;
  struct doc_arena *health_arena;
  struct doc_node *health_lists[2];   /* IstioMeshGateways, Deployments */
  struct opctx health_ops[2];
};

const char *apply_outcome_name(enum apply_outcome o) {
  switch (o) {
  case APPLY_OUTCOME_OK:
    return "ok";
  case APPLY_OUTCOME_PARTIAL:
    return "partial";
  case APPLY_OUTCOME_FAILED:
    return "failed";
  }
  return "?";
}

const char *apply_health_name(enum apply_health h) {
  switch (h) {
  case APPLY_HEALTH_UNKNOWN:
    return "not checked";
  case APPLY_HEALTH_OK:
    return "healthy";
  case APPLY_HEALTH_PROGRESSING:
    return "progressing";
  case APPLY_HEALTH_FAILED:
    return "failed";
  case APPLY_HEALTH_TIMEOUT:
    return "timed out";
  }
  return "?";
}

char *apply_selector(const char *instance) {
  return xasprintf("%s=%s,%s=%s", RENDER_LABEL_MANAGED_BY, RENDER_MANAGER, RENDER_LABEL_INSTANCE,
                   instance);
}

/* ---- inventory ---- */

void apply_inventory_dispose(struct strmap *inv) { strmap_dispose_free(inv); }

int apply_inventory_load(const char *path, struct strmap *ret, struct err *err) {
  struct buf b = BUF_INIT;
  struct doc_arena *a = NULL;
  struct doc_node *root, *objs;
  int r;

  memset(ret, 0, sizeof(*ret));
  r = file_read_all(path, INVENTORY_MAX_BYTES, &b, err);
  if (r == -ENOENT) {
    err_clear(err);
    buf_dispose(&b);
    return 0;
  }
  if (r < 0)
    goto out;
  a = doc_arena_new();
  r = doc_parse_one(a, path, buf_cstr(&b), b.len, NULL, &root, err);
  if (r < 0)
    goto out;
  objs = doc_map_get(root, "objects");
  for (size_t i = 0; doc_is(objs, DOC_SEQ) && i < objs->u.seq.n; i++) {
    const struct doc_node *o = objs->u.seq.items[i];
    const char *kind = doc_map_str(o, "kind"), *ns = doc_map_str(o, "namespace");
    const char *name = doc_map_str(o, "name"), *uid = doc_map_str(o, "uid");
    char *k;

    if (!kind || !name || !uid) {
      r = err_set(err, -EBADMSG, "inventory %s: entry %zu lacks kind, name or uid", path, i);
      goto out;
    }
    k = plan_key(kind, ns, name);
    free(strmap_put(ret, k, xstrdup(uid)));
    free(k);
  }
out:
  if (r < 0)
    strmap_dispose_free(ret);
  buf_dispose(&b);
  doc_arena_free(a);
  return r;
}

static int cmp_inv(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The new inventory: what exists now and egressd owns. Written sorted, so the
 * file is the same when nothing changed. */
static int inventory_save(struct apply_job *j, struct err *err) {
  struct doc_arena *a = doc_arena_new();
  struct doc_node *root = doc_new_map(a), *objs = doc_new_seq(a);
  struct buf out = BUF_INIT;
  char **lines = xcalloc(j->plan.n + 1, sizeof(*lines));
  size_t n = 0;
  int r;

  for (size_t i = 0; i < j->plan.n; i++) {
    const struct plan_item *it = &j->plan.items[i];
    const struct apply_object *o = &j->res.objects[i];
    const char *uid = NULL;

    switch (it->action) {
    case PLAN_CREATE:
    case PLAN_UPDATE:
    case PLAN_UNCHANGED:
      if (o->conflict)
        break;
      uid = o->r == 0 && o->uid ? o->uid : it->uid; /* a failed update keeps the old */
      break;
    case PLAN_DELETE:
      if (o->r < 0)
        uid = it->uid; /* still there: try again next time */
      break;
    case PLAN_HELD:
      uid = it->uid;
      break;
    default:
      break;
    }
    if (uid)
      lines[n++] = xasprintf("%s\t%s\t%s\t%s\t%s", it->kind, it->namespace, it->name, uid,
                             it->api_version ? it->api_version : "");
  }
  qsort(lines, n, sizeof(*lines), cmp_inv);
  doc_map_set(a, root, "cluster", doc_new_str(a, j->req.cluster));
  doc_map_set(a, root, "instance", doc_new_str(a, j->req.repo->fleet->name));
  for (size_t i = 0; i < n; i++) {
    struct doc_node *e = doc_new_map(a);
    char *f[5] = {0}, *p = lines[i];
    for (int k = 0; k < 5; k++) {
      f[k] = p;
      p = strchr(p, '\t');
      if (p)
        *p++ = '\0';
      else
        break;
    }
    doc_map_set(a, e, "kind", doc_new_str(a, f[0]));
    doc_map_set(a, e, "apiVersion", doc_new_str(a, f[4] ? f[4] : ""));
    doc_map_set(a, e, "namespace", doc_new_str(a, f[1]));
    doc_map_set(a, e, "name", doc_new_str(a, f[2]));
    doc_map_set(a, e, "uid", doc_new_str(a, f[3]));
    doc_seq_push(a, objs, e);
    free(lines[i]);
  }
  free(lines);
  doc_map_set(a, root, "objects", objs);
  doc_emit_json(root, &out, DOC_JSON_PRETTY);
  {
    /* a drift check that changed nothing rewrites (and fsyncs) nothing */
    struct buf old = BUF_INIT;
    struct err ignored = ERR_INIT;
    bool same = file_read_all(j->req.inventory_path, INVENTORY_MAX_BYTES, &old, &ignored) == 0 &&
                old.len == out.len && memcmp(old.data, out.data, out.len) == 0;
    buf_dispose(&old);
    if (same) {
      buf_dispose(&out);
      doc_arena_free(a);
      return 0;
    }
  }
  {
    char *dir = path_dirname(j->req.inventory_path);
    r = dir_make_all(dir, 0700, err);
    free(dir);
  }
  if (r >= 0)
    r = file_write_atomic(j->req.inventory_path, out.data, out.len, 0600, err);
  buf_dispose(&out);
  doc_arena_free(a);
  return r;
}

/* ---- helpers ---- */

static void object_fail(struct apply_job *j, size_t i, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void object_fail(struct apply_job *j, size_t i, int r, const char *fmt, ...) {
  struct apply_object *o = &j->res.objects[i];
  char msg[ERR_MSG_MAX];
  va_list ap;

  va_start(ap, fmt);
  str_vformat(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  o->r = r < 0 ? r : -EIO;
  o->done = true;
  free(o->error);
  o->error = xstrdup(msg);
  j->res.failed++;
}

static int64_t generation(const struct doc_node *o) {
  const struct doc_node *n = doc_path(o, "metadata.generation");
  return doc_is(n, DOC_INT) ? n->u.i : -1;
}

static void object_record(struct apply_object *o, const struct doc_node *live) {
  const char *rv = doc_path_str(live, "metadata.resourceVersion");
  const char *uid = doc_path_str(live, "metadata.uid");

  free(o->resource_version);
  free(o->uid);
  o->resource_version = rv ? xstrdup(rv) : NULL;
  o->uid = uid ? xstrdup(uid) : NULL;
  o->generation = generation(live);
  o->meta_digest = apply_meta_digest(live);
  o->seen = true;
}

uint64_t apply_meta_digest(const struct doc_node *obj) {
  struct buf b = BUF_INIT;
  uint64_t h = 14695981039346656037ULL; /* FNV-1a */

  doc_emit_json(doc_path(obj, "metadata.labels"), &b, 0);
  buf_puts(&b, "\n");
  doc_emit_json(doc_path(obj, "metadata.annotations"), &b, 0);
  for (size_t i = 0; i < b.len; i++) {
    h ^= (unsigned char)b.data[i];
    h *= 1099511628211ULL;
  }
  buf_dispose(&b);
  return h ? h : 1;
}

static void report_progress(struct apply_job *j) {
  if (j->req.progress)
    j->req.progress(j->req.userdata, j);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* One line for every write that failed on a missing namespace: what is
 * missing, and the two ways out. */
static void describe_missing_namespaces(struct apply_job *j) {
  size_t n = strmap_size(&j->missing_ns), iter = 0, k = 0, shown;
  const char **names, *key;
  void *value;
  struct buf b = BUF_INIT;

  if (!n)
    return;
  names = xcalloc(n, sizeof(*names));
  while (strmap_next(&j->missing_ns, &iter, &key, &value))
    names[k++] = key;
  qsort(names, n, sizeof(*names), cmp_str);
  buf_printf(&b, "namespace%s ", n == 1 ? "" : "s");
  shown = n > 12 ? 10 : n;
  for (size_t i = 0; i < shown; i++)
    buf_printf(&b, "%s%s", i ? ", " : "", names[i]);
  if (shown < n)
    buf_printf(&b, " and %zu more", n - shown);
  if (n == 1)
    buf_printf(&b, " does not exist; create it (kubectl create namespace %s) or remove from the "
                   "config repo the intents and gateways that target it",
               names[0]);
  else
    buf_puts(&b, " do not exist; create them (kubectl create namespace NAME, for each) or remove "
                 "from the config repo the intents and gateways that target them");
  str_copy(j->res.missing_namespaces, sizeof(j->res.missing_namespaces), buf_cstr(&b));
  buf_dispose(&b);
  free(names);
}

static void finish(struct apply_job *j) {
  struct apply_result *res = &j->res;

  if (j->phase == PH_DONE)
    return;
  j->phase = PH_DONE;
  res->finished_usec = time_now_mono_usec();
  if (err_isset(&res->err))
    res->outcome = APPLY_OUTCOME_FAILED;
  else if (res->failed || res->conflicts || res->prune_refused)
    res->outcome = APPLY_OUTCOME_PARTIAL;
  else
    res->outcome = APPLY_OUTCOME_OK;
  describe_missing_namespaces(j);
  report_progress(j);
  if (j->req.done)
    j->req.done(j->req.userdata, j);
}

static void fail_cluster(struct apply_job *j, const struct err *e) {
  if (!err_isset(&j->res.err))
    j->res.err = *e;
  finish(j);
}

static int kind_rank_of(const char *kind) {
  int k = render_kind_from_name(kind);
  return k < 0 ? _RENDER_KIND_MAX : k;
}

static void compute_digest(struct apply_job *j) {
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  unsigned char h[EVP_MAX_MD_SIZE];
  unsigned hl = 0;
  struct buf b = BUF_INIT;
  size_t n;

  if (!md)
    return;
  EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  for (size_t i = 0; i < j->plan.n; i++) {
    if (!j->plan.items[i].desired)
      continue;
    buf_reset(&b);
    doc_emit_json(j->plan.items[i].desired, &b, DOC_JSON_SORT_KEYS);
    buf_putc(&b, '\n');
    EVP_DigestUpdate(md, b.data, b.len);
  }
  EVP_DigestFinal_ex(md, h, &hl);
  EVP_MD_CTX_free(md);
  buf_dispose(&b);
  n = str_copy(j->res.manifests_digest, sizeof(j->res.manifests_digest), "sha256:");
  for (unsigned i = 0; i < hl && n + 2 < sizeof(j->res.manifests_digest); i++)
    n += str_format(j->res.manifests_digest + n, sizeof(j->res.manifests_digest) - n, "%02x",
                    h[i]);
}

static void phase_read(struct apply_job *j);
static void phase_plan(struct apply_job *j);
static void phase_check(struct apply_job *j);
static void phase_apply(struct apply_job *j);
static void phase_prune(struct apply_job *j);
static void phase_after_writes(struct apply_job *j);
static bool gate_open(struct apply_job *j);
static bool routes_to_held(struct apply_job *j, size_t i);

/* ---- discover + render ---- */

static int emit_desired(void *userdata, const struct render_object *o) {
  struct apply_job *j = userdata;
  struct plan_input *in;

  j->desired = xgrow(j->desired, &j->cap_desired, j->n_desired + 1, sizeof(*j->desired));
  in = &j->desired[j->n_desired++];
  in->kind = render_kind_info(o->kind)->kind;
  in->api_version = doc_arena_strdup(j->arena, o->api_version);
  in->namespace = doc_arena_strdup(j->arena, o->namespace);
  in->name = doc_arena_strdup(j->arena, o->name);
  in->rank = (int)o->kind;
  in->adopt = o->adopt;
  in->object = doc_copy(j->arena, o->object);
  return 0;
}

int apply_kind_ref(struct kube_client *c, enum render_kind k, const char *istio,
                   struct kube_ref *ref, struct err *why) {
  const struct render_kind_info *ki = render_kind_info(k);
  const char *version = k == RENDER_KIND_ISTIO_MESH_GATEWAY     ? "v1alpha1"
                        : k == RENDER_KIND_AUTHORIZATION_POLICY ? (str_eq(istio, "v1") ? "v1" : "v1beta1")
                        : k == RENDER_KIND_NETWORK_POLICY       ? "v1"
                                                                : istio;
  const struct kube_resource *res;
  int r = kube_discovery_find(c, ki->group, version, ki->kind, &res, why);

  if (r < 0)
    return r;
  *ref = kube_ref_of(res, NULL);
  ref->version = version;
  return 0;
}

static void on_discovered(void *userdata, const struct kube_result *kr) {
  struct apply_job *j = userdata;
  struct render_options ro = {0};
  struct diag_list diags = {0};
  struct err e = ERR_INIT;
  const char *istio;
  int r;

  j->discover_op.op = NULL;
  if (kr->r < 0) {
    j->res.failure = kr->failure;
    fail_cluster(j, &kr->err);
    return;
  }
  istio = j->req.istio_api_version ? j->req.istio_api_version
                                   : kube_discovery_istio_version(j->req.client);
  if (!istio) {
    err_set(&e, -ENOENT,
            "cluster %s serves no version of networking.istio.io; is Istio installed?",
            j->req.cluster);
    fail_cluster(j, &e);
    return;
  }
  str_copy(j->res.istio_api_version, sizeof(j->res.istio_api_version), istio);
  for (int k = 0; k < _RENDER_KIND_MAX; k++) {
    struct kindinfo *kd = &j->kinds[k];

    if (apply_kind_ref(j->req.client, (enum render_kind)k, istio, &kd->ref, &kd->why) == 0) {
      kd->served = true;
      kd->ref.version = doc_arena_strdup(j->arena, kd->ref.version);
    }
  }
  {
    const struct kube_resource *res;
    struct err ignore = ERR_INIT;
    if (kube_discovery_find(j->req.client, "apps", "v1", "Deployment", &res, &ignore) == 0) {
      j->deployments.served = true;
      j->deployments.ref = kube_ref_of(res, NULL);
    }
  }
  ro.istio_api_version = istio;
  ro.cluster = j->req.fleet_cluster;
  r = render_repo(j->req.repo, &ro, emit_desired, j, &diags, &e);
  if (r < 0) {
    if (!err_isset(&e) && diags.n) {
      char t[1024];
      diag_sort(&diags);
      err_set(&e, r, "cannot render for cluster %s: %s", j->req.cluster,
              diag_format(&diags.items[0], t, sizeof(t)));
    } else {
      err_prefix(&e, "cannot render for cluster %s", j->req.cluster);
    }
    diag_list_dispose(&diags);
    fail_cluster(j, &e);
    return;
  }
  diag_list_dispose(&diags);
  phase_read(j);
}

/* ---- read ---- */

static void on_listed(void *userdata, const struct kube_result *kr) {
  struct opctx *oc = userdata;
  struct apply_job *j = oc->job;
  const struct doc_node *items = kr->object;

  oc->op = NULL;
  j->inflight--;
  if (kr->r < 0) {
    if (!err_isset(&j->res.err)) {
      j->res.err = kr->err;
      j->res.failure = kr->failure;
    }
    j->failed_read = true;
  }
  for (size_t i = 0; kr->r == 0 && doc_is(items, DOC_SEQ) && i < items->u.seq.n; i++) {
    const struct doc_node *o = items->u.seq.items[i];
    struct plan_input *in;

    if (!doc_path_str(o, "metadata.name"))
      continue;
    j->live = xgrow(j->live, &j->cap_live, j->n_live + 1, sizeof(*j->live));
    in = &j->live[j->n_live++];
    in->kind = render_kind_info((enum render_kind)oc->index)->kind;
    in->api_version = doc_map_str(o, "apiVersion");
    in->namespace = doc_path_str(o, "metadata.namespace");
    in->name = doc_path_str(o, "metadata.name");
    in->rank = (int)oc->index;
    in->adopt = false;
    in->object = o;
  }
  if (j->inflight)
    return;
  if (j->failed_read) {
    err_prefix(&j->res.err, "cannot read the live objects");
    finish(j);
    return;
  }
  phase_plan(j);
}

static void phase_read(struct apply_job *j) {
  char *selector = apply_selector(j->req.repo->fleet->name);
  struct kube_list_options lo = {.label_selector = selector};
  struct err e = ERR_INIT;

  j->phase = PH_READ;
  report_progress(j);
  for (int k = 0; k < _RENDER_KIND_MAX; k++) {
    struct opctx *oc = &j->kind_ops[k];
    if (!j->kinds[k].served)
      continue;
    oc->job = j;
    oc->index = (size_t)k;
    if (kube_client_list(j->req.client, &j->kinds[k].ref, &lo, j->arena, on_listed, oc, &oc->op,
                         &e) < 0) {
      free(selector);
      fail_cluster(j, &e);
      return;
    }
    j->inflight++;
  }
  free(selector);
  if (!j->inflight)
    phase_plan(j);
}

/* ---- plan ---- */

static void phase_plan(struct apply_job *j) {
  struct plan_options po = {.manager = RENDER_MANAGER,
                            .prune_budget = j->req.prune_budget,
                            .prune_allowance = j->req.prune_allowance,
                            .inventory = j->req.inventory_path ? &j->inventory : NULL};
  struct err e = ERR_INIT;

  if (j->req.inventory_path && apply_inventory_load(j->req.inventory_path, &j->inventory, &e) < 0) {
    err_prefix(&e, "cluster %s: cannot read its inventory", j->req.cluster);
    fail_cluster(j, &e);
    return;
  }
  if (plan_build(j->desired, j->n_desired, j->live, j->n_live, &po, &j->plan, &e) < 0) {
    fail_cluster(j, &e);
    return;
  }
  memcpy(j->res.count, j->plan.count, sizeof(j->res.count));
  j->res.prune_refused = j->plan.prune_refused;
  str_copy(j->res.prune_refused_why, sizeof(j->res.prune_refused_why), j->plan.prune_refused_why);
  j->res.objects = xcalloc(j->plan.n + 1, sizeof(*j->res.objects));
  j->res.n_objects = j->plan.n;
  j->ops = xcalloc(j->plan.n + 1, sizeof(*j->ops));
  for (size_t i = 0; i < j->plan.n; i++) {
    const struct plan_item *it = &j->plan.items[i];
    struct apply_object *o = &j->res.objects[i];
    o->kind = it->kind;
    o->api_version = it->api_version;
    o->namespace = it->namespace;
    o->name = it->name;
    o->action = it->action;
    if (it->live)
      object_record(o, it->live);
    j->ops[i].job = j;
    j->ops[i].index = i;
  }
  compute_digest(j);
  if (j->req.flags & APPLY_PLAN_ONLY) {
    finish(j);
    return;
  }
  if (j->req.planned && j->req.planned(j->req.userdata, j) < 0) {
    err_set(&e, -ECANCELED, "cluster %s: the plan was not accepted; nothing was written",
            j->req.cluster);
    fail_cluster(j, &e);
    return;
  }
  phase_check(j);
}

/* ---- check: never take over an object egressd did not create ---- */

static bool is_ours(const struct apply_job *j, const struct doc_node *o) {
  return str_eq(doc_path_str(o, "metadata.labels." RENDER_LABEL_MANAGED_BY), RENDER_MANAGER) &&
         str_eq(doc_map_str(doc_path(o, "metadata.labels"), RENDER_LABEL_INSTANCE),
                j->req.repo->fleet->name);
}

/* The ref of plan item @i (its kind's resource, its namespace); fails the
 * object when the cluster does not serve its kind. Returns the kind or -1. */
static int item_ref(struct apply_job *j, size_t i, struct kube_ref *ref) {
  const struct plan_item *it = &j->plan.items[i];
  int k = kind_rank_of(it->kind);

  if (k >= _RENDER_KIND_MAX || !j->kinds[k].served) {
    object_fail(j, i, -ENOENT, "%s", k < _RENDER_KIND_MAX ? j->kinds[k].why.msg : "unknown kind");
    return -1;
  }
  *ref = j->kinds[k].ref;
  ref->namespace = it->namespace;
  return k;
}

/* What a look-alike check found for create @i: @live is the object of that
 * name (NULL: none, free to create). */
static void check_found(struct apply_job *j, size_t i, const struct doc_node *live) {
  const struct plan_item *it = &j->plan.items[i];
  struct apply_object *o = &j->res.objects[i];

  if (!live || is_ours(j, live) || it->adopt)
    return;
  o->conflict = true;
  o->done = true;
  j->res.conflicts++;
  free(o->error);
  o->error = xstrdup("exists and was not created by egressd; it is left alone (set "
                     "spec.adopt: true on the intent to take it over)");
}

static void on_checked(void *userdata, const struct kube_result *kr) {
  struct opctx *oc = userdata;
  struct apply_job *j = oc->job;

  oc->op = NULL;
  j->inflight--;
  if (kr->r == -ENOENT)
    check_found(j, oc->index, NULL);
  else if (kr->r < 0)
    object_fail(j, oc->index, kr->r, "%s", kr->err.msg);
  else
    check_found(j, oc->index, kr->object);
  phase_check(j);
}

/* A Sidecar without workloadSelector applies to its whole namespace, and
 * Istio allows one: with two, which one a workload gets is undefined. Before
 * writing its own, egressd lists the namespace's Sidecars: a selector-less
 * one it did not create blocks the write (and the list doubles as the
 * look-alike check of a create). */
static void on_sidecars_listed(void *userdata, const struct kube_result *kr) {
  struct opctx *oc = userdata;
  struct apply_job *j = oc->job;
  const struct plan_item *it = &j->plan.items[oc->index];
  const struct doc_node *items = kr->object, *same = NULL;

  oc->op = NULL;
  j->inflight--;
  if (kr->r < 0) {
    object_fail(j, oc->index, kr->r, "%s", kr->err.msg);
    phase_check(j);
    return;
  }
  for (size_t i = 0; doc_is(items, DOC_SEQ) && i < items->u.seq.n; i++) {
    const struct doc_node *o = items->u.seq.items[i];
    const char *name = doc_path_str(o, "metadata.name");
    if (str_eq(name, it->name)) {
      same = o;
    } else if (name && !is_ours(j, o) && !doc_path(o, "spec.workloadSelector")) {
      object_fail(j, oc->index, -EEXIST,
                  "namespace %s already has Sidecar %s without a workloadSelector, which egressd "
                  "did not create; Istio allows one such Sidecar per namespace (with two, which "
                  "one applies is undefined): give %s a workloadSelector, or move its settings "
                  "into templates/sidecar.yaml of the config repo and delete it",
                  it->namespace, name, name);
      phase_check(j);
      return;
    }
  }
  if (it->action == PLAN_CREATE)
    check_found(j, oc->index, same);
  phase_check(j);
}

/* The unselected LIST of a kind with many creates: every create of that kind
 * is checked against it. */
static void on_check_listed(void *userdata, const struct kube_result *kr) {
  struct opctx *oc = userdata;
  struct apply_job *j = oc->job;
  const struct doc_node *items = kr->object;
  struct strmap live = {0};
  uintptr_t found;
  char key[600];

  oc->op = NULL;
  j->inflight--;
  for (size_t i = 0; kr->r == 0 && doc_is(items, DOC_SEQ) && i < items->u.seq.n; i++) {
    const struct doc_node *o = items->u.seq.items[i];
    const char *ns = doc_path_str(o, "metadata.namespace"), *name = doc_path_str(o, "metadata.name");
    if (!name)
      continue;
    str_format(key, sizeof(key), "%s/%s", ns ? ns : "", name);
    strmap_put(&live, key, (void *)(uintptr_t)(i + 1)); /* the item's index + 1 */
  }
  for (size_t i = 0; i < j->plan.n; i++) {
    const struct plan_item *it = &j->plan.items[i];
    if (it->action != PLAN_CREATE || kind_rank_of(it->kind) != (int)oc->index ||
        j->res.objects[i].done)
      continue;
    if (kr->r < 0) {
      object_fail(j, i, kr->r, "%s", kr->err.msg);
      continue;
    }
    str_format(key, sizeof(key), "%s/%s", it->namespace, it->name);
    found = (uintptr_t)strmap_get(&live, key);
    check_found(j, i, found ? items->u.seq.items[found - 1] : NULL);
  }
  strmap_dispose(&live);
  phase_check(j);
}

/* Look-alikes: before creating an object, make sure no object of that name
 * exists that egressd did not make. A GET per create, at most max_parallel
 * at once; a kind with CHECK_LIST_MIN creates or more is checked with one
 * LIST of the kind instead (a first sync of thousands of intents). A Sidecar
 * to write lists its namespace's Sidecars (on_sidecars_listed). */
static void phase_check(struct apply_job *j) {
  unsigned parallel = j->req.max_parallel ? j->req.max_parallel : DEFAULT_PARALLEL;

  if (j->phase == PH_DONE)
    return;
  if (j->phase != PH_CHECK) {
    size_t creates[_RENDER_KIND_MAX] = {0};
    j->phase = PH_CHECK;
    j->next = 0;
    report_progress(j);
    for (size_t i = 0; i < j->plan.n; i++) {
      int k = kind_rank_of(j->plan.items[i].kind);
      if (j->plan.items[i].action == PLAN_CREATE && k < _RENDER_KIND_MAX && j->kinds[k].served)
        creates[k]++;
    }
    for (int k = 0; k < _RENDER_KIND_MAX; k++) {
      struct opctx *oc = &j->kind_ops[k];
      struct kube_list_options lo = {0};
      struct err e = ERR_INIT;
      /* Sidecars are listed per namespace (on_sidecars_listed) */
      j->check_by_list[k] = creates[k] >= CHECK_LIST_MIN && k != RENDER_KIND_SIDECAR;
      if (!j->check_by_list[k])
        continue;
      oc->job = j;
      oc->index = (size_t)k;
      if (kube_client_list(j->req.client, &j->kinds[k].ref, &lo, j->arena, on_check_listed, oc,
                           &oc->op, &e) < 0) {
        for (size_t i = 0; i < j->plan.n; i++)
          if (j->plan.items[i].action == PLAN_CREATE && kind_rank_of(j->plan.items[i].kind) == k)
            object_fail(j, i, e.code, "%s", e.msg);
        j->check_by_list[k] = false;
        continue;
      }
      j->inflight++;
    }
  }
  while (j->next < j->plan.n && j->inflight < parallel) {
    size_t i = j->next++;
    const struct plan_item *it = &j->plan.items[i];
    int k;
    struct kube_ref ref;
    struct err e = ERR_INIT;

    if (j->res.objects[i].done)
      continue;
    if (str_eq(it->kind, "Sidecar") && (it->action == PLAN_CREATE || it->action == PLAN_UPDATE)) {
      struct kube_list_options lo = {0};
      if (item_ref(j, i, &ref) < 0)
        continue;
      if (kube_client_list(j->req.client, &ref, &lo, j->arena, on_sidecars_listed, &j->ops[i],
                           &j->ops[i].op, &e) < 0) {
        object_fail(j, i, e.code, "%s", e.msg);
        continue;
      }
      j->inflight++;
      continue;
    }
    if (it->action != PLAN_CREATE)
      continue;
    if ((k = item_ref(j, i, &ref)) < 0 || j->check_by_list[k])
      continue;
    if (kube_client_get(j->req.client, &ref, it->name, j->arena, on_checked, &j->ops[i],
                        &j->ops[i].op, &e) < 0) {
      object_fail(j, i, e.code, "%s", e.msg);
      continue;
    }
    j->inflight++;
  }
  if (!j->inflight && j->next >= j->plan.n)
    phase_apply(j);
}

/* ---- apply, rank by rank ---- */

/* Is @kr the API server's answer to a write into namespace @ns that does not
 * exist? (404 NotFound with the message `namespaces "<ns>" not found`; the
 * message is the one part of the Status kept in the err, and a kind the
 * server does not serve is 404 with another message.) */
static bool namespace_missing(const struct kube_result *kr, const char *ns) {
  char needle[300];

  if (kr->r >= 0 || kr->status != 404 || str_is_empty(ns))
    return false;
  str_format(needle, sizeof(needle), "namespaces \"%s\" not found", ns);
  return strstr(kr->err.msg, needle) != NULL;
}

static void on_applied(void *userdata, const struct kube_result *kr) {
  struct opctx *oc = userdata;
  struct apply_job *j = oc->job;
  struct apply_object *o = &j->res.objects[oc->index];

  oc->op = NULL;
  j->inflight--;
  if (kr->r < 0) {
    object_fail(j, oc->index, kr->r, "%s", kr->err.msg);
    if (namespace_missing(kr, o->namespace)) {
      o->namespace_missing = true;
      strmap_put(&j->missing_ns, o->namespace, NULL);
    }
  } else {
    const struct plan_item *it = &j->plan.items[oc->index];
    object_record(o, kr->object);
    if (it->rank == RENDER_KIND_ISTIO_MESH_GATEWAY && o->resource_version &&
        (!it->live || generation(it->live) != generation(kr->object))) {
      char key[600];
      str_format(key, sizeof(key), "%s/%s", it->namespace, it->name);
      free(strmap_put(&j->fresh, key, xstrdup(o->resource_version)));
    }
    o->done = true;
    j->res.applied++;
    if (j->plan.items[oc->index].action == PLAN_CREATE)
      j->res.created++;
    else
      j->res.updated++;
  }
  doc_arena_free(oc->scratch); /* kr->object with it */
  oc->scratch = NULL;
  phase_apply(j);
}

static bool wants_write(const struct apply_job *j, size_t i) {
  const struct plan_item *it = &j->plan.items[i];
  const struct apply_object *o = &j->res.objects[i];

  return (it->action == PLAN_CREATE || it->action == PLAN_UPDATE) && !o->done && !o->conflict;
}

/* The fence (coordination): asked right before each write goes out. */
static bool write_allowed(struct apply_job *j) {
  if (!j->req.may_write || j->req.may_write(j->req.userdata))
    return true;
  j->fenced = j->stopping = true;
  return false;
}

static void phase_apply(struct apply_job *j) {
  unsigned parallel = j->req.max_parallel ? j->req.max_parallel : DEFAULT_PARALLEL;

  if (j->phase == PH_DONE)
    return;
  if (j->phase != PH_APPLY) {
    j->phase = PH_APPLY;
    j->next = 0;
    j->rank = -1;
    report_progress(j);
  }
  for (;;) {
    if (j->stopping)
      return; /* the caller frees the job once nothing is on the wire */
    /* start what this rank still has, within the parallelism */
    while (j->next < j->plan.n && j->inflight < parallel) {
      size_t i = j->next;
      const struct plan_item *it = &j->plan.items[i];
      struct kube_ref ref;
      struct err e = ERR_INIT;
      unsigned flags = KUBE_APPLY_FORCE;

      if (it->action >= PLAN_DELETE)
        break; /* applies come first in the plan */
      if (j->rank >= 0 && it->rank != j->rank)
        break; /* the next rank waits for this one */
      if (it->rank == RENDER_KIND_VIRTUAL_SERVICE && !gate_open(j)) {
        report_progress(j);
        return; /* the gate polls, then calls phase_apply() again */
      }
      j->rank = it->rank;
      j->next++;
      if (!wants_write(j, i)) {
        if (it->action == PLAN_UNCHANGED)
          j->res.objects[i].done = true;
        continue;
      }
      if (it->rank == RENDER_KIND_VIRTUAL_SERVICE && routes_to_held(j, i))
        continue;
      if (item_ref(j, i, &ref) < 0)
        continue;
      if (strmap_has(&j->missing_ns, it->namespace)) {
        /* an earlier write found it missing: no request that must fail */
        object_fail(j, i, -ENOENT, "namespace %s does not exist", it->namespace);
        j->res.objects[i].namespace_missing = true;
        continue;
      }
      if (j->req.flags & APPLY_DRY_RUN)
        flags |= KUBE_APPLY_DRY_RUN;
      else if (!write_allowed(j)) {
        j->next--; /* not started: a later job plans it again */
        break;
      }
      j->ops[i].scratch = doc_arena_new();
      if (kube_client_apply(j->req.client, &ref, it->desired, flags, j->ops[i].scratch,
                            on_applied, &j->ops[i], &j->ops[i].op, &e) < 0) {
        doc_arena_free(j->ops[i].scratch);
        j->ops[i].scratch = NULL;
        object_fail(j, i, e.code, "%s", e.msg);
        continue;
      }
      j->res.objects[i].sent = true;
      j->inflight++;
    }
    if (j->inflight) {
      report_progress(j);
      return; /* callbacks come back here */
    }
    if (j->next < j->plan.n && j->plan.items[j->next].action < PLAN_DELETE) {
      j->rank = j->plan.items[j->next].rank; /* this rank is done: on to the next */
      continue;
    }
    break;
  }
  phase_prune(j);
}

/* ---- prune, in reverse rank order (the plan is already ordered so) ---- */

static void on_deleted(void *userdata, const struct kube_result *kr) {
  struct opctx *oc = userdata;
  struct apply_job *j = oc->job;
  struct apply_object *o = &j->res.objects[oc->index];

  oc->op = NULL;
  j->inflight--;
  if (kr->r < 0) {
    object_fail(j, oc->index, kr->r, "%s", kr->err.msg);
  } else {
    o->done = true;
    j->res.deleted++;
  }
  phase_prune(j);
}

static void phase_prune(struct apply_job *j) {
  unsigned parallel = j->req.max_parallel ? j->req.max_parallel : DEFAULT_PARALLEL;

  if (j->phase == PH_DONE)
    return;
  if (j->phase != PH_PRUNE) {
    j->phase = PH_PRUNE;
    j->rank = -1;
    while (j->next < j->plan.n && j->plan.items[j->next].action < PLAN_DELETE)
      j->next++;
    if (j->res.count[PLAN_DELETE])
      report_progress(j);
  }
  for (;;) {
    if (j->stopping)
      return;
    while (j->next < j->plan.n && j->inflight < parallel) {
      size_t i = j->next;
      const struct plan_item *it = &j->plan.items[i];
      struct kube_delete_options dopt = {.uid = it->uid,
                                         .propagation = KUBE_PROPAGATION_BACKGROUND};
      struct kube_ref ref;
      struct err e = ERR_INIT;
      int k;

      if (it->action != PLAN_DELETE)
        break; /* held deletions and orphans are only reported */
      if (j->rank >= 0 && it->rank != j->rank)
        break;
      j->rank = it->rank;
      j->next++;
      if (j->req.flags & APPLY_DRY_RUN) {
        j->res.objects[i].done = true;
        continue;
      }
      k = kind_rank_of(it->kind);
      if (k >= _RENDER_KIND_MAX || !j->kinds[k].served) {
        object_fail(j, i, -ENOENT, "cannot delete: the cluster no longer serves %s", it->kind);
        continue;
      }
      if (!write_allowed(j)) {
        j->next--;
        break;
      }
      ref = j->kinds[k].ref;
      ref.namespace = it->namespace;
      if (kube_client_delete(j->req.client, &ref, it->name, &dopt, j->arena, on_deleted,
                             &j->ops[i], &j->ops[i].op, &e) < 0) {
        object_fail(j, i, e.code, "%s", e.msg);
        continue;
      }
      j->res.objects[i].sent = true;
      j->inflight++;
    }
    if (j->inflight) {
      report_progress(j);
      return;
    }
    if (j->next < j->plan.n && j->plan.items[j->next].action == PLAN_DELETE) {
      j->rank = j->plan.items[j->next].rank;
      continue;
    }
    break;
  }
  phase_after_writes(j);
}

/* Is every desired IstioMeshGateway Available in the live state read before
 * the writes? */
static bool gateways_available(const struct apply_job *j) {
  for (size_t i = 0; i < j->n_desired; i++) {
    const struct plan_input *d = &j->desired[i];
    bool found = false;
    if (d->rank != RENDER_KIND_ISTIO_MESH_GATEWAY)
      continue;
    for (size_t k = 0; k < j->n_live && !found; k++)
      found = j->live[k].rank == RENDER_KIND_ISTIO_MESH_GATEWAY &&
              str_eq(j->live[k].namespace, d->namespace) && str_eq(j->live[k].name, d->name) &&
              str_eq(doc_path_str(j->live[k].object, "status.Status"), "Available");
    if (!found)
      return false;
  }
  return true;
}

static void health_poll(struct apply_job *j);

static bool health_wanted(const struct apply_job *j) {
  return !(j->req.flags & (APPLY_DRY_RUN | APPLY_NO_HEALTH)) &&
         j->kinds[RENDER_KIND_ISTIO_MESH_GATEWAY].served;
}

static uint64_t health_timeout(const struct apply_job *j) {
  return j->req.health_timeout_usec ? j->req.health_timeout_usec : DEFAULT_HEALTH_TIMEOUT;
}

/* The gate: before the first VirtualService (the routes that send mesh
 * traffic to a gateway) is written, every gateway this pass created or gave
 * a new spec must be healthy, within the health timeout. A gateway that
 * fails or times out is held: the routes to it are not written (counted as
 * failed, with why), the rest of the pass goes on. Returns whether the
 * VirtualServices may go. */
static bool gate_open(struct apply_job *j) {
  if (j->gate == GATE_OPEN)
    return true;
  if (j->gate == GATE_UNSET) {
    if (!health_wanted(j) || !strmap_size(&j->fresh)) {
      j->gate = GATE_OPEN;
      return true;
    }
    j->gate = GATE_WAITING;
    j->health_deadline = time_now_mono_usec() + health_timeout(j);
    j->health_next = 0;
    health_poll(j);
  }
  return false;
}

/* Does VirtualService @i send mesh traffic to a held gateway? It fails then. */
static bool routes_to_held(struct apply_job *j, size_t i) {
  const struct plan_item *it = &j->plan.items[i];
  static const char *const sections[] = {"spec.http", "spec.tls", "spec.tcp"};

  if (!strmap_size(&j->held))
    return false;
  for (size_t s = 0; s < ARRAY_SIZE(sections); s++) {
    const struct doc_node *routes = doc_path(it->desired, sections[s]);
    for (size_t r = 0; doc_is(routes, DOC_SEQ) && r < routes->u.seq.n; r++) {
      const struct doc_node *dests = doc_map_get(routes->u.seq.items[r], "route");
      for (size_t d = 0; doc_is(dests, DOC_SEQ) && d < dests->u.seq.n; d++) {
        const char *host = doc_path_str(dests->u.seq.items[d], "destination.host");
        char key[600], *dot;
        const char *why;
        /* <name>.<namespace>.svc.cluster.local */
        if (!host || !str_has_suffix(host, ".svc.cluster.local"))
          continue;
        str_copy(key, sizeof(key), host);
        key[strlen(key) - strlen(".svc.cluster.local")] = '\0';
        if (!(dot = strchr(key, '.')))
          continue;
        *dot = '\0';
        {
          char id[600];
          str_format(id, sizeof(id), "%s/%s", dot + 1, key);
          if ((why = strmap_get(&j->held, id))) {
            object_fail(j, i, -EAGAIN,
                        "held back: it routes the mesh to gateway %s, which is not healthy (%s); "
                        "the next pass tries again",
                        id, why);
            return true;
          }
        }
      }
    }
  }
  return false;
}

/* ---- health ---- */

static const struct doc_node *find_live(const struct doc_node *list, const char *ns,
                                        const char *name) {
  for (size_t i = 0; doc_is(list, DOC_SEQ) && i < list->u.seq.n; i++) {
    const struct doc_node *o = list->u.seq.items[i];
    if (str_eq(doc_path_str(o, "metadata.namespace"), ns) &&
        str_eq(doc_path_str(o, "metadata.name"), name))
      return o;
  }
  return NULL;
}

static int64_t num_at(const struct doc_node *o, const char *path) {
  const struct doc_node *n = doc_path(o, path);
  return doc_is(n, DOC_INT) ? n->u.i : -1;
}

enum gw_health { GW_HEALTHY, GW_WAITING, GW_FAILED };

/* One gateway, from the last two LISTs. IstioMeshGateway has no
 * observedGeneration: after egressd changed its spec, its status counts only
 * once the object was written again (by the operator), so an Available left
 * from before the change never passes. */
static enum gw_health judge_gateway(const struct apply_job *j, const char *ns, const char *name,
                                    char *why, size_t size) {
  const struct doc_node *g = find_live(j->health_lists[0], ns, name);
  const struct doc_node *dep = find_live(j->health_lists[1], ns, name);
  const char *st = doc_path_str(g, "status.Status"), *ours;
  char key[600];

  str_format(key, sizeof(key), "%s/%s", ns, name);
  ours = strmap_get(&j->fresh, key);
  if (g && ours && str_eq(doc_path_str(g, "metadata.resourceVersion"), ours)) {
    str_format(why, size, "IstioMeshGateway %s/%s is not reconciled since egressd's change", ns,
               name);
    return GW_WAITING;
  }
  if (str_eq(st, "ReconcileFailed")) {
    const char *msg = doc_path_str(g, "status.ErrorMessage");
    str_format(why, size, "IstioMeshGateway %s/%s: ReconcileFailed: %s", ns, name,
               msg ? msg : "(no ErrorMessage)");
    return GW_FAILED;
  }
  if (!str_eq(st, "Available")) {
    str_format(why, size, "IstioMeshGateway %s/%s is %s", ns, name, st ? st : "not reconciled yet");
    return GW_WAITING;
  }
  if (j->deployments.served &&
      (!dep || num_at(dep, "status.observedGeneration") < num_at(dep, "metadata.generation") ||
       num_at(dep, "status.updatedReplicas") < num_at(dep, "spec.replicas") ||
       num_at(dep, "status.availableReplicas") < num_at(dep, "spec.replicas"))) {
    str_format(why, size, "Deployment %s/%s is %s", ns, name, dep ? "not rolled out" : "missing");
    return GW_WAITING;
  }
  return GW_HEALTHY;
}

/* The gate's verdict on the gateways this pass changed. */
static void judge_gate(struct apply_job *j, uint64_t now) {
  bool waiting = false;

  size_t iter = 0;
  const char *key;
  void *value;

  while (strmap_next(&j->fresh, &iter, &key, &value)) {
    char ns[600], why[512], *slash;
    str_copy(ns, sizeof(ns), key);
    if (!(slash = strchr(ns, '/')))
      continue;
    *slash = '\0';
    if (strmap_has(&j->held, key))
      continue;
    switch (judge_gateway(j, ns, slash + 1, why, sizeof(why))) {
    case GW_HEALTHY:
      break;
    case GW_FAILED:
      strmap_put(&j->held, key, xstrdup(why));
      break;
    case GW_WAITING:
      if (now >= j->health_deadline) {
        char limit[32], msg[600];
        time_format_duration(limit, sizeof(limit), health_timeout(j));
        str_format(msg, sizeof(msg), "not healthy after %s: %s", limit, why);
        strmap_put(&j->held, key, xstrdup(msg));
      } else {
        waiting = true;
      }
      break;
    }
  }
  if (waiting)
    return; /* health_poll() comes back */
  j->gate = GATE_OPEN;
  phase_apply(j);
}

/* Judge the gateways from the last two LISTs: every desired one. */
static void evaluate_health(struct apply_job *j, uint64_t now) {
  struct buf waiting = BUF_INIT;
  size_t n_waiting = 0;

  for (size_t i = 0; i < j->n_desired; i++) {
    const struct plan_input *d = &j->desired[i];
    char why[512];

    if (d->rank != RENDER_KIND_ISTIO_MESH_GATEWAY)
      continue;
    switch (judge_gateway(j, d->namespace, d->name, why, sizeof(why))) {
    case GW_HEALTHY:
      break;
    case GW_FAILED:
      j->res.health = APPLY_HEALTH_FAILED;
      str_copy(j->res.health_message, sizeof(j->res.health_message), why);
      buf_dispose(&waiting);
      finish(j);
      return;
    case GW_WAITING:
      buf_printf(&waiting, "%s%s", n_waiting++ ? "; " : "", why);
      break;
    }
  }
  if (!n_waiting) {
    j->res.health = APPLY_HEALTH_OK;
    j->res.health_message[0] = '\0';
    buf_dispose(&waiting);
    finish(j);
    return;
  }
  str_copy(j->res.health_message, sizeof(j->res.health_message), buf_cstr(&waiting));
  buf_dispose(&waiting);
  if (now >= j->health_deadline) {
    char limit[32];
    char msg[sizeof(j->res.health_message)];
    time_format_duration(limit, sizeof(limit), health_timeout(j));
    str_format(msg, sizeof(msg), "not healthy after %s: %s", limit, j->res.health_message);
    str_copy(j->res.health_message, sizeof(j->res.health_message), msg);
    j->res.health = APPLY_HEALTH_TIMEOUT;
    finish(j);
  }
}

static void phase_after_writes(struct apply_job *j) {
  struct err e = ERR_INIT;
  bool gateways = false;

  if (j->phase == PH_DONE)
    return;
  if (!(j->req.flags & APPLY_DRY_RUN) && j->req.inventory_path && inventory_save(j, &e) < 0) {
    /* the writes happened; without the inventory the next pass only orphans */
    err_prefix(&e, "cluster %s: cannot save its inventory", j->req.cluster);
    fail_cluster(j, &e);
    return;
  }
  for (size_t i = 0; i < j->n_desired && !gateways; i++)
    gateways = j->desired[i].rank == RENDER_KIND_ISTIO_MESH_GATEWAY;
  if (!health_wanted(j) || !gateways) {
    finish(j);
    return;
  }
  if (strmap_size(&j->held)) {
    /* the gate already judged: a gateway failed or timed out, its routes were
     * held back; do not wait for it a second time */
    size_t iter = 0;
    const char *key;
    void *why;
    bool timeout = false;
    const char *first = NULL;
    while (strmap_next(&j->held, &iter, &key, &why)) {
      if (!first || strcmp(why, first) < 0)
        first = why; /* the same message whatever the map's order */
      timeout |= str_has_prefix(why, "not healthy after ");
    }
    j->res.health = timeout ? APPLY_HEALTH_TIMEOUT : APPLY_HEALTH_FAILED;
    str_copy(j->res.health_message, sizeof(j->res.health_message), first);
    finish(j);
    return;
  }
  {
    /* fail fast: a gateway that could not be written never becomes healthy,
     * and a pass with failed writes is not in sync whatever the health says;
     * the next pass checks health */
    size_t failed_writes = 0;
    for (size_t i = 0; i < j->res.n_objects; i++) {
      const struct apply_object *o = &j->res.objects[i];
      if (o->r < 0 && !o->conflict &&
          (o->action == PLAN_CREATE || o->action == PLAN_UPDATE || o->action == PLAN_DELETE))
        failed_writes++;
    }
    if (failed_writes) {
      j->res.health = APPLY_HEALTH_UNKNOWN;
      str_format(j->res.health_message, sizeof(j->res.health_message),
                 "not checked: %zu write%s failed; the next pass checks health", failed_writes,
                 failed_writes == 1 ? "" : "s");
      finish(j);
      return;
    }
  }
  if (!j->res.applied && !j->res.deleted && gateways_available(j)) {
    /* nothing changed and the LIST just read says every gateway is Available:
     * healthy at no extra request (a no-drift pass is one LIST per kind) */
    j->res.health = APPLY_HEALTH_OK;
    finish(j);
    return;
  }
  j->phase = PH_HEALTH;
  j->res.health = APPLY_HEALTH_PROGRESSING;
  j->health_deadline = time_now_mono_usec() + health_timeout(j);
  j->health_next = 0;
  report_progress(j);
  health_poll(j);
}

static void on_health_listed(void *userdata, const struct kube_result *kr) {
  struct opctx *oc = userdata;
  struct apply_job *j = oc->job;

  oc->op = NULL;
  j->inflight--;
  j->health_lists[oc->index] = kr->r == 0 ? kr->object : NULL;
  if (kr->r < 0)
    str_format(j->res.health_message, sizeof(j->res.health_message), "cannot read health: %s",
               kr->err.msg);
  if (j->inflight)
    return;
  if (j->phase == PH_HEALTH)
    evaluate_health(j, time_now_mono_usec());
  else if (j->phase == PH_APPLY && j->gate == GATE_WAITING)
    judge_gate(j, time_now_mono_usec());
}

/* Poll the gateways' health: two LISTs (IstioMeshGateways, egress
 * Deployments) per interval, never a GET per gateway; at the gate (PH_APPLY)
 * or after the writes (PH_HEALTH). */
static void health_poll(struct apply_job *j) {
  uint64_t now = time_now_mono_usec();
  char *selector;
  struct kube_list_options lo = {0};
  struct err e = ERR_INIT;

  if (j->inflight || now < j->health_next)
    return;
  if (now >= j->health_deadline && j->health_next) {
    if (j->phase == PH_HEALTH)
      evaluate_health(j, now);
    else
      judge_gate(j, now);
    return;
  }
  j->health_next = now + (j->req.health_interval_usec ? j->req.health_interval_usec
                                                      : DEFAULT_HEALTH_INTERVAL);
  if (!j->health_arena)
    j->health_arena = doc_arena_new();
  else
    doc_arena_reset(j->health_arena);
  j->health_lists[0] = j->health_lists[1] = NULL;
  selector = apply_selector(j->req.repo->fleet->name);
  lo.label_selector = selector;
  j->health_ops[0] = (struct opctx){j, 0, NULL};
  if (kube_client_list(j->req.client, &j->kinds[RENDER_KIND_ISTIO_MESH_GATEWAY].ref, &lo,
                       j->health_arena, on_health_listed, &j->health_ops[0],
                       &j->health_ops[0].op, &e) == 0)
    j->inflight++;
  free(selector);
  if (j->deployments.served) {
    lo.label_selector = "gateway-type=egress";
    j->health_ops[1] = (struct opctx){j, 1, NULL};
    if (kube_client_list(j->req.client, &j->deployments.ref, &lo, j->health_arena,
                         on_health_listed, &j->health_ops[1], &j->health_ops[1].op, &e) == 0)
      j->inflight++;
  }
  if (!j->inflight) { /* neither LIST could start: judge what there is */
    if (j->phase == PH_HEALTH)
      evaluate_health(j, now);
    else
      judge_gate(j, now);
  }
}

/* ---- public ---- */

int apply_job_start(const struct apply_request *req, struct apply_job **ret, struct err *err) {
  struct apply_job *j;

  if (!req->client || !req->repo || !req->repo->fleet || !req->cluster)
    return err_set(err, -EINVAL, "an apply request needs a cluster, a client and a repo");
  j = xcalloc(1, sizeof(*j));
  j->req = *req;
  j->arena = doc_arena_new();
  j->res.cluster = req->cluster;
  j->res.started_usec = time_now_mono_usec();
  j->phase = PH_DISCOVER;
  j->discover_op.job = j;
  *ret = j;
  if (kube_client_discover(req->client, on_discovered, j, &j->discover_op.op, &j->res.err) < 0)
    finish(j);
  return 0;
}

void apply_job_tick(struct apply_job *j, uint64_t now) {
  (void)now;
  if (j && (j->phase == PH_HEALTH || (j->phase == PH_APPLY && j->gate == GATE_WAITING)))
    health_poll(j);
}

bool apply_job_finished(const struct apply_job *j) { return j->phase == PH_DONE; }

enum apply_stage apply_job_stage(const struct apply_job *j) {
  switch (j->phase) {
  case PH_DISCOVER: return APPLY_STAGE_DISCOVER;
  case PH_READ: return APPLY_STAGE_READ;
  case PH_CHECK: return APPLY_STAGE_CHECK;
  case PH_APPLY: return j->gate == GATE_WAITING ? APPLY_STAGE_GATE : APPLY_STAGE_APPLY;
  case PH_PRUNE: return APPLY_STAGE_PRUNE;
  case PH_HEALTH: return APPLY_STAGE_HEALTH;
  case PH_DONE: return APPLY_STAGE_DONE;
  }
  return APPLY_STAGE_DONE;
}

void apply_job_progress(const struct apply_job *j, struct apply_progress *p) {
  memset(p, 0, sizeof(*p));
  p->stage = apply_job_stage(j);
  for (size_t i = 0; i < j->res.n_objects; i++) {
    const struct apply_object *o = &j->res.objects[i];
    if (o->action == PLAN_CREATE || o->action == PLAN_UPDATE) {
      p->apply_total++;
      p->apply_done += o->done;
      p->apply_failed += o->r < 0 || o->conflict;
    } else if (o->action == PLAN_DELETE) {
      p->delete_total++;
      p->delete_done += o->done;
      p->delete_failed += o->r < 0;
    }
  }
}

void apply_job_stop(struct apply_job *j) {
  if (j)
    j->stopping = true;
}

bool apply_job_fenced(const struct apply_job *j) {
  return j->fenced;
}

bool apply_job_writing(const struct apply_job *j) {
  if (j->phase != PH_APPLY && j->phase != PH_PRUNE)
    return false;
  for (size_t i = 0; j->ops && i < j->plan.n; i++)
    if (kube_op_on_the_wire(j->ops[i].op))
      return true;
  return false;
}
const struct apply_result *apply_job_result(const struct apply_job *j) { return &j->res; }
const struct plan *apply_job_plan(const struct apply_job *j) { return &j->plan; }

static void cancel(struct opctx *oc) {
  if (oc->op) {
    kube_op_cancel(oc->op);
    oc->op = NULL;
  }
  doc_arena_free(oc->scratch);
  oc->scratch = NULL;
}

void apply_job_free(struct apply_job *j) {
  if (!j)
    return;
  cancel(&j->discover_op);
  for (int k = 0; k <= _RENDER_KIND_MAX; k++)
    cancel(&j->kind_ops[k]);
  for (size_t i = 0; j->ops && i < j->plan.n; i++)
    cancel(&j->ops[i]);
  cancel(&j->health_ops[0]);
  cancel(&j->health_ops[1]);
  for (size_t i = 0; i < j->res.n_objects; i++) {
    free(j->res.objects[i].error);
    free(j->res.objects[i].resource_version);
    free(j->res.objects[i].uid);
  }
  free(j->res.objects);
  free(j->ops);
  free(j->desired);
  free(j->live);
  plan_dispose(&j->plan);
  strmap_dispose_free(&j->inventory);
  strmap_dispose_free(&j->fresh);
  strmap_dispose_free(&j->held);
  strmap_dispose(&j->missing_ns);
  doc_arena_free(j->health_arena);
  doc_arena_free(j->arena);
  free(j);
}

int apply_jobs_wait(struct kube_loop *loop, struct apply_job **jobs, size_t n,
                    uint64_t timeout_usec) {
  uint64_t deadline = time_now_mono_usec() + timeout_usec;

  for (;;) {
    bool all = true;
    uint64_t now = time_now_mono_usec();

    for (size_t i = 0; i < n; i++) {
      apply_job_tick(jobs[i], now);
      all &= apply_job_finished(jobs[i]);
    }
    if (all)
      return 0;
    if (now >= deadline)
      return -ETIMEDOUT;
    kube_loop_run_once(loop, 200 * USEC_PER_MSEC, NULL, 0);
  }
}
