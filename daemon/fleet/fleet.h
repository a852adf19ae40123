/* fleet: rolling one commit out over a fleet of clusters, wave by wave
 * (layer 3, but no I/O: the daemon feeds it events and asks it what to do,
 * so the whole policy is unit-testable).
 *
 * The Fleet of the config repo orders clusters into waves (a selector, at
 * most maxParallel clusters at once, a failure budget maxFailures, a bake
 * time). A cluster in no wave goes last, in an implicit wave "rest". A new
 * target commit starts at wave 1:
 *
 *   pending -> applying -> baking -> done
 *                |  ^         |
 *                v  |         v
 *           unreachable     failed
 *          (retry, backoff)
 *
 * Wave k+1 starts only when every cluster of wave k is done: it applied the
 * commit, reported healthy, and baked for the wave's bake time without drift
 * or failure. Within a wave at most maxParallel clusters are in progress
 * (applying, retrying or baking), so with maxParallel 1 a cluster has baked
 * before the next one is touched. More failures in a wave than its budget halt the rollout: no
 * cluster starts any more, the clusters not yet reached stay on their
 * previous commit (and keep being corrected at it by the daemon). A later
 * commit starts a new rollout from wave 1 (fix forward). An unreachable
 * cluster is retried with backoff and counts as failed after the
 * unreachable timeout. Pause stops new starts (and holds for a new commit
 * too); resume continues and retries the failed clusters of a halted rollout.
 *
 * Times are wall-clock microseconds (they are persisted across restarts).
 * When you change a transition, also touch docs/rollout.md and
 * tests/unit/test-fleet.c.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "intent/intent.h"

#define FLEET_COMMIT_LEN 40
#define FLEET_REST_WAVE "rest"

enum fleet_phase {
  FLEET_PENDING,       /* waits for its wave */
  FLEET_APPLYING,      /* a sync of the target commit is running */
  FLEET_UNREACHABLE,   /* the last attempt could not reach it; retried at retry_at */
  FLEET_BAKING,        /* applied and healthy; bakes until bake_until */
  FLEET_DONE,          /* the target is in force here */
  FLEET_FAILED,        /* counts against the wave's failure budget */
  FLEET_DEFERRED,      /* egressd itself could not go on (its ledger or disk): nothing was
                          written; retried at retry_at, never counted against the budget */
  _FLEET_PHASE_MAX,
};

enum fleet_state {
  FLEET_ROLLOUT_IDLE,      /* no target yet */
  FLEET_ROLLOUT_RUNNING,
  FLEET_ROLLOUT_PAUSED,    /* by an operator: nothing new starts */
  FLEET_ROLLOUT_HALTED,    /* a wave's failure budget was exceeded */
  FLEET_ROLLOUT_COMPLETE,  /* every cluster is done */
  _FLEET_ROLLOUT_MAX,
};

const char *fleet_phase_name(enum fleet_phase p);
const char *fleet_state_name(enum fleet_state s);
int fleet_phase_from_name(const char *s);
int fleet_state_from_name(const char *s);

struct fleet_wave {
  char name[64];
  unsigned max_parallel;
  unsigned max_failures;
  uint64_t bake_usec;
};

struct fleet_cluster {
  char name[64];
  char applied[FLEET_COMMIT_LEN + 1];   /* last commit applied and healthy here; "" if none */
  enum fleet_phase phase;
  unsigned wave;                        /* index into waves */
  uint64_t since;                       /* when the phase began */
  uint64_t bake_until;                  /* BAKING */
  uint64_t unreachable_since, retry_at; /* UNREACHABLE */
  bool unreachable;                     /* unreachable_since is set */
  unsigned attempts;                    /* consecutive failed attempts */
  char last_error[512];
};

struct fleet_rollout {
  char target[FLEET_COMMIT_LEN + 1];    /* "" when idle */
  enum fleet_state state;
  unsigned wave;                        /* the wave in progress */
  uint64_t started;
  char halt_reason[600];
  struct fleet_wave *waves;             /* the target's waves, then "rest" if needed */
  size_t n_waves;
  struct fleet_cluster *clusters;       /* every cluster this host manages, by name */
  size_t n_clusters;
};

