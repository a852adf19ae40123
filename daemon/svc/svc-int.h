/* Private to daemon/svc/: the daemon's state, shared by daemon.c (the loop),
 * daemon-state.c (what survives a restart) and daemon-status.c (what it
 * publishes). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "apply/apply.h"
#include "base/timeutil.h"
#include "fleet/fleet.h"
#include "intent/intent.h"
#include "kube/kube.h"
#include "ledger/ledger.h"
#include "svc/coord.h"
#include "svc/gitworker.h"
#include "svc/hostconfig.h"
#include "svc/svc.h"
#include "svc/webhook.h"

#define SVC_REPO_SLOTS 8
#define SVC_HISTOGRAM_BUCKETS 10

/* A loaded commit of the config repo. */
struct svc_repo {
  char commit[41], tree[41];
  char summary[256];
  char principal[256], key[64];
  bool verified;
  bool allow_prune_set;
  unsigned allow_prune;
  struct intent_repo *repo;   /* NULL: free slot */
  unsigned refs;              /* jobs using it */
  uint64_t used;              /* for eviction */
};

/* What is known of a commit in use before it is loaded again after a
 * restart: loading reads the tree, but the signature was checked when the
 * commit was first fetched, and who signed it is kept in state.json. */
struct svc_commit_meta {
  char commit[41];
  char summary[256];
  char principal[256], key[64];
  bool verified;
};

/* A commit that could not be loaded from the local copy: retried later, not
 * on every turn of the loop. */
struct svc_load_failure {
  char commit[41];
  uint64_t retry_at;          /* mono */
};

#define SVC_LOAD_RETRY_USEC (60 * USEC_PER_SEC)
/* API discovery is cached per cluster; asked again this often, and after a
 * sync that did not go through (a CRD installed or upgraded meanwhile). */
#define SVC_DISCOVERY_REFRESH_USEC (10 * 60 * USEC_PER_SEC)

enum svc_job_kind {
  SVC_JOB_NONE,
  SVC_JOB_ROLLOUT,            /* apply the rollout's target */
  SVC_JOB_DRIFT,              /* re-check (and correct) the commit in force */
};

struct svc_cluster {
  char name[64];
  char kubeconfig[1024], context[256];
  char inventory[1024];
  struct kube_client *client;
  struct err setup_err;       /* the kubeconfig could not be used */
  struct apply_job *job;
  struct svc_watchset *watch; /* daemon-watch.c; NULL: not watching */
  enum svc_job_kind job_kind;
  struct svc_repo *job_repo;
  bool intent_open;
  bool deferred;              /* this host could not record the job's plan: nothing was written */
  uint64_t intent_index;
  uint64_t job_started;       /* mono */
  uint64_t next_drift;        /* mono */
  uint64_t discovered;        /* mono, of the discovery in the client's cache; 0: none */
  /* what status and metrics report */
  uint64_t last_sync;         /* real */
  uint64_t last_success;      /* real */
  char last_outcome[16];
  char health[24];
  char last_error[600];
  char commit[41];            /* last commit a sync completed with */
  size_t objects;
  unsigned long syncs, failures, drift_corrected, writes;
  double apply_seconds_sum;
  unsigned long apply_buckets[SVC_HISTOGRAM_BUCKETS + 1];
};

struct svc {
  const struct svc_run_options *opts;
  char *config_path;
  struct hostconfig *hc;
  struct ledger *ledger;
  struct ledger_key *key;
  struct kube_loop *loop;
  struct gitworker *git;
  struct webhook_server *webhook; /* webhook.h; NULL: repository.webhook is not set */
  struct coord *coord;        /* coord.h; NULL: coordination is not set (or could not start) */
  char user_agent[160];       /* "egressd/<version> (<identity>)" with coordination */
  uint64_t coord_next;        /* mono: when the coordinator next needs a tick */
  uint64_t coord_sig;         /* ownership and reachability as last published */
  unsigned long coord_seen;   /* coord_changes() when drive_coord() last looked */
  uint64_t coord_act_seen;    /* real: the newest operator act (pause, resume) taken from any member */
  struct svc_cluster *clusters;
  size_t n_clusters;
  struct svc_repo repos[SVC_REPO_SLOTS];
  /* the commit in force (last good): verified, valid */
  char target[41];
  struct fleet_rollout rollout;
  /* the last commit that was refused, and why */
  char rejected[41];
  char rejected_stage[16];
  char rejected_error[1024];
  /* signers and summaries from state.json, for commits not loaded yet */
  struct svc_commit_meta *meta;
  size_t n_meta;
  struct svc_load_failure load_failed[SVC_REPO_SLOTS];
  /* following the repo */
  uint64_t last_poll;         /* real, of the last successful poll */
  char poll_error[1024];
  char head[41];              /* last head the remote had */
  /* loop */
  int sigfd, ctlfd;
  bool stopping, stopped, reload_requested, ready;
  uint64_t rollout_clock_real0, rollout_clock_mono0; /* see svc_rollout_now() */
  uint64_t started, next_poll, next_watchdog, watchdog_usec, next_publish, next_files, stop_deadline;
  char status_line[600];
  uint64_t status_sent;
  bool dirty;
  char *state_saved;          /* what state.json holds, to skip unchanged writes */
  unsigned long polls, poll_failures, commits_rejected;
};

