/* Watches: the daemon learns of drift from the API servers' events instead
 * of waiting for the next periodic check.
 *
 * Per cluster, once a sync has gone through (discovery cached, the Fleet's
 * instance and the Istio version known), one WATCH per managed kind,
 * selected by egressd's labels, with bookmarks. The kube module resumes a
 * stream from the last resourceVersion, re-lists on 410 Gone and backs off
 * on failures (kube-watch.c). Starts are spread over up to START_SPREAD so
 * that a host with many clusters does not open every stream at once.
 *
 * Which events are drift. Per object egressd manages, it knows the
 * resourceVersion its last sync wrote or read, with the object's generation
 * and a digest of its labels and annotations at that version (from the
 * write's answer or the LIST; the object itself is not kept). An event at
 * the known version is the echo of egressd's own write. One at a new
 * version with the same generation and the same labels and annotations
 * changed only status or bookkeeping (the SMM operator's status, a
 * finalizer, managedFields): not drift. Anything else (a new
 * generation, other labels or annotations, a deletion, an object missing
 * from a re-list, a change egressd cannot judge yet) is drift, and the
 * cluster's drift check runs at once (so does a gateway whose status turns
 * ReconcileFailed, for the check's health gate): DEBOUNCE later, so a burst is taken
 * in one pass, and at most one event-triggered pass per MIN_GAP. Events
 * that arrive while a sync runs are held and judged when it ends, against
 * what it wrote. Objects egressd does not manage are not its business here;
 * the periodic check (orphans, look-alikes) still sees them.
 *
 * While every watch of a cluster streams, the periodic check runs every
 * sync.resyncInterval (a safety net); otherwise, and while the cluster
 * bakes (whose checks watch the gateways' Deployments too), every
 * sync.driftInterval.
 * A watch that gives up (a 403 for the watch verb, a server that keeps
 * failing) is started again after a backoff, up to RESTART_MAX.
 *
 * When you change what counts as drift, also touch docs/reconcile.md and
 * tests/integration/test_watch.py.
 */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/strmap.h"
#include "doc/doc.h"
#include "svc/svc-int.h"

#define DEBOUNCE_USEC (50 * 1000ULL)
#define MIN_GAP_USEC (USEC_PER_SEC)
#define START_SPREAD_MAX_USEC (10 * USEC_PER_SEC)
#define START_SPREAD_PER_CLUSTER_USEC (10 * 1000ULL)
#define RESTART_MIN_USEC (30 * USEC_PER_SEC)
#define RESTART_MAX_USEC (10 * 60 * USEC_PER_SEC)
#define HELD_MAX 1024 /* events held during a sync; beyond, one pass after it covers them */
#define WATCH_TIMEOUT_SEC 300


struct wkind {
  struct svc_watchset *ws;
  enum render_kind kind;
  struct kube_watch *w;
  bool listed;                /* its first list was judged */
};

struct svc_watchset {
  struct svc *d;
  struct svc_cluster *c;
  char *instance;
  char istio[16];
  struct wkind kinds[_RENDER_KIND_MAX];
  struct strmap known;        /* key -> struct svc_watch_known */
  struct svc_watch_seen *held; /* events during a sync */
  size_t n_held, cap_held;
  bool held_overflow;
  bool started;
  unsigned n_watches, n_listed; /* started, and delivered their first list */
  uint64_t resync_at;         /* mono: the last sync's end + resyncInterval (jittered) */
  uint64_t start_at;          /* mono: when to (re)start the watches; 0: never */
  uint64_t restart_delay;
  uint64_t last_trigger;      /* mono: the last event-triggered pass was due then */
  unsigned long events, drift_events;
  bool warned;
};

static void seen_dispose(struct svc_watch_seen *s) {
  free(s->key);
  s->key = NULL;
}

static void held_clear(struct svc_watchset *ws) {
  for (size_t i = 0; i < ws->n_held; i++)
    seen_dispose(&ws->held[i]);
  ws->n_held = 0;
  ws->held_overflow = false;
}

