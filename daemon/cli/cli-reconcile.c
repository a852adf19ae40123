/* What `egressd diff` and `egressd sync --once` share: the host config, the
 * config repo (a checkout, or a commit of a Git repository), one kube client
 * per cluster on one loop, and an apply job per cluster. */
#include "cli/cli-reconcile.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "base/fileset.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/timeutil.h"
#include "cli/cli.h"
#include "doc/doc.h"
#include "gitsrc/gitsrc.h"
#include "svc/svc.h"



void cli_reconcile_usage_options(FILE *f) {
  fprintf(f,
          "  --config FILE      host config (default " HOSTCONFIG_DEFAULT_PATH ")\n"
          "  --cluster NAME     only this cluster (default: every cluster of the host config\n"
          "                     that is in the Fleet)\n"
          "  --repo DIR         the config repo checked out in DIR\n"
          "  --rev REV          the config repo at commit REV of the Git repository\n"
          "                     --git-dir (default: the daemon's copy, <state.dir>/repo.git)\n"
          "                     Without --repo and --rev: the commit the daemon has in force\n"
          "                     (verified, valid; from <state.dir>/state.json)\n"
          "  --git-dir DIR      the Git repository for --rev\n"
          "  --istio-api V      render networking.istio.io version V instead of the one each\n"
          "                     cluster serves (v1, v1beta1, v1alpha3)\n"
          "  --timeout DURATION give up after this long (default 10m)\n");
}

/* Returns 1 when @c was one of the shared options (consumed), 0 if not. */
int cli_reconcile_option(struct cli_reconcile_opts *o, int c, const char *arg) {
  switch (c) {
  case CLI_OPT_CONFIG:
    o->config = arg;
    return 1;
  case CLI_OPT_CLUSTER:
    o->cluster = arg;
    return 1;
  case CLI_OPT_REPO:
    o->repo_dir = arg;
    return 1;
  case CLI_OPT_REV:
    o->rev = arg;
    return 1;
  case CLI_OPT_GIT_DIR:
    o->git_dir = arg;
    return 1;
  case CLI_OPT_ISTIO:
    o->istio_api = arg;
    return 1;
  case CLI_OPT_TIMEOUT:
    o->timeout = arg;
    return 1;
  default:
    return 0;
  }
}

static int load_rev(struct cli_reconcile *rc, const char *git_dir, const char *rev,
                    struct diag_list *diags, struct err *err) {
  struct gitsrc *src = NULL;
  struct gitsrc_oid oid;
  struct gitsrc_commit_info info = {0};
  struct fileset fs;
  struct intent_load_options lo = {0};
  const char *allow;
  int r;

  fileset_init(&fs, NULL);
  if ((r = gitsrc_global_init(err)) < 0 || (r = gitsrc_open_local(git_dir, &src, err)) < 0 ||
      (r = gitsrc_resolve(src, rev, &oid, err)) < 0 ||
      (r = gitsrc_commit_info(src, &oid, &info, err)) < 0 ||
      (r = gitsrc_tree_read(src, &oid, intent_file_suffixes, &fs, err)) < 0)
    goto out;
  str_format(rc->source, sizeof(rc->source), "commit %.12s", oid.hex);
  lo.root_name = "";
  lo.known_templates = render_template_names();
  r = intent_repo_load(&fs, &lo, &rc->repo, diags, err);
  allow = gitsrc_commit_trailer(&info, "Egressd-Allow-Prune");
  if (allow) {
    uint64_t n;
    if (str_to_u64(allow, 1000000, &n) < 0) {
      r = err_set(err, -EINVAL,
                  "commit %.12s: trailer Egressd-Allow-Prune: '%s' is not a number of deletions",
                  oid.hex, allow);
      goto out;
    }
    rc->prune_allowance = (unsigned)n;
  }
out:
  gitsrc_commit_info_dispose(&info);
  fileset_dispose(&fs);
  gitsrc_free(src);
  return r;
}

/* The commit the daemon has in force, from its state.json: verified and
 * valid, unlike whatever was last fetched. */
static int daemon_target(const struct hostconfig *hc, char *out, size_t size, struct err *err) {
  char *path = path_join(hc->state_dir, SVC_STATE_FILE);
  struct buf b = BUF_INIT;
  struct doc_arena *a = doc_arena_new();
  struct doc_node *root;
  const char *t;
  int r;

  if ((r = file_read_all(path, 16u << 20, &b, err)) < 0 ||
      (r = doc_parse_one(a, path, buf_cstr(&b), b.len, NULL, &root, err)) < 0)
    goto out;
  t = doc_map_str(root, "target");
  if (str_is_empty(t)) {
    r = err_set(err, -ENOENT, "the daemon has no commit in force yet (%s names none)", path);
    goto out;
  }
  str_copy(out, size, t);
out:
  if (r == -ENOENT && !err_isset(err))
    err_set(err, r, "%s does not exist", path);
  free(path);
  buf_dispose(&b);
  doc_arena_free(a);
  return r;
}

