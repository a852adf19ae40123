/* egressd run: the daemon's main loop.
 *
 * One thread runs everything but Git: signals (signalfd), the control
 * socket, the kube loop of every cluster, timers, sd_notify. The Git worker
 * thread polls and loads commits and hands results over through an eventfd.
 * Every cluster is an independent apply job, so a slow or broken cluster
 * never stalls the others.
 *
 * The order of one iteration: signals, control requests, the Git result,
 * finished jobs, then (unless stopping or reloading) the next poll or load,
 * rollout starts, watch starts (daemon-watch.c: events bring drift checks
 * forward) and drift checks, then watchdog and publishing, then wait in
 * kube_loop_run_once() until the next deadline.
 *
 * Ledger discipline: an apply-intent is appended (and synced) before the
 * first write of a job that writes anything; its apply-result after. A job
 * cut short by a stop gets an "interrupted" result. A ledger that cannot be
 * appended to stops writes: the planned hook refuses the plan.
 *
 * When you change what the loop does, also touch docs/daemon.md and
 * tests/integration/test_daemon.py.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/timeutil.h"
#include "render/render.h"
#include "svc/notify.h"
#include "svc/svc-int.h"

#define STOP_GRACE_USEC (20 * USEC_PER_SEC)
#define PUBLISH_EVERY_USEC (5 * USEC_PER_SEC)   /* STATUS=, for its "checked ... ago" */
#define FILES_EVERY_USEC (30 * USEC_PER_SEC)    /* status.json and metrics, when nothing changed */

size_t svc_histogram_bucket(double seconds);

static struct log_ctx ctx_cluster(const char *cluster, const char *commit) {
  struct log_ctx c = {.cluster = cluster, .commit = commit && *commit ? commit : NULL};
  return c;
}

static uint64_t jitter(uint64_t interval) {
  /* +-10%, so many daemons do not poll one server in lockstep */
  uint64_t span = interval / 5;
  return interval - interval / 10 + (span ? randombytes_uniform((uint32_t)(span > UINT32_MAX ? UINT32_MAX : span)) : 0);
}

/* ---- repos ---- */

static struct svc_repo *repo_find(struct svc *d, const char *commit) {
  for (size_t i = 0; i < SVC_REPO_SLOTS; i++)
    if (d->repos[i].repo && strcmp(d->repos[i].commit, commit) == 0) {
      d->repos[i].used = time_now_mono_usec();
      return &d->repos[i];
    }
  return NULL;
}

static bool repo_needed(const struct svc *d, const char *commit) {
  if (strcmp(commit, d->target) == 0 || strcmp(commit, d->rollout.target) == 0)
    return true;
  for (size_t i = 0; i < d->rollout.n_clusters; i++)
    if (strcmp(fleet_cluster_commit(&d->rollout, i), commit) == 0)
      return true;
  return false;
}

/* Keep a loaded commit; evicts the least recently used one no job uses and no
 * cluster needs. Takes over res->repo. */
static struct svc_repo *repo_keep(struct svc *d, struct gitworker_result *res) {
  struct svc_repo *slot = NULL;

  if ((slot = repo_find(d, res->commit))) {
    intent_repo_free(res->repo);
    res->repo = NULL;
    return slot;
  }
  for (size_t i = 0; i < SVC_REPO_SLOTS && !slot; i++)
    if (!d->repos[i].repo)
      slot = &d->repos[i];
  for (size_t i = 0; i < SVC_REPO_SLOTS && !slot; i++)
    if (!d->repos[i].refs && !repo_needed(d, d->repos[i].commit))
      slot = &d->repos[i];
  for (size_t i = 0; i < SVC_REPO_SLOTS && !slot; i++)
    if (!d->repos[i].refs && (!slot || d->repos[i].used < slot->used))
      slot = &d->repos[i];
  if (!slot) {
    intent_repo_free(res->repo);
    res->repo = NULL;
    return NULL;
  }
  intent_repo_free(slot->repo);
  memset(slot, 0, sizeof(*slot));
  str_copy(slot->commit, sizeof(slot->commit), res->commit);
  str_copy(slot->tree, sizeof(slot->tree), res->tree);
  str_copy(slot->summary, sizeof(slot->summary), res->summary);
  str_copy(slot->principal, sizeof(slot->principal), res->principal);
  str_copy(slot->key, sizeof(slot->key), res->key);
  slot->verified = res->verified;
  slot->allow_prune_set = res->allow_prune_set;
  slot->allow_prune = res->allow_prune;
  slot->repo = res->repo;
  slot->used = time_now_mono_usec();
  res->repo = NULL;
  return slot;
}

/* ---- clusters ---- */

static struct svc_cluster *cluster_find(struct svc *d, const char *name) {
  for (size_t i = 0; i < d->n_clusters; i++)
    if (strcmp(d->clusters[i].name, name) == 0)
      return &d->clusters[i];
  return NULL;
}

static void clusters_free(struct svc *d) {
  for (size_t i = 0; i < d->n_clusters; i++) {
    apply_job_free(d->clusters[i].job);
    svc_watch_free(&d->clusters[i]);
    kube_client_free(d->clusters[i].client);
  }
  free(d->clusters);
  d->clusters = NULL;
  d->n_clusters = 0;
}

/* @msg without the "cluster NAME: " the kube module starts it with, for a
 * log line that names the cluster already. */
static const char *unprefixed(const char *msg, const char *name) {
  size_t n = strlen(name);
  if (str_has_prefix(msg, "cluster ") && strncmp(msg + 8, name, n) == 0 &&
      str_has_prefix(msg + 8 + n, ": "))
    return msg + 8 + n + 2;
  return msg;
}

static void clusters_setup(struct svc *d) {
  struct kube_options ko;

  kube_options_init(&ko);
  ko.request_timeout_usec = d->hc->sync.request_timeout_usec;
  if (d->hc->coord.enabled) {
    /* the API servers' logs show which member wrote */
    str_format(d->user_agent, sizeof(d->user_agent), "egressd/%s (%s)", EGRESSD_VERSION,
               d->hc->coord.identity);
    ko.user_agent = d->user_agent;
  }
  d->clusters = xcalloc(d->hc->n_clusters + 1, sizeof(*d->clusters));
  d->n_clusters = d->hc->n_clusters;
  for (size_t i = 0; i < d->hc->n_clusters; i++) {
    const struct hostconfig_cluster *h = &d->hc->clusters[i];
    struct svc_cluster *c = &d->clusters[i];
    struct log_ctx lc = ctx_cluster(h->name, NULL);

    str_copy(c->name, sizeof(c->name), h->name);
    str_copy(c->kubeconfig, sizeof(c->kubeconfig), h->kubeconfig);
    str_copy(c->context, sizeof(c->context), h->context ? h->context : "");
    str_format(c->inventory, sizeof(c->inventory), "%s/inventory/%s.json", d->hc->state_dir,
               h->name);
    str_copy(c->health, sizeof(c->health), "unknown");
    if (kube_client_new(d->loop, h->name, h->kubeconfig, h->context, &ko, &c->client, NULL,
                        &c->setup_err) < 0)
      log_ctx_emit(LOG_ERR, &lc, "cannot use kubeconfig '%s': %s; this cluster is skipped until "
                                 "the host config is fixed and reloaded",
                   h->kubeconfig, unprefixed(c->setup_err.msg, h->name));
    /* the first checks (and so the watches, which start after them) are
     * spread over a whole interval: a host of a thousand clusters does not
     * open a thousand TLS connections at once */
    c->next_drift = time_now_mono_usec() +
                    randombytes_uniform((uint32_t)(d->hc->sync.drift_interval_usec / 1000)) * 1000ULL;
  }
}

/* The names of the host's clusters that the Fleet of @repo lists. */
static size_t fleet_names(const struct svc *d, const struct intent_repo *repo, const char **out) {
  size_t n = 0;
  for (size_t i = 0; i < d->n_clusters; i++)
    if (intent_fleet_cluster_find(repo->fleet, d->clusters[i].name))
      out[n++] = d->clusters[i].name;
  return n;
}

/* ---- ledger records ---- */

static const char *action_name(enum plan_action a) {
  switch (a) {
  case PLAN_CREATE:
    return "create";
  case PLAN_UPDATE:
    return "update";
  case PLAN_DELETE:
    return "delete";
  default:
    return "unchanged";
  }
}

static bool writes_planned(const struct plan *p) {
  return p->count[PLAN_CREATE] || p->count[PLAN_UPDATE] || p->count[PLAN_DELETE];
}

struct job_ctx {
  struct svc *d;
  struct svc_cluster *c;
};

static void reopen_ledger(struct svc *d);

