/* x* allocators: abort on out-of-memory with a message, never return NULL. */
#include "base/mem.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t size) {
  /* No allocation here: we are out of memory. */
  fprintf(stderr, "egressd: out of memory allocating %zu bytes\n", size);
  abort();
}

void *xmalloc(size_t size) {
  void *p = malloc(size ? size : 1);
  if (!p)
    oom(size);
  return p;
}

void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p)
    oom(n * size);
  return p;
}

void *xrealloc(void *p, size_t size) {
  void *q = realloc(p, size ? size : 1);
  if (!q)
    oom(size);
  return q;
}

void *xgrow(void *p, size_t *cap, size_t need, size_t size) {
  size_t c = *cap;

  if (need <= c)
    return p;
  if (c < 8)
    c = 8;
  while (c < need) {
    if (c > SIZE_MAX / 2)
      oom(SIZE_MAX);
    c *= 2;
  }
  if (c > SIZE_MAX / size)
    oom(SIZE_MAX);
  p = xrealloc(p, c * size);
  *cap = c;
  return p;
}

char *xstrdup(const char *s) {
  return xmemdup(s, strlen(s) + 1);
}

char *xstrndup(const char *s, size_t n) {
  char *p = xmalloc(n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

void *xmemdup(const void *p, size_t n) {
  void *q = xmalloc(n);
  if (n)
    memcpy(q, p, n);
  return q;
}

char *xasprintf(const char *fmt, ...) {
  va_list ap, ap2;
  int n;
  char *s;

  va_start(ap, fmt);
  va_copy(ap2, ap);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    oom(0);
  s = xmalloc((size_t)n + 1);
  vsnprintf(s, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  return s;
}
