/* doc tree: arena, builders, lookups, copy, equality and JSON output.
 *
 * The arena is a list of blocks with bump allocation; growing a sequence or a
 * map allocates a new array in the arena and abandons the old one (at most
 * doubling the space of that array). Nothing is freed before the arena.
 *
 * When you add a node type, also touch: doc_copy, doc_equal, doc_count,
 * emit_json, doc-yaml.c (parse and emit) and tests/unit/test-doc.c.
 */
#include "doc/doc.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/str.h"

const struct doc_limits doc_limits_default = {
    .max_bytes = 8u << 20,
    .max_depth = 64,
    .max_nodes = 2000000,
    .max_docs = 20000,
    .max_scalar = 1u << 20,
};

#define BLOCK_SIZE (64u * 1024u)
#define ALIGN 16u

struct block {
  struct block *next;
  size_t used, size;
  _Alignas(16) unsigned char data[];
};

struct doc_arena {
  struct block *head;
  size_t total;
};

struct doc_arena *doc_arena_new(void) { return xcalloc(1, sizeof(struct doc_arena)); }

void doc_arena_free(struct doc_arena *a) {
  if (!a)
    return;
  for (struct block *b = a->head, *next; b; b = next) {
    next = b->next;
    free(b);
  }
  free(a);
}

void doc_arena_reset(struct doc_arena *a) {
  struct block *keep = NULL;

  for (struct block *b = a->head, *next; b; b = next) {
    next = b->next;
    if (!keep && b->size == BLOCK_SIZE) {
      keep = b;
      continue;
    }
    free(b);
  }
  a->head = keep;
  a->total = 0;
  if (keep) {
    keep->next = NULL;
    keep->used = 0;
    a->total = keep->size;
  }
}

void doc_arena_wipe(struct doc_arena *a) {
  for (struct block *b = a ? a->head : NULL; b; b = b->next)
    mem_wipe(b->data, b->used);
}

void doc_arena_free_secret(struct doc_arena *a) {
  doc_arena_wipe(a);
  doc_arena_free(a);
}

size_t doc_arena_size(const struct doc_arena *a) { return a ? a->total : 0; }

void *doc_arena_alloc(struct doc_arena *a, size_t size) {
  struct block *b = a->head;
  void *p;

  size = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
  if (!b || b->size - b->used < size) {
    size_t bsize = size > BLOCK_SIZE / 4 ? size : BLOCK_SIZE;
    struct block *nb = xmalloc(sizeof(*nb) + bsize);
    nb->used = 0;
    nb->size = bsize;
    a->total += bsize;
    if (b && bsize != BLOCK_SIZE) {
      /* a big one-off allocation: keep filling the current block afterwards */
      nb->next = b->next;
      b->next = nb;
      b = nb;
    } else {
      nb->next = b;
      a->head = nb;
      b = nb;
    }
  }
  p = b->data + b->used;
  b->used += size;
  memset(p, 0, size);
  return p;
}

const char *doc_arena_strndup(struct doc_arena *a, const char *s, size_t len) {
  char *p = doc_arena_alloc(a, len + 1);
  memcpy(p, s, len);
  p[len] = '\0';
  return p;
}

const char *doc_arena_strdup(struct doc_arena *a, const char *s) {
  return doc_arena_strndup(a, s, strlen(s));
}

static struct doc_node *node(struct doc_arena *a, enum doc_type t) {
  struct doc_node *n = doc_arena_alloc(a, sizeof(*n));
  n->type = t;
  return n;
}

struct doc_node *doc_new_null(struct doc_arena *a) { return node(a, DOC_NULL); }

struct doc_node *doc_new_bool(struct doc_arena *a, bool b) {
  struct doc_node *n = node(a, DOC_BOOL);
  n->u.b = b;
  return n;
}

struct doc_node *doc_new_int(struct doc_arena *a, int64_t i) {
  struct doc_node *n = node(a, DOC_INT);
  n->u.i = i;
  return n;
}

struct doc_node *doc_new_strn(struct doc_arena *a, const char *s, size_t len) {
  struct doc_node *n = node(a, DOC_STR);
  n->u.str.s = doc_arena_strndup(a, s, len);
  n->u.str.len = len;
  return n;
}

struct doc_node *doc_new_str(struct doc_arena *a, const char *s) {
  return doc_new_strn(a, s, strlen(s));
}