static int on_planned(void *userdata, struct apply_job *job) {
  struct job_ctx *jc = userdata;
  struct svc *d = jc->d;
  struct svc_cluster *c = jc->c;
  const struct plan *p = apply_job_plan(job);
  const struct apply_result *res = apply_job_result(job);
  const struct svc_repo *r = c->job_repo;
  struct doc_arena *a;
  struct ledger_object *objs;
  struct ledger_apply_intent in;
  struct err err = ERR_INIT;
  size_t n = 0;
  int rc;

  if (!writes_planned(p))
    return 0; /* nothing will be written: nothing to record */
  if (!d->ledger || ledger_broken(d->ledger))
    reopen_ledger(d);
  if (!d->ledger) {
    struct log_ctx lc = ctx_cluster(c->name, r->commit);
    log_ctx_emit(LOG_ERR, &lc, "the ledger is not open: refusing to write to the cluster");
    c->deferred = true;
    return -EIO;
  }
  a = doc_arena_new();
  objs = xcalloc(p->n + 1, sizeof(*objs));
  for (size_t i = 0; i < p->n; i++) {
    const struct plan_item *it = &p->items[i];
    if (it->action > PLAN_DELETE)
      continue;
    objs[n++] = (struct ledger_object){.api_version = it->api_version,
                                       .kind = it->kind,
                                       .namespace = it->namespace[0] ? it->namespace : NULL,
                                       .name = it->name,
                                       .action = action_name(it->action)};
  }
  in = (struct ledger_apply_intent){
      .cluster = c->name,
      .repo = d->hc->repo.url_shown,
      .ref = d->hc->repo.ref,
      .commit = r->commit,
      .tree = r->tree,
      .signer_principal = r->verified ? r->principal : NULL,
      .signer_key = r->verified ? r->key : NULL,
      .manifests_digest = res->manifests_digest,
      .actions = objs,
      .n_actions = n,
  };
  rc = ledger_append(d->ledger, LEDGER_TYPE_APPLY_INTENT, ledger_fields_apply_intent(a, &in),
                     &c->intent_index, &err);
  free(objs);
  doc_arena_free(a);
  if (rc < 0) {
    struct log_ctx lc = ctx_cluster(c->name, r->commit);
    log_ctx_emit(LOG_ERR, &lc, "cannot record the plan in the ledger, so nothing is written: %s; "
                 "retrying with backoff (not counted as the cluster's failure)", err.msg);
    c->deferred = true;
    return rc;
  }
  c->intent_open = true;
  return 0;
}

static void record_result(struct svc *d, struct svc_cluster *c, const struct apply_result *res,
                          const char *outcome) {
  struct doc_arena *a = doc_arena_new();
  struct ledger_object *objs = xcalloc(res->n_objects + 1, sizeof(*objs));
  struct ledger_object *pruned = xcalloc(res->n_objects + 1, sizeof(*pruned));
  struct ledger_object *drifted = xcalloc(res->n_objects + 1, sizeof(*drifted));
  const struct plan *p = apply_job_plan(c->job);
  struct ledger_apply_result lr;
  struct err err = ERR_INIT;
  size_t n = 0, np = 0, nd = 0;

  for (size_t i = 0; i < res->n_objects; i++) {
    const struct apply_object *o = &res->objects[i];
    const struct plan_item *it = &p->items[i];
    const char *oc = o->conflict ? "skipped" : o->r < 0 ? "failed" : o->done ? "ok" : "skipped";
    if (o->action > PLAN_DELETE || o->action == PLAN_UNCHANGED)
      continue;
    objs[n++] = (struct ledger_object){.api_version = o->api_version,
                                       .kind = o->kind,
                                       .namespace = o->namespace[0] ? o->namespace : NULL,
                                       .name = o->name,
                                       .action = action_name(o->action),
                                       .outcome = oc,
                                       .resource_version = o->resource_version,
                                       .uid = o->uid,
                                       .error = o->error};
    if (o->action == PLAN_DELETE)
      pruned[np++] = (struct ledger_object){.api_version = o->api_version,
                                            .kind = o->kind,
                                            .namespace = o->namespace[0] ? o->namespace : NULL,
                                            .name = o->name,
                                            .outcome = o->r < 0 ? "failed" : o->done ? "deleted"
                                                                                      : "skipped",
                                            .uid = it->uid,
                                            .error = o->error};
    if (c->job_kind == SVC_JOB_DRIFT && o->action == PLAN_UPDATE)
      drifted[nd++] = (struct ledger_object){.api_version = o->api_version,
                                             .kind = o->kind,
                                             .namespace = o->namespace[0] ? o->namespace : NULL,
                                             .name = o->name,
                                             .action = o->r < 0 ? "reported" : "reapplied",
                                             .change = "modified",
                                             .fields = (const char *const *)it->drift,
                                             .n_fields = it->n_drift};
    else if (c->job_kind == SVC_JOB_DRIFT && o->action == PLAN_CREATE)
      drifted[nd++] = (struct ledger_object){.api_version = o->api_version,
                                             .kind = o->kind,
                                             .namespace = o->namespace[0] ? o->namespace : NULL,
                                             .name = o->name,
                                             .action = o->r < 0 ? "reported" : "reapplied",
                                             .change = "deleted"};
  }
  lr = (struct ledger_apply_result){
      .intent = c->intent_index,
      .cluster = c->name,
      .outcome = outcome,
      .error = err_isset(&res->err)                     ? res->err.msg
               : res->health == APPLY_HEALTH_FAILED ||
                       res->health == APPLY_HEALTH_TIMEOUT ? res->health_message
               : res->prune_refused                      ? res->prune_refused_why
                                                         : NULL,
      .objects = objs,
      .n_objects = n,
  };
  if (ledger_append(d->ledger, LEDGER_TYPE_APPLY_RESULT, ledger_fields_apply_result(a, &lr), NULL,
                    &err) < 0) {
    struct log_ctx lc = ctx_cluster(c->name, c->job_repo ? c->job_repo->commit : NULL);
    log_ctx_emit(LOG_ERR, &lc, "cannot append the result to the ledger: %s", err.msg);
  }
  c->intent_open = false;
  if (nd) {
    struct ledger_change ch = {c->name, c->job_repo->commit, drifted, nd};
    err_clear(&err);
    if (ledger_append(d->ledger, LEDGER_TYPE_DRIFT, ledger_fields_drift(a, &ch), NULL, &err) < 0)
      log_error("cannot append a drift record to the ledger: %s", err.msg);
  }
  if (np) {
    struct ledger_change ch = {c->name, c->job_repo->commit, pruned, np};
    err_clear(&err);
    if (ledger_append(d->ledger, LEDGER_TYPE_PRUNE, ledger_fields_prune(a, &ch), NULL, &err) < 0)
      log_error("cannot append a prune record to the ledger: %s", err.msg);
  }
  free(objs);
  free(pruned);
  free(drifted);
  doc_arena_free(a);
}

/* ---- jobs ---- */

static struct job_ctx *job_ctxs; /* one per cluster, as the hook userdata */

/* The fence, asked before every write (coord.h). */
static bool may_write(void *userdata) {
  struct job_ctx *jc = userdata;
  return jc->d->coord &&
         coord_may_write(jc->d->coord, (size_t)(jc->c - jc->d->clusters), time_now_mono_usec());
}

bool svc_owned(const struct svc *d, const struct svc_cluster *c) {
  if (!d->hc->coord.enabled)
    return true;
  return d->coord && coord_owns(d->coord, (size_t)(c - d->clusters), time_now_mono_usec());
}

static int job_start(struct svc *d, struct svc_cluster *c, enum svc_job_kind kind,
                     struct svc_repo *r) {
  const struct intent_fleet_cluster *fc = intent_fleet_cluster_find(r->repo->fleet, c->name);
  struct apply_request req = {0};
  struct err err = ERR_INIT;
  size_t idx = (size_t)(c - d->clusters);
  int rc;

  if (!fc || !c->client)
    return -ENOENT;
  if (c->discovered && time_now_mono_usec() - c->discovered >= SVC_DISCOVERY_REFRESH_USEC) {
    kube_client_discovery_reset(c->client);
    c->discovered = 0;
  }
  job_ctxs[idx] = (struct job_ctx){d, c};
  req = (struct apply_request){
      .cluster = c->name,
      .client = c->client,
      .repo = r->repo,
      .fleet_cluster = fc,
      .istio_api_version = d->hc->istio_api_version,
      .inventory_path = c->inventory,
      .prune_budget = d->hc->sync.prune_budget,
      .prune_allowance = r->allow_prune_set ? r->allow_prune : 0,
      .health_timeout_usec = d->hc->sync.health_timeout_usec,
      .planned = on_planned,
      .may_write = d->hc->coord.enabled ? may_write : NULL,
      .userdata = &job_ctxs[idx],
  };
  c->job_repo = r;
  c->job_kind = kind;
  c->deferred = false;
  r->refs++;
  rc = apply_job_start(&req, &c->job, &err);
  if (rc < 0) {
    struct log_ctx lc = ctx_cluster(c->name, r->commit);
    r->refs--;
    c->job_repo = NULL;
    c->job_kind = SVC_JOB_NONE;
    log_ctx_emit(LOG_ERR, &lc, "cannot start a sync: %s", err.msg);
    return rc;
  }
  c->job_started = time_now_mono_usec();
  if (kind == SVC_JOB_ROLLOUT)
    d->dirty = true; /* a drift check shows when it ends, or at the next periodic publish */
  return 0;
}

static bool unreachable(const struct apply_result *res) {
  return res->outcome == APPLY_OUTCOME_FAILED &&
         (res->failure == KUBE_FAIL_CONNECT || res->failure == KUBE_FAIL_TIMEOUT ||
          res->failure == KUBE_FAIL_TRANSPORT);
}

