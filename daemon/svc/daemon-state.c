/* state.json: what the daemon must remember across a restart, so it resumes
 * a rollout where it was without re-applying finished waves: the commit in
 * force and, per cluster, the commit it applied and its rollout phase; the
 * last refused commit and why; who signed each commit in use (the ledger's
 * apply-intents name the signer, and the tree is re-read but the signature
 * was checked when the commit was fetched).
 * Replaced atomically after every change. A cluster found "applying" at
 * start was interrupted: it goes back to pending (the ledger records the
 * interruption).
 * state.json is not the only memory of what was applied: the rollback floor
 * also comes from the ledger (svc_ledger_floor()), so deleting or rolling
 * back this file does not let an older commit in (gitworker.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/mem.h"
#include "base/str.h"
#include "doc/doc.h"
#include "svc/svc-int.h"

#define STATE_MAX_BYTES (16u << 20)

static char *state_path(const struct svc *d) {
  return path_join(d->hc->state_dir, SVC_STATE_FILE);
}

static void set_u64(struct doc_arena *a, struct doc_node *m, const char *k, uint64_t v) {
  doc_map_set(a, m, k, doc_new_int(a, (int64_t)v));
}

static void set_s(struct doc_arena *a, struct doc_node *m, const char *k, const char *v) {
  doc_map_set(a, m, k, doc_new_str(a, v ? v : ""));
}

size_t svc_commits_in_use(const struct svc *d, const char **out) {
  size_t n = 0;

  for (size_t i = 0; i < d->rollout.n_clusters + 2; i++) {
    const char *c = i == 0   ? d->target
                    : i == 1 ? d->rollout.target
                             : fleet_cluster_commit(&d->rollout, i - 2);
    bool seen = false;
    if (!c[0])
      continue;
    for (size_t k = 0; k < n && !seen; k++)
      seen = strcmp(out[k], c) == 0;
    if (!seen)
      out[n++] = c;
  }
  return n;
}

const char *svc_ledger_floor(const struct svc *d) {
  const char *repo = NULL, *commit;

  if (!d->ledger)
    return NULL;
  commit = ledger_last_intent_commit(d->ledger, &repo);
  /* a commit of another repository (the URL changed) is no floor here; the
   * ledger holds the URL as shown (url_shown), older ledgers the URL itself */
  return commit && (str_eq(repo, d->hc->repo.url_shown) || str_eq(repo, d->hc->repo.url))
             ? commit
             : NULL;
}

const struct svc_commit_meta *svc_meta_find(const struct svc *d, const char *commit) {
  for (size_t i = 0; i < d->n_meta; i++)
    if (strcmp(d->meta[i].commit, commit) == 0)
      return &d->meta[i];
  return NULL;
}

static void save_commits(const struct svc *d, struct doc_arena *a, struct doc_node *root) {
  const char **use = xcalloc(d->rollout.n_clusters + 3, sizeof(*use));
  struct doc_node *seq = doc_new_seq(a);
  size_t n = svc_commits_in_use(d, use);

  for (size_t i = 0; i < n; i++) {
    const struct svc_repo *r = NULL;
    const struct svc_commit_meta *m = svc_meta_find(d, use[i]);
    struct doc_node *o = doc_new_map(a);
    for (size_t k = 0; k < SVC_REPO_SLOTS && !r; k++)
      if (d->repos[k].repo && strcmp(d->repos[k].commit, use[i]) == 0)
        r = &d->repos[k];
    if (!r && !m)
      continue;
    set_s(a, o, "commit", use[i]);
    set_s(a, o, "summary", r ? r->summary : m->summary);
    doc_map_set(a, o, "verified", doc_new_bool(a, r ? r->verified : m->verified));
    set_s(a, o, "principal", r ? r->principal : m->principal);
    set_s(a, o, "key", r ? r->key : m->key);
    doc_seq_push(a, seq, o);
  }
  doc_map_set(a, root, "commits", seq);
  free(use);
}