struct doc_node *doc_new_seq(struct doc_arena *a) { return node(a, DOC_SEQ); }
struct doc_node *doc_new_map(struct doc_arena *a) { return node(a, DOC_MAP); }

static void *arena_grow(struct doc_arena *a, void *old, size_t n, size_t *cap, size_t elem) {
  size_t c = *cap ? *cap * 2 : 4;
  void *p = doc_arena_alloc(a, c * elem);

  if (n)
    memcpy(p, old, n * elem);
  *cap = c;
  return p;
}

void doc_seq_push(struct doc_arena *a, struct doc_node *seq, struct doc_node *item) {
  if (seq->u.seq.n == seq->u.seq.cap)
    seq->u.seq.items =
        arena_grow(a, seq->u.seq.items, seq->u.seq.n, &seq->u.seq.cap, sizeof(*seq->u.seq.items));
  seq->u.seq.items[seq->u.seq.n++] = item;
}

static struct doc_pair *map_find(const struct doc_node *map, const char *key) {
  for (size_t i = 0; i < map->u.map.n; i++)
    if (strcmp(map->u.map.items[i].key, key) == 0)
      return &map->u.map.items[i];
  return NULL;
}

void doc_map_set(struct doc_arena *a, struct doc_node *map, const char *key,
                 struct doc_node *value) {
  struct doc_pair *p = map_find(map, key);

  if (p) {
    p->value = value;
    return;
  }
  if (map->u.map.n == map->u.map.cap)
    map->u.map.items =
        arena_grow(a, map->u.map.items, map->u.map.n, &map->u.map.cap, sizeof(*map->u.map.items));
  p = &map->u.map.items[map->u.map.n++];
  p->key = doc_arena_strdup(a, key);
  p->line = p->col = 0;
  p->value = value;
}

bool doc_map_del(struct doc_node *map, const char *key) {
  struct doc_pair *p;
  size_t i;

  if (!doc_is(map, DOC_MAP) || !(p = map_find(map, key)))
    return false;
  i = (size_t)(p - map->u.map.items);
  memmove(p, p + 1, (map->u.map.n - i - 1) * sizeof(*p));
  map->u.map.n--;
  return true;
}

const struct doc_pair *doc_map_pair(const struct doc_node *map, const char *key) {
  if (!doc_is(map, DOC_MAP))
    return NULL;
  return map_find(map, key);
}

struct doc_node *doc_map_get(const struct doc_node *map, const char *key) {
  const struct doc_pair *p = doc_map_pair(map, key);
  return p ? p->value : NULL;
}

const char *doc_map_str(const struct doc_node *map, const char *key) {
  struct doc_node *v = doc_map_get(map, key);
  return doc_is(v, DOC_STR) ? v->u.str.s : NULL;
}

struct doc_node *doc_path(const struct doc_node *n, const char *dotted) {
  struct doc_node *found = NULL;
  char key[256];

  while (n && *dotted) {
    const char *dot = strchr(dotted, '.');
    size_t len = dot ? (size_t)(dot - dotted) : strlen(dotted);
    if (len >= sizeof(key))
      return NULL;
    memcpy(key, dotted, len);
    key[len] = '\0';
    n = found = doc_map_get(n, key);
    dotted += len + (dot ? 1 : 0);
  }
  return found;
}

const char *doc_path_str(const struct doc_node *n, const char *dotted) {
  struct doc_node *v = doc_path(n, dotted);
  return doc_is(v, DOC_STR) ? v->u.str.s : NULL;
}

struct doc_node *doc_copy(struct doc_arena *a, const struct doc_node *n) {
  struct doc_node *c;