static void job_finished(struct svc *d, struct svc_cluster *c) {
  const struct apply_result *res = apply_job_result(c->job);
  struct svc_repo *r = c->job_repo;
  struct log_ctx lc = ctx_cluster(c->name, r->commit);
  const char *outcome = apply_outcome_name(res->outcome);
  bool healthy = res->health == APPLY_HEALTH_OK || res->health == APPLY_HEALTH_UNKNOWN;
  bool wrote = res->applied || res->deleted;
  int fi = fleet_cluster_index(&d->rollout, c->name);
  char why[600] = "";
  uint64_t now_real = svc_rollout_now(d);
  double secs = (double)(res->finished_usec - res->started_usec) / (double)USEC_PER_SEC;

  if (c->intent_open)
    record_result(d, c, res, outcome);
  /* what the operator reads */
  for (size_t i = 0; i < res->n_objects; i++) {
    const struct apply_object *o = &res->objects[i];
    char obj[600];
    struct log_ctx olc = lc;
    str_format(obj, sizeof(obj), "%s %s/%s", o->kind, o->namespace, o->name);
    olc.object = obj;
    if (o->namespace_missing)
      continue; /* res->missing_namespaces says it once, as the why below */
    if (o->error)
      log_ctx_emit(o->conflict ? LOG_WARNING : LOG_ERR, &olc, "%s", o->error);
    else if (o->done && o->action == PLAN_UPDATE && c->job_kind == SVC_JOB_DRIFT) {
      const struct plan_item *it = &apply_job_plan(c->job)->items[i];
      struct buf paths = BUF_INIT;
      for (size_t k = 0; k < it->n_drift; k++)
        buf_printf(&paths, "%s%s", k ? ", " : "", it->drift[k]);
      log_ctx_emit(LOG_NOTICE, &olc, "drift corrected: %s changed out of band",
                   it->n_drift ? buf_cstr(&paths) : "the object");
      buf_dispose(&paths);
    } else if (o->done && o->action == PLAN_CREATE && c->job_kind == SVC_JOB_DRIFT) {
      log_ctx_emit(LOG_NOTICE, &olc, "drift corrected: re-created after it was deleted out of band");
    }
  }
  if (err_isset(&res->err))
    str_copy(why, sizeof(why), res->err.msg);
  else if (res->missing_namespaces[0])
    str_copy(why, sizeof(why), res->missing_namespaces);
  else if (!healthy)
    str_copy(why, sizeof(why), res->health_message);
  else if (res->prune_refused)
    str_copy(why, sizeof(why), res->prune_refused_why);
  else
    for (size_t i = 0; i < res->n_objects && !why[0]; i++)
      if (res->objects[i].error)
        str_format(why, sizeof(why), "%s %s/%s: %s", res->objects[i].kind,
                   res->objects[i].namespace, res->objects[i].name, res->objects[i].error);
  if (res->outcome == APPLY_OUTCOME_OK && healthy) {
    if (wrote || c->job_kind == SVC_JOB_ROLLOUT)
      log_ctx_emit(LOG_INFO, &lc,
                   "%s %.12s: %zu created, %zu updated, %zu deleted, %zu unchanged; %s (%.2fs)",
                   c->job_kind == SVC_JOB_ROLLOUT ? "applied" : "re-applied", r->commit,
                   res->created, res->updated, res->deleted, res->count[PLAN_UNCHANGED],
                   apply_health_name(res->health), secs);
    c->last_success = now_real;
  } else {
    log_ctx_emit(LOG_ERR, &lc, "sync of %.12s %s: %s", r->commit,
                 res->outcome == APPLY_OUTCOME_OK ? "unhealthy" : outcome, why);
  }
  c->last_sync = now_real;
  c->syncs++;
  if (res->outcome != APPLY_OUTCOME_OK || !healthy)
    c->failures++;
  if (wrote) {
    c->writes++;
    c->apply_seconds_sum += secs;
    c->apply_buckets[svc_histogram_bucket(secs)]++;
  }
  if (c->job_kind == SVC_JOB_DRIFT)
    c->drift_corrected += res->updated + res->created;
  if (res->outcome != APPLY_OUTCOME_OK) {
    kube_client_discovery_reset(c->client); /* what the cluster serves may have changed */
    c->discovered = 0;
  } else if (!c->discovered && kube_client_discovered(c->client)) {
    c->discovered = time_now_mono_usec();
  }
  str_copy(c->last_outcome, sizeof(c->last_outcome), healthy ? outcome : "failed");
  str_copy(c->health, sizeof(c->health), apply_health_name(res->health));
  str_copy(c->last_error, sizeof(c->last_error), why);
  str_copy(c->commit, sizeof(c->commit), r->commit);
  c->objects = res->count[PLAN_CREATE] + res->count[PLAN_UPDATE] + res->count[PLAN_UNCHANGED];

  /* the rollout */
  if (fi >= 0 && c->job_kind == SVC_JOB_ROLLOUT && strcmp(r->commit, d->rollout.target) == 0) {
    struct fleet_options fo = {.unreachable_timeout_usec = d->hc->sync.unreachable_timeout_usec};
    enum fleet_result fr = c->deferred                                    ? FLEET_RESULT_DEFERRED
                           : unreachable(res)                             ? FLEET_RESULT_UNREACHABLE
                           : res->outcome == APPLY_OUTCOME_OK && healthy ? FLEET_RESULT_OK
                                                                           : FLEET_RESULT_FAILED;
    enum fleet_state before = d->rollout.state;
    fleet_cluster_finished(&d->rollout, (size_t)fi, fr, why[0] ? why : NULL, &fo, now_real);
    if (d->rollout.state == FLEET_ROLLOUT_HALTED && before != FLEET_ROLLOUT_HALTED)
      log_ctx_emit(LOG_ERR, &lc, "rollout of %.12s halted: %s; later waves stay on their "
                                 "previous commit until a fix is committed or the rollout is "
                                 "resumed",
                   d->rollout.target, d->rollout.halt_reason);
  } else if (fi >= 0 && c->job_kind == SVC_JOB_DRIFT &&
             d->rollout.clusters[fi].phase == FLEET_BAKING && (wrote || !healthy ||
                                                                res->outcome != APPLY_OUTCOME_OK)) {
    fleet_cluster_bake_failed(&d->rollout, (size_t)fi,
                              wrote ? "drift had to be corrected" : why, now_real);
  }
  /* while the watches stream, events bring drift in and the check is a
   * rare safety net; they also start here, after the first sync */
  c->next_drift = time_now_mono_usec() +
                  jitter(svc_watch_up(c) && !(fi >= 0 && d->rollout.clusters[fi].phase == FLEET_BAKING)
                             ? d->hc->sync.resync_interval_usec
                             : d->hc->sync.drift_interval_usec);
  svc_watch_job_done(d, c, res, r->repo->fleet->name);
  apply_job_free(c->job);
  c->job = NULL;
  c->job_kind = SVC_JOB_NONE;
  r->refs--;
  c->job_repo = NULL;
  d->dirty = true;
}

/* A stop cut a job short: record what it did and drop it. A write in
 * flight may or may not have landed; the next start's drift check finds
 * out. */
static void job_interrupt(struct svc *d, struct svc_cluster *c, const char *why) {
  if (c->intent_open && d->ledger) {
    const struct apply_result *res = apply_job_result(c->job);
    struct doc_arena *a = doc_arena_new();
    struct ledger_object *objs = xcalloc(res->n_objects + 1, sizeof(*objs));
    char error[300], unfinished[300], unsent[300];
    struct ledger_apply_result lr = {.intent = c->intent_index,
                                     .cluster = c->name,
                                     .outcome = "interrupted",
                                     .error = error,
                                     .objects = objs};
    struct err err = ERR_INIT;
    str_format(error, sizeof(error), "%s before the sync finished", why);
    str_format(unfinished, sizeof(unfinished),
               "not finished when %s; the write may or may not have landed", why);
    str_format(unsent, sizeof(unsent), "not written: %s first", why);
    for (size_t i = 0; i < res->n_objects; i++) {
      const struct apply_object *o = &res->objects[i];
      if (o->action > PLAN_DELETE || o->action == PLAN_UNCHANGED)
        continue;
      objs[lr.n_objects++] = (struct ledger_object){
          .api_version = o->api_version,
          .kind = o->kind,
          .namespace = o->namespace[0] ? o->namespace : NULL,
          .name = o->name,
          .action = action_name(o->action),
          .outcome = !o->done ? "skipped" : o->r < 0 || o->conflict ? "failed" : "ok",
          .resource_version = o->resource_version,
          .uid = o->uid,
          .error = !o->done && o->sent ? unfinished : !o->done ? unsent : o->error};
    }
    if (ledger_append(d->ledger, LEDGER_TYPE_APPLY_RESULT, ledger_fields_apply_result(a, &lr),
                      NULL, &err) < 0)
      log_error("cannot record an interrupted sync in the ledger: %s", err.msg);
    free(objs);
    doc_arena_free(a);
    c->intent_open = false;
  }
  apply_job_free(c->job);
  c->job = NULL;
  if (c->job_repo)
    c->job_repo->refs--;
  c->job_repo = NULL;
  c->job_kind = SVC_JOB_NONE;
}

/* ---- the rollout and drift ---- */

static void start_rollout(struct svc *d, struct svc_repo *r) {
  const char **names = xcalloc(d->n_clusters + 1, sizeof(*names));
  size_t n = fleet_names(d, r->repo, names);
  struct log_ctx lc = ctx_cluster(NULL, r->commit);

  fleet_rollout_begin(&d->rollout, r->commit, r->repo->fleet, names, n, svc_rollout_now(d));
  for (size_t i = 0; i < d->n_clusters; i++)
    if (!intent_fleet_cluster_find(r->repo->fleet, d->clusters[i].name))
      log_ctx_emit(LOG_WARNING, &lc, "cluster %s is in the host config but not in the Fleet of "
                                     "%.12s; it is left alone",
                   d->clusters[i].name, r->commit);
  log_ctx_emit(LOG_NOTICE, &lc, "rolling out %.12s \"%s\"%s%s%s: %zu cluster%s in %zu wave%s",
               r->commit, r->summary, r->verified ? " (signed by " : "",
               r->verified ? r->principal : "", r->verified ? ")" : "", n, n == 1 ? "" : "s",
               d->rollout.n_waves, d->rollout.n_waves == 1 ? "" : "s");
  free(names);
  d->dirty = true;
}

