/* egressd validate [DIR]: lint a checkout of the config repo. Every problem
 * as "file:line:col: error: message"; exit 0 valid, 1 invalid, 2 usage or
 * I/O error. Meant for the config repo's CI and pre-commit hooks. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "base/diag.h"
#include "base/err.h"
#include "cli/cli.h"
#include "intent/intent.h"
#include "render/render.h"

static void usage(FILE *f) {
  fprintf(f, "usage: egressd validate [--istio-api V] [-q] [DIR]\n\n"
             "Check the config repo checked out in DIR (default: the current directory):\n"
             "structure, names, hosts, ports, references, conflicts, selectors, and that every\n"
             "cluster of the Fleet renders cleanly. Problems are printed as\n"
             "file:line:col: error: message.\n\n"
             "  --istio-api V   render with networking.istio.io version V (v1, v1beta1,\n"
             "                  v1alpha3; default v1beta1)\n"
             "  -q, --quiet     print only problems\n"
             "  -h, --help      show this help\n\n"
             "Exit status: 0 valid, 1 invalid, 2 usage or I/O error.\n");
}

int cmd_validate(int argc, char **argv) {
  static const struct option opts[] = {{"istio-api", required_argument, NULL, 'I'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *dir = ".", *istio = "v1beta1";
  struct diag_list diags = {0};
  struct intent_repo *repo = NULL;
  struct err err = ERR_INIT;
  bool quiet = false;
  size_t objects = 0;
  int c, r, rc;

  while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
    switch (c) {
    case 'I':
      istio = optarg;
      break;
    case 'q':
      quiet = true;
      break;
    case 'h':
      usage(stdout);
      return CLI_EXIT_OK;
    default:
      return cli_usage_error("validate", "unknown option");
    }
  }
  if (argc - optind > 1)
    return cli_usage_error("validate", "expected at most one directory");
  if (optind < argc)
    dir = argv[optind];
  if (!render_istio_version_valid(istio))
    return cli_usage_error("validate", "unknown Istio API version '%s'; use v1, v1beta1 or v1alpha3",
                           istio);

  r = cli_repo_load_dir(dir, &repo, &diags, &err);
  if (r >= 0)
    r = cli_repo_check_render(repo, istio, &diags, &objects, &err);
  diag_print(&diags, stderr, cli_color(stderr));
  if (err_isset(&err)) {
    err_print(&err, stderr, "egressd validate: ");
    rc = CLI_EXIT_USAGE;
  } else if (r < 0 || diags.errors) {
    fprintf(stderr, "%s: %zu error%s, %zu warning%s\n", dir, diags.errors,
            diags.errors == 1 ? "" : "s", diags.warnings, diags.warnings == 1 ? "" : "s");
    rc = CLI_EXIT_FAIL;
  } else {
    if (!quiet)
      printf("%s: valid: %zu gateway%s, %zu intent%s, %zu cluster%s, %zu objects rendered\n", dir,
             repo->n_gateways, repo->n_gateways == 1 ? "" : "s", repo->n_intents,
             repo->n_intents == 1 ? "" : "s", repo->fleet->n_clusters,
             repo->fleet->n_clusters == 1 ? "" : "s", objects);
    rc = CLI_EXIT_OK;
  }
  intent_repo_free(repo);
  diag_list_dispose(&diags);
  return rc;
}
