/* What the daemon publishes: the one-line STATUS= for `systemctl status`,
 * status.json for `egressd status`, and the Prometheus textfile. Nothing
 * secret is ever in them: commit ids, names, counts, error messages (which
 * never carry credentials). All files are replaced atomically. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/timeutil.h"
#include "doc/doc.h"
#include "svc/svc-int.h"

static const double bucket_bounds[SVC_HISTOGRAM_BUCKETS] = {0.05, 0.1, 0.25, 0.5, 1,
                                                            2.5,  5,   10,   30,  60};

static const char *short_id(const char *c) {
  static __thread char buf[16];
  str_copy(buf, 8, c && *c ? c : "-");
  return buf;
}

static const struct svc_repo *target_repo(const struct svc *d) {
  for (size_t i = 0; i < SVC_REPO_SLOTS; i++)
    if (d->repos[i].repo && strcmp(d->repos[i].commit, d->target) == 0)
      return &d->repos[i];
  return NULL;
}

void svc_status_line(const struct svc *d, char *buf, size_t size) {
  const struct fleet_rollout *r = &d->rollout;
  const struct svc_repo *t = target_repo(d);
  size_t counts[_FLEET_PHASE_MAX], n = 0, failed = 0, out_of_sync = 0, drift = 0;
  char signer[300] = "", age[64] = "repository not polled yet", tail[1200] = "";
  uint64_t now = time_now_real_usec();

  fleet_rollout_counts(r, counts);
  for (size_t i = 0; i < d->n_clusters; i++) {
    drift += d->clusters[i].drift_corrected;
    failed += str_eq(d->clusters[i].last_outcome, "failed") || d->clusters[i].setup_err.code;
    out_of_sync += str_eq(d->clusters[i].last_outcome, "partial");
  }
  if (d->last_poll) {
    char ago[32] = "0s";
    if (now > d->last_poll && now - d->last_poll >= USEC_PER_SEC)
      time_format_duration(ago, sizeof(ago), (now - d->last_poll) / USEC_PER_SEC * USEC_PER_SEC);
    str_format(age, sizeof(age), "checked %s ago", ago);
  }
  if (t && t->verified)
    str_format(signer, sizeof(signer), " (verified: %s)", t->principal);
  else if (t)
    str_format(signer, sizeof(signer), " (unsigned: verification off)");
  if (d->rejected[0])
    str_format(tail, sizeof(tail), "; rejected %s (%s): %s", short_id(d->rejected),
               d->rejected_stage, d->rejected_error);
  else if (d->poll_error[0])
    str_format(tail, sizeof(tail), "; repository: %s", d->poll_error);

  if (d->stopped) {
    n = str_format(buf, size, "stopped");
  } else if (d->stopping) {
    n = str_format(buf, size, "stopping");
  } else if (!d->target[0]) {
    n = str_format(buf, size, "waiting for the first valid commit of %s%s", d->hc->repo.url_shown,
                   d->poll_error[0] ? "" : "");
  } else if (r->state == FLEET_ROLLOUT_HALTED) {
    n = str_format(buf, size, "halted at %s%s: %s", short_id(r->target), signer, r->halt_reason);
  } else if (r->state == FLEET_ROLLOUT_PAUSED) {
    n = str_format(buf, size, "paused rolling out %s: wave %u/%zu, %zu/%zu clusters done",
                   short_id(r->target), r->wave + 1, r->n_waves, counts[FLEET_DONE], r->n_clusters);
  } else if (r->state == FLEET_ROLLOUT_RUNNING) {
    n = str_format(buf, size, "rolling out %s%s: wave %u/%zu (%s), %zu/%zu clusters done",
                   short_id(r->target), signer, r->wave + 1, r->n_waves,
                   r->wave < r->n_waves ? r->waves[r->wave].name : "-", counts[FLEET_DONE],
                   r->n_clusters);
  } else if (failed || out_of_sync) {
    n = str_format(buf, size, "degraded: %zu/%zu clusters at %s%s, %zu out of sync, %zu failed, "
                              "%zu drift corrected, %s",
                   counts[FLEET_DONE], r->n_clusters, short_id(r->target), signer, out_of_sync,
                   failed, drift, age);
  } else {
    n = str_format(buf, size, "in sync: %zu/%zu clusters at %s%s, %zu drift corrected, %s",
                   counts[FLEET_DONE], r->n_clusters, short_id(r->target), signer, drift, age);
  }
  if (n < size && d->coord) {
    /* coordination: what this member does, and a coordination cluster
     * it cannot reach (it then writes nowhere) */
    uint64_t mono = time_now_mono_usec();
    size_t owned = 0;
    const char *why;
    for (size_t i = 0; i < d->n_clusters; i++)
      owned += coord_owns(d->coord, i, mono);
    if (!coord_reachable(d->coord, &why) && why[0])
      n += str_format(buf + n, size - n, "; member %s: coordination cluster unreachable, "
                                         "writing to %zu cluster%s (%s)",
                      coord_identity(d->coord), owned, owned == 1 ? "" : "s", why);
    else if (coord_standby(d->coord))
      n += str_format(buf + n, size - n, "; member %s: %s%s%s", coord_identity(d->coord),
                      owned ? "active (holds egressd-leader)" : "standby",
                      why[0] ? "; coordination: " : "", why);
    else
      n += str_format(buf + n, size - n, "; member %s: owns %zu/%zu clusters%s%s",
                      coord_identity(d->coord), owned, d->n_clusters,
                      why[0] ? "; coordination: " : "", why);
  }
  if (n < size)
    str_copy(buf + n, size - n, tail);
}