static void stop_watches(struct svc_watchset *ws) {
  for (size_t k = 0; k < _RENDER_KIND_MAX; k++) {
    kube_watch_stop(ws->kinds[k].w);
    ws->kinds[k].w = NULL;
    ws->kinds[k].listed = false;
  }
  ws->started = false;
  ws->n_watches = ws->n_listed = 0;
}

void svc_watch_free(struct svc_cluster *c) {
  struct svc_watchset *ws = c->watch;

  if (!ws)
    return;
  stop_watches(ws);
  held_clear(ws);
  free(ws->held);
  strmap_dispose_free(&ws->known);
  free(ws->instance);
  free(ws);
  c->watch = NULL;
}

static char *object_key(const char *kind, const char *ns, const char *name) {
  return xasprintf("%s/%s/%s", kind, ns ? ns : "", name);
}

static void seen_of(struct svc_watch_seen *s, enum render_kind kind, const struct doc_node *obj,
                    bool deleted) {
  const struct doc_node *gen = doc_path(obj, "metadata.generation");

  s->key = object_key(render_kind_info(kind)->kind, doc_path_str(obj, "metadata.namespace"),
                      doc_path_str(obj, "metadata.name"));
  str_copy(s->rv, sizeof(s->rv), doc_path_str(obj, "metadata.resourceVersion"));
  s->gen = doc_is(gen, DOC_INT) ? gen->u.i : -1;
  s->meta = apply_meta_digest(obj);
  s->deleted = deleted;
  s->failed = str_eq(doc_path_str(obj, "status.Status"), "ReconcileFailed");
}

bool svc_watch_judge(struct svc_watch_known *k, const struct svc_watch_seen *s, const char **why) {
  if (!k || k->gone)
    return false; /* not (or no longer) egressd's */
  if (s->deleted) {
    *why = "deleted";
    return true;
  }
  if (s->failed != k->failed) {
    k->failed = s->failed;
    if (s->failed) {
      *why = "reports ReconcileFailed";
      return true; /* not drift, but the check's health gate must see it */
    }
  }
  if (str_eq(k->rv, s->rv)) {
    k->gen = s->gen;
    k->meta = s->meta;
    k->judged = true;
    return false; /* the echo of what egressd wrote or read */
  }
  if (k->judged && k->gen == s->gen && k->meta == s->meta) {
    str_copy(k->rv, sizeof(k->rv), s->rv);
    return false; /* status or bookkeeping */
  }
  *why = !k->judged ? "changed" : k->gen != s->gen ? "its spec changed"
                                                   : "its labels or annotations changed";
  return true;
}

static bool judge(struct svc_watchset *ws, const struct svc_watch_seen *s, const char **why) {
  return svc_watch_judge(strmap_get(&ws->known, s->key), s, why);
}

/* Run the cluster's drift check soon. */
static void trigger(struct svc_watchset *ws, const char *key, const char *why) {
  struct svc_cluster *c = ws->c;
  uint64_t now = time_now_mono_usec(), due = now + DEBOUNCE_USEC;

  if (ws->last_trigger && due < ws->last_trigger + MIN_GAP_USEC)
    due = ws->last_trigger + MIN_GAP_USEC;
  ws->drift_events++;
  if (c->next_drift <= due)
    return; /* already due: this change is taken by that pass */
  c->next_drift = due;
  ws->last_trigger = due;
  log_debug("cluster %s: %s %s out of band; checking it now", c->name, key, why);
}

/* An event during a sync: judged when the sync ends. Takes @s. */
static void hold(struct svc_watchset *ws, struct svc_watch_seen *s) {
  if (ws->n_held < HELD_MAX) {
    ws->held = xgrow(ws->held, &ws->cap_held, ws->n_held + 1, sizeof(*ws->held));
    ws->held[ws->n_held++] = *s;
  } else {
    ws->held_overflow = true; /* a storm: one pass after the sync covers it */
    seen_dispose(s);
  }
}