int cli_reconcile_open(struct cli_reconcile *rc, const struct cli_reconcile_opts *o,
                       const char *cmd) {
  struct diag_list diags = {0};
  struct err err = ERR_INIT;
  struct kube_options kopts;
  const char *config = o->config ? o->config : HOSTCONFIG_DEFAULT_PATH;
  int r;

  memset(rc, 0, sizeof(*rc));
  rc->cmd = cmd;
  rc->timeout_usec = 600 * USEC_PER_SEC;
  if (o->timeout && time_parse_duration(o->timeout, &rc->timeout_usec) < 0)
    return cli_usage_error(cmd, "--timeout '%s' is not a duration such as 30s or 5m", o->timeout);
  if (o->repo_dir && o->rev)
    return cli_usage_error(cmd, "give --repo or --rev, not both");
  if (o->istio_api && !render_istio_version_valid(o->istio_api))
    return cli_usage_error(cmd, "unknown Istio API version '%s'; use v1, v1beta1 or v1alpha3",
                           o->istio_api);
  r = hostconfig_load(config, &rc->hc, &diags, &err);
  if (r < 0) {
    diag_print(&diags, stderr, cli_color(stderr));
    if (err_isset(&err))
      err_print(&err, stderr, "egressd: ");
    else
      fprintf(stderr, "egressd %s: the host config %s is invalid\n", cmd, config);
    diag_list_dispose(&diags);
    return CLI_EXIT_USAGE;
  }
  if (o->repo_dir) {
    r = cli_repo_load_dir(o->repo_dir, &rc->repo, &diags, &err);
    str_format(rc->source, sizeof(rc->source), "%s", o->repo_dir);
  } else {
    char *git_dir = o->git_dir ? xstrdup(o->git_dir) : path_join(rc->hc->state_dir, "repo.git");
    char target[41] = "";
    const char *rev = o->rev;
    r = 0;
    if (!rev) {
      r = daemon_target(rc->hc, target, sizeof(target), &err);
      if (r < 0)
        err_prefix(&err, "no --repo or --rev given, and the daemon's commit in force cannot be "
                         "read; pass --repo DIR, or --rev REV (with --git-dir, or after egressd "
                         "fetch)");
      rev = target;
    }
    if (r == 0)
      r = load_rev(rc, git_dir, rev, &diags, &err);
    if (r == 0 && !o->rev)
      str_format(rc->source, sizeof(rc->source), "commit %.12s, in force", target);
    free(git_dir);
  }
  if (r < 0) {
    diag_print(&diags, stderr, cli_color(stderr));
    if (err_isset(&err))
      err_print(&err, stderr, "egressd: ");
    else
      fprintf(stderr, "egressd %s: the config repo is invalid; nothing was done\n", cmd);
    diag_list_dispose(&diags);
    return err_isset(&err) ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
  }
  diag_print(&diags, stderr, cli_color(stderr)); /* warnings */
  diag_list_dispose(&diags);

  if (kube_loop_new(&rc->loop, &err) < 0) {
    err_print(&err, stderr, "egressd: ");
    return CLI_EXIT_USAGE;
  }
  kube_options_init(&kopts);
  kopts.request_timeout_usec = rc->hc->sync.request_timeout_usec;
  rc->clusters = xcalloc(rc->hc->n_clusters + 1, sizeof(*rc->clusters));
  for (size_t i = 0; i < rc->hc->n_clusters; i++) {
    const struct hostconfig_cluster *hcl = &rc->hc->clusters[i];
    const struct intent_fleet_cluster *fc = intent_fleet_cluster_find(rc->repo->fleet, hcl->name);
    struct cli_cluster *c;
    struct err cerr = ERR_INIT;

    if (o->cluster && strcmp(o->cluster, hcl->name) != 0)
      continue;
    if (!fc) {
      fprintf(stderr, "egressd %s: cluster %s is in the host config but not in the Fleet of %s; "
                      "skipping it\n",
              cmd, hcl->name, rc->source);
      continue;
    }
    c = &rc->clusters[rc->n_clusters++];
    c->name = hcl->name;
    c->fleet_cluster = fc;
    c->inventory = xasprintf("%s/inventory/%s.json", rc->hc->state_dir, hcl->name);
    if (kube_client_new(rc->loop, hcl->name, hcl->kubeconfig, hcl->context, &kopts, &c->client,
                        NULL, &cerr) < 0)
      c->setup_err = cerr; /* the message names the cluster */
  }
  if (o->cluster && !rc->n_clusters) {
    fprintf(stderr, "egressd %s: no cluster '%s' in both the host config and the Fleet\n", cmd,
            o->cluster);
    return CLI_EXIT_USAGE;
  }
  rc->istio_api = o->istio_api ? o->istio_api : rc->hc->istio_api_version;
  return CLI_EXIT_OK;
}

int cli_reconcile_run(struct cli_reconcile *rc, unsigned flags) {
  struct apply_job **jobs = xcalloc(rc->n_clusters + 1, sizeof(*jobs));
  size_t n = 0;
  int r;

  for (size_t i = 0; i < rc->n_clusters; i++) {
    struct cli_cluster *c = &rc->clusters[i];
    struct apply_request req = {
        .cluster = c->name,
        .client = c->client,
        .repo = rc->repo,
        .fleet_cluster = c->fleet_cluster,
        .istio_api_version = rc->istio_api,
        .inventory_path = c->inventory,
        .prune_budget = rc->hc->sync.prune_budget,
        .prune_allowance = rc->prune_allowance,
        .flags = flags,
        .health_timeout_usec = rc->hc->sync.health_timeout_usec,
        .progress = rc->progress,
        .userdata = rc->progress_userdata,
    };
    if (err_isset(&c->setup_err))
      continue;
    if (apply_job_start(&req, &c->job, &c->setup_err) < 0)
      continue;
    jobs[n++] = c->job;
  }
  r = apply_jobs_wait(rc->loop, jobs, n, rc->timeout_usec);
  free(jobs);
  return r;
}

void cli_reconcile_close(struct cli_reconcile *rc) {
  for (size_t i = 0; i < rc->n_clusters; i++) {
    apply_job_free(rc->clusters[i].job);
    kube_client_free(rc->clusters[i].client);
    free(rc->clusters[i].inventory);
  }
  free(rc->clusters);
  kube_loop_free(rc->loop);
  intent_repo_free(rc->repo);
  hostconfig_free(rc->hc);
  memset(rc, 0, sizeof(*rc));
}
