/* Fuzz discovery parsing: any JSON document read as aggregated discovery
 * and as a legacy APIResourceList either is refused or gives a sealed map
 * whose every resource has a plural, a kind and a preferred version that is
 * one of its versions. */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "kube/kube-int.h"
#include "fuzz.h"

static void check(struct kube_discovery *d) {
  static const struct {
    const char *group, *kind;
  } probes[] = {{"networking.istio.io", "VirtualService"}, {"", "Namespace"},
                {"servicemesh.cisco.com", "IstioMeshGateway"}, {"apps", "Deployment"}};
  kube_discovery_seal(d);
  (void)kube_discovery_istio_in(d);
  for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
    const struct kube_resource *r = NULL;
    struct err e = ERR_INIT;
    if (kube_discovery_find_in(d, "c", probes[i].group, NULL, probes[i].kind, &r, &e) == 0) {
      bool found = false;
      require(r->plural[0] && r->kind[0] && r->n_versions > 0);
      for (size_t v = 0; v < r->n_versions; v++)
        found |= strcmp(r->versions[v], r->version) == 0;
      require(found);
    } else {
      require(err_isset(&e));
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct doc_arena *a = doc_arena_new();
  struct doc_node *n = NULL;

  if (kube_parse_json(a, "disco", (const char *)data, size, 1u << 20, &n, NULL) == 0) {
    struct kube_discovery *d = kube_discovery_new("c");
    if (kube_discovery_parse_aggregated(d, n, NULL) == 0)
      check(d);
    kube_discovery_free(d);
    d = kube_discovery_new("c");
    if (kube_discovery_parse_resource_list(d, "networking.istio.io", "v1", n, NULL) == 0)
      check(d);
    kube_discovery_free(d);
  }
  doc_arena_free(a);
  return 0;
}
