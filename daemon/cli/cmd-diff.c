/* egressd diff: what a sync would change on each cluster, as a unified diff
 * of the live objects (the fields egressd manages) against the rendered ones.
 * Reads only (one discovery and one LIST per kind per cluster). Exit 0 no
 * difference, 1 differences, 2 an error, as `kubectl diff`. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/str.h"
#include "cli/cli-reconcile.h"
#include "cli/cli.h"
#include "doc/doc.h"
#include "gitsrc/gitsrc.h"
#include "plan/plan.h"

static void usage(FILE *f) {
  fprintf(f, "usage: egressd diff [--config FILE] [--cluster NAME] [--repo DIR | --rev REV]\n\n"
             "Show, per cluster, how the live objects differ from what the config repo renders:\n"
             "a unified diff per object of the fields egressd manages (live -> desired), then a\n"
             "summary per cluster on standard error. Nothing is written.\n\n");
  cli_reconcile_usage_options(f);
  fprintf(f, "  --color WHEN       always, never or auto (default: auto, on a terminal)\n"
             "  -h, --help         show this help\n\n"
             "Exit status: 0 no differences, 1 differences, 2 an error (as kubectl diff).\n");
}

static void print_colored(const struct buf *d, bool color) {
  const char *p = buf_cstr(d);

  if (!color) {
    fwrite(d->data ? d->data : "", 1, d->len, stdout);
    return;
  }
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
    const char *on = "";
    if (str_has_prefix(p, "+++") || str_has_prefix(p, "---"))
      on = "\033[1m";
    else if (*p == '+')
      on = "\033[32m";
    else if (*p == '-')
      on = "\033[31m";
    else if (*p == '@')
      on = "\033[36m";
    fputs(on, stdout);
    fwrite(p, 1, len - (nl ? 1 : 0), stdout);
    fputs(*on ? "\033[0m" : "", stdout);
    if (nl)
      fputc('\n', stdout);
    p += len;
  }
}

static int diff_cluster(const struct cli_cluster *c, bool color, size_t *ret_changes) {
  const struct plan *p = apply_job_plan(c->job);
  struct doc_arena *a = doc_arena_new();
  struct buf old = BUF_INIT, new = BUF_INIT, d = BUF_INIT;
  struct err err = ERR_INIT;
  int r = 0;

  *ret_changes = 0;
  for (size_t i = 0; i < p->n && r >= 0; i++) {
    const struct plan_item *it = &p->items[i];
    char name[600];

    if (it->action != PLAN_CREATE && it->action != PLAN_UPDATE && it->action != PLAN_DELETE &&
        it->action != PLAN_HELD)
      continue;
    buf_reset(&old);
    buf_reset(&new);
    buf_reset(&d);
    if (it->live &&
        (r = doc_emit_yaml(it->desired ? plan_live_projection(a, it->desired, it->live, "egressd")
                                       : plan_live_projection(a, NULL, it->live, "egressd"),
                           &old, &err)) < 0)
      break;
    if (it->desired && (r = doc_emit_yaml(it->desired, &new, &err)) < 0)
      break;
    str_format(name, sizeof(name), "%s/%s/%s/%s", c->name, it->kind, it->namespace, it->name);
    if ((r = gitsrc_diff_text(buf_cstr(&old), old.len, name, buf_cstr(&new), new.len, name, &d,
                              &err)) < 0)
      break;
    if (it->action == PLAN_HELD)
      printf("# %s: deletion held back: %s\n", name, p->prune_refused_why);
    print_colored(&d, color);
    (*ret_changes)++;
  }
  if (r < 0)
    err_print(&err, stderr, "egressd diff: ");
  buf_dispose(&old);
  buf_dispose(&new);
  buf_dispose(&d);
  doc_arena_free(a);
  return r;
}

int cmd_diff(int argc, char **argv) {
  static const struct option opts[] = {CLI_RECONCILE_LONG_OPTIONS,
                                       {"color", required_argument, NULL, 'C'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  struct cli_reconcile_opts o = {0};
  struct cli_reconcile rc;
  const char *color_when = "auto";
  bool color, any_diff = false, any_error = false;
  int c, rc_open;

  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (cli_reconcile_option(&o, c, optarg))
      continue;
    if (c == 'C') {
      color_when = optarg;
    } else if (c == 'h') {
      usage(stdout);
      return CLI_EXIT_OK;
    } else {
      return cli_usage_error("diff", "unknown option");
    }
  }
  if (optind < argc)
    return cli_usage_error("diff", "unexpected argument '%s'", argv[optind]);
  if (!str_eq(color_when, "auto") && !str_eq(color_when, "always") && !str_eq(color_when, "never"))
    return cli_usage_error("diff", "--color must be always, never or auto");
  color = str_eq(color_when, "always") || (str_eq(color_when, "auto") && cli_color(stdout));
  if ((rc_open = cli_reconcile_open(&rc, &o, "diff")) != CLI_EXIT_OK)
    return rc_open;
  if (cli_reconcile_run(&rc, APPLY_PLAN_ONLY) < 0)
    fprintf(stderr, "egressd diff: gave up waiting for the clusters\n");
  for (size_t i = 0; i < rc.n_clusters; i++) {
    struct cli_cluster *cl = &rc.clusters[i];
    const struct apply_result *res = cl->job ? apply_job_result(cl->job) : NULL;
    size_t changes = 0;
    char t[ERR_MSG_MAX + ERR_PATH_MAX];

    if (!res || err_isset(&res->err) || !apply_job_finished(cl->job)) {
      fprintf(stderr, "cluster %s: error: %s\n", cl->name,
              err_isset(&cl->setup_err) ? err_format(&cl->setup_err, t, sizeof(t))
              : res && err_isset(&res->err) ? err_format(&res->err, t, sizeof(t))
                                             : "did not finish in time");
      any_error = true;
      continue;
    }
    if (diff_cluster(cl, color, &changes) < 0)
      any_error = true;
    any_diff |= changes > 0;
    fprintf(stderr,
            "cluster %s (%s, Istio %s): %zu to create, %zu to update, %zu to delete, %zu "
            "unchanged%s%s\n",
            cl->name, rc.source, res->istio_api_version, res->count[PLAN_CREATE],
            res->count[PLAN_UPDATE], res->count[PLAN_DELETE], res->count[PLAN_UNCHANGED],
            res->prune_refused ? "; " : "", res->prune_refused ? res->prune_refused_why : "");
    if (res->count[PLAN_ORPHAN])
      fprintf(stderr, "cluster %s: %zu object(s) carry egressd's labels but are not in its "
                      "inventory; they are left alone\n",
              cl->name, res->count[PLAN_ORPHAN]);
  }
  cli_reconcile_close(&rc);
  return any_error ? CLI_EXIT_USAGE : any_diff ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
