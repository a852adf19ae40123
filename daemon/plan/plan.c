/* Planning one cluster: compare desired with live on egressd's fields, order
 * the actions, and hold back deletions that break a prune safety rule. See
 * plan.h for the rules.
 *
 * managedFields (FieldsV1) is read to learn which fields egressd applied:
 *   {"f:spec": {"f:hosts": {}, "f:http": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}
 * keys are "f:<field>", "k:<json of the key fields>" (list-map element),
 * "v:<json value>" (set element), "i:<index>", and "." (the node itself).
 *
 * When you change what counts as drift, also touch docs/reconcile.md and the
 * tests in tests/unit/test-plan.c. */
#include "plan/plan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/str.h"

#define MAX_DRIFT_PATHS 32

const char *plan_action_name(enum plan_action a) {
  static const char *const names[_PLAN_ACTION_MAX] = {"create", "update", "unchanged",
                                                       "delete", "orphan", "held"};
  return a < _PLAN_ACTION_MAX ? names[a] : "?";
}

char *plan_key(const char *kind, const char *ns, const char *name) {
  return xasprintf("%s/%s/%s", kind, ns ? ns : "", name);
}

struct drift {
  char **paths;
  size_t n, cap;
  size_t total;
};

static void add_path(struct drift *d, const struct buf *path, const char *suffix) {
  d->total++;
  if (d->n >= MAX_DRIFT_PATHS)
    return;
  d->paths = xgrow(d->paths, &d->cap, d->n + 1, sizeof(*d->paths));
  d->paths[d->n++] = xasprintf("%s%s", buf_cstr(path), suffix ? suffix : "");
}

static void push_key(struct buf *path, const char *key) {
  if (path->len)
    buf_putc(path, '.');
  buf_puts(path, key);
}

/* Every field of @d is in @l with the same value. */
static void subset(const struct doc_node *d, const struct doc_node *l, struct buf *path,
                   struct drift *dr) {
  size_t mark = path->len;

  if (!l) {
    add_path(dr, path, NULL);
    return;
  }
  switch (d->type) {
  case DOC_MAP:
    if (l->type != DOC_MAP) {
      add_path(dr, path, NULL);
      return;
    }
    for (size_t i = 0; i < d->u.map.n; i++) {
      const struct doc_pair *p = &d->u.map.items[i];
      push_key(path, p->key);
      subset(p->value, doc_map_get(l, p->key), path, dr);
      buf_truncate(path, mark);
    }
    return;
  case DOC_SEQ:
    if (l->type != DOC_SEQ || l->u.seq.n != d->u.seq.n) {
      add_path(dr, path, NULL);
      return;
    }
    for (size_t i = 0; i < d->u.seq.n; i++) {
      buf_printf(path, "[%zu]", i);
      subset(d->u.seq.items[i], l->u.seq.items[i], path, dr);
      buf_truncate(path, mark);
    }
    return;
  default:
    if (!doc_equal(d, l))
      add_path(dr, path, NULL);
    return;
  }
}

/* The FieldsV1 of @manager's Apply entry in @live, or NULL. */
static const struct doc_node *owned_fields(const struct doc_node *live, const char *manager) {
  const struct doc_node *mf = doc_path(live, "metadata.managedFields");

  for (size_t i = 0; i < doc_len(mf) && mf->type == DOC_SEQ; i++) {
    const struct doc_node *e = mf->u.seq.items[i];
    if (str_eq(doc_map_str(e, "manager"), manager) && str_eq(doc_map_str(e, "operation"), "Apply"))
      return doc_map_get(e, "fieldsV1");
  }
  return NULL;
}

/* The element of list @d whose fields match every key of the "k:" JSON. */
static const struct doc_node *find_keyed(const struct doc_node *d, const char *json) {
  struct doc_arena *a;
  struct doc_node *key;
  const struct doc_node *found = NULL;

  if (!doc_is(d, DOC_SEQ))
    return NULL;
  a = doc_arena_new();
  if (doc_parse_one(a, "fieldsV1", json, strlen(json), NULL, &key, NULL) == 0 &&
      doc_is(key, DOC_MAP)) {
    for (size_t i = 0; i < d->u.seq.n && !found; i++) {
      bool all = true;
      for (size_t k = 0; k < key->u.map.n && all; k++)
        all = doc_equal(key->u.map.items[k].value,
                        doc_map_get(d->u.seq.items[i], key->u.map.items[k].key));
      if (all)
        found = d->u.seq.items[i];
    }
  }
  doc_arena_free(a);
  return found;
}

