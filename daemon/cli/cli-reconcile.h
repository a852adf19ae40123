/* Shared by `egressd diff` and `egressd sync`: see cli-reconcile.c. */
#pragma once

#include <stdio.h>

#include "apply/apply.h"
#include "base/err.h"
#include "intent/intent.h"
#include "kube/kube.h"
#include "render/render.h"
#include "svc/hostconfig.h"

/* getopt_long values of the shared options */
enum {
  CLI_OPT_CONFIG = 1000,
  CLI_OPT_CLUSTER,
  CLI_OPT_REPO,
  CLI_OPT_REV,
  CLI_OPT_GIT_DIR,
  CLI_OPT_ISTIO,
  CLI_OPT_TIMEOUT,
};

#define CLI_RECONCILE_LONG_OPTIONS                                                    \
  {"config", required_argument, NULL, CLI_OPT_CONFIG},                                \
      {"cluster", required_argument, NULL, CLI_OPT_CLUSTER},                          \
      {"repo", required_argument, NULL, CLI_OPT_REPO},                                \
      {"rev", required_argument, NULL, CLI_OPT_REV},                                  \
      {"git-dir", required_argument, NULL, CLI_OPT_GIT_DIR},                          \
      {"istio-api", required_argument, NULL, CLI_OPT_ISTIO},                          \
      {"timeout", required_argument, NULL, CLI_OPT_TIMEOUT}

struct cli_reconcile_opts {
  const char *config, *cluster, *repo_dir, *rev, *git_dir, *istio_api, *timeout;
};

struct cli_cluster {
  const char *name;
  const struct intent_fleet_cluster *fleet_cluster;
  struct kube_client *client;
  char *inventory;
  struct err setup_err;      /* the cluster could not be set up (bad kubeconfig) */
  struct apply_job *job;
};

struct cli_reconcile {
  const char *cmd;
  struct hostconfig *hc;
  struct intent_repo *repo;
  char source[600];          /* "repo-layout/example", "commit 3f2a1c9b7e21" */
  unsigned prune_allowance;
  const char *istio_api;
  uint64_t timeout_usec;
  struct kube_loop *loop;
  struct cli_cluster *clusters;
  size_t n_clusters;
  /* set before cli_reconcile_run(): the apply jobs' progress hook (sync on a
   * terminal); NULL for none */
  void (*progress)(void *userdata, struct apply_job *job);
  void *progress_userdata;
};

void cli_reconcile_usage_options(FILE *f);
int cli_reconcile_option(struct cli_reconcile_opts *o, int c, const char *arg);
/* Load everything; on failure prints why and returns the exit status. */
int cli_reconcile_open(struct cli_reconcile *rc, const struct cli_reconcile_opts *o,
                       const char *cmd);
/* Run a job per cluster with APPLY_* @flags until all are done. */
int cli_reconcile_run(struct cli_reconcile *rc, unsigned flags);
void cli_reconcile_close(struct cli_reconcile *rc);