static void drive_rollout(struct svc *d) {
  uint64_t now = svc_rollout_now(d);
  enum fleet_state before = d->rollout.state;
  unsigned wave_before = d->rollout.wave;
  size_t ready[64], n;
  struct svc_repo *r;

  if (d->rollout.state == FLEET_ROLLOUT_IDLE || !d->rollout.target[0])
    return;
  fleet_rollout_tick(&d->rollout, now);
  if (d->rollout.wave != wave_before || d->rollout.state != before) {
    struct log_ctx lc = ctx_cluster(NULL, d->rollout.target);
    if (d->rollout.state == FLEET_ROLLOUT_COMPLETE)
      log_ctx_emit(LOG_NOTICE, &lc, "rollout of %.12s complete", d->rollout.target);
    else if (d->rollout.wave != wave_before && d->rollout.wave < d->rollout.n_waves)
      log_ctx_emit(LOG_NOTICE, &lc, "rollout of %.12s: wave %s starts",
                   d->rollout.target, d->rollout.waves[d->rollout.wave].name);
    d->dirty = true;
  }
  r = repo_find(d, d->rollout.target);
  if (!r)
    return; /* loading */
  n = fleet_rollout_ready(&d->rollout, now, ready, sizeof(ready) / sizeof(ready[0]));
  for (size_t k = 0; k < n; k++) {
    struct svc_cluster *c = cluster_find(d, d->rollout.clusters[ready[k]].name);
    if (!c || c->job || !svc_owned(d, c))
      continue; /* another member's (coordination) */
    if (!c->client) {
      struct fleet_options fo = {.unreachable_timeout_usec = d->hc->sync.unreachable_timeout_usec};
      fleet_cluster_started(&d->rollout, ready[k], now);
      fleet_cluster_finished(&d->rollout, ready[k], FLEET_RESULT_FAILED, c->setup_err.msg, &fo,
                             now);
      continue;
    }
    if (job_start(d, c, SVC_JOB_ROLLOUT, r) == 0) {
      struct log_ctx lc = ctx_cluster(c->name, r->commit);
      fleet_cluster_started(&d->rollout, ready[k], now);
      log_ctx_emit(LOG_INFO, &lc, "applying %.12s (wave %s)", r->commit,
                   d->rollout.waves[d->rollout.clusters[ready[k]].wave].name);
    }
  }
}

static void drive_drift(struct svc *d) {
  uint64_t now = time_now_mono_usec();

  for (size_t i = 0; i < d->n_clusters; i++) {
    struct svc_cluster *c = &d->clusters[i];
    int fi = fleet_cluster_index(&d->rollout, c->name);
    const char *commit;
    struct svc_repo *r;

    if (c->job || !c->client || now < c->next_drift || fi < 0 || !svc_owned(d, c))
      continue;
    if (d->rollout.clusters[fi].phase == FLEET_PENDING ||
        d->rollout.clusters[fi].phase == FLEET_APPLYING ||
        d->rollout.clusters[fi].phase == FLEET_UNREACHABLE ||
        d->rollout.clusters[fi].phase == FLEET_DEFERRED) {
      /* not its turn yet: keep the commit it has, if any */
      commit = d->rollout.clusters[fi].applied;
    } else {
      commit = fleet_cluster_commit(&d->rollout, (size_t)fi);
    }
    if (!commit[0])
      continue;
    r = repo_find(d, commit);
    if (!r)
      continue; /* loading; loads are requested in drive_git */
    if (job_start(d, c, SVC_JOB_DRIFT, r) < 0)
      c->next_drift = now + jitter(d->hc->sync.drift_interval_usec); /* not before the next round */
  }
}

/* ---- coordination (coord.h, docs/ha.md) ---- */

static bool cluster_busy(void *userdata, size_t i) {
  const struct svc *d = userdata;
  return i < d->n_clusters && d->clusters[i].job;
}

static int coord_setup(struct svc *d, struct err *err) {
  const char **names;
  struct coord_params p;
  int r;

  if (!d->hc->coord.enabled)
    return 0;
  names = xcalloc(d->n_clusters + 1, sizeof(*names));
  for (size_t i = 0; i < d->n_clusters; i++)
    names[i] = d->clusters[i].name;
  p = (struct coord_params){d->hc, d->loop, names, d->n_clusters, d->user_agent, cluster_busy, d};
  r = coord_new(&p, &d->coord, err);
  free(names);
  return r;
}

/* A Lease won, lost or given up: the journal and the ledger say so. */
static void coord_event_report(struct svc *d, const struct coord_event *ev) {
  const char *cluster = ev->cluster >= 0 ? d->clusters[ev->cluster].name : NULL;
  struct log_ctx lc = ctx_cluster(cluster, NULL);
  struct ledger_lease_act act = {coord_action_name(ev->action), ev->lease,
                                 coord_identity(d->coord), cluster,
                                 ev->reason[0] ? ev->reason : NULL};
  struct doc_arena *a;
  struct err err = ERR_INIT;

  log_ctx_emit(ev->action == COORD_LOST ? LOG_WARNING : LOG_NOTICE, &lc, "%s %s Lease %s%s%s",
               coord_identity(d->coord), coord_action_name(ev->action), ev->lease,
               ev->reason[0] ? ": " : "", ev->reason);
  if (!d->ledger)
    return;
  a = doc_arena_new();
  if (ledger_append(d->ledger, LEDGER_TYPE_LEASE, ledger_fields_lease(a, &act), NULL, &err) < 0)
    log_error("cannot record a lease change in the ledger: %s", err.msg);
  doc_arena_free(a);
}

/* A job on a cluster this member no longer owns: dropped once none of its
 * writes is on the wire (the fence already stopped new ones); a rollout's
 * cluster goes back to be retried, by whoever owns it then. */
static void job_lost(struct svc *d, struct svc_cluster *c) {
  int fi = fleet_cluster_index(&d->rollout, c->name);
  bool rollout = c->job_kind == SVC_JOB_ROLLOUT && c->job_repo &&
                 str_eq(c->job_repo->commit, d->rollout.target);

  job_interrupt(d, c, "this member lost the cluster's Lease");
  if (fi >= 0 && rollout && d->rollout.clusters[fi].phase == FLEET_APPLYING) {
    struct fleet_options fo = {.unreachable_timeout_usec = d->hc->sync.unreachable_timeout_usec};
    fleet_cluster_finished(&d->rollout, (size_t)fi, FLEET_RESULT_DEFERRED,
                           "this member lost the cluster's Lease", &fo, svc_rollout_now(d));
  }
  d->dirty = true;
}

/* Sharded rollouts stay fleet-wide: each member publishes the rollout
 * phase of the clusters it owns on their Leases, and takes the others'
 * from theirs, so every member's waves wait for the whole fleet. */
static void share_rollout(struct svc *d) {
  uint64_t now = svc_rollout_now(d);

  if (!d->rollout.target[0])
    return;
  for (size_t i = 0; i < d->n_clusters; i++) {
    int fi = fleet_cluster_index(&d->rollout, d->clusters[i].name);
    const struct fleet_cluster *fc;
    char v[COORD_PUBLISH_MAX], target[41], phase[16], applied[41];
    int p;

    if (fi < 0)
      continue;
    fc = &d->rollout.clusters[fi];
    if (svc_owned(d, &d->clusters[i])) {
      str_format(v, sizeof(v), "target=%s phase=%s applied=%s", d->rollout.target,
                 fleet_phase_name(fc->phase), fc->applied[0] ? fc->applied : "-");
      coord_publish(d->coord, i, v);
    } else if (sscanf(coord_published(d->coord, i), "target=%40s phase=%15s applied=%40s", target,
                      phase, applied) == 3 &&
               (p = fleet_phase_from_name(phase)) >= 0) {
      enum fleet_phase before = fc->phase;
      fleet_cluster_observe(&d->rollout, (size_t)fi, target, (enum fleet_phase)p,
                            str_eq(applied, "-") ? NULL : applied, now);
      d->dirty |= before != d->rollout.clusters[fi].phase;
    }
  }
}

static int record_rollout(struct svc *d, const char *action, const char *actor,
                          struct err *err);

/* The newest pause or resume of this rollout that another member published
 * takes effect here too (and is recorded here, with who made it). */
static void adopt_acts(struct svc *d) {
  const char *who[64], *val[64], *best_who = NULL;
  size_t n = coord_member_notes(d->coord, who, val, 64);
  char best_act[16] = "", act[16], target[41], actor[100];
  unsigned long long best = 0, t;
  struct err err = ERR_INIT;

  for (size_t i = 0; i < n; i++)
    if (sscanf(val[i], "%15s %40s %llu", act, target, &t) == 3 &&
        str_eq(target, d->rollout.target) && t > d->coord_act_seen && t > best) {
      best = t;
      best_who = who[i];
      str_copy(best_act, sizeof(best_act), act);
    }
  if (!best)
    return;
  d->coord_act_seen = best;
  d->dirty = true;
  str_format(actor, sizeof(actor), "member %s", best_who);
  if (str_eq(best_act, "pause") && d->rollout.state == FLEET_ROLLOUT_RUNNING) {
    if (record_rollout(d, "pause", actor, &err) == 0)
      fleet_rollout_pause(&d->rollout);
  } else if (str_eq(best_act, "resume") && (d->rollout.state == FLEET_ROLLOUT_PAUSED ||
                                            d->rollout.state == FLEET_ROLLOUT_HALTED)) {
    if (record_rollout(d, "resume", actor, &err) == 0)
      fleet_rollout_resume(&d->rollout, svc_rollout_now(d));
  }
  if (err_isset(&err))
    log_error("rollout: %s of member %s not followed: %s", best_act, best_who, err.msg);
}

