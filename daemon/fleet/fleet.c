/* The rollout state machine; see fleet.h for the rules. No I/O, no clock:
 * every function takes "now". */
#include "fleet/fleet.h"

#include <string.h>

#include "base/mem.h"
#include "base/str.h"
#include "base/timeutil.h"

static const char *const phase_names[_FLEET_PHASE_MAX] = {
    "pending", "applying", "unreachable", "baking", "done", "failed", "deferred"};
static const char *const state_names[_FLEET_ROLLOUT_MAX] = {"idle", "running", "paused", "halted",
                                                            "complete"};

const char *fleet_phase_name(enum fleet_phase p) {
  return p < _FLEET_PHASE_MAX ? phase_names[p] : "?";
}

const char *fleet_state_name(enum fleet_state s) {
  return s < _FLEET_ROLLOUT_MAX ? state_names[s] : "?";
}

int fleet_phase_from_name(const char *s) {
  for (int i = 0; i < _FLEET_PHASE_MAX; i++)
    if (str_eq(phase_names[i], s))
      return i;
  return -1;
}

int fleet_state_from_name(const char *s) {
  for (int i = 0; i < _FLEET_ROLLOUT_MAX; i++)
    if (str_eq(state_names[i], s))
      return i;
  return -1;
}

int fleet_cluster_index(const struct fleet_rollout *r, const char *name) {
  for (size_t i = 0; i < r->n_clusters; i++)
    if (strcmp(r->clusters[i].name, name) == 0)
      return (int)i;
  return -1;
}

static void set_phase(struct fleet_cluster *c, enum fleet_phase p, uint64_t now) {
  c->phase = p;
  c->since = now;
}

void fleet_rollout_begin(struct fleet_rollout *r, const char *target,
                         const struct intent_fleet *fleet, const char *const *names, size_t n,
                         uint64_t now) {
  struct fleet_cluster *old = r->clusters;
  size_t n_old = r->n_clusters;
  bool rest = false;

  free(r->waves);
  r->waves = xcalloc((fleet ? fleet->n_waves : 0) + 1, sizeof(*r->waves));
  r->n_waves = 0;
  for (size_t w = 0; fleet && w < fleet->n_waves; w++) {
    struct fleet_wave *fw = &r->waves[r->n_waves++];
    str_copy(fw->name, sizeof(fw->name), fleet->waves[w].name);
    fw->max_parallel = fleet->waves[w].max_parallel ? fleet->waves[w].max_parallel : 1;
    fw->max_failures = fleet->waves[w].max_failures;
    fw->bake_usec = fleet->waves[w].bake_usec;
  }
  r->clusters = xcalloc(n + 1, sizeof(*r->clusters));
  r->n_clusters = n;
  for (size_t i = 0; i < n; i++) {
    struct fleet_cluster *c = &r->clusters[i];
    const struct intent_fleet_cluster *fc = fleet ? intent_fleet_cluster_find(fleet, names[i]) : NULL;
    size_t w;

    str_copy(c->name, sizeof(c->name), names[i]);
    for (size_t k = 0; k < n_old; k++)
      if (strcmp(old[k].name, names[i]) == 0)
        str_copy(c->applied, sizeof(c->applied), old[k].applied);
    /* the first wave whose selector matches, else the implicit last one */
    for (w = 0; fc && w < r->n_waves; w++)
      if (intent_selector_matches(&fleet->waves[w].selector, fc->labels, fc->n_labels))
        break;
    if (!fc)
      w = r->n_waves;
    if (w == r->n_waves)
      rest = true;
    c->wave = (unsigned)w;
    set_phase(c, strcmp(c->applied, target) == 0 ? FLEET_DONE : FLEET_PENDING, now);
  }
  if (rest) {
    struct fleet_wave *fw = &r->waves[r->n_waves++];
    str_copy(fw->name, sizeof(fw->name), FLEET_REST_WAVE);
    fw->max_parallel = 1;
    fw->max_failures = 0;
    fw->bake_usec = 0;
  }
  free(old);
  str_copy(r->target, sizeof(r->target), target);
  /* an operator's pause holds for the next commit too, until resumed */
  r->state = r->state == FLEET_ROLLOUT_PAUSED ? FLEET_ROLLOUT_PAUSED : FLEET_ROLLOUT_RUNNING;
  r->wave = 0;
  r->started = now;
  r->halt_reason[0] = '\0';
  fleet_rollout_tick(r, now);
}

static size_t count_in_wave(const struct fleet_rollout *r, unsigned w, enum fleet_phase p) {
  size_t n = 0;
  for (size_t i = 0; i < r->n_clusters; i++)
    n += r->clusters[i].wave == w && r->clusters[i].phase == p;
  return n;
}

