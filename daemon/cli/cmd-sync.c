/* egressd sync --once: one reconcile pass over every configured cluster, in
 * parallel, as the daemon runs it; prints per cluster what was created,
 * updated, deleted, left unchanged or failed, and the gateways' health. Exit
 * 0 when every cluster is in sync and healthy, 1 when any is not, 2 for
 * usage and configuration errors.
 *
 * When standard error is a terminal, each cluster's progress goes there as it
 * happens (one line per stage, tallies at most once a second per cluster);
 * standard output is the same report with or without one (scripts and
 * tests/integration/test_sync.py parse it). When you change either, also
 * touch docs/reconcile.md, docs/man/egressd-sync.1 and
 * tests/integration/test_failfast.py.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/mem.h"
#include "base/str.h"
#include "base/timeutil.h"
#include "cli/cli-reconcile.h"
#include "cli/cli.h"

static void usage(FILE *f) {
  fprintf(f, "usage: egressd sync --once [--dry-run] [--config FILE] [--cluster NAME]\n"
             "                    [--repo DIR | --rev REV] [--allow-prune N]\n\n"
             "Make every cluster match the config repo once: server-side apply what differs,\n"
             "delete what egressd created and no longer renders (within the prune budget), and\n"
             "wait for the egress gateways to become healthy (not when a write failed).\n"
             "Clusters proceed in parallel; when standard error is a terminal, each\n"
             "cluster's progress is shown there.\n\n");
  cli_reconcile_usage_options(f);
  fprintf(f, "  --once             one pass, then exit (the daemon is egressd run)\n"
             "  --dry-run          plan and let the API servers validate (dryRun=All); write\n"
             "                     nothing, delete nothing\n"
             "  --allow-prune N    allow this run to delete up to N objects per cluster, in\n"
             "                     place of the prune budget (what the commit trailer\n"
             "                     Egressd-Allow-Prune: N does)\n"
             "  --no-health        do not wait for the gateways to become healthy\n"
             "  -h, --help         show this help\n\n"
             "Exit status: 0 all clusters in sync and healthy, 1 any cluster failed, partly\n"
             "failed or is unhealthy, 2 usage or configuration error.\n");
}

/* ---- progress on a terminal ---- */

struct progress_line {
  int stage;                 /* enum apply_stage last shown; -1: none */
  size_t done, failed;       /* the tally last shown in that stage */
  uint64_t at;               /* when */
};

struct progress {
  const struct cli_reconcile *rc;
  struct progress_line *lines; /* per cluster */
  char health_timeout[32];
};

static void show_tally(const char *name, const char *verb, size_t done, size_t total,
                       size_t failed) {
  if (failed)
    fprintf(stderr, "%s: %s %zu/%zu, %zu failed\n", name, verb, done, total, failed);
  else
    fprintf(stderr, "%s: %s %zu/%zu\n", name, verb, done, total);
}

/* The tally of a writing stage: (done, total, failed) of @p for @stage. */
static bool stage_tally(int stage, const struct apply_progress *p, size_t *done, size_t *total,
                        size_t *failed, const char **verb) {
  if (stage == APPLY_STAGE_APPLY && p->apply_total) {
    *done = p->apply_done, *total = p->apply_total, *failed = p->apply_failed, *verb = "applying";
    return true;
  }
  if (stage == APPLY_STAGE_PRUNE && p->delete_total) {
    *done = p->delete_done, *total = p->delete_total, *failed = p->delete_failed;
    *verb = "deleting";
    return true;
  }
  return false;
}

/* The apply jobs' progress hook: a line when a cluster enters a stage, and
 * while it writes, its tally at most once a second. */
