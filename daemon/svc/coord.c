/* The coordinator: Leases in the coordination cluster; see coord.h for the
 * contract and docs/ha.md for the reasoning. */
#include "svc/coord.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "base/mem.h"
#include "base/str.h"
#include "base/timeutil.h"
#include "doc/doc.h"

#define LABEL_MANAGED "app.kubernetes.io/managed-by"
#define LABEL_ROLE "egressd.io/role"
#define LABEL_CLUSTER "egressd.io/cluster"
#define ANNOTATION_ROLLOUT "egressd.io/rollout"
#define SELECTOR LABEL_MANAGED "=egressd"
#define EVENTS_MAX 64

/* What is known of one Lease: as the last LIST or this member's last write
 * showed it. */
struct lease_seen {
  char name[COORD_NAME_MAX];
  char holder[64];
  char renew[40];             /* spec.renewTime as stored */
  char acquire[40];
  char rv[32];
  int64_t duration_sec;
  int64_t transitions;
  bool exists;
  uint64_t observed;          /* mono: when (holder, renewTime) last changed */
  char rollout[COORD_PUBLISH_MAX]; /* its egressd.io/rollout annotation */
};

/* A Lease this member may hold: its member Lease, a cluster's, the leader's. */
struct slot {
  struct coord *co;
  struct lease_seen l;
  const char *role;           /* "member", "cluster", "leader" */
  char *cluster;              /* cluster slots: the name (owned) */
  bool want;                  /* this member's by rendezvous (standby: everyone wants it) */
  bool held;
  uint64_t fresh_until;       /* mono: send time of the last success + renewDeadline */
  struct kube_op *op;
  struct doc_arena *arena;
  uint64_t sent;
  bool releasing;             /* the write in flight gives it up */
  char publish[COORD_PUBLISH_MAX]; /* what this member says of the cluster while it holds it */
  char wrote[40];             /* the renewTime of this member's last successful write */
};

struct coord {
  char identity[64];
  char *namespace;
  bool standby;
  uint64_t lease_usec, deadline_usec, retry_usec;
  struct kube_client *client;
  bool (*busy)(void *userdata, size_t i);
  void *userdata;

  struct slot member, leader;
  struct slot *clusters;
  size_t n_clusters;
  char (*assigned)[64];       /* per cluster: the rendezvous choice ("" when none) */

  struct lease_seen *seen;    /* every egressd Lease of the last LIST */
  size_t n_seen;
  struct kube_op *list_op;
  struct doc_arena *list_arena;
  unsigned inflight;          /* writes of this round */
  enum { R_IDLE, R_MEMBER, R_LIST, R_WRITES } phase;
  uint64_t next_round;
  uint64_t duplicate_until;   /* mono: another process renews this identity's member Lease */
  unsigned lists;             /* LISTs seen since start */
  unsigned long changes;      /* coord_changes(): a LIST, a write or an event */
  uint64_t next_expiry;       /* mono: the soonest another member's Lease runs out; 0: none */
  bool reachable;
  char last_error[300];

  struct coord_event events[EVENTS_MAX];
  size_t ev_head, ev_len;
};

static const struct kube_ref lease_ref_template = {"coordination.k8s.io", "v1", "leases", NULL};

static void push_event(struct coord *co, enum coord_action a, const struct slot *s,
                       const char *reason) {
  struct coord_event *ev;

  if (co->ev_len == EVENTS_MAX) { /* the oldest goes: the daemon reads every turn */
    co->ev_head = (co->ev_head + 1) % EVENTS_MAX;
    co->ev_len--;
  }
  co->changes++;
  ev = &co->events[(co->ev_head + co->ev_len++) % EVENTS_MAX];
  memset(ev, 0, sizeof(*ev));
  ev->action = a;
  ev->cluster = s->cluster ? (int)(s - co->clusters) : -1;
  str_copy(ev->lease, sizeof(ev->lease), s->l.name);
  str_copy(ev->reason, sizeof(ev->reason), reason ? reason : "");
}

const char *coord_action_name(enum coord_action a) {
  switch (a) {
  case COORD_ACQUIRED:
    return "acquired";
  case COORD_LOST:
    return "lost";
  case COORD_RELEASED:
    return "released";
  }
  return "?";
}

