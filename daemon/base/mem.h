/* Allocation wrappers: out-of-memory aborts here, in one place (as Redis and
 * chrony do), so no caller handles a NULL from malloc. Every input that can
 * make egressd allocate is bounded before it gets here. */
#pragma once

#include <stddef.h>
#include <stdlib.h>

void *xmalloc(size_t size) __attribute__((malloc, returns_nonnull));
void *xcalloc(size_t n, size_t size) __attribute__((malloc, returns_nonnull));
void *xrealloc(void *p, size_t size) __attribute__((returns_nonnull));
/* Grow an array of @n elements of @size to at least @need elements (amortised
 * doubling); updates *cap. */
void *xgrow(void *p, size_t *cap, size_t need, size_t size) __attribute__((returns_nonnull));
char *xstrdup(const char *s) __attribute__((malloc, returns_nonnull));
char *xstrndup(const char *s, size_t n) __attribute__((malloc, returns_nonnull));
void *xmemdup(const void *p, size_t n) __attribute__((malloc, returns_nonnull));
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2), malloc, returns_nonnull));

/* Free *p and set it to NULL. */
#define xfree(p) do { free(p); (p) = NULL; } while (0)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
