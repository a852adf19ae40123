/* Fuzz the webhook doorbell's request parser and verdict (daemon/svc/
 * webhook.c) with whole HTTP requests. Whatever the bytes:
 *   - the verdict is one of the statuses the server answers, with a
 *     one-line reason that never holds the secret;
 *   - a doorbell is a 202 and nothing else is, and it depends on the
 *     secret: the same request under another secret is refused (401);
 *   - a head the parser calls complete at N bytes is incomplete (0, not an
 *     error) at N - 1: the server parses again as bytes arrive, so a
 *     verdict must not depend on how the bytes were split.
 * The seed corpus (corpus/webhook/) holds each forge's requests signed
 * with SECRET below, so the fuzzer starts past the signature check. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "svc/webhook.h"
#include "fuzz.h"

#define SECRET "fuzz-webhook-secret-0123456789"
#define OTHER "another-secret-for-the-fuzzer!"
#define REF "refs/heads/main"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const int statuses[] = {200, 202, 400, 401, 405, 411, 413, 415, 417, 431, 505};
  const char *raw = (const char *)data;
  struct webhook_verdict v, w;
  struct webhook_request req;
  bool known = false;
  int r;

  webhook_request_judge(raw, size, (const uint8_t *)SECRET, strlen(SECRET), REF, &v);
  for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
    known |= v.status == statuses[i];
  require(known);
  require(v.reason[0] && !strpbrk(v.reason, "\r\n") && !strstr(v.reason, SECRET));
  require(v.doorbell == (v.status == 202) && v.doorbell == (v.result == WEBHOOK_RESULT_DOORBELL));
  require(v.result < _WEBHOOK_RESULT_MAX);
  if (v.doorbell) {
    webhook_request_judge(raw, size, (const uint8_t *)OTHER, strlen(OTHER), REF, &w);
    require(!w.doorbell && w.status == 401);
  }
  r = webhook_head_parse(raw, size, &req, &w);
  require(r == 1 || r == 0 || r == -EBADMSG);
  if (r == 1) {
    struct webhook_request req2;
    require(req.head_len > 0 && req.head_len <= size && req.head_len <= WEBHOOK_MAX_HEAD);
    require(req.content_length <= WEBHOOK_MAX_BODY);
    require(webhook_head_parse(raw, req.head_len - 1, &req2, &w) == 0);
  } else if (r < 0) {
    require(w.status >= 400 && w.reason[0]);
  }
  return 0;
}