bool coord_next_event(struct coord *co, struct coord_event *ev) {
  if (!co || !co->ev_len)
    return false;
  *ev = co->events[co->ev_head];
  co->ev_head = (co->ev_head + 1) % EVENTS_MAX;
  co->ev_len--;
  return true;
}

/* ---- rendezvous ---- */

static uint64_t weight(const char *member, const char *cluster) {
  crypto_generichash_state st;
  uint8_t out[8];
  uint64_t w = 0;

  crypto_generichash_init(&st, NULL, 0, sizeof(out));
  crypto_generichash_update(&st, (const uint8_t *)member, strlen(member) + 1);
  crypto_generichash_update(&st, (const uint8_t *)cluster, strlen(cluster));
  crypto_generichash_final(&st, out, sizeof(out));
  for (size_t i = 0; i < sizeof(out); i++)
    w = w << 8 | out[i];
  return w;
}

int coord_rendezvous(const char *const *members, size_t n, const char *cluster) {
  int best = -1;
  uint64_t best_w = 0;

  for (size_t i = 0; i < n; i++) {
    uint64_t w = weight(members[i], cluster);
    if (best < 0 || w > best_w || (w == best_w && strcmp(members[i], members[best]) < 0)) {
      best = (int)i;
      best_w = w;
    }
  }
  return best;
}

/* ---- the Lease objects ---- */

/* @s, or "" for a field the object lacks */
static const char *or_empty(const char *s) { return s ? s : ""; }

static void set_str(struct doc_arena *a, struct doc_node *m, const char *k, const char *v) {
  doc_map_set(a, m, k, doc_new_str(a, v));
}

/* The whole Lease of @s as this member writes it: held by @holder ("" to
 * release), renewed now. */
static struct doc_node *lease_object(struct coord *co, struct slot *s, struct doc_arena *a,
                                     const char *holder) {
  struct doc_node *o = doc_new_map(a), *meta = doc_new_map(a), *labels = doc_new_map(a);
  struct doc_node *spec = doc_new_map(a);
  char now[40];
  bool taking = !str_eq(s->l.holder, holder) && holder[0];
  uint64_t t = time_now_real_usec();

  /* MicroTime: RFC 3339 with microseconds */
  {
    char sec[32];
    time_format_rfc3339(sec, sizeof(sec), t - t % USEC_PER_SEC);
    sec[strlen(sec) - 1] = '\0'; /* the Z */
    str_format(now, sizeof(now), "%s.%06lluZ", sec, (unsigned long long)(t % USEC_PER_SEC));
  }
  set_str(a, o, "apiVersion", "coordination.k8s.io/v1");
  set_str(a, o, "kind", "Lease");
  set_str(a, meta, "name", s->l.name);
  set_str(a, meta, "namespace", co->namespace);
  if (s->l.exists && s->l.rv[0])
    set_str(a, meta, "resourceVersion", s->l.rv);
  set_str(a, labels, LABEL_MANAGED, "egressd");
  set_str(a, labels, LABEL_ROLE, s->role);
  if (s->cluster)
    set_str(a, labels, LABEL_CLUSTER, s->cluster);
  doc_map_set(a, meta, "labels", labels);
  if (s->publish[0] && holder[0]) {
    struct doc_node *ann = doc_new_map(a);
    set_str(a, ann, ANNOTATION_ROLLOUT, s->publish);
    doc_map_set(a, meta, "annotations", ann);
  }
  doc_map_set(a, o, "metadata", meta);
  set_str(a, spec, "holderIdentity", holder);
  /* a released Lease says 1 s, as client-go's release does: others need not wait */
  doc_map_set(a, spec, "leaseDurationSeconds",
              doc_new_int(a, holder[0] ? (int64_t)(co->lease_usec / USEC_PER_SEC) : 1));
  set_str(a, spec, "acquireTime", taking || !s->l.acquire[0] ? now : s->l.acquire);
  set_str(a, spec, "renewTime", now);
  doc_map_set(a, spec, "leaseTransitions",
              doc_new_int(a, s->l.transitions + (taking && s->l.exists && s->l.holder[0] ? 1 : 0)));
  doc_map_set(a, o, "spec", spec);
  return o;
}

/* Fill @l from a Lease object; the observation time moves only when the
 * record changed. */
