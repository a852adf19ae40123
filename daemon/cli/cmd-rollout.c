/* egressd rollout status|pause|resume: the running daemon's rollout. status
 * reads status.json; pause and resume go through the daemon's control socket
 * (control.sock in its runtime directory) and are answered synchronously. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "base/str.h"
#include "cli/cli-status.h"
#include "cli/cli.h"
#include "svc/svc.h"

static void usage(FILE *f) {
  fprintf(f, "usage: egressd rollout status|pause|resume [--config FILE | --runtime-dir DIR]\n\n"
             "  status   the waves of the rollout in progress and each cluster's phase\n"
             "  pause    start no more clusters (those syncing finish)\n"
             "  resume   continue a paused rollout; retry the failed clusters of a halted one\n\n"
             "  --config FILE       host config, to find the runtime directory\n"
             "  --runtime-dir DIR   the daemon's runtime directory\n"
             "  -h, --help          show this help\n\n"
             "Exit status: 0 done, 1 the daemon refused or is not running, 2 usage error.\n");
}

static void print_status(const struct cli_status *st) {
  const struct doc_node *ro = doc_map_get(st->root, "rollout");
  const struct doc_node *waves = doc_map_get(ro, "waves"), *clusters = doc_map_get(st->root, "clusters");
  const struct doc_node *wn = doc_map_get(ro, "wave");
  const char *halt = doc_map_str(ro, "haltReason");
  char c1[16];

  str_copy(c1, 8, doc_map_str(ro, "target") ? doc_map_str(ro, "target") : "-");
  printf("rollout of %s: %s%s%s\n", c1, doc_map_str(ro, "state") ? doc_map_str(ro, "state") : "idle",
         halt ? ": " : "", halt ? halt : "");
  for (size_t w = 0; doc_is(waves, DOC_SEQ) && w < waves->u.seq.n; w++) {
    const struct doc_node *wave = waves->u.seq.items[w];
    const char *name = doc_map_str(wave, "name");
    const struct doc_node *mp = doc_map_get(wave, "maxParallel"), *mf = doc_map_get(wave, "maxFailures");
    const struct doc_node *bk = doc_map_get(wave, "bakeSeconds");
    printf("%s wave %zu %s (maxParallel %lld, maxFailures %lld, bake %llds)\n",
           doc_is(wn, DOC_INT) && (size_t)wn->u.i == w ? "*" : " ", w + 1, name ? name : "?",
           (long long)(doc_is(mp, DOC_INT) ? mp->u.i : 0), (long long)(doc_is(mf, DOC_INT) ? mf->u.i : 0),
           (long long)(doc_is(bk, DOC_INT) ? bk->u.i : 0));
    for (size_t i = 0; doc_is(clusters, DOC_SEQ) && i < clusters->u.seq.n; i++) {
      const struct doc_node *m = clusters->u.seq.items[i];
      const char *err = doc_map_str(m, "lastError");
      char c2[16];
      if (!str_eq(doc_map_str(m, "wave"), name))
        continue;
      str_copy(c2, 8, doc_map_str(m, "applied") ? doc_map_str(m, "applied") : "-");
      printf("    %-16s %-12s %s%s%s\n", doc_map_str(m, "name"),
             doc_map_str(m, "phase") ? doc_map_str(m, "phase") : "-", c2, err ? "  " : "",
             err ? err : "");
    }
  }
}

int cmd_rollout(int argc, char **argv) {
  enum { OPT_CONFIG = 1000, OPT_RUNTIME };
  static const struct option opts[] = {{"config", required_argument, NULL, OPT_CONFIG},
                                       {"runtime-dir", required_argument, NULL, OPT_RUNTIME},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *config = NULL, *runtime = NULL, *verb;
  struct cli_status st;
  char reply[800];
  struct err err = ERR_INIT;
  int c, rc;

  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == OPT_CONFIG)
      config = optarg;
    else if (c == OPT_RUNTIME)
      runtime = optarg;
    else if (c == 'h') {
      usage(stdout);
      return CLI_EXIT_OK;
    } else
      return cli_usage_error("rollout", "unknown option");
  }
  if (optind + 1 != argc)
    return cli_usage_error("rollout", "expected one of status, pause, resume");
  verb = argv[optind];
  if (!str_eq(verb, "status") && !str_eq(verb, "pause") && !str_eq(verb, "resume"))
    return cli_usage_error("rollout", "unknown action '%s'; use status, pause or resume", verb);
  if ((rc = cli_status_load(&st, config, runtime, "rollout")) != 0)
    return rc;
  if (str_eq(verb, "status")) {
    if (!st.running)
      printf("egressd is not running; as it last published:\n");
    print_status(&st);
    cli_status_dispose(&st);
    return CLI_EXIT_OK;
  }
  if (!st.running) {
    fprintf(stderr, "egressd rollout: the daemon is not running (its status file in %s is from a "
                    "process that has exited); start it with systemctl start egressd\n",
            st.runtime_dir);
    cli_status_dispose(&st);
    return CLI_EXIT_FAIL;
  }
  rc = svc_control(st.runtime_dir, verb, reply, sizeof(reply), &err);
  cli_status_dispose(&st);
  if (rc == 0) {
    printf("%s\n", reply);
    return CLI_EXIT_OK;
  }
  if (rc == -EPROTO)
    fprintf(stderr, "egressd rollout: %s\n", reply);
  else
    err_print(&err, stderr, "egressd rollout: ");
  return CLI_EXIT_FAIL;
}