static void set_s(struct doc_arena *a, struct doc_node *m, const char *k, const char *v) {
  doc_map_set(a, m, k, v && *v ? doc_new_str(a, v) : doc_new_null(a));
}

static void set_time(struct doc_arena *a, struct doc_node *m, const char *k, uint64_t real) {
  char t[40];
  if (!real) {
    doc_map_set(a, m, k, doc_new_null(a));
    return;
  }
  time_format_rfc3339(t, sizeof(t), real);
  doc_map_set(a, m, k, doc_new_str(a, t));
}

static void set_n(struct doc_arena *a, struct doc_node *m, const char *k, uint64_t v) {
  doc_map_set(a, m, k, doc_new_int(a, (int64_t)v));
}

/* status.json's "coordination": the members and who holds what. */
static struct doc_node *coord_status(const struct svc *d, struct doc_arena *a) {
  struct doc_node *m = doc_new_map(a), *members = doc_new_seq(a);
  struct coord_member mem[64];
  uint64_t now = time_now_mono_usec();
  size_t n = coord_members(d->coord, mem, sizeof(mem) / sizeof(mem[0]), now);
  const char *why;

  set_s(a, m, "identity", coord_identity(d->coord));
  set_s(a, m, "mode", coord_standby(d->coord) ? "standby" : "sharded");
  doc_map_set(a, m, "reachable", doc_new_bool(a, coord_reachable(d->coord, &why)));
  set_s(a, m, "error", why);
  for (size_t i = 0; i < n; i++) {
    struct doc_node *e = doc_new_map(a);
    set_s(a, e, "identity", mem[i].identity);
    doc_map_set(a, e, "live", doc_new_bool(a, mem[i].live));
    doc_map_set(a, e, "leaseAgeSeconds", doc_new_int(a, (int64_t)(mem[i].age_usec / USEC_PER_SEC)));
    doc_seq_push(a, members, e);
  }
  doc_map_set(a, m, "members", members);
  return m;
}