static void lease_read(struct lease_seen *l, const struct doc_node *o, uint64_t now) {
  const char *holder = or_empty(doc_path_str(o, "spec.holderIdentity"));
  const char *renew = or_empty(doc_path_str(o, "spec.renewTime"));
  const struct doc_node *spec = doc_map_get(o, "spec");
  const struct doc_node *v;

  if (!l->exists || !str_eq(l->holder, holder) || !str_eq(l->renew, renew))
    l->observed = now;
  l->exists = true;
  str_copy(l->holder, sizeof(l->holder), holder);
  str_copy(l->renew, sizeof(l->renew), renew);
  str_copy(l->acquire, sizeof(l->acquire), or_empty(doc_path_str(o, "spec.acquireTime")));
  str_copy(l->rv, sizeof(l->rv), or_empty(doc_path_str(o, "metadata.resourceVersion")));
  str_copy(l->rollout, sizeof(l->rollout),
           or_empty(doc_map_str(doc_path(o, "metadata.annotations"), ANNOTATION_ROLLOUT)));
  v = doc_map_get(spec, "leaseDurationSeconds");
  l->duration_sec = doc_is(v, DOC_INT) ? v->u.i : 0;
  v = doc_map_get(spec, "leaseTransitions");
  l->transitions = doc_is(v, DOC_INT) ? v->u.i : 0;
}

static bool expired(const struct lease_seen *l, uint64_t now) {
  return !l->holder[0] || now - l->observed >= (uint64_t)l->duration_sec * USEC_PER_SEC;
}

/* ---- one round ---- */

static void round_advance(struct coord *co);

static void lose(struct coord *co, struct slot *s, const char *why) {
  if (!s->held)
    return;
  s->held = false;
  s->fresh_until = 0;
  if (s != &co->member)
    push_event(co, COORD_LOST, s, why);
}

static void slot_done(struct slot *s) {
  struct coord *co = s->co;

  doc_arena_free(s->arena);
  s->arena = NULL;
  s->op = NULL;
  co->inflight--;
  if (!co->inflight)
    round_advance(co);
}

static void on_written(void *userdata, const struct kube_result *res) {
  struct slot *s = userdata;
  struct coord *co = s->co;
  uint64_t now = time_now_mono_usec();
  bool releasing = s->releasing;

  co->changes++;
  s->releasing = false;
  if (res->r == 0 && res->object) {
    bool had = s->held;
    lease_read(&s->l, res->object, now);
    str_copy(s->wrote, sizeof(s->wrote), s->l.renew);
    if (!releasing) {
      s->held = true;
      s->fresh_until = s->sent + co->deadline_usec;
      if (!had && s != &co->member)
        push_event(co, COORD_ACQUIRED, s, NULL);
    }
    co->reachable = true;
  } else if (res->r == -EBUSY || res->r == -EEXIST) {
    /* someone wrote it since the last look: the next LIST tells who */
    s->l.rv[0] = '\0';
    if (res->r == -EEXIST)
      s->l.exists = true;
  } else if (res->r == -ENOENT) {
    s->l.exists = false;
  } else {
    co->reachable = false;
    str_copy(co->last_error, sizeof(co->last_error), res->err.msg);
  }
  slot_done(s);
}

/* Write @s: acquire or renew for this member (@holder = identity), or
 * release (@holder = ""). */
static void slot_write(struct coord *co, struct slot *s, const char *holder) {
  struct kube_ref ref = lease_ref_template;
  struct doc_node *obj;
  struct err err = ERR_INIT;
  int r;

  if (s->l.exists && !s->l.rv[0])
    return; /* never a PUT without its precondition: the next LIST gives the version */
  ref.namespace = co->namespace;
  s->arena = doc_arena_new();
  obj = lease_object(co, s, s->arena, holder);
  s->releasing = !holder[0];
  s->sent = time_now_mono_usec();
  r = s->l.exists ? kube_client_update(co->client, &ref, obj, s->arena, on_written, s, &s->op, &err)
                  : kube_client_create(co->client, &ref, obj, s->arena, on_written, s, &s->op, &err);
  if (r < 0) {
    str_copy(co->last_error, sizeof(co->last_error), err.msg);
    doc_arena_free(s->arena);
    s->arena = NULL;
    s->releasing = false;
    return;
  }
  co->inflight++;
}

