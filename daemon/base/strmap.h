/* A string-keyed hash map (open addressing, FNV-1a) for lookups that must
 * stay O(1) at 10,000 intents: names, hosts, rendered object identities.
 * Keys are copied; values are borrowed pointers. Insertion order is not kept:
 * never iterate a strmap to produce output (output must be deterministic). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct strmap_entry;

struct strmap {
  struct strmap_entry *slots;
  size_t n, cap;
};

/* Returns the previous value for @key, or NULL; replaces it with @value. */
void *strmap_put(struct strmap *m, const char *key, void *value);
void *strmap_get(const struct strmap *m, const char *key);
bool strmap_has(const struct strmap *m, const char *key);
size_t strmap_size(const struct strmap *m);
void strmap_dispose(struct strmap *m);
/* Visit every entry, in no particular order (for freeing values, never for
 * output): start with *iter = 0; returns false after the last entry. */
bool strmap_next(const struct strmap *m, size_t *iter, const char **ret_key, void **ret_value);
/* strmap_dispose() after free()ing every value. */
void strmap_dispose_free(struct strmap *m);
