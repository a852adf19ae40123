/* A growable byte buffer, always NUL-terminated so text can be read in place.
 * Embedded NULs are allowed (len is authoritative). A zeroed struct buf is an
 * empty buffer; buf_dispose() frees the contents. */
#pragma once

#include <stdarg.h>
#include <stddef.h>

struct buf {
  char *data;   /* NULL until the first append; buf_cstr() never returns NULL */
  size_t len;
  size_t cap;
};

#define BUF_INIT {NULL, 0, 0}

void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void buf_reserve(struct buf *b, size_t extra);
void buf_truncate(struct buf *b, size_t len);
static inline void buf_reset(struct buf *b) { buf_truncate(b, 0); }
const char *buf_cstr(const struct buf *b);
/* Hand the data over to the caller (who frees it) and leave @b empty. */
char *buf_detach(struct buf *b, size_t *ret_len);
void buf_dispose(struct buf *b);
/* Wipe the contents (sodium-style, not optimised away) before freeing: for
 * buffers that held secrets. */
void buf_dispose_secret(struct buf *b);
/* Overwrite @n bytes at @p with zeros in a way the compiler keeps. */
void mem_wipe(void *p, size_t n);