static void drive_coord(struct svc *d) {
  struct coord_event ev;
  uint64_t now = time_now_mono_usec();

  if (!d->coord)
    return;
  d->coord_next = coord_tick(d->coord, now);
  while (coord_next_event(d->coord, &ev)) {
    coord_event_report(d, &ev);
    for (size_t i = 0; ev.action == COORD_ACQUIRED && i < d->n_clusters; i++) {
      int fi = fleet_cluster_index(&d->rollout, d->clusters[i].name);
      if (ev.cluster < 0 || (size_t)ev.cluster != i)
        continue; /* standby's leader Lease: its clusters' Leases follow */
      /* a cluster just won is checked at once (its last owner may have
       * died mid-sync), and a rollout step it left unfinished starts over */
      d->clusters[i].next_drift = now;
      if (fi >= 0 && d->rollout.clusters[fi].phase != FLEET_DONE &&
          d->rollout.clusters[fi].phase != FLEET_FAILED &&
          d->rollout.clusters[fi].phase != FLEET_PENDING)
        fleet_cluster_observe(&d->rollout, (size_t)fi, d->rollout.target, FLEET_PENDING, NULL,
                              svc_rollout_now(d));
    }
    d->dirty = true;
  }
  /* The rest depends only on what the coordinator learnt (a fence that
   * closes is an event too), so not on every turn of the loop. What this
   * member publishes of its own clusters rides on the round after next,
   * as it did when this ran every turn: a round's writes follow its LIST. */
  if (coord_changes(d->coord) != d->coord_seen) {
    const char *why;
    uint64_t sig;
    d->coord_seen = coord_changes(d->coord);
    share_rollout(d);
    if (d->rollout.target[0])
      adopt_acts(d);
    /* what status shows: publish when ownership or reachability changed */
    sig = coord_reachable(d->coord, &why) ? 1 : 0;
    for (size_t i = 0; i < d->n_clusters; i++)
      sig = sig * 31 + coord_owns(d->coord, i, now) * 2 + (uint64_t)why[0];
    if (sig != d->coord_sig) {
      d->coord_sig = sig;
      d->dirty = true;
    }
  }
  for (size_t i = 0; i < d->n_clusters; i++) {
    struct svc_cluster *c = &d->clusters[i];
    if (svc_owned(d, c))
      continue;
    if (c->watch)
      svc_watch_free(c);
    if (c->job) {
      apply_job_stop(c->job);
      if (!apply_job_writing(c->job))
        job_lost(d, c);
    }
  }
}

/* A stop: every Lease held is given up, so that the other members take
 * over at once; the releases get a moment to go out. */
static void coord_stop(struct svc *d) {
  struct coord_event ev;

  if (!d->coord)
    return;
  coord_release_all(d->coord);
  {
    uint64_t deadline = time_now_mono_usec() + 2 * USEC_PER_SEC, now;
    while (coord_pending(d->coord) && (now = time_now_mono_usec()) < deadline)
      kube_loop_run_once(d->loop, deadline - now, NULL, 0);
  }
  while (coord_next_event(d->coord, &ev))
    coord_event_report(d, &ev);
  coord_free(d->coord);
  d->coord = NULL;
}

/* ---- Git ---- */

static struct svc_load_failure *load_failure(struct svc *d, const char *commit) {
  for (size_t i = 0; i < SVC_REPO_SLOTS; i++)
    if (strcmp(d->load_failed[i].commit, commit) == 0)
      return &d->load_failed[i];
  return NULL;
}

static void drive_git(struct svc *d) {
  uint64_t now = time_now_mono_usec();
  const char **use;
  size_t n;

  if (gitworker_busy(d->git))
    return;
  /* a commit some cluster needs but that is not loaded (after a restart);
   * one that failed to load is retried a minute later, and polls go on */
  use = xcalloc(d->rollout.n_clusters + 3, sizeof(*use));
  n = svc_commits_in_use(d, use);
  for (size_t i = 0; i < n; i++) {
    const struct svc_load_failure *f = load_failure(d, use[i]);
    if (repo_find(d, use[i]) || (f && now < f->retry_at))
      continue;
    if (gitworker_post(d->git, GITWORKER_LOAD, use[i], NULL, NULL) == 0) {
      free(use);
      return;
    }
  }
  free(use);
  if (now >= d->next_poll) {
    const char *known = d->rejected[0] ? d->rejected : d->target;
    gitworker_post(d->git, GITWORKER_POLL, known, d->target, svc_ledger_floor(d));
    d->next_poll = now + jitter(d->hc->repo.interval_usec);
  }
}

/* The LOAD of a commit in use: keep it, with who signed it as state.json
 * remembers, or note the failure so it is retried later. */
static void load_result(struct svc *d, struct gitworker_result *res) {
  struct log_ctx lc = ctx_cluster(NULL, res->commit);
  struct svc_load_failure *f = load_failure(d, res->commit);
  const struct svc_commit_meta *m = svc_meta_find(d, res->commit);

  if (res->r < 0) {
    if (!f) {
      f = &d->load_failed[0];
      for (size_t i = 1; i < SVC_REPO_SLOTS; i++)
        if (d->load_failed[i].retry_at < f->retry_at)
          f = &d->load_failed[i];
      str_copy(f->commit, sizeof(f->commit), res->commit);
    }
    f->retry_at = time_now_mono_usec() + SVC_LOAD_RETRY_USEC;
    log_ctx_emit(LOG_ERR, &lc, "cannot load commit %.12s from the local copy of the config repo: "
                               "%s; clusters that need it are not checked until it loads (retried "
                               "every minute)",
                 res->commit, res->err.msg);
    return;
  }
  if (f)
    memset(f, 0, sizeof(*f));
  if (m) {
    res->verified = m->verified;
    str_copy(res->principal, sizeof(res->principal), m->principal);
    str_copy(res->key, sizeof(res->key), m->key);
  }
  repo_keep(d, res);
  d->dirty = true;
}

static void git_result(struct svc *d) {
  struct gitworker_result res;
  struct log_ctx lc;

  if (!gitworker_take(d->git, &res))
    return;
  lc = ctx_cluster(NULL, res.commit);
  if (res.kind == GITWORKER_LOAD) {
    load_result(d, &res);
    gitworker_result_dispose(&res);
    return;
  }
  d->polls++;
  if (res.r < 0 && (str_eq(res.stage, "poll") || str_eq(res.stage, "fetch"))) {
    d->poll_failures++;
    if (strcmp(d->poll_error, res.err.msg) != 0)
      log_ctx_emit(LOG_WARNING, &lc, "cannot poll %s: %s; keeping %.12s in force",
                   d->hc->repo.url_shown, res.err.msg,
                   d->target[0] ? d->target : "nothing (no commit yet)");
    str_copy(d->poll_error, sizeof(d->poll_error), res.err.msg);
    d->dirty = true;
    gitworker_result_dispose(&res);
    return;
  }
  d->poll_error[0] = '\0';
  d->last_poll = time_now_real_usec();
  if (res.commit[0])
    str_copy(d->head, sizeof(d->head), res.commit);
  if (res.unchanged) {
    gitworker_result_dispose(&res);
    d->dirty = true;
    return;
  }
  if (res.r < 0) {
    char t[1200];
    d->commits_rejected++;
    str_copy(d->rejected, sizeof(d->rejected), res.commit);
    str_copy(d->rejected_stage, sizeof(d->rejected_stage), res.stage ? res.stage : "?");
    str_copy(d->rejected_error, sizeof(d->rejected_error), res.err.msg);
    diag_sort(&res.diags);
    for (size_t i = 0; i < res.diags.n; i++)
      log_ctx_emit(res.diags.items[i].severity == DIAG_ERROR ? LOG_ERR : LOG_WARNING, &lc, "%s",
                   diag_format(&res.diags.items[i], t, sizeof(t)));
    log_ctx_emit(LOG_ERR, &lc, "commit %.12s is not applied (%s failed): %s; %.12s stays in force",
                 res.commit, res.stage, res.err.msg, d->target[0] ? d->target : "nothing");
    d->dirty = true;
    gitworker_result_dispose(&res);
    return;
  }
  {
    char t[1200];
    for (size_t i = 0; i < res.diags.n; i++)
      log_ctx_emit(LOG_WARNING, &lc, "%s", diag_format(&res.diags.items[i], t, sizeof(t)));
  }
  d->rejected[0] = '\0';
  {
    struct svc_repo *r = repo_keep(d, &res);
    if (r) {
      str_copy(d->target, sizeof(d->target), r->commit);
      start_rollout(d, r);
    }
  }
  gitworker_result_dispose(&res);
}

/* ---- control socket ---- */

static int control_open(struct svc *d, struct err *err) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  char *path = path_join(d->hc->runtime_dir, SVC_CONTROL_SOCKET);
  int fd, rc = 0;

  if (strlen(path) >= sizeof(sa.sun_path)) {
    rc = err_set(err, -ENAMETOOLONG, "control socket path '%s' is too long", path);
    goto out;
  }
  str_copy(sa.sun_path, sizeof(sa.sun_path), path);
  unlink(path);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    rc = err_set_errno(err, -errno, "cannot create the control socket");
    goto out;
  }
  if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
      listen(fd, 4) < 0) {
    rc = err_set_errno(err, -errno, "cannot listen on %s", path);
    close(fd);
    goto out;
  }
  d->ctlfd = fd;
out:
  free(path);
  return rc;
}