int svc_status_write(const struct svc *d, struct err *err) {
  struct doc_arena *a = doc_arena_new();
  struct doc_node *root = doc_new_map(a), *repo = doc_new_map(a), *target = doc_new_map(a);
  struct doc_node *rollout = doc_new_map(a), *waves = doc_new_seq(a), *clusters = doc_new_seq(a);
  struct doc_node *ledger = doc_new_map(a);
  const struct svc_repo *t = target_repo(d);
  const struct fleet_rollout *r = &d->rollout;
  struct buf out = BUF_INIT;
  char *path = path_join(d->hc->runtime_dir, SVC_STATUS_FILE);
  char line[sizeof(d->status_line)], root_b64[LEDGER_B64_HASH_SIZE];
  uint8_t root_hash[LEDGER_HASH_SIZE];
  int rc;

  set_s(a, root, "version", EGRESSD_VERSION);
  set_n(a, root, "pid", (uint64_t)getpid());
  set_time(a, root, "updated", time_now_real_usec());
  set_time(a, root, "started", d->started);
  set_s(a, root, "state", d->stopped    ? "stopped"
                          : d->stopping ? "stopping"
                          : d->ready    ? "running"
                                        : "starting");
  svc_status_line(d, line, sizeof(line));
  set_s(a, root, "status", line);
  set_s(a, repo, "url", d->hc->repo.url_shown);
  set_s(a, repo, "ref", d->hc->repo.ref);
  set_time(a, repo, "lastPoll", d->last_poll);
  set_s(a, repo, "head", d->head);
  set_s(a, repo, "error", d->poll_error);
  if (d->webhook) { /* ---- webhook (webhook.h) ---- */
    struct doc_node *wh = doc_new_map(a);
    struct webhook_stats ws;
    uint64_t total = 0, refused = 0;
    webhook_server_stats(d->webhook, &ws);
    for (size_t i = 0; i < _WEBHOOK_RESULT_MAX; i++) {
      total += ws.requests[i];
      if (i != WEBHOOK_RESULT_DOORBELL && i != WEBHOOK_RESULT_IGNORED && i != WEBHOOK_RESULT_PING)
        refused += ws.requests[i];
    }
    set_s(a, wh, "listen", webhook_server_address(d->webhook));
    doc_map_set(a, wh, "socketActivated", doc_new_bool(a, webhook_server_activated(d->webhook)));
    set_n(a, wh, "requests", total);
    set_n(a, wh, "doorbells", ws.requests[WEBHOOK_RESULT_DOORBELL]);
    set_n(a, wh, "refused", refused);
    set_time(a, wh, "lastDoorbell", ws.last_doorbell);
    doc_map_set(a, repo, "webhook", wh);
  }
  doc_map_set(a, root, "repository", repo);
  set_s(a, target, "commit", d->target);
  if (t) {
    set_s(a, target, "tree", t->tree);
    set_s(a, target, "summary", t->summary);
    doc_map_set(a, target, "verified", doc_new_bool(a, t->verified));
    set_s(a, target, "signer", t->principal);
    set_s(a, target, "key", t->key);
  }
  doc_map_set(a, root, "target", target);
  if (d->rejected[0]) {
    struct doc_node *rej = doc_new_map(a);
    set_s(a, rej, "commit", d->rejected);
    set_s(a, rej, "stage", d->rejected_stage);
    set_s(a, rej, "error", d->rejected_error);
    doc_map_set(a, root, "rejected", rej);
  }
  set_s(a, rollout, "target", r->target);
  set_s(a, rollout, "state", fleet_state_name(r->state));
  set_n(a, rollout, "wave", r->wave);
  set_s(a, rollout, "haltReason", r->halt_reason);
  set_time(a, rollout, "started", r->started);
  for (size_t i = 0; i < r->n_waves; i++) {
    struct doc_node *w = doc_new_map(a);
    set_s(a, w, "name", r->waves[i].name);
    set_n(a, w, "maxParallel", r->waves[i].max_parallel);
    set_n(a, w, "maxFailures", r->waves[i].max_failures);
    set_n(a, w, "bakeSeconds", r->waves[i].bake_usec / USEC_PER_SEC);
    doc_seq_push(a, waves, w);
  }
  doc_map_set(a, rollout, "waves", waves);
  doc_map_set(a, root, "rollout", rollout);
  for (size_t i = 0; i < d->n_clusters; i++) {
    const struct svc_cluster *c = &d->clusters[i];
    int fi = fleet_cluster_index(r, c->name);
    const struct fleet_cluster *fc = fi >= 0 ? &r->clusters[fi] : NULL;
    struct doc_node *m = doc_new_map(a);

    set_s(a, m, "name", c->name);
    set_s(a, m, "wave", fc && fc->wave < r->n_waves ? r->waves[fc->wave].name : NULL);
    set_s(a, m, "phase", fc ? fleet_phase_name(fc->phase) : "not in the Fleet");
    set_s(a, m, "applied", fc ? fleet_cluster_commit(r, (size_t)fi) : NULL);
    set_s(a, m, "lastOutcome", c->last_outcome);
    set_s(a, m, "health", c->health);
    set_time(a, m, "lastSync", c->last_sync);
    set_time(a, m, "lastSuccess", c->last_success);
    set_s(a, m, "lastError", c->setup_err.code ? c->setup_err.msg
                             : c->last_error[0]  ? c->last_error
                             : fc                ? fc->last_error
                                                 : NULL);
    set_n(a, m, "objects", c->objects);
    set_n(a, m, "driftCorrected", c->drift_corrected);
    set_n(a, m, "syncs", c->syncs);
    set_n(a, m, "failures", c->failures);
    doc_map_set(a, m, "syncing", doc_new_bool(a, c->job != NULL));
    {
      struct doc_node *wm = doc_new_map(a);
      uint64_t since, now = time_now_mono_usec();
      set_s(a, wm, "state", svc_watch_state(c, &since));
      set_time(a, wm, "since", since && since <= now ? time_now_real_usec() - (now - since) : 0);
      set_n(a, wm, "events", svc_watch_events(c));
      set_n(a, wm, "driftEvents", svc_watch_drift_events(c));
      doc_map_set(a, m, "watch", wm);
    }
    if (d->coord) {
      struct doc_node *lm = doc_new_map(a);
      uint64_t age, now = time_now_mono_usec();
      set_s(a, lm, "holder", coord_holder(d->coord, i, now, &age));
      set_s(a, lm, "assigned", coord_assigned(d->coord, i));
      doc_map_set(a, lm, "ownedHere", doc_new_bool(a, coord_owns(d->coord, i, now)));
      doc_map_set(a, lm, "ageSeconds", doc_new_int(a, (int64_t)(age / USEC_PER_SEC)));
      doc_map_set(a, m, "lease", lm);
    }
    doc_seq_push(a, clusters, m);
  }
  doc_map_set(a, root, "clusters", clusters);
  if (d->coord)
    doc_map_set(a, root, "coordination", coord_status(d, a));
  if (d->ledger) {
    ledger_root(d->ledger, root_hash);
    set_n(a, ledger, "size", ledger_size(d->ledger));
    set_s(a, ledger, "root", ledger_hash_b64(root_hash, root_b64));
    set_s(a, ledger, "dir", d->hc->ledger_dir);
  }
  doc_map_set(a, root, "ledger", ledger);
  doc_emit_json(root, &out, DOC_JSON_PRETTY);
  rc = file_replace(path, out.data, out.len, 0644, err);
  buf_dispose(&out);
  free(path);
  doc_arena_free(a);
  return rc;
}