static bool seq_has_value(const struct doc_node *d, const char *json) {
  struct doc_arena *a;
  struct doc_node *v;
  bool found = false;

  if (!doc_is(d, DOC_SEQ))
    return false;
  a = doc_arena_new();
  if (doc_parse_one(a, "fieldsV1", json, strlen(json), NULL, &v, NULL) == 0)
    for (size_t i = 0; i < d->u.seq.n && !found; i++)
      found = doc_equal(v, d->u.seq.items[i]);
  doc_arena_free(a);
  return found;
}

/* Fields egressd owns (@fv1) that @d no longer has. */
static void owned_not_desired(const struct doc_node *fv1, const struct doc_node *d, struct buf *path,
                              struct drift *dr) {
  size_t mark = path->len;

  if (!doc_is(fv1, DOC_MAP))
    return;
  for (size_t i = 0; i < fv1->u.map.n; i++) {
    const struct doc_pair *p = &fv1->u.map.items[i];
    const char *k = p->key;

    if (str_has_prefix(k, "f:")) {
      const struct doc_node *child = doc_is(d, DOC_MAP) ? doc_map_get(d, k + 2) : NULL;
      push_key(path, k + 2);
      if (!child)
        add_path(dr, path, " (no longer rendered)");
      else
        owned_not_desired(p->value, child, path, dr);
    } else if (str_has_prefix(k, "k:")) {
      const struct doc_node *el = find_keyed(d, k + 2);
      buf_printf(path, "[%s]", k + 2);
      if (!el)
        add_path(dr, path, " (no longer rendered)");
      else
        owned_not_desired(p->value, el, path, dr);
    } else if (str_has_prefix(k, "v:")) {
      buf_printf(path, "[%s]", k + 2);
      if (!seq_has_value(d, k + 2))
        add_path(dr, path, " (no longer rendered)");
    } else if (str_has_prefix(k, "i:")) {
      uint64_t idx;
      buf_printf(path, "[%s]", k + 2);
      if (str_to_u64(k + 2, UINT32_MAX, &idx) < 0 || !doc_is(d, DOC_SEQ) || idx >= d->u.seq.n)
        add_path(dr, path, " (no longer rendered)");
      else
        owned_not_desired(p->value, d->u.seq.items[idx], path, dr);
    }
    buf_truncate(path, mark);
  }
}

bool plan_object_in_sync(const struct doc_node *desired, const struct doc_node *live,
                         const char *manager, char ***ret_paths, size_t *ret_n) {
  struct drift dr = {0};
  struct buf path = BUF_INIT;

  /* identity and type are not drift: apiVersion may differ by version served */
  for (size_t i = 0; doc_is(desired, DOC_MAP) && i < desired->u.map.n; i++) {
    const struct doc_pair *p = &desired->u.map.items[i];
    if (strcmp(p->key, "apiVersion") == 0 || strcmp(p->key, "kind") == 0)
      continue;
    buf_reset(&path);
    buf_puts(&path, p->key);
    subset(p->value, doc_map_get(live, p->key), &path, &dr);
  }
  buf_reset(&path);
  owned_not_desired(owned_fields(live, manager ? manager : "egressd"), desired, &path, &dr);
  buf_dispose(&path);
  if (ret_paths) {
    *ret_paths = dr.paths;
    *ret_n = dr.n;
  } else {
    plan_paths_free(dr.paths, dr.n);
  }
  return dr.total == 0;
}

void plan_paths_free(char **paths, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(paths[i]);
  free(paths);
}

/* ---- projection for display ---- */

static bool bookkeeping(const char *key, int depth) {
  static const char *const meta[] = {"managedFields", "resourceVersion", "uid", "generation",
                                     "creationTimestamp", "selfLink", NULL};
  if (depth == 0)
    return strcmp(key, "status") == 0;
  if (depth == 1)
    for (const char *const *m = meta; *m; m++)
      if (strcmp(key, *m) == 0)
        return true;
  return false;
}