static void restart_later(struct svc_watchset *ws) {
  uint64_t now = time_now_mono_usec();

  stop_watches(ws);
  ws->restart_delay = ws->restart_delay ? ws->restart_delay * 2 : RESTART_MIN_USEC;
  if (ws->restart_delay > RESTART_MAX_USEC)
    ws->restart_delay = RESTART_MAX_USEC;
  ws->start_at = now + ws->restart_delay;
  /* meanwhile the periodic check runs at driftInterval */
  if (ws->c->next_drift > now + ws->d->hc->sync.drift_interval_usec)
    ws->c->next_drift = now + ws->d->hc->sync.drift_interval_usec;
}

/* A re-list: every object of the kind; judge each, and those egressd knows
 * that are not there were deleted while no stream was open. */
static void on_relisted(struct svc_watchset *ws, enum render_kind kind,
                        const struct doc_node *items) {
  struct strmap present = {0};
  const char *kname = render_kind_info(kind)->kind, *why = NULL, *first = NULL;
  char *first_key = NULL;
  size_t kl = strlen(kname), it = 0;
  const char *key;
  void *val;

  for (size_t i = 0; doc_is(items, DOC_SEQ) && i < items->u.seq.n; i++) {
    struct svc_watch_seen s = {0};
    const char *w = NULL;
    seen_of(&s, kind, items->u.seq.items[i], false);
    strmap_put(&present, s.key, &present);
    if (ws->c->job) {
      hold(ws, &s);
      continue;
    }
    if (judge(ws, &s, &w) && !first_key) {
      first_key = xstrdup(s.key);
      first = w;
    }
    seen_dispose(&s);
  }
  while (strmap_next(&ws->known, &it, &key, &val)) {
    struct svc_watch_known *k = val;
    if (k->gone || strncmp(key, kname, kl) != 0 || key[kl] != '/' || strmap_has(&present, key))
      continue;
    if (ws->c->job) {
      struct svc_watch_seen s = {.key = xstrdup(key), .deleted = true};
      hold(ws, &s);
    } else if (!first_key) {
      first_key = xstrdup(key);
      why = "deleted";
    }
  }
  if (first_key)
    trigger(ws, first_key, first ? first : why);
  free(first_key);
  strmap_dispose(&present);
}

/* A stream delivered: a later failure backs off from the start and is
 * logged again. (Not on a re-list alone: credentials that may list but
 * not watch list, fail and back off longer each time.) */
static void stream_works(struct svc_watchset *ws) {
  ws->restart_delay = 0;
  ws->warned = false;
}

static void on_event(void *ud, const struct kube_watch_event *ev) {
  struct wkind *wk = ud;
  struct svc_watchset *ws = wk->ws;
  struct svc_watch_seen s = {0};
  const char *why = NULL;

  switch (ev->type) {
  case KUBE_WATCH_BOOKMARK:
    stream_works(ws);
    return;
  case KUBE_WATCH_RELISTED:
    on_relisted(ws, wk->kind, ev->object);
    if (!wk->listed) {
      wk->listed = true;
      ws->n_listed++;
    }
    ws->d->dirty = true; /* the stream opens next: status shows "watching" */
    return;
  case KUBE_WATCH_FAILED:
    if (!ws->warned)
      log_warning("cluster %s: cannot watch %s: %s; drift is checked every %llus until the "
                  "watches are up again (egressd needs the watch verb on the kinds it manages)",
                  ws->c->name, render_kind_info(wk->kind)->kind,
                  ev->err ? ev->err->msg : "the watch failed",
                  (unsigned long long)(ws->d->hc->sync.drift_interval_usec / USEC_PER_SEC));
    ws->warned = true;
    restart_later(ws); /* stops this watch too, which its own callback may do */
    ws->d->dirty = true;
    return;
  case KUBE_WATCH_ADDED:
  case KUBE_WATCH_MODIFIED:
  case KUBE_WATCH_DELETED:
    break;
  }
  ws->events++;
  stream_works(ws);
  seen_of(&s, wk->kind, ev->object, ev->type == KUBE_WATCH_DELETED);
  if (ws->c->job) {
    hold(ws, &s);
    return;
  }
  if (judge(ws, &s, &why))
    trigger(ws, s.key, why);
  seen_dispose(&s);
}