int svc_state_save(struct svc *d, struct err *err) {
  struct doc_arena *a = doc_arena_new();
  struct doc_node *root = doc_new_map(a), *ro = doc_new_map(a), *waves = doc_new_seq(a);
  struct doc_node *clusters = doc_new_seq(a);
  const struct fleet_rollout *r = &d->rollout;
  struct buf out = BUF_INIT;
  char *path = state_path(d);
  int rc;

  set_s(a, root, "target", d->target);
  set_s(a, root, "rejected", d->rejected);
  set_s(a, root, "rejectedStage", d->rejected[0] ? d->rejected_stage : "");
  set_s(a, root, "rejectedError", d->rejected[0] ? d->rejected_error : "");
  save_commits(d, a, root);
  set_s(a, ro, "target", r->target);
  set_s(a, ro, "state", fleet_state_name(r->state));
  set_u64(a, ro, "wave", r->wave);
  set_u64(a, ro, "started", r->started);
  set_u64(a, ro, "actAdopted", d->coord_act_seen);
  set_s(a, ro, "haltReason", r->halt_reason);
  for (size_t i = 0; i < r->n_waves; i++) {
    struct doc_node *w = doc_new_map(a);
    set_s(a, w, "name", r->waves[i].name);
    set_u64(a, w, "maxParallel", r->waves[i].max_parallel);
    set_u64(a, w, "maxFailures", r->waves[i].max_failures);
    set_u64(a, w, "bakeUsec", r->waves[i].bake_usec);
    doc_seq_push(a, waves, w);
  }
  doc_map_set(a, ro, "waves", waves);
  for (size_t i = 0; i < r->n_clusters; i++) {
    const struct fleet_cluster *c = &r->clusters[i];
    struct doc_node *m = doc_new_map(a);
    set_s(a, m, "name", c->name);
    set_s(a, m, "applied", c->applied);
    set_s(a, m, "phase", fleet_phase_name(c->phase));
    set_u64(a, m, "wave", c->wave);
    set_u64(a, m, "since", c->since);
    set_u64(a, m, "bakeUntil", c->bake_until);
    set_u64(a, m, "unreachableSince", c->unreachable_since);
    set_u64(a, m, "retryAt", c->retry_at);
    doc_map_set(a, m, "unreachable", doc_new_bool(a, c->unreachable));
    set_u64(a, m, "attempts", c->attempts);
    set_s(a, m, "lastError", c->last_error);
    doc_seq_push(a, clusters, m);
  }
  doc_map_set(a, ro, "clusters", clusters);
  doc_map_set(a, root, "rollout", ro);
  doc_emit_json(root, &out, DOC_JSON_PRETTY);
  if (d->state_saved && strlen(d->state_saved) == out.len &&
      memcmp(d->state_saved, out.data, out.len) == 0) {
    rc = 0; /* unchanged: no write, no fsync */
  } else if ((rc = file_write_atomic(path, out.data, out.len, 0600, err)) == 0) {
    free(d->state_saved);
    d->state_saved = xstrdup(buf_cstr(&out));
  }
  buf_dispose(&out);
  free(path);
  doc_arena_free(a);
  return rc;
}

static uint64_t u64_at(const struct doc_node *m, const char *k) {
  const struct doc_node *v = doc_map_get(m, k);
  return doc_is(v, DOC_INT) && v->u.i > 0 ? (uint64_t)v->u.i : 0;
}

static void str_at(const struct doc_node *m, const char *k, char *out, size_t size) {
  const char *v = doc_map_str(m, k);
  str_copy(out, size, v ? v : "");
}