/* daemon-state.c */
int svc_state_load(struct svc *d, struct err *err);
/* The commits the daemon needs (the target, the rollout's, each cluster's),
 * each once; returns how many were put in @out (room for 2 + clusters). */
size_t svc_commits_in_use(const struct svc *d, const char **out);
const struct svc_commit_meta *svc_meta_find(const struct svc *d, const char *commit);
int svc_state_save(struct svc *d, struct err *err);
/* The last commit the ledger records as applied from the configured
 * repository (the rollback floor besides the target), or NULL. */
const char *svc_ledger_floor(const struct svc *d);

/* The clock of the rollout's deadlines (bakes, retries, phase times): the
 * wall clock at start plus the monotonic time since, so a step of the wall
 * clock while the daemon runs (NTP, an operator) neither stretches nor cuts
 * a bake. The values are wall-clock microseconds, so state.json keeps them
 * across a restart, which re-reads the wall clock. */
static inline uint64_t svc_rollout_now(const struct svc *d) {
  return d->rollout_clock_real0 + (time_now_mono_usec() - d->rollout_clock_mono0);
}

/* daemon-watch.c: drift from the API servers' events */
struct svc_watchset;
/* After a sync of @c (before its result is freed): what it wrote is known,
 * events held during it are judged, watches start (spread) if they have not. */
void svc_watch_job_done(struct svc *d, struct svc_cluster *c, const struct apply_result *res,
                        const char *instance);
/* Start the watches that are due. */
void svc_watch_drive(struct svc *d);
/* When the next watches are due to start (mono); UINT64_MAX: none. */
uint64_t svc_watch_next_start(const struct svc *d);
/* Whether every watch of @c streams (the periodic check may then be rare). */
bool svc_watch_up(const struct svc_cluster *c);
void svc_watch_free(struct svc_cluster *c);
/* "off", "starting", "watching", "resyncing", "backing off" or "failed";
 * *@since (mono, 0: unknown) when it began. */
const char *svc_watch_state(const struct svc_cluster *c, uint64_t *since);
unsigned long svc_watch_events(const struct svc_cluster *c);
unsigned long svc_watch_drift_events(const struct svc_cluster *c);

/* What egressd knows of one object it manages (no copy of the object). */
struct svc_watch_known {
  char rv[32];                /* as its last sync wrote or read it */
  int64_t gen;                /* metadata.generation at rv, when judged */
  uint64_t meta;              /* digest of labels and annotations at rv, when judged */
  bool judged;                /* gen and meta are known */
  bool gone;                  /* egressd deleted it */
  bool failed;                /* a gateway whose last news said ReconcileFailed */
};
/* What an event (or a re-list's item) says of one object. */
struct svc_watch_seen {
  char *key;                  /* Kind/namespace/name */
  char rv[32];
  int64_t gen;
  uint64_t meta;
  bool deleted;
  bool failed;                /* status.Status is ReconcileFailed (IstioMeshGateway) */
};
/* Whether @s shows drift (or a gateway that broke) of the object known as
 * @k (NULL: not egressd's); updates @k. *@why gets a few words when true. */
bool svc_watch_judge(struct svc_watch_known *k, const struct svc_watch_seen *s, const char **why);

/* Whether this host may work on cluster @c now: always without
 * coordination; with it, while it holds the cluster's Lease and the
 * cluster is still its own (coord.h). */
bool svc_owned(const struct svc *d, const struct svc_cluster *c);

/* daemon-status.c */
void svc_status_line(const struct svc *d, char *buf, size_t size);
int svc_status_write(const struct svc *d, struct err *err);
int svc_metrics_write(const struct svc *d, struct err *err);