static struct lease_seen *seen_find(struct coord *co, const char *name) {
  for (size_t i = 0; i < co->n_seen; i++)
    if (str_eq(co->seen[i].name, name))
      return &co->seen[i];
  return NULL;
}

/* What the LIST says of a slot's Lease. Only a Lease whose record this
 * member did not write moves the observation of someone else's. */
static void slot_observe(struct coord *co, struct slot *s, uint64_t now) {
  const struct lease_seen *l = seen_find(co, s->l.name);

  if (s->op)
    return; /* a write of ours is in flight: its answer is newer */
  if (!l) {
    s->l.exists = false;
    s->l.holder[0] = s->l.rv[0] = '\0';
    lose(co, s, "its Lease was deleted");
    return;
  }
  if (!str_eq(l->holder, s->l.holder) || !str_eq(l->renew, s->l.renew) || !s->l.exists)
    s->l = *l; /* with the LIST's observation time */
  else
    str_copy(s->l.rv, sizeof(s->l.rv), l->rv);
  if (s->held && !str_eq(s->l.holder, co->identity)) {
    char why[200];
    str_format(why, sizeof(why), "%s holds it now", s->l.holder[0] ? s->l.holder : "nobody");
    lose(co, s, why);
  }
}

static void drive_all(struct coord *co, uint64_t now);

static void on_listed(void *userdata, const struct kube_result *res) {
  struct coord *co = userdata;
  uint64_t now = time_now_mono_usec();
  struct lease_seen *old = co->seen;
  size_t n_old = co->n_seen;

  co->list_op = NULL;
  co->changes++;
  if (res->r < 0 || !doc_is(res->object, DOC_SEQ)) {
    co->reachable = false;
    str_copy(co->last_error, sizeof(co->last_error),
             res->r < 0 ? res->err.msg : "the LIST of Leases did not answer a list");
    doc_arena_free(co->list_arena);
    co->list_arena = NULL;
    co->phase = R_IDLE;
    return;
  }
  co->reachable = true;
  co->last_error[0] = '\0';
  co->lists++;
  co->seen = xcalloc(res->object->u.seq.n + 1, sizeof(*co->seen));
  co->n_seen = 0;
  for (size_t i = 0; i < res->object->u.seq.n; i++) {
    const struct doc_node *o = res->object->u.seq.items[i];
    struct lease_seen *l = &co->seen[co->n_seen++];
    str_copy(l->name, sizeof(l->name), or_empty(doc_path_str(o, "metadata.name")));
    /* keep the observation time of a record seen before */
    for (size_t k = 0; k < n_old; k++)
      if (str_eq(old[k].name, l->name)) {
        *l = old[k];
        break;
      }
    lease_read(l, o, now);
  }
  free(old);
  doc_arena_free(co->list_arena);
  co->list_arena = NULL;
  co->phase = R_WRITES;
  drive_all(co, now);
  if (!co->inflight)
    co->phase = R_IDLE;
}

/* The live members: this one, and every member Lease whose record changed
 * less than its duration ago. */
static size_t live_members(const struct coord *co, const char **out, size_t max, uint64_t now) {
  size_t n = 0;

  out[n++] = co->identity;
  for (size_t i = 0; i < co->n_seen && n < max; i++) {
    const struct lease_seen *l = &co->seen[i];
    if (!str_has_prefix(l->name, "egressd-member-") || expired(l, now) ||
        str_eq(l->holder, co->identity))
      continue;
    out[n++] = l->holder;
  }
  return n;
}

/* Acquire, renew or release @s as this member wants. */
static void slot_drive(struct coord *co, struct slot *s, bool busy, uint64_t now) {
  if (s->op)
    return;
  if (s->want) {
    if (!s->l.exists || str_eq(s->l.holder, co->identity) || expired(&s->l, now))
      slot_write(co, s, co->identity);
  } else if (s->held || (s->l.exists && str_eq(s->l.holder, co->identity))) {
    if (busy)
      slot_write(co, s, co->identity); /* keep it until the work there stops */
    else {
      if (s->held) {
        s->held = false;
        s->fresh_until = 0;
        push_event(co, COORD_RELEASED, s, "rendezvous hashing gives the cluster to another member");
      }
      slot_write(co, s, "");
    }
  }
}

/* When the soonest Lease held by another member runs out, unless renewed:
 * a round then takes over without waiting for the next retryPeriod. */
