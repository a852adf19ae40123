/* Fuzz the host config parser (/etc/egressd/egressd.yaml): any input is
 * either refused, with at least one diagnostic or an error and no config, or
 * gives a config with everything the daemon uses set: the repository, its
 * ref, the directories, the ledger, and clusters with distinct names and a
 * kubeconfig each. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc/hostconfig.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct hostconfig *hc = NULL;
  struct diag_list d = {0};
  struct err e = ERR_INIT;
  int r = hostconfig_parse("/fuzz/etc/egressd.yaml", (const char *)data, size, &hc, &d, &e);

  if (r < 0) {
    require(hc == NULL);
    require(d.errors > 0 || err_isset(&e));
  } else {
    require(hc && d.errors == 0);
    require(hc->repo.url && hc->repo.url[0] && hc->repo.ref && hc->repo.ref[0]);
    require(hc->repo.interval_usec > 0 && hc->sync.drift_interval_usec > 0);
    require(hc->state_dir && hc->runtime_dir && hc->ledger_dir && hc->ledger_key &&
            hc->ledger_origin);
    for (size_t i = 0; i < hc->n_clusters; i++) {
      require(hc->clusters[i].name && hc->clusters[i].name[0] && hc->clusters[i].kubeconfig);
      require(hostconfig_cluster_find(hc, hc->clusters[i].name) == &hc->clusters[i]);
    }
    hostconfig_free(hc);
  }
  diag_list_dispose(&d);
  return 0;
}