struct fleet_options {
  uint64_t unreachable_timeout_usec;    /* after this long unreachable, failed */
  uint64_t retry_min_usec, retry_max_usec;  /* backoff between attempts */
};

/* Start rolling @target out: waves from @fleet (NULL: one wave "rest" of
 * maxParallel 1, no bake), over the clusters @names (the host's clusters that
 * are in the Fleet). A cluster whose applied commit is already @target is
 * done at once. Clusters keep their applied commits; other state resets. */
void fleet_rollout_begin(struct fleet_rollout *r, const char *target,
                         const struct intent_fleet *fleet, const char *const *names, size_t n,
                         uint64_t now);

/* Advance: bakes that ended become done, a finished wave opens the next, an
 * exceeded budget halts. Call before asking what to start. */
void fleet_rollout_tick(struct fleet_rollout *r, uint64_t now);

/* Clusters to start applying the target now (indexes into r->clusters, at
 * most @max): pending clusters of the current wave while fewer than
 * maxParallel are in progress, and unreachable ones whose retry is due. */
size_t fleet_rollout_ready(const struct fleet_rollout *r, uint64_t now, size_t *ret, size_t max);

void fleet_cluster_started(struct fleet_rollout *r, size_t i, uint64_t now);

enum fleet_result {
  FLEET_RESULT_OK,           /* applied, healthy */
  FLEET_RESULT_FAILED,       /* apply or health failed */
  FLEET_RESULT_UNREACHABLE,  /* could not talk to the cluster */
  FLEET_RESULT_DEFERRED,     /* a problem of this host (ledger not writable, disk full)
                                stopped the sync before any write: retried with the same
                                backoff as unreachable, for as long as it lasts; the cluster
                                is not at fault, so it never counts against the budget */
};
/* A sync of the target finished on cluster @i. @error (NULL when OK) is kept
 * for status. */
void fleet_cluster_finished(struct fleet_rollout *r, size_t i, enum fleet_result res,
                            const char *error, const struct fleet_options *opts, uint64_t now);
/* A drift check of a baking cluster found drift or an unhealthy gateway:
 * the bake failed. */
void fleet_cluster_bake_failed(struct fleet_rollout *r, size_t i, const char *why, uint64_t now);

/* Coordination: cluster @i is another member's, which last published that
 * it has @applied in force and, for the rollout of @target, is in @phase.
 * For this rollout's target the phase is taken as it is (deadlines are the
 * owner's: a bake or a retry never ends here); for another target the
 * cluster is pending here. An empty @applied leaves it as it was. */
void fleet_cluster_observe(struct fleet_rollout *r, size_t i, const char *target,
                           enum fleet_phase phase, const char *applied, uint64_t now);

/* After a restart: deadlines further ahead than they can ever be (the wall
 * clock was stepped back while the daemon was stopped) are brought back to
 * @now plus their longest length, a bake to its wave's bake time, a retry
 * to the longest backoff; returns how many were. A step forward while
 * stopped shortens them, which no clock can tell. */
size_t fleet_rollout_clamp_deadlines(struct fleet_rollout *r, const struct fleet_options *opts,
                                     uint64_t now);

void fleet_rollout_pause(struct fleet_rollout *r);
/* Continue a paused rollout; a halted one retries its failed clusters. */
void fleet_rollout_resume(struct fleet_rollout *r, uint64_t now);

/* Which commit should be in force on cluster @i (for drift correction): the
 * target once the cluster is done, baking or failed (a halt does not roll a
 * cluster back), else what it last applied ("" = nothing yet). */
const char *fleet_cluster_commit(const struct fleet_rollout *r, size_t i);
int fleet_cluster_index(const struct fleet_rollout *r, const char *name);
/* Counts of clusters per phase. */
void fleet_rollout_counts(const struct fleet_rollout *r, size_t counts[_FLEET_PHASE_MAX]);
void fleet_rollout_dispose(struct fleet_rollout *r);
