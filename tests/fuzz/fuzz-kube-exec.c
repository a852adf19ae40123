/* Fuzz the reading of an exec plugin's output: any bytes are either refused
 * with an error naming the plugin, or give a credential with a token or a
 * certificate and key. */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "kube/kube-int.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char v1[] = "client.authentication.k8s.io/v1", cmd[] = "plugin";
  struct kube_exec_config x = {.api_version = v1, .command = cmd};
  struct kube_cred cr = {0};
  struct err e = ERR_INIT;

  if (kube_exec_parse_output("c", &x, (const char *)data, size, &cr, &e) == 0) {
    require(cr.valid && (cr.token.len || (cr.cert_pem.len && cr.key_pem.len)));
    require(!err_isset(&e));
  } else {
    require(err_isset(&e) && strstr(e.msg, "exec plugin 'plugin'"));
  }
  kube_cred_dispose(&cr);
  return 0;
}
