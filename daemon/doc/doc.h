/* doc: the YAML/JSON document tree of egressd, with file:line:col positions.
 *
 * Every configuration file, template, rendered manifest and API-server body is
 * a tree of struct doc_node. Nodes live in a struct doc_arena and are freed
 * together with it; a node never outlives its arena, and a tree never mixes
 * arenas (use doc_copy() to move a subtree). libyaml's types never leave this
 * module.
 *
 * Parsing is bounded (struct doc_limits): input size, nesting depth, number
 * of nodes and documents, scalar size. Aliases are expanded by copying, and
 * the copies count against max_nodes, so an alias bomb fails fast instead of
 * exhausting memory. Input must be valid UTF-8.
 *
 * Scalars are typed with the YAML 1.2 core schema (null, true/false, ints,
 * floats), applied to plain scalars only: a quoted scalar is always a
 * string. JSON is parsed by the same code (JSON is YAML).
 *
 * Output is deterministic: maps keep their insertion order, YAML strings that
 * would read back as another type (or as a YAML 1.1 boolean such as "yes")
 * are quoted, JSON escapes what RFC 8259 requires.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/diag.h"
#include "base/err.h"

enum doc_type {
  DOC_NULL,
  DOC_BOOL,
  DOC_INT,
  DOC_FLOAT,
  DOC_STR,
  DOC_SEQ,
  DOC_MAP,
};

struct doc_node;

struct doc_pair {
  const char *key;          /* NUL-terminated, in the arena */
  uint32_t line, col;       /* position of the key */
  struct doc_node *value;
};

struct doc_node {
  enum doc_type type;
  uint32_t line, col;       /* 1-based; 0 for nodes built in code */
  const char *file;         /* borrowed from the arena; NULL for built nodes */
  union {
    bool b;
    int64_t i;
    struct {
      const char *s;        /* DOC_STR: the value; DOC_FLOAT: its source text */
      size_t len;
      double f;
    } str;
    struct {
      struct doc_node **items;
      size_t n, cap;
    } seq;
    struct {
      struct doc_pair *items;
      size_t n, cap;
    } map;
  } u;
};

struct doc_arena;

struct doc_limits {
  size_t max_bytes;      /* input size */
  unsigned max_depth;    /* nesting of collections */
  size_t max_nodes;      /* nodes of the whole input, alias copies included */
  size_t max_docs;       /* documents in one stream */
  size_t max_scalar;     /* bytes of one scalar */
};

/* 8 MiB, depth 64, 2,000,000 nodes, 20,000 documents, 1 MiB scalars. */
extern const struct doc_limits doc_limits_default;

struct doc_arena *doc_arena_new(void);
void doc_arena_free(struct doc_arena *a);
/* Overwrite every byte @a has handed out with zeros (mem_wipe); the nodes
 * and strings stay allocated but hold nothing. For arenas that held secrets
 * (a kubeconfig with a token, an exec plugin's credential). */
void doc_arena_wipe(struct doc_arena *a);
/* doc_arena_wipe() then doc_arena_free(). NULL is fine. */
void doc_arena_free_secret(struct doc_arena *a);
/* Forget everything allocated, keeping one block for reuse: a scratch arena
 * per rendered object costs no malloc in the steady state. */
void doc_arena_reset(struct doc_arena *a);
/* Bytes held by the arena (for benchmarks and bounds). */
size_t doc_arena_size(const struct doc_arena *a);
void *doc_arena_alloc(struct doc_arena *a, size_t size);
const char *doc_arena_strndup(struct doc_arena *a, const char *s, size_t len);
const char *doc_arena_strdup(struct doc_arena *a, const char *s);

/* Parse a YAML (or JSON) stream of @len bytes named @file into its documents,
 * appended to the arena. On success *ret_docs is an arena-owned array of
 * *ret_n roots (a document that is empty is a DOC_NULL root).
 *
 * Non-fatal problems (duplicate keys) go to @diags when it is not NULL and
 * parsing continues (the later value wins); when @diags is NULL they are
 * fatal. Fatal problems (syntax, invalid UTF-8, a limit) fill @err with the
 * position and return -EBADMSG (syntax), -E2BIG (a limit) or -EILSEQ
 * (encoding); *ret_docs is then untouched. */