static uint64_t soonest_expiry(const struct coord *co, uint64_t now) {
  uint64_t next = 0;

  for (size_t i = 0; i < co->n_seen; i++) {
    const struct lease_seen *l = &co->seen[i];
    uint64_t at = l->observed + (uint64_t)l->duration_sec * USEC_PER_SEC;
    if (!l->holder[0] || str_eq(l->holder, co->identity) || at <= now)
      continue;
    if (!next || at < next)
      next = at;
  }
  return next;
}

/* After the LIST: who is live, who gets which cluster, then the writes. */
static void drive_all(struct coord *co, uint64_t now) {
  const char **members = xcalloc(co->n_seen + 2, sizeof(*members));
  size_t n = live_members(co, members, co->n_seen + 1, now);

  co->next_expiry = soonest_expiry(co, now);
  for (size_t i = 0; i < co->n_clusters; i++) {
    int k = coord_rendezvous(members, n, co->clusters[i].cluster);
    str_copy(co->assigned[i], sizeof(co->assigned[i]), k >= 0 ? members[k] : "");
  }
  free(members);
  slot_observe(co, &co->member, now); /* its version, for the next renewal */
  /* Only this member writes its member Lease, and its write came before
   * this LIST: a newer renewTime under its name is another process with the
   * same identity, which would hold the same Leases. Write nowhere until it
   * has been gone for a while. */
  if (co->member.wrote[0] && str_eq(co->member.l.holder, co->identity) &&
      !str_eq(co->member.l.renew, co->member.wrote)) {
    co->duplicate_until = now + 2 * co->lease_usec;
    str_format(co->last_error, sizeof(co->last_error),
               "another process renews the member Lease %s: every member needs its own "
               "coordination.identity; writing nowhere meanwhile",
               co->member.l.name);
  }
  if (now < co->duplicate_until) {
    if (!co->last_error[0])
      str_format(co->last_error, sizeof(co->last_error),
                 "another process renewed the member Lease %s lately: every member needs its "
                 "own coordination.identity; writing nowhere meanwhile",
                 co->member.l.name);
    lose(co, &co->leader, "another process uses this member's identity");
    for (size_t i = 0; i < co->n_clusters; i++)
      lose(co, &co->clusters[i], "another process uses this member's identity");
    return;
  }
  if (co->standby) {
    /* everyone wants the leader Lease; its holder wants every cluster's */
    slot_observe(co, &co->leader, now);
    co->leader.want = true;
    slot_drive(co, &co->leader, false, now);
  }
  for (size_t i = 0; i < co->n_clusters; i++) {
    struct slot *s = &co->clusters[i];
    slot_observe(co, s, now);
    s->want = co->standby ? co->leader.held && now < co->leader.fresh_until
                          : str_eq(co->assigned[i], co->identity);
    /* members that start together see each other's member Leases in the
     * second LIST: taking (or giving up) clusters before would only hand
     * them on at once. A reload's new coordinator waits the same round. */
    if (co->lists >= 2)
      slot_drive(co, s, co->busy && co->busy(co->userdata, i), now);
  }
}

static void start_list(struct coord *co) {
  struct kube_ref ref = lease_ref_template;
  struct kube_list_options lo = {.label_selector = SELECTOR};
  struct err err = ERR_INIT;

  ref.namespace = co->namespace;
  co->list_arena = doc_arena_new();
  co->phase = R_LIST;
  if (kube_client_list(co->client, &ref, &lo, co->list_arena, on_listed, co, &co->list_op,
                       &err) < 0) {
    co->reachable = false;
    str_copy(co->last_error, sizeof(co->last_error), err.msg);
    doc_arena_free(co->list_arena);
    co->list_arena = NULL;
    co->phase = R_IDLE;
  }
}

/* The writes of a phase are done: on to the next. */
static void round_advance(struct coord *co) {
  if (co->phase == R_MEMBER)
    start_list(co);
  else if (co->phase == R_WRITES)
    co->phase = R_IDLE;
}