/* Label values are escaped as the text format wants (\\, \", \n). */
static void label(struct buf *b, const char *v) {
  for (; *v; v++) {
    if (*v == '\\' || *v == '"')
      buf_putc(b, '\\');
    if (*v == '\n') {
      buf_puts(b, "\\n");
      continue;
    }
    buf_putc(b, *v);
  }
}

int svc_metrics_write(const struct svc *d, struct err *err) {
  struct buf b = BUF_INIT;
  int rc;

  if (!d->hc->metrics_textfile)
    return 0;
  buf_puts(&b, "# HELP egressd_info Version of the running egressd.\n"
               "# TYPE egressd_info gauge\n");
  buf_printf(&b, "egressd_info{version=\"%s\"} 1\n", EGRESSD_VERSION);
  buf_puts(&b, "# HELP egressd_target_info The commit in force (the last valid, verified one).\n"
               "# TYPE egressd_target_info gauge\n");
  buf_puts(&b, "egressd_target_info{commit=\"");
  label(&b, d->target);
  buf_puts(&b, "\"} 1\n");
  buf_printf(&b, "# HELP egressd_rollout_state Rollout state (1 for the current one).\n"
                 "# TYPE egressd_rollout_state gauge\n");
  for (int s = 0; s < _FLEET_ROLLOUT_MAX; s++)
    buf_printf(&b, "egressd_rollout_state{state=\"%s\"} %d\n",
               fleet_state_name((enum fleet_state)s), d->rollout.state == (enum fleet_state)s);
  buf_printf(&b, "# HELP egressd_polls_total Polls of the config repo.\n"
                 "# TYPE egressd_polls_total counter\negressd_polls_total %lu\n"
                 "# HELP egressd_poll_failures_total Polls that failed.\n"
                 "# TYPE egressd_poll_failures_total counter\negressd_poll_failures_total %lu\n"
                 "# HELP egressd_commits_rejected_total Commits refused (signature, validation).\n"
                 "# TYPE egressd_commits_rejected_total counter\n"
                 "egressd_commits_rejected_total %lu\n",
             d->polls, d->poll_failures, d->commits_rejected);
  if (d->webhook) { /* ---- webhook (webhook.h): every result, 0 included ---- */
    struct webhook_stats ws;
    webhook_server_stats(d->webhook, &ws);
    buf_puts(&b, "# HELP egressd_webhook_requests_total Webhook requests by what became of them.\n"
                 "# TYPE egressd_webhook_requests_total counter\n");
    for (size_t i = 0; i < _WEBHOOK_RESULT_MAX; i++)
      buf_printf(&b, "egressd_webhook_requests_total{result=\"%s\"} %lu\n",
                 webhook_result_name((enum webhook_result)i), ws.requests[i]);
  }
  buf_puts(&b, "# HELP egressd_syncs_total Syncs per cluster.\n# TYPE egressd_syncs_total counter\n");
  for (size_t i = 0; i < d->n_clusters; i++) {
    buf_puts(&b, "egressd_syncs_total{cluster=\"");
    label(&b, d->clusters[i].name);
    buf_printf(&b, "\"} %lu\n", d->clusters[i].syncs);
  }
  buf_puts(&b, "# HELP egressd_sync_failures_total Syncs that failed or partly failed.\n"
               "# TYPE egressd_sync_failures_total counter\n");
  for (size_t i = 0; i < d->n_clusters; i++) {
    buf_puts(&b, "egressd_sync_failures_total{cluster=\"");
    label(&b, d->clusters[i].name);
    buf_printf(&b, "\"} %lu\n", d->clusters[i].failures);
  }
  buf_puts(&b, "# HELP egressd_drift_corrected_total Out-of-band changes corrected.\n"
               "# TYPE egressd_drift_corrected_total counter\n");
  for (size_t i = 0; i < d->n_clusters; i++) {
    buf_puts(&b, "egressd_drift_corrected_total{cluster=\"");
    label(&b, d->clusters[i].name);
    buf_printf(&b, "\"} %lu\n", d->clusters[i].drift_corrected);
  }
  buf_puts(&b, "# HELP egressd_watch_up Whether every watch of the cluster streams (1) or "
               "drift is found by the periodic check only (0).\n# TYPE egressd_watch_up gauge\n");
  for (size_t i = 0; i < d->n_clusters; i++) {
    buf_puts(&b, "egressd_watch_up{cluster=\"");
    label(&b, d->clusters[i].name);
    buf_printf(&b, "\"} %d\n", svc_watch_up(&d->clusters[i]) ? 1 : 0);
  }
  buf_puts(&b, "# HELP egressd_watch_events_total Watch events about egressd's objects.\n"
               "# TYPE egressd_watch_events_total counter\n");
  for (size_t i = 0; i < d->n_clusters; i++) {
    buf_puts(&b, "egressd_watch_events_total{cluster=\"");
    label(&b, d->clusters[i].name);
    buf_printf(&b, "\"} %lu\n", svc_watch_events(&d->clusters[i]));
  }
  buf_puts(&b, "# HELP egressd_last_success_timestamp_seconds Last sync that left the cluster in "
               "sync and healthy.\n# TYPE egressd_last_success_timestamp_seconds gauge\n");
  for (size_t i = 0; i < d->n_clusters; i++) {
    buf_puts(&b, "egressd_last_success_timestamp_seconds{cluster=\"");
    label(&b, d->clusters[i].name);
    buf_printf(&b, "\"} %llu\n",
               (unsigned long long)(d->clusters[i].last_success / USEC_PER_SEC));
  }
  buf_puts(&b, "# HELP egressd_apply_duration_seconds Duration of syncs that wrote something.\n"
               "# TYPE egressd_apply_duration_seconds histogram\n");
  for (size_t i = 0; i < d->n_clusters; i++) {
    const struct svc_cluster *c = &d->clusters[i];
    unsigned long cum = 0;
    for (size_t k = 0; k <= SVC_HISTOGRAM_BUCKETS; k++) {
      cum += c->apply_buckets[k];
      buf_puts(&b, "egressd_apply_duration_seconds_bucket{cluster=\"");
      label(&b, c->name);
      if (k < SVC_HISTOGRAM_BUCKETS)
        buf_printf(&b, "\",le=\"%g\"} %lu\n", bucket_bounds[k], cum);
      else
        buf_printf(&b, "\",le=\"+Inf\"} %lu\n", cum);
    }
    buf_puts(&b, "egressd_apply_duration_seconds_sum{cluster=\"");
    label(&b, c->name);
    buf_printf(&b, "\"} %.3f\n", c->apply_seconds_sum);
    buf_puts(&b, "egressd_apply_duration_seconds_count{cluster=\"");
    label(&b, c->name);
    buf_printf(&b, "\"} %lu\n", cum);
  }
  if (d->coord) {
    uint64_t now = time_now_mono_usec();
    struct coord_member mem[64];
    size_t n = coord_members(d->coord, mem, sizeof(mem) / sizeof(mem[0]), now), live = 0;
    for (size_t i = 0; i < n; i++)
      live += mem[i].live;
    buf_printf(&b, "# HELP egressd_coordination_reachable Whether the last round reached the "
                   "coordination cluster.\n# TYPE egressd_coordination_reachable gauge\n"
                   "egressd_coordination_reachable %d\n"
                   "# HELP egressd_members_live Members whose Lease is fresh.\n"
                   "# TYPE egressd_members_live gauge\negressd_members_live %zu\n",
               coord_reachable(d->coord, NULL) ? 1 : 0, live);
    buf_puts(&b, "# HELP egressd_cluster_owned Whether this member holds the cluster's Lease "
                 "and works on it.\n# TYPE egressd_cluster_owned gauge\n");
    for (size_t i = 0; i < d->n_clusters; i++) {
      buf_puts(&b, "egressd_cluster_owned{cluster=\"");
      label(&b, d->clusters[i].name);
      buf_printf(&b, "\"} %d\n", coord_owns(d->coord, i, now) ? 1 : 0);
    }
  }
  if (d->ledger)
    buf_printf(&b, "# HELP egressd_ledger_records Records in the signed ledger.\n"
                   "# TYPE egressd_ledger_records gauge\negressd_ledger_records %llu\n",
               (unsigned long long)ledger_size(d->ledger));
  rc = file_replace(d->hc->metrics_textfile, b.data, b.len, 0644, err);
  buf_dispose(&b);
  return rc;
}

/* For daemon.c: which bucket a duration falls in. */
size_t svc_histogram_bucket(double seconds);
size_t svc_histogram_bucket(double seconds) {
  for (size_t k = 0; k < SVC_HISTOGRAM_BUCKETS; k++)
    if (seconds <= bucket_bounds[k])
      return k;
  return SVC_HISTOGRAM_BUCKETS;
}