static void on_progress(void *userdata, struct apply_job *job) {
  struct progress *pr = userdata;
  const struct apply_result *res = apply_job_result(job);
  struct progress_line *l = NULL;
  struct apply_progress p;
  uint64_t now = time_now_mono_usec();
  size_t done, total, failed;
  const char *verb, *name = res->cluster;
  int from;

  for (size_t i = 0; i < pr->rc->n_clusters && !l; i++)
    if (pr->rc->clusters[i].name == res->cluster)
      l = &pr->lines[i];
  if (!l || ((int)apply_job_stage(job) == l->stage && now - l->at < USEC_PER_SEC))
    return; /* nothing to show yet: spare counting the objects */
  apply_job_progress(job, &p);
  if ((int)p.stage == l->stage) {
    if (now - l->at >= USEC_PER_SEC && stage_tally(l->stage, &p, &done, &total, &failed, &verb) &&
        (done != l->done || failed != l->failed)) {
      show_tally(name, verb, done, total, failed);
      l->done = done, l->failed = failed, l->at = now;
    }
    return;
  }
  /* leaving a writing stage: its last tally, unless it was just shown */
  if (stage_tally(l->stage, &p, &done, &total, &failed, &verb) &&
      (done != l->done || failed != l->failed))
    show_tally(name, verb, done, total, failed);
  from = l->stage;
  l->stage = (int)p.stage;
  l->at = now;
  l->done = l->failed = 0;
  switch (p.stage) {
  case APPLY_STAGE_DISCOVER:
    fprintf(stderr, "%s: discovering the API\n", name);
    break;
  case APPLY_STAGE_READ:
    fprintf(stderr, "%s: reading the live objects\n", name);
    break;
  case APPLY_STAGE_CHECK:
    fprintf(stderr, "%s: checking the names of the objects to create\n", name);
    break;
  case APPLY_STAGE_APPLY:
  case APPLY_STAGE_PRUNE:
    if (stage_tally(l->stage, &p, &done, &total, &failed, &verb)) {
      if (from != APPLY_STAGE_GATE) /* back from the gate: shown as it got there */
        show_tally(name, verb, done, total, failed);
      l->done = done, l->failed = failed;
    }
    break;
  case APPLY_STAGE_GATE:
    fprintf(stderr, "%s: waiting for the new gateways to become healthy before routing to them "
                    "(up to %s)\n",
            name, pr->health_timeout);
    break;
  case APPLY_STAGE_HEALTH:
    fprintf(stderr, "%s: waiting for the gateways to become healthy (up to %s)\n", name,
            pr->health_timeout);
    break;
  case APPLY_STAGE_DONE:
    if (res->outcome == APPLY_OUTCOME_FAILED)
      fprintf(stderr, "%s: failed: %s\n", name, res->err.msg);
    else if (res->failed + res->conflicts)
      fprintf(stderr, "%s: done: %s, %zu failed; %s%s\n", name, apply_outcome_name(res->outcome),
              res->failed + res->conflicts, res->health == APPLY_HEALTH_UNKNOWN ? "health " : "",
              apply_health_name(res->health));
    else
      fprintf(stderr, "%s: done: %s; %s%s\n", name, apply_outcome_name(res->outcome),
              res->health == APPLY_HEALTH_UNKNOWN ? "health " : "",
              apply_health_name(res->health));
    break;
  }
}

