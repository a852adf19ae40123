/* Fuzz the watch stream framer and event parsing: the first byte picks a
 * chunk size, the rest is the stream. Frames found chunk by chunk must be
 * exactly those found in one go, each a '{'...'}' span that the event parser
 * then reads (or refuses) without crashing. */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "kube/kube-int.h"
#include "fuzz.h"

#define MAX_FRAMES 4096

/* Frames of @s (offsets, lengths) fed @chunk bytes at a time; -1 on error. */
static int frames(const char *s, size_t len, size_t chunk, size_t *offs, size_t *lens, size_t *n) {
  struct kube_frame f = {0};
  size_t used = 0, avail = 0, off, flen;

  *n = 0;
  while (avail < len) {
    int r;
    avail = avail + chunk > len ? len : avail + chunk;
    while ((r = kube_frame_next(&f, s + used, avail - used, &off, &flen)) == 1) {
      if (*n == MAX_FRAMES)
        return 0;
      offs[*n] = used + off;
      lens[*n] = flen;
      (*n)++;
      used += off + flen;
    }
    if (r < 0)
      return -1;
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static size_t o1[MAX_FRAMES], l1[MAX_FRAMES], o2[MAX_FRAMES], l2[MAX_FRAMES];
  const char *s;
  size_t n1, n2, chunk, len;
  int r1, r2;

  if (size < 1)
    return 0;
  chunk = (size_t)data[0] % 64 + 1;
  s = (const char *)data + 1;
  len = size - 1;
  r1 = frames(s, len, len ? len : 1, o1, l1, &n1);
  r2 = frames(s, len, chunk, o2, l2, &n2);
  require(r1 == r2);
  if (r1 == 0) {
    require(n1 == n2);
    for (size_t i = 0; i < n1; i++) {
      struct doc_arena *a = doc_arena_new();
      struct doc_node *ev = NULL;
      require(o1[i] == o2[i] && l1[i] == l2[i]);
      require(s[o1[i]] == '{' && s[o1[i] + l1[i] - 1] == '}');
      if (kube_parse_json(a, "event", s + o1[i], l1[i], 1u << 20, &ev, NULL) == 0) {
        (void)doc_map_str(ev, "type");
        (void)doc_path_str(doc_map_get(ev, "object"), "metadata.resourceVersion");
      }
      doc_arena_free(a);
    }
  }
  return 0;
}