static struct doc_node *project(struct doc_arena *a, const struct doc_node *d,
                                const struct doc_node *l, const struct doc_node *fv1, int depth,
                                bool in_metadata) {
  struct doc_node *out;

  if (l->type == DOC_MAP) {
    out = doc_new_map(a);
    /* desired's keys first, in desired's order, then owned extras */
    for (size_t i = 0; doc_is(d, DOC_MAP) && i < d->u.map.n; i++) {
      const char *k = d->u.map.items[i].key;
      const struct doc_node *lv = doc_map_get(l, k);
      char f[300];
      if (!lv || bookkeeping(k, depth - (in_metadata ? 0 : 1) + (in_metadata ? 0 : 0)))
        continue;
      str_format(f, sizeof(f), "f:%s", k);
      doc_map_set(a, out, k,
                  project(a, d->u.map.items[i].value, lv, doc_map_get(fv1, f), depth + 1,
                          depth == 0 && strcmp(k, "metadata") == 0));
    }
    for (size_t i = 0; i < l->u.map.n; i++) {
      const char *k = l->u.map.items[i].key;
      char f[300];
      if (doc_is(d, DOC_MAP) && doc_map_get(d, k))
        continue;
      str_format(f, sizeof(f), "f:%s", k);
      if (!doc_map_get(fv1, f) || (in_metadata && bookkeeping(k, 1)) ||
          (depth == 0 && bookkeeping(k, 0)))
        continue;
      doc_map_set(a, out, k,
                  project(a, NULL, l->u.map.items[i].value, doc_map_get(fv1, f), depth + 1, false));
    }
    return out;
  }
  if (l->type == DOC_SEQ) {
    out = doc_new_seq(a);
    for (size_t i = 0; i < l->u.seq.n; i++) {
      const struct doc_node *de =
          doc_is(d, DOC_SEQ) && i < d->u.seq.n ? d->u.seq.items[i] : NULL;
      /* elements of an atomic list: keep what desired sets, or all when unknown */
      doc_seq_push(a, out, de ? project(a, de, l->u.seq.items[i], NULL, depth + 1, false)
                              : doc_copy(a, l->u.seq.items[i]));
    }
    return out;
  }
  return doc_copy(a, l);
}

struct doc_node *plan_live_projection(struct doc_arena *a, const struct doc_node *desired,
                                      const struct doc_node *live, const char *manager) {
  const struct doc_node *fv1 = owned_fields(live, manager ? manager : "egressd");
  struct doc_node *out = doc_new_map(a);

  if (!doc_is(live, DOC_MAP))
    return out;
  if (doc_map_get(live, "apiVersion"))
    doc_map_set(a, out, "apiVersion", doc_copy(a, doc_map_get(live, "apiVersion")));
  if (doc_map_get(live, "kind"))
    doc_map_set(a, out, "kind", doc_copy(a, doc_map_get(live, "kind")));
  {
    struct doc_node *rest = project(a, desired, live, fv1, 0, false);
    for (size_t i = 0; i < rest->u.map.n; i++)
      if (strcmp(rest->u.map.items[i].key, "apiVersion") != 0 &&
          strcmp(rest->u.map.items[i].key, "kind") != 0)
        doc_map_set(a, out, rest->u.map.items[i].key, rest->u.map.items[i].value);
  }
  return out;
}

/* ---- the plan ---- */

static int cmp_apply(const void *a, const void *b) {
  const struct plan_item *x = a, *y = b;
  int c;

  if (x->action >= PLAN_DELETE || y->action >= PLAN_DELETE) {
    /* deletes after applies; held and orphans last */
    int gx = x->action < PLAN_DELETE ? 0 : x->action == PLAN_DELETE ? 1 : 2;
    int gy = y->action < PLAN_DELETE ? 0 : y->action == PLAN_DELETE ? 1 : 2;
    if (gx != gy)
      return gx - gy;
    if (gx == 1 && x->rank != y->rank)
      return y->rank - x->rank; /* deletions in reverse dependency order */
  }
  if (x->rank != y->rank)
    return x->rank - y->rank;
  if ((c = strcmp(x->namespace, y->namespace)))
    return c;
  if ((c = strcmp(x->name, y->name)))
    return c;
  return strcmp(x->kind, y->kind);
}

static const char *uid_of(const struct doc_node *live) {
  return doc_path_str(live, "metadata.uid");
}