  if (!n)
    return NULL;
  c = node(a, n->type);
  c->line = n->line;
  c->col = n->col;
  c->file = n->file;
  switch (n->type) {
  case DOC_NULL:
    break;
  case DOC_BOOL:
    c->u.b = n->u.b;
    break;
  case DOC_INT:
    c->u.i = n->u.i;
    break;
  case DOC_FLOAT:
  case DOC_STR:
    c->u.str.s = doc_arena_strndup(a, n->u.str.s, n->u.str.len);
    c->u.str.len = n->u.str.len;
    c->u.str.f = n->u.str.f;
    break;
  case DOC_SEQ:
    c->u.seq.cap = n->u.seq.n;
    c->u.seq.n = n->u.seq.n;
    c->u.seq.items = doc_arena_alloc(a, (n->u.seq.n ? n->u.seq.n : 1) * sizeof(*c->u.seq.items));
    for (size_t i = 0; i < n->u.seq.n; i++)
      c->u.seq.items[i] = doc_copy(a, n->u.seq.items[i]);
    break;
  case DOC_MAP:
    c->u.map.cap = n->u.map.n;
    c->u.map.n = n->u.map.n;
    c->u.map.items = doc_arena_alloc(a, (n->u.map.n ? n->u.map.n : 1) * sizeof(*c->u.map.items));
    for (size_t i = 0; i < n->u.map.n; i++) {
      const struct doc_pair *p = &n->u.map.items[i];
      c->u.map.items[i].key = doc_arena_strdup(a, p->key);
      c->u.map.items[i].line = p->line;
      c->u.map.items[i].col = p->col;
      c->u.map.items[i].value = doc_copy(a, p->value);
    }
    break;
  }
  return c;
}

static double num(const struct doc_node *n) {
  return n->type == DOC_INT ? (double)n->u.i : n->u.str.f;
}

/* Numbers are equal by value; NaN equals NaN here (the same document). */
static bool num_equal(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

bool doc_equal(const struct doc_node *x, const struct doc_node *y) {
  if (!x || !y)
    return x == y;
  if (x->type != y->type) {
    bool xn = x->type == DOC_INT || x->type == DOC_FLOAT;
    bool yn = y->type == DOC_INT || y->type == DOC_FLOAT;
    return xn && yn && num_equal(num(x), num(y));
  }
  switch (x->type) {
  case DOC_NULL:
    return true;
  case DOC_BOOL:
    return x->u.b == y->u.b;
  case DOC_INT:
    return x->u.i == y->u.i;
  case DOC_FLOAT:
    return num_equal(x->u.str.f, y->u.str.f);
  case DOC_STR:
    return x->u.str.len == y->u.str.len && memcmp(x->u.str.s, y->u.str.s, x->u.str.len) == 0;
  case DOC_SEQ:
    if (x->u.seq.n != y->u.seq.n)
      return false;
    for (size_t i = 0; i < x->u.seq.n; i++)
      if (!doc_equal(x->u.seq.items[i], y->u.seq.items[i]))
        return false;
    return true;
  case DOC_MAP:
    if (x->u.map.n != y->u.map.n)
      return false;
    for (size_t i = 0; i < x->u.map.n; i++) {
      const struct doc_pair *p = &x->u.map.items[i];
      /* fast path: same key at the same index */
      const struct doc_pair *q = i < y->u.map.n && strcmp(y->u.map.items[i].key, p->key) == 0
                                     ? &y->u.map.items[i]
                                     : map_find(y, p->key);
      if (!q || !doc_equal(p->value, q->value))
        return false;
    }
    return true;
  }
  return false;
}

const char *doc_type_name(enum doc_type t) {
  switch (t) {
  case DOC_NULL:
    return "null";
  case DOC_BOOL:
    return "a boolean";
  case DOC_INT:
    return "an integer";
  case DOC_FLOAT:
    return "a number";
  case DOC_STR:
    return "a string";
  case DOC_SEQ:
    return "a list";
  case DOC_MAP:
    return "a mapping";
  }
  return "?";
}

size_t doc_count(const struct doc_node *n) {
  size_t c = 1;

  if (!n)
    return 0;
  if (n->type == DOC_SEQ)
    for (size_t i = 0; i < n->u.seq.n; i++)
      c += doc_count(n->u.seq.items[i]);
  else if (n->type == DOC_MAP)
    for (size_t i = 0; i < n->u.map.n; i++)
      c += doc_count(n->u.map.items[i].value);
  return c;
}

/* ---- JSON output ---- */

static void json_string(struct buf *out, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  size_t start = 0;

  buf_reserve(out, len + 2);
  buf_putc(out, '"');
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    char u[7];

    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    switch (c) {
    case '"': esc = "\\\""; break;
    case '\\': esc = "\\\\"; break;
    case '\n': esc = "\\n"; break;
    case '\r': esc = "\\r"; break;
    case '\t': esc = "\\t"; break;
    case '\b': esc = "\\b"; break;
    case '\f': esc = "\\f"; break;
    default:
      u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0';
      u[4] = hex[c >> 4], u[5] = hex[c & 15], u[6] = '\0';
      esc = u;
    }
    buf_append(out, s + start, i - start);
    buf_puts(out, esc);
    start = i + 1;
  }
  buf_append(out, s + start, len - start);
  buf_putc(out, '"');
}

