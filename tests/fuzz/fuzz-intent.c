/* Fuzz the config-repo loader and the renderer: the input is one YAML file of
 * a repo that also has a valid Fleet and gateway; whatever it says, loading
 * either reports problems or renders for every cluster, and never crashes,
 * hangs or leaks. */
#include <stdint.h>
#include <string.h>

#include "base/fileset.h"
#include "intent/intent.h"
#include "render/render.h"
#include "fuzz.h"

static const char *fleet = "apiVersion: egressd.io/v1\nkind: Fleet\nmetadata: {name: f}\n"
                           "spec:\n  clusters:\n    - {name: a, labels: {env: prod}}\n"
                           "    - {name: b, labels: {env: dev}}\n";
static const char *gw = "apiVersion: egressd.io/v1\nkind: EgressGateway\n"
                        "metadata: {name: gw, namespace: ns}\n"
                        "spec:\n  controlPlane: {name: cp, namespace: istio-system}\n"
                        "  service: {ports: [{name: http, port: 80, targetPort: 8080},"
                        " {name: tls, port: 443, targetPort: 8443}]}\n";

static int count(void *userdata, const struct render_object *obj) {
  (void)obj;
  (*(size_t *)userdata)++;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fileset fs;
  struct intent_repo *repo = NULL;
  struct diag_list d = {0};
  struct err e = ERR_INIT;

  fileset_init(&fs, NULL);
  fileset_add(&fs, "fleet.yaml", fleet, strlen(fleet), &e);
  fileset_add(&fs, "gateways/gw.yaml", gw, strlen(gw), &e);
  /* an input starting with 't' is a template override, else an intent file */
  if (size && data[0] == 't')
    fileset_add(&fs, "templates/virtualservice.yaml", data + 1, size - 1, &e);
  else
    fileset_add(&fs, "intents/fuzz.yaml", data, size, &e);
  if (intent_repo_load(&fs, NULL, &repo, &d, &e) == 0) {
    for (size_t c = 0; c <= repo->fleet->n_clusters; c++) {
      struct render_options o = {.cluster = c < repo->fleet->n_clusters ? &repo->fleet->clusters[c]
                                                                        : NULL};
      size_t n = 0;
      render_repo(repo, &o, count, &n, &d, &e);
    }
    intent_repo_free(repo);
  }
  diag_list_dispose(&d);
  fileset_dispose(&fs);
  return 0;
}