/* Coordination: an operator's pause or resume, made on one member, goes to
 * all. It rides on this member's Lease as "<act> <target> <wall usec>"; each
 * member takes the newest act for its target (adopt_acts()). */
static void share_act(struct svc *d, const char *action) {
  char v[COORD_PUBLISH_MAX];

  if (!d->coord)
    return;
  d->coord_act_seen = time_now_real_usec();
  str_format(v, sizeof(v), "%s %s %llu", action, d->rollout.target,
             (unsigned long long)d->coord_act_seen);
  coord_publish_member(d->coord, v);
}

/* Every operator act on the rollout is a ledger record, written before the
 * act takes effect: no record, no act. */
static int record_rollout(struct svc *d, const char *action, const char *actor,
                          struct err *err) {
  struct doc_arena *a;
  struct ledger_rollout_act act;
  int rc;

  if (!d->ledger)
    return err_set(err, -EIO, "the ledger is not open");
  a = doc_arena_new();
  act = (struct ledger_rollout_act){action, d->rollout.target, fleet_state_name(d->rollout.state),
                                    actor[0] ? actor : NULL};
  rc = ledger_append(d->ledger, LEDGER_TYPE_ROLLOUT, ledger_fields_rollout(a, &act), NULL, err);
  doc_arena_free(a);
  if (rc < 0)
    err_prefix(err, "cannot record it in the ledger");
  else
    log_notice("rollout of %.12s: %s by %s", d->rollout.target, action,
               actor[0] ? actor : "an operator");
  return rc;
}

static int record_act(struct svc *d, const char *action, int fd, char *why, size_t why_size) {
  struct ucred cred;
  socklen_t len = sizeof(cred);
  char actor[64] = "";
  struct err err = ERR_INIT;
  int rc;

  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
    str_format(actor, sizeof(actor), "uid %u pid %d", (unsigned)cred.uid, (int)cred.pid);
  rc = record_rollout(d, action, actor, &err);
  if (rc < 0)
    str_copy(why, why_size, err.msg);
  return rc;
}

static void control_serve(struct svc *d) {
  int fd = accept4(d->ctlfd, NULL, NULL, SOCK_CLOEXEC);
  char line[128] = "", reply[700], why[600];
  struct pollfd p;
  ssize_t n;

  if (fd < 0)
    return;
  p = (struct pollfd){fd, POLLIN, 0};
  if (poll(&p, 1, 1000) <= 0 || (n = read(fd, line, sizeof(line) - 1)) <= 0) {
    close(fd);
    return;
  }
  line[n] = '\0';
  line[strcspn(line, "\r\n")] = '\0';
  if (str_eq(line, "pause")) {
    if (d->rollout.state != FLEET_ROLLOUT_RUNNING) {
      str_format(reply, sizeof(reply), "error: the rollout is %s, not running\n",
                 fleet_state_name(d->rollout.state));
    } else if (record_act(d, "pause", fd, why, sizeof(why)) < 0) {
      str_format(reply, sizeof(reply), "error: not paused: %s\n", why);
    } else {
      fleet_rollout_pause(&d->rollout);
      share_act(d, "pause");
      str_format(reply, sizeof(reply), "ok: rollout of %.12s paused%s\n", d->rollout.target,
                 d->coord ? " on every member" : "");
      d->dirty = true;
    }
  } else if (str_eq(line, "resume")) {
    if (d->rollout.state != FLEET_ROLLOUT_PAUSED && d->rollout.state != FLEET_ROLLOUT_HALTED) {
      str_format(reply, sizeof(reply), "error: the rollout is %s; only a paused or halted one "
                                       "resumes\n",
                 fleet_state_name(d->rollout.state));
    } else if (record_act(d, "resume", fd, why, sizeof(why)) < 0) {
      str_format(reply, sizeof(reply), "error: not resumed: %s\n", why);
    } else {
      bool halted = d->rollout.state == FLEET_ROLLOUT_HALTED;
      fleet_rollout_resume(&d->rollout, svc_rollout_now(d));
      share_act(d, "resume");
      str_format(reply, sizeof(reply), "ok: rollout of %.12s resumed%s\n", d->rollout.target,
                 halted ? " (its failed clusters are retried)" : "");
      d->dirty = true;
    }
  } else if (str_eq(line, "reload")) {
    d->reload_requested = true;
    str_format(reply, sizeof(reply), "ok: reloading %s\n", d->config_path);
  } else {
    str_format(reply, sizeof(reply), "error: unknown command '%.60s' (pause, resume, reload)\n",
               line);
  }
  if (fd_write_all(fd, reply, strlen(reply)) < 0) {
    /* the client went away */
  }
  close(fd);
}

int svc_control(const char *runtime_dir, const char *command, char *reply, size_t reply_size,
                struct err *err) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  char *path = path_join(runtime_dir, SVC_CONTROL_SOCKET);
  char msg[128];
  struct pollfd p;
  ssize_t n;
  int fd, rc = 0;

  reply[0] = '\0';
  str_copy(sa.sun_path, sizeof(sa.sun_path), path);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    rc = err_set_errno(err, -errno, "cannot reach the daemon at %s (is egressd run running?)",
                       path);
    goto out;
  }
  str_format(msg, sizeof(msg), "%s\n", command);
  if (fd_write_all(fd, msg, strlen(msg)) < 0) {
    rc = err_set_errno(err, -errno, "cannot talk to the daemon at %s", path);
    goto out;
  }
  p = (struct pollfd){fd, POLLIN, 0};
  if (poll(&p, 1, 10000) <= 0 || (n = read(fd, reply, reply_size - 1)) <= 0) {
    rc = err_set(err, -ETIMEDOUT, "the daemon at %s did not answer", path);
    goto out;
  }
  reply[n] = '\0';
  reply[strcspn(reply, "\n")] = '\0';
  if (!str_has_prefix(reply, "ok"))
    rc = -EPROTO;
out:
  if (fd >= 0)
    close(fd);
  free(path);
  return rc;
}

/* ---- publishing ---- */

static void publish(struct svc *d, bool force) {
  uint64_t now = time_now_mono_usec();
  char line[sizeof(d->status_line)];
  struct err err = ERR_INIT;

  if (!force && !d->dirty && now < d->next_publish)
    return;
  svc_status_line(d, line, sizeof(line));
  if (strcmp(line, d->status_line) != 0 || now - d->status_sent >= PUBLISH_EVERY_USEC) {
    str_copy(d->status_line, sizeof(d->status_line), line);
    notify_sendf("STATUS=%s", line);
    d->status_sent = now;
  }
  if (d->dirty && svc_state_save(d, &err) < 0)
    log_error("cannot save the daemon state: %s", err.msg);
  err_clear(&err);
  if (force || d->dirty || now >= d->next_files) {
    if (svc_status_write(d, &err) < 0)
      log_warning("cannot write the status file: %s", err.msg);
    err_clear(&err);
    if (svc_metrics_write(d, &err) < 0)
      log_warning("cannot write the metrics file: %s", err.msg);
    d->next_files = now + FILES_EVERY_USEC;
  }
  d->dirty = false;
  d->next_publish = now + PUBLISH_EVERY_USEC;
}

/* ---- start, reload, stop ---- */

static int open_ledger(struct svc *d, struct err *err) {
  struct ledger_open_opts lo = {.dir = d->hc->ledger_dir, .create = true,
                                .origin = d->hc->ledger_origin};
  struct ledger_recovery rec = {0};
  int rc;

  if ((rc = ledger_key_load(d->hc->ledger_key, &d->key, err)) < 0) {
    err_prefix(err, "cannot load the ledger signing key (make one with egressd keygen)");
    return rc;
  }
  lo.key = d->key;
  if ((rc = dir_make_all(d->hc->ledger_dir, 0700, err)) < 0)
    return rc;
  if ((rc = ledger_open(&lo, &d->ledger, &rec, err)) < 0)
    return rc;
  if (rec.created)
    log_notice("created the ledger in %s", d->hc->ledger_dir);
  if (rec.trimmed_bytes)
    log_warning("ledger: trimmed a torn tail of %llu bytes at offset %llu (beyond the signed "
                "checkpoint; a write cut short)",
                (unsigned long long)rec.trimmed_bytes, (unsigned long long)rec.trimmed_offset);
  if (rec.pending_installed)
    log_notice("ledger: record %llu was durable but not yet in the checkpoint; installed the "
               "checkpoint egressd signed for it", (unsigned long long)rec.signed_size);
  if (rec.quarantined)
    log_warning("ledger: record %llu was past the signed checkpoint and no signature of the "
                "ledger's key covers it, so egressd did not write it: moved to %s, not signed; "
                "find out who wrote it", (unsigned long long)rec.quarantined_index,
                rec.quarantine_path);
  for (size_t i = 0; i < rec.n_interrupted; i++) {
    struct log_ctx lc = ctx_cluster(rec.interrupted[i].cluster, NULL);
    log_ctx_emit(LOG_WARNING, &lc, "ledger: apply-intent #%llu had no result (egressd stopped "
                                   "during a sync); recorded as interrupted (#%llu)",
                 (unsigned long long)rec.interrupted[i].intent,
                 (unsigned long long)rec.interrupted[i].result);
  }
  log_info("ledger %s: %llu records", d->hc->ledger_dir, (unsigned long long)ledger_size(d->ledger));
  ledger_recovery_dispose(&rec);
  return 0;
}

/* After a write failure the ledger answers -EIO until it is opened again
 * (ledger_broken()); its recovery settles the tail. Done only when no sync
 * has a plan recorded without its result, which recovery would otherwise
 * close as interrupted while that sync still runs. On failure the ledger
 * stays closed, every plan is deferred, and the next plan tries again. */