int doc_parse(struct doc_arena *a, const char *file, const char *data, size_t len,
              const struct doc_limits *lim, struct doc_node ***ret_docs, size_t *ret_n,
              struct diag_list *diags, struct err *err);

/* Parse exactly one document (JSON bodies, single-object files); an empty
 * input or more than one document is -EBADMSG. */
int doc_parse_one(struct doc_arena *a, const char *file, const char *data, size_t len,
                  const struct doc_limits *lim, struct doc_node **ret, struct err *err);

/* Builders. Strings are copied into the arena. */
struct doc_node *doc_new_null(struct doc_arena *a);
struct doc_node *doc_new_bool(struct doc_arena *a, bool b);
struct doc_node *doc_new_int(struct doc_arena *a, int64_t i);
struct doc_node *doc_new_str(struct doc_arena *a, const char *s);
struct doc_node *doc_new_strn(struct doc_arena *a, const char *s, size_t len);
struct doc_node *doc_new_seq(struct doc_arena *a);
struct doc_node *doc_new_map(struct doc_arena *a);

void doc_seq_push(struct doc_arena *a, struct doc_node *seq, struct doc_node *item);
/* Set @key to @value: replaces an existing key in place, else appends. */
void doc_map_set(struct doc_arena *a, struct doc_node *map, const char *key,
                 struct doc_node *value);
/* Remove @key; returns whether it was there. */
bool doc_map_del(struct doc_node *map, const char *key);

/* Lookups. Return NULL when @node is NULL, of another type, or lacks the key. */
struct doc_node *doc_map_get(const struct doc_node *map, const char *key);
const struct doc_pair *doc_map_pair(const struct doc_node *map, const char *key);
/* The string value of map[key] if it is a DOC_STR, else NULL. */
const char *doc_map_str(const struct doc_node *map, const char *key);
/* Follow a dotted path of map keys ("metadata.labels"); no escaping. An empty
 * path finds nothing. */
struct doc_node *doc_path(const struct doc_node *node, const char *dotted);
const char *doc_path_str(const struct doc_node *node, const char *dotted);

static inline bool doc_is(const struct doc_node *n, enum doc_type t) { return n && n->type == t; }
static inline size_t doc_len(const struct doc_node *n) {
  return !n ? 0 : n->type == DOC_SEQ ? n->u.seq.n : n->type == DOC_MAP ? n->u.map.n : 0;
}

/* Deep copy into @a (positions and file names kept). */
struct doc_node *doc_copy(struct doc_arena *a, const struct doc_node *n);
/* Structural equality: same types and values (an int equals a float of the
 * same value), maps equal regardless of key order, sequences in order. */
bool doc_equal(const struct doc_node *x, const struct doc_node *y);
/* "a string", "a mapping", ... for messages. */
const char *doc_type_name(enum doc_type t);
/* Count of nodes in the tree. */
size_t doc_count(const struct doc_node *n);

enum {
  DOC_JSON_PRETTY = 1 << 0,    /* two-space indentation, newline-terminated */
  DOC_JSON_SORT_KEYS = 1 << 1, /* canonical: keys in byte order */
};
/* Append @n as JSON to @out. */
void doc_emit_json(const struct doc_node *n, struct buf *out, unsigned flags);
/* Append @n as one YAML document (block style) to @out; no "---". */
int doc_emit_yaml(const struct doc_node *n, struct buf *out, struct err *err);
/* Append a YAML stream: "---\n" before every document but the first. */
int doc_emit_yaml_stream(const struct doc_node *const *docs, size_t n, struct buf *out,
                         struct err *err);

/* How a plain scalar text would be typed (YAML 1.2 core schema). Exposed for
 * the template engine and tests. */
enum doc_type doc_resolve_plain(const char *s, size_t len);