int plan_build(const struct plan_input *desired, size_t n_desired, const struct plan_input *live,
               size_t n_live, const struct plan_options *opts, struct plan *ret, struct err *err) {
  const char *manager = opts && opts->manager ? opts->manager : "egressd";
  struct strmap live_index = {0}, desired_index = {0};
  struct plan p = {0};
  size_t n_delete = 0, kept = 0;
  int r = 0;

  p.items = xcalloc(n_desired + n_live + 1, sizeof(*p.items));
  for (size_t i = 0; i < n_live; i++) {
    char *k;
    if (!live[i].kind || !live[i].name) {
      r = err_set(err, -EINVAL, "a live object without kind or name");
      goto out;
    }
    k = plan_key(live[i].kind, live[i].namespace, live[i].name);
    strmap_put(&live_index, k, (void *)(uintptr_t)&live[i]);
    free(k);
  }
  for (size_t i = 0; i < n_desired; i++) {
    const struct plan_input *d = &desired[i];
    const struct plan_input *l;
    struct plan_item *it = &p.items[p.n++];
    char *k;

    if (!d->kind || !d->name) {
      r = err_set(err, -EINVAL, "a desired object without kind or name");
      goto out;
    }
    k = plan_key(d->kind, d->namespace, d->name);
    l = strmap_get(&live_index, k);
    strmap_put(&desired_index, k, (void *)(uintptr_t)d);
    free(k);
    *it = (struct plan_item){.kind = d->kind, .api_version = d->api_version,
                             .namespace = d->namespace ? d->namespace : "", .name = d->name,
                             .rank = d->rank, .adopt = d->adopt, .desired = d->object};
    if (!l) {
      it->action = PLAN_CREATE;
      continue;
    }
    it->live = l->object;
    it->uid = uid_of(l->object);
    it->action = plan_object_in_sync(d->object, l->object, manager, &it->drift, &it->n_drift)
                     ? PLAN_UNCHANGED
                     : PLAN_UPDATE;
    kept++;
  }
  for (size_t i = 0; i < n_live; i++) {
    const struct plan_input *l = &live[i];
    char *k = plan_key(l->kind, l->namespace, l->name);
    const char *inv_uid = opts && opts->inventory ? strmap_get(opts->inventory, k) : NULL;
    bool desired_too = strmap_has(&desired_index, k);
    struct plan_item *it;

    free(k);
    if (desired_too)
      continue;
    it = &p.items[p.n++];
    *it = (struct plan_item){.kind = l->kind, .api_version = l->api_version,
                             .namespace = l->namespace ? l->namespace : "", .name = l->name,
                             .rank = l->rank, .live = l->object, .uid = uid_of(l->object)};
    /* only what egressd itself created here, and still the same object */
    if (inv_uid && it->uid && strcmp(inv_uid, it->uid) == 0) {
      it->action = PLAN_DELETE;
      n_delete++;
    } else {
      it->action = PLAN_ORPHAN;
    }
  }
  if (n_delete) {
    unsigned budget = opts ? opts->prune_budget : 0, allow = opts ? opts->prune_allowance : 0;
    if (kept == 0 && allow < n_delete) {
      p.prune_refused = true;
      str_format(p.prune_refused_why, sizeof(p.prune_refused_why),
                 "refusing to delete all %zu objects egressd manages on this cluster: the render "
                 "keeps none of them%s; if that is really meant, allow it with the commit "
                 "trailer 'Egressd-Allow-Prune: %zu'",
                 n_delete, n_desired == 0 ? " (it is empty)" : "", n_delete);
    } else if (n_delete > budget && allow < n_delete) {
      p.prune_refused = true;
      str_format(p.prune_refused_why, sizeof(p.prune_refused_why),
                 "refusing to delete %zu objects: more than the prune budget of %u; to allow it, "
                 "add the trailer 'Egressd-Allow-Prune: %zu' to the commit message",
                 n_delete, budget, n_delete);
    }
    if (p.prune_refused)
      for (size_t i = 0; i < p.n; i++)
        if (p.items[i].action == PLAN_DELETE)
          p.items[i].action = PLAN_HELD;
  }
  qsort(p.items, p.n, sizeof(*p.items), cmp_apply);
  for (size_t i = 0; i < p.n; i++)
    p.count[p.items[i].action]++;
  *ret = p;
  p.items = NULL;
  p.n = 0;
out:
  plan_dispose(&p);
  strmap_dispose(&live_index);
  strmap_dispose(&desired_index);
  return r;
}

void plan_dispose(struct plan *p) {
  if (!p)
    return;
  for (size_t i = 0; i < p->n; i++)
    plan_paths_free(p->items[i].drift, p->items[i].n_drift);
  free(p->items);
  memset(p, 0, sizeof(*p));
}
