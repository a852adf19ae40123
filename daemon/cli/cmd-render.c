/* egressd render [DIR]: print the manifests the config repo renders to, as a
 * YAML stream (or a JSON List), in apply order. With --cluster, only what
 * that Fleet cluster gets. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/diag.h"
#include "base/err.h"
#include "cli/cli.h"
#include "doc/doc.h"
#include "intent/intent.h"
#include "render/render.h"

static void usage(FILE *f) {
  fprintf(f, "usage: egressd render [--cluster NAME] [--istio-api V] [-o yaml|json] [DIR]\n\n"
             "Print the Kubernetes and Istio objects that the config repo checked out in DIR\n"
             "(default: the current directory) renders to, in apply order.\n\n"
             "  --cluster NAME  render for this cluster of the Fleet (its selectors apply);\n"
             "                  default: everything the repo renders\n"
             "  --istio-api V   networking.istio.io version: v1, v1beta1 (default), v1alpha3\n"
             "  -o, --output F  yaml (default; a stream of documents) or json (a v1 List)\n"
             "  -h, --help      show this help\n\n"
             "Exit status: 0 rendered, 1 the repo is invalid, 2 usage or I/O error.\n");
}

struct out {
  FILE *f;
  bool json;
  size_t n;
  struct buf b;
  struct err *err;
};

static int emit(void *userdata, const struct render_object *obj) {
  struct out *o = userdata;
  int r;

  buf_reset(&o->b);
  if (o->json) {
    buf_puts(&o->b, o->n ? ",\n" : "\n");
    doc_emit_json(obj->object, &o->b, DOC_JSON_PRETTY);
    buf_truncate(&o->b, o->b.len - 1); /* the pretty newline; the separator adds its own */
  } else {
    if (o->n)
      buf_puts(&o->b, "---\n");
    r = doc_emit_yaml(obj->object, &o->b, o->err);
    if (r < 0)
      return r;
  }
  o->n++;
  fwrite(o->b.data, 1, o->b.len, o->f);
  return 0;
}

int cmd_render(int argc, char **argv) {
  static const struct option opts[] = {{"cluster", required_argument, NULL, 'c'},
                                       {"istio-api", required_argument, NULL, 'I'},
                                       {"output", required_argument, NULL, 'o'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *dir = ".", *cluster = NULL, *format = "yaml";
  struct render_options ropts = {.istio_api_version = "v1beta1"};
  struct diag_list diags = {0};
  struct intent_repo *repo = NULL;
  struct err err = ERR_INIT;
  struct out o = {.f = stdout, .err = &err};
  int c, r, rc = CLI_EXIT_OK;

  while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
    switch (c) {
    case 'c':
      cluster = optarg;
      break;
    case 'I':
      ropts.istio_api_version = optarg;
      break;
    case 'o':
      format = optarg;
      break;
    case 'h':
      usage(stdout);
      return CLI_EXIT_OK;
    default:
      return cli_usage_error("render", "unknown option");
    }
  }
  if (argc - optind > 1)
    return cli_usage_error("render", "expected at most one directory");
  if (optind < argc)
    dir = argv[optind];
  if (strcmp(format, "yaml") != 0 && strcmp(format, "json") != 0)
    return cli_usage_error("render", "unknown output format '%s'; use yaml or json", format);
  if (!render_istio_version_valid(ropts.istio_api_version))
    return cli_usage_error("render", "unknown Istio API version '%s'; use v1, v1beta1 or v1alpha3",
                           ropts.istio_api_version);
  o.json = strcmp(format, "json") == 0;

  r = cli_repo_load_dir(dir, &repo, &diags, &err);
  if (r >= 0 && cluster) {
    ropts.cluster = intent_fleet_cluster_find(repo->fleet, cluster);
    if (!ropts.cluster) {
      fprintf(stderr, "egressd render: the Fleet has no cluster '%s'\n", cluster);
      rc = CLI_EXIT_USAGE;
      goto out;
    }
  }
  if (r >= 0) {
    if (o.json)
      fputs("{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [", stdout);
    r = render_repo(repo, &ropts, emit, &o, &diags, &err);
    if (o.json)
      fputs(o.n ? "\n]}\n" : "]}\n", stdout);
  }
  diag_print(&diags, stderr, cli_color(stderr));
  if (err_isset(&err)) {
    err_print(&err, stderr, "egressd render: ");
    rc = CLI_EXIT_USAGE;
  } else if (r < 0 || diags.errors) {
    rc = CLI_EXIT_FAIL;
  }
out:
  buf_dispose(&o.b);
  intent_repo_free(repo);
  diag_list_dispose(&diags);
  return rc;
}