static void reopen_ledger(struct svc *d) {
  struct err err = ERR_INIT;

  for (size_t i = 0; i < d->n_clusters; i++)
    if (d->clusters[i].intent_open)
      return;
  ledger_close(d->ledger);
  d->ledger = NULL;
  ledger_key_free(d->key);
  d->key = NULL;
  if (open_ledger(d, &err) < 0)
    log_error("cannot reopen the ledger after a write failure: %s; no cluster is written to "
              "until it opens", err.msg);
  else
    log_notice("reopened the ledger after a write failure");
}

/* Load the host config, logging each of its problems (file:line:col). */
static int hostconfig_read(const char *path, struct hostconfig **ret) {
  struct diag_list diags = {0};
  struct err err = ERR_INIT;
  int r = hostconfig_load(path, ret, &diags, &err);

  if (r < 0) {
    char t[1200];
    diag_sort(&diags);
    for (size_t i = 0; i < diags.n; i++)
      log_error("%s", diag_format(&diags.items[i], t, sizeof(t)));
    if (err_isset(&err))
      log_error("%s", err.msg);
  }
  diag_list_dispose(&diags);
  return r;
}

static bool str_same(const char *a, const char *b) {
  return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Whether the Git worker must restart to follow @hc: anything about the
 * repository or verification changed. */
static bool git_settings_changed(const struct hostconfig *a, const struct hostconfig *b) {
  return !str_same(a->repo.url, b->repo.url) || !str_same(a->repo.ref, b->repo.ref) ||
         a->repo.timeout_usec != b->repo.timeout_usec ||
         !str_same(a->repo.ssh_key, b->repo.ssh_key) ||
         !str_same(a->repo.known_hosts, b->repo.known_hosts) ||
         a->repo.insecure_skip_host_key_check != b->repo.insecure_skip_host_key_check ||
         !str_same(a->repo.token_file, b->repo.token_file) ||
         !str_same(a->repo.username, b->repo.username) ||
         !str_same(a->repo.password_file, b->repo.password_file) ||
         a->repo.allow_rewrite != b->repo.allow_rewrite ||
         a->repo.max_fetch_bytes != b->repo.max_fetch_bytes ||
         !str_same(a->verify.allowed_signers, b->verify.allowed_signers) ||
         !str_same(a->verify.revoked_keys, b->verify.revoked_keys) ||
         a->verify.policy != b->verify.policy;
}

/* What only a restart can change: the files the running daemon holds. */
static const char *needs_restart(const struct hostconfig *a, const struct hostconfig *b) {
  if (!str_same(a->state_dir, b->state_dir))
    return "state.dir";
  if (!str_same(a->runtime_dir, b->runtime_dir))
    return "state.runtimeDir";
  if (!str_same(a->ledger_dir, b->ledger_dir))
    return "ledger.dir";
  if (!str_same(a->ledger_key, b->ledger_key))
    return "ledger.key";
  if (!str_same(a->ledger_origin, b->ledger_origin))
    return "ledger.origin";
  /* the webhook's socket is bound (or passed by systemd) once */
  if (a->repo.webhook.enabled != b->repo.webhook.enabled)
    return "repository.webhook";
  if (!str_same(a->repo.webhook.listen, b->repo.webhook.listen))
    return "repository.webhook.listen";
  /* a member's identity and its Leases' terms are fixed for its life */
  if (a->coord.enabled != b->coord.enabled || !str_same(a->coord.kubeconfig, b->coord.kubeconfig) ||
      !str_same(a->coord.context, b->coord.context) ||
      !str_same(a->coord.namespace, b->coord.namespace) ||
      !str_same(a->coord.identity, b->coord.identity) || a->coord.standby != b->coord.standby ||
      a->coord.lease_duration_usec != b->coord.lease_duration_usec ||
      a->coord.renew_deadline_usec != b->coord.renew_deadline_usec ||
      a->coord.retry_period_usec != b->coord.retry_period_usec)
    return "coordination";
  return NULL;
}

/* A reloaded cluster keeps what status and metrics report about it when its
 * name and kubeconfig are the same (counters are monotonic). */
static void cluster_carry(struct svc_cluster *to, const struct svc_cluster *from) {
  to->last_sync = from->last_sync;
  to->last_success = from->last_success;
  memcpy(to->last_outcome, from->last_outcome, sizeof(to->last_outcome));
  memcpy(to->health, from->health, sizeof(to->health));
  memcpy(to->last_error, from->last_error, sizeof(to->last_error));
  memcpy(to->commit, from->commit, sizeof(to->commit));
  to->objects = from->objects;
  to->syncs = from->syncs;
  to->failures = from->failures;
  to->drift_corrected = from->drift_corrected;
  to->writes = from->writes;
  to->apply_seconds_sum = from->apply_seconds_sum;
  memcpy(to->apply_buckets, from->apply_buckets, sizeof(to->apply_buckets));
}

static void reload(struct svc *d) {
  struct hostconfig *hc = NULL;
  struct err err = ERR_INIT;
  struct svc_cluster *old;
  size_t n_old;
  const char *fixed;
  bool git_changed, same_clusters;

  notify_sendf("RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)time_now_mono_usec());
  if (hostconfig_read(d->config_path, &hc) < 0) {
    log_error("reload refused: %s is invalid; the running configuration stays", d->config_path);
    notify_send("READY=1");
    return;
  }
  if ((fixed = needs_restart(d->hc, hc))) {
    log_error("reload refused: %s changed in %s, which takes a restart (systemctl restart "
              "egressd); the running configuration stays",
              fixed, d->config_path);
    hostconfig_free(hc);
    notify_send("READY=1");
    return;
  }
  git_changed = git_settings_changed(d->hc, hc);
  if (git_changed) {
    struct gitworker *w = NULL;
    if (gitworker_start(hc, &w, &err) < 0) {
      log_error("reload refused: cannot restart the Git worker: %s; the running configuration "
                "stays",
                err.msg);
      hostconfig_free(hc);
      notify_send("READY=1");
      return;
    }
    gitworker_stop(d->git);
    d->git = w;
    /* a commit refused under the old settings is judged again under the new */
    d->rejected[0] = '\0';
    d->poll_error[0] = '\0';
    memset(d->load_failed, 0, sizeof(d->load_failed));
  }
  /* the reload is applied between jobs (the caller waits for them) */
  old = d->clusters;
  n_old = d->n_clusters;
  d->clusters = NULL;
  d->n_clusters = 0;
  free(job_ctxs);
  hostconfig_free(d->hc);
  d->hc = hc;
  job_ctxs = xcalloc(d->hc->n_clusters + 1, sizeof(*job_ctxs));
  clusters_setup(d);
  for (size_t i = 0; i < d->n_clusters; i++)
    for (size_t k = 0; k < n_old; k++)
      if (str_eq(d->clusters[i].name, old[k].name) &&
          str_eq(d->clusters[i].kubeconfig, old[k].kubeconfig))
        cluster_carry(&d->clusters[i], &old[k]);
  same_clusters = n_old == d->n_clusters;
  for (size_t k = 0; k < n_old; k++) {
    same_clusters = same_clusters && str_eq(old[k].name, d->clusters[k].name);
    apply_job_free(old[k].job);
    svc_watch_free(&old[k]);
    kube_client_free(old[k].client);
  }
  free(old);
  /* the same clusters: the coordinator and its Leases go on. Others: a new
   * coordinator, which takes back the Leases this member holds (their
   * holder is its identity) after its second LIST, writing nowhere until */
  if (!same_clusters || !d->coord) {
    coord_free(d->coord);
    d->coord = NULL;
    err_clear(&err);
    if (coord_setup(d, &err) < 0)
      log_error("coordination: %s; this member writes to no cluster until the host config is "
                "fixed and reloaded", err.msg);
  }
  /* ---- webhook: the followed ref and the secret, read again ---- */
  if (d->webhook) {
    struct buf secret = BUF_INIT;
    err_clear(&err);
    if (webhook_secret_load(d->hc->repo.webhook.secret_file, &secret, &err) == 0)
      webhook_server_update(d->webhook, d->hc->repo.ref, &secret); /* takes the secret */
    else
      log_error("webhook: %s; the previous secret stays", err.msg);
    buf_dispose_secret(&secret);
  }
  /* ---- end webhook ---- */
  log_set_max_level(d->hc->log_level);
  d->next_poll = 0;
  log_notice("reloaded %s: %zu cluster%s%s", d->config_path, d->n_clusters,
             d->n_clusters == 1 ? "" : "s",
             git_changed ? "; repository or verification settings changed, polling again" : "");
  d->dirty = true;
  notify_send("READY=1");
}

/* After a burst of syncs (a rollout, a resync of every cluster) glibc keeps
 * the freed heap for reuse, and an idle daemon would hold its peak as RSS;
 * once the last job ends it is given back. */
static void release_memory(void) {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

static bool any_job(const struct svc *d) {
  for (size_t i = 0; i < d->n_clusters; i++)
    if (d->clusters[i].job)
      return true;
  return false;
}

static int setup_signals(struct svc *d, struct err *err) {
  sigset_t mask;

  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
    return err_set_errno(err, -errno, "cannot block signals");
  signal(SIGPIPE, SIG_IGN);
  d->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (d->sigfd < 0)
    return err_set_errno(err, -errno, "cannot create a signalfd");
  return 0;
}

static void read_signals(struct svc *d) {
  struct signalfd_siginfo si;

  while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
    if (si.ssi_signo == SIGHUP) {
      d->reload_requested = true;
    } else if (!d->stopping) {
      d->stopping = true;
      d->stop_deadline = time_now_mono_usec() + STOP_GRACE_USEC;
      notify_send("STOPPING=1");
      d->dirty = true;
      for (size_t i = 0; i < d->n_clusters; i++)
        apply_job_stop(d->clusters[i].job);
      log_notice("stopping (signal %u): finishing the writes in flight", si.ssi_signo);
    }
  }
}

static uint64_t next_deadline(const struct svc *d) {
  uint64_t now = time_now_mono_usec(), next = now + USEC_PER_SEC;

  if (d->next_poll > now && d->next_poll < next)
    next = d->next_poll;
  if (svc_watch_next_start(d) < next)
    next = svc_watch_next_start(d) > now ? svc_watch_next_start(d) : now;
  for (size_t i = 0; i < d->n_clusters; i++) /* a drift check an event brought forward */
    if (!d->clusters[i].job && d->clusters[i].client && d->clusters[i].next_drift < next)
      next = d->clusters[i].next_drift > now ? d->clusters[i].next_drift : now;
  if (d->watchdog_usec && d->next_watchdog < next)
    next = d->next_watchdog > now ? d->next_watchdog : now;
  if (d->coord && d->coord_next < next)
    next = d->coord_next > now ? d->coord_next : now;
  return next > now ? next - now : 0;
}

int svc_run(const struct svc_run_options *opts) {
  struct svc dd = {0}, *d = &dd;
  struct err err = ERR_INIT;
  int rc = 1;

  d->opts = opts;
  d->sigfd = d->ctlfd = -1;
  d->config_path = xstrdup(opts->config_path ? opts->config_path : HOSTCONFIG_DEFAULT_PATH);
  d->started = time_now_real_usec();
  d->rollout_clock_real0 = d->started;
  d->rollout_clock_mono0 = time_now_mono_usec();
  log_open(LOG_TARGET_AUTO, NULL);
  if (sodium_init() < 0) {
    log_error("cannot initialise libsodium");
    goto out;
  }
  if (hostconfig_read(d->config_path, &d->hc) < 0) {
    log_error("not starting: the host config %s is invalid", d->config_path);
    notify_sendf("STATUS=not starting: the host config %s is invalid", d->config_path);
    goto out;
  }
  log_set_max_level(d->hc->log_level);
  if (dir_make_all(d->hc->state_dir, 0700, &err) < 0 ||
      dir_make_all(d->hc->runtime_dir, 0755, &err) < 0) {
    log_error("%s", err.msg);
    goto out;
  }
  if (open_ledger(d, &err) < 0) {
    char t[1600];
    log_error("not starting: %s", err_format(&err, t, sizeof(t)));
    notify_sendf("STATUS=not starting: ledger: %s", err.msg);
    goto out;
  }
  if (svc_state_load(d, &err) < 0) {
    log_error("not starting: %s", err.msg);
    goto out;
  }
  if (fleet_rollout_clamp_deadlines(&d->rollout, NULL, svc_rollout_now(d)) > 0)
    log_warning("state.json has bake or retry deadlines further ahead than they can be (the "
                "wall clock went back while egressd was stopped); they now end at most one "
                "bake or one retry from now");
  /* signals first: the threads started below inherit the blocked mask, so
   * SIGTERM reaches the signalfd and never kills the process from the Git
   * worker thread */
  if (setup_signals(d, &err) < 0 || kube_loop_new(&d->loop, &err) < 0 ||
      gitworker_start(d->hc, &d->git, &err) < 0 || control_open(d, &err) < 0) {
    log_error("not starting: %s", err.msg);
    goto out;
  }
  /* ---- webhook: the push doorbell (webhook.h); its thread inherits the
   * blocked signals ---- */
  if (d->hc->repo.webhook.enabled) {
    if (webhook_server_start(d->hc, &d->webhook, &err) < 0) {
      log_error("not starting: %s", err.msg);
      notify_sendf("STATUS=not starting: webhook: %s", err.msg);
      goto out;
    }
    log_notice("webhook: listening on %s%s for pushes to %s", webhook_server_address(d->webhook),
               webhook_server_activated(d->webhook) ? " (the socket systemd passed)" : "",
               d->hc->repo.ref);
  }
  /* ---- end webhook ---- */
  job_ctxs = xcalloc(d->hc->n_clusters + 1, sizeof(*job_ctxs));
  clusters_setup(d);
  if (coord_setup(d, &err) < 0) {
    log_error("not starting: %s", err.msg);
    notify_sendf("STATUS=not starting: %s", err.msg);
    goto out;
  }
  if (d->coord)
    log_notice("coordination: member %s, %s, Leases in namespace %s", d->hc->coord.identity,
               d->hc->coord.standby ? "standby (one active member)" : "sharded",
               d->hc->coord.namespace);
  d->watchdog_usec = notify_watchdog_usec();
  d->next_watchdog = time_now_mono_usec();
  d->ready = true;
  d->dirty = true;
  log_notice("egressd %s running: following %s (%s) every %llus, %zu cluster%s, commits "
             "verified: %s",
             EGRESSD_VERSION, d->hc->repo.url_shown, d->hc->repo.ref,
             (unsigned long long)(d->hc->repo.interval_usec / USEC_PER_SEC), d->n_clusters,
             d->n_clusters == 1 ? "" : "s", hostconfig_verify_name(d->hc->verify.policy));
  notify_send("READY=1");

  for (;;) {
    struct pollfd fds[4] = {{d->sigfd, POLLIN, 0}, {d->ctlfd, POLLIN, 0},
                            {gitworker_fd(d->git), POLLIN, 0},
                            {d->webhook ? webhook_server_fd(d->webhook) : -1, POLLIN, 0}};
    uint64_t now;
    bool finished;

    read_signals(d);
    if (d->ctlfd >= 0) {
      struct pollfd p = {d->ctlfd, POLLIN, 0};
      while (poll(&p, 1, 0) > 0 && (p.revents & POLLIN))
        control_serve(d);
    }
    git_result(d);
    /* ---- webhook: a doorbell polls at once; while a poll runs, the next
     * one follows it (next_poll in the past), since the push may have
     * landed after that poll read the remote's ref ---- */
    if (d->webhook) {
      bool changed = false;
      if (webhook_server_take(d->webhook, &changed))
        d->next_poll = 0; /* the poll's result publishes the counters too */
      else if (changed)
        d->dirty = true;  /* the counters in status.json and the metrics */
    }
    /* ---- end webhook ---- */
    finished = false;
    for (size_t i = 0; i < d->n_clusters; i++) {
      struct svc_cluster *c = &d->clusters[i];
      if (c->job) {
        apply_job_tick(c->job, time_now_mono_usec());
        if (apply_job_finished(c->job)) {
          job_finished(d, c);
          finished = true;
        }
      }
    }
    if (finished && !any_job(d))
      release_memory();
    if (!d->stopping)
      drive_coord(d); /* Leases are renewed, and fences close, while a reload waits too */
    now = time_now_mono_usec();
    if (d->stopping) {
      /* a job with no write on the wire (reading, waiting for health or at
       * the gate, a write sleeping before its retry) is cut now; one with
       * writes on the wire starts no more and is cut once they are answered
       * (within the grace time) */
      for (size_t i = 0; i < d->n_clusters; i++)
        if (d->clusters[i].job && !apply_job_writing(d->clusters[i].job))
          job_interrupt(d, &d->clusters[i], "egressd stopped");
      if (!any_job(d) || now >= d->stop_deadline)
        break;
    } else if (d->reload_requested && !any_job(d) && !gitworker_busy(d->git)) {
      d->reload_requested = false;
      reload(d);
    } else if (!d->reload_requested) {
      drive_git(d);
      drive_rollout(d);
      svc_watch_drive(d);
      drive_drift(d);
    }
    if (opts->once && d->rollout.target[0] && !any_job(d) &&
        (d->rollout.state == FLEET_ROLLOUT_COMPLETE || d->rollout.state == FLEET_ROLLOUT_HALTED))
      break;
    if (d->watchdog_usec && now >= d->next_watchdog) {
      notify_send("WATCHDOG=1");
      d->next_watchdog = now + d->watchdog_usec / 2;
    }
    publish(d, false);
    kube_loop_run_once(d->loop, next_deadline(d), fds, d->webhook ? 4 : 3);
  }
  /* stop: whatever did not finish in the grace time is recorded as interrupted */
  for (size_t i = 0; i < d->n_clusters; i++)
    if (d->clusters[i].job)
      job_interrupt(d, &d->clusters[i], "egressd stopped");
  coord_stop(d);
  d->stopped = true;
  d->dirty = true;
  publish(d, true);
  log_notice("stopped");
  rc = 0;
out:
  coord_free(d->coord);
  clusters_free(d);
  free(job_ctxs);
  job_ctxs = NULL;
  gitworker_stop(d->git);
  webhook_server_stop(d->webhook);
  for (size_t i = 0; i < SVC_REPO_SLOTS; i++)
    intent_repo_free(d->repos[i].repo);
  fleet_rollout_dispose(&d->rollout);
  free(d->meta);
  free(d->state_saved);
  kube_loop_free(d->loop);
  ledger_close(d->ledger);
  ledger_key_free(d->key);
  if (d->ctlfd >= 0) {
    char *path = path_join(d->hc->runtime_dir, SVC_CONTROL_SOCKET);
    close(d->ctlfd);
    unlink(path);
    free(path);
  }
  if (d->sigfd >= 0)
    close(d->sigfd);
  hostconfig_free(d->hc);
  free(d->config_path);
  return rc;
}
