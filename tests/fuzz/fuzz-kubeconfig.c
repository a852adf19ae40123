/* Fuzz the kubeconfig parser: any input is either refused with an error (and
 * at least one diagnostic) or gives a config whose context, cluster, server
 * and namespace are set; an exec user's KUBERNETES_EXEC_INFO is JSON that
 * parses back. */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "kube/kube-int.h"
#include "fuzz.h"

static void one(const char *text, size_t size, const char *context) {
  struct kube_config *c = NULL;
  struct diag_list d = {0};
  struct err e = ERR_INIT;
  int r = kube_config_parse("/fuzz/dir/config", text, size, context, &c, &d, &e);

  if (r < 0) {
    require(err_isset(&e) && c == NULL);
    require(d.errors > 0);
  } else {
    require(c && c->context && c->cluster_ref && c->server && c->namespace);
    require(kube_config_auth_name(c)[0]);
    require(d.errors == 0);
    if (c->exec) {
      struct buf info = BUF_INIT;
      struct doc_arena *a = doc_arena_new();
      struct doc_node *n = NULL;
      kube_exec_info(c, &c->ca_data, &info);
      require(kube_parse_json(a, "info", info.data, info.len, 1u << 24, &n, NULL) == 0);
      require(doc_path(n, "spec.interactive") != NULL);
      doc_arena_free(a);
      buf_dispose(&info);
    }
    kube_config_free(c);
  }
  diag_list_dispose(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  one((const char *)data, size, NULL);
  one((const char *)data, size, "prod");
  return 0;
}
