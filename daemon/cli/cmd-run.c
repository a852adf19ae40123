/* egressd run: the daemon (systemd's ExecStart). See svc/daemon.c. */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "svc/hostconfig.h"
#include "svc/svc.h"

static void usage(FILE *f) {
  fprintf(f, "usage: egressd run [--config FILE] [--once]\n\n"
             "Run the daemon: follow the config repo, verify each new commit, roll it out wave\n"
             "by wave, keep every cluster in sync, and record every change in the signed ledger.\n"
             "Meant to run under systemd (Type=notify); see egressd-run(8).\n\n"
             "  --config FILE   host config (default " HOSTCONFIG_DEFAULT_PATH ")\n"
             "  --once          exit when the first rollout completes or halts (for tests)\n"
             "  -h, --help      show this help\n\n"
             "Exit status: 0 after a clean stop, 1 when it cannot start.\n");
}

int cmd_run(int argc, char **argv) {
  enum { OPT_CONFIG = 1000, OPT_ONCE };
  static const struct option opts[] = {{"config", required_argument, NULL, OPT_CONFIG},
                                       {"once", no_argument, NULL, OPT_ONCE},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  struct svc_run_options o = {0};
  int c;

  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_CONFIG:
      o.config_path = optarg;
      break;
    case OPT_ONCE:
      o.once = true;
      break;
    case 'h':
      usage(stdout);
      return CLI_EXIT_OK;
    default:
      return cli_usage_error("run", "unknown option");
    }
  }
  if (optind < argc)
    return cli_usage_error("run", "unexpected argument '%s'", argv[optind]);
  return svc_run(&o);
}