static void report(const struct cli_reconcile *rc, const struct cli_cluster *cl, bool dry_run,
                   bool *ok) {
  const struct apply_result *res = cl->job ? apply_job_result(cl->job) : NULL;
  char t[ERR_MSG_MAX + ERR_PATH_MAX], took[32];

  if (!res || err_isset(&res->err) || !apply_job_finished(cl->job)) {
    printf("%s: failed: %s\n", cl->name,
           err_isset(&cl->setup_err) ? err_format(&cl->setup_err, t, sizeof(t))
           : res && err_isset(&res->err) ? err_format(&res->err, t, sizeof(t))
                                          : "did not finish in time");
    *ok = false;
    return;
  }
  time_format_duration(took, sizeof(took), res->finished_usec - res->started_usec);
  printf("%s: %s%s: %zu created, %zu updated, %zu deleted, %zu unchanged, %zu failed; %s (%s, "
         "Istio %s, %s)\n",
         cl->name, dry_run ? "dry run " : "", apply_outcome_name(res->outcome),
         res->created, res->updated, dry_run ? res->count[PLAN_DELETE] : res->deleted,
         res->count[PLAN_UNCHANGED], res->failed + res->conflicts,
         apply_health_name(res->health), rc->source, res->istio_api_version, took);
  for (size_t i = 0; i < res->n_objects; i++) {
    const struct apply_object *o = &res->objects[i];
    if (o->error && !o->namespace_missing)
      printf("  %s %s/%s: %s\n", o->kind, o->namespace, o->name, o->error);
  }
  if (res->missing_namespaces[0]) /* one line for all the objects it failed */
    printf("  cluster %s: %s\n", cl->name, res->missing_namespaces);
  if (res->prune_refused)
    printf("  %s\n", res->prune_refused_why);
  if (res->count[PLAN_ORPHAN])
    printf("  %zu object(s) carry egressd's labels but are not in its inventory; left alone\n",
           res->count[PLAN_ORPHAN]);
  if (res->health == APPLY_HEALTH_FAILED || res->health == APPLY_HEALTH_TIMEOUT ||
      res->health == APPLY_HEALTH_PROGRESSING ||
      (res->health == APPLY_HEALTH_UNKNOWN && res->health_message[0]))
    printf("  health: %s\n", res->health_message);
  if (res->outcome != APPLY_OUTCOME_OK ||
      (res->health != APPLY_HEALTH_OK && res->health != APPLY_HEALTH_UNKNOWN))
    *ok = false;
}

int cmd_sync(int argc, char **argv) {
  enum { OPT_ONCE = 2000, OPT_DRY, OPT_ALLOW, OPT_NOHEALTH };
  static const struct option opts[] = {CLI_RECONCILE_LONG_OPTIONS,
                                       {"once", no_argument, NULL, OPT_ONCE},
                                       {"dry-run", no_argument, NULL, OPT_DRY},
                                       {"allow-prune", required_argument, NULL, OPT_ALLOW},
                                       {"no-health", no_argument, NULL, OPT_NOHEALTH},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  struct cli_reconcile_opts o = {0};
  struct cli_reconcile rc;
  struct progress pr = {0};
  bool once = false, dry_run = false, ok = true;
  unsigned flags = 0;
  int allow = -1, c, r;

  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (cli_reconcile_option(&o, c, optarg))
      continue;
    switch (c) {
    case OPT_ONCE:
      once = true;
      break;
    case OPT_DRY:
      dry_run = true;
      break;
    case OPT_ALLOW:
      if (str_to_int(optarg, 0, 1000000, &allow) < 0)
        return cli_usage_error("sync", "--allow-prune needs a number of deletions");
      break;
    case OPT_NOHEALTH:
      flags |= APPLY_NO_HEALTH;
      break;
    case 'h':
      usage(stdout);
      return CLI_EXIT_OK;
    default:
      return cli_usage_error("sync", "unknown option");
    }
  }
  if (!once)
    return cli_usage_error("sync", "only one pass is supported here: pass --once (the daemon, "
                                   "which keeps syncing, is 'egressd run')");
  if (optind < argc)
    return cli_usage_error("sync", "unexpected argument '%s'", argv[optind]);
  if ((r = cli_reconcile_open(&rc, &o, "sync")) != CLI_EXIT_OK)
    return r;
  if (allow >= 0)
    rc.prune_allowance = (unsigned)allow;
  if (dry_run)
    flags |= APPLY_DRY_RUN;
  if (isatty(STDERR_FILENO)) {
    pr.rc = &rc;
    pr.lines = xcalloc(rc.n_clusters + 1, sizeof(*pr.lines));
    for (size_t i = 0; i < rc.n_clusters; i++)
      pr.lines[i].stage = -1;
    time_format_duration(pr.health_timeout, sizeof(pr.health_timeout),
                         rc.hc->sync.health_timeout_usec);
    rc.progress = on_progress;
    rc.progress_userdata = &pr;
  }
  if (cli_reconcile_run(&rc, flags) < 0)
    fprintf(stderr, "egressd sync: gave up waiting for the clusters\n");
  for (size_t i = 0; i < rc.n_clusters; i++)
    report(&rc, &rc.clusters[i], dry_run, &ok);
  cli_reconcile_close(&rc);
  free(pr.lines);
  return ok ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
