/* struct buf: growable, NUL-terminated byte buffer. */
#include "base/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

void buf_reserve(struct buf *b, size_t extra) {
  b->data = xgrow(b->data, &b->cap, b->len + extra + 1, 1);
}

void buf_append(struct buf *b, const void *data, size_t len) {
  buf_reserve(b, len);
  if (len)
    memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
}

void buf_puts(struct buf *b, const char *s) { buf_append(b, s, strlen(s)); }

void buf_putc(struct buf *b, char c) { buf_append(b, &c, 1); }

void buf_vprintf(struct buf *b, const char *fmt, va_list ap) {
  va_list ap2;
  int n;

  va_copy(ap2, ap);
  buf_reserve(b, 64);
  n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
  if (n < 0) {
    va_end(ap2);
    b->data[b->len] = '\0';
    return;
  }
  if ((size_t)n >= b->cap - b->len) {
    buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
  }
  va_end(ap2);
  b->len += (size_t)n;
}

void buf_printf(struct buf *b, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  buf_vprintf(b, fmt, ap);
  va_end(ap);
}

void buf_truncate(struct buf *b, size_t len) {
  if (len < b->len) {
    b->len = len;
    b->data[len] = '\0';
  }
}

const char *buf_cstr(const struct buf *b) { return b->data ? b->data : ""; }

char *buf_detach(struct buf *b, size_t *ret_len) {
  char *p;

  if (!b->data) {
    buf_reserve(b, 0);
    b->data[0] = '\0';
  }
  p = b->data;
  if (ret_len)
    *ret_len = b->len;
  b->data = NULL;
  b->len = b->cap = 0;
  return p;
}

void buf_dispose(struct buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

void mem_wipe(void *p, size_t n) {
  volatile unsigned char *v = p;

  while (n--)
    *v++ = 0;
  __asm__ __volatile__("" : : "r"(p) : "memory");
}

void buf_dispose_secret(struct buf *b) {
  if (b->data)
    mem_wipe(b->data, b->cap);
  buf_dispose(b);
}