uint64_t coord_tick(struct coord *co, uint64_t now) {
  uint64_t next;

  /* the fence closes on time, whatever the network does */
  for (size_t i = 0; i < co->n_clusters; i++)
    if (co->clusters[i].held && now >= co->clusters[i].fresh_until)
      lose(co, &co->clusters[i], "not renewed within renewDeadline");
  if (co->leader.held && now >= co->leader.fresh_until)
    lose(co, &co->leader, "not renewed within renewDeadline");
  if (co->phase == R_IDLE && (now >= co->next_round ||
                              (co->next_expiry && now >= co->next_expiry))) {
    co->next_expiry = 0;
    /* client-go's JitterUntil: up to 20% later, so members drift apart */
    co->next_round = now + co->retry_usec + randombytes_uniform(
                                                (uint32_t)(co->retry_usec / 5 / 1000) + 1) * 1000ULL;
    co->phase = R_MEMBER;
    co->member.want = true;
    slot_drive(co, &co->member, false, now);
    if (!co->inflight)
      start_list(co);
  }
  next = co->next_round;
  if (co->next_expiry && co->next_expiry < next)
    next = co->next_expiry;
  for (size_t i = 0; i < co->n_clusters; i++)
    if (co->clusters[i].held && co->clusters[i].fresh_until < next)
      next = co->clusters[i].fresh_until;
  if (co->leader.held && co->leader.fresh_until < next)
    next = co->leader.fresh_until;
  return next;
}

static const struct slot *slot_of(const struct coord *co, size_t i) {
  return &co->clusters[i];
}

/* Standby: the cluster's Lease and the leader's, both fresh. */
bool coord_may_write(const struct coord *co, size_t i, uint64_t now) {
  const struct slot *s;

  if (!co || i >= co->n_clusters)
    return false;
  s = slot_of(co, i);
  if (co->standby && !(co->leader.held && now < co->leader.fresh_until))
    return false;
  return s->held && now < s->fresh_until;
}

bool coord_owns(const struct coord *co, size_t i, uint64_t now) {
  return coord_may_write(co, i, now) && slot_of(co, i)->want;
}

uint64_t coord_fence(const struct coord *co, size_t i) {
  const struct slot *s = slot_of(co, i);
  return s->held ? s->fresh_until : 0;
}

void coord_release_all(struct coord *co) {
  if (!co)
    return;
  co->phase = R_WRITES; /* no new round; the releases end this one */
  co->next_round = UINT64_MAX;
  if (co->list_op) {
    kube_op_cancel(co->list_op);
    co->list_op = NULL;
    doc_arena_free(co->list_arena);
    co->list_arena = NULL;
  }
  for (size_t i = 0; i < co->n_clusters + 2; i++) {
    struct slot *s = i < co->n_clusters ? &co->clusters[i]
                     : i == co->n_clusters ? &co->leader
                                           : &co->member;
    if (!s->l.exists || !str_eq(s->l.holder, co->identity))
      continue;
    if (s->op) {
      kube_op_cancel(s->op);
      slot_done(s);
    }
    if (s->held && s != &co->member)
      push_event(co, COORD_RELEASED, s, "egressd stopped");
    s->held = false;
    s->fresh_until = 0;
    slot_write(co, s, "");
  }
}

unsigned long coord_changes(const struct coord *co) { return co->changes; }

bool coord_pending(const struct coord *co) {
  return co && (co->inflight || co->list_op);
}

/* ---- status ---- */

const char *coord_identity(const struct coord *co) { return co->identity; }
bool coord_standby(const struct coord *co) { return co->standby; }

bool coord_reachable(const struct coord *co, const char **why) {
  if (why)
    *why = co->last_error;
  return co->reachable;
}

size_t coord_members(const struct coord *co, struct coord_member *out, size_t max, uint64_t now) {
  size_t n = 0;

  for (size_t i = 0; i < co->n_seen && n < max; i++) {
    const struct lease_seen *l = &co->seen[i];
    if (!str_has_prefix(l->name, "egressd-member-"))
      continue;
    str_copy(out[n].identity, sizeof(out[n].identity), l->name + strlen("egressd-member-"));
    out[n].live = !expired(l, now);
    out[n].age_usec = now - l->observed;
    n++;
  }
  return n;
}

const char *coord_holder(const struct coord *co, size_t i, uint64_t now, uint64_t *age_usec) {
  const struct slot *s = slot_of(co, i);
  if (age_usec)
    *age_usec = s->l.exists ? now - s->l.observed : 0;
  return s->l.exists && !expired(&s->l, now) ? s->l.holder : "";
}