static void start_watches(struct svc_watchset *ws) {
  struct svc_cluster *c = ws->c;
  char *selector = apply_selector(ws->instance);
  /* 5 to 10 minutes per stream, as client-go's reflectors: the reconnects of
   * many clusters do not fall in step */
  struct kube_watch_options wo = {
      .label_selector = selector,
      .timeout_sec = WATCH_TIMEOUT_SEC + randombytes_uniform(WATCH_TIMEOUT_SEC)};

  ws->start_at = 0;
  ws->started = true;
  for (int k = 0; k < _RENDER_KIND_MAX; k++) {
    struct wkind *wk = &ws->kinds[k];
    struct kube_ref ref;
    struct err why = ERR_INIT, e = ERR_INIT;

    wk->ws = ws;
    wk->kind = (enum render_kind)k;
    if (apply_kind_ref(c->client, wk->kind, ws->istio, &ref, &why) < 0)
      continue; /* not served here: nothing of that kind to watch */
    ws->n_watches++;
    if (kube_client_watch(c->client, &ref, &wo, on_event, wk, &wk->w, &e) < 0) {
      log_warning("cluster %s: cannot watch %s: %s; drift is checked every %llus", c->name,
                  render_kind_info(wk->kind)->kind, e.msg,
                  (unsigned long long)(ws->d->hc->sync.drift_interval_usec / USEC_PER_SEC));
      restart_later(ws);
      break;
    }
  }
  free(selector);
}

/* What the sync wrote, read or deleted, then the events held meanwhile. */
void svc_watch_job_done(struct svc *d, struct svc_cluster *c, const struct apply_result *res,
                        const char *instance) {
  struct svc_watchset *ws = c->watch;
  const char *why = NULL, *first_key = NULL;
  char *drift_key = NULL;
  uint64_t resync_at;

  if (!d->hc->sync.watch || res->outcome == APPLY_OUTCOME_FAILED || !res->istio_api_version[0])
    goto held; /* no discovery: nothing to start watches from */
  {
    uint64_t resync = d->hc->sync.resync_interval_usec;
    resync_at = time_now_mono_usec() + resync - resync / 10 +
                randombytes_uniform((uint32_t)(resync / 5 / 1000 + 1)) * 1000ULL;
  }
  if (ws && (!str_eq(ws->instance, instance) || !str_eq(ws->istio, res->istio_api_version))) {
    svc_watch_free(c); /* another Fleet name or Istio version: other selectors and kinds */
    ws = NULL;
  }
  if (!ws) {
    uint64_t spread = d->n_clusters * START_SPREAD_PER_CLUSTER_USEC;
    ws = c->watch = xcalloc(1, sizeof(*ws));
    ws->d = d;
    ws->c = c;
    ws->instance = xstrdup(instance);
    str_copy(ws->istio, sizeof(ws->istio), res->istio_api_version);
    if (spread > START_SPREAD_MAX_USEC)
      spread = START_SPREAD_MAX_USEC;
    ws->start_at = time_now_mono_usec() +
                   (spread ? randombytes_uniform((uint32_t)(spread / 1000)) * 1000ULL : 0);
  }
  ws->resync_at = resync_at;
  for (size_t i = 0; i < res->n_objects; i++) {
    const struct apply_object *o = &res->objects[i];
    char *key;
    struct svc_watch_known *k;

    if (o->r < 0 || (!o->resource_version && o->action != PLAN_DELETE))
      continue; /* failed: what is there is unknown, the next pass finds out */
    key = object_key(o->kind, o->namespace, o->name);
    k = strmap_get(&ws->known, key);
    if (!k) {
      k = xcalloc(1, sizeof(*k));
      strmap_put(&ws->known, key, k);
    }
    free(key);
    if (o->action == PLAN_DELETE) {
      k->gone = o->done;
      continue;
    }
    k->gone = false;
    str_copy(k->rv, sizeof(k->rv), o->resource_version);
    k->gen = o->generation;
    k->meta = o->meta_digest;
    k->judged = o->seen;
  }
held:
  if (!ws)
    return;
  for (size_t i = 0; i < ws->n_held; i++) {
    const char *w = NULL;
    if (judge(ws, &ws->held[i], &w) && !first_key) {
      first_key = ws->held[i].key;
      why = w;
    }
  }
  if (ws->held_overflow && !first_key) {
    first_key = "(a storm of events)";
    why = "may have changed";
  }
  if (first_key) {
    drift_key = xstrdup(first_key);
    trigger(ws, drift_key, why);
    free(drift_key);
  }
  held_clear(ws);
}