/* Is @s a JSON number (RFC 8259 grammar)? */
static bool json_number_text(const char *s) {
  const char *p = s;

  if (*p == '-')
    p++;
  if (*p == '0')
    p++;
  else if (*p >= '1' && *p <= '9')
    while (*p >= '0' && *p <= '9')
      p++;
  else
    return false;
  if (*p == '.') {
    p++;
    if (*p < '0' || *p > '9')
      return false;
    while (*p >= '0' && *p <= '9')
      p++;
  }
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '+' || *p == '-')
      p++;
    if (*p < '0' || *p > '9')
      return false;
    while (*p >= '0' && *p <= '9')
      p++;
  }
  return *p == '\0';
}

static void indent(struct buf *out, unsigned depth) {
  buf_putc(out, '\n');
  for (unsigned i = 0; i < depth; i++)
    buf_append(out, "  ", 2);
}

static int cmp_pair_ptr(const void *a, const void *b) {
  const struct doc_pair *const *x = a, *const *y = b;
  return strcmp((*x)->key, (*y)->key);
}

static void emit_json(const struct doc_node *n, struct buf *out, unsigned flags, unsigned depth) {
  bool pretty = flags & DOC_JSON_PRETTY;

  if (!n) {
    buf_puts(out, "null");
    return;
  }
  switch (n->type) {
  case DOC_NULL:
    buf_puts(out, "null");
    break;
  case DOC_BOOL:
    buf_puts(out, n->u.b ? "true" : "false");
    break;
  case DOC_INT:
    buf_printf(out, "%lld", (long long)n->u.i);
    break;
  case DOC_FLOAT:
    if (n->u.str.s && json_number_text(n->u.str.s))
      buf_puts(out, n->u.str.s);
    else if (isfinite(n->u.str.f))
      buf_printf(out, "%.17g", n->u.str.f);
    else
      buf_puts(out, "null");
    break;
  case DOC_STR:
    json_string(out, n->u.str.s, n->u.str.len);
    break;
  case DOC_SEQ:
    if (!n->u.seq.n) {
      buf_puts(out, "[]");
      break;
    }
    buf_putc(out, '[');
    for (size_t i = 0; i < n->u.seq.n; i++) {
      if (i)
        buf_putc(out, ',');
      if (pretty)
        indent(out, depth + 1);
      emit_json(n->u.seq.items[i], out, flags, depth + 1);
    }
    if (pretty)
      indent(out, depth);
    buf_putc(out, ']');
    break;
  case DOC_MAP: {
    const struct doc_pair **order = NULL, *stackorder[32];
    size_t cnt = n->u.map.n;

    if (!cnt) {
      buf_puts(out, "{}");
      break;
    }
    if (flags & DOC_JSON_SORT_KEYS) {
      order = cnt <= 32 ? stackorder : xmalloc(cnt * sizeof(*order));
      for (size_t i = 0; i < cnt; i++)
        order[i] = &n->u.map.items[i];
      qsort(order, cnt, sizeof(*order), cmp_pair_ptr);
    }
    buf_putc(out, '{');
    for (size_t i = 0; i < cnt; i++) {
      const struct doc_pair *p = order ? order[i] : &n->u.map.items[i];
      if (i)
        buf_putc(out, ',');
      if (pretty)
        indent(out, depth + 1);
      json_string(out, p->key, strlen(p->key));
      buf_append(out, pretty ? ": " : ":", pretty ? 2 : 1);
      emit_json(p->value, out, flags, depth + 1);
    }
    if (pretty)
      indent(out, depth);
    buf_putc(out, '}');
    if (order && order != stackorder)
      free(order);
    break;
  }
  }
}

void doc_emit_json(const struct doc_node *n, struct buf *out, unsigned flags) {
  emit_json(n, out, flags, 0);
  if (flags & DOC_JSON_PRETTY)
    buf_putc(out, '\n');
}