void coord_publish(struct coord *co, size_t i, const char *value) {
  if (co && i < co->n_clusters)
    str_copy(co->clusters[i].publish, sizeof(co->clusters[i].publish), value);
}

void coord_publish_member(struct coord *co, const char *value) {
  str_copy(co->member.publish, sizeof(co->member.publish), value);
  co->next_round = 0; /* the others learn it in a round, not in a retryPeriod */
}

size_t coord_member_notes(const struct coord *co, const char **identity, const char **value,
                          size_t max) {
  size_t n = 0;

  for (size_t i = 0; i < co->n_seen && n < max; i++) {
    const struct lease_seen *l = &co->seen[i];
    if (!str_has_prefix(l->name, "egressd-member-") || !l->rollout[0])
      continue;
    identity[n] = l->name + strlen("egressd-member-");
    value[n++] = l->rollout;
  }
  return n;
}

const char *coord_published(const struct coord *co, size_t i) {
  const struct slot *s = &co->clusters[i];
  if (!s->l.exists || str_eq(s->l.holder, co->identity))
    return "";
  return s->l.rollout;
}

const char *coord_assigned(const struct coord *co, size_t i) {
  return co->standby ? (co->leader.l.exists && !expired(&co->leader.l, time_now_mono_usec())
                            ? co->leader.l.holder
                            : "")
                     : co->assigned[i];
}

/* ---- life ---- */

static void slot_init(struct coord *co, struct slot *s, const char *role, char *cluster,
                      const char *name) {
  s->co = co;
  s->role = role;
  s->cluster = cluster;
  str_copy(s->l.name, sizeof(s->l.name), name);
}

int coord_new(const struct coord_params *p, struct coord **ret, struct err *err) {
  const struct hostconfig *hc = p->hc;
  struct coord *co = xcalloc(1, sizeof(*co));
  struct kube_options ko;
  char name[COORD_NAME_MAX];
  int r;

  str_copy(co->identity, sizeof(co->identity), hc->coord.identity);
  co->namespace = xstrdup(hc->coord.namespace);
  co->standby = hc->coord.standby;
  co->lease_usec = hc->coord.lease_duration_usec;
  co->deadline_usec = hc->coord.renew_deadline_usec;
  co->retry_usec = hc->coord.retry_period_usec;
  co->busy = p->busy;
  co->userdata = p->userdata;
  kube_options_init(&ko);
  /* a request that takes longer than a retry period is of no use to the
   * fence; the next round is the retry */
  ko.request_timeout_usec = co->retry_usec;
  ko.connect_timeout_usec = co->retry_usec;
  ko.max_attempts = 1;
  ko.user_agent = p->user_agent;
  r = kube_client_new(p->loop, "coordination", hc->coord.kubeconfig, hc->coord.context, &ko,
                      &co->client, NULL, err);
  if (r < 0) {
    err_prefix(err, "coordination.kubeconfig");
    free(co->namespace);
    free(co);
    return r;
  }
  str_format(name, sizeof(name), "egressd-member-%s", co->identity);
  slot_init(co, &co->member, "member", NULL, name);
  slot_init(co, &co->leader, "leader", NULL, "egressd-leader");
  co->n_clusters = p->n_clusters;
  co->clusters = xcalloc(p->n_clusters + 1, sizeof(*co->clusters));
  co->assigned = xcalloc(p->n_clusters + 1, sizeof(*co->assigned));
  for (size_t i = 0; i < p->n_clusters; i++) {
    str_format(name, sizeof(name), "egressd-cluster-%s", p->clusters[i]);
    slot_init(co, &co->clusters[i], "cluster", xstrdup(p->clusters[i]), name);
  }
  *ret = co;
  return 0;
}

static void slot_free(struct slot *s) {
  if (s->op)
    kube_op_cancel(s->op);
  doc_arena_free(s->arena);
}

void coord_free(struct coord *co) {
  if (!co)
    return;
  if (co->list_op)
    kube_op_cancel(co->list_op);
  doc_arena_free(co->list_arena);
  slot_free(&co->member);
  slot_free(&co->leader);
  for (size_t i = 0; i < co->n_clusters; i++) {
    slot_free(&co->clusters[i]);
    free(co->clusters[i].cluster);
  }
  kube_client_free(co->client);
  free(co->clusters);
  free(co->assigned);
  free(co->seen);
  free(co->namespace);
  free(co);
}