int svc_state_load(struct svc *d, struct err *err) {
  struct buf b = BUF_INIT;
  struct doc_arena *a = NULL;
  struct doc_node *root, *ro, *waves, *clusters, *commits;
  struct fleet_rollout *r = &d->rollout;
  char *path = state_path(d);
  int rc;

  rc = file_read_all(path, STATE_MAX_BYTES, &b, err);
  if (rc == -ENOENT) {
    err_clear(err);
    rc = 0;
    goto out;
  }
  if (rc < 0)
    goto out;
  a = doc_arena_new();
  if ((rc = doc_parse_one(a, path, buf_cstr(&b), b.len, NULL, &root, err)) < 0)
    goto out;
  str_at(root, "target", d->target, sizeof(d->target));
  str_at(root, "rejected", d->rejected, sizeof(d->rejected));
  str_at(root, "rejectedStage", d->rejected_stage, sizeof(d->rejected_stage));
  str_at(root, "rejectedError", d->rejected_error, sizeof(d->rejected_error));
  commits = doc_map_get(root, "commits");
  d->meta = xcalloc(doc_len(commits) + 1, sizeof(*d->meta));
  for (size_t i = 0; doc_is(commits, DOC_SEQ) && i < commits->u.seq.n; i++) {
    const struct doc_node *m = commits->u.seq.items[i];
    const struct doc_node *v = doc_map_get(m, "verified");
    struct svc_commit_meta *cm = &d->meta[d->n_meta];
    str_at(m, "commit", cm->commit, sizeof(cm->commit));
    if (!cm->commit[0])
      continue;
    str_at(m, "summary", cm->summary, sizeof(cm->summary));
    str_at(m, "principal", cm->principal, sizeof(cm->principal));
    str_at(m, "key", cm->key, sizeof(cm->key));
    cm->verified = doc_is(v, DOC_BOOL) && v->u.b && cm->principal[0];
    d->n_meta++;
  }
  ro = doc_map_get(root, "rollout");
  str_at(ro, "target", r->target, sizeof(r->target));
  rc = fleet_state_from_name(doc_map_str(ro, "state") ? doc_map_str(ro, "state") : "idle");
  r->state = rc < 0 ? FLEET_ROLLOUT_IDLE : (enum fleet_state)rc;
  rc = 0;
  r->wave = (unsigned)u64_at(ro, "wave");
  r->started = u64_at(ro, "started");
  d->coord_act_seen = u64_at(ro, "actAdopted");
  str_at(ro, "haltReason", r->halt_reason, sizeof(r->halt_reason));
  waves = doc_map_get(ro, "waves");
  clusters = doc_map_get(ro, "clusters");
  r->waves = xcalloc(doc_len(waves) + 1, sizeof(*r->waves));
  for (size_t i = 0; doc_is(waves, DOC_SEQ) && i < waves->u.seq.n; i++) {
    const struct doc_node *w = waves->u.seq.items[i];
    struct fleet_wave *fw = &r->waves[r->n_waves++];
    str_at(w, "name", fw->name, sizeof(fw->name));
    fw->max_parallel = (unsigned)u64_at(w, "maxParallel");
    fw->max_failures = (unsigned)u64_at(w, "maxFailures");
    fw->bake_usec = u64_at(w, "bakeUsec");
  }
  r->clusters = xcalloc(doc_len(clusters) + 1, sizeof(*r->clusters));
  for (size_t i = 0; doc_is(clusters, DOC_SEQ) && i < clusters->u.seq.n; i++) {
    const struct doc_node *m = clusters->u.seq.items[i];
    struct fleet_cluster *c = &r->clusters[r->n_clusters++];
    const struct doc_node *u = doc_map_get(m, "unreachable");
    int p;
    str_at(m, "name", c->name, sizeof(c->name));
    str_at(m, "applied", c->applied, sizeof(c->applied));
    p = fleet_phase_from_name(doc_map_str(m, "phase") ? doc_map_str(m, "phase") : "pending");
    c->phase = p < 0 ? FLEET_PENDING : (enum fleet_phase)p;
    if (c->phase == FLEET_APPLYING)
      c->phase = FLEET_PENDING; /* interrupted by the stop or crash: do it again */
    c->wave = (unsigned)u64_at(m, "wave");
    if (c->wave >= r->n_waves && r->n_waves)
      c->wave = (unsigned)r->n_waves - 1;
    c->since = u64_at(m, "since");
    c->bake_until = u64_at(m, "bakeUntil");
    c->unreachable_since = u64_at(m, "unreachableSince");
    c->retry_at = u64_at(m, "retryAt");
    c->unreachable = doc_is(u, DOC_BOOL) && u->u.b;
    c->attempts = (unsigned)u64_at(m, "attempts");
    str_at(m, "lastError", c->last_error, sizeof(c->last_error));
  }
  if (!r->n_waves && r->n_clusters) {
    /* a damaged file: start the rollout over */
    r->state = FLEET_ROLLOUT_IDLE;
  }
out:
  if (rc < 0)
    err_prefix(err, "cannot read the daemon state %s (move it away to start afresh)", path);
  buf_dispose(&b);
  doc_arena_free(a);
  free(path);
  return rc;
}