bool svc_watch_up(const struct svc_cluster *c) {
  const struct svc_watchset *ws = c->watch;
  bool any = false;

  if (!ws || !ws->started)
    return false;
  for (size_t k = 0; k < _RENDER_KIND_MAX; k++) {
    if (!ws->kinds[k].w)
      continue;
    if (kube_watch_state(ws->kinds[k].w, NULL) != KUBE_WATCH_STATE_WATCHING)
      return false;
    any = true;
  }
  return any;
}

void svc_watch_drive(struct svc *d) {
  uint64_t now = time_now_mono_usec();

  for (size_t i = 0; i < d->n_clusters; i++) {
    struct svc_cluster *c = &d->clusters[i];
    struct svc_watchset *ws = c->watch;
    int fi;

    if (!ws)
      continue;
    if (!ws->started && ws->start_at && now >= ws->start_at && c->client) {
      start_watches(ws);
      d->dirty = true;
    }
    /* Once every watch has judged its first list against what the last
     * sync left, events bring drift in, and the periodic check waits a
     * resyncInterval from that sync instead of the driftInterval it was
     * set to while nothing was watched. Not while the cluster bakes (its
     * checks also watch the gateways' Deployments), and not a check due
     * within a trigger's delay: one an event brought forward. */
    if (!ws->started || !ws->n_watches || ws->n_listed < ws->n_watches || c->job ||
        c->next_drift >= ws->resync_at || c->next_drift <= now + DEBOUNCE_USEC + MIN_GAP_USEC ||
        !svc_watch_up(c))
      continue;
    fi = fleet_cluster_index(&d->rollout, c->name);
    if (fi >= 0 && d->rollout.clusters[fi].phase == FLEET_BAKING)
      continue;
    c->next_drift = ws->resync_at;
  }
}

uint64_t svc_watch_next_start(const struct svc *d) {
  uint64_t next = UINT64_MAX;

  for (size_t i = 0; i < d->n_clusters; i++) {
    const struct svc_watchset *ws = d->clusters[i].watch;
    if (ws && !ws->started && ws->start_at && ws->start_at < next)
      next = ws->start_at;
  }
  return next;
}

/* Worse states rank higher. */
static int state_rank(enum kube_watch_state s) {
  switch (s) {
  case KUBE_WATCH_STATE_WATCHING:
    return 0;
  case KUBE_WATCH_STATE_LISTING:
    return 1;
  case KUBE_WATCH_STATE_BACKOFF:
    return 2;
  case KUBE_WATCH_STATE_FAILED:
    return 3;
  }
  return 3;
}

const char *svc_watch_state(const struct svc_cluster *c, uint64_t *since) {
  const struct svc_watchset *ws = c->watch;
  enum kube_watch_state worst = KUBE_WATCH_STATE_WATCHING;
  uint64_t when = 0;
  bool any = false;

  *since = 0;
  if (!ws)
    return "off";
  if (!ws->started)
    return ws->restart_delay ? "backing off" : "starting";
  for (size_t k = 0; k < _RENDER_KIND_MAX; k++) {
    uint64_t t;
    enum kube_watch_state s;
    if (!ws->kinds[k].w)
      continue;
    s = kube_watch_state(ws->kinds[k].w, &t);
    /* the worst state, and since when the cluster has been in it */
    if (!any || state_rank(s) > state_rank(worst) || (s == worst && t > when)) {
      worst = s;
      when = t;
    }
    any = true;
  }
  if (!any)
    return "off";
  *since = when;
  return worst == KUBE_WATCH_STATE_LISTING ? "resyncing" : kube_watch_state_name(worst);
}

unsigned long svc_watch_events(const struct svc_cluster *c) {
  return c->watch ? c->watch->events : 0;
}

unsigned long svc_watch_drift_events(const struct svc_cluster *c) {
  return c->watch ? c->watch->drift_events : 0;
}
