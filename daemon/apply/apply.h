/* apply: reconcile one cluster with the config repo (layer 3).
 *
 * A job runs these phases on one cluster, asynchronously on the kube loop,
 * so that many clusters proceed at once from one thread and a slow or broken
 * one never holds up the others:
 *
 *   discover   API discovery (cached by the client), the Istio API version
 *              to render for, whether Service Mesh Manager is installed
 *   render     the repo for this cluster of the Fleet
 *   read       one LIST per managed kind, selected by egressd's labels
 *   plan       plan_build() against the cluster's inventory
 *   planned    the caller's hook (the ledger's apply-intent), before any write
 *   check      a GET for each object to create (one LIST of the kind when it
 *              has many), so an object of the same name that egressd did not
 *              make is never taken over unless the intent says adopt: true
 *   apply      server-side apply (fieldManager=egressd, force), kind by kind
 *              in dependency order, objects of a kind in parallel
 *   prune      DELETE with the recorded UID as precondition, in reverse order
 *   inventory  what egressd now manages here, saved atomically
 *   health     IstioMeshGateway status.Status Available (ReconcileFailed is a
 *              failure, with its ErrorMessage) and the gateway's Deployment
 *              rolled out, polled until healthy or the health timeout
 *
 * Failures of one object (a missing namespace, a 403, a 422, a kind the
 * cluster does not serve) are recorded on that object and the rest of the
 * plan goes on: the result is then "partial". Failures of the cluster
 * (unreachable, discovery, render) end the job as "failed". Nothing here
 * logs; the caller reports from the result.
 *
 * Fail fast: a pass with a failed write does not wait for health (the
 * gateways it could not write would never become healthy; the next pass
 * checks). A namespace found missing (404 `namespaces "x" not found`) is
 * named once in the result, and the later writes into it fail without a
 * request: egressd creates no namespaces.
 *
 * When you add a phase, also touch docs/reconcile.md and the sync/diff
 * commands' output.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/strmap.h"
#include "intent/intent.h"
#include "kube/kube.h"
#include "plan/plan.h"
#include "render/render.h"

enum apply_outcome {
  APPLY_OUTCOME_OK,
  APPLY_OUTCOME_PARTIAL,   /* some objects failed or were held back */
  APPLY_OUTCOME_FAILED,    /* the cluster could not be reconciled at all */
};

/* Where a job is, for progress reports (apply_job_progress()). */
enum apply_stage {
  APPLY_STAGE_DISCOVER,      /* discovery and render */
  APPLY_STAGE_READ,          /* the LISTs of the live objects */
  APPLY_STAGE_CHECK,         /* the look-alike check */
  APPLY_STAGE_APPLY,         /* creates and updates */
  APPLY_STAGE_GATE,          /* routes wait for the new gateways' health */
  APPLY_STAGE_PRUNE,         /* deletions */
  APPLY_STAGE_HEALTH,        /* waiting for the gateways' health */
  APPLY_STAGE_DONE,
};

enum apply_health {
  APPLY_HEALTH_UNKNOWN,    /* not checked (dry run, diff, no gateways) */
  APPLY_HEALTH_OK,
  APPLY_HEALTH_PROGRESSING,
  APPLY_HEALTH_FAILED,     /* ReconcileFailed */
  APPLY_HEALTH_TIMEOUT,
};

const char *apply_outcome_name(enum apply_outcome o);
const char *apply_health_name(enum apply_health h);

struct apply_object {
  const char *kind, *api_version, *namespace, *name;
  enum plan_action action;  /* as planned */
  bool conflict;            /* an object of that name exists and is not egressd's */
  bool done;                /* the write (or the decision not to write) is complete */
  bool sent;                /* its write was submitted (it may have reached the server) */
  int r;                    /* 0, or -errno when the write failed */
  char *error;              /* why it failed, one line; NULL when it did not */
  bool namespace_missing;   /* it failed because its namespace does not exist */
  char *resource_version;   /* after the write (or as read, when unchanged) */
  char *uid;
  /* of the object as the server last returned it (the write's answer, or
   * as read), when seen: metadata.generation (-1: none) and
   * apply_meta_digest() */
  bool seen;
  int64_t generation;
  uint64_t meta_digest;
};

struct apply_result {
  const char *cluster;
  enum apply_outcome outcome;
  struct err err;                       /* the cluster's failure (outcome FAILED) */
  enum kube_failure failure;            /* what kind of failure (unreachable or not) */
  char istio_api_version[16];           /* rendered for */
  size_t count[_PLAN_ACTION_MAX];       /* as planned */
  size_t created, updated, deleted;     /* writes that succeeded (dry run: accepted) */
  size_t applied;                       /* created + updated */
  size_t failed, conflicts;
  struct apply_object *objects;         /* plan order */
  size_t n_objects;
  bool prune_refused;
  char prune_refused_why[512];
  enum apply_health health;
  char health_message[512];
  /* "namespaces a, b do not exist; create them ...": one line for every
   * object with namespace_missing (callers prefix the cluster); "" when none */
  char missing_namespaces[1024];
  char manifests_digest[72];            /* "sha256:<hex>" of the desired manifests */
  uint64_t started_usec, finished_usec; /* monotonic */
};