void fleet_rollout_tick(struct fleet_rollout *r, uint64_t now) {
  if (r->state == FLEET_ROLLOUT_IDLE || r->state == FLEET_ROLLOUT_COMPLETE)
    return;
  for (size_t i = 0; i < r->n_clusters; i++) {
    struct fleet_cluster *c = &r->clusters[i];
    if (c->phase == FLEET_BAKING && now >= c->bake_until) {
      set_phase(c, FLEET_DONE, now);
      str_copy(c->applied, sizeof(c->applied), r->target);
    }
  }
  if (r->state == FLEET_ROLLOUT_HALTED)
    return;
  while (r->wave < r->n_waves) {
    const struct fleet_wave *w = &r->waves[r->wave];
    size_t failed = count_in_wave(r, r->wave, FLEET_FAILED);
    size_t open = count_in_wave(r, r->wave, FLEET_PENDING) +
                  count_in_wave(r, r->wave, FLEET_APPLYING) +
                  count_in_wave(r, r->wave, FLEET_UNREACHABLE) +
                  count_in_wave(r, r->wave, FLEET_DEFERRED) +
                  count_in_wave(r, r->wave, FLEET_BAKING);

    if (failed > w->max_failures) {
      const struct fleet_cluster *bad = NULL;
      for (size_t i = 0; i < r->n_clusters && !bad; i++)
        if (r->clusters[i].wave == r->wave && r->clusters[i].phase == FLEET_FAILED)
          bad = &r->clusters[i];
      r->state = FLEET_ROLLOUT_HALTED;
      str_format(r->halt_reason, sizeof(r->halt_reason),
                 "wave %s: %zu cluster%s failed (budget %u): %s: %s", w->name, failed,
                 failed == 1 ? "" : "s", w->max_failures, bad ? bad->name : "?",
                 bad && bad->last_error[0] ? bad->last_error : "failed");
      return;
    }
    if (open)
      return;
    r->wave++;
  }
  r->state = FLEET_ROLLOUT_COMPLETE;
}

void fleet_cluster_observe(struct fleet_rollout *r, size_t i, const char *target,
                           enum fleet_phase phase, const char *applied, uint64_t now) {
  struct fleet_cluster *c = &r->clusters[i];
  enum fleet_phase p = str_eq(target, r->target) ? phase : FLEET_PENDING;

  if (applied && applied[0])
    str_copy(c->applied, sizeof(c->applied), applied);
  if (p == FLEET_APPLYING && c->phase == FLEET_APPLYING)
    return;
  if (p != c->phase)
    set_phase(c, p, now);
  c->bake_until = c->retry_at = UINT64_MAX; /* the owner's to end */
}

size_t fleet_rollout_ready(const struct fleet_rollout *r, uint64_t now, size_t *ret, size_t max) {
  size_t n = 0, busy;
  const struct fleet_wave *w;

  if (r->state != FLEET_ROLLOUT_RUNNING || r->wave >= r->n_waves)
    return 0;
  w = &r->waves[r->wave];
  /* a cluster is in progress until it is done: applying, retrying or baking */
  busy = count_in_wave(r, r->wave, FLEET_APPLYING) + count_in_wave(r, r->wave, FLEET_BAKING) +
         count_in_wave(r, r->wave, FLEET_UNREACHABLE) + count_in_wave(r, r->wave, FLEET_DEFERRED);
  for (size_t i = 0; i < r->n_clusters && n < max; i++) {
    const struct fleet_cluster *c = &r->clusters[i];
    if (c->wave != r->wave)
      continue;
    if (c->phase == FLEET_PENDING) {
      if (busy >= w->max_parallel)
        break;
      ret[n++] = i;
      busy++;
    } else if ((c->phase == FLEET_UNREACHABLE || c->phase == FLEET_DEFERRED) &&
               now >= c->retry_at) {
      ret[n++] = i; /* already counted as in progress */
    }
  }
  return n;
}

void fleet_cluster_started(struct fleet_rollout *r, size_t i, uint64_t now) {
  if (i < r->n_clusters)
    set_phase(&r->clusters[i], FLEET_APPLYING, now);
}

/* The backoff before the next attempt: retry_min doubled per failed
 * attempt, at most retry_max. */
static uint64_t retry_wait(const struct fleet_cluster *c, const struct fleet_options *opts) {
  uint64_t lo = opts && opts->retry_min_usec ? opts->retry_min_usec : 5 * USEC_PER_SEC;
  uint64_t hi = opts && opts->retry_max_usec ? opts->retry_max_usec : 120 * USEC_PER_SEC;
  uint64_t wait = lo;

  for (unsigned k = 0; k < c->attempts && wait < hi; k++)
    wait *= 2;
  return wait > hi ? hi : wait;
}

