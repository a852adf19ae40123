/* struct strmap: open-addressing hash map with linear probing; the table is
 * kept at most half full. No deletion (none of egressd's uses needs it). */
#include "base/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

struct strmap_entry {
  char *key;
  void *value;
  uint64_t hash;
};

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ULL;

  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  return h;
}

static struct strmap_entry *find(struct strmap_entry *slots, size_t cap, const char *key,
                                 uint64_t h) {
  size_t i = (size_t)h & (cap - 1);

  for (;;) {
    struct strmap_entry *e = &slots[i];
    if (!e->key || (e->hash == h && strcmp(e->key, key) == 0))
      return e;
    i = (i + 1) & (cap - 1);
  }
}

static void rehash(struct strmap *m, size_t cap) {
  struct strmap_entry *slots = xcalloc(cap, sizeof(*slots));

  for (size_t i = 0; i < m->cap; i++) {
    struct strmap_entry *e = &m->slots[i];
    if (e->key)
      *find(slots, cap, e->key, e->hash) = *e;
  }
  free(m->slots);
  m->slots = slots;
  m->cap = cap;
}

void *strmap_put(struct strmap *m, const char *key, void *value) {
  uint64_t h = hash_str(key);
  struct strmap_entry *e;
  void *old;

  if ((m->n + 1) * 2 > m->cap)
    rehash(m, m->cap ? m->cap * 2 : 16);
  e = find(m->slots, m->cap, key, h);
  if (e->key) {
    old = e->value;
    e->value = value;
    return old;
  }
  e->key = xstrdup(key);
  e->hash = h;
  e->value = value;
  m->n++;
  return NULL;
}

void *strmap_get(const struct strmap *m, const char *key) {
  struct strmap_entry *e;

  if (!m->cap)
    return NULL;
  e = find(m->slots, m->cap, key, hash_str(key));
  return e->key ? e->value : NULL;
}

bool strmap_has(const struct strmap *m, const char *key) {
  if (!m->cap)
    return false;
  return find(m->slots, m->cap, key, hash_str(key))->key != NULL;
}

size_t strmap_size(const struct strmap *m) { return m->n; }

void strmap_dispose(struct strmap *m) {
  for (size_t i = 0; i < m->cap; i++)
    free(m->slots[i].key);
  free(m->slots);
  memset(m, 0, sizeof(*m));
}

bool strmap_next(const struct strmap *m, size_t *iter, const char **ret_key, void **ret_value) {
  for (; *iter < m->cap; (*iter)++) {
    const struct strmap_entry *e = &m->slots[*iter];
    if (e->key) {
      if (ret_key)
        *ret_key = e->key;
      if (ret_value)
        *ret_value = e->value;
      (*iter)++;
      return true;
    }
  }
  return false;
}

void strmap_dispose_free(struct strmap *m) {
  size_t it = 0;
  void *v;

  while (strmap_next(m, &it, NULL, &v))
    free(v);
  strmap_dispose(m);
}
