/* Fuzz error formatting from API-server responses: any body, as JSON or
 * text or HTML, gives a one-line, valid UTF-8 message that never contains
 * the client's secret (here: the digits the first byte selects), even when
 * the body echoes it. */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "base/str.h"
#include "kube/kube-int.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const types[] = {"application/json", "text/plain; charset=utf-8", "text/html",
                                      NULL};
  char secret[16];
  const char *secrets[2] = {secret, NULL};

  if (size < 1)
    return 0;
  /* a digits-only secret: "[redacted]" has no digits, so a correct
   * redaction can never rebuild it */
  str_format(secret, sizeof(secret), "%u%u", 4000u + data[0], 77u);
  for (size_t t = 0; t < 4; t++) {
    struct err e = ERR_INIT;
    int r = kube_status_error(&e, "c", "GET /api", 400 + (long)(data[0] % 200), types[t],
                              (const char *)data + 1, size - 1, secrets);
    require(r < 0 && err_isset(&e));
    require(!strstr(e.msg, secret));
    require(!strchr(e.msg, '\n'));
    require(str_valid_utf8(e.msg, strlen(e.msg), NULL));
  }
  return 0;
}