size_t fleet_rollout_clamp_deadlines(struct fleet_rollout *r, const struct fleet_options *opts,
                                     uint64_t now) {
  uint64_t retry_max = opts && opts->retry_max_usec ? opts->retry_max_usec : 120 * USEC_PER_SEC;
  size_t n = 0;

  for (size_t i = 0; i < r->n_clusters; i++) {
    struct fleet_cluster *c = &r->clusters[i];
    uint64_t bake = c->wave < r->n_waves ? r->waves[c->wave].bake_usec : 0;

    if (c->phase == FLEET_BAKING && c->bake_until > now + bake) {
      c->bake_until = now + bake;
      n++;
    }
    if ((c->phase == FLEET_UNREACHABLE || c->phase == FLEET_DEFERRED) &&
        c->retry_at > now + retry_max) {
      c->retry_at = now + retry_max;
      n++;
    }
  }
  return n;
}

void fleet_cluster_finished(struct fleet_rollout *r, size_t i, enum fleet_result res,
                            const char *error, const struct fleet_options *opts, uint64_t now) {
  struct fleet_cluster *c;

  if (i >= r->n_clusters)
    return;
  c = &r->clusters[i];
  if (c->phase != FLEET_APPLYING)
    return; /* a result for an older rollout */
  str_copy(c->last_error, sizeof(c->last_error), error ? error : "");
  switch (res) {
  case FLEET_RESULT_OK:
    c->attempts = 0;
    c->unreachable = false;
    c->bake_until = now + r->waves[c->wave].bake_usec;
    set_phase(c, FLEET_BAKING, now);
    break;
  case FLEET_RESULT_FAILED:
    c->attempts++;
    c->unreachable = false;
    set_phase(c, FLEET_FAILED, now);
    break;
  case FLEET_RESULT_DEFERRED:
    /* not the cluster's fault: no timeout turns it into a failure */
    c->retry_at = now + retry_wait(c, opts);
    c->attempts++;
    set_phase(c, FLEET_DEFERRED, now);
    break;
  case FLEET_RESULT_UNREACHABLE: {
    uint64_t limit = opts && opts->unreachable_timeout_usec ? opts->unreachable_timeout_usec
                                                            : 600 * USEC_PER_SEC;
    uint64_t wait = retry_wait(c, opts);

    if (!c->unreachable) {
      c->unreachable = true;
      c->unreachable_since = now;
    }
    c->attempts++;
    if (now - c->unreachable_since >= limit) {
      char why[sizeof(c->last_error)], d[32];
      time_format_duration(d, sizeof(d), limit);
      str_format(why, sizeof(why), "unreachable for %s: %s", d, error ? error : "");
      str_copy(c->last_error, sizeof(c->last_error), why);
      set_phase(c, FLEET_FAILED, now);
    } else {
      c->retry_at = now + wait;
      set_phase(c, FLEET_UNREACHABLE, now);
    }
    break;
  }
  }
  fleet_rollout_tick(r, now);
}

void fleet_cluster_bake_failed(struct fleet_rollout *r, size_t i, const char *why, uint64_t now) {
  struct fleet_cluster *c;

  if (i >= r->n_clusters || r->clusters[i].phase != FLEET_BAKING)
    return;
  c = &r->clusters[i];
  str_format(c->last_error, sizeof(c->last_error), "while baking: %s", why ? why : "");
  set_phase(c, FLEET_FAILED, now);
  fleet_rollout_tick(r, now);
}

void fleet_rollout_pause(struct fleet_rollout *r) {
  if (r->state == FLEET_ROLLOUT_RUNNING)
    r->state = FLEET_ROLLOUT_PAUSED;
}

void fleet_rollout_resume(struct fleet_rollout *r, uint64_t now) {
  if (r->state == FLEET_ROLLOUT_HALTED) {
    for (size_t i = 0; i < r->n_clusters; i++)
      if (r->clusters[i].phase == FLEET_FAILED) {
        r->clusters[i].attempts = 0;
        r->clusters[i].unreachable = false;
        set_phase(&r->clusters[i], FLEET_PENDING, now);
      }
    r->halt_reason[0] = '\0';
    r->state = FLEET_ROLLOUT_RUNNING;
  } else if (r->state == FLEET_ROLLOUT_PAUSED) {
    r->state = FLEET_ROLLOUT_RUNNING;
  }
  fleet_rollout_tick(r, now);
}

const char *fleet_cluster_commit(const struct fleet_rollout *r, size_t i) {
  const struct fleet_cluster *c;

  if (i >= r->n_clusters)
    return "";
  c = &r->clusters[i];
  /* a failed cluster keeps the commit it was given: the rollout halts, it
   * is not rolled back behind the operator's back */
  if (c->phase == FLEET_DONE || c->phase == FLEET_BAKING || c->phase == FLEET_FAILED)
    return r->target;
  return c->applied;
}

void fleet_rollout_counts(const struct fleet_rollout *r, size_t counts[_FLEET_PHASE_MAX]) {
  memset(counts, 0, sizeof(size_t) * _FLEET_PHASE_MAX);
  for (size_t i = 0; i < r->n_clusters; i++)
    counts[r->clusters[i].phase]++;
}

void fleet_rollout_dispose(struct fleet_rollout *r) {
  free(r->waves);
  free(r->clusters);
  memset(r, 0, sizeof(*r));
}
