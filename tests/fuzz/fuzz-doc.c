/* Fuzz the YAML/JSON parser and both emitters: any input either fails with
 * an error or parses into trees that emit, and re-parse to equal trees. */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "doc/doc.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct doc_arena *a = doc_arena_new();
  struct doc_limits lim = doc_limits_default;
  struct doc_node **docs, **again;
  struct diag_list d = {0};
  struct err e = ERR_INIT;
  size_t n, m;

  lim.max_nodes = 20000;
  if (doc_parse(a, "fuzz.yaml", (const char *)data, size, &lim, &docs, &n, &d, &e) == 0) {
    struct buf y = BUF_INIT, j = BUF_INIT;
    if (doc_emit_yaml_stream((const struct doc_node *const *)docs, n, &y, &e) == 0) {
      err_clear(&e);
      /* our own output must read back to the same documents */
      if (doc_parse(a, "again.yaml", y.data ? y.data : "", y.len, NULL, &again, &m, NULL, &e) == 0) {
        /* not assert(): the regression build defines NDEBUG */
        if (m != n)
          abort();
        for (size_t i = 0; i < n; i++)
          if (!doc_equal(docs[i], again[i]))
            abort();
      }
    }
    for (size_t i = 0; i < n; i++)
      doc_emit_json(docs[i], &j, DOC_JSON_SORT_KEYS);
    buf_dispose(&y);
    buf_dispose(&j);
  }
  diag_list_dispose(&d);
  doc_arena_free(a);
  return 0;
}