enum {
  APPLY_DRY_RUN = 1 << 0,     /* plan, then server-side dry-run applies; no deletes, no inventory */
  APPLY_PLAN_ONLY = 1 << 1,   /* stop after the plan (egressd diff) */
  APPLY_NO_HEALTH = 1 << 2,   /* do not wait for health */
};

struct apply_job;

struct apply_request {
  const char *cluster;                          /* egressd's name for it */
  struct kube_client *client;                   /* borrowed; outlives the job */
  const struct intent_repo *repo;               /* borrowed; outlives the job */
  const struct intent_fleet_cluster *fleet_cluster;
  const char *istio_api_version;                /* NULL: from discovery */
  const char *inventory_path;                   /* NULL: no inventory, nothing is deleted */
  unsigned prune_budget, prune_allowance;
  unsigned flags;                               /* APPLY_* */
  unsigned max_parallel;                        /* writes in flight; 0: 8 */
  uint64_t health_timeout_usec;                 /* 0: 5 min */
  uint64_t health_interval_usec;                /* 0: 1 s */
  /* Called once the plan is known and before the first write; a negative
   * return aborts the job (outcome FAILED, nothing written). May be NULL. */
  int (*planned)(void *userdata, struct apply_job *job);
  /* Asked right before each write is sent: false (coordination's fence: the
   * cluster's lease is no longer held fresh) stops the job as
   * apply_job_stop() does, and apply_job_fenced() tells. May be NULL. */
  bool (*may_write)(void *userdata);
  /* Called once when the job has finished (any outcome). May be NULL. */
  void (*done)(void *userdata, struct apply_job *job);
  /* Called when the job enters a stage and as its writes complete (at most
   * once per batch of callbacks), for progress reports; it must not free the
   * job. May be NULL. */
  void (*progress)(void *userdata, struct apply_job *job);
  void *userdata;
};

/* Start reconciling one cluster. The job proceeds inside kube_loop_run_once()
 * of the client's loop; call apply_job_tick() at least once a second while it
 * runs (health polling and deadlines). Returns 0 or -errno (bad request). */
int apply_job_start(const struct apply_request *req, struct apply_job **ret, struct err *err);
/* Health polling and deadlines; @now is time_now_mono_usec(). */
void apply_job_tick(struct apply_job *job, uint64_t now);
bool apply_job_finished(const struct apply_job *job);
const struct apply_result *apply_job_result(const struct apply_job *job);
/* The plan (valid once the planned hook runs; empty before). */
const struct plan *apply_job_plan(const struct apply_job *job);
/* What the job is doing: its stage and the tallies of its writes. */
struct apply_progress {
  enum apply_stage stage;
  size_t apply_total, apply_done, apply_failed;    /* creates and updates */
  size_t delete_total, delete_done, delete_failed; /* deletions */
};
void apply_job_progress(const struct apply_job *job, struct apply_progress *p);
/* The stage alone, in O(1) (apply_job_progress() counts every object). */
enum apply_stage apply_job_stage(const struct apply_job *job);
/* Whether a write (apply or delete) is on the wire: false while the job
 * reads, waits for health, or retries a write after a backoff. What a stop
 * may cut at once (apply_job_free()) without losing a write in progress. */
bool apply_job_writing(const struct apply_job *job);
/* Start no new write (a daemon stop): the writes on the wire complete, then
 * the job idles, unfinished, with apply_job_writing() false, for the caller
 * to free. */
void apply_job_stop(struct apply_job *job);
/* Whether the may_write hook refused a write (the job then idles as after
 * apply_job_stop()). */
bool apply_job_fenced(const struct apply_job *job);
/* Stop what is in flight (no more callbacks) and free. NULL is fine. */
void apply_job_free(struct apply_job *job);

/* Run @jobs to completion on @loop (ticking them), for the CLI. 0, or
 * -ETIMEDOUT after @timeout_usec. */
int apply_jobs_wait(struct kube_loop *loop, struct apply_job **jobs, size_t n,
                    uint64_t timeout_usec);

/* The inventory of a cluster: "Kind/namespace/name" -> uid (malloc'd).
 * A missing file is an empty inventory. */
int apply_inventory_load(const char *path, struct strmap *ret, struct err *err);
void apply_inventory_dispose(struct strmap *inv);

/* The label selector of egressd's objects of Fleet @instance. */
char *apply_selector(const char *instance);

/* A digest of @obj's labels and annotations (never 0), to tell a change of
 * them from one of status or bookkeeping without keeping the object. */
uint64_t apply_meta_digest(const struct doc_node *obj);

/* Where kind @k lives on the cluster of @c, whose discovery is cached, for
 * networking.istio.io version @istio: the version egressd renders it at
 * (ref->version is a literal or @istio). -ENOENT (and @why) when the cluster
 * does not serve it. */
int apply_kind_ref(struct kube_client *c, enum render_kind k, const char *istio,
                   struct kube_ref *ref, struct err *why);
